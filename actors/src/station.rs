//! StationActor: the tickets of one station, and the screens that show them.
//!
//! It is a read model: a projection of the branch's committed events, fed in position order
//! by the branch actor, so its snapshot and the events that follow it never overlap or leave a
//! gap. It changes nothing itself: station commands (start, bump, recall) go from the branch
//! actor, which knows each ticket's order, straight to that order's table actor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use crate::event::{Envelope, Event, EventFrames, Published};
use crate::ids::{BranchId, OrderId, StationId, TicketId};
use crate::journal::Journal;
use crate::order::{OrderChange, Ticket};
use crate::subscriber::{read_missed, Audience, Joined, Snapshot, Subscriber, Topic};

/// Events a station keeps for screens that reconnect.
const STATION_HISTORY: usize = 256;

/// A committed event that concerns this station.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StationEvent(pub Arc<Envelope>, pub Arc<Published>);

/// A station-level command on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketAction {
    Start,
    Bump,
    Recall,
}

/// The station's live tickets: rush tickets first, then oldest first.
#[derive(Message)]
#[rtype(result = "Vec<Ticket>")]
pub struct LiveTickets;

/// Sends a screen the station's snapshot, then every event after it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeStation {
    pub subscriber: Subscriber,
    /// Resume after this position instead of starting from a snapshot.
    pub after: Option<u64>,
}

/// The branch's events before this station's history, read back after a restart.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Backfill(pub Arc<[Arc<Published>]>);

impl Handler<Backfill> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: Backfill, _: &mut Context<Self>) {
        let topic = Topic::Station(self.station.clone());
        self.audience.backfill(&msg.0, |e| topic.matches(e));
    }
}

/// Stops sending to a screen.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub u64);

/// One station's screen state.
pub struct StationActor {
    branch_id: BranchId,
    station: StationId,
    /// Every ticket of this station that belongs to an open order, bumped ones included so
    /// they can be recalled.
    tickets: HashMap<TicketId, Ticket>,
    position: u64,
    /// The station's screens, and what they were sent lately for those that reconnect.
    audience: Audience,
    journal: Arc<dyn Journal>,
    frames: EventFrames,
}

impl StationActor {
    pub fn new(
        branch_id: BranchId,
        station: StationId,
        tickets: Vec<Ticket>,
        position: u64,
        recent: &[Arc<Published>],
        journal: Arc<dyn Journal>,
        frames: EventFrames,
    ) -> Self {
        let tickets = tickets.into_iter().map(|t| (t.id, t)).collect();
        let topic = Topic::Station(station.clone());
        let mut audience = Audience::new(STATION_HISTORY, position);
        audience.backfill(recent, |e| topic.matches(e));
        Self {
            branch_id,
            station,
            tickets,
            position,
            audience,
            journal,
            frames,
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::Station {
            station: self.station.clone(),
            position: self.position,
            tickets: self.live(),
        }
    }

    fn live(&self) -> Vec<Ticket> {
        let mut live: Vec<Ticket> = self
            .tickets
            .values()
            .filter(|t| t.is_live())
            .cloned()
            .collect();
        // A rush first, then oldest first.
        live.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.fired_at.cmp(&b.fired_at))
                .then(a.ticket_no.cmp(&b.ticket_no))
        });
        live
    }

    /// Publishes what the station's screens show to the metrics.
    fn record(&self) {
        let now = Utc::now();
        let oldest = self
            .tickets
            .values()
            .filter(|t| t.is_live())
            .map(|t| t.fired_at)
            .min();
        let live = self.tickets.values().filter(|t| t.is_live()).count();
        let age = oldest
            .and_then(|o| (now - o).to_std().ok())
            .unwrap_or_default();
        crate::metrics::station_state(
            self.branch_id.as_str(),
            self.station.as_str(),
            live,
            age,
            self.audience.len(),
        );
    }

    fn close_order(&mut self, order: OrderId) {
        self.tickets.retain(|_, t| t.order_id != order);
    }
}

impl Actor for StationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.record();
        ctx.run_interval(Duration::from_secs(1), |act, _| act.record());
    }
}

impl Handler<StationEvent> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: StationEvent, _: &mut Context<Self>) {
        let envelope = msg.0;
        self.position = envelope.position;
        let Event::Order(order_event) = &*envelope.event else {
            return;
        };
        let change = &order_event.change;
        match change {
            OrderChange::CourseFired { tickets, .. } => {
                let age = (Utc::now() - envelope.at).to_std().unwrap_or_default();
                crate::lag::fanout().observe(age);
                for t in tickets.iter().filter(|t| t.station == self.station) {
                    self.tickets.insert(t.id, t.clone());
                }
            }
            OrderChange::LineVoided { tickets, .. }
            | OrderChange::PriorityChanged { tickets, .. } => {
                for r in tickets.iter().filter(|r| r.station == self.station) {
                    if let Some(t) = self.tickets.get_mut(&r.ticket_id) {
                        t.apply(change, envelope.at);
                    }
                }
            }
            OrderChange::OrderClosed {} => {
                self.close_order(order_event.order_id);
                self.record();
                return;
            }
            OrderChange::TicketBumped { ticket_id, .. } => {
                if let Some(t) = self.tickets.get_mut(ticket_id) {
                    t.apply(change, envelope.at);
                    if let Ok(cooked) = (envelope.at - t.fired_at).to_std() {
                        let (branch, station) = (self.branch_id.as_str(), self.station.as_str());
                        crate::metrics::ticket_bumped(branch, station, cooked);
                    }
                }
            }
            other => {
                if let Some(t) = other.ticket_id().and_then(|id| self.tickets.get_mut(id)) {
                    t.apply(change, envelope.at);
                }
            }
        }
        self.audience.deliver(&msg.1);
        self.record();
    }
}

impl Handler<SubscribeStation> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: SubscribeStation, ctx: &mut Context<Self>) {
        let topic = Topic::Station(self.station.clone());
        let snapshot = self.snapshot();
        let joined = self
            .audience
            .join(msg.subscriber, topic, msg.after, self.position, || snapshot);
        if let Joined::FromJournal {
            ticket,
            after,
            head,
        } = joined
        {
            let read = read_missed(
                self.journal.clone(),
                self.branch_id.to_string(),
                after,
                head,
                self.frames.clone(),
            );
            ctx.spawn(read.into_actor(self).map(move |missed, act, _| {
                let snapshot = act.snapshot();
                act.audience.caught_up(ticket, missed, Some(snapshot));
                act.record();
            }));
        }
        self.record();
    }
}

impl Handler<Unsubscribe> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        self.audience.leave(msg.0);
        self.record();
    }
}

impl Handler<LiveTickets> for StationActor {
    type Result = MessageResult<LiveTickets>;

    fn handle(&mut self, _: LiveTickets, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.live())
    }
}
