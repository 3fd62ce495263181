//! The edge's metrics, each defined once here with its help text: HTTP requests, websockets,
//! authentication, rate limits, admission and readiness. They live in the engine's registry
//! (`rail_actors::metrics::registry`), so one scrape has them all. Labels stay bounded:
//! method, route, status, role, reason, never a token, order or ticket.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    exponential_buckets, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts,
};

struct Edge {
    fire_to_screen: HistogramVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    ws_connections: IntGaugeVec,
    ws_sent: IntCounter,
    ws_writers: IntGauge,
    slow_consumers: IntCounter,
    ready: IntGauge,
    shutdown_seconds: Gauge,
    auth_refused: IntCounterVec,
    rate_limited: IntCounterVec,
    shed: IntCounterVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(metric: T) -> T {
    rail_actors::metrics::registry()
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

static EDGE: LazyLock<Edge> = LazyLock::new(|| {
    let latency = exponential_buckets(0.000_5, 2.0, 14).expect("valid buckets"); // 0.5 ms .. 4 s
    let h =
        |name: &str, help: &str, buckets: Vec<f64>| HistogramOpts::new(name, help).buckets(buckets);
    Edge {
        fire_to_screen: register(HistogramVec::new(
            h("rail_fire_to_screen_seconds", "Time from a fire (the server time its event carries) to its ticket being written to a station screen's socket.", latency.clone()),
            &["station"]).unwrap()),
        http_requests: register(IntCounterVec::new(
            Opts::new("rail_http_requests_total", "HTTP requests answered, by route and status."),
            &["method", "route", "status"]).unwrap()),
        http_duration: register(HistogramVec::new(
            h("rail_http_request_duration_seconds", "Time to answer an HTTP request, by route.", latency),
            &["method", "route"]).unwrap()),
        ws_connections: register(IntGaugeVec::new(
            Opts::new("rail_ws_connections", "Open websocket connections, by device role."),
            &["role"]).unwrap()),
        ws_sent: register(IntCounter::new("rail_ws_messages_sent_total", "Frames written to websockets.").unwrap()),
        ws_writers: register(IntGauge::new("rail_ws_writers", "Websocket sessions running: one task a connection, gone when its socket is.").unwrap()),
        slow_consumers: register(IntCounter::new("rail_ws_slow_consumers_total", "Websockets closed because they did not keep up.").unwrap()),
        ready: register(IntGauge::new("rail_ready", "1 when this replica has recovered and takes traffic, 0 otherwise.").unwrap()),
        shutdown_seconds: register(Gauge::new("rail_shutdown_limit_seconds", "The time this replica allows itself to stop after SIGTERM.").unwrap()),
        auth_refused: register(IntCounterVec::new(
            Opts::new("rail_auth_refused_total", "Requests and frames refused by authentication or authorization, by reason."),
            &["reason"]).unwrap()),
        rate_limited: register(IntCounterVec::new(
            Opts::new("rail_rate_limited_total", "Requests and frames refused for coming too fast, by surface."),
            &["surface"]).unwrap()),
        shed: register(IntCounterVec::new(
            Opts::new("rail_shed_total", "Commands refused with 503 overloaded, by what was asked (new_order, command) and why (in_flight: too many commands in hand; fanout_lag: tickets reach their stations late; memory: resident memory above the limit)."),
            &["ask", "reason"]).unwrap()),
    }
});

/// Series that alerts and dashboards query exist from the first scrape, at zero.
fn touch_known_series() {
    for role in [
        "manager",
        "pos",
        "waiter",
        "kitchen",
        "guest",
        "unauthenticated",
    ] {
        EDGE.ws_connections.with_label_values(&[role]);
    }
    for reason in [
        "unauthenticated",
        "invalid_token",
        "forbidden",
        "wrong_branch",
    ] {
        EDGE.auth_refused.with_label_values(&[reason]);
    }
    for surface in ["guest", "websocket"] {
        EDGE.rate_limited.with_label_values(&[surface]);
    }
    EDGE.shed.with_label_values(&["command", "in_flight"]);
    for reason in ["in_flight", "fanout_lag", "memory"] {
        EDGE.shed.with_label_values(&["new_order", reason]);
    }
}

/// Every metric of the process (the engine's and the edge's) in Prometheus' text format.
pub fn render() -> String {
    touch_known_series();
    rail_actors::metrics::render()
}

/// A fired ticket was written to a station screen's socket.
pub fn fire_reached_screen(station: &str, elapsed: Duration) {
    EDGE.fire_to_screen
        .with_label_values(&[station])
        .observe(elapsed.as_secs_f64());
}

pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let status = status.to_string();
    EDGE.http_requests
        .with_label_values(&[method, route, &status])
        .inc();
    EDGE.http_duration
        .with_label_values(&[method, route])
        .observe(took.as_secs_f64());
}

pub fn ws_connected(role: &str) {
    EDGE.ws_connections.with_label_values(&[role]).inc();
}

pub fn ws_disconnected(role: &str) {
    EDGE.ws_connections.with_label_values(&[role]).dec();
}

/// A websocket's session task started.
pub fn ws_writer_started() {
    EDGE.ws_writers.inc();
}

/// A websocket's session task ended.
pub fn ws_writer_ended() {
    EDGE.ws_writers.dec();
}

pub fn ws_frame_sent() {
    EDGE.ws_sent.inc();
}

pub fn slow_consumer_closed() {
    EDGE.slow_consumers.inc();
}

pub fn auth_refused(reason: &str) {
    EDGE.auth_refused.with_label_values(&[reason]).inc();
}

pub fn rate_limited(surface: &str) {
    EDGE.rate_limited.with_label_values(&[surface]).inc();
}

pub fn shed(ask: &str, reason: &str) {
    EDGE.shed.with_label_values(&[ask, reason]).inc();
}

pub fn set_ready(ready: bool) {
    EDGE.ready.set(ready.into());
}

pub fn set_shutdown_limit(limit: Duration) {
    EDGE.shutdown_seconds.set(limit.as_secs_f64());
}

/// The replica bridge's metrics (with `REDIS_URL`).
struct Replicas {
    members: IntGauge,
    owned: IntGauge,
    branch_owned: IntGaugeVec,
    lease_changes: IntCounterVec,
    relay: IntCounterVec,
    relay_up: IntGauge,
    forwarded: IntCounterVec,
}

static REPLICAS: LazyLock<Replicas> = LazyLock::new(|| {
    Replicas {
    members: register(IntGauge::new("rail_replica_members", "Live replicas of the chain, as this one last read them from Redis (0 while Redis cannot be read).").unwrap()),
    owned: register(IntGauge::new("rail_replica_branches_owned", "Branches this replica holds the lease of and writes.").unwrap()),
    branch_owned: register(IntGaugeVec::new(
        Opts::new("rail_branch_owned", "1 while this replica holds the branch's lease and writes it, 0 after."),
        &["branch"]).unwrap()),
    lease_changes: register(IntCounterVec::new(
        Opts::new("rail_lease_changes_total", "Branch leases this replica took, handed off or lost."),
        &["change"]).unwrap()),
    relay: register(IntCounterVec::new(
        Opts::new("rail_relay_messages_total", "Relay messages between replicas: published, not published (left to the journal), received, unreadable (a newer format; left to the journal)."),
        &["outcome"]).unwrap()),
    relay_up: register(IntGauge::new("rail_relay_up", "1 while this replica's subscription to the relay is live.").unwrap()),
    forwarded: register(IntCounterVec::new(
        Opts::new("rail_forwarded_total", "Commands sent on to the replica owning their branch, by way (rest, ws) and outcome."),
        &["via", "outcome"]).unwrap()),
}
});

pub fn replica_members(n: usize) {
    REPLICAS.members.set(n as i64);
}

pub fn replica_branches_owned(n: usize) {
    REPLICAS.owned.set(n as i64);
}

pub fn branch_owned(branch: &str, owned: bool) {
    REPLICAS
        .branch_owned
        .with_label_values(&[branch])
        .set(i64::from(owned));
}

pub fn lease_change(change: &str) {
    REPLICAS.lease_changes.with_label_values(&[change]).inc();
}

pub fn relay_published(n: usize) {
    REPLICAS
        .relay
        .with_label_values(&["published"])
        .inc_by(n as u64);
}

pub fn relay_publish_failed(n: usize) {
    REPLICAS
        .relay
        .with_label_values(&["not_published"])
        .inc_by(n as u64);
}

pub fn relay_received(n: usize) {
    REPLICAS
        .relay
        .with_label_values(&["received"])
        .inc_by(n as u64);
}

pub fn relay_unreadable() {
    REPLICAS.relay.with_label_values(&["unreadable"]).inc();
}

pub fn relay_up(up: bool) {
    REPLICAS.relay_up.set(i64::from(up));
}

pub fn forwarded(via: &str, outcome: &str) {
    REPLICAS.forwarded.with_label_values(&[via, outcome]).inc();
}
