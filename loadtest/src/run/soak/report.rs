//! The soak's report, beside the run's own in the same folder: `soak.json` (the configuration,
//! every sample, the leak rule's judgement, the sockets and writers after the drain and after
//! the hang-up, the redials, the run's verdict), `soak.txt` (what a person reads: the sample
//! lines and the verdict, also printed at the end) and `rss.svg` (the engine's RSS over the run,
//! with its websockets and writer tasks).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::leak::{Judgement, Rule};
use super::redial::Asked;
use super::sample::{header, line, Reading, Sample, Settled};
use crate::charts::{self, Chart, Line};
use crate::report::{mib, thousands, verdict_lines, RunReport};

/// Everything the soak found, for its report and verdict.
pub(super) struct Findings {
    pub(super) config: Value,
    pub(super) server: String,
    pub(super) metrics_url: String,
    pub(super) rule: Rule,
    pub(super) screens: usize,
    pub(super) tablets: usize,
    /// The engine before the set-up.
    pub(super) baseline: Reading,
    pub(super) samples: Vec<Sample>,
    pub(super) judgement: Judgement,
    pub(super) asked: Asked,
    /// After the drain (every device connected), and after every device hung up.
    pub(super) connected: Settled,
    pub(super) hung_up: Settled,
}

/// What the run found that the soak reports: its verdict and failures, and its tallies.
pub(super) struct RunSide<'a> {
    pub(super) passed: bool,
    pub(super) report: &'a RunReport,
}

impl RunSide<'_> {
    fn n(v: &Value) -> u64 {
        v.as_u64().unwrap_or(0)
    }

    /// Deliveries missing at the end: tickets, voids, recalls, ready notices.
    fn lost(&self) -> u64 {
        let v = &self.report.verification;
        Self::n(&v["lost"])
            + Self::n(&v["voids"]["line_voided_lost"])
            + Self::n(&v["voids"]["ticket_voided_lost"])
            + Self::n(&v["recalls"]["lost"])
            + Self::n(&v["ready_notices_lost"])
    }

    /// Deliveries that reached a device twice.
    fn doubled(&self) -> u64 {
        let v = &self.report.verification;
        Self::n(&v["duplicated"])
            + Self::n(&v["voids"]["duplicated"])
            + Self::n(&v["recalls"]["duplicated"])
            + Self::n(&v["ready_notices_duplicated"])
    }

    fn count(&self, k: &str) -> u64 {
        Self::n(&self.report.counts[k])
    }

    fn socket_count(&self, k: &str) -> u64 {
        Self::n(&self.report.counts["sockets"][k])
    }
}

impl Findings {
    /// Why the soak failed, one line each: the run's checks, the memory, the sockets and
    /// writers.
    pub(super) fn failures(&self, run: &RunSide) -> Vec<String> {
        let mut f = Vec::new();
        if !run.passed {
            for failure in &run.report.failures {
                f.push(format!("the run: {failure}"));
            }
            if run.report.failures.is_empty() {
                f.push("the run failed its checks (see summary.txt)".to_owned());
            }
        }
        let j = &self.judgement;
        if let Some(why) = &j.unjudged {
            f.push(format!("the memory could not be judged: {why}"));
        } else if j.growing {
            f.push(format!(
                "memory keeps growing after the warm-up: RSS {:+.2} MiB per 10 minutes over the {} samples after the first {:.0} s (limit {}), and the last sample {:.1} MiB is {:.1} MiB above the warm-up's highest {:.1} MiB (margin {})",
                j.slope_mib_per_10_min.unwrap_or(0.0),
                j.fitted,
                self.rule.warm_up.as_secs_f64(),
                self.rule.max_slope_mib_per_10_min,
                j.last_mib.unwrap_or(0.0),
                j.above_warm_up_mib.unwrap_or(0.0),
                j.warm_up_max_mib.unwrap_or(0.0),
                self.rule.margin_mib,
            ));
        }
        if !self.connected.ok() {
            f.push(format!(
                "after the drain the engine held {} websockets and {} writer tasks, not the {} expected ({} screens and tablets{}){}",
                opt(self.connected.reading.sockets),
                opt(self.connected.reading.writers),
                self.connected.want,
                self.screens + self.tablets,
                baseline_note(&self.baseline),
                leak_note(&self.connected.reading)
            ));
        }
        if !self.hung_up.ok() {
            f.push(format!(
                "after every screen and tablet hung up the engine still held {} websockets and {} writer tasks, not the {} it had before the set-up{}",
                opt(self.hung_up.reading.sockets),
                opt(self.hung_up.reading.writers),
                self.hung_up.want,
                leak_note(&self.hung_up.reading)
            ));
        }
        f
    }

    pub(super) fn to_json(&self, passed: bool, failures: &[String], run: &RunSide) -> Value {
        json!({
            "kind": "soak",
            "passed": passed,
            "failures": failures,
            "config": self.config,
            "server": self.server,
            "metrics_url": self.metrics_url,
            "devices": { "screens": self.screens, "tablets": self.tablets },
            "baseline": self.baseline,
            "samples": self.samples,
            "memory": {
                "rule": self.rule,
                "judgement": self.judgement,
            },
            "sockets": {
                "after_drain": self.connected,
                "after_hang_up": self.hung_up,
            },
            "redials": {
                "asked_screens": self.asked.screens,
                "asked_tablets": self.asked.tablets,
                "done": run.socket_count("redialed"),
                "reconnects": run.socket_count("reconnects"),
                "reconnects_failed": run.socket_count("reconnects_failed"),
                "reset_snapshots": run.socket_count("reset_snapshots"),
                "sockets_closed_otherwise": run.socket_count("closed_unexpectedly"),
            },
            "run": {
                "passed": run.passed,
                "failures": run.report.failures,
                "orders_opened": run.count("orders_opened"),
                "orders_completed": run.count("orders_completed"),
                "deliveries_lost": run.lost(),
                "deliveries_doubled": run.doubled(),
                "report": "report.json",
            },
        })
    }

    /// `soak.txt`: the configuration, every sample line, the judgement, the verdict.
    pub(super) fn summary(
        &self,
        passed: bool,
        failures: &[String],
        run: &RunSide,
        elapsed_s: f64,
        out: &Path,
    ) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "rail loadtest soak: {}   ({}, {elapsed_s:.1} s)",
            if passed { "PASSED" } else { "FAILED" },
            c["started_at"].as_str().unwrap_or("?")
        );
        let _ = writeln!(
            s,
            "server        {}; /metrics at {}",
            self.server, self.metrics_url
        );
        let _ = writeln!(
            s,
            "workload      {} orders/s for {} s: {} branches x {} tables x {} stations (+expo), {} screens a station ({} screens, {} tablets); seed {}",
            c["orders_per_sec"], c["duration_s"], c["branches"], c["tables"], c["stations"],
            c["screens_per_station"], self.screens, self.tablets, c["seed"]
        );
        let _ = writeln!(
            s,
            "redials       a device every {} s on average: {} asked ({} screens, {} tablets), {} done; {} reconnects, {} failed, {} reset snapshots; {} sockets closed otherwise",
            c["reconnect_every_s"],
            self.asked.screens + self.asked.tablets,
            self.asked.screens,
            self.asked.tablets,
            run.socket_count("redialed"),
            run.socket_count("reconnects"),
            run.socket_count("reconnects_failed"),
            run.socket_count("reset_snapshots"),
            run.socket_count("closed_unexpectedly"),
        );
        let warm = self.rule.warm_up.as_secs_f64();
        let _ = writeln!(
            s,
            "samples       every {} s from the first order; warm-up {warm:.0} s ({} samples), {} after it",
            c["sample_every_s"],
            self.samples.iter().filter(|x| x.t_s <= warm).count(),
            self.judgement.fitted
        );
        let _ = writeln!(s, "{}", header());
        for sample in &self.samples {
            let _ = writeln!(s, "{}", line(sample));
        }
        self.memory_line(&mut s);
        self.sockets_line(&mut s);
        let _ = writeln!(
            s,
            "run           {}: {} orders taken, {} completed; deliveries lost {}, doubled {} (summary.txt)",
            if run.passed { "PASSED" } else { "FAILED" },
            thousands(run.count("orders_opened")),
            thousands(run.count("orders_completed")),
            run.lost(),
            run.doubled()
        );
        verdict_lines(&mut s, passed, failures);
        let _ = writeln!(
            s,
            "files         {}/ soak.txt soak.json rss.svg, and the run's summary.txt report.json latency.svg throughput.svg",
            out.display()
        );
        s
    }

    /// The leak rule's judgement in one line.
    fn memory_line(&self, s: &mut String) {
        let j = &self.judgement;
        let r = &self.rule;
        let before = self
            .baseline
            .rss_bytes
            .map_or("?".to_owned(), |b| format!("{} MiB", mib(b)));
        let mb = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.1}"));
        let verdict = match (&j.unjudged, j.growing) {
            (Some(why), _) => format!("not judged: {why}"),
            (None, true) => "GROWING".to_owned(),
            (None, false) => "steady".to_owned(),
        };
        let _ = writeln!(
            s,
            "memory        RSS {before} before the set-up, warm-up max {} MiB; after it {} MiB per 10 min (least squares, {} samples; limit {}), last {} MiB, {} over the warm-up max (margin {}): {verdict}",
            mb(j.warm_up_max_mib),
            j.slope_mib_per_10_min
                .map_or("?".to_owned(), |v| format!("{v:+.2}")),
            j.fitted,
            r.max_slope_mib_per_10_min,
            mb(j.last_mib),
            j.above_warm_up_mib
                .map_or("?".to_owned(), |v| format!("{v:+.1}")),
            r.margin_mib,
        );
    }

    /// The sockets and writers after the drain and after the hang-up.
    fn sockets_line(&self, s: &mut String) {
        let part = |x: &Settled| {
            format!(
                "{} websockets, {} writers (expected {}){}",
                opt(x.reading.sockets),
                opt(x.reading.writers),
                x.want,
                x.took_s
                    .map_or(" NOT reached".to_owned(), |t| format!(" within {t:.1} s"))
            )
        };
        let _ = writeln!(
            s,
            "sockets       after the drain {}; after the hang-up {}",
            part(&self.connected),
            part(&self.hung_up)
        );
    }

    /// `rss.svg`: the engine's RSS at each sample, its websockets and writers on the right, the
    /// warm-up's end marked.
    pub(super) fn draw(&self, out: &Path) -> anyhow::Result<()> {
        let pts = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<(f64, f64)> {
            self.samples
                .iter()
                .filter_map(|x| Some((x.t_s / 60.0, f(x)?)))
                .collect()
        };
        charts::draw(
            &out.join("rss.svg"),
            Chart {
                title: "Engine memory, websockets and writer tasks over the soak",
                x_desc: "minutes since the first order",
                y_desc: "RSS (MiB)",
                lines: vec![Line::new(
                    "engine RSS (MiB)",
                    charts::BLUE_DARK,
                    pts(&|x| x.rss_mib()),
                )],
                right: Some((
                    "sockets, writers",
                    vec![
                        Line::new(
                            "websockets",
                            charts::GREEN,
                            pts(&|x| x.engine.sockets.map(|v| v as f64)),
                        ),
                        Line::new(
                            "writer tasks",
                            charts::ORANGE_DARK,
                            pts(&|x| x.engine.writers.map(|v| v as f64)),
                        ),
                    ],
                )),
                marker: Some((self.rule.warm_up.as_secs_f64() / 60.0, "end of the warm-up")),
            },
        )
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("?".to_owned(), |v| v.to_string())
}

/// ", + N there before the set-up" when the engine had sockets before the run.
fn baseline_note(baseline: &Reading) -> String {
    match baseline.sockets {
        Some(n) if n > 0 => format!(", + {n} there before the set-up"),
        _ => String::new(),
    }
}

/// Which count is off: more writers than websockets is a session that outlived its socket.
fn leak_note(r: &Reading) -> String {
    match (r.sockets, r.writers) {
        (Some(s), Some(w)) if w > s => format!(
            ": {} writer task(s) outlived their socket (writers leaking)",
            w - s
        ),
        (None, _) | (_, None) => ": /metrics could not be read".to_owned(),
        _ => String::new(),
    }
}
