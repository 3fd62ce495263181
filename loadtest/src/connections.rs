//! `loadtest connections`: many idle screens and tablets on one replica, and what they cost it.
//!
//! Opens `--count` websockets spread over the stations and tables of the load branches, each
//! subscribed and holding its snapshot, keeps them for `--hold` seconds (answering the
//! server's pings, so the server's idle check would close any that did not), samples the
//! server's RSS, then fires one probe order per branch and checks that every station screen and
//! the probe table's tablets receive it: the sockets are live, not just open.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::auth::Tokens;
use crate::charts::{self, Chart, Line};
use crate::menu::Layout;
use crate::metrics::{histogram, us, Percentiles};
use crate::proto::{self, Frame, Socket, Topic};
use crate::report::{mib, thousands};
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
    if passed {
        summary.push_str("verdict       PASSED\n");
    } else {
        summary.push_str("verdict       FAILED\n");
        for f in &failures {
            let _ = writeln!(summary, "  - {f}");
        }
    }
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

async fn hold(
    args: &ConnArgs,
    target: &Target,
    fd_limit: Option<u64>,
    out: &std::path::Path,
    started_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Outcome> {
    let layout = Layout::new(args.branches, args.stations, args.tables);
    let http = reqwest::Client::new();
    let tokens = Tokens::new(
        &args.server.auth,
        &target.jwt_secret,
        Duration::from_secs(args.hold),
    );
    layout.configure(&http, &target.base, &tokens).await?;
    let t0 = Instant::now();
    let mut memory: Vec<(f64, usize, Memory)> = Vec::new();
    let before = target.memory();
    if let Some(m) = before {
        memory.push((0.0, 0, m));
    }

    // Spread the sockets over every branch, then every station and table of it.
    let per_branch: Vec<Topic> = layout
        .stations()
        .map(|s| Topic::Station(s.to_owned()))
        .chain(layout.tables.iter().map(|t| Topic::Table(t.clone())))
        .collect();
    let plan: Vec<(usize, Topic)> = (0..args.count)
        .map(|i| {
            let b = i % layout.branches.len();
            let topic = per_branch[(i / layout.branches.len()) % per_branch.len()].clone();
            (b, topic)
        })
        .collect();
    let probe = Arc::new(Probe {
        sent: Mutex::new(HashMap::new()),
        latency: Mutex::new(histogram()),
        arrived: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        frames: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let connect_latency = Arc::new(Mutex::new(histogram()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let opened = Arc::new(AtomicU64::new(0));
    let ws_url = target.ws_url.clone();
    let server_addr = proto::resolve(&ws_url).await?;
    let per_address = args.server.sockets_per_address;
    let mut readers = Vec::with_capacity(args.count);
    {
        let connects =
            futures_util::stream::iter(plan.iter().cloned().enumerate().map(|(n, (b, topic))| {
                let (ws_url, branch) = (ws_url.clone(), layout.branches[b].clone());
                let source = proto::source_address(&server_addr, n, per_address);
                let token = tokens.socket(&branch, &topic, n);
                let (connect_latency, errors, opened) =
                    (connect_latency.clone(), errors.clone(), opened.clone());
                let quiet = args.quiet;
                async move {
                    let t = Instant::now();
                    match proto::connect_subscribed(
                        &ws_url,
                        server_addr,
                        source,
                        &token,
                        &branch,
                        &topic,
                        Duration::from_secs(60),
                    )
                    .await
                    {
                        Ok((ws, _)) => {
                            connect_latency
                                .lock()
                                .expect("lock")
                                .saturating_record(us(t.elapsed()));
                            let n = opened.fetch_add(1, Ordering::Relaxed) + 1;
                            if !quiet && n % 1000 == 0 {
                                eprintln!(
                                    "[{:>4.0}s] {n} sockets subscribed",
                                    t0.elapsed().as_secs_f64()
                                );
                            }
                            Some((ws, topic))
                        }
                        Err(e) => {
                            let mut errors = errors.lock().expect("lock");
                            if errors.len() < 20 {
                                errors.push(format!("{e:#}"));
                            }
                            None
                        }
                    }
                }
            }))
            .buffer_unordered(args.connect_concurrency.max(1));
        tokio::pin!(connects);
        while let Some(done) = connects.next().await {
            if let Some((ws, topic)) = done {
                readers.push(tokio::spawn(reader(
                    ws,
                    topic,
                    probe.clone(),
                    stop_rx.clone(),
                )));
            }
        }
    }
    let connected = readers.len();
    let connect_secs = t0.elapsed().as_secs_f64();
    let failed_connects = args.count - connected;
    let after_connect = target.memory();
    if let Some(m) = after_connect {
        memory.push((t0.elapsed().as_secs_f64(), connected, m));
    }
    if !args.quiet {
        eprintln!(
            "[{:>4.0}s] {connected} of {} sockets subscribed in {connect_secs:.1} s; holding them {} s",
            t0.elapsed().as_secs_f64(),
            args.count,
            args.hold
        );
    }

    // Hold, sampling memory.
    let hold_until = Instant::now() + Duration::from_secs(args.hold);
    while Instant::now() < hold_until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let open = connected - probe.closed.load(Ordering::Relaxed) as usize;
        if let Some(m) = target.memory() {
            memory.push((t0.elapsed().as_secs_f64(), open, m));
        }
    }
    let closed_during_hold = probe.closed.load(Ordering::Relaxed);

    // Probe: one order per branch, one line for each cooking station.
    let probe_table = &layout.tables[0];
    let mut expected = 0u64;
    for b in 0..layout.branches.len() {
        let here = plan.iter().filter(|(pb, _)| *pb == b);
        expected += here
            .filter(|(_, t)| match t {
                Topic::Station(_) => true,
                Topic::Table(t) => t == probe_table,
            })
            .count() as u64;
    }
    // Sockets that failed to connect are not expected to hear the probe.
    let expected = expected.saturating_sub(failed_connects as u64);
    let probe_start = Instant::now();
    for branch in &layout.branches {
        let base = format!("{}/api/v1/branches/{branch}/orders", target.base);
        let waiter = tokens.waiter(branch);
        let order: serde_json::Value = http
            .post(&base)
            .bearer_auth(&waiter)
            .json(&json!({"table": probe_table}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = order["id"].as_str().unwrap_or_default().to_owned();
        let lines: Vec<_> = layout
            .cooking
            .iter()
            .map(|s| json!({"item": format!("{s}-special")}))
            .collect();
        http.post(format!("{base}/{id}/lines"))
            .bearer_auth(&waiter)
            .json(&json!({ "lines": lines }))
            .send()
            .await?
            .error_for_status()?;
        probe
            .sent
            .lock()
            .expect("lock")
            .insert(id.clone(), Instant::now());
        http.post(format!("{base}/{id}/fire"))
            .bearer_auth(&waiter)
            .json(&json!({}))
            .send()
            .await?
            .error_for_status()?;
    }
    while probe.arrived.load(Ordering::Relaxed) < expected
        && probe_start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = probe.arrived.load(Ordering::Relaxed);
    let end_memory = target.memory();
    if let Some(m) = end_memory {
        memory.push((
            t0.elapsed().as_secs_f64(),
            connected - probe.closed.load(Ordering::Relaxed) as usize,
            m,
        ));
    }
    let _ = stop_tx.send(true);
    for r in readers {
        let _ = tokio::time::timeout(Duration::from_secs(10), r).await;
    }

    // The report.
    let connect = Percentiles::of(&connect_latency.lock().expect("lock"));
    let fanout = Percentiles::of(&probe.latency.lock().expect("lock"));
    let peak = memory.iter().map(|(_, _, m)| m.peak_bytes).max();
    let rss_connected = after_connect.map(|m| m.rss_bytes);
    let per_socket = match (before, after_connect) {
        (Some(b), Some(a)) if connected > 0 => {
            Some(a.rss_bytes.saturating_sub(b.rss_bytes) as f64 / connected as f64)
        }
        _ => None,
    };
    let mut failures = Vec::new();
    if connected < args.count {
        failures.push(format!(
            "{failed_connects} of {} sockets could not connect and subscribe",
            args.count
        ));
    }
    if closed_during_hold > 0 {
        failures.push(format!(
            "{closed_during_hold} sockets were closed by the server while idle"
        ));
    }
    if arrived < expected {
        failures.push(format!(
            "the probe orders reached {arrived} of {expected} subscribed screens and tablets within 20 s"
        ));
    }
    if let Some(p) = peak {
        if p > args.max_rss_mib * 1_048_576 {
            failures.push(format!(
                "the server's peak RSS {} MiB is above --max-rss-mib {}",
                mib(p),
                args.max_rss_mib
            ));
        }
    }
    let stations_n = layout.cooking.len() + 1;
    let report = json!({
        "kind": "connections",
        "started_at": started_at,
        "finished_at": chrono::Utc::now(),
        "config": {
            "server": target.description,
            "spawned": target.spawned,
            "count": args.count,
            "branches": args.branches,
            "stations": args.stations,
            "tables": args.tables,
            "hold_s": args.hold,
            "connect_concurrency": args.connect_concurrency,
            "max_rss_mib": args.max_rss_mib,
            "open_files_limit": fd_limit,
            "sockets_per_address": args.server.sockets_per_address,
            "server_env": args.server.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        },
        "sockets": {
            "requested": args.count,
            "subscribed": connected,
            "failed": failed_connects,
            "station_screens": plan.iter().filter(|(_, t)| matches!(t, Topic::Station(_))).count(),
            "table_tablets": plan.iter().filter(|(_, t)| matches!(t, Topic::Table(_))).count(),
            "closed_by_server_while_idle": closed_during_hold,
            "connect_seconds": connect_secs,
            "connect_and_subscribe_ms": connect,
            "errors": errors.lock().expect("lock").clone(),
        },
        "probe": {
            "expected": expected,
            "arrived": arrived,
            "fire_to_screen_ms": fanout,
        },
        "frames_received": probe.frames.load(Ordering::Relaxed),
        "server_memory": {
            "rss_before_bytes": before.map(|m| m.rss_bytes),
            "rss_connected_bytes": rss_connected,
            "rss_end_bytes": end_memory.map(|m| m.rss_bytes),
            "rss_peak_bytes": peak,
            "rss_peak_mib": peak.map(mib),
            "bytes_per_socket": per_socket,
            "samples": memory.iter().map(|(t, open, m)| json!({
                "t_s": (t * 10.0).round() / 10.0, "sockets": open, "rss_bytes": m.rss_bytes, "peak_bytes": m.peak_bytes,
            })).collect::<Vec<_>>(),
        },
    });
    let mut s = String::new();
    let _ = writeln!(
        s,
        "rail loadtest connections   ({})",
        started_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let _ = writeln!(s, "server        {}", target.description);
    let _ = writeln!(
        s,
        "sockets       {} of {} subscribed in {connect_secs:.1} s ({} branches x {stations_n} stations + {} tables each), {} closed while idle",
        thousands(connected as u64),
        thousands(args.count as u64),
        args.branches,
        args.tables,
        closed_during_hold
    );
    let _ = writeln!(
        s,
        "connect       {}   (connect + subscribe + snapshot)",
        connect.line()
    );
    let _ = writeln!(
        s,
        "held          {} s, answering the server's pings",
        args.hold
    );
    let _ = writeln!(
        s,
        "probe         {arrived} of {expected} screens and tablets got the probe fire   {}",
        fanout.line()
    );
    match (before, rss_connected, peak) {
        (Some(b), Some(c), Some(p)) => {
            let _ = writeln!(
                s,
                "memory        server RSS {} MiB idle, {} MiB with the sockets, {} MiB peak (limit {} MiB); {:.1} KiB a socket",
                mib(b.rss_bytes),
                mib(c),
                mib(p),
                args.max_rss_mib,
                per_socket.unwrap_or(0.0) / 1024.0
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "memory        not measured (server not local: pass --server-pid)"
            );
        }
    }
    let _ = writeln!(
        s,
        "open files    limit {} in this process{}",
        fd_limit.map_or("unknown".into(), |l| l.to_string()),
        if target.spawned {
            " (inherited by the spawned server)"
        } else {
            ""
        }
    );
    if !memory.is_empty() {
        let pts = |f: &dyn Fn(&(f64, usize, Memory)) -> f64| -> Vec<(f64, f64)> {
            memory.iter().map(|x| (x.0, f(x))).collect()
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
        )?;
    }
    Ok((report, failures, s))
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
