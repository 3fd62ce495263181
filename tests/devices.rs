//! Device management: every token a manager issues names a listed device; a revoked device's
//! sockets close at once with `token_revoked`, its REST calls are refused, and it stays revoked
//! after a restart; a pairing code pairs one device once, in time, and is never journaled.
//! Real engine processes over real HTTP and websockets, on the journal `RAIL_TEST_JOURNAL`
//! names.

mod common;

use std::time::{Duration, Instant};

use common::{Server, TestJournal};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn url(server: &Server, path: &str) -> String {
    format!("{}/api/v1/branches/demo{path}", server.base)
}

async fn call(
    server: &Server,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, url(server, path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    common::read(req.send().await.unwrap()).await
}

async fn issue(server: &Server, body: Value) -> Value {
    let (status, issued) = call(
        server,
        Some(&common::manager("demo")),
        reqwest::Method::POST,
        "/tokens",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    issued
}

async fn devices(server: &Server) -> Vec<Value> {
    let manager = common::manager("demo");
    let (status, list) = call(
        server,
        Some(&manager),
        reqwest::Method::GET,
        "/devices",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

#[actix_web::test]
async fn a_revoked_kitchen_screen_is_closed_at_once_refused_everywhere_and_after_a_restart() {
    let journal = TestJournal::fresh().await;
    let server = Server::start(&journal).await;
    let issued = issue(
        &server,
        json!({"role": "kitchen", "station": "grill", "device": "grill by the pass"}),
    )
    .await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let id = issued["device_id"].as_str().unwrap().to_owned();
    let listed = devices(&server).await;
    let record = listed
        .iter()
        .find(|d| d["device"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} listed: {listed:?}"));
    assert_eq!(record["name"], "grill by the pass");
    assert_eq!(record["role"], "kitchen");
    assert_eq!(record["station"], "grill");
    assert_eq!(record["expires_at"], issued["expires_at"]);
    assert!(record["revoked_at"].is_null());

    // The screen works, and is seen.
    let (status, _) = call(
        &server,
        Some(&token),
        reqwest::Method::GET,
        "/stations/grill/tickets",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seen = devices(&server).await;
    assert!(
        seen.iter()
            .any(|d| d["device"] == id.as_str() && d["last_seen"].is_string()),
        "{seen:?}"
    );
    let ws_url = format!("{}/ws", server.base.replace("http://", "ws://"));
    let mut screen = common::ws_connect_as(&ws_url, &token).await;
    screen
        .send(Message::text(
            json!({"type": "subscribe", "station": "grill"}).to_string(),
        ))
        .await
        .unwrap();

    // Others may not revoke; an unknown device is not found.
    let waiter = common::token_for("demo", rail::auth::Role::Waiter, None, None);
    let revoke = format!("/devices/{id}/revoke");
    let (status, _) = call(&server, Some(&waiter), reqwest::Method::POST, &revoke, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let manager = common::manager("demo");
    let (status, body) = call(
        &server,
        Some(&manager),
        reqwest::Method::POST,
        "/devices/nope/revoke",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "unknown_device");

    let asked = Instant::now();
    let (status, revoked) = call(
        &server,
        Some(&manager),
        reqwest::Method::POST,
        &revoke,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    // The socket is closed with the reason, within a second.
    let closed = loop {
        let left = Duration::from_secs(1).saturating_sub(asked.elapsed());
        match tokio::time::timeout(left, screen.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close within a second of the revocation: {other:?}"),
        }
    };
    assert_eq!(closed.code, CloseCode::Policy);
    assert_eq!(closed.reason.as_str(), "token_revoked");
    // Its REST calls and new sockets are refused.
    let (status, body) = call(
        &server,
        Some(&token),
        reqwest::Method::GET,
        "/stations/grill/tickets",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "token_revoked");
    let (mut again, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    again
        .send(Message::text(
            json!({"type": "auth", "token": token}).to_string(),
        ))
        .await
        .unwrap();
    let answer = loop {
        match again.next().await {
            Some(Ok(Message::Text(t))) => break serde_json::from_str::<Value>(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(answer["code"], "token_revoked", "{answer}");
    // A revoked device is never listed as revoked twice: revoking again changes nothing.
    let (status, twice) = call(
        &server,
        Some(&manager),
        reqwest::Method::POST,
        &revoke,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(twice["revoked_at"], revoked["revoked_at"]);

    // After a restart it is still revoked, and still listed so.
    server.kill();
    let server = Server::start(&journal).await;
    let (status, body) = call(
        &server,
        Some(&token),
        reqwest::Method::GET,
        "/stations/grill/tickets",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "token_revoked");
    let listed = devices(&server).await;
    let record = listed.iter().find(|d| d["device"] == id.as_str()).unwrap();
    assert_eq!(record["revoked_at"], revoked["revoked_at"]);
    // Another device of the branch is not touched.
    let other = issue(&server, json!({"role": "waiter"})).await;
    let (status, _) = call(
        &server,
        other["token"].as_str(),
        reqwest::Method::GET,
        "/orders",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.kill();
}

#[actix_web::test]
async fn a_pairing_code_pairs_one_device_once_in_time_and_is_never_journaled() {
    let journal = TestJournal::fresh().await;
    let server = Server::start_with(&journal, &[("RAIL_PAIRING_CODE_SECONDS", "10")]).await;
    let manager = common::manager("demo");
    let offer = |body: Value| {
        call(
            &server,
            Some(&manager),
            reqwest::Method::POST,
            "/pairings",
            Some(body),
        )
    };
    let (status, pairing) =
        offer(json!({"role": "kitchen", "station": "cold", "device": "cold line"})).await;
    assert_eq!(status, StatusCode::CREATED, "{pairing}");
    let code = pairing["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9, "ABCD-EFGH: {code}");
    assert_eq!(pairing["device"]["station"], "cold");
    // Bad requests are refused as for a token.
    let (status, body) = offer(json!({"role": "kitchen", "station": "nope"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = offer(json!({"role": "guest"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Typed without the dash, in small letters: the device gets its token, once.
    let typed = code.replace('-', "").to_lowercase();
    let (status, paired) = call(
        &server,
        None,
        reqwest::Method::POST,
        "/pair",
        Some(json!({"code": typed})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{paired}");
    assert_eq!(paired["station"], "cold");
    assert_eq!(paired["device_id"], pairing["device"]["device"]);
    let token = paired["token"].as_str().unwrap();
    let (status, _) = call(
        &server,
        Some(token),
        reqwest::Method::GET,
        "/stations/cold/tickets",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(devices(&server)
        .await
        .iter()
        .any(|d| d["device"] == paired["device_id"]));
    let (status, body) = call(
        &server,
        None,
        reqwest::Method::POST,
        "/pair",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a second time: {body}");
    assert_eq!(body["error"]["code"], "invalid_pairing_code");

    // The journal holds neither the code nor anything to try codes against without the secret.
    let (_, events) = call(
        &server,
        Some(&manager),
        reqwest::Method::GET,
        "/events?limit=1000",
        None,
    )
    .await;
    let text = events.to_string();
    assert!(
        text.contains("pairing_offered") && text.contains("pairing_redeemed"),
        "{text}"
    );
    assert!(!text.contains(&code) && !text.contains(&code.replace('-', "")));
    assert!(!text.contains("code_hash"), "the hash is not served either");

    // A code not used in time pairs nothing.
    let (_, late) = offer(json!({"role": "waiter"})).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (status, body) = call(
        &server,
        None,
        reqwest::Method::POST,
        "/pair",
        Some(json!({"code": late["code"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired: {body}");

    // Codes cannot be guessed by trying: ten tries a minute from one address.
    let mut limited = false;
    for n in 0..12 {
        let guess = format!(
            "AAAA-AAA{}",
            ["B", "C", "D", "E", "F", "G", "H", "J", "K", "M", "N", "P"][n]
        );
        let (status, body) = call(
            &server,
            None,
            reqwest::Method::POST,
            "/pair",
            Some(json!({"code": guess})),
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["error"]["code"], "rate_limited");
            limited = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert!(limited, "guessing is limited");
    // Malformed bodies are refused without a try of the code.
    let (status, _) = call(
        &server,
        None,
        reqwest::Method::POST,
        "/pair",
        Some(json!({"pin": "1234"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    server.kill();
}
