//! Order intake a restaurant's other systems lean on: a complete order in one call, where an
//! order came from (and a delivery platform's reference for it), rushes, and the branch's own
//! time zone. Over real HTTP and websockets, on the journal `RAIL_TEST_JOURNAL` names.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Server, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ORDERS: &str = "/api/v1/branches/demo/orders";

/// The demo journal's events of one order's stream.
async fn events_of(app: &TestApp, order: &str) -> Vec<Value> {
    let stream = format!("order/{order}");
    app.journal()
        .await
        .into_iter()
        .filter(|e| e["stream"] == stream.as_str())
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

fn ticket<'a>(order: &'a Value, station: &str) -> &'a Value {
    order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == station)
        .unwrap_or_else(|| panic!("no {station} ticket in {order}"))
}

/// The orders of the tickets a station's screen lists, in its order.
async fn station_orders(app: &TestApp, station: &str) -> Vec<String> {
    let (status, tickets) = app
        .get(&format!("/api/v1/branches/demo/stations/{station}/tickets"))
        .await;
    assert_eq!(status, StatusCode::OK, "{tickets}");
    tickets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["order_id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_complete_order_in_one_call_is_opened_added_and_fired_in_one_append() {
    let app = TestApp::spawn().await;
    let (mut grill, _) = app.station_screen("grill").await;
    let (mut expo, _) = app.station_screen("expo").await;

    let body = json!({
        "table": "counter",
        "lines": [
            {"item": "steak", "modifiers": ["medium"]},
            {"item": "fries", "quantity": 2},
            {"item": "brownie", "course": 2}
        ],
        "fire": {"course": 1}
    });
    let res = app
        .client
        .post(format!("{}{ORDERS}", app.base))
        .headers(common::auth_headers(ORDERS))
        .header("idempotency-key", "pos-7-0001")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, order) = common::read(res).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(order["ticket_no"].as_u64().unwrap() >= 1, "{order}");
    assert_eq!(
        order["source"], "counter",
        "the source defaults from the table"
    );
    assert_eq!(order["fires"], 1);
    let statuses: Vec<&str> = order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["fired", "fired", "held"], "course 2 stays held");
    let stations: Vec<&str> = order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["station"].as_str().unwrap())
        .collect();
    assert_eq!(stations, ["fryer", "grill", "expo"], "{order}");
    for t in order["tickets"].as_array().unwrap() {
        assert_eq!(t["ticket_no"], order["ticket_no"]);
        assert_eq!(t["source"], "counter");
    }

    // One append: the open, the lines and the fire, at consecutive positions, recorded at
    // the same instant (an append's events share their commit's time).
    let events = events_of(&app, &id).await;
    assert_eq!(
        kinds(&events),
        ["order_opened", "lines_added", "course_fired"]
    );
    let first = events[0]["position"].as_u64().unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["position"].as_u64().unwrap(), first + i as u64);
        assert_eq!(e["at"], events[0]["at"], "one append: {events:?}");
    }

    // The screens get the fire with the order's source and number.
    let fired = grill.next_event().await;
    assert_eq!(fired["event"]["type"], "course_fired");
    assert_eq!(fired["event"]["order_id"], id.as_str());
    assert_eq!(ticket(&fired["event"], "grill")["source"], "counter");
    assert_eq!(
        ticket(&fired["event"], "grill")["ticket_no"],
        order["ticket_no"]
    );
    let at_expo = expo.next_event().await;
    assert_eq!(at_expo["position"], fired["position"]);

    // The same request again, with its key: the same order, nothing new in the journal.
    let journal_before = app.journal().await.len();
    let res = app
        .client
        .post(format!("{}{ORDERS}", app.base))
        .headers(common::auth_headers(ORDERS))
        .header("idempotency-key", "pos-7-0001")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, again) = common::read(res).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], order["id"]);
    assert_eq!(again["ticket_no"], order["ticket_no"]);
    assert_eq!(again["tickets"], order["tickets"]);
    assert_eq!(app.journal().await.len(), journal_before);
    grill.assert_no_event(Duration::from_millis(200)).await;

    // Lines without `fire` are added held, in the same append as the open.
    let (status, held) = app
        .post(
            ORDERS,
            json!({"table": "t1", "guests": 2, "lines": [{"item": "caesar"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    assert_eq!(held["lines"][0]["status"], "held");
    assert_eq!(held["source"], "dine_in");
    let events = events_of(&app, held["id"].as_str().unwrap()).await;
    assert_eq!(kinds(&events), ["order_opened", "lines_added"]);
}

#[actix_web::test]
async fn a_one_call_order_refused_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    let (status, body) = app.put("/api/v1/branches/demo/86/fries", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (mut grill, _) = app.station_screen("grill").await;
    let journal = app.journal().await.len();

    let refused: [(Value, StatusCode, &str); 7] = [
        (
            json!({"table": "counter", "lines": [{"item": "steak"}, {"item": "fries"}], "fire": {}}),
            StatusCode::CONFLICT,
            "item_86",
        ),
        (
            json!({"table": "counter", "lines": [{"item": "steak"}, {"item": "unicorn"}]}),
            StatusCode::NOT_FOUND,
            "unknown_item",
        ),
        (
            json!({"table": "counter", "fire": {}}),
            StatusCode::CONFLICT,
            "nothing_to_fire",
        ),
        (
            json!({"table": "counter", "lines": [{"item": "steak", "quantity": 0}], "fire": {}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"table": "counter", "lines": [{"item": "steak"}], "fire": {"course": 3}}),
            StatusCode::CONFLICT,
            "nothing_to_fire",
        ),
        (
            json!({"table": "delivery", "external_ref": "has space", "lines": [{"item": "steak"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"table": "nowhere", "lines": [{"item": "steak"}], "fire": {}}),
            StatusCode::NOT_FOUND,
            "unknown_table",
        ),
    ];
    for (body, status, code) in refused {
        let (got, answer) = app.post(ORDERS, body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
    }
    let (got, answer) = app
        .post(ORDERS, json!({"table": "counter", "source": "drone"}))
        .await;
    assert!(got.is_client_error(), "{answer}");
    assert!(answer["error"]["code"].is_string(), "{answer}");

    // No order, no event, no ticket.
    assert_eq!(app.journal().await.len(), journal, "nothing was journaled");
    let (_, open) = app.get(ORDERS).await;
    assert_eq!(open, json!([]));
    grill.assert_no_event(Duration::from_millis(200)).await;
    assert!(station_orders(&app, "grill").await.is_empty());
}

#[actix_web::test]
async fn an_external_reference_names_one_order_a_day() {
    let app = TestApp::spawn().await;
    let (status, first) = app
        .post(
            ORDERS,
            json!({"table": "delivery", "external_ref": "YS-48213",
                   "lines": [{"item": "burger"}], "fire": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["source"], "delivery");
    assert_eq!(first["external_ref"], "YS-48213");
    assert_eq!(ticket(&first, "grill")["source"], "delivery");

    // The platform sends the order again (a webhook retried, with other lines even): it is
    // the same order, and nothing is opened or fired a second time.
    let journal = app.journal().await.len();
    let (status, again) = app
        .post(
            ORDERS,
            json!({"table": "delivery", "external_ref": "YS-48213",
                   "lines": [{"item": "steak"}], "fire": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["ticket_no"], first["ticket_no"]);
    assert_eq!(again["lines"], first["lines"]);
    assert_eq!(app.journal().await.len(), journal);

    // Another reference is another order; a source may be named whatever the table.
    let (status, other) = app
        .post(
            ORDERS,
            json!({"table": "counter", "source": "takeaway", "external_ref": "GETIR-77",
                   "lines": [{"item": "fries"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(other["id"], first["id"]);
    assert_eq!(other["source"], "takeaway");
    let (_, open) = app.get(ORDERS).await;
    assert_eq!(open.as_array().unwrap().len(), 2, "{open}");

    // The branch's event stream says where each order came from.
    let opened = &events_of(&app, first["id"].as_str().unwrap()).await[0];
    assert_eq!(opened["body"]["source"], "delivery");
    assert_eq!(opened["body"]["external_ref"], "YS-48213");
}

#[actix_web::test]
async fn a_rush_comes_first_on_every_screen() {
    let app = TestApp::spawn().await;
    let (mut grill, _) = app.station_screen("grill").await;
    let mut orders = Vec::new();
    for table in ["t1", "t2"] {
        let (status, order) = app
            .post(
                ORDERS,
                json!({"table": table, "lines": [{"item": "steak"}], "fire": {}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        assert_eq!(ticket(&order, "grill")["priority"], false);
        grill.next_event().await;
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    // A rush opened last is cooked first.
    let (status, rush) = app
        .post(
            ORDERS,
            json!({"table": "t3", "priority": true, "lines": [{"item": "salmon"}], "fire": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rush}");
    assert_eq!(rush["priority"], true);
    assert_eq!(ticket(&rush, "grill")["priority"], true);
    assert_eq!(ticket(&rush, "expo")["priority"], true);
    let fired = grill.next_event().await;
    assert_eq!(fired["event"]["priority"], true);
    let rush_id = rush["id"].as_str().unwrap().to_owned();
    assert_eq!(
        station_orders(&app, "grill").await,
        [rush_id.clone(), orders[0].clone(), orders[1].clone()]
    );
    assert_eq!(station_orders(&app, "expo").await[0], rush_id);

    // The second table becomes a rush: its tickets move up, and the screens are told.
    let path = format!("{ORDERS}/{}/priority", orders[1]);
    let (status, marked) = app.post(&path, json!({"priority": true})).await;
    assert_eq!(status, StatusCode::OK, "{marked}");
    assert_eq!(marked["priority"], true);
    let changed = grill.next_event().await;
    assert_eq!(changed["event"]["type"], "priority_changed");
    assert_eq!(changed["event"]["priority"], true);
    assert_eq!(changed["event"]["order_id"], orders[1].as_str());
    assert_eq!(
        station_orders(&app, "grill").await,
        [orders[1].clone(), rush_id.clone(), orders[0].clone()],
        "rushes first, oldest first among them"
    );
    let (status, again) = app.post(&path, json!({"priority": true})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["code"], "invalid_transition");
    let (status, bad) = app.post(&path, json!({"priority": "yes"})).await;
    assert!(status.is_client_error(), "{bad}");

    // A rush fire of an ordinary order: only that fire is a rush.
    let (_, order) = app
        .post(
            &format!("{ORDERS}/{}/lines", orders[0]),
            json!({"lines": [{"item": "burger"}]}),
        )
        .await;
    assert_eq!(order["priority"], false);
    let (status, fired) = app
        .post(
            &format!("{ORDERS}/{}/fire", orders[0]),
            json!({"priority": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fired}");
    let fires: Vec<(u64, bool)> = fired["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["station"] == "grill")
        .map(|t| (t["fire_no"].as_u64().unwrap(), t["priority"] == true))
        .collect();
    assert_eq!(fires, [(1, false), (2, true)]);
}

#[actix_web::test]
async fn the_branch_keeps_its_own_time_zone() {
    let app = TestApp::spawn().await;
    let (status, branch) = app.get("/api/v1/branches/demo").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(branch["config"]["time_zone"], "Europe/Istanbul");

    // Ticket numbers follow Istanbul's day (UTC+3 all year).
    let before = (Utc::now() + chrono::Duration::hours(3)).date_naive();
    let (_, order) = app.post(ORDERS, json!({"table": "t1"})).await;
    let after = (Utc::now() + chrono::Duration::hours(3)).date_naive();
    let day: chrono::NaiveDate = order["day"].as_str().unwrap().parse().unwrap();
    assert!(day == before || day == after, "{order}");

    // An unknown zone is refused and changes nothing.
    let mut config = branch["config"].clone();
    config["time_zone"] = json!("Europe/Atlantis");
    let journal = app.journal().await.len();
    let (status, refused) = app.put("/api/v1/branches/demo", config.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_input");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("time_zone"));
    assert_eq!(app.journal().await.len(), journal);

    // Another zone is taken and read back; without one the old fixed offset decides.
    config["time_zone"] = json!("America/New_York");
    let (status, set) = app.put("/api/v1/branches/demo", config.clone()).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    assert_eq!(branch["config"]["time_zone"], "America/New_York");
    config.as_object_mut().unwrap().remove("time_zone");
    let (status, _) = app.put("/api/v1/branches/demo", config).await;
    assert_eq!(status, StatusCode::OK);
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    assert!(branch["config"].get("time_zone").is_none(), "{branch}");
}

#[tokio::test]
async fn sources_references_and_rushes_survive_a_kill() {
    let journal = common::TestJournal::fresh().await;
    let server = Server::start(&journal).await;
    let delivery = server
        .post(
            "/orders",
            json!({"table": "delivery", "external_ref": "YS-90001", "priority": true,
                   "lines": [{"item": "steak"}, {"item": "fries"}], "fire": {}}),
        )
        .await;
    let dine_in = server
        .post(
            "/orders",
            json!({"table": "t2", "lines": [{"item": "salmon"}], "fire": {}}),
        )
        .await;
    let marked = server
        .post(
            &format!("/orders/{}/priority", dine_in["id"].as_str().unwrap()),
            json!({"priority": true}),
        )
        .await;
    let moved = server
        .post(
            &format!("/orders/{}/move", dine_in["id"].as_str().unwrap()),
            json!({"table": "t4"}),
        )
        .await;
    assert_eq!(moved["table"], "t4");
    let before = server.live_state().await;
    server.kill();

    let server = Server::start(&journal).await;
    assert_eq!(server.live_state().await, before, "the restart has it all");
    let id = delivery["id"].as_str().unwrap();
    let order = server.get(&format!("/orders/{id}")).await;
    assert_eq!(order["source"], "delivery");
    assert_eq!(order["external_ref"], "YS-90001");
    assert_eq!(order["priority"], true);
    let grill = server.get("/stations/grill/tickets").await;
    let on_grill: Vec<&Value> = grill.as_array().unwrap().iter().collect();
    assert_eq!(on_grill.len(), 2);
    assert!(on_grill.iter().all(|t| t["priority"] == true), "{grill}");
    assert_eq!(on_grill[1]["order_id"], marked["id"]);
    assert_eq!(on_grill[1]["table"], "t4", "the move survives too");
    assert_eq!(on_grill[1]["moved_from"], "t2");

    // The reference still names its order after the restart.
    let again = server
        .post(
            "/orders",
            json!({"table": "delivery", "external_ref": "YS-90001", "lines": [{"item": "burger"}]}),
        )
        .await;
    assert_eq!(again["id"], delivery["id"]);
    let open = server.get("/orders").await;
    assert_eq!(open.as_array().unwrap().len(), 2);
    server.kill();
}

/// The items and portions of an all-day body, in its order.
fn counts(all_day: &Value) -> Vec<(String, u64, u64)> {
    all_day["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item"].as_str().unwrap().to_owned(),
                i["quantity"].as_u64().unwrap(),
                i["tickets"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn the_all_day_counts_what_a_station_still_has_to_cook() {
    let app = TestApp::spawn().await;
    let (mut grill, _) = app.station_screen("grill").await;
    let joined = grill.next_of("all_day").await;
    assert_eq!(joined["station"], "grill");
    assert_eq!(counts(&joined), []);

    let (_, t1) = app
        .post(
            ORDERS,
            json!({"table": "t1", "lines": [{"item": "steak", "quantity": 2}, {"item": "burger"}],
                   "fire": {}}),
        )
        .await;
    let after_t1 = grill.next_of("all_day").await;
    assert_eq!(
        counts(&after_t1),
        [("steak".into(), 2, 1), ("burger".into(), 1, 1)]
    );
    let (_, t2) = app
        .post(
            ORDERS,
            json!({"table": "t2", "lines": [{"item": "steak"}], "fire": {}}),
        )
        .await;
    let expected = [("steak".to_owned(), 3, 2), ("burger".to_owned(), 1, 1)];
    assert_eq!(counts(&grill.next_of("all_day").await), expected);
    let (status, all_day) = app
        .get("/api/v1/branches/demo/stations/grill/all-day")
        .await;
    assert_eq!(status, StatusCode::OK, "{all_day}");
    assert_eq!(counts(&all_day), expected);
    assert_eq!(all_day["items"][0]["name"], "Ribeye Steak");
    let (_, fryer) = app
        .get("/api/v1/branches/demo/stations/fryer/all-day")
        .await;
    assert_eq!(counts(&fryer), [("burger".to_owned(), 1, 1)]);

    // A void leaves the count; a bump takes its ticket's portions off.
    let t2_id = t2["id"].as_str().unwrap();
    let (status, _) = app
        .post(&format!("{ORDERS}/{t2_id}/lines/1/void"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        counts(&grill.next_of("all_day").await),
        [("steak".to_owned(), 2, 1), ("burger".to_owned(), 1, 1)]
    );
    let grill_ticket = ticket(&t1, "grill")["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/branches/demo/stations/grill/tickets/{grill_ticket}/bump"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(counts(&grill.next_of("all_day").await), []);
    let (_, all_day) = app
        .get("/api/v1/branches/demo/stations/grill/all-day")
        .await;
    assert_eq!(counts(&all_day), []);

    let (status, body) = app.get("/api/v1/branches/demo/stations/wok/all-day").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "unknown_station");
}

#[actix_web::test]
async fn speed_of_service_counts_bumps_late_ones_and_recalls() {
    let app = TestApp::spawn().await;
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    let mut config = branch["config"].clone();
    config["late_after_seconds"] = json!(1);
    let (status, body) = app.put("/api/v1/branches/demo", config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let station = "/api/v1/branches/demo/stations/grill";
    let act = |ticket: &str, action: &str| format!("{station}/tickets/{ticket}/{action}");

    // Bumped at once: on time.
    let (_, fast) = app
        .post(
            ORDERS,
            json!({"table": "t1", "lines": [{"item": "steak"}], "fire": {}}),
        )
        .await;
    let fast = ticket(&fast, "grill")["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post(&act(&fast, "bump"), json!({})).await.0,
        StatusCode::OK
    );
    // Bumped after the limit, recalled, bumped again: late twice, one recall.
    let (_, slow) = app
        .post(
            ORDERS,
            json!({"table": "t2", "lines": [{"item": "steak"}, {"item": "salmon"}], "fire": {}}),
        )
        .await;
    let slow = ticket(&slow, "grill")["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for action in ["bump", "recall", "bump"] {
        let (status, body) = app.post(&act(&slow, action), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }

    let (status, speed) = app.get(&format!("{station}/speed")).await;
    assert_eq!(status, StatusCode::OK, "{speed}");
    assert_eq!(speed["station"], "grill");
    assert_eq!(speed["window_minutes"], 60);
    assert_eq!(speed["tickets"], 3, "{speed}");
    assert_eq!(speed["late"], 2, "{speed}");
    assert_eq!(speed["recalls"], 1, "{speed}");
    assert!(speed["p90_seconds"].as_f64().unwrap() >= 1.2, "{speed}");
    let average = speed["average_seconds"].as_f64().unwrap();
    assert!(
        average > 0.5 && average < speed["p90_seconds"].as_f64().unwrap(),
        "{speed}"
    );
    let items: Vec<(&str, u64, u64, u64)> = speed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item"].as_str().unwrap(),
                i["tickets"].as_u64().unwrap(),
                i["late"].as_u64().unwrap(),
                i["recalls"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(items, [("steak", 3, 2, 1), ("salmon", 2, 2, 1)]);
    let late = "rail_tickets_late_total{branch=\"demo\",station=\"grill\"}";
    assert_eq!(app.metric(late).await, Some(2.0));
    let recalls = "rail_ticket_recalls_total{branch=\"demo\",station=\"grill\"}";
    assert_eq!(app.metric(recalls).await, Some(1.0));

    // Another station has bumped nothing; a window must be 1 to 1440 minutes.
    let (_, cold) = app
        .get("/api/v1/branches/demo/stations/cold/speed?window_minutes=1440")
        .await;
    assert_eq!(cold["tickets"], 0);
    assert!(cold["p90_seconds"].is_null());
    for bad in ["0", "1441", "ten", "-5"] {
        let (status, body) = app
            .get(&format!("{station}/speed?window_minutes={bad}"))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input");
    }
}

/// What is left of each limited item, as the branch says.
async fn stock_of(app: &TestApp) -> Vec<(String, u64)> {
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    levels(&branch["stock"])
}

fn levels(stock: &Value) -> Vec<(String, u64)> {
    stock
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["item"].as_str().unwrap().to_owned(),
                s["left"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn a_limited_item_is_reserved_given_back_and_sold_out() {
    let app = TestApp::spawn().await;
    let (status, branch) = app
        .put("/api/v1/branches/demo/stock/steak", json!({"count": 3}))
        .await;
    assert_eq!(status, StatusCode::OK, "{branch}");
    assert_eq!(levels(&branch["stock"]), [("steak".to_owned(), 3)]);
    let steak = |left: u64| vec![("steak".to_owned(), left)];

    // Every screen of the branch hears what is left: the branch, a guest's table, a station.
    let mut manager = app.ws().await;
    manager.send(json!({"type": "subscribe"})).await;
    let guest = common::token_for("demo", rail::auth::Role::Guest, None, Some("qr-5"));
    let mut phone = app.ws_as(&guest).await;
    phone
        .send(json!({"type": "subscribe", "table": "qr-5"}))
        .await;
    let (mut grill, _) = app.station_screen("grill").await;
    for ws in [&mut manager, &mut phone, &mut grill] {
        assert_eq!(levels(&ws.next_of("stock").await["items"]), steak(3));
    }

    let (status, t1) = app
        .post(
            ORDERS,
            json!({"table": "t1", "lines": [{"item": "steak", "quantity": 2}], "fire": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t1}");
    assert_eq!(t1["lines"][0]["counted"], true);
    for ws in [&mut manager, &mut phone, &mut grill] {
        assert_eq!(levels(&ws.next_of("stock").await["items"]), steak(1));
    }

    // Two steaks when one is left: refused, and nothing of the request is added.
    let journal = app.journal().await.len();
    let (status, refused) = app
        .post(
            ORDERS,
            json!({"table": "t2", "lines": [{"item": "fries"}, {"item": "steak", "quantity": 2}],
                   "fire": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "item_sold_out");
    let t1_id = t1["id"].as_str().unwrap();
    let (status, refused) = app
        .post(
            &format!("{ORDERS}/{t1_id}/lines"),
            json!({"lines": [{"item": "caesar"}, {"item": "steak", "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "item_sold_out");
    assert_eq!(app.journal().await.len(), journal, "nothing journaled");
    let (_, open) = app.get(ORDERS).await;
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(stock_of(&app).await, steak(1));

    // The last one, then none.
    let (status, t2) = app
        .post(ORDERS, json!({"table": "t2", "lines": [{"item": "steak"}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t2}");
    assert_eq!(stock_of(&app).await, steak(0));
    let (status, refused) = app
        .post(ORDERS, json!({"table": "t3", "lines": [{"item": "steak"}]}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "item_sold_out");

    // A void gives back; lifting the limit lets anyone order it.
    let (status, _) = app
        .post(&format!("{ORDERS}/{t1_id}/lines/1/void"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stock_of(&app).await, steak(2));
    assert_eq!(levels(&phone.next_of("stock").await["items"]), steak(0));
    assert_eq!(levels(&phone.next_of("stock").await["items"]), steak(2));
    let (status, branch) = app.delete("/api/v1/branches/demo/stock/steak").await;
    assert_eq!(status, StatusCode::OK, "{branch}");
    assert_eq!(levels(&branch["stock"]), []);
    let (status, _) = app
        .post(
            ORDERS,
            json!({"table": "t3", "lines": [{"item": "steak", "quantity": 9}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A count is 0 to 99999, of an item on the menu.
    for bad in [
        json!({"count": -1}),
        json!({"count": 100000}),
        json!({"count": "ten"}),
        json!({}),
    ] {
        let (status, body) = app
            .put("/api/v1/branches/demo/stock/steak", bad.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, body) = app
        .put("/api/v1/branches/demo/stock/unicorn", json!({"count": 1}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(stock_of(&app).await, []);
}

#[actix_web::test]
async fn the_last_portions_go_to_exactly_as_many_orders_as_are_left() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let (status, _) = app
        .put("/api/v1/branches/demo/stock/salmon", json!({"count": 5}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let tables = [
        "t1", "t2", "t3", "t4", "counter", "takeaway", "delivery", "qr-5",
    ];
    let orders = (0..24).map(|i| {
        let app = app.clone();
        let table = tables[i % tables.len()];
        async move {
            app.post(
                ORDERS,
                json!({"table": table, "lines": [{"item": "salmon"}], "fire": {}}),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(orders).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let sold_out = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "item_sold_out")
        .count();
    assert_eq!((created, sold_out), (5, 19), "{answers:?}");
    assert_eq!(stock_of(&app).await, [("salmon".to_owned(), 0)]);
}

#[tokio::test]
async fn what_is_left_survives_a_kill_with_or_without_a_snapshot() {
    for env in [&[][..], &[("RAIL_SNAPSHOT_EVERY", "2")][..]] {
        let journal = common::TestJournal::fresh().await;
        let server = Server::start_with(&journal, env).await;
        let res = server
            .client
            .put(format!("{}/api/v1/branches/demo/stock/steak", server.base))
            .json(&json!({"count": 6}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        // An order that takes two and is closed (its stream is no longer open) ...
        let done = server
            .post(
                "/orders",
                json!({"table": "counter", "lines": [{"item": "steak", "quantity": 2}], "fire": {}}),
            )
            .await;
        for station in ["grill", "expo"] {
            let id = ticket(&done, station)["id"].as_str().unwrap().to_owned();
            server
                .post(&format!("/stations/{station}/tickets/{id}/bump"), json!({}))
                .await;
        }
        let id = done["id"].as_str().unwrap();
        server.post(&format!("/orders/{id}/serve"), json!({})).await;
        server.post(&format!("/orders/{id}/close"), json!({})).await;
        // ... one that takes three and voids one of them, ...
        let open = server
            .post(
                "/orders",
                json!({"table": "t1", "lines": [{"item": "steak", "quantity": 1}, {"item": "steak", "quantity": 2}]}),
            )
            .await;
        let id = open["id"].as_str().unwrap();
        server
            .post(&format!("/orders/{id}/lines/1/void"), json!({}))
            .await;
        let before = server.get("").await["stock"].clone();
        assert_eq!(levels(&before), [("steak".to_owned(), 2)], "{env:?}");
        server.kill();

        // ... and after the crash two are left still.
        let server = Server::start_with(&journal, env).await;
        assert_eq!(server.get("").await["stock"], before, "{env:?}");
        let res = server
            .client
            .post(format!("{}/api/v1/branches/demo/orders", server.base))
            .json(&json!({"table": "t2", "lines": [{"item": "steak", "quantity": 3}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT, "{env:?}");
        server
            .post(
                "/orders",
                json!({"table": "t2", "lines": [{"item": "steak", "quantity": 2}]}),
            )
            .await;
        assert_eq!(
            levels(&server.get("").await["stock"]),
            [("steak".to_owned(), 0)]
        );
        server.kill();
    }
}

#[actix_web::test]
async fn an_order_moves_to_another_table_and_its_tickets_follow() {
    let app = TestApp::spawn().await;
    let (mut grill, _) = app.station_screen("grill").await;
    let mut tablets = Vec::new();
    for table in ["t1", "t4"] {
        let mut ws = app.ws().await;
        ws.send(json!({"type": "subscribe", "table": table})).await;
        ws.next_of("snapshot").await;
        tablets.push(ws);
    }
    let (_, order) = app
        .post(
            ORDERS,
            json!({"table": "t1", "lines": [{"item": "steak"}, {"item": "brownie", "course": 2}],
                   "fire": {"course": 1}}),
        )
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    grill.next_event().await;
    while tablets[0].next_event().await["event"]["type"] != "course_fired" {}

    let path = format!("{ORDERS}/{id}/move");
    let (status, moved) = app.post(&path, json!({"table": "t4"})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["table"], "t4");
    assert_eq!(moved["ticket_no"], order["ticket_no"], "the number stays");
    for t in moved["tickets"].as_array().unwrap() {
        assert_eq!(t["table"], "t4");
        assert_eq!(t["moved_from"], "t1");
    }
    let at_grill = grill.next_event().await;
    assert_eq!(at_grill["event"]["type"], "order_moved");
    assert_eq!(at_grill["event"]["from"], "t1");
    assert_eq!(at_grill["event"]["to"], "t4");
    for tablet in &mut tablets {
        let told = tablet.next_event().await;
        assert_eq!(told["event"]["type"], "order_moved", "{told}");
        assert_eq!(told["position"], at_grill["position"]);
    }
    let (_, tickets) = app
        .get("/api/v1/branches/demo/stations/grill/tickets")
        .await;
    assert_eq!(tickets[0]["table"], "t4");
    assert_eq!(tickets[0]["moved_from"], "t1");

    // The order goes on at its new table at once: the next fire's tickets are its, and only
    // the new table's tablet hears of it.
    let (status, fired) = app.post(&format!("{ORDERS}/{id}/fire"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{fired}");
    let pastry = fired["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "pastry")
        .unwrap();
    assert_eq!(pastry["table"], "t4");
    assert_eq!(
        tablets[1].next_event().await["event"]["type"],
        "course_fired"
    );
    tablets[0].assert_no_event(Duration::from_millis(300)).await;
    let (_, open) = app.get(ORDERS).await;
    assert_eq!(open[0]["table"], "t4");

    // Refused, changing nothing: the same table, a table the branch has not, a closed order.
    let journal = app.journal().await.len();
    let (status, body) = app.post(&path, json!({"table": "t4"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "invalid_transition");
    let (status, body) = app.post(&path, json!({"table": "t99"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "unknown_table");
    let (status, body) = app.post(&path, json!({"table": 4})).await;
    assert!(status.is_client_error(), "{body}");
    assert_eq!(app.journal().await.len(), journal);

    // Moved back and forth, it is still one order.
    let (status, back) = app.post(&path, json!({"table": "t1"})).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["tickets"][0]["moved_from"], "t4");
    let (status, lines) = app
        .post(
            &format!("{ORDERS}/{id}/lines"),
            json!({"lines": [{"item": "caesar"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{lines}");
    assert_eq!(lines["table"], "t1");
}

/// Sets the demo branch's course pacing.
async fn pace_courses(app: &TestApp, seconds: u64) {
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    let mut config = branch["config"].clone();
    config["course_pace_seconds"] = json!(seconds);
    let (status, body) = app.put("/api/v1/branches/demo", config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn bump(app: &TestApp, order: &Value, station: &str, fire: u64) {
    let id = order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == station && t["fire_no"] == fire)
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no {station} ticket of fire {fire} in {order}"));
    let path = format!("/api/v1/branches/demo/stations/{station}/tickets/{id}/bump");
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn order_now(app: &TestApp, id: &str) -> Value {
    let (status, order) = app.get(&format!("{ORDERS}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    order
}

#[actix_web::test]
async fn courses_are_paced_after_expo_sends_the_one_before() {
    let app = TestApp::spawn().await;
    pace_courses(&app, 2).await;
    let (mut expo, _) = app.station_screen("expo").await;
    let (mut grill, _) = app.station_screen("grill").await;
    let (_, order) = app
        .post(
            ORDERS,
            json!({"table": "t1", "lines": [
                {"item": "caesar", "course": 1}, {"item": "steak", "course": 2},
                {"item": "brownie", "course": 3}], "fire": {"course": 1}}),
        )
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(
        order["next_course"].is_null(),
        "nothing paced before expo sends course 1"
    );
    bump(&app, &order, "cold", 1).await;
    bump(&app, &order, "expo", 1).await;
    let sent_at = std::time::Instant::now();
    let scheduled = next_event_of_type(&mut expo, "course_scheduled").await;
    assert_eq!(scheduled["event"]["course"], 2);
    let stations: Vec<&str> = scheduled["event"]["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(stations, ["expo", "grill"]);
    let waiting = order_now(&app, &id).await;
    assert_eq!(waiting["next_course"]["course"], 2, "{waiting}");
    assert_eq!(waiting["next_course"]["at"], scheduled["event"]["at"]);

    // Course 2 fires by itself when its time comes.
    let fired = next_event_of_type(&mut grill, "course_fired").await;
    let waited = sent_at.elapsed();
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert!(waited < Duration::from_millis(3500), "{waited:?}");
    assert_eq!(fired["event"]["course"], 2);
    let paced = order_now(&app, &id).await;
    assert!(paced["next_course"].is_null(), "{paced}");

    // Expo sends course 2; the waiter fires course 3 sooner, and it fires once only.
    bump(&app, &paced, "grill", 2).await;
    bump(&app, &paced, "expo", 2).await;
    assert_eq!(
        next_event_of_type(&mut expo, "course_scheduled").await["event"]["course"],
        3
    );
    let (status, now) = app
        .post(&format!("{ORDERS}/{id}/fire-next"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert_eq!(now["fires"], 3);
    assert!(now["next_course"].is_null());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fires = events_of(&app, &id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "course_fired")
        .count();
    assert_eq!(fires, 3, "course 3 fired once");
    let (status, body) = app
        .post(&format!("{ORDERS}/{id}/fire-next"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "nothing_to_fire");
}

/// The next event of a type, skipping others.
async fn next_event_of_type(ws: &mut common::Ws, kind: &str) -> Value {
    loop {
        let event = ws.next_event().await;
        if event["event"]["type"] == kind {
            return event;
        }
    }
}

#[tokio::test]
async fn a_paced_course_fires_after_a_restart_too() {
    let journal = common::TestJournal::fresh().await;
    let server = Server::start(&journal).await;
    let branch = server.get("").await;
    let mut config = branch["config"].clone();
    config["course_pace_seconds"] = json!(2);
    let res = server
        .client
        .put(format!("{}/api/v1/branches/demo", server.base))
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let order = server
        .post(
            "/orders",
            json!({"table": "t2", "lines": [{"item": "caesar"}, {"item": "salmon", "course": 2}],
                   "fire": {"course": 1}}),
        )
        .await;
    for station in ["cold", "expo"] {
        let id = ticket(&order, station)["id"].as_str().unwrap().to_owned();
        server
            .post(&format!("/stations/{station}/tickets/{id}/bump"), json!({}))
            .await;
    }
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        server.get(&format!("/orders/{id}")).await["next_course"]["course"],
        2
    );
    server.kill();

    let server = Server::start(&journal).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let order = server.get(&format!("/orders/{id}")).await;
        if order["fires"] == 2 {
            assert!(order["next_course"].is_null());
            break;
        }
        assert_eq!(
            order["next_course"]["course"], 2,
            "the schedule survives: {order}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "course 2 never fired: {order}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill();
}

/// Gives the demo's steak, fries and caesar prep times (12, 4 and 3 minutes).
fn with_prep_times(config: &mut Value) {
    for item in config["items"].as_array_mut().unwrap() {
        let seconds = match item["id"].as_str().unwrap() {
            "steak" => 720,
            "fries" => 240,
            "caesar" => 180,
            _ => continue,
        };
        item["prep_seconds"] = json!(seconds);
    }
}

fn held_for(order: &Value, station: &str) -> Option<i64> {
    let t = ticket(order, station);
    let fired: chrono::DateTime<Utc> = t["fired_at"].as_str().unwrap().parse().unwrap();
    let starts = t["starts_at"].as_str()?;
    let starts: chrono::DateTime<Utc> = starts.parse().unwrap();
    Some((starts - fired).num_seconds())
}

const STEAK_FRIES_SALAD: &str =
    r#"{"lines": [{"item": "steak"}, {"item": "fries"}, {"item": "caesar"}], "fire": {}}"#;

fn steak_fries_salad(table: &str) -> Value {
    let mut body: Value = serde_json::from_str(STEAK_FRIES_SALAD).unwrap();
    body["table"] = json!(table);
    body
}

#[actix_web::test]
async fn a_fire_is_released_by_prep_time_and_learns_from_the_kitchen() {
    let app = TestApp::spawn().await;
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    let mut config = branch["config"].clone();
    with_prep_times(&mut config);
    let (status, body) = app.put("/api/v1/branches/demo", config).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The steak starts at once; the fries and the salad wait to be done with it.
    let (status, first) = app.post(ORDERS, steak_fries_salad("t1")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(held_for(&first, "grill"), None);
    assert_eq!(held_for(&first, "fryer"), Some(480));
    assert_eq!(held_for(&first, "cold"), Some(540));
    assert_eq!(held_for(&first, "expo"), None);
    let (_, fryer) = app
        .get("/api/v1/branches/demo/stations/fryer/tickets")
        .await;
    assert_eq!(fryer[0]["starts_at"], ticket(&first, "fryer")["starts_at"]);

    // This grill cooks a steak in about a second: the next fire holds the steak instead.
    let grill = ticket(&first, "grill")["id"].as_str().unwrap().to_owned();
    let act =
        |action: &str| format!("/api/v1/branches/demo/stations/grill/tickets/{grill}/{action}");
    assert_eq!(app.post(&act("start"), json!({})).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.post(&act("bump"), json!({})).await.0, StatusCode::OK);
    let (_, second) = app.post(ORDERS, steak_fries_salad("t2")).await;
    assert_eq!(
        held_for(&second, "fryer"),
        None,
        "the fries take longest now: {second}"
    );
    let steak_held = held_for(&second, "grill").expect("the steak waits");
    assert!(steak_held > 200, "{steak_held} s");

    // Bad prep times and lanes are refused.
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    for (path, bad) in [
        ("items", json!(0)),
        ("items", json!(7201)),
        ("stations", json!(0)),
    ] {
        let mut config = branch["config"].clone();
        let field = if path == "items" {
            "prep_seconds"
        } else {
            "lanes"
        };
        config[path][0][field] = bad.clone();
        let (status, body) = app.put("/api/v1/branches/demo", config).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field} {bad}: {body}"
        );
    }
}

#[tokio::test]
async fn learned_prep_times_survive_a_kill() {
    for env in [&[][..], &[("RAIL_SNAPSHOT_EVERY", "2")][..]] {
        let journal = common::TestJournal::fresh().await;
        let server = Server::start_with(&journal, env).await;
        let mut config = server.get("").await["config"].clone();
        with_prep_times(&mut config);
        let res = server
            .client
            .put(format!("{}/api/v1/branches/demo", server.base))
            .json(&config)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let first = server.post("/orders", steak_fries_salad("t1")).await;
        let grill = ticket(&first, "grill")["id"].as_str().unwrap().to_owned();
        server
            .post(&format!("/stations/grill/tickets/{grill}/start"), json!({}))
            .await;
        server
            .post(&format!("/stations/grill/tickets/{grill}/bump"), json!({}))
            .await;
        let learned = server.post("/orders", steak_fries_salad("t2")).await;
        assert_eq!(held_for(&learned, "fryer"), None, "{env:?}");
        server.kill();

        let server = Server::start_with(&journal, env).await;
        let after = server.post("/orders", steak_fries_salad("t3")).await;
        assert_eq!(
            held_for(&after, "fryer"),
            None,
            "still learned after the restart: {env:?}"
        );
        assert!(held_for(&after, "grill").is_some(), "{env:?}");
        server.kill();
    }
}

#[actix_web::test]
async fn two_open_orders_merge_into_one() {
    let app = TestApp::spawn().await;
    let (mut grill, _) = app.station_screen("grill").await;
    let (mut expo, _) = app.station_screen("expo").await;
    let mut t4 = app.ws().await;
    t4.send(json!({"type": "subscribe", "table": "t4"})).await;
    t4.next_of("snapshot").await;
    // The party at t1 has eaten its starter; the party at t4 has a steak on the grill and a
    // dessert held.
    let (_, into) = app
        .post(
            ORDERS,
            json!({"table": "t1", "lines": [{"item": "caesar"}, {"item": "salmon", "course": 2}],
                   "fire": {"course": 1}}),
        )
        .await;
    let (_, from) = app
        .post(
            ORDERS,
            json!({"table": "t4", "lines": [{"item": "steak"}, {"item": "brownie", "course": 2}],
                   "fire": {"course": 1}}),
        )
        .await;
    let (into_id, from_id) = (
        into["id"].as_str().unwrap().to_owned(),
        from["id"].as_str().unwrap().to_owned(),
    );
    let steak = ticket(&from, "grill")["id"].as_str().unwrap().to_owned();
    while grill.next_event().await["event"]["type"] != "course_fired" {}
    while t4.next_event().await["event"]["type"] != "course_fired" {}

    let path = format!("{ORDERS}/{into_id}/merge");
    let (status, merged) = app.post(&path, json!({"from": from_id})).await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    let lines: Vec<(u64, &str, &str)> = merged["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_u64().unwrap(),
                l["item"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (1, "caesar", "fired"),
            (2, "salmon", "held"),
            (3, "steak", "fired"),
            (4, "brownie", "held")
        ]
    );
    assert_eq!(merged["fires"], 2);
    let grill_ticket = ticket(&merged, "grill");
    assert_eq!(grill_ticket["id"], steak.as_str(), "the same ticket");
    assert_eq!(grill_ticket["order_id"], into_id.as_str());
    assert_eq!(grill_ticket["table"], "t1");
    assert_eq!(grill_ticket["moved_from"], "t4");
    assert_eq!(
        grill_ticket["ticket_no"], from["ticket_no"],
        "its number stays"
    );
    assert_eq!(grill_ticket["fire_no"], 2);
    assert_eq!(grill_ticket["lines"][0]["line_id"], 3);

    // The grill's screen sees its ticket is the other order's now; t4's tablet is told.
    let at_grill = grill.next_event().await;
    assert_eq!(at_grill["event"]["type"], "orders_merged");
    assert_eq!(at_grill["event"]["from"], from_id.as_str());
    let told = t4.next_event().await;
    assert_eq!(told["event"]["type"], "orders_merged", "{told}");
    let closed = t4.next_event().await;
    assert_eq!(closed["event"]["type"], "merged_into");
    assert_eq!(closed["event"]["into"], into_id.as_str());
    let (_, gone) = app.get(&format!("{ORDERS}/{from_id}")).await;
    assert!(gone["closed_at"].is_string(), "{gone}");
    let (_, open) = app.get(ORDERS).await;
    assert_eq!(open.as_array().unwrap().len(), 1);

    // The merged fire goes through the kitchen as the order's own: bump it at the grill and
    // at expo, and its lines are ready.
    let (status, _) = app
        .post(
            &format!("/api/v1/branches/demo/stations/grill/tickets/{steak}/bump"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let expo_ticket = merged["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "expo" && t["fire_no"] == 2)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    loop {
        let e = expo.next_event().await;
        if e["event"]["type"] == "expo_ready" && e["event"]["fire_no"] == 2 {
            break;
        }
    }
    let (status, sent) = app
        .post(
            &format!("/api/v1/branches/demo/stations/expo/tickets/{expo_ticket}/bump"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let order = order_now(&app, &into_id).await;
    assert_eq!(order["lines"][2]["status"], "ready");

    // Refused, changing nothing: the same order, one that is merged already, one unknown.
    let journal = app.journal().await.len();
    for (body, code) in [
        (json!({"from": into_id}), "invalid_transition"),
        (json!({"from": from_id}), "unknown_order"),
        (
            json!({"from": uuid::Uuid::new_v4().to_string()}),
            "unknown_order",
        ),
        (json!({"from": "nobody"}), "unknown_order"),
    ] {
        let (status, answer) = app.post(&path, body.clone()).await;
        assert!(status.is_client_error(), "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    assert_eq!(app.journal().await.len(), journal);
}
