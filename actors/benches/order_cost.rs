//! The engine's cost of one order, counted so that two builds compare on the same number: a
//! fixed, scripted run in one process (no HTTP, no other process) of one-call counter orders
//! (open, two lines, fire: one append) on the embedded journal, each order's tickets delivered
//! to a subscribed screen of each station and of expo, then bumped and sent by expo.
//!
//! `cargo bench -p rail-actors --bench order_cost -- <orders>` prints the orders run, the
//! process's CPU time per order and the wall time. The count that does not depend on the
//! machine's noise is instructions: `scripts/order-instructions` runs this under valgrind's
//! callgrind at two sizes and prints the instructions per order (the difference over the
//! difference in orders, so set-up and start-up cancel out).

use std::sync::Arc;
use std::time::Instant;

use rail_actors::branch::{OpenOrder, StationCommand, Subscribe};
use rail_actors::ids::{BranchId, ItemId, StationId, TableId};
use rail_actors::journal::SqliteJournal;
use rail_actors::menu::BranchConfig;
use rail_actors::order::{NewLine, OrderCommand};
use rail_actors::station::TicketAction;
use rail_actors::subscriber::{Push, Subscriber, Topic};
use rail_actors::{Engine, EngineOptions};
use tokio::sync::{mpsc, Notify};

fn config() -> BranchConfig {
    serde_json::from_value(serde_json::json!({
        "name": "Bench Kitchen",
        "stations": [
            {"id": "grill", "name": "Grill"}, {"id": "fryer", "name": "Fryer"},
            {"id": "expo", "name": "Expo", "kind": "expo"}
        ],
        "categories": [
            {"id": "mains", "name": "Mains", "stations": ["grill"]},
            {"id": "sides", "name": "Sides", "stations": ["fryer"]}
        ],
        "items": [
            {"id": "burger", "name": "Burger", "category": "mains"},
            {"id": "fries", "name": "Fries", "category": "sides"}
        ],
        "tables": [{"id": "counter", "name": "Counter", "kind": "counter"}]
    }))
    .unwrap()
}

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<Rusage>::zeroed();
    // SAFETY: getrusage writes the struct it is given.
    let usage = unsafe {
        getrusage(0, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: [i64; 2]| t[0] as f64 + t[1] as f64 / 1e6;
    tv(usage.utime) + tv(usage.stime)
}

/// `struct rusage`'s leading user and system times (Linux, 64-bit); the rest is not read.
#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

/// A screen following a topic: it keeps nothing, only counts what it is sent.
fn screen(id: u64) -> (Subscriber, mpsc::Receiver<Push>) {
    let (tx, rx) = mpsc::channel(4096);
    (Subscriber::new(id, tx, Arc::new(Notify::new())), rx)
}

fn main() {
    let orders: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    actix::System::new().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let (journal, feed) = SqliteJournal::open(&dir.path().join("bench.db")).unwrap();
        let options = EngineOptions {
            snapshot_every: 5000,
            threads: 0,
            frames: Arc::new(|e| format!("{{\"position\":{}}}", e.position).into()),
            follow: false,
            relay: None,
            acks: None,
        };
        let engine = Engine::start(Arc::new(journal), feed, options)
            .await
            .unwrap();
        let branch = BranchId::parse("bench").unwrap();
        engine.configure(branch.clone(), config()).await.unwrap();
        let mut screens = Vec::new();
        for (n, station) in ["grill", "fryer", "expo"].into_iter().enumerate() {
            let (subscriber, rx) = screen(n as u64 + 1);
            let topic = Topic::Station(StationId::parse(station).unwrap());
            engine
                .ask(
                    &branch,
                    Subscribe {
                        topic,
                        subscriber,
                        after: None,
                    },
                )
                .await
                .unwrap()
                .unwrap();
            screens.push(rx);
        }
        // Each screen drains what it is sent, as a socket would.
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for mut rx in screens {
            let sent = sent.clone();
            actix::spawn(async move {
                while rx.recv().await.is_some() {
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        let line = |item: &str| NewLine {
            item: ItemId::parse(item).unwrap(),
            quantity: 1,
            modifiers: Vec::new(),
            note: None,
            seat: None,
            course: 1,
        };
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        for _ in 0..orders {
            let order = engine
                .ask(
                    &branch,
                    OpenOrder {
                        table: TableId::parse("counter").unwrap(),
                        guests: None,
                        source: None,
                        external_ref: None,
                        priority: false,
                        then: vec![
                            OrderCommand::AddLines {
                                lines: vec![line("burger"), line("fries")],
                            },
                            OrderCommand::Fire {
                                course: None,
                                priority: false,
                            },
                        ],
                        idempotency: None,
                        span: tracing::Span::none(),
                    },
                )
                .await
                .unwrap()
                .unwrap();
            // The cooks bump their parts, then expo sends the order.
            let mut tickets: Vec<_> = order.tickets.iter().collect();
            tickets.sort_by_key(|t| t.station.as_str() == "expo");
            for t in tickets {
                engine
                    .ask(
                        &branch,
                        StationCommand {
                            station: t.station.clone(),
                            ticket: t.id,
                            action: TicketAction::Bump,
                            idempotency: None,
                            span: tracing::Span::none(),
                        },
                    )
                    .await
                    .unwrap()
                    .unwrap();
            }
        }
        let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed());
        println!(
            "orders {orders}  cpu/order {:.1} us  wall/order {:.1} us  frames to screens {}",
            cpu * 1e6 / orders.max(1) as f64,
            wall.as_secs_f64() * 1e6 / orders.max(1) as f64,
            sent.load(std::sync::atomic::Ordering::Relaxed)
        );
        drop(engine);
    });
}
