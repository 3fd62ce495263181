//! A crash (SIGKILL, no graceful stop) loses nothing that was acknowledged: the restarted
//! server has every open order and live ticket back exactly.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::read;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Server {
    async fn start(journal: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_rail"))
            .env_remove("DATABASE_URL")
            .env("RAIL_HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("RAIL_JOURNAL_PATH", journal)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server binary starts");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(res) = server
                .client
                .get(format!("{}/healthz", server.base))
                .send()
                .await
            {
                if res.status() == StatusCode::OK {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let res = self
            .client
            .post(format!("{}/api/v1/branches/demo{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, body) = read(res).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .client
            .get(format!("{}/api/v1/branches/demo{path}", self.base))
            .send()
            .await
            .unwrap();
        let (status, body) = read(res).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// Everything a screen or tablet could see: open orders and each station's live tickets.
    async fn live_state(&self) -> Value {
        let mut stations = serde_json::Map::new();
        for s in ["grill", "fryer", "cold", "bar", "pastry", "expo"] {
            stations.insert(s.into(), self.get(&format!("/stations/{s}/tickets")).await);
        }
        json!({ "orders": self.get("/orders").await, "stations": stations })
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

fn ticket_at<'a>(order: &'a Value, station: &str, fire: u64) -> &'a str {
    order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == station && t["fire_no"] == fire)
        .and_then(|t| t["id"].as_str())
        .unwrap()
}

#[tokio::test]
async fn open_orders_and_live_tickets_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let server = Server::start(&journal).await;

    // Table 1: two courses, the first partly cooked, one line voided.
    let t1 = server
        .post("/orders", json!({"table": "t1", "guests": 3}))
        .await;
    let t1 = t1["id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/orders/{t1}/lines"),
            json!({"lines": [
                {"item": "caesar", "course": 1, "seat": 1},
                {"item": "calamari", "course": 1, "seat": 2, "modifiers": ["extra lemon"]},
                {"item": "steak", "course": 2, "note": "rare"},
                {"item": "brownie", "course": 3}
            ]}),
        )
        .await;
    let fired = server
        .post(&format!("/orders/{t1}/fire"), json!({"course": 1}))
        .await;
    let cold = ticket_at(&fired, "cold", 1).to_owned();
    server
        .post(&format!("/stations/cold/tickets/{cold}/start"), json!({}))
        .await;
    server
        .post(&format!("/stations/cold/tickets/{cold}/bump"), json!({}))
        .await;
    server
        .post(&format!("/orders/{t1}/fire"), json!({"course": 2}))
        .await;
    server
        .post(&format!("/orders/{t1}/lines/4/void"), json!({}))
        .await;

    // The counter: fired, fully cooked, sent by expo and served, then closed.
    let c = server.post("/orders", json!({"table": "counter"})).await;
    let c = c["id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/orders/{c}/lines"),
            json!({"lines": [{"item": "espresso"}]}),
        )
        .await;
    let fired = server.post(&format!("/orders/{c}/fire"), json!({})).await;
    let bar = ticket_at(&fired, "bar", 1).to_owned();
    let expo = ticket_at(&fired, "expo", 1).to_owned();
    server
        .post(&format!("/stations/bar/tickets/{bar}/bump"), json!({}))
        .await;
    server
        .post(&format!("/stations/expo/tickets/{expo}/bump"), json!({}))
        .await;
    server.post(&format!("/orders/{c}/serve"), json!({})).await;
    server.post(&format!("/orders/{c}/close"), json!({})).await;

    // Takeaway: the last acknowledged command just before the kill.
    let t = server.post("/orders", json!({"table": "takeaway"})).await;
    let t = t["id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/orders/{t}/lines"),
            json!({"lines": [{"item": "burger", "quantity": 2}]}),
        )
        .await;
    server.post(&format!("/orders/{t}/fire"), json!({})).await;

    let before = server.live_state().await;
    assert_eq!(before["orders"].as_array().unwrap().len(), 2);
    assert_eq!(before["stations"]["grill"].as_array().unwrap().len(), 2);
    server.kill();

    let server = Server::start(&journal).await;
    let after = server.live_state().await;
    assert_eq!(after, before, "live state after the crash differs");

    // The closed order is still readable, and ticket numbers carry on.
    let closed = server.get(&format!("/orders/{c}")).await;
    assert!(closed["closed_at"].is_string());
    let next = server.post("/orders", json!({"table": "t3"})).await;
    assert_eq!(next["ticket_no"], 4);
    // And the recovered actors accept commands.
    let grill = ticket_at(&before["orders"][0], "grill", 2).to_owned();
    let ticket = server
        .post(&format!("/stations/grill/tickets/{grill}/start"), json!({}))
        .await;
    assert_eq!(ticket["status"], "started");
    server.kill();
}
