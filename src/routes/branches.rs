//! The branch itself: its configuration (menu, stations, tables) and its 86 list.

use actix_web::{web, HttpResponse};
use rail_actors::branch::{BranchInfo, GetBranchInfo, SetEightySix, SetItemCount};
use rail_actors::ids::{BranchId, ItemId};
use rail_actors::Engine;
use serde::Deserialize;

use super::scope::{ApiResult, BranchPath, Refusals};
use crate::auth::{Act, Device};
use crate::body::ApiJson;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::wire;

/// The `{item}` segment of an 86 path.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ItemPath {
    /// A menu item of the branch.
    #[param(value_type = wire::schema::ItemId)]
    item: String,
}

impl ItemPath {
    /// The item named, or `404 unknown_item`.
    pub fn id(&self) -> Result<ItemId, ApiError> {
        let raw = &self.item;
        ItemId::parse(raw)
            .map_err(|_| ApiError::new(ErrorCode::UnknownItem, format!("no item '{raw}'")))
    }
}

#[utoipa::path(
    put,
    path = "/api/v1/branches/{branch}",
    operation_id = "configure_branch",
    tag = "branch",
    summary = "Configure the branch",
    params(BranchPath),
    request_body = wire::BranchConfig,
    responses(
        (status = 200, description = "The branch as configured.", body = wire::BranchInfo),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The configuration is not valid (`invalid_input`): wrong types, unknown fields, no or two expo stations, a route to an unknown or expo station, ...", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn put_branch(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    body: ApiJson<wire::BranchConfig>,
) -> ApiResult {
    device.require(Act::ConfigureBranch)?;
    let branch = BranchId::parse(branch.into_inner().branch)
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
    let info = engine.configure(branch, body.0.into()).await?;
    Ok(answer(&info))
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}",
    operation_id = "get_branch",
    tag = "branch",
    summary = "The branch: its configuration, 86 list and latest position",
    params(BranchPath),
    responses(
        (status = 200, description = "The branch.", body = wire::BranchInfo),
        Refusals,
        (status = 404, description = "The branch is not configured (`unknown_branch`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_branch(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
) -> ApiResult {
    device.require(Act::ReadBranch)?;
    let branch = branch.id()?;
    Ok(answer(&engine.ask(&branch, GetBranchInfo).await??))
}

async fn set_86(engine: &Engine, branch: &BranchPath, item: &ItemPath, out: bool) -> ApiResult {
    let branch = branch.id()?;
    let item = item.id()?;
    Ok(answer(
        &engine.ask(&branch, SetEightySix { item, out }).await??,
    ))
}

#[utoipa::path(
    put,
    path = "/api/v1/branches/{branch}/86/{item}",
    operation_id = "eighty_six_item",
    tag = "branch",
    summary = "86 an item: mark it out of stock",
    params(BranchPath, ItemPath),
    responses(
        (status = 200, description = "The branch, the item in its 86 list.", body = wire::BranchInfo),
        Refusals,
        (status = 404, description = "No such branch or item (`unknown_branch`, `unknown_item`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn eighty_six(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    item: web::Path<ItemPath>,
) -> ApiResult {
    device.require(Act::EightySix)?;
    set_86(&engine, &branch, &item, true).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/branches/{branch}/86/{item}",
    operation_id = "restore_item",
    tag = "branch",
    summary = "Put an 86'd item back in stock",
    params(BranchPath, ItemPath),
    responses(
        (status = 200, description = "The branch, the item off its 86 list.", body = wire::BranchInfo),
        Refusals,
        (status = 404, description = "No such branch or item (`unknown_branch`, `unknown_item`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn restore_item(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    item: web::Path<ItemPath>,
) -> ApiResult {
    device.require(Act::EightySix)?;
    set_86(&engine, &branch, &item, false).await
}

/// An item's limited count.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountBody {
    /// Portions left: each line that takes the item reserves its quantity, a void gives it
    /// back, and at 0 the item is sold out (`409 item_sold_out`).
    #[schema(minimum = 0, maximum = 99999)]
    count: u32,
}

#[utoipa::path(
    put,
    path = "/api/v1/branches/{branch}/stock/{item}",
    operation_id = "set_item_count",
    tag = "branch",
    summary = "Give an item a limited count (\"12 left\")",
    description = "From now on, lines that take the item reserve from the count (a line that would take more than is left is refused with `item_sold_out`, and nothing else of its request is added), voids give back, and every change of what is left is sent to every screen of the branch as a `stock` frame. Setting it again replaces what is left.",
    params(BranchPath, ItemPath),
    request_body = CountBody,
    responses(
        (status = 200, description = "The branch, with what is left of the item in its `stock`.", body = wire::BranchInfo),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch or item (`unknown_branch`, `unknown_item`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The count is not 0 to 99999 (`invalid_input`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_item_count(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    item: web::Path<ItemPath>,
    body: ApiJson<CountBody>,
) -> ApiResult {
    device.require(Act::EightySix)?;
    let branch = branch.id()?;
    let item = item.id()?;
    let count = Some(body.0.count);
    Ok(answer(
        &engine.ask(&branch, SetItemCount { item, count }).await??,
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/branches/{branch}/stock/{item}",
    operation_id = "lift_item_count",
    tag = "branch",
    summary = "Lift an item's limited count",
    params(BranchPath, ItemPath),
    responses(
        (status = 200, description = "The branch, the item no longer in its `stock`.", body = wire::BranchInfo),
        Refusals,
        (status = 404, description = "No such branch or item (`unknown_branch`, `unknown_item`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn lift_item_count(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    item: web::Path<ItemPath>,
) -> ApiResult {
    device.require(Act::EightySix)?;
    let branch = branch.id()?;
    let item = item.id()?;
    let lift = SetItemCount { item, count: None };
    Ok(answer(&engine.ask(&branch, lift).await??))
}

/// The branch as its answers carry it.
fn answer(info: &BranchInfo) -> HttpResponse {
    HttpResponse::Ok().json(wire::BranchInfo::from(info))
}
