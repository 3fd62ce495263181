//! The REST API under `/api/v1`: parse, ask the branch, answer. No kitchen rules live here.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use rail_actors::branch::{
    ChangeOrder, GetBranchInfo, GetOrder, OpenOrder, OpenOrders, SetEightySix, StationCommand,
    StationTickets,
};
use rail_actors::ids::{BranchId, ItemId, LineId, OrderId, StationId, TableId, TicketId};
use rail_actors::menu::BranchConfig;
use rail_actors::order::{NewLine, OrderCommand};
use rail_actors::station::TicketAction;
use rail_actors::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Act, Device, GuestOrdering, Role, TokenRequest, Tokens};
use crate::error::{json_error, ApiError};
use crate::idempotency;

type ApiResult = Result<HttpResponse, ApiError>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/branches/{branch}")
            .wrap(from_fn(authenticate))
            .route("", web::put().to(put_branch))
            .route("", web::get().to(get_branch))
            .route("/86/{item}", web::put().to(eighty_six))
            .route("/86/{item}", web::delete().to(restore_item))
            .route("/orders", web::post().to(open_order))
            .route("/orders", web::get().to(list_orders))
            .route("/orders/{order}", web::get().to(get_order))
            .route("/orders/{order}/lines", web::post().to(add_lines))
            .route(
                "/orders/{order}/lines/{line}/void",
                web::post().to(void_line),
            )
            .route("/orders/{order}/fire", web::post().to(fire))
            .route("/orders/{order}/serve", web::post().to(serve))
            .route("/orders/{order}/close", web::post().to(close))
            .route(
                "/stations/{station}/tickets",
                web::get().to(station_tickets),
            )
            .route(
                "/stations/{station}/tickets/{ticket}/{action}",
                web::post().to(ticket_action),
            )
            .route("/events", web::get().to(events))
            .route("/tokens", web::post().to(issue_token)),
    );
}

/// Every call under a branch needs a device of that branch: checked here, before routing
/// reaches a handler, so no handler can forget it and a foreign branch learns nothing.
async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
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

pub fn branch_id(raw: &str) -> Result<BranchId, ApiError> {
    BranchId::parse(raw)
        .map_err(|_| ApiError::not_found("unknown_branch", format!("no branch '{raw}'")))
}

fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(raw)
        .ok_or_else(|| ApiError::not_found("unknown_order", format!("no order '{raw}'")))
}

fn station_id(raw: &str) -> Result<StationId, ApiError> {
    StationId::parse(raw)
        .map_err(|_| ApiError::not_found("unknown_station", format!("no station '{raw}'")))
}

fn item_id(raw: &str) -> Result<ItemId, ApiError> {
    ItemId::parse(raw).map_err(|_| ApiError::not_found("unknown_item", format!("no item '{raw}'")))
}

/// Parses a JSON body; an empty body reads as the type's default.
fn body_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| json_error(actix_web::error::JsonPayloadError::Deserialize(e)))
}

async fn put_branch(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
    body: web::Json<BranchConfig>,
) -> ApiResult {
    device.require(Act::ConfigureBranch)?;
    let branch = BranchId::parse(path.into_inner()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            e.to_string(),
        )
    })?;
    let info = engine.configure(branch, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(info))
}

async fn get_branch(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
) -> ApiResult {
    device.require(Act::ReadBranch)?;
    let branch = branch_id(&path)?;
    Ok(HttpResponse::Ok().json(engine.ask(&branch, GetBranchInfo).await??))
}

async fn set_86(engine: &Engine, path: (String, String), out: bool) -> ApiResult {
    let branch = branch_id(&path.0)?;
    let item = item_id(&path.1)?;
    Ok(HttpResponse::Ok().json(engine.ask(&branch, SetEightySix { item, out }).await??))
}

async fn eighty_six(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    device.require(Act::EightySix)?;
    set_86(&engine, path.into_inner(), true).await
}

async fn restore_item(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    device.require(Act::EightySix)?;
    set_86(&engine, path.into_inner(), false).await
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct OpenOrderBody {
    table: TableId,
    #[serde(default)]
    guests: Option<u16>,
}

async fn open_order(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
    body: web::Json<OpenOrderBody>,
) -> ApiResult {
    device.require(Act::OpenOrder)?;
    let branch = branch_id(&path)?;
    let body = body.into_inner();
    let idempotency = idempotency::from_request(&req, &body)?;
    let order = engine
        .ask(
            &branch,
            OpenOrder {
                table: body.table,
                guests: body.guests,
                idempotency,
                span: tracing::Span::current(),
            },
        )
        .await??;
    Ok(HttpResponse::Created().json(order))
}

async fn list_orders(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
) -> ApiResult {
    device.require(Act::ListOrders)?;
    let branch = branch_id(&path)?;
    Ok(HttpResponse::Ok().json(engine.ask(&branch, OpenOrders).await??))
}

async fn get_order(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let branch = branch_id(&path.0)?;
    let order = engine.ask(&branch, GetOrder(order_id(&path.1)?)).await??;
    device.require(Act::ReadOrder(&order.table))?;
    Ok(HttpResponse::Ok().json(order))
}

async fn change(
    req: &HttpRequest,
    device: &Device,
    engine: &Engine,
    branch: &str,
    order: &str,
    command: OrderCommand,
) -> ApiResult {
    let branch = branch_id(branch)?;
    let order = order_id(order)?;
    if device.role() == Role::Guest && matches!(command, OrderCommand::AddLines { .. }) {
        // A guest's phone may add to its own table's order, and only so fast.
        let current = engine.ask(&branch, GetOrder(order)).await??;
        device.require(Act::AddLines(&current.table))?;
        let limiter = req
            .app_data::<web::Data<GuestOrdering>>()
            .expect("guest ordering limits are configured");
        limiter.check(&branch, &current.table)?;
    } else {
        device.require(Act::ChangeOrder)?;
    }
    let idempotency = idempotency::from_request(req, &command)?;
    let order = engine
        .ask(
            &branch,
            ChangeOrder {
                order,
                command,
                idempotency,
                span: tracing::Span::current(),
            },
        )
        .await??;
    Ok(HttpResponse::Ok().json(order))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLinesBody {
    lines: Vec<NewLine>,
}

async fn add_lines(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
    body: web::Json<AddLinesBody>,
) -> ApiResult {
    change(
        &req,
        &device,
        &engine,
        &path.0,
        &path.1,
        OrderCommand::AddLines {
            lines: body.into_inner().lines,
        },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VoidBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn void_line(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> ApiResult {
    let (branch, order, line) = path.into_inner();
    let line: LineId = line
        .parse()
        .map_err(|_| ApiError::not_found("unknown_line", format!("no line '{line}'")))?;
    let body: VoidBody = body_or_default(&body)?;
    change(
        &req,
        &device,
        &engine,
        &branch,
        &order,
        OrderCommand::VoidLine {
            line,
            reason: body.reason,
        },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FireBody {
    #[serde(default)]
    course: Option<u8>,
}

async fn fire(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult {
    let body: FireBody = body_or_default(&body)?;
    change(
        &req,
        &device,
        &engine,
        &path.0,
        &path.1,
        OrderCommand::Fire {
            course: body.course,
        },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServeBody {
    #[serde(default)]
    lines: Option<Vec<LineId>>,
}

async fn serve(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult {
    let body: ServeBody = body_or_default(&body)?;
    change(
        &req,
        &device,
        &engine,
        &path.0,
        &path.1,
        OrderCommand::Serve { lines: body.lines },
    )
    .await
}

async fn close(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    change(
        &req,
        &device,
        &engine,
        &path.0,
        &path.1,
        OrderCommand::Close,
    )
    .await
}

async fn station_tickets(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let branch = branch_id(&path.0)?;
    let station = station_id(&path.1)?;
    device.require(Act::ReadStation(&station))?;
    Ok(HttpResponse::Ok().json(engine.ask(&branch, StationTickets(station)).await??))
}

pub fn ticket_action_named(name: &str) -> Option<TicketAction> {
    match name {
        "start" => Some(TicketAction::Start),
        "bump" => Some(TicketAction::Bump),
        "recall" => Some(TicketAction::Recall),
        _ => None,
    }
}

async fn ticket_action(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String, String, String)>,
) -> ApiResult {
    let (branch, station, ticket, action) = path.into_inner();
    let branch = branch_id(&branch)?;
    let station = station_id(&station)?;
    device.require(Act::ActOnTicket(&station))?;
    let ticket = TicketId::parse(&ticket)
        .ok_or_else(|| ApiError::not_found("unknown_ticket", format!("no ticket '{ticket}'")))?;
    let action = ticket_action_named(&action).ok_or_else(|| {
        ApiError::not_found(
            "unknown_action",
            "a ticket can be started, bumped or recalled",
        )
    })?;
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
    Ok(HttpResponse::Ok().json(ticket))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

async fn events(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> ApiResult {
    device.require(Act::ReadJournal)?;
    let branch = branch_id(&path)?;
    engine.branch(&branch).await?;
    if query.limit == 0 || query.limit > 1000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "limit must be 1 to 1000",
        ));
    }
    let events = engine
        .journal()
        .read_branch(branch.as_str(), query.after, query.limit)
        .await
        .map_err(|_| ApiError::from(rail_actors::CommandError::JournalUnavailable))?;
    Ok(HttpResponse::Ok().json(events))
}

async fn issue_token(
    device: Device,
    tokens: web::Data<Tokens>,
    engine: web::Data<Engine>,
    path: web::Path<String>,
    body: web::Json<TokenRequest>,
) -> ApiResult {
    device.require(Act::IssueTokens)?;
    let branch = branch_id(&path)?;
    let request = body.into_inner();
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
