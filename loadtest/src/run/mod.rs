//! `loadtest run`: a rush against the engine over its public protocol.
//!
//! Waiters (one task per order, one tablet socket per table) open orders, add lines, fire
//! courses, wait for the ready notice on their table's socket, serve and close; a share of the
//! orders come in one call at the counter or the takeaway (`--one-call-share`), some void a
//! line (`--void-share`), and a manager 86's an item now and then (`--eighty-six-every`):
//! orders refused `item_86` go again without it. Kitchen screens (`--screens-per-station`
//! sockets per station) receive tickets and acknowledge (`seen`) every ticket they show; one of
//! a station's screens, picked by the ticket's id, starts each ticket and bumps it after its
//! simulated prep time, and recalls some once and bumps them again (`--recall-share`). Expo
//! bumps a fire when `expo_ready` arrives (once the waiter's void or the kitchen's recall of
//! that fire is done). Every delivery (tickets, voids, recalls) is counted per (ticket, screen)
//! and checked at the end, every order the engine acknowledged is read back over REST, and the
//! journal must hold no `ticket_unseen`.
//!
//! Screens and tablets reconnect with backoff when their socket closes and resume after the
//! last position they saw, resending the commands still unanswered with the same ids. With
//! `--chaos-kill-at`, the spawned server is killed (SIGKILL) during the rush and started again
//! on the same journal, and REST commands are retried with the same Idempotency-Key until
//! answered.
//!
//! With `--replicas N` (N ≥ 2) the engine is N spawned replicas of one chain on one Postgres
//! journal and a Redis of the run's own (`chain`): the devices are spread over them, so that
//! commands are answered locally and forwarded to their branch's owner, and screens are served
//! locally and by relay, in every run; a chaos kill then takes down the replica that owns the
//! most branches (and leaves it down unless `--chaos-restart`), its devices move to the
//! replicas left, and the report gives the failover of each branch it owned.
//!
//! The run goes in phases, a module each. `setup` configures the chain and opens every screen
//! and tablet. In the rush, `rush` lets the orders arrive, `waiter` carries each one from open
//! to close, `screen` and `tablet` are the devices and `link` keeps their sockets up, while
//! `chaos` kills the server, `eighty_six` 86's items and puts them back, and `gauges` samples
//! it. `drain` waits for the orders in flight and
//! hangs the devices up. `verify` checks what the screens and tablets received, `read_back`
//! what the engine kept, and `tally` turns it all into the report. This module owns the flags,
//! the entry point, the phases in their order (`Running`) and `Shared`, the book every phase
//! reads and writes. `soak` is `loadtest soak`: the same phases for an hour at a moderate rate,
//! with screens and tablets hanging up and dialing again at random, the engine's `/metrics`
//! sampled every minute, and a verdict on its memory, sockets and writer tasks.

mod chain;
mod chaos;
mod drain;
mod eighty_six;
mod gauges;
mod link;
mod read_back;
mod rush;
mod screen;
mod setup;
pub mod soak;
mod tablet;
mod tally;
mod verify;
mod waiter;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::auth::Tokens;
use crate::menu::Layout;
use crate::metrics::Recorder;
use crate::plan::{Arrival, OrderPlan};
use crate::report;
use crate::server::{Memory, ServerArgs, Target};

/// Flags of `loadtest run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Replicas of the engine to spawn, as one chain (`r1` ... `rN`): one Postgres database
    /// (needs `--journal postgres`), a `redis-server` started here (it must be on PATH), and
    /// the devices spread over the replicas (waiter tablet i and its REST commands on replica
    /// i % N, station screen j on replica j % N). 1: one server, no Redis.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// With `--replicas` ≥ 2 and `--chaos-kill-at`: start the killed replica again at once
    /// (as a single server is) instead of leaving it down.
    #[arg(long)]
    pub chaos_restart: bool,
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
    /// Share of orders sent in one call (`POST .../orders` with their lines and `fire: {}`) at
    /// the branch's counter or takeaway, with an `external_ref`: one fire of every line.
    #[arg(long, default_value_t = 0.3)]
    pub one_call_share: f64,
    /// Share of orders that void one line: before its course is fired, or (for some, and for
    /// every one-call order drawn) once the fire is answered and before expo sends it.
    #[arg(long, default_value_t = 0.1)]
    pub void_share: f64,
    /// Share of table orders whose kitchen recalls one cooking ticket once bumped, and bumps
    /// it again (expo waits for it).
    #[arg(long, default_value_t = 0.1)]
    pub recall_share: f64,
    /// A manager 86's an item (`PUT .../86/{item}`) once in each period of this many seconds,
    /// at a branch and an item drawn from the seed, and puts it back after
    /// `--eighty-six-for-ms`. 0: no 86s.
    #[arg(long, default_value_t = 4.0)]
    pub eighty_six_every: f64,
    /// How long each 86 lasts (ms): under half of `--eighty-six-every`.
    #[arg(long, default_value_t = 1500)]
    pub eighty_six_for_ms: u64,
    /// Configure the branches with this `unseen_after_seconds` (1 to 600): how long a ticket
    /// may wait for a screen's `seen` before the engine escalates it. Left out, the engine's
    /// default (10 s) applies; a short one makes the check that no ticket was escalated bite
    /// on tickets that live only a moment.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=600))]
    pub unseen_after_seconds: Option<u16>,
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
    /// comma-separated). With `--replicas` ≥ 2: kill the replica owning the most branches at
    /// that moment and leave it down (see `--chaos-restart`); the others take its branches. Clients reconnect and resume; REST commands are retried with the same
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

/// An order the engine acknowledged opening, and what it acknowledged since: read back after
/// the run.
#[derive(Clone)]
struct AckedOrder {
    plan: Arc<OrderPlan>,
    /// The lines the engine acknowledged adding (the plan's, less those refused `item_86`),
    /// numbered 1, 2, ... in this order; or, while `lines_acked` is false, the last sent.
    lines: Vec<crate::plan::LinePlan>,
    lines_acked: bool,
    /// Lines whose void was acknowledged.
    voided: Vec<u64>,
    fires_sent: u32,
    fires_acked: u32,
    tickets: Vec<String>,
    served: Vec<u64>,
    closed: bool,
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
    /// When it reached its last screen.
    completed_at: Option<Instant>,
    /// Its fire → screen latency is recorded (at its last screen, or at the fire's answer
    /// when that came later and the fire was not known before: a one-call order).
    latency_recorded: bool,
    /// A void of one of its lines was acknowledged: every screen gets `line_voided`.
    void_expected: bool,
    void_screens: u64,
    /// That void left it with no line: every screen gets `ticket_voided`.
    voided_expected: bool,
    voided_screens: u64,
    /// Its recall was acknowledged: every screen gets `ticket_recalled`.
    recall_acked: bool,
    recall_screens: u64,
}

impl TicketTrack {
    fn new(order_id: String, fire_no: u32, branch: usize, station: usize) -> Self {
        Self {
            order_id,
            fire_no,
            branch,
            station,
            confirmed_lines: None,
            seen_lines: None,
            line_mismatch: false,
            screens: 0,
            complete: false,
            completed_at: None,
            latency_recorded: false,
            void_expected: false,
            void_screens: 0,
            voided_expected: false,
            voided_screens: 0,
            recall_acked: false,
            recall_screens: 0,
        }
    }
}

/// A fire of an order: the order's id and the fire's number.
type FireKey = (String, u32);

/// What the run counts as it goes, for the checks and the report.
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
    /// Sockets a device closed on purpose and dialed again (`loadtest soak`).
    redials: AtomicU64,
    resets: AtomicU64,
    /// REST commands sent more than once, and their extra sends.
    rest_retried: AtomicU64,
    rest_retries: AtomicU64,
    /// Websocket commands resent after a reconnect, and their extra sends.
    ws_retried: AtomicU64,
    ws_resends: AtomicU64,
    opens_unanswered: AtomicU64,
    /// Orders opened in one call (lines and fire in the open).
    one_call_orders: AtomicU64,
    /// Orders not opened because every item they held was 86'd.
    orders_dropped_86: AtomicU64,
    /// Orders (opens, added lines, fires) refused `item_86` and sent again without the item.
    refused_86_retried: AtomicU64,
    /// Voids acknowledged: planned before the fire, after it, and of held lines 86'd.
    voids_before_fire: AtomicU64,
    voids_after_fire: AtomicU64,
    voids_86: AtomicU64,
    /// Tickets that a void left with no line (`ticket_voided`).
    tickets_voided: AtomicU64,
    /// Recalls, and bumps again after them, acknowledged.
    recalls: AtomicU64,
    rebumps: AtomicU64,
    /// 86s and restores acknowledged, and those that failed.
    eighty_sixed: AtomicU64,
    restored: AtomicU64,
    eighty_six_failed: AtomicU64,
    /// `seen` frames sent and tickets they acknowledged.
    seen_frames: AtomicU64,
    seen_tickets: AtomicU64,
    /// `ticket_unseen` events that reached screens (each screen counts).
    unseen_notices: AtomicU64,
    /// A void or recall reaching a screen twice in different events.
    voids_duplicated: AtomicU64,
    recalls_duplicated: AtomicU64,
}

/// The run's book: what the waiters, screens and tablets share, and what the checks read.
struct Shared {
    rec: Recorder,
    layout: Layout,
    args: RunArgs,
    /// A waiter's token, per branch.
    waiter_tokens: Vec<String>,
    /// A manager's token, per branch (for the 86s).
    manager_tokens: Vec<String>,
    http: reqwest::Client,
    /// The engine's processes: the only server, or each replica, with whether it is up.
    replicas: Vec<chain::Endpoint>,
    /// With replicas: the replica owning each branch, as last read (`chain::UNKNOWN` when
    /// none); read after the set-up and again after each kill.
    owners: Vec<AtomicUsize>,
    /// With replicas: the branches whose owner was killed and that have had no command
    /// answered since; each with the kill's number, its instant, and when the signal had been
    /// sent (a command sent before that does not count).
    failing_over: Mutex<HashMap<usize, (usize, Instant, Instant)>>,
    /// With replicas: (kill's number, branch, kill -> first command answered for the branch).
    failovers: Mutex<Vec<(usize, usize, Duration)>>,
    run_tag: String,
    /// Kills so far, of any node: bumped just before each SIGKILL.
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
    /// Fires expo must not send yet, and how many things it waits for: a void after the fire
    /// to be answered, a recalled ticket to be bumped again.
    holds: Mutex<HashMap<FireKey, u32>>,
    /// Fires one of whose cooking tickets is to be recalled once bumped: at this station.
    recalls: Mutex<HashMap<FireKey, usize>>,
    /// Orders a void after the fire was sent for: a screen's command refused on one of their
    /// tickets (voided under it) is expected.
    voiding: Mutex<HashSet<String>>,
    /// Items (by index) 86'd at each branch, or about to be: put in before the 86 is sent and
    /// taken out once it is put back, so it holds every item the engine has 86'd.
    eighty_sixed: Mutex<Vec<HashSet<usize>>>,
    /// Each branch's expo screens: told when a fire they wait on may go.
    expo_screens: Mutex<Vec<Vec<tokio::sync::mpsc::UnboundedSender<screen::ScreenCmd>>>>,
    counts: Counters,
    in_flight: AtomicUsize,
    /// REST requests in flight at once (`--max-http-in-flight`).
    http_slots: tokio::sync::Semaphore,
    /// Orders closed, by id, with when their close was answered.
    completed: Mutex<HashMap<String, Instant>>,
    violations: Mutex<Vec<String>>,
    ready_timeout: Duration,
}

impl Shared {
    /// Keeps a broken rule for the report (the first 20).
    fn violation(&self, text: String) {
        let mut v = self.violations.lock().expect("lock");
        if v.len() < 20 {
            v.push(text);
        }
    }

    /// A command on `branch`, whose last send was at `sent`, was answered with success: the
    /// first after a kill marks the service back (with replicas: the branch's failover done,
    /// when its owner was the one killed).
    fn answered(&self, branch: usize, sent: Instant) {
        if self.kills.load(Ordering::Relaxed) == 0 {
            return;
        }
        if self.replicated() {
            let mut pending = self.failing_over.lock().expect("lock");
            if let Some(&(kill, at, signalled)) = pending.get(&branch) {
                if sent >= signalled {
                    pending.remove(&branch);
                    drop(pending);
                    self.failovers
                        .lock()
                        .expect("lock")
                        .push((kill, branch, at.elapsed()));
                }
            }
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

    /// Whether `item` is 86'd at `branch` (or about to be, or not yet put back).
    fn is_86(&self, branch: usize, item: usize) -> bool {
        self.eighty_sixed
            .lock()
            .expect("lock")
            .get(branch)
            .is_some_and(|s| s.contains(&item))
    }
}

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

/// Runs the rush and writes the report; Ok(true) when the run passed.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    validate(&args)?;
    let started_at = chrono::Utc::now();
    let out = report_folder(&args, started_at, "");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let fd_limit = crate::raise_fd_limit();
    let mut target = Target::start_chain(&args.server, &out, args.replicas).await?;
    let result = drive(&args, &mut target, &out, started_at, fd_limit).await;
    let (report, passed) = stop(&args, &mut target, result).await?;
    report.write(&out, passed)?;
    if !args.quiet {
        eprintln!();
    }
    print!("{}", std::fs::read_to_string(out.join("summary.txt"))?);
    Ok(passed)
}

/// Refuses flags that cannot make a run.
fn validate(args: &RunArgs) -> anyhow::Result<()> {
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
    anyhow::ensure!(
        (1..=32).contains(&args.replicas),
        "--replicas must be 1 to 32"
    );
    if args.replicas > 1 {
        anyhow::ensure!(
            args.server.server == "spawn",
            "--replicas needs --server spawn: the load test starts the replicas itself"
        );
        anyhow::ensure!(
            args.server.journal == crate::server::JournalKind::Postgres,
            "--replicas {} needs --journal postgres: the replicas share one Postgres journal",
            args.replicas
        );
    }
    for (name, share) in [
        ("--one-call-share", args.one_call_share),
        ("--void-share", args.void_share),
        ("--recall-share", args.recall_share),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&share),
            "{name} {share}: a share is 0 to 1"
        );
    }
    anyhow::ensure!(
        args.void_share + args.recall_share <= 1.0,
        "--void-share + --recall-share must be at most 1 (an order voids a line or has a ticket recalled, not both)"
    );
    anyhow::ensure!(
        args.eighty_six_every >= 0.0 && args.eighty_six_every.is_finite(),
        "--eighty-six-every {}: seconds, 0 for no 86s",
        args.eighty_six_every
    );
    anyhow::ensure!(
        args.eighty_six_every == 0.0
            || (args.eighty_six_for_ms > 0
                && (args.eighty_six_for_ms as f64) < args.eighty_six_every * 500.0),
        "--eighty-six-for-ms {} must be above 0 and under half of --eighty-six-every {} s (one 86 is put back before the next)",
        args.eighty_six_for_ms,
        args.eighty_six_every
    );
    anyhow::ensure!(
        !args.chaos_restart || !args.chaos_kill_at.is_empty(),
        "--chaos-restart goes with --chaos-kill-at"
    );
    anyhow::ensure!(
        args.replicas < 2 || args.chaos_restart || args.chaos_kill_at.len() < args.replicas,
        "--chaos-kill-at: {} kill(s) of replicas left down would leave none of the {} replicas (add --chaos-restart, or more --replicas)",
        args.chaos_kill_at.len(),
        args.replicas
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
    Ok(())
}

/// `--out`, or `target/loadtest-reports/<time>-<kind><journal>-<rate>ps` (`kind`: `soak-` for a
/// soak, empty for a run).
fn report_folder(args: &RunArgs, started_at: chrono::DateTime<chrono::Utc>, kind: &str) -> PathBuf {
    match &args.out {
        Some(o) => o.clone(),
        None => crate::reports_dir().join(format!(
            "{}-{kind}{}-{}ps",
            started_at.format("%Y%m%d-%H%M%S"),
            journal_name(&args.server),
            args.orders_per_sec
        )),
    }
}

/// Stops the engine after a run (see [`Target::stop_all`]); a process that had died during the
/// run fails it.
async fn stop(
    args: &RunArgs,
    target: &mut Target,
    result: anyhow::Result<(report::RunReport, bool)>,
) -> anyhow::Result<(report::RunReport, bool)> {
    let died = target.stop_all().await;
    let (mut report, passed) = result?;
    for (id, status) in died.unwrap_or_default() {
        report.failures.push(if args.replicas > 1 {
            format!("replica {id} exited during the run ({status}); see replica-{id}.log")
        } else {
            format!("the server exited during the run ({status}); see server.log")
        });
    }
    let passed = passed && report.failures.is_empty();
    Ok((report, passed))
}

/// The journal as the report names it: `embedded`, `postgres` or `external`.
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

/// Seconds of the per-second series: the arrivals, the drain and room for the stragglers.
fn series_len(args: &RunArgs) -> usize {
    (args.duration + args.drain_timeout + 30) as usize
}

/// The run on a started server, phase by phase; the report, and whether its checks passed.
async fn drive(
    args: &RunArgs,
    target: &mut Target,
    out: &Path,
    started_at: chrono::DateTime<chrono::Utc>,
    fd_limit: Option<u64>,
) -> anyhow::Result<(report::RunReport, bool)> {
    let running = Running::start(args, target).await?;
    let played = running.play(target).await;
    Ok(running
        .finish(target, out, started_at, fd_limit, played)
        .await)
}

/// A run from its set-up to its report: the book every phase shares, the devices at work on
/// their sockets, and the gauges beside.
struct Running {
    shared: Arc<Shared>,
    tokens: Tokens,
    stop: watch::Sender<bool>,
    devices: Vec<JoinHandle<()>>,
    /// Each screen's and tablet's redial (`loadtest soak` tells them to hang up and dial
    /// again), screens first.
    redials: Vec<setup::Redial>,
    gauges: gauges::Gauges,
    memory_before: Option<Memory>,
    owners_after_setup: serde_json::Value,
    /// When the rush began: the first order's offset is from here.
    t0: Instant,
}

/// What the rush left: when its last arrival was past, how long the orders in flight took to
/// drain, and what the chaos did.
struct Played {
    load_end: Instant,
    drained_in: Duration,
    chaos: chaos::ChaosOutcome,
}

impl Running {
    /// The set-up: the chain configured, every screen and tablet connected and at work, the
    /// gauges sampling.
    async fn start(args: &RunArgs, target: &Target) -> anyhow::Result<Self> {
        let setup::SetUp {
            layout,
            http,
            tokens,
            replicas,
            owners,
            devices,
        } = setup::set_up(args, target).await?;
        let memory_before = target.memory();
        let t0 = Instant::now();
        let shared = Arc::new(setup::book(
            args, layout, http, &tokens, replicas, &owners, t0,
        )?);
        let owners_after_setup = shared.owner_names();
        let (stop, stop_rx) = watch::channel(false);
        let (devices, redials) = devices.spawn(&shared, &stop_rx);
        let gauges = gauges::Gauges::start(&shared, target, &stop_rx, t0);
        Ok(Self {
            shared,
            tokens,
            stop,
            devices,
            redials,
            gauges,
            memory_before,
            owners_after_setup,
            t0,
        })
    }

    /// The rush and its drain, with the chaos (SIGKILL and restart at each time) and a
    /// manager's 86s beside.
    async fn play(&self, target: &mut Target) -> Played {
        let (shared, t0) = (&self.shared, self.t0);
        let rush_and_drain = async {
            let load_end = rush::rush(shared, t0).await;
            (load_end, drain::drain(shared, load_end).await)
        };
        let chaos = chaos::chaos(&shared.args, shared, target, t0);
        let eighty_sixes = eighty_six::eighty_six(shared, t0);
        let (chaos, (load_end, drained_in), ()) = tokio::join!(chaos, rush_and_drain, eighty_sixes);
        Played {
            load_end,
            drained_in,
            chaos,
        }
    }

    /// After the drain: the server's own view (its `/metrics`, written to the report folder),
    /// every acknowledged order read back, then every device hangs up; the checks and the
    /// report.
    async fn finish(
        self,
        target: &Target,
        out: &Path,
        started_at: chrono::DateTime<chrono::Utc>,
        fd_limit: Option<u64>,
        played: Played,
    ) -> (report::RunReport, bool) {
        let Running {
            shared,
            tokens,
            stop,
            devices,
            gauges,
            memory_before,
            owners_after_setup,
            t0,
            ..
        } = self;
        let fate = tally::Fate::read(&shared);
        let memory_after = target.memory();
        let redis_memory = target.redis_pid().and_then(crate::server::memory_of);
        // The server's own view, for whoever reads the report (each replica's that is up).
        let mut replays_at_end = None;
        let mut unseen_metric = None;
        for node in shared.replicas.iter().filter(|r| r.is_up()) {
            let Some(text) = chaos::scrape_metrics(&shared.http, &node.metrics).await else {
                continue;
            };
            let name = if shared.replicated() {
                format!("metrics-{}.txt", node.id)
            } else {
                "metrics.txt".to_owned()
            };
            let _ = std::fs::write(out.join(name), &text);
            *replays_at_end.get_or_insert(0) += chaos::replays(&text);
            *unseen_metric.get_or_insert(0) += chaos::unseen(&text);
        }
        // Every order the engine acknowledged, read back from it.
        let readback = read_back::read_back(&shared, &tokens).await;
        drain::hang_up(&stop, devices).await;
        gauges.stop();
        let finished = Instant::now();
        let seconds = (finished - t0).as_secs() as usize + 1;
        let measured = shared.rec.snapshot(seconds.min(series_len(&shared.args)));
        let verification = verify::verify(&shared);
        let end = tally::RunEnd {
            fate,
            chaos: played.chaos,
            readback,
            verification,
            measured,
            replays_at_end,
            unseen_metric,
            owners_after_setup,
            redis_memory,
            memory_before,
            memory_after,
            memory_samples: gauges.samples(),
            t0,
            load_end: played.load_end,
            drained_in: played.drained_in,
            finished,
        };
        tally::report(&shared.args, target, fd_limit, started_at, &shared, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_with_jitter_up_to_a_second() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..8).map(|_| b.wait()).collect();
        assert!(waits[0] >= Duration::from_millis(25) && waits[0] <= Duration::from_millis(50));
        assert!(waits.iter().all(|w| *w <= Backoff::MAX));
        assert!(waits[7] >= Backoff::MAX / 2);
    }
}
