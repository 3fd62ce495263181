//! Golden journals: journals written by an earlier version of the engine (under
//! `tests/fixtures/`, never regenerated) are recovered by this build exactly as they were left.
//! The expected values are written here from what the fixture's script did, not read back from
//! the code under test. Each run of the suite reads the fixture of its journal: the embedded
//! file, or the Postgres dump loaded into a fresh database.

mod common;

use chrono::{FixedOffset, Utc};
use common::{Server, TestJournal};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// One golden journal and the ids its run gave the orders.
struct Golden {
    embedded: &'static str,
    postgres: &'static str,
    /// Ticket 1 at t1: two courses cooked, recalled, sent, served, closed.
    a: &'static str,
    /// Ticket 2 at t2: fired, the salad voided, the fries started.
    b: &'static str,
    /// Ticket 3 at the counter: the grill bumped its burger, the fryer not yet.
    c: &'static str,
    /// Ticket 4 at t3: held lines, one voided.
    d: &'static str,
}

/// Format 1, written by `tests/fixtures/write-v1.sh` on 2026-12-01 (Istanbul time).
fn format_1() -> Golden {
    let postgres = std::env::var("RAIL_TEST_JOURNAL").as_deref() == Ok("postgres");
    let ids = if postgres {
        [
            "923225be-a766-44fb-958f-785e603c4abb",
            "3c5e8380-edb5-43ee-95f4-75a3514502dd",
            "497a0d2c-6817-4b5f-9e5c-f6e3ff60d7e3",
            "45eb1f1f-ea93-4678-a72f-3b0ac682e1fe",
        ]
    } else {
        [
            "ef3f6d9c-ec99-4b0d-bb47-e6b0e869902f",
            "7110e982-5e1b-400a-bda1-100d24eaf42c",
            "a4dd97bc-bef9-455f-b9be-ca5d2b555e7e",
            "505e4196-d869-4176-b292-0747620b6a65",
        ]
    };
    Golden {
        embedded: "journal-v1.sqlite",
        postgres: "journal-v1.postgres.sql",
        a: ids[0],
        b: ids[1],
        c: ids[2],
        d: ids[3],
    }
}

/// Every event the fixture's script made, in position order.
const KINDS_V1: [&str; 43] = [
    "branch_configured",
    "branch_configured",
    "order_opened",
    "lines_added",
    "course_fired",
    "ticket_started",
    "ticket_bumped",
    "ticket_bumped",
    "ticket_bumped",
    "expo_ready",
    "ticket_recalled",
    "expo_waiting",
    "ticket_bumped",
    "expo_ready",
    "ticket_bumped",
    "order_ready",
    "lines_served",
    "course_fired",
    "ticket_bumped",
    "expo_ready",
    "ticket_bumped",
    "order_ready",
    "ticket_recalled",
    "ticket_bumped",
    "order_ready",
    "lines_served",
    "order_closed",
    "item_eighty_sixed",
    "item_restored",
    "item_eighty_sixed",
    "order_opened",
    "lines_added",
    "course_fired",
    "line_voided",
    "ticket_voided",
    "ticket_started",
    "order_opened",
    "lines_added",
    "course_fired",
    "ticket_bumped",
    "order_opened",
    "lines_added",
    "line_voided",
];

const BRANCH: &str = "/api/v1/branches/golden";

async fn start(golden: &Golden) -> (Server, TestJournal) {
    let journal = TestJournal::golden(golden.embedded, golden.postgres).await;
    // Keys of any age answer: the fixture's were stored on the day it was written.
    let server = Server::start_with(&journal, &[("RAIL_IDEMPOTENCY_DAYS", "36500")]).await;
    (server, journal)
}

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .client
        .request(method, format!("{}{BRANCH}{path}", server.base))
        .header(
            "authorization",
            format!("Bearer {}", common::manager("golden")),
        );
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    common::read(request.send().await.unwrap()).await
}

async fn get(server: &Server, path: &str) -> Value {
    let (status, body) = send(server, reqwest::Method::GET, path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// Lines as `[id, item, status, fire_no]`.
fn lines(order: &Value) -> Value {
    order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!([l["id"], l["item"], l["status"], l["fire_no"]]))
        .collect()
}

/// Tickets as `[station, fire_no, status, parts_ready, [[line_id, voided]]]`.
fn tickets(order: &Value) -> Value {
    order
        .as_array()
        .unwrap_or_else(|| order["tickets"].as_array().unwrap())
        .iter()
        .map(|t| {
            let lines: Vec<Value> = t["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| json!([l["line_id"], l["voided"]]))
                .collect();
            json!([
                t["station"],
                t["fire_no"],
                t["status"],
                t["parts_ready"],
                lines
            ])
        })
        .collect()
}

#[tokio::test]
async fn a_format_1_journal_recovers_its_branch_orders_and_tickets_exactly() {
    let golden = format_1();
    let (server, _journal) = start(&golden).await;

    let branch = get(&server, "").await;
    assert_eq!(branch["position"], 43);
    assert_eq!(branch["eighty_sixed"], json!(["steak"]));
    assert_eq!(branch["config"]["name"], "Golden Kebap");
    assert_eq!(branch["config"]["utc_offset_minutes"], 180);
    let tables: Vec<&Value> = branch["config"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(
        tables,
        [
            &json!("t1"),
            &json!("t2"),
            &json!("t3"),
            &json!("c1"),
            &json!("t4")
        ]
    );
    assert_eq!(
        branch["config"]["items"][1]["stations"],
        json!(["grill", "fryer"])
    );

    let open = get(&server, "/orders").await;
    let open = open.as_array().unwrap();
    let ids: Vec<&str> = open.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [golden.b, golden.c, golden.d]);
    let (b, c, d) = (&open[0], &open[1], &open[2]);

    assert_eq!(
        (&b["table"], &b["ticket_no"], &b["guests"], &b["day"]),
        (&json!("t2"), &json!(2), &json!(4), &json!("2026-12-01"))
    );
    assert_eq!((&b["seq"], &b["position"]), (&json!(6), &json!(36)));
    assert_eq!(
        lines(b),
        json!([[1, "fries", "started", 1], [2, "salad", "voided", 1]])
    );
    assert_eq!(
        tickets(b),
        json!([
            ["cold", 1, "voided", false, [[2, true]]],
            ["fryer", 1, "started", false, [[1, false]]],
            ["expo", 1, "new", false, [[1, false], [2, true]]]
        ])
    );
    assert_eq!(b["lines"][1]["quantity"], 1);
    assert_eq!(b["lines"][0]["quantity"], 2);

    assert_eq!(
        (
            &c["table"],
            &c["ticket_no"],
            &c["guests"],
            &c["seq"],
            &c["position"]
        ),
        (&json!("c1"), &json!(3), &Value::Null, &json!(4), &json!(40))
    );
    assert_eq!(lines(c), json!([[1, "burger", "fired", 1]]));
    assert_eq!(
        tickets(c),
        json!([
            ["fryer", 1, "new", false, [[1, false]]],
            ["grill", 1, "bumped", false, [[1, false]]],
            ["expo", 1, "new", false, [[1, false]]]
        ])
    );

    assert_eq!(
        (
            &d["table"],
            &d["ticket_no"],
            &d["guests"],
            &d["seq"],
            &d["position"]
        ),
        (&json!("t3"), &json!(4), &json!(1), &json!(3), &json!(43))
    );
    assert_eq!(
        lines(d),
        json!([[1, "salad", "held", null], [2, "fries", "voided", null]])
    );
    assert_eq!(d["tickets"], json!([]));

    // The closed order is still read back whole.
    let a = get(&server, &format!("/orders/{}", golden.a)).await;
    assert!(a["closed_at"].is_string(), "{a}");
    assert_eq!(
        (&a["ticket_no"], &a["seq"], &a["position"], &a["fires"]),
        (&json!(1), &json!(25), &json!(27), &json!(2))
    );
    assert_eq!(
        lines(&a),
        json!([
            [1, "burger", "served", 1],
            [2, "salad", "served", 1],
            [3, "steak", "served", 2]
        ])
    );
    assert_eq!(a["lines"][0]["modifiers"], json!(["soğansız"]));
    assert_eq!(a["lines"][1]["note"], "sos ayrı");
    assert_eq!(
        (&a["lines"][2]["quantity"], &a["lines"][2]["course"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(
        tickets(&a),
        json!([
            ["cold", 1, "bumped", false, [[2, false]]],
            ["fryer", 1, "bumped", false, [[1, false]]],
            ["grill", 1, "bumped", false, [[1, false]]],
            ["expo", 1, "bumped", true, [[1, false], [2, false]]],
            ["grill", 2, "bumped", false, [[3, false]]],
            ["expo", 2, "bumped", true, [[3, false]]]
        ])
    );
    assert!(
        a["tickets"][2]["started_at"].is_string(),
        "the grill started course 1"
    );

    // What each screen shows.
    assert_eq!(get(&server, "/stations/grill/tickets").await, json!([]));
    assert_eq!(get(&server, "/stations/cold/tickets").await, json!([]));
    let fryer = get(&server, "/stations/fryer/tickets").await;
    assert_eq!(
        tickets(&fryer),
        json!([
            ["fryer", 1, "started", false, [[1, false]]],
            ["fryer", 1, "new", false, [[1, false]]]
        ])
    );
    let numbers: Vec<&Value> = fryer
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["ticket_no"])
        .collect();
    assert_eq!(numbers, [&json!(2), &json!(3)]);
    let expo = get(&server, "/stations/expo/tickets").await;
    let orders: Vec<&str> = expo
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(orders, [golden.b, golden.c]);

    // The journal reads back event by event, positions dense.
    let events = get(&server, "/events?after=0&limit=100").await;
    let events = events.as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, KINDS_V1);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["position"], i + 1);
        assert_eq!(e["body"]["type"], e["kind"]);
    }
    assert_eq!(events[4]["body"]["tickets"][1]["station"], "fryer");
    assert_eq!(events[4]["body"]["tickets"][1]["ticket_no"], 1);
    assert_eq!(events[4]["body"]["tickets"][1]["table"], "t1");
    assert_eq!(events[4]["body"]["tickets"][1]["status"], "new");

    server.kill();
}

#[tokio::test]
async fn a_format_1_journal_answers_its_idempotency_keys_as_it_first_did() {
    let golden = format_1();
    let (server, _journal) = start(&golden).await;
    let post = reqwest::Method::POST;

    let (status, first) = send(
        &server,
        post.clone(),
        "/orders",
        Some("golden-open-a"),
        Some(json!({"table": "t1", "guests": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (first["id"].as_str(), &first["seq"], &first["position"]),
        (Some(golden.a), &json!(1), &json!(3))
    );
    assert_eq!(first["lines"], json!([]));

    let fire = format!("/orders/{}/fire", golden.a);
    let (status, fired) = send(
        &server,
        post.clone(),
        &fire,
        Some("golden-fire-a1"),
        Some(json!({"course": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fired}");
    assert_eq!(
        (&fired["seq"], &fired["position"], &fired["fires"]),
        (&json!(3), &json!(5), &json!(1))
    );
    assert_eq!(
        lines(&fired),
        json!([
            [1, "burger", "fired", 1],
            [2, "salad", "fired", 1],
            [3, "steak", "held", null]
        ])
    );

    let (status, reused) = send(
        &server,
        post.clone(),
        &fire,
        Some("golden-fire-a1"),
        Some(json!({"course": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");

    let close = format!("/orders/{}/close", golden.a);
    let (status, closed) = send(&server, post.clone(), &close, Some("golden-close-a"), None).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(
        (&closed["seq"], &closed["position"]),
        (&json!(25), &json!(27))
    );
    assert!(closed["closed_at"].is_string());

    let void = format!("/orders/{}/lines/2/void", golden.b);
    let (status, voided) = send(
        &server,
        post.clone(),
        &void,
        Some("golden-void-b"),
        Some(json!({"reason": "misafir vazgeçti"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{voided}");
    assert_eq!(
        (&voided["seq"], &voided["position"]),
        (&json!(5), &json!(35))
    );
    assert_eq!(
        lines(&voided),
        json!([[1, "fries", "fired", 1], [2, "salad", "voided", 1]])
    );

    // A station command's key answers with the ticket as it first left it.
    let a = get(&server, &format!("/orders/{}", golden.a)).await;
    let grill = a["tickets"][2]["id"].as_str().unwrap();
    let start = format!("/stations/grill/tickets/{grill}/start");
    let (status, started) =
        send(&server, post.clone(), &start, Some("golden-start-a1"), None).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(
        (&started["status"], &started["ticket_no"]),
        (&json!("started"), &json!(1))
    );

    // Nothing was appended by the retries.
    assert_eq!(get(&server, "").await["position"], 43);
    server.kill();
}

#[tokio::test]
async fn a_format_1_journal_goes_on_taking_orders_where_it_stopped() {
    let golden = format_1();
    let (server, _journal) = start(&golden).await;
    let post = reqwest::Method::POST;

    // The fryer finishes the counter's burger: its grill part was bumped before the upgrade,
    // so expo now has every part.
    let c = get(&server, &format!("/orders/{}", golden.c)).await;
    let fryer = c["tickets"][0]["id"].as_str().unwrap();
    let (status, _) = send(
        &server,
        post.clone(),
        &format!("/stations/fryer/tickets/{fryer}/bump"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let expo = get(&server, "/stations/expo/tickets").await;
    let ready: Vec<(&str, &Value)> = expo
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["order_id"].as_str().unwrap(), &t["parts_ready"]))
        .collect();
    assert_eq!(ready, [(golden.b, &json!(false)), (golden.c, &json!(true))]);

    // Steak is still 86'd; the next order's number follows the fixture's day, or starts over.
    let (status, refused) = send(
        &server,
        post.clone(),
        &format!("/orders/{}/lines", golden.d),
        None,
        Some(json!({"lines": [{"item": "steak"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "item_86");
    let (status, order) = send(
        &server,
        post.clone(),
        "/orders",
        None,
        Some(json!({"table": "t4"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let istanbul = FixedOffset::east_opt(180 * 60).unwrap();
    let today = Utc::now().with_timezone(&istanbul).date_naive().to_string();
    let expected = if today == "2026-12-01" { 5 } else { 1 };
    assert_eq!(order["ticket_no"], expected);
    assert_eq!(order["position"], 46);

    // The held salad of ticket 4 fires to the cold station with the fixture's seat.
    let (status, fired) = send(
        &server,
        post.clone(),
        &format!("/orders/{}/fire", golden.d),
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fired}");
    let cold = get(&server, "/stations/cold/tickets").await;
    assert_eq!(cold[0]["ticket_no"], 4);
    assert_eq!(cold[0]["lines"][0]["seat"], 1);
    assert_eq!(cold[0]["lines"][0]["name"], "Çoban salata");
    server.kill();
}
