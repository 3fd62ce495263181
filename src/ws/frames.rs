//! The websocket's frames: what a client may send, read into a typed enum, and what the server
//! sends, written as JSON text.
//!
//! Only this module knows the wire shape of a frame; the session works on `ClientFrame` and
//! hands back text ready for the socket.

use rail_actors::event::Published;
use rail_actors::ids::{BranchId, StationId, TableId, TicketId};
use rail_actors::subscriber::{Push, Topic};
use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::wire;

/// A frame a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticate (browsers cannot set headers on a websocket handshake), or renew the
    /// token of an authenticated socket.
    Auth {
        token: String,
    },
    /// Follow a station, a table, or (naming neither) the whole branch.
    Subscribe {
        #[serde(default)]
        id: Option<String>,
        /// The device's branch; when given it must be the token's.
        #[serde(default)]
        branch: Option<BranchId>,
        #[serde(default)]
        station: Option<StationId>,
        #[serde(default)]
        table: Option<TableId>,
        /// The last position this client saw: resume after it instead of a snapshot.
        #[serde(default)]
        after: Option<u64>,
    },
    Start(TicketFrame),
    Bump(TicketFrame),
    Recall(TicketFrame),
    /// A kitchen screen shows these tickets of its station (its delivery receipt). Nothing is
    /// answered; a ticket no screen acknowledges in time is escalated to expo and managers.
    Seen {
        #[serde(default)]
        branch: Option<BranchId>,
        station: StationId,
        tickets: Vec<TicketId>,
    },
    /// A heartbeat a screen sends (browsers cannot see websocket pings): answered at once with
    /// `pong` and the server's clock, so the screen knows it is live and how far its own clock
    /// is off. Allowed before `auth`.
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
}

impl ClientFrame {
    /// Reads a text frame; what is not a client frame gets its `malformed_frame` error.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            error_frame(
                frame_id(text).as_deref(),
                ErrorCode::MalformedFrame,
                &e.to_string(),
            )
        })
    }
}

/// A station command on a ticket, with the client's id for the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketFrame {
    pub id: String,
    #[serde(default)]
    pub branch: Option<BranchId>,
    pub station: StationId,
    pub ticket: TicketId,
}

/// A frame the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Authenticated {
        branch: &'a BranchId,
        role: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        station: Option<&'a StationId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<&'a TableId>,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    Snapshot {
        topic: wire::Topic<'a>,
        snapshot: wire::Snapshot<'a>,
        /// The resume asked for could not be served: replace what you had with this.
        reset: bool,
    },
    Subscribed {
        id: Option<&'a str>,
        topic: wire::Topic<'a>,
    },
    Ack {
        id: &'a str,
        ticket: wire::Ticket<'a>,
    },
    Error {
        id: Option<&'a str>,
        code: &'a str,
        message: &'a str,
    },
    /// A station's all-day, when it changes and when a screen joins: not an event (no
    /// position; never replayed).
    AllDay {
        #[serde(flatten)]
        all_day: wire::kitchen::AllDay<'a>,
    },
    /// What is left of every limited item of the branch, when it changes and when a screen
    /// joins: not an event (no position; never replayed).
    Stock {
        items: Vec<wire::live::StockLevel<'a>>,
    },
    /// The answer to a `ping`: the server's clock when it was sent.
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        at: chrono::DateTime<chrono::Utc>,
    },
}

impl ServerFrame<'_> {
    /// The frame as the JSON text a socket carries.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("frames serialize")
    }
}

/// The frame a push from the engine goes out as.
pub(super) fn push_frame(push: &Push) -> String {
    match push {
        Push::Snapshot {
            topic,
            snapshot,
            reset,
        } => ServerFrame::Snapshot {
            topic: topic.into(),
            snapshot: (&**snapshot).into(),
            reset: *reset,
        }
        .to_text(),
        Push::Event { topic, event, .. } => event_frame(topic, event),
        Push::AllDay { station, items } => ServerFrame::AllDay {
            all_day: wire::kitchen::AllDay::new(station, items),
        }
        .to_text(),
        Push::Stock { items } => ServerFrame::Stock {
            items: wire::live::stock(items),
        }
        .to_text(),
    }
}

/// `{"type": "event", "topic": ...}` with the envelope's own fields (stream, seq, branch,
/// position, at, event), which are serialized once for every screen the event goes to.
fn event_frame(topic: &Topic, event: &Published) -> String {
    let fields = &event.json;
    let topic = serde_json::to_string(&wire::Topic::from(topic)).expect("topics serialize");
    let mut frame = String::with_capacity(fields.len() + topic.len() + 32);
    frame.push_str(r#"{"type":"event","topic":"#);
    frame.push_str(&topic);
    frame.push(',');
    // The envelope is a JSON object with fields: its text after the opening brace.
    frame.push_str(&fields[1..]);
    frame
}

/// An `error` frame, answering the client's frame `id` when it had one.
pub(super) fn error_frame(id: Option<&str>, code: ErrorCode, message: &str) -> String {
    let code = code.as_str();
    ServerFrame::Error { id, code, message }.to_text()
}

/// The `id` of a frame, if it has one, for an error about a frame that was not carried out.
pub(super) fn frame_id(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}
