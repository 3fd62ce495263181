//! Commands sent on to the replica that writes their branch.
//!
//! REST: every call under `/api/v1/branches/{branch}` (but the journal's `/events`, which any
//! replica answers alike from the shared journal) reaching a
//! replica that does not own its branch is sent on, as it came, to the owner's address from
//! its lease, and answered with the owner's answer. A forwarded call carries
//! `X-Rail-Forwarded-By` and is never forwarded again. Websocket ticket commands go to the
//! owner's `/internal/v1/branches/{branch}/tickets`, which carries them out as its own sockets'
//! (the same idempotency fingerprint) and answers with the frame for the client.
//!
//! While a branch changes hands there is no owner for a moment: the call waits for one, up to
//! `forward_timeout_ms`; then, or when the owner cannot be reached, `503 owner_unavailable`
//! with `Retry-After`, and nothing was done here (a retry with the same idempotency key is
//! safe whatever the owner did).

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use rail_actors::ids::BranchId;
use rail_actors::CommandError;

use super::{Cluster, Route};
use crate::error::{body_too_large, ApiError, ErrorCode};
use crate::settings::Settings;

/// Marks a call a replica forwarded (its id): it is carried out where it lands or refused.
pub const FORWARDED_BY: &str = "x-rail-forwarded-by";

/// How long a call waits between two looks for a branch's owner.
const LOOK_AGAIN: Duration = Duration::from_millis(100);

thread_local! {
    /// One client per worker thread (awc's client is the thread's), keeping connections to the
    /// other replicas open.
    static CLIENT: awc::Client = awc::Client::builder()
        .disable_timeout()
        .finish();
}

fn not_owned() -> ApiError {
    ApiError::from(CommandError::NotOwner)
}

/// Headers that belong to one connection, not to the call.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Whether any replica answers this call alike.
fn answered_anywhere(req: &ServiceRequest) -> bool {
    let path = req.path();
    req.method() == Method::GET && path.ends_with("/events")
}

/// Sends a call on to its branch's owner unless this replica is it (the scope's innermost
/// check, after the device is authenticated).
pub async fn forward_to_owner(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(cluster) = req.app_data::<web::Data<Cluster>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let branch = req
        .match_info()
        .get("branch")
        .unwrap_or_default()
        .to_owned();
    if answered_anywhere(&req) || BranchId::parse(branch.clone()).is_err() {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    }
    let limit = req
        .app_data::<web::Data<Settings>>()
        .map_or(65_536, |s| s.max_body_bytes);
    let body = match read_body(req.take_payload(), limit).await {
        Ok(body) => body,
        Err(e) => return Ok(req.error_response(e)),
    };
    let forwarded = req.headers().contains_key(FORWARDED_BY);
    let deadline = Instant::now() + cluster.0.settings.forward_timeout;
    loop {
        match cluster.route(&branch).await {
            Route::Here => {
                req.set_payload(Payload::from(body));
                return next.call(req).await.map(|r| r.map_into_boxed_body());
            }
            Route::There(address) if !forwarded => {
                let left = deadline.saturating_duration_since(Instant::now());
                match send(&cluster, &address, req.request(), body.clone(), left).await {
                    Ok(response) => {
                        crate::metrics::forwarded("rest", "answered");
                        return Ok(req.into_response(response));
                    }
                    Err(Failed::Unreachable) => cluster.refresh_leases().await,
                    Err(Failed::TimedOut) => {
                        crate::metrics::forwarded("rest", "timed_out");
                        return Ok(req.error_response(not_owned()));
                    }
                }
            }
            Route::There(_) | Route::Nobody => {}
        }
        if Instant::now() + LOOK_AGAIN >= deadline {
            crate::metrics::forwarded("rest", "no_owner");
            return Ok(req.error_response(not_owned()));
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

async fn read_body(mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(body_too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Why a forwarded call got no answer.
enum Failed {
    /// The owner could not be reached: nothing was done there.
    Unreachable,
    /// The owner did not answer in time: it may have done it.
    TimedOut,
}

/// Sends a call to another replica and returns its answer as it came.
async fn send(
    cluster: &Cluster,
    address: &str,
    req: &HttpRequest,
    body: Bytes,
    timeout: Duration,
) -> Result<HttpResponse, Failed> {
    let target = req
        .uri()
        .path_and_query()
        .map_or(req.path(), |p| p.as_str());
    let url = format!("http://{address}{target}");
    let mut out = CLIENT.with(|c| c.request(req.method().clone(), url));
    for (name, value) in req.headers() {
        if !hop_by_hop(name) {
            out = out.append_header((name.clone(), value.clone()));
        }
    }
    out = out
        .insert_header((FORWARDED_BY, cluster.id()))
        .timeout(timeout.max(Duration::from_millis(1)));
    // The owner's spans of this call join this replica's trace.
    for (name, value) in crate::telemetry::trace_headers() {
        out = out.insert_header((name, value));
    }
    let mut answer = match out.send_body(body).await {
        Ok(answer) => answer,
        Err(awc::error::SendRequestError::Timeout) => return Err(Failed::TimedOut),
        Err(e) => {
            tracing::debug!(%address, error = %e, "owner not reached");
            return Err(Failed::Unreachable);
        }
    };
    let bytes = answer
        .body()
        .limit(16 * 1024 * 1024)
        .await
        .map_err(|_| Failed::TimedOut)?;
    let mut response = HttpResponse::build(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) && name != header::DATE {
            response.append_header((name.clone(), value.clone()));
        }
    }
    Ok(response.body(bytes))
}

impl Cluster {
    /// Sends a socket's ticket command (`body`, as `ws` writes it) to the branch's owner's
    /// `/internal/v1/branches/{branch}/tickets`; the frame for the client, or `None` when no
    /// owner answered in time.
    pub async fn forward_ticket(
        &self,
        branch: &BranchId,
        token: &str,
        body: Vec<u8>,
    ) -> Option<String> {
        let deadline = Instant::now() + self.0.settings.forward_timeout;
        loop {
            if let Route::There(address) = self.route(branch.as_str()).await {
                let url = format!("http://{address}/internal/v1/branches/{branch}/tickets");
                let left = deadline.saturating_duration_since(Instant::now());
                let traced = crate::telemetry::trace_headers();
                let sent = CLIENT.with(|c| {
                    let mut out = c
                        .post(url)
                        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
                        .insert_header((header::CONTENT_TYPE, "application/json"))
                        .insert_header((FORWARDED_BY, self.id()));
                    for (name, value) in &traced {
                        out = out.insert_header((name.as_str(), value.as_str()));
                    }
                    out.timeout(left.max(Duration::from_millis(1)))
                        .send_body(body.clone())
                });
                match sent.await {
                    Ok(mut answer) if answer.status() == StatusCode::OK => {
                        if let Ok(text) = answer.body().await {
                            crate::metrics::forwarded("ws", "answered");
                            return Some(String::from_utf8_lossy(&text).into_owned());
                        }
                    }
                    Ok(_) => {}
                    Err(awc::error::SendRequestError::Timeout) => break,
                    Err(_) => self.refresh_leases().await,
                }
            }
            // Here (the branch came to this replica meanwhile) is the caller's retry's.
            if Instant::now() + LOOK_AGAIN >= deadline {
                break;
            }
            tokio::time::sleep(LOOK_AGAIN).await;
        }
        crate::metrics::forwarded("ws", "no_owner");
        None
    }
}
