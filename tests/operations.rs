//! What operators rely on: health, readiness, and metrics a real Prometheus can scrape.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Puts some kitchen activity behind the metrics: a screen, an order fired and bumped.
async fn kitchen_activity(app: &TestApp) -> common::Ws {
    let (mut grill, _) = app.station_screen("grill").await;
    let order = app.open_order("t1").await;
    app.fire_lines(&order, json!([{"item": "steak"}])).await;
    let fired = grill.next_event().await;
    let ticket = fired["event"]["tickets"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .post(
            &format!("/api/v1/branches/demo/stations/grill/tickets/{ticket}/bump"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A second ticket stays live, so the station has an oldest ticket. The bump's own event
    // may come first.
    app.fire_lines(&order, json!([{"item": "salmon"}])).await;
    while grill.next_event().await["event"]["type"] != "course_fired" {}
    grill
}

async fn scrape(app: &TestApp) -> String {
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

#[actix_web::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn metrics_pass_promtool_and_cover_what_alerts_and_dashboards_query() {
    let app = TestApp::spawn().await;
    let _screen = kitchen_activity(&app).await;
    let text = scrape(&app).await;

    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus; scripts/test installs it)");
    use tokio::io::AsyncWriteExt;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .await
        .unwrap();
    let out = promtool.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    for series in [
        "rail_station_live_tickets{branch=\"demo\",station=\"grill\"} 1",
        "rail_station_screens{branch=\"demo\",station=\"grill\"} 1",
        "rail_ticket_cook_seconds_count{branch=\"demo\",station=\"grill\"} 1",
        "rail_fire_to_screen_seconds_count{station=\"grill\"} 2",
        "rail_ready 1",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(series), "scrape lacks {series}");
    }
    assert!(!text.contains("order_id"), "labels must stay bounded");

    // Every metric the alert rules and the dashboard query is in a live scrape.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("k8s/check"))
        .arg("--metric-names")
        .output()
        .expect("k8s/check runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = names.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        names.len() >= 10,
        "expected the alerts and dashboard to query metrics: {names:?}"
    );
    let exported: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for name in names {
        assert!(
            exported.contains(&name),
            "{name} is queried but not exported"
        );
    }
}

#[actix_web::test]
async fn a_real_prometheus_scrapes_the_engine() {
    let app = TestApp::spawn().await;
    let _screen = kitchen_activity(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let target = app.base.trim_start_matches("http://").to_owned();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rail\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus runs (Debian package prometheus; scripts/test installs it)");

    let query = |q: &str| {
        let url = format!("http://127.0.0.1:{port}/api/v1/query");
        let client = app.client.clone();
        let q = q.to_owned();
        async move {
            let res = client
                .get(url)
                .query(&[("query", q.as_str())])
                .send()
                .await
                .ok()?;
            let body: Value = res.json().await.ok()?;
            let result = body["data"]["result"].as_array()?.clone();
            (!result.is_empty()).then_some(result)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for q in [
        "rail_ready",
        "rail_station_live_tickets{station=\"grill\"}",
        "rail_ticket_cook_seconds_count",
        "rail_http_requests_total",
    ] {
        let result = loop {
            if let Some(result) = query(q).await {
                break result;
            }
            assert!(Instant::now() < deadline, "prometheus never returned {q}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let value = result[0]["value"][1].as_str().unwrap();
        assert!(value.parse::<f64>().unwrap() >= 1.0, "{q} = {value}");
    }
    prometheus.kill().await.unwrap();
}

#[tokio::test]
async fn json_logs_follow_a_request_into_the_actors_and_hold_no_bodies() {
    let journal = common::TestJournal::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("rail.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rail"))
        .env_remove("DATABASE_URL")
        .env_remove("RAIL_JOURNAL_PATH")
        .envs(journal.env())
        .env("RAIL_HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RAIL_LOG_FORMAT", "json")
        .env("RUST_LOG", "rail_actors=debug,info")
        .env("JWT_SECRET", common::SECRET)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let token = common::manager("demo");
    let client = common::client_as(&token);
    let base = format!("http://127.0.0.1:{port}/api/v1/branches/demo");
    let deadline = Instant::now() + Duration::from_secs(20);
    let order: Value = loop {
        if let Ok(res) = client
            .post(format!("{base}/orders"))
            .json(&json!({"table": "t1"}))
            .send()
            .await
        {
            break res.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = order["id"].as_str().unwrap();
    let secret = "SEAT-NOTE-guest-allergic-to-sesame";
    let res = client
        .post(format!("{base}/orders/{id}/lines"))
        .json(&json!({"lines": [{"item": "fries", "note": secret}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    let committed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "committed" && l["fields"]["order_id"] == id)
        .collect();
    assert_eq!(committed.len(), 2, "an actor log line for each command");
    for line in &committed {
        // The actor's command span sits under the request's: the line carries both.
        let spans = line["spans"].as_array().expect("the line's spans");
        let request = spans
            .iter()
            .find(|s| s["request_id"].is_string())
            .expect("the request id reaches the actor");
        assert_eq!(request["request_id"].as_str().unwrap().len(), 36);
        assert!(request["http.route"].as_str().unwrap().contains("/orders"));
        assert!(
            spans
                .iter()
                .any(|s| s["name"].as_str().is_some_and(|n| n.starts_with("table."))),
            "{line}"
        );
    }
    let request_of = |line: &Value| {
        line["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|s| s["request_id"].as_str().map(str::to_owned))
    };
    assert_ne!(request_of(committed[0]), request_of(committed[1]));
    assert!(!text.contains(secret), "a request body reached the logs");
    let signature = token.rsplit('.').next().unwrap();
    assert!(!text.contains(signature), "a token reached the logs");
    assert!(
        !text.contains(common::SECRET),
        "the signing secret reached the logs"
    );
}
