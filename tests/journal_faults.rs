//! The Postgres journal under faults: slow, cut and refused connections, and backends killed
//! as in a server restart. Commands fail fast with `journal_unavailable` (never hang, never a
//! silent success), the pool recovers by itself, and nothing acknowledged is lost.

mod common;

use std::time::{Duration, Instant};

use common::proxy::FaultProxy;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

const TIMEOUT_MS: u64 = 1000;
/// How long a command may take to fail: the journal timeout, a pool wait, and slack.
const BOUND: Duration = Duration::from_millis(3 * TIMEOUT_MS + 1000);

struct Rush<'a> {
    app: &'a TestApp,
    /// Acknowledged (order, lines) pairs.
    acked: Vec<(String, usize)>,
}

impl Rush<'_> {
    /// Opens an order with one line; returns the statuses and the time it took.
    async fn order(&mut self, table: &str) -> (StatusCode, Value, Duration) {
        let started = Instant::now();
        let (status, body) = self
            .app
            .post("/api/v1/branches/demo/orders", json!({"table": table}))
            .await;
        if status != StatusCode::CREATED {
            return (status, body, started.elapsed());
        }
        let id = body["id"].as_str().unwrap().to_owned();
        self.acked.push((id.clone(), 0));
        self.add_line(&id).await
    }

    async fn add_line(&mut self, order: &str) -> (StatusCode, Value, Duration) {
        let started = Instant::now();
        let path = format!("/api/v1/branches/demo/orders/{order}/lines");
        let (status, body) = self
            .app
            .post(&path, json!({"lines": [{"item": "fries"}]}))
            .await;
        if status == StatusCode::OK {
            let lines = body["lines"].as_array().unwrap().len();
            match self.acked.iter_mut().find(|(id, _)| id == order) {
                Some(entry) => entry.1 = lines,
                None => self.acked.push((order.to_owned(), lines)),
            }
        }
        (status, body, started.elapsed())
    }

    /// Retries until the journal takes commands again.
    async fn until_recovered(&mut self, order: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body, _) = self.add_line(order).await;
            if status == StatusCode::OK {
                return;
            }
            assert_eq!(body["error"]["code"], "journal_unavailable", "{body}");
            assert!(Instant::now() < deadline, "the journal did not recover");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn assert_unavailable(what: &str, (status, body, took): (StatusCode, Value, Duration)) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert_eq!(
        body["error"]["code"], "journal_unavailable",
        "{what}: {body}"
    );
    assert!(took < BOUND, "{what} took {took:?}, over {BOUND:?}");
}

#[actix_web::test]
async fn postgres_faults_fail_fast_recover_and_lose_nothing() {
    let url = common::fresh_database().await;
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("the fault test needs Postgres over TCP, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let proxy = FaultProxy::start(format!("{host}:{port}")).await;
    let (_, db) = url.rsplit_once('/').unwrap();
    let user = config.get_user().unwrap_or("postgres");
    let proxied = format!("postgres://{user}@127.0.0.1:{}/{db}", proxy.port);
    let app = TestApp::spawn_with(|s| {
        s.database_url = Some(proxied);
        s.journal_timeout_ms = TIMEOUT_MS;
    })
    .await;
    let mut rush = Rush {
        app: &app,
        acked: Vec::new(),
    };
    let (status, body, _) = rush.order("t1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = rush.acked[0].0.clone();

    // Connections cut and new ones refused: commands fail fast, readiness turns false.
    proxy.set_refuse(true);
    proxy.cut();
    assert_unavailable(
        "a line while Postgres is unreachable",
        rush.add_line(&first).await,
    );
    assert_unavailable(
        "an order while Postgres is unreachable",
        rush.order("t2").await,
    );
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Back, and the pool reconnects by itself.
    proxy.heal();
    rush.until_recovered(&first).await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    // Slower than the timeout: still a fast, clear failure.
    proxy.set_latency(Duration::from_millis(3 * TIMEOUT_MS));
    assert_unavailable("a line while Postgres is slow", rush.add_line(&first).await);
    proxy.heal();
    rush.until_recovered(&first).await;

    // Every backend killed, as when the server restarts.
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (admin, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let killed = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .unwrap();
    assert!(killed >= 1, "the engine held no connection to kill");
    rush.until_recovered(&first).await;
    for table in ["t3", "t4", "counter"] {
        let (status, body, _) = rush.order(table).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Nothing acknowledged was lost, and the journal has no gap.
    for (order, lines) in &rush.acked {
        let (status, read) = app
            .get(&format!("/api/v1/branches/demo/orders/{order}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{read}");
        let have = read["lines"].as_array().unwrap().len();
        assert!(
            have >= *lines,
            "order {order}: {lines} line(s) acknowledged, {have} journaled"
        );
    }
    let journal = app.journal().await;
    let positions: Vec<u64> = journal
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());
}
