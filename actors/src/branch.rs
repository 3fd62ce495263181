//! BranchActor: one branch's configuration, its actors, and the ordered feed of what it commits.
//!
//! The branch actor is the single writer of the branch's configuration stream (menu, routing,
//! stations, 86 list), starts a table actor per table and a station actor per station, and
//! hands out ticket numbers. Committed events reach it in position order; it keeps a view of
//! the open orders from them, passes each to the stations concerned and to the table and
//! branch subscribers, so a snapshot and the events after it always line up.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use actix::prelude::*;
use chrono::{Duration, NaiveDate, Utc};
use futures::future::join_all;

use crate::error::{invalid, CommandError};
use crate::event::{
    branch_stream, order_stream, BranchEvent, Envelope, Event, EventFrames, Published,
};
use crate::ids::{BranchId, ItemId, OrderId, StationId, TableId, TicketId};
use crate::journal::{append_recorded, AppendRequest, Committed, Journal, JournalError, KeyRecord};
use crate::menu::{Branch, BranchConfig};
use crate::order::{Order, OrderChange, OrderCommand, Ticket};
use crate::station::{
    Backfill, LiveTickets, StationActor, StationEvent, SubscribeStation, TicketAction, Unsubscribe,
};
use crate::stored::{self, decode_snapshot, encode_snapshot, BranchSnapshot};
use crate::subscriber::{read_events, read_missed, Audience, Joined, Snapshot, Subscriber, Topic};
use crate::table::{ExecuteOrder, OpenOrderAt, ReadOrder, TableActor};

/// Events a branch keeps for table and branch screens that reconnect.
const BRANCH_HISTORY: usize = 512;

/// What a branch is, as managers and screens read it.
#[derive(Debug, Clone)]
pub struct BranchInfo {
    pub id: BranchId,
    pub config: BranchConfig,
    pub eighty_sixed: Vec<ItemId>,
    pub position: u64,
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

/// Opens an order at a table, with the next ticket number of the day.
#[derive(Message)]
#[rtype(result = "Result<Arc<Order>, CommandError>")]
pub struct OpenOrder {
    pub table: TableId,
    pub guests: Option<u16>,
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

/// Reads a station's live tickets.
#[derive(Message)]
#[rtype(result = "Result<Vec<Ticket>, CommandError>")]
pub struct StationTickets(pub StationId);

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

/// A branch as the journal left it: what recovery hands the actor.
#[derive(Debug, Default)]
pub struct RecoveredBranch {
    pub branch: Option<Branch>,
    pub config_seq: u64,
    pub orders: Vec<Order>,
    pub position: u64,
    pub last_ticket: Option<(NaiveDate, u32)>,
    /// The position of the snapshot recovery started from (0: none, every open event read).
    pub snapshot_position: u64,
    /// The branch's latest events that recovery read anyway (those after the snapshot, at
    /// most BRANCH_HISTORY, ending at `position`), to start the screens' histories with.
    pub recent: Vec<Arc<Published>>,
}

/// Events a branch commits between two of its snapshots, unless configured otherwise.
pub const SNAPSHOT_EVERY: u64 = 5_000;

/// Events recovery reads from the journal at a time after a snapshot.
const REPLAY_PAGE: usize = 10_000;

/// Saves a snapshot of a recovered branch (recovery benchmarks and tools; the branch actor
/// snapshots itself as it runs).
pub async fn save_snapshot(
    journal: &dyn Journal,
    id: &BranchId,
    recovered: &RecoveredBranch,
) -> Result<(), JournalError> {
    let snapshot = BranchSnapshot::new(
        recovered.branch.as_ref(),
        recovered.config_seq,
        recovered.position,
        &recovered.orders,
    );
    journal
        .save_snapshot(id.as_str(), encode_snapshot(&snapshot))
        .await
}

/// A branch being rebuilt: the state events are applied to.
#[derive(Default)]
struct Rebuild {
    branch: Option<Branch>,
    config_seq: u64,
    orders: HashMap<OrderId, Order>,
    position: u64,
}

impl Rebuild {
    fn from_snapshot(snapshot: BranchSnapshot) -> Result<Self, String> {
        let mut branch = match snapshot.config {
            Some(config) => Some(Branch::new(config).map_err(|e| e.to_string())?),
            None => None,
        };
        if let Some(b) = &mut branch {
            for item in &snapshot.eighty_sixed {
                b.set_86(item, true);
            }
        }
        Ok(Self {
            branch,
            config_seq: snapshot.config_seq,
            orders: snapshot.orders.into_iter().map(|o| (o.id, o)).collect(),
            position: snapshot.position,
        })
    }

    fn apply(&mut self, envelope: &Envelope) -> Result<(), String> {
        let (seq, position, at) = (envelope.seq, envelope.position, envelope.at);
        self.position = self.position.max(position);
        match &*envelope.event {
            Event::Branch(e) => {
                self.config_seq = seq;
                apply_branch_event(&mut self.branch, e)?;
            }
            Event::Order(e) => self
                .orders
                .entry(e.order_id)
                .or_insert_with(|| Order::opened(e.order_id, e.table.clone(), &e.change, at))
                .replay(&e.change, seq, position, at),
        }
        Ok(())
    }
}

/// A branch's configuration and its stream's length: from the latest snapshot and the
/// configuration events after it (months past retention may no longer hold the earlier ones).
async fn load_config(
    journal: Arc<dyn Journal>,
    id: BranchId,
) -> Result<(Option<Branch>, u64), String> {
    let saved = journal
        .load_snapshot(id.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let mut rebuild = match saved.and_then(|s| decode_snapshot(&id, &s)) {
        Some(snapshot) => Rebuild::from_snapshot(BranchSnapshot {
            orders: Vec::new(),
            ..snapshot
        })?,
        None => Rebuild::default(),
    };
    let stored = journal
        .load_stream(&branch_stream(&id))
        .await
        .map_err(|e| e.to_string())?;
    let from = rebuild.config_seq;
    for s in stored.into_iter().filter(|s| s.seq > from) {
        rebuild.apply(&stored::envelope(&s)?)?;
    }
    Ok((rebuild.branch, rebuild.config_seq))
}

/// Rebuilds a branch's configuration and open orders: from its latest snapshot and the events
/// after it, or, without a usable snapshot, from every event of its open streams.
pub async fn recover(
    journal: &dyn Journal,
    id: &BranchId,
    frames: &EventFrames,
) -> Result<RecoveredBranch, String> {
    let saved = journal
        .load_snapshot(id.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let snapshot = saved.and_then(|s| decode_snapshot(id, &s));
    let snapshot_position = snapshot.as_ref().map_or(0, |s| s.position);
    // The events read after the snapshot are also the branch's latest.
    let mut recent: VecDeque<Envelope> = VecDeque::new();
    let mut rebuild = match snapshot {
        Some(snapshot) => {
            let mut rebuild = Rebuild::from_snapshot(snapshot)?;
            loop {
                let page = journal
                    .read_branch(id.as_str(), rebuild.position, REPLAY_PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                let full = page.len() == REPLAY_PAGE;
                for s in page {
                    let envelope = stored::envelope(&s)?;
                    rebuild.apply(&envelope)?;
                    if recent.len() == BRANCH_HISTORY {
                        recent.pop_front();
                    }
                    recent.push_back(envelope);
                }
                if !full {
                    break;
                }
            }
            rebuild
        }
        None => {
            let stored = journal
                .load_open(id.as_str())
                .await
                .map_err(|e| e.to_string())?;
            let mut rebuild = Rebuild::default();
            for s in stored {
                rebuild.apply(&stored::envelope(&s)?)?;
            }
            rebuild
        }
    };
    let mut recovered = RecoveredBranch {
        branch: rebuild.branch,
        config_seq: rebuild.config_seq,
        position: rebuild.position,
        snapshot_position,
        ..RecoveredBranch::default()
    };
    rebuild.orders.retain(|_, o| !o.is_closed());
    recovered.orders = rebuild.orders.into_values().collect();
    recovered.orders.sort_by_key(|o| o.position);
    let last = journal
        .last_of_kind(id.as_str(), "order_opened")
        .await
        .map_err(|e| e.to_string())?;
    if let Some(s) = last {
        recovered.position = recovered.position.max(s.position);
        if let Event::Order(e) = &*stored::decode(&s)? {
            if let OrderChange::OrderOpened { ticket_no, day, .. } = e.change {
                recovered.last_ticket = Some((day, ticket_no));
            }
        }
    }
    // Events of orders closed since are not loaded, but the position is the branch's own.
    let head = journal.head(id.as_str()).await.map_err(|e| e.to_string())?;
    recovered.position = recovered.position.max(head);
    // What the snapshot's replay read is the branch's latest; the actor reads back the rest
    // of its history once it runs.
    recovered.recent = recent.iter().map(|e| e.publish(frames)).collect();
    Ok(recovered)
}

fn apply_branch_event(branch: &mut Option<Branch>, event: &BranchEvent) -> Result<(), String> {
    match event {
        BranchEvent::BranchConfigured { config } => match branch {
            Some(b) => b.reconfigure(config.clone()).map_err(|e| e.to_string())?,
            None => *branch = Some(Branch::new(config.clone()).map_err(|e| e.to_string())?),
        },
        BranchEvent::ItemEightySixed { item } | BranchEvent::ItemRestored { item } => {
            let out = matches!(event, BranchEvent::ItemEightySixed { .. });
            if let Some(b) = branch {
                b.set_86(item, out);
            }
        }
    }
    Ok(())
}

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
}

impl BranchActor {
    pub fn new(
        id: BranchId,
        journal: Arc<dyn Journal>,
        recovered: RecoveredBranch,
        snapshot_every: u64,
        frames: EventFrames,
    ) -> Self {
        let order_tables = recovered
            .orders
            .iter()
            .map(|o| (o.id, o.table.clone()))
            .collect();
        let ticket_orders = recovered
            .orders
            .iter()
            .flat_map(|o| o.tickets.iter())
            .map(|t| (t.id, (t.order_id, t.station.clone())))
            .collect();
        let view = recovered.orders.into_iter().map(|o| (o.id, o)).collect();
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
        }
    }

    /// Reads back the events before what recovery left in the screens' histories, up to a
    /// history's length, off the actor; screens that reconnect meanwhile are served from the
    /// journal as before.
    fn backfill_history(&mut self, ctx: &mut Context<Self>) {
        let held_after = self.audience.history_floor();
        let wanted_after = self.position.saturating_sub(BRANCH_HISTORY as u64);
        if held_after <= wanted_after {
            return;
        }
        let read = read_missed(
            self.journal.clone(),
            self.id.to_string(),
            wanted_after,
            held_after,
            self.frames.clone(),
        );
        ctx.spawn(read.into_actor(self).map(|older, act, _| {
            let Ok(older) = older else {
                return tracing::warn!(branch = %act.id, "screens' history not read back");
            };
            act.audience.backfill(&older, |_| true);
            let older: Arc<[Arc<Published>]> = older.into();
            for station in act.stations.values() {
                station.do_send(Backfill(older.clone()));
            }
        }));
    }

    /// Saves a snapshot once `snapshot_every` events have been committed since the last one.
    /// The view is copied here and encoded and written off the actor, which goes on at once.
    fn snapshot_when_due(&mut self) {
        if self.position < self.snapshot_position + self.snapshot_every || self.branch.is_none() {
            return;
        }
        // Whatever the outcome, the next attempt waits for as many events again.
        self.snapshot_position = self.position;
        let snapshot = BranchSnapshot::new(
            self.branch.as_deref(),
            self.config_seq,
            self.position,
            self.view.values(),
        );
        let journal = self.journal.clone();
        let branch = self.id.clone();
        actix::spawn(async move {
            let started = std::time::Instant::now();
            let position = snapshot.position;
            let encoded =
                match tokio::task::spawn_blocking(move || encode_snapshot(&snapshot)).await {
                    Ok(encoded) => encoded,
                    Err(e) => return tracing::error!(%branch, error = %e, "snapshot not encoded"),
                };
            let bytes = encoded.body.len();
            match journal.save_snapshot(branch.as_str(), encoded).await {
                Ok(()) => {
                    crate::metrics::snapshot_saved(started.elapsed());
                    tracing::info!(%branch, position, bytes, "snapshot saved");
                }
                Err(e) => tracing::warn!(%branch, error = %e, "snapshot not saved"),
            }
        });
    }

    fn configured(&self) -> Result<Arc<Branch>, CommandError> {
        self.branch
            .clone()
            .ok_or_else(|| CommandError::UnknownBranch(self.id.to_string()))
    }

    fn info(&self) -> Result<BranchInfo, CommandError> {
        let branch = self.configured()?;
        Ok(BranchInfo {
            id: self.id.clone(),
            config: branch.config().clone(),
            eighty_sixed: branch.eighty_sixed().iter().cloned().collect(),
            position: self.position,
        })
    }

    /// Starts actors for stations the configuration names and this branch does not run yet.
    fn start_stations(&mut self) {
        // Only stations started with the branch are as of the recovered position.
        let recent = std::mem::take(&mut self.recent);
        let Some(branch) = self.branch.clone() else {
            return;
        };
        for station in branch.stations() {
            if self.stations.contains_key(&station.id) {
                continue;
            }
            let tickets: Vec<Ticket> = self
                .view
                .values()
                .flat_map(|o| o.tickets.iter())
                .filter(|t| t.station == station.id)
                .cloned()
                .collect();
            let actor = StationActor::new(
                self.id.clone(),
                station.id.clone(),
                tickets,
                self.position,
                &recent,
                self.journal.clone(),
                self.frames.clone(),
            );
            self.stations.insert(station.id.clone(), actor.start());
        }
    }

    fn table(&mut self, table: &TableId) -> Addr<TableActor> {
        if let Some(addr) = self.tables.get(table) {
            return addr.clone();
        }
        let orders = self
            .view
            .values()
            .filter(|o| o.table == *table)
            .cloned()
            .collect();
        let actor = TableActor::new(self.id.clone(), table.clone(), self.journal.clone(), orders);
        let addr = actor.start();
        self.tables.insert(table.clone(), addr.clone());
        addr
    }

    fn station(&self, station: &StationId) -> Result<Addr<StationActor>, CommandError> {
        self.configured()?.station(station)?;
        self.stations
            .get(station)
            .cloned()
            .ok_or_else(|| CommandError::UnknownStation(station.clone()))
    }

    /// Today's date at the branch, for ticket numbers.
    fn today(&self, branch: &Branch) -> NaiveDate {
        let offset = Duration::minutes(branch.config().utc_offset_minutes.into());
        (Utc::now() + offset).date_naive()
    }

    /// Journals a configuration event, then applies it.
    fn commit_branch_event(
        &mut self,
        event: BranchEvent,
    ) -> AtomicResponse<Self, Result<BranchInfo, CommandError>> {
        let request = AppendRequest {
            branch: self.id.to_string(),
            stream: branch_stream(&self.id),
            expected_seq: self.config_seq,
            events: vec![stored::encode(Event::Branch(event.clone()), Utc::now())],
            closes_stream: false,
            idempotency: None,
        };
        let journal = self.journal.clone();
        AtomicResponse::new(Box::pin(
            async move { append_recorded(journal.as_ref(), request).await }
                .into_actor(self)
                .map(move |result, act, ctx| {
                    let stored = result.map_err(|e| {
                        // The journal may hold more than memory does: read the configuration
                        // back before the next command.
                        act.reload_config(ctx);
                        match e {
                            JournalError::Conflict { .. } | JournalError::DuplicateKey(_) => {
                                CommandError::Conflict
                            }
                            JournalError::Unavailable(_) => CommandError::JournalUnavailable,
                        }
                    })?;
                    act.config_seq = stored.last().map(|s| s.seq).unwrap_or(act.config_seq);
                    let mut branch = act.branch.as_deref().cloned();
                    apply_branch_event(&mut branch, &event).map_err(CommandError::Invalid)?;
                    act.branch = branch.map(Arc::new);
                    act.start_stations();
                    act.info()
                }),
        ))
    }

    /// Rebuilds the configuration from its stream, holding other messages until done.
    fn reload_config(&mut self, ctx: &mut Context<Self>) {
        let load = load_config(self.journal.clone(), self.id.clone());
        ctx.wait(load.into_actor(self).map(|loaded, act, _| {
            let (branch, seq) = match loaded {
                Ok(loaded) => loaded,
                Err(e) => return tracing::error!(branch = %act.id, error = %e, "configuration not read back"),
            };
            act.config_seq = seq;
            if branch.is_some() {
                act.branch = branch.map(Arc::new);
                act.start_stations();
            }
        }));
    }

    /// Applies a committed event unless it was already (a gap read back may overlap).
    fn on_committed_once(&mut self, envelope: Arc<Envelope>) {
        if envelope.position > self.position {
            self.on_committed(envelope);
        }
    }

    fn on_committed(&mut self, envelope: Arc<Envelope>) {
        self.position = envelope.position;
        let published = envelope.publish(&self.frames);
        let mut stations: Vec<StationId> = published.stations.to_vec();
        if let Event::Order(e) = &*envelope.event {
            match &e.change {
                OrderChange::OrderOpened { .. } => {
                    crate::metrics::order_opened();
                    let mut order =
                        Order::opened(e.order_id, e.table.clone(), &e.change, envelope.at);
                    order.replay(&e.change, envelope.seq, envelope.position, envelope.at);
                    self.view.insert(e.order_id, order);
                }
                OrderChange::OrderClosed {} => {
                    crate::metrics::order_closed();
                    if let Some(order) = self.view.remove(&e.order_id) {
                        stations.extend(order.tickets.iter().map(|t| t.station.clone()));
                        stations.dedup();
                        for t in &order.tickets {
                            self.ticket_orders.remove(&t.id);
                        }
                    }
                    self.order_tables.remove(&e.order_id);
                }
                change => {
                    if let OrderChange::CourseFired { tickets, .. } = change {
                        for t in tickets {
                            let at = (t.order_id, t.station.clone());
                            self.ticket_orders.insert(t.id, at);
                        }
                    }
                    if let Some(order) = self.view.get_mut(&e.order_id) {
                        order.replay(change, envelope.seq, envelope.position, envelope.at);
                    }
                }
            }
        }
        crate::metrics::orders_open(self.id.as_str(), self.view.len());
        stations.sort();
        stations.dedup();
        for s in stations {
            if let Some(addr) = self.stations.get(&s) {
                addr.do_send(StationEvent(envelope.clone(), published.clone()));
            }
        }
        self.audience.deliver(&published);
    }

    fn snapshot(&self, topic: &Topic) -> Result<Snapshot, CommandError> {
        let branch = self.configured()?;
        let mut orders: Vec<Order> = self
            .view
            .values()
            .filter(|o| match topic {
                Topic::Table(t) => o.table == *t,
                _ => true,
            })
            .cloned()
            .collect();
        orders.sort_by_key(|o| o.ticket_no);
        Ok(match topic {
            Topic::Table(table) => Snapshot::Table {
                table: table.clone(),
                position: self.position,
                orders,
            },
            _ => Snapshot::Branch {
                position: self.position,
                config: branch.config().clone(),
                eighty_sixed: branch.eighty_sixed().iter().cloned().collect(),
                orders,
            },
        })
    }
}

impl Actor for BranchActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        crate::metrics::orders_open(self.id.as_str(), self.view.len());
        self.start_stations();
        // A branch recovered from many events saves a snapshot at once: the next start is fast.
        self.snapshot_when_due();
        self.backfill_history(ctx);
        let tables: Vec<TableId> = self.order_tables.values().cloned().collect();
        for t in tables {
            self.table(&t);
        }
    }
}

impl Handler<Configure> for BranchActor {
    type Result = AtomicResponse<Self, Result<BranchInfo, CommandError>>;

    fn handle(&mut self, msg: Configure, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = msg.0.validate() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        if self.branch.as_ref().is_some_and(|b| *b.config() == msg.0) {
            // Unchanged: nothing to journal (devices may sync the menu often).
            return AtomicResponse::new(Box::pin(fut::ready(self.info())));
        }
        self.commit_branch_event(BranchEvent::BranchConfigured { config: msg.0 })
    }
}

impl Handler<SetEightySix> for BranchActor {
    type Result = AtomicResponse<Self, Result<BranchInfo, CommandError>>;

    fn handle(&mut self, msg: SetEightySix, _: &mut Context<Self>) -> Self::Result {
        let checked = self
            .configured()
            .and_then(|b| b.item(&msg.item).map(|_| b.is_86(&msg.item)));
        match checked {
            Err(e) => AtomicResponse::new(Box::pin(fut::ready(Err(e)))),
            // Already as asked: nothing to journal.
            Ok(out) if out == msg.out => AtomicResponse::new(Box::pin(fut::ready(self.info()))),
            Ok(_) => self.commit_branch_event(if msg.out {
                BranchEvent::ItemEightySixed { item: msg.item }
            } else {
                BranchEvent::ItemRestored { item: msg.item }
            }),
        }
    }
}

impl Handler<GetBranchInfo> for BranchActor {
    type Result = Result<BranchInfo, CommandError>;

    fn handle(&mut self, _: GetBranchInfo, _: &mut Context<Self>) -> Self::Result {
        self.info()
    }
}

impl Handler<OpenOrder> for BranchActor {
    type Result = ResponseActFuture<Self, Result<Arc<Order>, CommandError>>;

    fn handle(&mut self, msg: OpenOrder, _: &mut Context<Self>) -> Self::Result {
        let prepared = (|| {
            let branch = self.configured()?;
            branch.table(&msg.table)?;
            if matches!(msg.guests, Some(0) | Some(101..)) {
                return Err(invalid("guests must be 1 to 100"));
            }
            let today = self.today(&branch);
            let ticket_no = match self.last_ticket {
                Some((day, n)) if day == today => n % 9999 + 1,
                _ => 1,
            };
            self.last_ticket = Some((today, ticket_no));
            Ok(OpenOrderAt {
                order_id: OrderId::new(),
                ticket_no,
                day: today,
                guests: msg.guests,
                idempotency: msg.idempotency.clone(),
                span: msg.span.clone(),
            })
        })();
        let open = match prepared {
            Ok(open) => open,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let table = msg.table.clone();
        let addr = self.table(&msg.table);
        Box::pin(
            async move { addr.send(open).await }
                .into_actor(self)
                .map(move |res, act, _| {
                    let opened = res.map_err(|_| CommandError::JournalUnavailable)??;
                    if opened.open {
                        act.order_tables.insert(opened.order.id, table);
                    }
                    Ok(opened.order)
                }),
        )
    }
}

impl Handler<ChangeOrder> for BranchActor {
    type Result = ResponseFuture<Result<Arc<Order>, CommandError>>;

    fn handle(&mut self, msg: ChangeOrder, _: &mut Context<Self>) -> Self::Result {
        self.change_order(msg)
    }
}

impl BranchActor {
    /// Hands a command to the table actor that writes its order, or answers a retry of a
    /// command on an order closed since from the journal.
    fn change_order(
        &mut self,
        msg: ChangeOrder,
    ) -> ResponseFuture<Result<Arc<Order>, CommandError>> {
        let target = self
            .configured()
            .map(|branch| (branch, self.order_tables.get(&msg.order).cloned()));
        match target {
            Err(e) => Box::pin(async move { Err(e) }),
            Ok((_, None)) => {
                // A closed order: a retry of the command that closed it gets its answer again.
                let read = self.read_closed(msg.order);
                let journal = self.journal.clone();
                let branch = self.id.to_string();
                Box::pin(async move {
                    let order = match read.await {
                        Ok(order) if order.is_closed() => order,
                        Ok(_) | Err(_) => return Err(CommandError::UnknownOrder(msg.order)),
                    };
                    let Some(key) = msg.idempotency else {
                        return Err(CommandError::OrderClosed);
                    };
                    match crate::table::first_answer(journal, &branch, &key).await? {
                        Some(first) if first.id == order.id => Ok(first),
                        _ => Err(CommandError::OrderClosed),
                    }
                })
            }
            Ok((branch, Some(table))) => {
                let addr = self.table(&table);
                let exec = ExecuteOrder {
                    order_id: msg.order,
                    command: msg.command,
                    branch,
                    idempotency: msg.idempotency,
                    span: msg.span,
                };
                Box::pin(async move {
                    addr.send(exec)
                        .await
                        .map_err(|_| CommandError::JournalUnavailable)?
                })
            }
        }
    }
}

impl BranchActor {
    /// Reads an order that is no longer open straight from the journal.
    fn read_closed(
        &self,
        id: OrderId,
    ) -> impl std::future::Future<Output = Result<Arc<Order>, CommandError>> + 'static {
        let journal = self.journal.clone();
        let branch = self.id.clone();
        async move {
            let stored = journal
                .load_stream(&order_stream(&id))
                .await
                .map_err(|_| CommandError::JournalUnavailable)?;
            if stored.iter().any(|s| s.branch != branch.as_str()) {
                return Err(CommandError::UnknownOrder(id));
            }
            let order = stored::replay_order(None, &stored);
            order.map(Arc::new).ok_or(CommandError::UnknownOrder(id))
        }
    }
}

impl Handler<GetOrder> for BranchActor {
    type Result = ResponseFuture<Result<Arc<Order>, CommandError>>;

    fn handle(&mut self, msg: GetOrder, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.configured() {
            return Box::pin(async move { Err(e) });
        }
        match self.order_tables.get(&msg.0).cloned() {
            Some(table) => {
                let addr = self.table(&table);
                Box::pin(async move {
                    addr.send(ReadOrder(msg.0))
                        .await
                        .map_err(|_| CommandError::JournalUnavailable)?
                })
            }
            None => Box::pin(self.read_closed(msg.0)),
        }
    }
}

impl Handler<OpenOrders> for BranchActor {
    type Result = ResponseFuture<Result<Vec<Arc<Order>>, CommandError>>;

    fn handle(&mut self, _: OpenOrders, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.configured() {
            return Box::pin(async move { Err(e) });
        }
        let reads: Vec<_> = self
            .order_tables
            .iter()
            .map(|(order, table)| self.tables.get(table).map(|a| a.send(ReadOrder(*order))))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Box::pin(async move {
            let mut orders: Vec<Arc<Order>> = join_all(reads)
                .await
                .into_iter()
                .filter_map(|r| r.ok()?.ok())
                .collect();
            orders.sort_by_key(|o| (o.opened_at, o.ticket_no));
            Ok(orders)
        })
    }
}

impl Handler<StationCommand> for BranchActor {
    type Result = ResponseFuture<Result<Ticket, CommandError>>;

    /// The branch knows which order each live ticket belongs to and sends the command to that
    /// order's table actor, its one writer; the station actor only shows the outcome.
    fn handle(&mut self, msg: StationCommand, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.station(&msg.station) {
            return Box::pin(async move { Err(e) });
        }
        let (ticket, station) = (msg.ticket, msg.station);
        let order = match self.ticket_orders.get(&ticket) {
            Some((order, at)) if *at == station => *order,
            // Not a ticket of this station's open orders. Its order may have closed since a
            // command the client is retrying: that command gets its first answer again.
            _ => {
                let journal = self.journal.clone();
                let branch = self.id.to_string();
                return Box::pin(async move {
                    let unknown = CommandError::UnknownTicket(ticket);
                    let Some(key) = msg.idempotency else {
                        return Err(unknown);
                    };
                    let first = crate::table::first_answer(journal, &branch, &key).await?;
                    first
                        .and_then(|order| order.ticket(&ticket).cloned())
                        .filter(|t| t.station == station)
                        .ok_or(unknown)
                });
            }
        };
        let command = match msg.action {
            TicketAction::Start => OrderCommand::StartTicket { ticket },
            TicketAction::Bump => OrderCommand::BumpTicket { ticket },
            TicketAction::Recall => OrderCommand::RecallTicket { ticket },
        };
        let answer = self.change_order(ChangeOrder {
            order,
            command,
            idempotency: msg.idempotency,
            span: msg.span,
        });
        Box::pin(async move {
            answer
                .await?
                .ticket(&ticket)
                .cloned()
                .ok_or(CommandError::UnknownTicket(ticket))
        })
    }
}

impl Handler<StationTickets> for BranchActor {
    type Result = ResponseFuture<Result<Vec<Ticket>, CommandError>>;

    fn handle(&mut self, msg: StationTickets, _: &mut Context<Self>) -> Self::Result {
        let addr = match self.station(&msg.0) {
            Ok(addr) => addr,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        Box::pin(async move {
            addr.send(LiveTickets)
                .await
                .map_err(|_| CommandError::JournalUnavailable)
        })
    }
}

impl Handler<Subscribe> for BranchActor {
    type Result = Result<(), CommandError>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        match &msg.topic {
            Topic::Station(s) => {
                self.station(s)?.do_send(SubscribeStation {
                    subscriber: msg.subscriber,
                    after: msg.after,
                });
            }
            topic => {
                if let Topic::Table(t) = topic {
                    self.configured()?.table(t)?;
                }
                let snapshot = self.snapshot(topic)?;
                let (topic, head) = (topic.clone(), self.position);
                let joined = self
                    .audience
                    .join(msg.subscriber, topic, msg.after, head, || snapshot);
                if let Joined::FromJournal {
                    ticket,
                    after,
                    head,
                } = joined
                {
                    let read = read_missed(
                        self.journal.clone(),
                        self.id.to_string(),
                        after,
                        head,
                        self.frames.clone(),
                    );
                    ctx.spawn(read.into_actor(self).map(move |missed, act, _| {
                        let topic = act.audience.catching_up_on(ticket).cloned();
                        let snapshot = topic.and_then(|t| act.snapshot(&t).ok());
                        act.audience.caught_up(ticket, missed, snapshot);
                    }));
                }
            }
        }
        Ok(())
    }
}

impl Handler<UnsubscribeAll> for BranchActor {
    type Result = ();

    fn handle(&mut self, msg: UnsubscribeAll, _: &mut Context<Self>) {
        self.audience.leave(msg.0);
        for addr in self.stations.values() {
            addr.do_send(Unsubscribe(msg.0));
        }
    }
}

impl Handler<BranchCommitted> for BranchActor {
    type Result = ();

    fn handle(&mut self, msg: BranchCommitted, ctx: &mut Context<Self>) {
        let envelopes: Vec<Arc<Envelope>> = msg
            .0
            .iter()
            .filter_map(|s| match stored::envelope(s) {
                Ok(e) => Some(Arc::new(e)),
                Err(e) => {
                    tracing::error!(error = %e, "undecodable committed event");
                    None
                }
            })
            .collect();
        let Some(first) = envelopes.first() else {
            return;
        };
        if first.position > self.position + 1 {
            // Positions are dense: the journal committed something this replica was not told
            // of (an append whose commit timed out, yet went through). Read it back first,
            // and take no other message until the screens have it, in order.
            let (after, upto) = (self.position, first.position - 1);
            tracing::warn!(branch = %self.id, after, upto, "filling a gap in the commit feed");
            let read = read_events(self.journal.clone(), self.id.to_string(), after, upto);
            ctx.wait(read.into_actor(self).map(move |missed, act, _| {
                match missed {
                    Ok(missed) => missed.into_iter().for_each(|e| act.on_committed_once(e)),
                    Err(()) => tracing::error!(branch = %act.id, "could not read a gap back"),
                }
                envelopes.into_iter().for_each(|e| act.on_committed_once(e));
                act.snapshot_when_due();
            }));
            return;
        }
        envelopes
            .into_iter()
            .for_each(|e| self.on_committed_once(e));
        self.snapshot_when_due();
    }
}
