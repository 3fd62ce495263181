//! Thousands of random and mangled websocket frames: every one gets an answer or is ignored,
//! none crashes the server, and none changes the journal.

mod common;

use common::TestApp;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

/// Frames close to valid ones, with fields dropped, retyped or replaced.
fn mangled_frame() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        Just(json!({"type": "subscribe", "branch": "demo", "station": "grill"})),
        Just(json!({"type": "subscribe", "branch": "demo", "table": "t1", "after": 3})),
        Just(
            json!({"type": "bump", "id": "x", "branch": "demo", "station": "grill",
                    "ticket": "00000000-0000-0000-0000-000000000000"})
        ),
        Just(
            json!({"type": "recall", "id": "y", "branch": "demo", "station": "expo",
                    "ticket": "not-a-uuid"})
        ),
    ];
    let junk = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        Just(json!([1, [2, [3]]])),
        Just(json!({"nested": {"deep": true}})),
        Just(json!(u64::MAX)),
    ];
    let field = prop_oneof![
        Just("type"),
        Just("id"),
        Just("branch"),
        Just("station"),
        Just("table"),
        Just("ticket"),
        Just("after"),
        Just("extra")
    ];
    (base, field, junk, any::<bool>()).prop_map(|(mut frame, field, junk, drop)| {
        let obj = frame.as_object_mut().unwrap();
        if drop {
            obj.remove(field);
        } else {
            obj.insert(field.to_owned(), junk);
        }
        frame.to_string()
    })
}

fn any_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => mangled_frame(),
        1 => ".{0,200}",
        1 => proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

#[actix_web::test]
async fn random_frames_never_crash_or_change_anything() {
    let app = TestApp::spawn_with(|s| s.ws_messages_per_second = 100_000).await;
    let before = app.journal().await;
    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..Config::default()
    });
    let strategy = any_frame();
    let mut ws = app.ws().await;
    let mut answered = 0;
    for _ in 0..1500 {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        ws.send_text(&frame).await;
        // Every frame that is not a valid subscribe is answered with an error frame.
        if let Ok(Some(reply)) = ws.next_within(std::time::Duration::from_millis(200)).await {
            assert!(reply["type"].is_string(), "{reply}");
            answered += 1;
        }
    }
    assert!(answered > 1000, "only {answered} frames were answered");
    // The socket and the server still work.
    ws.send(json!({"type": "subscribe", "id": "after-fuzz", "branch": "demo", "table": "t2"}))
        .await;
    loop {
        let frame = ws.next().await.expect("the socket is alive");
        if frame["type"] == "snapshot" && frame["topic"]["id"] == "t2" {
            break;
        }
    }
    let (status, _) = app.get("/api/v1/branches/demo").await;
    assert!(status.is_success());
    assert_eq!(app.journal().await, before, "a frame changed the journal");
}
