//! A kitchen screen: receives its station's tickets and, for the tickets it is picked for,
//! starts them and bumps them after their prep time (at expo, bumps a fire on `expo_ready`).
//! It owns what one screen saw and is doing, and the commands it sent that are not answered
//! yet: after a reconnect it resends those with the same ids. Every ticket it receives is
//! counted per screen, for the delivery check.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::link::{Dedupe, Link};
use super::{FireKey, Shared, TicketTrack};
use crate::proto::{self, EventBody, Frame, Socket, TicketBody};

/// Which screen a socket is.
#[derive(Debug, Clone)]
pub(super) struct ScreenId {
    pub(super) branch: usize,
    /// Index in the layout; expo is `cooking.len()`.
    pub(super) station: usize,
    pub(super) index: usize,
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
        if self.replicated() {
            // Each screen's own arrival, by whether its replica owns the branch.
            let sent = self
                .fires
                .lock()
                .expect("lock")
                .get(&(order_id.to_owned(), fire_no))
                .map(|f| f.sent);
            if let Some(sent) = sent {
                self.rec.screen_path(
                    self.owns(replica, screen.branch),
                    now.saturating_duration_since(sent),
                );
            }
        }
        let complete = {
            let mut tickets = self.tickets.lock().expect("lock");
            let t = tickets
                .entry(ticket.id.clone())
                .or_insert_with(|| TicketTrack {
                    order_id: order_id.to_owned(),
                    fire_no,
                    branch: screen.branch,
                    station: screen.station,
                    confirmed_lines: None,
                    seen_lines: None,
                    line_mismatch: false,
                    screens: 0,
                    complete: false,
                });
            t.screens |= 1 << screen.index;
            match t.seen_lines {
                None => t.seen_lines = Some(ticket.lines.len()),
                Some(n) if n != ticket.lines.len() => t.line_mismatch = true,
                Some(_) => {}
            }
            if t.screens.count_ones() == k && !t.complete {
                t.complete = true;
                true
            } else {
                false
            }
        };
        if complete {
            let fires = self.fires.lock().expect("lock");
            if let Some(f) = fires.get(&(order_id.to_owned(), fire_no)) {
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
        }
    }
}

/// A screen's own timers, come due.
enum ScreenCmd {
    /// A ticket's prep time is over.
    BumpDue(String),
    /// A command the journal could not take (the server restarting), or that found no owner
    /// of its branch (a replica killed), is due again.
    ResendDue(String),
}

/// What a screen is doing with a ticket it is picked for.
enum Acting {
    /// Start sent; bump due when true.
    Starting {
        bump_due: bool,
    },
    Started,
    Bumping,
}

/// A command sent and not answered yet; resent with the same id after a reconnect.
struct Pending {
    /// The frame's `type`: `start` or `bump`.
    action: &'static str,
    /// What it is measured as: `start`, `bump` or `expo_bump`.
    kind: &'static str,
    /// The first send.
    sent: Instant,
    /// The last send (a resend's): a failover counts only answers to sends after the kill.
    last_sent: Instant,
    ticket: String,
    fire: Option<FireKey>,
    resent: bool,
}

/// A kitchen screen's state, kept across reconnects: what it saw and what it is doing.
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
    seen: HashSet<String>,
    acting: HashMap<String, Acting>,
    pending: HashMap<String, Pending>,
    next_id: u64,
    prefix: String,
    fallback_prep: Duration,
    /// Commands to send: (action, kind, ticket, fire).
    outbox: Vec<(&'static str, &'static str, String, Option<FireKey>)>,
    /// Frames of commands due again, with their ids.
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

    /// Cooks a ticket this screen is picked for: start it (unless it is already started),
    /// and bump it after its prep time.
    fn cook(&mut self, ticket: &str, order_id: &str, fire_no: u32, started: bool) {
        let prep = self
            .shared
            .plans
            .lock()
            .expect("lock")
            .get(order_id)
            .and_then(|p| p.prep(fire_no, self.me.station))
            .unwrap_or(self.fallback_prep);
        if started {
            self.acting.insert(ticket.to_owned(), Acting::Started);
        } else {
            self.acting
                .insert(ticket.to_owned(), Acting::Starting { bump_due: false });
            self.outbox
                .push(("start", "start", ticket.to_owned(), None));
        }
        let (tx, ticket) = (self.tx.clone(), ticket.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(prep).await;
            let _ = tx.send(ScreenCmd::BumpDue(ticket));
        });
    }

    /// Expo sends a fire whose cooking parts are all bumped.
    fn expo_bump(&mut self, ticket: &str, order_id: &str, fire_no: u32) {
        self.acting.insert(ticket.to_owned(), Acting::Bumping);
        let key = (order_id.to_owned(), fire_no);
        if let Some(f) = self.shared.fires.lock().expect("lock").get_mut(&key) {
            f.expo_bump_sent = Some(Instant::now());
        }
        self.outbox
            .push(("bump", "expo_bump", ticket.to_owned(), Some(key)));
    }

    /// A timer came due: a bump to send, or a command to send again.
    fn command(&mut self, cmd: ScreenCmd) {
        match cmd {
            ScreenCmd::BumpDue(ticket) => match self.acting.get_mut(&ticket) {
                Some(Acting::Starting { bump_due }) => *bump_due = true,
                Some(state @ Acting::Started) => {
                    *state = Acting::Bumping;
                    self.outbox.push(("bump", "bump", ticket, None));
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
        }
    }

    /// A frame from the server: an event on the station, a reset snapshot, or the answer to a
    /// command.
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

    /// An event on the station, new to this screen: a fire's tickets, or at expo a fire ready
    /// to send.
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
        match event.kind.as_str() {
            "course_fired" => self.course_fired(&frame, &event, now),
            "expo_ready" if self.is_expo => {
                let (Some(ticket), Some(order_id), Some(fire_no)) =
                    (event.ticket_id, event.order_id, event.fire_no)
                else {
                    return;
                };
                if self.picked(&ticket) {
                    self.expo_bump(&ticket, &order_id, fire_no);
                }
            }
            _ => {}
        }
    }

    /// A fire's tickets for this station arrive; the screen cooks those it is picked for.
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
            if !self.is_expo && self.picked(&t.id) {
                self.cook(&t.id, &order_id, fire_no, false);
            }
        }
    }

    /// A resume the server could not serve: the station's live tickets replace what the screen
    /// had. Those it never saw arrive now; those it is picked for and not working on are taken
    /// up where they are.
    fn reset(&mut self, frame: Frame, now: Instant) {
        let shared = self.shared.clone();
        shared.counts.resets.fetch_add(1, Ordering::Relaxed);
        let Some(snapshot) = frame.snapshot else {
            return;
        };
        self.position = snapshot.position;
        let station = self.station_name.clone();
        for t in snapshot.tickets.iter().filter(|t| t.station == station) {
            if self.seen.insert(t.id.clone()) {
                shared.ticket_arrived(&self.me, self.replica, t, &t.order_id, t.fire_no, now);
            }
            if !self.picked(&t.id) {
                continue;
            }
            match (self.is_expo, t.status.as_str()) {
                (true, "new" | "started") if t.parts_ready => {
                    self.expo_bump(&t.id, &t.order_id, t.fire_no)
                }
                (false, "new") => self.cook(&t.id, &t.order_id, t.fire_no, false),
                (false, "started") => self.cook(&t.id, &t.order_id, t.fire_no, true),
                _ => {}
            }
        }
    }

    /// The answer to a command, by its id: an ack, or an error.
    fn answer(&mut self, frame: &Frame, now: Instant) {
        let Some(id) = frame.id.as_ref() else {
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
            // An error that names no command of ours (a refused frame): it counts as a failed
            // command; the command it refused stays unanswered.
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

    /// A command acknowledged: measured, and its ticket moves on (a start whose bump came due
    /// meanwhile is followed by the bump).
    fn acked(&mut self, p: Pending, now: Instant) {
        let shared = &self.shared;
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
            "expo_bump" => {
                if let Some(key) = &p.fire {
                    if let Some(f) = shared.fires.lock().expect("lock").get_mut(key) {
                        f.expo_acked = true;
                    }
                }
                self.acting.remove(&p.ticket);
            }
            _ => {
                self.acting.remove(&p.ticket);
            }
        }
    }

    /// A command refused: a failed command, and the screen lets its ticket go.
    fn refused(&mut self, p: Pending, frame: &Frame) {
        let code = frame.code.clone().unwrap_or_else(|| "error".into());
        self.shared.rec.error(p.kind, &code, || {
            format!(
                "ticket {} at {}: {}",
                p.ticket,
                self.who(),
                frame.message.clone().unwrap_or_default()
            )
        });
        self.acting.remove(&p.ticket);
    }

    /// The frames to send now: new commands (each gets its id and becomes pending), and
    /// commands due again.
    fn outgoing(&mut self) -> Vec<Message> {
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

    /// After a reconnect: every command still unanswered goes again with its id. One the
    /// server had carried out before the socket dropped is answered from the journal.
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
    }
}

/// A `start` or `bump` command frame.
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

/// A kitchen screen: receives its station's tickets and, for the tickets it is picked for,
/// starts them, bumps them after their prep time (or, at expo, bumps on `expo_ready`). When
/// its socket closes it reconnects, resumes after the last position it saw and resends its
/// unanswered commands.
pub(super) async fn screen_task(
    shared: Arc<Shared>,
    me: ScreenId,
    link: Link,
    ws: Socket,
    position: u64,
    mut stop: watch::Receiver<bool>,
) {
    let layout = &shared.layout;
    let station_name: String = layout
        .stations()
        .nth(me.station)
        .unwrap_or_default()
        .to_owned();
    let (tx, mut rx) = mpsc::unbounded_channel::<ScreenCmd>();
    let mut screen = Screen {
        is_expo: me.station == layout.cooking.len(),
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
        seen: HashSet::new(),
        acting: HashMap::new(),
        pending: HashMap::new(),
        next_id: 0,
        outbox: Vec::new(),
        resend: Vec::new(),
        position,
    };
    let mut ws = ws;
    let mut connected_at = shared.kills_of(screen.replica);
    loop {
        let (mut sink, mut stream) = ws.split();
        for frame in screen.outgoing() {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let lost = loop {
            tokio::select! {
                _ = stop.changed() => break None,
                Some(cmd) = rx.recv() => screen.command(cmd),
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => screen.frame(&text, Instant::now()),
                    Some(Ok(Message::Close(close))) => break Some(format!("{close:?}")),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Some(e.to_string()),
                    None => break Some("stream ended".to_owned()),
                },
            }
            for frame in screen.outgoing() {
                // What does not go out stays pending and goes after the reconnect.
                if sink.send(frame).await.is_err() {
                    break;
                }
            }
        };
        let Some(why) = lost else {
            let _ = sink.send(Message::Close(None)).await;
            break;
        };
        if *stop.borrow() {
            break;
        }
        shared.socket_lost(screen.replica, connected_at, &screen.who(), || why);
        let Some((new, on, kills)) = shared.reconnect(&link, screen.position, &mut stop).await
        else {
            break;
        };
        (ws, screen.replica, connected_at) = (new, on, kills);
        screen.resend_pending();
    }
}
