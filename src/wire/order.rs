//! Orders, their lines and tickets as REST answers and websocket frames carry them.
//!
//! Answers borrow from the domain's values (an order is answered for every command), so a
//! command serializes its order without copying it.

use chrono::{DateTime, NaiveDate, Utc};
use rail_actors::ids::{ItemId, LineId, OrderId, StationId, TableId, TicketId};
use rail_actors::order::{self, MAX_MODIFIERS, MAX_TEXT};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::menu::{station_kind, StationKind};
use super::schema;

/// A line as a waiter asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLine {
    #[schema(value_type = schema::ItemId)]
    pub item: ItemId,
    #[serde(default = "one")]
    #[schema(default = 1, minimum = 1, maximum = 99)]
    pub quantity: u16,
    #[serde(default)]
    #[schema(schema_with = modifiers_schema)]
    pub modifiers: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = note_schema)]
    pub note: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub seat: Option<u16>,
    #[serde(default = "first_course")]
    #[schema(default = 1, minimum = 1, maximum = 9)]
    pub course: u8,
}

fn modifiers_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    schema::texts(MAX_TEXT, MAX_MODIFIERS)
}

fn note_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    schema::optional_text(MAX_TEXT)
}

fn one() -> u16 {
    1
}

fn first_course() -> u8 {
    1
}

impl From<NewLine> for order::NewLine {
    fn from(l: NewLine) -> Self {
        Self {
            item: l.item,
            quantity: l.quantity,
            modifiers: l.modifiers,
            note: l.note,
            seat: l.seat,
            course: l.course,
        }
    }
}

/// Where an order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderSource {
    DineIn,
    Counter,
    Takeaway,
    Delivery,
    Qr,
}

impl From<order::OrderSource> for OrderSource {
    fn from(s: order::OrderSource) -> Self {
        match s {
            order::OrderSource::DineIn => Self::DineIn,
            order::OrderSource::Counter => Self::Counter,
            order::OrderSource::Takeaway => Self::Takeaway,
            order::OrderSource::Delivery => Self::Delivery,
            order::OrderSource::Qr => Self::Qr,
        }
    }
}

impl From<OrderSource> for order::OrderSource {
    fn from(s: OrderSource) -> Self {
        match s {
            OrderSource::DineIn => Self::DineIn,
            OrderSource::Counter => Self::Counter,
            OrderSource::Takeaway => Self::Takeaway,
            OrderSource::Delivery => Self::Delivery,
            OrderSource::Qr => Self::Qr,
        }
    }
}

/// Where a line is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    Held,
    Fired,
    Started,
    Ready,
    Served,
    Voided,
}

impl From<order::LineStatus> for LineStatus {
    fn from(s: order::LineStatus) -> Self {
        match s {
            order::LineStatus::Held => Self::Held,
            order::LineStatus::Fired => Self::Fired,
            order::LineStatus::Started => Self::Started,
            order::LineStatus::Ready => Self::Ready,
            order::LineStatus::Served => Self::Served,
            order::LineStatus::Voided => Self::Voided,
        }
    }
}

/// A line of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Line<'a> {
    #[schema(value_type = u32)]
    pub id: LineId,
    #[schema(value_type = schema::ItemId)]
    pub item: &'a ItemId,
    pub name: &'a str,
    pub quantity: u16,
    pub modifiers: &'a [String],
    pub note: Option<&'a str>,
    pub seat: Option<u16>,
    pub course: u8,
    pub status: LineStatus,
    pub fire_no: Option<u32>,
    /// It took its portions from the item's limited count.
    pub counted: bool,
}

impl<'a> From<&'a order::Line> for Line<'a> {
    fn from(l: &'a order::Line) -> Self {
        Self {
            id: l.id,
            item: &l.item,
            name: &l.name,
            quantity: l.quantity,
            modifiers: &l.modifiers,
            note: l.note.as_deref(),
            seat: l.seat,
            course: l.course,
            status: l.status.into(),
            fire_no: l.fire_no,
            counted: l.counted,
        }
    }
}

/// A line as printed on a ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketLine<'a> {
    #[schema(value_type = u32)]
    pub line_id: LineId,
    #[schema(value_type = schema::ItemId)]
    pub item: &'a ItemId,
    pub name: &'a str,
    pub quantity: u16,
    pub modifiers: &'a [String],
    pub note: Option<&'a str>,
    pub seat: Option<u16>,
    pub course: u8,
    pub voided: bool,
}

impl<'a> From<&'a order::TicketLine> for TicketLine<'a> {
    fn from(l: &'a order::TicketLine) -> Self {
        Self {
            line_id: l.line_id,
            item: &l.item,
            name: &l.name,
            quantity: l.quantity,
            modifiers: &l.modifiers,
            note: l.note.as_deref(),
            seat: l.seat,
            course: l.course,
            voided: l.voided,
        }
    }
}

/// Where a ticket is on its station's screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Started,
    Bumped,
    Voided,
}

/// What one station sees of one fire.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket<'a> {
    #[schema(value_type = schema::TicketId)]
    pub id: TicketId,
    #[schema(value_type = schema::OrderId)]
    pub order_id: OrderId,
    #[schema(value_type = schema::TableId)]
    pub table: &'a TableId,
    pub ticket_no: u32,
    #[schema(value_type = schema::StationId)]
    pub station: &'a StationId,
    pub kind: StationKind,
    pub fire_no: u32,
    pub course: Option<u8>,
    pub lines: Vec<TicketLine<'a>>,
    pub status: TicketStatus,
    pub fired_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub bumped_at: Option<DateTime<Utc>>,
    /// Expo only: every cooking ticket of the fire is bumped.
    pub parts_ready: bool,
    /// Where its order came from; null for tickets fired before sources were recorded.
    pub source: Option<OrderSource>,
    /// A rush: screens show it before the others.
    pub priority: bool,
    /// No screen of its station acknowledged it in time (expo and managers were told), and
    /// none has since.
    pub unseen: bool,
    /// The table its order was last moved from ("moved from T4"); null if never moved.
    #[schema(value_type = Option<schema::TableId>)]
    pub moved_from: Option<&'a TableId>,
    /// Fire by prep time: when its station should start it so that the fire's tickets finish
    /// together ("starts at 20:06"); null to start at once.
    pub starts_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a order::Ticket> for Ticket<'a> {
    fn from(t: &'a order::Ticket) -> Self {
        Self {
            id: t.id,
            order_id: t.order_id,
            table: &t.table,
            ticket_no: t.ticket_no,
            station: &t.station,
            kind: station_kind(t.kind),
            fire_no: t.fire_no,
            course: t.course,
            lines: t.lines.iter().map(TicketLine::from).collect(),
            status: match t.status {
                order::TicketStatus::New => TicketStatus::New,
                order::TicketStatus::Started => TicketStatus::Started,
                order::TicketStatus::Bumped => TicketStatus::Bumped,
                order::TicketStatus::Voided => TicketStatus::Voided,
            },
            fired_at: t.fired_at,
            started_at: t.started_at,
            bumped_at: t.bumped_at,
            parts_ready: t.parts_ready,
            source: t.source.map(Into::into),
            priority: t.priority,
            unseen: t.unseen,
            moved_from: t.moved_from.as_ref(),
            starts_at: t.starts_at,
        }
    }
}

/// The tickets of a list, as answered.
pub fn tickets(tickets: &[order::Ticket]) -> Vec<Ticket<'_>> {
    tickets.iter().map(Ticket::from).collect()
}

/// An order and everything its fires sent to the kitchen.
#[derive(Debug, Serialize, ToSchema)]
pub struct Order<'a> {
    #[schema(value_type = schema::OrderId)]
    pub id: OrderId,
    #[schema(value_type = schema::TableId)]
    pub table: &'a TableId,
    pub ticket_no: u32,
    pub day: NaiveDate,
    pub guests: Option<u16>,
    /// Where the order came from; null for orders opened before sources were recorded.
    pub source: Option<OrderSource>,
    /// Another system's id of the order (a delivery platform's), unique per branch a day.
    pub external_ref: Option<&'a str>,
    /// A rush: its tickets come first on every screen.
    pub priority: bool,
    /// Course pacing: the next course that fires by itself, and when ("course 2 at 20:14").
    pub next_course: Option<NextCourse>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub lines: Vec<Line<'a>>,
    pub tickets: Vec<Ticket<'a>>,
    pub fires: u32,
    /// Sequence number of the last event applied (its stream's length).
    pub seq: u64,
    /// Branch position of the last event applied.
    pub position: u64,
}

impl<'a> From<&'a order::Order> for Order<'a> {
    fn from(o: &'a order::Order) -> Self {
        Self {
            id: o.id,
            table: &o.table,
            ticket_no: o.ticket_no,
            day: o.day,
            guests: o.guests,
            source: o.source.map(Into::into),
            external_ref: o.external_ref.as_deref(),
            priority: o.priority,
            next_course: o.scheduled.map(|s| NextCourse {
                course: s.course,
                at: s.at,
            }),
            opened_at: o.opened_at,
            closed_at: o.closed_at,
            lines: o.lines.values().map(Line::from).collect(),
            tickets: tickets(&o.tickets),
            fires: o.fires,
            seq: o.seq,
            position: o.position,
        }
    }
}

/// A course that fires by itself at `at` (course pacing).
#[derive(Debug, Serialize, ToSchema)]
pub struct NextCourse {
    pub course: u8,
    pub at: DateTime<Utc>,
}

/// A ticket named in an event, with the station that shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketRef<'a> {
    #[schema(value_type = schema::TicketId)]
    pub ticket_id: TicketId,
    #[schema(value_type = schema::StationId)]
    pub station: &'a StationId,
}

/// What a change to an order asked, as the fingerprint of its idempotency key reads it (the
/// same text for the same request, whatever the domain's command types become).
#[derive(Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum CommandBody<'a> {
    AddLines {
        lines: Vec<NewLineBody<'a>>,
    },
    VoidLine {
        line: LineId,
        reason: &'a Option<String>,
    },
    Fire {
        course: Option<u8>,
        /// Left out when false, so a fire's key reads as it did before rushes.
        #[serde(skip_serializing_if = "is_false")]
        priority: bool,
    },
    SetPriority {
        priority: bool,
    },
    MoveTo {
        table: &'a TableId,
    },
    FireNext,
    MergeFrom {
        other: OrderId,
    },
    MergeInto {
        into: OrderId,
        seq: u64,
    },
    MarkUnseen {
        ticket: TicketId,
        waited_seconds: u32,
    },
    MarkSeen {
        ticket: TicketId,
    },
    StartTicket {
        ticket: TicketId,
    },
    BumpTicket {
        ticket: TicketId,
    },
    RecallTicket {
        ticket: TicketId,
    },
    Serve {
        lines: &'a Option<Vec<LineId>>,
    },
    Close,
}

/// A line asked for, in a command's fingerprint.
#[derive(Serialize)]
pub struct NewLineBody<'a> {
    item: &'a ItemId,
    quantity: u16,
    modifiers: &'a [String],
    note: &'a Option<String>,
    seat: Option<u16>,
    course: u8,
}

impl<'a> From<&'a order::OrderCommand> for CommandBody<'a> {
    fn from(c: &'a order::OrderCommand) -> Self {
        use order::OrderCommand as C;
        match c {
            C::AddLines { lines } => Self::AddLines {
                lines: lines
                    .iter()
                    .map(|l| NewLineBody {
                        item: &l.item,
                        quantity: l.quantity,
                        modifiers: &l.modifiers,
                        note: &l.note,
                        seat: l.seat,
                        course: l.course,
                    })
                    .collect(),
            },
            C::VoidLine { line, reason } => Self::VoidLine {
                line: *line,
                reason,
            },
            C::Fire { course, priority } => Self::Fire {
                course: *course,
                priority: *priority,
            },
            C::SetPriority { priority } => Self::SetPriority {
                priority: *priority,
            },
            C::MarkUnseen {
                ticket,
                waited_seconds,
            } => Self::MarkUnseen {
                ticket: *ticket,
                waited_seconds: *waited_seconds,
            },
            C::MarkSeen { ticket } => Self::MarkSeen { ticket: *ticket },
            C::MoveTo { table } => Self::MoveTo { table },
            C::FireNext => Self::FireNext,
            C::MergeFrom { other } => Self::MergeFrom { other: other.id },
            C::MergeInto { into, seq } => Self::MergeInto {
                into: *into,
                seq: *seq,
            },
            C::StartTicket { ticket } => Self::StartTicket { ticket: *ticket },
            C::BumpTicket { ticket } => Self::BumpTicket { ticket: *ticket },
            C::RecallTicket { ticket } => Self::RecallTicket { ticket: *ticket },
            C::Serve { lines } => Self::Serve { lines },
            C::Close => Self::Close,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
