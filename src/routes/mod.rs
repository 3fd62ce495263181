//! The REST API under `/api/v1`: parse, ask the branch, answer. No kitchen rules live here.
//!
//! One module per resource of a branch; this one only puts them in the scope, behind the checks
//! of `scope`, with `405` for a method a resource does not take.

pub mod branches;
pub mod journal;
pub mod orders;
pub mod scope;
pub mod stations;
pub mod tokens;

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};

use crate::error::ErrorBody;

/// Registers every resource under `/api/v1/branches/{branch}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/branches/{branch}")
            .wrap(from_fn(crate::cluster::forward_to_owner))
            .wrap(from_fn(scope::authenticate))
            .wrap(from_fn(scope::shed_load))
            .service(
                resource("", "GET, PUT")
                    .route(web::put().to(branches::put_branch))
                    .route(web::get().to(branches::get_branch)),
            )
            .service(
                resource("/86/{item}", "PUT, DELETE")
                    .route(web::put().to(branches::eighty_six))
                    .route(web::delete().to(branches::restore_item)),
            )
            .service(
                resource("/stock/{item}", "PUT, DELETE")
                    .route(web::put().to(branches::set_item_count))
                    .route(web::delete().to(branches::lift_item_count)),
            )
            .service(
                resource("/orders", "GET, POST")
                    .route(web::post().to(orders::open_order))
                    .route(web::get().to(orders::list_orders)),
            )
            .service(resource("/orders/{order}", "GET").route(web::get().to(orders::get_order)))
            .service(
                resource("/orders/{order}/lines", "POST").route(web::post().to(orders::add_lines)),
            )
            .service(
                resource("/orders/{order}/lines/{line}/void", "POST")
                    .route(web::post().to(orders::void_line)),
            )
            .service(resource("/orders/{order}/fire", "POST").route(web::post().to(orders::fire)))
            .service(
                resource("/orders/{order}/move", "POST").route(web::post().to(orders::move_order)),
            )
            .service(
                resource("/orders/{order}/merge", "POST")
                    .route(web::post().to(orders::merge_orders)),
            )
            .service(
                resource("/orders/{order}/fire-next", "POST")
                    .route(web::post().to(orders::fire_next)),
            )
            .service(
                resource("/orders/{order}/priority", "POST")
                    .route(web::post().to(orders::set_priority)),
            )
            .service(resource("/orders/{order}/serve", "POST").route(web::post().to(orders::serve)))
            .service(resource("/orders/{order}/close", "POST").route(web::post().to(orders::close)))
            .service(
                resource("/stations/{station}/tickets", "GET")
                    .route(web::get().to(stations::station_tickets)),
            )
            .service(
                resource("/stations/{station}/bumped", "GET")
                    .route(web::get().to(stations::station_bumped)),
            )
            .service(
                resource("/stations/{station}/all-day", "GET")
                    .route(web::get().to(stations::station_all_day)),
            )
            .service(
                resource("/stations/{station}/speed", "GET")
                    .route(web::get().to(stations::station_speed)),
            )
            .service(
                resource("/stations/{station}/tickets/{ticket}/{action}", "POST")
                    .route(web::post().to(stations::ticket_action)),
            )
            .service(resource("/events", "GET").route(web::get().to(journal::events)))
            .service(resource("/tokens", "POST").route(web::post().to(tokens::issue_token)))
            .service(resource("/devices", "GET").route(web::get().to(tokens::list_devices)))
            .service(
                resource("/devices/{device}/revoke", "POST")
                    .route(web::post().to(tokens::revoke_device)),
            )
            .service(resource("/pairings", "POST").route(web::post().to(tokens::offer_pairing)))
            .service(resource("/pair", "POST").route(web::post().to(tokens::redeem_pairing))),
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
