//! Journal benchmark: durable events/s and append latency through the Postgres journal, beside
//! a raw baseline measured in the same run on the same server (batched multi-row inserts from
//! one connection, no engine), and recovery time of 100,000 open lines on both journals.
//!
//! `cargo bench -p rail-actors --bench journal` (Postgres at TEST_DATABASE_URL, by default the
//! local one). `BENCH_SECONDS` sets each phase's length (default 10), `BENCH_ROUNDS` how many
//! times the raw baseline and the journal's closed loop take turns (default 3; medians quoted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rail_actors::branch::{recover, save_snapshot, SNAPSHOT_EVERY};
use rail_actors::event::{branch_stream, order_stream, BranchEvent, Event, OrderEvent};
use rail_actors::ids::{BranchId, ItemId, OrderId, TableId};
use rail_actors::journal::{AppendRequest, Journal, NewEvent, PostgresJournal, SqliteJournal};
use rail_actors::menu::{Branch, BranchConfig};
use rail_actors::order::{NewLine, Order, OrderChange, OrderCommand, OrderSource};
use rail_actors::stored;
use serde_json::json;

const STREAMS: usize = 256;
const EVENTS_PER_APPEND: usize = 2;

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn fresh_database(name: &str) -> String {
    let admin = admin_url();
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("postgres");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

/// A body the size of a real ticket event (~350 bytes).
fn body(i: u64) -> serde_json::Value {
    json!({"type": "ticket_bumped", "order_id": "6f1c2f4e-3f7e-4a55-9b8e-2d5c1d0b7a11",
           "table": "t12", "ticket_id": "0b9f6a52-7b8c-4f0e-9d3a-5e6f7a8b9c0d",
           "station": "grill", "n": i, "note": "no onion, sauce on the side, well done"})
}

/// EVENTS_PER_APPEND ticket events for one stream, as a table actor would append them.
fn ticket_events(branch: &str, stream: String, seq: u64) -> AppendRequest {
    let events = (0..EVENTS_PER_APPEND)
        .map(|i| NewEvent {
            kind: "ticket_bumped".into(),
            body: body(seq + i as u64),
            at: Utc::now(),
            decoded: Default::default(),
        })
        .collect();
    AppendRequest {
        branch: branch.into(),
        stream,
        expected_seq: seq,
        events,
        closes_stream: false,
        idempotency: None,
        epoch: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Closed loop: each of STREAMS writers appends to its own stream as fast as it is answered.
async fn engine_throughput(
    journal: Arc<dyn Journal>,
    seconds: u64,
    round: usize,
) -> (f64, Vec<Duration>) {
    let stop = Instant::now() + Duration::from_secs(seconds);
    let events = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..STREAMS)
        .map(|w| {
            let journal = journal.clone();
            let events = events.clone();
            tokio::spawn(async move {
                let mut seq = 0u64;
                let mut latencies = Vec::new();
                while Instant::now() < stop {
                    let request =
                        ticket_events("bench", format!("order/throughput-{round}-{w}"), seq);
                    let started = Instant::now();
                    journal.append(request).await.expect("append");
                    latencies.push(started.elapsed());
                    seq += EVENTS_PER_APPEND as u64;
                    events.fetch_add(EVENTS_PER_APPEND as u64, Ordering::Relaxed);
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let rate =
        events.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64().max(seconds as f64);
    latencies.sort();
    (rate, latencies)
}

/// Open loop at a fixed event rate: latency of each append as a caller waits for it.
async fn engine_latency_at(
    journal: Arc<dyn Journal>,
    events_per_second: u64,
    seconds: u64,
) -> Vec<Duration> {
    let appends_per_second = events_per_second / EVENTS_PER_APPEND as u64;
    let interval = Duration::from_secs_f64(1.0 / appends_per_second as f64);
    let total = appends_per_second * seconds;
    let seqs: Arc<Vec<AtomicU64>> = Arc::new((0..STREAMS).map(|_| AtomicU64::new(0)).collect());
    let locks: Arc<Vec<tokio::sync::Mutex<()>>> =
        Arc::new((0..STREAMS).map(|_| tokio::sync::Mutex::new(())).collect());
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        ticker.tick().await;
        let (journal, seqs, locks) = (journal.clone(), seqs.clone(), locks.clone());
        tasks.push(tokio::spawn(async move {
            let w = n as usize % STREAMS;
            let _one_writer = locks[w].lock().await;
            let seq = seqs[w].load(Ordering::SeqCst);
            let request = ticket_events("latency", format!("order/latency-{w}"), seq);
            let started = Instant::now();
            journal.append(request).await.expect("append");
            seqs[w].store(seq + EVENTS_PER_APPEND as u64, Ordering::SeqCst);
            started.elapsed()
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    latencies.sort();
    latencies
}

/// The raw baseline: one connection, multi-row inserts of 512 events a transaction, the same
/// rows the journal writes in the closed-loop phase (STREAMS streams taking EVENTS_PER_APPEND
/// events in turn, one branch), with no stream heads, positions or engine around them.
async fn raw_baseline(url: &str, seconds: u64, round: usize) -> f64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let insert = client
        .prepare(
            "INSERT INTO events (branch, position, stream, seq, kind, body, at) \
             SELECT b, p, s, q, k, body::jsonb, at FROM unnest($1::text[], $2::bigint[], \
               $3::text[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[]) \
               AS t(b, p, s, q, k, body, at)",
        )
        .await
        .unwrap();
    let stop = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut position = 0i64;
    while Instant::now() < stop {
        let n = 512;
        let branch = vec!["raw"; n];
        let positions: Vec<i64> = (position + 1..=position + n as i64).collect();
        let appends: Vec<usize> = (0..n)
            .map(|i| (position as usize + i) / EVENTS_PER_APPEND)
            .collect();
        let streams: Vec<String> = appends
            .iter()
            .map(|a| format!("order/raw-{round}-{}", a % STREAMS))
            .collect();
        let seqs: Vec<i64> = positions
            .iter()
            .zip(&appends)
            .map(|(p, a)| {
                let round = (a / STREAMS) as i64;
                let within = (p - 1) % EVENTS_PER_APPEND as i64;
                round * EVENTS_PER_APPEND as i64 + within + 1
            })
            .collect();
        let kinds = vec!["ticket_bumped"; n];
        let bodies: Vec<String> = positions
            .iter()
            .map(|p| body(*p as u64).to_string())
            .collect();
        let at = vec![Utc::now(); n];
        client.batch_execute("BEGIN").await.unwrap();
        client
            .execute(
                &insert,
                &[&branch, &positions, &streams, &seqs, &kinds, &bodies, &at],
            )
            .await
            .unwrap();
        client.batch_execute("COMMIT").await.unwrap();
        position += n as i64;
    }
    position as f64 / started.elapsed().as_secs_f64()
}

fn bench_branch() -> BranchConfig {
    serde_json::from_value(json!({
        "name": "Bench", "stations": [
            {"id": "grill", "name": "Grill"}, {"id": "fryer", "name": "Fryer"},
            {"id": "expo", "name": "Expo", "kind": "expo"}],
        "categories": [{"id": "mains", "name": "Mains", "stations": ["grill"]}],
        "items": [{"id": "burger", "name": "Burger", "category": "mains", "stations": ["grill", "fryer"]},
                  {"id": "steak", "name": "Steak", "category": "mains"}],
        "tables": (0..50).map(|t| json!({"id": format!("t{t}"), "name": format!("Table {t}")})).collect::<Vec<_>>()
    }))
    .unwrap()
}

/// Frames for screens (none watch a bench): the edge writes the real ones.
fn frames() -> rail_actors::event::EventFrames {
    std::sync::Arc::new(|e| format!("{{\"position\":{}}}", e.position).into())
}

/// Configures a bench branch.
async fn configure(journal: &dyn Journal, branch_id: &BranchId) {
    let configured = stored::encode(
        Event::Branch(BranchEvent::BranchConfigured {
            config: bench_branch(),
        }),
        Utc::now(),
    );
    journal
        .append(AppendRequest {
            branch: branch_id.to_string(),
            stream: branch_stream(branch_id),
            expected_seq: 0,
            events: vec![configured],
            closes_stream: false,
            idempotency: None,
            epoch: None,
        })
        .await
        .unwrap();
}

/// Writes open orders `numbers` of 50 lines each (added in rounds of 10, half fired), as the
/// table actors would, from 8 writers; returns the events written.
async fn write_orders(
    journal: &Arc<dyn Journal>,
    branch_id: &BranchId,
    numbers: std::ops::Range<usize>,
) -> u64 {
    let branch = Branch::new(bench_branch()).unwrap();
    let at = Utc::now();
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (journal, branch, branch_id) = (journal.clone(), branch.clone(), branch_id.clone());
            let (numbers, written) = (numbers.clone(), written.clone());
            tokio::spawn(async move {
                for n in numbers.skip(w).step_by(8) {
                    let id = OrderId::new();
                    let table = TableId::parse(format!("t{}", n % 50)).unwrap();
                    let opened = OrderChange::OrderOpened {
                        ticket_no: n as u32 + 1,
                        day: at.date_naive(),
                        guests: Some(4),
                        source: Some(OrderSource::DineIn),
                        external_ref: None,
                        priority: false,
                    };
                    let mut order = Order::opened(id, table.clone(), &opened, at);
                    let mut changes = vec![opened];
                    for round in 0..5 {
                        let lines = (0..10)
                            .map(|i| NewLine {
                                item: ItemId::parse(if i % 2 == 0 { "burger" } else { "steak" })
                                    .unwrap(),
                                quantity: 1,
                                modifiers: vec!["no onion".into()],
                                note: None,
                                seat: Some(i + 1),
                                course: 1 + (round % 2) as u8,
                            })
                            .collect();
                        for c in order
                            .decide(&OrderCommand::AddLines { lines }, &branch, at)
                            .unwrap()
                        {
                            order.apply(&c, at);
                            changes.push(c);
                        }
                    }
                    for c in order
                        .decide(
                            &OrderCommand::Fire {
                                course: Some(1),
                                priority: false,
                            },
                            &branch,
                            at,
                        )
                        .unwrap()
                    {
                        order.apply(&c, at);
                        changes.push(c);
                    }
                    written.fetch_add(changes.len() as u64, Ordering::Relaxed);
                    let events = changes
                        .into_iter()
                        .map(|change| {
                            let event = Event::Order(OrderEvent {
                                order_id: id,
                                table: table.clone(),
                                change,
                            });
                            stored::encode(event, at)
                        })
                        .collect();
                    let request = AppendRequest {
                        branch: branch_id.to_string(),
                        stream: order_stream(&id),
                        expected_seq: 0,
                        events,
                        closes_stream: false,
                        idempotency: None,
                        epoch: None,
                    };
                    journal.append(request).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    written.load(Ordering::Relaxed)
}

/// What a recovery rebuilt and how long it took.
struct Recovered {
    orders: usize,
    lines: usize,
    took: Duration,
    /// Events read after the snapshot (0 without one).
    replayed: u64,
}

async fn timed_recovery(journal: &dyn Journal, branch_id: &BranchId, replayed: u64) -> Recovered {
    let started = Instant::now();
    let recovered = recover(journal, branch_id, &frames()).await.unwrap();
    let took = started.elapsed();
    Recovered {
        orders: recovered.orders.len(),
        lines: recovered.orders.iter().map(|o| o.lines.len()).sum(),
        took,
        replayed,
    }
}

/// 2,000 open orders of 50 lines, recovered two ways: from every event (no snapshot), and
/// from a snapshot followed by about as many events as a branch commits between two
/// snapshots (the slowest a snapshot recovery gets).
async fn recovery(journal: Arc<dyn Journal>) -> (Recovered, Recovered) {
    let full = BranchId::parse("recovery-events").unwrap();
    configure(journal.as_ref(), &full).await;
    write_orders(&journal, &full, 0..2000).await;
    let from_events = timed_recovery(journal.as_ref(), &full, 0).await;

    let snap = BranchId::parse("recovery-snapshot").unwrap();
    configure(journal.as_ref(), &snap).await;
    write_orders(&journal, &snap, 0..1400).await;
    let state = recover(journal.as_ref(), &snap, &frames()).await.unwrap();
    save_snapshot(journal.as_ref(), &snap, &state)
        .await
        .unwrap();
    let after = write_orders(&journal, &snap, 1400..2000).await;
    assert!(after < SNAPSHOT_EVERY, "{after} events after the snapshot");
    let from_snapshot = timed_recovery(journal.as_ref(), &snap, after).await;
    (from_events, from_snapshot)
}

fn print_recovery(journal: &str, (events, snapshot): (Recovered, Recovered)) {
    println!(
        "{journal} recovery from events:   {} open orders, {} lines in {}",
        events.orders,
        events.lines,
        ms(events.took)
    );
    println!(
        "{journal} recovery from snapshot: {} open orders, {} lines in {} ({} events after the snapshot)",
        snapshot.orders,
        snapshot.lines,
        ms(snapshot.took),
        snapshot.replayed
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let url = fresh_database("rail_bench").await;
    let (journal, _feed) = PostgresJournal::connect(&url, Duration::from_secs(5))
        .await
        .unwrap();
    let journal: Arc<dyn Journal> = Arc::new(journal);

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!(
        "journal benchmark, {seconds} s a phase, {STREAMS} writers, {EVENTS_PER_APPEND} events an append"
    );
    // Latency at a steady 5,000 events/s first, before the closed loops below fill the
    // server's buffers and make it checkpoint.
    let latencies = engine_latency_at(journal.clone(), 5000, seconds).await;
    println!(
        "postgres journal at 5,000 events/s: append p50 {} p99 {} max {} ({} appends)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
        latencies.len()
    );

    // The raw baseline (one connection, 512-row inserts of the same rows, no engine) and the
    // journal's closed loop take turns, so the machine's noise falls on both alike.
    let (mut raws, mut rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let raw = raw_baseline(&url, seconds, round).await;
        let (rate, round_latencies) = engine_throughput(journal.clone(), seconds, round).await;
        println!(
            "round {}: raw baseline {raw:>7.0} events/s, postgres journal {rate:>7.0} events/s ({:.0}% of raw)",
            round + 1,
            100.0 * rate / raw
        );
        raws.push(raw);
        rates.push(rate);
        ratios.push(rate / raw);
        latencies.extend(round_latencies);
    }
    latencies.sort();
    println!(
        "median of {rounds}: raw baseline {:.0} events/s, postgres journal {:.0} events/s, {:.0}% of raw; append p50 {} p99 {}",
        median(&mut raws),
        median(&mut rates),
        100.0 * median(&mut ratios),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    print_recovery("postgres", recovery(journal.clone()).await);
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, _feed) = SqliteJournal::open(&dir.path().join("bench.db")).unwrap();
    let sqlite: Arc<dyn Journal> = Arc::new(sqlite);
    let (sqlite_rate, sqlite_latencies) = engine_throughput(sqlite.clone(), seconds, 0).await;
    println!(
        "embedded journal, closed loop: {sqlite_rate:.0} events/s; append p50 {} p99 {}",
        ms(percentile(&sqlite_latencies, 0.5)),
        ms(percentile(&sqlite_latencies, 0.99))
    );
    print_recovery("embedded", recovery(sqlite).await);
}
