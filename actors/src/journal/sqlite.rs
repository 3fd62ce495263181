//! The embedded journal: one SQLite file, no set-up.
//!
//! One writer thread owns the write connection and group-commits: it takes every append that is
//! pending, writes them in one transaction (an append whose stream moved on or whose key was
//! used is refused before it writes, so it fails alone), commits with a full sync, and only
//! then answers. A second thread serves reads
//! from its own connection; WAL mode lets readers run beside the writer.

use std::collections::HashMap;
use std::path::Path;
use std::thread;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::{
    AppendRequest, CommitFeed, Committed, Decoded, Journal, JournalError, Outcome, Pending,
    SavedSnapshot, StoredEvent, StoredKey,
};

const SCHEMA: &str = include_str!("../../../migrations/sqlite/0001_journal.sql");
const MAX_BATCH: usize = 512;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// The SQLite journal. Cheap to share behind an `Arc`.
pub struct SqliteJournal {
    appends: mpsc::UnboundedSender<Pending>,
    reads: mpsc::UnboundedSender<ReadJob>,
    /// Dropped with the journal: the checkpointer then checkpoints once more and stops.
    _checkpoints: std::sync::mpsc::Sender<()>,
}

/// How often the write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Pages in the write-ahead log at which the writer checkpoints it itself (16 MiB of 4 KiB
/// pages), so that the log starts over.
const WRITER_CHECKPOINT_PAGES: u32 = 4096;

/// Bytes a write-ahead log that starts over is cut back to.
const JOURNAL_SIZE_LIMIT: u64 = 64 << 20;

fn unavailable(e: impl std::fmt::Display) -> JournalError {
    JournalError::Unavailable(e.to_string())
}

fn open_connection(path: &Path) -> Result<Connection, JournalError> {
    let conn = Connection::open(path).map_err(unavailable)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;",
    )
    .map_err(unavailable)?;
    Ok(conn)
}

impl SqliteJournal {
    /// Opens (or creates) the journal file and starts its writer and reader threads.
    pub fn open(path: &Path) -> Result<(Self, CommitFeed), JournalError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(unavailable)?;
            }
        }
        let writer = open_connection(path)?;
        writer.execute_batch(SCHEMA).map_err(unavailable)?;
        // Checkpoints copy the log back into the file on a thread of their own, not in the
        // writer's commits. Yet under steady writes such a checkpoint never finds the log
        // copied to its end, and only a complete checkpoint lets the log start over: the
        // writer also checkpoints once the log holds WRITER_CHECKPOINT_PAGES, which is cheap
        // (the other thread has copied nearly all of it) and completes (no write is under way),
        // so the log is reused instead of growing without end; and a log grown past
        // JOURNAL_SIZE_LIMIT is cut back when it starts over.
        writer
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}; \
                 PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};"
            ))
            .map_err(unavailable)?;
        let reader = open_connection(path)?;
        let checkpointer = open_connection(path)?;
        let (checkpoints, stop) = std::sync::mpsc::channel::<()>();
        thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || loop {
                let stopping = matches!(
                    stop.recv_timeout(CHECKPOINT_EVERY),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                );
                // Passive: never waits for the writer or readers; what it leaves, the next
                // round copies.
                if let Err(e) = checkpointer.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                    tracing::warn!(error = %e, "journal checkpoint failed");
                }
                if stopping {
                    return;
                }
            })
            .map_err(unavailable)?;

        let (appends, append_rx) = mpsc::unbounded_channel();
        let (feed_tx, feed) = mpsc::unbounded_channel();
        thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                Writer {
                    conn: writer,
                    positions: HashMap::new(),
                }
                .run(append_rx, feed_tx)
            })
            .map_err(unavailable)?;

        let (reads, mut read_rx) = mpsc::unbounded_channel::<ReadJob>();
        thread::Builder::new()
            .name("journal-reader".into())
            .spawn(move || {
                while let Some(job) = read_rx.blocking_recv() {
                    job(&reader);
                }
            })
            .map_err(unavailable)?;
        Ok((
            Self {
                appends,
                reads,
                _checkpoints: checkpoints,
            },
            feed,
        ))
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, JournalError> {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn).map_err(unavailable));
        });
        self.reads
            .send(job)
            .map_err(|_| unavailable("journal reader stopped"))?;
        rx.await
            .map_err(|_| unavailable("journal reader stopped"))?
    }
}

fn micros(at: &DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let body: String = row.get(5)?;
    let at: i64 = row.get(6)?;
    Ok(StoredEvent {
        stream: row.get(0)?,
        seq: row.get::<_, i64>(1)? as u64,
        branch: row.get(2)?,
        position: row.get::<_, i64>(3)? as u64,
        kind: row.get(4)?,
        body: serde_json::from_str(&body).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
        })?,
        at: DateTime::from_timestamp_micros(at).unwrap_or_default(),
        decoded: Decoded::default(),
    })
}

const COLUMNS: &str = "e.stream, e.seq, e.branch, e.position, e.kind, e.body, e.at";

fn query_events(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, row_to_event)?;
    rows.collect()
}

struct Writer {
    conn: Connection,
    /// Last position of each branch, as committed.
    positions: HashMap<String, u64>,
}

impl Writer {
    fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Pending>,
        feed: mpsc::UnboundedSender<Committed>,
    ) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            crate::metrics::journal_batch(batch.len());
            let outcome = self.commit(&mut batch).map_err(|e| {
                // Positions are re-read from the file after a failed transaction.
                self.positions.clear();
                unavailable(e)
            });
            super::settle(batch, outcome, &feed);
        }
    }

    fn position(&mut self, branch: &str) -> rusqlite::Result<u64> {
        if let Some(p) = self.positions.get(branch) {
            return Ok(*p);
        }
        let p: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(position), 0) FROM events WHERE branch = ?1",
            [branch],
            |r| r.get(0),
        )?;
        self.positions.insert(branch.to_owned(), p as u64);
        Ok(p as u64)
    }

    /// Writes a batch in one transaction. An append refused (its stream moved on, its key was
    /// used) is refused before it writes anything, so the others commit without it; any
    /// other failure rolls the whole batch back. The events move from the requests into the
    /// answers.
    fn commit(&mut self, batch: &mut [Pending]) -> rusqlite::Result<Vec<Outcome>> {
        let mut positions: HashMap<String, u64> = HashMap::new();
        for Pending { request: r, .. } in batch.iter() {
            if !positions.contains_key(&r.branch) {
                let p = self.position(&r.branch)?;
                positions.insert(r.branch.clone(), p);
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(batch.len());
        for Pending {
            request, bodies, ..
        } in batch.iter_mut()
        {
            let actual: u64 = tx
                .prepare_cached("SELECT last_seq FROM streams WHERE stream = ?1")?
                .query_row([&request.stream], |r| r.get::<_, i64>(0))
                .optional()?
                .unwrap_or(0) as u64;
            if actual != request.expected_seq {
                results.push(Err(JournalError::Conflict {
                    stream: request.stream.clone(),
                    expected: request.expected_seq,
                    actual,
                }));
                continue;
            }
            if let Some(record) = &request.idempotency {
                let last = request.expected_seq + request.events.len() as u64;
                // A used key fails this one statement, which then changed nothing.
                let stored = tx
                    .prepare_cached(
                        "INSERT INTO idempotency_keys (branch, key, fingerprint, stream, seq, at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        request.branch,
                        record.key,
                        record.fingerprint,
                        request.stream,
                        last as i64,
                        micros(&Utc::now()),
                    ]);
                match stored {
                    Ok(_) => {}
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        results.push(Err(JournalError::DuplicateKey(record.key.clone())));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut position = positions[&request.branch];
            let last = request.expected_seq + request.events.len() as u64;
            let mut stored = Vec::with_capacity(request.events.len());
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO events (branch, position, stream, seq, kind, body, at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for (i, (e, body)) in std::mem::take(&mut request.events)
                    .into_iter()
                    .zip(bodies.iter())
                    .enumerate()
                {
                    position += 1;
                    let seq = request.expected_seq + 1 + i as u64;
                    insert.execute(params![
                        request.branch,
                        position as i64,
                        request.stream,
                        seq as i64,
                        e.kind,
                        body,
                        micros(&e.at),
                    ])?;
                    stored.push(StoredEvent {
                        stream: request.stream.clone(),
                        seq,
                        branch: request.branch.clone(),
                        position,
                        kind: e.kind,
                        body: e.body,
                        at: DateTime::from_timestamp_micros(micros(&e.at)).unwrap_or_default(),
                        decoded: e.decoded,
                    });
                }
            }
            tx.prepare_cached(
                "INSERT INTO streams (stream, branch, last_seq, closed) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq, \
                 closed = excluded.closed",
            )?
            .execute(params![
                request.stream,
                request.branch,
                last as i64,
                request.closes_stream
            ])?;
            positions.insert(request.branch.clone(), position);
            results.push(Ok(stored.into()));
        }
        tx.commit()?;
        self.positions.extend(positions);
        Ok(results)
    }
}

#[async_trait::async_trait]
impl Journal for SqliteJournal {
    async fn append(&self, request: AppendRequest) -> Result<Committed, JournalError> {
        super::enqueue(&self.appends, request).await
    }

    async fn load_stream(&self, stream: &str) -> Result<Vec<StoredEvent>, JournalError> {
        let stream = stream.to_owned();
        self.read(move |c| {
            query_events(
                c,
                &format!("SELECT {COLUMNS} FROM events e WHERE e.stream = ?1 ORDER BY e.seq"),
                [stream],
            )
        })
        .await
    }

    async fn load_open(&self, branch: &str) -> Result<Vec<StoredEvent>, JournalError> {
        let branch = branch.to_owned();
        self.read(move |c| {
            query_events(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM streams s JOIN events e ON e.stream = s.stream \
                     WHERE s.branch = ?1 AND s.closed = 0 ORDER BY e.position"
                ),
                [branch],
            )
        })
        .await
    }

    async fn last_of_kind(
        &self,
        branch: &str,
        kind: &str,
    ) -> Result<Option<StoredEvent>, JournalError> {
        let (branch, kind) = (branch.to_owned(), kind.to_owned());
        self.read(move |c| {
            let mut events = query_events(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM events e WHERE e.branch = ?1 AND e.kind = ?2 \
                     ORDER BY e.position DESC LIMIT 1"
                ),
                [branch, kind],
            )?;
            Ok(events.pop())
        })
        .await
    }

    async fn read_branch(
        &self,
        branch: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let branch = branch.to_owned();
        self.read(move |c| {
            query_events(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM events e WHERE e.branch = ?1 AND e.position > ?2 \
                     ORDER BY e.position LIMIT ?3"
                ),
                params![branch, after as i64, limit as i64],
            )
        })
        .await
    }

    async fn idempotency_key(
        &self,
        branch: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, JournalError> {
        let (branch, key) = (branch.to_owned(), key.to_owned());
        self.read(move |c| {
            c.query_row(
                "SELECT fingerprint, stream, seq FROM idempotency_keys WHERE branch = ?1 AND key = ?2",
                [branch, key],
                |r| {
                    Ok(StoredKey {
                        fingerprint: r.get(0)?,
                        stream: r.get(1)?,
                        seq: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn forget_keys(&self, before: DateTime<Utc>) -> Result<u64, JournalError> {
        // Deletes go through the writer's file lock like any write; a short one.
        let before = micros(&before);
        self.read(move |c| {
            c.execute("DELETE FROM idempotency_keys WHERE at < ?1", [before])
                .map(|n| n as u64)
        })
        .await
    }

    async fn save_snapshot(
        &self,
        branch: &str,
        snapshot: SavedSnapshot,
    ) -> Result<(), JournalError> {
        // Like the key deletes: a write through the file lock, infrequent.
        let branch = branch.to_owned();
        self.read(move |c| {
            c.execute(
                "INSERT INTO snapshots (branch, position, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (branch) DO UPDATE SET position = excluded.position, \
                   body = excluded.body WHERE snapshots.position < excluded.position",
                params![branch, snapshot.position as i64, snapshot.body],
            )
            .map(|_| ())
        })
        .await
    }

    async fn load_snapshot(&self, branch: &str) -> Result<Option<SavedSnapshot>, JournalError> {
        let branch = branch.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT position, body FROM snapshots WHERE branch = ?1",
                [branch],
                |r| {
                    Ok(SavedSnapshot {
                        position: r.get::<_, i64>(0)? as u64,
                        body: r.get(1)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn head(&self, branch: &str) -> Result<u64, JournalError> {
        let branch = branch.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT COALESCE(MAX(position), 0) FROM events WHERE branch = ?1",
                [branch],
                |r| r.get::<_, i64>(0),
            )
            .map(|p| p as u64)
        })
        .await
    }

    async fn branches(&self) -> Result<Vec<String>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT branch FROM streams WHERE stream LIKE 'branch/%' ORDER BY branch",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }
}
