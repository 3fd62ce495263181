//! `/metrics` on a port of its own: Prometheus scrapes it there, the main port (the one the
//! Ingress routes) answers 404, and the probes stay on the main port.

mod common;

use common::TestApp;
use reqwest::StatusCode;

async fn get(url: String) -> (StatusCode, String) {
    let res = reqwest::get(url).await.expect("the server answers");
    (res.status(), res.text().await.unwrap())
}

#[actix_web::test]
async fn metrics_move_to_their_own_port_and_leave_the_main_one() {
    let app = TestApp::spawn_with(|s| s.metrics_port = Some(0)).await;
    let metrics = app.metrics_base.clone().expect("a metrics port");
    assert_ne!(metrics, app.base);

    let (status, text) = get(format!("{metrics}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("rail_ready 1"), "{text}");
    assert!(
        text.contains("rail_ws_connections"),
        "the edge's metrics too"
    );

    let (status, body) = get(format!("{}/metrics", app.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("not_found"), "{body}");
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(
            get(format!("{}{probe}", app.base)).await.0,
            StatusCode::OK,
            "{probe}"
        );
        assert_eq!(
            get(format!("{metrics}{probe}")).await.0,
            StatusCode::NOT_FOUND,
            "{probe} is not on the metrics port"
        );
    }
    // What the main port serves is counted and seen on the metrics port.
    get(format!("{}/healthz", app.base)).await;
    let (_, text) = get(format!("{metrics}/metrics")).await;
    assert!(text.contains(r#"route="/healthz""#), "{text}");
}

#[actix_web::test]
async fn without_a_metrics_port_the_main_port_serves_them() {
    let app = TestApp::spawn().await;
    assert!(app.metrics_base.is_none());
    let (status, text) = get(format!("{}/metrics", app.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("rail_ready 1"));
}
