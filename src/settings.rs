//! Layered settings: `config/default.toml` (built in), then `config/<RAIL_ENV>.toml` when it
//! exists, then environment variables (`RAIL_` prefixed, plus plain `PORT`).

use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

/// Everything the server is started with.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// Where `/metrics` is served: its own port (none: the main port).
    #[serde(default)]
    pub metrics_port: Option<u16>,
    pub journal_path: PathBuf,
    pub demo: bool,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    pub ws_queue: usize,
    pub ws_ping_seconds: u64,
    /// Origins allowed to open websockets besides the server's own.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    pub ws_messages_per_second: u32,
    pub ws_message_burst: u32,
    pub ws_connections_per_address: u32,
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed for per-address limits and logs.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub shutdown_drain_seconds: u64,
    pub shutdown_seconds: u64,
    /// The Postgres journal, from `DATABASE_URL`; the embedded file when unset.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Redis (`REDIS_URL`): with it, and the Postgres journal, this engine is one of several
    /// replicas of one chain; without it, the only one.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// This replica's name among the others (the pod's name); made up when unset.
    #[serde(default)]
    pub replica_id: Option<String>,
    /// Where the other replicas reach this one (host:port, the pod's address); the loopback
    /// address and `port` when unset.
    #[serde(default)]
    pub advertise_address: Option<String>,
    /// How long a branch's lease runs without renewal: a replica that dies leaves its branches
    /// unwritten this long (and up to a fifth more, a placement tick) before another takes
    /// them.
    pub lease_ttl_ms: u64,
    /// How long a command sent on to the replica owning its branch may take, waiting for an
    /// owner included, before `503 owner_unavailable`.
    pub forward_timeout_ms: u64,
    /// Longest wait on the database before a command fails with `journal_unavailable`.
    pub journal_timeout_ms: u64,
    /// Days an idempotency key answers retries before it is forgotten (at least 7).
    pub idempotency_days: u32,
    /// Whole months of events the Postgres journal keeps before the current one (0: all).
    pub journal_retention_months: u32,
    /// Threads the branches' actors are spread over (0: the main thread).
    pub engine_threads: usize,
    /// Events a branch commits between two snapshots of its open orders.
    pub snapshot_every: u64,
    /// Commands this replica holds at once before it sheds load with `503 overloaded` (new
    /// orders at half of it).
    pub max_commands_in_flight: usize,
    /// New orders are refused (`503 overloaded`) while fired tickets reach their stations'
    /// actors later than this, on average over the last few, in milliseconds.
    pub shed_when_screens_behind_ms: u64,
    /// New orders are refused (`503 overloaded`) while the replica's resident memory is above
    /// this many MiB (0: 85% of the container's memory limit, none without one).
    pub shed_when_memory_above_mib: u64,
    /// The key device tokens are signed with (`JWT_SECRET`, at least 32 bytes).
    #[serde(default)]
    pub jwt_secret: Option<String>,
    /// Refuse to start without `JWT_SECRET` (production); otherwise a random one is made.
    pub require_jwt_secret: bool,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub jwt_leeway_seconds: u64,
    /// Lines a table's guests may add a minute through QR ordering.
    pub guest_orders_per_minute: u32,
    /// How long a pairing code may be exchanged for its device's token, in seconds.
    pub pairing_code_seconds: u64,
}

impl Settings {
    /// Reads the layers from the process environment.
    pub fn load() -> Result<Self, config::ConfigError> {
        let env = std::env::var("RAIL_ENV").unwrap_or_else(|_| "development".into());
        let dir = std::env::var("RAIL_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let mut builder = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::with_name(&format!("{dir}/{env}")).required(false))
            .add_source(
                Environment::with_prefix("RAIL")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("allowed_origins")
                    .with_list_parse_key("trusted_proxies"),
            );
        if let Ok(port) = std::env::var("PORT") {
            builder = builder.set_override("port", port)?;
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            builder = builder.set_override("database_url", url)?;
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            builder = builder.set_override("redis_url", url)?;
        }
        if let Ok(secret) = std::env::var("JWT_SECRET") {
            builder = builder.set_override("jwt_secret", secret)?;
        }
        builder.build()?.try_deserialize()
    }

    /// The built-in defaults alone, for tests that adjust them.
    pub fn defaults() -> Self {
        Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("built-in defaults are valid")
    }
}
