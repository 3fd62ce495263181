//! Delivery receipts: kitchen screens acknowledge the tickets they show (`seen`), and a ticket
//! no screen of its station acknowledges within the branch's limit is escalated to expo and
//! managers (`ticket_unseen`), counted in the metrics, and cleared when a screen shows it.
//! Over real HTTP and websockets, on the journal `RAIL_TEST_JOURNAL` names.

mod common;

use std::time::{Duration, Instant};

use common::{Server, TestApp, Ws};
use rail::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

const LIMIT_SECONDS: u64 = 2;

/// Sets the demo branch's acknowledgement limit.
async fn limit_unseen(app: &TestApp, seconds: u64) {
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    let mut config = branch["config"].clone();
    config["unseen_after_seconds"] = json!(seconds);
    let (status, body) = app.put("/api/v1/branches/demo", config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Fires one line at a table; returns the order and the instant its answer came.
async fn fire(app: &TestApp, table: &str, item: &str) -> (Value, Instant) {
    let (status, order) = app
        .post(
            "/api/v1/branches/demo/orders",
            json!({"table": table, "lines": [{"item": item}], "fire": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    (order, Instant::now())
}

fn ticket_id(order: &Value, station: &str) -> String {
    order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == station)
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no {station} ticket in {order}"))
        .to_owned()
}

/// A kitchen screen of `station` (its own token), following it.
async fn kitchen_screen(app: &TestApp, station: &str) -> Ws {
    let token = common::token_for("demo", Role::Kitchen, Some(station), None);
    let mut ws = app.ws_as(&token).await;
    ws.send(json!({"type": "subscribe", "station": station}))
        .await;
    ws.next_of("snapshot").await;
    ws
}

/// The next event of a kind, skipping others.
async fn next_event_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let event = ws.next_event().await;
        if event["event"]["type"] == kind {
            return event;
        }
    }
}

async fn seen(ws: &mut Ws, station: &str, tickets: &[&str]) {
    ws.send(json!({"type": "seen", "station": station, "tickets": tickets}))
        .await;
}

#[actix_web::test]
async fn a_ticket_the_grills_screen_never_shows_is_escalated_within_the_limit() {
    let app = TestApp::spawn().await;
    limit_unseen(&app, LIMIT_SECONDS).await;
    let mut grill = kitchen_screen(&app, "grill").await;
    let mut expo = kitchen_screen(&app, "expo").await;
    let mut manager = app.ws().await;
    manager.send(json!({"type": "subscribe"})).await;
    manager.next_of("snapshot").await;

    // The grill's screen shows the first ticket and says so: nothing is escalated.
    let (first, _) = fire(&app, "t1", "steak").await;
    let shown = grill.next_event().await;
    assert_eq!(shown["event"]["type"], "course_fired");
    let first_grill = ticket_id(&first, "grill");
    seen(&mut grill, "grill", &[&first_grill]).await;
    expo.next_event().await;
    seen(&mut expo, "expo", &[&ticket_id(&first, "expo")]).await;
    expo.assert_no_event(Duration::from_secs(LIMIT_SECONDS + 1))
        .await;
    let unseen_total = "rail_ticket_unseen_total{branch=\"demo\",station=\"grill\"}";
    assert_eq!(app.metric(unseen_total).await, Some(0.0));

    // Then it freezes: the next ticket reaches it but is never acknowledged.
    let (second, fired_at) = fire(&app, "t2", "salmon").await;
    let second_grill = ticket_id(&second, "grill");
    grill.next_event().await;
    expo.next_event().await;
    seen(&mut expo, "expo", &[&ticket_id(&second, "expo")]).await;
    let escalated = next_event_of(&mut expo, "ticket_unseen").await;
    let waited = fired_at.elapsed();
    assert!(
        waited < Duration::from_secs(LIMIT_SECONDS + 1),
        "escalated {waited:?} after the fire; the limit is {LIMIT_SECONDS} s"
    );
    assert!(waited >= Duration::from_secs(LIMIT_SECONDS), "{waited:?}");
    let event = &escalated["event"];
    assert_eq!(event["ticket_id"], second_grill.as_str());
    assert_eq!(event["station"], "grill");
    assert_eq!(event["expo"], "expo");
    assert!(event["waited_seconds"].as_u64().unwrap() >= LIMIT_SECONDS);
    let at_manager = next_event_of(&mut manager, "ticket_unseen").await;
    assert_eq!(at_manager["position"], escalated["position"]);
    // Counted by the grill's own actor, which may hear the event just after expo's screen.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while app.metric(unseen_total).await != Some(1.0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.metric(unseen_total).await, Some(1.0));
    let current = "rail_station_unseen_tickets{branch=\"demo\",station=\"grill\"}";
    assert_eq!(app.metric(current).await, Some(1.0));
    let (_, tickets) = app
        .get("/api/v1/branches/demo/stations/grill/tickets")
        .await;
    let flags: Vec<(String, bool)> = tickets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_owned(), t["unseen"] == true))
        .collect();
    assert_eq!(flags, [(first_grill, false), (second_grill.clone(), true)]);

    // Escalated once, not every second after.
    expo.assert_no_event(Duration::from_millis(1500)).await;
    assert_eq!(app.metric(unseen_total).await, Some(1.0));

    // The screen comes back and shows it: expo is told, the count drops.
    seen(&mut grill, "grill", &[&second_grill]).await;
    let cleared = next_event_of(&mut expo, "ticket_seen").await;
    assert_eq!(cleared["event"]["ticket_id"], second_grill.as_str());
    let mut gauge = None;
    for _ in 0..40 {
        gauge = app.metric(current).await;
        if gauge == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gauge, Some(0.0));
    let (_, tickets) = app
        .get("/api/v1/branches/demo/stations/grill/tickets")
        .await;
    assert!(tickets
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["unseen"] == false));
}

#[actix_web::test]
async fn a_station_with_no_screen_gets_its_tickets_escalated() {
    let app = TestApp::spawn().await;
    limit_unseen(&app, 1).await;
    let mut expo = kitchen_screen(&app, "expo").await;
    // No pastry screen at all.
    let (order, fired_at) = fire(&app, "t3", "brownie").await;
    expo.next_event().await;
    seen(&mut expo, "expo", &[&ticket_id(&order, "expo")]).await;
    let escalated = next_event_of(&mut expo, "ticket_unseen").await;
    assert_eq!(escalated["event"]["station"], "pastry");
    assert!(fired_at.elapsed() < Duration::from_secs(2));
    // Expo's own ticket was acknowledged: only the pastry's is escalated.
    expo.assert_no_event(Duration::from_millis(1500)).await;
}

#[actix_web::test]
async fn a_bad_seen_frame_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    limit_unseen(&app, LIMIT_SECONDS).await;
    let mut grill = kitchen_screen(&app, "grill").await;
    let journal = app.journal().await.len();

    // Another station's screen, a station the branch has not, a ticket id that is none.
    seen(&mut grill, "fryer", &[]).await;
    assert_eq!(grill.next_of("error").await["code"], "forbidden");
    let mut manager = app.ws().await;
    seen(&mut manager, "wok", &[]).await;
    assert_eq!(manager.next_of("error").await["code"], "unknown_station");
    grill
        .send(json!({"type": "seen", "station": "grill", "tickets": ["not-a-ticket"]}))
        .await;
    assert_eq!(grill.next_of("error").await["code"], "malformed_frame");
    let many: Vec<String> = (0..501).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    grill
        .send(json!({"type": "seen", "station": "grill", "tickets": many}))
        .await;
    assert_eq!(grill.next_of("error").await["code"], "invalid_input");
    // A ticket that is not live here (never was, or bumped since) is no error: nothing.
    seen(&mut grill, "grill", &[&uuid::Uuid::new_v4().to_string()]).await;
    grill.assert_no_event(Duration::from_millis(300)).await;
    assert_eq!(app.journal().await.len(), journal);

    // The limit is 1 to 600 seconds.
    let (_, branch) = app.get("/api/v1/branches/demo").await;
    for bad in [json!(0), json!(601), json!("ten")] {
        let mut config = branch["config"].clone();
        config["unseen_after_seconds"] = bad.clone();
        let (status, body) = app.put("/api/v1/branches/demo", config).await;
        assert!(status.is_client_error(), "{bad}: {body}");
    }
    assert_eq!(app.journal().await.len(), journal);
}

#[tokio::test]
async fn an_unseen_ticket_stays_unseen_across_a_restart() {
    let journal = common::TestJournal::fresh().await;
    let server = Server::start(&journal).await;
    let branch = server.get("").await;
    let mut config = branch["config"].clone();
    config["unseen_after_seconds"] = json!(1);
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
            json!({"table": "t1", "lines": [{"item": "steak"}], "fire": {}}),
        )
        .await;
    let grill = ticket_id(&order, "grill");
    let deadline = Instant::now() + Duration::from_secs(10);
    let unseen_of = |tickets: &Value| -> Vec<(String, bool)> {
        tickets
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["id"].as_str().unwrap().to_owned(), t["unseen"] == true))
            .collect()
    };
    loop {
        let tickets = server.get("/stations/grill/tickets").await;
        if unseen_of(&tickets) == [(grill.clone(), true)] {
            break;
        }
        assert!(Instant::now() < deadline, "never escalated: {tickets}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events_before = server.get("/events?limit=1000").await;
    server.kill();

    let server = Server::start(&journal).await;
    let tickets = server.get("/stations/grill/tickets").await;
    assert_eq!(unseen_of(&tickets), [(grill, true)], "still unseen");
    // Not escalated a second time after the restart.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let events_after = server.get("/events?limit=1000").await;
    let unseen = |events: &Value| {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "ticket_unseen" && e["body"]["station"] == "grill")
            .count()
    };
    assert_eq!(unseen(&events_before), 1);
    assert_eq!(unseen(&events_after), 1);
    server.kill();
}
