//! A replica at capacity sheds load at once (`503 overloaded`, `Retry-After`) instead of
//! queueing it, refuses new orders first, and keeps nothing of what it refused.

mod common;

use common::TestApp;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn a_replica_at_capacity_refuses_new_orders_and_keeps_none_of_them() {
    let app = TestApp::spawn_with(|s| s.max_commands_in_flight = 4).await;
    let path = "/api/v1/branches/demo/orders";
    let url = format!("{}{path}", app.base);
    let opens = (0..64).map(|i| {
        app.client
            .post(&url)
            .headers(common::auth_headers(path))
            .json(&json!({"table": format!("t{}", 1 + i % 4)}))
            .send()
    });
    let mut created = Vec::new();
    let mut shed = 0;
    for res in join_all(opens).await {
        let res = res.expect("an answer");
        let retry_after = res.headers().get("retry-after").cloned();
        let (status, body) = common::read(res).await;
        match status {
            StatusCode::CREATED => created.push(body["id"].as_str().unwrap().to_owned()),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "overloaded", "{body}");
                assert_eq!(retry_after.expect("Retry-After"), "1");
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        shed > 0,
        "64 orders at once on a replica taking 2 were all taken"
    );
    assert!(!created.is_empty(), "every order was refused");

    // Exactly the orders answered 201 exist: a refused one left nothing behind.
    let opened: Vec<String> = app
        .journal()
        .await
        .iter()
        .filter(|e| e["kind"] == "order_opened")
        .map(|e| e["body"]["order_id"].as_str().unwrap().to_owned())
        .collect();
    created.sort();
    let mut opened_sorted = opened.clone();
    opened_sorted.sort();
    assert_eq!(
        opened_sorted, created,
        "the journal holds exactly the acknowledged orders"
    );

    // Once the rush is answered the replica takes orders again, and says what it shed.
    let again = app.open_order("t1").await;
    assert!(!again.is_empty());
    let shed_metric = app
        .metric(r#"rail_shed_total{ask="new_order",reason="in_flight"}"#)
        .await
        .expect("rail_shed_total is exported");
    assert_eq!(shed_metric, shed as f64);
}

#[actix_web::test]
async fn a_replica_above_its_memory_limit_refuses_new_orders_and_goes_on_with_the_rest() {
    // 1 MiB: every replica is above it.
    let app = TestApp::spawn_with(|s| s.shed_when_memory_above_mib = 1).await;
    // The memory watcher reads resident memory within its first tick.
    tokio::time::sleep(rail::admission::MEMORY_EVERY * 2).await;
    let path = "/api/v1/branches/demo/orders";
    let (status, body) = app.post(path, json!({"table": "t1"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(
        !app.journal()
            .await
            .iter()
            .any(|e| e["kind"] == "order_opened"),
        "a refused order left an event"
    );
    // Reads go on (commands on orders already taken too: admission::tests).
    let (status, _) = app.get("/api/v1/branches/demo/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.metric(r#"rail_shed_total{ask="new_order",reason="memory"}"#)
            .await,
        Some(1.0)
    );
}
