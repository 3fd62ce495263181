//! No secret reaches the server's log, whatever a client sends: tokens in query strings,
//! headers and cookies, on requests that are refused and on requests that are taken, over REST
//! and the websocket.

mod common;

use std::time::Duration;

use common::{manager, Server, TestJournal, SECRET};
use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn tokens_sent_anywhere_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let journal = TestJournal::fresh().await;
    let server = Server::start_logging_to(&journal, &[], &log).await;
    let base = format!("{}/api/v1/branches/demo", server.base);
    let valid = manager("demo");
    // Token-shaped secrets the server cannot read: refused, and never written down either.
    let forged = format!("{valid}x");
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let plain = reqwest::Client::new();

    let status = |r: reqwest::Response| r.status();
    let cases = [
        // A token in the query string, and no header: refused.
        plain.get(format!("{base}/orders?token={valid}")),
        plain.get(format!("{base}/orders?access_token={valid}&after=1")),
        // A forged bearer token, a cookie, an API key header: refused.
        plain.get(format!("{base}/orders")).bearer_auth(&forged),
        plain
            .get(format!("{base}/orders"))
            .header("cookie", format!("session={valid}; theme=dark"))
            .header("x-api-key", &key),
        // Taken, with secrets beside the real header.
        plain
            .get(format!("{base}/orders?api_key={key}"))
            .bearer_auth(&valid)
            .header("cookie", format!("session={forged}")),
        plain
            .post(format!("{base}/orders?secret={key}"))
            .bearer_auth(&valid)
            .json(&json!({"table": "t1"})),
        plain.get(format!("{}/nowhere?password={key}", server.base)),
    ];
    let mut answered = Vec::new();
    for request in cases {
        answered.push(status(request.send().await.unwrap()).as_u16());
    }
    assert_eq!(answered, [401, 401, 401, 401, 200, 201, 404]);

    // Websockets: a token in the handshake's query, a forged bearer header, an auth frame.
    let ws = format!("{}/ws", server.base.replace("http", "ws"));
    let mut forged_handshake = ws.as_str().into_client_request().unwrap();
    forged_handshake
        .headers_mut()
        .insert("authorization", format!("Bearer {forged}").parse().unwrap());
    let refused = tokio_tungstenite::connect_async(forged_handshake).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
        panic!("a forged token's handshake is refused");
    };
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws}?token={valid}"))
        .await
        .expect("the socket opens and waits for its auth frame");
    socket
        .send(Message::text(
            json!({"type": "auth", "token": valid}).to_string(),
        ))
        .await
        .unwrap();
    socket
        .send(Message::text(
            json!({"type": "auth", "token": forged}).to_string(),
        ))
        .await
        .unwrap();
    // The forged renewal closes the socket; give the log a moment to be written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill();

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("?token=[redacted]") && text.contains("password=[redacted]"),
        "the refusals were logged (with their parameters' names):\n{text}"
    );
    for secret in [valid.as_str(), forged.as_str(), key.as_str(), SECRET] {
        // The token's signature alone would be a leak too.
        let tail = &secret[secret.len() - 20..];
        assert!(
            !text.contains(tail),
            "the log holds a secret ({tail}):\n{text}"
        );
    }
}
