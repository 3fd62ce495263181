//! Branch leases and the fence: which replica owns a branch, under which epoch.
//!
//! A lease is a row of `branch_leases`, taken by a conditional upsert that bumps the branch's
//! epoch when the row is free (released, or expired by the database's clock) and renewed by
//! its owner while it lives. The epoch is the fencing token: the journal's writer checks, in
//! the commit transaction and under a share lock on the row, that the epoch this replica
//! holds is the branch's current one. An owner that paused past its lease and woke finds the
//! epoch moved on and cannot write, whatever its clock says; a replica taking the lease waits
//! for a commit holding the row's share lock, so it reads every event the old owner wrote.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use super::postgres::PostgresJournal;
use super::JournalError;

/// The epochs of the branches this replica holds, as the journal's writer checks them.
/// A branch absent here cannot be appended to by this replica.
#[derive(Debug, Default)]
pub struct Fences(RwLock<HashMap<String, u64>>);

impl Fences {
    pub fn hold(&self, branch: &str, epoch: u64) {
        let mut held = self.0.write().unwrap_or_else(PoisonError::into_inner);
        held.insert(branch.to_owned(), epoch);
    }

    pub fn drop_branch(&self, branch: &str) {
        let mut held = self.0.write().unwrap_or_else(PoisonError::into_inner);
        held.remove(branch);
    }

    pub fn epoch(&self, branch: &str) -> Option<u64> {
        let held = self.0.read().unwrap_or_else(PoisonError::into_inner);
        held.get(branch).copied()
    }

    /// The branches held, with their epochs.
    pub fn held(&self) -> HashMap<String, u64> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A branch's lease as the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub branch: String,
    pub owner: String,
    pub address: String,
    pub epoch: u64,
    /// Whether the lease is still running, by the database's clock.
    pub live: bool,
    /// How long ago it ran out (zero while it runs).
    pub expired_for: Duration,
}

/// Takes a branch's lease when it is free (released, or run out by the database's clock),
/// moving its epoch on.
const ACQUIRE: &str = "INSERT INTO branch_leases AS l (branch, owner, address, epoch, expires_at) \
     VALUES ($1, $2, $3, 1, now() + make_interval(secs => $4)) \
     ON CONFLICT (branch) DO UPDATE \
       SET owner = excluded.owner, address = excluded.address, epoch = l.epoch + 1, \
           expires_at = excluded.expires_at \
     WHERE l.expires_at < now() \
     RETURNING epoch";

/// Renews every lease of an owner whose epoch it still holds.
const RENEW: &str = "UPDATE branch_leases l SET expires_at = now() + make_interval(secs => $2) \
     FROM unnest($3::text[], $4::bigint[]) AS h(branch, epoch) \
     WHERE l.branch = h.branch AND l.epoch = h.epoch AND l.owner = $1 \
     RETURNING l.branch";

/// Lets a lease go at once: the next replica may take it without waiting for it to run out.
const RELEASE: &str = "UPDATE branch_leases SET expires_at = now() - interval '1 millisecond' \
     WHERE branch = $1 AND owner = $2 AND epoch = $3";

const LIST: &str = "SELECT branch, owner, address, epoch, expires_at >= now(), \
       greatest(0, extract(epoch FROM now() - expires_at))::float8 \
     FROM branch_leases";

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl PostgresJournal {
    /// Takes a branch's lease for `ttl` if it is free; returns the new epoch.
    pub async fn acquire_lease(
        &self,
        branch: &str,
        owner: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, JournalError> {
        let rows = self
            .query(ACQUIRE, &[&branch, &owner, &address, &seconds(ttl)])
            .await?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0) as u64))
    }

    /// Renews the leases held (branch and epoch) for `ttl`; returns the branches renewed.
    pub async fn renew_leases(
        &self,
        owner: &str,
        held: &HashMap<String, u64>,
        ttl: Duration,
    ) -> Result<Vec<String>, JournalError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let (branches, epochs): (Vec<&str>, Vec<i64>) =
            held.iter().map(|(b, e)| (b.as_str(), *e as i64)).unzip();
        let rows = self
            .query(RENEW, &[&owner, &seconds(ttl), &branches, &epochs])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Lets a lease go, if it is still this owner's at this epoch.
    pub async fn release_lease(
        &self,
        branch: &str,
        owner: &str,
        epoch: u64,
    ) -> Result<(), JournalError> {
        self.query(RELEASE, &[&branch, &owner, &(epoch as i64)])
            .await
            .map(|_| ())
    }

    /// Every branch's lease.
    pub async fn leases(&self) -> Result<Vec<Lease>, JournalError> {
        let rows = self.query(LIST, &[]).await?;
        Ok(rows
            .iter()
            .map(|r| Lease {
                branch: r.get(0),
                owner: r.get(1),
                address: r.get(2),
                epoch: r.get::<_, i64>(3) as u64,
                live: r.get(4),
                expired_for: Duration::from_secs_f64(r.get::<_, f64>(5).max(0.0)),
            })
            .collect())
    }
}
