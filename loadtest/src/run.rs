//! `loadtest run`: a rush against the engine over its public protocol.
//!
//! Waiters (one task per order, one tablet socket per table) open orders, add lines, fire
//! courses, wait for the ready notice on their table's socket, serve and close. Kitchen screens
//! (`--screens-per-station` sockets per station) receive tickets; one of a station's screens,
//! picked by the ticket's id, starts each ticket and bumps it after its simulated prep time.
//! Expo bumps a fire when `expo_ready` arrives. Every delivery is counted per (ticket, screen)
//! and checked at the end, and every order the engine acknowledged is read back over REST.
//!
//! Screens and tablets reconnect with backoff when their socket closes and resume after the
//! last position they saw, resending the commands still unanswered with the same ids. With
//! `--chaos-kill-at`, the spawned server is killed (SIGKILL) during the rush and started again
//! on the same journal, and REST commands are retried with the same Idempotency-Key until
//! answered.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::auth::Tokens;
use crate::menu::Layout;
use crate::metrics::Recorder;
use crate::plan::{Arrival, OrderPlan, Planner, Shape};
use crate::proto::{self, Frame, Socket, TicketBody, Topic};
use crate::report;
use crate::server::{
    cpu_seconds, machine_busy_seconds, memory_of, Memory, Restart, ServerArgs, Target,
};

/// Flags of `loadtest run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Mean rate at which new orders arrive (open loop: they arrive whether or not the engine
    /// keeps up).
    #[arg(long, default_value_t = 50.0)]
    pub orders_per_sec: f64,
    /// Seconds of arrivals; a drain phase follows.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Branches (restaurants) of the chain, `load-1` to `load-N`.
    #[arg(long, default_value_t = 2)]
    pub branches: usize,
    /// Tables a branch (one waiter tablet socket each).
    #[arg(long, default_value_t = 40)]
    pub tables: usize,
    /// Cooking stations a branch (expo comes on top).
    #[arg(long, default_value_t = 4)]
    pub stations: usize,
    /// Kitchen screens following each station, expo included.
    #[arg(long, default_value_t = 2)]
    pub screens_per_station: usize,
    /// Seeds the workload: the same seed and flags give the same orders at the same offsets.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How orders arrive.
    #[arg(long, value_enum, default_value_t = Arrival::Poisson)]
    pub arrival: Arrival,
    /// Simulated cooking time of a ticket, drawn between these (ms).
    #[arg(long, default_value_t = 50)]
    pub prep_min_ms: u32,
    /// See --prep-min-ms.
    #[arg(long, default_value_t = 200)]
    pub prep_max_ms: u32,
    /// Pause between serving one course and firing the next (ms).
    #[arg(long, default_value_t = 100)]
    pub course_gap_ms: u32,
    /// Longest wait, after the last arrival, for orders in flight to close (s).
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// Orders in flight at once; arrivals beyond it are skipped and counted.
    #[arg(long, default_value_t = 20_000)]
    pub max_in_flight: usize,
    /// REST requests in flight at once: the devices of the chain, each waiting for its answer.
    /// Bounds the load test's connections (and file descriptors) when the server falls behind;
    /// a request that waits for a slot counts its wait in its latency.
    #[arg(long, default_value_t = 2000)]
    pub max_http_in_flight: usize,
    /// The run fails when more than this share of commands fail.
    #[arg(long, default_value_t = 0.001)]
    pub max_error_ratio: f64,
    /// A REST command's time limit (ms).
    #[arg(long, default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Send an Idempotency-Key with every mutating REST call, as tablets do.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub idempotency_keys: bool,
    /// Chaos: kill the spawned server with SIGKILL this many seconds after the first order, and
    /// start it again at once on the same journal, port and signing key (repeatable, or
    /// comma-separated). Clients reconnect and resume; REST commands are retried with the same
    /// Idempotency-Key on transport errors, timeouts and 503. Needs `--server spawn`.
    #[arg(long, value_name = "SECS", value_delimiter = ',')]
    pub chaos_kill_at: Vec<f64>,
    /// How long a REST command is retried before it counts as failed (with `--chaos-kill-at`,
    /// or when a replica shedding load refused it with `overloaded`), and how long a screen
    /// or tablet tries to reconnect (s).
    #[arg(long, default_value_t = 60)]
    pub retry_deadline: u64,
    /// The report folder [default: target/loadtest-reports/<time>-<journal>-<rate>ps, beside
    /// the build folder this binary is in].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// What the engine answers for an order, reduced.
#[derive(Deserialize)]
struct OrderAnswer {
    id: String,
    #[serde(default)]
    tickets: Vec<TicketBody>,
}

/// An order the engine acknowledged opening, and what it acknowledged since: read back after
/// the run.
#[derive(Clone)]
struct AckedOrder {
    plan: Arc<OrderPlan>,
    lines_acked: bool,
    fires_sent: u32,
    fires_acked: u32,
    tickets: Vec<String>,
    served: Vec<u64>,
    closed: bool,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// One fire of one order, as the load test follows it.
struct FireTrack {
    sent: Instant,
    acked: Option<Instant>,
    expo_bump_sent: Option<Instant>,
    expo_acked: bool,
    ready_seen: bool,
}

/// One ticket, as its station's screens receive it.
struct TicketTrack {
    order_id: String,
    fire_no: u32,
    branch: usize,
    station: usize,
    /// Lines on the ticket in the fire's answer: set when the fire was acknowledged.
    confirmed_lines: Option<usize>,
    seen_lines: Option<usize>,
    line_mismatch: bool,
    /// The screens (bit per screen index) that received it.
    screens: u64,
    complete: bool,
}

type FireKey = (String, u32);

#[derive(Default)]
struct Counters {
    orders_planned: AtomicU64,
    orders_skipped: AtomicU64,
    orders_opened: AtomicU64,
    orders_completed: AtomicU64,
    orders_failed: AtomicU64,
    orders_stalled: AtomicU64,
    lines_added: AtomicU64,
    fires: AtomicU64,
    tickets_fired: AtomicU64,
    events_redelivered: AtomicU64,
    tickets_duplicated: AtomicU64,
    ready_received: AtomicU64,
    ready_duplicated: AtomicU64,
    ready_unexpected: AtomicU64,
    screens_before_ack: AtomicU64,
    /// Sockets the server closed, or that failed, while it was not being killed.
    sockets_closed: AtomicU64,
    /// Sockets that closed because the server was killed.
    sockets_closed_by_kill: AtomicU64,
    reconnects: AtomicU64,
    reconnects_failed: AtomicU64,
    resets: AtomicU64,
    /// REST commands sent more than once, and their extra sends.
    rest_retried: AtomicU64,
    rest_retries: AtomicU64,
    /// Websocket commands resent after a reconnect, and their extra sends.
    ws_retried: AtomicU64,
    ws_resends: AtomicU64,
    opens_unanswered: AtomicU64,
}

struct Shared {
    rec: Recorder,
    layout: Layout,
    args: RunArgs,
    base: String,
    /// A waiter's token, per branch.
    waiter_tokens: Vec<String>,
    http: reqwest::Client,
    ws_url: String,
    server_addr: SocketAddr,
    run_tag: String,
    /// Kills so far: bumped just before each SIGKILL, so a socket that closes after it knows
    /// why.
    kills: AtomicU64,
    /// Orders acknowledged open, by id.
    acked: Mutex<HashMap<String, AckedOrder>>,
    /// The last kill, set once its restart is ready and taken by the first command answered
    /// after that: when the devices were served again.
    since_kill: Mutex<Option<Instant>>,
    /// Kill -> first command answered after it, one per kill.
    back_after: Mutex<Vec<Duration>>,
    plans: Mutex<HashMap<String, Arc<OrderPlan>>>,
    fires: Mutex<HashMap<FireKey, FireTrack>>,
    tickets: Mutex<HashMap<String, TicketTrack>>,
    waiters: Mutex<HashMap<FireKey, oneshot::Sender<Vec<u64>>>>,
    counts: Counters,
    in_flight: AtomicUsize,
    /// REST requests in flight at once (`--max-http-in-flight`).
    http_slots: tokio::sync::Semaphore,
    completed: Mutex<HashSet<String>>,
    violations: Mutex<Vec<String>>,
    ready_timeout: Duration,
}

impl Shared {
    fn violation(&self, text: String) {
        let mut v = self.violations.lock().expect("lock");
        if v.len() < 20 {
            v.push(text);
        }
    }

    /// A mutating REST call by a waiter of `branch`, measured; the answer's body on success.
    /// With chaos, a transport error, a timeout or a 503 is retried with the same body and
    /// Idempotency-Key until answered or `--retry-deadline` passes; the latency counts from
    /// the first send.
    async fn call(
        &self,
        kind: &'static str,
        branch: usize,
        path: &str,
        body: Option<Value>,
    ) -> Option<String> {
        let url = format!("{}{path}", self.base);
        let key = self.args.idempotency_keys.then(|| {
            let n = KEYS.fetch_add(1, Ordering::Relaxed);
            format!("{}-{n}", self.run_tag)
        });
        // From when the waiter wants to send: a request queued behind the cap below is late,
        // and that lateness counts.
        let sent = Instant::now();
        let deadline = sent + Duration::from_secs(self.args.retry_deadline);
        let mut backoff = Backoff::new();
        let mut attempts = 0u32;
        let (status, text) = loop {
            attempts += 1;
            let mut req = self
                .http
                .post(&url)
                .bearer_auth(&self.waiter_tokens[branch]);
            if let Some(body) = &body {
                req = req.json(body);
            }
            if let Some(key) = &key {
                req = req.header("Idempotency-Key", key);
            }
            let answer = {
                let Ok(_permit) = self.http_slots.acquire().await else {
                    return None;
                };
                match req.send().await {
                    Ok(res) => {
                        let status = res.status();
                        res.text().await.map(|text| (status, text))
                    }
                    Err(e) => Err(e),
                }
            };
            let retry = match &answer {
                Ok((status, _)) => *status == reqwest::StatusCode::SERVICE_UNAVAILABLE,
                Err(_) => true,
            };
            // A replica shedding load refuses new orders first; a command on an order it
            // took is sent again, as a tablet would, and its latency keeps counting.
            let shed = matches!(&answer, Ok((status, text))
                if *status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && text.contains(r#""overloaded""#));
            let again = (self.chaos() && retry) || (shed && kind != "open");
            if again && Instant::now() + backoff.peek() < deadline {
                self.counts.rest_retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff.wait()).await;
                continue;
            }
            if attempts > 1 {
                self.counts.rest_retried.fetch_add(1, Ordering::Relaxed);
            }
            match answer {
                Ok(answer) => break answer,
                Err(e) => {
                    let code = if e.is_timeout() {
                        "timeout"
                    } else {
                        "transport"
                    };
                    self.rec.error(kind, code, || {
                        format!("{path}: {e} (after {attempts} attempt(s))")
                    });
                    return None;
                }
            }
        };
        if status.is_success() {
            self.rec.ack(kind, sent.elapsed());
            self.answered();
            if attempts > 1 {
                self.rec.retried(sent.elapsed());
            }
            return Some(text);
        }
        match serde_json::from_str::<ErrorAnswer>(&text) {
            Ok(e) => self.rec.error(kind, &e.error.code, || {
                format!("{path}: {status} {}", e.error.message)
            }),
            Err(_) => self
                .rec
                .error(kind, &format!("http_{}", status.as_u16()), || {
                    format!("{path}: {}", text.chars().take(200).collect::<String>())
                }),
        }
        None
    }

    /// A command was answered with success: the first after a kill marks the service back.
    fn answered(&self) {
        if self.kills.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(killed) = self.since_kill.lock().expect("lock").take() {
            self.back_after.lock().expect("lock").push(killed.elapsed());
        }
    }

    /// Notes what the engine acknowledged of an order.
    fn update_acked(&self, id: &str, f: impl FnOnce(&mut AckedOrder)) {
        if let Some(o) = self.acked.lock().expect("lock").get_mut(id) {
            f(o);
        }
    }

    /// Whether the run kills the server: clients then retry what the kill interrupted.
    fn chaos(&self) -> bool {
        !self.args.chaos_kill_at.is_empty()
    }

    /// A screen's or tablet's socket closed (`connected_at`: the kills counted when it was
    /// opened): expected when the server was killed since, a failure otherwise.
    fn socket_lost(&self, connected_at: u64, who: &str, why: impl FnOnce() -> String) {
        if self.kills.load(Ordering::Relaxed) != connected_at {
            self.counts
                .sockets_closed_by_kill
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.sockets_closed.fetch_add(1, Ordering::Relaxed);
            self.rec
                .incident("socket_closed", || format!("{who}: {}", why()));
        }
    }

    /// Opens a screen's or tablet's socket again, with backoff, and resumes its topic after
    /// `after`; None when the run stops first or `--retry-deadline` passes.
    async fn reconnect(
        &self,
        link: &Link,
        after: u64,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Socket> {
        let deadline = Instant::now() + Duration::from_secs(self.args.retry_deadline);
        let mut backoff = Backoff::new();
        loop {
            if *stop.borrow() {
                return None;
            }
            let attempt = async {
                let mut ws =
                    proto::connect(&self.ws_url, self.server_addr, link.source, &link.token)
                        .await?;
                let frame = link
                    .topic
                    .subscribe_frame(&link.branch, "resume", Some(after));
                ws.send(Message::text(frame.to_string())).await?;
                anyhow::Ok(ws)
            };
            if let Ok(Ok(ws)) = tokio::time::timeout(Duration::from_secs(5), attempt).await {
                self.counts.reconnects.fetch_add(1, Ordering::Relaxed);
                return Some(ws);
            }
            if Instant::now() > deadline {
                self.counts
                    .reconnects_failed
                    .fetch_add(1, Ordering::Relaxed);
                self.rec.incident("reconnect_failed", || {
                    format!(
                        "{} {:?}: no socket within --retry-deadline",
                        link.branch, link.topic
                    )
                });
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.wait()) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Whether an event frame is new to a socket: moves the socket's position on, and drops
    /// (and counts) an event it was sent twice.
    fn fresh_event(&self, frame: &Frame, position: &mut u64, dedupe: &mut Dedupe) -> bool {
        if let Some(p) = frame.position {
            *position = (*position).max(p);
        }
        if dedupe.fresh(frame.stream.as_ref(), frame.seq) {
            return true;
        }
        self.counts
            .events_redelivered
            .fetch_add(1, Ordering::Relaxed);
        false
    }

    /// A ticket reached one screen of its station (first time on that screen).
    fn ticket_arrived(
        &self,
        screen: &ScreenId,
        ticket: &TicketBody,
        order_id: &str,
        fire_no: u32,
        now: Instant,
    ) {
        let k = self.args.screens_per_station as u32;
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

/// Fires of an order at most (one a course).
const FIRES_AN_ORDER: usize = 2;
/// Tickets of an order on average (a fire makes one a station it cooks at, expo's included).
const TICKETS_AN_ORDER: usize = 5;

static KEYS: AtomicU64 = AtomicU64::new(1);

/// Exponential backoff with jitter: 50 ms doubling up to 1 s, each wait drawn from its upper
/// half so that a kitchen's devices do not all come back at the same instant.
struct Backoff {
    ceiling: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(1);

    fn new() -> Self {
        Self {
            ceiling: Self::FIRST,
        }
    }

    /// The longest the next wait can be.
    fn peek(&self) -> Duration {
        self.ceiling
    }

    fn wait(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (ceiling * 2).min(Self::MAX);
        ceiling / 2 + ceiling.mul_f64(rand::random::<f64>() / 2.0)
    }
}

/// How a screen or tablet (re)connects: its branch, topic, token and source address.
struct Link {
    branch: String,
    topic: Topic,
    token: String,
    source: Option<IpAddr>,
}

/// Which screen a socket is.
#[derive(Debug, Clone)]
struct ScreenId {
    branch: usize,
    /// Index in the layout; expo is `cooking.len()`.
    station: usize,
    index: usize,
}

/// Runs the rush and writes the report; Ok(true) when the run passed.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.orders_per_sec > 0.0,
        "--orders-per-sec must be above 0"
    );
    anyhow::ensure!(
        args.branches >= 1 && args.tables >= 1 && args.stations >= 1,
        "need at least one branch, table and station"
    );
    anyhow::ensure!(
        (1..=64).contains(&args.screens_per_station),
        "--screens-per-station must be 1 to 64"
    );
    if !args.chaos_kill_at.is_empty() {
        anyhow::ensure!(
            args.server.server == "spawn",
            "--chaos-kill-at needs --server spawn: the load test can only kill and restart a server it started itself"
        );
        anyhow::ensure!(
            args.idempotency_keys,
            "--chaos-kill-at needs --idempotency-keys true: a retried command without its key could run twice"
        );
        for &at in &args.chaos_kill_at {
            anyhow::ensure!(
                at > 0.0 && at < args.duration as f64,
                "--chaos-kill-at {at}: a kill must come during the arrivals, after 0 and before --duration {}",
                args.duration
            );
        }
    }
    let started_at = chrono::Utc::now();
    let out = match &args.out {
        Some(o) => o.clone(),
        None => crate::reports_dir().join(format!(
            "{}-{}-{}ps",
            started_at.format("%Y%m%d-%H%M%S"),
            journal_name(&args.server),
            args.orders_per_sec
        )),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let fd_limit = crate::raise_fd_limit();
    let mut target = Target::start(&args.server, &out).await?;
    let result = drive(&args, &mut target, &out, started_at, fd_limit).await;
    let died = target.stop().await;
    let (mut report, passed) = result?;
    if let Ok(Some(status)) = died {
        report.failures.push(format!(
            "the server exited during the run ({status}); see server.log"
        ));
    }
    let passed = passed && report.failures.is_empty();
    report.write(&out, passed)?;
    if !args.quiet {
        eprintln!();
    }
    print!("{}", std::fs::read_to_string(out.join("summary.txt"))?);
    Ok(passed)
}

fn journal_name(server: &ServerArgs) -> String {
    if server.server == "spawn" {
        match server.journal {
            crate::server::JournalKind::Embedded => "embedded".into(),
            crate::server::JournalKind::Postgres => "postgres".into(),
        }
    } else {
        "external".into()
    }
}

async fn drive(
    args: &RunArgs,
    target: &mut Target,
    out: &std::path::Path,
    started_at: chrono::DateTime<chrono::Utc>,
    fd_limit: Option<u64>,
) -> anyhow::Result<(report::RunReport, bool)> {
    let layout = Layout::new(args.branches, args.stations, args.tables);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.request_timeout_ms))
        .tcp_nodelay(true)
        .build()?;
    let tokens = Tokens::new(
        &args.server.auth,
        &target.jwt_secret,
        Duration::from_secs(args.duration + args.drain_timeout),
    );
    layout.configure(&http, &target.base, &tokens).await?;

    // Every screen and tablet connects and has its snapshot before the first order.
    let mut screens = Vec::new();
    for (b, branch) in layout.branches.iter().enumerate() {
        for (s, station) in layout.stations().enumerate() {
            for i in 0..args.screens_per_station {
                screens.push((
                    ScreenId {
                        branch: b,
                        station: s,
                        index: i,
                    },
                    branch.clone(),
                    Topic::Station(station.to_owned()),
                ));
            }
        }
    }
    let mut tablets = Vec::new();
    for (b, branch) in layout.branches.iter().enumerate() {
        for table in &layout.tables {
            tablets.push((b, branch.clone(), Topic::Table(table.clone())));
        }
    }
    let limit = Duration::from_secs(30);
    let ws_url = target.ws_url.clone();
    let server_addr = proto::resolve(&ws_url).await?;
    let per_address = args.server.sockets_per_address;
    // Screens and tablets, each with its device's token.
    let all: Vec<(&String, &Topic, String)> = screens
        .iter()
        .map(|(_, b, t)| (b, t))
        .chain(tablets.iter().map(|(_, b, t)| (b, t)))
        .enumerate()
        .map(|(n, (b, t))| (b, t, tokens.socket(b, t, n)))
        .collect();
    let links: Vec<Link> = all
        .iter()
        .enumerate()
        .map(|(n, (branch, topic, token))| Link {
            branch: (*branch).clone(),
            topic: (*topic).clone(),
            token: token.clone(),
            source: proto::source_address(&server_addr, n, per_address),
        })
        .collect();
    let mut sockets: Vec<(Socket, u64)> = futures_util::stream::iter(links.iter().map(|link| {
        proto::connect_subscribed(
            &ws_url,
            server_addr,
            link.source,
            &link.token,
            &link.branch,
            &link.topic,
            limit,
        )
    }))
    .buffered(100)
    .collect::<Vec<anyhow::Result<(Socket, u64)>>>()
    .await
    .into_iter()
    .collect::<anyhow::Result<_>>()?;
    let mut links = links;
    let tablet_sockets = sockets.split_off(screens.len());
    let tablet_links = links.split_off(screens.len());
    let screen_sockets = sockets;
    let screen_links = links;
    let memory_before = target.memory();

    let duration = Duration::from_secs(args.duration);
    let drain_limit = Duration::from_secs(args.drain_timeout);
    let series_len = (args.duration + args.drain_timeout + 30) as usize;
    // The run's bookkeeping is sized for the orders it will offer (with room for chance), so
    // no map grows, rehashing tens of thousands of entries under its lock, in the middle of
    // the run: the screens and waiters waiting on that lock would show it as engine latency.
    let orders = (args.orders_per_sec * args.duration as f64 * 1.25) as usize + 64;
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        rec: Recorder::new(t0, series_len),
        layout: layout.clone(),
        args: args.clone(),
        base: target.base.clone(),
        waiter_tokens: layout.branches.iter().map(|b| tokens.waiter(b)).collect(),
        http,
        ws_url: ws_url.clone(),
        server_addr,
        kills: AtomicU64::new(0),
        acked: Mutex::new(HashMap::with_capacity(orders)),
        since_kill: Mutex::new(None),
        back_after: Mutex::new(Vec::new()),
        run_tag: format!(
            "lt{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ),
        plans: Mutex::new(HashMap::with_capacity(orders)),
        fires: Mutex::new(HashMap::with_capacity(orders * FIRES_AN_ORDER)),
        tickets: Mutex::new(HashMap::with_capacity(orders * TICKETS_AN_ORDER)),
        waiters: Mutex::new(HashMap::new()),
        counts: Counters::default(),
        in_flight: AtomicUsize::new(0),
        http_slots: tokio::sync::Semaphore::new(args.max_http_in_flight.max(1)),
        completed: Mutex::new(HashSet::with_capacity(orders)),
        violations: Mutex::new(Vec::new()),
        ready_timeout: duration + drain_limit,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut socket_tasks = Vec::new();
    for (((id, _, _), link), (ws, position)) in
        screens.into_iter().zip(screen_links).zip(screen_sockets)
    {
        socket_tasks.push(tokio::spawn(screen_task(
            shared.clone(),
            id,
            link,
            ws,
            position,
            stop_rx.clone(),
        )));
    }
    for (link, (ws, position)) in tablet_links.into_iter().zip(tablet_sockets) {
        socket_tasks.push(tokio::spawn(tablet_task(
            shared.clone(),
            link,
            ws,
            position,
            stop_rx.clone(),
        )));
    }

    // Memory and CPU, once a second (the server's when it runs here).
    let memory_samples: Arc<Mutex<Vec<(f64, Memory)>>> = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (shared, samples, mut stop) = (shared.clone(), memory_samples.clone(), stop_rx.clone());
        let pids = target.pid_cell();
        let current = move || Some(pids.load(Ordering::Relaxed)).filter(|&p| p != 0);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut pid = current();
            let mut last = (
                Instant::now(),
                pid.and_then(|p| cpu_seconds(Some(p))),
                cpu_seconds(None),
                machine_busy_seconds(),
            );
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let now = Instant::now();
                // A restarted server is another process: its CPU time starts again.
                let same = current() == pid;
                pid = current();
                let (server_cpu, own_cpu, machine_cpu) = (
                    pid.and_then(|p| cpu_seconds(Some(p))),
                    cpu_seconds(None),
                    machine_busy_seconds(),
                );
                let dt = (now - last.0).as_secs_f64().max(1e-3);
                let rate = |a: Option<f64>, b: Option<f64>| Some((a? - b?) / dt);
                shared.rec.cpu(
                    now,
                    if same { rate(server_cpu, last.1) } else { None },
                    rate(own_cpu, last.2),
                    rate(machine_cpu, last.3),
                );
                last = (now, server_cpu, own_cpu, machine_cpu);
                // Down between a kill and its restart.
                let Some(pid) = pid else { continue };
                match memory_of(pid) {
                    Some(m) => {
                        shared.rec.rss(now, m.rss_bytes);
                        samples
                            .lock()
                            .expect("lock")
                            .push(((now - t0).as_secs_f64(), m));
                    }
                    // Unreadable while the process is there: this process is short of file
                    // descriptors, not the server gone.
                    None if std::path::Path::new(&format!("/proc/{pid}")).exists() => {}
                    // Killed by the chaos since it was read.
                    None if current() != Some(pid) => {}
                    None => {
                        shared
                            .rec
                            .incident("server_gone", || format!("process {pid} is gone"));
                        return;
                    }
                }
            }
        })
    };
    let progress = (!args.quiet).then(|| {
        let (shared, mut stop) = (shared.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let c = &shared.counts;
                eprintln!(
                    "[{:>4.0}s] opened {} completed {} in flight {} errors {} frames {}",
                    t0.elapsed().as_secs_f64(),
                    c.orders_opened.load(Ordering::Relaxed),
                    c.orders_completed.load(Ordering::Relaxed),
                    shared.in_flight.load(Ordering::Relaxed),
                    shared.rec.error_count(),
                    shared.rec.frames_total(),
                );
            }
        })
    });

    // The rush: open loop, at the seeded arrival times.
    let mut planner = Planner::new(
        args.seed,
        Shape {
            rate: args.orders_per_sec,
            arrival: args.arrival,
            prep_min_ms: args.prep_min_ms,
            prep_max_ms: args.prep_max_ms,
            course_gap_ms: args.course_gap_ms,
        },
        &layout,
    );
    let rush = async {
        loop {
            let plan = planner.next_order();
            if plan.at >= duration {
                break;
            }
            tokio::time::sleep_until((t0 + plan.at).into()).await;
            shared.counts.orders_planned.fetch_add(1, Ordering::Relaxed);
            if shared.in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
                shared.counts.orders_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            shared.in_flight.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(order_task(shared.clone(), Arc::new(plan)));
        }
        let load_end = Instant::now();

        // Drain: no new orders; wait for those in flight, bounded.
        while shared.in_flight.load(Ordering::Relaxed) > 0 && load_end.elapsed() < drain_limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drained_in = load_end.elapsed();
        // Stragglers: the screens that do not act on a ticket may see it a moment later, and
        // a server that fell behind is still sending. Wait until the frames stop (at most
        // 10 s).
        let settle = Instant::now();
        let mut frames = shared.rec.frames_total();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now_frames = shared.rec.frames_total();
            if now_frames == frames || settle.elapsed() > Duration::from_secs(10) {
                break;
            }
            frames = now_frames;
        }
        (load_end, drained_in)
    };
    // The chaos: at each time, SIGKILL and an immediate restart on the same journal.
    let chaos = chaos(args, &shared, target, t0);
    let (chaos, (load_end, drained_in)) = tokio::join!(chaos, rush);
    // The orders' fate, read at one moment: the end of the run.
    let c = &shared.counts;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let in_flight_at_end = shared.in_flight.load(Ordering::Relaxed) as u64;
    let (opened, completed, failed_orders, stalled_orders) = (
        load(&c.orders_opened),
        load(&c.orders_completed),
        load(&c.orders_failed),
        load(&c.orders_stalled),
    );
    let memory_after = target.memory();
    // The server's own view, for whoever reads the report.
    let metrics_text = scrape_metrics(&shared.http, &target.base).await;
    if let Some(text) = &metrics_text {
        let _ = std::fs::write(out.join("metrics.txt"), text);
    }
    // Every order the engine acknowledged, read back from it.
    let readback = read_back(&shared, &tokens).await;
    let _ = stop_tx.send(true);
    for t in socket_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    sampler.abort();
    if let Some(p) = progress {
        p.abort();
    }
    let finished = Instant::now();
    let seconds = (finished - t0).as_secs() as usize + 1;
    let measured = shared.rec.snapshot(seconds.min(series_len));
    let verification = verify(&shared);
    let samples = memory_samples.lock().expect("lock").clone();

    let ok = load(&shared.rec.commands_ok);
    let failed = load(&shared.rec.commands_failed);
    let load_secs = (load_end - t0).as_secs_f64().max(1e-9);
    let counts = json!({
        "orders_planned": load(&c.orders_planned),
        "orders_skipped_over_in_flight_cap": load(&c.orders_skipped),
        "orders_opened": opened,
        "orders_completed": completed,
        "orders_failed": failed_orders,
        "orders_stalled_no_ready_notice": stalled_orders,
        "orders_in_flight_at_end": in_flight_at_end,
        "lines_added": load(&c.lines_added),
        "fires": load(&c.fires),
        "tickets_fired": load(&c.tickets_fired),
        "commands_acked": ok,
        "commands_failed": failed,
        "frames_received": shared.rec.frames_total(),
        "sockets": {
            "screens": args.branches * (args.stations + 1) * args.screens_per_station,
            "tablets": args.branches * args.tables,
            "closed_unexpectedly": load(&c.sockets_closed),
            "closed_by_kill": load(&c.sockets_closed_by_kill),
            "reconnects": load(&c.reconnects),
            "reconnects_failed": load(&c.reconnects_failed),
            "reset_snapshots": load(&c.resets),
        },
        "rest_commands_retried": load(&c.rest_retried),
        "rest_retries": load(&c.rest_retries),
        "ws_commands_resent": load(&c.ws_retried),
        "ws_resends": load(&c.ws_resends),
    });
    let throughput = json!({
        "orders_per_sec_offered": args.orders_per_sec,
        "orders_per_sec_opened": opened as f64 / load_secs,
        "orders_per_sec_completed": completed as f64 / (finished - t0).as_secs_f64(),
        "commands_per_sec": ok as f64 / (finished - t0).as_secs_f64(),
        "frames_per_sec": shared.rec.frames_total() as f64 / (finished - t0).as_secs_f64(),
        "load_seconds": load_secs,
        "drain_seconds": drained_in.as_secs_f64(),
    });

    let mut failures = verification.failures();
    failures.extend(readback.failures());
    if let Some(f) = &chaos.failure {
        failures.push(f.clone());
    }
    if load(&c.reconnects_failed) > 0 {
        failures.push(format!(
            "{} screen or tablet socket(s) could not reconnect within --retry-deadline {} s",
            load(&c.reconnects_failed),
            args.retry_deadline
        ));
    }
    let chaos_json = (!args.chaos_kill_at.is_empty()).then(|| {
        let downtimes: Vec<f64> = chaos.kills.iter().map(|(_, r)| r.downtime_ms).collect();
        let back_after = shared.back_after.lock().expect("lock").clone();
        let replays_now = metrics_text.as_deref().map(replays);
        json!({
            "kills": chaos.kills.len(),
            "kills_planned_at_s": args.chaos_kill_at,
            "restarts": chaos.kills.iter().enumerate().map(|(i, (at, r))| {
                let mut r = json!(r);
                r["at_s"] = json!((at * 1000.0).round() / 1000.0);
                // Kill -> the first command a device had answered after it.
                r["first_answer_ms"] = json!(back_after.get(i).map(|d| d.as_secs_f64() * 1000.0));
                r
            }).collect::<Vec<_>>(),
            "downtime_ms_max": downtimes.iter().copied().fold(0.0, f64::max),
            "downtime_ms_total": downtimes.iter().sum::<f64>(),
            "sockets_closed_by_kill": load(&c.sockets_closed_by_kill),
            "sockets_closed_otherwise": load(&c.sockets_closed),
            "reconnects": load(&c.reconnects),
            "reconnects_failed": load(&c.reconnects_failed),
            "reset_snapshots": load(&c.resets),
            "rest_commands_retried": load(&c.rest_retried),
            "rest_retries": load(&c.rest_retries),
            "ws_commands_resent": load(&c.ws_retried),
            "ws_resends": load(&c.ws_resends),
            "answered_by_replay": replays_now.map(|n| n + chaos.replays_before_kills),
            "retried_command_ack": measured.retried,
            "tickets_lost": verification.lost,
            "tickets_duplicated": verification.duplicated,
            "ready_notices_lost": verification.ready_lost,
            "ready_notices_duplicated": verification.ready_duplicated,
            "orders_acknowledged": readback.acknowledged,
            "orders_verified": readback.verified,
            "orders_lost": readback.missing,
            "orders_mismatched": readback.mismatched,
            "orders_duplicated": readback.duplicated,
        })
    });
    let attempted = ok + failed;
    let ratio = if attempted == 0 {
        0.0
    } else {
        failed as f64 / attempted as f64
    };
    if ratio > args.max_error_ratio {
        failures.push(format!(
            "{failed} of {attempted} commands failed ({:.3}%), above --max-error-ratio {}",
            ratio * 100.0,
            args.max_error_ratio
        ));
    }
    if let Some(n) = measured.errors.get("rate_limited") {
        failures.push(format!(
            "{n} websocket frames were refused as rate_limited: a kitchen screen sent more than the engine's ws_messages_per_second; spread the kitchen over more branches or screens (--branches, --screens-per-station), or raise the limit (--server-env RAIL_WS_MESSAGES_PER_SECOND=...)"
        ));
    }
    let stalled = stalled_orders + in_flight_at_end;
    if stalled > 0 {
        failures.push(format!(
            "{stalled} order(s) did not finish ({in_flight_at_end} still in flight when the run ended, {}s after the last arrival; {} without a ready notice)",
            args.drain_timeout,
            stalled_orders
        ));
    }
    if load(&c.sockets_closed) > 0 {
        failures.push(format!(
            "{} screen or tablet socket(s) closed during the run",
            load(&c.sockets_closed)
        ));
    }
    if completed == 0 {
        failures.push("no order completed".into());
    }
    if load(&c.orders_skipped) > 0 {
        failures.push(format!(
            "{} arrival(s) skipped: more than --max-in-flight {} orders were in flight",
            load(&c.orders_skipped),
            args.max_in_flight
        ));
    }
    let passed = failures.is_empty();
    let report = report::RunReport {
        started_at,
        finished_at: chrono::Utc::now(),
        config: config_json(args, target, fd_limit),
        counts,
        throughput,
        verification: {
            let mut v = verification.to_json();
            v["orders_read_back"] = readback.to_json();
            v
        },
        verification_line: verification.summary_line(args.screens_per_station),
        readback_line: readback.summary_line(),
        chaos: chaos_json,
        measured,
        memory_before,
        memory_after,
        memory_samples: samples,
        failures,
        load_seconds: load_secs,
    };
    Ok((report, passed))
}

fn config_json(args: &RunArgs, target: &Target, fd_limit: Option<u64>) -> Value {
    json!({
        "server": target.description,
        "spawned": target.spawned,
        "journal": journal_name(&args.server),
        "orders_per_sec": args.orders_per_sec,
        "duration_s": args.duration,
        "branches": args.branches,
        "tables": args.tables,
        "stations": args.stations,
        "screens_per_station": args.screens_per_station,
        "seed": args.seed,
        "arrival": args.arrival,
        "prep_ms": [args.prep_min_ms, args.prep_max_ms],
        "course_gap_ms": args.course_gap_ms,
        "drain_timeout_s": args.drain_timeout,
        "max_in_flight": args.max_in_flight,
        "max_http_in_flight": args.max_http_in_flight,
        "max_error_ratio": args.max_error_ratio,
        "request_timeout_ms": args.request_timeout_ms,
        "idempotency_keys": args.idempotency_keys,
        "chaos_kill_at_s": args.chaos_kill_at,
        "retry_deadline_s": args.retry_deadline,
        "open_files_limit": fd_limit,
        "machine": crate::server::machine(),
        "sockets_per_address": args.server.sockets_per_address,
        "server_env": args.server.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "loadtest_version": env!("CARGO_PKG_VERSION"),
    })
}

/// What the chaos did.
#[derive(Default)]
struct ChaosOutcome {
    /// Each kill: seconds since the first order, and the restart.
    kills: Vec<(f64, Restart)>,
    /// Retries answered from the journal by the server processes that were killed (their
    /// counter read just before each kill).
    replays_before_kills: u64,
    failure: Option<String>,
}

/// At each `--chaos-kill-at`, kills the spawned server with SIGKILL and starts it again at
/// once on the same journal; returns when the last restart is ready.
async fn chaos(args: &RunArgs, shared: &Shared, target: &mut Target, t0: Instant) -> ChaosOutcome {
    let mut times = args.chaos_kill_at.clone();
    times.sort_by(f64::total_cmp);
    let mut outcome = ChaosOutcome::default();
    for secs in times {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(secs)).into()).await;
        // The replay counter of the process about to die, which the kill takes with it.
        if let Some(text) = scrape_metrics(&shared.http, &target.base).await {
            outcome.replays_before_kills += replays(&text);
        }
        let killed = Instant::now();
        shared.kills.fetch_add(1, Ordering::Relaxed);
        let at = t0.elapsed().as_secs_f64();
        if !args.quiet {
            eprintln!(
                "[{at:>4.0}s] chaos: SIGKILL to the server (pid {})",
                target.pid().unwrap_or(0)
            );
        }
        match target.kill_and_restart(Duration::from_secs(60)).await {
            Ok(restart) => {
                // Answers read after the kill but sent before it do not count: from now on,
                // the first answer comes from the new process.
                *shared.since_kill.lock().expect("lock") = Some(killed);
                if !args.quiet {
                    eprintln!(
                        "[{:>4.0}s] chaos: restarted (pid {}), ready {:.0} ms after the kill",
                        t0.elapsed().as_secs_f64(),
                        restart.new_pid,
                        restart.downtime_ms
                    );
                }
                outcome.kills.push((at, restart));
            }
            Err(e) => {
                outcome.failure = Some(format!(
                    "the server killed at {at:.1} s did not come back: {e:#}"
                ));
                break;
            }
        }
    }
    outcome
}

/// The server's `/metrics` text.
async fn scrape_metrics(http: &reqwest::Client, base: &str) -> Option<String> {
    let res = http
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    res.text().await.ok()
}

/// Retries the server answered from the journal, from its `/metrics` text.
fn replays(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("rail_idempotent_replays_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Every acknowledged order, read back from the engine after the run, and the journal's
/// opened orders against the acknowledged ones.
struct ReadBack {
    acknowledged: u64,
    verified: u64,
    /// Acknowledged, and the engine does not know it.
    missing: u64,
    /// Found, but not as acknowledged (lines, fires, tickets, served lines, closed).
    mismatched: u64,
    /// Could not be read (transport, timeout, another error).
    unreadable: u64,
    /// `order_opened` events in the journals of the run's branches.
    journal_orders: u64,
    /// Of those, orders the load test was never acknowledged.
    unacknowledged_in_journal: u64,
    /// Opens that got no answer (each may have been carried out).
    opens_unanswered: u64,
    /// Orders opened that no acknowledged or unanswered open accounts for: a retried open
    /// that opened a second order.
    duplicated: u64,
    journal_read: bool,
    samples: Vec<String>,
}

impl ReadBack {
    fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.missing > 0 {
            f.push(format!(
                "{} acknowledged order(s) are missing from the engine",
                self.missing
            ));
        }
        if self.mismatched > 0 {
            f.push(format!(
                "{} acknowledged order(s) differ from what was acknowledged",
                self.mismatched
            ));
        }
        if self.unreadable > 0 {
            f.push(format!(
                "{} acknowledged order(s) could not be read back",
                self.unreadable
            ));
        }
        if self.duplicated > 0 {
            f.push(format!(
                "{} order(s) in the journal that no open accounts for: opened twice",
                self.duplicated
            ));
        }
        if !self.journal_read {
            f.push("the journal could not be read back (GET .../events)".into());
        }
        f
    }

    fn summary_line(&self) -> String {
        format!(
            "{} acknowledged orders read back: {} as acknowledged, {} missing, {} different, {} unreadable; journal {} opened, {} duplicated",
            self.acknowledged,
            self.verified,
            self.missing,
            self.mismatched,
            self.unreadable,
            self.journal_orders,
            self.duplicated
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "acknowledged": self.acknowledged,
            "verified": self.verified,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "unreadable": self.unreadable,
            "journal_orders_opened": self.journal_orders,
            "journal_orders_unacknowledged": self.unacknowledged_in_journal,
            "opens_unanswered": self.opens_unanswered,
            "duplicated": self.duplicated,
            "journal_read": self.journal_read,
            "samples": self.samples,
        })
    }
}

/// One event of `GET .../events`, reduced.
#[derive(Deserialize)]
struct JournalEvent {
    stream: String,
    position: u64,
    kind: String,
}

/// Reads every acknowledged order back over REST and compares it with what the engine
/// acknowledged; then reads each branch's journal for orders opened twice.
async fn read_back(shared: &Shared, tokens: &Tokens) -> ReadBack {
    let layout = &shared.layout;
    let orders: Vec<(String, AckedOrder)> = shared
        .acked
        .lock()
        .expect("lock")
        .iter()
        .map(|(id, o)| (id.clone(), o.clone()))
        .collect();
    let mut rb = ReadBack {
        acknowledged: orders.len() as u64,
        verified: 0,
        missing: 0,
        mismatched: 0,
        unreadable: 0,
        journal_orders: 0,
        unacknowledged_in_journal: 0,
        opens_unanswered: shared.counts.opens_unanswered.load(Ordering::Relaxed),
        duplicated: 0,
        journal_read: true,
        samples: Vec::new(),
    };
    let answers = futures_util::stream::iter(orders.iter().map(|(id, acked)| {
        let plan = &acked.plan;
        let url = format!(
            "{}/api/v1/branches/{}/orders/{id}",
            shared.base, layout.branches[plan.branch]
        );
        let token = &shared.waiter_tokens[plan.branch];
        async move {
            let res = shared.http.get(&url).bearer_auth(token).send().await?;
            let status = res.status();
            let text = res.text().await?;
            anyhow::Ok((status, text))
        }
    }))
    .buffered(16)
    .collect::<Vec<_>>()
    .await;
    for ((id, acked), answer) in orders.iter().zip(answers) {
        let problem = match answer {
            Ok((status, text)) if status.is_success() => {
                match serde_json::from_str::<proto::OrderBody>(&text) {
                    Ok(order) => order_differs(layout, acked, &order),
                    Err(e) => Some(format!("unreadable answer: {e}")),
                }
            }
            Ok((status, _)) if status == reqwest::StatusCode::NOT_FOUND => {
                rb.missing += 1;
                if rb.samples.len() < 20 {
                    rb.samples
                        .push(format!("order {id}: acknowledged, now unknown (404)"));
                }
                continue;
            }
            Ok((status, text)) => {
                rb.unreadable += 1;
                if rb.samples.len() < 20 {
                    rb.samples.push(format!(
                        "order {id}: {status} {}",
                        text.chars().take(200).collect::<String>()
                    ));
                }
                continue;
            }
            Err(e) => {
                rb.unreadable += 1;
                if rb.samples.len() < 20 {
                    rb.samples.push(format!("order {id}: {e:#}"));
                }
                continue;
            }
        };
        match problem {
            None => rb.verified += 1,
            Some(p) => {
                rb.mismatched += 1;
                if rb.samples.len() < 20 {
                    rb.samples.push(format!("order {id}: {p}"));
                }
            }
        }
    }
    // The journal: every opened order, by its stream.
    let mut opened: HashMap<String, u64> = HashMap::new();
    for branch in &layout.branches {
        let token = tokens.manager(branch);
        let mut after = 0u64;
        loop {
            let url = format!(
                "{}/api/v1/branches/{branch}/events?after={after}&limit=1000",
                shared.base
            );
            let page = async {
                let res = shared.http.get(&url).bearer_auth(&token).send().await?;
                anyhow::Ok(res.error_for_status()?.json::<Vec<JournalEvent>>().await?)
            };
            let events = match page.await {
                Ok(events) => events,
                Err(e) => {
                    rb.journal_read = false;
                    rb.samples.push(format!("reading {url}: {e:#}"));
                    break;
                }
            };
            let Some(last) = events.last() else { break };
            after = last.position;
            for e in events.iter().filter(|e| e.kind == "order_opened") {
                if let Some(id) = e.stream.strip_prefix("order/") {
                    *opened.entry(id.to_owned()).or_default() += 1;
                }
            }
        }
    }
    let acked: HashSet<&str> = orders.iter().map(|(id, _)| id.as_str()).collect();
    rb.journal_orders = opened.values().sum();
    rb.unacknowledged_in_journal = opened
        .keys()
        .filter(|id| !acked.contains(id.as_str()))
        .count() as u64;
    let twice = opened.values().filter(|&&n| n > 1).count() as u64;
    rb.duplicated = rb
        .unacknowledged_in_journal
        .saturating_sub(rb.opens_unanswered)
        + twice;
    rb
}

/// How an order read back differs from what the engine acknowledged, if it does.
fn order_differs(layout: &Layout, acked: &AckedOrder, order: &proto::OrderBody) -> Option<String> {
    let plan = &acked.plan;
    if order.table != layout.tables[plan.table] || order.guests != Some(plan.guests) {
        return Some(format!(
            "table {} with {:?} guests, acknowledged {} with {}",
            order.table, order.guests, layout.tables[plan.table], plan.guests
        ));
    }
    let lines_match = order.lines.len() == plan.lines.len()
        && order.lines.iter().zip(&plan.lines).all(|(got, want)| {
            got.item == layout.items[want.item].id
                && got.quantity == want.quantity
                && got.modifiers.iter().eq(want.modifiers.iter())
                && got.seat == Some(want.seat)
                && got.course == want.course
        });
    if acked.lines_acked && !lines_match {
        return Some(format!(
            "{} line(s) not as added ({} acknowledged)",
            order.lines.len(),
            plan.lines.len()
        ));
    }
    if !acked.lines_acked && !order.lines.is_empty() && !lines_match {
        return Some(format!(
            "{} line(s), none or {} expected",
            order.lines.len(),
            plan.lines.len()
        ));
    }
    if order.fires < acked.fires_acked || order.fires > acked.fires_sent {
        return Some(format!(
            "{} fire(s), {} acknowledged of {} sent",
            order.fires, acked.fires_acked, acked.fires_sent
        ));
    }
    if let Some(t) = acked
        .tickets
        .iter()
        .find(|t| !order.tickets.iter().any(|o| &o.id == *t))
    {
        return Some(format!("acknowledged ticket {t} is not on the order"));
    }
    if let Some(l) = acked.served.iter().find(|&&l| {
        !order
            .lines
            .iter()
            .any(|o| o.id == l && o.status == "served")
    }) {
        return Some(format!("line {l} was served, and is not"));
    }
    if acked.closed && order.closed_at.is_none() {
        return Some("acknowledged closed, and is open".into());
    }
    None
}

/// One order, from open to close.
async fn order_task(shared: Arc<Shared>, plan: Arc<OrderPlan>) {
    let opened_at = Instant::now();
    let outcome = order_steps(&shared, &plan).await;
    let c = &shared.counts;
    match outcome {
        Outcome::Completed => {
            c.orders_completed.fetch_add(1, Ordering::Relaxed);
            shared.rec.order_completed(opened_at.elapsed());
        }
        Outcome::Failed => {
            c.orders_failed.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Stalled => {
            c.orders_stalled.fetch_add(1, Ordering::Relaxed);
        }
    }
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
}

enum Outcome {
    Completed,
    Failed,
    Stalled,
}

async fn order_steps(shared: &Shared, plan: &Arc<OrderPlan>) -> Outcome {
    let layout = &shared.layout;
    let branch = &layout.branches[plan.branch];
    let table = &layout.tables[plan.table];
    let orders = format!("/api/v1/branches/{branch}/orders");
    let Some(body) = shared
        .call(
            "open",
            plan.branch,
            &orders,
            Some(json!({"table": table, "guests": plan.guests})),
        )
        .await
    else {
        shared
            .counts
            .opens_unanswered
            .fetch_add(1, Ordering::Relaxed);
        return Outcome::Failed;
    };
    let Ok(order) = serde_json::from_str::<OrderAnswer>(&body) else {
        shared.rec.incident("unreadable_answer", || body.clone());
        return Outcome::Failed;
    };
    shared.counts.orders_opened.fetch_add(1, Ordering::Relaxed);
    shared.rec.order_started();
    let id = order.id;
    shared
        .plans
        .lock()
        .expect("lock")
        .insert(id.clone(), plan.clone());
    shared.acked.lock().expect("lock").insert(
        id.clone(),
        AckedOrder {
            plan: plan.clone(),
            lines_acked: false,
            fires_sent: 0,
            fires_acked: 0,
            tickets: Vec::new(),
            served: Vec::new(),
            closed: false,
        },
    );
    let order_path = format!("{orders}/{id}");
    let lines: Vec<Value> = plan
        .lines
        .iter()
        .map(|l| {
            json!({
                "item": layout.items[l.item].id,
                "quantity": l.quantity,
                "modifiers": l.modifiers,
                "seat": l.seat,
                "course": l.course,
            })
        })
        .collect();
    let n_lines = lines.len() as u64;
    if shared
        .call(
            "add_lines",
            plan.branch,
            &format!("{order_path}/lines"),
            Some(json!({ "lines": lines })),
        )
        .await
        .is_none()
    {
        return Outcome::Failed;
    }
    shared.update_acked(&id, |o| o.lines_acked = true);
    shared
        .counts
        .lines_added
        .fetch_add(n_lines, Ordering::Relaxed);
    for course in 1..=plan.courses {
        let fire_no = u32::from(course);
        let key: FireKey = (id.clone(), fire_no);
        let (ready_tx, ready_rx) = oneshot::channel();
        shared
            .waiters
            .lock()
            .expect("lock")
            .insert(key.clone(), ready_tx);
        shared.fires.lock().expect("lock").insert(
            key.clone(),
            FireTrack {
                sent: Instant::now(),
                acked: None,
                expo_bump_sent: None,
                expo_acked: false,
                ready_seen: false,
            },
        );
        shared.update_acked(&id, |o| o.fires_sent += 1);
        let Some(body) = shared
            .call(
                "fire",
                plan.branch,
                &format!("{order_path}/fire"),
                Some(json!({ "course": course })),
            )
            .await
        else {
            shared.waiters.lock().expect("lock").remove(&key);
            return Outcome::Failed;
        };
        let acked = Instant::now();
        let Ok(answer) = serde_json::from_str::<OrderAnswer>(&body) else {
            shared.rec.incident("unreadable_answer", || body.clone());
            return Outcome::Failed;
        };
        let fired: Vec<&TicketBody> = answer
            .tickets
            .iter()
            .filter(|t| t.fire_no == fire_no)
            .collect();
        if fired.is_empty() {
            shared.violation(format!(
                "order {id}: the answer to firing course {course} holds no ticket of fire {fire_no}"
            ));
        }
        shared.update_acked(&id, |o| {
            o.fires_acked += 1;
            o.tickets.extend(fired.iter().map(|t| t.id.clone()));
        });
        shared.counts.fires.fetch_add(1, Ordering::Relaxed);
        shared
            .counts
            .tickets_fired
            .fetch_add(fired.len() as u64, Ordering::Relaxed);
        {
            let mut tickets = shared.tickets.lock().expect("lock");
            for t in &fired {
                let station = layout.station_index(&t.station).unwrap_or(usize::MAX);
                let track = tickets.entry(t.id.clone()).or_insert_with(|| TicketTrack {
                    order_id: id.clone(),
                    fire_no,
                    branch: plan.branch,
                    station,
                    confirmed_lines: None,
                    seen_lines: None,
                    line_mismatch: false,
                    screens: 0,
                    complete: false,
                });
                track.confirmed_lines = Some(t.lines.len());
            }
        }
        if let Some(f) = shared.fires.lock().expect("lock").get_mut(&key) {
            f.acked = Some(acked);
        }
        // The waiter's tablet hears when expo sends the fire.
        let lines = match tokio::time::timeout(shared.ready_timeout, ready_rx).await {
            Ok(Ok(lines)) => lines,
            _ => {
                shared.waiters.lock().expect("lock").remove(&key);
                shared.rec.incident("no_ready_notice", || {
                    format!("order {id} fire {fire_no}: no order_ready reached table {table}")
                });
                return Outcome::Stalled;
            }
        };
        if shared
            .call(
                "serve",
                plan.branch,
                &format!("{order_path}/serve"),
                Some(json!({ "lines": lines })),
            )
            .await
            .is_none()
        {
            return Outcome::Failed;
        }
        shared.update_acked(&id, |o| o.served.extend(&lines));
        if course < plan.courses {
            tokio::time::sleep(plan.course_gap).await;
        }
    }
    if shared
        .call("close", plan.branch, &format!("{order_path}/close"), None)
        .await
        .is_none()
    {
        return Outcome::Failed;
    }
    shared.update_acked(&id, |o| o.closed = true);
    shared.plans.lock().expect("lock").remove(&id);
    shared.completed.lock().expect("lock").insert(id);
    Outcome::Completed
}

/// Drops events a socket was sent twice: per stream, events come in order, so a sequence
/// number not above the last one seen is a repeat.
#[derive(Default)]
struct Dedupe {
    last: HashMap<String, u64>,
}

impl Dedupe {
    /// True when the event is new.
    fn fresh(&mut self, stream: Option<&String>, seq: Option<u64>) -> bool {
        let (Some(stream), Some(seq)) = (stream, seq) else {
            return true;
        };
        match self.last.get_mut(stream) {
            Some(last) if seq <= *last => false,
            Some(last) => {
                *last = seq;
                true
            }
            None => {
                self.last.insert(stream.clone(), seq);
                true
            }
        }
    }
}

enum ScreenCmd {
    /// A ticket's prep time is over.
    BumpDue(String),
    /// A command the journal could not take (the server restarting) is due again.
    ResendDue(String),
}

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
    ticket: String,
    fire: Option<FireKey>,
    resent: bool,
}

/// A kitchen screen's state, kept across reconnects: what it saw and what it is doing.
struct Screen {
    shared: Arc<Shared>,
    me: ScreenId,
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
    fn who(&self) -> String {
        format!(
            "screen {}/{}#{}",
            self.branch, self.station_name, self.me.index
        )
    }

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

    fn frame(&mut self, text: &str, now: Instant) {
        let shared = self.shared.clone();
        shared.rec.frame();
        let frame: Frame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                shared.rec.incident("unreadable_frame", || {
                    format!("{e}: {}", text.chars().take(200).collect::<String>())
                });
                return;
            }
        };
        match frame.kind.as_str() {
            "event" => {
                if !shared.fresh_event(&frame, &mut self.position, &mut self.dedupe) {
                    return;
                }
                let Some(event) = frame.event else { return };
                match event.kind.as_str() {
                    "course_fired" => {
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
                                    t.id, self.who(), frame.stream, frame.seq
                                ));
                                continue;
                            }
                            shared.ticket_arrived(&self.me, t, &order_id, fire_no, now);
                            if !self.is_expo && self.picked(&t.id) {
                                self.cook(&t.id, &order_id, fire_no, false);
                            }
                        }
                    }
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
            // A resume the server could not serve: the station's live tickets replace what
            // the screen had. Those it never saw arrive now; those it is picked for and not
            // working on are taken up where they are.
            "snapshot" if frame.reset => {
                shared.counts.resets.fetch_add(1, Ordering::Relaxed);
                let Some(snapshot) = frame.snapshot else {
                    return;
                };
                self.position = snapshot.position;
                let station = self.station_name.clone();
                for t in snapshot.tickets.iter().filter(|t| t.station == station) {
                    if self.seen.insert(t.id.clone()) {
                        shared.ticket_arrived(&self.me, t, &t.order_id, t.fire_no, now);
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
            "ack" | "error" => {
                let Some(id) = frame.id.as_ref() else {
                    return;
                };
                // A command the journal could not take while the server restarts goes
                // again, same id, after a pause.
                if frame.kind == "error"
                    && shared.chaos()
                    && frame.code.as_deref() == Some("journal_unavailable")
                    && self.pending.contains_key(id)
                {
                    let (tx, id) = (self.tx.clone(), id.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        let _ = tx.send(ScreenCmd::ResendDue(id));
                    });
                    return;
                }
                let Some(p) = self.pending.remove(id) else {
                    // An error that names no command of ours (a refused frame): it counts as
                    // a failed command; the command it refused stays unanswered.
                    if frame.kind == "error" {
                        shared.rec.error(
                            "ws_frame",
                            frame.code.as_deref().unwrap_or("error"),
                            || {
                                format!(
                                    "{}: {} (the error names no command id)",
                                    self.who(),
                                    frame.message.clone().unwrap_or_default()
                                )
                            },
                        );
                    }
                    return;
                };
                if p.resent {
                    shared.counts.ws_retried.fetch_add(1, Ordering::Relaxed);
                }
                if frame.kind == "ack" {
                    shared.rec.ack(p.kind, now - p.sent);
                    shared.answered();
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
                } else {
                    let code = frame.code.clone().unwrap_or_else(|| "error".into());
                    shared.rec.error(p.kind, &code, || {
                        format!(
                            "ticket {} at {}: {}",
                            p.ticket,
                            self.who(),
                            frame.message.clone().unwrap_or_default()
                        )
                    });
                    self.acting.remove(&p.ticket);
                }
            }
            _ => {}
        }
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
async fn screen_task(
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
    let mut connected_at = shared.kills.load(Ordering::Relaxed);
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
        shared.socket_lost(connected_at, &screen.who(), || why);
        connected_at = shared.kills.load(Ordering::Relaxed);
        let Some(new) = shared.reconnect(&link, screen.position, &mut stop).await else {
            break;
        };
        ws = new;
        screen.resend_pending();
    }
}

/// A waiter's tablet: follows its table and hands each ready notice to the order's task.
/// Reconnects and resumes like a screen.
async fn tablet_task(
    shared: Arc<Shared>,
    link: Link,
    ws: Socket,
    position: u64,
    mut stop: watch::Receiver<bool>,
) {
    let table = match &link.topic {
        Topic::Table(t) | Topic::Station(t) => t.clone(),
    };
    let mut tablet = Tablet {
        who: format!("tablet {}/{table}", link.branch),
        shared: shared.clone(),
        dedupe: Dedupe::default(),
        notices: HashSet::new(),
        position,
    };
    let mut ws = ws;
    let mut connected_at = shared.kills.load(Ordering::Relaxed);
    loop {
        let (mut sink, mut stream) = ws.split();
        let lost = loop {
            let msg = tokio::select! {
                _ = stop.changed() => break None,
                msg = stream.next() => msg,
            };
            match msg {
                Some(Ok(Message::Text(text))) => tablet.frame(&text, Instant::now()),
                Some(Ok(Message::Close(close))) => break Some(format!("{close:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(e.to_string()),
                None => break Some("stream ended".to_owned()),
            }
        };
        let Some(why) = lost else {
            let _ = sink.send(Message::Close(None)).await;
            break;
        };
        if *stop.borrow() {
            break;
        }
        shared.socket_lost(connected_at, &tablet.who, || why);
        connected_at = shared.kills.load(Ordering::Relaxed);
        let Some(new) = shared.reconnect(&link, tablet.position, &mut stop).await else {
            break;
        };
        ws = new;
    }
}

/// A tablet's state, kept across reconnects.
struct Tablet {
    shared: Arc<Shared>,
    who: String,
    dedupe: Dedupe,
    /// The ready notices received, by fire.
    notices: HashSet<FireKey>,
    /// The highest position seen on the table.
    position: u64,
}

impl Tablet {
    fn frame(&mut self, text: &str, now: Instant) {
        let shared = self.shared.clone();
        shared.rec.frame();
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            shared.rec.incident("unreadable_frame", || {
                text.chars().take(200).collect::<String>()
            });
            return;
        };
        match frame.kind.as_str() {
            "event" => {
                if !shared.fresh_event(&frame, &mut self.position, &mut self.dedupe) {
                    return;
                }
                let Some(event) = frame.event else { return };
                if event.kind != "order_ready" {
                    return;
                }
                let (Some(order_id), Some(fire_no)) = (event.order_id, event.fire_no) else {
                    return;
                };
                self.ready((order_id, fire_no), event.lines.0, now);
            }
            // A resume the server could not serve: the table's open orders replace what the
            // tablet had. A fire whose expo ticket is bumped was sent: its ready notice is
            // taken from the snapshot when the tablet had not heard it.
            "snapshot" if frame.reset => {
                shared.counts.resets.fetch_add(1, Ordering::Relaxed);
                let Some(snapshot) = frame.snapshot else {
                    return;
                };
                self.position = snapshot.position;
                for order in &snapshot.orders {
                    for t in order
                        .tickets
                        .iter()
                        .filter(|t| t.kind == "expo" && t.status == "bumped")
                    {
                        let key = (order.id.clone(), t.fire_no);
                        if self.notices.contains(&key) {
                            continue;
                        }
                        let lines = order
                            .lines
                            .iter()
                            .filter(|l| l.fire_no == Some(t.fire_no) && l.status == "ready")
                            .map(|l| l.id)
                            .collect();
                        self.ready(key, lines, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// A fire's ready notice reached the table: the order's task serves those lines.
    fn ready(&mut self, key: FireKey, lines: Vec<u64>, now: Instant) {
        let shared = &self.shared;
        if !self.notices.insert(key.clone()) {
            shared
                .counts
                .ready_duplicated
                .fetch_add(1, Ordering::Relaxed);
            shared.violation(format!(
                "the ready notice of order {} fire {} reached {} twice, in different events",
                key.0, key.1, self.who
            ));
            return;
        }
        shared.counts.ready_received.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = shared.fires.lock().expect("lock").get_mut(&key) {
            f.ready_seen = true;
            if let Some(sent) = f.expo_bump_sent {
                shared
                    .rec
                    .bump_to_waiter(now.saturating_duration_since(sent));
            }
        }
        match shared.waiters.lock().expect("lock").remove(&key) {
            Some(waiter) => {
                let _ = waiter.send(lines);
            }
            None => {
                shared
                    .counts
                    .ready_unexpected
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What the screens and tablets received, against what the engine acknowledged.
pub struct Verification {
    pub tickets_confirmed: u64,
    pub deliveries_expected: u64,
    pub deliveries: u64,
    pub lost: u64,
    /// Of `lost`, deliveries of tickets whose order closed: no longer in flight anywhere.
    pub lost_in_finished_orders: u64,
    pub tickets_incomplete: u64,
    pub duplicated: u64,
    pub events_redelivered: u64,
    pub line_mismatches: u64,
    pub unconfirmed_tickets: u64,
    pub screens_before_ack: u64,
    pub ready_expected: u64,
    pub ready_received: u64,
    pub ready_lost: u64,
    pub ready_duplicated: u64,
    pub ready_unexpected: u64,
    pub samples: Vec<String>,
}

fn verify(shared: &Shared) -> Verification {
    let k = shared.args.screens_per_station as u64;
    let layout = &shared.layout;
    let mut v = Verification {
        tickets_confirmed: 0,
        deliveries_expected: 0,
        deliveries: 0,
        lost: 0,
        lost_in_finished_orders: 0,
        tickets_incomplete: 0,
        duplicated: shared.counts.tickets_duplicated.load(Ordering::Relaxed),
        events_redelivered: shared.counts.events_redelivered.load(Ordering::Relaxed),
        line_mismatches: 0,
        unconfirmed_tickets: 0,
        screens_before_ack: shared.counts.screens_before_ack.load(Ordering::Relaxed),
        ready_expected: 0,
        ready_received: shared.counts.ready_received.load(Ordering::Relaxed),
        ready_lost: 0,
        ready_duplicated: shared.counts.ready_duplicated.load(Ordering::Relaxed),
        ready_unexpected: shared.counts.ready_unexpected.load(Ordering::Relaxed),
        samples: shared.violations.lock().expect("lock").clone(),
    };
    let station_name = |i: usize| layout.stations().nth(i).unwrap_or("?").to_owned();
    let completed = shared.completed.lock().expect("lock");
    for (id, t) in shared.tickets.lock().expect("lock").iter() {
        let got = u64::from(t.screens.count_ones());
        let Some(lines) = t.confirmed_lines else {
            v.unconfirmed_tickets += 1;
            continue;
        };
        v.tickets_confirmed += 1;
        v.deliveries_expected += k;
        v.deliveries += got;
        if got < k {
            v.lost += k - got;
            v.tickets_incomplete += 1;
            let finished = completed.contains(&t.order_id);
            if finished {
                v.lost_in_finished_orders += k - got;
            }
            if v.samples.len() < 20 {
                v.samples.push(format!(
                    "ticket {id} (order {} fire {}, {}) reached {got} of {k} screens of {}/{}",
                    t.order_id,
                    t.fire_no,
                    if finished {
                        "order closed"
                    } else {
                        "order unfinished"
                    },
                    layout.branches.get(t.branch).map_or("?", String::as_str),
                    station_name(t.station)
                ));
            }
        }
        if t.line_mismatch || t.seen_lines.is_some_and(|s| s != lines) {
            v.line_mismatches += 1;
            if v.samples.len() < 20 {
                v.samples.push(format!(
                    "ticket {id}: the fire's answer holds {lines} line(s), a screen got {:?}",
                    t.seen_lines
                ));
            }
        }
    }
    for ((order, fire_no), f) in shared.fires.lock().expect("lock").iter() {
        if f.expo_acked {
            v.ready_expected += 1;
            if !f.ready_seen {
                v.ready_lost += 1;
                if v.samples.len() < 20 {
                    v.samples.push(format!(
                        "order {order} fire {fire_no}: expo's bump was acknowledged, the table never heard"
                    ));
                }
            }
        }
    }
    v
}

impl Verification {
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.lost > 0 {
            f.push(format!(
                "{} ticket deliveries missing: {} ticket(s) never reached every screen of their station ({} of the deliveries belong to orders that closed; the rest to orders unfinished when the run ended)",
                self.lost, self.tickets_incomplete, self.lost_in_finished_orders
            ));
        }
        if self.duplicated > 0 {
            f.push(format!(
                "{} ticket(s) reached a screen twice in different events",
                self.duplicated
            ));
        }
        if self.line_mismatches > 0 {
            f.push(format!(
                "{} ticket(s) reached a screen with other lines than the fire acknowledged",
                self.line_mismatches
            ));
        }
        if self.ready_lost > 0 {
            f.push(format!(
                "{} ready notice(s) had not reached their table when the run ended, though expo's bump was acknowledged",
                self.ready_lost
            ));
        }
        if self.ready_duplicated > 0 {
            f.push(format!(
                "{} ready notice(s) reached their table twice in different events",
                self.ready_duplicated
            ));
        }
        f
    }

    pub fn summary_line(&self, k: usize) -> String {
        format!(
            "{} tickets x {k} screens: {} missing ({} of closed orders), {} duplicated; {} ready notices: {} missing, {} duplicated",
            self.tickets_confirmed,
            self.lost,
            self.lost_in_finished_orders,
            self.duplicated,
            self.ready_expected,
            self.ready_lost,
            self.ready_duplicated
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "passed": self.failures().is_empty(),
            "tickets_confirmed": self.tickets_confirmed,
            "screen_deliveries_expected": self.deliveries_expected,
            "screen_deliveries": self.deliveries,
            "lost": self.lost,
            "lost_in_finished_orders": self.lost_in_finished_orders,
            "tickets_missing_a_screen": self.tickets_incomplete,
            "duplicated": self.duplicated,
            "events_redelivered_and_dropped": self.events_redelivered,
            "line_mismatches": self.line_mismatches,
            "tickets_seen_but_not_acknowledged": self.unconfirmed_tickets,
            "tickets_on_every_screen_before_the_fire_ack": self.screens_before_ack,
            "ready_notices_expected": self.ready_expected,
            "ready_notices_received": self.ready_received,
            "ready_notices_lost": self.ready_lost,
            "ready_notices_duplicated": self.ready_duplicated,
            "ready_notices_unexpected": self.ready_unexpected,
            "samples": self.samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::LinePlan;

    fn acked(layout: &Layout) -> AckedOrder {
        let plan = OrderPlan {
            at: Duration::ZERO,
            branch: 0,
            table: 0,
            guests: 2,
            courses: 1,
            lines: vec![LinePlan {
                item: 0,
                quantity: 2,
                modifiers: vec!["no onion"],
                seat: 1,
                course: 1,
            }],
            prep_ms: vec![vec![50]],
            course_gap: Duration::ZERO,
        };
        assert_eq!(layout.tables[0], "t1");
        AckedOrder {
            plan: Arc::new(plan),
            lines_acked: true,
            fires_sent: 1,
            fires_acked: 1,
            tickets: vec!["k1".into()],
            served: vec![1],
            closed: true,
        }
    }

    fn order(layout: &Layout, lines: usize, tickets: &[&str], closed: bool) -> proto::OrderBody {
        let line = |id: usize| {
            json!({"id": id, "item": layout.items[0].id, "quantity": 2,
                   "modifiers": ["no onion"], "seat": 1, "course": 1, "status": "served",
                   "fire_no": 1})
        };
        serde_json::from_value(json!({
            "id": "o1", "table": "t1", "guests": 2, "fires": 1,
            "closed_at": closed.then_some("2026-11-23T12:00:00Z"),
            "lines": (1..=lines).map(line).collect::<Vec<_>>(),
            "tickets": tickets.iter().map(|t| json!({"id": t, "station": "grill", "fire_no": 1})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn an_order_read_back_as_acknowledged_passes() {
        let layout = Layout::new(1, 1, 1);
        let acked = acked(&layout);
        assert_eq!(
            order_differs(&layout, &acked, &order(&layout, 1, &["k1"], true)),
            None
        );
    }

    #[test]
    fn an_order_read_back_otherwise_is_caught() {
        let layout = Layout::new(1, 1, 1);
        let acked = acked(&layout);
        // Lines added twice (a retry run again), a ticket gone, an acknowledged close undone.
        for differs in [
            order(&layout, 2, &["k1"], true),
            order(&layout, 1, &[], true),
            order(&layout, 1, &["k1"], false),
        ] {
            assert!(order_differs(&layout, &acked, &differs).is_some());
        }
        let mut refired = order(&layout, 1, &["k1"], true);
        refired.fires = 2;
        assert!(order_differs(&layout, &acked, &refired).is_some());
    }

    #[test]
    fn backs_off_with_jitter_up_to_a_second() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..8).map(|_| b.wait()).collect();
        assert!(waits[0] >= Duration::from_millis(25) && waits[0] <= Duration::from_millis(50));
        assert!(waits.iter().all(|w| *w <= Backoff::MAX));
        assert!(waits[7] >= Backoff::MAX / 2);
    }

    #[test]
    fn reads_the_replay_counter() {
        let text = "# HELP rail_idempotent_replays_total Retries.\n# TYPE rail_idempotent_replays_total counter\nrail_idempotent_replays_total 7\n";
        assert_eq!(replays(text), 7);
        assert_eq!(replays("other 1\n"), 0);
    }
}
