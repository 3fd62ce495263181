//! The soak's redials: while the orders arrive, a screen or tablet drawn at random hangs up and
//! dials again, at exponential gaps averaging `--reconnect-every`, from a generator seeded by
//! `--seed` (the same seed gives the same devices at the same offsets). The device closes its
//! own socket and resumes after the last position it saw, as a tablet does when it roams
//! between access points; the engine is to end the old session and its writer task.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::setup::Redial;
use crate::plan::derived;

/// The redials asked for: of screens, and of tablets.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Asked {
    pub(super) screens: u64,
    pub(super) tablets: u64,
}

/// The offsets (from the start of the rush) of the redials before `until`, and which device
/// each one is: exponential gaps of mean `every`, devices drawn uniformly.
pub(super) fn schedule(
    seed: u64,
    every: Duration,
    until: Duration,
    devices: usize,
) -> Vec<(Duration, usize)> {
    let mut out = Vec::new();
    if every.is_zero() || devices == 0 {
        return out;
    }
    let mut rng = StdRng::seed_from_u64(derived(seed, 0x00de_a1ed));
    let mut at = 0.0f64;
    loop {
        let u: f64 = rng.random();
        at += -(1.0 - u).ln() * every.as_secs_f64();
        if at >= until.as_secs_f64() {
            return out;
        }
        out.push((Duration::from_secs_f64(at), rng.random_range(0..devices)));
    }
}

/// Tells each device of `plan` to redial at its offset from `t0`; what it asked.
pub(super) async fn redial(
    devices: Vec<Redial>,
    plan: Vec<(Duration, usize)>,
    t0: Instant,
) -> Asked {
    let mut asked = Asked::default();
    for (at, device) in plan {
        tokio::time::sleep_until((t0 + at).into()).await;
        let Some(d) = devices.get(device) else {
            continue;
        };
        d.now.notify_one();
        if d.screen {
            asked.screens += 1;
        } else {
            asked.tablets += 1;
        }
    }
    asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redials_at_the_mean_gap_the_same_for_the_same_seed() {
        let every = Duration::from_secs(3);
        let hour = Duration::from_secs(3600);
        let plan = schedule(42, every, hour, 104);
        assert_eq!(plan, schedule(42, every, hour, 104));
        assert_ne!(plan, schedule(43, every, hour, 104));
        // About 1,200 in an hour (a Poisson count: within 10%).
        assert!((1080..=1320).contains(&plan.len()), "{}", plan.len());
        assert!(plan.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(plan.iter().all(|&(at, d)| at < hour && d < 104));
        // Every device gets its turn over an hour.
        let mut seen = std::collections::HashSet::new();
        seen.extend(plan.iter().map(|&(_, d)| d));
        assert!(seen.len() > 100, "{}", seen.len());
        assert!(schedule(42, Duration::ZERO, hour, 104).is_empty());
        assert!(schedule(42, every, hour, 0).is_empty());
    }
}
