//! The Postgres journal: the chain's store of record, shared by every replica.
//!
//! One writer task group-commits: it takes every append pending, and commits them in one
//! transaction of a handful of statements whatever the batch size (compare-and-set of the
//! stream heads, one position range per branch, one multi-row insert of the events). The
//! statements go out together and the batch commits in two round trips when, as nearly
//! always, every key is new and every stream where its append expects it; otherwise the batch
//! is rolled back and retried statement by statement. A conflicted append fails alone; a
//! failed or timed-out batch fails every append in it with `Unavailable`, drops its
//! connection and the next batch takes a fresh one from the pool.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Transaction,
};
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row, Statement};

use super::leases::Fences;
use super::{
    AppendRequest, CommitFeed, Committed, Decoded, Journal, JournalError, Outcome, Pending,
    SavedSnapshot, StoredEvent, StoredKey,
};
use std::sync::Arc;

mod embedded {
    refinery::embed_migrations!("../migrations/postgres");
}

const MAX_BATCH: usize = 1024;

/// The advisory lock replicas take to migrate the schema and to manage partitions, one at a
/// time.
const SCHEMA_LOCK: i64 = 0x7261_696c; // "rail"

/// The Postgres journal. Cheap to share behind an `Arc`.
pub struct PostgresJournal {
    pool: Pool,
    appends: mpsc::UnboundedSender<Pending>,
    timeout: Duration,
}

fn unavailable(e: impl std::fmt::Display) -> JournalError {
    JournalError::Unavailable(e.to_string())
}

/// The first day of the month `months` after the one holding `day`.
fn month_start(day: NaiveDate, months: i32) -> NaiveDate {
    let index = day.year() * 12 + day.month0() as i32 + months;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
        .expect("a valid month")
}

/// The partition holding the month that starts on `month`.
fn partition_name(month: NaiveDate) -> String {
    format!("events_{:04}_{:02}", month.year(), month.month())
}

/// The month a partition of ours holds, from its name (`events_YYYY_MM`).
fn partition_month(name: &str) -> Option<NaiveDate> {
    let (year, month) = name.strip_prefix("events_")?.split_once('_')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

/// Creates the monthly partition holding `month` unless it exists.
async fn ensure_partition(client: &Object, month: NaiveDate) -> Result<(), tokio_postgres::Error> {
    let next = month_start(month, 1);
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF events \
         FOR VALUES FROM ('{month}') TO ('{next}')",
        partition_name(month)
    );
    client.batch_execute(&sql).await
}

/// Creates this month's partition and the next two months' unless they exist.
async fn ensure_partitions_ahead(client: &Object) -> Result<(), tokio_postgres::Error> {
    let today = Utc::now().date_naive();
    for m in 0..3 {
        ensure_partition(client, month_start(today, m)).await?;
    }
    Ok(())
}

/// A pool of connections whose every wait is bounded by `timeout`.
fn connection_pool(
    config: tokio_postgres::Config,
    timeout: Duration,
    size: usize,
) -> Result<Pool, JournalError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(unavailable)
}

/// The writer's connections look streams, heads and keys up by their primary keys, a batch
/// of rows at a time (`unnest` joins). Left to itself the planner hashes the whole `streams`
/// table for each batch while its statistics still call it small (seen: every batch reading
/// every stream, Postgres busier than the engine); these sessions always take the index.
fn writer_config(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    let own = "-c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off";
    let options = match config.get_options() {
        Some(given) if !given.is_empty() => format!("{given} {own}"),
        _ => own.to_owned(),
    };
    config.options(&options);
    config
}

impl PostgresJournal {
    /// Connects, applies the migrations, makes this month's and the next two months'
    /// partitions, and starts the writer. `timeout` bounds every wait on the database.
    pub async fn connect(url: &str, timeout: Duration) -> Result<(Self, CommitFeed), JournalError> {
        Self::connect_fenced(url, timeout, None).await
    }

    /// As [`connect`](Self::connect); with `fences`, every append is refused (`Fenced`)
    /// unless this replica holds its branch's lease at the branch's current epoch, checked
    /// in the commit transaction.
    pub async fn connect_fenced(
        url: &str,
        timeout: Duration,
        fences: Option<Arc<Fences>>,
    ) -> Result<(Self, CommitFeed), JournalError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(unavailable)?;
        config.connect_timeout(timeout);
        let pool = connection_pool(config.clone(), timeout, 8)?;
        let mut client = pool.get().await.map_err(unavailable)?;
        // Replicas starting together migrate one at a time; the lock is the session's, so a
        // replica that dies holding it releases it with its connection.
        client
            .execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])
            .await
            .map_err(unavailable)?;
        let migrated = async {
            embedded::migrations::runner()
                .run_async(&mut **client)
                .await
                .map_err(unavailable)?;
            ensure_partitions_ahead(&client).await.map_err(unavailable)
        }
        .await;
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK])
            .await;
        migrated?;
        unlocked.map_err(unavailable)?;
        drop(client);

        let (appends, rx) = mpsc::unbounded_channel();
        let (feed_tx, feed) = mpsc::unbounded_channel();
        // The writer has a thread and connections of its own: group commits never wait behind
        // the engine's other work, nor reads behind commits.
        let writer = Writer {
            pool: connection_pool(writer_config(config), timeout, 2)?,
            conn: None,
            timeout,
            partitions: BTreeSet::new(),
            fences,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(unavailable)?;
        std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || runtime.block_on(writer.run(rx, feed_tx)))
            .map_err(unavailable)?;
        Ok((
            Self {
                pool,
                appends,
                timeout,
            },
            feed,
        ))
    }

    pub(super) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, JournalError> {
        let work = async {
            let client = self.pool.get().await.map_err(unavailable)?;
            let stmt = client.prepare_cached(sql).await.map_err(unavailable)?;
            client.query(&stmt, params).await.map_err(unavailable)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| unavailable("timed out"))?
    }
}

impl PostgresJournal {
    /// Monthly upkeep, one replica at a time (the others skip it): creates the partitions of
    /// the next months, then drops every month that ended on or before `keep_from` and holds
    /// nothing recovery still reads: no event of an order still open, and no configuration
    /// event its branch's snapshot does not already hold. Returns the partitions dropped.
    ///
    /// Orders closed in a dropped month can no longer be read back; stream heads and
    /// positions are kept, so nothing appended later can reuse a dropped (stream, seq).
    pub async fn maintain_partitions(
        &self,
        keep_from: Option<NaiveDate>,
    ) -> Result<Vec<String>, JournalError> {
        let work = async {
            let mut client = self.pool.get().await.map_err(unavailable)?;
            let locked: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&SCHEMA_LOCK])
                .await
                .map_err(unavailable)?
                .get(0);
            if !locked {
                return Ok(Vec::new());
            }
            let result = async {
                ensure_partitions_ahead(&client).await?;
                match keep_from {
                    Some(keep_from) => drop_old_partitions(&mut client, keep_from).await,
                    None => Ok(Vec::new()),
                }
            }
            .await
            .map_err(unavailable);
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK])
                .await
                .map_err(unavailable)?;
            result
        };
        // Detaching waits for the writer's transaction in progress: allow a few of them.
        tokio::time::timeout(self.timeout * 4, work)
            .await
            .map_err(|_| unavailable("timed out"))?
    }
}

/// Drops the partitions that `maintain_partitions` may drop.
async fn drop_old_partitions(
    client: &mut Object,
    keep_from: NaiveDate,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass ORDER BY 1",
            &[],
        )
        .await?;
    let mut dropped = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        // Only partitions of ours, named from a month (which also makes the name safe to
        // put in a statement).
        let Some(month) = partition_month(&name) else {
            continue;
        };
        if month_start(month, 1) > keep_from || partition_name(month) != name {
            continue;
        }
        let needed: bool = client
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {name} e JOIN streams s ON s.stream = e.stream \
                       WHERE NOT s.closed AND e.stream NOT LIKE 'branch/%') \
                     OR EXISTS (SELECT 1 FROM {name} e WHERE e.stream LIKE 'branch/%' \
                       AND e.position > COALESCE( \
                         (SELECT n.position FROM snapshots n WHERE n.branch = e.branch), 0))"
                ),
                &[],
            )
            .await?
            .get(0);
        if needed {
            tracing::info!(partition = %name, "old month kept: recovery still reads it");
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(&format!(
            "ALTER TABLE events DETACH PARTITION {name}; DROP TABLE {name}"
        ))
        .await?;
        tx.commit().await?;
        tracing::info!(partition = %name, "old month dropped");
        dropped.push(name);
    }
    Ok(dropped)
}

/// The kind of event `events_orders_opened` indexes.
const ORDER_OPENED: &str = "order_opened";

const COLUMNS: &str = "e.stream, e.seq, e.branch, e.position, e.kind, e.body, e.at";

fn row_event(row: &tokio_postgres::Row) -> StoredEvent {
    StoredEvent {
        stream: row.get(0),
        seq: row.get::<_, i64>(1) as u64,
        branch: row.get(2),
        position: row.get::<_, i64>(3) as u64,
        kind: row.get(4),
        body: row.get(5),
        at: row.get(6),
        decoded: Decoded::default(),
    }
}

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// The stream's last seq once an append is stored.
fn last_seq(r: &AppendRequest) -> i64 {
    (r.expected_seq + r.events.len() as u64) as i64
}

/// The idempotency key of each keyed append, as the columns the keys' statements unnest.
struct KeyColumns<'a> {
    branch: Vec<&'a str>,
    key: Vec<&'a str>,
    fingerprint: Vec<&'a str>,
    stream: Vec<&'a str>,
    seq: Vec<i64>,
}

impl<'a> KeyColumns<'a> {
    fn of(requests: impl Iterator<Item = &'a AppendRequest>) -> Self {
        let mut c = Self {
            branch: Vec::new(),
            key: Vec::new(),
            fingerprint: Vec::new(),
            stream: Vec::new(),
            seq: Vec::new(),
        };
        for r in requests {
            let Some(k) = &r.idempotency else { continue };
            c.branch.push(&r.branch);
            c.key.push(&k.key);
            c.fingerprint.push(&k.fingerprint);
            c.stream.push(&r.stream);
            c.seq.push(last_seq(r));
        }
        c
    }

    /// `(branch, key, fingerprint, stream, seq)`.
    fn params(&self) -> [Param<'_>; 5] {
        [
            &self.branch,
            &self.key,
            &self.fingerprint,
            &self.stream,
            &self.seq,
        ]
    }
}

/// The streams of a batch's appends as the statements that move them on unnest: existing
/// streams (compare-and-set from `expected`) or new ones (`branch` set, `expected` unused).
struct StreamColumns<'a> {
    stream: Vec<&'a str>,
    branch: Vec<&'a str>,
    expected: Vec<i64>,
    seq: Vec<i64>,
    closes: Vec<bool>,
}

impl<'a> StreamColumns<'a> {
    /// The streams that exist (an append expecting a seq) and the new ones.
    fn of(requests: impl Iterator<Item = &'a AppendRequest>) -> (Self, Self) {
        let empty = || Self {
            stream: Vec::new(),
            branch: Vec::new(),
            expected: Vec::new(),
            seq: Vec::new(),
            closes: Vec::new(),
        };
        let (mut old, mut new) = (empty(), empty());
        for r in requests {
            let c = if r.expected_seq > 0 {
                &mut old
            } else {
                &mut new
            };
            c.stream.push(&r.stream);
            c.branch.push(&r.branch);
            c.expected.push(r.expected_seq as i64);
            c.seq.push(last_seq(r));
            c.closes.push(r.closes_stream);
        }
        (old, new)
    }

    /// `(stream, expected, new last seq, closes)`: existing streams.
    fn params(&self) -> [Param<'_>; 4] {
        [&self.stream, &self.expected, &self.seq, &self.closes]
    }

    /// `(stream, branch, last seq, closes)`: new streams.
    fn new_params(&self) -> [Param<'_>; 4] {
        [&self.stream, &self.branch, &self.seq, &self.closes]
    }
}

/// Declares one statement of the commit twice: as the pipelined path sends it (it counts the
/// rows stored) and with a `RETURNING` clause for the checked path (it reads back which).
macro_rules! statement {
    ($counted:ident, $returning:ident = $sql:literal returning $columns:literal) => {
        const $counted: &str = $sql;
        const $returning: &str = concat!($sql, " RETURNING ", $columns);
    };
}

// The idempotency keys; a key stored before stays as it is.
statement!(STORE_KEYS, STORE_KEYS_RETURNING =
    "INSERT INTO idempotency_keys (branch, key, fingerprint, stream, seq) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
     ON CONFLICT (branch, key) DO NOTHING"
    returning "branch, key");

// Compare-and-set of the existing streams.
statement!(MOVE_STREAMS, MOVE_STREAMS_RETURNING =
    "UPDATE streams s SET last_seq = r.new_seq, closed = r.closes \
     FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bool[]) \
       AS r(stream, expected, new_seq, closes) \
     WHERE s.stream = r.stream AND s.last_seq = r.expected"
    returning "s.stream");

// The new streams; a stream another append opened first stays as it is.
statement!(OPEN_STREAMS, OPEN_STREAMS_RETURNING =
    "INSERT INTO streams (stream, branch, last_seq, closed) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bool[]) \
     ON CONFLICT (stream) DO NOTHING"
    returning "stream");

/// Moves each branch's head on by its range's size; returns the new heads.
const TAKE_POSITIONS: &str = "INSERT INTO branch_heads (branch, position) \
     SELECT * FROM unnest($1::text[], $2::bigint[]) \
     ON CONFLICT (branch) DO UPDATE SET position = branch_heads.position + excluded.position \
     RETURNING branch, position";

/// The pipelined path's events: each event's position counted back from its branch's new head
/// (`back`: how many of the batch's events of that branch come after it).
const INSERT_EVENTS_FROM_HEADS: &str =
    "INSERT INTO events (branch, position, stream, seq, kind, body, at) \
     SELECT t.b, h.position - t.back, t.s, t.q, t.k, t.body::jsonb, t.at \
     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], \
       $6::text[], $7::timestamptz[]) AS t(b, back, s, q, k, body, at) \
     JOIN branch_heads h ON h.branch = t.b";

/// The checked path's events, at the positions it read back from the heads.
const INSERT_EVENTS: &str = "INSERT INTO events (branch, position, stream, seq, kind, body, at) \
     SELECT b, p, s, q, k, body::jsonb, at FROM unnest($1::text[], $2::bigint[], \
       $3::text[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[]) \
       AS t(b, p, s, q, k, body, at)";

/// The batch's branches whose lease row still has the epoch this replica holds, share-locked
/// until the commit: a replica taking a lease waits for this transaction, then moves the epoch.
const CHECK_FENCES: &str = "SELECT l.branch, l.epoch FROM branch_leases l \
     JOIN unnest($1::text[], $2::bigint[]) AS f(branch, epoch) \
       ON l.branch = f.branch AND l.epoch = f.epoch \
     FOR SHARE OF l";

/// Each branch and epoch of a batch's appends once (an append decided in an earlier term of
/// this replica carries that term's epoch).
struct FenceColumns {
    branch: Vec<String>,
    epoch: Vec<i64>,
}

impl FenceColumns {
    fn of<'a>(pending: impl Iterator<Item = &'a Pending>) -> Self {
        let pairs: BTreeSet<(&str, i64)> = pending
            .map(|p| {
                let epoch = p.request.epoch.map_or(0, |e| e as i64);
                (p.request.branch.as_str(), epoch)
            })
            .collect();
        let (branch, epoch) = pairs.into_iter().map(|(b, e)| (b.to_owned(), e)).unzip();
        Self { branch, epoch }
    }

    fn params(&self) -> [Param<'_>; 2] {
        [&self.branch, &self.epoch]
    }

    /// The branches whose epoch is still current, checked and locked in the transaction.
    async fn check(&self, conn: &Object) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = conn.prepare_cached(CHECK_FENCES).await?;
        conn.query(&statement, &self.params()).await
    }
}

struct Writer {
    pool: Pool,
    conn: Option<Object>,
    timeout: Duration,
    /// Months known to have a partition.
    partitions: BTreeSet<NaiveDate>,
    /// With replicas: the epochs this replica holds, checked in every commit.
    fences: Option<Arc<Fences>>,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Pending>,
        feed: mpsc::UnboundedSender<Committed>,
    ) {
        let mut deferred: VecDeque<Pending> = VecDeque::new();
        loop {
            let first = match deferred.pop_front() {
                Some(p) => p,
                None => match rx.recv().await {
                    Some(p) => p,
                    None => return,
                },
            };
            // One append per stream (and per idempotency key) in a batch; a second waits for
            // the next batch.
            let key = |r: &AppendRequest| {
                r.idempotency
                    .as_ref()
                    .map(|k| (r.branch.clone(), k.key.clone()))
            };
            let mut streams = HashSet::from([first.request.stream.clone()]);
            let mut keys: HashSet<(String, String)> = key(&first.request).into_iter().collect();
            let mut batch = vec![first];
            let mut later = VecDeque::new();
            while batch.len() < MAX_BATCH {
                let Some(next) = deferred.pop_front().or_else(|| rx.try_recv().ok()) else {
                    break;
                };
                let next_key = key(&next.request);
                let key_free = next_key.as_ref().is_none_or(|k| !keys.contains(k));
                if key_free && streams.insert(next.request.stream.clone()) {
                    keys.extend(next_key);
                    batch.push(next);
                } else {
                    later.push_back(next);
                }
            }
            later.extend(deferred.drain(..));
            deferred = later;

            let batch = self.refuse_unheld(batch, &feed);
            if batch.is_empty() {
                continue;
            }
            crate::metrics::journal_batch(batch.len());
            let mut batch = batch;
            let outcome = tokio::time::timeout(self.timeout, self.commit(&mut batch)).await;
            let outcome = match outcome {
                Ok(Ok(results)) => Ok(results),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(unavailable("the database did not answer in time")),
            };
            if outcome.is_err() {
                // The connection may be wedged or mid-statement: it leaves the pool.
                if let Some(conn) = self.conn.take() {
                    drop(deadpool_postgres::Object::take(conn));
                }
            }
            super::settle(batch, outcome, &feed);
        }
    }

    /// Refuses at once the appends to branches whose lease this replica does not hold, or not
    /// at the epoch the append was decided under.
    fn refuse_unheld(
        &self,
        batch: Vec<Pending>,
        feed: &mpsc::UnboundedSender<Committed>,
    ) -> Vec<Pending> {
        let Some(fences) = &self.fences else {
            return batch;
        };
        let (held, unheld): (Vec<Pending>, Vec<Pending>) = batch.into_iter().partition(|p| {
            let held = fences.epoch(&p.request.branch);
            held.is_some() && held == p.request.epoch
        });
        let refusals = unheld
            .iter()
            .map(|p| Err(JournalError::Fenced(p.request.branch.clone())))
            .collect();
        super::settle(unheld, Ok(refusals), feed);
        held
    }

    /// Commits a batch in one transaction; the events move from the requests into the answers.
    async fn commit(&mut self, pending: &mut [Pending]) -> Result<Vec<Outcome>, JournalError> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.get().await.map_err(unavailable)?);
        }
        let months: BTreeSet<NaiveDate> = pending
            .iter()
            .flat_map(|p| p.request.events.iter())
            .map(|e| month_start(e.at.date_naive(), 0))
            .collect();
        let conn = self.conn.as_mut().expect("connected above");
        for month in months.difference(&self.partitions.clone()) {
            ensure_partition(conn, *month).await.map_err(unavailable)?;
            self.partitions.insert(*month);
        }
        let fence = self
            .fences
            .as_ref()
            .map(|_| FenceColumns::of(pending.iter()));
        if let Some(outcomes) = commit_pipelined(conn, pending, fence.as_ref()).await? {
            return Ok(outcomes);
        }
        commit_checked(conn, pending, fence.as_ref()).await
    }
}

/// The rows of a batch's events, in the batch's order.
#[derive(Default)]
struct EventRows<'a> {
    branch: Vec<&'a str>,
    stream: Vec<&'a str>,
    seq: Vec<i64>,
    kind: Vec<&'a str>,
    body: Vec<&'a str>,
    at: Vec<DateTime<Utc>>,
}

impl<'a> EventRows<'a> {
    fn of(pending: impl Iterator<Item = &'a Pending>) -> Self {
        let mut rows = Self::default();
        for p in pending {
            rows.push(p);
        }
        rows
    }

    fn push(&mut self, p: &'a Pending) {
        let r = &p.request;
        for (i, (e, text)) in r.events.iter().zip(&p.bodies).enumerate() {
            self.branch.push(&r.branch);
            self.stream.push(&r.stream);
            self.seq.push((r.expected_seq + 1 + i as u64) as i64);
            self.kind.push(&e.kind);
            self.body.push(text);
            // Postgres keeps microseconds; the answer holds what it keeps.
            self.at
                .push(DateTime::from_timestamp_micros(e.at.timestamp_micros()).unwrap_or_default());
        }
    }

    /// `(branch, position column, stream, seq, kind, body, at)`: the two events statements
    /// differ in how they are told the positions.
    fn params<'b>(&'b self, position: Param<'b>) -> [Param<'b>; 7] {
        [
            &self.branch,
            position,
            &self.stream,
            &self.seq,
            &self.kind,
            &self.body,
            &self.at,
        ]
    }

    /// For each row, how many of the batch's events of its branch come after it.
    fn back(&self, ranges: &BranchRanges) -> Vec<i64> {
        let mut seen: HashMap<&str, i64> = HashMap::new();
        self.branch
            .iter()
            .map(|b| {
                let n = seen.entry(b).or_default();
                *n += 1;
                ranges.size[b] - *n
            })
            .collect()
    }

    /// Each row's position: its branch's range handed out in the batch's order.
    fn positions(&self, firsts: &HashMap<String, i64>) -> Vec<i64> {
        let mut next: HashMap<&str, i64> = HashMap::new();
        self.branch
            .iter()
            .map(|b| {
                let next = next.entry(*b).or_insert_with(|| firsts[*b]);
                let position = *next;
                *next += 1;
                position
            })
            .collect()
    }

    /// The rows as stored, at `position`, to hand back to their appends.
    fn stored(self, position: Vec<i64>) -> StoredRows {
        StoredRows {
            seq: self.seq,
            at: self.at,
            position,
            next: 0,
        }
    }
}

/// One dense range of positions per branch, one position an event row: taken by moving the
/// branch's head on by the range's size, under the head's row lock.
struct BranchRanges<'a> {
    size: HashMap<&'a str, i64>,
    branch: Vec<&'a str>,
    sizes: Vec<i64>,
}

impl<'a> BranchRanges<'a> {
    fn of(rows: &EventRows<'a>) -> Self {
        let mut size: HashMap<&str, i64> = HashMap::new();
        for &b in &rows.branch {
            *size.entry(b).or_default() += 1;
        }
        let branch: Vec<&str> = size.keys().copied().collect();
        let sizes = branch.iter().map(|b| size[b]).collect();
        Self {
            size,
            branch,
            sizes,
        }
    }

    /// `(branch, size)`.
    fn params(&self) -> [Param<'_>; 2] {
        [&self.branch, &self.sizes]
    }

    /// The first position of each branch's range, from the new heads [`TAKE_POSITIONS`]
    /// returned.
    fn firsts(&self, heads: &[Row]) -> HashMap<String, i64> {
        heads
            .iter()
            .map(|row| {
                let branch: String = row.get(0);
                let head: i64 = row.get(1);
                let first = head - self.size[branch.as_str()] + 1;
                (branch, first)
            })
            .collect()
    }
}

/// A committed batch's event rows, with the positions they were stored at, handed back to the
/// appends in the batch's order.
struct StoredRows {
    seq: Vec<i64>,
    at: Vec<DateTime<Utc>>,
    position: Vec<i64>,
    /// The first row of the next append.
    next: usize,
}

impl StoredRows {
    /// The events of a stored append, taken from it, with the seqs, times and positions they
    /// were stored with.
    fn take(&mut self, r: &mut AppendRequest) -> Committed {
        let events: Vec<StoredEvent> = std::mem::take(&mut r.events)
            .into_iter()
            .map(|e| {
                let row = self.next;
                self.next += 1;
                StoredEvent {
                    stream: r.stream.clone(),
                    seq: self.seq[row] as u64,
                    branch: r.branch.clone(),
                    position: self.position[row] as u64,
                    kind: e.kind,
                    body: e.body,
                    at: self.at[row],
                    decoded: e.decoded,
                }
            })
            .collect();
        events.into()
    }
}

/// The usual batch in two round trips: every statement goes out at once (pipelined), each
/// expecting every idempotency key to be new and every stream to be where its append expects
/// it; then COMMIT. When a statement finds otherwise (a retried key, a stream moved on), the
/// transaction is rolled back and `None` returned: [`commit_checked`] then sorts the batch
/// out statement by statement.
async fn commit_pipelined(
    conn: &Object,
    pending: &mut [Pending],
    fence: Option<&FenceColumns>,
) -> Result<Option<Vec<Outcome>>, JournalError> {
    let statements = PipelinedStatements::prepare(conn).await?;
    let batch = PipelinedBatch::of(pending);
    let answers = batch.send(conn, &statements, fence).await;
    let Some(heads) = answers.all_stored(&batch, fence)? else {
        conn.batch_execute("ROLLBACK").await.map_err(unavailable)?;
        return Ok(None);
    };
    conn.batch_execute("COMMIT").await.map_err(unavailable)?;

    let PipelinedBatch { rows, ranges, .. } = batch;
    let position = rows.positions(&ranges.firsts(&heads));
    let mut stored = rows.stored(position);
    Ok(Some(
        pending
            .iter_mut()
            .map(|p| Ok(stored.take(&mut p.request)))
            .collect(),
    ))
}

/// The pipelined path's statements, prepared together.
struct PipelinedStatements {
    keys: Statement,
    moves: Statement,
    opens: Statement,
    heads: Statement,
    events: Statement,
}

impl PipelinedStatements {
    async fn prepare(conn: &Object) -> Result<Self, JournalError> {
        let (keys, moves, opens, heads, events) = tokio::try_join!(
            conn.prepare_cached(STORE_KEYS),
            conn.prepare_cached(MOVE_STREAMS),
            conn.prepare_cached(OPEN_STREAMS),
            conn.prepare_cached(TAKE_POSITIONS),
            conn.prepare_cached(INSERT_EVENTS_FROM_HEADS),
        )
        .map_err(unavailable)?;
        Ok(Self {
            keys,
            moves,
            opens,
            heads,
            events,
        })
    }
}

/// The columns of every statement of the pipelined path, all of the batch's appends in each.
struct PipelinedBatch<'a> {
    keyed: KeyColumns<'a>,
    old: StreamColumns<'a>,
    new: StreamColumns<'a>,
    rows: EventRows<'a>,
    ranges: BranchRanges<'a>,
    back: Vec<i64>,
}

impl<'a> PipelinedBatch<'a> {
    fn of(pending: &'a [Pending]) -> Self {
        let requests = pending.iter().map(|p| &p.request);
        let keyed = KeyColumns::of(requests.clone());
        let (old, new) = StreamColumns::of(requests);
        let rows = EventRows::of(pending.iter());
        let ranges = BranchRanges::of(&rows);
        let back = rows.back(&ranges);
        Self {
            keyed,
            old,
            new,
            rows,
            ranges,
            back,
        }
    }

    /// Sends BEGIN and every statement together: `biased` polls each in turn, so each goes
    /// out before the next, and none waits for another's answer.
    async fn send(
        &self,
        conn: &Object,
        statements: &PipelinedStatements,
        fence: Option<&FenceColumns>,
    ) -> PipelinedAnswers {
        let keys = self.keyed.params();
        let old = self.old.params();
        let new = self.new.new_params();
        let heads = self.ranges.params();
        let events = self.rows.params(&self.back);
        let fenced = async {
            match fence {
                Some(fence) => fence.check(conn).await.map(Some),
                None => Ok(None),
            }
        };
        let (begun, fenced, stored_keys, moved, opened, head_rows, inserted) = tokio::join!(
            biased;
            conn.batch_execute("BEGIN"),
            fenced,
            execute_unless_empty(conn, &statements.keys, self.keyed.stream.len(), &keys),
            execute_unless_empty(conn, &statements.moves, self.old.stream.len(), &old),
            execute_unless_empty(conn, &statements.opens, self.new.stream.len(), &new),
            conn.query(&statements.heads, &heads),
            conn.execute(&statements.events, &events),
        );
        PipelinedAnswers {
            begun,
            fenced,
            stored_keys,
            moved,
            opened,
            head_rows,
            inserted,
        }
    }
}

/// Executes a pipelined statement, unless it has no rows to send.
async fn execute_unless_empty(
    conn: &Object,
    statement: &Statement,
    rows: usize,
    params: &[Param<'_>],
) -> Result<u64, tokio_postgres::Error> {
    if rows == 0 {
        return Ok(0);
    }
    conn.execute(statement, params).await
}

/// What each pipelined statement answered.
struct PipelinedAnswers {
    begun: Result<(), tokio_postgres::Error>,
    fenced: Result<Option<Vec<Row>>, tokio_postgres::Error>,
    stored_keys: Result<u64, tokio_postgres::Error>,
    moved: Result<u64, tokio_postgres::Error>,
    opened: Result<u64, tokio_postgres::Error>,
    head_rows: Result<Vec<Row>, tokio_postgres::Error>,
    inserted: Result<u64, tokio_postgres::Error>,
}

impl PipelinedAnswers {
    /// The new heads when every statement stored every row it was sent; `None` when one found
    /// a key or a stream other than expected, and the transaction is to be rolled back.
    fn all_stored(
        self,
        batch: &PipelinedBatch,
        fence: Option<&FenceColumns>,
    ) -> Result<Option<Vec<Row>>, JournalError> {
        // A stale append's events may collide with the stored ones (same stream, seq and
        // time): that is a conflict for the checked path to report, not a failure of the
        // batch. Once a statement fails the ones after it fail too, as the transaction is
        // aborted.
        let failed = [
            self.begun.as_ref().err(),
            self.fenced.as_ref().err(),
            self.stored_keys.as_ref().err(),
            self.moved.as_ref().err(),
            self.opened.as_ref().err(),
            self.head_rows.as_ref().err(),
            self.inserted.as_ref().err(),
        ];
        if let Some(e) = failed.into_iter().flatten().next() {
            if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
                return Err(unavailable(e));
            }
            return Ok(None);
        }
        let fenced = self.fenced.map_err(unavailable)?;
        let (stored_keys, moved, opened, head_rows, inserted) = (
            self.stored_keys.map_err(unavailable)?,
            self.moved.map_err(unavailable)?,
            self.opened.map_err(unavailable)?,
            self.head_rows.map_err(unavailable)?,
            self.inserted.map_err(unavailable)?,
        );
        let all_held = match (fenced, fence) {
            (Some(rows), Some(fence)) => rows.len() == fence.branch.len(),
            _ => true,
        };
        let all_stored = all_held
            && stored_keys == batch.keyed.stream.len() as u64
            && moved == batch.old.stream.len() as u64
            && opened == batch.new.stream.len() as u64
            && inserted == batch.rows.seq.len() as u64;
        Ok(all_stored.then_some(head_rows))
    }
}

/// Commits a batch statement by statement, each deciding on what the ones before found: the
/// way through retried idempotency keys and streams moved on.
async fn commit_checked(
    conn: &mut Object,
    pending: &mut [Pending],
    fence: Option<&FenceColumns>,
) -> Result<Vec<Outcome>, JournalError> {
    let tx = conn.transaction().await.map_err(unavailable)?;
    // The fence first: an append under an epoch that is no longer its branch's goes no further.
    let held: Option<HashSet<(String, i64)>> = match fence {
        Some(fence) => {
            let statement = tx.prepare_cached(CHECK_FENCES).await.map_err(unavailable)?;
            let rows = tx
                .query(&statement, &fence.params())
                .await
                .map_err(unavailable)?;
            Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        }
        None => None,
    };
    let fenced = |r: &AppendRequest| {
        let epoch = r.epoch.map_or(0, |e| e as i64);
        held.as_ref()
            .is_some_and(|h| !h.contains(&(r.branch.clone(), epoch)))
    };
    let batch: Vec<&AppendRequest> = pending
        .iter()
        .map(|p| &p.request)
        .filter(|r| !fenced(r))
        .collect();
    // Idempotency keys next: an append whose key another stored first goes no further.
    let keys = store_keys(&tx, &batch).await?;
    let won = move_streams(&tx, batch.iter().copied().filter(|r| !keys.lost(r))).await?;
    let rows = EventRows::of(pending.iter().filter(|p| won.contains(&p.request.stream)));
    let position = take_positions(&tx, &rows).await?;
    insert_events(&tx, &rows, &position).await?;
    drop_orphan_keys(&tx, &batch, &keys, &won).await?;
    let actual = lost_stream_heads(&tx, &batch, &won).await?;
    tx.commit().await.map_err(unavailable)?;

    let mut stored = rows.stored(position);
    let mut answer = |r: &mut AppendRequest| {
        if fenced(r) {
            return Err(JournalError::Fenced(r.branch.clone()));
        }
        if keys.lost(r) {
            let key = r.idempotency.as_ref().map(|k| k.key.clone());
            return Err(JournalError::DuplicateKey(key.unwrap_or_default()));
        }
        if !won.contains(&r.stream) {
            return Err(JournalError::Conflict {
                stream: r.stream.clone(),
                expected: r.expected_seq,
                actual: actual.get(&r.stream).copied().unwrap_or(0),
            });
        }
        Ok(stored.take(r))
    };
    Ok(pending.iter_mut().map(|p| answer(&mut p.request)).collect())
}

/// Prepares and sends one of the checked path's statements, unless it has no rows to send;
/// returns the rows it returned.
async fn query_unless_empty(
    tx: &Transaction<'_>,
    sql: &str,
    rows: usize,
    params: &[Param<'_>],
) -> Result<Vec<Row>, JournalError> {
    if rows == 0 {
        return Ok(Vec::new());
    }
    let statement = tx.prepare_cached(sql).await.map_err(unavailable)?;
    tx.query(&statement, params).await.map_err(unavailable)
}

/// The idempotency keys the checked path stored: an append whose key is not among them lost
/// it to an append stored before.
struct StoredKeys(HashSet<(String, String)>);

impl StoredKeys {
    fn lost(&self, r: &AppendRequest) -> bool {
        r.idempotency
            .as_ref()
            .is_some_and(|k| !self.0.contains(&(r.branch.clone(), k.key.clone())))
    }
}

/// Stores the batch's idempotency keys.
async fn store_keys(
    tx: &Transaction<'_>,
    batch: &[&AppendRequest],
) -> Result<StoredKeys, JournalError> {
    let keyed = KeyColumns::of(batch.iter().copied());
    let rows = query_unless_empty(
        tx,
        STORE_KEYS_RETURNING,
        keyed.stream.len(),
        &keyed.params(),
    )
    .await?;
    Ok(StoredKeys(
        rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
    ))
}

/// Compare-and-set of every stream head, existing streams then new ones; returns the streams
/// that moved on.
async fn move_streams<'a>(
    tx: &Transaction<'_>,
    requests: impl Iterator<Item = &'a AppendRequest>,
) -> Result<HashSet<String>, JournalError> {
    let (old, new) = StreamColumns::of(requests);
    let moved =
        query_unless_empty(tx, MOVE_STREAMS_RETURNING, old.stream.len(), &old.params()).await?;
    let opened = query_unless_empty(
        tx,
        OPEN_STREAMS_RETURNING,
        new.stream.len(),
        &new.new_params(),
    )
    .await?;
    Ok(moved.iter().chain(&opened).map(|row| row.get(0)).collect())
}

/// Takes each branch's range of positions; returns each row's position.
async fn take_positions(
    tx: &Transaction<'_>,
    rows: &EventRows<'_>,
) -> Result<Vec<i64>, JournalError> {
    let ranges = BranchRanges::of(rows);
    let heads =
        query_unless_empty(tx, TAKE_POSITIONS, ranges.branch.len(), &ranges.params()).await?;
    Ok(rows.positions(&ranges.firsts(&heads)))
}

/// Every event of the batch in one insert.
async fn insert_events(
    tx: &Transaction<'_>,
    rows: &EventRows<'_>,
    position: &[i64],
) -> Result<(), JournalError> {
    if position.is_empty() {
        return Ok(());
    }
    let statement = tx
        .prepare_cached(INSERT_EVENTS)
        .await
        .map_err(unavailable)?;
    tx.execute(&statement, &rows.params(&position))
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Deletes the keys of appends that lost their stream: they are not theirs to keep.
async fn drop_orphan_keys(
    tx: &Transaction<'_>,
    batch: &[&AppendRequest],
    keys: &StoredKeys,
    won: &HashSet<String>,
) -> Result<(), JournalError> {
    let (orphan_branches, orphan_keys): (Vec<&str>, Vec<&str>) = batch
        .iter()
        .filter(|r| !won.contains(&r.stream) && !keys.lost(r))
        .filter_map(|r| {
            r.idempotency
                .as_ref()
                .map(|k| (r.branch.as_str(), k.key.as_str()))
        })
        .unzip();
    if orphan_keys.is_empty() {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM idempotency_keys k USING unnest($1::text[], $2::text[]) AS o(branch, key) \
         WHERE k.branch = o.branch AND k.key = o.key",
        &[&orphan_branches, &orphan_keys],
    )
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Where the streams that lost really are, for their appends' conflicts.
async fn lost_stream_heads(
    tx: &Transaction<'_>,
    batch: &[&AppendRequest],
    won: &HashSet<String>,
) -> Result<HashMap<String, u64>, JournalError> {
    let lost: Vec<&str> = batch
        .iter()
        .filter(|r| !won.contains(&r.stream))
        .map(|r| r.stream.as_str())
        .collect();
    if lost.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = tx
        .query(
            "SELECT stream, last_seq FROM streams WHERE stream = ANY($1)",
            &[&lost],
        )
        .await
        .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), row.get::<_, i64>(1) as u64))
        .collect())
}

#[async_trait::async_trait]
impl Journal for PostgresJournal {
    async fn append(&self, request: AppendRequest) -> Result<Committed, JournalError> {
        super::enqueue(&self.appends, request).await
    }

    async fn load_stream(&self, stream: &str) -> Result<Vec<StoredEvent>, JournalError> {
        let sql = format!("SELECT {COLUMNS} FROM events e WHERE e.stream = $1 ORDER BY e.seq");
        Ok(self
            .query(&sql, &[&stream])
            .await?
            .iter()
            .map(row_event)
            .collect())
    }

    async fn load_open(&self, branch: &str) -> Result<Vec<StoredEvent>, JournalError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM streams s JOIN events e ON e.stream = s.stream \
             WHERE s.branch = $1 AND NOT s.closed ORDER BY e.position"
        );
        Ok(self
            .query(&sql, &[&branch])
            .await?
            .iter()
            .map(row_event)
            .collect())
    }

    async fn last_of_kind(
        &self,
        branch: &str,
        kind: &str,
    ) -> Result<Option<StoredEvent>, JournalError> {
        // A branch's last `order_opened` (what recovery asks) has an index of its own, which
        // the planner uses only when the kind is written in the statement.
        let (kind_is, params): (_, &[&(dyn tokio_postgres::types::ToSql + Sync)]) =
            if kind == ORDER_OPENED {
                (format!("'{ORDER_OPENED}'"), &[&branch])
            } else {
                ("$2".to_owned(), &[&branch, &kind])
            };
        let sql = format!(
            "SELECT {COLUMNS} FROM events e WHERE e.branch = $1 AND e.kind = {kind_is} \
             ORDER BY e.position DESC LIMIT 1"
        );
        Ok(self.query(&sql, params).await?.first().map(row_event))
    }

    async fn read_branch(
        &self,
        branch: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events e WHERE e.branch = $1 AND e.position > $2 \
             ORDER BY e.position LIMIT $3"
        );
        let (after, limit) = (after as i64, limit as i64);
        Ok(self
            .query(&sql, &[&branch, &after, &limit])
            .await?
            .iter()
            .map(row_event)
            .collect())
    }

    async fn head(&self, branch: &str) -> Result<u64, JournalError> {
        let sql = "SELECT position FROM branch_heads WHERE branch = $1";
        let rows = self.query(sql, &[&branch]).await?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
    }

    async fn heads(&self) -> Result<HashMap<String, u64>, JournalError> {
        let rows = self
            .query("SELECT branch, position FROM branch_heads", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    async fn branches(&self) -> Result<Vec<String>, JournalError> {
        let sql =
            "SELECT DISTINCT branch FROM streams WHERE stream LIKE 'branch/%' ORDER BY branch";
        Ok(self
            .query(sql, &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn idempotency_key(
        &self,
        branch: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, JournalError> {
        let sql =
            "SELECT fingerprint, stream, seq FROM idempotency_keys WHERE branch = $1 AND key = $2";
        Ok(self
            .query(sql, &[&branch, &key])
            .await?
            .first()
            .map(|r| StoredKey {
                fingerprint: r.get(0),
                stream: r.get(1),
                seq: r.get::<_, i64>(2) as u64,
            }))
    }

    async fn forget_keys(&self, before: DateTime<Utc>) -> Result<u64, JournalError> {
        let work = async {
            let client = self.pool.get().await.map_err(unavailable)?;
            client
                .execute("DELETE FROM idempotency_keys WHERE at < $1", &[&before])
                .await
                .map_err(unavailable)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| unavailable("timed out"))?
    }

    async fn save_snapshot(
        &self,
        branch: &str,
        snapshot: SavedSnapshot,
    ) -> Result<(), JournalError> {
        let sql = "INSERT INTO snapshots (branch, position, body) VALUES ($1, $2, $3) \
                   ON CONFLICT (branch) DO UPDATE \
                     SET position = excluded.position, body = excluded.body, at = now() \
                     WHERE snapshots.position < excluded.position";
        let position = snapshot.position as i64;
        self.query(sql, &[&branch, &position, &snapshot.body])
            .await
            .map(|_| ())
    }

    async fn load_snapshot(&self, branch: &str) -> Result<Option<SavedSnapshot>, JournalError> {
        let sql = "SELECT position, body FROM snapshots WHERE branch = $1";
        Ok(self
            .query(sql, &[&branch])
            .await?
            .first()
            .map(|r| SavedSnapshot {
                position: r.get::<_, i64>(0) as u64,
                body: r.get(1),
            }))
    }

    async fn ping(&self) -> Result<(), JournalError> {
        self.query("SELECT 1", &[]).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let m = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(partition_name(m), "events_2026_03");
        assert_eq!(partition_month("events_2026_03"), Some(m));
        for other in [
            "events_2026_3",
            "events_2026_13",
            "events",
            "events_x_03",
            "other_2026_03",
        ] {
            assert_eq!(partition_month(other), None, "{other}");
        }
    }

    #[test]
    fn months_roll_over_years() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(
            month_start(d, 0),
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
        );
        assert_eq!(
            month_start(d, 2),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        assert_eq!(
            month_start(d, -11),
            NaiveDate::from_ymd_opt(2025, 12, 1).unwrap()
        );
    }
}
