//! What every call under `/api/v1/branches/{branch}` shares: the checks made before any
//! handler (a device of the branch, load shedding), the refusals they give, and the `{branch}`
//! segment and `Idempotency-Key` header, each documented here once for the OpenAPI document.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use rail_actors::ids::BranchId;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Required;

use crate::admission::{Admission, Ask};
use crate::auth::{self, Tokens};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::idempotency;

pub(super) type ApiResult = Result<HttpResponse, ApiError>;

/// The refusals every operation under a branch can answer, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // never built: it only describes answers ApiError gives
pub(super) enum Refusals {
    #[response(
        status = 401,
        description = "No device token, or a bad one (`unauthenticated`, `invalid_token`), or one of a device a manager revoked (`token_revoked`).",
        headers(("WWW-Authenticate" = String, description = "`Bearer`"))
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "The token is of another branch (`wrong_branch`), or its role may not do this (`forbidden`)."
    )]
    Forbidden(ErrorBody),
    #[response(
        status = 503,
        description = "The journal is unavailable (`journal_unavailable`), this replica has too many commands in hand (`overloaded`; new orders are refused first), or the replica that writes the branch cannot be reached or the branch is changing hands (`owner_unavailable`, several replicas only): nothing was saved here, retry with the same idempotency key.",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`overloaded`, `owner_unavailable`)."))
    )]
    Unavailable(ErrorBody),
}

/// The `{branch}` segment of every path under the scope.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BranchPath {
    /// The branch: the token's own (`403 wrong_branch` otherwise).
    #[param(value_type = crate::wire::schema::BranchId)]
    pub(super) branch: String,
}

impl BranchPath {
    /// The branch named, or `404 unknown_branch`.
    pub fn id(&self) -> Result<BranchId, ApiError> {
        let raw = &self.branch;
        BranchId::parse(raw)
            .map_err(|_| ApiError::new(ErrorCode::UnknownBranch, format!("no branch '{raw}'")))
    }
}

/// The `Idempotency-Key` header a command may carry (read by `idempotency::from_request`).
pub struct IdempotencyKey;

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(idempotency::MAX_KEY))
            .pattern(Some(idempotency::KEY_PATTERN));
        vec![ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retry safe: the same key with the same request gets the first answer \
                 again, never a second change; with a different request, `422 \
                 idempotency_key_reused`. 1 to 128 visible ASCII characters, kept \
                 `idempotency_days` per branch.",
            ))
            .schema(Some(schema))
            .build()]
    }
}

/// A replica with too many commands in hand refuses more at once (`503 overloaded`), before
/// it spends anything on them; reads are never refused.
pub(super) async fn shed_load(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method();
    if method == Method::GET || method == Method::HEAD {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let ask = if method == Method::POST && req.path().ends_with("/orders") {
        Ask::NewOrder
    } else {
        Ask::Command
    };
    let admission = req
        .app_data::<web::Data<Admission>>()
        .expect("admission is configured")
        .clone();
    match Admission::admit(&admission, ask) {
        Ok(_admitted) => next.call(req).await.map(|r| r.map_into_left_body()),
        Err(refused) => {
            let response = actix_web::ResponseError::error_response(&refused);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// Every call under a branch needs a device of that branch: checked here, before routing
/// reaches a handler, so no handler can forget it and a foreign branch learns nothing.
pub(super) async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // A new device exchanging its pairing code has no token yet: the code is its credential.
    if req.method() == actix_web::http::Method::POST && req.path().ends_with("/pair") {
        return next.call(req).await;
    }
    let tokens = req
        .app_data::<web::Data<Tokens>>()
        .expect("tokens are configured")
        .clone();
    let device = auth::bearer(req.request())
        .and_then(|token| tokens.verify(token))
        .map_err(ApiError::from)?;
    device.same_branch(req.match_info().get("branch").unwrap_or_default())?;
    req.extensions_mut().insert(device);
    next.call(req).await
}
