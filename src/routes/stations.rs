//! What a kitchen display shows and does: a station's live tickets, and a cook's start, bump
//! or recall of one.

use actix_web::{web, HttpRequest, HttpResponse};
use rail_actors::branch::{
    StationAllDay, StationBumped, StationCommand, StationSpeed, StationTickets,
};
use rail_actors::ids::{StationId, TicketId};
use rail_actors::station::TicketAction;
use rail_actors::Engine;
use serde::Deserialize;

use super::scope::{ApiResult, BranchPath, IdempotencyKey, Refusals};
use crate::auth::{Act, Device};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::idempotency;
use crate::wire;

/// What a cook does to a ticket (the last segment of a ticket action's path).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TicketActionName {
    /// A new ticket is being cooked (cooking stations only).
    Start,
    /// Done: a cooking part is finished, or expo sends the fire.
    Bump,
    /// Back on the screen.
    Recall,
}

/// The `{station}` segment of a station's paths.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StationPath {
    /// A station of the branch.
    #[param(value_type = wire::schema::StationId)]
    station: String,
}

impl StationPath {
    /// The station named, or `404 unknown_station`.
    pub fn id(&self) -> Result<StationId, ApiError> {
        let raw = &self.station;
        StationId::parse(raw)
            .map_err(|_| ApiError::new(ErrorCode::UnknownStation, format!("no station '{raw}'")))
    }
}

/// The `{ticket}/{action}` segments of a ticket action's path.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TicketActionPath {
    /// A live ticket of the station.
    #[param(value_type = wire::schema::TicketId)]
    ticket: String,
    /// What the cook does: start, bump or recall.
    #[param(value_type = TicketActionName)]
    action: String,
}

impl TicketActionPath {
    /// The ticket named, or `404 unknown_ticket`.
    fn ticket(&self) -> Result<TicketId, ApiError> {
        let raw = &self.ticket;
        TicketId::parse(raw)
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownTicket, format!("no ticket '{raw}'")))
    }

    /// The action named, or `404 unknown_action`.
    fn action(&self) -> Result<TicketAction, ApiError> {
        ticket_action_named(&self.action).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownAction,
                "a ticket can be started, bumped or recalled",
            )
        })
    }
}

/// The action a path's last segment names.
pub fn ticket_action_named(name: &str) -> Option<TicketAction> {
    match name {
        "start" => Some(TicketAction::Start),
        "bump" => Some(TicketAction::Bump),
        "recall" => Some(TicketAction::Recall),
        _ => None,
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/stations/{station}/tickets",
    operation_id = "station_tickets",
    tag = "stations",
    summary = "A station's live tickets, rushes first, then oldest first",
    params(BranchPath, StationPath),
    responses(
        (status = 200, description = "The station's live tickets.", body = Vec<wire::Ticket>),
        Refusals,
        (status = 404, description = "No such branch or station (`unknown_branch`, `unknown_station`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn station_tickets(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    station: web::Path<StationPath>,
) -> ApiResult {
    let branch = branch.id()?;
    let station = station.id()?;
    device.require(Act::ReadStation(&station))?;
    let tickets = engine.ask(&branch, StationTickets(station)).await??;
    Ok(HttpResponse::Ok().json(wire::order::tickets(&tickets)))
}

/// How far back a recall list looks.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BumpedQuery {
    /// Minutes to look back, 1 to 240; 30 when not given.
    #[param(minimum = 1, maximum = 240)]
    #[serde(default = "half_an_hour")]
    minutes: u32,
}

fn half_an_hour() -> u32 {
    30
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/stations/{station}/bumped",
    operation_id = "station_bumped",
    tag = "stations",
    summary = "A station's recall list: its tickets bumped lately, the latest first",
    description = "Tickets the station bumped within the last `minutes` whose orders are still open, so each can be recalled (`POST .../tickets/{ticket}/recall`).",
    params(BranchPath, StationPath, BumpedQuery),
    responses(
        (status = 200, description = "The bumped tickets, the latest bumped first.", body = Vec<wire::Ticket>),
        Refusals,
        (status = 404, description = "No such branch or station (`unknown_branch`, `unknown_station`).", body = ErrorBody),
        (status = 422, description = "`minutes` is not a whole number from 1 to 240 (`invalid_input`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn station_bumped(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    station: web::Path<StationPath>,
    query: web::Query<BumpedQuery>,
) -> ApiResult {
    let branch = branch.id()?;
    let station = station.id()?;
    device.require(Act::ReadStation(&station))?;
    if !(1..=240).contains(&query.minutes) {
        let msg = "minutes must be 1 to 240";
        return Err(ApiError::new(ErrorCode::InvalidInput, msg));
    }
    let within = std::time::Duration::from_secs(u64::from(query.minutes) * 60);
    let tickets = engine
        .ask(&branch, StationBumped { station, within })
        .await??;
    Ok(HttpResponse::Ok().json(wire::order::tickets(&tickets)))
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/stations/{station}/all-day",
    operation_id = "station_all_day",
    tag = "stations",
    summary = "A station's all-day: every item on its live tickets",
    description = "Counts of every fired, not yet bumped item at the station (voided lines left out), most portions first. Screens following the station get the same as an `all_day` frame whenever it changes.",
    params(BranchPath, StationPath),
    responses(
        (status = 200, description = "The station's all-day.", body = wire::kitchen::AllDay),
        Refusals,
        (status = 404, description = "No such branch or station (`unknown_branch`, `unknown_station`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn station_all_day(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    station: web::Path<StationPath>,
) -> ApiResult {
    let branch = branch.id()?;
    let station = station.id()?;
    device.require(Act::ReadStation(&station))?;
    let items = engine
        .ask(&branch, StationAllDay(station.clone()))
        .await??;
    Ok(HttpResponse::Ok().json(wire::kitchen::AllDay::new(&station, &items)))
}

/// The window speed of service looks back over.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SpeedQuery {
    /// Minutes to look back, 1 to 1440 (a day); 60 when not given.
    #[param(minimum = 1, maximum = 1440)]
    #[serde(default = "an_hour")]
    window_minutes: u32,
}

fn an_hour() -> u32 {
    60
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/stations/{station}/speed",
    operation_id = "station_speed",
    tag = "stations",
    summary = "A station's speed of service, overall and per item",
    description = "Over the window: tickets bumped, mean and 90th-percentile seconds from fire to bump, how many were late (the branch's `late_after_seconds`) and how many were recalled, for the station and for each item on its tickets. Kept in memory for the last day: a restart starts counting again.",
    params(BranchPath, StationPath, SpeedQuery),
    responses(
        (status = 200, description = "The station's speed of service.", body = wire::kitchen::Speed),
        Refusals,
        (status = 404, description = "No such branch or station (`unknown_branch`, `unknown_station`).", body = ErrorBody),
        (status = 422, description = "The window is not a whole number of minutes from 1 to 1440 (`invalid_input`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn station_speed(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    station: web::Path<StationPath>,
    query: web::Query<SpeedQuery>,
) -> ApiResult {
    let branch = branch.id()?;
    let station = station.id()?;
    device.require(Act::ReadStation(&station))?;
    let minutes = query.window_minutes;
    if !(1..=1440).contains(&minutes) {
        let msg = "window_minutes must be 1 to 1440";
        return Err(ApiError::new(ErrorCode::InvalidInput, msg));
    }
    let window = std::time::Duration::from_secs(u64::from(minutes) * 60);
    let ask = StationSpeed {
        station: station.clone(),
        window,
    };
    let speed = engine.ask(&branch, ask).await??;
    Ok(HttpResponse::Ok().json(wire::kitchen::Speed::new(&station, &speed)))
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/stations/{station}/tickets/{ticket}/{action}",
    operation_id = "ticket_action",
    tag = "stations",
    summary = "Start, bump or recall a ticket, as a cook does on the kitchen display",
    params(BranchPath, StationPath, TicketActionPath, IdempotencyKey),
    responses(
        (status = 200, description = "The ticket as the action left it.", body = wire::Ticket, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/order_id")))),
            ("ActAgain" = (operation_id = "ticket_action", parameters(("branch" = "$request.path.branch"), ("station" = "$response.body#/station"), ("ticket" = "$response.body#/id")))),
        )),
        Refusals,
        (status = 404, description = "No such branch, station, live ticket or action (`unknown_branch`, `unknown_station`, `unknown_ticket`, `unknown_action`).", body = ErrorBody),
        (status = 409, description = "The action does not apply to it now (`invalid_transition`), expo waits for cooking parts (`parts_pending`), or the order was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 422, description = "The key is not valid (`invalid_input`), or was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn ticket_action(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    station: web::Path<StationPath>,
    act: web::Path<TicketActionPath>,
) -> ApiResult {
    let branch = branch.id()?;
    let station = station.id()?;
    device.require(Act::ActOnTicket(&station))?;
    let ticket = act.ticket()?;
    let action = act.action()?;
    let idempotency = idempotency::from_request(&req, &())?;
    let ticket = engine
        .ask(
            &branch,
            StationCommand {
                station,
                ticket,
                action,
                idempotency,
                span: tracing::Span::current(),
            },
        )
        .await??;
    Ok(HttpResponse::Ok().json(wire::Ticket::from(&ticket)))
}
