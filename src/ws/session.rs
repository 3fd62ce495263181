//! One websocket's session: a single task that owns the socket, the device on it, its
//! subscriptions, its frame budget and its queue of pushes, from the upgrade until the socket
//! closes.
//!
//! The task waits on all that can wake a socket at once (the server stopping, its queue
//! overflowing, its deadline, the ping timer, the socket taking the next frame, the engine
//! answering, a frame from the client, a push from the engine) and handles one at a time, so
//! nothing else holds a part of it and nothing outlives it: when the task returns, its socket,
//! queue, timers and unanswered asks go with it.

use std::collections::HashSet;
use std::ops::ControlFlow::{self, Break, Continue};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, ProtocolError};
use futures_util::future::{FutureExt, LocalBoxFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use rail_actors::branch::{StationCommand, StationSeen, Subscribe, UnsubscribeAll};
use rail_actors::ids::{BranchId, StationId, TicketId};
use rail_actors::journal::KeyRecord;
use rail_actors::station::TicketAction;
use rail_actors::subscriber::{Push, Topic};
use rail_actors::{CommandError, Engine};

use crate::metrics;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use super::connection::Connection;
use super::frames::{error_frame, frame_id, push_frame, ClientFrame, ServerFrame, TicketFrame};
use super::limits::{FrameBudget, SendQueue, Slot, Spend};
use crate::auth::{self, Act, Device, Tokens};
use crate::cluster::Cluster;
use crate::error::{ApiError, ErrorCode};
use crate::settings::Settings;

/// The connections gauge's label for sockets that have not authenticated yet.
const UNAUTHENTICATED: &str = "unauthenticated";
/// The most tickets one `seen` frame acknowledges (a screen shows far fewer).
const MAX_SEEN: usize = 500;

/// How long a socket that did not authenticate in its handshake has to send an `auth` frame.
const AUTH_WAIT: Duration = Duration::from_secs(10);

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// How a session ends.
enum End {
    /// The client closed the socket or went away: nothing more goes out.
    Gone,
    /// The server closes the socket with this code and reason.
    Close(CloseCode, &'static str),
}

/// What a step of the session says: go on, or end.
type Step = ControlFlow<End>;

/// What one socket's task owns.
pub(super) struct Session {
    id: u64,
    engine: Engine,
    /// The chain this replica is part of, with replicas.
    cluster: Option<Cluster>,
    tokens: Arc<Tokens>,
    connection: Connection,
    /// The frames in from the client.
    frames: AggregatedMessageStream,
    queue: SendQueue,
    pushes: mpsc::Receiver<Push>,
    /// Subscriptions and ticket commands the engine has not answered yet, each with the
    /// answer for the client.
    /// Each gives the frame that answers it, if any.
    asks: FuturesUnordered<LocalBoxFuture<'static, Option<String>>>,
    stopping: watch::Receiver<bool>,
    /// Until the socket authenticates, when it must have; then, when its token expires.
    deadline: Pin<Box<Sleep>>,
    ping: Interval,
    ping_every: Duration,
    last_seen: Instant,
    budget: FrameBudget,
    /// Who is on the other end, once authenticated.
    device: Option<Device>,
    /// Revocations as they are published, once authenticated: its device's closes it.
    revocations: Option<broadcast::Receiver<(BranchId, String)>>,
    /// The branches it asked to follow, told when it leaves.
    branches: HashSet<BranchId>,
    /// This connection's place under its address's cap, given back when it closes.
    _slot: Option<Slot>,
    _running: Running,
}

impl Session {
    pub(super) fn new(
        connection: Connection,
        frames: AggregatedMessageStream,
        (engine, cluster): (Engine, Option<Cluster>),
        tokens: Arc<Tokens>,
        settings: &Settings,
        stopping: watch::Receiver<bool>,
        slot: Option<Slot>,
    ) -> Self {
        let (queue, pushes) = SendQueue::new(settings.ws_queue);
        let ping_every = Duration::from_secs(settings.ws_ping_seconds.max(1));
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            engine,
            cluster,
            tokens,
            connection,
            frames,
            queue,
            pushes,
            asks: FuturesUnordered::new(),
            stopping,
            deadline: Box::pin(tokio::time::sleep(AUTH_WAIT)),
            ping,
            ping_every,
            last_seen: Instant::now(),
            budget: FrameBudget::new(settings.ws_messages_per_second, settings.ws_message_burst),
            device: None,
            revocations: None,
            branches: HashSet::new(),
            _slot: slot,
            _running: Running::start(),
        }
    }

    /// Serves the socket until it closes; `device` when the handshake authenticated it.
    pub(super) async fn run(mut self, device: Option<Device>) {
        metrics::ws_connected(UNAUTHENTICATED);
        if let Some(device) = device {
            self.authenticated(device);
        }
        let end = loop {
            if let Break(end) = self.next_step().await {
                break end;
            }
        };
        self.leave(end).await;
    }

    /// Waits for the first thing that needs doing and does it. What ends the socket comes
    /// first; the next push is taken only once the socket has taken what waits for it, so the
    /// send queue fills up behind a screen that does not read.
    async fn next_step(&mut self) -> Step {
        tokio::select! {
            biased;
            Ok(()) = server_stopping(&mut self.stopping) => Break(End::Close(
                CloseCode::Restart,
                "server restarting: reconnect and resubscribe",
            )),
            () = self.queue.overflowed() => {
                metrics::slow_consumer_closed();
                Break(End::Close(CloseCode::Policy, "slow_consumer: reconnect and resubscribe"))
            }
            () = &mut self.deadline => Break(self.out_of_time()),
            revoked = next_revocation(&mut self.revocations) => self.on_revocation(revoked),
            _ = self.ping.tick() => self.ping(),
            sent = self.connection.send_next(), if self.connection.has_waiting() => match sent {
                Ok(()) => Continue(()),
                Err(_) => Break(End::Gone),
            },
            Some(answer) = self.asks.next(), if !self.asks.is_empty() => {
                if let Some(answer) = answer {
                    self.reply(answer);
                }
                Continue(())
            }
            message = self.frames.recv() => self.on_message(message),
            Some(push) = self.pushes.recv(), if !self.connection.has_waiting() => {
                self.deliver(&push);
                Continue(())
            }
        }
    }

    fn reply(&mut self, text: String) {
        self.connection.text(text);
    }

    /// The deadline passed: the socket never authenticated, or its token expired.
    fn out_of_time(&self) -> End {
        if self.device.is_some() {
            return End::Close(CloseCode::Policy, "token_expired");
        }
        metrics::auth_refused("unauthenticated");
        End::Close(CloseCode::Policy, "unauthenticated")
    }

    fn ping(&mut self) -> Step {
        if self.last_seen.elapsed() > self.ping_every * 3 {
            return Break(End::Close(CloseCode::Away, "idle: no pong received"));
        }
        self.connection.ping();
        Continue(())
    }

    fn on_message(&mut self, message: Option<Result<AggregatedMessage, ProtocolError>>) -> Step {
        let Some(message) = message else {
            return Break(End::Gone);
        };
        self.last_seen = Instant::now();
        match message {
            Ok(AggregatedMessage::Text(text)) => return self.on_text(&text),
            Ok(AggregatedMessage::Ping(bytes)) => self.connection.pong(bytes),
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Binary(_)) => {
                self.reply(error_frame(
                    None,
                    ErrorCode::UnsupportedFrame,
                    "send JSON text frames",
                ));
            }
            Ok(AggregatedMessage::Close(_)) => return Break(End::Gone),
            Err(ProtocolError::Overflow) => {
                return Break(End::Close(CloseCode::Size, "frame_too_large"));
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket protocol error");
                return Break(End::Close(CloseCode::Protocol, "protocol_error"));
            }
        }
        Continue(())
    }

    fn on_text(&mut self, text: &str) -> Step {
        match self.budget.spend() {
            Spend::Allowed => {}
            Spend::Refused => {
                let msg = "too many frames; slow down and send it again";
                self.reply(error_frame(
                    frame_id(text).as_deref(),
                    ErrorCode::RateLimited,
                    msg,
                ));
                return Continue(());
            }
            Spend::Exhausted => return Break(End::Close(CloseCode::Policy, "rate_limited")),
        }
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(error) => {
                self.reply(error);
                return Continue(());
            }
        };
        let device = match (&frame, &self.device) {
            (ClientFrame::Auth { token }, _) => return self.auth(token),
            (ClientFrame::Ping { id }, _) => {
                let at = chrono::Utc::now();
                self.reply(
                    ServerFrame::Pong {
                        id: id.as_deref(),
                        at,
                    }
                    .to_text(),
                );
                return Continue(());
            }
            (_, Some(device)) => device.clone(),
            (_, None) => {
                metrics::auth_refused("unauthenticated");
                let msg = "authenticate first: send {\"type\":\"auth\",\"token\":...}";
                self.reply(error_frame(
                    frame_id(text).as_deref(),
                    ErrorCode::Unauthenticated,
                    msg,
                ));
                return Continue(());
            }
        };
        match frame {
            ClientFrame::Auth { .. } | ClientFrame::Ping { .. } => unreachable!("handled above"),
            ClientFrame::Subscribe {
                id,
                branch,
                station,
                table,
                after,
            } => {
                let Some(branch) = self.branch_of(&device, branch, id.as_deref()) else {
                    return Continue(());
                };
                let topic = match (station, table) {
                    (Some(_), Some(_)) => {
                        let msg = "subscribe to a station or a table, not both";
                        self.reply(error_frame(id.as_deref(), ErrorCode::InvalidInput, msg));
                        return Continue(());
                    }
                    (Some(s), None) => Topic::Station(s),
                    (None, Some(t)) => Topic::Table(t),
                    (None, None) => Topic::Branch,
                };
                let act = match &topic {
                    Topic::Station(s) => Act::FollowStation(s),
                    Topic::Table(t) => Act::FollowTable(t),
                    Topic::Branch => Act::FollowBranch,
                };
                match device.require(act) {
                    Ok(()) => self.subscribe(id, branch, topic, after),
                    Err(e) => self.reply(error_frame(id.as_deref(), e.code, &e.message)),
                }
            }
            ClientFrame::Start(t) => self.ticket(&device, t, TicketAction::Start),
            ClientFrame::Bump(t) => self.ticket(&device, t, TicketAction::Bump),
            ClientFrame::Recall(t) => self.ticket(&device, t, TicketAction::Recall),
            ClientFrame::Seen {
                branch,
                station,
                tickets,
            } => self.seen(&device, branch, station, tickets),
        }
        Continue(())
    }

    /// The branch a frame names, which must be the device's own; None after refusing it.
    fn branch_of(
        &mut self,
        device: &Device,
        named: Option<BranchId>,
        id: Option<&str>,
    ) -> Option<BranchId> {
        match named {
            Some(b) if &b != device.branch() => {
                let e = auth::wrong_branch();
                self.reply(error_frame(id, e.code, &e.message));
                None
            }
            _ => Some(device.branch().clone()),
        }
    }

    /// An `auth` frame: the first authentication, or a renewed token for the same device.
    fn auth(&mut self, token: &str) -> Step {
        let device = match self.tokens.verify(token) {
            Ok(device) => device,
            Err(e) => {
                let e = ApiError::from(e);
                self.reply(error_frame(None, e.code, &e.message));
                if self.device.is_none() {
                    return Break(End::Close(CloseCode::Policy, e.code.as_str()));
                }
                return Continue(());
            }
        };
        if let Some(current) = &self.device {
            let (a, b) = (&current.claims, &device.claims);
            if a.branch != b.branch
                || a.role != b.role
                || a.station != b.station
                || a.table != b.table
            {
                let msg = "a socket keeps its device: renew with a token for the same branch, role, station and table";
                self.reply(error_frame(None, ErrorCode::TokenMismatch, msg));
                return Continue(());
            }
        }
        self.authenticated(device);
        Continue(())
    }

    /// Takes `device` as this socket's, tells the client, and sets the socket to close when
    /// the token expires.
    fn authenticated(&mut self, device: Device) {
        let role = device.role().as_str();
        match &self.device {
            Some(old) => metrics::ws_disconnected(old.role().as_str()),
            None => metrics::ws_disconnected(UNAUTHENTICATED),
        }
        metrics::ws_connected(role);
        let left = (device.expires_at() - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            + self.tokens.leeway();
        self.deadline.set(tokio::time::sleep(left));
        self.reply(
            ServerFrame::Authenticated {
                branch: device.branch(),
                role,
                station: device.claims.station.as_ref(),
                table: device.claims.table.as_ref(),
                expires_at: device.expires_at(),
            }
            .to_text(),
        );
        self.device = Some(device);
        if self.revocations.is_none() {
            self.revocations = Some(rail_actors::devices::REVOKED.announcements());
        }
    }

    /// A device was revoked: when it is this socket's, the socket closes.
    fn on_revocation(&mut self, revoked: Result<(BranchId, String), RecvError>) -> Step {
        let Some(device) = &self.device else {
            return Continue(());
        };
        let ours = match revoked {
            Ok((branch, id)) => &branch == device.branch() && id == device.claims.jti,
            // Announcements were missed: the set itself says.
            Err(RecvError::Lagged(_)) => {
                rail_actors::devices::REVOKED.contains(device.branch(), &device.claims.jti)
            }
            Err(RecvError::Closed) => {
                self.revocations = None;
                false
            }
        };
        if ours {
            metrics::auth_refused("token_revoked");
            return Break(End::Close(CloseCode::Policy, "token_revoked"));
        }
        Continue(())
    }

    /// Asks the branch to follow `topic` for this socket; its queue gets the snapshot or what
    /// it missed, the client the `subscribed` notice.
    fn subscribe(
        &mut self,
        id: Option<String>,
        branch: BranchId,
        topic: Topic,
        after: Option<u64>,
    ) {
        self.branches.insert(branch.clone());
        let engine = self.engine.clone();
        let subscriber = self.queue.subscriber(self.id);
        let ask = async move {
            let subscribe = Subscribe {
                topic: topic.clone(),
                subscriber,
                after,
            };
            match engine.ask(&branch, subscribe).await.and_then(|r| r) {
                Ok(()) => ServerFrame::Subscribed {
                    id: id.as_deref(),
                    topic: (&topic).into(),
                }
                .to_text(),
                Err(e) => error_frame(id.as_deref(), ErrorCode::of(&e), &e.to_string()),
            }
        };
        self.asks.push(ask.map(Some).boxed_local());
    }

    /// A screen acknowledges the tickets it shows: nothing is answered unless the frame is
    /// refused (the station's watch stops waiting for those tickets).
    fn seen(
        &mut self,
        device: &Device,
        branch: Option<BranchId>,
        station: StationId,
        tickets: Vec<TicketId>,
    ) {
        let Some(branch) = self.branch_of(device, branch, None) else {
            return;
        };
        if let Err(e) = device.require(Act::FollowStation(&station)) {
            return self.reply(error_frame(None, e.code, &e.message));
        }
        if tickets.len() > MAX_SEEN {
            let msg = format!("acknowledge at most {MAX_SEEN} tickets a frame");
            return self.reply(error_frame(None, ErrorCode::InvalidInput, &msg));
        }
        let engine = self.engine.clone();
        let ask = async move {
            let seen = StationSeen {
                station,
                tickets,
                relayed: false,
            };
            match engine.ask(&branch, seen).await.and_then(|r| r) {
                Ok(()) => None,
                Err(e) => Some(error_frame(None, ErrorCode::of(&e), &e.to_string())),
            }
        };
        self.asks.push(ask.boxed_local());
    }

    /// Asks the branch to start, bump or recall a ticket; the client gets the `ack` or `error`.
    /// A branch another replica writes gets the command forwarded, and the client that
    /// replica's answer.
    fn ticket(&mut self, device: &Device, frame: TicketFrame, action: TicketAction) {
        let Some(branch) = self.branch_of(device, frame.branch.clone(), Some(&frame.id)) else {
            return;
        };
        if let Err(refusal) = check_ticket(device, &frame) {
            return self.reply(refusal);
        }
        let engine = self.engine.clone();
        let cluster = self.cluster.clone();
        let tokens = self.tokens.clone();
        let device = device.clone();
        let session = self.id;
        let ask = async move {
            match answer_ticket(&engine, session, &branch, &frame, action).await {
                Some(answer) => answer,
                None => {
                    super::forwarded::forward(cluster, &tokens, &device, &branch, &frame, action)
                        .await
                }
            }
        };
        self.asks.push(ask.map(Some).boxed_local());
    }

    /// Puts a push from the engine on the wire.
    fn deliver(&mut self, push: &Push) {
        // How late live tickets reach the screens (a resumed screen's replay is late by design).
        if let Push::Event {
            topic: Topic::Station(station),
            event,
            live: true,
        } = push
        {
            if event.kind == "course_fired" {
                let age = (chrono::Utc::now() - event.at).to_std().unwrap_or_default();
                metrics::fire_reached_screen(station.as_str(), age);
            }
        }
        self.connection.text(push_frame(push));
    }

    /// The socket is done: its branches forget its subscriptions, and a socket the server
    /// ends gets what waits for it and its close frame.
    async fn leave(self, end: End) {
        let role = self
            .device
            .as_ref()
            .map_or(UNAUTHENTICATED, |d| d.role().as_str());
        metrics::ws_disconnected(role);
        for branch in &self.branches {
            if let Ok(actor) = self.engine.branch(branch) {
                actor.do_send(UnsubscribeAll(self.id));
            }
        }
        if let End::Close(code, why) = end {
            self.connection.close(code, why).await;
        }
    }
}

/// Resolves when the server starts closing its sockets.
/// The next revocation announced, or never while the socket has not authenticated.
async fn next_revocation(
    revocations: &mut Option<broadcast::Receiver<(BranchId, String)>>,
) -> Result<(BranchId, String), RecvError> {
    match revocations {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn server_stopping(
    stopping: &mut watch::Receiver<bool>,
) -> Result<(), watch::error::RecvError> {
    stopping.wait_for(|stopping| *stopping).await.map(drop)
}

/// Counts a running session in `rail_ws_writers` for as long as it lives, however it ends.
struct Running;

impl Running {
    fn start() -> Self {
        metrics::ws_writer_started();
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        metrics::ws_writer_ended();
    }
}

/// Whether a device may send this ticket command: the error frame it gets otherwise.
pub(super) fn check_ticket(device: &Device, frame: &TicketFrame) -> Result<(), String> {
    if let Err(e) = device.require(Act::ActOnTicket(&frame.station)) {
        return Err(error_frame(Some(&frame.id), e.code, &e.message));
    }
    if !crate::idempotency::valid_key(&frame.id) {
        let msg = "id must be 1 to 128 visible ASCII characters";
        return Err(error_frame(None, ErrorCode::InvalidInput, msg));
    }
    Ok(())
}

/// Carries out a ticket command of a socket here: the frame the client gets, or `None` when
/// another replica writes the branch. The same for a socket on this replica and one on another
/// that forwarded it here (its fingerprint, so a retry is recognised wherever it lands).
pub(super) async fn answer_ticket(
    engine: &Engine,
    session: u64,
    branch: &BranchId,
    frame: &TicketFrame,
    action: TicketAction,
) -> Option<String> {
    let span = tracing::info_span!(
        "ws_command",
        request_id = %uuid::Uuid::new_v4(),
        session,
        action = ?action,
    );
    let target = format!("ws {action:?} {} {}", frame.station, frame.ticket);
    let idempotency = KeyRecord {
        key: frame.id.clone(),
        fingerprint: crate::idempotency::fingerprint(&target, &()),
    };
    let command = StationCommand {
        station: frame.station.clone(),
        ticket: frame.ticket,
        action,
        idempotency: Some(idempotency),
        span,
    };
    Some(match engine.ask(branch, command).await.and_then(|r| r) {
        Ok(ticket) => ServerFrame::Ack {
            id: &frame.id,
            ticket: (&ticket).into(),
        }
        .to_text(),
        Err(CommandError::NotOwner) => return None,
        Err(e) => error_frame(Some(&frame.id), ErrorCode::of(&e), &e.to_string()),
    })
}
