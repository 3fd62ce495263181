//! For random kitchen sessions run through the real actors and the SQLite journal, a fresh
//! engine recovered from the journal holds exactly the live engine's open orders and tickets,
//! whether it recovers from every event or from a snapshot and the events after it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rail_actors::branch::{
    ChangeOrder, GetBranchInfo, GetOrder, MergeOrders, OpenOrder, OpenOrders, SetEightySix,
    SetItemCount, StationCommand, StationTickets,
};
use rail_actors::ids::{BranchId, ItemId, OrderId, StationId, TableId};
use rail_actors::journal::SqliteJournal;
use rail_actors::menu::BranchConfig;
use rail_actors::order::{NewLine, Order, OrderCommand, Ticket};
use rail_actors::station::TicketAction;
use rail_actors::CommandError;
use rail_actors::{Engine, EngineOptions};

const ITEMS: [&str; 4] = ["burger", "steak", "fries", "salad"];
const TABLES: [&str; 3] = ["t1", "t2", "counter"];
const STATIONS: [&str; 4] = ["grill", "fryer", "cold", "expo"];

fn config() -> BranchConfig {
    serde_json::from_value(serde_json::json!({
        "name": "Replay Kitchen",
        "stations": [
            {"id": "grill", "name": "Grill"}, {"id": "fryer", "name": "Fryer"},
            {"id": "cold", "name": "Cold"}, {"id": "expo", "name": "Expo", "kind": "expo"}
        ],
        "categories": [
            {"id": "mains", "name": "Mains", "stations": ["grill"]},
            {"id": "sides", "name": "Sides", "stations": ["fryer"]},
            {"id": "starters", "name": "Starters", "stations": ["cold"]}
        ],
        "items": [
            {"id": "burger", "name": "Burger", "category": "mains", "stations": ["grill", "fryer"]},
            {"id": "steak", "name": "Steak", "category": "mains"},
            {"id": "fries", "name": "Fries", "category": "sides"},
            {"id": "salad", "name": "Salad", "category": "starters"}
        ],
        "tables": [
            {"id": "t1", "name": "Table 1"}, {"id": "t2", "name": "Table 2"},
            {"id": "counter", "name": "Counter", "kind": "counter"}
        ]
    }))
    .unwrap()
}

#[derive(Debug, Clone)]
enum Step {
    /// Open at a table: alone (0), with a line (1), or with a line fired (2); a rush or not.
    Open {
        table: usize,
        then: u8,
        item: usize,
        rush: bool,
    },
    Add {
        order: usize,
        item: usize,
        quantity: u16,
        course: u8,
    },
    Void {
        order: usize,
        line: u32,
    },
    Fire {
        order: usize,
        course: Option<u8>,
        rush: bool,
    },
    Rush {
        order: usize,
        on: bool,
    },
    Ticket {
        order: usize,
        ticket: usize,
        action: u8,
    },
    Serve(usize),
    Close(usize),
    EightySix {
        item: usize,
        out: bool,
    },
    /// Merge one open order into another.
    Merge {
        into: usize,
        from: usize,
    },
    /// Move an order to a table.
    Move {
        order: usize,
        table: usize,
    },
    /// Give an item a limited count, or lift it.
    Count {
        item: usize,
        count: Option<u32>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..TABLES.len(), 0u8..3, 0..ITEMS.len(), prop::bool::weighted(0.2))
            .prop_map(|(table, then, item, rush)| Step::Open { table, then, item, rush }),
        4 => (0..8usize, 0..ITEMS.len(), prop_oneof![9 => 1u16..4, 1 => Just(0u16)], 1u8..3)
            .prop_map(|(order, item, quantity, course)| Step::Add { order, item, quantity, course }),
        1 => (0..8usize, 1u32..6).prop_map(|(order, line)| Step::Void { order, line }),
        3 => (0..8usize, proptest::option::of(1u8..3), prop::bool::weighted(0.2))
            .prop_map(|(order, course, rush)| Step::Fire { order, course, rush }),
        1 => (0..8usize, any::<bool>()).prop_map(|(order, on)| Step::Rush { order, on }),
        6 => (0..8usize, 0..8usize, 0u8..3)
            .prop_map(|(order, ticket, action)| Step::Ticket { order, ticket, action }),
        1 => (0..8usize).prop_map(Step::Serve),
        1 => (0..8usize).prop_map(Step::Close),
        1 => (0..ITEMS.len(), any::<bool>()).prop_map(|(item, out)| Step::EightySix { item, out }),
        1 => (0..8usize, 0..8usize).prop_map(|(into, from)| Step::Merge { into, from }),
        1 => (0..8usize, 0..TABLES.len()).prop_map(|(order, table)| Step::Move { order, table }),
        1 => (0..ITEMS.len(), prop::option::weighted(0.8, 0u32..6))
            .prop_map(|(item, count)| Step::Count { item, count }),
    ]
}

/// What screens could see: open orders and each station's live tickets.
#[derive(Debug, PartialEq)]
struct Live {
    orders: Vec<Arc<Order>>,
    stations: Vec<Vec<Ticket>>,
    /// What is left of each limited item.
    stock: Vec<(ItemId, u32)>,
}

fn branch() -> BranchId {
    BranchId::parse("replay").unwrap()
}

async fn live(engine: &Engine) -> Live {
    let b = branch();
    let orders = engine.ask(&b, OpenOrders).await.unwrap().unwrap();
    let mut stations = Vec::new();
    for s in STATIONS {
        let station = StationId::parse(s).unwrap();
        // Stations are fed after commit; wait until the projection has caught up with the orders.
        let expected: Vec<Ticket> = {
            let mut t: Vec<Ticket> = orders
                .iter()
                .flat_map(|o| o.tickets.iter())
                .filter(|t| t.station == station && t.is_live())
                .cloned()
                .collect();
            t.sort_by_key(|t| (!t.priority, t.fired_at, t.ticket_no));
            t
        };
        let mut tickets = Vec::new();
        for _ in 0..200 {
            tickets = engine
                .ask(&b, StationTickets(station.clone()))
                .await
                .unwrap()
                .unwrap();
            if tickets == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            tickets, expected,
            "station {s} projection differs from its orders"
        );
        stations.push(tickets);
    }
    let stock = engine.ask(&b, GetBranchInfo).await.unwrap().unwrap().stock;
    Live {
        orders,
        stations,
        stock,
    }
}

/// What is left of each limited item, as the answers say it must be: a count set, less what
/// the lines added took, plus what their voids gave back; a line refused as sold out asked
/// for more than was left.
#[derive(Default)]
struct Counts(BTreeMap<ItemId, u32>);

impl Counts {
    /// Checks an answer to adding `lines` (of `item`, `quantity` each) and takes them.
    fn added(&mut self, item: &ItemId, quantity: u32, answer: &Result<Arc<Order>, CommandError>) {
        let Some(left) = self.0.get_mut(item) else {
            assert!(
                !matches!(answer, Err(CommandError::SoldOut(..))),
                "{item} is not limited"
            );
            return;
        };
        match answer {
            Ok(_) => {
                assert!(
                    *left >= quantity,
                    "{item}: took {quantity} with {left} left"
                );
                *left -= quantity;
            }
            Err(CommandError::SoldOut(i, _)) => {
                assert_eq!(i, item);
                assert!(
                    *left < quantity,
                    "{item}: refused {quantity} with {left} left"
                );
            }
            Err(_) => {}
        }
    }
}

async fn run(engine: &Engine, script: &[Step]) -> Counts {
    let b = branch();
    let mut counts = Counts::default();
    let mut orders: Vec<OrderId> = Vec::new();
    let pick =
        |orders: &[OrderId], i: usize| (!orders.is_empty()).then(|| orders[i % orders.len()]);
    for step in script {
        let change = |order: OrderId, command: OrderCommand| ChangeOrder {
            order,
            command,
            idempotency: None,
            span: tracing::Span::none(),
        };
        match step.clone() {
            Step::Open {
                table,
                then,
                item,
                rush,
            } => {
                let table = TableId::parse(TABLES[table]).unwrap();
                let line = NewLine {
                    item: ItemId::parse(ITEMS[item]).unwrap(),
                    quantity: 2,
                    modifiers: Vec::new(),
                    note: None,
                    seat: None,
                    course: 1,
                };
                let add = OrderCommand::AddLines { lines: vec![line] };
                let fire = OrderCommand::Fire {
                    course: None,
                    priority: false,
                };
                let adds = then > 0;
                let then = match then {
                    0 => Vec::new(),
                    1 => vec![add],
                    _ => vec![add, fire],
                };
                let answer = engine
                    .ask(
                        &b,
                        OpenOrder {
                            table,
                            guests: None,
                            source: None,
                            external_ref: None,
                            priority: rush,
                            then,
                            idempotency: None,
                            span: tracing::Span::none(),
                        },
                    )
                    .await
                    .unwrap();
                if adds {
                    counts.added(&ItemId::parse(ITEMS[item]).unwrap(), 2, &answer);
                }
                if let Ok(o) = answer {
                    orders.push(o.id);
                }
            }
            Step::Add {
                order,
                item,
                quantity,
                course,
            } => {
                let Some(id) = pick(&orders, order) else {
                    continue;
                };
                let item = ItemId::parse(ITEMS[item]).unwrap();
                let line = NewLine {
                    item: item.clone(),
                    quantity,
                    modifiers: vec!["no onion".into()],
                    note: None,
                    seat: Some(1),
                    course,
                };
                let answer = engine
                    .ask(&b, change(id, OrderCommand::AddLines { lines: vec![line] }))
                    .await
                    .unwrap();
                counts.added(&item, quantity.into(), &answer);
            }
            Step::Void { order, line } => {
                let Some(id) = pick(&orders, order) else {
                    continue;
                };
                let before = engine.ask(&b, GetOrder(id)).await.unwrap();
                let cmd = OrderCommand::VoidLine { line, reason: None };
                let answer = engine.ask(&b, change(id, cmd)).await.unwrap();
                if let (Ok(before), Ok(_)) = (before, answer) {
                    let voided = &before.lines[&line];
                    if let (true, Some(left)) = (voided.counted, counts.0.get_mut(&voided.item)) {
                        *left += u32::from(voided.quantity);
                    }
                }
            }
            Step::Fire {
                order,
                course,
                rush,
            } => {
                let Some(id) = pick(&orders, order) else {
                    continue;
                };
                let fire = OrderCommand::Fire {
                    course,
                    priority: rush,
                };
                let _ = engine.ask(&b, change(id, fire)).await;
            }
            Step::Rush { order, on } => {
                let Some(id) = pick(&orders, order) else {
                    continue;
                };
                let rush = OrderCommand::SetPriority { priority: on };
                let _ = engine.ask(&b, change(id, rush)).await;
            }
            Step::Ticket {
                order,
                ticket,
                action,
            } => {
                let Some(id) = pick(&orders, order) else {
                    continue;
                };
                let Ok(Ok(o)) = engine.ask(&b, GetOrder(id)).await else {
                    continue;
                };
                if o.tickets.is_empty() {
                    continue;
                }
                let t = &o.tickets[ticket % o.tickets.len()];
                let action = [
                    TicketAction::Start,
                    TicketAction::Bump,
                    TicketAction::Recall,
                ][action as usize];
                let cmd = StationCommand {
                    station: t.station.clone(),
                    ticket: t.id,
                    action,
                    idempotency: None,
                    span: tracing::Span::none(),
                };
                let _ = engine.ask(&b, cmd).await;
            }
            Step::Serve(order) => {
                let Some(id) = pick(&orders, order) else {
                    continue;
                };
                let _ = engine
                    .ask(&b, change(id, OrderCommand::Serve { lines: None }))
                    .await;
            }
            Step::Close(order) => {
                let Some(id) = pick(&orders, order) else {
                    continue;
                };
                let _ = engine.ask(&b, change(id, OrderCommand::Close)).await;
            }
            Step::EightySix { item, out } => {
                let item = ItemId::parse(ITEMS[item]).unwrap();
                let _ = engine.ask(&b, SetEightySix { item, out }).await;
            }
            Step::Merge { into, from } => {
                let (Some(into), Some(from)) = (pick(&orders, into), pick(&orders, from)) else {
                    continue;
                };
                let merge = MergeOrders {
                    into,
                    from,
                    idempotency: None,
                    span: tracing::Span::none(),
                };
                let _ = engine.ask(&b, merge).await;
            }
            Step::Move { order, table } => {
                let Some(id) = pick(&orders, order) else {
                    continue;
                };
                let table = TableId::parse(TABLES[table]).unwrap();
                let _ = engine
                    .ask(&b, change(id, OrderCommand::MoveTo { table }))
                    .await;
            }
            Step::Count { item, count } => {
                let item = ItemId::parse(ITEMS[item]).unwrap();
                let set = SetItemCount {
                    item: item.clone(),
                    count,
                };
                if let Ok(Ok(_)) = engine.ask(&b, set).await {
                    match count {
                        Some(n) => counts.0.insert(item, n),
                        None => counts.0.remove(&item),
                    };
                }
            }
        }
    }
    counts
}

async fn start(path: &std::path::Path, snapshot_every: u64, threads: usize) -> Engine {
    let (journal, feed) = SqliteJournal::open(path).unwrap();
    let options = EngineOptions {
        snapshot_every,
        threads,
        frames: std::sync::Arc::new(|e| format!("{{\"position\":{}}}", e.position).into()),
        follow: false,
        relay: None,
        acks: None,
    };
    Engine::start(Arc::new(journal), feed, options)
        .await
        .unwrap()
}

/// Waits for the branch's snapshot to be at least at `position` (snapshots are written off
/// the branch actor).
async fn snapshot_at_least(engine: &Engine, position: u64) -> u64 {
    for _ in 0..200 {
        let saved = engine
            .journal()
            .load_snapshot(branch().as_str())
            .await
            .unwrap();
        if let Some(s) = saved.filter(|s| s.position >= position) {
            return s.position;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no snapshot at or after position {position}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn recovered_engine_matches_the_live_one(script in prop::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let before = actix::System::new().block_on(async {
            let engine = start(&path, u64::MAX, 0).await;
            engine.configure(branch(), config()).await.unwrap();
            let counts = run(&engine, &script).await;
            let live = live(&engine).await;
            assert_eq!(live.stock, counts.0.clone().into_iter().collect::<Vec<_>>(), "what is left");
            live
        });
        let after = actix::System::new().block_on(async { live(&start(&path, u64::MAX, 0).await).await });
        prop_assert_eq!(before, after);
    }

    /// The same with a snapshot every few events, and the branch on a thread of its own:
    /// recovery reads the latest snapshot and the events after it (orders opened, changed and
    /// closed since), and gets the same engine.
    #[test]
    fn recovered_from_a_snapshot_matches_the_live_one(
        script in prop::collection::vec(step(), 1..60),
        every in 1u64..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let before = actix::System::new().block_on(async {
            let engine = start(&path, every, 2).await;
            engine.configure(branch(), config()).await.unwrap();
            run(&engine, &script).await;
            let head = engine.journal().head(branch().as_str()).await.unwrap();
            if head >= every {
                let snapshot = snapshot_at_least(&engine, every).await;
                assert!(head >= snapshot, "snapshot {snapshot} beyond the head {head}");
            }
            live(&engine).await
        });
        let after = actix::System::new().block_on(async { live(&start(&path, every, 2).await).await });
        prop_assert_eq!(before, after);
    }
}
