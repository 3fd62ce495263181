//! Websocket limits: foreign origins, floods from one connection and from one address are each
//! answered clearly, and nobody else is affected.

mod common;

use common::{TestApp, Ws};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};

async fn handshake(app: &TestApp, origin: Option<&str>) -> Result<Ws, u16> {
    let mut request = app.ws_url.as_str().into_client_request().unwrap();
    let bearer = format!("Bearer {}", common::manager("demo"));
    request
        .headers_mut()
        .insert("Authorization", bearer.parse().unwrap());
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(Ws { stream }),
        Err(Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("handshake failed oddly: {e}"),
    }
}

#[actix_web::test]
async fn foreign_origins_are_refused() {
    let app =
        TestApp::spawn_with(|s| s.allowed_origins = vec!["https://kds.example.com".into()]).await;
    let own = app.base.clone();
    assert!(
        handshake(&app, None).await.is_ok(),
        "devices without an Origin"
    );
    assert!(
        handshake(&app, Some(&own)).await.is_ok(),
        "the server's own pages"
    );
    assert!(
        handshake(&app, Some("https://kds.example.com"))
            .await
            .is_ok(),
        "an allowed origin"
    );
    assert_eq!(
        handshake(&app, Some("https://evil.example.net"))
            .await
            .err(),
        Some(403)
    );
}

#[actix_web::test]
async fn a_flooding_socket_is_slowed_then_closed() {
    let app = TestApp::spawn_with(|s| {
        s.ws_messages_per_second = 5;
        s.ws_message_burst = 10;
    })
    .await;
    let (mut calm, _) = app.station_screen("grill").await;
    let mut flood = app.ws().await;
    for _ in 0..40 {
        flood
            .send(json!({"type": "subscribe", "branch": "demo", "table": "t1"}))
            .await;
    }
    let mut limited = 0;
    let code = loop {
        match flood.stream.next().await {
            Some(Ok(Message::Text(t))) => {
                let frame: serde_json::Value = serde_json::from_str(&t).unwrap();
                if frame["code"] == "rate_limited" {
                    limited += 1;
                }
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                break (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert!(limited >= 1, "the flood was told to slow down first");
    assert_eq!(code, (1008, "rate_limited".to_owned()));

    // The calm screen still works.
    let order = app.open_order("t2").await;
    app.fire_lines(&order, json!([{"item": "steak"}])).await;
    assert_eq!(calm.next_event().await["event"]["type"], "course_fired");
}

#[actix_web::test]
async fn one_address_cannot_take_every_socket() {
    let app = TestApp::spawn_with(|s| s.ws_connections_per_address = 3).await;
    let first = handshake(&app, None).await.unwrap();
    let _second = handshake(&app, None).await.unwrap();
    let _third = handshake(&app, None).await.unwrap();
    assert_eq!(handshake(&app, None).await.err(), Some(429));
    drop(first);
    // The place is given back once the server sees the socket close.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match handshake(&app, None).await {
            Ok(_) => break,
            Err(429) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(status) => panic!("no place freed: {status}"),
        }
    }
}

/// Polls a gauge until it reads `want` (or five seconds pass) and returns what it read last.
async fn settles_at(app: &TestApp, series: &str, want: f64) -> Option<f64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = app.metric(series).await;
        if now == Some(want) || std::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_closed_socket_leaves_no_writer_behind() {
    let app = TestApp::spawn().await;
    let before = app.metric("rail_ws_writers").await.unwrap_or(0.0);
    let mut screens = Vec::new();
    for _ in 0..6 {
        screens.push(app.station_screen("grill").await.0);
    }
    let mut tablet = app.ws().await;
    tablet.send(json!({"type": "subscribe"})).await;
    tablet.next_of("snapshot").await;
    assert_eq!(app.metric("rail_ws_writers").await, Some(before + 7.0));

    // Some leave with a close frame, the others just go (a screen unplugged).
    for (i, mut ws) in screens.into_iter().enumerate() {
        if i % 2 == 0 {
            ws.stream.close(None).await.unwrap();
        }
    }
    // Tickets keep being fired at the station they followed.
    let order = app.open_order("t1").await;
    app.fire_lines(&order, json!([{"item": "steak"}])).await;
    tablet.next_event().await;

    assert_eq!(
        settles_at(&app, "rail_ws_writers", before + 1.0).await,
        Some(before + 1.0),
        "every writer of a closed socket ends with its session"
    );
    drop(tablet);
    assert_eq!(
        settles_at(&app, "rail_ws_writers", before).await,
        Some(before)
    );
}
