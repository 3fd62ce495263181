//! SIGTERM during a rush: readiness turns false first, screens are told to reconnect, the
//! process exits within its limit, and every acknowledged command is in the journal.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const LIMIT_SECONDS: u64 = 5;

/// Opens orders and adds lines until the server stops answering; returns what was acknowledged.
async fn waiter(base: String, table: &'static str, stop: Arc<AtomicBool>) -> Vec<(String, usize)> {
    let client = common::client();
    let mut acked = Vec::new();
    let api = format!("{base}/api/v1/branches/demo");
    while !stop.load(Ordering::SeqCst) {
        let Ok(res) = client
            .post(format!("{api}/orders"))
            .json(&json!({"table": table}))
            .send()
            .await
        else {
            break;
        };
        if res.status() != StatusCode::CREATED {
            break;
        }
        let order: serde_json::Value = res.json().await.unwrap();
        let id = order["id"].as_str().unwrap().to_owned();
        acked.push((id.clone(), 0));
        for n in 1..=3 {
            let line = json!({"lines": [{"item": "fries", "quantity": n}]});
            let Ok(res) = client
                .post(format!("{api}/orders/{id}/lines"))
                .json(&line)
                .send()
                .await
            else {
                return acked;
            };
            if res.status() != StatusCode::OK {
                return acked;
            }
            acked.last_mut().unwrap().1 = n as usize;
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_loses_nothing_acknowledged() {
    let journal = common::TestJournal::fresh().await;
    let limit = LIMIT_SECONDS.to_string();
    let env = [
        ("RAIL_SHUTDOWN_DRAIN_SECONDS", "1"),
        ("RAIL_SHUTDOWN_SECONDS", limit.as_str()),
    ];
    let mut server = Server::start_with(&journal, &env).await;

    let ws_url = server.base.replace("http://", "ws://") + "/ws";
    let mut screen = common::ws_connect(&ws_url).await;
    let sub = json!({"type": "subscribe", "branch": "demo", "station": "fryer"});
    screen.send(Message::text(sub.to_string())).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let waiters: Vec<_> = ["t1", "t2", "t3", "t4", "counter", "takeaway"]
        .into_iter()
        .map(|t| tokio::spawn(waiter(server.base.clone(), t, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;

    let sigterm_at = Instant::now();
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());

    // Not ready at once, while still alive and serving.
    let mut saw_not_ready = false;
    while sigterm_at.elapsed() < Duration::from_millis(900) {
        let ready = server
            .client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap();
        if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
            let alive = server
                .client
                .get(format!("{}/healthz", server.base))
                .send()
                .await
                .unwrap();
            assert_eq!(alive.status(), StatusCode::OK);
            saw_not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_not_ready, "/readyz did not turn false during the drain");

    // The screen is told to reconnect.
    let close_code = tokio::time::timeout(Duration::from_secs(LIMIT_SECONDS), async {
        loop {
            match screen.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return Some(u16::from(frame.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the screen was closed in time");
    assert_eq!(
        close_code,
        Some(1012),
        "close with 'service restart' so screens reconnect"
    );

    // The process exits within its limit.
    let exited = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sigterm_at.elapsed() < Duration::from_secs(LIMIT_SECONDS + 2),
            "still running past the shutdown limit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "exit status {exited}");
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    for w in waiters {
        acked.extend(w.await.unwrap());
    }
    assert!(
        acked.len() >= 6,
        "the load generated too little: {}",
        acked.len()
    );

    // Everything acknowledged is there after a restart.
    let server = Server::start(&journal).await;
    for (order, lines) in &acked {
        let read = server.get(&format!("/orders/{order}")).await;
        let have = read["lines"].as_array().unwrap().len();
        assert!(
            have >= *lines,
            "order {order}: {lines} line(s) acknowledged, {have} in the journal"
        );
    }
    server.kill();
}
