//! The tally: what the phases saw, turned into what the report needs (the counts, the
//! throughput, what the chaos did, the configuration) and the failures that decide the
//! verdict.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::chaos::{replays, ChaosOutcome};
use super::read_back::ReadBack;
use super::verify::Verification;
use super::{journal_name, RunArgs, Shared};
use crate::metrics::Measured;
use crate::report;
use crate::server::{Memory, Target};

/// The orders' fate, read at one moment: the end of the run.
#[derive(Clone, Copy)]
pub(super) struct Fate {
    in_flight_at_end: u64,
    opened: u64,
    completed: u64,
    failed_orders: u64,
    stalled_orders: u64,
}

impl Fate {
    /// Reads the orders' counters now.
    pub(super) fn read(shared: &Shared) -> Self {
        let c = &shared.counts;
        Self {
            in_flight_at_end: shared.in_flight.load(Ordering::Relaxed) as u64,
            opened: load(&c.orders_opened),
            completed: load(&c.orders_completed),
            failed_orders: load(&c.orders_failed),
            stalled_orders: load(&c.orders_stalled),
        }
    }
}

/// What the phases leave for the report.
pub(super) struct RunEnd {
    pub(super) fate: Fate,
    pub(super) chaos: ChaosOutcome,
    pub(super) readback: ReadBack,
    pub(super) verification: Verification,
    pub(super) measured: Measured,
    /// The server's `/metrics` text after the drain.
    pub(super) metrics_text: Option<String>,
    pub(super) memory_before: Option<Memory>,
    pub(super) memory_after: Option<Memory>,
    /// (seconds since the rush began, reading)
    pub(super) memory_samples: Vec<(f64, Memory)>,
    /// When the rush began, when its last arrival was past, how long the orders in flight
    /// took to drain, and when the run ended.
    pub(super) t0: Instant,
    pub(super) load_end: Instant,
    pub(super) drained_in: Duration,
    pub(super) finished: Instant,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// The run's report, and whether the run passed its checks.
pub(super) fn report(
    args: &RunArgs,
    target: &Target,
    fd_limit: Option<u64>,
    started_at: chrono::DateTime<chrono::Utc>,
    shared: &Shared,
    end: RunEnd,
) -> (report::RunReport, bool) {
    let ok = load(&shared.rec.commands_ok);
    let failed = load(&shared.rec.commands_failed);
    let load_secs = (end.load_end - end.t0).as_secs_f64().max(1e-9);
    let counts = counts_json(args, shared, &end.fate, ok, failed);
    let throughput = throughput_json(args, shared, &end, ok, load_secs);
    let failures = failures(args, shared, &end, ok, failed);
    let chaos = (!args.chaos_kill_at.is_empty()).then(|| chaos_json(args, shared, &end));
    let passed = failures.is_empty();
    let RunEnd {
        readback,
        verification,
        measured,
        memory_before,
        memory_after,
        memory_samples,
        ..
    } = end;
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
        chaos,
        measured,
        memory_before,
        memory_after,
        memory_samples,
        failures,
        load_seconds: load_secs,
    };
    (report, passed)
}

/// `counts` in report.json: orders, commands, frames, sockets and retries.
fn counts_json(args: &RunArgs, shared: &Shared, fate: &Fate, ok: u64, failed: u64) -> Value {
    let c = &shared.counts;
    let Fate {
        in_flight_at_end,
        opened,
        completed,
        failed_orders,
        stalled_orders,
    } = *fate;
    json!({
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
    })
}

/// `throughput` in report.json: the rates offered and reached.
fn throughput_json(
    args: &RunArgs,
    shared: &Shared,
    end: &RunEnd,
    ok: u64,
    load_secs: f64,
) -> Value {
    let Fate {
        opened, completed, ..
    } = end.fate;
    let (t0, finished, drained_in) = (end.t0, end.finished, end.drained_in);
    json!({
        "orders_per_sec_offered": args.orders_per_sec,
        "orders_per_sec_opened": opened as f64 / load_secs,
        "orders_per_sec_completed": completed as f64 / (finished - t0).as_secs_f64(),
        "commands_per_sec": ok as f64 / (finished - t0).as_secs_f64(),
        "frames_per_sec": shared.rec.frames_total() as f64 / (finished - t0).as_secs_f64(),
        "load_seconds": load_secs,
        "drain_seconds": drained_in.as_secs_f64(),
    })
}

/// The checks the run failed, one line each; none when it passed.
fn failures(args: &RunArgs, shared: &Shared, end: &RunEnd, ok: u64, failed: u64) -> Vec<String> {
    let c = &shared.counts;
    let Fate {
        in_flight_at_end,
        completed,
        stalled_orders,
        ..
    } = end.fate;
    let (verification, readback, chaos, measured) =
        (&end.verification, &end.readback, &end.chaos, &end.measured);
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
    failures
}

/// `chaos` in report.json: the kills, the restarts and what the devices and checks saw of them.
fn chaos_json(args: &RunArgs, shared: &Shared, end: &RunEnd) -> Value {
    let c = &shared.counts;
    let (chaos, readback, verification, measured) =
        (&end.chaos, &end.readback, &end.verification, &end.measured);
    let metrics_text = &end.metrics_text;
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
}

/// `config` in report.json: the flags, the server and the machine of the run.
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
