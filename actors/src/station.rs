//! StationActor: the tickets of one station, and the screens that show them.
//!
//! It is a read model: a projection of the branch's committed events, fed in position order
//! by the branch actor, so its snapshot and the events that follow it never overlap or leave a
//! gap. It changes nothing itself: station commands (start, bump, recall) go from the branch
//! actor, which knows each ticket's order, straight to that order's table actor.
//!
//! It also watches that every ticket reaches a screen: screens acknowledge the tickets they
//! show (`Seen`), and a live ticket no screen of the station acknowledged within the branch's
//! limit is reported to the branch, which journals it as unseen for expo and managers to see.
//! Acknowledgements are kept in memory only (a restart starts every live ticket's clock
//! again, and reconnecting screens acknowledge what they show); the escalation is journaled.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};

use crate::error::CommandError;
use crate::event::{Envelope, Event, EventFrames, Published};
use crate::ids::ItemId;
use crate::ids::{BranchId, OrderId, StationId, TicketId};
use crate::journal::Journal;
use crate::order::{OrderChange, Ticket};
use crate::subscriber::{
    read_missed, AllDayItem, Audience, Joined, Push, Snapshot, Subscriber, Topic,
};

/// How often the watch looks for tickets that waited too long for a screen.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Events a station keeps for screens that reconnect.
const STATION_HISTORY: usize = 256;

/// A committed event that concerns this station.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StationEvent {
    pub envelope: Arc<Envelope>,
    pub published: Arc<Published>,
    /// This replica writes the branch: it counts the station's metrics (each replica shows
    /// the tickets, one counts them).
    pub counts: bool,
}

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

/// The station's tickets bumped within the last while (of orders still open, so they can be
/// recalled), the latest bumped first.
#[derive(Message)]
#[rtype(result = "Vec<Ticket>")]
pub struct RecentlyBumped(pub Duration);

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

/// A screen of the station shows these tickets.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Seen(pub Vec<TicketId>);

/// What the station's watch asks the branch to journal about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// No screen acknowledged it within the limit.
    Unseen { waited_seconds: u32 },
    /// A screen acknowledged it after it was reported unseen.
    Seen,
}

/// The station's watch reports a ticket to the branch; refused when this replica does not
/// write the branch (the replica that does watches too).
#[derive(Message)]
#[rtype(result = "Result<(), CommandError>")]
pub struct WatchReport {
    pub station: StationId,
    pub ticket: TicketId,
    pub watch: Watch,
}

/// The branch's limits for its stations: how long a ticket may wait for a screen's
/// acknowledgement, and from how long between fire and bump a ticket is late.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct StationLimits {
    pub unseen_after: Duration,
    pub late_after: crate::menu::LateAfter,
}

impl Handler<StationLimits> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: StationLimits, _: &mut Context<Self>) {
        self.limits = msg;
    }
}

/// What is left of the branch's limited items, for the station's screens.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StockLevels(pub Arc<[(ItemId, u32)]>);

impl Handler<StockLevels> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: StockLevels, _: &mut Context<Self>) {
        self.stock = msg.0;
        let push = Push::Stock {
            items: self.stock.clone(),
        };
        self.audience.tell(&push);
    }
}

/// The station's all-day: every item on its live tickets, most portions first.
#[derive(Message)]
#[rtype(result = "Vec<AllDayItem>")]
pub struct AllDay;

impl Handler<AllDay> for StationActor {
    type Result = MessageResult<AllDay>;

    fn handle(&mut self, _: AllDay, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.all_day.to_vec())
    }
}

/// The station's speed of service over the last `window`.
#[derive(Message)]
#[rtype(result = "SpeedOfService")]
pub struct Speed {
    pub window: Duration,
}

/// How fast a station (and each item at it) went from fire to bump over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedOfService {
    pub window: Duration,
    pub overall: Pace,
    /// Per item, most tickets first.
    pub items: Vec<(ItemId, String, Pace)>,
}

/// Bumps over a window: how many, how long from fire, how many late, and recalls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pace {
    pub tickets: u32,
    pub average_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub late: u32,
    pub recalls: u32,
}

impl Pace {
    fn of(mut seconds: Vec<f64>, late: u32, recalls: u32) -> Self {
        seconds.sort_by(f64::total_cmp);
        let n = seconds.len();
        let average = (n > 0).then(|| seconds.iter().sum::<f64>() / n as f64);
        // The nearest-rank 90th percentile.
        let p90 = (n > 0).then(|| seconds[(n * 9).div_ceil(10).max(1) - 1]);
        Self {
            tickets: u32::try_from(n).unwrap_or(u32::MAX),
            average_seconds: average,
            p90_seconds: p90,
            late,
            recalls,
        }
    }
}

impl Handler<Speed> for StationActor {
    type Result = MessageResult<Speed>;

    fn handle(&mut self, msg: Speed, _: &mut Context<Self>) -> Self::Result {
        let since = Utc::now() - chrono::Duration::from_std(msg.window).unwrap_or_default();
        let bumps: Vec<&Bumped> = self.bumps.iter().filter(|b| b.at >= since).collect();
        let recalls: Vec<&Recalled> = self.recalls.iter().filter(|r| r.at >= since).collect();
        let late = |b: &Bumped| b.late;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let overall = Pace::of(
            bumps.iter().map(|b| b.seconds).collect(),
            count(bumps.iter().filter(|b| late(b)).count()),
            count(recalls.len()),
        );
        let mut names: HashMap<&ItemId, &str> = HashMap::new();
        for (item, name) in bumps
            .iter()
            .flat_map(|b| &b.items)
            .chain(recalls.iter().flat_map(|r| &r.items))
        {
            names.entry(item).or_insert(name);
        }
        let mut items: Vec<(ItemId, String, Pace)> = names
            .into_iter()
            .map(|(item, name)| {
                let has = |items: &[(ItemId, String)]| items.iter().any(|(i, _)| i == item);
                let of_item: Vec<&&Bumped> = bumps.iter().filter(|b| has(&b.items)).collect();
                let pace = Pace::of(
                    of_item.iter().map(|b| b.seconds).collect(),
                    count(of_item.iter().filter(|b| late(b)).count()),
                    count(recalls.iter().filter(|r| has(&r.items)).count()),
                );
                (item.clone(), name.to_owned(), pace)
            })
            .collect();
        items.sort_by(|a, b| b.2.tickets.cmp(&a.2.tickets).then(a.0.cmp(&b.0)));
        MessageResult(SpeedOfService {
            window: msg.window,
            overall,
            items,
        })
    }
}

/// A bump, as speed of service counts it.
#[derive(Debug)]
struct Bumped {
    at: DateTime<Utc>,
    seconds: f64,
    /// Later than its source's late time.
    late: bool,
    items: Vec<(ItemId, String)>,
}

/// A recall, as speed of service counts it.
#[derive(Debug)]
struct Recalled {
    at: DateTime<Utc>,
    items: Vec<(ItemId, String)>,
}

/// Speed of service looks back at most this far, and keeps at most this many bumps.
const SPEED_HORIZON: chrono::TimeDelta = chrono::TimeDelta::hours(24);
const SPEED_KEPT: usize = 20_000;

/// The items a ticket still has to cook, each with its name.
fn items_of(t: &Ticket) -> Vec<(ItemId, String)> {
    let mut items: Vec<(ItemId, String)> = t
        .lines
        .iter()
        .filter(|l| !l.voided)
        .map(|l| (l.item.clone(), l.name.clone()))
        .collect();
    items.sort();
    items.dedup();
    items
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
    /// Where the watch reports tickets (the branch).
    watcher: Option<Recipient<WatchReport>>,
    limits: StationLimits,
    /// Live tickets no screen has acknowledged yet, since when they are waiting.
    waiting: HashMap<TicketId, Instant>,
    /// Tickets reported to the branch, the answer not back yet.
    reporting: HashSet<TicketId>,
    /// The all-day as last sent to the screens.
    all_day: Arc<[AllDayItem]>,
    /// What is left of the branch's limited items, as last sent to the screens.
    stock: Arc<[(ItemId, u32)]>,
    /// Bumps and recalls of the last day, oldest first, for speed of service.
    bumps: VecDeque<Bumped>,
    recalls: VecDeque<Recalled>,
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
        let now = Instant::now();
        let waiting = tickets
            .iter()
            .filter(|t| t.is_live() && !t.unseen)
            .map(|t| (t.id, now))
            .collect();
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
            watcher: None,
            limits: StationLimits {
                unseen_after: Duration::from_secs(crate::menu::DEFAULT_UNSEEN_AFTER.into()),
                late_after: crate::menu::LateAfter::default(),
            },
            waiting,
            reporting: HashSet::new(),
            all_day: Arc::from([]),
            stock: Arc::from([]),
            bumps: VecDeque::new(),
            recalls: VecDeque::new(),
        }
        .counted()
    }

    /// Its all-day counted from its tickets.
    fn counted(mut self) -> Self {
        self.all_day = self.count_all_day().into();
        self
    }

    fn count_all_day(&self) -> Vec<AllDayItem> {
        let mut counts: HashMap<&ItemId, AllDayItem> = HashMap::new();
        for t in self.tickets.values().filter(|t| t.is_live()) {
            let mut on_ticket: HashSet<&ItemId> = HashSet::new();
            for l in t.lines.iter().filter(|l| !l.voided) {
                let entry = counts.entry(&l.item).or_insert_with(|| AllDayItem {
                    item: l.item.clone(),
                    name: l.name.clone(),
                    quantity: 0,
                    tickets: 0,
                });
                entry.quantity += u32::from(l.quantity);
                if on_ticket.insert(&l.item) {
                    entry.tickets += 1;
                }
            }
        }
        let mut items: Vec<AllDayItem> = counts.into_values().collect();
        items.sort_by(|a, b| b.quantity.cmp(&a.quantity).then(a.item.cmp(&b.item)));
        items
    }

    fn all_day_push(&self) -> Push {
        Push::AllDay {
            station: self.station.clone(),
            items: self.all_day.clone(),
        }
    }

    /// Sends the screens the all-day when it changed.
    fn tell_all_day(&mut self) {
        let counted = self.count_all_day();
        if *counted != *self.all_day {
            self.all_day = counted.into();
            let push = self.all_day_push();
            self.audience.tell(&push);
        }
    }

    /// Keeps a bump or a recall for speed of service, and counts it in the metrics when this
    /// replica writes the branch.
    fn time(&mut self, change: &OrderChange, at: DateTime<Utc>, counts: bool) {
        let Some(t) = change.ticket_id().and_then(|id| self.tickets.get(id)) else {
            return;
        };
        let (branch, station) = (self.branch_id.as_str(), self.station.as_str());
        match change {
            OrderChange::TicketBumped { .. } => {
                let cooked = (at - t.fired_at).to_std().unwrap_or_default();
                let late = cooked >= self.limits.late_after.of(t.source);
                if counts {
                    crate::metrics::ticket_bumped(branch, station, cooked, late);
                }
                self.bumps.push_back(Bumped {
                    at,
                    seconds: cooked.as_secs_f64(),
                    late,
                    items: items_of(t),
                });
            }
            OrderChange::TicketRecalled { .. } => {
                if counts {
                    crate::metrics::ticket_recalled(branch, station);
                }
                self.recalls.push_back(Recalled {
                    at,
                    items: items_of(t),
                });
            }
            _ => return,
        }
        let horizon = at - SPEED_HORIZON;
        while self.bumps.len() > SPEED_KEPT || self.bumps.front().is_some_and(|b| b.at < horizon) {
            self.bumps.pop_front();
        }
        while self.recalls.len() > SPEED_KEPT
            || self.recalls.front().is_some_and(|r| r.at < horizon)
        {
            self.recalls.pop_front();
        }
    }

    /// Reports tickets to `watcher` (the branch) when no screen acknowledges them within
    /// `after`.
    pub fn watched_by(mut self, watcher: Recipient<WatchReport>, limits: StationLimits) -> Self {
        self.watcher = Some(watcher);
        self.limits = limits;
        self
    }

    /// Reports every live ticket that waited too long for a screen, once each.
    fn watch(&mut self, ctx: &mut Context<Self>) {
        let Some(watcher) = self.watcher.clone() else {
            return;
        };
        let now = Instant::now();
        let after = self.limits.unseen_after;
        let due: Vec<(TicketId, Duration)> = self
            .waiting
            .iter()
            .map(|(id, since)| (*id, now.duration_since(*since)))
            .filter(|(_, waited)| *waited >= after)
            .collect();
        for (ticket, waited) in due {
            self.waiting.remove(&ticket);
            let waited_seconds = u32::try_from(waited.as_secs()).unwrap_or(u32::MAX);
            self.report(ctx, &watcher, ticket, Watch::Unseen { waited_seconds });
        }
    }

    fn report(
        &mut self,
        ctx: &mut Context<Self>,
        watcher: &Recipient<WatchReport>,
        ticket: TicketId,
        watch: Watch,
    ) {
        if !self.reporting.insert(ticket) {
            return;
        }
        let report = watcher.send(WatchReport {
            station: self.station.clone(),
            ticket,
            watch,
        });
        ctx.spawn(report.into_actor(self).map(move |answer, act, _| {
            act.reporting.remove(&ticket);
            match answer {
                Ok(Ok(())) => {
                    if matches!(watch, Watch::Unseen { .. }) {
                        crate::metrics::ticket_unseen(act.branch_id.as_str(), act.station.as_str());
                    }
                }
                // Not written here (another replica writes the branch and watches too), or
                // not now: the ticket waits again, and is reported again if still unseen.
                _ => {
                    let live = act
                        .tickets
                        .get(&ticket)
                        .is_some_and(|t| t.is_live() && !t.unseen);
                    if live && matches!(watch, Watch::Unseen { .. }) {
                        act.waiting.insert(ticket, Instant::now());
                    }
                }
            }
        }));
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
        let unseen = self
            .tickets
            .values()
            .filter(|t| t.is_live() && t.unseen)
            .count();
        crate::metrics::station_state(
            self.branch_id.as_str(),
            self.station.as_str(),
            live,
            age,
            self.audience.len(),
            unseen,
        );
    }

    fn close_order(&mut self, order: OrderId) {
        self.tickets.retain(|_, t| t.order_id != order);
        let tickets = &self.tickets;
        self.waiting.retain(|id, _| tickets.contains_key(id));
    }
}

impl Actor for StationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.record();
        ctx.run_interval(Duration::from_secs(1), |act, _| act.record());
        // A ticket is reported at most this long after its limit.
        ctx.run_interval(WATCH_EVERY, |act, ctx| act.watch(ctx));
    }
}

impl Handler<StationEvent> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: StationEvent, _: &mut Context<Self>) {
        let envelope = msg.envelope;
        self.position = envelope.position;
        let Event::Order(order_event) = &*envelope.event else {
            // An item 86'd or back: the screens are told.
            self.audience.deliver(&msg.published);
            return;
        };
        let change = &order_event.change;
        match change {
            OrderChange::OrdersMerged { tickets, .. } => {
                // The same tickets, of the order they were merged into now.
                for t in tickets.iter().filter(|t| t.station == self.station) {
                    self.tickets.insert(t.id, t.clone());
                }
            }
            OrderChange::CourseFired { tickets, .. } => {
                let age = (Utc::now() - envelope.at).to_std().unwrap_or_default();
                crate::lag::fanout().observe(age);
                let now = Instant::now();
                for t in tickets.iter().filter(|t| t.station == self.station) {
                    self.tickets.insert(t.id, t.clone());
                    self.waiting.insert(t.id, now);
                }
            }
            OrderChange::LineVoided { tickets, .. }
            | OrderChange::PriorityChanged { tickets, .. }
            | OrderChange::OrderMoved { tickets, .. } => {
                for r in tickets.iter().filter(|r| r.station == self.station) {
                    if let Some(t) = self.tickets.get_mut(&r.ticket_id) {
                        t.apply(change, envelope.at);
                    }
                }
            }
            OrderChange::OrderClosed {} => {
                self.close_order(order_event.order_id);
                self.tell_all_day();
                self.record();
                return;
            }
            OrderChange::TicketBumped { ticket_id, .. } => {
                self.time(change, envelope.at, msg.counts);
                if let Some(t) = self.tickets.get_mut(ticket_id) {
                    t.apply(change, envelope.at);
                }
            }
            OrderChange::TicketRecalled { ticket_id, .. } => {
                self.time(change, envelope.at, msg.counts);
                if let Some(t) = self.tickets.get_mut(ticket_id) {
                    t.apply(change, envelope.at);
                }
            }
            other => {
                if let Some(t) = other.ticket_id().and_then(|id| self.tickets.get_mut(id)) {
                    t.apply(change, envelope.at);
                }
            }
        }
        // A ticket recalled is on the screens again; one off them, or reported, no longer
        // waits for an acknowledgement.
        if let OrderChange::TicketRecalled { ticket_id, .. } = change {
            if self.tickets.contains_key(ticket_id) {
                self.waiting.insert(*ticket_id, Instant::now());
            }
        } else if let Some(id) = change.ticket_id() {
            let waits = self
                .tickets
                .get(id)
                .is_some_and(|t| t.is_live() && !t.unseen);
            if !waits {
                self.waiting.remove(id);
            }
        }
        if let OrderChange::LineVoided { tickets, .. } = change {
            for r in tickets {
                if self.tickets.get(&r.ticket_id).is_some_and(|t| !t.is_live()) {
                    self.waiting.remove(&r.ticket_id);
                }
            }
        }
        self.audience.deliver(&msg.published);
        self.tell_all_day();
        self.record();
    }
}

impl Handler<SubscribeStation> for StationActor {
    type Result = ();

    fn handle(&mut self, msg: SubscribeStation, ctx: &mut Context<Self>) {
        let topic = Topic::Station(self.station.clone());
        let snapshot = self.snapshot();
        let screen = msg.subscriber.clone();
        let joined = self
            .audience
            .join(msg.subscriber, topic, msg.after, self.position, || snapshot);
        // A screen that joins gets the all-day after its snapshot or what it missed.
        if joined == Joined::Live {
            screen.push(self.all_day_push());
            if !self.stock.is_empty() {
                screen.push(Push::Stock {
                    items: self.stock.clone(),
                });
            }
        }
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
                screen.push(act.all_day_push());
                if !act.stock.is_empty() {
                    screen.push(Push::Stock {
                        items: act.stock.clone(),
                    });
                }
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

impl Handler<RecentlyBumped> for StationActor {
    type Result = MessageResult<RecentlyBumped>;

    fn handle(&mut self, msg: RecentlyBumped, _: &mut Context<Self>) -> Self::Result {
        let since = Utc::now() - chrono::Duration::from_std(msg.0).unwrap_or_default();
        let mut bumped: Vec<Ticket> = self
            .tickets
            .values()
            .filter(|t| {
                t.status == crate::order::TicketStatus::Bumped
                    && t.bumped_at.is_some_and(|b| b >= since)
            })
            .cloned()
            .collect();
        bumped.sort_by_key(|t| std::cmp::Reverse(t.bumped_at));
        MessageResult(bumped)
    }
}

impl Handler<Seen> for StationActor {
    type Result = ();

    /// A screen shows these tickets: they stop waiting, and one reported unseen is reported
    /// seen. Tickets not live here (bumped meanwhile, or not this station's) are ignored.
    fn handle(&mut self, msg: Seen, ctx: &mut Context<Self>) {
        for ticket in msg.0 {
            if self.waiting.remove(&ticket).is_some() {
                continue;
            }
            let escalated = self
                .tickets
                .get(&ticket)
                .is_some_and(|t| t.is_live() && t.unseen);
            if let (true, Some(watcher)) = (escalated, self.watcher.clone()) {
                self.report(ctx, &watcher, ticket, Watch::Seen);
            }
        }
    }
}
