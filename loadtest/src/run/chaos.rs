//! The chaos of `--chaos-kill-at`: at each time the spawned server is killed (SIGKILL) and
//! started again at once on the same journal, port and signing key, while the devices
//! reconnect and the waiters retry. Also the server's `/metrics` text, whose replay counter
//! says how many retries the journal answered.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{RunArgs, Shared};
use crate::server::{Restart, Target};

/// What the chaos did.
#[derive(Default)]
pub(super) struct ChaosOutcome {
    /// Each kill: seconds since the first order, and the restart.
    pub(super) kills: Vec<(f64, Restart)>,
    /// Retries answered from the journal by the server processes that were killed (their
    /// counter read just before each kill).
    pub(super) replays_before_kills: u64,
    /// The restart that did not come back.
    pub(super) failure: Option<String>,
}

/// At each `--chaos-kill-at`, kills the spawned server with SIGKILL and starts it again at
/// once on the same journal; returns when the last restart is ready.
pub(super) async fn chaos(
    args: &RunArgs,
    shared: &Shared,
    target: &mut Target,
    t0: Instant,
) -> ChaosOutcome {
    let mut times = args.chaos_kill_at.clone();
    times.sort_by(f64::total_cmp);
    let mut outcome = ChaosOutcome::default();
    for secs in times {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(secs)).into()).await;
        // The replay counter of the process about to die, which the kill takes with it.
        if let Some(text) = scrape_metrics(&shared.http, &target.base).await {
            outcome.replays_before_kills += replays(&text);
        }
        let killed = Instant::now();
        shared.kills.fetch_add(1, Ordering::Relaxed);
        let at = t0.elapsed().as_secs_f64();
        if !args.quiet {
            eprintln!(
                "[{at:>4.0}s] chaos: SIGKILL to the server (pid {})",
                target.pid().unwrap_or(0)
            );
        }
        match target.kill_and_restart(Duration::from_secs(60)).await {
            Ok(restart) => {
                // Answers read after the kill but sent before it do not count: from now on,
                // the first answer comes from the new process.
                *shared.since_kill.lock().expect("lock") = Some(killed);
                if !args.quiet {
                    eprintln!(
                        "[{:>4.0}s] chaos: restarted (pid {}), ready {:.0} ms after the kill",
                        t0.elapsed().as_secs_f64(),
                        restart.new_pid,
                        restart.downtime_ms
                    );
                }
                outcome.kills.push((at, restart));
            }
            Err(e) => {
                outcome.failure = Some(format!(
                    "the server killed at {at:.1} s did not come back: {e:#}"
                ));
                break;
            }
        }
    }
    outcome
}

/// The server's `/metrics` text.
pub(super) async fn scrape_metrics(http: &reqwest::Client, base: &str) -> Option<String> {
    let res = http
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    res.text().await.ok()
}

/// Retries the server answered from the journal, from its `/metrics` text.
pub(super) fn replays(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("rail_idempotent_replays_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_replay_counter() {
        let text = "# HELP rail_idempotent_replays_total Retries.\n# TYPE rail_idempotent_replays_total counter\nrail_idempotent_replays_total 7\n";
        assert_eq!(replays(text), 7);
        assert_eq!(replays("other 1\n"), 0);
    }
}
