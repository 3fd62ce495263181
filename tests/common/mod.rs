//! The test harness: the real server on a free port, driven over real HTTP and websockets.
#![allow(dead_code)]

pub mod otlp;
pub mod proxy;
pub mod replicas;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use rail::auth::{Role, TokenRequest};
use rail::settings::Settings;
use rail::startup::Application;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(5);

/// The secret every test server signs device tokens with.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The test servers' token keys.
pub fn tokens() -> rail::auth::Tokens {
    rail::auth::Tokens::new(SECRET.as_bytes(), "rail", "rail", Duration::from_secs(30))
        .expect("valid test secret")
}

/// A token for a device of `branch`.
pub fn token_for(branch: &str, role: Role, station: Option<&str>, table: Option<&str>) -> String {
    let request = TokenRequest {
        role,
        station: station.map(|s| s.parse().unwrap()),
        table: table.map(|t| t.parse().unwrap()),
        device: Some(format!("test-{}", role.as_str())),
        ttl_seconds: Some(3600),
    };
    tokens()
        .issue(&branch.parse().unwrap(), &request)
        .expect("token issues")
        .token
}

/// A manager's token for `branch`.
pub fn manager(branch: &str) -> String {
    token_for(branch, Role::Manager, None, None)
}

/// An HTTP client that speaks as the demo branch's manager unless a request says otherwise.
pub fn client() -> reqwest::Client {
    client_as(&manager("demo"))
}

/// An HTTP client that sends `token` with every request.
pub fn client_as(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The bearer header for a path's branch (`/api/v1/branches/{branch}/...`), as its manager.
fn bearer_for(path: &str) -> Option<String> {
    let branch = path
        .strip_prefix("/api/v1/branches/")?
        .split(['/', '?'])
        .next()?;
    rail_actors::ids::BranchId::parse(branch)
        .ok()
        .map(|_| format!("Bearer {}", manager(branch)))
}

/// Connects a websocket to `url` with `token` in the handshake.
pub async fn ws_connect_as(url: &str, token: &str) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("ws connects");
    stream
}

/// Connects a websocket as the demo branch's manager.
pub async fn ws_connect(url: &str) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    ws_connect_as(url, &manager("demo")).await
}

/// Where a test's journal lives: a fresh SQLite file, or a fresh Postgres database when
/// `RAIL_TEST_JOURNAL=postgres` (the server at `TEST_DATABASE_URL`, by default the local one).
pub enum Store {
    File(PathBuf),
    Postgres(String),
}

/// A journal of a test's own, removed (file) or left for `scripts/test` to drop (database).
pub struct TestJournal {
    pub store: Store,
    _dir: tempfile::TempDir,
}

impl TestJournal {
    pub async fn fresh() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = match std::env::var("RAIL_TEST_JOURNAL").as_deref() {
            Ok("postgres") => Store::Postgres(fresh_database().await),
            Ok("embedded") | Err(_) => Store::File(dir.path().join("journal.db")),
            Ok(other) => {
                panic!("RAIL_TEST_JOURNAL must be 'embedded' or 'postgres', not '{other}'")
            }
        };
        Self { store, _dir: dir }
    }

    /// A fresh SQLite file whatever `RAIL_TEST_JOURNAL` says (what only the embedded journal
    /// has, such as its backups).
    pub fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::File(dir.path().join("journal.db"));
        Self { store, _dir: dir }
    }

    /// A copy of a golden journal under `tests/fixtures/`: the embedded file itself, or the
    /// Postgres dump loaded into a fresh database (by `RAIL_TEST_JOURNAL`, as `fresh` does).
    pub async fn golden(embedded: &str, postgres: &str) -> Self {
        let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let journal = Self::fresh().await;
        match &journal.store {
            Store::File(path) => {
                std::fs::copy(fixtures.join(embedded), path).expect("golden journal copies");
            }
            Store::Postgres(url) => {
                let dump = std::fs::read_to_string(fixtures.join(postgres)).expect("golden dump");
                // psql's meta-commands (`\restrict`) are not SQL.
                let sql: String = dump
                    .lines()
                    .filter(|l| !l.starts_with('\\'))
                    .flat_map(|l| [l, "\n"])
                    .collect();
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("test database answers");
                tokio::spawn(conn);
                client.batch_execute(&sql).await.expect("golden dump loads");
            }
        }
        journal
    }

    /// The environment a server process needs to use this journal.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match &self.store {
            Store::File(path) => vec![("RAIL_JOURNAL_PATH", path.display().to_string())],
            Store::Postgres(url) => vec![("DATABASE_URL", url.clone())],
        }
    }
}

/// Creates an empty database named for one test and returns its URL.
pub async fn fresh_database() -> String {
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap_or_else(|e| {
        panic!("RAIL_TEST_JOURNAL=postgres, but Postgres at {admin} is not reachable ({e}); scripts/test starts it")
    });
    tokio::spawn(conn);
    let name = format!("rail_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

/// A server started in this process on a journal of its own.
pub struct TestApp {
    pub base: String,
    /// Where `/metrics` is served when the settings give it a port of its own.
    pub metrics_base: Option<String>,
    pub ws_url: String,
    pub client: reqwest::Client,
    pub journal: TestJournal,
}

impl TestApp {
    /// A series' value in the server's metrics (None when it is not exported yet).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric_at(&self.base, series).await
    }

    /// Starts the server with the demo branch on a fresh journal.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let journal = TestJournal::fresh().await;
        let mut settings = Settings::defaults();
        settings.host = "127.0.0.1".into();
        settings.port = 0;
        match &journal.store {
            Store::File(path) => settings.journal_path = path.clone(),
            Store::Postgres(url) => settings.database_url = Some(url.clone()),
        }
        settings.jwt_secret = Some(SECRET.into());
        adjust(&mut settings);
        let app = Application::build(settings).await.expect("server starts");
        let port = app.port();
        let metrics_base = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
        actix_web::rt::spawn(app.run_until_stopped());
        Self {
            base: format!("http://127.0.0.1:{port}"),
            metrics_base,
            ws_url: format!("ws://127.0.0.1:{port}/ws"),
            client: client(),
            journal,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .headers(auth_headers(path))
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
            .headers(auth_headers(path))
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
            .headers(auth_headers(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(res).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .delete(format!("{}{path}", self.base))
            .headers(auth_headers(path))
            .send()
            .await
            .unwrap();
        read(res).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .headers(auth_headers(path))
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

    /// A socket authenticated as the demo branch's manager.
    pub async fn ws(&self) -> Ws {
        Ws {
            stream: ws_connect(&self.ws_url).await,
        }
    }

    /// A socket authenticated with `token`.
    pub async fn ws_as(&self, token: &str) -> Ws {
        Ws {
            stream: ws_connect_as(&self.ws_url, token).await,
        }
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

/// The manager's bearer header for the branch a path names, if it names one.
pub fn auth_headers(path: &str) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(bearer) = bearer_for(path) {
        headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    }
    headers
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

/// A series' value in the metrics of the server at `base` (None when it is not exported yet).
pub async fn metric_at(base: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

impl Server {
    /// A series' value in the server's metrics (None when it is not exported yet).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric_at(&self.base, series).await
    }

    pub async fn start(journal: &TestJournal) -> Self {
        Self::start_with(journal, &[]).await
    }

    pub async fn start_with(journal: &TestJournal, env: &[(&str, &str)]) -> Self {
        Self::spawn(journal, env, "warn", Stdio::null(), Stdio::inherit()).await
    }

    /// A server whose every log line (info and above, both streams) goes to `log`.
    pub async fn start_logging_to(
        journal: &TestJournal,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let copy = file.try_clone().unwrap();
        Self::spawn(journal, env, "info", file.into(), copy.into()).await
    }

    async fn spawn(
        journal: &TestJournal,
        env: &[(&str, &str)],
        rust_log: &str,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_rail"))
            .env_remove("DATABASE_URL")
            .env("RAIL_HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env_remove("RAIL_JOURNAL_PATH")
            .envs(journal.env())
            .env("RUST_LOG", rust_log)
            .env("JWT_SECRET", SECRET)
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("server binary starts");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: client(),
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

/// The OpenAPI document the server at `base` serves.
pub async fn served_openapi(base: &str) -> Value {
    reqwest::get(format!("{base}/api/v1/openapi.json"))
        .await
        .expect("the document answers")
        .json()
        .await
        .expect("the document is JSON")
}

/// A JSON Schema validator for one component of an OpenAPI document, its references resolved
/// within the document.
pub fn schema_validator(doc: &Value, name: &str) -> jsonschema::Validator {
    assert!(
        doc["components"]["schemas"].get(name).is_some(),
        "no component {name}"
    );
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema of {name} does not build: {e}"))
}
