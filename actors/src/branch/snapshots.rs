//! When and how a branch saves its snapshot: every `snapshot_every` committed events, encoded
//! and written off the actor so the kitchen never waits for it. The snapshot's format is
//! `crate::stored`'s.

use super::{BranchActor, RecoveredBranch};
use crate::ids::BranchId;
use crate::journal::{Journal, JournalError};
use crate::stored::{encode_snapshot, BranchSnapshot};

/// Events a branch commits between two of its snapshots, unless configured otherwise.
pub const SNAPSHOT_EVERY: u64 = 5_000;

/// Saves a snapshot of a recovered branch (recovery benchmarks and tools; the branch actor
/// snapshots itself as it runs).
pub async fn save_snapshot(
    journal: &dyn Journal,
    id: &BranchId,
    recovered: &RecoveredBranch,
) -> Result<(), JournalError> {
    let snapshot = BranchSnapshot::new(
        recovered.branch.as_ref(),
        recovered.config_seq,
        recovered.position,
        &recovered.orders,
    )
    .with_stock(recovered.stock.clone())
    .with_prep(recovered.prep.samples());
    journal
        .save_snapshot(id.as_str(), encode_snapshot(&snapshot))
        .await
}

impl BranchActor {
    /// Saves a snapshot once `snapshot_every` events have been committed since the last one,
    /// when this replica writes the branch.
    pub(super) fn snapshot_when_due(&mut self) {
        let due = self.position >= self.snapshot_position + self.snapshot_every;
        if due && self.owner && self.branch.is_some() {
            actix::spawn(self.save_snapshot_now());
        }
    }

    /// A snapshot of the branch as it is now, saved by the future returned. The view is copied
    /// here and encoded and written off the actor, which goes on at once.
    pub(super) fn save_snapshot_now(&mut self) -> impl std::future::Future<Output = ()> + 'static {
        // Whatever the outcome, the next attempt waits for as many events again.
        self.snapshot_position = self.position;
        // Orders merged in but not closed yet are kept too: recovery hides and closes them.
        let unfinished = self.unfinished_merges.iter().map(|(o, _)| o);
        let snapshot = BranchSnapshot::new(
            self.branch.as_deref(),
            self.config_seq,
            self.position,
            self.view.values().chain(unfinished),
        )
        .with_stock(self.stock.levels())
        .with_prep(self.prep.samples());
        let journal = self.journal.clone();
        let branch = self.id.clone();
        async move {
            let started = std::time::Instant::now();
            let position = snapshot.position;
            let encoded =
                match tokio::task::spawn_blocking(move || encode_snapshot(&snapshot)).await {
                    Ok(encoded) => encoded,
                    Err(e) => return tracing::error!(%branch, error = %e, "snapshot not encoded"),
                };
            let bytes = encoded.body.len();
            match journal.save_snapshot(branch.as_str(), encoded).await {
                Ok(()) => {
                    crate::metrics::snapshot_saved(started.elapsed());
                    tracing::info!(%branch, position, bytes, "snapshot saved");
                }
                Err(e) => tracing::warn!(%branch, error = %e, "snapshot not saved"),
            }
        }
    }
}
