//! The journal: the source of truth. Every change is appended here before it is acknowledged.
//!
//! The trait is what the actors need; each store implements it and passes the same contract
//! tests. Appends from many actors are group-committed by one writer; committed events also go,
//! in commit order, to the commit feed that the branch actors project and publish from.

mod leases;
mod postgres;
mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::event::Event;

pub use leases::{Fences, Lease};
pub use postgres::PostgresJournal;
pub(crate) use sqlite::row_to_event;
pub use sqlite::SqliteJournal;

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: String,
    pub body: Value,
    pub at: DateTime<Utc>,
    /// The domain event the body was written from, handed on to the stored event.
    pub decoded: Decoded,
}

/// The domain event a body holds, when the one who wrote it still has it: the actors that
/// receive a live commit use it instead of decoding the body again. Events read back from the
/// journal have none. Not part of an event's value: it never changes what two events compare.
#[derive(Debug, Clone, Default)]
pub struct Decoded(pub Option<Arc<Event>>);

impl PartialEq for Decoded {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Events for one stream, appended together or not at all.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub branch: String,
    pub stream: String,
    /// The stream's length as the writer knows it; the append fails if the journal disagrees.
    pub expected_seq: u64,
    pub events: Vec<NewEvent>,
    /// The stream ends with these events (a closed order); recovery no longer loads it.
    pub closes_stream: bool,
    /// The client's idempotency key, stored with the append in the same transaction.
    pub idempotency: Option<KeyRecord>,
    /// With replicas: the epoch of the branch's lease under which the writer decided this
    /// append (the fencing token). The journal commits it only while that epoch is the
    /// branch's current one, so an append decided in an earlier term never lands in a later.
    pub epoch: Option<u64>,
}

/// An idempotency key and what the request that first used it looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key: String,
    /// A digest of the request; the same key with another request is refused.
    pub fingerprint: String,
}

/// What a stored idempotency key answers: the request it was first used for, and where in
/// which stream that request's events ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: String,
    pub stream: String,
    pub seq: u64,
}

/// An event as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// `branch/<branch id>` or `order/<order id>`.
    pub stream: String,
    /// The event's place in its stream, from 1.
    pub seq: u64,
    pub branch: String,
    /// The event's place among all of the branch's events, from 1.
    pub position: u64,
    /// The event's type name, the same as the body's `type`.
    pub kind: String,
    /// The event in its storage format (`stored`).
    pub body: Value,
    pub at: DateTime<Utc>,
    pub decoded: Decoded,
}

/// A branch's state as of a position, saved so that recovery reads it and only the events
/// after it. The journal keeps the latest of each branch; what the body holds is the branch
/// actor's business (`stored::BranchSnapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSnapshot {
    /// The branch position the state is as of.
    pub position: u64,
    pub body: Vec<u8>,
}

/// Why the journal could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// Another writer appended to the stream first; reload it.
    #[error("stream {stream} is at seq {actual}, not {expected}")]
    Conflict {
        stream: String,
        expected: u64,
        actual: u64,
    },
    #[error("journal unavailable: {0}")]
    Unavailable(String),
    /// The idempotency key was stored by another append first; read it back.
    #[error("idempotency key {0} is already used")]
    DuplicateKey(String),
    /// This replica does not hold the branch's lease at its current epoch: another owns it.
    #[error("branch {0} is owned by another replica")]
    Fenced(String),
}

/// What the commit feed carries: the events of one append, in commit order. Shared with the
/// append's caller, so the writer copies nothing.
pub type Committed = Arc<[StoredEvent]>;

/// The receiving end of the commit feed; one consumer takes it at start-up.
pub type CommitFeed = mpsc::UnboundedReceiver<Committed>;

/// What a journal's writer answers for one append.
pub(crate) type Outcome = Result<Committed, JournalError>;

/// An append waiting for its journal's writer, with where to send the outcome.
pub(crate) struct Pending {
    pub request: AppendRequest,
    /// Each event's body as JSON text, written by the caller so the writer does not.
    pub bodies: Vec<String>,
    pub reply: oneshot::Sender<Outcome>,
}

/// Hands an append to a journal's single writer and waits for its commit.
pub(crate) async fn enqueue(
    writer: &mpsc::UnboundedSender<Pending>,
    request: AppendRequest,
) -> Result<Committed, JournalError> {
    if request.events.is_empty() {
        return Ok(Arc::from([]));
    }
    let stopped = || JournalError::Unavailable("journal writer stopped".into());
    let bodies = request.events.iter().map(|e| e.body.to_string()).collect();
    let (reply, rx) = oneshot::channel();
    writer
        .send(Pending {
            request,
            bodies,
            reply,
        })
        .map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?
}

/// Answers every append of a committed (or failed) batch, and sends the committed ones to the
/// commit feed in batch order, before their callers hear back.
pub(crate) fn settle(
    batch: Vec<Pending>,
    outcome: Result<Vec<Outcome>, JournalError>,
    feed: &mpsc::UnboundedSender<Committed>,
) {
    match outcome {
        Ok(results) => {
            for (pending, result) in batch.into_iter().zip(results) {
                if let Ok(events) = &result {
                    let _ = feed.send(events.clone());
                }
                let _ = pending.reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "journal batch failed");
            for pending in batch {
                let _ = pending.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Appends through any journal, recording how long the caller waited and what failed.
pub async fn append_recorded(
    journal: &dyn Journal,
    request: AppendRequest,
) -> Result<Committed, JournalError> {
    let started = std::time::Instant::now();
    let span = tracing::debug_span!(
        "journal.append",
        stream = %request.stream,
        events = request.events.len()
    );
    let result = tracing::Instrument::instrument(journal.append(request), span).await;
    crate::metrics::journal_append(started.elapsed());
    match &result {
        Err(JournalError::Conflict { .. }) => crate::metrics::journal_error("conflict"),
        Err(JournalError::Unavailable(_)) => crate::metrics::journal_error("unavailable"),
        Err(JournalError::Fenced(_)) => crate::metrics::journal_error("fenced"),
        Err(JournalError::DuplicateKey(_)) => {}
        Ok(_) => {}
    }
    result
}

/// The store of record.
#[async_trait::async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Appends events to a stream once the journal has them durably.
    async fn append(&self, request: AppendRequest) -> Result<Committed, JournalError>;

    /// Every event of one stream, in order.
    async fn load_stream(&self, stream: &str) -> Result<Vec<StoredEvent>, JournalError>;

    /// Every event of the branch's streams that are not closed, by position.
    async fn load_open(&self, branch: &str) -> Result<Vec<StoredEvent>, JournalError>;

    /// The branch's latest event of a kind.
    async fn last_of_kind(
        &self,
        branch: &str,
        kind: &str,
    ) -> Result<Option<StoredEvent>, JournalError>;

    /// The branch's events after a position, by position, at most `limit`.
    async fn read_branch(
        &self,
        branch: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError>;

    /// The branch's last committed position (0 before its first event).
    async fn head(&self, branch: &str) -> Result<u64, JournalError>;

    /// The branches that have a configuration stream.
    async fn branches(&self) -> Result<Vec<String>, JournalError>;

    /// Every branch's last committed position.
    async fn heads(&self) -> Result<HashMap<String, u64>, JournalError> {
        let mut heads = HashMap::new();
        for branch in self.branches().await? {
            let head = self.head(&branch).await?;
            heads.insert(branch, head);
        }
        Ok(heads)
    }

    /// The record of a branch's idempotency key, if it was used.
    async fn idempotency_key(
        &self,
        branch: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, JournalError>;

    /// Forgets idempotency keys stored before a time; returns how many.
    async fn forget_keys(&self, before: DateTime<Utc>) -> Result<u64, JournalError>;

    /// Keeps a branch's snapshot unless the journal holds one as of a later position.
    async fn save_snapshot(
        &self,
        branch: &str,
        snapshot: SavedSnapshot,
    ) -> Result<(), JournalError>;

    /// The branch's latest snapshot, if one was saved.
    async fn load_snapshot(&self, branch: &str) -> Result<Option<SavedSnapshot>, JournalError>;

    /// Whether the journal answers at all (readiness).
    async fn ping(&self) -> Result<(), JournalError> {
        self.branches().await.map(|_| ())
    }
}
