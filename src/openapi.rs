//! The REST API's OpenAPI document, built from the handlers' `#[utoipa::path]` attributes and
//! served (without a token) at `GET /api/v1/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::stations::TicketActionName;
use crate::routes::{branches, journal, orders, stations, tokens};

/// Where the document is served.
pub const PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rail",
        version = env!("CARGO_PKG_VERSION"),
        description = "Realtime order routing for restaurant kitchens: the REST API of one \
            branch's orders, stations, 86 list, journal and device tokens. Every call needs a \
            device token of the branch it names (`Authorization: Bearer <token>`); what a \
            device may do depends on its role. Live tickets and events are streamed over the \
            websocket at `GET /ws` (see docs/PROTOCOL.md), which this document does not \
            describe.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        branches::put_branch,
        branches::get_branch,
        branches::eighty_six,
        branches::restore_item,
        orders::open_order,
        orders::list_orders,
        orders::get_order,
        orders::add_lines,
        orders::void_line,
        orders::fire,
        orders::set_priority,
        orders::move_order,
        orders::fire_next,
        orders::merge_orders,
        orders::serve,
        orders::close,
        stations::station_tickets,
        stations::station_bumped,
        stations::station_all_day,
        branches::set_item_count,
        branches::lift_item_count,
        stations::station_speed,
        stations::ticket_action,
        journal::events,
        tokens::issue_token,
        tokens::list_devices,
        tokens::revoke_device,
        tokens::offer_pairing,
        tokens::redeem_pairing,
    ),
    components(schemas(ErrorBody, TicketActionName)),
    modifiers(&BearerAuth),
    tags(
        (name = "branch", description = "The branch's configuration and 86 list."),
        (name = "orders", description = "Orders, their lines, fires and checks."),
        (name = "stations", description = "What kitchen displays show and do."),
        (name = "journal", description = "The branch's events, as journaled."),
        (name = "devices", description = "Device tokens."),
    ),
)]
pub struct ApiDoc;

/// The `bearer` security scheme every operation requires: a device's JWT.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A device token of the branch in the path, signed (HS256) with the \
                         deployment's JWT_SECRET: issued by `POST /api/v1/branches/{branch}/tokens` \
                         or `rail token`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        camel_case_links(&mut document);
        serde_json::to_string_pretty(&document).expect("the OpenAPI document serializes")
    })
}

/// utoipa 5 writes a response link's fields in snake case (`operation_id`); OpenAPI spells
/// them `operationId`, `operationRef` and `requestBody`.
fn camel_case_links(document: &mut serde_json::Value) {
    let operations = document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let links = operation["responses"]
            .as_object_mut()
            .into_iter()
            .flat_map(|responses| responses.values_mut())
            .filter_map(|response| response.get_mut("links")?.as_object_mut())
            .flat_map(|links| links.values_mut())
            .filter_map(|link| link.as_object_mut());
        for link in links {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_builds() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        let link = &doc["paths"]["/api/v1/branches/{branch}/orders"]["post"]["responses"]["201"]
            ["links"]["GetOrder"];
        assert_eq!(link["operationId"], "get_order", "{link}");
        assert!(link.get("operation_id").is_none(), "{link}");
    }
}
