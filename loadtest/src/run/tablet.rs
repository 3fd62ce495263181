//! A waiter's tablet: one socket a table, following it. It hands each fire's ready notice to
//! the waiter of that order, and counts a notice that comes twice; after a reset snapshot it
//! takes the notices it missed from the table's orders.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::Message;

use super::link::{Dedupe, Ended, Link};
use super::{FireKey, Shared};
use crate::proto::{Frame, Socket, Topic};

/// A waiter's tablet: follows its table and hands each ready notice to the order's task.
/// Reconnects and resumes like a screen, and hangs up and dials again when told to redial.
pub(super) async fn tablet_task(
    shared: Arc<Shared>,
    link: Link,
    ws: Socket,
    position: u64,
    redial: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let table = match &link.topic {
        Topic::Table(t) | Topic::Station(t) => t.clone(),
    };
    let mut tablet = Tablet {
        who: format!("tablet {}/{table}", link.branch),
        shared: shared.clone(),
        dedupe: Dedupe::default(),
        notices: HashSet::new(),
        position,
    };
    let mut ws = ws;
    let mut replica = link.home;
    let mut connected_at = shared.kills_of(replica);
    loop {
        let (mut sink, mut stream) = ws.split();
        let ended = loop {
            let msg = tokio::select! {
                _ = stop.changed() => break Ended::Stopped,
                () = redial.notified() => break Ended::Redial,
                msg = stream.next() => msg,
            };
            match msg {
                Some(Ok(Message::Text(text))) => tablet.frame(&text, Instant::now()),
                Some(Ok(Message::Close(close))) => break Ended::Lost(format!("{close:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Ended::Lost(e.to_string()),
                None => break Ended::Lost("stream ended".to_owned()),
            }
        };
        let on = (replica, connected_at);
        if !shared
            .after_socket(ended, &mut sink, &stop, on, &tablet.who)
            .await
        {
            break;
        }
        let Some((new, on, kills)) = shared.reconnect(&link, tablet.position, &mut stop).await
        else {
            break;
        };
        (ws, replica, connected_at) = (new, on, kills);
    }
}

/// A tablet's state, kept across reconnects.
struct Tablet {
    shared: Arc<Shared>,
    who: String,
    dedupe: Dedupe,
    /// The ready notices received, by fire.
    notices: HashSet<FireKey>,
    /// The highest position seen on the table.
    position: u64,
}

impl Tablet {
    /// A frame from the server: a ready notice, or a reset snapshot.
    fn frame(&mut self, text: &str, now: Instant) {
        let shared = self.shared.clone();
        shared.rec.frame();
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            shared.rec.incident("unreadable_frame", || {
                text.chars().take(200).collect::<String>()
            });
            return;
        };
        match frame.kind.as_str() {
            "event" => {
                if !shared.fresh_event(&frame, &mut self.position, &mut self.dedupe) {
                    return;
                }
                let Some(event) = frame.event else { return };
                if event.kind != "order_ready" {
                    return;
                }
                let (Some(order_id), Some(fire_no)) = (event.order_id, event.fire_no) else {
                    return;
                };
                self.ready((order_id, fire_no), event.lines.0, now);
            }
            // A resume the server could not serve: the table's open orders replace what the
            // tablet had. A fire whose expo ticket is bumped was sent: its ready notice is
            // taken from the snapshot when the tablet had not heard it.
            "snapshot" if frame.reset => {
                shared.counts.resets.fetch_add(1, Ordering::Relaxed);
                let Some(snapshot) = frame.snapshot else {
                    return;
                };
                self.position = snapshot.position;
                for order in &snapshot.orders {
                    for t in order
                        .tickets
                        .iter()
                        .filter(|t| t.kind == "expo" && t.status == "bumped")
                    {
                        let key = (order.id.clone(), t.fire_no);
                        if self.notices.contains(&key) {
                            continue;
                        }
                        let lines = order
                            .lines
                            .iter()
                            .filter(|l| l.fire_no == Some(t.fire_no) && l.status == "ready")
                            .map(|l| l.id)
                            .collect();
                        self.ready(key, lines, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// A fire's ready notice reached the table: the order's task serves those lines.
    fn ready(&mut self, key: FireKey, lines: Vec<u64>, now: Instant) {
        let shared = &self.shared;
        if !self.notices.insert(key.clone()) {
            shared
                .counts
                .ready_duplicated
                .fetch_add(1, Ordering::Relaxed);
            shared.violation(format!(
                "the ready notice of order {} fire {} reached {} twice, in different events",
                key.0, key.1, self.who
            ));
            return;
        }
        shared.counts.ready_received.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = shared.fires.lock().expect("lock").get_mut(&key) {
            f.ready_seen = true;
            if let Some(sent) = f.expo_bump_sent {
                shared
                    .rec
                    .bump_to_waiter(now.saturating_duration_since(sent));
            }
        }
        match shared.waiters.lock().expect("lock").remove(&key) {
            Some(waiter) => {
                let _ = waiter.send(lines);
            }
            None => {
                shared
                    .counts
                    .ready_unexpected
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
