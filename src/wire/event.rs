//! Events as screens, tablets and the journal's readers are sent them: the `event` frame's
//! envelope and `GET .../events`.

use chrono::{DateTime, NaiveDate, Utc};
use rail_actors::event::{self as domain, Envelope};
use rail_actors::ids::{BranchId, ItemId, LineId, OrderId, StationId, TableId, TicketId};
use rail_actors::order::OrderChange as Change;
use serde::Serialize;
use utoipa::ToSchema;

use super::menu::BranchConfig;
use super::order::{tickets, Line, OrderSource, Ticket, TicketRef};
use super::schema;

/// A change to a branch's configuration.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BranchEvent<'a> {
    BranchConfigured {
        config: BranchConfig,
    },
    /// The item is out of stock: every POS, tablet and QR menu refuses it.
    ItemEightySixed {
        #[schema(value_type = schema::ItemId)]
        item: &'a ItemId,
    },
    ItemRestored {
        #[schema(value_type = schema::ItemId)]
        item: &'a ItemId,
    },
    /// The item's limited count was set (lines taking it reserve from it; at 0 it is sold
    /// out), or, null, lifted.
    ItemCountSet {
        #[schema(value_type = schema::ItemId)]
        item: &'a ItemId,
        count: Option<u32>,
    },
    /// A manager issued a token to a device (`GET .../devices` lists it).
    DeviceIssued {
        device: super::device::Device<'a>,
    },
    /// The device was revoked: its tokens are refused and its sockets closed.
    DeviceRevoked {
        device: &'a str,
        at: DateTime<Utc>,
    },
    /// A pairing code was offered for a device to be (the code itself is never journaled).
    PairingOffered {
        device: super::device::Device<'a>,
        expires_at: DateTime<Utc>,
    },
    /// A pairing code was exchanged for its device's token.
    PairingRedeemed {},
}

/// Portions a void gave back to an item's limited count.
#[derive(Debug, Serialize, ToSchema)]
pub struct Restock<'a> {
    #[schema(value_type = schema::ItemId)]
    pub item: &'a ItemId,
    pub quantity: u16,
}

/// What a command did to an order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderChange<'a> {
    OrderOpened {
        ticket_no: u32,
        day: NaiveDate,
        guests: Option<u16>,
        /// Null for orders opened before sources were recorded.
        source: Option<OrderSource>,
        external_ref: Option<&'a str>,
        priority: bool,
    },
    LinesAdded {
        lines: Vec<Line<'a>>,
    },
    LineVoided {
        #[schema(value_type = u32)]
        line_id: LineId,
        reason: Option<&'a str>,
        tickets: Vec<TicketRef<'a>>,
        /// The line had taken from its item's limited count: given back.
        restock: Option<Restock<'a>>,
    },
    CourseFired {
        fire_no: u32,
        course: Option<u8>,
        /// The fire is a rush (or its order is).
        priority: bool,
        tickets: Vec<Ticket<'a>>,
    },
    TicketStarted {
        #[schema(value_type = schema::TicketId)]
        ticket_id: TicketId,
        #[schema(value_type = schema::StationId)]
        station: &'a StationId,
    },
    TicketBumped {
        #[schema(value_type = schema::TicketId)]
        ticket_id: TicketId,
        #[schema(value_type = schema::StationId)]
        station: &'a StationId,
    },
    TicketRecalled {
        #[schema(value_type = schema::TicketId)]
        ticket_id: TicketId,
        #[schema(value_type = schema::StationId)]
        station: &'a StationId,
    },
    /// Every line of the ticket was voided.
    TicketVoided {
        #[schema(value_type = schema::TicketId)]
        ticket_id: TicketId,
        #[schema(value_type = schema::StationId)]
        station: &'a StationId,
    },
    /// Every cooking part of a fire is bumped: expo can send it.
    ExpoReady {
        #[schema(value_type = schema::TicketId)]
        ticket_id: TicketId,
        #[schema(value_type = schema::StationId)]
        station: &'a StationId,
        fire_no: u32,
    },
    /// A part was recalled: expo waits again.
    ExpoWaiting {
        #[schema(value_type = schema::TicketId)]
        ticket_id: TicketId,
        #[schema(value_type = schema::StationId)]
        station: &'a StationId,
        fire_no: u32,
    },
    /// Expo bumped the fire: the waiter runs the food.
    OrderReady {
        fire_no: u32,
        #[schema(value_type = Vec<u32>)]
        lines: &'a [LineId],
    },
    LinesServed {
        #[schema(value_type = Vec<u32>)]
        lines: &'a [LineId],
    },
    /// Another open order (`from`, at `from_table`) was merged into this one: its lines, with
    /// new numbers, and its tickets, their fires numbered on from this order's and their own
    /// ticket numbers kept, are this order's now. The tablets of both tables are sent this.
    OrdersMerged {
        #[schema(value_type = schema::OrderId)]
        from: OrderId,
        #[schema(value_type = schema::TableId)]
        from_table: &'a TableId,
        lines: Vec<Line<'a>>,
        tickets: Vec<Ticket<'a>>,
        fires: u32,
    },
    /// This order was merged into `into`: it is closed.
    MergedInto {
        #[schema(value_type = schema::OrderId)]
        into: OrderId,
    },
    /// Course pacing: the order's next held course fires by itself at `at` ("course 2 at
    /// 20:14"); sent to expo and the stations that course goes to.
    CourseScheduled {
        course: u8,
        at: DateTime<Utc>,
        #[schema(value_type = Vec<schema::StationId>)]
        stations: &'a [StationId],
    },
    /// The order moved to another table: its tickets (all of them, their numbers unchanged)
    /// now say `to`, and `moved_from`; the tablets of both tables are sent this.
    OrderMoved {
        #[schema(value_type = schema::TableId)]
        from: &'a TableId,
        #[schema(value_type = schema::TableId)]
        to: &'a TableId,
        tickets: Vec<TicketRef<'a>>,
    },
    /// No screen of the ticket's station acknowledged it within the branch's limit: shown at
    /// expo (and to managers) until a screen does.
    TicketUnseen {
        #[schema(value_type = schema::TicketId)]
        ticket_id: TicketId,
        #[schema(value_type = schema::StationId)]
        station: &'a StationId,
        #[schema(value_type = schema::StationId)]
        expo: &'a StationId,
        waited_seconds: u32,
    },
    /// A screen of its station acknowledged a ticket that was unseen.
    TicketSeen {
        #[schema(value_type = schema::TicketId)]
        ticket_id: TicketId,
        #[schema(value_type = schema::StationId)]
        station: &'a StationId,
        #[schema(value_type = schema::StationId)]
        expo: &'a StationId,
    },
    /// The order was marked a rush, or no longer; the tickets named follow.
    PriorityChanged {
        priority: bool,
        tickets: Vec<TicketRef<'a>>,
    },
    OrderClosed {},
}

/// A change to one order, with the table it is at.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderEvent<'a> {
    #[schema(value_type = schema::OrderId)]
    pub order_id: OrderId,
    #[schema(value_type = schema::TableId)]
    pub table: &'a TableId,
    #[serde(flatten)]
    pub change: OrderChange<'a>,
}

/// Any event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Event<'a> {
    Branch(BranchEvent<'a>),
    Order(OrderEvent<'a>),
}

impl<'a> From<&'a domain::Event> for Event<'a> {
    fn from(e: &'a domain::Event) -> Self {
        match e {
            domain::Event::Branch(b) => Self::Branch(match b {
                domain::BranchEvent::BranchConfigured { config } => BranchEvent::BranchConfigured {
                    config: config.into(),
                },
                domain::BranchEvent::ItemEightySixed { item } => {
                    BranchEvent::ItemEightySixed { item }
                }
                domain::BranchEvent::ItemRestored { item } => BranchEvent::ItemRestored { item },
                domain::BranchEvent::ItemCountSet { item, count } => BranchEvent::ItemCountSet {
                    item,
                    count: *count,
                },
                domain::BranchEvent::DeviceIssued { device } => BranchEvent::DeviceIssued {
                    device: super::device::Device::new(device, None),
                },
                domain::BranchEvent::DeviceRevoked { device, at } => {
                    BranchEvent::DeviceRevoked { device, at: *at }
                }
                domain::BranchEvent::PairingOffered { offer } => BranchEvent::PairingOffered {
                    device: super::device::Device::new(&offer.device, None),
                    expires_at: offer.expires_at,
                },
                domain::BranchEvent::PairingRedeemed { .. } => BranchEvent::PairingRedeemed {},
            }),
            domain::Event::Order(o) => Self::Order(OrderEvent {
                order_id: o.order_id,
                table: &o.table,
                change: change(&o.change),
            }),
        }
    }
}

fn change(c: &Change) -> OrderChange<'_> {
    match c {
        Change::OrderOpened {
            ticket_no,
            day,
            guests,
            source,
            external_ref,
            priority,
        } => OrderChange::OrderOpened {
            ticket_no: *ticket_no,
            day: *day,
            guests: *guests,
            source: source.map(Into::into),
            external_ref: external_ref.as_deref(),
            priority: *priority,
        },
        Change::LinesAdded { lines } => OrderChange::LinesAdded {
            lines: lines.iter().map(Line::from).collect(),
        },
        Change::LineVoided {
            line_id,
            reason,
            tickets,
            restock,
        } => OrderChange::LineVoided {
            restock: restock.as_ref().map(|r| Restock {
                item: &r.item,
                quantity: r.quantity,
            }),
            line_id: *line_id,
            reason: reason.as_deref(),
            tickets: tickets
                .iter()
                .map(|t| TicketRef {
                    ticket_id: t.ticket_id,
                    station: &t.station,
                })
                .collect(),
        },
        Change::CourseFired {
            fire_no,
            course,
            priority,
            tickets: fired,
        } => OrderChange::CourseFired {
            fire_no: *fire_no,
            course: *course,
            priority: *priority,
            tickets: tickets(fired),
        },
        Change::TicketStarted { ticket_id, station } => OrderChange::TicketStarted {
            ticket_id: *ticket_id,
            station,
        },
        Change::TicketBumped { ticket_id, station } => OrderChange::TicketBumped {
            ticket_id: *ticket_id,
            station,
        },
        Change::TicketRecalled { ticket_id, station } => OrderChange::TicketRecalled {
            ticket_id: *ticket_id,
            station,
        },
        Change::TicketVoided { ticket_id, station } => OrderChange::TicketVoided {
            ticket_id: *ticket_id,
            station,
        },
        Change::ExpoReady {
            ticket_id,
            station,
            fire_no,
        } => OrderChange::ExpoReady {
            ticket_id: *ticket_id,
            station,
            fire_no: *fire_no,
        },
        Change::ExpoWaiting {
            ticket_id,
            station,
            fire_no,
        } => OrderChange::ExpoWaiting {
            ticket_id: *ticket_id,
            station,
            fire_no: *fire_no,
        },
        Change::OrderReady { fire_no, lines } => OrderChange::OrderReady {
            fire_no: *fire_no,
            lines,
        },
        Change::LinesServed { lines } => OrderChange::LinesServed { lines },
        Change::OrdersMerged {
            from,
            from_table,
            lines,
            tickets: merged,
            fires,
        } => OrderChange::OrdersMerged {
            from: *from,
            from_table,
            lines: lines.iter().map(Line::from).collect(),
            tickets: tickets(merged),
            fires: *fires,
        },
        Change::MergedInto { into } => OrderChange::MergedInto { into: *into },
        Change::CourseScheduled {
            course,
            at,
            stations,
        } => OrderChange::CourseScheduled {
            course: *course,
            at: *at,
            stations,
        },
        Change::OrderMoved {
            from,
            to,
            tickets: moved,
        } => OrderChange::OrderMoved {
            from,
            to,
            tickets: moved
                .iter()
                .map(|t| TicketRef {
                    ticket_id: t.ticket_id,
                    station: &t.station,
                })
                .collect(),
        },
        Change::TicketUnseen {
            ticket_id,
            station,
            expo,
            waited_seconds,
        } => OrderChange::TicketUnseen {
            ticket_id: *ticket_id,
            station,
            expo,
            waited_seconds: *waited_seconds,
        },
        Change::TicketSeen {
            ticket_id,
            station,
            expo,
        } => OrderChange::TicketSeen {
            ticket_id: *ticket_id,
            station,
            expo,
        },
        Change::PriorityChanged {
            priority,
            tickets: named,
        } => OrderChange::PriorityChanged {
            priority: *priority,
            tickets: named
                .iter()
                .map(|t| TicketRef {
                    ticket_id: t.ticket_id,
                    station: &t.station,
                })
                .collect(),
        },
        Change::OrderClosed {} => OrderChange::OrderClosed {},
    }
}

/// A committed event with its place in the journal: the fields of an `event` frame.
#[derive(Debug, Serialize)]
pub struct EventEnvelope<'a> {
    pub stream: &'a str,
    pub seq: u64,
    pub branch: &'a BranchId,
    pub position: u64,
    pub at: DateTime<Utc>,
    pub event: Event<'a>,
}

impl<'a> From<&'a Envelope> for EventEnvelope<'a> {
    fn from(e: &'a Envelope) -> Self {
        Self {
            stream: &e.stream,
            seq: e.seq,
            branch: &e.branch,
            position: e.position,
            at: e.at,
            event: (&*e.event).into(),
        }
    }
}

/// The envelope of an event as a JSON object, made once for every screen it goes to.
pub fn encode_envelope(envelope: &Envelope) -> Box<str> {
    serde_json::to_string(&EventEnvelope::from(envelope))
        .expect("envelopes serialize")
        .into()
}

/// An event of the branch's journal, as `GET .../events` answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalEvent<'a> {
    /// `branch/<branch id>` or `order/<order id>`.
    pub stream: &'a str,
    /// The event's place in its stream, from 1.
    pub seq: u64,
    pub branch: &'a str,
    /// The event's place among all of the branch's events, from 1.
    pub position: u64,
    /// The event's type name, the same as the body's `type`.
    pub kind: &'a str,
    /// The event, as this version reads it whatever format it was stored in.
    pub body: Event<'a>,
    pub at: DateTime<Utc>,
}
