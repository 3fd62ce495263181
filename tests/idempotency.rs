//! Retries with an idempotency key get the first answer, never a second order; the same key
//! with a different request is refused; keys are scoped by branch and survive a crash.

mod common;

use common::{Server, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const B: &str = "/api/v1/branches/demo";

async fn post_keyed(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .headers(common::auth_headers(path))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    common::read(res).await
}

fn kinds(journal: &[Value]) -> Vec<String> {
    journal
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn retries_get_the_first_answer_and_change_nothing() {
    let app = TestApp::spawn().await;

    let (s1, first) = post_keyed(
        &app,
        &format!("{B}/orders"),
        "open-1",
        json!({"table": "t1"}),
    )
    .await;
    let (s2, again) = post_keyed(
        &app,
        &format!("{B}/orders"),
        "open-1",
        json!({"table": "t1"}),
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first, again, "a retried open returns the same order");
    let order = first["id"].as_str().unwrap().to_owned();
    let o = format!("{B}/orders/{order}");

    let lines = json!({"lines": [{"item": "steak"}, {"item": "fries"}]});
    let (_, added) = post_keyed(&app, &format!("{o}/lines"), "add-1", lines.clone()).await;
    let (status, retried) = post_keyed(&app, &format!("{o}/lines"), "add-1", lines.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retried, added);
    assert_eq!(
        retried["lines"].as_array().unwrap().len(),
        2,
        "no second round of lines"
    );

    // The same key for another request is refused and changes nothing.
    let before = app.journal().await;
    let other = json!({"lines": [{"item": "brownie"}]});
    let (status, refused) = post_keyed(&app, &format!("{o}/lines"), "add-1", other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["error"]["code"], "idempotency_key_reused");
    let (status, _) = post_keyed(&app, &format!("{o}/fire"), "add-1", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.journal().await, before);

    // A late retry, after the order moved on, still gets the answer of its time.
    let (_, fired) = post_keyed(&app, &format!("{o}/fire"), "fire-1", json!({})).await;
    assert_eq!(fired["fires"], 1);
    let (_, late) = post_keyed(&app, &format!("{o}/lines"), "add-1", lines).await;
    assert_eq!(late, added, "the first answer, not the order as it is now");
    let (status, fired_again) = post_keyed(&app, &format!("{o}/fire"), "fire-1", json!({})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a retried fire is not 'nothing to fire'"
    );
    assert_eq!(fired_again, fired);

    // A screen's command id is its key: a repeated bump is acknowledged, not refused.
    let ticket = fired["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "grill")
        .unwrap();
    let ticket = ticket["id"].as_str().unwrap();
    let mut grill = app.ws().await;
    let bump = json!({"type": "bump", "id": "bump-7f3a", "branch": "demo", "station": "grill", "ticket": ticket});
    grill.send(bump.clone()).await;
    let first_ack = grill.next_of("ack").await;
    grill.send(bump).await;
    let second_ack = grill.next_of("ack").await;
    assert_eq!(first_ack, second_ack);
    assert_eq!(second_ack["ticket"]["status"], "bumped");

    // The kitchen finishes, the guests leave: retries still get their first answers.
    let ticket_at = |station: &str| {
        let t = fired["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["station"] == station);
        t.unwrap()["id"].as_str().unwrap().to_owned()
    };
    for station in ["fryer", "expo"] {
        let path = format!("{B}/stations/{station}/tickets/{}/bump", ticket_at(station));
        let (status, body) = app.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = app.post(&format!("{o}/serve"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, closed) = post_keyed(&app, &format!("{o}/close"), "close-1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let (status, again) = post_keyed(&app, &format!("{o}/close"), "close-1", json!({})).await;
    assert_eq!((status, &again), (StatusCode::OK, &closed));
    let (status, late_fire) = post_keyed(&app, &format!("{o}/fire"), "fire-1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{late_fire}");
    assert_eq!(
        late_fire, fired,
        "a retry after the order closed gets the first answer"
    );
    let late_bump = json!({"type": "bump", "id": "bump-7f3a", "branch": "demo", "station": "grill", "ticket": ticket});
    grill.send(late_bump).await;
    assert_eq!(grill.next_of("ack").await, first_ack);

    let journal = kinds(&app.journal().await);
    for (kind, count) in [
        ("order_opened", 1),
        ("lines_added", 1),
        ("course_fired", 1),
        ("ticket_bumped", 3),
        ("order_closed", 1),
    ] {
        assert_eq!(
            journal.iter().filter(|k| *k == kind).count(),
            count,
            "{kind} in {journal:?}"
        );
    }
}

#[actix_web::test]
async fn keys_are_scoped_by_branch() {
    let app = TestApp::spawn().await;
    let (_, demo) = app.get(B).await;
    let (status, _) = app
        .put("/api/v1/branches/second", demo["config"].clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, a) = post_keyed(
        &app,
        &format!("{B}/orders"),
        "same-key",
        json!({"table": "t1"}),
    )
    .await;
    let (status, b) = post_keyed(
        &app,
        "/api/v1/branches/second/orders",
        "same-key",
        json!({"table": "t1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn a_key_outlives_a_crash() {
    let journal = common::TestJournal::fresh().await;
    let server = Server::start(&journal).await;
    let open = |server: &Server| {
        server
            .client
            .post(format!("{}{B}/orders", server.base))
            .header("Idempotency-Key", "tablet-3:order-118")
            .json(&json!({"table": "t4"}))
            .send()
    };
    let (status, first) = common::read(open(&server).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    server.kill();
    let server = Server::start(&journal).await;
    let (status, again) = common::read(open(&server).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["id"], first["id"]);
    let orders = server.get("/orders").await;
    assert_eq!(orders.as_array().unwrap().len(), 1);
    server.kill();
}
