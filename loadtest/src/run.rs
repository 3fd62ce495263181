//! `loadtest run`: a rush against the engine over its public protocol.
//!
//! Waiters (one task per order, one tablet socket per table) open orders, add lines, fire
//! courses, wait for the ready notice on their table's socket, serve and close. Kitchen screens
//! (`--screens-per-station` sockets per station) receive tickets; one of a station's screens,
//! picked by the ticket's id, starts each ticket and bumps it after its simulated prep time.
//! Expo bumps a fire when `expo_ready` arrives. Every delivery is counted per (ticket, screen)
//! and checked at the end.

use std::collections::{HashMap, HashSet};
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
use crate::server::{cpu_seconds, machine_busy_seconds, memory_of, Memory, ServerArgs, Target};

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
    sockets_closed: AtomicU64,
}

struct Shared {
    rec: Recorder,
    layout: Layout,
    args: RunArgs,
    base: String,
    /// A waiter's token, per branch.
    waiter_tokens: Vec<String>,
    http: reqwest::Client,
    run_tag: String,
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
    async fn call(
        &self,
        kind: &'static str,
        branch: usize,
        path: &str,
        body: Option<Value>,
    ) -> Option<String> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .post(&url)
            .bearer_auth(&self.waiter_tokens[branch]);
        if let Some(body) = &body {
            req = req.json(body);
        }
        if self.args.idempotency_keys {
            let n = KEYS.fetch_add(1, Ordering::Relaxed);
            req = req.header("Idempotency-Key", format!("{}-{n}", self.run_tag));
        }
        // From when the waiter wants to send: a request queued behind the cap below is late,
        // and that lateness counts.
        let sent = Instant::now();
        let Ok(_permit) = self.http_slots.acquire().await else {
            return None;
        };
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => {
                let code = if e.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                self.rec.error(kind, code, || format!("{path}: {e}"));
                return None;
            }
        };
        let status = res.status();
        let text = match res.text().await {
            Ok(t) => t,
            Err(e) => {
                let code = if e.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                self.rec.error(kind, code, || format!("{path}: {e}"));
                return None;
            }
        };
        if status.is_success() {
            self.rec.ack(kind, sent.elapsed());
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
                self.rec
                    .fire_to_screen(now.saturating_duration_since(f.sent));
                if f.acked.is_none_or(|a| a > now) {
                    self.counts
                        .screens_before_ack
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

static KEYS: AtomicU64 = AtomicU64::new(1);

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
    let mut sockets: Vec<Socket> =
        futures_util::stream::iter(all.iter().enumerate().map(|(n, (branch, topic, token))| {
            let source = proto::source_address(&server_addr, n, per_address);
            proto::connect_subscribed(&ws_url, server_addr, source, token, branch, topic, limit)
        }))
        .buffered(100)
        .collect::<Vec<anyhow::Result<Socket>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let tablet_sockets = sockets.split_off(screens.len());
    let screen_sockets = sockets;
    let memory_before = target.memory();

    let duration = Duration::from_secs(args.duration);
    let drain_limit = Duration::from_secs(args.drain_timeout);
    let series_len = (args.duration + args.drain_timeout + 30) as usize;
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        rec: Recorder::new(t0, series_len),
        layout: layout.clone(),
        args: args.clone(),
        base: target.base.clone(),
        waiter_tokens: layout.branches.iter().map(|b| tokens.waiter(b)).collect(),
        http,
        run_tag: format!(
            "lt{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ),
        plans: Mutex::new(HashMap::new()),
        fires: Mutex::new(HashMap::new()),
        tickets: Mutex::new(HashMap::new()),
        waiters: Mutex::new(HashMap::new()),
        counts: Counters::default(),
        in_flight: AtomicUsize::new(0),
        http_slots: tokio::sync::Semaphore::new(args.max_http_in_flight.max(1)),
        completed: Mutex::new(HashSet::new()),
        violations: Mutex::new(Vec::new()),
        ready_timeout: duration + drain_limit,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut socket_tasks = Vec::new();
    for ((id, branch, _), ws) in screens.into_iter().zip(screen_sockets) {
        socket_tasks.push(tokio::spawn(screen_task(
            shared.clone(),
            id,
            branch,
            ws,
            stop_rx.clone(),
        )));
    }
    for ((_, branch, topic), ws) in tablets.into_iter().zip(tablet_sockets) {
        let name = match topic {
            Topic::Table(t) => t,
            Topic::Station(s) => s,
        };
        socket_tasks.push(tokio::spawn(tablet_task(
            shared.clone(),
            branch,
            name,
            ws,
            stop_rx.clone(),
        )));
    }

    // Memory and CPU, once a second (the server's when it runs here).
    let memory_samples: Arc<Mutex<Vec<(f64, Memory)>>> = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (shared, samples, mut stop) = (shared.clone(), memory_samples.clone(), stop_rx.clone());
        let pid = target.pid;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
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
                let (server_cpu, own_cpu, machine_cpu) = (
                    pid.and_then(|p| cpu_seconds(Some(p))),
                    cpu_seconds(None),
                    machine_busy_seconds(),
                );
                let dt = (now - last.0).as_secs_f64().max(1e-3);
                let rate = |a: Option<f64>, b: Option<f64>| Some((a? - b?) / dt);
                shared.rec.cpu(
                    now,
                    rate(server_cpu, last.1),
                    rate(own_cpu, last.2),
                    rate(machine_cpu, last.3),
                );
                last = (now, server_cpu, own_cpu, machine_cpu);
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
    // Stragglers: the screens that do not act on a ticket may see it a moment later, and a
    // server that fell behind is still sending. Wait until the frames stop (at most 10 s).
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
    if let Ok(res) = shared
        .http
        .get(format!("{}/metrics", target.base))
        .send()
        .await
    {
        if let Ok(text) = res.text().await {
            let _ = std::fs::write(out.join("metrics.txt"), text);
        }
    }
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
        },
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
        verification: verification.to_json(),
        verification_line: verification.summary_line(args.screens_per_station),
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
        "open_files_limit": fd_limit,
        "machine": crate::server::machine(),
        "sockets_per_address": args.server.sockets_per_address,
        "server_env": args.server.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "loadtest_version": env!("CARGO_PKG_VERSION"),
    })
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
}

enum Acting {
    /// Start sent; bump due when true.
    Starting {
        bump_due: bool,
    },
    Started,
    Bumping,
}

struct Pending {
    kind: &'static str,
    sent: Instant,
    ticket: String,
    fire: Option<FireKey>,
}

/// A kitchen screen: receives its station's tickets and, for the tickets it is picked for,
/// starts them, bumps them after their prep time (or, at expo, bumps on `expo_ready`).
async fn screen_task(
    shared: Arc<Shared>,
    me: ScreenId,
    branch: String,
    ws: Socket,
    mut stop: watch::Receiver<bool>,
) {
    let layout = &shared.layout;
    let is_expo = me.station == layout.cooking.len();
    let station_name: String = layout
        .stations()
        .nth(me.station)
        .unwrap_or_default()
        .to_owned();
    let k = shared.args.screens_per_station;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<ScreenCmd>();
    let mut dedupe = Dedupe::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut acting: HashMap<String, Acting> = HashMap::new();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut next_id = 0u64;
    let prefix = format!(
        "{}-{}-{}-{}",
        shared.run_tag, me.branch, me.station, me.index
    );
    let fallback_prep = Duration::from_millis(u64::from(
        (shared.args.prep_min_ms + shared.args.prep_max_ms) / 2,
    ));
    let mut outbox: Vec<(String, &'static str, String, Option<FireKey>)> = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(cmd) = rx.recv() => match cmd {
                ScreenCmd::BumpDue(ticket) => match acting.get_mut(&ticket) {
                    Some(Acting::Starting { bump_due }) => *bump_due = true,
                    Some(state @ Acting::Started) => {
                        *state = Acting::Bumping;
                        outbox.push(("bump".into(), "bump", ticket, None));
                    }
                    _ => {}
                },
            },
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(close))) => {
                        if !*stop.borrow() {
                            shared.counts.sockets_closed.fetch_add(1, Ordering::Relaxed);
                            shared.rec.incident("socket_closed", || format!("screen {branch}/{station_name}#{}: {close:?}", me.index));
                        }
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        if !*stop.borrow() {
                            shared.counts.sockets_closed.fetch_add(1, Ordering::Relaxed);
                            shared.rec.incident("socket_error", || format!("screen {branch}/{station_name}#{}: {e}", me.index));
                        }
                        break;
                    }
                    None => {
                        if !*stop.borrow() {
                            shared.counts.sockets_closed.fetch_add(1, Ordering::Relaxed);
                            shared.rec.incident("socket_closed", || format!("screen {branch}/{station_name}#{}: stream ended", me.index));
                        }
                        break;
                    }
                };
                let now = Instant::now();
                shared.rec.frame();
                let frame: Frame = match serde_json::from_str(&text) {
                    Ok(f) => f,
                    Err(e) => {
                        shared.rec.incident("unreadable_frame", || format!("{e}: {}", text.chars().take(200).collect::<String>()));
                        continue;
                    }
                };
                match frame.kind.as_str() {
                    "event" => {
                        if !dedupe.fresh(frame.stream.as_ref(), frame.seq) {
                            shared.counts.events_redelivered.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let Some(event) = frame.event else { continue };
                        match event.kind.as_str() {
                            "course_fired" => {
                                let order_id = event.order_id.clone().unwrap_or_default();
                                let fire_no = event.fire_no.unwrap_or(0);
                                for t in event.tickets.iter().filter(|t| t.station == station_name) {
                                    if !seen.insert(t.id.clone()) {
                                        shared.counts.tickets_duplicated.fetch_add(1, Ordering::Relaxed);
                                        shared.violation(format!(
                                            "ticket {} reached screen {branch}/{station_name}#{} twice, in different events (last {:?}#{:?})",
                                            t.id, me.index, frame.stream, frame.seq
                                        ));
                                        continue;
                                    }
                                    shared.ticket_arrived(&me, t, &order_id, fire_no, now);
                                    if !is_expo && proto::pick(&t.id, k) == me.index {
                                        let prep = shared
                                            .plans
                                            .lock()
                                            .expect("lock")
                                            .get(&order_id)
                                            .and_then(|p| p.prep(fire_no, me.station))
                                            .unwrap_or(fallback_prep);
                                        acting.insert(t.id.clone(), Acting::Starting { bump_due: false });
                                        outbox.push(("start".into(), "start", t.id.clone(), None));
                                        let (tx, ticket) = (tx.clone(), t.id.clone());
                                        tokio::spawn(async move {
                                            tokio::time::sleep(prep).await;
                                            let _ = tx.send(ScreenCmd::BumpDue(ticket));
                                        });
                                    }
                                }
                            }
                            "expo_ready" if is_expo => {
                                let (Some(ticket), Some(order_id), Some(fire_no)) =
                                    (event.ticket_id, event.order_id, event.fire_no)
                                else {
                                    continue;
                                };
                                if proto::pick(&ticket, k) == me.index && !acting.contains_key(&ticket) {
                                    acting.insert(ticket.clone(), Acting::Bumping);
                                    let key = (order_id, fire_no);
                                    if let Some(f) = shared.fires.lock().expect("lock").get_mut(&key) {
                                        f.expo_bump_sent = Some(Instant::now());
                                    }
                                    outbox.push(("bump".into(), "expo_bump", ticket, Some(key)));
                                }
                            }
                            _ => {}
                        }
                    }
                    "ack" | "error" => {
                        let Some(p) = frame.id.as_ref().and_then(|id| pending.remove(id)) else {
                            // An error that names no command of ours (a refused frame): it
                            // counts as a failed command; the command it refused stays
                            // unanswered.
                            if frame.kind == "error" {
                                shared.rec.error("ws_frame", frame.code.as_deref().unwrap_or("error"), || {
                                    format!("screen {branch}/{station_name}: {} (the error names no command id)", frame.message.clone().unwrap_or_default())
                                });
                            }
                            continue;
                        };
                        if frame.kind == "ack" {
                            shared.rec.ack(p.kind, now - p.sent);
                            match p.kind {
                                "start" => {
                                    if let Some(state) = acting.get_mut(&p.ticket) {
                                        if matches!(state, Acting::Starting { bump_due: true }) {
                                            *state = Acting::Bumping;
                                            outbox.push(("bump".into(), "bump", p.ticket.clone(), None));
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
                                    acting.remove(&p.ticket);
                                }
                                _ => {
                                    acting.remove(&p.ticket);
                                }
                            }
                        } else {
                            let code = frame.code.clone().unwrap_or_else(|| "error".into());
                            shared.rec.error(p.kind, &code, || {
                                format!("ticket {} at {branch}/{station_name}: {}", p.ticket, frame.message.clone().unwrap_or_default())
                            });
                            acting.remove(&p.ticket);
                        }
                    }
                    _ => {}
                }
            }
        }
        for (action, kind, ticket, fire) in outbox.drain(..) {
            next_id += 1;
            let id = format!("{prefix}-{next_id}");
            let frame = json!({
                "type": action,
                "id": id,
                "branch": branch,
                "station": station_name,
                "ticket": ticket,
            });
            pending.insert(
                id,
                Pending {
                    kind,
                    sent: Instant::now(),
                    ticket,
                    fire,
                },
            );
            if let Err(e) = sink.send(Message::text(frame.to_string())).await {
                shared.rec.error(kind, "transport", || format!("{e}"));
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}

/// A waiter's tablet: follows its table and hands each ready notice to the order's task.
async fn tablet_task(
    shared: Arc<Shared>,
    branch: String,
    table: String,
    ws: Socket,
    mut stop: watch::Receiver<bool>,
) {
    let (mut sink, mut stream) = ws.split();
    let mut dedupe = Dedupe::default();
    let mut notices: HashSet<FireKey> = HashSet::new();
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            msg = stream.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                if !*stop.borrow() {
                    shared.counts.sockets_closed.fetch_add(1, Ordering::Relaxed);
                    shared.rec.incident("socket_closed", || {
                        format!("tablet {branch}/{table}: {msg:?}")
                    });
                }
                break;
            }
            Some(Ok(_)) => continue,
        };
        let now = Instant::now();
        shared.rec.frame();
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            shared.rec.incident("unreadable_frame", || {
                text.chars().take(200).collect::<String>()
            });
            continue;
        };
        if frame.kind != "event" {
            continue;
        }
        if !dedupe.fresh(frame.stream.as_ref(), frame.seq) {
            shared
                .counts
                .events_redelivered
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Some(event) = frame.event else { continue };
        if event.kind != "order_ready" {
            continue;
        }
        let (Some(order_id), Some(fire_no)) = (event.order_id, event.fire_no) else {
            continue;
        };
        let key = (order_id, fire_no);
        if !notices.insert(key.clone()) {
            shared
                .counts
                .ready_duplicated
                .fetch_add(1, Ordering::Relaxed);
            shared.violation(format!(
                "the ready notice of order {} fire {fire_no} reached table {branch}/{table} twice, in different events",
                key.0
            ));
            continue;
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
                let _ = waiter.send(event.lines.0);
            }
            None => {
                shared
                    .counts
                    .ready_unexpected
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
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
