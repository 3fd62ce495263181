//! What a branch is asked, and what it answers with: one message per intent, from managers,
//! devices, screens and the journal's commit feed.

use std::sync::Arc;

use actix::prelude::*;

use crate::error::CommandError;
use crate::ids::{BranchId, ItemId, OrderId, StationId, TableId, TicketId};
use crate::journal::{Committed, KeyRecord};
use crate::menu::BranchConfig;
use crate::order::{Order, OrderCommand, OrderSource, Ticket};
use crate::station::{SpeedOfService, TicketAction};
use crate::subscriber::{AllDayItem, Subscriber, Topic};

/// What a branch is, as managers and screens read it.
#[derive(Debug, Clone)]
pub struct BranchInfo {
    pub id: BranchId,
    pub config: BranchConfig,
    pub eighty_sixed: Vec<ItemId>,
    /// Every item with a limited count, and what is left of it.
    pub stock: Vec<(ItemId, u32)>,
    pub position: u64,
}

/// Sets an item's limited count (lines taking it reserve from it), or, with none, lifts it.
#[derive(Message)]
#[rtype(result = "Result<BranchInfo, CommandError>")]
pub struct SetItemCount {
    pub item: ItemId,
    pub count: Option<u32>,
}

/// Sets the branch's whole configuration.
#[derive(Message)]
#[rtype(result = "Result<BranchInfo, CommandError>")]
pub struct Configure(pub BranchConfig);

/// Marks an item out of stock (86) or back in stock.
#[derive(Message)]
#[rtype(result = "Result<BranchInfo, CommandError>")]
pub struct SetEightySix {
    pub item: ItemId,
    pub out: bool,
}

/// Reads the branch's configuration and 86 list.
#[derive(Message)]
#[rtype(result = "Result<BranchInfo, CommandError>")]
pub struct GetBranchInfo;

/// Opens an order at a table, with the next ticket number of the day, and carries out `then`
/// on it in the same append: a complete order (opened, lines added, fired) in one call.
#[derive(Message)]
#[rtype(result = "Result<Arc<Order>, CommandError>")]
pub struct OpenOrder {
    pub table: TableId,
    pub guests: Option<u16>,
    /// Where the order comes from; by default its table's kind.
    pub source: Option<OrderSource>,
    /// Another system's id of the order (a delivery platform's), unique per branch a local
    /// day: an open naming one the branch has seen today answers with that order.
    pub external_ref: Option<String>,
    pub priority: bool,
    /// What to do with the order once open: `AddLines`, then `Fire`.
    pub then: Vec<OrderCommand>,
    /// The client's idempotency key and a digest of its request.
    pub idempotency: Option<KeyRecord>,
    /// The request this command belongs to, followed into the actors' logs.
    pub span: tracing::Span,
}

/// Carries out a command on an open order.
#[derive(Message)]
#[rtype(result = "Result<Arc<Order>, CommandError>")]
pub struct ChangeOrder {
    pub order: OrderId,
    pub command: OrderCommand,
    /// The client's idempotency key and a digest of its request.
    pub idempotency: Option<KeyRecord>,
    /// The request this command belongs to, followed into the actors' logs.
    pub span: tracing::Span,
}

/// Merges one open order of the branch into another: `into` takes `from`'s lines and
/// tickets, `from` is closed.
#[derive(Message)]
#[rtype(result = "Result<Arc<Order>, CommandError>")]
pub struct MergeOrders {
    pub into: OrderId,
    pub from: OrderId,
    /// The client's idempotency key and a digest of its request.
    pub idempotency: Option<KeyRecord>,
    /// The request this command belongs to, followed into the actors' logs.
    pub span: tracing::Span,
}

/// Reads an order, open or closed.
#[derive(Message)]
#[rtype(result = "Result<Arc<Order>, CommandError>")]
pub struct GetOrder(pub OrderId);

/// Reads every open order of the branch.
#[derive(Message)]
#[rtype(result = "Result<Vec<Arc<Order>>, CommandError>")]
pub struct OpenOrders;

/// Starts, bumps or recalls a ticket on a station.
#[derive(Message)]
#[rtype(result = "Result<Ticket, CommandError>")]
pub struct StationCommand {
    pub station: StationId,
    pub ticket: TicketId,
    pub action: TicketAction,
    /// The client's idempotency key and a digest of its request.
    pub idempotency: Option<KeyRecord>,
    /// The request this command belongs to, followed into the actors' logs.
    pub span: tracing::Span,
}

/// A screen of a station shows these tickets (its acknowledgement, a `seen` frame).
#[derive(Message)]
#[rtype(result = "Result<(), CommandError>")]
pub struct StationSeen {
    pub station: StationId,
    pub tickets: Vec<TicketId>,
    /// Passed on from another replica (not passed on again).
    pub relayed: bool,
}

/// Tickets a screen of a station showed (its `seen`), as replicas pass them on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    pub branch: BranchId,
    pub station: StationId,
    pub tickets: Vec<TicketId>,
}

/// Reads a station's all-day: every item on its live tickets.
#[derive(Message)]
#[rtype(result = "Result<Vec<AllDayItem>, CommandError>")]
pub struct StationAllDay(pub StationId);

/// Reads a station's speed of service over the last `window`.
#[derive(Message)]
#[rtype(result = "Result<SpeedOfService, CommandError>")]
pub struct StationSpeed {
    pub station: StationId,
    pub window: std::time::Duration,
}

/// Reads a station's live tickets.
#[derive(Message)]
#[rtype(result = "Result<Vec<Ticket>, CommandError>")]
pub struct StationTickets(pub StationId);

/// Reads a station's tickets bumped within `within` that can still be recalled, the latest
/// first (a kitchen screen's recall list).
#[derive(Message)]
#[rtype(result = "Result<Vec<Ticket>, CommandError>")]
pub struct StationBumped {
    pub station: StationId,
    pub within: std::time::Duration,
}

/// Sends a subscriber the topic's snapshot, then every event after it.
#[derive(Message)]
#[rtype(result = "Result<(), CommandError>")]
pub struct Subscribe {
    pub topic: Topic,
    pub subscriber: Subscriber,
    /// Resume after this position (the last one the client saw) instead of a snapshot.
    pub after: Option<u64>,
}

/// Stops every subscription of a subscriber in this branch.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnsubscribeAll(pub u64);

/// Events the journal committed for this branch, in position order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BranchCommitted(pub Committed);
