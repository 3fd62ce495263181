//! The websocket edge: one session actor per connection.
//!
//! A session owns its socket, its subscriptions and a bounded queue of pushes. Domain actors
//! push into the queue without waiting; a writer task drains it onto the socket. When the queue
//! is full the screen is too slow: it is closed with a reason and resumes when it reconnects.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage as WsMessage, CloseCode, CloseReason, ProtocolError};
use rail_actors::branch::{StationCommand, Subscribe, UnsubscribeAll};
use rail_actors::event::Published;
use rail_actors::ids::{BranchId, StationId, TableId, TicketId};
use rail_actors::journal::KeyRecord;
use rail_actors::order::Ticket;
use rail_actors::station::TicketAction;
use rail_actors::subscriber::{Push, Subscriber, Topic};
use rail_actors::{metrics, CommandError, Engine};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::auth::{self, Act, Device, TokenError, Tokens};
use crate::error::ApiError;
use crate::settings::Settings;
use crate::startup::Lifecycle;

/// How long a socket that did not authenticate in its handshake has to send an `auth` frame.
/// The connections gauge's label for sockets that have not authenticated yet.
const UNAUTHENTICATED: &str = "unauthenticated";

const AUTH_WAIT: Duration = Duration::from_secs(10);

/// How long a close frame may wait behind a stalled socket before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A frame a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticate (browsers cannot set headers on a websocket handshake), or renew the
    /// token of an authenticated socket.
    Auth {
        token: String,
    },
    /// Follow a station, a table, or (naming neither) the whole branch.
    Subscribe {
        #[serde(default)]
        id: Option<String>,
        /// The device's branch; when given it must be the token's.
        #[serde(default)]
        branch: Option<BranchId>,
        #[serde(default)]
        station: Option<StationId>,
        #[serde(default)]
        table: Option<TableId>,
        /// The last position this client saw: resume after it instead of a snapshot.
        #[serde(default)]
        after: Option<u64>,
    },
    Start(TicketFrame),
    Bump(TicketFrame),
    Recall(TicketFrame),
}

/// A station command on a ticket, with the client's id for the answer.
#[derive(Debug, Deserialize)]
pub struct TicketFrame {
    pub id: String,
    #[serde(default)]
    pub branch: Option<BranchId>,
    pub station: StationId,
    pub ticket: TicketId,
}

/// A frame the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Authenticated {
        branch: &'a BranchId,
        role: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        station: Option<&'a StationId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<&'a TableId>,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    Snapshot {
        topic: &'a Topic,
        snapshot: &'a rail_actors::subscriber::Snapshot,
        /// The resume asked for could not be served: replace what you had with this.
        reset: bool,
    },
    Subscribed {
        id: Option<&'a str>,
        topic: &'a Topic,
    },
    Ack {
        id: &'a str,
        ticket: &'a Ticket,
    },
    Error {
        id: Option<&'a str>,
        code: &'a str,
        message: &'a str,
    },
}

impl ServerFrame<'_> {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("frames serialize")
    }
}

fn push_frame(push: &Push) -> String {
    match push {
        Push::Snapshot {
            topic,
            snapshot,
            reset,
        } => ServerFrame::Snapshot {
            topic,
            snapshot,
            reset: *reset,
        }
        .to_text(),
        Push::Event { topic, event, .. } => event_frame(topic, event),
    }
}

/// `{"type": "event", "topic": ...}` with the envelope's own fields (stream, seq, branch,
/// position, at, event), which are serialized once for every screen the event goes to.
fn event_frame(topic: &Topic, event: &Published) -> String {
    let fields = &event.json;
    let topic = serde_json::to_string(topic).expect("topics serialize");
    let mut frame = String::with_capacity(fields.len() + topic.len() + 32);
    frame.push_str(r#"{"type":"event","topic":"#);
    frame.push_str(&topic);
    frame.push(',');
    // The envelope is a JSON object with fields: its text after the opening brace.
    frame.push_str(&fields[1..]);
    frame
}

fn error_frame(id: Option<&str>, code: &str, message: &str) -> String {
    ServerFrame::Error { id, code, message }.to_text()
}

/// Upgrades `/ws` to a websocket and starts its session.
pub async fn endpoint(
    req: HttpRequest,
    body: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    lifecycle: web::Data<Lifecycle>,
    addresses: web::Data<Addresses>,
    tokens: web::Data<Tokens>,
) -> Result<HttpResponse, actix_web::Error> {
    if !origin_allowed(&req, &settings.allowed_origins) {
        let msg = "websockets from this origin are not allowed";
        return Err(ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed", msg).into());
    }
    // A token in the handshake is checked before the upgrade; without one, the socket has
    // AUTH_WAIT to send an `auth` frame.
    let device = match auth::bearer(&req) {
        Ok(token) => Some(tokens.verify(token).map_err(ApiError::from)?),
        Err(TokenError::Missing) => None,
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let address = req.peer_addr().map(|a| a.ip());
    let slot = match address {
        Some(ip) => Some(
            addresses
                .take(ip, settings.ws_connections_per_address)
                .ok_or_else(|| {
                    let msg = "too many open websockets from this address";
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_connections", msg)
                })?,
        ),
        None => None,
    };
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(settings.max_body_bytes)
        .aggregate_continuations()
        .max_continuation_size(settings.max_body_bytes);
    let (queue, pushes) = mpsc::channel(settings.ws_queue.max(1));
    let (replies, reply_rx) = mpsc::unbounded_channel();
    let overflow = Arc::new(Notify::new());
    let stopping = lifecycle.stopping();
    let (session_gone, ended) = oneshot::channel();
    let writer = write_loop(
        session.clone(),
        pushes,
        reply_rx,
        Signals {
            overflow: overflow.clone(),
            stopping,
            ended,
        },
    );
    actix_web::rt::spawn(writer);
    let ping_every = Duration::from_secs(settings.ws_ping_seconds.max(1));
    WsSession::create(move |ctx| {
        ctx.add_stream(stream);
        let mut session = WsSession {
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            engine: engine.get_ref().clone(),
            socket: session,
            queue,
            overflow,
            replies,
            branches: HashSet::new(),
            last_seen: Instant::now(),
            ping_every,
            rate: Bucket::new(settings.ws_messages_per_second, settings.ws_message_burst),
            tokens: tokens.into_inner(),
            device: None,
            expiry: None,
            _slot: slot,
            _writer: session_gone,
        };
        match device {
            Some(device) => session.authenticated(device, ctx),
            None => {
                ctx.run_later(AUTH_WAIT, |act, ctx| {
                    if act.device.is_none() {
                        metrics::auth_refused("unauthenticated");
                        act.close(ctx, CloseCode::Policy, "unauthenticated");
                    }
                });
            }
        }
        session
    });
    Ok(response)
}

/// What ends a session's writer besides its socket failing.
struct Signals {
    /// The session's queue overflowed: the screen is not keeping up.
    overflow: Arc<Notify>,
    /// The server is shutting down.
    stopping: watch::Receiver<bool>,
    /// Resolves when the session is dropped (its sender lives in the session). Subscriptions
    /// hold clones of the queue's sender until their actors hear the session left, and
    /// `overflow` and `stopping` never close: without this the writer of every closed socket
    /// would wait forever, holding its queue, its socket and their buffers.
    ended: oneshot::Receiver<()>,
}

/// Drains a session's queue onto its socket, in order, until either side goes away.
async fn write_loop(
    mut socket: actix_ws::Session,
    mut pushes: mpsc::Receiver<Push>,
    mut replies: mpsc::UnboundedReceiver<String>,
    signals: Signals,
) {
    metrics::ws_writer_started();
    let _running = WriterRunning;
    let Signals {
        overflow,
        mut stopping,
        mut ended,
    } = signals;
    let close = |socket: actix_ws::Session, code: CloseCode, why: &str| {
        // The close frame waits behind what the socket already holds; the writer does not.
        let reason = CloseReason {
            code,
            description: Some(why.into()),
        };
        actix_web::rt::spawn(async move {
            let _ = tokio::time::timeout(CLOSE_WAIT, socket.close(Some(reason))).await;
        });
    };
    loop {
        let text = tokio::select! {
            biased;
            _ = stopping.wait_for(|s| *s) => {
                return close(socket, CloseCode::Restart, "server restarting: reconnect and resubscribe");
            }
            _ = overflow.notified() => {
                metrics::slow_consumer_closed();
                return close(socket, CloseCode::Policy, "slow_consumer: reconnect and resubscribe");
            }
            Some(reply) = replies.recv() => reply,
            Some(push) = pushes.recv() => {
                // How late live tickets reach the screens (a resumed screen's replay is late
                // by design).
                if let Push::Event { topic: Topic::Station(station), event, live: true } = &push {
                    if event.kind == "course_fired" {
                        let age = (chrono::Utc::now() - event.at).to_std().unwrap_or_default();
                        metrics::fire_reached_screen(station.as_str(), age);
                    }
                }
                push_frame(&push)
            }
            _ = &mut ended => break,
            else => return,
        };
        // A socket that stops draining must not hold the writer: the overflow signal wins.
        let sent = {
            let send = socket.text(text);
            tokio::pin!(send);
            tokio::select! {
                sent = &mut send => Sent::Done(sent.is_ok()),
                _ = overflow.notified() => Sent::Overflow,
                // The session is gone: this frame still goes out if the socket takes it soon.
                _ = &mut ended => Sent::SessionGone(matches!(
                    tokio::time::timeout(CLOSE_WAIT, send).await,
                    Ok(Ok(()))
                )),
            }
        };
        match sent {
            Sent::Done(true) => metrics::ws_frame_sent(),
            Sent::Done(false) | Sent::SessionGone(false) => return,
            Sent::Overflow => {
                metrics::slow_consumer_closed();
                return close(
                    socket,
                    CloseCode::Policy,
                    "slow_consumer: reconnect and resubscribe",
                );
            }
            Sent::SessionGone(true) => {
                metrics::ws_frame_sent();
                break;
            }
        }
    }
    // The session is gone. What it queued still goes out (a refusal's error frame, unless the
    // close frame the session sent has closed the socket first), for CLOSE_WAIT at most.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(text) = replies
            .try_recv()
            .ok()
            .or_else(|| pushes.try_recv().ok().map(|push| push_frame(&push)))
        {
            if socket.text(text).await.is_err() {
                return;
            }
            metrics::ws_frame_sent();
        }
    })
    .await;
}

/// How one frame's send ended: `Done` and `SessionGone` say whether the socket took it.
enum Sent {
    Done(bool),
    Overflow,
    SessionGone(bool),
}

/// Counts a running writer for as long as it runs, however it ends.
struct WriterRunning;

impl Drop for WriterRunning {
    fn drop(&mut self) {
        metrics::ws_writer_ended();
    }
}

/// One websocket connection.
pub struct WsSession {
    id: u64,
    engine: Engine,
    socket: actix_ws::Session,
    queue: mpsc::Sender<Push>,
    overflow: Arc<Notify>,
    replies: mpsc::UnboundedSender<String>,
    branches: HashSet<BranchId>,
    last_seen: Instant,
    ping_every: Duration,
    rate: Bucket,
    tokens: Arc<Tokens>,
    /// Who is on the other end, once authenticated.
    device: Option<Device>,
    /// Closes the socket when its token expires.
    expiry: Option<SpawnHandle>,
    /// This connection's place under its address's cap, given back when it closes.
    _slot: Option<Slot>,
    /// Dropped with the session, which ends its writer.
    _writer: oneshot::Sender<()>,
}

/// The `id` of a frame, if it has one, for an error about a frame that was not carried out.
fn frame_id(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}

/// Whether a handshake's `Origin` (browsers send one) is this server or an allowed one.
fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let host = req.connection_info().host().to_owned();
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority == host)
}

/// Open websockets per client address.
#[derive(Clone, Default)]
pub struct Addresses(Arc<Mutex<HashMap<IpAddr, u32>>>);

impl Addresses {
    /// A place for one more connection from `ip`, if it is under `cap`.
    fn take(&self, ip: IpAddr, cap: u32) -> Option<Slot> {
        let mut open = self.0.lock().expect("address counts");
        let n = open.entry(ip).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            addresses: self.clone(),
        })
    }
}

/// One connection's place; dropping it frees the place.
pub struct Slot {
    ip: IpAddr,
    addresses: Addresses,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.addresses.0.lock().expect("address counts");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A token bucket: `rate` frames a second, bursts up to `burst`.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
    /// Frames refused in a row; a client that keeps flooding is closed.
    refused: u32,
}

impl Bucket {
    fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            rate: f64::from(rate.max(1)),
            burst,
            at: Instant::now(),
            refused: 0,
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            true
        } else {
            self.refused += 1;
            false
        }
    }
}

impl WsSession {
    fn reply(&self, text: String) {
        let _ = self.replies.send(text);
    }

    fn close(&self, ctx: &mut Context<Self>, code: CloseCode, why: &str) {
        let socket = self.socket.clone();
        let reason = CloseReason {
            code,
            description: Some(why.into()),
        };
        actix_web::rt::spawn(async move {
            let _ = socket.close(Some(reason)).await;
        });
        ctx.stop();
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        if !self.rate.take() {
            if self.rate.refused > self.rate.burst as u32 {
                return self.close(ctx, CloseCode::Policy, "rate_limited");
            }
            let msg = "too many frames; slow down and send it again";
            let id = frame_id(text);
            return self.reply(error_frame(id.as_deref(), "rate_limited", msg));
        }
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                let id = frame_id(text);
                self.reply(error_frame(
                    id.as_deref(),
                    "malformed_frame",
                    &e.to_string(),
                ));
                return;
            }
        };
        let device = match (&frame, &self.device) {
            (ClientFrame::Auth { token }, _) => return self.auth(token, ctx),
            (_, Some(device)) => device.clone(),
            (_, None) => {
                metrics::auth_refused("unauthenticated");
                let id = frame_id(text);
                let msg = "authenticate first: send {\"type\":\"auth\",\"token\":...}";
                return self.reply(error_frame(id.as_deref(), "unauthenticated", msg));
            }
        };
        match frame {
            ClientFrame::Auth { .. } => unreachable!("handled above"),
            ClientFrame::Subscribe {
                id,
                branch,
                station,
                table,
                after,
            } => {
                let Some(branch) = self.branch_of(&device, branch, id.as_deref()) else {
                    return;
                };
                let topic = match (station, table) {
                    (Some(_), Some(_)) => {
                        let msg = "subscribe to a station or a table, not both";
                        self.reply(error_frame(id.as_deref(), "invalid_input", msg));
                        return;
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
                if let Err(e) = device.require(act) {
                    return self.reply(error_frame(id.as_deref(), e.code, &e.message));
                }
                self.subscribe(id, branch, topic, after, ctx);
            }
            ClientFrame::Start(t) => self.ticket(&device, t, TicketAction::Start, ctx),
            ClientFrame::Bump(t) => self.ticket(&device, t, TicketAction::Bump, ctx),
            ClientFrame::Recall(t) => self.ticket(&device, t, TicketAction::Recall, ctx),
        }
    }

    /// The branch a frame names, which must be the device's own; None after refusing it.
    fn branch_of(
        &self,
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
    fn auth(&mut self, token: &str, ctx: &mut Context<Self>) {
        let device = match self.tokens.verify(token) {
            Ok(device) => device,
            Err(e) => {
                let e = ApiError::from(e);
                self.reply(error_frame(None, e.code, &e.message));
                if self.device.is_none() {
                    self.close(ctx, CloseCode::Policy, e.code);
                }
                return;
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
                return self.reply(error_frame(None, "token_mismatch", msg));
            }
        }
        self.authenticated(device, ctx);
    }

    /// Takes `device` as this socket's, tells the client, and closes the socket when the
    /// token expires.
    fn authenticated(&mut self, device: Device, ctx: &mut Context<Self>) {
        let role = device.role().as_str();
        match &self.device {
            Some(old) => metrics::ws_disconnected(old.role().as_str()),
            None => metrics::ws_disconnected(UNAUTHENTICATED),
        }
        metrics::ws_connected(role);
        if let Some(handle) = self.expiry.take() {
            ctx.cancel_future(handle);
        }
        let left = (device.expires_at() - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            + self.tokens.leeway();
        self.expiry = Some(ctx.run_later(left, |act, ctx| {
            act.close(ctx, CloseCode::Policy, "token_expired");
        }));
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
    }

    fn subscribe(
        &mut self,
        id: Option<String>,
        branch: BranchId,
        topic: Topic,
        after: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let engine = self.engine.clone();
        let subscriber = Subscriber::new(self.id, self.queue.clone(), self.overflow.clone());
        let replies = self.replies.clone();
        let b = branch.clone();
        let ask = async move {
            engine
                .ask(
                    &b,
                    Subscribe {
                        topic: topic.clone(),
                        subscriber,
                        after,
                    },
                )
                .await?
                .map(|_| topic)
        };
        ctx.spawn(
            ask.into_actor(self).map(
                move |result: Result<Topic, CommandError>, act, _| match result {
                    Ok(topic) => {
                        act.branches.insert(branch);
                        let _ = replies.send(
                            ServerFrame::Subscribed {
                                id: id.as_deref(),
                                topic: &topic,
                            }
                            .to_text(),
                        );
                    }
                    Err(e) => {
                        let _ = replies.send(error_frame(id.as_deref(), e.code(), &e.to_string()));
                    }
                },
            ),
        );
    }

    fn ticket(
        &mut self,
        device: &Device,
        frame: TicketFrame,
        action: TicketAction,
        ctx: &mut Context<Self>,
    ) {
        let Some(branch) = self.branch_of(device, frame.branch.clone(), Some(&frame.id)) else {
            return;
        };
        if let Err(e) = device.require(Act::ActOnTicket(&frame.station)) {
            return self.reply(error_frame(Some(&frame.id), e.code, &e.message));
        }
        let engine = self.engine.clone();
        let replies = self.replies.clone();
        let span = tracing::info_span!(
            "ws_command",
            request_id = %uuid::Uuid::new_v4(),
            session = self.id,
            action = ?action,
        );
        if !crate::idempotency::valid_key(&frame.id) {
            let msg = "id must be 1 to 128 visible ASCII characters";
            self.reply(error_frame(None, "invalid_input", msg));
            return;
        }
        let target = format!("ws {action:?} {} {}", frame.station, frame.ticket);
        let idempotency = KeyRecord {
            key: frame.id.clone(),
            fingerprint: crate::idempotency::fingerprint(&target, &()),
        };
        let command = StationCommand {
            station: frame.station,
            ticket: frame.ticket,
            action,
            idempotency: Some(idempotency),
            span,
        };
        let id = frame.id;
        ctx.spawn(
            async move {
                let text = match engine.ask(&branch, command).await.and_then(|r| r) {
                    Ok(ticket) => ServerFrame::Ack {
                        id: &id,
                        ticket: &ticket,
                    }
                    .to_text(),
                    Err(e) => error_frame(Some(&id), e.code(), &e.to_string()),
                };
                let _ = replies.send(text);
            }
            .into_actor(self),
        );
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        metrics::ws_connected(UNAUTHENTICATED);
        ctx.run_interval(self.ping_every, |act, ctx| {
            if act.last_seen.elapsed() > act.ping_every * 3 {
                act.close(ctx, CloseCode::Away, "idle: no pong received");
                return;
            }
            let mut socket = act.socket.clone();
            actix_web::rt::spawn(async move {
                let _ = socket.ping(b"").await;
            });
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let role = self
            .device
            .as_ref()
            .map_or(UNAUTHENTICATED, |d| d.role().as_str());
        metrics::ws_disconnected(role);
        for branch in self.branches.drain() {
            let engine = self.engine.clone();
            let id = self.id;
            actix::spawn(async move {
                let _ = engine.ask(&branch, UnsubscribeAll(id)).await;
            });
        }
    }
}

impl StreamHandler<Result<WsMessage, ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<WsMessage, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_seen = Instant::now();
        match msg {
            Ok(WsMessage::Text(text)) => self.on_text(&text, ctx),
            Ok(WsMessage::Ping(bytes)) => {
                let mut socket = self.socket.clone();
                actix_web::rt::spawn(async move {
                    let _ = socket.pong(&bytes).await;
                });
            }
            Ok(WsMessage::Pong(_)) => {}
            Ok(WsMessage::Binary(_)) => {
                self.reply(error_frame(
                    None,
                    "unsupported_frame",
                    "send JSON text frames",
                ));
            }
            Ok(WsMessage::Close(_)) => ctx.stop(),
            Err(ProtocolError::Overflow) => {
                self.close(ctx, CloseCode::Size, "frame_too_large");
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket protocol error");
                self.close(ctx, CloseCode::Protocol, "protocol_error");
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
