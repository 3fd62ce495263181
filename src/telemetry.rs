//! Logs: human-readable in development, JSON in production. `RUST_LOG` filters.
//!
//! No secret reaches a log line, whatever a client sends: the request span is tracing-actix-web's
//! own but for its `http.target`, whose query string is logged with its parameters' names and
//! none of their values (a device that puts its token in `?token=` is refused, and its refusal
//! is logged without the token). Headers are not logged, but for the user agent. The client's
//! address is the peer's, or what a trusted proxy says it is (`client::client_ip`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Uri, Version};
use actix_web::{web, Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

use crate::client::client_ip;
use crate::settings::{LogFormat, Settings};

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
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
        tracing::info_span!(
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
        )
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
