//! The screens a branch runs its service on (kitchen, expo, waiter tablet, POS, QR menu,
//! manager), served from `static/`: embedded in the binary in release builds, read from the
//! repository in debug builds so a page can be changed without a rebuild.
//!
//! Pages are plain HTML, CSS and JavaScript driven only by the public REST API and websocket;
//! the device token travels in the URL fragment, never to the server in a request line. Every
//! page is sent with a content security policy that allows scripts from this server only.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

use crate::error::{ApiError, ErrorCode};

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// Scripts and styles from this server only; the websocket to it; images from it or inline
/// (QR codes). No frames, no plugins, no inline scripts.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                      img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; \
                      frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The pages, by the path a device opens.
const PAGES: &[(&str, &str)] = &[
    ("/kitchen", "kitchen.html"),
    ("/expo", "expo.html"),
    ("/waiter", "waiter.html"),
    ("/pos", "pos.html"),
    ("/manage", "manage.html"),
];

/// Routes the pages and their assets.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(board));
    for (path, file) in PAGES {
        cfg.route(path, web::get().to(move |req: HttpRequest| page(req, file)));
    }
    // One table's QR menu: the page reads the table from its path.
    cfg.route(
        "/menu/{table}",
        web::get().to(|req: HttpRequest| page(req, "menu.html")),
    )
    .route("/static/{file:.+}", web::get().to(asset));
}

/// The kitchen board: every station of a branch, live, in one page (the demo's overview).
async fn board(req: HttpRequest) -> HttpResponse {
    send(&req, "board.html", false)
}

async fn page(req: HttpRequest, file: &str) -> HttpResponse {
    send(&req, file, true)
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    // Pages are served at their own paths only.
    if file.ends_with(".html") {
        return not_found();
    }
    send(&req, &file, true)
}

fn not_found() -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::new(ErrorCode::NotFound, "no such page or file").error_response()
}

/// Sends one embedded file with its type and a validator, so a screen that reloads (or
/// reconnects after a restart) fetches only what changed.
fn send(req: &HttpRequest, file: &str, policy: bool) -> HttpResponse {
    let Some(found) = Assets::get(file) else {
        return not_found();
    };
    let tag = format!("\"{}\"", hex(&found.metadata.sha256_hash()[..12]));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut answer = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if policy {
        answer.insert_header((header::CONTENT_SECURITY_POLICY, POLICY));
    }
    if fresh {
        return answer.finish();
    }
    let mime = found.metadata.mimetype();
    let mime =
        if mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json") {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_string()
        };
    answer.content_type(mime).body(found.data.into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
