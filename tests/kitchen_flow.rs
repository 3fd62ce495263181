//! An order's trip through the kitchen, watched from the station, expo and table screens.

mod common;

use std::time::Duration;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn fired_order_reaches_only_its_stations_and_expo_bump_reaches_the_table() {
    let app = TestApp::spawn().await;
    let (mut grill, _) = app.station_screen("grill").await;
    let (mut cold, _) = app.station_screen("cold").await;
    let (mut bar, _) = app.station_screen("bar").await;
    let (mut expo, _) = app.station_screen("expo").await;
    let mut table = app.ws().await;
    table
        .send(json!({"type": "subscribe", "branch": "demo", "table": "t2"}))
        .await;
    let snapshot = table.next_of("snapshot").await;
    assert_eq!(snapshot["snapshot"]["kind"], "table");

    let order = app.open_order("t2").await;
    app.fire_lines(
        &order,
        json!([
            {"item": "steak", "modifiers": ["medium rare"], "seat": 1},
            {"item": "caesar", "note": "dressing on the side", "seat": 2}
        ]),
    )
    .await;

    // One ticket on each station the lines route to, none elsewhere.
    let on_grill = grill.next_event().await;
    assert_eq!(on_grill["event"]["type"], "course_fired");
    let tickets = on_grill["event"]["tickets"].as_array().unwrap();
    let grill_ticket = tickets
        .iter()
        .find(|t| t["station"] == "grill")
        .unwrap()
        .clone();
    let cold_ticket = tickets
        .iter()
        .find(|t| t["station"] == "cold")
        .unwrap()
        .clone();
    assert_eq!(grill_ticket["lines"][0]["item"], "steak");
    assert_eq!(grill_ticket["lines"][0]["modifiers"][0], "medium rare");
    assert_eq!(grill_ticket["lines"].as_array().unwrap().len(), 1);
    assert_eq!(cold_ticket["lines"][0]["note"], "dressing on the side");
    let on_cold = cold.next_event().await;
    assert_eq!(on_cold["position"], on_grill["position"]);
    let on_expo = expo.next_event().await;
    let expo_ticket = on_expo["event"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "expo")
        .unwrap()
        .clone();
    assert_eq!(expo_ticket["lines"].as_array().unwrap().len(), 2);
    bar.assert_no_event(Duration::from_millis(300)).await;

    let (_, grill_live) = app
        .get("/api/v1/branches/demo/stations/grill/tickets")
        .await;
    assert_eq!(grill_live.as_array().unwrap().len(), 1);
    let (_, bar_live) = app.get("/api/v1/branches/demo/stations/bar/tickets").await;
    assert_eq!(bar_live.as_array().unwrap().len(), 0);

    // The grill cook starts and bumps over the socket; the cold station over REST.
    let gid = grill_ticket["id"].as_str().unwrap();
    grill.send(json!({"type": "start", "id": "g1", "branch": "demo", "station": "grill", "ticket": gid})).await;
    let ack = grill.next_of("ack").await;
    assert_eq!(ack["id"], "g1");
    assert_eq!(ack["ticket"]["status"], "started");
    grill.send(json!({"type": "bump", "id": "g2", "branch": "demo", "station": "grill", "ticket": gid})).await;
    assert_eq!(grill.next_of("ack").await["ticket"]["status"], "bumped");

    // Expo cannot send the order while the salad is still being made.
    let eid = expo_ticket["id"].as_str().unwrap();
    expo.send(
        json!({"type": "bump", "id": "e0", "branch": "demo", "station": "expo", "ticket": eid}),
    )
    .await;
    let refused = expo.next_of("error").await;
    assert_eq!(refused["id"], "e0");
    assert_eq!(refused["code"], "parts_pending");

    let cid = cold_ticket["id"].as_str().unwrap();
    let (status, bumped) = app
        .post(
            &format!("/api/v1/branches/demo/stations/cold/tickets/{cid}/bump"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bumped}");

    // Every cooking part is done: expo sees the order ready to send.
    loop {
        let e = expo.next_event().await;
        if e["event"]["type"] == "expo_ready" {
            assert_eq!(e["event"]["ticket_id"], eid);
            break;
        }
    }
    expo.send(
        json!({"type": "bump", "id": "e1", "branch": "demo", "station": "expo", "ticket": eid}),
    )
    .await;
    assert_eq!(expo.next_of("ack").await["ticket"]["status"], "bumped");

    // The waiter's tablet hears that the food is ready.
    loop {
        let e = table.next_event().await;
        if e["event"]["type"] == "order_ready" {
            assert_eq!(e["event"]["order_id"], order.as_str());
            assert_eq!(e["event"]["lines"], json!([1, 2]));
            break;
        }
    }
    let (_, read) = app
        .get(&format!("/api/v1/branches/demo/orders/{order}"))
        .await;
    assert!(
        read["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["status"] == "ready"),
        "{read}"
    );

    // Served and closed, the order leaves the live state but stays readable.
    let (status, _) = app
        .post(
            &format!("/api/v1/branches/demo/orders/{order}/serve"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, closed) = app
        .post(
            &format!("/api/v1/branches/demo/orders/{order}/close"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let (status, read) = app
        .get(&format!("/api/v1/branches/demo/orders/{order}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(read["closed_at"].is_string());
    let (_, open) = app.get("/api/v1/branches/demo/orders").await;
    assert!(open.as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn void_reaches_the_kitchen_and_86_refuses_the_item() {
    let app = TestApp::spawn().await;
    let (mut fryer, _) = app.station_screen("fryer").await;
    let order = app.open_order("counter").await;
    let fired = app
        .fire_lines(
            &order,
            json!([{"item": "fries", "quantity": 2}, {"item": "burger"}]),
        )
        .await;
    assert_eq!(
        fired["tickets"].as_array().unwrap().len(),
        3,
        "grill, fryer and expo"
    );
    let first = fryer.next_event().await;
    assert_eq!(first["event"]["type"], "course_fired");

    let (status, _) = app
        .post(
            &format!("/api/v1/branches/demo/orders/{order}/lines/1/void"),
            json!({"reason": "guest left"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let void = fryer.next_event().await;
    assert_eq!(void["event"]["type"], "line_voided");
    assert_eq!(void["event"]["line_id"], 1);

    let (status, _) = app.put("/api/v1/branches/demo/86/fries", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = app
        .post(
            &format!("/api/v1/branches/demo/orders/{order}/lines"),
            json!({"lines": [{"item": "fries"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["code"], "item_86");
    let (_, info) = app.get("/api/v1/branches/demo").await;
    assert_eq!(info["eighty_sixed"], json!(["fries"]));
}

#[actix_web::test]
async fn ticket_numbers_count_up_per_branch() {
    let app = TestApp::spawn().await;
    let mut numbers = Vec::new();
    for table in ["t1", "t2", "takeaway"] {
        let (_, order) = app
            .post("/api/v1/branches/demo/orders", json!({"table": table}))
            .await;
        numbers.push(order["ticket_no"].as_u64().unwrap());
    }
    assert_eq!(numbers, vec![1, 2, 3]);
}
