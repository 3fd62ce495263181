//! The documented protocol against what the server sends. Every JSON example of
//! docs/PROTOCOL.md is a frame: a client frame must be taken as written (with real ids in
//! place of the examples'), and a server frame must have exactly the fields the server's frame
//! of that type has (the example may elide the inside of a list or an object with `...`).
//! The payloads of served frames (tickets, orders, events) fit the OpenAPI document's schemas
//! of the same bodies, so the websocket and REST describe one thing the same way.

mod common;

use std::collections::BTreeMap;

use common::{token_for, TestApp};
use futures_util::{SinkExt, StreamExt};
use rail::auth::Role;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The JSON frames of docs/PROTOCOL.md, in order: `[ ... ]` read as an empty list, a trailing
/// `, ...` in an object or list as nothing more.
fn documented_frames() -> Vec<Value> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md");
    let mut frames = Vec::new();
    for block in doc.split("```json").skip(1) {
        let text = block.split("```").next().unwrap();
        let text = text
            .replace("[ ... ]", "[]")
            .replace(", ...}", "}")
            .replace(", ...]", "]");
        for value in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
            frames.push(
                value.unwrap_or_else(|e| panic!("a PROTOCOL.md example is not JSON: {e}\n{text}")),
            );
        }
    }
    frames
}

/// Whether an example elided the rest of an object (`...` in the text before parsing).
fn elides(example: &Value) -> bool {
    example.to_string().contains("...")
}

/// The example's fields are the served frame's, recursively: objects with the same keys (an
/// object whose values elide may name fewer), lists compared by their first elements.
fn same_shape(path: &str, example: &Value, served: &Value, errors: &mut Vec<String>) {
    match (example, served) {
        (Value::Object(e), Value::Object(s)) => {
            for (key, value) in e {
                match s.get(key) {
                    Some(v) => same_shape(&format!("{path}.{key}"), value, v, errors),
                    None => errors.push(format!("{path}.{key} is documented but not sent")),
                }
            }
            let partial = e.values().any(elides) || e.is_empty();
            if !partial {
                for key in s.keys().filter(|k| !e.contains_key(*k)) {
                    errors.push(format!("{path}.{key} is sent but not documented"));
                }
            }
        }
        (Value::Array(e), Value::Array(s)) => {
            if let (Some(e), Some(s)) = (e.first(), s.first()) {
                same_shape(&format!("{path}[0]"), e, s, errors);
            }
        }
        (Value::Object(_), other) | (Value::Array(_), other) => errors.push(format!(
            "{path} is documented as {example} but sent as {other}"
        )),
        _ => {}
    }
}

fn schema(doc: &Value, name: &str) -> jsonschema::Validator {
    common::schema_validator(doc, name)
}

#[track_caller]
fn fits(validator: &jsonschema::Validator, what: &str, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not fit its schema: {errors:#?}\n{value:#}"
    );
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(socket: &mut Socket) -> Value {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a frame arrives in time")
            .expect("the socket stays open")
            .expect("a frame");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

async fn send(socket: &mut Socket, frame: &Value) {
    socket.send(Message::text(frame.to_string())).await.unwrap();
}

#[actix_web::test]
async fn the_documented_frames_are_the_frames_served() {
    let app = TestApp::spawn().await;
    let doc = common::served_openapi(&app.base).await;
    let grill = token_for("demo", Role::Kitchen, Some("grill"), None);

    // A browser's screen: no header, the token in its first frame.
    let (mut socket, _) = tokio_tungstenite::connect_async(app.ws_url.as_str())
        .await
        .expect("ws connects");
    let mut served: BTreeMap<String, Value> = BTreeMap::new();
    send(&mut socket, &json!({"type": "auth", "token": grill})).await;
    served.insert(
        "authenticated".into(),
        next_of(&mut socket, "authenticated").await,
    );
    send(
        &mut socket,
        &json!({"type": "subscribe", "id": "s-1", "station": "grill"}),
    )
    .await;
    served.insert(
        "subscribed".into(),
        next_of(&mut socket, "subscribed").await,
    );

    // A burger at t4: the grill's screen is sent its ticket.
    let order = app.open_order("t4").await;
    app.fire_lines(
        &order,
        json!([{"item": "burger", "modifiers": ["no onion"], "seat": 1}]),
    )
    .await;
    let event = loop {
        let frame = next(&mut socket).await;
        if frame["type"] == "snapshot" {
            served.insert("snapshot".into(), frame);
        } else if frame["type"] == "event" {
            break frame;
        }
    };
    served.insert("event".into(), event.clone());
    let ticket = event["event"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "grill")
        .expect("the grill's ticket")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A second screen's snapshot holds the live ticket, to compare with the example's list.
    let mut second = app.ws_as(&grill).await;
    second
        .send(json!({"type": "subscribe", "station": "grill"}))
        .await;
    served.insert("snapshot".into(), second.next_of("snapshot").await);

    let bump = json!({"type": "bump", "id": "9b2f6c1e-2d1c-4b7e-8f0a-3c5d7e9f1a2b", "branch": "demo", "station": "grill", "ticket": ticket});
    send(&mut socket, &bump).await;
    served.insert("ack".into(), next_of(&mut socket, "ack").await);
    send(
        &mut socket,
        &json!({"type": "start", "id": "s-9", "station": "grill", "ticket": ticket}),
    )
    .await;
    served.insert("error".into(), next_of(&mut socket, "error").await);

    send(&mut socket, &json!({"type": "ping", "id": "1796142106123"})).await;
    served.insert("pong".into(), next_of(&mut socket, "pong").await);

    // Every documented frame, against its served kind.
    let mut errors = Vec::new();
    let frames = documented_frames();
    assert!(
        frames.len() >= 10,
        "PROTOCOL.md's examples were not read: {frames:?}"
    );
    for example in &frames {
        let kind = example["type"]
            .as_str()
            .expect("every frame has a type")
            .to_owned();
        match kind.as_str() {
            "auth" | "subscribe" | "start" | "bump" | "recall" | "ping" => {
                // Taken as written, with this branch's token and ticket.
                let mut frame = example.clone();
                if kind == "auth" {
                    frame["token"] = json!(grill);
                }
                if frame.get("ticket").is_some() {
                    frame["ticket"] = json!(ticket);
                    frame["id"] = json!(format!("doc-{kind}"));
                }
                if frame.get("table").is_some() || frame.get("station").is_none() {
                    // A kitchen screen may follow only its station: the manager sends these.
                    let mut manager = app.ws().await;
                    manager.send(frame.clone()).await;
                    let answer = manager.next().await.expect("an answer");
                    assert_ne!(answer["type"], "error", "{example} is refused: {answer}");
                    continue;
                }
                send(&mut socket, &frame).await;
                let answer = next(&mut socket).await;
                let refused = answer["type"] == "error"
                    && answer["code"] != "invalid_transition"
                    && answer["code"] != "parts_pending";
                assert!(!refused, "{example} is refused: {answer}");
            }
            served_kind => {
                let served = served.get(served_kind).unwrap_or_else(|| {
                    panic!("PROTOCOL.md documents a `{served_kind}` frame the test did not see")
                });
                same_shape(served_kind, example, served, &mut errors);
            }
        }
    }
    assert!(
        errors.is_empty(),
        "PROTOCOL.md and the served frames disagree:\n{}",
        errors.join("\n")
    );

    // The payloads are the REST API's bodies.
    let ticket_schema = schema(&doc, "Ticket");
    fits(&ticket_schema, "an ack's ticket", &served["ack"]["ticket"]);
    for t in served["snapshot"]["snapshot"]["tickets"]
        .as_array()
        .unwrap()
    {
        fits(&ticket_schema, "a station snapshot's ticket", t);
    }
    fits(
        &schema(&doc, "Event"),
        "an event frame's event",
        &served["event"]["event"],
    );
    let mut tablet = app.ws().await;
    tablet
        .send(json!({"type": "subscribe", "table": "t4"}))
        .await;
    let table = tablet.next_of("snapshot").await;
    let order_schema = schema(&doc, "Order");
    assert_eq!(table["snapshot"]["orders"].as_array().unwrap().len(), 1);
    for o in table["snapshot"]["orders"].as_array().unwrap() {
        fits(&order_schema, "a table snapshot's order", o);
    }
    let mut branch = app.ws().await;
    branch.send(json!({"type": "subscribe"})).await;
    let whole = branch.next_of("snapshot").await;
    fits(
        &schema(&doc, "BranchConfig"),
        "a branch snapshot's config",
        &whole["snapshot"]["config"],
    );
}
