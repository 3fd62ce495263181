//! Every metric the engine exports, each defined once here with its help text.
//!
//! Code elsewhere calls the named functions below (`ticket_bumped`, `journal_batch`, ...), never
//! the prometheus types. Labels stay bounded: branch, station, role, route, status, never an
//! order or ticket id.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    exponential_buckets, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec,
    IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

struct Metrics {
    registry: Registry,
    fire_to_screen: HistogramVec,
    ticket_cook: HistogramVec,
    station_live: IntGaugeVec,
    station_oldest: GaugeVec,
    station_screens: IntGaugeVec,
    orders_open: IntGaugeVec,
    orders: IntCounterVec,
    ws_connections: IntGaugeVec,
    ws_sent: IntCounter,
    ws_writers: IntGauge,
    ws_dropped: IntCounter,
    slow_consumers: IntCounter,
    journal_append: Histogram,
    journal_batch: Histogram,
    journal_errors: IntCounterVec,
    snapshot_seconds: Histogram,
    snapshots_unreadable: IntCounterVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    ready: IntGauge,
    idempotent_replays: IntCounter,
    resumes: IntCounterVec,
    resets: IntCounter,
    shutdown_seconds: Gauge,
    auth_refused: IntCounterVec,
    rate_limited: IntCounterVec,
    shed: IntCounterVec,
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
        fire_to_screen: register(&r, HistogramVec::new(
            h("rail_fire_to_screen_seconds", "Time from a fire (the server time its event carries) to its ticket being written to a station screen's socket.", latency.clone()),
            &["station"]).unwrap()),
        ticket_cook: register(&r, HistogramVec::new(
            h("rail_ticket_cook_seconds", "Time from fire to bump of a ticket, per station.", cook),
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
        orders_open: register(&r, IntGaugeVec::new(
            Opts::new("rail_orders_open", "Open orders of a branch."),
            &["branch"]).unwrap()),
        orders: register(&r, IntCounterVec::new(
            Opts::new("rail_orders_total", "Orders opened and closed."),
            &["event"]).unwrap()),
        ws_connections: register(&r, IntGaugeVec::new(
            Opts::new("rail_ws_connections", "Open websocket connections, by device role."),
            &["role"]).unwrap()),
        ws_sent: register(&r, IntCounter::new("rail_ws_messages_sent_total", "Frames written to websockets.").unwrap()),
        ws_writers: register(&r, IntGauge::new("rail_ws_writers", "Websocket writer tasks running: one a connection, gone when its session is.").unwrap()),
        ws_dropped: register(&r, IntCounter::new("rail_ws_messages_dropped_total", "Pushes dropped because a screen's queue was full.").unwrap()),
        slow_consumers: register(&r, IntCounter::new("rail_ws_slow_consumers_total", "Websockets closed because they did not keep up.").unwrap()),
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
        http_requests: register(&r, IntCounterVec::new(
            Opts::new("rail_http_requests_total", "HTTP requests answered, by route and status."),
            &["method", "route", "status"]).unwrap()),
        http_duration: register(&r, HistogramVec::new(
            h("rail_http_request_duration_seconds", "Time to answer an HTTP request, by route.", latency),
            &["method", "route"]).unwrap()),
        resumes: register(&r, IntCounterVec::new(
            Opts::new("rail_ws_resumes_total", "Reconnecting screens served exactly what they missed, by source."),
            &["source"]).unwrap()),
        resets: register(&r, IntCounter::new("rail_ws_resets_total", "Reconnecting screens sent a fresh snapshot because what they missed is too old.").unwrap()),
        idempotent_replays: register(&r, IntCounter::new("rail_idempotent_replays_total", "Retries answered with the first answer to their idempotency key.").unwrap()),
        ready: register(&r, IntGauge::new("rail_ready", "1 when this replica has recovered and takes traffic, 0 otherwise.").unwrap()),
        shutdown_seconds: register(&r, Gauge::new("rail_shutdown_limit_seconds", "The time this replica allows itself to stop after SIGTERM.").unwrap()),
        auth_refused: register(&r, IntCounterVec::new(
            Opts::new("rail_auth_refused_total", "Requests and frames refused by authentication or authorization, by reason."),
            &["reason"]).unwrap()),
        rate_limited: register(&r, IntCounterVec::new(
            Opts::new("rail_rate_limited_total", "Requests and frames refused for coming too fast, by surface."),
            &["surface"]).unwrap()),
        shed: register(&r, IntCounterVec::new(
            Opts::new("rail_shed_total", "Commands refused with 503 overloaded, by what was asked (new_order, command) and why (in_flight: too many commands in hand; fanout_lag: tickets reach their stations late; memory: resident memory above the limit)."),
            &["ask", "reason"]).unwrap()),
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
    for role in [
        "manager",
        "pos",
        "waiter",
        "kitchen",
        "guest",
        "unauthenticated",
    ] {
        METRICS.ws_connections.with_label_values(&[role]);
    }
    for reason in [
        "unauthenticated",
        "invalid_token",
        "forbidden",
        "wrong_branch",
    ] {
        METRICS.auth_refused.with_label_values(&[reason]);
    }
    for surface in ["guest", "websocket"] {
        METRICS.rate_limited.with_label_values(&[surface]);
    }
    METRICS.shed.with_label_values(&["command", "in_flight"]);
    for reason in ["in_flight", "fanout_lag", "memory"] {
        METRICS.shed.with_label_values(&["new_order", reason]);
    }
    METRICS.resumes.with_label_values(&["history"]);
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

/// A fired ticket was written to a station screen's socket.
pub fn fire_reached_screen(station: &str, elapsed: Duration) {
    METRICS
        .fire_to_screen
        .with_label_values(&[station])
        .observe(elapsed.as_secs_f64());
}

/// A station bumped a ticket that had been fired `cooked` ago.
pub fn ticket_bumped(branch: &str, station: &str, cooked: Duration) {
    METRICS
        .ticket_cook
        .with_label_values(&[branch, station])
        .observe(cooked.as_secs_f64());
}

/// What a station's screens show right now.
pub fn station_state(branch: &str, station: &str, live: usize, oldest: Duration, screens: usize) {
    let labels = [branch, station];
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

pub fn ws_connected(role: &str) {
    METRICS.ws_connections.with_label_values(&[role]).inc();
}

pub fn ws_disconnected(role: &str) {
    METRICS.ws_connections.with_label_values(&[role]).dec();
}

pub fn ws_writer_started() {
    METRICS.ws_writers.inc();
}

pub fn ws_writer_ended() {
    METRICS.ws_writers.dec();
}

pub fn ws_frame_sent() {
    METRICS.ws_sent.inc();
}

pub fn ws_push_dropped() {
    METRICS.ws_dropped.inc();
}

pub fn auth_refused(reason: &str) {
    METRICS.auth_refused.with_label_values(&[reason]).inc();
}

pub fn shed(ask: &str, reason: &str) {
    METRICS.shed.with_label_values(&[ask, reason]).inc();
}

pub fn rate_limited(surface: &str) {
    METRICS.rate_limited.with_label_values(&[surface]).inc();
}

pub fn slow_consumer_closed() {
    METRICS.slow_consumers.inc();
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

pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let status = status.to_string();
    METRICS
        .http_requests
        .with_label_values(&[method, route, &status])
        .inc();
    METRICS
        .http_duration
        .with_label_values(&[method, route])
        .observe(took.as_secs_f64());
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

pub fn set_ready(ready: bool) {
    METRICS.ready.set(ready.into());
}

pub fn set_shutdown_limit(limit: Duration) {
    METRICS.shutdown_seconds.set(limit.as_secs_f64());
}
