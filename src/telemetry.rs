//! Logs: human-readable in development, JSON in production. `RUST_LOG` filters.
//!
//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are exported over OTLP/HTTP
//! (protobuf) to `<endpoint>/v1/traces`, batched on a thread of their own: the HTTP request's
//! span, the table actor's command (`table.open_order`, `table.change_order`) and the journal
//! append (`journal.append`), under the caller's trace when its request carries a W3C
//! `traceparent`; a command forwarded to the branch's owner carries the trace on. Off by
//! default, and then the command spans (debug level) are never built.
//!
//! No secret reaches a log line, whatever a client sends: the request span is tracing-actix-web's
//! own but for its `http.target`, whose query string is logged with its parameters' names and
//! none of their values (a device that puts its token in `?token=` is refused, and its refusal
//! is logged without the token). Headers are not logged, but for the user agent. The client's
//! address is the peer's, or what a trusted proxy says it is (`client::client_ip`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use actix_web::http::header::HeaderMap;
use actix_web::http::{Uri, Version};
use actix_web::{web, Error, HttpMessage};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::client::client_ip;
use crate::settings::{LogFormat, Settings};

/// The span exporter, flushed when the process stops.
static TRACES: OnceLock<SdkTracerProvider> = OnceLock::new();

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer();
    let logs = match format {
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
        LogFormat::Human => fmt.with_filter(filter).boxed(),
    };
    let traces = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.trim().is_empty() => match tracer() {
            Ok(tracer) => {
                // The engine's own spans, debug ones included; others' from info up.
                let spans = EnvFilter::new("info,rail=debug,rail_actors=debug");
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(spans),
                )
            }
            Err(e) => {
                eprintln!("traces are not exported: {e}");
                None
            }
        },
        _ => None,
    };
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
}

/// The OTLP exporter the `OTEL_*` environment describes, batched.
fn tracer() -> anyhow::Result<opentelemetry_sdk::trace::Tracer> {
    use opentelemetry::trace::TracerProvider as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("rail")
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("rail");
    TRACING.store(true, Ordering::Relaxed);
    let _ = TRACES.set(provider);
    Ok(tracer)
}

/// Whether spans are exported (and so traces carried from and to other processes).
static TRACING: AtomicBool = AtomicBool::new(false);

/// Sends the spans not exported yet; call once the server has stopped.
pub fn shutdown() {
    if let Some(provider) = TRACES.get() {
        let _ = provider.shutdown();
    }
}

/// Puts `span` under the trace a request's `traceparent` names, when traces are exported.
pub fn continue_trace(span: &Span, headers: &HeaderMap) {
    if !TRACING.load(Ordering::Relaxed) {
        return;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    let _ = span.set_parent(parent);
}

/// The `traceparent` (and `tracestate`) headers that carry the current span's trace to
/// another process, when traces are exported.
pub fn trace_headers() -> Vec<(String, String)> {
    if !TRACING.load(Ordering::Relaxed) {
        return Vec::new();
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = Span::current().context();
    let mut headers = Vec::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut HeaderList(&mut headers))
    });
    headers
}

struct Headers<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderList<'a>(&'a mut Vec<(String, String)>);

impl opentelemetry::propagation::Injector for HeaderList<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// The span of every HTTP request, with its query string's values left out.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let method = request.method().as_str();
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let connection = request.connection_info();
        let user_agent = request
            .headers()
            .get("User-Agent")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let request_id = request.extensions().get::<RequestId>().copied();
        let trusted = request
            .app_data::<web::Data<Settings>>()
            .map(|s| s.trusted_proxies.as_slice())
            .unwrap_or_default();
        let peer = request.peer_addr().map(|a| a.ip());
        let client = client_ip(peer, request.headers(), trusted)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.flavor = %flavor(request.version()),
            http.scheme = %connection.scheme(),
            http.host = %connection.host(),
            http.client_ip = %client,
            http.user_agent = %user_agent,
            http.target = %redacted_target(request.uri()),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id.map(|id| id.to_string()).unwrap_or_default(),
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        );
        continue_trace(&span, request.headers());
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

fn flavor(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "unknown",
    }
}

/// The path, and the query string's parameter names with their values replaced.
pub fn redacted_target(uri: &Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_owned();
    };
    let names: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let name = p.split_once('=').map_or(p, |(name, _)| name);
            // A name is the client's text too: only a short, plain one is kept.
            let plain = name.len() <= 24
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            let name = if plain { name } else { "…" };
            format!("{name}=[redacted]")
        })
        .collect();
    format!("{path}?{}", names.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redacted_target;

    #[test]
    fn a_query_string_keeps_its_names_and_loses_its_values() {
        let uri = |s: &str| s.parse().unwrap();
        assert_eq!(redacted_target(&uri("/ws")), "/ws");
        assert_eq!(
            redacted_target(&uri("/ws?token=abc.def.ghi&after=12")),
            "/ws?token=[redacted]&after=[redacted]"
        );
        assert_eq!(
            redacted_target(&uri("/api/v1/branches/demo/events?after=0&limit=5")),
            "/api/v1/branches/demo/events?after=[redacted]&limit=[redacted]"
        );
        assert_eq!(
            redacted_target(&uri("/x?eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig")),
            "/x?…=[redacted]"
        );
        assert_eq!(
            redacted_target(&uri("/x?a&&b=")),
            "/x?a=[redacted]&b=[redacted]"
        );
    }
}
