//! A crash (SIGKILL, no graceful stop) loses nothing that was acknowledged: the restarted
//! server has every open order and live ticket back exactly.

mod common;

use common::Server;
use serde_json::{json, Value};

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
    survives_a_kill(&[]).await;
}

/// The same, with the branch snapshotting itself every few events: the restart reads the
/// latest snapshot and the events after it (including the close of an order the snapshot
/// holds open).
#[tokio::test]
async fn recovery_from_snapshots_survives_a_kill() {
    survives_a_kill(&[("RAIL_SNAPSHOT_EVERY", "3")]).await;
}

async fn survives_a_kill(env: &[(&str, &str)]) {
    let journal = common::TestJournal::fresh().await;
    let server = Server::start_with(&journal, env).await;

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
    if env.is_empty() {
        assert_eq!(
            snapshots_saved(&server).await,
            0,
            "snapshots come every 5,000 events"
        );
    } else {
        // Snapshots are written off the branch actor: the last may still be on its way.
        let mut saved = 0;
        for _ in 0..50 {
            saved = snapshots_saved(&server).await;
            if saved > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(saved > 0, "no snapshot was saved");
    }
    server.kill();

    let server = Server::start_with(&journal, env).await;
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

/// Snapshots the server saved, from its metrics.
async fn snapshots_saved(server: &Server) -> u64 {
    let saved = server.metric("rail_snapshot_save_seconds_count").await;
    saved.unwrap_or(0.0) as u64
}
