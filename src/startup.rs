//! Builds the application: journal, engine, HTTP server. Tests build the same thing on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use rail_actors::ids::BranchId;
use rail_actors::journal::{Journal, SqliteJournal};
use rail_actors::menu::BranchConfig;
use rail_actors::Engine;
use tracing_actix_web::TracingLogger;

use crate::error::{json_error, ApiError};
use crate::settings::Settings;
use crate::{routes, ws};

const DEMO_BRANCH: &str = include_str!("../config/demo-branch.json");
const BOARD: &str = include_str!("../static/board.html");

/// The demo branch's id.
pub const DEMO_ID: &str = "demo";

/// A running server and what it serves.
pub struct Application {
    port: u16,
    server: Server,
    engine: Engine,
}

impl Application {
    /// Opens the journal, recovers every branch, and binds the HTTP server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if std::env::var_os("DATABASE_URL").is_some() {
            anyhow::bail!(
                "DATABASE_URL is set, but this build journals to the embedded SQLite file only; \
                 unset it to use {}",
                settings.journal_path.display()
            );
        }
        let (journal, feed) = SqliteJournal::open(&settings.journal_path)?;
        let journal: Arc<dyn Journal> = Arc::new(journal);
        let engine = Engine::start(journal, feed)
            .await
            .map_err(anyhow::Error::msg)?;
        if settings.demo {
            ensure_demo(&engine).await?;
        }

        let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
        let port = listener.local_addr()?.port();
        let max_body = settings.max_body_bytes;
        let engine_data = web::Data::new(engine.clone());
        let settings_data = web::Data::new(settings);
        let server =
            HttpServer::new(move || {
                App::new()
                    .wrap(TracingLogger::default())
                    .app_data(engine_data.clone())
                    .app_data(settings_data.clone())
                    .app_data(
                        web::JsonConfig::default()
                            .limit(max_body)
                            .error_handler(|e, _| json_error(e).into()),
                    )
                    .app_data(web::PayloadConfig::default().limit(max_body))
                    .app_data(web::PathConfig::default().error_handler(|e, _| {
                        ApiError::not_found("not_found", e.to_string()).into()
                    }))
                    .app_data(web::QueryConfig::default().error_handler(|e, _| {
                        ApiError::new(
                            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                            "invalid_input",
                            e.to_string(),
                        )
                        .into()
                    }))
                    .route("/", web::get().to(board))
                    .route(
                        "/healthz",
                        web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                    )
                    .route("/ws", web::get().to(ws::endpoint))
                    .configure(routes::configure)
                    .default_service(web::to(|| async {
                        Err::<HttpResponse, _>(ApiError::not_found("not_found", "no such endpoint"))
                    }))
            })
            .listen(listener)?
            .run();
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            engine,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The kitchen board: every station of a branch, live, in one page.
async fn board() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(BOARD)
}

/// Configures the demo branch unless it already exists.
async fn ensure_demo(engine: &Engine) -> anyhow::Result<()> {
    let id = BranchId::parse(DEMO_ID)?;
    if engine.branch(&id).await.is_ok() {
        return Ok(());
    }
    let config: BranchConfig = serde_json::from_str(DEMO_BRANCH)?;
    engine.configure(id, config).await?;
    tracing::info!(branch = DEMO_ID, "demo branch configured");
    Ok(())
}
