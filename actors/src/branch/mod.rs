//! BranchActor: one branch's configuration, its actors, and the ordered feed of what it commits.
//!
//! The branch actor is the single writer of the branch's configuration stream (menu, routing,
//! stations, 86 list), starts a table actor per table and a station actor per station, and
//! hands out ticket numbers. Committed events reach it in position order; it keeps a view of
//! the open orders from them, passes each to the stations concerned and to the table and
//! branch subscribers, so a snapshot and the events after it always line up.
//!
//! Where each part lives:
//! - this module: the actor, its state, and its start;
//! - `messages`: what the branch is asked, and what it answers with;
//! - `config`: the menu, routing, stations and 86 list, journaled before they apply;
//! - `orders`: opening, changing and reading orders through the table actors;
//! - `stations`: the station actors, and the commands and reads routed to them;
//! - `feed`: the committed events, the open-order view kept from them, and the screens;
//! - `recovery`: a branch rebuilt from its snapshot and the journal;
//! - `snapshots`: when the running branch saves its snapshot;
//! - `stock`: limited quantities, what is left and what commands in hand reserved.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::NaiveDate;

use crate::error::CommandError;
use crate::event::{EventFrames, Published};
use crate::ids::{BranchId, OrderId, StationId, TableId, TicketId};
use crate::journal::Journal;
use crate::menu::Branch;
use crate::order::Order;
use crate::station::StationActor;
use crate::subscriber::Audience;
use crate::table::TableActor;

mod config;
mod devices;
mod feed;
mod messages;
mod orders;
mod ownership;
mod recovery;
mod snapshots;
mod stations;
mod stock;

pub use devices::{IssueDevice, ListDevices, OfferPairing, RedeemPairing, RevokeDevice};
pub use messages::{
    Acknowledged, BranchCommitted, BranchInfo, ChangeOrder, Configure, GetBranchInfo, GetOrder,
    MergeOrders, OpenOrder, OpenOrders, SetEightySix, SetItemCount, StationAllDay, StationBumped,
    StationCommand, StationSeen, StationSpeed, StationTickets, Subscribe, UnsubscribeAll,
};
pub use ownership::{CatchUp, Demote, Promote};
pub use recovery::{recover, RecoveredBranch};
pub use snapshots::{save_snapshot, SNAPSHOT_EVERY};
pub use stock::Stock;

/// Events a branch keeps for table and branch screens that reconnect.
const BRANCH_HISTORY: usize = 512;

/// One branch's live state.
pub struct BranchActor {
    id: BranchId,
    journal: Arc<dyn Journal>,
    branch: Option<Arc<Branch>>,
    config_seq: u64,
    tables: HashMap<TableId, Addr<TableActor>>,
    stations: HashMap<StationId, Addr<StationActor>>,
    /// Which table holds each open order; updated as soon as an open is acknowledged.
    order_tables: HashMap<OrderId, TableId>,
    /// Which order and station each ticket of an open order belongs to, for station commands.
    ticket_orders: HashMap<TicketId, (OrderId, StationId)>,
    /// Open orders as the committed feed has them, for table and branch snapshots.
    view: HashMap<OrderId, Order>,
    position: u64,
    last_ticket: Option<(NaiveDate, u32)>,
    /// Table and branch screens, and the branch's latest events for those that reconnect.
    audience: Audience,
    /// The position of the latest snapshot saved (or being saved).
    snapshot_position: u64,
    /// Events committed between two snapshots.
    snapshot_every: u64,
    /// The latest events recovery read, until the stations have taken theirs.
    recent: Vec<Arc<Published>>,
    /// How events are written for screens.
    frames: EventFrames,
    /// Whether this replica writes the branch (holds its lease); otherwise it follows the
    /// owner's commits and refuses commands.
    owner: bool,
    /// With replicas, the epoch of the lease this replica writes the branch under: every
    /// append carries it, and the journal refuses it once the epoch has moved on.
    epoch: Option<u64>,
    /// This actor's address, for the station actors' watch to report to.
    addr: Option<Addr<BranchActor>>,
    /// With replicas: where this replica's screens' acknowledgements go, for the replica
    /// that writes the branch (and watches its tickets).
    acks: Option<tokio::sync::mpsc::UnboundedSender<messages::Acknowledged>>,
    /// The limited items: what is left, and what the commands in hand reserved.
    stock: Stock,
    /// Orders whose paced course is being fired.
    pacing: std::collections::HashSet<OrderId>,
    /// Paced courses refused when due (they wait for the waiter).
    pacing_refused: std::collections::HashSet<(OrderId, chrono::DateTime<chrono::Utc>)>,
    /// Fire by prep time: what the branch learned of its kitchen's times.
    prep: crate::prep::PrepModel,
    /// Orders merged into another whose close the journal does not have yet (a merge cut
    /// short): hidden, and closed by the replica that writes the branch.
    unfinished_merges: Vec<(Order, OrderId)>,
}

impl BranchActor {
    /// The actor of a branch as recovery left it; `frames` writes its events for screens;
    /// `owner` when this replica writes the branch from the start.
    pub fn new(
        id: BranchId,
        journal: Arc<dyn Journal>,
        recovered: RecoveredBranch,
        snapshot_every: u64,
        frames: EventFrames,
        owner: bool,
    ) -> Self {
        // An order another open order took in, but whose own close did not make it to the
        // journal: the other has everything; it is closed once this replica writes.
        let merged: HashMap<OrderId, OrderId> = recovered
            .orders
            .iter()
            .flat_map(|o| o.merged_from.iter().map(move |from| (*from, o.id)))
            .collect();
        let (unfinished, orders): (Vec<Order>, Vec<Order>) = recovered
            .orders
            .into_iter()
            .partition(|o| merged.contains_key(&o.id));
        let unfinished_merges = unfinished
            .into_iter()
            .map(|o| {
                let into = merged[&o.id];
                (o, into)
            })
            .collect();
        let order_tables = orders.iter().map(|o| (o.id, o.table.clone())).collect();
        let ticket_orders = orders
            .iter()
            .flat_map(|o| o.tickets.iter())
            .map(|t| (t.id, (t.order_id, t.station.clone())))
            .collect();
        let view = orders.into_iter().map(|o| (o.id, o)).collect();
        let stock = Stock::from_levels(recovered.stock);
        Self {
            id,
            journal,
            branch: recovered.branch.map(Arc::new),
            config_seq: recovered.config_seq,
            tables: HashMap::new(),
            stations: HashMap::new(),
            order_tables,
            ticket_orders,
            view,
            position: recovered.position,
            last_ticket: recovered.last_ticket,
            audience: {
                let mut audience = Audience::new(BRANCH_HISTORY, recovered.position);
                audience.backfill(&recovered.recent, |_| true);
                audience
            },
            snapshot_position: recovered.snapshot_position,
            snapshot_every: snapshot_every.max(1),
            recent: recovered.recent,
            frames,
            owner,
            epoch: None,
            addr: None,
            acks: None,
            stock,
            pacing: std::collections::HashSet::new(),
            pacing_refused: std::collections::HashSet::new(),
            prep: recovered.prep,
            unfinished_merges,
        }
    }

    /// Passes what its screens acknowledge to `acks` while another replica writes the branch.
    pub fn acknowledging_to(
        mut self,
        acks: Option<tokio::sync::mpsc::UnboundedSender<messages::Acknowledged>>,
    ) -> Self {
        self.acks = acks;
        self
    }

    fn configured(&self) -> Result<Arc<Branch>, CommandError> {
        self.branch
            .clone()
            .ok_or_else(|| CommandError::UnknownBranch(self.id.to_string()))
    }
}

impl Actor for BranchActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.addr = Some(ctx.address());
        crate::metrics::orders_open(self.id.as_str(), self.view.len());
        self.start_stations();
        self.publish_devices();
        // A branch recovered from many events saves a snapshot at once: the next start is fast.
        self.snapshot_when_due();
        self.backfill_history(ctx);
        let tables: Vec<TableId> = self.order_tables.values().cloned().collect();
        for t in tables {
            self.table(&t);
        }
        ctx.run_interval(orders::PACE_EVERY, |act, ctx| act.fire_due_courses(ctx));
        self.finish_merges(ctx);
    }
}
