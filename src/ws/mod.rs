//! The websocket edge, `/ws`: the handshake, and one session per connection.
//!
//! Each socket has one owner: a task of its own (as actix-ws's examples run one), started at
//! the upgrade, that holds the socket, the device on it, its subscriptions and its bounded
//! queue of pushes, and waits on all its inputs in one `select!` (see `session`). A socket's
//! writes are async and an actor's handlers are not, so an actor owning the socket still needs
//! tasks beside it to write (this module was once an actor and a writer task joined by
//! channels, and leaked a writer per closed socket); a task can simply await. When the task
//! returns, everything the socket held goes with it.
//!
//! Domain actors push into the queue without waiting (see `rail_actors::subscriber`). When it
//! is full the screen is too slow: it is closed with a reason and resumes when it reconnects.
//!
//! - `frames`: the typed client frames and the server frames, as JSON text.
//! - `limits`: frame size, frames a second, sockets per address, the bounded send queue.
//! - `connection`: the socket and the frames waiting for it.
//! - `session`: the task that owns a socket.

mod connection;
mod forwarded;
mod frames;
mod limits;
mod session;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rail_actors::Engine;

pub use forwarded::endpoint as forwarded_ticket;
pub use frames::{ClientFrame, ServerFrame, TicketFrame};
pub use limits::Addresses;

use crate::auth::{self, TokenError, Tokens};
use crate::client::client_ip;
use crate::cluster::Cluster;
use crate::error::{ApiError, ErrorCode};
use crate::lifecycle::Lifecycle;
use crate::settings::Settings;
use connection::Connection;
use session::Session;

/// Upgrades `/ws` to a websocket and starts its session.
pub async fn endpoint(
    req: HttpRequest,
    body: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    lifecycle: web::Data<Lifecycle>,
    addresses: web::Data<Addresses>,
    tokens: web::Data<Tokens>,
) -> Result<HttpResponse, actix_web::Error> {
    let cluster = req
        .app_data::<web::Data<Cluster>>()
        .map(|c| c.get_ref().clone());
    if !origin_allowed(&req, &settings.allowed_origins) {
        let msg = "websockets from this origin are not allowed";
        return Err(ApiError::new(ErrorCode::OriginNotAllowed, msg).into());
    }
    // A token in the handshake is checked before the upgrade; without one, the socket has a
    // few seconds to send an `auth` frame.
    let device = match auth::bearer(&req) {
        Ok(token) => Some(tokens.verify(token).map_err(ApiError::from)?),
        Err(TokenError::Missing) => None,
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let client = client_ip(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &settings.trusted_proxies,
    );
    let slot = match client {
        Some(client) => Some(
            addresses
                .take(client, settings.ws_connections_per_address)
                .ok_or_else(|| {
                    let msg = "too many open websockets from this address";
                    ApiError::new(ErrorCode::TooManyConnections, msg)
                })?,
        ),
        None => None,
    };
    let (response, socket, frames) = actix_ws::handle(&req, body)?;
    let session = Session::new(
        Connection::new(socket),
        limits::frames_up_to(frames, settings.max_body_bytes),
        (engine.get_ref().clone(), cluster),
        tokens.into_inner(),
        &settings,
        lifecycle.stopping(),
        slot,
    );
    actix_web::rt::spawn(session.run(device));
    Ok(response)
}

/// Whether a handshake's `Origin` (browsers send one) is this server or an allowed one.
fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let host = req.connection_info().host().to_owned();
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority == host)
}
