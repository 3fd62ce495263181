//! A device's socket over the run: how a screen or tablet connects, why its socket ended (the
//! run stopped, the device was told to redial, or the socket closed: by a kill, or a failure),
//! reconnecting with backoff and resuming after the last position seen (to its own replica, or
//! while that one is down to the next one up), and dropping the events a resume sends twice.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::{Backoff, Shared};
use crate::proto::{self, Frame, Socket, Topic};

/// How a screen or tablet (re)connects: its branch, topic, token and source address, and its
/// own replica.
pub(super) struct Link {
    pub(super) branch: String,
    pub(super) topic: Topic,
    pub(super) token: String,
    pub(super) source: Option<IpAddr>,
    /// The replica it connects to while that one is up (0 for a single server).
    pub(super) home: usize,
}

/// Why a device stopped reading its socket.
pub(super) enum Ended {
    /// The run is over: the device hangs up for good.
    Stopped,
    /// Told to redial (`loadtest soak`): it closes its socket and dials again.
    Redial,
    /// The socket closed or failed, for this reason.
    Lost(String),
}

/// Drops events a socket was sent twice: per stream, events come in order, so a sequence
/// number not above the last one seen is a repeat.
#[derive(Default)]
pub(super) struct Dedupe {
    last: HashMap<String, u64>,
}

impl Dedupe {
    /// True when the event is new.
    fn fresh(&mut self, stream: Option<&String>, seq: Option<u64>) -> bool {
        let (Some(stream), Some(seq)) = (stream, seq) else {
            return true;
        };
        match self.last.get_mut(stream) {
            Some(last) if seq <= *last => false,
            Some(last) => {
                *last = seq;
                true
            }
            None => {
                self.last.insert(stream.clone(), seq);
                true
            }
        }
    }
}

impl Shared {
    /// The kills of `replica` so far: what a socket opened on it now notes.
    pub(super) fn kills_of(&self, replica: usize) -> u64 {
        self.replicas[replica].kills.load(Ordering::Relaxed)
    }

    /// A screen's or tablet's socket on `replica` closed (`connected_at`: the replica's kills
    /// counted when it was opened): expected when that replica was killed since, a failure
    /// otherwise.
    pub(super) fn socket_lost(
        &self,
        replica: usize,
        connected_at: u64,
        who: &str,
        why: impl FnOnce() -> String,
    ) {
        if self.kills_of(replica) != connected_at {
            self.counts
                .sockets_closed_by_kill
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.sockets_closed.fetch_add(1, Ordering::Relaxed);
            self.rec
                .incident("socket_closed", || format!("{who}: {}", why()));
        }
    }

    /// A device's socket ended: whether the device dials again. At the run's end it closes
    /// its socket and stops; told to redial it closes its socket (counted) and dials again; a
    /// socket lost is counted by [`Shared::socket_lost`] (unless the run stopped meanwhile)
    /// and dialed again.
    pub(super) async fn after_socket(
        &self,
        ended: Ended,
        sink: &mut SplitSink<Socket, Message>,
        stop: &watch::Receiver<bool>,
        on: (usize, u64),
        who: &str,
    ) -> bool {
        match ended {
            Ended::Stopped => {
                let _ = sink.send(Message::Close(None)).await;
                false
            }
            Ended::Redial => {
                let _ = sink.send(Message::Close(None)).await;
                self.counts.redials.fetch_add(1, Ordering::Relaxed);
                !*stop.borrow()
            }
            Ended::Lost(why) => {
                if *stop.borrow() {
                    return false;
                }
                self.socket_lost(on.0, on.1, who, || why);
                true
            }
        }
    }

    /// Opens a screen's or tablet's socket again, with backoff, and resumes its topic after
    /// `after`: on its own replica, or the next one up while that one is down. The socket, the
    /// replica it is on and that replica's kills before it connected; None when the run stops
    /// first or `--retry-deadline` passes.
    pub(super) async fn reconnect(
        &self,
        link: &Link,
        after: u64,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<(Socket, usize, u64)> {
        let deadline = Instant::now() + Duration::from_secs(self.args.retry_deadline);
        let mut backoff = Backoff::new();
        loop {
            if *stop.borrow() {
                return None;
            }
            let replica = self.live_replica(link.home);
            let to = &self.replicas[replica];
            let kills = self.kills_of(replica);
            let attempt = async {
                let mut ws = proto::connect(&to.ws_url, to.addr, link.source, &link.token).await?;
                let frame = link
                    .topic
                    .subscribe_frame(&link.branch, "resume", Some(after));
                ws.send(Message::text(frame.to_string())).await?;
                anyhow::Ok(ws)
            };
            if let Ok(Ok(ws)) = tokio::time::timeout(Duration::from_secs(5), attempt).await {
                self.counts.reconnects.fetch_add(1, Ordering::Relaxed);
                return Some((ws, replica, kills));
            }
            if Instant::now() > deadline {
                self.counts
                    .reconnects_failed
                    .fetch_add(1, Ordering::Relaxed);
                self.rec.incident("reconnect_failed", || {
                    format!(
                        "{} {:?}: no socket within --retry-deadline",
                        link.branch, link.topic
                    )
                });
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.wait()) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Whether an event frame is new to a socket: moves the socket's position on, and drops
    /// (and counts) an event it was sent twice.
    pub(super) fn fresh_event(
        &self,
        frame: &Frame,
        position: &mut u64,
        dedupe: &mut Dedupe,
    ) -> bool {
        if let Some(p) = frame.position {
            *position = (*position).max(p);
        }
        if dedupe.fresh(frame.stream.as_ref(), frame.seq) {
            return true;
        }
        self.counts
            .events_redelivered
            .fetch_add(1, Ordering::Relaxed);
        false
    }
}
