//! A merge cut short: the order that took the other in is journaled, the other's close is
//! not (the process died between the two appends). The branch recovered from that journal
//! shows everything once, in the order that took it in, and closes the other itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rail_actors::branch::{GetOrder, OpenOrder, OpenOrders, StationTickets};
use rail_actors::event::{order_stream, Event, OrderEvent};
use rail_actors::ids::{BranchId, ItemId, StationId, TableId};
use rail_actors::journal::{AppendRequest, SqliteJournal};
use rail_actors::menu::BranchConfig;
use rail_actors::order::{NewLine, OrderCommand};
use rail_actors::{Engine, EngineOptions};

fn config() -> BranchConfig {
    serde_json::from_value(serde_json::json!({
        "name": "Merge Kitchen",
        "stations": [
            {"id": "grill", "name": "Grill"}, {"id": "expo", "name": "Expo", "kind": "expo"}
        ],
        "categories": [{"id": "mains", "name": "Mains", "stations": ["grill"]}],
        "items": [{"id": "steak", "name": "Steak", "category": "mains"}],
        "tables": [{"id": "t1", "name": "Table 1"}, {"id": "t4", "name": "Table 4"}]
    }))
    .unwrap()
}

fn branch() -> BranchId {
    BranchId::parse("merge").unwrap()
}

async fn start(path: &std::path::Path) -> Engine {
    let (journal, feed) = SqliteJournal::open(path).unwrap();
    let options = EngineOptions {
        snapshot_every: u64::MAX,
        threads: 0,
        frames: Arc::new(|e| format!("{{\"position\":{}}}", e.position).into()),
        follow: false,
        relay: None,
        acks: None,
    };
    Engine::start(Arc::new(journal), feed, options)
        .await
        .unwrap()
}

fn open_with_steak(table: &str) -> OpenOrder {
    OpenOrder {
        table: TableId::parse(table).unwrap(),
        guests: None,
        source: None,
        external_ref: None,
        priority: false,
        then: vec![
            OrderCommand::AddLines {
                lines: vec![NewLine {
                    item: ItemId::parse("steak").unwrap(),
                    quantity: 1,
                    modifiers: Vec::new(),
                    note: None,
                    seat: None,
                    course: 1,
                }],
            },
            OrderCommand::Fire {
                course: None,
                priority: false,
            },
        ],
        idempotency: None,
        span: tracing::Span::none(),
    }
}

#[test]
fn a_merge_cut_short_is_finished_when_the_branch_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let b = branch();
    let (into, from) = actix::System::new().block_on(async {
        let engine = start(&path).await;
        engine.configure(b.clone(), config()).await.unwrap();
        let into = engine
            .ask(&b, open_with_steak("t1"))
            .await
            .unwrap()
            .unwrap();
        let from = engine
            .ask(&b, open_with_steak("t4"))
            .await
            .unwrap()
            .unwrap();
        // The first half of a merge, appended as the order's writer would.
        let branch_config = rail_actors::menu::Branch::new(config()).unwrap();
        let merge = OrderCommand::MergeFrom {
            other: Box::new((*from).clone()),
        };
        let changes = into.decide(&merge, &branch_config, Utc::now()).unwrap();
        let events = changes
            .into_iter()
            .map(|change| {
                let event = Event::Order(OrderEvent {
                    order_id: into.id,
                    table: into.table.clone(),
                    change,
                });
                rail_actors::stored::encode(event, Utc::now())
            })
            .collect();
        engine
            .journal()
            .append(AppendRequest {
                branch: b.to_string(),
                stream: order_stream(&into.id),
                expected_seq: into.seq,
                events,
                closes_stream: false,
                idempotency: None,
                epoch: None,
            })
            .await
            .unwrap();
        (into.id, from.id)
    });

    actix::System::new().block_on(async {
        let engine = start(&path).await;
        // Only the order that took the other in is open, with both steaks; each ticket is
        // on the grill once.
        let open = engine.ask(&b, OpenOrders).await.unwrap().unwrap();
        let ids: Vec<_> = open.iter().map(|o| o.id).collect();
        assert_eq!(ids, [into]);
        assert_eq!(open[0].lines.len(), 2);
        let grill = StationId::parse("grill").unwrap();
        let tickets = engine
            .ask(&b, StationTickets(grill))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tickets.len(), 2);
        assert!(tickets.iter().all(|t| t.order_id == into));
        // The other is closed by the branch itself, merged.
        let mut closed = None;
        for _ in 0..100 {
            let other = engine.ask(&b, GetOrder(from)).await.unwrap().unwrap();
            if other.is_closed() {
                closed = Some(other);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed.is_some(), "the merged order was never closed");
        let stream = engine
            .journal()
            .load_stream(&order_stream(&from))
            .await
            .unwrap();
        assert_eq!(stream.last().unwrap().kind, "merged_into");
    });
}
