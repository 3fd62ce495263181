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
