//! What a run measures: latency histograms (HDR, microseconds), errors by code, and a
//! per-second series for the charts. A second's own histograms are kept only while it is recent
//! (its p50 and p99 after that), so an hour's series stays small.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

/// One hour in microseconds: the largest latency a histogram holds (longer ones saturate).
const MAX_US: u64 = 3_600_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

pub fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// p50, p95, p99, max and mean of a histogram, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean().round() / 1000.0,
        }
    }

    /// "p50 1.2  p95 3.4  p99 5.6  max 7.8 ms"
    pub fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {}  p95 {}  p99 {}  max {} ms",
            fmt_ms(self.p50_ms),
            fmt_ms(self.p95_ms),
            fmt_ms(self.p99_ms),
            fmt_ms(self.max_ms)
        )
    }
}

pub fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// Seconds behind the newest that a second's histograms are kept before they are folded into
/// their p50 and p99 (each histogram is ~190 KB: an hour of them would take over a gigabyte).
const FOLD_AFTER: usize = 5;

/// One second's latencies: a histogram while the second is recent, then its p50 and p99.
enum Latencies {
    Recording(Box<Histogram<u64>>),
    Folded { p50: Option<f64>, p99: Option<f64> },
}

impl Latencies {
    fn new() -> Self {
        Self::Recording(Box::new(histogram()))
    }

    /// Records a value; one for a second already folded is left out of the series (the run's
    /// overall histograms still have it).
    fn record(&mut self, v: u64) {
        if let Self::Recording(h) = self {
            h.saturating_record(v);
        }
    }

    /// The value at quantile `q` (0.5 or 0.99 once folded), in ms; None without samples.
    fn quantile(&self, q: f64) -> Option<f64> {
        match self {
            Self::Recording(h) => (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0),
            Self::Folded { p50, p99 } => {
                if q < 0.9 {
                    *p50
                } else {
                    *p99
                }
            }
        }
    }

    fn fold(&mut self) {
        if matches!(self, Self::Recording(_)) {
            *self = Self::Folded {
                p50: self.quantile(0.5),
                p99: self.quantile(0.99),
            };
        }
    }
}

/// The per-second histograms and counters of one second of the run.
struct Second {
    ack: Latencies,
    fire_to_screen: Latencies,
    orders_started: u64,
    orders_completed: u64,
    commands: u64,
    errors: u64,
    rss_bytes: Option<u64>,
    cpu_server: Option<f64>,
    cpu_loadtest: Option<f64>,
    cpu_machine: Option<f64>,
    /// With replicas: each replica's CPU (cores) and RSS, and the redis-server's CPU.
    cpu_replicas: Option<Vec<Option<f64>>>,
    rss_replicas: Option<Vec<Option<u64>>>,
    cpu_redis: Option<f64>,
}

impl Second {
    fn new() -> Self {
        Self {
            ack: Latencies::new(),
            fire_to_screen: Latencies::new(),
            orders_started: 0,
            orders_completed: 0,
            commands: 0,
            errors: 0,
            rss_bytes: None,
            cpu_server: None,
            cpu_loadtest: None,
            cpu_machine: None,
            cpu_replicas: None,
            rss_replicas: None,
            cpu_redis: None,
        }
    }
}

struct Inner {
    ack: BTreeMap<&'static str, Histogram<u64>>,
    ack_all: Histogram<u64>,
    fire_to_screen: Histogram<u64>,
    ack_to_screen: Histogram<u64>,
    bump_to_waiter: Histogram<u64>,
    order_duration: Histogram<u64>,
    retried: Histogram<u64>,
    /// With replicas: command acks by path, [local, forwarded].
    command_path: [Histogram<u64>; 2],
    /// With replicas: fire sent -> the ticket on one screen, by path, [local, relayed].
    screen_path: [Histogram<u64>; 2],
    errors: BTreeMap<String, u64>,
    errors_by_command: BTreeMap<&'static str, BTreeMap<String, u64>>,
    error_samples: Vec<String>,
    /// Refusals the workload expects (an order refused `item_86` while the item is 86'd), by
    /// code and by command: not errors.
    refusals: BTreeMap<String, BTreeMap<&'static str, u64>>,
    seconds: Vec<Second>,
    /// Seconds before this one have their latencies folded.
    folded: usize,
}

/// Shared by every task of a run.
pub struct Recorder {
    t0: Instant,
    inner: Mutex<Inner>,
    /// Frames received each second, counted without a lock (the busiest counter by far).
    frames: Vec<AtomicU64>,
    frames_late: AtomicU64,
    pub commands_ok: AtomicU64,
    pub commands_failed: AtomicU64,
}

impl Recorder {
    /// `seconds`: how long the series may grow (longer runs fold into the last second).
    pub fn new(t0: Instant, seconds: usize) -> Self {
        Self {
            t0,
            inner: Mutex::new(Inner {
                ack: BTreeMap::new(),
                ack_all: histogram(),
                fire_to_screen: histogram(),
                ack_to_screen: histogram(),
                bump_to_waiter: histogram(),
                order_duration: histogram(),
                retried: histogram(),
                command_path: [histogram(), histogram()],
                screen_path: [histogram(), histogram()],
                errors: BTreeMap::new(),
                errors_by_command: BTreeMap::new(),
                error_samples: Vec::new(),
                refusals: BTreeMap::new(),
                seconds: Vec::new(),
                folded: 0,
            }),
            frames: (0..seconds.max(1)).map(|_| AtomicU64::new(0)).collect(),
            frames_late: AtomicU64::new(0),
            commands_ok: AtomicU64::new(0),
            commands_failed: AtomicU64::new(0),
        }
    }

    fn second_of(&self, at: Instant) -> usize {
        at.saturating_duration_since(self.t0).as_secs() as usize
    }

    fn with_second<R>(&self, at: Instant, f: impl FnOnce(&mut Inner, usize) -> R) -> R {
        let s = self.second_of(at).min(100_000);
        let mut inner = self.inner.lock().expect("recorder lock");
        while inner.seconds.len() <= s {
            inner.seconds.push(Second::new());
        }
        let keep_from = inner.seconds.len().saturating_sub(FOLD_AFTER);
        while inner.folded < keep_from {
            let i = inner.folded;
            inner.seconds[i].ack.fold();
            inner.seconds[i].fire_to_screen.fold();
            inner.folded += 1;
        }
        f(&mut inner, s)
    }

    /// A command was answered with success after `latency`.
    pub fn ack(&self, kind: &'static str, latency: Duration) {
        self.commands_ok.fetch_add(1, Ordering::Relaxed);
        let v = us(latency);
        self.with_second(Instant::now(), |inner, s| {
            inner
                .ack
                .entry(kind)
                .or_insert_with(histogram)
                .saturating_record(v);
            inner.ack_all.saturating_record(v);
            let sec = &mut inner.seconds[s];
            sec.ack.record(v);
            sec.commands += 1;
        });
    }

    /// A command that was sent more than once (a REST retry, a websocket command resent after
    /// a reconnect) was answered with success, `latency` after its first send. It is also
    /// counted by [`Recorder::ack`], once.
    pub fn retried(&self, latency: Duration) {
        let v = us(latency);
        self.with_second(Instant::now(), |inner, _| {
            inner.retried.saturating_record(v)
        });
    }

    /// With replicas: a command answered with success after `latency`, sent to a replica
    /// that owned its branch (`local`) or not (forwarded to the owner). Also counted by
    /// [`Recorder::ack`].
    pub fn command_path(&self, local: bool, latency: Duration) {
        let v = us(latency);
        let i = usize::from(!local);
        self.with_second(Instant::now(), |inner, _| {
            inner.command_path[i].saturating_record(v)
        });
    }

    /// With replicas: a fired ticket reached one screen `latency` after the fire was sent; the
    /// screen's replica owned the branch (`local`) or had the event relayed.
    pub fn screen_path(&self, local: bool, latency: Duration) {
        let v = us(latency);
        let i = usize::from(!local);
        self.with_second(Instant::now(), |inner, _| {
            inner.screen_path[i].saturating_record(v)
        });
    }

    /// A command failed with a code (`transport`, `timeout`, or the engine's error code).
    pub fn error(&self, kind: &'static str, code: &str, detail: impl FnOnce() -> String) {
        self.commands_failed.fetch_add(1, Ordering::Relaxed);
        self.with_second(Instant::now(), |inner, s| {
            *inner.errors.entry(code.to_owned()).or_default() += 1;
            *inner
                .errors_by_command
                .entry(kind)
                .or_default()
                .entry(code.to_owned())
                .or_default() += 1;
            if inner.error_samples.len() < 20 {
                inner
                    .error_samples
                    .push(format!("{kind}: {code}: {}", detail()));
            }
            inner.seconds[s].errors += 1;
        });
    }

    /// A command was refused as the workload expects (`item_86` while its item is 86'd, a
    /// screen's command on a ticket voided under it): counted apart, neither acked nor failed.
    pub fn refused(&self, kind: &'static str, code: &str) {
        let mut inner = self.inner.lock().expect("recorder lock");
        *inner
            .refusals
            .entry(code.to_owned())
            .or_default()
            .entry(kind)
            .or_default() += 1;
    }

    /// Something went wrong that is not a command's answer (a socket closed, a notice timed
    /// out): counted with the errors.
    pub fn incident(&self, code: &str, detail: impl FnOnce() -> String) {
        self.with_second(Instant::now(), |inner, s| {
            *inner.errors.entry(code.to_owned()).or_default() += 1;
            if inner.error_samples.len() < 20 {
                inner.error_samples.push(format!("{code}: {}", detail()));
            }
            inner.seconds[s].errors += 1;
        });
    }

    /// A fired ticket is on every screen of its station: `from_send` after the fire was sent,
    /// `from_ack` after its answer reached the waiter (zero when the ticket was there first).
    pub fn fire_to_screen(&self, from_send: Duration, from_ack: Duration) {
        let (v, a) = (us(from_send), us(from_ack));
        self.with_second(Instant::now(), |inner, s| {
            inner.fire_to_screen.saturating_record(v);
            inner.ack_to_screen.saturating_record(a);
            inner.seconds[s].fire_to_screen.record(v);
        });
    }

    pub fn bump_to_waiter(&self, latency: Duration) {
        let v = us(latency);
        self.with_second(Instant::now(), |inner, _| {
            inner.bump_to_waiter.saturating_record(v)
        });
    }

    pub fn order_started(&self) {
        self.with_second(Instant::now(), |inner, s| {
            inner.seconds[s].orders_started += 1
        });
    }

    pub fn order_completed(&self, duration: Duration) {
        let v = us(duration);
        self.with_second(Instant::now(), |inner, s| {
            inner.order_duration.saturating_record(v);
            inner.seconds[s].orders_completed += 1;
        });
    }

    pub fn rss(&self, at: Instant, bytes: u64) {
        self.with_second(at, |inner, s| inner.seconds[s].rss_bytes = Some(bytes));
    }

    /// CPU used over the last second, in cores: by the server (when local), by this process,
    /// and by the whole machine.
    pub fn cpu(
        &self,
        at: Instant,
        server: Option<f64>,
        loadtest: Option<f64>,
        machine: Option<f64>,
    ) {
        self.with_second(at, |inner, s| {
            inner.seconds[s].cpu_server = server;
            inner.seconds[s].cpu_loadtest = loadtest;
            inner.seconds[s].cpu_machine = machine;
        });
    }

    /// With replicas: each replica's CPU (cores over the last second; None while it is down
    /// or just restarted) and RSS, and the redis-server's CPU.
    pub fn replica_gauges(
        &self,
        at: Instant,
        cpu: Vec<Option<f64>>,
        rss: Vec<Option<u64>>,
        redis: Option<f64>,
    ) {
        self.with_second(at, |inner, s| {
            let sec = &mut inner.seconds[s];
            sec.cpu_replicas = Some(cpu);
            sec.rss_replicas = Some(rss);
            sec.cpu_redis = redis;
        });
    }

    /// A websocket frame arrived.
    pub fn frame(&self) {
        let s = self.second_of(Instant::now());
        match self.frames.get(s) {
            Some(c) => c.fetch_add(1, Ordering::Relaxed),
            None => self.frames_late.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn frames_total(&self) -> u64 {
        self.frames
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
            + self.frames_late.load(Ordering::Relaxed)
    }

    pub fn error_count(&self) -> u64 {
        self.inner
            .lock()
            .expect("recorder lock")
            .errors
            .values()
            .sum()
    }

    /// Everything measured, for the report.
    pub fn snapshot(&self, seconds: usize) -> Measured {
        let inner = self.inner.lock().expect("recorder lock");
        let p = |h: &Histogram<u64>| Percentiles::of(h);
        let series = (0..seconds)
            .map(|s| {
                let frames = self
                    .frames
                    .get(s)
                    .map(|c| c.load(Ordering::Relaxed))
                    .unwrap_or(0);
                let sec = inner.seconds.get(s);
                let q = |l: &Latencies, q: f64| l.quantile(q);
                SecondPoint {
                    second: s as u64,
                    orders_started: sec.map_or(0, |x| x.orders_started),
                    orders_completed: sec.map_or(0, |x| x.orders_completed),
                    commands: sec.map_or(0, |x| x.commands),
                    errors: sec.map_or(0, |x| x.errors),
                    events: frames,
                    ack_p50_ms: sec.and_then(|x| q(&x.ack, 0.5)),
                    ack_p99_ms: sec.and_then(|x| q(&x.ack, 0.99)),
                    fire_to_screen_p50_ms: sec.and_then(|x| q(&x.fire_to_screen, 0.5)),
                    fire_to_screen_p99_ms: sec.and_then(|x| q(&x.fire_to_screen, 0.99)),
                    rss_mib: sec
                        .and_then(|x| x.rss_bytes)
                        .map(|b| (b as f64 / 1048576.0 * 10.0).round() / 10.0),
                    cpu_server_cores: sec
                        .and_then(|x| x.cpu_server)
                        .map(|c| (c * 100.0).round() / 100.0),
                    cpu_loadtest_cores: sec
                        .and_then(|x| x.cpu_loadtest)
                        .map(|c| (c * 100.0).round() / 100.0),
                    cpu_machine_cores: sec
                        .and_then(|x| x.cpu_machine)
                        .map(|c| (c * 100.0).round() / 100.0),
                    cpu_replica_cores: sec.and_then(|x| x.cpu_replicas.as_ref()).map(|v| {
                        v.iter()
                            .map(|c| c.map(|c| (c * 100.0).round() / 100.0))
                            .collect()
                    }),
                    rss_replica_mib: sec.and_then(|x| x.rss_replicas.as_ref()).map(|v| {
                        v.iter()
                            .map(|b| b.map(|b| (b as f64 / 1048576.0 * 10.0).round() / 10.0))
                            .collect()
                    }),
                    cpu_redis_cores: sec
                        .and_then(|x| x.cpu_redis)
                        .map(|c| (c * 100.0).round() / 100.0),
                }
            })
            .collect();
        Measured {
            ack_all: p(&inner.ack_all),
            ack_by_kind: inner.ack.iter().map(|(k, h)| (*k, p(h))).collect(),
            fire_to_screen: p(&inner.fire_to_screen),
            ack_to_screen: p(&inner.ack_to_screen),
            bump_to_waiter: p(&inner.bump_to_waiter),
            order_duration: p(&inner.order_duration),
            retried: p(&inner.retried),
            paths: Paths {
                command_local: p(&inner.command_path[0]),
                command_forwarded: p(&inner.command_path[1]),
                screen_local: p(&inner.screen_path[0]),
                screen_relayed: p(&inner.screen_path[1]),
            },
            errors: inner.errors.clone(),
            errors_by_command: inner.errors_by_command.clone(),
            error_samples: inner.error_samples.clone(),
            refusals: inner.refusals.clone(),
            series,
        }
    }
}

/// One point of the per-second series.
#[derive(Debug, Clone, Serialize)]
pub struct SecondPoint {
    pub second: u64,
    pub orders_started: u64,
    pub orders_completed: u64,
    pub commands: u64,
    pub errors: u64,
    /// Websocket frames received by all screens and tablets.
    pub events: u64,
    pub ack_p50_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
    pub fire_to_screen_p50_ms: Option<f64>,
    pub fire_to_screen_p99_ms: Option<f64>,
    pub rss_mib: Option<f64>,
    /// CPU cores the server used in this second (when it runs here).
    pub cpu_server_cores: Option<f64>,
    /// CPU cores this load test used in this second.
    pub cpu_loadtest_cores: Option<f64>,
    /// CPU cores busy on the whole machine in this second (server, load test, database, ...).
    pub cpu_machine_cores: Option<f64>,
    /// With replicas: each replica's CPU cores in this second (`cpu_server_cores` is their
    /// sum), in the order r1, r2, ...; null for one that was down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_replica_cores: Option<Vec<Option<f64>>>,
    /// With replicas: each replica's RSS (`rss_mib` is their sum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_replica_mib: Option<Vec<Option<f64>>>,
    /// With replicas: the redis-server's CPU cores in this second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_redis_cores: Option<f64>,
}

/// With replicas, latencies by the path a command or an event took.
pub struct Paths {
    /// Commands answered by the replica they were sent to, which owned the branch.
    pub command_local: Percentiles,
    /// Commands sent to a replica that did not own the branch: forwarded to the owner.
    pub command_forwarded: Percentiles,
    /// Fire sent -> the ticket on one screen connected to the branch's owner.
    pub screen_local: Percentiles,
    /// Fire sent -> the ticket on one screen connected to another replica (relayed).
    pub screen_relayed: Percentiles,
}

impl Paths {
    pub fn to_json(&self) -> Value {
        json!({
            "command_ack": {
                "local": self.command_local,
                "forwarded": self.command_forwarded,
            },
            "fire_to_screen": {
                "local": self.screen_local,
                "relayed": self.screen_relayed,
            },
        })
    }
}

/// A run's measurements, ready to report.
pub struct Measured {
    pub ack_all: Percentiles,
    pub ack_by_kind: BTreeMap<&'static str, Percentiles>,
    pub fire_to_screen: Percentiles,
    /// The same tickets from the fire's answer (zero when the ticket was on the screens first).
    pub ack_to_screen: Percentiles,
    pub bump_to_waiter: Percentiles,
    pub order_duration: Percentiles,
    /// Commands sent more than once, first send -> answer.
    pub retried: Percentiles,
    /// With replicas: latencies by path (empty otherwise).
    pub paths: Paths,
    pub errors: BTreeMap<String, u64>,
    pub errors_by_command: BTreeMap<&'static str, BTreeMap<String, u64>>,
    pub error_samples: Vec<String>,
    /// Expected refusals, by code and by command.
    pub refusals: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pub series: Vec<SecondPoint>,
}

impl Measured {
    pub fn latency_json(&self) -> Value {
        json!({
            "command_ack": self.ack_all,
            "command_ack_by_kind": self.ack_by_kind,
            "fire_to_screen": self.fire_to_screen,
            "fire_ack_to_screen": self.ack_to_screen,
            "bump_to_waiter": self.bump_to_waiter,
            "order_open_to_close": self.order_duration,
            "retried_command_ack": self.retried,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_milliseconds() {
        let mut h = histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn series_counts_by_second() {
        let t0 = Instant::now();
        let r = Recorder::new(t0, 5);
        r.ack("open", Duration::from_millis(2));
        r.frame();
        r.frame();
        r.error("fire", "journal_unavailable", || "x".into());
        r.refused("add_lines", "item_86");
        let m = r.snapshot(2);
        assert_eq!(m.refusals["item_86"]["add_lines"], 1);
        assert!(!m.errors.contains_key("item_86"));
        assert_eq!(r.commands_failed.load(Ordering::Relaxed), 1);
        assert_eq!(m.series.len(), 2);
        assert_eq!(m.series[0].commands, 1);
        assert_eq!(m.series[0].events, 2);
        assert_eq!(m.series[0].errors, 1);
        assert_eq!(m.errors["journal_unavailable"], 1);
        assert_eq!(m.errors_by_command["fire"]["journal_unavailable"], 1);
        assert!(m.series[1].ack_p50_ms.is_none());
    }

    #[test]
    fn past_seconds_keep_their_p50_and_p99() {
        let mut l = Latencies::new();
        for v in 1..=100u64 {
            l.record(v * 1000);
        }
        let (p50, p99) = (l.quantile(0.5), l.quantile(0.99));
        l.fold();
        assert!(matches!(l, Latencies::Folded { .. }));
        assert_eq!((l.quantile(0.5), l.quantile(0.99)), (p50, p99));
        assert!((p50.unwrap() - 50.0).abs() < 0.5, "{p50:?}");
        l.record(5_000_000);
        assert_eq!(l.quantile(0.99), p99);
        let mut empty = Latencies::new();
        empty.fold();
        assert_eq!(empty.quantile(0.5), None);
    }
}
