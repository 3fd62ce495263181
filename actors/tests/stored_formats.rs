//! Storage formats: the golden journal recovers from its snapshot as from its events; a
//! snapshot this build cannot use is counted and the events read instead; events are written
//! in the current format and read back equal; a newer format is refused, never guessed.

use std::path::PathBuf;

use chrono::{NaiveDate, TimeZone, Utc};
use rail_actors::branch::recover;
use rail_actors::event::{Event, OrderEvent};
use rail_actors::ids::{BranchId, ItemId, OrderId, StationId, TableId, TicketId};
use rail_actors::journal::{Journal, SavedSnapshot, SqliteJournal, StoredEvent};
use rail_actors::menu::StationKind;
use rail_actors::order::{OrderChange, OrderSource, Ticket, TicketLine, TicketStatus};
use rail_actors::stored;
use serde_json::json;

/// A copy of the format-1 golden journal (see `tests/fixtures/README.md`), opened.
fn golden_journal(dir: &tempfile::TempDir) -> SqliteJournal {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/journal-v1.sqlite");
    let path = dir.path().join("journal.db");
    std::fs::copy(fixture, &path).expect("golden journal copies");
    SqliteJournal::open(&path).expect("golden journal opens").0
}

/// Screens' frames are the edge's business; recovery only needs something to write.
fn frames() -> rail_actors::event::EventFrames {
    std::sync::Arc::new(|e| format!("{{\"position\":{}}}", e.position).into())
}

fn golden() -> BranchId {
    BranchId::parse("golden").unwrap()
}

/// The value of a series in the engine's metrics (0 when it was never counted).
/// Held by the tests that read the unreadable-snapshot counters, which every test of this
/// process shares.
static COUNTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn metric(series: &str) -> f64 {
    rail_actors::metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_journal_recovers_from_its_format_1_snapshot_as_from_its_events() {
    let _counting = COUNTERS.lock().await;
    let refused = || metric("rail_snapshots_unreadable_total{reason=\"format\"}");
    let refused_before = refused();
    let dir = tempfile::tempdir().unwrap();
    let journal = golden_journal(&dir);
    let from_snapshot = recover(&journal, &golden(), &frames())
        .await
        .expect("recovers");
    assert_eq!(
        from_snapshot.snapshot_position, 25,
        "the fixture's snapshot is used"
    );
    assert_eq!(from_snapshot.position, 43);
    assert_eq!(from_snapshot.config_seq, 5);
    assert_eq!(
        from_snapshot.last_ticket,
        Some((NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(), 4))
    );
    let branch = from_snapshot.branch.as_ref().expect("configured");
    assert_eq!(branch.config().tables.len(), 5);
    let out: Vec<&ItemId> = branch.eighty_sixed().iter().collect();
    assert_eq!(out, [&ItemId::parse("steak").unwrap()]);
    let tickets: Vec<u32> = from_snapshot.orders.iter().map(|o| o.ticket_no).collect();
    assert_eq!(tickets, [2, 3, 4]);
    assert_eq!(refused(), refused_before, "a format-1 snapshot is read");

    // Without the snapshot, every open stream's events make the same branch.
    let unused = SavedSnapshot {
        position: 1_000,
        body: br#"{"version": 0}"#.to_vec(),
    };
    journal.save_snapshot("golden", unused).await.unwrap();
    let from_events = recover(&journal, &golden(), &frames())
        .await
        .expect("recovers");
    assert_eq!(
        from_events.snapshot_position, 0,
        "the unusable snapshot is not used"
    );
    assert_eq!(from_events.orders, from_snapshot.orders);
    assert_eq!(from_events.position, from_snapshot.position);
    assert_eq!(from_events.config_seq, from_snapshot.config_seq);
    assert_eq!(from_events.last_ticket, from_snapshot.last_ticket);
    assert_eq!(
        from_events.branch.as_ref().map(|b| b.config().clone()),
        Some(branch.config().clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_this_build_cannot_use_is_counted_and_the_events_are_read_instead() {
    let _counting = COUNTERS.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = golden_journal(&dir);
    let good = recover(&journal, &golden(), &frames()).await.unwrap();

    let cases: [(&str, &[u8], u64); 3] = [
        ("format", br#"{"version": 7, "position": 30}"#, 30),
        (
            "undecodable",
            b"{\"version\": 1, \"position\": 31, \"orders\": 5}",
            31,
        ),
        ("undecodable", b"\x00not json", 32),
    ];
    for (reason, body, position) in cases {
        let series = format!("rail_snapshots_unreadable_total{{reason=\"{reason}\"}}");
        let before = metric(&series);
        let saved = SavedSnapshot {
            position,
            body: body.to_vec(),
        };
        journal.save_snapshot("golden", saved).await.unwrap();
        let recovered = recover(&journal, &golden(), &frames())
            .await
            .expect("recovers from events");
        assert_eq!(recovered.snapshot_position, 0, "{reason}");
        assert_eq!(recovered.orders, good.orders, "{reason}");
        assert_eq!(metric(&series), before + 1.0, "{reason} is counted");
    }

    // A snapshot whose body says another position than the journal keeps it at.
    let mut moved = stored::encode_snapshot(&stored::BranchSnapshot::new(
        good.branch.as_ref(),
        good.config_seq,
        good.position,
        &good.orders,
    ));
    moved.position = 40;
    let before = metric("rail_snapshots_unreadable_total{reason=\"position\"}");
    journal.save_snapshot("golden", moved).await.unwrap();
    let recovered = recover(&journal, &golden(), &frames()).await.unwrap();
    assert_eq!(recovered.snapshot_position, 0);
    assert_eq!(
        metric("rail_snapshots_unreadable_total{reason=\"position\"}"),
        before + 1.0
    );

    // The snapshot this build writes is used again.
    let current = stored::encode_snapshot(&stored::BranchSnapshot::new(
        good.branch.as_ref(),
        good.config_seq,
        good.position,
        &good.orders,
    ));
    journal.save_snapshot("golden", current).await.unwrap();
    let recovered = recover(&journal, &golden(), &frames()).await.unwrap();
    assert_eq!(recovered.snapshot_position, 43);
    assert_eq!(recovered.orders, good.orders);
}

fn read_back(new: &rail_actors::journal::NewEvent) -> StoredEvent {
    StoredEvent {
        stream: "order/x".into(),
        seq: 2,
        branch: "golden".into(),
        position: 7,
        kind: new.kind.clone(),
        body: new.body.clone(),
        at: new.at,
        decoded: Default::default(),
    }
}

fn fire() -> Event {
    fire_from(None, false)
}

/// A fire of an order from `source` (none: an order from before sources were recorded).
fn fire_from(source: Option<OrderSource>, priority: bool) -> Event {
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 19, 30, 5).unwrap();
    let order_id = OrderId::new();
    let table = TableId::parse("t1").unwrap();
    let ticket = |station: &str, kind| Ticket {
        id: TicketId::new(),
        order_id,
        table: table.clone(),
        ticket_no: 12,
        station: StationId::parse(station).unwrap(),
        kind,
        fire_no: 2,
        course: Some(1),
        lines: vec![TicketLine {
            line_id: 3,
            item: ItemId::parse("steak").unwrap(),
            name: "Bonfile".into(),
            quantity: 2,
            modifiers: vec!["orta".into()],
            note: Some("sos ayrı".into()),
            seat: Some(2),
            course: 1,
            voided: false,
        }],
        status: TicketStatus::New,
        fired_at: at,
        started_at: None,
        bumped_at: None,
        parts_ready: false,
        source,
        priority,
        unseen: false,
        moved_from: None,
        starts_at: None,
    };
    Event::Order(OrderEvent {
        order_id,
        table: table.clone(),
        change: OrderChange::CourseFired {
            fire_no: 2,
            course: Some(1),
            priority,
            tickets: vec![
                ticket("grill", StationKind::Cooking),
                ticket("expo", StationKind::Expo),
            ],
        },
    })
}

#[test]
fn events_are_written_in_format_3_and_read_back_equal() {
    let event = fire_from(Some(OrderSource::Delivery), true);
    let new = stored::encode(event.clone(), Utc::now());
    assert_eq!(new.body["v"], json!(stored::EVENT_FORMAT));
    assert_eq!(stored::EVENT_FORMAT, 3);
    assert_eq!(
        new.body["source"],
        json!("delivery"),
        "the fire says its source once"
    );
    assert_eq!(new.body["priority"], json!(true));
    let ticket = new.body["tickets"][0].as_object().unwrap();
    let mut fields: Vec<&str> = ticket.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        ["fired_at", "id", "kind", "lines", "station", "ticket_no"],
        "a fire's tickets leave out what the event says and what every new ticket is"
    );
    assert!(new.body["tickets"][0]["lines"][0].get("voided").is_none());
    let decoded = stored::decode(&read_back(&new)).expect("decodes");
    assert_eq!(*decoded, event);

    // What format 3 adds is left out when absent, so an older order's fire is written as
    // format 2 wrote it, and a format-2 body reads as the same event.
    let legacy = fire();
    let mut new = stored::encode(legacy.clone(), Utc::now());
    assert!(new.body.get("source").is_none() && new.body.get("priority").is_none());
    new.body["v"] = json!(2);
    assert_eq!(
        *stored::decode(&read_back(&new)).expect("format 2 reads"),
        legacy
    );
}

#[test]
fn a_format_1_fire_is_upcast_to_the_same_event() {
    let event = fire();
    // Format 1, as the golden journals hold it: no version, every field of every ticket.
    let Event::Order(e) = &event else {
        unreachable!()
    };
    let OrderChange::CourseFired { tickets, .. } = &e.change else {
        unreachable!()
    };
    let ticket = |t: &Ticket, station: &str, kind: &str| {
        json!({
            "id": t.id, "order_id": e.order_id, "table": "t1", "ticket_no": 12,
            "station": station, "kind": kind, "fire_no": 2, "course": 1,
            "lines": [{"line_id": 3, "item": "steak", "name": "Bonfile", "quantity": 2,
                       "modifiers": ["orta"], "note": "sos ayrı", "seat": 2, "course": 1,
                       "voided": false}],
            "status": "new", "fired_at": "2026-12-01T19:30:05Z", "started_at": null,
            "bumped_at": null, "parts_ready": false
        })
    };
    let v1 = json!({
        "order_id": e.order_id, "table": "t1", "type": "course_fired", "fire_no": 2,
        "course": 1,
        "tickets": [ticket(&tickets[0], "grill", "cooking"), ticket(&tickets[1], "expo", "expo")]
    });
    let new = rail_actors::journal::NewEvent {
        kind: "course_fired".into(),
        body: v1,
        at: Utc::now(),
        decoded: Default::default(),
    };
    let decoded = stored::decode(&read_back(&new)).expect("format 1 reads");
    assert_eq!(*decoded, event);
}

#[test]
fn an_event_of_a_newer_format_or_the_wrong_kind_is_refused_not_guessed() {
    let mut new = stored::encode(fire(), Utc::now());
    new.body["v"] = json!(4);
    let err = stored::decode(&read_back(&new)).unwrap_err();
    assert!(err.contains("format 4 is newer"), "{err}");

    new.body["v"] = json!("two");
    assert!(stored::decode(&read_back(&new)).is_err());

    let mut mislabelled = stored::encode(fire(), Utc::now());
    mislabelled.kind = "ticket_bumped".into();
    let err = stored::decode(&read_back(&mislabelled)).unwrap_err();
    assert!(err.contains("stored as ticket_bumped"), "{err}");
}
