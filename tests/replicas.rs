//! Replicas: three engine processes on loopback share one Postgres journal and a Redis server
//! this test starts itself; one order flows from a waiter on one replica to a grill screen on
//! another and expo on the third, and any replica answers as the branch's owner does.

mod common;

use std::time::Duration;

use common::replicas::{
    assert_positions_increase, database_url, lease_of, owner_of, shared_journal, RedisServer,
    Replica, LEASE_TTL,
};
use common::{read, ws_connect_as, Ws, WAIT};
use rail::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn kitchen(station: &str) -> String {
    common::token_for("demo", Role::Kitchen, Some(station), None)
}

async fn screen(replica: &Replica, token: &str, subscribe: Value) -> (Ws, Value) {
    let mut ws = Ws {
        stream: ws_connect_as(&replica.ws_url(), token).await,
    };
    ws.send(subscribe).await;
    let snapshot = ws.next_of("snapshot").await;
    (ws, snapshot)
}

/// Events until one of `kind`, all of them kept.
async fn until_event(ws: &mut Ws, kind: &str, seen: &mut Vec<Value>) -> Value {
    loop {
        let frame = ws.next_of("event").await;
        seen.push(frame.clone());
        if frame["event"]["type"] == kind {
            return frame;
        }
    }
}

/// A manager's client that gives up after a while (a replica that hangs fails the test).
fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", common::manager("demo"));
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(base: &str, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let res = client()
        .post(format!("{base}/api/v1/branches/demo{path}"))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    read(res).await
}

async fn get(base: &str, path: &str) -> (StatusCode, Value) {
    read(
        client()
            .get(format!("{base}/api/v1/branches/demo{path}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Starts three replicas; the demo branch is configured by whichever owns it.
async fn three(db: &str, redis: &RedisServer) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for id in ["r1", "r2", "r3"] {
        replicas.push(Replica::start(id, db, &redis.url(), &[]).await);
    }
    // Placement settles: the demo branch is owned, configured, and every replica answers it.
    for r in &replicas {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while get(r.base(), "").await.0 != StatusCode::OK {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never served demo",
                r.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_flows_across_three_replicas() {
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let replicas = three(&db, &redis).await;
    let (r1, r2, r3) = (&replicas[0], &replicas[1], &replicas[2]);
    let owner = owner_of(&db, "demo", WAIT).await;
    let mut owners = 0;
    for r in &replicas {
        owners += usize::from(r.owns("demo").await);
    }
    assert_eq!(owners, 1, "one replica writes demo ({owner} by the lease)");

    let waiter = common::token_for("demo", Role::Waiter, None, None);
    let (mut tablet, _) = screen(r1, &waiter, json!({"type": "subscribe", "table": "t1"})).await;
    let (mut grill, _) = screen(
        r2,
        &kitchen("grill"),
        json!({"type": "subscribe", "station": "grill"}),
    )
    .await;
    let (mut expo, _) = screen(
        r3,
        &kitchen("expo"),
        json!({"type": "subscribe", "station": "expo"}),
    )
    .await;

    // The waiter's tablet talks to replica 1, whoever owns the branch.
    let (status, order) = post(r1.base(), "/orders", "open-1", json!({"table": "t1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let lines = json!({"lines": [{"item": "steak", "modifiers": ["medium rare"]}]});
    let (status, body) = post(r1.base(), &format!("/orders/{id}/lines"), "lines-1", lines).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, fired) = post(
        r1.base(),
        &format!("/orders/{id}/fire"),
        "fire-1",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fired}");

    // The grill screen on replica 2 gets the ticket, and bumps it over its socket.
    let mut grill_seen = Vec::new();
    let fire = until_event(&mut grill, "course_fired", &mut grill_seen).await;
    let ticket = fire["event"]["tickets"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fire["event"]["tickets"][0]["lines"][0]["item"], "steak");
    grill
        .send(json!({"type": "bump", "id": "bump-grill-1", "station": "grill", "ticket": ticket}))
        .await;
    let ack = grill.next_of("ack").await;
    assert_eq!(ack["id"], "bump-grill-1", "{ack}");
    assert_eq!(ack["ticket"]["status"], "bumped", "{ack}");
    // The same frame again is the same answer, never a second bump.
    grill
        .send(json!({"type": "bump", "id": "bump-grill-1", "station": "grill", "ticket": ticket}))
        .await;
    let again = grill.next_of("ack").await;
    assert_eq!(again, ack);

    // Expo on replica 3 sees the fire and the grill's bump, and sends the order out.
    let mut expo_seen = Vec::new();
    let fire_at_expo = until_event(&mut expo, "course_fired", &mut expo_seen).await;
    let expo_ticket = fire_at_expo["event"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "expo")
        .expect("expo has its ticket")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    until_event(&mut expo, "expo_ready", &mut expo_seen).await;
    expo.send(
        json!({"type": "bump", "id": "bump-expo-1", "station": "expo", "ticket": expo_ticket}),
    )
    .await;
    let ack = expo.next_of("ack").await;
    assert_eq!(ack["ticket"]["status"], "bumped", "{ack}");

    // The waiter on replica 1 hears that the food is ready.
    let mut tablet_seen = Vec::new();
    until_event(&mut tablet, "order_ready", &mut tablet_seen).await;
    for seen in [&grill_seen, &expo_seen, &tablet_seen] {
        assert_positions_increase(seen);
    }

    // Every replica answers as the owner does: reads, and a retried command.
    let (_, from_owner) = get(r1.base(), &format!("/orders/{id}")).await;
    for r in &replicas {
        let (status, order) = get(r.base(), &format!("/orders/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            order, from_owner,
            "{} answers the order as the owner does",
            r.id
        );
        let (status, again) =
            post(r.base(), &format!("/orders/{id}/fire"), "fire-1", json!({})).await;
        assert_eq!(
            (status, &again),
            (StatusCode::OK, &fired),
            "{} answers a retry alike",
            r.id
        );
    }
    // One journal, no event twice.
    let (_, events) = get(r2.base(), "/events?after=0&limit=1000").await;
    let positions: Vec<u64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());
    let lease = lease_of(&db, "demo").await.unwrap();
    assert_eq!(lease.0, owner, "the branch stayed with its owner");
    let _ = LEASE_TTL;
}
