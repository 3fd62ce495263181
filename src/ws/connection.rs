//! The server's side of one socket: the frames the session has to send, in order, and the
//! socket they go out on.
//!
//! The session never waits on the socket alone: it waits on the socket taking the next frame
//! alongside everything else (the client, the engine, its timers), so a socket that stops
//! draining holds nothing up and the session can still close it. What waits here stays small:
//! at most one push (the next is taken from the send queue only once this is empty), one ping,
//! one pong, and the answers to the client's frames.

use std::collections::VecDeque;
use std::time::Duration;

use crate::metrics;
use actix_ws::{CloseCode, CloseReason, Closed, Message};

/// How long a close frame may wait behind a stalled socket before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// One socket and the frames waiting to go out on it.
pub(super) struct Connection {
    socket: actix_ws::Session,
    /// Text, ping and pong frames only.
    outbox: VecDeque<Message>,
}

impl Connection {
    pub(super) fn new(socket: actix_ws::Session) -> Self {
        Self {
            socket,
            outbox: VecDeque::new(),
        }
    }

    /// Whether frames are waiting for the socket.
    pub(super) fn has_waiting(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Queues a text frame.
    pub(super) fn text(&mut self, text: String) {
        self.outbox.push_back(Message::Text(text.into()));
    }

    /// Queues a ping, unless one is still waiting.
    pub(super) fn ping(&mut self) {
        if !self.outbox.iter().any(|m| matches!(m, Message::Ping(_))) {
            self.outbox.push_back(Message::Ping(Default::default()));
        }
    }

    /// Queues the pong answering a client's ping. A pong still waiting takes this ping's
    /// payload instead of a second pong going out: only the latest ping needs its pong
    /// (RFC 6455, 5.5.3).
    pub(super) fn pong(&mut self, ping: actix_web::web::Bytes) {
        match self
            .outbox
            .iter_mut()
            .find(|m| matches!(m, Message::Pong(_)))
        {
            Some(waiting) => *waiting = Message::Pong(ping),
            None => self.outbox.push_back(Message::Pong(ping)),
        }
    }

    /// Hands the first waiting frame to the socket once it has room. Dropped before that, it
    /// leaves the frame first in line: the socket takes a frame in the same poll that its room
    /// is granted, and only then does the frame leave the outbox.
    pub(super) async fn send_next(&mut self) -> Result<(), Closed> {
        let Some(frame) = self.outbox.front() else {
            return Ok(());
        };
        match frame {
            Message::Text(text) => self.socket.text(text.clone()).await?,
            Message::Ping(bytes) => self.socket.ping(bytes).await?,
            Message::Pong(bytes) => self.socket.pong(bytes).await?,
            _ => {}
        }
        if let Some(Message::Text(_)) = self.outbox.pop_front() {
            metrics::ws_frame_sent();
        }
        Ok(())
    }

    /// Sends what is waiting, then a close frame with `code` and `why`, for CLOSE_WAIT at most.
    pub(super) async fn close(mut self, code: CloseCode, why: &'static str) {
        let reason = CloseReason {
            code,
            description: Some(why.into()),
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while self.has_waiting() {
                if self.send_next().await.is_err() {
                    return;
                }
            }
            let _ = self.socket.close(Some(reason)).await;
        })
        .await;
    }
}
