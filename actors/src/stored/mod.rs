//! Storage formats: how events and snapshots are written in the journal, apart from the domain.
//!
//! The domain's types (`Order`, `OrderChange`, `BranchConfig`) change as the kitchen's rules
//! do; what the journal holds must stay readable for years. So the journal never holds a
//! domain type: an event body or a snapshot is one of the types of this module, written with a
//! format version, and converted to and from the domain at this boundary. Reading an older
//! format upcasts it first (`upcast`); a body of a newer format than this build knows is an
//! error, never a guess. Golden journals of every format (`tests/fixtures/`) prove that each
//! stays readable.
//!
//! Event formats:
//! - 1: the body is the domain event as serde wrote it; no `v` field.
//! - 2: `"v": 2`; a fire's tickets leave out what the event already says (order, table, fire,
//!   course) and what every new ticket starts as (new, not started, not bumped, parts not
//!   ready, no line voided).
//! - 3 (written now): `"v": 3`; adds, never changes. New fields: an order's `source`,
//!   `external_ref` and `priority` when it opens; a fire's `source` and `priority`, and each
//!   of its tickets' `starts_at`; a line's `counted`; a void's `restock`; a configuration's
//!   `time_zone`, `unseen_after_seconds`, `late_after_seconds` and `course_pace_seconds`, an
//!   item's `prep_seconds` and a station's `lanes`. New kinds: `priority_changed`,
//!   `ticket_unseen`, `ticket_seen`, `order_moved`, `orders_merged`, `merged_into`,
//!   `course_scheduled` and `item_count_set`. Each field is left out when absent or false,
//!   and reads so, so a format-2 body is read as it is.
//!
//! Snapshot formats: 1; 2 (written now) adds, defaulting when absent: an order's source,
//! reference, priority, paced course and the orders merged into it; a ticket's source,
//! priority, unseen mark, `moved_from` and `starts_at`; the limited items' counts and the
//! learned prep times. `version` in the body.

mod body;
mod snapshot;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::event::{Envelope, Event};
use crate::ids::BranchId;
use crate::journal::{Decoded, NewEvent, StoredEvent};
use crate::order::Order;

pub use snapshot::{decode_snapshot, encode_snapshot, BranchSnapshot, SNAPSHOT_FORMAT};

/// The event format this build writes.
pub const EVENT_FORMAT: u64 = 3;

/// The event to append, in the current format; it travels with the domain event so that the
/// actors receiving the commit need not decode it again.
pub fn encode(event: Event, at: DateTime<Utc>) -> NewEvent {
    let mut body = body::to_value(&event);
    if let Value::Object(fields) = &mut body {
        fields.insert("v".into(), Value::from(EVENT_FORMAT));
    }
    NewEvent {
        kind: event.kind().to_owned(),
        body,
        at,
        decoded: Decoded(Some(Arc::new(event))),
    }
}

/// The event a stored one holds: the one it was written from when the journal handed it on,
/// else its body upcast to the current format and decoded.
pub fn decode(stored: &StoredEvent) -> Result<Arc<Event>, String> {
    if let Some(event) = &stored.decoded.0 {
        return Ok(event.clone());
    }
    let failed = |e: String| format!("event {}#{}: {e}", stored.stream, stored.seq);
    let format = stored.body.get("v").map_or(Some(1), Value::as_u64);
    let body = match format {
        Some(EVENT_FORMAT) | Some(2) => body::from_value(&stored.kind, &stored.body),
        Some(1) => body::from_value(&stored.kind, &upcast_1_to_2(&stored.kind, &stored.body)),
        Some(v) if v > EVENT_FORMAT => Err(format!(
            "format {v} is newer than this build reads ({EVENT_FORMAT})"
        )),
        _ => Err(format!("no known format ({:?})", stored.body.get("v"))),
    };
    body.map(Arc::new).map_err(failed)
}

/// Format 1 to 2: a fire's tickets lose what format 2 leaves out (it is the event's, or every
/// new ticket's); the rest of format 1 reads as format 2.
fn upcast_1_to_2(kind: &str, body: &Value) -> Value {
    let mut body = body.clone();
    if kind == "course_fired" {
        if let Some(tickets) = body.get_mut("tickets").and_then(Value::as_array_mut) {
            for ticket in tickets.iter_mut().filter_map(Value::as_object_mut) {
                for field in [
                    "order_id",
                    "table",
                    "fire_no",
                    "course",
                    "status",
                    "started_at",
                    "bumped_at",
                    "parts_ready",
                ] {
                    ticket.remove(field);
                }
                let lines = ticket.get_mut("lines").and_then(Value::as_array_mut);
                for line in lines.into_iter().flatten().filter_map(Value::as_object_mut) {
                    line.remove("voided");
                }
            }
        }
    }
    body
}

/// A stored event with its place in the journal, decoded; fails only on a journal this build
/// cannot read.
pub fn envelope(stored: &StoredEvent) -> Result<Envelope, String> {
    let event = decode(stored)?;
    let branch = BranchId::parse(stored.branch.clone()).map_err(|e| e.to_string())?;
    Ok(Envelope {
        stream: stored.stream.clone(),
        seq: stored.seq,
        branch,
        position: stored.position,
        at: stored.at,
        event,
    })
}

/// An order rebuilt from events of its stream, in order, on top of what the earlier ones made
/// of it (none: the first opens it). Events this build cannot read are skipped, logged.
pub fn replay_order(mut order: Option<Order>, events: &[StoredEvent]) -> Option<Order> {
    for s in events {
        let event = match decode(s) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "unreadable order event skipped");
                continue;
            }
        };
        let Event::Order(e) = &*event else { continue };
        order
            .get_or_insert_with(|| Order::opened(e.order_id, e.table.clone(), &e.change, s.at))
            .replay(&e.change, s.seq, s.position, s.at);
    }
    order
}
