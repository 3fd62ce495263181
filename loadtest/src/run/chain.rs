//! The engine's processes as the run sees them: where each replica is and whether it is up,
//! which replica a device uses (its own, or the next one up while its own is down), and which
//! replica owns each branch, read from the replicas' `/metrics` (`rail_branch_owned`).
//!
//! Ownership is read once the chain has settled after the set-up, and again after each chaos
//! kill once the killed replica's branches have new owners. Between two readings a branch is
//! taken as owned by the replica last read: a sample taken while a branch changes hands may be
//! put down to its previous owner.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{RunArgs, Shared};

/// An owner not known (yet), in `Shared::owners`.
pub(super) const UNKNOWN: usize = usize::MAX;

/// One engine process: the only server, or a replica.
pub(super) struct Endpoint {
    /// `r1`, `r2`, ... (`server` for a single engine).
    pub(super) id: String,
    pub(super) base: String,
    pub(super) ws_url: String,
    /// Its `/metrics` URL.
    pub(super) metrics: String,
    pub(super) addr: SocketAddr,
    /// False from just before a kill until a restart is ready.
    pub(super) up: AtomicBool,
    /// Kills of this process so far: bumped just before each SIGKILL, so that a socket on it
    /// that closes after knows why.
    pub(super) kills: AtomicU64,
}

impl Endpoint {
    pub(super) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// Whether the engine is several replicas.
    pub(super) fn replicated(&self) -> bool {
        self.replicas.len() > 1
    }

    /// The replica a device whose own is `home` uses now: its own when up, else the next one
    /// up (its own when none is).
    pub(super) fn live_replica(&self, home: usize) -> usize {
        let n = self.replicas.len();
        (0..n)
            .map(|k| (home + k) % n)
            .find(|&r| self.replicas[r].is_up())
            .unwrap_or(home % n)
    }

    /// A base URL of the engine that is up (for the read-back and the final scrape).
    pub(super) fn base(&self) -> &str {
        &self.replicas[self.live_replica(0)].base
    }

    /// Whether `replica` owned `branch` at the last reading.
    pub(super) fn owns(&self, replica: usize, branch: usize) -> bool {
        self.owners
            .get(branch)
            .is_some_and(|o| o.load(Ordering::Relaxed) == replica)
    }

    /// Takes a new reading of the owners.
    pub(super) fn set_owners(&self, owners: &[usize]) {
        for (cell, &o) in self.owners.iter().zip(owners) {
            cell.store(o, Ordering::Relaxed);
        }
    }

    /// Each branch's owner as last read, by name (`null` when unknown).
    pub(super) fn owner_names(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (b, branch) in self.layout.branches.iter().enumerate() {
            let o = self.owners[b].load(Ordering::Relaxed);
            map.insert(
                branch.clone(),
                self.replicas
                    .get(o)
                    .map_or(serde_json::Value::Null, |r| r.id.clone().into()),
            );
        }
        map.into()
    }

    /// Every replica's reading of the branches it owns (None for one down or unreachable).
    pub(super) async fn read_owned(&self) -> Vec<Option<Vec<String>>> {
        let urls: Vec<(&str, bool)> = self
            .replicas
            .iter()
            .map(|r| (r.metrics.as_str(), r.is_up()))
            .collect();
        read_owned(&self.http, &urls).await
    }
}

/// The lease's time to live the replicas run with (`RAIL_LEASE_TTL_MS`: `--server-env`, else
/// this process's environment, which a spawned server inherits; the engine's 5 s otherwise).
pub(super) fn lease_ttl(args: &RunArgs) -> Duration {
    let ms = args
        .server
        .server_env
        .iter()
        .rev()
        .find(|(k, _)| k == "RAIL_LEASE_TTL_MS")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("RAIL_LEASE_TTL_MS").ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(5000);
    Duration::from_millis(ms.max(1000))
}

/// The branches a replica's `/metrics` says it owns (`rail_branch_owned{branch="…"} 1`).
pub(super) fn parse_owned(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("rail_branch_owned{")?;
            let (labels, value) = rest.split_once('}')?;
            if value.trim().parse::<f64>().ok()? != 1.0 {
                return None;
            }
            let from = labels.find("branch=\"")? + "branch=\"".len();
            let len = labels[from..].find('"')?;
            Some(labels[from..from + len].to_owned())
        })
        .collect()
}

/// The live members a replica's `/metrics` counts (`rail_replica_members`).
pub(super) fn parse_members(metrics: &str) -> Option<u64> {
    metrics.lines().find_map(|l| {
        let v = l.strip_prefix("rail_replica_members ")?;
        v.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

/// A replica's `/metrics` text, from its metrics URL.
async fn metrics_of(http: &reqwest::Client, url: &str) -> Option<String> {
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

/// Each replica's owned branches, by its metrics URL; None for one that is down (`false`) or
/// did not answer.
pub(super) async fn read_owned(
    http: &reqwest::Client,
    urls: &[(&str, bool)],
) -> Vec<Option<Vec<String>>> {
    let reads = urls.iter().map(|&(url, up)| async move {
        if !up {
            return None;
        }
        metrics_of(http, url).await.map(|m| parse_owned(&m))
    });
    futures_util::future::join_all(reads).await
}

/// Each branch's owner among the readings: `UNKNOWN` for a branch no replica owns, or more
/// than one says it does.
pub(super) fn assignment(branches: &[String], owned: &[Option<Vec<String>>]) -> Vec<usize> {
    branches
        .iter()
        .map(|b| {
            let mut holders = owned
                .iter()
                .enumerate()
                .filter(|(_, o)| o.as_ref().is_some_and(|o| o.contains(b)))
                .map(|(i, _)| i);
            match (holders.next(), holders.next()) {
                (Some(i), None) => i,
                _ => UNKNOWN,
            }
        })
        .collect()
}

/// Waits until every replica (by its metrics URL) counts `n` live members (all of them), at
/// most `limit`.
pub(super) async fn wait_members(
    http: &reqwest::Client,
    urls: &[&str],
    limit: Duration,
) -> anyhow::Result<()> {
    let n = urls.len() as u64;
    let deadline = Instant::now() + limit;
    loop {
        let reads = futures_util::future::join_all(urls.iter().map(|u| metrics_of(http, u))).await;
        let counts: Vec<Option<u64>> = reads
            .iter()
            .map(|m| m.as_deref().and_then(parse_members))
            .collect();
        if counts.iter().all(|c| *c == Some(n)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the replicas did not all see each other within {limit:?} (rail_replica_members: {counts:?}, expected {n} each)"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the replicas up (by their metrics URLs) until every branch has exactly one owner among them and that has
/// held for `hold`; the owners and when they were first read so, or at `limit` the last
/// reading as an error.
pub(super) async fn settle(
    http: &reqwest::Client,
    urls: &[(&str, bool)],
    branches: &[String],
    hold: Duration,
    limit: Duration,
) -> Result<(Vec<usize>, Instant), Vec<usize>> {
    let deadline = Instant::now() + limit;
    let mut last: Option<(Vec<usize>, Instant)> = None;
    loop {
        let now = assignment(branches, &read_owned(http, urls).await);
        let complete = now.iter().all(|&o| o != UNKNOWN);
        match &last {
            Some((prev, since)) if *prev == now => {
                if complete && since.elapsed() >= hold {
                    return Ok((now, *since));
                }
            }
            _ => last = Some((now.clone(), Instant::now())),
        }
        if Instant::now() > deadline {
            return Err(now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_branches_a_replica_owns() {
        let text = "# HELP rail_branch_owned 1 while ...\n# TYPE rail_branch_owned gauge\nrail_branch_owned{branch=\"load-1\"} 1\nrail_branch_owned{branch=\"load-2\"} 0\nrail_branch_owned{branch=\"load-3\"} 1\nrail_replica_members 3\n";
        assert_eq!(parse_owned(text), vec!["load-1", "load-3"]);
        assert_eq!(parse_members(text), Some(3));
        assert_eq!(parse_members("other 1\n"), None);
    }

    #[test]
    fn a_branch_has_one_owner_or_none() {
        let branches: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let owned = vec![
            Some(vec!["a".to_owned(), "c".to_owned()]),
            None,
            Some(vec!["c".to_owned()]),
        ];
        assert_eq!(assignment(&branches, &owned), vec![0, UNKNOWN, UNKNOWN]);
    }
}
