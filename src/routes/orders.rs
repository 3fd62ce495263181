//! Orders at a table: open, read, add lines, void, fire, serve and close. Every change after
//! the open goes through `change`, which decides who may make it.

use actix_web::{web, HttpRequest, HttpResponse};
use rail_actors::branch::{ChangeOrder, GetOrder, MergeOrders, OpenOrder, OpenOrders};
use rail_actors::ids::{LineId, OrderId, TableId};
use rail_actors::order::OrderCommand;
use rail_actors::Engine;
use serde::{Deserialize, Serialize};

use super::scope::{ApiResult, BranchPath, IdempotencyKey, Refusals};
use crate::auth::{Act, Device, GuestOrdering, Role};
use crate::body::{ApiJson, OptionalJson};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::idempotency;
use crate::wire;

/// The `{order}` segment of an order's paths.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrderPath {
    /// An order of the branch.
    #[param(value_type = wire::schema::OrderId)]
    order: String,
}

impl OrderPath {
    /// The order named, or `404 unknown_order`.
    pub fn id(&self) -> Result<OrderId, ApiError> {
        let raw = &self.order;
        OrderId::parse(raw)
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownOrder, format!("no order '{raw}'")))
    }
}

/// The `{line}` segment of a void's path.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct LinePath {
    /// A line's number within its order (1, 2, 3, ...).
    #[param(value_type = u32)]
    line: String,
}

impl LinePath {
    /// The line named, or `404 unknown_line`.
    pub fn id(&self) -> Result<LineId, ApiError> {
        let raw = &self.line;
        raw.parse()
            .map_err(|_| ApiError::new(ErrorCode::UnknownLine, format!("no line '{raw}'")))
    }
}

/// An order to open: at a table, or complete in one call (its lines, and `fire` to send them
/// to the kitchen), as a POS terminal or a delivery platform sends it. All of it is done, in
/// one journal append, or none of it.
///
/// Fields left out are left out of the request's idempotency digest too, so a key sent before
/// these fields existed still answers.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOrderBody {
    /// The table the order is for.
    #[schema(value_type = wire::schema::TableId)]
    table: TableId,
    /// How many guests sit at it.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    guests: Option<u16>,
    /// Where the order comes from; by default the table's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<wire::OrderSource>,
    /// Another system's id of the order (a delivery platform's): 1 to 64 visible ASCII
    /// characters, unique per branch a local day. An open naming a reference the branch has
    /// taken today answers with that order (as its open left it) and opens nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~]{1,64}$")]
    external_ref: Option<String>,
    /// A rush: its tickets come first on every screen.
    #[serde(default, skip_serializing_if = "is_false")]
    priority: bool,
    /// Lines to add at once (0 to 100), held unless `fire` is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 100)]
    lines: Vec<wire::NewLine>,
    /// Fire the lines at once: every one, or one course's (`{}` fires all). Without `lines`
    /// there is nothing to fire (`409 nothing_to_fire`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fire: Option<FireBody>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A guest's phone opens an order only to send its lines to the kitchen at once (its QR
/// menu's cart), and cannot rush it or name an outside reference.
fn guest_may_open(body: &OpenOrderBody) -> Result<(), ApiError> {
    let sends_all = body
        .fire
        .as_ref()
        .is_some_and(|f| f.course.is_none() && !f.priority);
    if body.lines.is_empty() || !sends_all || body.priority || body.external_ref.is_some() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a guest's phone opens an order with its lines and \"fire\": {} in one call, \
             without priority or external_ref",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders",
    operation_id = "open_order",
    tag = "orders",
    summary = "Open an order at a table",
    params(BranchPath, IdempotencyKey),
    request_body = OpenOrderBody,
    responses(
        (status = 201, description = "The new order, with the day's next ticket number and the tickets its fire made (or, for a repeated `Idempotency-Key` or `external_ref`, the order it opened, as its open left it).", body = wire::Order, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("AddLines" = (operation_id = "add_lines", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("Fire" = (operation_id = "fire", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("Serve" = (operation_id = "serve", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("Close" = (operation_id = "close_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
        )),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, table or item (`unknown_branch`, `unknown_table`, `unknown_item`).", body = ErrorBody),
        (status = 409, description = "An item is 86'd (`item_86`), a limited item has fewer left than asked for (`item_sold_out`), or `fire` finds no held line to fire (`nothing_to_fire`): nothing was opened.", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), a line leaves a required modifier group of its item unchosen (`modifier_required`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn open_order(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    body: ApiJson<OpenOrderBody>,
) -> ApiResult {
    let body = body.0;
    device.require(Act::OpenOrder(&body.table))?;
    let branch = branch.id()?;
    if device.role() == Role::Guest {
        guest_may_open(&body)?;
        let limiter = req
            .app_data::<web::Data<GuestOrdering>>()
            .expect("guest ordering limits are configured");
        limiter.check(&branch, &body.table)?;
    }
    let idempotency = idempotency::from_request(&req, &body)?;
    let mut then = Vec::new();
    if !body.lines.is_empty() {
        let lines = body.lines.into_iter().map(Into::into).collect();
        then.push(OrderCommand::AddLines { lines });
    }
    if let Some(fire) = body.fire {
        then.push(fire.into());
    }
    let order = engine
        .ask(
            &branch,
            OpenOrder {
                table: body.table,
                guests: body.guests,
                source: body.source.map(Into::into),
                external_ref: body.external_ref,
                priority: body.priority,
                then,
                idempotency,
                span: tracing::Span::current(),
            },
        )
        .await??;
    Ok(HttpResponse::Created().json(wire::Order::from(&*order)))
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/orders",
    operation_id = "list_orders",
    tag = "orders",
    summary = "Every open order",
    params(BranchPath),
    responses(
        (status = 200, description = "The open orders, oldest first.", body = Vec<wire::Order>),
        Refusals,
        (status = 404, description = "The branch is not configured (`unknown_branch`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_orders(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
) -> ApiResult {
    device.require(Act::ListOrders)?;
    let branch = branch.id()?;
    let orders = engine.ask(&branch, OpenOrders).await??;
    let orders: Vec<wire::Order> = orders.iter().map(|o| wire::Order::from(&**o)).collect();
    Ok(HttpResponse::Ok().json(orders))
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/orders/{order}",
    operation_id = "get_order",
    tag = "orders",
    summary = "One order, open or closed",
    params(BranchPath, OrderPath),
    responses(
        (status = 200, description = "The order.", body = wire::Order),
        Refusals,
        (status = 404, description = "No such branch or order (`unknown_branch`, `unknown_order`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_order(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
) -> ApiResult {
    let branch = branch.id()?;
    let order = engine.ask(&branch, GetOrder(order.id()?)).await??;
    device.require(Act::ReadOrder(&order.table))?;
    Ok(HttpResponse::Ok().json(wire::Order::from(&*order)))
}

/// Makes a change to an order once the device may: a guest's phone only adds lines to its own
/// table's order, within the guest ordering limit; other changes need a staff role.
async fn change(
    req: &HttpRequest,
    device: &Device,
    engine: &Engine,
    branch: &BranchPath,
    order: &OrderPath,
    command: OrderCommand,
) -> ApiResult {
    let branch = branch.id()?;
    let order = order.id()?;
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
    let idempotency = idempotency::from_request(req, &wire::order::CommandBody::from(&command))?;
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
    Ok(HttpResponse::Ok().json(wire::Order::from(&*order)))
}

/// Lines to add, held until fired: all are added or none.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLinesBody {
    /// 1 to 100 lines (an order holds at most 500).
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<wire::NewLine>,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/lines",
    operation_id = "add_lines",
    tag = "orders",
    summary = "Add held lines to an order (all or none)",
    params(BranchPath, OrderPath, IdempotencyKey),
    request_body = AddLinesBody,
    responses(
        (status = 200, description = "The order with its new lines.", body = wire::Order, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("Fire" = (operation_id = "fire", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id")))),
            ("VoidFirstLine" = (operation_id = "void_line", parameters(("branch" = "$request.path.branch"), ("order" = "$response.body#/id"), ("line" = "$response.body#/lines/0/id")))),
        )),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, order or item (`unknown_branch`, `unknown_order`, `unknown_item`).", body = ErrorBody),
        (status = 409, description = "An item is 86'd (`item_86`), a limited item has fewer left than asked for (`item_sold_out`: none of the lines is added), or the order is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), a line leaves a required modifier group of its item unchosen (`modifier_required`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
        (status = 429, description = "A guest's table is ordering too fast (`rate_limited`): wait a minute.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn add_lines(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
    body: ApiJson<AddLinesBody>,
) -> ApiResult {
    let lines = body.0.lines;
    let lines = lines.into_iter().map(Into::into).collect();
    let command = OrderCommand::AddLines { lines };
    change(&req, &device, &engine, &branch, &order, command).await
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
    wire::schema::optional_text(rail_actors::order::MAX_TEXT)
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/lines/{line}/void",
    operation_id = "void_line",
    tag = "orders",
    summary = "Void a line; the kitchen sees it",
    params(BranchPath, OrderPath, LinePath, IdempotencyKey),
    request_body(content = Option<VoidBody>, description = "Why the line is voided; the body may be left empty.", content_type = "application/json"),
    responses(
        (status = 200, description = "The order, the line voided.", body = wire::Order),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, order or line (`unknown_branch`, `unknown_order`, `unknown_line`).", body = ErrorBody),
        (status = 409, description = "The line cannot be voided now (`invalid_transition`), or the order is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn void_line(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
    line: web::Path<LinePath>,
    body: OptionalJson<VoidBody>,
) -> ApiResult {
    let line = line.id()?;
    let reason = body.0.reason;
    let command = OrderCommand::VoidLine { line, reason };
    change(&req, &device, &engine, &branch, &order, command).await
}

/// What to fire.
#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FireBody {
    /// Fire this course's held lines; without it, every held line.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 9)]
    course: Option<u8>,
    /// A rush: this fire's tickets come first on every screen.
    #[serde(default, skip_serializing_if = "is_false")]
    priority: bool,
}

impl From<FireBody> for OrderCommand {
    fn from(f: FireBody) -> Self {
        OrderCommand::Fire {
            course: f.course,
            priority: f.priority,
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/fire",
    operation_id = "fire",
    tag = "orders",
    summary = "Fire one course's held lines, or all held lines",
    params(BranchPath, OrderPath, IdempotencyKey),
    request_body(content = Option<FireBody>, description = "The course to fire; an empty body fires every held line.", content_type = "application/json"),
    responses(
        (status = 200, description = "The order with the tickets this fire made.", body = wire::Order, links(
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
pub(super) async fn fire(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
    body: OptionalJson<FireBody>,
) -> ApiResult {
    change(&req, &device, &engine, &branch, &order, body.0.into()).await
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/fire-next",
    operation_id = "fire_next",
    tag = "orders",
    summary = "Fire the next held course now",
    description = "Fires the smallest course that still has held lines, at once: a waiter's \"fire next\", sooner than course pacing would.",
    params(BranchPath, OrderPath, IdempotencyKey),
    responses(
        (status = 200, description = "The order with the tickets this fire made.", body = wire::Order),
        Refusals,
        (status = 404, description = "No such branch or order (`unknown_branch`, `unknown_order`).", body = ErrorBody),
        (status = 409, description = "Nothing held to fire (`nothing_to_fire`), an item is 86'd (`item_86`), or the order is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 422, description = "The key is not valid (`invalid_input`), or was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn fire_next(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
) -> ApiResult {
    change(
        &req,
        &device,
        &engine,
        &branch,
        &order,
        OrderCommand::FireNext,
    )
    .await
}

/// The order to merge into this one.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// Another open order of the branch: its lines and tickets come into this one, and it is
    /// closed.
    #[schema(value_type = wire::schema::OrderId)]
    from: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/merge",
    operation_id = "merge_orders",
    tag = "orders",
    summary = "Merge another open order into this one",
    description = "Two parties join up, or a check is combined: this order takes the other's lines and tickets (live tickets stay on their screens with their numbers, now of this order, with `moved_from` when the other was at another table), and the other is closed (`merged_into`). The tablets of both tables are told.",
    params(BranchPath, OrderPath, IdempotencyKey),
    request_body = MergeBody,
    responses(
        (status = 200, description = "This order with the other's lines and tickets.", body = wire::Order),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, or either order is not open (`unknown_branch`, `unknown_order`).", body = ErrorBody),
        (status = 409, description = "The order would be merged into itself (`invalid_transition`), either order is closed (`order_closed`), or one was changed elsewhere or is in another merge (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn merge_orders(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
    body: ApiJson<MergeBody>,
) -> ApiResult {
    device.require(Act::ChangeOrder)?;
    let branch = branch.id()?;
    let into = order.id()?;
    let from = OrderId::parse(&body.0.from).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownOrder,
            format!("no order '{}'", body.0.from),
        )
    })?;
    let idempotency = idempotency::from_request(&req, &body.0)?;
    let merged = engine
        .ask(
            &branch,
            MergeOrders {
                into,
                from,
                idempotency,
                span: tracing::Span::current(),
            },
        )
        .await??;
    Ok(HttpResponse::Ok().json(wire::Order::from(&*merged)))
}

/// Where an order moves.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// Another table of the branch.
    #[schema(value_type = wire::schema::TableId)]
    table: TableId,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/move",
    operation_id = "move_order",
    tag = "orders",
    summary = "Move an order to another table",
    description = "The order and every ticket of it go to the other table; ticket numbers stay. Station screens see the tickets' new table and `moved_from`, and the tablets following either table are sent the `order_moved` event.",
    params(BranchPath, OrderPath, IdempotencyKey),
    request_body = MoveBody,
    responses(
        (status = 200, description = "The order at its new table.", body = wire::Order),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, order or table (`unknown_branch`, `unknown_order`, `unknown_table`).", body = ErrorBody),
        (status = 409, description = "The order is at that table already (`invalid_transition`), or it is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn move_order(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
    body: ApiJson<MoveBody>,
) -> ApiResult {
    let command = OrderCommand::MoveTo {
        table: body.0.table,
    };
    change(&req, &device, &engine, &branch, &order, command).await
}

/// Whether the order is a rush.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityBody {
    /// True to make the order a rush (its tickets first on every screen, its next fires
    /// too), false to make it an order like the others.
    priority: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/priority",
    operation_id = "set_priority",
    tag = "orders",
    summary = "Make an order a rush, or no longer",
    params(BranchPath, OrderPath, IdempotencyKey),
    request_body = PriorityBody,
    responses(
        (status = 200, description = "The order; its tickets follow, and every screen of their stations is told.", body = wire::Order),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch or order (`unknown_branch`, `unknown_order`).", body = ErrorBody),
        (status = 409, description = "The order already is (or is not) a rush (`invalid_transition`), or it is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_priority(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
    body: ApiJson<PriorityBody>,
) -> ApiResult {
    let command = OrderCommand::SetPriority {
        priority: body.0.priority,
    };
    change(&req, &device, &engine, &branch, &order, command).await
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
    params(BranchPath, OrderPath, IdempotencyKey),
    request_body(content = Option<ServeBody>, description = "The lines to serve; an empty body serves every ready line.", content_type = "application/json"),
    responses(
        (status = 200, description = "The order, the lines served.", body = wire::Order),
        (status = 400, description = "The body is not JSON (`malformed_json`).", body = ErrorBody),
        Refusals,
        (status = 404, description = "No such branch, order or line (`unknown_branch`, `unknown_order`, `unknown_line`).", body = ErrorBody),
        (status = 409, description = "Nothing ready to serve (`nothing_to_serve`), a line is not ready (`invalid_transition`), or the order is closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the server accepts (`body_too_large`).", body = ErrorBody),
        (status = 422, description = "The body or the key is not valid (`invalid_input`), or the key was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn serve(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
    body: OptionalJson<ServeBody>,
) -> ApiResult {
    let lines = body.0.lines;
    let command = OrderCommand::Serve { lines };
    change(&req, &device, &engine, &branch, &order, command).await
}

#[utoipa::path(
    post,
    path = "/api/v1/branches/{branch}/orders/{order}/close",
    operation_id = "close_order",
    tag = "orders",
    summary = "Close the check once every line is served or voided",
    params(BranchPath, OrderPath, IdempotencyKey),
    responses(
        (status = 200, description = "The closed order.", body = wire::Order),
        Refusals,
        (status = 404, description = "No such branch or order (`unknown_branch`, `unknown_order`).", body = ErrorBody),
        (status = 409, description = "Lines are still in the kitchen or not served (`order_not_finished`), the order is already closed (`order_closed`) or was changed elsewhere (`conflict`).", body = ErrorBody),
        (status = 422, description = "The key is not valid (`invalid_input`), or was used for another request (`idempotency_key_reused`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn close(
    req: HttpRequest,
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    order: web::Path<OrderPath>,
) -> ApiResult {
    change(&req, &device, &engine, &branch, &order, OrderCommand::Close).await
}
