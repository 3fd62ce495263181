//! Bad input gets a clear 4xx (or websocket error frame) with a stable code and changes nothing.

mod common;

use common::TestApp;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const B: &str = "/api/v1/branches/demo";

#[actix_web::test]
async fn bad_requests_are_refused_and_the_journal_is_unchanged() {
    let app = TestApp::spawn().await;
    let order = app.open_order("t1").await;
    let fired = app
        .fire_lines(&order, json!([{"item": "steak"}, {"item": "fries"}]))
        .await;
    let grill = fired["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "grill")
        .unwrap();
    let grill = grill["id"].as_str().unwrap().to_owned();
    // A voided ticket: void the steak (the grill ticket's only line).
    let (status, _) = app
        .post(&format!("{B}/orders/{order}/lines/1/void"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let journal_before = app.journal().await;

    let o = format!("{B}/orders/{order}");
    let big = "x".repeat(100_000);
    let cases: Vec<(&str, String, Value, StatusCode, &str)> = vec![
        (
            "unknown branch",
            "/api/v1/branches/nowhere/orders".into(),
            json!({"table": "t1"}),
            StatusCode::NOT_FOUND,
            "unknown_branch",
        ),
        (
            "bad branch id (never this device's branch)",
            "/api/v1/branches/No%20Where/orders".into(),
            json!({"table": "t1"}),
            StatusCode::FORBIDDEN,
            "wrong_branch",
        ),
        (
            "unknown table",
            format!("{B}/orders"),
            json!({"table": "t99"}),
            StatusCode::NOT_FOUND,
            "unknown_table",
        ),
        (
            "table of wrong type",
            format!("{B}/orders"),
            json!({"table": 7}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "unknown field",
            format!("{B}/orders"),
            json!({"table": "t1", "vip": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "zero guests",
            format!("{B}/orders"),
            json!({"table": "t1", "guests": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "unknown item",
            format!("{o}/lines"),
            json!({"lines": [{"item": "lobster"}]}),
            StatusCode::NOT_FOUND,
            "unknown_item",
        ),
        (
            "negative quantity",
            format!("{o}/lines"),
            json!({"lines": [{"item": "fries", "quantity": -1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "zero quantity",
            format!("{o}/lines"),
            json!({"lines": [{"item": "fries", "quantity": 0}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "huge quantity",
            format!("{o}/lines"),
            json!({"lines": [{"item": "fries", "quantity": 100000}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "quantity over the cap",
            format!("{o}/lines"),
            json!({"lines": [{"item": "fries", "quantity": 100}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "no lines",
            format!("{o}/lines"),
            json!({"lines": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "one bad line spoils the batch",
            format!("{o}/lines"),
            json!({"lines": [{"item": "fries"}, {"item": "fries", "course": 0}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "control characters in a note",
            format!("{o}/lines"),
            json!({"lines": [{"item": "fries", "note": "a\u{0007}"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "oversized body",
            format!("{o}/lines"),
            json!({"lines": [{"item": "fries", "note": big}]}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "unknown order",
            format!("{B}/orders/00000000-0000-0000-0000-000000000000/fire"),
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown_order",
        ),
        (
            "malformed order id",
            format!("{B}/orders/123/fire"),
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown_order",
        ),
        (
            "fire an empty course",
            format!("{o}/fire"),
            json!({"course": 3}),
            StatusCode::CONFLICT,
            "nothing_to_fire",
        ),
        (
            "fire a course out of range",
            format!("{o}/fire"),
            json!({"course": 12}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "unknown line",
            format!("{o}/lines/42/void"),
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown_line",
        ),
        (
            "void twice",
            format!("{o}/lines/1/void"),
            json!({}),
            StatusCode::CONFLICT,
            "invalid_transition",
        ),
        (
            "bump a voided ticket",
            format!("{B}/stations/grill/tickets/{grill}/bump"),
            json!({}),
            StatusCode::CONFLICT,
            "invalid_transition",
        ),
        (
            "ticket at the wrong station",
            format!("{B}/stations/bar/tickets/{grill}/bump"),
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown_ticket",
        ),
        (
            "unknown station",
            format!("{B}/stations/wok/tickets/{grill}/bump"),
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown_station",
        ),
        (
            "unknown ticket action",
            format!("{B}/stations/grill/tickets/{grill}/flip"),
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown_action",
        ),
        (
            "serve what is not ready",
            format!("{o}/serve"),
            json!({"lines": [2]}),
            StatusCode::CONFLICT,
            "invalid_transition",
        ),
        (
            "close with food in the kitchen",
            format!("{o}/close"),
            json!({}),
            StatusCode::CONFLICT,
            "order_not_finished",
        ),
        (
            "no such endpoint",
            format!("{B}/kitchen-sink"),
            json!({}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (name, path, body, status, code) in cases {
        let (got, answer) = app.post(&path, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{name}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }

    let (status, answer) = app.post_raw(&format!("{B}/orders"), "{\"table\": ").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (status, answer) = app.post_raw(&format!("{o}/fire"), "[1, 2").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let res = app
        .client
        .post(format!("{}{B}/orders", app.base))
        .body("{\"table\":\"t1\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A broken configuration is refused whole.
    let (status, answer) = app
        .put(
            B,
            json!({"name": "x", "stations": [], "categories": [], "items": [], "tables": []}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input"))
    );
    let (status, _) = app.put(&format!("{B}/86/lobster"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(
        app.journal().await,
        journal_before,
        "a refused command left a trace in the journal"
    );
    let (_, read) = app.get(&o).await;
    assert_eq!(
        read["lines"].as_array().unwrap().len(),
        2,
        "no partial lines were added"
    );
}

#[actix_web::test]
async fn bad_websocket_frames_get_error_frames_and_change_nothing() {
    let app = TestApp::spawn().await;
    let journal_before = app.journal().await;
    let mut ws = app.ws().await;

    ws.send_text("not json").await;
    let e = ws.next_of("error").await;
    assert_eq!(e["code"], "malformed_frame");

    ws.send(json!({"type": "bump", "id": "b1", "branch": "demo", "station": "grill"}))
        .await;
    let e = ws.next_of("error").await;
    assert_eq!(
        (e["id"].as_str(), e["code"].as_str()),
        (Some("b1"), Some("malformed_frame"))
    );

    ws.send(json!({"type": "teleport", "id": "x"})).await;
    assert_eq!(ws.next_of("error").await["code"], "malformed_frame");

    ws.send(json!({"type": "subscribe", "id": "s1", "branch": "demo", "station": "wok"}))
        .await;
    let e = ws.next_of("error").await;
    assert_eq!(
        (e["id"].as_str(), e["code"].as_str()),
        (Some("s1"), Some("unknown_station"))
    );

    ws.send(json!({"type": "subscribe", "id": "s2", "branch": "elsewhere"}))
        .await;
    assert_eq!(ws.next_of("error").await["code"], "wrong_branch");

    let ticket = "00000000-0000-0000-0000-000000000000";
    ws.send(json!({"type": "start", "id": "k1", "branch": "demo", "station": "grill", "ticket": ticket})).await;
    let e = ws.next_of("error").await;
    assert_eq!(
        (e["id"].as_str(), e["code"].as_str()),
        (Some("k1"), Some("unknown_ticket"))
    );

    // The socket still works after all that.
    ws.send(json!({"type": "subscribe", "id": "s3", "branch": "demo", "station": "grill"}))
        .await;
    assert_eq!(ws.next_of("snapshot").await["snapshot"]["kind"], "station");

    // An oversized frame closes the socket with "message too big".
    ws.send_text(&"y".repeat(70_000)).await;
    let code = loop {
        match ws.stream.next().await {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 1009);

    assert_eq!(app.journal().await, journal_before);
}
