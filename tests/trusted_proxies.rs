//! `X-Forwarded-For` is believed only from `trusted_proxies`: behind a trusted proxy each
//! device has its own per-address socket cap and its own address in the log; from anyone else
//! the header is ignored, so a client cannot pick the address it is counted as.

mod common;

use common::{manager, Server, TestApp, TestJournal};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Opens a websocket as the demo's manager, `forwarded` in its `X-Forwarded-For`; the
/// handshake's status when refused.
async fn open(app: &TestApp, forwarded: &str) -> Result<impl Sized, StatusCode> {
    let mut request = app.ws_url.as_str().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "authorization",
        format!("Bearer {}", manager("demo")).parse().unwrap(),
    );
    headers.insert("x-forwarded-for", forwarded.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

#[actix_web::test]
async fn without_trusted_proxies_the_header_changes_nothing() {
    let app = TestApp::spawn_with(|s| s.ws_connections_per_address = 1).await;
    let first = open(&app, "203.0.113.5").await;
    assert!(first.is_ok(), "the first socket from 127.0.0.1 opens");
    assert_eq!(
        open(&app, "203.0.113.6").await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS),
        "a second socket from the same peer is over the cap, whatever it claims"
    );
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_cap() {
    let app = TestApp::spawn_with(|s| {
        s.ws_connections_per_address = 1;
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let five = open(&app, "203.0.113.5").await;
    let six = open(&app, "203.0.113.6").await;
    assert!(five.is_ok() && six.is_ok(), "two devices behind the proxy");
    assert_eq!(
        open(&app, "198.51.100.7, 203.0.113.5").await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS),
        "what a client writes before the proxy's hop is not believed: this is .5 again"
    );
}

/// The log without its terminal colours.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence runs to its final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `http.client_ip` of the log's refusal lines.
fn client_ips(log: &str) -> Vec<String> {
    plain(log)
        .lines()
        .filter_map(|l| l.split("http.client_ip=").nth(1))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_log_names_the_client_a_trusted_proxy_names_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    for (trusted, expected) in [("127.0.0.1/32", "203.0.113.5"), ("", "127.0.0.1")] {
        let log = dir.path().join(format!("server-{expected}.log"));
        let journal = TestJournal::fresh().await;
        let env = [("RAIL_TRUSTED_PROXIES", trusted)];
        let env: &[(&str, &str)] = if trusted.is_empty() { &[] } else { &env };
        let server = Server::start_logging_to(&journal, env, &log).await;
        // Refused (no token): its line is logged with the request's client.
        let status = reqwest::Client::new()
            .get(format!("{}/api/v1/branches/demo/orders", server.base))
            .header("x-forwarded-for", "198.51.100.7, 203.0.113.5")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        server.kill();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            client_ips(&text),
            [expected],
            "trusted {trusted:?}:\n{text}"
        );
        assert!(
            !text.contains("198.51.100.7"),
            "a client's own claim is never logged as its address"
        );
    }
}
