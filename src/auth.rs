//! Who a device is and what it may do.
//!
//! Devices carry JWTs signed with the deployment's `JWT_SECRET`. Only HS256 is accepted,
//! whatever a token's header says, and `exp`, `nbf`, `iss` and `aud` are always checked.
//! A token names one branch and one role; every REST call, subscription and station command is
//! checked against both before anything else happens, so a device of one branch learns nothing
//! of another, not even whether it exists.

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::metrics;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rail_actors::ids::{BranchId, StationId, TableId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};
use crate::wire::schema;

/// Shortest secret accepted: HS256 is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 32;

/// What a device is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the branch: configuration, devices, reports.
    Manager,
    /// A counter terminal: takes and closes orders.
    Pos,
    /// A waiter's tablet: takes orders at tables, fires courses, hears when food is ready.
    Waiter,
    /// A kitchen display: follows and works a station's tickets (all stations without a claim).
    Kitchen,
    /// A guest's phone at a table (QR ordering): adds lines to its table's order.
    Guest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Pos => "pos",
            Role::Waiter => "waiter",
            Role::Kitchen => "kitchen",
            Role::Guest => "guest",
        }
    }
}

/// A token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The device's name, for people reading logs.
    pub sub: String,
    pub branch: BranchId,
    pub role: Role,
    /// A kitchen screen's station; without one it may follow every station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<StationId>,
    /// A guest's table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableId>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

/// What a device asks to do; checked by [`Device::may`].
#[derive(Debug, Clone, Copy)]
pub enum Act<'a> {
    ConfigureBranch,
    IssueTokens,
    ReadJournal,
    ReadBranch,
    EightySix,
    /// Open an order at this table.
    OpenOrder(&'a TableId),
    ListOrders,
    /// Read one order, at this table.
    ReadOrder(&'a TableId),
    /// Add lines to an order at this table.
    AddLines(&'a TableId),
    /// Void, fire, serve or close.
    ChangeOrder,
    ReadStation(&'a StationId),
    ActOnTicket(&'a StationId),
    FollowStation(&'a StationId),
    FollowTable(&'a TableId),
    FollowBranch,
}

/// An authenticated device.
#[derive(Debug, Clone)]
pub struct Device {
    pub claims: Arc<Claims>,
}

impl Device {
    pub fn branch(&self) -> &BranchId {
        &self.claims.branch
    }

    pub fn role(&self) -> Role {
        self.claims.role
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.claims.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether this device's role allows `act` (the branch is checked separately).
    pub fn may(&self, act: Act<'_>) -> bool {
        use Role::*;
        let role = self.claims.role;
        let station_ok = |s: &StationId| self.claims.station.as_ref().is_none_or(|own| own == s);
        let own_table = |t: &TableId| self.claims.table.as_ref() == Some(t);
        match act {
            Act::ConfigureBranch | Act::IssueTokens | Act::ReadJournal => role == Manager,
            Act::ReadBranch => true,
            Act::EightySix => matches!(role, Manager | Pos | Kitchen),
            Act::ListOrders | Act::ChangeOrder | Act::FollowBranch => {
                matches!(role, Manager | Pos | Waiter)
            }
            Act::OpenOrder(t) => match role {
                Manager | Pos | Waiter => true,
                Guest => own_table(t),
                Kitchen => false,
            },
            Act::ReadOrder(t) => match role {
                Manager | Pos | Waiter | Kitchen => true,
                Guest => own_table(t),
            },
            Act::AddLines(t) => match role {
                Manager | Pos | Waiter => true,
                Guest => own_table(t),
                Kitchen => false,
            },
            Act::ReadStation(s) => match role {
                Manager | Pos | Waiter => true,
                Kitchen => station_ok(s),
                Guest => false,
            },
            Act::ActOnTicket(s) | Act::FollowStation(s) => match role {
                Manager => true,
                Kitchen => station_ok(s),
                Pos | Waiter | Guest => false,
            },
            Act::FollowTable(t) => match role {
                Manager | Pos | Waiter => true,
                Guest => own_table(t),
                Kitchen => false,
            },
        }
    }

    /// Refuses with `403 forbidden` unless this device may do `act`.
    pub fn require(&self, act: Act<'_>) -> Result<(), ApiError> {
        if self.may(act) {
            Ok(())
        } else {
            Err(forbidden(self.role()))
        }
    }

    /// The branch a request names, when it is this device's branch.
    pub fn same_branch(&self, named: &str) -> Result<(), ApiError> {
        if named == self.branch().as_str() {
            Ok(())
        } else {
            Err(wrong_branch())
        }
    }
}

pub fn forbidden(role: Role) -> ApiError {
    metrics::auth_refused("forbidden");
    ApiError::new(
        ErrorCode::Forbidden,
        format!("a {} device may not do this", role.as_str()),
    )
}

pub fn wrong_branch() -> ApiError {
    metrics::auth_refused("wrong_branch");
    ApiError::new(
        ErrorCode::WrongBranch,
        "this device belongs to another branch",
    )
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token: send 'Authorization: Bearer <token>'")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("this device was revoked by a manager: pair it again")]
    Revoked,
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        let code = match e {
            TokenError::Missing => ErrorCode::Unauthenticated,
            TokenError::Invalid(_) => ErrorCode::InvalidToken,
            TokenError::Revoked => ErrorCode::TokenRevoked,
        };
        metrics::auth_refused(code.as_str());
        ApiError::new(code, e.to_string())
    }
}

/// What a device token is issued for. Its OpenAPI schema (below) says which fields go with
/// which role, as [`Tokens::issue`] checks them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub role: Role,
    /// A kitchen screen's station.
    #[serde(default)]
    pub station: Option<StationId>,
    /// A guest's table (required for guests).
    #[serde(default)]
    pub table: Option<TableId>,
    /// The device's name, shown in logs.
    #[serde(default)]
    pub device: Option<String>,
    /// Lifetime in seconds: 60 to 31,536,000 (a year); a day by default.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// The longest device name, in characters.
const MAX_DEVICE_NAME: usize = 64;

impl utoipa::ToSchema for TokenRequest {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        for (name, schema) in [
            (schema::StationId::name(), schema::StationId::schema()),
            (schema::TableId::name(), schema::TableId::schema()),
        ] {
            schemas.push((name.into(), schema));
        }
    }
}

impl utoipa::PartialSchema for TokenRequest {
    /// One shape a role: staff devices name neither station nor table, a kitchen screen may
    /// name its station, a guest's phone must name its table.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, AllOfBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
        };
        use utoipa::openapi::Ref;
        use utoipa::ToSchema;

        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let nullable_ref = |name: std::borrow::Cow<'static, str>, description: &str| {
            OneOfBuilder::new()
                .item(null())
                .item(Ref::from_schema_name(name))
                .description(Some(description))
        };
        let shape = |title: &str, roles: &[Role]| {
            ObjectBuilder::new()
                .title(Some(title))
                .property(
                    "role",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(roles.iter().map(|r| r.as_str()))),
                )
                .required("role")
                .property(
                    "device",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .min_length(Some(1))
                        .max_length(Some(MAX_DEVICE_NAME))
                        .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]*$"))
                        .description(Some(
                            "The device's name, shown in logs: 1 to 64 characters, no control \
                             characters. Made up when left out.",
                        )),
                )
                .property(
                    "ttl_seconds",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                            utoipa::openapi::KnownFormat::Int64,
                        )))
                        .minimum(Some(60))
                        .maximum(Some(MAX_TTL.as_secs() as f64))
                        .description(Some(
                            "Lifetime in seconds: 60 to 31,536,000 (a year); a day by default.",
                        )),
                )
                .additional_properties(Some(
                    AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(false),
                ))
        };
        OneOfBuilder::new()
            .item(
                shape("A staff device", &[Role::Manager, Role::Pos, Role::Waiter])
                    .property("station", null())
                    .property("table", null()),
            )
            .item(
                shape("A kitchen screen", &[Role::Kitchen])
                    .property(
                        "station",
                        nullable_ref(
                            schema::StationId::name(),
                            "The station it shows (a station of the branch); without one, \
                             every station.",
                        ),
                    )
                    .property("table", null()),
            )
            .item(
                shape("A guest's phone", &[Role::Guest])
                    .property("station", null())
                    .property(
                        "table",
                        AllOfBuilder::new()
                            .item(Ref::from_schema_name(schema::TableId::name()))
                            .description(Some("Its table (a table of the branch).")),
                    )
                    .required("table"),
            )
            .description(Some("What a device token is issued for."))
            .into()
    }
}

/// An issued token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: String,
    pub branch: String,
    pub role: Role,
    pub station: Option<String>,
    pub table: Option<String>,
    /// The device's name.
    pub device: String,
    /// The device's id (the token's `jti`): what `GET .../devices` lists and a manager
    /// revokes.
    pub device_id: String,
    pub expires_at: DateTime<Utc>,
}

const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Signs and checks device tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    leeway: Duration,
    /// Tokens whose signature, issuer and audience were checked, by their whole text: a
    /// device sends the same token with every request, and its times are checked each time.
    verified: Mutex<HashMap<Box<str>, Arc<Claims>>>,
    /// When each device was last seen here (its id: the token's `jti`).
    seen: Mutex<HashMap<String, i64>>,
    /// The key pairing codes are hashed with before the journal keeps them.
    pairing_key: [u8; 32],
}

/// Devices whose last sighting is remembered at most; the memory starts over when full.
const SEEN_DEVICES: usize = 100_000;

/// Verified tokens remembered at most; the memory starts over when full.
const VERIFIED_TOKENS: usize = 4096;

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(
        secret: &[u8],
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway,
            verified: Mutex::default(),
            seen: Mutex::default(),
            pairing_key: Sha256::new()
                .chain_update(b"rail pairing codes\0")
                .chain_update(secret)
                .finalize()
                .into(),
        })
    }

    /// The keyed hash a pairing code of `branch` is kept as: without the secret, the journal's
    /// readers cannot try codes against it.
    pub fn pairing_hash(&self, branch: &BranchId, code: &str) -> String {
        let digest = Sha256::new()
            .chain_update(self.pairing_key)
            .chain_update(branch.as_str().as_bytes())
            .chain_update(b"\0")
            .chain_update(code.as_bytes())
            .finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// When this replica last saw the device (a request or a socket of it).
    pub fn last_seen(&self, device: &str) -> Option<DateTime<Utc>> {
        let seen = self.seen.lock().expect("devices seen");
        seen.get(device)
            .and_then(|t| DateTime::from_timestamp(*t, 0))
    }

    fn saw(&self, device: &str) {
        let now = Utc::now().timestamp();
        let mut seen = self.seen.lock().expect("devices seen");
        if let Some(at) = seen.get_mut(device) {
            *at = now;
            return;
        }
        if seen.len() >= SEEN_DEVICES {
            seen.clear();
        }
        seen.insert(device.to_owned(), now);
    }

    /// The clock skew tolerated on a token's times.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Checks a token's signature, algorithm, times, issuer and audience.
    /// A token for claims already verified (the same device, the same expiry): what a replica
    /// forwarding a device's command sends on its behalf.
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("token not signed: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<Device, TokenError> {
        let remembered = self
            .verified
            .lock()
            .expect("token memory")
            .get(token)
            .cloned();
        if let Some(claims) = remembered.filter(|c| self.in_time(c)) {
            return self.not_revoked(claims);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| TokenError::Invalid(describe(&e)))?;
        let claims = data.claims;
        if claims.role == Role::Guest && claims.table.is_none() {
            return Err(TokenError::Invalid("a guest token names no table".into()));
        }
        let claims = Arc::new(claims);
        let mut verified = self.verified.lock().expect("token memory");
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.into(), claims.clone());
        drop(verified);
        self.not_revoked(claims)
    }

    /// The device, unless a manager revoked it; seen now either way.
    fn not_revoked(&self, claims: Arc<Claims>) -> Result<Device, TokenError> {
        self.saw(&claims.jti);
        if rail_actors::devices::REVOKED.contains(&claims.branch, &claims.jti) {
            metrics::auth_refused("token_revoked");
            return Err(TokenError::Revoked);
        }
        Ok(Device { claims })
    }

    /// The time checks `verify` makes (the same as the validation's, with its leeway).
    fn in_time(&self, claims: &Claims) -> bool {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let leeway = self.validation.leeway as i64;
        claims.exp >= now - leeway && claims.nbf <= now + leeway
    }

    /// Issues a token for a device of `branch`.
    pub fn issue(
        &self,
        branch: &BranchId,
        request: &TokenRequest,
    ) -> Result<IssuedToken, ApiError> {
        let invalid = |m: &str| ApiError::new(ErrorCode::InvalidInput, m);
        let ttl = match request.ttl_seconds {
            None => DEFAULT_TTL,
            Some(s) if (60..=MAX_TTL.as_secs()).contains(&s) => Duration::from_secs(s),
            Some(_) => return Err(invalid("ttl_seconds must be 60 to 31536000")),
        };
        match request.role {
            Role::Guest if request.table.is_none() => {
                return Err(invalid("a guest token needs its table"))
            }
            Role::Guest | Role::Kitchen => {}
            _ if request.station.is_some() => {
                return Err(invalid("only kitchen devices have a station"))
            }
            _ => {}
        }
        if request.role != Role::Guest && request.table.is_some() {
            return Err(invalid("only guest devices have a table"));
        }
        if request.role == Role::Guest && request.station.is_some() {
            return Err(invalid("only kitchen devices have a station"));
        }
        let device = match &request.device {
            Some(d)
                if d.is_empty()
                    || d.chars().count() > MAX_DEVICE_NAME
                    || d.chars().any(char::is_control) =>
            {
                return Err(invalid("device must be 1 to 64 printable characters"))
            }
            Some(d) => d.clone(),
            None => format!(
                "{}-{}",
                request.role.as_str(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
        };
        let now = Utc::now().timestamp();
        let exp = now + ttl.as_secs() as i64;
        self.signed(
            branch,
            request,
            device,
            uuid::Uuid::new_v4().to_string(),
            exp,
        )
    }

    /// The token of a device already recorded (a paired device's): its id and expiry kept.
    pub fn issue_for(
        &self,
        branch: &BranchId,
        device: &rail_actors::devices::DeviceRecord,
    ) -> Result<IssuedToken, ApiError> {
        let role = serde_json::from_value(serde_json::Value::String(device.role.clone()))
            .map_err(|_| ApiError::new(ErrorCode::Internal, "a device of an unknown role"))?;
        let request = TokenRequest {
            role,
            station: device.station.clone(),
            table: device.table.clone(),
            device: Some(device.name.clone()),
            ttl_seconds: None,
        };
        let exp = device.expires_at.timestamp();
        self.signed(
            branch,
            &request,
            device.name.clone(),
            device.device.clone(),
            exp,
        )
    }

    fn signed(
        &self,
        branch: &BranchId,
        request: &TokenRequest,
        device: String,
        jti: String,
        exp: i64,
    ) -> Result<IssuedToken, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: device.clone(),
            branch: branch.clone(),
            role: request.role,
            station: request.station.clone(),
            table: request.table.clone(),
            iat: now,
            nbf: now,
            exp,
            jti,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        Ok(IssuedToken {
            token,
            branch: branch.to_string(),
            role: request.role,
            station: request.station.as_ref().map(ToString::to_string),
            table: request.table.as_ref().map(ToString::to_string),
            device,
            device_id: claims.jti.clone(),
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_default(),
        })
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "it has expired".into(),
        ImmatureSignature => "it is not valid yet".into(),
        InvalidAudience => "it is for another audience".into(),
        InvalidIssuer => "it is from another issuer".into(),
        InvalidSignature => "its signature does not match".into(),
        InvalidAlgorithm | InvalidAlgorithmName => "only HS256 tokens are accepted".into(),
        MissingRequiredClaim(c) => format!("it has no '{c}' claim"),
        _ => "it is malformed".into(),
    }
}

/// The bearer token of a request's `Authorization` header.
pub fn bearer(req: &HttpRequest) -> Result<&str, TokenError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(TokenError::Missing)?;
    let value = value
        .to_str()
        .map_err(|_| TokenError::Invalid("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(TokenError::Missing),
    }
}

/// A handler's device: put in the request by the API scope's guard.
impl FromRequest for Device {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Device>()
                .cloned()
                .ok_or_else(|| TokenError::Missing.into()),
        )
    }
}

/// How fast guests' phones may add to their table's order (QR ordering is open to anyone
/// at the table, so a script must not be able to flood the kitchen).
pub struct GuestOrdering {
    limiter: governor::DefaultKeyedRateLimiter<(BranchId, TableId)>,
}

impl GuestOrdering {
    /// `per_minute` additions a table, in bursts of up to the same number.
    pub fn new(per_minute: u32) -> Self {
        let per_minute = std::num::NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self {
            limiter: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
        }
    }

    /// Refuses with `429 rate_limited` when this table's guests are over their rate.
    pub fn check(&self, branch: &BranchId, table: &TableId) -> Result<(), ApiError> {
        let key = (branch.clone(), table.clone());
        self.limiter.check_key(&key).map_err(|not_until| {
            metrics::rate_limited("guest");
            use governor::clock::{Clock, DefaultClock};
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::new(
                ErrorCode::RateLimited,
                "this table is ordering too fast; wait a minute and try again",
            )
            .retry_after(wait.as_secs_f64().ceil() as u64)
        })?;
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(tokens: &Tokens, exp: i64) -> String {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let claims = serde_json::json!({
            "iss": "rail", "aud": "rail", "sub": "grill screen", "branch": "demo",
            "role": "kitchen", "iat": now, "nbf": now, "exp": exp, "jti": "t",
        });
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &tokens.encoding)
            .expect("token encodes")
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let tokens = Tokens::new(&[7; 32], "rail", "rail", Duration::ZERO).expect("tokens");
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let short = token(&tokens, now + 1);
        assert_eq!(
            tokens.verify(&short).expect("valid now").role(),
            Role::Kitchen
        );
        assert!(tokens.verified.lock().unwrap().contains_key(short.as_str()));
        while (jsonwebtoken::get_current_timestamp() as i64) <= now + 1 {
            std::thread::sleep(Duration::from_millis(100));
        }
        match tokens.verify(&short) {
            Err(TokenError::Invalid(why)) => assert!(why.contains("expired"), "{why}"),
            other => panic!("an expired token was accepted: {other:?}"),
        }
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused_after_a_good_one() {
        let tokens = Tokens::new(&[7; 32], "rail", "rail", Duration::ZERO).expect("tokens");
        let other = Tokens::new(&[8; 32], "rail", "rail", Duration::ZERO).expect("tokens");
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let good = token(&tokens, now + 600);
        tokens.verify(&good).expect("valid");
        let forged = token(&other, now + 600);
        assert!(
            tokens.verify(&forged).is_err(),
            "a foreign signature passed"
        );
        assert!(tokens.verify(&good).is_ok());
    }
}
