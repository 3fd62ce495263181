//! `loadtest connections`: many idle screens and tablets on one replica, and what they cost it.
//!
//! Opens `--count` websockets spread over the stations and tables of the load branches, each
//! subscribed and holding its snapshot, keeps them for `--hold` seconds (answering the
//! server's pings, so the server's idle check would close any that did not), samples the
//! server's RSS, then fires one probe order per branch and checks that every station screen and
//! the probe table's tablets receive it: the sockets are live, not just open.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::auth::Tokens;
use crate::charts::{self, Chart, Line};
use crate::menu::Layout;
use crate::metrics::{histogram, us, Percentiles};
use crate::proto::{self, Frame, Socket, Topic};
use crate::report::{mib, thousands, verdict_lines};
use crate::server::{Memory, ServerArgs, Target};

/// Flags of `loadtest connections`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Websockets to open (screens and tablets).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Branches the sockets are spread over (`load-1` to `load-N`).
    #[arg(long, default_value_t = 2)]
    pub branches: usize,
    /// Cooking stations a branch (expo on top): screens follow these.
    #[arg(long, default_value_t = 4)]
    pub stations: usize,
    /// Tables a branch: tablets follow these.
    #[arg(long, default_value_t = 40)]
    pub tables: usize,
    /// Seconds to hold every socket open once all are connected (the server pings every
    /// 10 s and closes a socket silent for three pings).
    #[arg(long, default_value_t = 35)]
    pub hold: u64,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// The run fails when the server's peak RSS is above this (MiB), when it is measured.
    #[arg(long, default_value_t = 512)]
    pub max_rss_mib: u64,
    /// The report folder [default: target/loadtest-reports/<time>-connections-<count>, beside
    /// the build folder this binary is in].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

struct Probe {
    /// Probe order id -> when its fire was sent.
    sent: Mutex<HashMap<String, Instant>>,
    latency: Mutex<hdrhistogram::Histogram<u64>>,
    arrived: AtomicU64,
    closed: AtomicU64,
    frames: AtomicU64,
}

/// Opens the sockets, holds them, probes them, reports; Ok(true) when it passed.
pub async fn run(args: ConnArgs) -> anyhow::Result<bool> {
    let started_at = chrono::Utc::now();
    let out = match &args.out {
        Some(o) => o.clone(),
        None => crate::reports_dir().join(format!(
            "{}-connections-{}",
            started_at.format("%Y%m%d-%H%M%S"),
            args.count
        )),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // Each socket is a file descriptor here and one in the server (which inherits this limit
    // when spawned from here).
    let limit = crate::raise_fd_limit();
    if let Some(l) = limit {
        if (l as usize) < args.count + 256 {
            bail!(
                "the open-files limit is {l}, too low for {} sockets: raise the hard limit (ulimit -Hn) above {}",
                args.count,
                args.count + 256
            );
        }
    }
    let mut target = Target::start(&args.server, &out).await?;
    let result = hold(&args, &target, limit, &out, started_at).await;
    let died = target.stop().await;
    let (mut report, mut failures, summary) = result?;
    if let Ok(Some(status)) = died {
        failures.push(format!("the server exited during the run ({status})"));
    }
    let passed = failures.is_empty();
    report["passed"] = json!(passed);
    report["failures"] = json!(failures);
    let mut summary = summary;
    verdict_lines(&mut summary, passed, &failures);
    let _ = writeln!(
        summary,
        "files         {}/ report.json summary.txt memory.svg",
        out.display()
    );
    let summary = summary.replacen(
        "rail loadtest connections",
        &format!(
            "rail loadtest connections: {}",
            if passed { "PASSED" } else { "FAILED" }
        ),
        1,
    );
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(out.join("summary.txt"), &summary)?;
    print!("{summary}");
    Ok(passed)
}

type Outcome = (serde_json::Value, Vec<String>, String);

/// One reading of the server's memory: seconds since the first socket was opened, sockets
/// open then, the reading.
type Sample = (f64, usize, Memory);

/// Holds the sockets and probes them (see the module header); the report, the failures and the
/// summary without its verdict.
async fn hold(
    args: &ConnArgs,
    target: &Target,
    fd_limit: Option<u64>,
    out: &Path,
    started_at: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    let mut run = HoldRun::configure(args, target, fd_limit, started_at).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (readers, connects) = run.open_sockets(stop_rx).await?;
    let connected = readers.len();
    let connect_secs = run.t0.elapsed().as_secs_f64();
    let after_connect = run.sample_memory(connected);
    if !args.quiet {
        eprintln!(
            "[{:>4.0}s] {connected} of {} sockets subscribed in {connect_secs:.1} s; holding them {} s",
            run.t0.elapsed().as_secs_f64(),
            args.count,
            args.hold
        );
    }
    let closed_during_hold = run.hold_open(connected).await;
    let failed_connects = args.count - connected;
    let expected = run.expected_hearers(failed_connects);
    let arrived = run.probe_sockets(expected).await?;
    let end = run.sample_memory(run.open(connected));
    let _ = stop_tx.send(true);
    for r in readers {
        let _ = tokio::time::timeout(Duration::from_secs(10), r).await;
    }
    let found = Findings {
        connected,
        failed_connects,
        connect_secs,
        closed_during_hold,
        connect: Percentiles::of(&connects.latency.lock().expect("lock")),
        errors: connects.errors.lock().expect("lock").clone(),
        expected,
        arrived,
        fanout: Percentiles::of(&run.probe.latency.lock().expect("lock")),
        after_connect,
        end,
    };
    let failures = run.failures(&found);
    let report = run.report_json(&found);
    let summary = run.summary(&found);
    run.draw_memory(out)?;
    Ok((report, failures, summary))
}

/// One `connections` run while it holds its sockets: what it talks to, which socket follows
/// what, the probe the readers count into, and the server's memory so far.
struct HoldRun<'a> {
    args: &'a ConnArgs,
    target: &'a Target,
    fd_limit: Option<u64>,
    started_at: DateTime<Utc>,
    layout: Layout,
    http: reqwest::Client,
    tokens: Tokens,
    /// When the first socket was opened.
    t0: Instant,
    /// The branch (an index into `layout.branches`) and topic of each socket to open.
    plan: Vec<(usize, Topic)>,
    probe: Arc<Probe>,
    /// The server's memory before any socket was opened.
    before: Option<Memory>,
    memory: Vec<Sample>,
}

/// What the connecting sockets count into.
struct Connects {
    /// Connect + subscribe + snapshot, per socket.
    latency: Mutex<hdrhistogram::Histogram<u64>>,
    /// The first 20 connect errors.
    errors: Mutex<Vec<String>>,
    /// Sockets subscribed so far.
    opened: AtomicU64,
}

/// What the run measured, for its verdict and report.
struct Findings {
    connected: usize,
    failed_connects: usize,
    connect_secs: f64,
    closed_during_hold: u64,
    connect: Percentiles,
    errors: Vec<String>,
    /// Subscribed screens and tablets that should hear the probe.
    expected: u64,
    arrived: u64,
    fanout: Percentiles,
    after_connect: Option<Memory>,
    end: Option<Memory>,
}

impl<'a> HoldRun<'a> {
    /// Configures the load branches on the server, takes its memory, and plans the sockets.
    async fn configure(
        args: &'a ConnArgs,
        target: &'a Target,
        fd_limit: Option<u64>,
        started_at: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let layout = Layout::new(args.branches, args.stations, args.tables);
        let http = reqwest::Client::new();
        let tokens = Tokens::new(
            &args.server.auth,
            &target.jwt_secret,
            Duration::from_secs(args.hold),
        );
        layout.configure(&http, &target.base, &tokens).await?;
        let t0 = Instant::now();
        let before = target.memory();
        let memory = before.map(|m| (0.0, 0, m)).into_iter().collect();
        let plan = socket_plan(&layout, args.count);
        Ok(Self {
            args,
            target,
            fd_limit,
            started_at,
            layout,
            http,
            tokens,
            t0,
            plan,
            probe: Arc::new(Probe {
                sent: Mutex::new(HashMap::new()),
                latency: Mutex::new(histogram()),
                arrived: AtomicU64::new(0),
                closed: AtomicU64::new(0),
                frames: AtomicU64::new(0),
            }),
            before,
            memory,
        })
    }

    /// Reads the server's memory, with `open` sockets, into the samples.
    fn sample_memory(&mut self, open: usize) -> Option<Memory> {
        let m = self.target.memory()?;
        self.memory.push((self.t0.elapsed().as_secs_f64(), open, m));
        Some(m)
    }

    /// Of `connected` sockets, those the server has not closed.
    fn open(&self, connected: usize) -> usize {
        connected - self.probe.closed.load(Ordering::Relaxed) as usize
    }

    /// Opens and subscribes every planned socket, `--connect-concurrency` at a time, starting
    /// a reader on each as soon as it is subscribed.
    async fn open_sockets(
        &self,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<(Vec<JoinHandle<()>>, Connects)> {
        let server = proto::resolve(&self.target.ws_url).await?;
        let connects = Connects {
            latency: Mutex::new(histogram()),
            errors: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        };
        let mut readers = Vec::with_capacity(self.args.count);
        {
            let opening = futures_util::stream::iter(self.plan.iter().enumerate().map(
                |(n, (branch, topic))| {
                    self.connect_one(n, &self.layout.branches[*branch], topic, server, &connects)
                },
            ))
            .buffer_unordered(self.args.connect_concurrency.max(1));
            tokio::pin!(opening);
            while let Some(done) = opening.next().await {
                if let Some((ws, topic)) = done {
                    readers.push(tokio::spawn(reader(
                        ws,
                        topic,
                        self.probe.clone(),
                        stop.clone(),
                    )));
                }
            }
        }
        Ok((readers, connects))
    }

    /// Connects and subscribes the `n`th socket, counting it into `connects`.
    async fn connect_one(
        &self,
        n: usize,
        branch: &str,
        topic: &Topic,
        server: SocketAddr,
        connects: &Connects,
    ) -> Option<(Socket, Topic)> {
        let source = proto::source_address(&server, n, self.args.server.sockets_per_address);
        let token = self.tokens.socket(branch, topic, n);
        let t = Instant::now();
        let subscribed = proto::connect_subscribed(
            &self.target.ws_url,
            server,
            source,
            &token,
            branch,
            topic,
            Duration::from_secs(60),
        )
        .await;
        match subscribed {
            Ok((ws, _)) => {
                connects
                    .latency
                    .lock()
                    .expect("lock")
                    .saturating_record(us(t.elapsed()));
                let n = connects.opened.fetch_add(1, Ordering::Relaxed) + 1;
                if !self.args.quiet && n.is_multiple_of(1000) {
                    eprintln!(
                        "[{:>4.0}s] {n} sockets subscribed",
                        self.t0.elapsed().as_secs_f64()
                    );
                }
                Some((ws, topic.clone()))
            }
            Err(e) => {
                let mut errors = connects.errors.lock().expect("lock");
                if errors.len() < 20 {
                    errors.push(format!("{e:#}"));
                }
                None
            }
        }
    }

    /// Holds the `connected` sockets for `--hold` seconds, sampling the server's memory each
    /// second; returns how many the server closed meanwhile.
    async fn hold_open(&mut self, connected: usize) -> u64 {
        let hold_until = Instant::now() + Duration::from_secs(self.args.hold);
        while Instant::now() < hold_until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let open = self.open(connected);
            self.sample_memory(open);
        }
        self.probe.closed.load(Ordering::Relaxed)
    }

    /// The table whose tablets hear the probe orders.
    fn probe_table(&self) -> &str {
        &self.layout.tables[0]
    }

    /// The sockets that should hear the probe: every station screen and the probe table's
    /// tablets.
    fn expected_hearers(&self, failed_connects: usize) -> u64 {
        let expected = self
            .plan
            .iter()
            .filter(|(_, t)| match t {
                Topic::Station(_) => true,
                Topic::Table(t) => t == self.probe_table(),
            })
            .count() as u64;
        // Sockets that failed to connect are not expected to hear the probe.
        expected.saturating_sub(failed_connects as u64)
    }

    /// Fires one probe order a branch and waits up to 20 s for the `expected` sockets to hear
    /// it; returns how many did.
    async fn probe_sockets(&self, expected: u64) -> anyhow::Result<u64> {
        let probe_start = Instant::now();
        for branch in &self.layout.branches {
            self.fire_probe(branch).await?;
        }
        while self.probe.arrived.load(Ordering::Relaxed) < expected
            && probe_start.elapsed() < Duration::from_secs(20)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(self.probe.arrived.load(Ordering::Relaxed))
    }

    /// Opens the probe order at the probe table with one line for each cooking station, and
    /// fires it.
    async fn fire_probe(&self, branch: &str) -> anyhow::Result<()> {
        let base = format!("{}/api/v1/branches/{branch}/orders", self.target.base);
        let waiter = self.tokens.waiter(branch);
        let order: serde_json::Value = self
            .http
            .post(&base)
            .bearer_auth(&waiter)
            .json(&json!({"table": self.probe_table()}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = order["id"].as_str().unwrap_or_default().to_owned();
        let lines: Vec<_> = self
            .layout
            .cooking
            .iter()
            .map(|s| json!({"item": format!("{s}-special")}))
            .collect();
        self.http
            .post(format!("{base}/{id}/lines"))
            .bearer_auth(&waiter)
            .json(&json!({ "lines": lines }))
            .send()
            .await?
            .error_for_status()?;
        self.probe
            .sent
            .lock()
            .expect("lock")
            .insert(id.clone(), Instant::now());
        self.http
            .post(format!("{base}/{id}/fire"))
            .bearer_auth(&waiter)
            .json(&json!({}))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The server's peak RSS over the samples.
    fn peak(&self) -> Option<u64> {
        self.memory.iter().map(|(_, _, m)| m.peak_bytes).max()
    }

    /// The server's RSS the sockets added, a socket.
    fn per_socket(&self, found: &Findings) -> Option<f64> {
        match (self.before, found.after_connect) {
            (Some(b), Some(a)) if found.connected > 0 => {
                Some(a.rss_bytes.saturating_sub(b.rss_bytes) as f64 / found.connected as f64)
            }
            _ => None,
        }
    }

    /// Why the run failed, if it did (the server exiting is checked after).
    fn failures(&self, found: &Findings) -> Vec<String> {
        let args = self.args;
        let mut failures = Vec::new();
        if found.connected < args.count {
            failures.push(format!(
                "{} of {} sockets could not connect and subscribe",
                found.failed_connects, args.count
            ));
        }
        if found.closed_during_hold > 0 {
            failures.push(format!(
                "{} sockets were closed by the server while idle",
                found.closed_during_hold
            ));
        }
        if found.arrived < found.expected {
            failures.push(format!(
                "the probe orders reached {} of {} subscribed screens and tablets within 20 s",
                found.arrived, found.expected
            ));
        }
        if let Some(p) = self.peak() {
            if p > args.max_rss_mib * 1_048_576 {
                failures.push(format!(
                    "the server's peak RSS {} MiB is above --max-rss-mib {}",
                    mib(p),
                    args.max_rss_mib
                ));
            }
        }
        failures
    }

    /// `report.json` without its verdict.
    fn report_json(&self, found: &Findings) -> serde_json::Value {
        let (args, plan, peak) = (self.args, &self.plan, self.peak());
        json!({
            "kind": "connections",
            "started_at": self.started_at,
            "finished_at": chrono::Utc::now(),
            "config": {
                "server": self.target.description,
                "spawned": self.target.spawned,
                "count": args.count,
                "branches": args.branches,
                "stations": args.stations,
                "tables": args.tables,
                "hold_s": args.hold,
                "connect_concurrency": args.connect_concurrency,
                "max_rss_mib": args.max_rss_mib,
                "open_files_limit": self.fd_limit,
                "sockets_per_address": args.server.sockets_per_address,
                "server_env": args.server.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            },
            "sockets": {
                "requested": args.count,
                "subscribed": found.connected,
                "failed": found.failed_connects,
                "station_screens": plan.iter().filter(|(_, t)| matches!(t, Topic::Station(_))).count(),
                "table_tablets": plan.iter().filter(|(_, t)| matches!(t, Topic::Table(_))).count(),
                "closed_by_server_while_idle": found.closed_during_hold,
                "connect_seconds": found.connect_secs,
                "connect_and_subscribe_ms": found.connect,
                "errors": found.errors,
            },
            "probe": {
                "expected": found.expected,
                "arrived": found.arrived,
                "fire_to_screen_ms": found.fanout,
            },
            "frames_received": self.probe.frames.load(Ordering::Relaxed),
            "server_memory": {
                "rss_before_bytes": self.before.map(|m| m.rss_bytes),
                "rss_connected_bytes": found.after_connect.map(|m| m.rss_bytes),
                "rss_end_bytes": found.end.map(|m| m.rss_bytes),
                "rss_peak_bytes": peak,
                "rss_peak_mib": peak.map(mib),
                "bytes_per_socket": self.per_socket(found),
                "samples": self.memory.iter().map(|(t, open, m)| json!({
                    "t_s": (t * 10.0).round() / 10.0, "sockets": open, "rss_bytes": m.rss_bytes, "peak_bytes": m.peak_bytes,
                })).collect::<Vec<_>>(),
            },
        })
    }

    /// `summary.txt` without its verdict (the title gets it, and the lines after it).
    fn summary(&self, found: &Findings) -> String {
        let args = self.args;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "rail loadtest connections   ({})",
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let _ = writeln!(s, "server        {}", self.target.description);
        let _ = writeln!(
            s,
            "sockets       {} of {} subscribed in {:.1} s ({} branches x {} stations + {} tables each), {} closed while idle",
            thousands(found.connected as u64),
            thousands(args.count as u64),
            found.connect_secs,
            args.branches,
            self.layout.cooking.len() + 1,
            args.tables,
            found.closed_during_hold
        );
        let _ = writeln!(
            s,
            "connect       {}   (connect + subscribe + snapshot)",
            found.connect.line()
        );
        let _ = writeln!(
            s,
            "held          {} s, answering the server's pings",
            args.hold
        );
        let _ = writeln!(
            s,
            "probe         {} of {} screens and tablets got the probe fire   {}",
            found.arrived,
            found.expected,
            found.fanout.line()
        );
        self.memory_line(&mut s, found);
        let _ = writeln!(
            s,
            "open files    limit {} in this process{}",
            self.fd_limit.map_or("unknown".into(), |l| l.to_string()),
            if self.target.spawned {
                " (inherited by the spawned server)"
            } else {
                ""
            }
        );
        s
    }

    /// The server's RSS idle, with the sockets and at its peak, and a socket's share.
    fn memory_line(&self, s: &mut String, found: &Findings) {
        match (self.before, found.after_connect, self.peak()) {
            (Some(b), Some(c), Some(p)) => {
                let _ = writeln!(
                    s,
                    "memory        server RSS {} MiB idle, {} MiB with the sockets, {} MiB peak (limit {} MiB); {:.1} KiB a socket",
                    mib(b.rss_bytes),
                    mib(c.rss_bytes),
                    mib(p),
                    self.args.max_rss_mib,
                    self.per_socket(found).unwrap_or(0.0) / 1024.0
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "memory        not measured (server not local: pass --server-pid)"
                );
            }
        }
    }

    /// `memory.svg`: the server's RSS and the open sockets over the run, when measured.
    fn draw_memory(&self, out: &Path) -> anyhow::Result<()> {
        if self.memory.is_empty() {
            return Ok(());
        }
        let pts = |f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
            self.memory.iter().map(|x| (x.0, f(x))).collect()
        };
        charts::draw(
            &out.join("memory.svg"),
            Chart {
                title: "Server memory while sockets connect and idle",
                x_desc: "seconds",
                y_desc: "RSS (MiB)",
                lines: vec![Line::new(
                    "server RSS (MiB)",
                    charts::BLUE_DARK,
                    pts(&|x| mib(x.2.rss_bytes)),
                )],
                right: Some((
                    "sockets",
                    vec![Line::new(
                        "open sockets",
                        charts::GREEN,
                        pts(&|x| x.1 as f64),
                    )],
                )),
                marker: None,
            },
        )
    }
}

/// Which branch (an index into `layout.branches`) and topic each of `count` sockets follows:
/// spread over every branch, then every station and table of it.
fn socket_plan(layout: &Layout, count: usize) -> Vec<(usize, Topic)> {
    let per_branch: Vec<Topic> = layout
        .stations()
        .map(|s| Topic::Station(s.to_owned()))
        .chain(layout.tables.iter().map(|t| Topic::Table(t.clone())))
        .collect();
    (0..count)
        .map(|i| {
            let b = i % layout.branches.len();
            let topic = per_branch[(i / layout.branches.len()) % per_branch.len()].clone();
            (b, topic)
        })
        .collect()
}

/// One idle socket: reads (so pings are answered) and counts the probe.
async fn reader(ws: Socket, topic: Topic, probe: Arc<Probe>, mut stop: watch::Receiver<bool>) {
    let (mut sink, mut stream) = ws.split();
    let station = match &topic {
        Topic::Station(s) => Some(s.clone()),
        Topic::Table(_) => None,
    };
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            msg = stream.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                if !*stop.borrow() {
                    probe.closed.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        probe.frames.fetch_add(1, Ordering::Relaxed);
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            continue;
        };
        let Some(event) = frame.event else { continue };
        if event.kind != "course_fired" {
            continue;
        }
        let Some(sent) = event
            .order_id
            .as_ref()
            .and_then(|id| probe.sent.lock().expect("lock").get(id).copied())
        else {
            continue;
        };
        let mine = match &station {
            Some(s) => event.tickets.iter().any(|t| &t.station == s),
            None => true,
        };
        if mine {
            probe
                .latency
                .lock()
                .expect("lock")
                .saturating_record(us(sent.elapsed()));
            probe.arrived.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}
