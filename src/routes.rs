//! The REST API under `/api/v1`: parse, ask the branch, answer. No kitchen rules live here.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use rail_actors::branch::{
    BranchInfo, ChangeOrder, GetBranchInfo, GetOrder, OpenOrder, OpenOrders, SetEightySix,
    StationCommand, StationTickets,
};
use rail_actors::ids::{BranchId, ItemId, LineId, OrderId, StationId, TableId, TicketId};
use rail_actors::journal::StoredEvent;
use rail_actors::menu::BranchConfig;
use rail_actors::order::{NewLine, Order, OrderCommand, Ticket};
use rail_actors::station::TicketAction;
use rail_actors::Engine;
use serde::{Deserialize, Serialize};

use crate::admission::{Admission, Ask};
use crate::auth::{self, Act, Device, GuestOrdering, IssuedToken, Role, TokenRequest, Tokens};
use crate::body::{ApiJson, OptionalJson};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency;
use crate::openapi::TicketActionName;

type ApiResult = Result<HttpResponse, ApiError>;

/// The refusals every operation under a branch can answer, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // never built: it only describes answers ApiError gives
enum Refusals {
    #[response(
        status = 401,
        description = "No device token, or a bad one (`unauthenticated`, `invalid_token`).",
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
        description = "The journal is unavailable (`journal_unavailable`), or this replica has too many commands in hand (`overloaded`; new orders are refused first): nothing was saved, retry.",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`overloaded`)."))
    )]
    Unavailable(ErrorBody),
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/branches/{branch}")
            .wrap(from_fn(authenticate))
            .wrap(from_fn(shed_load))
            .service(
                resource("", "GET, PUT")
                    .route(web::put().to(put_branch))
                    .route(web::get().to(get_branch)),
            )
            .service(
                resource("/86/{item}", "PUT, DELETE")
                    .route(web::put().to(eighty_six))
                    .route(web::delete().to(restore_item)),
            )
            .service(
                resource("/orders", "GET, POST")
                    .route(web::post().to(open_order))
                    .route(web::get().to(list_orders)),
            )
            .service(resource("/orders/{order}", "GET").route(web::get().to(get_order)))
            .service(resource("/orders/{order}/lines", "POST").route(web::post().to(add_lines)))
            .service(
                resource("/orders/{order}/lines/{line}/void", "POST")
                    .route(web::post().to(void_line)),
            )
            .service(resource("/orders/{order}/fire", "POST").route(web::post().to(fire)))
            .service(resource("/orders/{order}/serve", "POST").route(web::post().to(serve)))
            .service(resource("/orders/{order}/close", "POST").route(web::post().to(close)))
            .service(
                resource("/stations/{station}/tickets", "GET")
                    .route(web::get().to(station_tickets)),
            )
            .service(
                resource("/stations/{station}/tickets/{ticket}/{action}", "POST")
                    .route(web::post().to(ticket_action)),
            )
            .service(resource("/events", "GET").route(web::get().to(events)))
            .service(resource("/tokens", "POST").route(web::post().to(issue_token))),
    );
}

/// A resource that answers a method it does not take with `405 method_not_allowed` and the
/// methods it does take in `Allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allow))
            .json(ErrorBody::new(
                "method_not_allowed",
                format!("this endpoint takes {allow}"),
            ))
    }))
}

/// A replica with too many commands in hand refuses more at once (`503 overloaded`), before
/// it spends anything on them; reads are never refused.
async fn shed_load(
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

#[utoipa::path(
    put,
    path = "/api/v1/branches/{branch}",
    operation_id = "configure_branch",
    tag = "branch",
    summary = "Configure the branch",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
    ),
    request_body = BranchConfig,
    responses(
        (status = 200, description = "The branch as configured.", body = BranchInfo),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The configuration is not valid (`invalid_input`): wrong types, unknown fields, no or two expo stations, a route to an unknown or expo station, ...", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn put_branch(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
    body: ApiJson<BranchConfig>,
) -> ApiResult {
    device.require(Act::ConfigureBranch)?;
    let branch = BranchId::parse(path.into_inner()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            e.to_string(),
        )
    })?;
    let info = engine.configure(branch, body.0).await?;
    Ok(HttpResponse::Ok().json(info))
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}",
    operation_id = "get_branch",
    tag = "branch",
    summary = "The branch: its configuration, 86 list and latest position",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
    ),
    responses(
        (status = 200, description = "The branch.", body = BranchInfo),
        Refusals,
        (status = 404, description = "The branch is not configured (`unknown_branch`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    put,
    path = "/api/v1/branches/{branch}/86/{item}",
    operation_id = "eighty_six_item",
    tag = "branch",
    summary = "86 an item: mark it out of stock",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("item" = ItemId, Path, description = "A menu item of the branch."),
    ),
    responses(
        (status = 200, description = "The branch, the item in its 86 list.", body = BranchInfo),
        Refusals,
        (status = 404, description = "No such branch or item (`unknown_branch`, `unknown_item`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn eighty_six(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    device.require(Act::EightySix)?;
    set_86(&engine, path.into_inner(), true).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/branches/{branch}/86/{item}",
    operation_id = "restore_item",
    tag = "branch",
    summary = "Put an 86'd item back in stock",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("item" = ItemId, Path, description = "A menu item of the branch."),
    ),
    responses(
        (status = 200, description = "The branch, the item off its 86 list.", body = BranchInfo),
        Refusals,
        (status = 404, description = "No such branch or item (`unknown_branch`, `unknown_item`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn restore_item(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    device.require(Act::EightySix)?;
    set_86(&engine, path.into_inner(), false).await
}

/// An order to open.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOrderBody {
    /// The table the order is for.
    table: TableId,
    /// How many guests sit at it.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    guests: Option<u16>,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders",
    operation_id = "open_order",
    tag = "orders",
    summary = "Open an order at a table",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key with the same request gets the first answer again, never a second change; with a different request, `422 idempotency_key_reused`. 1 to 128 visible ASCII characters, kept `idempotency_days` per branch."),
    ),
    request_body = OpenOrderBody,
    responses(
        (status = 201, description = "The new order, with the day's next ticket number (or, for a repeated `Idempotency-Key`, the order it opened).", body = Order, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("AddLines" = (operation_id = "add_lines", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("Fire" = (operation_id = "fire", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("Serve" = (operation_id = "serve", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("Close" = (operation_id = "close_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
        )),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch or table (`unknown_branch`, `unknown_table`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn open_order(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
    body: ApiJson<OpenOrderBody>,
) -> ApiResult {
    device.require(Act::OpenOrder)?;
    let branch = branch_id(&path)?;
    let body = body.0;
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

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/orders",
    operation_id = "list_orders",
    tag = "orders",
    summary = "Every open order",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
    ),
    responses(
        (status = 200, description = "The open orders, oldest first.", body = Vec<Order>),
        Refusals,
        (status = 404, description = "The branch is not configured (`unknown_branch`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn list_orders(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
) -> ApiResult {
    device.require(Act::ListOrders)?;
    let branch = branch_id(&path)?;
    Ok(HttpResponse::Ok().json(engine.ask(&branch, OpenOrders).await??))
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/orders/{order}",
    operation_id = "get_order",
    tag = "orders",
    summary = "One order, open or closed",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("order" = OrderId, Path, description = "An order of the branch."),
    ),
    responses(
        (status = 200, description = "The order.", body = Order),
        Refusals,
        (status = 404, description = "No such branch or order (`unknown_branch`, `unknown_order`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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

/// Lines to add, held until fired: all are added or none.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLinesBody {
    /// 1 to 100 lines (an order holds at most 500).
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<NewLine>,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/lines",
    operation_id = "add_lines",
    tag = "orders",
    summary = "Add held lines to an order (all or none)",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("order" = OrderId, Path, description = "An order of the branch."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key with the same request gets the first answer again, never a second change; with a different request, `422 idempotency_key_reused`. 1 to 128 visible ASCII characters, kept `idempotency_days` per branch."),
    ),
    request_body = AddLinesBody,
    responses(
        (status = 200, description = "The order with its new lines.", body = Order, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("Fire" = (operation_id = "fire", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("VoidFirstLine" = (operation_id = "void_line", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id"), ("line" = "$response.body#/lines/0/id")))),
        )),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, order or item (`unknown_branch`, `unknown_order`, `unknown_item`).", body = ErrorBody),
        (status = 409, description = "An item is 86'd (`item_86`), or the order is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
        (status = 429, description = "A guest's table is ordering too fast (`rate_limited`): wait a minute.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn add_lines(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
    body: ApiJson<AddLinesBody>,
) -> ApiResult {
    change(
        &req,
        &device,
        &engine,
        &path.0,
        &path.1,
        OrderCommand::AddLines {
            lines: body.0.lines,
        },
    )
    .await
}

/// Why a line is voided.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidBody {
    /// Shown to the kitchen: 1 to 200 characters, not blank, no control characters.
    #[serde(default)]
    #[schema(schema_with = reason_schema)]
    reason: Option<String>,
}

fn reason_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    rail_actors::openapi::optional_text(rail_actors::order::MAX_TEXT)
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/lines/{line}/void",
    operation_id = "void_line",
    tag = "orders",
    summary = "Void a line; the kitchen sees it",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("order" = OrderId, Path, description = "An order of the branch."),
        ("line" = u32, Path, description = "A line's number within its order (1, 2, 3, ...)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key with the same request gets the first answer again, never a second change; with a different request, `422 idempotency_key_reused`. 1 to 128 visible ASCII characters, kept `idempotency_days` per branch."),
    ),
    request_body(content = Option<VoidBody>, description = "Why the line is voided; the body may be left empty.", content_type = "application/json"),
    responses(
        (status = 200, description = "The order, the line voided.", body = Order),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, order or line (`unknown_branch`, `unknown_order`, `unknown_line`).", body = ErrorBody),
        (status = 409, description = "The line cannot be voided now (`invalid_transition`), or the order is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn void_line(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String, String)>,
    body: OptionalJson<VoidBody>,
) -> ApiResult {
    let (branch, order, line) = path.into_inner();
    let line: LineId = line
        .parse()
        .map_err(|_| ApiError::not_found("unknown_line", format!("no line '{line}'")))?;
    let body = body.0;
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

/// What to fire.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FireBody {
    /// Fire this course's held lines; without it, every held line.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 9)]
    course: Option<u8>,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/fire",
    operation_id = "fire",
    tag = "orders",
    summary = "Fire one course's held lines, or all held lines",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("order" = OrderId, Path, description = "An order of the branch."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key with the same request gets the first answer again, never a second change; with a different request, `422 idempotency_key_reused`. 1 to 128 visible ASCII characters, kept `idempotency_days` per branch."),
    ),
    request_body(content = Option<FireBody>, description = "The course to fire; an empty body fires every held line.", content_type = "application/json"),
    responses(
        (status = 200, description = "The order with the tickets this fire made.", body = Order, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("FirstTicketsStation" = (operation_id = "station_tickets", parameters(("branch" = "$request.path.branch"), ("station" = "$response.body#/tickets/0/station")))),
            ("ActOnFirstTicket" = (operation_id = "ticket_action", parameters(("branch" = "$request.path.branch"), ("station" = "$response.body#/tickets/0/station"), ("ticket" = "$response.body#/tickets/0/id")))),
            ("Serve" = (operation_id = "serve", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
        )),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch or order (`unknown_branch`, `unknown_order`).", body = ErrorBody),
        (status = 409, description = "Nothing held to fire (`nothing_to_fire`), an item is 86'd (`item_86`), or the order is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn fire(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
    body: OptionalJson<FireBody>,
) -> ApiResult {
    let body = body.0;
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

/// What to serve.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeBody {
    /// The ready lines to serve; without them, every ready line.
    #[serde(default)]
    #[schema(value_type = Option<Vec<u32>>)]
    lines: Option<Vec<LineId>>,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/serve",
    operation_id = "serve",
    tag = "orders",
    summary = "Mark ready lines served",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("order" = OrderId, Path, description = "An order of the branch."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key with the same request gets the first answer again, never a second change; with a different request, `422 idempotency_key_reused`. 1 to 128 visible ASCII characters, kept `idempotency_days` per branch."),
    ),
    request_body(content = Option<ServeBody>, description = "The lines to serve; an empty body serves every ready line.", content_type = "application/json"),
    responses(
        (status = 200, description = "The order, the lines served.", body = Order),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, order or line (`unknown_branch`, `unknown_order`, `unknown_line`).", body = ErrorBody),
        (status = 409, description = "Nothing ready to serve (`nothing_to_serve`), a line is not ready (`invalid_transition`), or the order is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn serve(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<(String, String)>,
    body: OptionalJson<ServeBody>,
) -> ApiResult {
    let body = body.0;
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

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/close",
    operation_id = "close_order",
    tag = "orders",
    summary = "Close the check once every line is served or voided",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("order" = OrderId, Path, description = "An order of the branch."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key with the same request gets the first answer again, never a second change; with a different request, `422 idempotency_key_reused`. 1 to 128 visible ASCII characters, kept `idempotency_days` per branch."),
    ),
    responses(
        (status = 200, description = "The closed order.", body = Order),
        Refusals,
        (status = 404, description = "No such branch or order (`unknown_branch`, `unknown_order`).", body = ErrorBody),
        (status = 409, description = "Lines are still in the kitchen or not served (`order_not_finished`), the order is already closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 422, description = "The key is not valid (`invalid_input`), or was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/stations/{station}/tickets",
    operation_id = "station_tickets",
    tag = "stations",
    summary = "A station's live tickets, oldest first",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("station" = StationId, Path, description = "A station of the branch."),
    ),
    responses(
        (status = 200, description = "The station's live tickets.", body = Vec<Ticket>),
        Refusals,
        (status = 404, description = "No such branch or station (`unknown_branch`, `unknown_station`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/stations/{station}/tickets/{ticket}/{action}",
    operation_id = "ticket_action",
    tag = "stations",
    summary = "Start, bump or recall a ticket, as a cook does on the kitchen display",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        ("station" = StationId, Path, description = "A station of the branch."),
        ("ticket" = TicketId, Path, description = "A live ticket of the station."),
        ("action" = TicketActionName, Path, description = "What the cook does: start, bump or recall."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key with the same request gets the first answer again, never a second change; with a different request, `422 idempotency_key_reused`. 1 to 128 visible ASCII characters, kept `idempotency_days` per branch."),
    ),
    responses(
        (status = 200, description = "The ticket as the action left it.", body = Ticket, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/order_id")))),
            ("ActAgain" = (operation_id = "ticket_action", parameters(("branch" = "$request.path.branch"), ("station" = "$response.body#/station"), ("ticket" = "$response.body#/id")))),
        )),
        Refusals,
        (status = 404, description = "No such branch, station, live ticket or action (`unknown_branch`, `unknown_station`, `unknown_ticket`, `unknown_action`).", body = ErrorBody),
        (status = 409, description = "The ticket is another station's (`wrong_station`), the action does not apply to it now (`invalid_transition`), expo waits for cooking parts (`parts_pending`), or the order was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 422, description = "The key is not valid (`invalid_input`), or was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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

/// Which page of the journal to read.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Read the events after this position (0: from the first).
    #[serde(default)]
    after: u64,
    /// At most this many events: 1 to 1000.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/events",
    operation_id = "events",
    tag = "journal",
    summary = "The branch's journal, by position (managers)",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "The events after `after`, at most `limit`, by position.", body = Vec<StoredEvent>),
        Refusals,
        (status = 404, description = "The branch is not configured (`unknown_branch`).", body = ErrorBody),
        (status = 422, description = "`after` or `limit` is not valid (`invalid_input`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn events(
    device: Device,
    engine: web::Data<Engine>,
    path: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> ApiResult {
    device.require(Act::ReadJournal)?;
    let branch = branch_id(&path)?;
    engine.branch(&branch)?;
    if query.limit == 0 || query.limit > 1000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "limit must be 1 to 1000",
        ));
    }
    // Positions are stored as signed 64-bit integers.
    if i64::try_from(query.after).is_err() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            format!("after must be 0 to {}", i64::MAX),
        ));
    }
    let events = engine
        .journal()
        .read_branch(branch.as_str(), query.after, query.limit)
        .await
        .map_err(|_| ApiError::from(rail_actors::CommandError::JournalUnavailable))?;
    // Served as the domain reads them (every storage format upcast), never as stored.
    let events = events
        .into_iter()
        .map(|mut stored| {
            let event = rail_actors::stored::decode(&stored).map_err(|e| {
                tracing::error!(error = %e, "journal event this build cannot read");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "journal_unreadable",
                    "the journal holds an event this version cannot read",
                )
            })?;
            stored.body = serde_json::to_value(&*event).expect("events serialize");
            Ok(stored)
        })
        .collect::<Result<Vec<StoredEvent>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(events))
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/tokens",
    operation_id = "issue_token",
    tag = "devices",
    summary = "Issue a device token (managers)",
    params(
        ("branch" = BranchId, Path, description = "The branch: the token's own (`403 wrong_branch` otherwise)."),
    ),
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
async fn issue_token(
    device: Device,
    tokens: web::Data<Tokens>,
    engine: web::Data<Engine>,
    path: web::Path<String>,
    body: ApiJson<TokenRequest>,
) -> ApiResult {
    device.require(Act::IssueTokens)?;
    let branch = branch_id(&path)?;
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
