//! Builds the application: journal, engine, HTTP server. Tests build the same thing on port 0.
//!
//! Stopping: on SIGTERM (or SIGINT) the replica reports not ready at once, keeps serving for
//! the drain period while load balancers take it out, then closes websockets with a reconnect
//! hint, lets in-flight requests (and so their journal appends) finish, and exits within
//! `shutdown_seconds`.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::{web, App, HttpResponse, HttpServer};
use rail_actors::backup::JournalLock;
use rail_actors::ids::{BranchId, StationId, TableId};
use rail_actors::journal::{Fences, Journal, PostgresJournal, SqliteJournal};
use rail_actors::{Engine, EngineOptions};

use crate::metrics;
use tracing_actix_web::TracingLogger;

use crate::admission::{self, Admission};
use crate::auth::{GuestOrdering, Role, TokenRequest, Tokens};
use crate::cluster::{Cluster, ReplicaSettings, Route};
use crate::error::{json_error, ApiError, ErrorCode};
use crate::lifecycle::Lifecycle;
use crate::settings::{LogFormat, Settings};
use crate::{openapi, routes, screens, ws};

const DEMO_BRANCH: &str = include_str!("../config/demo-branch.json");

/// The demo branch's id.
pub const DEMO_ID: &str = "demo";

/// A running server and what it serves.
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own port, when the settings give one.
    metrics: Option<(u16, Server)>,
    handle: ServerHandle,
    engine: Engine,
    cluster: Option<Cluster>,
    lifecycle: Lifecycle,
    drain: Duration,
    /// The embedded journal is this engine's alone while it runs (no second engine opens it,
    /// no restore overwrites it).
    _journal_lock: Option<JournalLock>,
}

impl Application {
    /// Opens the journal, recovers every branch, and binds the HTTP server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let lifecycle = Lifecycle::new();
        metrics::set_ready(false);
        let journal_lock = match settings.database_url {
            None => Some(JournalLock::take(&settings.journal_path)?),
            Some(_) => None,
        };
        let (engine, cluster) = start_engine(&settings).await?;
        let tokens = web::Data::new(device_tokens(&settings)?);
        if settings.demo {
            // With replicas, the replica that owns the demo branch configures it.
            let here = match &cluster {
                Some(cluster) => cluster.route(DEMO_ID).await == Route::Here,
                None => true,
            };
            if here {
                ensure_demo(&engine).await?;
            }
        }
        forget_old_keys(engine.journal().clone(), settings.idempotency_days.max(7));

        let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
        let port = listener.local_addr()?.port();
        let drain = Duration::from_secs(settings.shutdown_drain_seconds);
        let limit = Duration::from_secs(settings.shutdown_seconds.max(1));
        metrics::set_shutdown_limit(limit);
        // The demo's device tokens go to a person at a terminal, never into collected logs.
        let demo = settings.demo && settings.log_format == LogFormat::Human;
        let metrics = match settings.metrics_port {
            Some(port) => Some(serve_metrics((settings.host.as_str(), port))?),
            None => None,
        };
        let shared = Shared::new(
            &engine,
            cluster.clone(),
            settings,
            &lifecycle,
            tokens.clone(),
        );
        let server = serve(
            shared,
            listener,
            limit.saturating_sub(drain),
            metrics.is_none(),
        )?;
        let handle = server.handle();
        lifecycle.set_ready(true);
        tracing::info!(port, "listening");
        if demo {
            print_demo_devices(&tokens, port)?;
        }
        Ok(Self {
            port,
            server,
            metrics,
            handle,
            engine,
            cluster,
            lifecycle,
            drain,
            _journal_lock: journal_lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on when it has one of its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// This replica's part in the chain, with replicas.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Serves until SIGTERM or SIGINT, then stops as the module says.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            metrics,
            handle,
            lifecycle,
            drain,
            cluster,
            // Held until the server has stopped.
            _journal_lock: _held,
            ..
        } = self;
        // Scraped until the replica has stopped serving: its last state is seen.
        let metrics = metrics.map(|(_, server)| (server.handle(), actix_web::rt::spawn(server)));
        actix_web::rt::spawn(async move {
            wait_for_signal().await;
            stop(handle, lifecycle, cluster, drain).await;
        });
        let started = Instant::now();
        let result = server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        tracing::info!(took_ms = started.elapsed().as_millis() as u64, "stopped");
        result
    }
}

/// Opens the journal the settings name (Postgres with `DATABASE_URL`, else the embedded
/// file) and recovers every branch into a running engine.
async fn start_engine(settings: &Settings) -> anyhow::Result<(Engine, Option<Cluster>)> {
    let replica = ReplicaSettings::of(settings);
    if replica.is_some() && settings.database_url.is_none() {
        anyhow::bail!("REDIS_URL makes this engine one of several replicas, which share a Postgres journal: set DATABASE_URL too");
    }
    let fences = replica.as_ref().map(|_| Arc::new(Fences::default()));
    let mut postgres = None;
    let (journal, feed): (Arc<dyn Journal>, _) = match &settings.database_url {
        Some(url) => {
            let timeout = Duration::from_millis(settings.journal_timeout_ms.max(1));
            let (journal, feed) =
                PostgresJournal::connect_fenced(url, timeout, fences.clone()).await?;
            tracing::info!("journal: postgres");
            let journal = Arc::new(journal);
            postgres = Some(journal.clone());
            maintain_partitions(
                journal.clone(),
                settings.journal_retention_months,
                settings.idempotency_days.max(7),
            );
            (journal, feed)
        }
        None => {
            let (journal, feed) = SqliteJournal::open(&settings.journal_path)?;
            tracing::info!(path = %settings.journal_path.display(), "journal: embedded");
            (Arc::new(journal), feed)
        }
    };
    let (relay, commits) = match replica {
        Some(_) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let (acks, acknowledged) = match replica {
        Some(_) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let options = EngineOptions {
        snapshot_every: settings.snapshot_every.max(1),
        threads: settings.engine_threads,
        frames: Arc::new(crate::wire::encode_envelope),
        follow: replica.is_some(),
        relay,
        acks,
    };
    let engine = Engine::start(journal, feed, options)
        .await
        .map_err(anyhow::Error::msg)?;
    let cluster = match (replica, postgres, fences, commits.zip(acknowledged)) {
        (Some(replica), Some(postgres), Some(fences), Some(relayed)) => {
            Some(Cluster::start(replica, postgres, fences, engine.clone(), relayed).await?)
        }
        _ => None,
    };
    Ok((engine, cluster))
}

/// What every worker's handlers share: the engine, the settings, the replica's lifecycle and
/// its limits.
#[derive(Clone)]
struct Shared {
    engine: web::Data<Engine>,
    cluster: Option<web::Data<Cluster>>,
    settings: web::Data<Settings>,
    lifecycle: web::Data<Lifecycle>,
    addresses: web::Data<ws::Addresses>,
    tokens: web::Data<Tokens>,
    guests: web::Data<GuestOrdering>,
    pairing_tries: web::Data<routes::tokens::PairingTries>,
    admission: web::Data<Admission>,
}

impl Shared {
    fn new(
        engine: &Engine,
        cluster: Option<Cluster>,
        settings: Settings,
        lifecycle: &Lifecycle,
        tokens: web::Data<Tokens>,
    ) -> Self {
        let guests = GuestOrdering::new(settings.guest_orders_per_minute);
        Self {
            engine: web::Data::new(engine.clone()),
            cluster: cluster.map(web::Data::new),
            admission: admission_of(&settings),
            settings: web::Data::new(settings),
            lifecycle: web::Data::new(lifecycle.clone()),
            addresses: web::Data::new(ws::Addresses::default()),
            tokens,
            guests: web::Data::new(guests),
            pairing_tries: web::Data::new(Default::default()),
        }
    }

    /// Hands every handler what it reads, and how bodies, paths and queries are refused.
    fn register(&self, cfg: &mut web::ServiceConfig) {
        let max_body = self.settings.max_body_bytes;
        cfg.app_data(self.engine.clone())
            .app_data(self.settings.clone())
            .app_data(self.lifecycle.clone())
            .app_data(self.addresses.clone())
            .app_data(self.tokens.clone())
            .app_data(self.guests.clone())
            .app_data(self.pairing_tries.clone())
            .app_data(self.admission.clone())
            .configure(|cfg| {
                if let Some(cluster) = &self.cluster {
                    cfg.app_data(cluster.clone());
                }
            })
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(|e, _| json_error(e).into()),
            )
            .app_data(web::PayloadConfig::default().limit(max_body))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::new(ErrorCode::NotFound, e.to_string()).into()),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::new(ErrorCode::InvalidInput, e.to_string()).into()
            }));
    }
}

/// The admission control the settings ask for, its memory watch started.
fn admission_of(settings: &Settings) -> web::Data<Admission> {
    let admission = web::Data::new(Admission::new(
        settings.max_commands_in_flight,
        Duration::from_millis(settings.shed_when_screens_behind_ms),
        rail_actors::lag::fanout(),
        admission::memory_limit(
            settings.shed_when_memory_above_mib,
            admission::container_memory_limit(),
        ),
    ));
    if let Some(limit) = admission.memory_limit() {
        tracing::info!(
            limit_mib = limit >> 20,
            "new orders are refused while resident memory is above the limit"
        );
    }
    admission::watch_memory(admission.clone());
    admission
}

/// The endpoints outside the REST API: the board, probes, the API's description and the
/// websocket (metrics have their own, unless they are served here).
fn endpoints(cfg: &mut web::ServiceConfig) {
    cfg.configure(screens::routes)
        .route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().body("ok") }),
        )
        .route("/readyz", web::get().to(readyz))
        // The API's description, readable without a token.
        .route(openapi::PATH, web::get().to(openapi::serve))
        .route("/ws", web::get().to(ws::endpoint))
        // A websocket ticket command another replica sends on to the branch's owner.
        .route(
            "/internal/v1/branches/{branch}/tickets",
            web::post().to(ws::forwarded_ticket),
        );
}

/// Starts the HTTP server on the listener; in-flight requests get `finish` to end once it is
/// told to stop.
fn serve(
    shared: Shared,
    listener: TcpListener,
    finish: Duration,
    with_metrics: bool,
) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let res = srv.call(req);
                async move {
                    // A middleware's refusal (401, 403, 503) arrives as an error and becomes
                    // its answer later: it is counted as that answer.
                    let res = res.await;
                    let status = match &res {
                        Ok(res) => res.status(),
                        Err(e) => e.as_response_error().status_code(),
                    };
                    metrics::http_request(&method, &route, status.as_u16(), started.elapsed());
                    res
                }
            })
            .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
            .configure(|cfg| shared.register(cfg))
            .configure(endpoints)
            .configure(|cfg| {
                if with_metrics {
                    cfg.route("/metrics", web::get().to(metrics_text));
                }
            })
            .configure(routes::configure)
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
            }))
    })
    .disable_signals()
    // Acks are small frames: Nagle would hold each one for the client's delayed ACK.
    .tcp_nodelay(true)
    .shutdown_timeout(finish.as_secs().max(1))
    .listen(listener)?
    .run();
    Ok(server)
}

/// `/metrics` alone on its own address, for Prometheus; everything else there is 404.
fn serve_metrics(address: (&str, u16)) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(address)?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(|| {
        App::new()
            .route("/metrics", web::get().to(metrics_text))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
            }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(port, "metrics served on their own port");
    Ok((port, server))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The stop sequence: not ready, drain, close sockets, finish in-flight requests.
async fn stop(
    handle: ServerHandle,
    lifecycle: Lifecycle,
    cluster: Option<Cluster>,
    drain: Duration,
) {
    tracing::info!(
        drain_ms = drain.as_millis() as u64,
        "stopping: no longer ready"
    );
    lifecycle.set_ready(false);
    if let Some(cluster) = cluster {
        // The branches go to the replicas that stay before the sockets close: screens that
        // reconnect there resume where they were.
        cluster.leave().await;
    }
    tokio::time::sleep(drain).await;
    lifecycle.stop_sockets();
    handle.stop(true).await;
}

/// The first day of the oldest month the Postgres journal keeps: `months` whole months before
/// this one, and never a month an idempotency key still points into. None keeps every month.
fn keep_from(today: chrono::NaiveDate, months: u32, key_days: u32) -> Option<chrono::NaiveDate> {
    use chrono::Datelike;
    if months == 0 {
        return None;
    }
    let by_months = today.with_day(1)? - chrono::Months::new(months);
    let by_keys = (today - chrono::Days::new(key_days.into())).with_day(1)?;
    Some(by_months.min(by_keys))
}

/// Makes the Postgres journal's coming monthly partitions and drops the months past the
/// retention, at start and daily.
fn maintain_partitions(journal: Arc<PostgresJournal>, months: u32, key_days: u32) {
    actix_web::rt::spawn(async move {
        let mut daily = tokio::time::interval(Duration::from_secs(24 * 3600));
        loop {
            daily.tick().await;
            let keep = keep_from(chrono::Utc::now().date_naive(), months, key_days);
            match journal.maintain_partitions(keep).await {
                Ok(dropped) if dropped.is_empty() => {}
                Ok(dropped) => tracing::info!(?dropped, "journal months past retention dropped"),
                Err(e) => tracing::warn!(error = %e, "journal partition upkeep failed"),
            }
        }
    });
}

/// Forgets idempotency keys older than their lifetime, hourly.
fn forget_old_keys(journal: Arc<dyn Journal>, days: u32) {
    actix_web::rt::spawn(async move {
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        loop {
            hourly.tick().await;
            let before = chrono::Utc::now() - chrono::Duration::days(days.into());
            match journal.forget_keys(before).await {
                Ok(n) => tracing::debug!(forgotten = n, "old idempotency keys forgotten"),
                Err(e) => tracing::warn!(error = %e, "could not forget old idempotency keys"),
            }
        }
    });
}

/// Ready when recovery is done, the replica is not stopping, and the journal answers.
async fn readyz(
    lifecycle: web::Data<Lifecycle>,
    engine: web::Data<Engine>,
    cluster: Option<web::Data<Cluster>>,
) -> HttpResponse {
    if !lifecycle.is_ready() {
        return HttpResponse::ServiceUnavailable().body("stopping");
    }
    if cluster.is_some_and(|c| !c.ready()) {
        return HttpResponse::ServiceUnavailable().body("placing branches");
    }
    let ping = tokio::time::timeout(Duration::from_secs(2), engine.journal().ping()).await;
    match ping {
        Ok(Ok(())) => HttpResponse::Ok().body("ready"),
        _ => HttpResponse::ServiceUnavailable().body("journal unavailable"),
    }
}

async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render())
}

/// Configures the demo branch unless it already exists.
async fn ensure_demo(engine: &Engine) -> anyhow::Result<()> {
    let id = BranchId::parse(DEMO_ID)?;
    // Configured already (a replica may run the branch before it is configured).
    let info = engine.ask(&id, rail_actors::branch::GetBranchInfo).await;
    if info.is_ok_and(|i| i.is_ok()) {
        return Ok(());
    }
    let config: crate::wire::BranchConfig = serde_json::from_str(DEMO_BRANCH)?;
    engine.configure(id, config.into()).await?;
    tracing::info!(branch = DEMO_ID, "demo branch configured");
    Ok(())
}

/// The device token keys: `JWT_SECRET`, or outside production a random secret for this run.
pub fn device_tokens(settings: &Settings) -> anyhow::Result<Tokens> {
    let leeway = Duration::from_secs(settings.jwt_leeway_seconds);
    let secret = match &settings.jwt_secret {
        Some(secret) => secret.clone(),
        None if settings.require_jwt_secret => {
            anyhow::bail!("JWT_SECRET is not set: devices could not authenticate")
        }
        None => {
            tracing::warn!("JWT_SECRET is not set: tokens are signed with a random secret and last until the next restart");
            random_secret()
        }
    };
    Tokens::new(
        secret.as_bytes(),
        &settings.jwt_issuer,
        &settings.jwt_audience,
        leeway,
    )
}

fn random_secret() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 48)
}

/// Prints (to standard error, beside the human log) a link to every screen of the demo branch,
/// each paired by its token in the URL fragment, and the tokens for REST calls.
fn print_demo_devices(tokens: &Tokens, port: u16) -> anyhow::Result<()> {
    let branch = BranchId::parse(DEMO_ID)?;
    let issue = |role: Role, station: Option<&str>, table: Option<&str>, device: &str| {
        let request = TokenRequest {
            role,
            station: station.map(StationId::parse).transpose()?,
            table: table.map(TableId::parse).transpose()?,
            device: Some(device.to_owned()),
            ttl_seconds: Some(7 * 24 * 3600),
        };
        anyhow::Ok(tokens.issue(&branch, &request)?.token)
    };
    let base = format!("http://localhost:{port}");
    let mut out =
        format!("\nDemo branch '{DEMO_ID}': open its screens (each link pairs one device):\n");
    // A screen: its name, path, and its device's role, station and table.
    type Screen<'a> = (&'a str, &'a str, Role, Option<&'a str>, Option<&'a str>);
    let screens: [Screen; 10] = [
        ("kitchen board", "/", Role::Manager, None, None),
        ("grill", "/kitchen", Role::Kitchen, Some("grill"), None),
        ("fryer", "/kitchen", Role::Kitchen, Some("fryer"), None),
        ("cold", "/kitchen", Role::Kitchen, Some("cold"), None),
        ("bar", "/kitchen", Role::Kitchen, Some("bar"), None),
        ("expo", "/expo", Role::Kitchen, Some("expo"), None),
        ("waiter tablet", "/waiter", Role::Waiter, None, None),
        ("POS", "/pos", Role::Pos, None, None),
        ("QR menu", "/menu/qr-5", Role::Guest, None, Some("qr-5")),
        ("manager", "/manage", Role::Manager, None, None),
    ];
    for (name, path, role, station, table) in screens {
        let device = format!("demo-{}-screen", name.replace(' ', "-").to_lowercase());
        let token = issue(role, station, table, &device)?;
        out.push_str(&format!("  {name:<14} {base}{path}#token={token}\n"));
    }
    out.push_str("\nDevice tokens (send 'Authorization: Bearer <token>'):\n");
    let devices: [(&str, Role, Option<&str>, Option<&str>); 5] = [
        ("manager", Role::Manager, None, None),
        ("pos", Role::Pos, None, None),
        ("waiter", Role::Waiter, None, None),
        ("grill screen", Role::Kitchen, Some("grill"), None),
        ("guest at qr-5", Role::Guest, None, Some("qr-5")),
    ];
    for (name, role, station, table) in devices {
        let device = format!("demo-{}", name.replace(' ', "-"));
        let token = issue(role, station, table, &device)?;
        out.push_str(&format!("  {name:<14} {token}\n"));
    }
    eprintln!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::keep_from;
    use chrono::NaiveDate;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn retention_keeps_whole_months_and_live_keys() {
        assert_eq!(keep_from(d(2026, 11, 23), 0, 7), None);
        assert_eq!(keep_from(d(2026, 11, 23), 13, 7), Some(d(2025, 10, 1)));
        assert_eq!(keep_from(d(2026, 3, 2), 1, 7), Some(d(2026, 2, 1)));
        // Keys kept 60 days reach back further than one month.
        assert_eq!(keep_from(d(2026, 3, 2), 1, 60), Some(d(2026, 1, 1)));
    }
}
