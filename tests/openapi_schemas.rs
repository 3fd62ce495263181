//! The OpenAPI schemas of the REST bodies say exactly what serde writes and reads.
//!
//! Values the domain makes are converted to the edge's wire types, serialized and validated against the generated document with a
//! JSON Schema validator; request bodies are checked both ways: every body the server takes
//! fits the schema, and every body the schema allows is taken (where the rule is one a schema
//! can say).

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use rail::wire;
use rail_actors::branch::BranchInfo;
use rail_actors::event::{branch_stream, order_stream, BranchEvent, Event, OrderEvent};
use rail_actors::ids::{BranchId, ItemId, OrderId, TableId};
use rail_actors::journal::StoredEvent;
use rail_actors::menu::{Branch, BranchConfig};
use rail_actors::order::{Order, OrderChange, OrderCommand, OrderSource};
use serde_json::{json, Value};
use utoipa::OpenApi;

/// The document the server builds, reduced to these components.
#[derive(OpenApi)]
#[openapi(components(schemas(
    wire::BranchConfig,
    wire::NewLine,
    wire::Order,
    wire::BranchInfo,
    wire::JournalEvent
)))]
struct Doc;

fn document() -> Value {
    serde_json::to_value(Doc::openapi()).expect("the document serializes")
}

/// A validator for one component, its references resolved within the document.
fn validator(name: &str) -> jsonschema::Validator {
    common::schema_validator(&document(), name)
}

#[track_caller]
fn assert_fits(validator: &jsonschema::Validator, what: &str, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not fit its schema: {errors:#?}\n{value:#}"
    );
}

fn demo_config() -> BranchConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo-branch.json");
    let text = std::fs::read_to_string(path).expect("config/demo-branch.json");
    let config: wire::BranchConfig = serde_json::from_str(&text).expect("the demo is a config");
    let config = BranchConfig::from(config);
    config.validate().expect("the demo validates");
    config
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 18, 0, 0).unwrap()
        + Duration::minutes(minutes)
        + Duration::nanoseconds(123_456_789)
}

fn collect_refs(value: &Value, refs: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        refs.insert(r.clone());
                    }
                    _ => collect_refs(v, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_ids_are_strings() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(schemas.contains_key(name), "{r} is not in the components");
    }
    for slug in ["BranchId", "StationId", "ItemId", "CategoryId", "TableId"] {
        let s = &schemas[slug];
        assert_eq!(s["type"], "string", "{slug}");
        assert_eq!(s["pattern"], "^[a-z0-9_][a-z0-9_-]{0,63}$", "{slug}");
        assert_eq!(s["minLength"], 1, "{slug}");
        assert_eq!(s["maxLength"], 64, "{slug}");
    }
    for uuid in ["OrderId", "TicketId"] {
        assert_eq!(schemas[uuid]["type"], "string", "{uuid}");
        assert_eq!(schemas[uuid]["format"], "uuid", "{uuid}");
    }
    let names: BTreeSet<&str> = schemas.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "BranchConfig",
        "BranchEvent",
        "BranchId",
        "BranchInfo",
        "Category",
        "CategoryId",
        "Device",
        "Event",
        "ItemId",
        "Line",
        "LineStatus",
        "MenuItem",
        "ModifierGroup",
        "ModifierOption",
        "NewLine",
        "NextCourse",
        "Order",
        "OrderChange",
        "OrderEvent",
        "OrderId",
        "OrderSource",
        "Restock",
        "Station",
        "StationId",
        "StationKind",
        "StockLevel",
        "JournalEvent",
        "Table",
        "TableId",
        "TableKind",
        "Ticket",
        "TicketId",
        "TicketLine",
        "TicketRef",
        "TicketStatus",
        "Timers",
    ]
    .into();
    assert_eq!(
        names, expected,
        "the components (a type alias would show as `u32`)"
    );
}

#[test]
fn branch_config_and_info_fit() {
    let config = demo_config();
    let raw: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/demo-branch.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let v = validator("BranchConfig");
    assert_fits(&v, "config/demo-branch.json", &raw);
    assert_fits(
        &v,
        "the demo config as served",
        &serde_json::to_value(wire::BranchConfig::from(&config)).unwrap(),
    );

    let mut branch = Branch::new(config.clone()).unwrap();
    branch.set_86(&ItemId::parse("salmon").unwrap(), true);
    let info = BranchInfo {
        id: BranchId::parse("demo").unwrap(),
        config,
        eighty_sixed: branch.eighty_sixed().iter().cloned().collect(),
        stock: vec![(ItemId::parse("brownie").unwrap(), 12)],
        position: 42,
    };
    assert_fits(
        &validator("BranchInfo"),
        "a branch info",
        &serde_json::to_value(wire::BranchInfo::from(&info)).unwrap(),
    );
}

/// A journal event as `GET .../events` answers it (its body already in the wire form).
fn journal_event(e: &StoredEvent) -> Value {
    json!({
        "stream": e.stream, "seq": e.seq, "branch": e.branch, "position": e.position,
        "kind": e.kind, "body": e.body, "at": e.at,
    })
}

/// A command to give an order, made from the order as it is then.
type Step<'a> = Box<dyn Fn(&Order) -> OrderCommand + 'a>;

/// An order taken through its life at the demo branch, with the events each step stored.
fn order_life() -> (Vec<Order>, Vec<StoredEvent>) {
    let mut config = demo_config();
    // Paced: expo sending course 1 schedules course 2.
    config.course_pace_seconds = Some(600);
    let mut branch = Branch::new(config.clone()).unwrap();
    // The caesar is counted: its void gives back.
    branch.set_limited(&ItemId::parse("caesar").unwrap(), true);
    let branch_id = BranchId::parse("demo").unwrap();
    let table = TableId::parse("t1").unwrap();
    let order_id = OrderId::new();
    let mut position = 0;
    let mut stored = Vec::new();
    let mut store = |stream: String, seq: u64, event: Event, when: DateTime<Utc>| {
        position += 1;
        // As `/events` serves it: the event as the domain reads it, whatever its storage format.
        stored.push(StoredEvent {
            stream,
            seq,
            branch: branch_id.to_string(),
            position,
            kind: event.kind().to_owned(),
            body: serde_json::to_value(wire::Event::from(&event)).unwrap(),
            at: when,
            decoded: Default::default(),
        });
    };
    store(
        branch_stream(&branch_id),
        1,
        Event::Branch(BranchEvent::BranchConfigured { config }),
        at(0),
    );
    store(
        branch_stream(&branch_id),
        2,
        Event::Branch(BranchEvent::ItemEightySixed {
            item: ItemId::parse("salmon").unwrap(),
        }),
        at(0),
    );
    store(
        branch_stream(&branch_id),
        3,
        Event::Branch(BranchEvent::ItemRestored {
            item: ItemId::parse("salmon").unwrap(),
        }),
        at(0),
    );
    store(
        branch_stream(&branch_id),
        4,
        Event::Branch(BranchEvent::ItemCountSet {
            item: ItemId::parse("caesar").unwrap(),
            count: Some(12),
        }),
        at(0),
    );

    let opened = OrderChange::OrderOpened {
        ticket_no: 7,
        day: NaiveDate::from_ymd_opt(2025, 3, 14).unwrap(),
        guests: Some(2),
        source: Some(OrderSource::Delivery),
        external_ref: Some("YS-20250314-7".into()),
        priority: false,
    };
    let mut order = Order::opened(order_id, table.clone(), &opened, at(1));
    let mut seq = 1;
    store(
        order_stream(&order_id),
        seq,
        Event::Order(OrderEvent {
            order_id,
            table: table.clone(),
            change: opened,
        }),
        at(1),
    );
    let mut snapshots = vec![order.clone()];

    let line = |item: &str, extra: Value| -> rail_actors::order::NewLine {
        let mut body = json!({ "item": item });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<wire::NewLine>(body)
            .unwrap()
            .into()
    };
    let ticket_of = |order: &Order, station: &str, fire: u32| {
        order
            .tickets
            .iter()
            .find(|t| t.station.as_str() == station && t.fire_no == fire)
            .unwrap_or_else(|| panic!("no {station} ticket in fire {fire}"))
            .id
    };
    // A party at another table, merged in before anything of it was fired.
    let party = Order::opened(
        OrderId::new(),
        TableId::parse("t3").unwrap(),
        &OrderChange::OrderOpened {
            ticket_no: 8,
            day: NaiveDate::from_ymd_opt(2025, 3, 14).unwrap(),
            guests: Some(2),
            source: None,
            external_ref: None,
            priority: false,
        },
        at(1),
    );
    let commands: Vec<Step<'_>> = vec![
        Box::new(|_| OrderCommand::AddLines {
            lines: vec![
                line(
                    "burger",
                    json!({"quantity": 2, "modifiers": ["no onion", "extra cheese"],
                           "note": "allergy: sesame", "seat": 1}),
                ),
                line("fries", json!({})),
                line("caesar", json!({"seat": 2, "note": null})),
                line("brownie", json!({"course": 2})),
            ],
        }),
        Box::new(|_| OrderCommand::Fire {
            course: Some(1),
            priority: false,
        }),
        Box::new(|_| OrderCommand::SetPriority { priority: true }),
        Box::new(|_| OrderCommand::MergeFrom {
            other: Box::new(party.clone()),
        }),
        Box::new(|_| OrderCommand::MoveTo {
            table: TableId::parse("t2").unwrap(),
        }),
        Box::new(|o| OrderCommand::MarkUnseen {
            ticket: ticket_of(o, "grill", 1),
            waited_seconds: 12,
        }),
        Box::new(|o| OrderCommand::MarkSeen {
            ticket: ticket_of(o, "grill", 1),
        }),
        Box::new(|o| OrderCommand::StartTicket {
            ticket: ticket_of(o, "grill", 1),
        }),
        Box::new(|_| OrderCommand::VoidLine {
            line: 3,
            reason: Some("guest changed mind".into()),
        }),
        Box::new(|o| OrderCommand::BumpTicket {
            ticket: ticket_of(o, "grill", 1),
        }),
        Box::new(|o| OrderCommand::BumpTicket {
            ticket: ticket_of(o, "fryer", 1),
        }),
        Box::new(|o| OrderCommand::RecallTicket {
            ticket: ticket_of(o, "fryer", 1),
        }),
        Box::new(|o| OrderCommand::BumpTicket {
            ticket: ticket_of(o, "fryer", 1),
        }),
        Box::new(|o| OrderCommand::BumpTicket {
            ticket: ticket_of(o, "expo", 1),
        }),
        Box::new(|_| OrderCommand::Serve { lines: None }),
        Box::new(|_| OrderCommand::Fire {
            course: None,
            priority: true,
        }),
        Box::new(|o| OrderCommand::BumpTicket {
            ticket: ticket_of(o, "pastry", 2),
        }),
        Box::new(|o| OrderCommand::BumpTicket {
            ticket: ticket_of(o, "expo", 2),
        }),
        Box::new(|_| OrderCommand::Serve {
            lines: Some(vec![4]),
        }),
        Box::new(|_| OrderCommand::Close),
    ];
    for (step, command) in commands.iter().enumerate() {
        let now = at(2 + step as i64);
        let command = command(&order);
        let changes = order
            .decide(&command, &branch, now)
            .unwrap_or_else(|e| panic!("step {step} ({command:?}) refused: {e}"));
        for change in changes {
            order.apply(&change, now);
            seq += 1;
            order.seq = seq;
            store(
                order_stream(&order_id),
                seq,
                Event::Order(OrderEvent {
                    order_id,
                    table: table.clone(),
                    change,
                }),
                now,
            );
        }
        snapshots.push(order.clone());
    }
    assert!(order.is_closed());
    // The party merged in is closed, merged into the order.
    let party = party.id;
    store(
        order_stream(&party),
        2,
        Event::Order(OrderEvent {
            order_id: party,
            table: TableId::parse("t3").unwrap(),
            change: OrderChange::MergedInto { into: order_id },
        }),
        at(40),
    );
    (snapshots, stored)
}

#[test]
fn orders_through_their_life_fit() {
    let (orders, _) = order_life();
    let v = validator("Order");
    for (step, order) in orders.iter().enumerate() {
        assert_fits(
            &v,
            &format!("the order after step {step}"),
            &serde_json::to_value(wire::Order::from(order)).unwrap(),
        );
    }
    let tickets = validator("Ticket");
    for t in &orders.last().unwrap().tickets {
        assert_fits(
            &tickets,
            "a ticket",
            &serde_json::to_value(wire::Ticket::from(t)).unwrap(),
        );
    }
}

#[test]
fn stored_events_fit_and_every_kind_is_seen() {
    let (_, events) = order_life();
    let v = validator("JournalEvent");
    let mut kinds = BTreeSet::new();
    for e in &events {
        kinds.insert(e.kind.clone());
        assert_fits(&v, &format!("event {}", e.kind), &journal_event(e));
    }
    let body_kinds: BTreeSet<String> = events
        .iter()
        .map(|e| e.body["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, body_kinds);
    // Every change kind but expo_waiting happens above; this one is made by hand.
    let waiting = Event::Order(OrderEvent {
        order_id: OrderId::new(),
        table: TableId::parse("t1").unwrap(),
        change: OrderChange::ExpoWaiting {
            ticket_id: rail_actors::ids::TicketId::new(),
            station: rail_actors::ids::StationId::parse("expo").unwrap(),
            fire_no: 1,
        },
    });
    let e = StoredEvent {
        stream: "order/x".into(),
        seq: 9,
        branch: "demo".into(),
        position: 99,
        kind: waiting.kind().to_owned(),
        body: serde_json::to_value(wire::Event::from(&waiting)).unwrap(),
        at: at(0),
        decoded: Default::default(),
    };
    assert_fits(&v, "expo_waiting", &journal_event(&e));
    kinds.insert(e.kind);
    let all: BTreeSet<String> = [
        "branch_configured",
        "item_eighty_sixed",
        "item_restored",
        "item_count_set",
        "order_opened",
        "lines_added",
        "line_voided",
        "course_fired",
        "ticket_started",
        "ticket_bumped",
        "ticket_recalled",
        "ticket_voided",
        "expo_ready",
        "expo_waiting",
        "order_ready",
        "lines_served",
        "priority_changed",
        "order_moved",
        "orders_merged",
        "merged_into",
        "course_scheduled",
        "ticket_unseen",
        "ticket_seen",
        "order_closed",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds, all, "the sample should cover every event kind");

    // A body that is no event does not fit.
    let mut bad = journal_event(&events[0]);
    bad["body"] = json!({"type": "no_such_event"});
    assert!(!v.is_valid(&bad));
}

/// What the server does with a line body: serde, then the checks that need no menu.
fn server_takes_line(body: &Value) -> bool {
    serde_json::from_value::<wire::NewLine>(body.clone())
        .is_ok_and(|l| rail_actors::order::NewLine::from(l).validate().is_ok())
}

#[test]
fn new_line_schema_takes_what_the_server_takes() {
    let v = validator("NewLine");
    let long = "x".repeat(200);
    let too_long = "x".repeat(201);
    let many: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let too_many: Vec<String> = (0..21).map(|i| format!("m{i}")).collect();
    let cases = [
        json!({"item": "burger"}),
        json!({"item": "burger", "quantity": 1, "modifiers": [], "note": null,
               "seat": null, "course": 1}),
        json!({"item": "burger", "quantity": 99, "seat": 100, "course": 9}),
        json!({"item": "burger", "quantity": 0}),
        json!({"item": "burger", "quantity": 100}),
        json!({"item": "burger", "quantity": 70000}),
        json!({"item": "burger", "quantity": -1}),
        json!({"item": "burger", "quantity": "2"}),
        json!({"item": "burger", "quantity": null}),
        json!({"item": "burger", "seat": 0}),
        json!({"item": "burger", "seat": 101}),
        json!({"item": "burger", "course": 0}),
        json!({"item": "burger", "course": 10}),
        json!({"item": "burger", "course": 300}),
        json!({"item": "burger", "modifiers": many}),
        json!({"item": "burger", "modifiers": too_many}),
        json!({"item": "burger", "modifiers": null}),
        json!({"item": "burger", "modifiers": [long]}),
        json!({"item": "burger", "modifiers": [too_long]}),
        json!({"item": "burger", "modifiers": [""]}),
        json!({"item": "burger", "modifiers": ["  "]}),
        json!({"item": "burger", "modifiers": ["a\tb"]}),
        json!({"item": "burger", "note": " well done "}),
        json!({"item": "burger", "note": "\u{3000}"}),
        json!({"item": "burger", "note": "caf\u{e9} \u{1f354}"}),
        json!({"item": "burger", "note": "a\u{85}"}),
        json!({"item": "burger", "note": "\u{feff}"}),
        json!({"item": "burger", "extra": 1}),
        json!({"item": "Burger"}),
        json!({"item": ""}),
        json!({"quantity": 1}),
        json!([]),
    ];
    for case in cases {
        assert_eq!(
            v.is_valid(&case),
            server_takes_line(&case),
            "schema and server disagree on {case}"
        );
    }
}

/// A change to a valid configuration body.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn branch_config_schema_takes_what_the_server_takes() {
    // Only rules a schema can say are broken here; the cross-references (one expo, routes to
    // cooking stations, unique ids, known categories) are checked by the server alone.
    let v = validator("BranchConfig");
    let base = serde_json::to_value(wire::BranchConfig::from(&demo_config())).unwrap();
    let takes = |body: &Value| {
        serde_json::from_value::<wire::BranchConfig>(body.clone())
            .is_ok_and(|c| BranchConfig::from(c).validate().is_ok())
    };
    let mutations: Vec<Mutation> = vec![
        Box::new(|_| {}),
        Box::new(|c| c["utc_offset_minutes"] = json!(-720)),
        Box::new(|c| c["utc_offset_minutes"] = json!(840)),
        Box::new(|c| c["utc_offset_minutes"] = json!(-721)),
        Box::new(|c| c["utc_offset_minutes"] = json!(841)),
        Box::new(|c| {
            c.as_object_mut().unwrap().remove("utc_offset_minutes");
        }),
        Box::new(|c| c["name"] = json!("")),
        Box::new(|c| c["name"] = json!(" ")),
        Box::new(|c| c["name"] = json!("x".repeat(100))),
        Box::new(|c| c["name"] = json!("x".repeat(101))),
        Box::new(|c| c["name"] = json!("new\nline")),
        Box::new(|c| c["stations"][0]["name"] = json!("\u{7f}")),
        Box::new(|c| c["stations"][0]["kind"] = json!("grill")),
        Box::new(|c| c["stations"][0]["id"] = json!("-grill")),
        Box::new(|c| {
            c["stations"][0].as_object_mut().unwrap().remove("kind");
        }),
        Box::new(|c| c["stations"][0]["colour"] = json!("red")),
        Box::new(|c| c["tables"][0]["kind"] = json!("qr")),
        Box::new(|c| c["tables"][0]["kind"] = json!("patio")),
        Box::new(|c| c["items"][0]["price_cents"] = json!(-5)),
        Box::new(|c| c["items"][0]["price_cents"] = json!(1250)),
        Box::new(|c| c["categories"][0]["stations"] = json!(["cold", "cold"])),
        Box::new(|c| c["owner"] = json!("me")),
        Box::new(|c| {
            c.as_object_mut().unwrap().remove("tables");
        }),
    ];
    for (i, mutate) in mutations.iter().enumerate() {
        let mut body = base.clone();
        mutate(&mut body);
        assert_eq!(
            v.is_valid(&body),
            takes(&body),
            "schema and server disagree on mutation {i}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The slug pattern is `check_slug`.
    #[test]
    fn slug_schema_is_check_slug(
        s in prop_oneof![
            "[a-zA-Z0-9_ ./\\-]{0,70}",
            "[a-z0-9_\\-]{60,66}",
            any::<String>(),
        ]
    ) {
        let v = validator("ItemId");
        prop_assert_eq!(v.is_valid(&json!(s)), ItemId::parse(s.clone()).is_ok(), "{:?}", s);
    }

    /// The text pattern is `check_text`: not blank, no control character.
    #[test]
    fn text_schema_is_check_text(
        s in prop_oneof![
            "[a\t\n\u{b}\u{c}\r \u{1c}\u{7f}\u{85}\u{a0}\u{1680}\u{2000}\u{200a}\u{200b}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}\u{feff}\u{9f}\u{e9}]{0,4}",
            any::<String>(),
        ]
    ) {
        let v = validator("NewLine");
        let body = json!({"item": "burger", "note": s});
        prop_assert_eq!(v.is_valid(&body), server_takes_line(&body), "{:?}", s);
    }
}
