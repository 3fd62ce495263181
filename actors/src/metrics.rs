//! Every metric the engine exports, each defined once here with its help text. The edge's own
//! (HTTP, websockets, authentication, admission, readiness) are the server's, registered in
//! the same registry.
//!
//! Code elsewhere calls the named functions below (`ticket_bumped`, `journal_batch`, ...), never
//! the prometheus types. Labels stay bounded: branch, station, role, route, status, never an
//! order or ticket id.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    exponential_buckets, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

struct Metrics {
    registry: Registry,
    ticket_cook: HistogramVec,
    tickets_late: IntCounterVec,
    recalls: IntCounterVec,
    station_live: IntGaugeVec,
    station_oldest: GaugeVec,
    station_screens: IntGaugeVec,
    station_unseen: IntGaugeVec,
    tickets_unseen: IntCounterVec,
    orders_open: IntGaugeVec,
    orders: IntCounterVec,
    ws_dropped: IntCounter,
    journal_append: Histogram,
    journal_batch: Histogram,
    journal_errors: IntCounterVec,
    snapshot_seconds: Histogram,
    snapshots_unreadable: IntCounterVec,
    idempotent_replays: IntCounter,
    resumes: IntCounterVec,
    resets: IntCounter,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    #[cfg(target_os = "linux")]
    r.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))
    .expect("process collector registers once");
    let latency = exponential_buckets(0.000_5, 2.0, 14).expect("valid buckets"); // 0.5 ms .. 4 s
    let cook = vec![
        30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
    ];
    let h =
        |name: &str, help: &str, buckets: Vec<f64>| HistogramOpts::new(name, help).buckets(buckets);
    Metrics {
        ticket_cook: register(&r, HistogramVec::new(
            h("rail_ticket_cook_seconds", "Time from fire to bump of a ticket, per station.", cook),
            &["branch", "station"]).unwrap()),
        tickets_late: register(&r, IntCounterVec::new(
            Opts::new("rail_tickets_late_total", "Tickets bumped later after their fire than the branch's late_after_seconds, per station."),
            &["branch", "station"]).unwrap()),
        recalls: register(&r, IntCounterVec::new(
            Opts::new("rail_ticket_recalls_total", "Bumped tickets recalled to their station's screen, per station."),
            &["branch", "station"]).unwrap()),
        station_live: register(&r, IntGaugeVec::new(
            Opts::new("rail_station_live_tickets", "Tickets on a station's screen (fired, not yet bumped)."),
            &["branch", "station"]).unwrap()),
        station_oldest: register(&r, GaugeVec::new(
            Opts::new("rail_station_oldest_ticket_age_seconds", "Age of the oldest live ticket at a station; 0 when it has none."),
            &["branch", "station"]).unwrap()),
        station_screens: register(&r, IntGaugeVec::new(
            Opts::new("rail_station_screens", "Screens subscribed to a station on this replica."),
            &["branch", "station"]).unwrap()),
        station_unseen: register(&r, IntGaugeVec::new(
            Opts::new("rail_station_unseen_tickets", "Live tickets of a station that no screen of it acknowledged in time (escalated, not yet seen)."),
            &["branch", "station"]).unwrap()),
        tickets_unseen: register(&r, IntCounterVec::new(
            Opts::new("rail_ticket_unseen_total", "Tickets escalated because no screen of their station acknowledged them in time (counted by the replica that writes the branch)."),
            &["branch", "station"]).unwrap()),
        orders_open: register(&r, IntGaugeVec::new(
            Opts::new("rail_orders_open", "Open orders of a branch."),
            &["branch"]).unwrap()),
        orders: register(&r, IntCounterVec::new(
            Opts::new("rail_orders_total", "Orders opened and closed."),
            &["event"]).unwrap()),
        ws_dropped: register(&r, IntCounter::new("rail_ws_messages_dropped_total", "Pushes dropped because a screen's queue was full.").unwrap()),
        journal_append: register(&r, Histogram::with_opts(
            h("rail_journal_append_seconds", "Time for an append to be durably committed, as its caller waits.", latency.clone())).unwrap()),
        journal_batch: register(&r, Histogram::with_opts(
            h("rail_journal_batch_size", "Appends committed together in one journal transaction.", exponential_buckets(1.0, 2.0, 10).unwrap())).unwrap()),
        journal_errors: register(&r, IntCounterVec::new(
            Opts::new("rail_journal_errors_total", "Appends the journal refused or could not commit."),
            &["kind"]).unwrap()),
        snapshots_unreadable: register(&r, IntCounterVec::new(
            Opts::new("rail_snapshots_unreadable_total", "Snapshots recovery could not use (reason: format, undecodable, position) and read the events for instead."),
            &["reason"]).unwrap()),
        snapshot_seconds: register(&r, Histogram::with_opts(
            h("rail_snapshot_save_seconds", "Time to encode and save a branch snapshot.", latency.clone())).unwrap()),
        resumes: register(&r, IntCounterVec::new(
            Opts::new("rail_ws_resumes_total", "Reconnecting screens served exactly what they missed, by source."),
            &["source"]).unwrap()),
        resets: register(&r, IntCounter::new("rail_ws_resets_total", "Reconnecting screens sent a fresh snapshot because what they missed is too old.").unwrap()),
        idempotent_replays: register(&r, IntCounter::new("rail_idempotent_replays_total", "Retries answered with the first answer to their idempotency key.").unwrap()),
        registry: r,
    }
});

/// Series that alerts and dashboards query exist from the first scrape, at zero.
fn touch_known_series() {
    for kind in ["conflict", "unavailable"] {
        METRICS.journal_errors.with_label_values(&[kind]);
    }
    for event in ["opened", "closed"] {
        METRICS.orders.with_label_values(&[event]);
    }
    METRICS.resumes.with_label_values(&["history"]);
}

/// The registry every metric of the process is in: the engine's, and the edge's (the server
/// registers its own here, defined once in its `metrics` module).
pub fn registry() -> &'static Registry {
    &METRICS.registry
}

/// The metrics in Prometheus' text format.
pub fn render() -> String {
    touch_known_series();
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&METRICS.registry.gather(), &mut out)
        .expect("text encoding");
    String::from_utf8(out).expect("metrics are UTF-8")
}

/// A station bumped a ticket that had been fired `cooked` ago.
pub fn ticket_bumped(branch: &str, station: &str, cooked: Duration, late: bool) {
    METRICS
        .ticket_cook
        .with_label_values(&[branch, station])
        .observe(cooked.as_secs_f64());
    let late_total = METRICS.tickets_late.with_label_values(&[branch, station]);
    if late {
        late_total.inc();
    }
}

/// A bumped ticket was recalled.
pub fn ticket_recalled(branch: &str, station: &str) {
    METRICS.recalls.with_label_values(&[branch, station]).inc();
}

/// A ticket was escalated: no screen of its station acknowledged it in time.
pub fn ticket_unseen(branch: &str, station: &str) {
    METRICS
        .tickets_unseen
        .with_label_values(&[branch, station])
        .inc();
}

/// What a station's screens show right now.
pub fn station_state(
    branch: &str,
    station: &str,
    live: usize,
    oldest: Duration,
    screens: usize,
    unseen: usize,
) {
    let labels = [branch, station];
    METRICS.tickets_unseen.with_label_values(&labels);
    METRICS
        .station_unseen
        .with_label_values(&labels)
        .set(unseen as i64);
    METRICS
        .station_live
        .with_label_values(&labels)
        .set(live as i64);
    METRICS
        .station_oldest
        .with_label_values(&labels)
        .set(oldest.as_secs_f64());
    METRICS
        .station_screens
        .with_label_values(&labels)
        .set(screens as i64);
}

pub fn orders_open(branch: &str, open: usize) {
    METRICS
        .orders_open
        .with_label_values(&[branch])
        .set(open as i64);
}

pub fn order_opened() {
    METRICS.orders.with_label_values(&["opened"]).inc();
}

pub fn order_closed() {
    METRICS.orders.with_label_values(&["closed"]).inc();
}

pub fn ws_push_dropped() {
    METRICS.ws_dropped.inc();
}

/// An append was answered after `waited`.
pub fn journal_append(waited: Duration) {
    METRICS.journal_append.observe(waited.as_secs_f64());
}

/// The journal committed `size` appends in one transaction.
pub fn journal_batch(size: usize) {
    METRICS.journal_batch.observe(size as f64);
}

/// A branch snapshot was encoded and saved.
pub fn snapshot_saved(took: Duration) {
    METRICS.snapshot_seconds.observe(took.as_secs_f64());
}

/// A saved snapshot could not be used: `format` (another version), `undecodable` or
/// `position` (its body disagrees with where the journal keeps it).
pub fn snapshot_unreadable(reason: &str) {
    METRICS
        .snapshots_unreadable
        .with_label_values(&[reason])
        .inc();
}

/// An append failed: `conflict` or `unavailable`.
pub fn journal_error(kind: &str) {
    METRICS.journal_errors.with_label_values(&[kind]).inc();
}

pub fn resume_served(source: &str) {
    METRICS.resumes.with_label_values(&[source]).inc();
}

pub fn resume_reset() {
    METRICS.resets.inc();
}

pub fn idempotent_replay() {
    METRICS.idempotent_replays.inc();
}
