//! Device tokens on every surface: a device of one branch can neither read nor change anything
//! of another, bad tokens are refused everywhere, each role keeps to its work, and sockets end
//! with their tokens.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{manager, token_for, TestApp, Ws};
use futures_util::StreamExt;
use rail::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A request with `token` (or none), whatever the client's default.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", app.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    common::read(req.send().await.unwrap()).await
}

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("<none>")
}

/// A second branch, "north", with an order whose first course is on the grill and at expo.
/// Returns (order id, grill ticket id).
async fn north(app: &TestApp) -> (String, String) {
    let (_, demo) = app.get("/api/v1/branches/demo").await;
    let (status, body) = app
        .put("/api/v1/branches/north", demo["config"].clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, order) = app
        .post("/api/v1/branches/north/orders", json!({"table": "t1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let o = format!("/api/v1/branches/north/orders/{id}");
    let (status, _) = app
        .post(&format!("{o}/lines"), json!({"lines": [{"item": "steak"}]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, order) = app.post(&format!("{o}/fire"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let ticket = order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "grill")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, ticket)
}

/// Every event of a branch, read by its manager.
async fn journal_of(app: &TestApp, branch: &str) -> Value {
    let (status, events) = app
        .get(&format!(
            "/api/v1/branches/{branch}/events?after=0&limit=1000"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events
}

#[actix_web::test]
async fn a_device_of_one_branch_can_neither_read_nor_change_another() {
    let app = TestApp::spawn().await;
    let (order, ticket) = north(&app).await;
    let before = journal_of(&app, "north").await;
    let n = "/api/v1/branches/north";
    let o = format!("{n}/orders/{order}");
    let config = app.get(n).await.1["config"].clone();
    let surfaces: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, n.into(), None),
        (Method::PUT, n.into(), Some(config)),
        (Method::PUT, format!("{n}/86/steak"), None),
        (Method::DELETE, format!("{n}/86/steak"), None),
        (
            Method::POST,
            format!("{n}/orders"),
            Some(json!({"table": "t2"})),
        ),
        (Method::GET, format!("{n}/orders"), None),
        (Method::GET, o.clone(), None),
        (
            Method::POST,
            format!("{o}/lines"),
            Some(json!({"lines": [{"item": "fries"}]})),
        ),
        (Method::POST, format!("{o}/lines/1/void"), Some(json!({}))),
        (Method::POST, format!("{o}/fire"), Some(json!({}))),
        (Method::POST, format!("{o}/serve"), Some(json!({}))),
        (Method::POST, format!("{o}/close"), None),
        (Method::GET, format!("{n}/stations/grill/tickets"), None),
        (
            Method::POST,
            format!("{n}/stations/grill/tickets/{ticket}/start"),
            None,
        ),
        (Method::GET, format!("{n}/events?after=0"), None),
        (
            Method::POST,
            format!("{n}/tokens"),
            Some(json!({"role": "manager"})),
        ),
        // A branch that does not exist answers the same: nothing is learnt from the answer.
        (Method::GET, "/api/v1/branches/nowhere".into(), None),
    ];
    // Every role of the demo branch, the manager included.
    let devices = [
        manager("demo"),
        token_for("demo", Role::Pos, None, None),
        token_for("demo", Role::Waiter, None, None),
        token_for("demo", Role::Kitchen, None, None),
        token_for("demo", Role::Guest, None, Some("t1")),
    ];
    for token in &devices {
        for (method, path, body) in &surfaces {
            let (status, answer) =
                call(&app, method.clone(), path, Some(token), body.clone()).await;
            assert_eq!(
                (status, code(&answer)),
                (StatusCode::FORBIDDEN, "wrong_branch"),
                "{method} {path}: {answer}"
            );
        }
    }
    // North's ids named under the demo branch find nothing.
    let (status, answer) = app
        .get(&format!("/api/v1/branches/demo/orders/{order}"))
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::NOT_FOUND, "unknown_order")
    );
    let (status, answer) = app
        .post(
            &format!("/api/v1/branches/demo/stations/grill/tickets/{ticket}/bump"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::NOT_FOUND, "unknown_ticket")
    );

    // Websockets: subscriptions, resumes and station commands.
    let mut ws = app.ws().await;
    for (n, frame) in [
        json!({"type": "subscribe", "id": "a", "branch": "north"}),
        json!({"type": "subscribe", "id": "b", "branch": "north", "station": "grill"}),
        json!({"type": "subscribe", "id": "c", "branch": "north", "table": "t1", "after": 0}),
        json!({"type": "subscribe", "id": "d", "branch": "north", "station": "grill", "after": 1}),
        json!({"type": "start", "id": "e", "branch": "north", "station": "grill", "ticket": ticket}),
        json!({"type": "bump", "id": "f", "branch": "north", "station": "grill", "ticket": ticket}),
    ]
    .into_iter()
    .enumerate()
    {
        ws.send(frame.clone()).await;
        let error = ws.next_of("error").await;
        assert_eq!(error["code"], "wrong_branch", "frame {n}: {frame} -> {error}");
        assert_eq!(error["id"], frame["id"]);
    }
    // Without a branch a frame means the device's own: north's ticket is not there.
    ws.send(json!({"type": "bump", "id": "g", "station": "grill", "ticket": ticket}))
        .await;
    assert_eq!(ws.next_of("error").await["code"], "unknown_ticket");
    // A demo screen hears nothing of north's kitchen.
    ws.send(json!({"type": "subscribe", "station": "grill"}))
        .await;
    let snapshot = ws.next_of("snapshot").await;
    assert_eq!(snapshot["snapshot"]["tickets"], json!([]), "{snapshot}");
    let north_manager = manager("north");
    call(
        &app,
        Method::POST,
        &format!("{n}/orders/{order}/lines"),
        Some(&north_manager),
        Some(json!({"lines": [{"item": "burger"}]})),
    )
    .await;
    call(
        &app,
        Method::POST,
        &format!("{n}/orders/{order}/fire"),
        Some(&north_manager),
        None,
    )
    .await;
    ws.assert_no_event(Duration::from_millis(300)).await;

    // Nothing the demo devices sent changed north: only north's own two commands are new.
    let after = journal_of(&app, "north").await;
    let before = before.as_array().unwrap();
    let after = after.as_array().unwrap();
    assert_eq!(&after[..before.len()], &before[..]);
    let kinds: Vec<&str> = after[before.len()..]
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["lines_added", "course_fired"]);
}

/// Claims that pass, for tokens this test then spoils one way or another.
fn claims(overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": "rail", "aud": "rail", "sub": "test", "branch": "demo", "role": "manager",
        "iat": now, "nbf": now, "exp": now + 600, "jti": "x",
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn sign(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(jsonwebtoken::Algorithm::HS256, common::SECRET, claims)
}

/// A token that declares no signature at all.
fn alg_none(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

#[actix_web::test]
async fn expired_foreign_forged_and_unsigned_tokens_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    let good = hs256(&claims(json!({})));
    let bad: Vec<(&str, String)> = vec![
        ("expired", hs256(&claims(json!({"exp": now - 120})))),
        ("not yet valid", hs256(&claims(json!({"nbf": now + 600})))),
        (
            "wrong audience",
            hs256(&claims(json!({"aud": "other-app"}))),
        ),
        ("wrong issuer", hs256(&claims(json!({"iss": "someone"})))),
        ("no expiry", hs256(&claims(json!({"exp": null})))),
        ("no audience", hs256(&claims(json!({"aud": null})))),
        (
            "wrong secret",
            sign(
                jsonwebtoken::Algorithm::HS256,
                "another-secret-another-secret-another",
                &claims(json!({})),
            ),
        ),
        (
            "HS512 with the right secret",
            sign(
                jsonwebtoken::Algorithm::HS512,
                common::SECRET,
                &claims(json!({})),
            ),
        ),
        ("alg none", alg_none(&claims(json!({})))),
        (
            "guest without a table",
            hs256(&claims(json!({"role": "guest"}))),
        ),
        ("unknown role", hs256(&claims(json!({"role": "owner"})))),
        ("garbage", "not.a.token".into()),
    ];
    let path = "/api/v1/branches/demo/orders";

    // The good token passes, so the refusals below are about the tokens alone.
    let (status, _) = call(&app, Method::GET, path, Some(&good), None).await;
    assert_eq!(status, StatusCode::OK);
    let res = reqwest::Client::new()
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(code(&res.json().await.unwrap()), "unauthenticated");

    for (why, token) in &bad {
        let (status, answer) = call(&app, Method::GET, path, Some(token), None).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "REST, {why}: {answer}"
        );
        let (status, _) = call(
            &app,
            Method::POST,
            path,
            Some(token),
            Some(json!({"table": "t1"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "REST POST, {why}");

        // In the websocket handshake: refused before the upgrade.
        let mut request = app.ws_url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status().as_u16(), 401, "handshake, {why}")
            }
            other => panic!("handshake with a bad token ({why}) was not refused: {other:?}"),
        }

        // In a first frame: an error, then the socket is closed.
        let (stream, _) = tokio_tungstenite::connect_async(&app.ws_url).await.unwrap();
        let mut ws = Ws { stream };
        ws.send(json!({"type": "auth", "token": token})).await;
        let error = ws.next_of("error").await;
        assert_eq!(error["code"], "invalid_token", "auth frame, {why}: {error}");
        assert!(ws.next().await.is_none(), "socket closed after {why}");
    }

    // A socket that has not authenticated may do nothing.
    let (stream, _) = tokio_tungstenite::connect_async(&app.ws_url).await.unwrap();
    let mut ws = Ws { stream };
    ws.send(json!({"type": "subscribe", "id": "s", "station": "grill"}))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(
        (error["id"].as_str(), error["code"].as_str()),
        (Some("s"), Some("unauthenticated"))
    );
    ws.send(json!({"type": "auth", "token": good})).await;
    let hello = ws.next_of("authenticated").await;
    assert_eq!(
        (hello["branch"].as_str(), hello["role"].as_str()),
        (Some("demo"), Some("manager"))
    );
    ws.send(json!({"type": "subscribe", "id": "s", "station": "grill"}))
        .await;
    ws.next_of("snapshot").await;
}

#[actix_web::test]
async fn sockets_that_never_authenticate_are_closed() {
    let app = TestApp::spawn().await;
    let (stream, _) = tokio_tungstenite::connect_async(&app.ws_url).await.unwrap();
    let mut ws = Ws { stream };
    let closed = ws.next_within(Duration::from_secs(15)).await;
    assert_eq!(closed, Ok(None), "closed without authenticating");
}

/// Who asks, how, where, with what body, and the refusal expected (what, status, code).
type Case = (
    &'static str,
    Method,
    String,
    Option<Value>,
    (&'static str, StatusCode, &'static str),
);

#[actix_web::test]
async fn each_role_keeps_to_its_work() {
    let app = TestApp::spawn_with(|s| s.guest_orders_per_minute = 3).await;
    let b = "/api/v1/branches/demo";
    let at_t1 = app.open_order("t1").await;
    let at_t2 = app.open_order("t2").await;
    let fired = app
        .fire_lines(&at_t1, json!([{"item": "steak"}, {"item": "fries"}]))
        .await;
    let ticket_at = |station: &str| {
        fired["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["station"] == station)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (grill_ticket, fryer_ticket) = (ticket_at("grill"), ticket_at("fryer"));
    let grill = token_for("demo", Role::Kitchen, Some("grill"), None);
    let waiter = token_for("demo", Role::Waiter, None, None);
    let pos = token_for("demo", Role::Pos, None, None);
    let guest = token_for("demo", Role::Guest, None, Some("t1"));
    let journal = app.journal().await.len();
    let config = app.get(b).await.1["config"].clone();

    let expect = |who: &'static str, status: StatusCode, code: &'static str| (who, status, code);
    let forbidden = StatusCode::FORBIDDEN;
    let cases: Vec<Case> = vec![
        // A kitchen screen works its own station's tickets and nothing of the orders.
        (
            "grill",
            Method::POST,
            format!("{b}/orders"),
            Some(json!({"table": "t3"})),
            expect("kitchen opens", forbidden, "forbidden"),
        ),
        (
            "grill",
            Method::POST,
            format!("{b}/orders/{at_t1}/lines"),
            Some(json!({"lines": [{"item": "steak"}]})),
            expect("kitchen adds", forbidden, "forbidden"),
        ),
        (
            "grill",
            Method::POST,
            format!("{b}/orders/{at_t1}/close"),
            None,
            expect("kitchen closes", forbidden, "forbidden"),
        ),
        (
            "grill",
            Method::GET,
            format!("{b}/stations/fryer/tickets"),
            None,
            expect("grill reads fryer", forbidden, "forbidden"),
        ),
        (
            "grill",
            Method::POST,
            format!("{b}/stations/fryer/tickets/{fryer_ticket}/start"),
            None,
            expect("grill starts fryer", forbidden, "forbidden"),
        ),
        (
            "grill",
            Method::PUT,
            b.into(),
            Some(config.clone()),
            expect("kitchen configures", forbidden, "forbidden"),
        ),
        (
            "grill",
            Method::GET,
            format!("{b}/events"),
            None,
            expect("kitchen replays", forbidden, "forbidden"),
        ),
        // Waiters and counters take orders but do not run the branch or the stations.
        (
            "waiter",
            Method::PUT,
            b.into(),
            Some(config.clone()),
            expect("waiter configures", forbidden, "forbidden"),
        ),
        (
            "waiter",
            Method::POST,
            format!("{b}/tokens"),
            Some(json!({"role": "manager"})),
            expect("waiter issues", forbidden, "forbidden"),
        ),
        (
            "waiter",
            Method::GET,
            format!("{b}/events"),
            None,
            expect("waiter replays", forbidden, "forbidden"),
        ),
        (
            "waiter",
            Method::POST,
            format!("{b}/stations/grill/tickets/{grill_ticket}/bump"),
            None,
            expect("waiter bumps", forbidden, "forbidden"),
        ),
        (
            "waiter",
            Method::PUT,
            format!("{b}/86/steak"),
            None,
            expect("waiter 86es", forbidden, "forbidden"),
        ),
        (
            "pos",
            Method::POST,
            format!("{b}/tokens"),
            Some(json!({"role": "pos"})),
            expect("pos issues", forbidden, "forbidden"),
        ),
        // A guest adds to its own table's order, and that is all.
        (
            "guest",
            Method::POST,
            format!("{b}/orders"),
            Some(json!({"table": "t1"})),
            expect("guest opens", forbidden, "forbidden"),
        ),
        (
            "guest",
            Method::POST,
            format!("{b}/orders/{at_t2}/lines"),
            Some(json!({"lines": [{"item": "steak"}]})),
            expect("guest adds elsewhere", forbidden, "forbidden"),
        ),
        (
            "guest",
            Method::GET,
            format!("{b}/orders/{at_t2}"),
            None,
            expect("guest reads elsewhere", forbidden, "forbidden"),
        ),
        (
            "guest",
            Method::GET,
            format!("{b}/orders"),
            None,
            expect("guest lists", forbidden, "forbidden"),
        ),
        (
            "guest",
            Method::POST,
            format!("{b}/orders/{at_t1}/fire"),
            Some(json!({})),
            expect("guest fires", forbidden, "forbidden"),
        ),
        (
            "guest",
            Method::POST,
            format!("{b}/orders/{at_t1}/lines/1/void"),
            Some(json!({})),
            expect("guest voids", forbidden, "forbidden"),
        ),
        (
            "guest",
            Method::POST,
            format!("{b}/orders/{at_t1}/close"),
            None,
            expect("guest closes", forbidden, "forbidden"),
        ),
        (
            "guest",
            Method::GET,
            format!("{b}/stations/grill/tickets"),
            None,
            expect("guest reads grill", forbidden, "forbidden"),
        ),
    ];
    for (who, method, path, body, (what, status, want)) in cases {
        let token = match who {
            "grill" => &grill,
            "waiter" => &waiter,
            "pos" => &pos,
            _ => &guest,
        };
        let (got, answer) = call(&app, method, &path, Some(token), body).await;
        assert_eq!((got, code(&answer)), (status, want), "{what}: {answer}");
    }
    assert_eq!(
        app.journal().await.len(),
        journal,
        "refusals changed nothing"
    );

    // What each may do, it can.
    let ok = |(status, answer): (StatusCode, Value)| {
        assert!(status.is_success(), "{status} {answer}");
        answer
    };
    ok(call(
        &app,
        Method::GET,
        &format!("{b}/stations/grill/tickets"),
        Some(&grill),
        None,
    )
    .await);
    ok(call(
        &app,
        Method::POST,
        &format!("{b}/stations/grill/tickets/{grill_ticket}/start"),
        Some(&grill),
        None,
    )
    .await);
    ok(call(
        &app,
        Method::PUT,
        &format!("{b}/86/salmon"),
        Some(&grill),
        None,
    )
    .await);
    ok(call(&app, Method::GET, b, Some(&guest), None).await);
    ok(call(
        &app,
        Method::GET,
        &format!("{b}/orders/{at_t1}"),
        Some(&guest),
        None,
    )
    .await);
    let opened = ok(call(
        &app,
        Method::POST,
        &format!("{b}/orders"),
        Some(&waiter),
        Some(json!({"table": "t3"})),
    )
    .await);
    let at_t3 = opened["id"].as_str().unwrap();
    ok(call(
        &app,
        Method::POST,
        &format!("{b}/orders/{at_t3}/close"),
        Some(&pos),
        None,
    )
    .await);

    // Websockets: the grill screen follows the grill only; the guest its own table only.
    let mut screen = app.ws_as(&grill).await;
    for frame in [
        json!({"type": "subscribe", "id": "1", "station": "fryer"}),
        json!({"type": "subscribe", "id": "2", "table": "t1"}),
        json!({"type": "subscribe", "id": "3"}),
        json!({"type": "bump", "id": "4", "station": "fryer", "ticket": fryer_ticket}),
    ] {
        screen.send(frame.clone()).await;
        assert_eq!(
            screen.next_of("error").await["code"],
            "forbidden",
            "{frame}"
        );
    }
    screen
        .send(json!({"type": "bump", "id": "5", "station": "grill", "ticket": grill_ticket}))
        .await;
    assert_eq!(screen.next_of("ack").await["ticket"]["status"], "bumped");
    let mut phone = app.ws_as(&guest).await;
    for frame in [
        json!({"type": "subscribe", "id": "1", "table": "t2"}),
        json!({"type": "subscribe", "id": "2", "station": "grill"}),
        json!({"type": "subscribe", "id": "3"}),
    ] {
        phone.send(frame.clone()).await;
        assert_eq!(phone.next_of("error").await["code"], "forbidden", "{frame}");
    }
    phone
        .send(json!({"type": "subscribe", "id": "4", "table": "t1"}))
        .await;
    assert_eq!(phone.next_of("snapshot").await["topic"]["id"], "t1");

    // QR ordering is rate limited per table: three a minute here, then 429, journal untouched.
    let lines = format!("{b}/orders/{at_t1}/lines");
    for n in 0..3 {
        let (status, answer) = call(
            &app,
            Method::POST,
            &lines,
            Some(&guest),
            Some(json!({"lines": [{"item": "fries"}]})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "guest addition {n}: {answer}");
    }
    let journal = app.journal().await.len();
    let (status, answer) = call(
        &app,
        Method::POST,
        &lines,
        Some(&guest),
        Some(json!({"lines": [{"item": "fries"}]})),
    )
    .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(app.journal().await.len(), journal);
    // Staff at the same table are not slowed by the guests' limit.
    ok(call(
        &app,
        Method::POST,
        &lines,
        Some(&waiter),
        Some(json!({"lines": [{"item": "fries"}]})),
    )
    .await);
}

#[actix_web::test]
async fn a_manager_issues_device_tokens_that_work_as_issued() {
    let app = TestApp::spawn().await;
    let b = "/api/v1/branches/demo";
    let (status, issued) = app
        .post(
            &format!("{b}/tokens"),
            json!({"role": "kitchen", "station": "grill", "device": "grill-1", "ttl_seconds": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["role"], "kitchen");
    assert_eq!(issued["station"], "grill");
    let token = issued["token"].as_str().unwrap();
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("{b}/stations/grill/tickets"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("{b}/stations/bar/tickets"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    for (body, status, want) in [
        (
            json!({"role": "guest"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"role": "kitchen", "station": "wok"}),
            StatusCode::NOT_FOUND,
            "unknown_station",
        ),
        (
            json!({"role": "guest", "table": "t99"}),
            StatusCode::NOT_FOUND,
            "unknown_table",
        ),
        (
            json!({"role": "waiter", "station": "grill"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"role": "waiter", "ttl_seconds": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"role": "owner"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
    ] {
        let (got, answer) = app.post(&format!("{b}/tokens"), body.clone()).await;
        assert_eq!((got, code(&answer)), (status, want), "{body}: {answer}");
    }
}

#[actix_web::test]
async fn a_socket_closes_when_its_token_expires_unless_renewed() {
    let app = TestApp::spawn_with(|s| s.jwt_leeway_seconds = 0).await;
    let now = chrono::Utc::now().timestamp();
    let short = hs256(&claims(json!({"exp": now + 2})));
    let mut expiring = app.ws_as(&short).await;
    let mut renewed = app.ws_as(&short).await;
    for ws in [&mut expiring, &mut renewed] {
        assert_eq!(ws.next_of("authenticated").await["role"], "manager");
        ws.send(json!({"type": "subscribe", "station": "grill"}))
            .await;
        ws.next_of("snapshot").await;
    }
    // Another device's token cannot be slipped onto a socket.
    let other = token_for("demo", Role::Kitchen, Some("grill"), None);
    renewed.send(json!({"type": "auth", "token": other})).await;
    assert_eq!(renewed.next_of("error").await["code"], "token_mismatch");
    renewed
        .send(json!({"type": "auth", "token": hs256(&claims(json!({"exp": now + 600})))}))
        .await;
    renewed.next_of("authenticated").await;

    let reason = loop {
        match tokio::time::timeout(Duration::from_secs(6), expiring.stream.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.reason.to_string()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("the socket was not closed at expiry: {other:?}"),
        }
    };
    assert_eq!(reason.as_deref(), Some("token_expired"));
    // The renewed socket lives on and still gets tickets.
    let order = app.open_order("t4").await;
    app.fire_lines(&order, json!([{"item": "steak"}])).await;
    assert_eq!(renewed.next_event().await["event"]["type"], "course_fired");
}

#[actix_web::test]
async fn the_cli_and_the_demo_hand_out_working_tokens() {
    let app = TestApp::spawn().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rail"))
        .args([
            "token", "--branch", "demo", "--role", "waiter", "--device", "tablet-7",
        ])
        .env("JWT_SECRET", common::SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/v1/branches/demo/orders",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/v1/branches/demo/86/steak",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a waiter's token, as asked");

    // Without the secret it refuses rather than print a token nobody accepts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rail"))
        .args(["token", "--branch", "demo", "--role", "waiter"])
        .env_remove("JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));

    // Production refuses to start without a secret.
    let journal = common::TestJournal::fresh().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rail"))
        .env_remove("JWT_SECRET")
        .env_remove("DATABASE_URL")
        .env("RAIL_ENV", "production")
        .env("PORT", "0")
        .envs(journal.env())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("JWT_SECRET"), "{said}");
}

#[actix_web::test]
async fn the_demo_prints_a_board_link_that_works() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let journal = common::TestJournal::fresh().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rail"))
        .env_remove("JWT_SECRET")
        .env_remove("DATABASE_URL")
        .env_remove("RAIL_JOURNAL_PATH")
        .envs(journal.env())
        .env("RAIL_HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Every screen's link: `  <name>  http://localhost:<port><path>#token=<token>`.
    let mut links = std::collections::HashMap::new();
    let mut waiter = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while waiter.is_none() {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("the demo prints its screens' links and devices' tokens")
            .unwrap()
            .expect("the server is still running");
        if let Some((before, token)) = line.split_once("#token=") {
            let path = before.rsplit_once(&format!(":{port}")).expect("a link").1;
            links.insert(path.to_owned(), token.trim().to_owned());
        }
        // The waiter's bare token (the tablet's link is printed above it).
        let token = line.trim().strip_prefix("waiter ").map(str::trim);
        if let Some(token) = token.filter(|t| !t.contains(' ')) {
            waiter = Some(token.to_owned());
        }
    }
    for path in [
        "/",
        "/kitchen",
        "/expo",
        "/waiter",
        "/pos",
        "/menu/qr-5",
        "/manage",
    ] {
        assert!(links.contains_key(path), "no link to {path}: {links:?}");
    }
    let board = links.remove("/");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{base}/api/v1/branches/demo"))
        .bearer_auth(board.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = client
        .post(format!("{base}/api/v1/branches/demo/orders"))
        .bearer_auth(waiter.unwrap())
        .json(&json!({"table": "t1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// `rail_http_requests_total` for one route and status (0 before its first request).
async fn answered(app: &TestApp, route: &str, status: u16) -> f64 {
    let series =
        format!(r#"rail_http_requests_total{{method="GET",route="{route}",status="{status}"}}"#);
    app.metric(&series).await.unwrap_or(0.0)
}

#[actix_web::test]
async fn refused_requests_are_counted_with_their_status() {
    let app = TestApp::spawn().await;
    let route = "/api/v1/branches/{branch}/orders";
    let (unauthenticated, wrong_branch) = (
        answered(&app, route, 401).await,
        answered(&app, route, 403).await,
    );
    let (status, answer) = call(
        &app,
        Method::GET,
        "/api/v1/branches/demo/orders",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let demo_manager = manager("demo");
    let (status, answer) = call(
        &app,
        Method::GET,
        "/api/v1/branches/north/orders",
        Some(&demo_manager),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::FORBIDDEN, "wrong_branch")
    );
    assert_eq!(answered(&app, route, 401).await, unauthenticated + 1.0);
    assert_eq!(answered(&app, route, 403).await, wrong_branch + 1.0);
}
