//! The branch's feed: committed events arrive in position order (a gap is read back first),
//! update the view of open orders, and go to the stations concerned and to the table and
//! branch screens, which join with a snapshot or resume from the position they last saw.

use std::sync::Arc;

use actix::prelude::*;

use super::messages::{BranchCommitted, Subscribe, UnsubscribeAll};
use super::recovery::apply_branch_event;
use super::{BranchActor, BRANCH_HISTORY};
use crate::error::CommandError;
use crate::event::{Envelope, Event, Published};
use crate::ids::StationId;
use crate::order::{Order, OrderChange};
use crate::station::{Backfill, StationEvent, StockLevels, SubscribeStation, Unsubscribe};
use crate::stored;
use crate::subscriber::{read_events, read_missed, Joined, Push, Snapshot, Topic};
use crate::table::AdoptOrder;

impl BranchActor {
    /// Reads back the events before what recovery left in the screens' histories, up to a
    /// history's length, off the actor; screens that reconnect meanwhile are served from the
    /// journal as before.
    pub(super) fn backfill_history(&mut self, ctx: &mut Context<Self>) {
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

    /// Applies a committed event unless it was already (a gap read back may overlap).
    pub(super) fn on_committed_once(&mut self, envelope: Arc<Envelope>) {
        if envelope.position > self.position {
            self.on_committed(envelope);
        }
    }

    /// What the owner keeps as it writes, a replica that follows keeps from the commits: the
    /// configuration, and each open order's table and the day's last ticket number.
    fn follow(&mut self, envelope: &Envelope) {
        match &*envelope.event {
            Event::Branch(e) if envelope.seq > self.config_seq => {
                let mut branch = self.branch.as_deref().cloned();
                match apply_branch_event(&mut branch, e) {
                    Ok(()) => {
                        self.branch = branch.map(Arc::new);
                        self.config_seq = envelope.seq;
                        self.start_stations();
                        self.publish_devices();
                    }
                    Err(e) => {
                        tracing::error!(branch = %self.id, error = %e, "configuration event not applied")
                    }
                }
            }
            Event::Order(e) => {
                if let OrderChange::OrderMoved { to, .. } = &e.change {
                    self.order_tables.insert(e.order_id, to.clone());
                }
                if let OrderChange::OrderOpened { ticket_no, day, .. } = &e.change {
                    // Also on the owner: an order its open did not hear back about (the table
                    // actor gone in a change of hands, the answer lost) is still found.
                    self.order_tables.insert(e.order_id, e.table.clone());
                    // The owner numbers tickets ahead of its commits; only a follower
                    // takes the number from them.
                    if !self.owner && self.last_ticket.is_none_or(|(last, _)| *day >= last) {
                        self.last_ticket = Some((*day, *ticket_no));
                    }
                }
            }
            _ => {}
        }
    }

    /// Tells every screen of the branch what is left of its limited items.
    pub(super) fn tell_stock(&mut self) {
        let items = self.stock.shared_levels();
        self.audience.tell(&Push::Stock {
            items: items.clone(),
        });
        for station in self.stations.values() {
            station.do_send(StockLevels(items.clone()));
        }
    }

    fn on_committed(&mut self, envelope: Arc<Envelope>) {
        self.position = envelope.position;
        self.follow(&envelope);
        let restocked = self.stock.apply(&envelope.event);
        // Fire by prep time learns from every bump (the ticket as it was before it).
        if let Event::Order(e) = &*envelope.event {
            if let OrderChange::TicketBumped { ticket_id, .. } = &e.change {
                let ticket = self.view.get(&e.order_id).and_then(|o| o.ticket(ticket_id));
                if let Some(t) = ticket {
                    self.prep.bumped(self.branch.as_deref(), t, envelope.at);
                }
            }
        }
        self.stock.applied_up_to(envelope.position);
        // Expo follows every part of its orders: a ticket started, bumped, recalled or voided
        // at another station reaches its screens too.
        let expo = match (&*envelope.event, self.branch.as_deref()) {
            (Event::Order(e), Some(branch)) => match &e.change {
                OrderChange::TicketStarted { station, .. }
                | OrderChange::TicketBumped { station, .. }
                | OrderChange::TicketRecalled { station, .. }
                | OrderChange::TicketVoided { station, .. }
                    if station != branch.expo() =>
                {
                    Some(branch.expo().clone())
                }
                _ => None,
            },
            _ => None,
        };
        let published = envelope.publish_also_to(&self.frames, expo.as_ref());
        let mut stations: Vec<StationId> = published.stations.to_vec();
        if crate::subscriber::everyone(published.kind) {
            // Every kitchen screen learns it too.
            stations = self.stations.keys().cloned().collect();
        }
        if let Event::Order(e) = &*envelope.event {
            match &e.change {
                OrderChange::OrderOpened { .. } => {
                    if self.owner {
                        crate::metrics::order_opened();
                    }
                    let mut order =
                        Order::opened(e.order_id, e.table.clone(), &e.change, envelope.at);
                    order.replay(&e.change, envelope.seq, envelope.position, envelope.at);
                    self.view.insert(e.order_id, order);
                }
                OrderChange::OrderClosed {} | OrderChange::MergedInto { .. } => {
                    if self.owner {
                        crate::metrics::order_closed();
                    }
                    let merged = matches!(e.change, OrderChange::MergedInto { .. });
                    self.unfinished_merges.retain(|(o, _)| o.id != e.order_id);
                    if let Some(order) = self.view.remove(&e.order_id) {
                        // A merged order's tickets are the other order's now: its screens
                        // keep them.
                        if !merged {
                            stations.extend(order.tickets.iter().map(|t| t.station.clone()));
                            stations.dedup();
                        }
                        for t in &order.tickets {
                            if self
                                .ticket_orders
                                .get(&t.id)
                                .is_some_and(|(o, _)| *o == order.id)
                            {
                                self.ticket_orders.remove(&t.id);
                            }
                        }
                    }
                    self.order_tables.remove(&e.order_id);
                }
                change => {
                    if let OrderChange::CourseFired { tickets, .. }
                    | OrderChange::OrdersMerged { tickets, .. } = change
                    {
                        for t in tickets {
                            let at = (t.order_id, t.station.clone());
                            self.ticket_orders.insert(t.id, at);
                        }
                    }
                    if let Some(order) = self.view.get_mut(&e.order_id) {
                        order.replay(change, envelope.seq, envelope.position, envelope.at);
                    }
                    // A follower keeps the order merged in until its close comes: should the
                    // owner stop between the two, this replica closes it once it writes.
                    if let (false, OrderChange::OrdersMerged { from, .. }) = (self.owner, change) {
                        if let Some(other) = self.view.remove(from) {
                            self.order_tables.remove(from);
                            self.unfinished_merges.retain(|(o, _)| o.id != *from);
                            self.unfinished_merges.push((other, e.order_id));
                        }
                    }
                    // The table the order moved to writes it now.
                    if let (true, OrderChange::OrderMoved { to, .. }) = (self.owner, change) {
                        if let Some(order) = self.view.get(&e.order_id).cloned() {
                            self.table(to).do_send(AdoptOrder(Arc::new(order)));
                        }
                    }
                }
            }
        }
        crate::metrics::orders_open(self.id.as_str(), self.view.len());
        stations.sort();
        stations.dedup();
        for s in stations {
            if let Some(addr) = self.stations.get(&s) {
                addr.do_send(StationEvent {
                    envelope: envelope.clone(),
                    published: published.clone(),
                    counts: self.owner,
                });
            }
        }
        self.audience.deliver(&published);
        if restocked {
            self.tell_stock();
        }
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

/// A subscription that waited for this replica to catch up with the position it resumes after.
#[derive(Message)]
#[rtype(result = "()")]
struct SubscribeCaughtUp(Subscribe);

impl Handler<SubscribeCaughtUp> for BranchActor {
    type Result = ();

    fn handle(&mut self, msg: SubscribeCaughtUp, ctx: &mut Context<Self>) {
        if let Err(e) = self.join(msg.0, ctx) {
            tracing::debug!(branch = %self.id, error = %e, "subscription not joined");
        }
    }
}

impl Handler<Subscribe> for BranchActor {
    type Result = Result<(), CommandError>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        // A screen that resumes after a position this replica has not reached yet (it was on
        // a replica further on, or on the owner): the events up to it are read first, so it
        // resumes instead of being reset to an older snapshot.
        if msg.after.is_some_and(|after| after > self.position) {
            match &msg.topic {
                Topic::Station(s) => self.station(s).map(|_| ())?,
                Topic::Table(t) => self.configured()?.table(t).map(|_| ())?,
                Topic::Branch => self.configured().map(|_| ())?,
            }
            self.catch_up(msg.after.unwrap_or_default(), ctx);
            ctx.notify(SubscribeCaughtUp(msg));
            return Ok(());
        }
        self.join(msg, ctx)
    }
}

impl BranchActor {
    /// Joins a screen to its topic: a snapshot, or what it missed after its position.
    fn join(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Result<(), CommandError> {
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
                let screen = msg.subscriber.clone();
                let joined = self
                    .audience
                    .join(msg.subscriber, topic, msg.after, head, || snapshot);
                if joined == Joined::Live && !self.stock.is_empty() {
                    screen.push(Push::Stock {
                        items: self.stock.shared_levels(),
                    });
                }
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
                        // What is left now, which the events it missed do not say.
                        if !act.stock.is_empty() {
                            screen.push(Push::Stock {
                                items: act.stock.shared_levels(),
                            });
                        }
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
