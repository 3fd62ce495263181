//! Which replica owns each branch, and the leases that make it so.
//!
//! Every tick (a fifth of the lease's time to live) each replica renews the leases it holds,
//! refreshes its membership, reads every lease, and then, for each branch, compares who holds
//! it with who should: the live member that rendezvous hashing picks (the highest hash of
//! member and branch), so a joining or leaving replica moves only its own share.
//! - It holds a branch another member should own: it hands the branch over (its commands in
//!   flight finish, a snapshot is saved, the lease is let go and the new owner nudged).
//! - It should own a branch nobody holds: it takes the lease and, once caught up with the
//!   journal, writes. A branch whose lease ran out a whole lease ago is taken by anyone (its
//!   chosen owner may be alive on Redis and cut off from Postgres); with Redis down, any
//!   replica takes any lease that ran out.
//! - A lease that was not renewed (another replica holds it now) is dropped at once; one
//!   whose renewals fail (Postgres unreachable) is dropped a safety margin before it runs
//!   out by this replica's clock. Either way the journal's epoch check is what keeps a
//!   replica that is wrong about its lease from writing.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rail_actors::ids::BranchId;
use sha2::{Digest, Sha256};

use super::members::{self, Member};
use super::relay::{self, Note};
use super::{Cluster, Owned};
use crate::metrics;

/// The member rendezvous hashing picks for a branch.
pub(super) fn pick<'a>(branch: &str, members: Option<&'a [Member]>) -> Option<&'a Member> {
    members?.iter().max_by_key(|m| {
        let digest = Sha256::new()
            .chain_update(m.id.as_bytes())
            .chain_update([0])
            .chain_update(branch.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first), m.id.clone())
    })
}

/// How a replica stops writing a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StepDown {
    /// It hands the branch over: commands in flight finish, a snapshot is saved, the lease
    /// is let go for the next owner to take at once.
    HandOff,
    /// It lost the lease (or may have): it stops at once.
    Lost,
}

/// Runs placement until the replica stops.
pub(super) async fn run(cluster: Cluster) {
    loop {
        place(&cluster).await;
        cluster.0.placed.store(true, Ordering::Release);
        let tick = cluster.tick();
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = cluster.0.nudge.notified() => {}
        }
    }
}

/// One round of placement.
async fn place(cluster: &Cluster) {
    renew(cluster).await;
    drop_expired(cluster).await;
    let leases = cluster.0.journal.leases().await;
    // A replica that cannot read the journal says it is alive no more: it could not take a
    // branch, and placement should not pick it while it is cut off.
    // Nor does one that is leaving: the others are to take its branches now.
    let leaving = cluster.0.leaving.load(Ordering::Acquire);
    let members = members::beat_and_list(cluster, leases.is_ok() && !leaving).await;
    let branches: BTreeSet<String> = {
        let mut state = cluster.state();
        state.members = members;
        if let Ok(leases) = leases {
            state.leases = leases.into_iter().map(|l| (l.branch.clone(), l)).collect();
        }
        metrics::replica_members(state.members.as_ref().map_or(0, Vec::len));
        let known = cluster.0.engine.branch_ids();
        known
            .iter()
            .map(|b| b.to_string())
            .chain(state.leases.keys().cloned())
            .collect()
    };
    relay::announce(cluster, Note::Beat).await;
    if leaving {
        return;
    }
    for branch in branches {
        let (owned, hand_to, free) = {
            let state = cluster.state();
            let chosen = pick(&branch, state.members.as_deref());
            let lease = state.leases.get(&branch);
            let owned = state.owned.contains_key(&branch);
            let hand_to = chosen
                .filter(|m| m.id != cluster.id())
                .map(|m| m.id.clone());
            let mine = chosen.is_none_or(|m| m.id == cluster.id());
            let abandoned = lease.is_some_and(|l| l.expired_for > cluster.0.settings.lease_ttl);
            let free = lease.is_none_or(|l| !l.live) && (mine || abandoned);
            (owned, hand_to, free)
        };
        if owned {
            if let Some(to) = hand_to {
                tracing::info!(%branch, to = %to, "handing the branch to the replica placement picks");
                step_down(cluster, &branch, StepDown::HandOff).await;
            }
        } else if free {
            cluster.take(&branch).await;
        }
    }
    metrics::replica_branches_owned(cluster.state().owned.len());
}

/// Renews every lease held; one not renewed belongs to another replica now.
async fn renew(cluster: &Cluster) {
    let held: std::collections::HashMap<String, u64> = {
        let state = cluster.state();
        state
            .owned
            .iter()
            .map(|(b, o)| (b.clone(), o.epoch))
            .collect()
    };
    if held.is_empty() {
        return;
    }
    let settings = &cluster.0.settings;
    let sent = Instant::now();
    // A slow renewal (a busy database) may still land before the leases' own deadline; past
    // it, the branches are dropped below whatever the answer would have been.
    let renewed = tokio::time::timeout(
        settings.lease_ttl - margin(settings.lease_ttl),
        cluster
            .0
            .journal
            .renew_leases(&settings.id, &held, settings.lease_ttl),
    )
    .await;
    let renewed = match renewed {
        Ok(Ok(renewed)) => renewed,
        Ok(Err(e)) => return tracing::warn!(error = %e, "leases not renewed"),
        Err(_) => return tracing::warn!("leases not renewed in time"),
    };
    let until = sent + settings.lease_ttl - margin(settings.lease_ttl);
    let mut lost = Vec::new();
    {
        let mut state = cluster.state();
        for branch in held.keys() {
            match state.owned.get_mut(branch) {
                Some(owned) if renewed.contains(branch) => owned.until = until,
                Some(_) => lost.push(branch.clone()),
                None => {}
            }
        }
    }
    for branch in lost {
        tracing::warn!(%branch, "lease lost to another replica");
        step_down(cluster, &branch, StepDown::Lost).await;
    }
}

/// How long before its lease runs out (by its own clock) an owner stops writing.
fn margin(ttl: Duration) -> Duration {
    ttl / 5
}

/// Stops writing the branches whose renewals have failed for too long.
async fn drop_expired(cluster: &Cluster) {
    let now = Instant::now();
    let expired: Vec<String> = {
        let state = cluster.state();
        state
            .owned
            .iter()
            .filter(|(_, o)| o.until <= now)
            .map(|(b, _)| b.clone())
            .collect()
    };
    for branch in expired {
        tracing::warn!(%branch, "lease about to run out unrenewed: no longer writing the branch");
        step_down(cluster, &branch, StepDown::Lost).await;
    }
}

/// Stops writing a branch here.
pub(super) async fn step_down(cluster: &Cluster, branch: &str, how: StepDown) {
    let owned = {
        let mut state = cluster.state();
        if !state.moving.insert(branch.to_owned()) {
            return;
        }
        state.owned.get(branch).copied()
    };
    let Some(owned) = owned else {
        cluster.state().moving.remove(branch);
        return;
    };
    let id = BranchId::parse(branch.to_owned()).ok();
    if how == StepDown::Lost {
        // Nothing more is written under this lease, whatever is in flight.
        cluster.0.fences.drop_branch(branch);
    }
    if let Some(id) = &id {
        if let Err(e) = cluster.0.engine.demote(id, how == StepDown::HandOff).await {
            tracing::warn!(%branch, error = %e, "branch not told it is no longer owned here");
        }
    }
    cluster.0.fences.drop_branch(branch);
    if how == StepDown::HandOff {
        let released = cluster
            .0
            .journal
            .release_lease(branch, cluster.id(), owned.epoch)
            .await;
        if let Err(e) = released {
            tracing::warn!(%branch, error = %e, "lease not let go; it runs out by itself");
        }
    }
    {
        let mut state = cluster.state();
        state.owned.remove(branch);
        state.leases.remove(branch);
        state.moving.remove(branch);
    }
    metrics::branch_owned(branch, false);
    metrics::lease_change(match how {
        StepDown::HandOff => "handed_off",
        StepDown::Lost => "lost",
    });
    if how == StepDown::HandOff {
        let branch = branch.to_owned();
        relay::announce(cluster, Note::Released { branch }).await;
    }
}

impl Cluster {
    /// Takes a branch's lease if it is free, and writes the branch once caught up.
    pub(super) async fn take(&self, branch: &str) {
        {
            let mut state = self.state();
            if state.owned.contains_key(branch) || !state.moving.insert(branch.to_owned()) {
                return;
            }
        }
        let taken = self.take_moving(branch).await;
        let mut state = self.state();
        state.moving.remove(branch);
        if let Some(owned) = taken {
            state.owned.insert(branch.to_owned(), owned);
            metrics::branch_owned(branch, true);
        }
    }

    async fn take_moving(&self, branch: &str) -> Option<Owned> {
        let id = BranchId::parse(branch.to_owned()).ok()?;
        let settings = &self.0.settings;
        let sent = Instant::now();
        let acquired = self
            .0
            .journal
            .acquire_lease(branch, &settings.id, &settings.address, settings.lease_ttl)
            .await;
        let epoch = match acquired {
            Ok(Some(epoch)) => epoch,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(%branch, error = %e, "lease not taken");
                return None;
            }
        };
        self.0.fences.hold(branch, epoch);
        let promoted = match self.0.engine.adopt(&id).await {
            Ok(()) => self
                .0
                .engine
                .promote(&id, epoch)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = promoted {
            tracing::warn!(%branch, error = %e, "branch not caught up; letting the lease go");
            self.0.fences.drop_branch(branch);
            let _ = self
                .0
                .journal
                .release_lease(branch, &settings.id, epoch)
                .await;
            return None;
        }
        tracing::info!(%branch, epoch, "lease taken");
        metrics::lease_change("taken");
        Some(Owned {
            epoch,
            until: sent + settings.lease_ttl - margin(settings.lease_ttl),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[&str]) -> Vec<Member> {
        ids.iter()
            .map(|id| Member {
                id: (*id).to_owned(),
                address: format!("{id}:3000"),
                v: 1,
            })
            .collect()
    }

    #[test]
    fn a_joining_replica_takes_only_its_share() {
        let three = members(&["r1", "r2", "r3"]);
        let four = members(&["r1", "r2", "r3", "r4"]);
        let branches: Vec<String> = (0..1000).map(|n| format!("branch-{n}")).collect();
        let mut moved = 0;
        let mut counts = std::collections::HashMap::new();
        for b in &branches {
            let before = pick(b, Some(&three)).unwrap();
            let after = pick(b, Some(&four)).unwrap();
            *counts.entry(before.id.clone()).or_insert(0) += 1;
            if before != after {
                // A branch that moves, moves to the newcomer, never between the others.
                assert_eq!(after.id, "r4");
                moved += 1;
            }
        }
        // About a quarter moves; each of three holds about a third before.
        assert!((180..320).contains(&moved), "{moved} of 1000 moved");
        for (id, n) in counts {
            assert!((270..400).contains(&n), "{id} held {n} of 1000");
        }
        // The same members in another order pick the same owners: every replica agrees.
        let shuffled = members(&["r3", "r1", "r2"]);
        for b in &branches {
            assert_eq!(pick(b, Some(&three)), pick(b, Some(&shuffled)));
        }
        assert_eq!(pick("x", None), None);
    }
}
