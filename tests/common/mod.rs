//! The test harness: the real server on a free port, driven over real HTTP and websockets.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use rail::settings::Settings;
use rail::startup::Application;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(5);

/// A server started in this process on its own journal file.
pub struct TestApp {
    pub base: String,
    pub ws_url: String,
    pub client: reqwest::Client,
    pub journal_path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Starts the server with the demo branch on a fresh journal.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::defaults();
        settings.host = "127.0.0.1".into();
        settings.port = 0;
        settings.journal_path = dir.path().join("journal.db");
        adjust(&mut settings);
        let journal_path = settings.journal_path.clone();
        let app = Application::build(settings).await.expect("server starts");
        let port = app.port();
        actix_web::rt::spawn(app.run_until_stopped());
        Self {
            base: format!("http://127.0.0.1:{port}"),
            ws_url: format!("ws://127.0.0.1:{port}/ws"),
            client: reqwest::Client::new(),
            journal_path,
            _dir: Some(dir),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(res).await
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        read(res).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .client
            .put(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(res).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        read(res).await
    }

    /// Opens an order at a demo table and returns its id.
    pub async fn open_order(&self, table: &str) -> String {
        let (status, order) = self
            .post("/api/v1/branches/demo/orders", json!({"table": table}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        order["id"].as_str().unwrap().to_owned()
    }

    /// Adds lines to a demo order and fires them all; returns the order.
    pub async fn fire_lines(&self, order: &str, lines: Value) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/branches/demo/orders/{order}/lines"),
                json!({ "lines": lines }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self
            .post(
                &format!("/api/v1/branches/demo/orders/{order}/fire"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Every event of the demo branch's journal.
    pub async fn journal(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let after = all
                .last()
                .map(|e: &Value| e["position"].as_u64().unwrap())
                .unwrap_or(0);
            let (status, page) = self
                .get(&format!(
                    "/api/v1/branches/demo/events?after={after}&limit=1000"
                ))
                .await;
            assert_eq!(status, StatusCode::OK);
            let page = page.as_array().unwrap().clone();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    pub async fn ws(&self) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(&self.ws_url)
            .await
            .expect("ws connects");
        Ws { stream }
    }

    /// A socket already following a station, its snapshot read.
    pub async fn station_screen(&self, station: &str) -> (Ws, Value) {
        let mut ws = self.ws().await;
        ws.send(json!({"type": "subscribe", "branch": "demo", "station": station}))
            .await;
        let snapshot = ws.next_of("snapshot").await;
        (ws, snapshot)
    }
}

pub async fn read(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A websocket client speaking the engine's JSON frames.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text.to_owned()))
            .await
            .unwrap();
    }

    /// The next JSON frame, or None when the socket closed. Panics after `WAIT`.
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(WAIT)
            .await
            .expect("a frame arrives in time")
    }

    /// The next JSON frame within a time, Err on timeout, Ok(None) when closed.
    pub async fn next_within(&mut self, limit: Duration) -> Result<Option<Value>, ()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| ())?;
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(Some(serde_json::from_str(&t).unwrap())),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(None),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Skips frames until one of the given type.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("socket closed waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next event frame (skipping acks and subscription notices).
    pub async fn next_event(&mut self) -> Value {
        self.next_of("event").await
    }

    /// Asserts that no event frame arrives within a short time.
    pub async fn assert_no_event(&mut self, within: Duration) {
        loop {
            match self.next_within(within).await {
                Err(()) | Ok(None) => return,
                Ok(Some(frame)) if frame["type"] == "event" => panic!("unexpected event: {frame}"),
                Ok(Some(_)) => continue,
            }
        }
    }
}

/// The server binary in its own process, to be killed or stopped by signal.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start(journal: &Path) -> Self {
        Self::start_with(journal, &[]).await
    }

    pub async fn start_with(journal: &Path, env: &[(&str, &str)]) -> Self {
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
            .envs(env.iter().copied())
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

    pub async fn post(&self, path: &str, body: Value) -> Value {
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

    pub async fn get(&self, path: &str) -> Value {
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
    pub async fn live_state(&self) -> Value {
        let mut stations = serde_json::Map::new();
        for s in ["grill", "fryer", "cold", "bar", "pastry", "expo"] {
            stations.insert(s.into(), self.get(&format!("/stations/{s}/tickets")).await);
        }
        json!({ "orders": self.get("/orders").await, "stations": stations })
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}
