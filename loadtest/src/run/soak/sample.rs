//! The soak's readings: the engine's `/metrics` (its resident memory, open websockets,
//! websocket writer tasks, open orders of the run's branches and open file descriptors) with
//! the run's counts beside (orders taken and failed, deliveries lost, deliveries doubled,
//! redials), once every `--sample-every` from the start of the rush, each printed as one line;
//! and the waits, after the drain and after the devices hang up, for the engine's sockets and
//! writers to come back to the count expected.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::super::verify::missing_of_orders_closed;
use super::super::Shared;
use crate::report::thousands;
use crate::server::{memory_of, PidCell};

/// How long after an order's close its deliveries are counted: the last screens of its
/// stations (and one redialing) have had them long before.
const GRACE: Duration = Duration::from_secs(5);

/// Where the engine's readings come from.
#[derive(Clone)]
pub(super) struct Probe {
    http: reqwest::Client,
    /// The engine's `/metrics` URL.
    pub(super) url: String,
    /// The run's branches: the open orders counted are theirs.
    branches: Vec<String>,
    /// The server's pid when it runs here: its RSS from `/proc` when `/metrics` has none.
    pid: PidCell,
}

/// One reading of the engine's `/metrics`; a field is None when the series is missing.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(super) struct Reading {
    pub(super) rss_bytes: Option<u64>,
    /// Open websockets (`rail_ws_connections`, every role).
    pub(super) sockets: Option<u64>,
    /// Websocket sessions running (`rail_ws_writers`).
    pub(super) writers: Option<u64>,
    /// `rail_orders_open` of the run's branches.
    pub(super) open_orders: Option<u64>,
    /// `process_open_fds`.
    pub(super) open_fds: Option<u64>,
}

/// One sample of the soak: the engine's reading and the run's counts at that moment.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Sample {
    /// Seconds since the rush began.
    pub(super) t_s: f64,
    #[serde(flatten)]
    pub(super) engine: Reading,
    /// Orders the engine acknowledged opening so far.
    pub(super) orders_taken: u64,
    /// Orders that failed or stalled so far.
    pub(super) orders_failed: u64,
    /// Deliveries (tickets, voids, recalls) missing from a screen, of orders closed more than
    /// 5 s before the sample.
    pub(super) deliveries_lost: u64,
    /// Tickets, voids, recalls and ready notices that reached a device twice.
    pub(super) doubled: u64,
    /// Devices that hung up and dialed again so far.
    pub(super) redials: u64,
}

impl Sample {
    pub(super) fn rss_mib(&self) -> Option<f64> {
        self.engine.rss_bytes.map(crate::report::mib)
    }
}

impl Probe {
    pub(super) fn new(
        http: reqwest::Client,
        url: String,
        branches: Vec<String>,
        pid: PidCell,
    ) -> Self {
        Self {
            http,
            url,
            branches,
            pid,
        }
    }

    /// Reads the engine's `/metrics`; None when it does not answer 200.
    pub(super) async fn read(&self) -> Option<Reading> {
        let res = self
            .http
            .get(&self.url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            return None;
        }
        let text = res.text().await.ok()?;
        let mut reading = parse(&text, &self.branches);
        if reading.rss_bytes.is_none() {
            let pid = self.pid.load(Ordering::Relaxed);
            reading.rss_bytes = (pid != 0)
                .then(|| memory_of(pid))
                .flatten()
                .map(|m| m.rss_bytes);
        }
        Some(reading)
    }

    /// Polls until the engine holds `want` websockets and as many writers, at most `within`;
    /// the last reading, and how long it took when it got there.
    pub(super) async fn settle(&self, want: u64, within: Duration) -> Settled {
        let from = Instant::now();
        let mut last = Reading::default();
        loop {
            if let Some(r) = self.read().await {
                last = r;
                if r.sockets == Some(want) && r.writers == Some(want) {
                    return Settled {
                        want,
                        reading: r,
                        took_s: Some(from.elapsed().as_secs_f64()),
                    };
                }
            }
            if from.elapsed() >= within {
                return Settled {
                    want,
                    reading: last,
                    took_s: None,
                };
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A wait for the engine's sockets and writers to come back to a count.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Settled {
    /// Websockets (and writers) expected.
    pub(super) want: u64,
    /// The last reading.
    pub(super) reading: Reading,
    /// Seconds until both were at `want`; None when they were not within the limit.
    pub(super) took_s: Option<f64>,
}

impl Settled {
    pub(super) fn ok(&self) -> bool {
        self.took_s.is_some()
    }
}

/// The values of a metric's series in Prometheus' text format, with their labels (the text
/// between the braces, empty without).
fn series<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once('}')?,
            None if rest.starts_with(' ') => ("", rest),
            None => return None,
        };
        Some((
            labels,
            value.split_whitespace().next()?.parse::<f64>().ok()?,
        ))
    })
}

/// The sum of a metric's series (None when it has none), over those `keep` keeps.
fn sum(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> Option<u64> {
    let values: Vec<f64> = series(text, name)
        .filter(|(labels, _)| keep(labels))
        .map(|(_, v)| v)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>().round() as u64)
}

/// A reading from `/metrics` text; the open orders are those of `branches`.
fn parse(text: &str, branches: &[String]) -> Reading {
    let ours = |labels: &str| {
        branches
            .iter()
            .any(|b| labels.contains(&format!("branch=\"{b}\"")))
    };
    Reading {
        rss_bytes: sum(text, "process_resident_memory_bytes", |_| true),
        sockets: sum(text, "rail_ws_connections", |_| true),
        writers: sum(text, "rail_ws_writers", |_| true),
        open_orders: sum(text, "rail_orders_open", ours),
        open_fds: sum(text, "process_open_fds", |_| true),
    }
}

/// Takes a sample at the start of the rush and every `every` after it up to `until` (its
/// offset from `t0`), printing each as a line on stdout; the samples.
pub(super) async fn sample(
    shared: Arc<Shared>,
    probe: Probe,
    t0: Instant,
    every: Duration,
    until: Duration,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut counted_to = t0;
    let mut lost = 0;
    println!("{}", header());
    for k in 0.. {
        let at = every * k;
        if at > until {
            break;
        }
        tokio::time::sleep_until((t0 + at).into()).await;
        let engine = probe.read().await.unwrap_or_default();
        // The deliveries of orders closed since the last sample (and GRACE before it).
        let upto = Instant::now()
            .checked_sub(GRACE)
            .unwrap_or(t0)
            .max(counted_to);
        lost += missing_of_orders_closed(&shared, counted_to, upto);
        counted_to = upto;
        let c = &shared.counts;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let s = Sample {
            t_s: at.as_secs_f64(),
            engine,
            orders_taken: load(&c.orders_opened),
            orders_failed: load(&c.orders_failed) + load(&c.orders_stalled),
            deliveries_lost: lost,
            doubled: load(&c.tickets_duplicated)
                + load(&c.ready_duplicated)
                + load(&c.voids_duplicated)
                + load(&c.recalls_duplicated),
            redials: load(&c.redials),
        };
        println!("{}", line(&s));
        samples.push(s);
    }
    samples
}

/// The column titles of the sample lines.
pub(super) fn header() -> String {
    format!(
        "{:>6} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9} {:>7} {:>6} {:>8} {:>8}",
        "time",
        "rss MiB",
        "sockets",
        "writers",
        "fds",
        "open",
        "taken",
        "failed",
        "lost",
        "doubled",
        "redials"
    )
}

/// One sample as a line: its time (m:ss since the rush began), the engine's reading, the run's
/// counts.
pub(super) fn line(s: &Sample) -> String {
    let opt = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
    let secs = s.t_s.round() as u64;
    format!(
        "{:>6} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9} {:>7} {:>6} {:>8} {:>8}",
        format!("{}:{:02}", secs / 60, secs % 60),
        s.rss_mib().map_or("?".to_owned(), |m| format!("{m:.1}")),
        opt(s.engine.sockets),
        opt(s.engine.writers),
        opt(s.engine.open_fds),
        opt(s.engine.open_orders),
        thousands(s.orders_taken),
        s.orders_failed,
        s.deliveries_lost,
        s.doubled,
        s.redials,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 52428800
process_open_fds 131
# TYPE rail_ws_connections gauge
rail_ws_connections{role=\"guest\"} 0
rail_ws_connections{role=\"kitchen\"} 20
rail_ws_connections{role=\"waiter\"} 84
rail_ws_connections_extra 7
rail_ws_writers 104
rail_orders_open{branch=\"load-1\"} 3
rail_orders_open{branch=\"load-2\"} 4
rail_orders_open{branch=\"other\"} 9
";

    #[test]
    fn reads_the_engine_from_its_metrics() {
        let branches = vec!["load-1".to_owned(), "load-2".to_owned()];
        let r = parse(METRICS, &branches);
        assert_eq!(r.rss_bytes, Some(52_428_800));
        assert_eq!(r.sockets, Some(104));
        assert_eq!(r.writers, Some(104));
        assert_eq!(r.open_orders, Some(7));
        assert_eq!(r.open_fds, Some(131));
        let none = parse("other 1\n", &branches);
        assert_eq!(none.sockets, None);
        assert_eq!(none.rss_bytes, None);
        // Floats, as some exporters write gauges.
        assert_eq!(
            parse("process_resident_memory_bytes 1.048576e6\n", &[]).rss_bytes,
            Some(1_048_576)
        );
    }

    #[test]
    fn a_sample_is_one_line_under_its_header() {
        let s = Sample {
            t_s: 600.0,
            engine: parse(METRICS, &["load-1".to_owned()]),
            orders_taken: 12_000,
            orders_failed: 0,
            deliveries_lost: 0,
            doubled: 0,
            redials: 201,
        };
        let l = line(&s);
        assert_eq!(l.len(), header().len(), "{l}\n{}", header());
        assert!(
            l.trim_start()
                .starts_with("10:00     50.0      104      104"),
            "{l}"
        );
        assert!(l.contains("12,000"), "{l}");
    }
}
