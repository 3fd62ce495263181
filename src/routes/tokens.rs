//! Device tokens a manager issues for the branch's tablets, kitchen screens and guests' phones.

use actix_web::{web, HttpResponse};
use rail_actors::branch::GetBranchInfo;
use rail_actors::Engine;

use super::scope::{ApiResult, BranchPath, Refusals};
use crate::auth::{Act, Device, IssuedToken, TokenRequest, Tokens};
use crate::body::ApiJson;
use crate::error::ErrorBody;

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
    let info = engine.ask(&branch, GetBranchInfo).await??;
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
    let issued = tokens.issue(&branch, &request)?;
    tracing::info!(
        issued_by = %device.claims.sub,
        device = %issued.device,
        role = issued.role.as_str(),
        "device token issued"
    );
    Ok(HttpResponse::Created().json(issued))
}
