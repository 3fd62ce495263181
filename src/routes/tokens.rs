//! The branch's devices: tokens a manager issues for its tablets, kitchen screens and guests'
//! phones, the devices listed and revoked, and the short pairing codes a new device exchanges
//! once for its token (so nobody types a token in a kitchen).

use std::net::IpAddr;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use rail_actors::branch::{
    GetBranchInfo, IssueDevice, ListDevices, OfferPairing, RedeemPairing, RevokeDevice,
};
use rail_actors::devices::{DeviceRecord, PairingOffer};
use rail_actors::ids::BranchId;
use rail_actors::Engine;
use rand::Rng;
use serde::Deserialize;

use super::scope::{ApiResult, BranchPath, Refusals};
use crate::auth::{Act, Device, IssuedToken, TokenRequest, Tokens};
use crate::body::ApiJson;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::settings::Settings;
use crate::wire;

/// Pairing codes' letters and digits: none that read as another (0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 8;

/// Refuses a request naming a station or table the branch does not have.
async fn known_here(
    engine: &Engine,
    branch: &BranchId,
    request: &TokenRequest,
) -> Result<(), ApiError> {
    let info = engine.ask(branch, GetBranchInfo).await??;
    if let Some(station) = &request.station {
        if !info.config.stations.iter().any(|s| &s.id == station) {
            return Err(rail_actors::CommandError::UnknownStation(station.clone()).into());
        }
    }
    if let Some(table) = &request.table {
        if !info.config.tables.iter().any(|t| &t.id == table) {
            return Err(rail_actors::CommandError::UnknownTable(table.clone()).into());
        }
    }
    Ok(())
}

/// The device an issued token names, as the branch records it.
fn record_of(issued: &IssuedToken, at: DateTime<Utc>) -> DeviceRecord {
    DeviceRecord {
        device: issued.device_id.clone(),
        name: issued.device.clone(),
        role: issued.role.as_str().to_owned(),
        station: issued.station.as_deref().and_then(|s| s.parse().ok()),
        table: issued.table.as_deref().and_then(|t| t.parse().ok()),
        issued_at: at,
        expires_at: issued.expires_at,
        revoked_at: None,
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/tokens",
    operation_id = "issue_token",
    tag = "devices",
    summary = "Issue a device token (managers)",
    params(BranchPath),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "The token and what it is for.", body = IssuedToken),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, station or table (`unknown_branch`, `unknown_station`, `unknown_table`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The request is not valid (`invalid_input`): a guest without a table, a station for another role, a lifetime out of range, ...", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn issue_token(
    device: Device,
    tokens: web::Data<Tokens>,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    body: ApiJson<TokenRequest>,
) -> ApiResult {
    device.require(Act::IssueTokens)?;
    let branch = branch.id()?;
    let request = body.0;
    known_here(&engine, &branch, &request).await?;
    let issued = tokens.issue(&branch, &request)?;
    let record = record_of(&issued, Utc::now());
    engine.ask(&branch, IssueDevice(record)).await??;
    tracing::info!(
        issued_by = %device.claims.sub,
        device = %issued.device,
        role = issued.role.as_str(),
        "device token issued"
    );
    Ok(HttpResponse::Created().json(issued))
}

/// The `{device}` segment of a device's paths.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DevicePath {
    /// The device's id (`device_id` when its token was issued).
    device: String,
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/devices",
    operation_id = "list_devices",
    tag = "devices",
    summary = "The devices tokens were issued to (managers)",
    description = "Every device a manager issued a token to (with `POST .../tokens` or a pairing code) whose token has not expired, revoked ones included for a week, the latest issued first. Tokens printed by `rail token` are not listed.",
    params(BranchPath),
    responses(
        (status = 200, description = "The devices.", body = Vec<wire::device::Device>),
        Refusals,
        (status = 404, description = "No such branch (`unknown_branch`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_devices(
    device: Device,
    tokens: web::Data<Tokens>,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
) -> ApiResult {
    device.require(Act::IssueTokens)?;
    let branch = branch.id()?;
    let devices = engine.ask(&branch, ListDevices).await??;
    let listed: Vec<wire::device::Device> = devices
        .iter()
        .map(|d| wire::device::Device::new(d, tokens.last_seen(&d.device)))
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/devices/{device}/revoke",
    operation_id = "revoke_device",
    tag = "devices",
    summary = "Revoke a device (managers)",
    description = "From now on the device's tokens are refused (`401 token_revoked`) on every replica, its open sockets are closed (1008 `token_revoked`), and it stays revoked across restarts (the revocation is journaled). Revoking it again changes nothing.",
    params(BranchPath, DevicePath),
    responses(
        (status = 200, description = "The device, revoked.", body = wire::device::Device),
        Refusals,
        (status = 404, description = "No such branch or device (`unknown_branch`, `unknown_device`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn revoke_device(
    device: Device,
    tokens: web::Data<Tokens>,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    path: web::Path<DevicePath>,
) -> ApiResult {
    device.require(Act::IssueTokens)?;
    let branch = branch.id()?;
    let revoked = engine
        .ask(&branch, RevokeDevice(path.device.clone()))
        .await??;
    tracing::info!(revoked_by = %device.claims.sub, device = %revoked.device, "device revoked");
    let seen = tokens.last_seen(&revoked.device);
    Ok(HttpResponse::Ok().json(wire::device::Device::new(&revoked, seen)))
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/pairings",
    operation_id = "offer_pairing",
    tag = "devices",
    summary = "A pairing code for a new device (managers)",
    description = "A short code (8 letters and digits) that a new device exchanges once, within 10 minutes (`pairing_code_seconds`), for a token for what the body asks (as `POST .../tokens`), with `POST .../pair`. Only a keyed hash of the code is journaled; the code is shown once, here.",
    params(BranchPath),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "The code, until when it may be used, and the device it pairs.", body = wire::device::Pairing),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, station or table (`unknown_branch`, `unknown_station`, `unknown_table`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The request is not valid (`invalid_input`), as for a token.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn offer_pairing(
    device: Device,
    settings: web::Data<Settings>,
    tokens: web::Data<Tokens>,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    body: ApiJson<TokenRequest>,
) -> ApiResult {
    device.require(Act::IssueTokens)?;
    let branch = branch.id()?;
    let request = body.0;
    known_here(&engine, &branch, &request).await?;
    // Checked and named as a token would be; its token is signed when the code is redeemed.
    let planned = tokens.issue(&branch, &request)?;
    let now = Utc::now();
    let code: String = {
        let mut rng = rand::rng();
        (0..CODE_LEN)
            .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
            .collect()
    };
    let offer = PairingOffer {
        code_hash: tokens.pairing_hash(&branch, &code),
        device: record_of(&planned, now),
        expires_at: now
            + chrono::TimeDelta::seconds(settings.pairing_code_seconds.clamp(10, 86_400) as i64),
    };
    let offer = engine.ask(&branch, OfferPairing(offer)).await??;
    tracing::info!(offered_by = %device.claims.sub, device = %offer.device.name, "pairing code offered");
    let shown = format!("{}-{}", &code[..4], &code[4..]);
    Ok(HttpResponse::Created().json(wire::device::Pairing {
        code: shown,
        expires_at: offer.expires_at,
        device: wire::device::Device::new(&offer.device, None),
    }))
}

/// A pairing code, as the new device sends it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairBody {
    /// The code shown (`ABCD-EFGH`); case, spaces and dashes do not matter.
    #[schema(example = "K7M2-Q9XA", max_length = 32)]
    code: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/pair",
    operation_id = "redeem_pairing",
    tag = "devices",
    summary = "Exchange a pairing code for the device's token (no token needed)",
    description = "The new device sends the code a manager was shown; it gets its token once. A code mistyped, used already or older than 10 minutes is refused alike (`401 invalid_pairing_code`). At most 10 tries a minute from one address (`429 rate_limited`).",
    params(BranchPath),
    request_body = PairBody,
    responses(
        (status = 201, description = "The device's token.", body = IssuedToken),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        (status = 401, description = "The code is not valid (`invalid_pairing_code`).", body = ErrorBody),
        (status = 404, description = "No such branch (`unknown_branch`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The body is not valid (`invalid_input`).", body = ErrorBody),
        (status = 429, description = "Too many tries from this address (`rate_limited`).", body = ErrorBody),
        (status = 503, description = "The journal or the branch's owner cannot be reached (`journal_unavailable`, `owner_unavailable`): try again.", body = ErrorBody),
    ),
)]
pub(super) async fn redeem_pairing(
    req: HttpRequest,
    tokens: web::Data<Tokens>,
    engine: web::Data<Engine>,
    tries: web::Data<PairingTries>,
    branch: web::Path<BranchPath>,
    body: ApiJson<PairBody>,
) -> ApiResult {
    let branch = branch.id()?;
    let settings = req.app_data::<web::Data<Settings>>().expect("settings");
    let address = crate::client::client_ip(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &settings.trusted_proxies,
    );
    tries.check(address)?;
    let code: String = body
        .0
        .code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid_shape = code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    if !valid_shape {
        return Err(rail_actors::CommandError::InvalidPairingCode.into());
    }
    let code_hash = tokens.pairing_hash(&branch, &code);
    let paired = engine.ask(&branch, RedeemPairing { code_hash }).await??;
    let issued = tokens.issue_for(&branch, &paired)?;
    tracing::info!(device = %paired.name, role = %paired.role, "device paired");
    Ok(HttpResponse::Created().json(issued))
}

/// How often one address may try a pairing code: a code cannot be guessed by trying.
pub struct PairingTries {
    limiter: governor::DefaultKeyedRateLimiter<Option<IpAddr>>,
}

impl Default for PairingTries {
    fn default() -> Self {
        let quota = governor::Quota::per_minute(std::num::NonZeroU32::new(10).expect("ten"));
        Self {
            limiter: governor::RateLimiter::keyed(quota),
        }
    }
}

impl PairingTries {
    fn check(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        self.limiter.check_key(&address).map_err(|_| {
            crate::metrics::rate_limited("pairing");
            ApiError::new(
                ErrorCode::RateLimited,
                "too many pairing codes tried from this address; wait a minute",
            )
            .retry_after(60)
        })?;
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        Ok(())
    }
}
