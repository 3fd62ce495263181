//! The report folder of a run: `report.json` (everything), `summary.txt` (what a person reads
//! at a glance), `latency.svg` and `throughput.svg`.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::charts::{self, Chart, Line};
use crate::metrics::{Measured, SecondPoint};
use crate::server::Memory;

/// Everything a `run` found.
pub struct RunReport {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub config: Value,
    pub counts: Value,
    pub throughput: Value,
    pub verification: Value,
    pub verification_line: String,
    /// The voids' and recalls' deliveries.
    pub kitchen_verification_line: String,
    /// The acknowledged orders read back after the run.
    pub readback_line: String,
    /// What the workload did besides open, fire, serve and close: one-call orders, voids,
    /// recalls, 86s, the screens' acknowledgements, the expected refusals.
    pub kitchen: Value,
    /// What `--chaos-kill-at` did, when given.
    pub chaos: Option<Value>,
    /// With `--replicas` ≥ 2: the replicas, ownership, latencies by path, CPU and memory each.
    pub replicas: Option<Value>,
    /// CPU over the run and per order: the engine (all replicas), redis-server, load test.
    pub cpu: Value,
    pub measured: Measured,
    pub memory_before: Option<Memory>,
    pub memory_after: Option<Memory>,
    /// (seconds since the load started, reading)
    pub memory_samples: Vec<(f64, Memory)>,
    pub failures: Vec<String>,
    pub load_seconds: f64,
}

pub fn mib(bytes: u64) -> f64 {
    (bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0
}

/// 1234567 -> "1,234,567"
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn rate(x: f64) -> String {
    if x >= 100.0 {
        thousands(x.round() as u64)
    } else {
        format!("{x:.1}")
    }
}

fn memory_json(before: Option<Memory>, after: Option<Memory>, samples: &[(f64, Memory)]) -> Value {
    if before.is_none() && samples.is_empty() {
        return Value::Null;
    }
    let peak = samples
        .iter()
        .map(|(_, m)| m.peak_bytes)
        .chain(after.map(|m| m.peak_bytes))
        .max();
    json!({
        "rss_before_bytes": before.map(|m| m.rss_bytes),
        "rss_after_bytes": after.map(|m| m.rss_bytes),
        "rss_peak_bytes": peak,
        "rss_peak_mib": peak.map(mib),
        "samples": samples
            .iter()
            .map(|(t, m)| json!({"t_s": (t * 10.0).round() / 10.0, "rss_bytes": m.rss_bytes, "peak_bytes": m.peak_bytes}))
            .collect::<Vec<_>>(),
    })
}

impl RunReport {
    pub fn to_json(&self, passed: bool) -> Value {
        let m = &self.measured;
        json!({
            "kind": "run",
            "passed": passed,
            "failures": self.failures,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "config": self.config,
            "counts": self.counts,
            "throughput": self.throughput,
            "latency_ms": m.latency_json(),
            "verification": self.verification,
            "kitchen": self.kitchen,
            "chaos": self.chaos,
            "replicas": self.replicas,
            "cpu": self.cpu,
            "errors": m.errors,
            "errors_by_command": m.errors_by_command,
            "error_samples": m.error_samples,
            "server_memory": memory_json(self.memory_before, self.memory_after, &self.memory_samples),
            "series": m.series,
        })
    }

    /// The text summary: what was offered and done, how fast, what was checked, the verdict.
    pub fn summary(&self, passed: bool, out: &Path) -> String {
        let mut s = String::new();
        self.heading_lines(&mut s, passed);
        self.order_lines(&mut s);
        self.kitchen_line(&mut s);
        self.command_lines(&mut s);
        self.delivery_lines(&mut s);
        if let Some(replicas) = &self.replicas {
            replica_lines(&mut s, replicas);
        }
        let _ = writeln!(s, "verify        {}", self.verification_line);
        let _ = writeln!(s, "  kitchen     {}", self.kitchen_verification_line);
        self.seen_line(&mut s);
        let _ = writeln!(s, "read back     {}", self.readback_line);
        if let Some(chaos) = &self.chaos {
            if chaos["replica_kills"].is_array() {
                replica_chaos_lines(&mut s, chaos);
            } else {
                chaos_lines(&mut s, chaos);
            }
        }
        self.errors_line(&mut s);
        self.refusals_line(&mut s);
        self.cpu_line(&mut s);
        self.cpu_per_order_line(&mut s);
        self.memory_line(&mut s);
        verdict_lines(&mut s, passed, &self.failures);
        let _ = writeln!(
            s,
            "files         {}/ report.json summary.txt latency.svg throughput.svg",
            out.display()
        );
        s
    }

    /// The title with the verdict, the server, and the workload it was given.
    fn heading_lines(&self, s: &mut String, passed: bool) {
        let c = &self.config;
        let elapsed = (self.finished_at - self.started_at).num_milliseconds() as f64 / 1000.0;
        let _ = writeln!(
            s,
            "rail loadtest run: {}   ({}, {elapsed:.1} s)",
            if passed { "PASSED" } else { "FAILED" },
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let _ = writeln!(s, "server        {}", c["server"].as_str().unwrap_or("?"));
        let _ = writeln!(
            s,
            "workload      {} branches x {} tables x {} stations (+expo), {} screens a station; seed {}, {} arrivals, prep {}-{} ms",
            c["branches"], c["tables"], c["stations"], c["screens_per_station"], c["seed"],
            c["arrival"].as_str().unwrap_or("?"), c["prep_ms"][0], c["prep_ms"][1]
        );
        let every = f64_at(c, "eighty_six_every_s");
        let _ = writeln!(
            s,
            "  mix         one-call {}, voids {}, recalls {}; {}",
            c["one_call_share"],
            c["void_share"],
            c["recall_share"],
            if every > 0.0 {
                format!(
                    "an item 86'd once every {every} s for {} ms",
                    c["eighty_six_for_ms"]
                )
            } else {
                "no 86s".to_owned()
            }
        );
    }

    /// What the kitchen's surprises came to: one-call orders, voids, recalls, 86s.
    fn kitchen_line(&self, s: &mut String) {
        let k = &self.kitchen;
        let _ = writeln!(
            s,
            "kitchen       {} one-call orders; {} voids ({} before the fire, {} after, {} of 86'd items; {} tickets voided); {} recalls bumped again; {} 86s, {} restored; {} refused item_86 and sent again without it, {} dropped",
            thousands(u64_at(k, "one_call_orders")),
            u64_at(k, "voids_before_fire") + u64_at(k, "voids_after_fire") + u64_at(k, "voids_of_86_items"),
            u64_at(k, "voids_before_fire"),
            u64_at(k, "voids_after_fire"),
            u64_at(k, "voids_of_86_items"),
            u64_at(k, "tickets_voided"),
            u64_at(k, "bumped_again_after_recall"),
            u64_at(k, "eighty_sixed"),
            u64_at(k, "restored"),
            u64_at(k, "refused_item_86_and_sent_again"),
            u64_at(k, "orders_dropped_every_item_86"),
        );
    }

    /// The screens' acknowledgements, and the tickets escalated all the same.
    fn seen_line(&self, s: &mut String) {
        let k = &self.kitchen;
        let metric = k["tickets_escalated_unseen_metric"]
            .as_u64()
            .map_or("not read".to_owned(), |m| m.to_string());
        let _ = writeln!(
            s,
            "  seen        {} seen frames for {} tickets; tickets escalated unseen: {} (journal), {metric} (rail_ticket_unseen_total)",
            thousands(u64_at(k, "seen_frames")),
            thousands(u64_at(k, "seen_tickets")),
            u64_at(k, "tickets_escalated_unseen"),
        );
    }

    /// The refusals the workload expects (not errors), by code and command, or none.
    fn refusals_line(&self, s: &mut String) {
        let by_code = self.kitchen["expected_refusals"].as_object();
        let text = match by_code {
            Some(codes) if !codes.is_empty() => codes
                .iter()
                .map(|(code, kinds)| {
                    let kinds = kinds.as_object();
                    let total: u64 = kinds
                        .into_iter()
                        .flatten()
                        .filter_map(|(_, n)| n.as_u64())
                        .sum();
                    let each: Vec<String> = kinds
                        .into_iter()
                        .flatten()
                        .map(|(kind, n)| format!("{kind} {}", n.as_u64().unwrap_or(0)))
                        .collect();
                    format!("{code} {} ({})", thousands(total), each.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => "none".to_owned(),
        };
        let _ = writeln!(s, "refused       {text}   (expected, not errors)");
    }

    /// Orders offered, opened, completed and left over, and the backlog when the engine fell
    /// behind.
    fn order_lines(&self, s: &mut String) {
        let (c, counts, throughput) = (&self.config, &self.counts, &self.throughput);
        let unfinished = u64_at(counts, "orders_in_flight_at_end")
            + u64_at(counts, "orders_stalled_no_ready_notice");
        let _ = writeln!(
            s,
            "orders        {}/s offered for {} s: {} opened ({}/s), {} completed, {} failed, {} unfinished, {} skipped",
            rate(f64_at(c, "orders_per_sec")),
            c["duration_s"],
            thousands(u64_at(counts, "orders_opened")),
            rate(f64_at(throughput, "orders_per_sec_opened")),
            thousands(u64_at(counts, "orders_completed")),
            u64_at(counts, "orders_failed"),
            unfinished,
            u64_at(counts, "orders_skipped_over_in_flight_cap"),
        );
        let drain = f64_at(throughput, "drain_seconds");
        if drain > 2.0 {
            let _ = writeln!(
                s,
                "backlog       the engine fell behind: orders in flight took {drain:.1} s after the last arrival to close{}",
                if unfinished > 0 { " (and some never did)" } else { "" }
            );
        }
    }

    /// Commands acked and failed, with the ack latency of all and of fires and bumps.
    fn command_lines(&self, s: &mut String) {
        let m = &self.measured;
        let _ = writeln!(
            s,
            "commands      {} acked ({}/s), {} failed   ack {}",
            thousands(u64_at(&self.counts, "commands_acked")),
            rate(f64_at(&self.throughput, "commands_per_sec")),
            thousands(u64_at(&self.counts, "commands_failed")),
            m.ack_all.line()
        );
        for kind in ["fire", "bump"] {
            if let Some(p) = m.ack_by_kind.get(kind) {
                let _ = writeln!(s, "  {kind:<11} ack {}", p.line());
            }
        }
    }

    /// How fast tickets reached the screens and ready notices the tablets, how long an order
    /// took, and the frames the screens and tablets received.
    fn delivery_lines(&self, s: &mut String) {
        let m = &self.measured;
        for (label, latency, what) in [
            (
                "fire->screen",
                &m.fire_to_screen,
                "fire sent -> ticket on every screen of its station",
            ),
            (
                "  from ack",
                &m.ack_to_screen,
                "fire answered -> on every screen; 0 when the ticket came first",
            ),
            (
                "bump->waiter",
                &m.bump_to_waiter,
                "expo's bump sent -> ready notice on the table's tablet",
            ),
            ("order", &m.order_duration, "open -> close"),
        ] {
            let _ = writeln!(s, "{label:<14}{}   ({what})", latency.line());
        }
        let _ = writeln!(
            s,
            "frames        {} received by screens and tablets ({}/s)",
            thousands(u64_at(&self.counts, "frames_received")),
            rate(f64_at(&self.throughput, "frames_per_sec"))
        );
    }

    /// The errors by code, or none.
    fn errors_line(&self, s: &mut String) {
        let errors = &self.measured.errors;
        let errors = if errors.is_empty() {
            "none".to_owned()
        } else {
            errors
                .iter()
                .map(|(k, v)| format!("{k} {}", thousands(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(s, "errors        {errors}");
    }

    /// The CPU cores the server, the load test and the machine used, when measured.
    fn cpu_line(&self, s: &mut String) {
        let series = &self.measured.series;
        let cores = self.config["machine"]["cores"]
            .as_u64()
            .map_or(String::new(), |n| format!(" of the machine's {n}"));
        let machine = cores_used(series, |p| p.cpu_machine_cores)
            .map_or(String::new(), |(a, m)| {
                format!("; machine busy {a:.2} ({m:.2})")
            });
        // With replicas: "server" is their sum, each given after it, and redis-server's beside.
        let parts = self.replicas.as_ref().map_or(String::new(), |r| {
            let each: Vec<String> = r["per_replica"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{} {:.2}",
                        p["id"].as_str().unwrap_or("?"),
                        p["cpu_cores_avg"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            let redis = cores_used(series, |p| p.cpu_redis_cores)
                .map_or(String::new(), |(a, m)| {
                    format!(", redis-server {a:.2} ({m:.2})")
                });
            format!(" = {}{redis}", each.join(" + "))
        });
        match (
            cores_used(series, |p| p.cpu_server_cores),
            cores_used(series, |p| p.cpu_loadtest_cores),
        ) {
            (Some((sa, sm)), Some((la, lm))) => {
                let _ = writeln!(s, "cpu           cores on average (max): server {sa:.2} ({sm:.2}){parts}, loadtest {la:.2} ({lm:.2}){machine}{cores}");
            }
            (None, Some((la, lm))) => {
                let _ = writeln!(s, "cpu           cores on average (max): loadtest {la:.2} ({lm:.2}){machine}{cores}; server not measured");
            }
            _ => {}
        }
    }

    /// CPU time an order took: the engine's (summed over the replicas), redis-server's, the
    /// load test's.
    fn cpu_per_order_line(&self, s: &mut String) {
        let c = &self.cpu;
        let Some(engine) = c["engine_cpu_ms_per_order"].as_f64() else {
            return;
        };
        let redis = c["redis_cpu_ms_per_order"]
            .as_f64()
            .map_or(String::new(), |r| {
                format!(
                    ", redis-server {r:.3} ms (engine + redis {:.3} ms)",
                    engine + r
                )
            });
        let _ = writeln!(
            s,
            "cpu/order     engine {engine:.3} ms{}{redis}, loadtest {:.3} ms of CPU an order completed ({} s of engine CPU over the run)",
            if self.replicas.is_some() {
                " (all replicas)"
            } else {
                ""
            },
            c["loadtest_cpu_ms_per_order"].as_f64().unwrap_or(0.0),
            c["engine_cpu_seconds"].as_f64().map_or("?".into(), |v| format!("{v:.1}"))
        );
    }

    /// The server's RSS before and after the load and its peak, when it was measured.
    fn memory_line(&self, s: &mut String) {
        let mem = memory_json(self.memory_before, self.memory_after, &self.memory_samples);
        if mem.is_null() {
            let _ = writeln!(
                s,
                "memory        not measured (server not local: pass --server-pid)"
            );
        } else {
            let b = |k: &str| {
                mem[k]
                    .as_u64()
                    .map_or("?".into(), |v| format!("{} MiB", mib(v)))
            };
            let _ = writeln!(
                s,
                "memory        server RSS {} before the load, {} after, {} peak{}",
                b("rss_before_bytes"),
                b("rss_after_bytes"),
                b("rss_peak_bytes"),
                self.replicas.as_ref().map_or(String::new(), |r| {
                    let each: Vec<String> = r["per_replica"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            format!(
                                "{} {}",
                                p["id"].as_str().unwrap_or("?"),
                                p["rss_mib_max"]
                                    .as_f64()
                                    .map_or("?".into(), |m| format!("{m:.1}"))
                            )
                        })
                        .collect();
                    format!(
                        " (summed over the replicas up; peak MiB each: {})",
                        each.join(", ")
                    )
                })
            );
        }
    }

    pub fn write(&self, out: &Path, passed: bool) -> anyhow::Result<()> {
        std::fs::write(
            out.join("report.json"),
            serde_json::to_string_pretty(&self.to_json(passed))?,
        )?;
        std::fs::write(out.join("summary.txt"), self.summary(passed, out))?;
        let series = &self.measured.series;
        let pts = |get: &dyn Fn(&SecondPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            series
                .iter()
                .filter_map(|p| get(p).map(|v| (p.second as f64 + 0.5, v)))
                .collect()
        };
        charts::draw(
            &out.join("latency.svg"),
            Chart {
                title: "Latency per second (ms)",
                x_desc: "seconds since the first order",
                y_desc: "ms",
                lines: vec![
                    Line::new(
                        "fire->screen p50",
                        charts::BLUE_DARK,
                        pts(&|p| p.fire_to_screen_p50_ms),
                    ),
                    Line::new(
                        "fire->screen p99",
                        charts::BLUE_LIGHT,
                        pts(&|p| p.fire_to_screen_p99_ms),
                    ),
                    Line::new(
                        "command ack p50",
                        charts::ORANGE_DARK,
                        pts(&|p| p.ack_p50_ms),
                    ),
                    Line::new(
                        "command ack p99",
                        charts::ORANGE_LIGHT,
                        pts(&|p| p.ack_p99_ms),
                    ),
                ],
                right: None,
                marker: Some((self.load_seconds, "last arrival")),
            },
        )?;
        charts::draw(
            &out.join("throughput.svg"),
            Chart {
                title: "Throughput per second",
                x_desc: "seconds since the first order",
                y_desc: "orders/s",
                lines: vec![
                    Line::new(
                        "orders opened/s",
                        charts::BLUE_DARK,
                        pts(&|p| Some(p.orders_started as f64)),
                    ),
                    Line::new(
                        "orders completed/s",
                        charts::GREEN,
                        pts(&|p| Some(p.orders_completed as f64)),
                    ),
                ],
                right: Some((
                    "frames/s",
                    vec![Line::new(
                        "frames received/s",
                        charts::PURPLE,
                        pts(&|p| Some(p.events as f64)),
                    )],
                )),
                marker: Some((self.load_seconds, "last arrival")),
            },
        )?;
        Ok(())
    }
}

/// The verdict line, and under a failed one each failure.
pub fn verdict_lines(s: &mut String, passed: bool, failures: &[String]) {
    if passed {
        let _ = writeln!(s, "verdict       PASSED");
    } else {
        let _ = writeln!(s, "verdict       FAILED");
        for failure in failures {
            let _ = writeln!(s, "  - {failure}");
        }
    }
}

/// `v[k]` as a count, 0 when it is missing.
fn u64_at(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// `v[k]` as a number, 0 when it is missing.
fn f64_at(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

/// The average and the maximum of a per-second CPU reading, None when it was never taken.
fn cores_used(
    series: &[SecondPoint],
    get: impl Fn(&SecondPoint) -> Option<f64>,
) -> Option<(f64, f64)> {
    let v: Vec<f64> = series.iter().filter_map(get).collect();
    (!v.is_empty()).then(|| {
        (
            v.iter().sum::<f64>() / v.len() as f64,
            v.iter().copied().fold(0.0, f64::max),
        )
    })
}

/// "p50 1.2  p99 3.4 ms (n 56)" of a percentiles object in report.json.
fn p50_p99(p: &Value) -> String {
    if p["count"].as_u64().unwrap_or(0) == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {}  p99 {} ms ({})",
        crate::metrics::fmt_ms(p["p50_ms"].as_f64().unwrap_or(0.0)),
        crate::metrics::fmt_ms(p["p99_ms"].as_f64().unwrap_or(0.0)),
        thousands(p["count"].as_u64().unwrap_or(0))
    )
}

/// The replicas section of the summary: who owned what, and the latencies by path.
fn replica_lines(s: &mut String, r: &Value) {
    let ids: Vec<&str> = r["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let owned = |owners: &Value| -> String {
        ids.iter()
            .map(|id| {
                let n = owners
                    .as_object()
                    .map_or(0, |o| o.values().filter(|v| v.as_str() == Some(id)).count());
                format!("{id} {n}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        s,
        "replicas      {} ({}) on one Postgres journal and a redis-server; branches owned after the set-up: {}; at the end: {}",
        ids.len(),
        ids.join(" "),
        owned(&r["owners_after_setup"]),
        owned(&r["owners_at_end"])
    );
    let paths = &r["paths"];
    let _ = writeln!(
        s,
        "  commands    local {}   forwarded {}   (REST, by whether the replica it was sent to owned the branch)",
        p50_p99(&paths["command_ack"]["local"]),
        p50_p99(&paths["command_ack"]["forwarded"])
    );
    let _ = writeln!(
        s,
        "  fire->screen local {}   relayed {}   (fire sent -> each screen, by whether its replica owned the branch)",
        p50_p99(&paths["fire_to_screen"]["local"]),
        p50_p99(&paths["fire_to_screen"]["relayed"])
    );
    let _ = writeln!(
        s,
        "  note        ownership read after the set-up and after each kill: samples around an ownership change may count for the previous owner"
    );
}

/// The chaos section of the summary with replicas: each kill, its branches' failover and new
/// owners, then the sockets, retries and outcome as with one server.
fn replica_chaos_lines(s: &mut String, chaos: &Value) {
    let ms = |v: &Value| {
        v.as_f64()
            .map_or("none".to_owned(), |ms| format!("{ms:.0} ms"))
    };
    for kill in chaos["replica_kills"].as_array().into_iter().flatten() {
        let branches: Vec<String> = kill["branches"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                format!(
                    "{} -> {} ({})",
                    b["branch"].as_str().unwrap_or("?"),
                    b["new_owner"].as_str().unwrap_or("none"),
                    ms(&b["first_answer_ms"])
                )
            })
            .collect();
        let restart = if kill["restart"].is_object() {
            format!(", restarted, ready {}", ms(&kill["restart"]["downtime_ms"]))
        } else {
            ", left down".to_owned()
        };
        let _ = writeln!(
            s,
            "chaos         SIGKILL to replica {} at {:.1} s{restart}: failover (kill -> first command answered) max {}, median {}; new owners: {}",
            kill["replica"].as_str().unwrap_or("?"),
            kill["at_s"].as_f64().unwrap_or(0.0),
            ms(&kill["failover_ms_max"]),
            ms(&kill["failover_ms_median"]),
            if branches.is_empty() {
                "it owned no branch".to_owned()
            } else {
                branches.join(", ")
            }
        );
    }
    let mut rest = String::new();
    chaos_lines(&mut rest, chaos);
    // The same sockets, retries and outcome lines as with one server.
    for line in rest.lines().skip(1) {
        let _ = writeln!(s, "{line}");
    }
}

/// The chaos section of the summary: kills and downtime, reconnects, retries, and what the
/// kills cost (lost, duplicated, orders read back).
fn chaos_lines(s: &mut String, chaos: &Value) {
    let n = |k: &str| chaos[k].as_u64().unwrap_or(0);
    let downtimes = chaos["restarts"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| {
                    let first = r["first_answer_ms"]
                        .as_f64()
                        .map_or("none".to_owned(), |ms| format!("{ms:.0} ms"));
                    format!(
                        "at {:.1} s: {:.0} ms (first command answered {first})",
                        r["at_s"].as_f64().unwrap_or(0.0),
                        r["downtime_ms"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "chaos         {} kill(s) (SIGKILL, restart on the same journal), downtime kill -> ready: {downtimes}",
        n("kills")
    );
    let _ = writeln!(
        s,
        "  sockets     {} closed by the kills, {} reconnects ({} failed), {} reset snapshots, {} closed otherwise",
        n("sockets_closed_by_kill"),
        n("reconnects"),
        n("reconnects_failed"),
        n("reset_snapshots"),
        n("sockets_closed_otherwise")
    );
    let replayed = chaos["answered_by_replay"]
        .as_u64()
        .map_or("?".to_owned(), |v| v.to_string());
    let retried = &chaos["retried_command_ack"];
    let retried_line = if retried["count"].as_u64().unwrap_or(0) == 0 {
        "no samples".to_owned()
    } else {
        format!(
            "p50 {}  p99 {}  max {} ms",
            crate::metrics::fmt_ms(retried["p50_ms"].as_f64().unwrap_or(0.0)),
            crate::metrics::fmt_ms(retried["p99_ms"].as_f64().unwrap_or(0.0)),
            crate::metrics::fmt_ms(retried["max_ms"].as_f64().unwrap_or(0.0))
        )
    };
    let _ = writeln!(
        s,
        "  retries     {} REST commands retried ({} resends), {} websocket commands resent ({} resends); {replayed} answered by replay; retried ack (from first send) {retried_line}",
        n("rest_commands_retried"),
        n("rest_retries"),
        n("ws_commands_resent"),
        n("ws_resends")
    );
    let _ = writeln!(
        s,
        "  outcome     tickets lost {}, duplicated {}; ready notices lost {}, duplicated {}; orders acknowledged {}, verified {}, lost {}, different {}, duplicated {}",
        n("tickets_lost"),
        n("tickets_duplicated"),
        n("ready_notices_lost"),
        n("ready_notices_duplicated"),
        n("orders_acknowledged"),
        n("orders_verified"),
        n("orders_lost"),
        n("orders_mismatched"),
        n("orders_duplicated")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(rate(12.345), "12.3");
        assert_eq!(rate(1999.6), "2,000");
        assert_eq!(mib(1_572_864), 1.5);
    }
}
