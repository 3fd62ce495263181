//! The chaos of `--chaos-kill-at`: at each time the spawned server is killed (SIGKILL) and
//! started again at once on the same journal, port and signing key, while the devices
//! reconnect and the waiters retry. With replicas, the replica owning the most branches at that
//! moment is killed and left down (`--chaos-restart`: started again at once); the devices on it
//! move to the others, and the run waits (in this task, the rush going on) until the others
//! have taken its branches, which becomes the ownership the figures go by. Also the server's
//! `/metrics` text, whose replay counter says how many retries the journal answered.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::chain::{self, UNKNOWN};
use super::{RunArgs, Shared};
use crate::server::{Killed, Restart, Target};

/// One kill of a replica.
pub(super) struct ReplicaKill {
    /// Seconds since the first order.
    pub(super) at_s: f64,
    /// The replica killed (index).
    pub(super) replica: usize,
    pub(super) killed: Killed,
    /// With `--chaos-restart`: its restart.
    pub(super) restart: Option<Restart>,
    /// The branches each replica owned just before the kill, by replica index.
    pub(super) owned_before: Vec<usize>,
    /// The branches it owned (indices), each with its new owner (`UNKNOWN` when the chain did
    /// not settle).
    pub(super) branches: Vec<(usize, usize)>,
    /// Kill -> the first reading of the ownership that then held (every branch owned by a
    /// replica up), by `/metrics`.
    pub(super) settled_ms: Option<f64>,
}

/// What the chaos did.
#[derive(Default)]
pub(super) struct ChaosOutcome {
    /// Each kill and restart of a single server, or each restart of a replica
    /// (`--chaos-restart`): seconds since the first order, and the restart.
    pub(super) kills: Vec<(f64, Restart)>,
    /// With replicas: each kill.
    pub(super) replica_kills: Vec<ReplicaKill>,
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
    if shared.replicated() {
        return replica_chaos(args, shared, target, t0).await;
    }
    let mut times = args.chaos_kill_at.clone();
    times.sort_by(f64::total_cmp);
    let mut outcome = ChaosOutcome::default();
    let server = &shared.replicas[0];
    for secs in times {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(secs)).into()).await;
        // The replay counter of the process about to die, which the kill takes with it.
        if let Some(text) = scrape_metrics(&shared.http, &server.metrics).await {
            outcome.replays_before_kills += replays(&text);
        }
        let killed = Instant::now();
        server.up.store(false, Ordering::Relaxed);
        server.kills.fetch_add(1, Ordering::Relaxed);
        shared.kills.fetch_add(1, Ordering::Relaxed);
        let at = t0.elapsed().as_secs_f64();
        if !args.quiet {
            eprintln!(
                "[{at:>4.0}s] chaos: SIGKILL to the server (pid {})",
                target.pid().unwrap_or(0)
            );
        }
        let restarted = target.kill_and_restart(0, Duration::from_secs(60)).await;
        server.up.store(true, Ordering::Relaxed);
        match restarted {
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

/// The replica kills: at each time, SIGKILL to the replica owning the most branches (left down,
/// or with `--chaos-restart` started again at once); then waits until the others have its
/// branches, and takes that as the ownership from then on.
async fn replica_chaos(
    args: &RunArgs,
    shared: &Shared,
    target: &mut Target,
    t0: Instant,
) -> ChaosOutcome {
    let mut times = args.chaos_kill_at.clone();
    times.sort_by(f64::total_cmp);
    let mut outcome = ChaosOutcome::default();
    let ttl = chain::lease_ttl(args);
    for (kill_no, secs) in times.into_iter().enumerate() {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(secs)).into()).await;
        let owned = shared.read_owned().await;
        let branches_of = |r: usize| -> Vec<usize> {
            let Some(o) = &owned[r] else {
                return Vec::new();
            };
            (0..shared.layout.branches.len())
                .filter(|&b| o.contains(&shared.layout.branches[b]))
                .collect()
        };
        // The replica up owning the most branches (the first of those that own as many).
        let Some(victim) = (0..shared.replicas.len())
            .filter(|&r| shared.replicas[r].is_up())
            .max_by_key(|&r| (branches_of(r).len(), std::cmp::Reverse(r)))
        else {
            outcome.failure = Some(format!("no replica up to kill at {secs} s"));
            break;
        };
        let its_branches = branches_of(victim);
        let owned_before: Vec<usize> = (0..shared.replicas.len())
            .map(|r| branches_of(r).len())
            .collect();
        let node = &shared.replicas[victim];
        // The replay counter of the process about to die, which the kill takes with it.
        if let Some(text) = scrape_metrics(&shared.http, &node.metrics).await {
            outcome.replays_before_kills += replays(&text);
        }
        node.up.store(false, Ordering::Relaxed);
        node.kills.fetch_add(1, Ordering::Relaxed);
        shared.kills.fetch_add(1, Ordering::Relaxed);
        let at = t0.elapsed().as_secs_f64();
        if !args.quiet {
            let names: Vec<&str> = its_branches
                .iter()
                .map(|&b| shared.layout.branches[b].as_str())
                .collect();
            eprintln!(
                "[{at:>4.0}s] chaos: SIGKILL to replica {} (pid {}), owner of {}",
                node.id,
                target.nodes[victim].pid().unwrap_or(0),
                if names.is_empty() {
                    "no branch".to_owned()
                } else {
                    names.join(", ")
                }
            );
        }
        let (killed, killed_at) = match target.kill(victim).await {
            Ok(k) => k,
            Err(e) => {
                outcome.failure = Some(format!(
                    "replica {} could not be killed at {at:.1} s: {e:#}",
                    node.id
                ));
                break;
            }
        };
        // The process is gone: whatever is answered for its branches from now on was sent
        // after it and carried out by another replica.
        let signalled = Instant::now();
        {
            let mut pending = shared.failing_over.lock().expect("lock");
            for &b in &its_branches {
                pending.insert(b, (kill_no, killed_at, signalled));
            }
        }
        let mut restart = None;
        if args.chaos_restart {
            match target.restart(victim, Duration::from_secs(60)).await {
                Ok(new_pid) => {
                    node.up.store(true, Ordering::Relaxed);
                    let r = Restart {
                        killed_pid: killed.killed_pid,
                        new_pid,
                        reaped_ms: killed.reaped_ms,
                        downtime_ms: killed_at.elapsed().as_secs_f64() * 1000.0,
                    };
                    if !args.quiet {
                        eprintln!(
                            "[{:>4.0}s] chaos: replica {} restarted (pid {new_pid}), ready {:.0} ms after the kill",
                            t0.elapsed().as_secs_f64(),
                            node.id,
                            r.downtime_ms
                        );
                    }
                    outcome.kills.push((at, r.clone()));
                    restart = Some(r);
                }
                Err(e) => {
                    outcome.failure = Some(format!(
                        "replica {} killed at {at:.1} s did not come back: {e:#}",
                        node.id
                    ));
                }
            }
        }
        // Who owns what now, once the chain has settled again.
        let urls: Vec<(&str, bool)> = shared
            .replicas
            .iter()
            .map(|r| (r.metrics.as_str(), r.is_up()))
            .collect();
        let hold = ttl * 2 / 5 + Duration::from_millis(200);
        let limit = ttl * 4 + Duration::from_secs(30);
        let (owners, settled_ms) = match chain::settle(
            &shared.http,
            &urls,
            &shared.layout.branches,
            hold,
            limit,
        )
        .await
        {
            Ok((owners, since)) => {
                shared.set_owners(&owners);
                (
                    owners,
                    Some(since.saturating_duration_since(killed_at).as_secs_f64() * 1000.0),
                )
            }
            Err(last) => {
                // Those known are taken; the others keep their last owner.
                for (b, &o) in last.iter().enumerate() {
                    if o != UNKNOWN {
                        shared.owners[b].store(o, Ordering::Relaxed);
                    }
                }
                outcome.failure.get_or_insert_with(|| {
                        format!(
                            "after replica {} was killed at {at:.1} s, the replicas left did not settle who owns each branch within {limit:?} (branch -> replica index, {UNKNOWN} none: {:?})",
                            node.id,
                            shared.layout.branches.iter().zip(&last).collect::<Vec<_>>()
                        )
                    });
                (last, None)
            }
        };
        if !args.quiet {
            let moved: Vec<String> = its_branches
                .iter()
                .map(|&b| {
                    format!(
                        "{} -> {}",
                        shared.layout.branches[b],
                        shared
                            .replicas
                            .get(owners[b])
                            .map_or("none", |r| r.id.as_str())
                    )
                })
                .collect();
            eprintln!(
                "[{:>4.0}s] chaos: owners settled{}: {}",
                t0.elapsed().as_secs_f64(),
                settled_ms.map_or(String::new(), |ms| format!(" {ms:.0} ms after the kill")),
                moved.join(", ")
            );
        }
        outcome.replica_kills.push(ReplicaKill {
            at_s: at,
            replica: victim,
            killed,
            restart,
            owned_before,
            branches: its_branches.iter().map(|&b| (b, owners[b])).collect(),
            settled_ms,
        });
        if outcome.failure.is_some() {
            break;
        }
    }
    outcome
}

/// The server's `/metrics` text, from its metrics URL; None unless it answers 200.
pub(super) async fn scrape_metrics(http: &reqwest::Client, url: &str) -> Option<String> {
    let res = http
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
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

/// Tickets escalated because no screen acknowledged them, from `/metrics` text: the sum of
/// `rail_ticket_unseen_total` over its branches and stations.
pub(super) fn unseen(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("rail_ticket_unseen_total"))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_unseen_counter() {
        let text = "# TYPE rail_ticket_unseen_total counter\nrail_ticket_unseen_total{branch=\"b\",station=\"grill\"} 2\nrail_ticket_unseen_total{branch=\"b\",station=\"fryer\"} 1\n";
        assert_eq!(unseen(text), 3);
        assert_eq!(unseen("other 1\n"), 0);
    }

    #[test]
    fn reads_the_replay_counter() {
        let text = "# HELP rail_idempotent_replays_total Retries.\n# TYPE rail_idempotent_replays_total counter\nrail_idempotent_replays_total 7\n";
        assert_eq!(replays(text), 7);
        assert_eq!(replays("other 1\n"), 0);
    }
}
