//! A screen that stops reading is closed as a slow consumer without slowing the others, and
//! resumes later without losing a ticket.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{TestApp, Ws};
use futures_util::StreamExt;
use rail::auth::Role;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

const TICKETS: usize = 150;

/// A socket with a tiny receive window, so what the server sends piles up in its queue.
async fn stalled_screen(app: &TestApp) -> Ws {
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (stream, _) = tokio_tungstenite::client_async(app.ws_url.as_str(), stream)
        .await
        .unwrap();
    let mut ws = Ws {
        stream: tokio_tungstenite::WebSocketStream::from_raw_socket(
            tokio_tungstenite::MaybeTlsStream::Plain(stream.into_inner()),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await,
    };
    // This one authenticates as a browser does: with its first frame.
    let token = common::token_for("demo", Role::Kitchen, Some("grill"), None);
    ws.send(json!({"type": "auth", "token": token})).await;
    assert_eq!(ws.next_of("authenticated").await["role"], "kitchen");
    ws
}

/// A heavy round: five steaks with every modifier a guest could think of (~30 KB a frame).
fn heavy_round() -> serde_json::Value {
    let modifiers: Vec<String> = (0..20)
        .map(|i| format!("{i:02} {}", "no onion ".repeat(16)))
        .collect();
    let line = json!({"item": "steak", "modifiers": modifiers});
    json!([line, line, line, line, line])
}

fn grill_ticket_ids(frame: &serde_json::Value) -> Vec<String> {
    frame["event"]["tickets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter(|t| t["station"] == "grill")
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn a_stalled_screen_is_closed_and_resumes_without_loss() {
    let app = TestApp::spawn_with(|s| s.ws_queue = 32).await;
    let (mut healthy, _) = app.station_screen("grill").await;
    let mut stalled = stalled_screen(&app).await;
    stalled
        .send(json!({"type": "subscribe", "branch": "demo", "station": "grill"}))
        .await;
    let snapshot = stalled.next_of("snapshot").await;
    let mut last_position = snapshot["snapshot"]["position"].as_u64().unwrap();
    // Read a few events, then stop reading.
    let order = app.open_order("t1").await;
    let mut stalled_seen: Vec<String> = Vec::new();
    for _ in 0..3 {
        app.fire_lines(&order, heavy_round()).await;
        let e = stalled.next_event().await;
        last_position = e["position"].as_u64().unwrap();
        stalled_seen.extend(grill_ticket_ids(&e));
    }

    // The rush goes on; the healthy screen keeps up.
    let mut orders = Vec::new();
    for i in 0..TICKETS / 5 + 1 {
        orders.push(app.open_order(["t2", "t3", "t4", "counter"][i % 4]).await);
    }
    let fire = async {
        for n in 3..TICKETS {
            app.fire_lines(&orders[n / 5], heavy_round()).await;
        }
    };
    let watch = async {
        let mut seen = 3;
        let mut worst = chrono::Duration::zero();
        while seen < TICKETS {
            let e = healthy.next_event().await;
            let at: chrono::DateTime<chrono::Utc> = e["at"].as_str().unwrap().parse().unwrap();
            worst = worst.max(chrono::Utc::now() - at);
            seen += grill_ticket_ids(&e).len();
        }
        worst
    };
    let ((), worst) = futures_util::join!(fire, watch);
    assert!(
        worst < chrono::Duration::seconds(2),
        "the healthy screen lagged {worst}"
    );

    // The stalled screen was closed with a reason.
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.stream.next().await {
                Some(Ok(Message::Text(t))) => {
                    let e: serde_json::Value = serde_json::from_str(&t).unwrap();
                    if e["type"] == "event" {
                        last_position = e["position"].as_u64().unwrap();
                        stalled_seen.extend(grill_ticket_ids(&e));
                    }
                }
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("the stalled screen is closed");
    let frame = close.expect("a close frame with a reason");
    assert_eq!(u16::from(frame.code), 1008);
    assert!(
        frame.reason.starts_with("slow_consumer"),
        "{}",
        frame.reason
    );

    // It comes back naming its last position. What it missed is more than its queue takes at
    // once, so it gets a fresh snapshot marked as a reset: every live ticket, nothing lost.
    let mut back = app.ws().await;
    let resume =
        json!({"type": "subscribe", "branch": "demo", "station": "grill", "after": last_position});
    back.send(resume).await;
    let snapshot = back.next_of("snapshot").await;
    assert_eq!(snapshot["reset"], true);
    let restored: HashSet<String> = snapshot["snapshot"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        stalled_seen.iter().all(|t| restored.contains(t)),
        "the snapshot holds what it saw"
    );
    let unique: HashSet<&String> = restored.iter().collect();
    assert_eq!(unique.len(), TICKETS, "every ticket, once");
    let (_, live) = app
        .get("/api/v1/branches/demo/stations/grill/tickets")
        .await;
    let live: HashSet<String> = live
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(unique, live.iter().collect::<HashSet<_>>());
}
