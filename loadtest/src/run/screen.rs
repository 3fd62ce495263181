//! A kitchen screen: receives its station's tickets, acknowledges (`seen`) every ticket it
//! shows, and, for the tickets it is picked for, starts them and bumps them after their prep
//! time (at expo, bumps a fire on `expo_ready` once its waiter and kitchen let it go); a
//! ticket the plan recalls is recalled once bumped, and bumped again. It owns what one screen
//! saw, shows and is doing, and the commands it sent that are not answered yet: after a
//! reconnect it resends those with the same ids and acknowledges again every ticket it shows.
//! Every ticket, void and recall it receives is counted per screen, for the delivery check.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, watch, Notify};
use tokio_tungstenite::tungstenite::Message;

use super::link::{Dedupe, Ended, Link};
use super::{FireKey, Shared, TicketTrack};
use crate::proto::{self, EventBody, Frame, Socket, TicketBody};

/// How long a screen gathers the tickets it shows before acknowledging them in one `seen`
/// frame: far below the engine's `unseen_after_seconds`, and few frames.
const SEEN_EVERY: Duration = Duration::from_millis(250);

/// The most tickets one `seen` frame names (the engine takes 500).
const SEEN_MAX: usize = 500;

/// Which screen a socket is.
#[derive(Debug, Clone)]
pub(super) struct ScreenId {
    pub(super) branch: usize,
    /// Index in the layout; expo is `cooking.len()`.
    pub(super) station: usize,
    pub(super) index: usize,
}

/// What a delivery to a screen was about, for the delivery check.
#[derive(Clone, Copy)]
enum Delivered {
    /// `line_voided` naming the ticket.
    Void,
    /// `ticket_voided`.
    Voided,
    /// `ticket_recalled`.
    Recall,
}

impl Shared {
    /// A ticket reached one screen of its station (first time on that screen), a screen on
    /// `replica`.
    fn ticket_arrived(
        &self,
        screen: &ScreenId,
        replica: usize,
        ticket: &TicketBody,
        order_id: &str,
        fire_no: u32,
        now: Instant,
    ) {
        let k = self.args.screens_per_station as u32;
        let key = (order_id.to_owned(), fire_no);
        if self.replicated() {
            // Each screen's own arrival, by whether its replica owns the branch.
            let sent = self.fires.lock().expect("lock").get(&key).map(|f| f.sent);
            if let Some(sent) = sent {
                self.rec.screen_path(
                    self.owns(replica, screen.branch),
                    now.saturating_duration_since(sent),
                );
            }
        }
        let complete = {
            let mut tickets = self.tickets.lock().expect("lock");
            let t = tickets.entry(ticket.id.clone()).or_insert_with(|| {
                TicketTrack::new(order_id.to_owned(), fire_no, screen.branch, screen.station)
            });
            t.screens |= 1 << screen.index;
            match t.seen_lines {
                None => t.seen_lines = Some(ticket.lines.len()),
                Some(n) if n != ticket.lines.len() => t.line_mismatch = true,
                Some(_) => {}
            }
            if t.screens.count_ones() == k && !t.complete {
                t.complete = true;
                t.completed_at = Some(now);
                true
            } else {
                false
            }
        };
        if !complete {
            return;
        }
        // The fire, then the ticket (the order the waiter takes them in when the fire is
        // answered): a fire not known yet (a one-call order still unanswered) has the latency
        // recorded by its waiter.
        let fires = self.fires.lock().expect("lock");
        let Some(f) = fires.get(&key) else {
            return;
        };
        let mut tickets = self.tickets.lock().expect("lock");
        let Some(t) = tickets.get_mut(&ticket.id) else {
            return;
        };
        if t.latency_recorded {
            return;
        }
        t.latency_recorded = true;
        let after_ack = f
            .acked
            .map_or(Duration::ZERO, |a| now.saturating_duration_since(a));
        self.rec
            .fire_to_screen(now.saturating_duration_since(f.sent), after_ack);
        if f.acked.is_none_or(|a| a > now) {
            self.counts
                .screens_before_ack
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A void or a recall of a ticket reached one screen of its station; a second one from
    /// another event is counted as duplicated (`dedupe`: false after a reset snapshot, which
    /// may show again what the screen had).
    fn delivered(&self, ticket: &str, screen: usize, what: Delivered, dedupe: bool) {
        let mut tickets = self.tickets.lock().expect("lock");
        let Some(t) = tickets.get_mut(ticket) else {
            return;
        };
        let bits = match what {
            Delivered::Void => &mut t.void_screens,
            Delivered::Voided => &mut t.voided_screens,
            Delivered::Recall => &mut t.recall_screens,
        };
        let bit = 1u64 << screen;
        if *bits & bit != 0 && dedupe {
            drop(tickets);
            let (counter, what) = match what {
                Delivered::Recall => (&self.counts.recalls_duplicated, "its recall"),
                Delivered::Void | Delivered::Voided => (&self.counts.voids_duplicated, "its void"),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.violation(format!(
                "{what} of ticket {ticket} reached screen #{screen} of its station twice, in different events"
            ));
            return;
        }
        *bits |= bit;
    }

    /// Expo must wait before sending this fire: a void or a recall of it is under way.
    pub(super) fn hold(&self, key: &FireKey) {
        *self
            .holds
            .lock()
            .expect("lock")
            .entry(key.clone())
            .or_default() += 1;
    }

    /// One thing expo waited for on this fire is done: when none is left, the branch's expo
    /// screens are told.
    pub(super) fn release(&self, key: &FireKey, branch: usize) {
        {
            let mut holds = self.holds.lock().expect("lock");
            match holds.get_mut(key) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    return;
                }
                Some(_) => {
                    holds.remove(key);
                }
                None => return,
            }
        }
        self.tell_expo(key, branch);
    }

    /// Tells the branch's expo screens that a fire they may be waiting on can go now.
    pub(super) fn tell_expo(&self, key: &FireKey, branch: usize) {
        let screens = self.expo_screens.lock().expect("lock");
        for tx in screens.get(branch).into_iter().flatten() {
            let _ = tx.send(ScreenCmd::Released(key.clone()));
        }
    }

    /// Whether expo may send a fire: its waiter knows it, and nothing holds it back.
    fn may_send(&self, key: &FireKey) -> bool {
        self.fires.lock().expect("lock").contains_key(key)
            && !self.holds.lock().expect("lock").contains_key(key)
    }

    /// The recall planned on a fire is over (bumped again, or refused): expo may go on.
    fn recall_done(&self, key: &FireKey, branch: usize) {
        if self.recalls.lock().expect("lock").remove(key).is_some() {
            self.release(key, branch);
        }
    }
}

/// What a screen is told, by its own timers and by the rest of the run.
pub(super) enum ScreenCmd {
    /// A ticket's prep time is over.
    BumpDue(String),
    /// A command the journal could not take (the server restarting), or that found no owner
    /// of its branch (a replica killed), is due again.
    ResendDue(String),
    /// At expo: a fire that was held back (or not known to its waiter yet) may go.
    Released(FireKey),
}

/// What a screen is doing with a ticket it is picked for.
enum Acting {
    /// Start sent; bump due when true.
    Starting {
        bump_due: bool,
    },
    Started,
    Bumping,
    /// Bumped, and recalled as the plan says: the recall is sent.
    Recalling,
    /// Recalled: cooking again until the bump is due.
    Recooking,
    /// Bumped again after the recall.
    Rebumping,
}

/// A command sent and not answered yet; resent with the same id after a reconnect.
struct Pending {
    /// The frame's `type`: `start`, `bump` or `recall`.
    action: &'static str,
    /// What it is measured as: `start`, `bump`, `recall`, `rebump` or `expo_bump`.
    kind: &'static str,
    /// The first send.
    sent: Instant,
    /// The last send (a resend's): a failover counts only answers to sends after the kill.
    last_sent: Instant,
    ticket: String,
    fire: Option<FireKey>,
    resent: bool,
}

/// An expo ticket, as expo's screen follows it.
struct ExpoTicket {
    ticket: String,
    /// Its last `expo_ready` came after its last `expo_waiting`.
    ready: bool,
}

/// A kitchen screen's state, kept across reconnects: what it saw and shows, and what it is
/// doing.
struct Screen {
    shared: Arc<Shared>,
    me: ScreenId,
    /// The replica its socket is on now.
    replica: usize,
    branch: String,
    station_name: String,
    is_expo: bool,
    tx: mpsc::UnboundedSender<ScreenCmd>,
    dedupe: Dedupe,
    /// Every ticket it received.
    seen: HashSet<String>,
    /// The live tickets on it now (fired or recalled, not bumped or voided since).
    shown: HashSet<String>,
    /// Tickets to acknowledge, and when the `seen` frame goes.
    to_ack: Vec<String>,
    ack_due: Option<Instant>,
    acting: HashMap<String, Acting>,
    /// The fire of each ticket it acts on.
    work: HashMap<String, FireKey>,
    /// Tickets it recalled (once each).
    recalled: HashSet<String>,
    /// At expo: the fires whose expo ticket it follows, and the expo tickets it sent.
    expo: HashMap<FireKey, ExpoTicket>,
    expo_sent: HashSet<String>,
    pending: HashMap<String, Pending>,
    next_id: u64,
    prefix: String,
    fallback_prep: Duration,
    /// Commands to send: (action, kind, ticket, fire).
    outbox: Vec<(&'static str, &'static str, String, Option<FireKey>)>,
    /// Frames to send that are not new commands: commands due again, with their ids, and
    /// `seen` frames.
    resend: Vec<Message>,
    /// The highest position seen on the station: a reconnect resumes after it.
    position: u64,
}

impl Screen {
    /// The screen as the report names it.
    fn who(&self) -> String {
        format!(
            "screen {}/{}#{}",
            self.branch, self.station_name, self.me.index
        )
    }

    /// Whether this screen is the one of its station to act on a ticket, and is not acting on
    /// it yet.
    fn picked(&self, ticket: &str) -> bool {
        proto::pick(ticket, self.shared.args.screens_per_station) == self.me.index
            && !self.acting.contains_key(ticket)
    }

    /// The prep time of a station's part of a fire.
    fn prep(&self, order_id: &str, fire_no: u32) -> Duration {
        self.shared
            .plans
            .lock()
            .expect("lock")
            .get(order_id)
            .and_then(|p| p.prep(fire_no, self.me.station))
            .unwrap_or(self.fallback_prep)
    }

    /// A bump due after `prep`.
    fn bump_after(&self, ticket: &str, prep: Duration) {
        let (tx, ticket) = (self.tx.clone(), ticket.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(prep).await;
            let _ = tx.send(ScreenCmd::BumpDue(ticket));
        });
    }

    /// Cooks a ticket this screen is picked for: start it (unless it is already started),
    /// and bump it after its prep time.
    fn cook(&mut self, ticket: &str, order_id: &str, fire_no: u32, started: bool) {
        let prep = self.prep(order_id, fire_no);
        self.work
            .insert(ticket.to_owned(), (order_id.to_owned(), fire_no));
        if started {
            self.acting.insert(ticket.to_owned(), Acting::Started);
        } else {
            self.acting
                .insert(ticket.to_owned(), Acting::Starting { bump_due: false });
            self.outbox
                .push(("start", "start", ticket.to_owned(), None));
        }
        self.bump_after(ticket, prep);
    }

    /// A ticket is on this screen: acknowledged with the next `seen` frame.
    fn show(&mut self, ticket: &str) {
        self.shown.insert(ticket.to_owned());
        self.ack(ticket);
    }

    /// Acknowledges a ticket with the next `seen` frame.
    fn ack(&mut self, ticket: &str) {
        self.to_ack.push(ticket.to_owned());
        if self.ack_due.is_none() {
            self.ack_due = Some(Instant::now() + SEEN_EVERY);
        }
    }

    /// Every ticket it shows, acknowledged at once (after a subscribe or a resume: the engine
    /// keeps acknowledgements in memory only).
    fn ack_all(&mut self) {
        self.to_ack = self.shown.iter().cloned().collect();
        self.ack_due = Some(Instant::now());
        self.flush_acks();
    }

    /// The `seen` frames of the tickets gathered (those bumped meanwhile too: they were
    /// drawn, and the engine ignores a ticket no longer live).
    fn flush_acks(&mut self) {
        self.ack_due = None;
        let mut tickets: Vec<String> = std::mem::take(&mut self.to_ack);
        tickets.sort_unstable();
        tickets.dedup();
        let c = &self.shared.counts;
        for chunk in tickets.chunks(SEEN_MAX) {
            c.seen_frames.fetch_add(1, Ordering::Relaxed);
            c.seen_tickets
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            self.resend.push(Message::text(
                json!({
                    "type": "seen",
                    "branch": self.branch,
                    "station": self.station_name,
                    "tickets": chunk,
                })
                .to_string(),
            ));
        }
    }

    /// At expo: sends a fire whose cooking parts are all bumped, once nothing holds it back
    /// and its waiter knows it (this screen being the one picked for it).
    fn try_expo(&mut self, key: &FireKey) {
        let Some(e) = self.expo.get(key) else {
            return;
        };
        if !e.ready || self.expo_sent.contains(&e.ticket) || !self.picked(&e.ticket) {
            return;
        }
        if !self.shared.may_send(key) {
            return;
        }
        let ticket = e.ticket.clone();
        self.acting.insert(ticket.clone(), Acting::Bumping);
        if let Some(f) = self.shared.fires.lock().expect("lock").get_mut(key) {
            f.expo_bump_sent = Some(Instant::now());
        }
        self.outbox
            .push(("bump", "expo_bump", ticket, Some(key.clone())));
    }

    /// At expo: a fire's state, from `expo_ready` (true) or `expo_waiting` (false).
    fn expo_state(&mut self, ticket: &str, key: FireKey, ready: bool) {
        self.expo.insert(
            key.clone(),
            ExpoTicket {
                ticket: ticket.to_owned(),
                ready,
            },
        );
        if ready {
            self.try_expo(&key);
        }
    }

    /// A timer came due, or the run told the screen something.
    fn command(&mut self, cmd: ScreenCmd) {
        match cmd {
            ScreenCmd::BumpDue(ticket) => match self.acting.get_mut(&ticket) {
                Some(Acting::Starting { bump_due }) => *bump_due = true,
                Some(state @ Acting::Started) => {
                    *state = Acting::Bumping;
                    self.outbox.push(("bump", "bump", ticket, None));
                }
                Some(state @ Acting::Recooking) => {
                    *state = Acting::Rebumping;
                    self.outbox.push(("bump", "rebump", ticket, None));
                }
                _ => {}
            },
            ScreenCmd::ResendDue(id) => {
                if let Some(p) = self.pending.get_mut(&id) {
                    p.resent = true;
                    p.last_sent = Instant::now();
                    self.shared
                        .counts
                        .ws_resends
                        .fetch_add(1, Ordering::Relaxed);
                    let frame =
                        command_frame(p.action, &id, &self.branch, &self.station_name, &p.ticket);
                    self.resend.push(frame);
                }
            }
            ScreenCmd::Released(key) => self.try_expo(&key),
        }
    }

    /// A frame from the server: an event on the station, a reset snapshot, or the answer to a
    /// command. Others (the station's `all_day`, `subscribed`) are not the screen's business.
    fn frame(&mut self, text: &str, now: Instant) {
        self.shared.rec.frame();
        let frame: Frame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                self.shared.rec.incident("unreadable_frame", || {
                    format!("{e}: {}", text.chars().take(200).collect::<String>())
                });
                return;
            }
        };
        match frame.kind.as_str() {
            "event" => self.event(frame, now),
            "snapshot" if frame.reset => self.reset(frame, now),
            "ack" | "error" => self.answer(&frame, now),
            _ => {}
        }
    }

    /// An event on the station, new to this screen.
    fn event(&mut self, mut frame: Frame, now: Instant) {
        if !self
            .shared
            .fresh_event(&frame, &mut self.position, &mut self.dedupe)
        {
            return;
        }
        let Some(event) = frame.event.take() else {
            return;
        };
        let mine = event.station.as_deref() == Some(self.station_name.as_str());
        let ticket = event.ticket_id.clone().unwrap_or_default();
        match event.kind.as_str() {
            "course_fired" => self.course_fired(&frame, &event, now),
            "ticket_bumped" if mine => {
                self.shown.remove(&ticket);
            }
            "ticket_recalled" if mine => {
                self.show(&ticket);
                self.shared
                    .delivered(&ticket, self.me.index, Delivered::Recall, true);
            }
            "ticket_voided" if mine => {
                self.shown.remove(&ticket);
                self.shared
                    .delivered(&ticket, self.me.index, Delivered::Voided, true);
                // Nothing left to cook: the screen lets it go (a command already sent may be
                // refused, as expected).
                if !self.is_expo {
                    self.acting.remove(&ticket);
                    self.work.remove(&ticket);
                }
            }
            "line_voided" => {
                let station = self.station_name.clone();
                for t in event.tickets.iter().filter(|t| t.station == station) {
                    self.shared
                        .delivered(&t.id, self.me.index, Delivered::Void, true);
                }
            }
            "ticket_unseen" => {
                self.shared
                    .counts
                    .unseen_notices
                    .fetch_add(1, Ordering::Relaxed);
                // A ticket it shows was escalated: acknowledged again.
                if self.shown.contains(&ticket) {
                    self.ack(&ticket);
                }
            }
            "expo_ready" | "expo_waiting" if self.is_expo => {
                let (Some(order_id), Some(fire_no)) = (event.order_id, event.fire_no) else {
                    return;
                };
                self.expo_state(&ticket, (order_id, fire_no), event.kind == "expo_ready");
            }
            _ => {}
        }
    }

    /// A fire's tickets for this station arrive; the screen shows them, and cooks those it is
    /// picked for.
    fn course_fired(&mut self, frame: &Frame, event: &EventBody, now: Instant) {
        let shared = self.shared.clone();
        let order_id = event.order_id.clone().unwrap_or_default();
        let fire_no = event.fire_no.unwrap_or(0);
        let station = self.station_name.clone();
        for t in event.tickets.iter().filter(|t| t.station == station) {
            if !self.seen.insert(t.id.clone()) {
                shared
                    .counts
                    .tickets_duplicated
                    .fetch_add(1, Ordering::Relaxed);
                shared.violation(format!(
                    "ticket {} reached {} twice, in different events (last {:?}#{:?})",
                    t.id,
                    self.who(),
                    frame.stream,
                    frame.seq
                ));
                continue;
            }
            shared.ticket_arrived(&self.me, self.replica, t, &order_id, fire_no, now);
            self.show(&t.id);
            if !self.is_expo && self.picked(&t.id) {
                self.cook(&t.id, &order_id, fire_no, false);
            }
        }
    }

    /// A resume the server could not serve: the station's live tickets replace what the screen
    /// had. Those it never saw arrive now; a void or a recall they show counts as delivered;
    /// those it is picked for and not working on are taken up where they are.
    fn reset(&mut self, frame: Frame, now: Instant) {
        let shared = self.shared.clone();
        shared.counts.resets.fetch_add(1, Ordering::Relaxed);
        let Some(snapshot) = frame.snapshot else {
            return;
        };
        self.position = snapshot.position;
        let station = self.station_name.clone();
        let before = std::mem::take(&mut self.shown);
        let me = self.me.index;
        for t in snapshot.tickets.iter().filter(|t| t.station == station) {
            if self.seen.insert(t.id.clone()) {
                shared.ticket_arrived(&self.me, self.replica, t, &t.order_id, t.fire_no, now);
            } else if !before.contains(&t.id) {
                // Off the screen before, live again: recalled meanwhile.
                shared.delivered(&t.id, me, Delivered::Recall, false);
            }
            if t.lines.iter().any(|l| l.voided) {
                shared.delivered(&t.id, me, Delivered::Void, false);
            }
            self.shown.insert(t.id.clone());
            if !self.picked(&t.id) {
                continue;
            }
            let key = (t.order_id.clone(), t.fire_no);
            match (self.is_expo, t.status.as_str()) {
                (true, "new" | "started") => self.expo_state(&t.id, key, t.parts_ready),
                (false, "new") => self.cook(&t.id, &t.order_id, t.fire_no, false),
                (false, "started") => self.cook(&t.id, &t.order_id, t.fire_no, true),
                _ => {}
            }
        }
        // Off the screen now: bumped or voided meanwhile.
        for gone in before.iter().filter(|t| !self.shown.contains(*t)) {
            shared.delivered(gone, me, Delivered::Voided, false);
        }
        self.ack_all();
    }

    /// The answer to a command, by its id: an ack, or an error.
    fn answer(&mut self, frame: &Frame, now: Instant) {
        let Some(id) = frame.id.as_ref() else {
            // An error that names no command of ours (a refused frame, a `seen` among them):
            // it counts as a failed command; a command it refused stays unanswered.
            if frame.kind == "error" {
                self.shared
                    .rec
                    .error("ws_frame", frame.code.as_deref().unwrap_or("error"), || {
                        format!(
                            "{}: {} (the error names no command id)",
                            self.who(),
                            frame.message.clone().unwrap_or_default()
                        )
                    });
            }
            return;
        };
        // A command the journal could not take while the server restarts goes again, same id,
        // after a pause; so does one that found no owner of its branch (with replicas: while
        // a branch changes hands, or its owner was killed).
        let again = match frame.code.as_deref() {
            Some("journal_unavailable") => self.shared.chaos(),
            Some("owner_unavailable") => self.shared.replicated(),
            _ => false,
        };
        if frame.kind == "error" && again && self.pending.contains_key(id) {
            let (tx, id) = (self.tx.clone(), id.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = tx.send(ScreenCmd::ResendDue(id));
            });
            return;
        }
        let Some(p) = self.pending.remove(id) else {
            if frame.kind == "error" {
                self.shared
                    .rec
                    .error("ws_frame", frame.code.as_deref().unwrap_or("error"), || {
                        format!(
                            "{}: {} (answer to no command of this screen)",
                            self.who(),
                            frame.message.clone().unwrap_or_default()
                        )
                    });
            }
            return;
        };
        if p.resent {
            self.shared
                .counts
                .ws_retried
                .fetch_add(1, Ordering::Relaxed);
        }
        if frame.kind == "ack" {
            self.acked(p, now);
        } else {
            self.refused(p, frame);
        }
    }

    /// The station this screen recalls a ticket at, when the plan recalls one of its fire.
    fn recall_planned(&self, ticket: &str) -> Option<FireKey> {
        let key = self.work.get(ticket)?;
        let station = *self.shared.recalls.lock().expect("lock").get(key)?;
        (station == self.me.station && !self.recalled.contains(ticket)).then(|| key.clone())
    }

    /// A command acknowledged: measured, and its ticket moves on (a start whose bump came due
    /// meanwhile is followed by the bump; a bump the plan recalls by the recall; a recall by
    /// cooking again).
    fn acked(&mut self, p: Pending, now: Instant) {
        let shared = self.shared.clone();
        shared.rec.ack(p.kind, now - p.sent);
        shared.answered(self.me.branch, p.last_sent);
        if p.resent {
            shared.rec.retried(now - p.sent);
        }
        match p.kind {
            "start" => {
                if let Some(state) = self.acting.get_mut(&p.ticket) {
                    if matches!(state, Acting::Starting { bump_due: true }) {
                        *state = Acting::Bumping;
                        self.outbox.push(("bump", "bump", p.ticket.clone(), None));
                    } else {
                        *state = Acting::Started;
                    }
                }
            }
            "bump" if self.recall_planned(&p.ticket).is_some() => {
                self.recalled.insert(p.ticket.clone());
                self.acting.insert(p.ticket.clone(), Acting::Recalling);
                self.outbox
                    .push(("recall", "recall", p.ticket.clone(), None));
            }
            "recall" => {
                shared.counts.recalls.fetch_add(1, Ordering::Relaxed);
                if let Some(t) = shared.tickets.lock().expect("lock").get_mut(&p.ticket) {
                    t.recall_acked = true;
                }
                self.acting.insert(p.ticket.clone(), Acting::Recooking);
                let prep = self
                    .work
                    .get(&p.ticket)
                    .map_or(self.fallback_prep, |(o, f)| self.prep(o, *f));
                self.bump_after(&p.ticket, prep / 2);
            }
            "rebump" => {
                shared.counts.rebumps.fetch_add(1, Ordering::Relaxed);
                self.acting.remove(&p.ticket);
                if let Some(key) = self.work.remove(&p.ticket) {
                    shared.recall_done(&key, self.me.branch);
                }
            }
            "expo_bump" => {
                if let Some(key) = &p.fire {
                    if let Some(f) = shared.fires.lock().expect("lock").get_mut(key) {
                        f.expo_acked = true;
                    }
                    self.expo.remove(key);
                }
                self.expo_sent.insert(p.ticket.clone());
                self.acting.remove(&p.ticket);
            }
            _ => {
                self.acting.remove(&p.ticket);
                self.work.remove(&p.ticket);
            }
        }
    }

    /// A command refused: a failed command (or, on a ticket its waiter was voiding a line of,
    /// an expected refusal), and the screen lets its ticket go; expo no longer waits for a
    /// recall of it.
    fn refused(&mut self, p: Pending, frame: &Frame) {
        let shared = self.shared.clone();
        let code = frame.code.clone().unwrap_or_else(|| "error".into());
        let order = self
            .work
            .get(&p.ticket)
            .map(|(o, _)| o.clone())
            .or_else(|| {
                shared
                    .tickets
                    .lock()
                    .expect("lock")
                    .get(&p.ticket)
                    .map(|t| t.order_id.clone())
            });
        let voided_under = matches!(code.as_str(), "invalid_transition" | "unknown_ticket")
            && order.is_some_and(|o| shared.voiding.lock().expect("lock").contains(&o));
        if voided_under {
            shared.rec.refused(p.kind, &code);
        } else {
            shared.rec.error(p.kind, &code, || {
                format!(
                    "ticket {} at {}: {}",
                    p.ticket,
                    self.who(),
                    frame.message.clone().unwrap_or_default()
                )
            });
        }
        self.acting.remove(&p.ticket);
        if let Some(key) = self.work.remove(&p.ticket) {
            shared.recall_done(&key, self.me.branch);
        }
    }

    /// The frames to send now: commands due again and `seen` frames, then new commands (each
    /// gets its id and becomes pending).
    fn outgoing(&mut self) -> Vec<Message> {
        if self.ack_due.is_some_and(|due| due <= Instant::now()) {
            self.flush_acks();
        }
        let mut frames: Vec<Message> = self.resend.drain(..).collect();
        for (action, kind, ticket, fire) in std::mem::take(&mut self.outbox) {
            self.next_id += 1;
            let id = format!("{}-{}", self.prefix, self.next_id);
            frames.push(command_frame(
                action,
                &id,
                &self.branch,
                &self.station_name,
                &ticket,
            ));
            self.pending.insert(
                id,
                Pending {
                    action,
                    kind,
                    sent: Instant::now(),
                    last_sent: Instant::now(),
                    ticket,
                    fire,
                    resent: false,
                },
            );
        }
        frames
    }

    /// After a reconnect: every command still unanswered goes again with its id (one the
    /// server had carried out before the socket dropped is answered from the journal), and
    /// every ticket on the screen is acknowledged again.
    fn resend_pending(&mut self) {
        for (id, p) in &mut self.pending {
            p.resent = true;
            p.last_sent = Instant::now();
            self.shared
                .counts
                .ws_resends
                .fetch_add(1, Ordering::Relaxed);
            self.resend.push(command_frame(
                p.action,
                id,
                &self.branch,
                &self.station_name,
                &p.ticket,
            ));
        }
        self.ack_all();
    }
}

/// A `start`, `bump` or `recall` command frame.
fn command_frame(action: &str, id: &str, branch: &str, station: &str, ticket: &str) -> Message {
    Message::text(
        json!({
            "type": action,
            "id": id,
            "branch": branch,
            "station": station,
            "ticket": ticket,
        })
        .to_string(),
    )
}

/// Waits until `at`, or for ever without one.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// A kitchen screen: receives its station's tickets, acknowledges those it shows and, for the
/// tickets it is picked for, starts them, bumps them after their prep time (or, at expo,
/// bumps on `expo_ready`). When its socket closes (or it is told to redial: it closes it
/// itself) it reconnects, resumes after the last position it saw, resends its unanswered
/// commands and acknowledges its tickets again.
pub(super) async fn screen_task(
    shared: Arc<Shared>,
    me: ScreenId,
    link: Link,
    (ws, position, shown): (Socket, u64, Vec<String>),
    redial: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let layout = &shared.layout;
    let station_name: String = layout
        .stations()
        .nth(me.station)
        .unwrap_or_default()
        .to_owned();
    let (tx, mut rx) = mpsc::unbounded_channel::<ScreenCmd>();
    let is_expo = me.station == layout.cooking.len();
    if is_expo {
        if let Some(screens) = shared.expo_screens.lock().expect("lock").get_mut(me.branch) {
            screens.push(tx.clone());
        }
    }
    let mut screen = Screen {
        is_expo,
        prefix: format!(
            "{}-{}-{}-{}",
            shared.run_tag, me.branch, me.station, me.index
        ),
        fallback_prep: Duration::from_millis(u64::from(
            (shared.args.prep_min_ms + shared.args.prep_max_ms) / 2,
        )),
        shared: shared.clone(),
        me,
        replica: link.home,
        branch: link.branch.clone(),
        station_name,
        tx,
        dedupe: Dedupe::default(),
        // What the first snapshot showed (tickets from before the run): shown, not cooked.
        seen: shown.iter().cloned().collect(),
        shown: shown.into_iter().collect(),
        to_ack: Vec::new(),
        ack_due: None,
        acting: HashMap::new(),
        work: HashMap::new(),
        recalled: HashSet::new(),
        expo: HashMap::new(),
        expo_sent: HashSet::new(),
        pending: HashMap::new(),
        next_id: 0,
        outbox: Vec::new(),
        resend: Vec::new(),
        position,
    };
    screen.ack_all();
    let mut ws = ws;
    let mut connected_at = shared.kills_of(screen.replica);
    loop {
        let (mut sink, mut stream) = ws.split();
        for frame in screen.outgoing() {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let ended = loop {
            tokio::select! {
                _ = stop.changed() => break Ended::Stopped,
                () = redial.notified() => break Ended::Redial,
                Some(cmd) = rx.recv() => screen.command(cmd),
                () = until(screen.ack_due) => screen.flush_acks(),
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => screen.frame(&text, Instant::now()),
                    Some(Ok(Message::Close(close))) => break Ended::Lost(format!("{close:?}")),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Ended::Lost(e.to_string()),
                    None => break Ended::Lost("stream ended".to_owned()),
                },
            }
            for frame in screen.outgoing() {
                // What does not go out stays pending and goes after the reconnect.
                if sink.send(frame).await.is_err() {
                    break;
                }
            }
        };
        let on = (screen.replica, connected_at);
        if !shared
            .after_socket(ended, &mut sink, &stop, on, &screen.who())
            .await
        {
            break;
        }
        let Some((new, on, kills)) = shared.reconnect(&link, screen.position, &mut stop).await
        else {
            break;
        };
        (ws, screen.replica, connected_at) = (new, on, kills);
        screen.resend_pending();
    }
}
