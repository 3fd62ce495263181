//! Kitchen WiFi drops: a screen cut off at random points while 1,000 tickets are fired sees
//! every ticket exactly once (after de-duplication by (stream, seq)), in order.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{TestApp, Ws};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TICKETS: usize = 1000;
const ORDERS: usize = 10;

/// A tiny seeded generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Fires one steak at a time on `ORDERS` orders until `TICKETS` grill tickets exist.
async fn fire_rush(app: &TestApp) -> HashSet<String> {
    let tables = ["t1", "t2", "t3", "t4", "counter", "takeaway", "qr-5"];
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        orders.push(app.open_order(tables[i % tables.len()]).await);
    }
    let fires = orders.into_iter().map(|order| async move {
        let mut tickets = Vec::new();
        for _ in 0..TICKETS / ORDERS {
            let fired = app.fire_lines(&order, json!([{"item": "steak"}])).await;
            let last = fired["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .find(|t| t["station"] == "grill");
            tickets.push(last.unwrap()["id"].as_str().unwrap().to_owned());
        }
        tickets
    });
    futures_util::future::join_all(fires)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[actix_web::test]
async fn a_flaky_screen_sees_every_ticket_exactly_once_in_order() {
    let app = TestApp::spawn().await;
    let seed = 0x5eed_u64;
    let mut rng = Lcg(seed);
    let screen = async {
        let mut seen_events: HashSet<(String, u64)> = HashSet::new();
        let mut tickets: Vec<String> = Vec::new();
        let mut last_position: Option<u64> = None;
        let mut reconnects = 0;
        let deadline = Instant::now() + Duration::from_secs(90);
        while tickets.len() < TICKETS {
            assert!(
                Instant::now() < deadline,
                "saw {} of {TICKETS} tickets",
                tickets.len()
            );
            let mut ws: Ws = app.ws().await;
            let mut sub = json!({"type": "subscribe", "branch": "demo", "station": "grill"});
            if let Some(p) = last_position {
                sub["after"] = json!(p);
            }
            ws.send(sub).await;
            let cut_after = 1 + rng.below(60);
            let mut read = 0;
            while read < cut_after && tickets.len() < TICKETS {
                let Ok(Some(frame)) = ws.next_within(Duration::from_secs(2)).await else {
                    break;
                };
                match frame["type"].as_str() {
                    Some("snapshot") => {
                        assert_eq!(frame["reset"], false, "a resume fell back to a snapshot");
                        assert!(last_position.is_none(), "a snapshot on resume");
                        for t in frame["snapshot"]["tickets"].as_array().unwrap() {
                            tickets.push(t["id"].as_str().unwrap().to_owned());
                        }
                        last_position = frame["snapshot"]["position"].as_u64();
                    }
                    Some("event") => {
                        read += 1;
                        let key = (
                            frame["stream"].as_str().unwrap().to_owned(),
                            frame["seq"].as_u64().unwrap(),
                        );
                        if !seen_events.insert(key) {
                            continue;
                        }
                        let position = frame["position"].as_u64().unwrap();
                        assert!(
                            last_position.is_none_or(|p| position > p),
                            "events out of order"
                        );
                        last_position = Some(position);
                        if frame["event"]["type"] == "course_fired" {
                            for t in frame["event"]["tickets"].as_array().unwrap() {
                                if t["station"] == "grill" {
                                    tickets.push(t["id"].as_str().unwrap().to_owned());
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            reconnects += 1;
            drop(ws);
        }
        (tickets, reconnects)
    };
    let (fired, (seen, reconnects)) = futures_util::join!(fire_rush(&app), screen);
    assert_eq!(fired.len(), TICKETS);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a ticket was seen twice");
    assert_eq!(
        unique,
        fired.iter().collect::<HashSet<_>>(),
        "a ticket was missed"
    );
    assert!(
        reconnects > 10,
        "the screen should have been cut off many times ({reconnects})"
    );

    // Asking to resume from a position the replica cannot replay gets a snapshot marked reset.
    let mut late = app.ws().await;
    late.send(json!({"type": "subscribe", "branch": "demo", "station": "grill", "after": 1_000_000_000u64})).await;
    let snapshot = late.next_of("snapshot").await;
    assert_eq!(snapshot["reset"], true);
    assert_eq!(
        snapshot["snapshot"]["tickets"].as_array().unwrap().len(),
        TICKETS
    );

    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    let served: Value = text
        .lines()
        .find_map(|l| l.strip_prefix("rail_ws_resumes_total{source=\"history\"} "))
        .map(|v| json!(v.parse::<f64>().unwrap()))
        .unwrap();
    assert!(served.as_f64().unwrap() >= 10.0, "{served}");
}

/// After a crash the restarted server has read the branch's latest events back from the
/// journal, so a screen's missed events (before and after the crash) come from memory.
#[tokio::test]
async fn a_screen_resumes_from_the_journal_after_a_restart() {
    let journal = common::TestJournal::fresh().await;
    let server = common::Server::start(&journal).await;
    let fire = |server: &common::Server, order: String| {
        let (client, base) = (server.client.clone(), server.base.clone());
        async move {
            let api = format!("{base}/api/v1/branches/demo/orders/{order}");
            let lines = json!({"lines": [{"item": "steak"}]});
            assert!(client
                .post(format!("{api}/lines"))
                .json(&lines)
                .send()
                .await
                .unwrap()
                .status()
                .is_success());
            let res = client
                .post(format!("{api}/fire"))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let fired: Value = res.json().await.unwrap();
            let t = fired["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .find(|t| t["station"] == "grill");
            t.unwrap()["id"].as_str().unwrap().to_owned()
        }
    };
    let order = server.post("/orders", json!({"table": "t1"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ws_url = |s: &common::Server| s.base.replace("http://", "ws://") + "/ws";
    let stream = common::ws_connect(&ws_url(&server)).await;
    let mut screen = Ws { stream };
    screen
        .send(json!({"type": "subscribe", "branch": "demo", "station": "grill"}))
        .await;
    screen.next_of("snapshot").await;
    let mut seen = vec![fire(&server, order.clone()).await];
    let last = screen.next_event().await["position"].as_u64().unwrap();
    drop(screen);
    for _ in 0..5 {
        seen.push(fire(&server, order.clone()).await);
    }
    server.kill();

    let server = common::Server::start(&journal).await;
    for _ in 0..5 {
        seen.push(fire(&server, order.clone()).await);
    }
    let stream = common::ws_connect(&ws_url(&server)).await;
    let mut screen = Ws { stream };
    screen
        .send(json!({"type": "subscribe", "branch": "demo", "station": "grill", "after": last}))
        .await;
    let mut got = vec![seen[0].clone()];
    let mut position = last;
    while got.len() < seen.len() {
        let frame = screen.next().await.expect("socket open");
        assert_ne!(
            frame["type"], "snapshot",
            "resumed from the journal, not a snapshot: {frame}"
        );
        if frame["type"] != "event" {
            continue;
        }
        let p = frame["position"].as_u64().unwrap();
        assert!(p > position, "in order, no repeats");
        position = p;
        if frame["event"]["type"] == "course_fired" {
            let t = frame["event"]["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["station"] == "grill");
            got.push(t.unwrap()["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, seen);
    let from_history = server
        .metric("rail_ws_resumes_total{source=\"history\"}")
        .await;
    assert_eq!(
        from_history,
        Some(1.0),
        "served from the history read back at start"
    );
    server.kill();
}
