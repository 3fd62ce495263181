//! Branch leases and the journal's fence, on a real Postgres: a replica writes a branch only
//! while it holds the branch's lease at its current epoch, checked in the commit transaction,
//! whatever the replica believes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rail_actors::event::order_stream;
use rail_actors::ids::OrderId;
use rail_actors::journal::{
    AppendRequest, CommitFeed, Fences, Journal, JournalError, NewEvent, PostgresJournal,
};
use serde_json::json;

mod common;

use common::fresh_database;

const TTL: Duration = Duration::from_secs(30);

/// A replica's journal: its own connections and its own fences.
async fn replica(url: &str) -> (Arc<PostgresJournal>, Arc<Fences>, CommitFeed) {
    let fences = Arc::new(Fences::default());
    let (journal, feed) =
        PostgresJournal::connect_fenced(url, Duration::from_secs(5), Some(fences.clone()))
            .await
            .expect("journal connects");
    (Arc::new(journal), fences, feed)
}

fn order(branch: &str, stream: &str, expected_seq: u64, epoch: Option<u64>) -> AppendRequest {
    AppendRequest {
        branch: branch.to_owned(),
        stream: stream.to_owned(),
        expected_seq,
        events: vec![NewEvent {
            kind: "order_opened".into(),
            body: json!({"n": expected_seq}),
            at: Utc::now(),
            decoded: Default::default(),
        }],
        closes_stream: false,
        idempotency: None,
        epoch,
    }
}

async fn sql(url: &str, statement: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(statement).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_current_epoch_writes() {
    let url = fresh_database().await;
    let (a, a_fences, _a_feed) = replica(&url).await;
    let (b, b_fences, _b_feed) = replica(&url).await;

    // A takes the branch; B cannot while A's lease runs, and cannot write without it.
    let epoch = a.acquire_lease("x", "a", "a:3000", TTL).await.unwrap();
    assert_eq!(epoch, Some(1));
    a_fences.hold("x", 1);
    assert_eq!(
        b.acquire_lease("x", "b", "b:3000", TTL).await.unwrap(),
        None
    );
    let stream = order_stream(&OrderId::new());
    a.append(order("x", &stream, 0, Some(1)))
        .await
        .expect("the owner writes");
    let refused = b.append(order("x", &stream, 1, None)).await;
    assert_eq!(refused.unwrap_err(), JournalError::Fenced("x".into()));

    // A stops (a paused process) past its lease; B takes the branch at the next epoch.
    sql(
        &url,
        "UPDATE branch_leases SET expires_at = now() - interval '1 second'",
    )
    .await;
    let epoch = b.acquire_lease("x", "b", "b:3000", TTL).await.unwrap();
    assert_eq!(epoch, Some(2));
    b_fences.hold("x", 2);

    // A wakes still believing it holds epoch 1: the journal refuses it, in the transaction.
    let stale = a.append(order("x", &stream, 1, Some(1))).await;
    assert_eq!(stale.unwrap_err(), JournalError::Fenced("x".into()));
    // Nor does renewing give A the branch back.
    let held = HashMap::from([("x".to_owned(), 1)]);
    assert!(a.renew_leases("a", &held, TTL).await.unwrap().is_empty());
    // B goes on where A stopped: A's refused append left nothing.
    b.append(order("x", &stream, 1, Some(2)))
        .await
        .expect("the new owner writes");
    let events = b.load_stream(&stream).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(events[1].body, json!({"n": 1}));
    let leases = b.leases().await.unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(
        (leases[0].owner.as_str(), leases[0].epoch, leases[0].live),
        ("b", 2, true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_branch_fails_alone_in_its_batch() {
    let url = fresh_database().await;
    let (a, a_fences, _a_feed) = replica(&url).await;
    let (b, _b_fences, _b_feed) = replica(&url).await;
    for branch in ["x", "y"] {
        let epoch = a
            .acquire_lease(branch, "a", "a:3000", TTL)
            .await
            .unwrap()
            .unwrap();
        a_fences.hold(branch, epoch);
    }
    // Another replica took x behind A's back.
    sql(
        &url,
        "UPDATE branch_leases SET expires_at = now() - interval '1 second' WHERE branch = 'x'",
    )
    .await;
    assert_eq!(
        b.acquire_lease("x", "b", "b:3000", TTL).await.unwrap(),
        Some(2)
    );

    // Appends to both, at once: those to y commit, those to x are refused, whichever batch
    // they share.
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let a = a.clone();
        let branch = if i % 2 == 0 { "x" } else { "y" };
        appends.spawn(async move {
            let stream = order_stream(&OrderId::new());
            (branch, a.append(order(branch, &stream, 0, Some(1))).await)
        });
    }
    while let Some(done) = appends.join_next().await {
        match done.unwrap() {
            ("x", result) => assert_eq!(result.unwrap_err(), JournalError::Fenced("x".into())),
            (_, result) => assert!(result.is_ok(), "{result:?}"),
        }
    }
    assert_eq!(a.head("x").await.unwrap(), 0, "nothing of x was written");
    assert_eq!(a.head("y").await.unwrap(), 10);

    // A lease let go is taken at once; its old holder renews nothing.
    a.release_lease("y", "a", 1).await.unwrap();
    assert_eq!(
        b.acquire_lease("y", "b", "b:3000", TTL).await.unwrap(),
        Some(2)
    );
    let held = HashMap::from([("y".to_owned(), 1)]);
    assert!(a.renew_leases("a", &held, TTL).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_of_an_earlier_term_never_lands_in_a_later_one() {
    let url = fresh_database().await;
    let (a, a_fences, _a_feed) = replica(&url).await;
    assert_eq!(
        a.acquire_lease("x", "a", "a:3000", TTL).await.unwrap(),
        Some(1)
    );
    a_fences.hold("x", 1);
    // The lease ran out and the same replica took it again: a new term, epoch 2.
    sql(
        &url,
        "UPDATE branch_leases SET expires_at = now() - interval '1 second'",
    )
    .await;
    assert_eq!(
        a.acquire_lease("x", "a", "a:3000", TTL).await.unwrap(),
        Some(2)
    );
    a_fences.hold("x", 2);
    // An append decided in the first term (a table actor of the old term, still in flight) is
    // refused; one of the new term commits.
    let stream = order_stream(&OrderId::new());
    let stale = a.append(order("x", &stream, 0, Some(1))).await;
    assert_eq!(stale.unwrap_err(), JournalError::Fenced("x".into()));
    a.append(order("x", &stream, 0, Some(2)))
        .await
        .expect("the new term writes");
    assert_eq!(a.head("x").await.unwrap(), 1);
}
