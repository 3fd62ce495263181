//! The contract every `Journal` keeps, as async functions over `&dyn Journal` (and the commit
//! feed where it matters), so any store can run the same suite. The SQLite journal runs it
//! below, each test on a fresh file.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rail_actors::event::{branch_stream, order_stream};
use rail_actors::ids::{BranchId, OrderId};
use rail_actors::journal::{
    AppendRequest, CommitFeed, Journal, JournalError, KeyRecord, NewEvent, PostgresJournal,
    SavedSnapshot, SqliteJournal, StoredEvent, StoredKey,
};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::task::JoinSet;

mod common;

mod contract {
    use super::*;

    /// How long a feed may take to deliver a commit it owes.
    const FEED_WAIT: Duration = Duration::from_secs(10);
    /// More events than any test appends to a branch.
    const ALL: usize = 100_000;

    /// A point in time with microsecond precision, `n` milliseconds after a fixed start.
    pub fn at(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(1_715_970_000_123_456 + n * 1_000).expect("in range")
    }

    pub fn event(kind: &str, body: Value, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            kind: kind.to_owned(),
            body,
            at,
            decoded: Default::default(),
        }
    }

    pub fn request(
        branch: &str,
        stream: &str,
        expected_seq: u64,
        events: Vec<NewEvent>,
    ) -> AppendRequest {
        AppendRequest {
            branch: branch.to_owned(),
            stream: stream.to_owned(),
            expected_seq,
            events,
            closes_stream: false,
            idempotency: None,
            epoch: None,
        }
    }

    pub fn config_stream(branch: &str) -> String {
        branch_stream(&BranchId::parse(branch).expect("test branch ids are slugs"))
    }

    pub fn new_order_stream() -> String {
        order_stream(&OrderId::new())
    }

    /// `count` events of one kind, numbered in their bodies.
    pub fn events(kind: &str, count: usize) -> Vec<NewEvent> {
        (0..count)
            .map(|i| event(kind, json!({ "n": i }), at(i as i64)))
            .collect()
    }

    pub async fn append(journal: &dyn Journal, request: AppendRequest) -> Vec<StoredEvent> {
        let stream = request.stream.clone();
        journal
            .append(request)
            .await
            .unwrap_or_else(|e| panic!("append to {stream} failed: {e}"))
            .to_vec()
    }

    /// Everything a branch holds, by position.
    pub async fn everything(journal: &dyn Journal, branch: &str) -> Vec<StoredEvent> {
        journal
            .read_branch(branch, 0, ALL)
            .await
            .expect("read_branch")
    }

    fn positions(events: &[StoredEvent]) -> Vec<u64> {
        events.iter().map(|e| e.position).collect()
    }

    /// Checks that a stored event is the appended one, where the journal put it.
    fn assert_stored(stored: &StoredEvent, branch: &str, stream: &str, seq: u64, new: &NewEvent) {
        assert_eq!(stored.branch, branch);
        assert_eq!(stored.stream, stream);
        assert_eq!(stored.seq, seq, "seq in {stream}");
        assert_eq!(stored.kind, new.kind);
        assert_eq!(stored.body, new.body);
        assert_eq!(stored.at, new.at);
    }

    /// Appends number each stream from 1 and each branch's positions densely from 1, however
    /// the appends of two branches interleave.
    pub async fn numbers_streams_and_branches(journal: &dyn Journal) {
        let north_orders = new_order_stream();
        let south_orders = new_order_stream();
        let north_config = config_stream("north");
        let mut expected_position: BTreeMap<&str, u64> = BTreeMap::new();
        let mut expected_seq: BTreeMap<String, u64> = BTreeMap::new();
        let plan = [
            ("north", &north_config, 1),
            ("south", &south_orders, 2),
            ("north", &north_orders, 3),
            ("south", &south_orders, 1),
            ("north", &north_config, 2),
            ("north", &north_orders, 1),
            ("south", &south_orders, 3),
        ];
        for (round, (branch, stream, count)) in plan.into_iter().enumerate() {
            let seq = expected_seq.entry(stream.clone()).or_default();
            let new = events(&format!("kind_{round}"), count);
            let stored = append(journal, request(branch, stream, *seq, new.clone())).await;
            assert_eq!(stored.len(), count);
            let position = expected_position.entry(branch).or_default();
            for (s, n) in stored.iter().zip(&new) {
                *seq += 1;
                *position += 1;
                assert_stored(s, branch, stream, *seq, n);
                assert_eq!(s.position, *position, "positions of {branch} are dense");
            }
        }
        for (branch, last) in expected_position {
            let all = everything(journal, branch).await;
            assert_eq!(positions(&all), (1..=last).collect::<Vec<_>>());
        }
        for (stream, last) in expected_seq {
            let loaded = journal.load_stream(&stream).await.expect("load_stream");
            let seqs: Vec<u64> = loaded.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "seqs of {stream}");
        }
    }

    /// An append that does not know the stream's length fails with a conflict, writes nothing,
    /// takes no position and reaches no one on the feed.
    pub async fn conflict_writes_nothing(journal: &dyn Journal, mut feed: CommitFeed) {
        let stream = new_order_stream();
        let first = append(journal, request("b", &stream, 0, events("opened", 2))).await;

        let other = new_order_stream();
        let stale = [
            (&stream, 0, 2),
            (&stream, 1, 2),
            (&stream, 5, 2),
            (&other, 3, 0),
        ];
        for (s, expected, actual) in stale {
            let mut r = request("b", s, expected, events("late", 2));
            r.closes_stream = true;
            let err = journal
                .append(r)
                .await
                .expect_err("a stale append must fail");
            assert_eq!(
                err,
                JournalError::Conflict {
                    stream: s.clone(),
                    expected,
                    actual,
                }
            );
        }
        assert_eq!(journal.load_stream(&stream).await.unwrap(), first);
        assert!(journal.load_stream(&other).await.unwrap().is_empty());
        assert_eq!(everything(journal, "b").await, first);
        assert_eq!(
            journal.load_open("b").await.unwrap(),
            first,
            "stream stays open"
        );
        assert_eq!(journal.last_of_kind("b", "late").await.unwrap(), None);

        let next = append(journal, request("b", &stream, 2, events("more", 1))).await;
        assert_eq!((next[0].seq, next[0].position), (3, 3), "no gap was left");

        let fed = receive(&mut feed, 2).await;
        assert_eq!(fed, vec![first, next]);
        assert_feed_is_drained(&mut feed).await;
    }

    /// Appends racing on many streams of one branch all succeed and share its positions: a
    /// dense 1..=N, no duplicates, each append's events in order.
    pub async fn concurrent_streams_share_positions(journal: Arc<dyn Journal>) {
        const TASKS: usize = 200;
        let mut tasks = JoinSet::new();
        for i in 0..TASKS {
            let journal = journal.clone();
            tasks.spawn(async move {
                let branch = if i % 5 == 0 { "quiet" } else { "busy" };
                let stream = new_order_stream();
                let new = events(&format!("task_{i}"), i % 3 + 1);
                let stored = append(journal.as_ref(), request(branch, &stream, 0, new)).await;
                (branch, stream, stored)
            });
        }
        let mut by_branch: BTreeMap<&str, Vec<StoredEvent>> = BTreeMap::new();
        let mut done = 0;
        while let Some(joined) = tasks.join_next().await {
            let (branch, stream, stored) = joined.expect("append task");
            let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>());
            assert!(stored
                .iter()
                .all(|e| e.stream == stream && e.branch == branch));
            assert!(
                stored.windows(2).all(|w| w[0].position < w[1].position),
                "an append's events keep their order"
            );
            by_branch.entry(branch).or_default().extend(stored);
            done += 1;
        }
        assert_eq!(done, TASKS);
        for (branch, mut stored) in by_branch {
            stored.sort_by_key(|e| e.position);
            let expected: Vec<u64> = (1..=stored.len() as u64).collect();
            assert_eq!(positions(&stored), expected, "positions of {branch}");
            assert_eq!(everything(journal.as_ref(), branch).await, stored);
        }
    }

    /// Writers racing on one stream from the same length: exactly one wins, and the stream
    /// holds its events and no one else's.
    pub async fn one_winner_per_stream_length(journal: Arc<dyn Journal>) {
        const WRITERS: u64 = 32;
        let stream = new_order_stream();
        append(
            journal.as_ref(),
            request("b", &stream, 0, events("opened", 1)),
        )
        .await;
        let mut tasks = JoinSet::new();
        for writer in 0..WRITERS {
            let journal = journal.clone();
            let stream = stream.clone();
            tasks.spawn(async move {
                let new = (0..2)
                    .map(|i| event("added", json!({ "writer": writer, "i": i }), at(i)))
                    .collect();
                (writer, journal.append(request("b", &stream, 1, new)).await)
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("append task") {
                (writer, Ok(stored)) => {
                    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
                    winners.push(writer);
                }
                (_, Err(e)) => assert_eq!(
                    e,
                    JournalError::Conflict {
                        stream: stream.clone(),
                        expected: 1,
                        actual: 3,
                    }
                ),
            }
        }
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        let loaded = journal.load_stream(&stream).await.unwrap();
        assert_eq!(loaded.len(), 3);
        for e in &loaded[1..] {
            assert_eq!(e.body["writer"], json!(winners[0]));
        }
        assert_eq!(
            positions(&everything(journal.as_ref(), "b").await),
            [1, 2, 3]
        );
    }

    /// A stream loads in seq order with its bodies and times as appended: any JSON, and time
    /// to the microsecond.
    pub async fn load_stream_keeps_bodies_and_times(journal: &dyn Journal) {
        let stream = new_order_stream();
        let bodies = [
            json!({"type": "order_opened", "ticket_no": 7, "nested": {"a": [1, 2, {"b": null}]}}),
            json!({"text": "Crème brûlée – \"extra\" \\ 🍮\n\t\u{1}", "empty": ""}),
            json!({"big": u64::MAX, "small": i64::MIN, "half": 1.5, "yes": true}),
            json!([]),
            json!("just a string"),
            json!(null),
        ];
        let times = [
            at(0),
            at(1),
            DateTime::from_timestamp_micros(-1_234_567).unwrap(),
            DateTime::from_timestamp_micros(4_102_444_800_000_001).unwrap(),
            at(3),
            at(3),
        ];
        let new: Vec<NewEvent> = bodies
            .iter()
            .zip(times)
            .enumerate()
            .map(|(i, (body, at))| event(&format!("kind_{i}"), body.clone(), at))
            .collect();
        // Three appends, with another stream of the branch written in between.
        let mut returned = Vec::new();
        for chunk in new.chunks(2) {
            let seq = returned.len() as u64;
            returned.extend(append(journal, request("b", &stream, seq, chunk.to_vec())).await);
            append(
                journal,
                request("b", &new_order_stream(), 0, events("x", 1)),
            )
            .await;
        }
        let loaded = journal.load_stream(&stream).await.unwrap();
        assert_eq!(loaded, returned);
        for (i, (stored, new)) in loaded.iter().zip(&new).enumerate() {
            assert_stored(stored, "b", &stream, i as u64 + 1, new);
        }
        assert!(loaded.windows(2).all(|w| w[0].position < w[1].position));
        assert!(journal.load_stream("order/none").await.unwrap().is_empty());

        // Finer than a microsecond is not kept, but the time stays within one.
        let fine = DateTime::from_timestamp(1_715_970_000, 123_456_789).unwrap();
        let stream = new_order_stream();
        append(
            journal,
            request("b", &stream, 0, vec![event("x", json!({}), fine)]),
        )
        .await;
        let loaded = journal.load_stream(&stream).await.unwrap();
        let drift = (loaded[0].at - fine).num_nanoseconds().unwrap().abs();
        assert!(drift < 1_000, "{} is {drift}ns from {fine}", loaded[0].at);
        assert_eq!(loaded[0].at.timestamp_subsec_nanos() % 1_000, 0);
    }

    /// Recovery loads the branch's open streams, by position, and nothing of closed ones.
    pub async fn load_open_skips_closed_streams(journal: &dyn Journal) {
        let config = config_stream("b");
        let open = new_order_stream();
        let closed_later = new_order_stream();
        let closed_at_once = new_order_stream();
        let elsewhere = new_order_stream();

        let mut wanted = Vec::new();
        wanted.extend(append(journal, request("b", &config, 0, events("configured", 1))).await);
        wanted.extend(append(journal, request("b", &open, 0, events("opened", 2))).await);
        append(journal, request("b", &closed_later, 0, events("opened", 2))).await;
        append(journal, request("c", &elsewhere, 0, events("opened", 1))).await;
        wanted.extend(append(journal, request("b", &open, 2, events("added", 1))).await);
        let mut close = request("b", &closed_later, 2, events("closed", 1));
        close.closes_stream = true;
        append(journal, close).await;
        let mut once = request("b", &closed_at_once, 0, events("opened_and_closed", 2));
        once.closes_stream = true;
        append(journal, once).await;
        wanted.extend(append(journal, request("b", &config, 1, events("eighty_six", 1))).await);

        assert_eq!(journal.load_open("b").await.unwrap(), wanted);
        let c = journal.load_open("c").await.unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].stream, elsewhere);
        assert!(journal.load_open("nowhere").await.unwrap().is_empty());
        // Closed streams are still in the journal.
        assert_eq!(journal.load_stream(&closed_later).await.unwrap().len(), 3);
        assert_eq!(everything(journal, "b").await.len(), 10);
    }

    /// The latest event of a kind in a branch, closed streams included.
    pub async fn last_of_kind_finds_the_latest(journal: &dyn Journal) {
        let first = new_order_stream();
        let second = new_order_stream();
        append(journal, request("b", &first, 0, events("order_opened", 1))).await;
        append(journal, request("b", &first, 1, events("lines_added", 1))).await;
        let mut open_and_close = request("b", &second, 0, events("order_opened", 1));
        open_and_close
            .events
            .push(event("order_closed", json!({}), at(9)));
        open_and_close.closes_stream = true;
        let latest = append(journal, open_and_close).await.remove(0);
        append(journal, request("b", &first, 2, events("lines_added", 1))).await;
        append(
            journal,
            request("c", &new_order_stream(), 0, events("order_opened", 3)),
        )
        .await;

        let found = journal.last_of_kind("b", "order_opened").await.unwrap();
        assert_eq!(found, Some(latest));
        let added = journal.last_of_kind("b", "lines_added").await.unwrap();
        assert_eq!(added.map(|e| (e.seq, e.position)), Some((3, 5)));
        let c = journal.last_of_kind("c", "order_opened").await.unwrap();
        assert_eq!(c.map(|e| (e.seq, e.position)), Some((3, 3)));
        assert_eq!(journal.last_of_kind("b", "nothing").await.unwrap(), None);
        assert_eq!(
            journal
                .last_of_kind("nowhere", "order_opened")
                .await
                .unwrap(),
            None
        );
    }

    /// A branch reads in pages after a position, closed streams included.
    pub async fn read_branch_pages(journal: &dyn Journal) {
        let config = config_stream("b");
        append(journal, request("b", &config, 0, events("configured", 1))).await;
        for i in 0..3 {
            let stream = new_order_stream();
            let mut r = request("b", &stream, 0, events("order", 3));
            r.closes_stream = i == 1;
            append(journal, r).await;
            append(
                journal,
                request("c", &new_order_stream(), 0, events("noise", 2)),
            )
            .await;
        }
        let all = everything(journal, "b").await;
        assert_eq!(positions(&all), (1..=10).collect::<Vec<_>>());
        assert!(all.iter().all(|e| e.branch == "b"));

        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = journal.read_branch("b", after, 4).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 4);
            assert_eq!(page[0].position, after + 1);
            after = page.last().unwrap().position;
            paged.extend(page);
        }
        assert_eq!(paged, all);
        assert_eq!(
            positions(&journal.read_branch("b", 8, 4).await.unwrap()),
            [9, 10]
        );
        assert!(journal.read_branch("b", 10, 4).await.unwrap().is_empty());
        assert!(journal.read_branch("b", 3, 0).await.unwrap().is_empty());
        assert!(journal
            .read_branch("nowhere", 0, 4)
            .await
            .unwrap()
            .is_empty());
    }

    /// Branches are the ones with a configuration stream, and only those.
    pub async fn branches_have_config_streams(journal: &dyn Journal) {
        assert!(journal.branches().await.unwrap().is_empty());
        append(
            journal,
            request("orphan", &new_order_stream(), 0, events("x", 1)),
        )
        .await;
        assert!(journal.branches().await.unwrap().is_empty());

        append(
            journal,
            request("beta", &config_stream("beta"), 0, events("c", 1)),
        )
        .await;
        append(
            journal,
            request("alpha", &config_stream("alpha"), 0, events("c", 1)),
        )
        .await;
        append(
            journal,
            request("alpha", &config_stream("alpha"), 1, events("c", 1)),
        )
        .await;
        append(
            journal,
            request("beta", &new_order_stream(), 0, events("x", 1)),
        )
        .await;
        let branches: BTreeSet<String> = journal.branches().await.unwrap().into_iter().collect();
        let expected: BTreeSet<String> = ["alpha", "beta"].map(String::from).into();
        assert_eq!(branches, expected);
        assert_eq!(
            journal.branches().await.unwrap().len(),
            2,
            "each branch once"
        );
    }

    /// What one open of a journal wrote, the next finds, and appends carry on from it.
    pub async fn reopen_keeps_everything<F, Fut>(open: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (Arc<dyn Journal>, CommitFeed)>,
    {
        let config = config_stream("b");
        let open_order = new_order_stream();
        let closed_order = new_order_stream();
        let (journal, _feed) = open().await;
        append(
            journal.as_ref(),
            request("b", &config, 0, events("configured", 1)),
        )
        .await;
        append(
            journal.as_ref(),
            request("b", &open_order, 0, events("order_opened", 2)),
        )
        .await;
        let mut close = request("b", &closed_order, 0, events("order_opened", 2));
        close.closes_stream = true;
        append(journal.as_ref(), close).await;
        append(
            journal.as_ref(),
            request("c", &config_stream("c"), 0, events("x", 1)),
        )
        .await;
        let before = everything(journal.as_ref(), "b").await;
        let open_before = journal.load_open("b").await.unwrap();
        drop(journal);

        let (journal, mut feed) = open().await;
        let journal = journal.as_ref();
        assert_eq!(everything(journal, "b").await, before);
        assert_eq!(journal.load_open("b").await.unwrap(), open_before);
        assert_eq!(journal.load_stream(&closed_order).await.unwrap().len(), 2);
        let branches: BTreeSet<String> = journal.branches().await.unwrap().into_iter().collect();
        assert_eq!(branches, ["b", "c"].map(String::from).into());
        let last = journal.last_of_kind("b", "order_opened").await.unwrap();
        assert_eq!(last.map(|e| e.position), Some(5));

        let stale = journal
            .append(request("b", &open_order, 0, events("late", 1)))
            .await;
        assert!(matches!(
            stale,
            Err(JournalError::Conflict { actual: 2, .. })
        ));
        let next = append(journal, request("b", &open_order, 2, events("added", 1))).await;
        assert_eq!((next[0].seq, next[0].position), (3, 6));
        let other = append(
            journal,
            request("c", &config_stream("c"), 1, events("x", 1)),
        )
        .await;
        assert_eq!((other[0].seq, other[0].position), (2, 2));
        assert_eq!(receive(&mut feed, 2).await, vec![next, other]);
        assert_feed_is_drained(&mut feed).await;
    }

    /// A branch's latest snapshot is kept, per branch; an older one never replaces it, and it
    /// survives a reopen.
    pub async fn snapshots_keep_the_latest<F, Fut>(open: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (Arc<dyn Journal>, CommitFeed)>,
    {
        let snapshot = |position: u64, body: &[u8]| SavedSnapshot {
            position,
            body: body.to_vec(),
        };
        let (journal, _feed) = open().await;
        assert_eq!(journal.load_snapshot("b").await.unwrap(), None);
        journal
            .save_snapshot("b", snapshot(10, b"ten"))
            .await
            .unwrap();
        journal
            .save_snapshot("c", snapshot(3, b"three"))
            .await
            .unwrap();
        assert_eq!(
            journal.load_snapshot("b").await.unwrap(),
            Some(snapshot(10, b"ten"))
        );
        journal
            .save_snapshot("b", snapshot(5, b"five"))
            .await
            .unwrap();
        journal
            .save_snapshot("b", snapshot(10, b"again"))
            .await
            .unwrap();
        assert_eq!(
            journal.load_snapshot("b").await.unwrap(),
            Some(snapshot(10, b"ten")),
            "an older or equal snapshot replaced a newer one"
        );
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        journal
            .save_snapshot("b", snapshot(20, &big))
            .await
            .unwrap();
        drop(journal);

        let (journal, _feed) = open().await;
        assert_eq!(
            journal.load_snapshot("b").await.unwrap(),
            Some(snapshot(20, &big))
        );
        assert_eq!(
            journal.load_snapshot("c").await.unwrap(),
            Some(snapshot(3, b"three"))
        );
        assert_eq!(journal.load_snapshot("d").await.unwrap(), None);
    }

    /// The feed carries every committed append once, each branch's in position order, and
    /// never one that failed.
    /// A key is stored with its append; a second append with the key writes nothing.
    pub async fn idempotency_keys_are_stored_with_their_append(journal: &dyn Journal) {
        let stream = new_order_stream();
        let key = |k: &str, print: &str| KeyRecord {
            key: k.into(),
            fingerprint: print.into(),
        };
        let mut first = request("b1", &stream, 0, events("order_opened", 2));
        first.idempotency = Some(key("k-1", "aaa"));
        journal.append(first).await.expect("first append");
        let stored = journal
            .idempotency_key("b1", "k-1")
            .await
            .unwrap()
            .expect("key stored");
        assert_eq!(
            stored,
            StoredKey {
                fingerprint: "aaa".into(),
                stream: stream.clone(),
                seq: 2
            }
        );
        assert_eq!(
            journal.idempotency_key("b2", "k-1").await.unwrap(),
            None,
            "scoped by branch"
        );

        let mut again = request("b1", &stream, 2, events("lines_added", 1));
        again.idempotency = Some(key("k-1", "bbb"));
        let refused = journal.append(again).await.unwrap_err();
        assert_eq!(refused, JournalError::DuplicateKey("k-1".into()));
        assert_eq!(
            journal.load_stream(&stream).await.unwrap().len(),
            2,
            "nothing written"
        );

        // A conflicted append does not keep its key.
        let mut stale = request("b1", &stream, 0, events("lines_added", 1));
        stale.idempotency = Some(key("k-2", "ccc"));
        assert!(matches!(
            journal.append(stale).await,
            Err(JournalError::Conflict { .. })
        ));
        assert_eq!(journal.idempotency_key("b1", "k-2").await.unwrap(), None);

        let forgotten = journal
            .forget_keys(Utc::now() - chrono::Duration::days(7))
            .await
            .unwrap();
        assert_eq!(forgotten, 0, "keys live at least as long as asked");
        let forgotten = journal
            .forget_keys(Utc::now() + chrono::Duration::seconds(1))
            .await
            .unwrap();
        assert_eq!(forgotten, 1);
        assert_eq!(journal.idempotency_key("b1", "k-1").await.unwrap(), None);
    }

    pub async fn feed_carries_each_commit_once(journal: Arc<dyn Journal>, mut feed: CommitFeed) {
        const CONTESTED: usize = 10;
        const RIVALS: usize = 5;
        const SOLO: usize = 60;
        let contested: Vec<String> = (0..CONTESTED).map(|_| new_order_stream()).collect();
        let mut tasks = JoinSet::new();
        let mut spawn = |branch: &'static str, stream: String, tag: String, count: usize| {
            let journal = journal.clone();
            tasks.spawn(async move {
                let new = (0..count)
                    .map(|i| event("e", json!({ "tag": tag, "i": i }), at(i as i64)))
                    .collect();
                let result = journal.append(request(branch, &stream, 0, new)).await;
                (tag, result)
            });
        };
        for (s, stream) in contested.iter().enumerate() {
            for r in 0..RIVALS {
                spawn("b", stream.clone(), format!("rival_{s}_{r}"), 2);
            }
        }
        for i in 0..SOLO {
            let branch = if i % 3 == 0 { "c" } else { "b" };
            spawn(branch, new_order_stream(), format!("solo_{i}"), i % 2 + 1);
        }

        let mut committed: BTreeMap<String, Vec<StoredEvent>> = BTreeMap::new();
        let mut refused = BTreeSet::new();
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("append task") {
                (tag, Ok(stored)) => {
                    committed.insert(tag, stored.to_vec());
                }
                (tag, Err(JournalError::Conflict { .. })) => {
                    refused.insert(tag);
                }
                (tag, Err(e)) => panic!("{tag}: {e}"),
            }
        }
        assert_eq!(committed.len(), CONTESTED + SOLO);
        assert_eq!(refused.len(), CONTESTED * (RIVALS - 1));

        let fed = receive(&mut feed, committed.len()).await;
        assert_feed_is_drained(&mut feed).await;
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for batch in &fed {
            let tag = batch[0].body["tag"].as_str().expect("tagged").to_owned();
            assert!(
                !refused.contains(&tag),
                "the feed carried refused append {tag}"
            );
            assert_eq!(Some(batch), committed.get(&tag), "fed as committed");
            assert!(seen.insert(tag.clone()), "{tag} fed twice");
            for e in batch {
                let previous = last.entry(e.branch.clone()).or_default();
                assert_eq!(e.position, *previous + 1, "feed order of {}", e.branch);
                *previous = e.position;
            }
        }
        assert_eq!(seen.len(), committed.len());
    }

    /// Takes `count` commits from the feed, waiting for each a bounded time.
    pub async fn receive(feed: &mut CommitFeed, count: usize) -> Vec<Vec<StoredEvent>> {
        let mut received = Vec::with_capacity(count);
        while received.len() < count {
            let next = tokio::time::timeout(FEED_WAIT, feed.recv())
                .await
                .unwrap_or_else(|_| panic!("feed gave {} of {count} commits", received.len()))
                .expect("feed open");
            received.push(next.to_vec());
        }
        received
    }

    pub async fn assert_feed_is_drained(feed: &mut CommitFeed) {
        let extra = tokio::time::timeout(Duration::from_millis(200), feed.recv()).await;
        assert!(extra.is_err(), "the feed carried more: {extra:?}");
    }
}

/// A SQLite journal in a fresh directory.
struct Sqlite {
    dir: TempDir,
}

impl Sqlite {
    async fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("journal.db")
    }

    async fn open(&self) -> (Arc<dyn Journal>, CommitFeed) {
        let (journal, feed) = SqliteJournal::open(&self.path()).expect("journal opens");
        (Arc::new(journal), feed)
    }
}

/// A fresh database on the Postgres at `TEST_DATABASE_URL` (by default the local one).
struct Postgres {
    url: String,
}

impl Postgres {
    async fn new() -> Self {
        Self {
            url: common::fresh_database().await,
        }
    }

    async fn open(&self) -> (Arc<dyn Journal>, CommitFeed) {
        let (journal, feed) = self.connect().await;
        (journal, feed)
    }

    async fn connect(&self) -> (Arc<PostgresJournal>, CommitFeed) {
        let (journal, feed) = PostgresJournal::connect(&self.url, Duration::from_secs(5))
            .await
            .expect("journal connects");
        (Arc::new(journal), feed)
    }
}

/// The whole contract, run against one store.
macro_rules! contract_suite {
    ($name:ident, $store:ty) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn numbers_streams_and_branches() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::numbers_streams_and_branches(journal.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn conflict_writes_nothing() {
                let (journal, feed) = <$store>::new().await.open().await;
                contract::conflict_writes_nothing(journal.as_ref(), feed).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_streams_share_positions() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::concurrent_streams_share_positions(journal).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_winner_per_stream_length() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::one_winner_per_stream_length(journal).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn load_stream_keeps_bodies_and_times() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::load_stream_keeps_bodies_and_times(journal.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn load_open_skips_closed_streams() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::load_open_skips_closed_streams(journal.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn last_of_kind_finds_the_latest() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::last_of_kind_finds_the_latest(journal.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn read_branch_pages() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::read_branch_pages(journal.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn branches_have_config_streams() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::branches_have_config_streams(journal.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reopen_keeps_everything() {
                let db = <$store>::new().await;
                contract::reopen_keeps_everything(|| db.open()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn snapshots_keep_the_latest() {
                let db = <$store>::new().await;
                contract::snapshots_keep_the_latest(|| db.open()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn idempotency_keys_are_stored_with_their_append() {
                let (journal, _feed) = <$store>::new().await.open().await;
                contract::idempotency_keys_are_stored_with_their_append(journal.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn feed_carries_each_commit_once() {
                let (journal, feed) = <$store>::new().await.open().await;
                contract::feed_carries_each_commit_once(journal, feed).await;
            }
        }
    };
}

contract_suite!(sqlite, Sqlite);
contract_suite!(postgres, Postgres);

/// Retention: old months are dropped only when recovery no longer reads them.
mod postgres_retention {
    use super::contract::{append, event, request};
    use super::*;
    use chrono::NaiveDate;

    fn on(year: i32, month: u32, day: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(year, month, day)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_months_go_once_nothing_needs_them() {
        let db = Postgres::new().await;
        let (journal, _feed) = db.connect().await;
        let j: &dyn Journal = journal.as_ref();
        let config = contract::config_stream("b");
        let (closed, open) = (contract::new_order_stream(), contract::new_order_stream());
        // January: the branch's configuration. February: an order opened and closed.
        // March: an order still open. April: nothing.
        append(
            j,
            request(
                "b",
                &config,
                0,
                vec![event("configured", json!({}), on(2024, 1, 10))],
            ),
        )
        .await;
        let mut close = request(
            "b",
            &closed,
            0,
            vec![
                event("order_opened", json!({}), on(2024, 2, 3)),
                event("order_closed", json!({}), on(2024, 2, 3)),
            ],
        );
        close.closes_stream = true;
        append(j, close).await;
        append(
            j,
            request(
                "b",
                &open,
                0,
                vec![event("order_opened", json!({}), on(2024, 3, 5))],
            ),
        )
        .await;
        let keep_from = Some(NaiveDate::from_ymd_opt(2024, 5, 1).unwrap());

        // Nothing is dropped without a retention, and only February with one: January holds
        // configuration no snapshot has, March an open order.
        assert_eq!(
            journal.maintain_partitions(None).await.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            journal.maintain_partitions(keep_from).await.unwrap(),
            vec!["events_2024_02"]
        );
        assert!(j.load_stream(&closed).await.unwrap().is_empty());
        assert_eq!(j.load_stream(&config).await.unwrap().len(), 1);
        assert_eq!(j.load_open("b").await.unwrap().len(), 2);

        // A snapshot past the configuration frees January; March stays while its order is open.
        j.save_snapshot(
            "b",
            SavedSnapshot {
                position: 3,
                body: b"{}".to_vec(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            journal.maintain_partitions(keep_from).await.unwrap(),
            vec!["events_2024_01"]
        );
        assert_eq!(j.load_stream(&open).await.unwrap().len(), 1);

        // Heads and positions carry on; a dropped stream's seqs are not reused.
        let next = append(j, request("b", &open, 1, contract::events("added", 1))).await;
        assert_eq!((next[0].seq, next[0].position), (2, 5));
        let reused = j
            .append(request(
                "b",
                &closed,
                0,
                contract::events("order_opened", 1),
            ))
            .await;
        assert!(
            matches!(reused, Err(JournalError::Conflict { actual: 2, .. })),
            "{reused:?}"
        );
        // This month and the next two always have partitions.
        let today = Utc::now();
        append(
            j,
            request(
                "c",
                &contract::config_stream("c"),
                0,
                vec![event("x", json!({}), today)],
            ),
        )
        .await;
    }
}

/// Under writes that never pause, the embedded journal's write-ahead log starts over instead
/// of growing with everything ever written (a log that is never reset fills the disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_log_is_reused_under_steady_writes() {
    let store = Sqlite::new().await;
    let (journal, _feed) = store.open().await;
    let body = json!({ "note": "x".repeat(4000) });
    // ~64 MiB of events, appended 64 at a time so that the writer never waits for work.
    let mut written = 0;
    for round in 0..256 {
        let mut appends = JoinSet::new();
        for i in 0..64 {
            let journal = journal.clone();
            let stream = order_stream(&OrderId::new());
            let event = contract::event("note_added", body.clone(), contract::at(round * 64 + i));
            appends.spawn(async move {
                journal
                    .append(contract::request("b", &stream, 0, vec![event]))
                    .await
            });
        }
        while let Some(appended) = appends.join_next().await {
            appended.expect("append task").expect("appended");
            written += 1;
        }
    }
    assert_eq!(written, 256 * 64);
    let wal = std::fs::metadata(store.path().with_extension("db-wal"))
        .expect("the write-ahead log")
        .len();
    assert!(
        wal < 40 << 20,
        "the write-ahead log holds {} MiB after ~64 MiB written",
        wal >> 20
    );
}
