//! Golden journals: journals written by an earlier version of the engine (under
//! `tests/fixtures/`, never regenerated) are recovered by this build exactly as they were left.
//! The expected values are written here from what the fixture's script did, not read back from
//! the code under test. Each run of the suite reads the fixture of its journal: the embedded
//! file, or the Postgres dump loaded into a fresh database.

mod common;

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use common::{Server, TestJournal};
use rail::auth::Role;
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
    start_journal(golden.embedded, golden.postgres).await
}

/// The server on a copy of a golden journal (the embedded file or the Postgres dump).
async fn start_journal(embedded: &str, postgres: &str) -> (Server, TestJournal) {
    let journal = TestJournal::golden(embedded, postgres).await;
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

/// One format-3 golden journal, the ids its run gave the orders, and when its paced course
/// is due.
struct GoldenV3 {
    embedded: &'static str,
    postgres: &'static str,
    /// Ticket 1, moved from t1 to t5: course 1 sent; course 2, paced, fired sooner by
    /// fire-next, its baklava cooked (expo has every part).
    a: &'static str,
    /// Ticket 2 at t2: course 1 sent; course 2 (baklava) paced, waiting.
    b: &'static str,
    /// Ticket 3, delivery: a platform's rush in one call (`YS-48213`); its grill ticket
    /// released later (`starts_at`), escalated, then seen by a grill screen.
    c: &'static str,
    /// Ticket 4 at the counter: a POS's takeaway in one call, course 1 fired, the steak
    /// cooked (start to bump), the baklava voided back into stock.
    d: &'static str,
    /// Ticket 5 at t3: fries fired, then merged into F (closed).
    e: &'static str,
    /// Ticket 6 at t4: took E in; a rush.
    f: &'static str,
    /// When B's course 2 fires by itself: an hour after expo sent course 1.
    paced_at: &'static str,
}

/// Format 3, written by `tests/fixtures/write-v3.sh` on 2026-12-01 (Istanbul time).
fn format_3() -> GoldenV3 {
    let postgres = std::env::var("RAIL_TEST_JOURNAL").as_deref() == Ok("postgres");
    let (ids, paced_at) = if postgres {
        (
            [
                "ae6a7daa-04d4-4995-aac5-7d11a78901a0",
                "ac6a7029-6ba5-4e4e-a112-6c403e198350",
                "01865743-a726-440a-a058-27cf04ba8890",
                "3e0787e4-ce3d-4538-82c2-f658ac924f6b",
                "f1a5d311-36f1-4fed-bdcd-f5b964c674fb",
                "6b30ddad-f4c6-4fca-8930-a3ec5ed3841d",
            ],
            "2026-12-01T15:40:31.081065383Z",
        )
    } else {
        (
            [
                "2c030c13-c29b-4d6f-af7c-5cc850e6e3de",
                "c30ef3ed-18cc-4164-aeb7-4b2cc9229edb",
                "6e05668c-f941-4041-a60d-2b1e1f03032c",
                "9f7ab5c0-e59c-4df0-be8a-4599dded9ea0",
                "9f908191-16f6-45ad-8ff0-f45ac14e880a",
                "bbf06241-1187-4c43-865a-f442eab0c9b4",
            ],
            "2026-12-01T15:40:19.176006098Z",
        )
    };
    GoldenV3 {
        embedded: "journal-v3.sqlite",
        postgres: "journal-v3.postgres.sql",
        a: ids[0],
        b: ids[1],
        c: ids[2],
        d: ids[3],
        e: ids[4],
        f: ids[5],
        paced_at,
    }
}

/// Every event the format-3 fixture's script made, in position order.
const KINDS_V3: [&str; 57] = [
    "branch_configured",
    "item_count_set",
    "item_count_set",
    // A
    "order_opened",
    "lines_added",
    "course_fired",
    "ticket_bumped",
    "ticket_bumped",
    "expo_ready",
    "ticket_bumped",
    "order_ready",
    "course_scheduled",
    "lines_served",
    "course_fired",
    // B
    "order_opened",
    "lines_added",
    "course_fired",
    "ticket_bumped",
    "expo_ready",
    "ticket_bumped",
    "order_ready",
    "course_scheduled",
    "lines_served",
    // C, in one append
    "order_opened",
    "lines_added",
    "course_fired",
    // D, in one append, then the grill's steak
    "order_opened",
    "lines_added",
    "course_fired",
    "ticket_started",
    "ticket_bumped",
    // E, F and the merge
    "order_opened",
    "lines_added",
    "course_fired",
    "order_opened",
    "lines_added",
    "orders_merged",
    "merged_into",
    // Tickets may wait one second: every live one is escalated; a grill screen sees one.
    "branch_configured",
    "ticket_unseen",
    "ticket_unseen",
    "ticket_unseen",
    "ticket_unseen",
    "ticket_unseen",
    "ticket_unseen",
    "ticket_unseen",
    "ticket_unseen",
    "ticket_unseen",
    "ticket_seen",
    "branch_configured",
    // After the snapshot (position 50).
    "line_voided",
    "priority_changed",
    "order_moved",
    "item_count_set",
    "ticket_started",
    "ticket_bumped",
    "expo_ready",
];

/// Kitchen screens on every station of the golden branch, for as long as the test runs, that
/// acknowledge what they show as a kitchen's do: the fixture's last configuration gives a
/// ticket one second, and a restart starts every live ticket's clock again, so without them
/// the branch would escalate (and journal) while the test looks. Tickets the fixture left
/// escalated are not acknowledged: they stay unseen, as the fixture has them.
async fn watch_every_station(server: &Server) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let branch = get(server, "").await;
    let stations: Vec<String> = branch["config"]["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let url = server.base.replace("http://", "ws://") + "/ws";
    let token = common::token_for("golden", Role::Manager, None, None);
    for station in stations {
        let mut ws = common::ws_connect_as(&url, &token).await;
        let subscribe = json!({"type": "subscribe", "station": station});
        ws.send(Message::text(subscribe.to_string())).await.unwrap();
        // Acknowledged before the test goes on: the snapshot's tickets are the ones whose
        // clocks restarted.
        let mut joined = false;
        while !joined {
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                panic!("the {station} screen closed");
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == "snapshot" {
                let tickets = &frame["snapshot"]["tickets"];
                ack(&mut ws, &station, tickets).await;
                joined = true;
            }
        }
        tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let frame: Value = serde_json::from_str(&text).unwrap_or_default();
                if frame["event"]["type"] == "course_fired" {
                    let tickets = frame["event"]["tickets"].clone();
                    ack(&mut ws, &station, &tickets).await;
                }
            }
        });
    }
}

/// Acknowledges a station's tickets of a list that are not escalated.
async fn ack<S>(ws: &mut S, station: &str, tickets: &Value)
where
    S: futures_util::Sink<tokio_tungstenite::tungstenite::Message> + Unpin,
    S::Error: std::fmt::Debug,
{
    use futures_util::SinkExt;
    let ids: Vec<&Value> = tickets
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["station"] == station && t["unseen"] != true)
        .map(|t| &t["id"])
        .collect();
    if ids.is_empty() {
        return;
    }
    let seen = json!({"type": "seen", "station": station, "tickets": ids});
    let text = tokio_tungstenite::tungstenite::Message::text(seen.to_string());
    ws.send(text).await.unwrap();
}

/// The server on the format-3 fixture, and whether B's paced course has fired by itself.
///
/// The fixture left B's course 2 scheduled an hour after it was written. Until then the
/// recovered order still waits for it; from then on the engine fires it by itself as soon as
/// it has recovered the schedule: that fire is waited for here, so that every check sees one
/// state or the other.
async fn start_v3(golden: &GoldenV3) -> (Server, TestJournal, bool) {
    let (server, journal) = start_journal(golden.embedded, golden.postgres).await;
    watch_every_station(&server).await;
    let due: DateTime<Utc> = golden.paced_at.parse().unwrap();
    let left = due - Utc::now();
    if left > TimeDelta::seconds(60) {
        return (server, journal, false);
    }
    if let Ok(left) = left.to_std() {
        tokio::time::sleep(left).await;
    }
    let path = format!("/orders/{}", golden.b);
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let b = get(&server, &path).await;
        if b["fires"] == 2 {
            assert_eq!(
                b["position"], 58,
                "the paced fire is the only event appended: {b}"
            );
            return (server, journal, true);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B's paced course 2 did not fire by itself: {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An order as `[table, ticket_no, guests, source, external_ref, priority, next_course, fires,
/// seq, position]`.
fn order_v3(order: &Value) -> Value {
    json!([
        order["table"],
        order["ticket_no"],
        order["guests"],
        order["source"],
        order["external_ref"],
        order["priority"],
        order["next_course"],
        order["fires"],
        order["seq"],
        order["position"]
    ])
}

/// Lines as `[id, item, status, fire_no, course, counted]`.
fn lines_v3(order: &Value) -> Value {
    order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            json!([
                l["id"],
                l["item"],
                l["status"],
                l["fire_no"],
                l["course"],
                l["counted"]
            ])
        })
        .collect()
}

/// What a ticket is beyond its status, in words: `ready` (expo has every part), `held`
/// (released to its station later: a `starts_at`), `unseen` (escalated, no screen has
/// acknowledged it since) and `rush`.
fn flags(ticket: &Value) -> String {
    let flag = |field: &str| {
        ticket[field]
            .as_bool()
            .unwrap_or_else(|| panic!("{field}: {ticket}"))
    };
    let starts_at = &ticket["starts_at"];
    assert!(starts_at.is_string() || starts_at.is_null(), "{ticket}");
    let words = [
        (flag("parts_ready"), "ready"),
        (starts_at.is_string(), "held"),
        (flag("unseen"), "unseen"),
        (flag("priority"), "rush"),
    ];
    let words: Vec<&str> = words
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| *w)
        .collect();
    words.join(" ")
}

/// Tickets (an order's, or a list) as `[station, ticket_no, fire_no, status, flags,
/// moved_from, [line_id]]`.
fn tickets_v3(order: &Value) -> Value {
    order
        .as_array()
        .unwrap_or_else(|| order["tickets"].as_array().unwrap())
        .iter()
        .map(|t| {
            // A voided line as `"2 voided"`.
            let lines: Vec<Value> = t["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| match l["voided"].as_bool().unwrap() {
                    false => l["line_id"].clone(),
                    true => json!(format!("{} voided", l["line_id"])),
                })
                .collect();
            json!([
                t["station"],
                t["ticket_no"],
                t["fire_no"],
                t["status"],
                flags(t),
                t["moved_from"],
                lines
            ])
        })
        .collect()
}

/// Every ticket of an order is its order's, at its table, from its source, of its fire's
/// course (`(fire_no, course)`, none for a fire of every held line).
fn assert_tickets_follow(order: &Value, courses: &[(u64, Option<u64>)]) {
    for t in order["tickets"].as_array().unwrap() {
        assert_eq!(
            (&t["table"], &t["source"]),
            (&order["table"], &order["source"]),
            "{t}"
        );
        assert_eq!(t["order_id"], order["id"], "{t}");
        let fire = t["fire_no"].as_u64().unwrap();
        let course = courses
            .iter()
            .find(|(f, _)| *f == fire)
            .expect("a fire of the order");
        assert_eq!(t["course"].as_u64(), course.1, "{t}");
    }
}

/// Seconds from one timestamp to another.
fn seconds(from: &Value, to: &Value) -> f64 {
    let at = |v: &Value| v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    (at(to) - at(from)).num_milliseconds() as f64 / 1000.0
}

/// A station's live tickets, in the order its screens show them, as `[ticket_no, table,
/// status, flags, moved_from]`.
async fn screen(server: &Server, station: &str) -> Value {
    let tickets = get(server, &format!("/stations/{station}/tickets")).await;
    tickets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["station"], station);
            json!([
                t["ticket_no"],
                t["table"],
                t["status"],
                flags(t),
                t["moved_from"]
            ])
        })
        .collect()
}

/// The configuration the format-3 fixture's script sent, as the branch reads it back: fields
/// it left out stay out (a station's lanes, an item's own stations are empty).
fn config_v3() -> Value {
    let cooking = |id: &str, name: &str| json!({"id": id, "name": name, "kind": "cooking"});
    let item = |id: &str, name: &str, category: &str, stations: Value, price: u32, prep: u32| {
        json!({"id": id, "name": name, "category": category, "stations": stations,
               "price_cents": price, "prep_seconds": prep})
    };
    let table = |id: &str, name: &str, kind: &str| json!({"id": id, "name": name, "kind": kind});
    json!({
        "name": "Golden Kebap",
        "utc_offset_minutes": 0,
        "time_zone": "Europe/Istanbul",
        "unseen_after_seconds": 600,
        "late_after_seconds": 600,
        "course_pace_seconds": 3600,
        "stations": [
            {"id": "grill", "name": "Izgara", "kind": "cooking", "lanes": 2},
            cooking("fryer", "Fritöz"),
            cooking("cold", "Soğuk"),
            cooking("pastry", "Tatlı"),
            {"id": "expo", "name": "Pas", "kind": "expo"}
        ],
        "categories": [
            {"id": "mains", "name": "Ana yemek", "stations": ["grill"]},
            {"id": "sides", "name": "Yan", "stations": ["fryer"]},
            {"id": "salads", "name": "Salata", "stations": ["cold"]},
            {"id": "desserts", "name": "Tatlı", "stations": ["pastry"]}
        ],
        "items": [
            item("steak", "Bonfile", "mains", json!([]), 68000, 60),
            item("burger", "Burger", "mains", json!(["grill", "fryer"]), 42000, 40),
            item("fries", "Patates", "sides", json!([]), 12000, 20),
            item("salad", "Çoban salata", "salads", json!([]), 15000, 10),
            item("baklava", "Baklava", "desserts", json!([]), 18000, 30)
        ],
        "tables": [
            table("t1", "Masa 1", "dine_in"),
            table("t2", "Masa 2", "dine_in"),
            table("t3", "Masa 3", "dine_in"),
            table("t4", "Masa 4", "dine_in"),
            table("t5", "Bahçe 5", "dine_in"),
            table("c1", "Tezgah", "counter"),
            table("d1", "Paket servis", "delivery")
        ]
    })
}

#[tokio::test]
async fn a_format_3_journal_recovers_its_branch_orders_and_tickets_exactly() {
    let golden = format_3();
    let (server, _journal, paced) = start_v3(&golden).await;

    let branch = get(&server, "").await;
    assert_eq!(branch["position"], if paced { 58 } else { 57 });
    assert_eq!(branch["eighty_sixed"], json!([]));
    // Six baklava, one each for A and B, two for D given back by its void; fries lifted.
    assert_eq!(branch["stock"], json!([{"item": "baklava", "left": 4}]));
    assert_eq!(branch["config"], config_v3());

    let open = get(&server, "/orders").await;
    let open = open.as_array().unwrap();
    let ids: Vec<&str> = open.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [golden.a, golden.b, golden.c, golden.d, golden.f]);
    let (a, b, c, d, f) = (&open[0], &open[1], &open[2], &open[3], &open[4]);
    for o in open {
        assert_eq!(o["day"], "2026-12-01", "{o}");
        assert!(o["closed_at"].is_null(), "{o}");
    }

    // A: moved from t1 to t5, every ticket with it; course 2 fired by fire-next.
    assert_eq!(
        order_v3(a),
        json!(["t5", 1, 2, "dine_in", null, false, null, 2, 17, 57])
    );
    assert_eq!(
        lines_v3(a),
        json!([
            [1, "burger", "served", 1, 1, false],
            [2, "baklava", "started", 2, 2, true]
        ])
    );
    assert_eq!(
        (&a["lines"][0]["seat"], &a["lines"][1]["note"]),
        (&json!(1), &json!("cevizli"))
    );
    assert_eq!(
        tickets_v3(a),
        json!([
            ["fryer", 1, 1, "bumped", "", "t1", [1]],
            ["grill", 1, 1, "bumped", "", "t1", [1]],
            ["expo", 1, 1, "bumped", "ready", "t1", [1]],
            ["pastry", 1, 2, "bumped", "", "t1", [2]],
            ["expo", 1, 2, "new", "ready unseen", "t1", [2]]
        ])
    );
    assert_tickets_follow(a, &[(1, Some(1)), (2, Some(2))]);
    let pastry = &a["tickets"][3];
    let cooked = seconds(&pastry["started_at"], &pastry["bumped_at"]);
    assert!(
        (1.0..2.0).contains(&cooked),
        "the pastry took about a second: {cooked}"
    );

    // B: course 1 sent; course 2 paced an hour on (or, that hour past, fired by itself).
    if paced {
        assert_eq!(
            order_v3(b),
            json!(["t2", 2, 4, "dine_in", null, false, null, 2, 10, 58])
        );
        assert_eq!(
            lines_v3(b),
            json!([
                [1, "salad", "served", 1, 1, false],
                [2, "baklava", "fired", 2, 2, true]
            ])
        );
    } else {
        let next = json!({"course": 2, "at": golden.paced_at});
        assert_eq!(
            order_v3(b),
            json!(["t2", 2, 4, "dine_in", null, false, next, 1, 9, 23])
        );
        assert_eq!(
            lines_v3(b),
            json!([
                [1, "salad", "served", 1, 1, false],
                [2, "baklava", "held", null, 2, true]
            ])
        );
    }
    let mut b_tickets = json!([
        ["cold", 2, 1, "bumped", "", null, [1]],
        ["expo", 2, 1, "bumped", "ready", null, [1]]
    ]);
    if paced {
        let fired = b_tickets.as_array_mut().unwrap();
        fired.push(json!(["pastry", 2, 2, "new", "", null, [2]]));
        fired.push(json!(["expo", 2, 2, "new", "", null, [2]]));
    }
    assert_eq!(tickets_v3(b), b_tickets);
    assert_tickets_follow(b, &[(1, Some(1)), (2, Some(2))]);

    // C: the delivery platform's rush, its fries counted; the grill released so that burger
    // and fries finish together; every ticket escalated, the grill's seen since.
    assert_eq!(
        order_v3(c),
        json!(["d1", 3, null, "delivery", "YS-48213", true, null, 1, 7, 49])
    );
    assert_eq!(
        lines_v3(c),
        json!([
            [1, "burger", "fired", 1, 1, false],
            [2, "fries", "fired", 1, 1, true]
        ])
    );
    assert_eq!(
        tickets_v3(c),
        json!([
            ["fryer", 3, 1, "new", "unseen rush", null, [1, 2]],
            ["grill", 3, 1, "new", "held rush", null, [1]],
            ["expo", 3, 1, "new", "unseen rush", null, [1, 2]]
        ])
    );
    assert_tickets_follow(c, &[(1, None)]);
    let grill = &c["tickets"][1];
    let held = seconds(&grill["fired_at"], &grill["starts_at"]);
    assert!(
        (19.0..20.0).contains(&held),
        "the fries' 20 s less the burger's learned grill time: {held}"
    );

    // D: the counter's takeaway, course 1 fired, the steak cooked for two seconds, the salad
    // held to finish with it; the baklava voided.
    assert_eq!(
        order_v3(d),
        json!(["c1", 4, 1, "takeaway", null, false, null, 1, 8, 51])
    );
    assert_eq!(
        lines_v3(d),
        json!([
            [1, "steak", "started", 1, 1, false],
            [2, "salad", "fired", 1, 1, false],
            [3, "baklava", "voided", null, 2, true]
        ])
    );
    assert_eq!(d["lines"][0]["modifiers"], json!(["az pişmiş"]));
    assert_eq!(d["lines"][2]["quantity"], 2);
    assert_eq!(
        tickets_v3(d),
        json!([
            ["cold", 4, 1, "new", "held unseen", null, [2]],
            ["grill", 4, 1, "bumped", "", null, [1]],
            ["expo", 4, 1, "new", "unseen", null, [1, 2]]
        ])
    );
    assert_tickets_follow(d, &[(1, Some(1))]);
    let cold = &d["tickets"][0];
    let held = seconds(&cold["fired_at"], &cold["starts_at"]);
    assert!(
        (59.0..60.0).contains(&held),
        "the steak's 60 s less the salad's: {held}"
    );
    let steak = &d["tickets"][1];
    let cooked = seconds(&steak["started_at"], &steak["bumped_at"]);
    assert!(
        (2.0..3.0).contains(&cooked),
        "the steak took two seconds: {cooked}"
    );

    // F: took in E (its lines numbered on, its tickets with their own number and where they
    // came from), then made a rush.
    assert_eq!(
        order_v3(f),
        json!(["t4", 6, 3, "dine_in", null, true, null, 1, 6, 52])
    );
    assert_eq!(
        lines_v3(f),
        json!([
            [1, "salad", "held", null, 1, false],
            [2, "fries", "fired", 1, 1, true]
        ])
    );
    assert_eq!(
        (&f["lines"][0]["seat"], &f["lines"][1]["quantity"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(
        tickets_v3(f),
        json!([
            ["fryer", 5, 1, "new", "unseen rush", "t3", [2]],
            ["expo", 5, 1, "new", "unseen rush", "t3", [2]]
        ])
    );
    assert_tickets_follow(f, &[(1, None)]);

    // E is closed, merged into F, and still read back whole.
    let e = get(&server, &format!("/orders/{}", golden.e)).await;
    assert!(e["closed_at"].is_string(), "{e}");
    assert_eq!(
        order_v3(&e),
        json!(["t3", 5, 2, "dine_in", null, false, null, 1, 4, 38])
    );
    assert_eq!(lines_v3(&e), json!([[1, "fries", "fired", 1, 1, true]]));
    assert_eq!(
        tickets_v3(&e),
        json!([
            ["fryer", 5, 1, "new", "", null, [1]],
            ["expo", 5, 1, "new", "", null, [1]]
        ])
    );

    // What each screen shows: rushes first, then oldest first.
    assert_eq!(
        screen(&server, "grill").await,
        json!([[3, "d1", "new", "held rush", null]])
    );
    assert_eq!(
        screen(&server, "fryer").await,
        json!([
            [3, "d1", "new", "unseen rush", null],
            [5, "t4", "new", "unseen rush", "t3"]
        ])
    );
    assert_eq!(
        screen(&server, "cold").await,
        json!([[4, "c1", "new", "held unseen", null]])
    );
    let mut expo = json!([
        [3, "d1", "new", "unseen rush", null],
        [5, "t4", "new", "unseen rush", "t3"],
        [1, "t5", "new", "ready unseen", "t1"],
        [4, "c1", "new", "unseen", null]
    ]);
    let pastry = if paced {
        let paced_fire = json!([2, "t2", "new", "", null]);
        expo.as_array_mut().unwrap().push(paced_fire.clone());
        json!([paced_fire])
    } else {
        json!([])
    };
    assert_eq!(screen(&server, "pastry").await, pastry);
    assert_eq!(screen(&server, "expo").await, expo);

    // The journal reads back event by event, positions dense, every format-3 field there.
    let events = get(&server, "/events?after=0&limit=100").await;
    let events = events.as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[..57], KINDS_V3);
    let after: &[&str] = if paced { &["course_fired"] } else { &[] };
    assert_eq!(kinds[57..], *after);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["position"], i + 1);
        assert_eq!(e["body"]["type"], e["kind"]);
    }
    let body = |position: usize| &events[position - 1]["body"];
    let order_of = |position: usize| body(position)["order_id"].as_str().unwrap();
    assert_eq!(body(1)["config"], config_v3());
    assert_eq!(body(39)["config"]["unseen_after_seconds"], 1);
    assert_eq!(body(50)["config"], config_v3());
    assert_eq!(
        [body(2), body(3), body(54)],
        [
            &json!({"type": "item_count_set", "item": "baklava", "count": 6}),
            &json!({"type": "item_count_set", "item": "fries", "count": 10}),
            &json!({"type": "item_count_set", "item": "fries", "count": null})
        ]
    );
    for (position, order) in [(12, golden.a), (22, golden.b)] {
        assert_eq!(order_of(position), order);
        assert_eq!(body(position)["course"], 2);
        assert_eq!(body(position)["stations"], json!(["expo", "pastry"]));
        let scheduled = seconds(&events[position - 1]["at"], &body(position)["at"]);
        assert!(
            (3599.0..3601.0).contains(&scheduled),
            "an hour on: {scheduled}"
        );
    }
    assert_eq!(body(22)["at"], golden.paced_at);
    assert_eq!((order_of(14), &body(14)["course"]), (golden.a, &json!(2)));
    let opened = body(24);
    assert_eq!(
        [
            &opened["ticket_no"],
            &opened["source"],
            &opened["external_ref"],
            &opened["priority"]
        ],
        [
            &json!(3),
            &json!("delivery"),
            &json!("YS-48213"),
            &json!(true)
        ]
    );
    assert_eq!(body(25)["lines"][1]["counted"], true);
    let fired = body(26);
    assert_eq!(
        (&fired["priority"], &fired["course"]),
        (&json!(true), &Value::Null)
    );
    let starts: Vec<(&Value, bool)> = fired["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (&t["station"], t["starts_at"].is_string()))
        .collect();
    assert_eq!(
        starts,
        [
            (&json!("fryer"), false),
            (&json!("grill"), true),
            (&json!("expo"), false)
        ]
    );
    assert_eq!(
        (
            &body(27)["source"],
            &body(27)["external_ref"],
            &body(27)["priority"]
        ),
        (&json!("takeaway"), &Value::Null, &json!(false))
    );
    let merged = body(37);
    assert_eq!(
        (
            order_of(37),
            merged["from"].as_str(),
            &merged["from_table"],
            &merged["fires"]
        ),
        (golden.f, Some(golden.e), &json!("t3"), &json!(1))
    );
    assert_eq!(merged["tickets"][0]["moved_from"], "t3");
    assert_eq!(
        (order_of(38), body(38)["into"].as_str()),
        (golden.e, Some(golden.f))
    );
    // The nine live tickets escalated, in whatever order the stations reported them.
    let mut unseen: Vec<(&str, &str)> = (40..=48)
        .map(|p| {
            assert_eq!(body(p)["expo"], "expo");
            assert!(body(p)["waited_seconds"].as_u64().unwrap() >= 1);
            (order_of(p), body(p)["station"].as_str().unwrap())
        })
        .collect();
    unseen.sort();
    let mut expected = vec![
        (golden.a, "pastry"),
        (golden.a, "expo"),
        (golden.c, "fryer"),
        (golden.c, "grill"),
        (golden.c, "expo"),
        (golden.d, "cold"),
        (golden.d, "expo"),
        (golden.f, "fryer"),
        (golden.f, "expo"),
    ];
    expected.sort();
    assert_eq!(unseen, expected);
    assert_eq!(
        (order_of(49), &body(49)["ticket_id"], &body(49)["station"]),
        (golden.c, &c["tickets"][1]["id"], &json!("grill"))
    );
    let voided = body(51);
    assert_eq!(order_of(51), golden.d);
    assert_eq!(
        (&voided["line_id"], &voided["reason"], &voided["restock"]),
        (
            &json!(3),
            &json!("misafir vazgeçti"),
            &json!({"item": "baklava", "quantity": 2})
        )
    );
    assert_eq!(
        (
            order_of(52),
            &body(52)["priority"],
            body(52)["tickets"].as_array().unwrap().len()
        ),
        (golden.f, &json!(true), 2)
    );
    let moved = body(53);
    assert_eq!(
        (
            order_of(53),
            &moved["from"],
            &moved["to"],
            moved["tickets"].as_array().unwrap().len()
        ),
        (golden.a, &json!("t1"), &json!("t5"), 5)
    );
    if paced {
        assert_eq!((order_of(58), &body(58)["course"]), (golden.b, &json!(2)));
    }

    server.kill();
}

/// The body of the one-call open the POS sent for order D.
fn open_d() -> Value {
    json!({
        "table": "c1", "source": "takeaway", "guests": 1,
        "lines": [
            {"item": "steak", "modifiers": ["az pişmiş"]},
            {"item": "salad"},
            {"item": "baklava", "quantity": 2, "course": 2}
        ],
        "fire": {"course": 1}
    })
}

#[tokio::test]
async fn a_format_3_journal_answers_its_idempotency_keys_as_it_first_did() {
    let golden = format_3();
    let (server, _journal, paced) = start_v3(&golden).await;
    let post = reqwest::Method::POST;

    // The one-call open: the order as the open left it, course 1 fired, the baklava held.
    let (status, first) = send(
        &server,
        post.clone(),
        "/orders",
        Some("golden-open-d"),
        Some(open_d()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["id"].as_str(), Some(golden.d));
    assert_eq!(
        order_v3(&first),
        json!(["c1", 4, 1, "takeaway", null, false, null, 1, 3, 29])
    );
    assert_eq!(
        lines_v3(&first),
        json!([
            [1, "steak", "fired", 1, 1, false],
            [2, "salad", "fired", 1, 1, false],
            [3, "baklava", "held", null, 2, true]
        ])
    );
    assert_eq!(
        tickets_v3(&first),
        json!([
            ["cold", 4, 1, "new", "held", null, [2]],
            ["grill", 4, 1, "new", "", null, [1]],
            ["expo", 4, 1, "new", "", null, [1, 2]]
        ])
    );
    let mut unfired = open_d();
    unfired.as_object_mut().unwrap().remove("fire");
    let (status, reused) = send(
        &server,
        post.clone(),
        "/orders",
        Some("golden-open-d"),
        Some(unfired),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");

    // A's open at t1, before it had lines.
    let (status, opened) = send(
        &server,
        post.clone(),
        "/orders",
        Some("golden-open-a"),
        Some(json!({"table": "t1", "guests": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!(opened["id"].as_str(), Some(golden.a));
    assert_eq!(
        order_v3(&opened),
        json!(["t1", 1, 2, "dine_in", null, false, null, 0, 1, 4])
    );
    assert_eq!(opened["lines"], json!([]));

    // A's fire-next: course 2 fired sooner than its pace, the schedule gone.
    let fire_next = format!("/orders/{}/fire-next", golden.a);
    let (status, fired) = send(
        &server,
        post.clone(),
        &fire_next,
        Some("golden-fire-next-a"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fired}");
    assert_eq!(
        order_v3(&fired),
        json!(["t1", 1, 2, "dine_in", null, false, null, 2, 11, 14])
    );
    assert_eq!(
        lines_v3(&fired),
        json!([
            [1, "burger", "served", 1, 1, false],
            [2, "baklava", "fired", 2, 2, true]
        ])
    );

    // D's void: the baklava given back.
    let void = format!("/orders/{}/lines/3/void", golden.d);
    let (status, voided) = send(
        &server,
        post.clone(),
        &void,
        Some("golden-void-d"),
        Some(json!({"reason": "misafir vazgeçti"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{voided}");
    assert_eq!(
        order_v3(&voided),
        json!(["c1", 4, 1, "takeaway", null, false, null, 1, 8, 51])
    );
    assert_eq!(voided["lines"][2]["status"], "voided");

    // The merge: F as it left it, E's lines and tickets in, not yet a rush.
    let merge = format!("/orders/{}/merge", golden.f);
    let (status, merged) = send(
        &server,
        post.clone(),
        &merge,
        Some("golden-merge-f"),
        Some(json!({"from": golden.e})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["id"].as_str(), Some(golden.f));
    assert_eq!(
        order_v3(&merged),
        json!(["t4", 6, 3, "dine_in", null, false, null, 1, 3, 37])
    );
    assert_eq!(
        lines_v3(&merged),
        json!([
            [1, "salad", "held", null, 1, false],
            [2, "fries", "fired", 1, 1, true]
        ])
    );
    assert_eq!(
        tickets_v3(&merged),
        json!([
            ["fryer", 5, 1, "new", "", "t3", [2]],
            ["expo", 5, 1, "new", "", "t3", [2]]
        ])
    );

    // The move: A at t5, every ticket with it.
    let moving = format!("/orders/{}/move", golden.a);
    let (status, moved) = send(
        &server,
        post.clone(),
        &moving,
        Some("golden-move-a"),
        Some(json!({"table": "t5"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        order_v3(&moved),
        json!(["t5", 1, 2, "dine_in", null, false, null, 2, 14, 53])
    );
    assert_eq!(
        tickets_v3(&moved),
        json!([
            ["fryer", 1, 1, "bumped", "", "t1", [1]],
            ["grill", 1, 1, "bumped", "", "t1", [1]],
            ["expo", 1, 1, "bumped", "ready", "t1", [1]],
            ["pastry", 1, 2, "new", "unseen", "t1", [2]],
            ["expo", 1, 2, "new", "unseen", "t1", [2]]
        ])
    );
    let (status, reused) = send(
        &server,
        post.clone(),
        &moving,
        Some("golden-move-a"),
        Some(json!({"table": "t2"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");

    // Nothing was appended by the retries.
    assert_eq!(
        get(&server, "").await["position"],
        if paced { 58 } else { 57 }
    );
    server.kill();
}

#[tokio::test]
async fn a_format_3_journal_goes_on_taking_orders_where_it_stopped() {
    let golden = format_3();
    let (server, _journal, paced) = start_v3(&golden).await;
    let post = reqwest::Method::POST;
    let mut position = if paced { 58 } else { 57 };
    let istanbul = FixedOffset::east_opt(180 * 60).unwrap();
    let today = Utc::now().with_timezone(&istanbul).date_naive().to_string();
    let fixture_day = today == "2026-12-01";

    // B's paced course: the waiter fires it now, sooner than its pace (or, that hour past,
    // the engine fired it by itself once it had recovered the schedule).
    let path = format!("/orders/{}/fire-next", golden.b);
    let (status, b) = send(&server, post.clone(), &path, None, None).await;
    if paced {
        assert_eq!(status, StatusCode::CONFLICT, "{b}");
        assert_eq!(b["error"]["code"], "nothing_to_fire");
    } else {
        assert_eq!(status, StatusCode::OK, "{b}");
        position += 1;
        assert_eq!(
            order_v3(&b),
            json!(["t2", 2, 4, "dine_in", null, false, null, 2, 10, position])
        );
        assert_eq!(b["lines"][1]["status"], "fired");
    }
    assert_eq!(
        screen(&server, "pastry").await,
        json!([[2, "t2", "new", "", null]])
    );

    // Fire by prep time with what the kitchen learned: the grill's steak took two seconds
    // (the menu says 60), the fries were never cooked here (20 s). So the fries go at once
    // and the steak waits for them; had the learned time been lost, the fries would wait.
    let (status, order) = send(
        &server,
        post.clone(),
        "/orders",
        None,
        Some(json!({"table": "t1", "lines": [{"item": "steak"}, {"item": "fries"}], "fire": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    position += 3;
    assert_eq!(order["position"], position);
    assert_eq!(order["ticket_no"], if fixture_day { 7 } else { 1 });
    let stations: Vec<&Value> = order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["station"])
        .collect();
    assert_eq!(stations, [&json!("fryer"), &json!("grill"), &json!("expo")]);
    assert!(order["tickets"][0]["starts_at"].is_null(), "{order}");
    let grill = &order["tickets"][1];
    let held = seconds(&grill["fired_at"], &grill["starts_at"]);
    assert!(
        (17.0..18.5).contains(&held),
        "20 s less the learned steak: {held}"
    );
    // Fries are no longer counted.
    assert_eq!(lines_v3(&order)[1][5], false);

    // Four baklava left: five are refused, four taken, then none is left.
    let add = format!("/orders/{}/lines", golden.f);
    let baklava = |n: u32| json!({"lines": [{"item": "baklava", "quantity": n, "course": 2}]});
    let (status, refused) = send(&server, post.clone(), &add, None, Some(baklava(5))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "item_sold_out");
    let (status, added) = send(&server, post.clone(), &add, None, Some(baklava(4))).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    position += 1;
    assert_eq!(
        lines_v3(&added)[2],
        json!([3, "baklava", "held", null, 2, true])
    );
    let branch = get(&server, "").await;
    assert_eq!(branch["stock"], json!([{"item": "baklava", "left": 0}]));
    let (status, refused) = send(&server, post.clone(), &add, None, Some(baklava(1))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "item_sold_out");

    // The platform sends its order again: on the fixture's day the reference is taken, and
    // the answer is C as its open left it; on any other day it is free again.
    let again = json!({"table": "d1", "external_ref": "YS-48213",
                       "lines": [{"item": "salad"}], "fire": {}});
    let (status, opened) = send(&server, post.clone(), "/orders", None, Some(again)).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    if fixture_day {
        assert_eq!(opened["id"].as_str(), Some(golden.c));
        assert_eq!(
            order_v3(&opened),
            json!(["d1", 3, null, "delivery", "YS-48213", true, null, 1, 3, 26])
        );
    } else {
        position += 3;
        assert_ne!(opened["id"].as_str(), Some(golden.c));
        assert_eq!(
            order_v3(&opened),
            json!(["d1", 2, null, "delivery", "YS-48213", false, null, 1, 3, position])
        );
    }

    // A screen at the fryer shows C's escalated ticket: it is seen.
    let c_path = format!("/orders/{}", golden.c);
    let c = get(&server, &c_path).await;
    let fryer = c["tickets"][0]["id"].clone();
    assert_eq!(
        (&c["tickets"][0]["station"], &c["tickets"][0]["unseen"]),
        (&json!("fryer"), &json!(true))
    );
    let token = common::token_for("golden", Role::Kitchen, Some("fryer"), None);
    let url = format!("{}/ws", server.base.replacen("http", "ws", 1));
    let mut screen_ws = common::Ws {
        stream: common::ws_connect_as(&url, &token).await,
    };
    screen_ws
        .send(json!({"type": "seen", "station": "fryer", "tickets": [fryer]}))
        .await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let c = get(&server, &c_path).await;
        if c["tickets"][0]["unseen"] == false {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not seen: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    position += 1;

    // A, at its new table, is sent from expo: its baklava ready, served, the check closed.
    let a_path = format!("/orders/{}", golden.a);
    let a = get(&server, &a_path).await;
    let expo = a["tickets"][4]["id"].as_str().unwrap();
    let (status, bumped) = send(
        &server,
        post.clone(),
        &format!("/stations/expo/tickets/{expo}/bump"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{bumped}");
    assert_eq!(
        (&bumped["status"], &bumped["table"]),
        (&json!("bumped"), &json!("t5"))
    );
    position += 2;
    let (status, served) = send(
        &server,
        post.clone(),
        &format!("{a_path}/serve"),
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{served}");
    assert_eq!(served["lines"][1]["status"], "served");
    let (status, closed) = send(
        &server,
        post.clone(),
        &format!("{a_path}/close"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert!(closed["closed_at"].is_string(), "{closed}");
    position += 2;
    assert_eq!(
        (&closed["table"], &closed["position"]),
        (&json!("t5"), &json!(position))
    );

    let events = get(
        &server,
        &format!("/events?after={}&limit=100", position - 3),
    )
    .await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["order_ready", "lines_served", "order_closed"]);
    assert_eq!(get(&server, "").await["position"], position);
    server.kill();
}
