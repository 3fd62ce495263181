//! The tally: what the phases saw, turned into what the report needs (the counts, the
//! throughput, what the chaos did, the configuration) and the failures that decide the
//! verdict.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::chain::UNKNOWN;
use super::chaos::ChaosOutcome;
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
    /// Retries answered from the journal, by the `/metrics` of the servers up after the
    /// drain (summed over the replicas).
    pub(super) replays_at_end: Option<u64>,
    /// `rail_ticket_unseen_total` summed over the `/metrics` of the servers up at the end
    /// (since their last start).
    pub(super) unseen_metric: Option<u64>,
    /// With replicas: each branch's owner after the set-up, by name.
    pub(super) owners_after_setup: Value,
    /// With replicas: the redis-server's memory at the end.
    pub(super) redis_memory: Option<Memory>,
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
    let kitchen = kitchen_json(shared, &end);
    let throughput = throughput_json(args, shared, &end, ok, load_secs);
    let failures = failures(args, shared, &end, ok, failed);
    let chaos = (!args.chaos_kill_at.is_empty()).then(|| chaos_json(args, shared, &end));
    let replicas = shared
        .replicated()
        .then(|| replicas_json(shared, &end, target));
    let cpu = cpu_json(&end);
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
        kitchen_verification_line: verification.kitchen_line(args.screens_per_station),
        readback_line: readback.summary_line(),
        kitchen,
        chaos,
        replicas,
        cpu,
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
            "tablets": args.branches * shared.layout.table_count(),
            "closed_unexpectedly": load(&c.sockets_closed),
            "closed_by_kill": load(&c.sockets_closed_by_kill),
            "reconnects": load(&c.reconnects),
            "reconnects_failed": load(&c.reconnects_failed),
            "redialed": load(&c.redials),
            "reset_snapshots": load(&c.resets),
        },
        "rest_commands_retried": load(&c.rest_retried),
        "rest_retries": load(&c.rest_retries),
        "ws_commands_resent": load(&c.ws_retried),
        "ws_resends": load(&c.ws_resends),
    })
}

/// `kitchen` in report.json: what the workload did besides opening, firing and serving (the
/// one-call orders, voids, recalls and 86s, the screens' acknowledgements) and what came of it.
fn kitchen_json(shared: &Shared, end: &RunEnd) -> Value {
    let c = &shared.counts;
    let refusals = &end.measured.refusals;
    json!({
        "one_call_orders": load(&c.one_call_orders),
        "orders_dropped_every_item_86": load(&c.orders_dropped_86),
        "refused_item_86_and_sent_again": load(&c.refused_86_retried),
        "voids_before_fire": load(&c.voids_before_fire),
        "voids_after_fire": load(&c.voids_after_fire),
        "voids_of_86_items": load(&c.voids_86),
        "tickets_voided": load(&c.tickets_voided),
        "recalls": load(&c.recalls),
        "bumped_again_after_recall": load(&c.rebumps),
        "eighty_sixed": load(&c.eighty_sixed),
        "restored": load(&c.restored),
        "eighty_six_calls_failed": load(&c.eighty_six_failed),
        "seen_frames": load(&c.seen_frames),
        "seen_tickets": load(&c.seen_tickets),
        "ticket_unseen_notices_on_screens": load(&c.unseen_notices),
        "tickets_escalated_unseen": end.readback.unseen,
        "tickets_escalated_unseen_metric": end.unseen_metric,
        "expected_refusals": refusals,
        "expected_refusals_total": refusals.values().flat_map(|m| m.values()).sum::<u64>(),
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
    if load(&c.eighty_six_failed) > 0 {
        failures.push(format!(
            "{} 86 or restore call(s) failed",
            load(&c.eighty_six_failed)
        ));
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
    let downtimes: Vec<f64> = chaos.kills.iter().map(|(_, r)| r.downtime_ms).collect();
    let back_after = shared.back_after.lock().expect("lock").clone();
    let replays_now = end.replays_at_end;
    let mut json = json!({
        "kills": chaos.kills.len().max(chaos.replica_kills.len()),
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
    });
    if shared.replicated() {
        let (kills, all) = replica_kills_json(shared, chaos);
        json["replica_kills"] = kills;
        json["restart_after_kill"] = json!(args.chaos_restart);
        json["failover_ms_max"] = json!(all.last().copied());
        json["failover_ms_median"] = json!(median(&all));
        json["failover_note"] = json!("failover: from the SIGKILL to the first command answered (with success) for each branch the killed replica owned, counting only commands sent after the kill; new owner: by the replicas' /metrics once ownership settled");
        // Kills of replicas: one restart for each with --chaos-restart.
        if !args.chaos_restart {
            json["restarts"] = json!([]);
        }
    }
    json
}

/// The median of sorted values.
fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Each replica kill in report.json, and every branch's failover (ms) of all kills, sorted.
fn replica_kills_json(shared: &Shared, chaos: &ChaosOutcome) -> (Value, Vec<f64>) {
    let failovers = shared.failovers.lock().expect("lock").clone();
    let name = |r: usize| shared.replicas.get(r).map(|e| e.id.clone());
    let mut all = Vec::new();
    let kills = chaos
        .replica_kills
        .iter()
        .enumerate()
        .map(|(k, kill)| {
            let mut times = Vec::new();
            let branches: Vec<Value> = kill
                .branches
                .iter()
                .map(|&(b, owner)| {
                    let ms = failovers
                        .iter()
                        .find(|(kn, fb, _)| *kn == k && *fb == b)
                        .map(|(_, _, d)| d.as_secs_f64() * 1000.0);
                    times.extend(ms);
                    json!({
                        "branch": shared.layout.branches[b],
                        "new_owner": (owner != UNKNOWN).then(|| name(owner)).flatten(),
                        "first_answer_ms": ms,
                    })
                })
                .collect();
            times.sort_by(f64::total_cmp);
            all.extend(&times);
            json!({
                "at_s": (kill.at_s * 1000.0).round() / 1000.0,
                "replica": name(kill.replica),
                "killed_pid": kill.killed.killed_pid,
                "reaped_ms": kill.killed.reaped_ms,
                "restart": kill.restart,
                "branches_owned_before": kill.owned_before.iter().enumerate()
                    .map(|(r, n)| (name(r).unwrap_or_default(), json!(n)))
                    .collect::<serde_json::Map<_, _>>(),
                "branches": branches,
                "branches_answered_again": times.len(),
                "failover_ms_max": times.last().copied(),
                "failover_ms_median": median(&times),
                "owners_settled_ms": kill.settled_ms,
            })
        })
        .collect::<Vec<_>>();
    all.sort_by(f64::total_cmp);
    (json!(kills), all)
}

/// `replicas` in report.json: the replicas, who owned what, the latencies by path, and each
/// replica's and the redis-server's CPU and memory.
fn replicas_json(shared: &Shared, end: &RunEnd, target: &Target) -> Value {
    let series = &end.measured.series;
    let n = shared.replicas.len();
    let per_replica: Vec<Value> = (0..n)
        .map(|r| {
            let cpu: Vec<f64> = series
                .iter()
                .filter_map(|p| p.cpu_replica_cores.as_ref()?.get(r).copied().flatten())
                .collect();
            let rss: Vec<f64> = series
                .iter()
                .filter_map(|p| p.rss_replica_mib.as_ref()?.get(r).copied().flatten())
                .collect();
            let e = &shared.replicas[r];
            json!({
                "id": e.id,
                "base": e.base,
                "up_at_end": e.is_up(),
                "kills": e.kills.load(Ordering::Relaxed),
                "log": target.nodes.get(r).and_then(|n| n.log.as_ref()).map(|l| l.display().to_string()),
                "cpu_cores_avg": (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64),
                "cpu_cores_max": cpu.iter().copied().reduce(f64::max),
                "cpu_seconds": cpu.iter().sum::<f64>(),
                "rss_mib_max": rss.iter().copied().reduce(f64::max),
                "rss_mib_last": rss.last(),
            })
        })
        .collect();
    let redis: Vec<f64> = series.iter().filter_map(|p| p.cpu_redis_cores).collect();
    json!({
        "count": n,
        "ids": shared.replicas.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        "owners_after_setup": end.owners_after_setup,
        "owners_at_end": shared.owner_names(),
        "paths": end.measured.paths.to_json(),
        "paths_note": "command_ack: REST commands (first send -> answer), local when the replica it was last sent to owned the branch, forwarded otherwise; fire_to_screen: fire sent -> the ticket on one screen (each screen's own arrival), local when the screen's replica owned the branch, relayed otherwise. Ownership is read after the set-up and after each kill once the chain settled: a sample taken around an ownership change may be put down to the previous owner.",
        "per_replica": per_replica,
        "redis": {
            "cpu_cores_avg": (!redis.is_empty()).then(|| redis.iter().sum::<f64>() / redis.len() as f64),
            "cpu_cores_max": redis.iter().copied().reduce(f64::max),
            "cpu_seconds": redis.iter().sum::<f64>(),
            "rss_bytes_at_end": end.redis_memory.map(|m| m.rss_bytes),
        },
    })
}

/// `cpu` in report.json: the CPU the engine (all its replicas) and, with replicas, the
/// redis-server used over the run (the sum of the per-second readings), and per order
/// completed.
fn cpu_json(end: &RunEnd) -> Value {
    let series = &end.measured.series;
    let engine: f64 = series.iter().filter_map(|p| p.cpu_server_cores).sum();
    let measured = series.iter().any(|p| p.cpu_server_cores.is_some());
    let redis: Option<f64> = series
        .iter()
        .any(|p| p.cpu_redis_cores.is_some())
        .then(|| series.iter().filter_map(|p| p.cpu_redis_cores).sum());
    let loadtest: f64 = series.iter().filter_map(|p| p.cpu_loadtest_cores).sum();
    let orders = end.fate.completed.max(1) as f64;
    let per_order = |secs: f64| (secs * 1000.0 / orders * 1000.0).round() / 1000.0;
    json!({
        "engine_cpu_seconds": measured.then_some(engine),
        "engine_cpu_ms_per_order": measured.then(|| per_order(engine)),
        "redis_cpu_seconds": redis,
        "redis_cpu_ms_per_order": redis.map(per_order),
        "loadtest_cpu_seconds": loadtest,
        "loadtest_cpu_ms_per_order": per_order(loadtest),
        "orders_completed": end.fate.completed,
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
        "one_call_share": args.one_call_share,
        "void_share": args.void_share,
        "recall_share": args.recall_share,
        "eighty_six_every_s": args.eighty_six_every,
        "eighty_six_for_ms": args.eighty_six_for_ms,
        "unseen_after_seconds": args.unseen_after_seconds,
        "drain_timeout_s": args.drain_timeout,
        "max_in_flight": args.max_in_flight,
        "max_http_in_flight": args.max_http_in_flight,
        "max_error_ratio": args.max_error_ratio,
        "request_timeout_ms": args.request_timeout_ms,
        "idempotency_keys": args.idempotency_keys,
        "chaos_kill_at_s": args.chaos_kill_at,
        "replicas": args.replicas,
        "chaos_restart": args.chaos_restart,
        "retry_deadline_s": args.retry_deadline,
        "open_files_limit": fd_limit,
        "machine": crate::server::machine(),
        "sockets_per_address": args.server.sockets_per_address,
        "server_env": args.server.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "loadtest_version": env!("CARGO_PKG_VERSION"),
    })
}
