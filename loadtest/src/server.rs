//! The engine under test: one already running at a URL, or a `rail` binary the load test starts
//! itself on a free port with a fresh journal (a temporary SQLite file, or a Postgres database
//! it creates and drops), whose memory it can then read from `/proc`. A spawned server can be
//! killed (SIGKILL) and started again on the same port, journal and signing key.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use serde::Serialize;

use crate::auth::AuthArgs;

/// Which journal a spawned server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    /// The embedded SQLite file.
    Embedded,
    /// Postgres (a fresh database on `--database-url`'s server).
    Postgres,
}

/// Where the engine is and how to reach it.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The engine's base URL (http://host:port), or `spawn` to start the rail binary here.
    #[arg(long, default_value = "spawn")]
    pub server: String,
    /// The rail binary to spawn [default: `rail` beside this loadtest binary].
    #[arg(long)]
    pub rail_bin: Option<PathBuf>,
    /// The journal of a spawned server.
    #[arg(long, value_enum, default_value_t = JournalKind::Embedded)]
    pub journal: JournalKind,
    /// With `--journal postgres`: the server to make a fresh database on (the URL's own
    /// database is only used to run CREATE/DROP DATABASE, through `psql`).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    /// Keep the spawned server's Postgres database (and journal file) after the run.
    #[arg(long)]
    pub keep_journal: bool,
    /// The pid of a server given by URL that runs on this machine, to sample its RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// An environment variable for a spawned server, KEY=VALUE (repeatable), e.g.
    /// RAIL_WS_MESSAGES_PER_SECOND=200.
    #[arg(long = "server-env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub server_env: Vec<(String, String)>,
    /// Websockets opened from one source address. The engine caps open websockets per address
    /// (`ws_connections_per_address`, a restaurant's devices sharing one); on a loopback server
    /// the sockets are spread over 127.0.0.1, 127.0.0.2, ... this many to an address.
    #[arg(long, default_value_t = 250)]
    pub sockets_per_address: usize,
    #[command(flatten)]
    pub auth: AuthArgs,
}

fn parse_env(raw: &str) -> Result<(String, String), String> {
    let (k, v) = raw
        .split_once('=')
        .ok_or_else(|| format!("'{raw}' is not KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("'{raw}' has no name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// A memory reading of the server process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    pub rss_bytes: u64,
    /// The peak RSS so far (VmHWM).
    pub peak_bytes: u64,
}

/// The pid of the server process, 0 when there is none (or it is down between a kill and its
/// restart). Shared with the samplers, which follow a restarted server.
pub type PidCell = Arc<AtomicU32>;

/// How a spawned server is started, kept to start it again after a kill.
struct Recipe {
    bin: PathBuf,
    dir: PathBuf,
    /// Its environment, in the order it is set.
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Recipe {
    fn spawn(&self, truncate_log: bool) -> anyhow::Result<Child> {
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(truncate_log)
            .append(!truncate_log)
            .open(&self.log)?;
        Command::new(&self.bin)
            .current_dir(&self.dir)
            .env_remove("DATABASE_URL")
            .env_remove("RAIL_JOURNAL_PATH")
            .env_remove("RAIL_PORT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))
    }
}

/// One kill and restart of a spawned server.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    /// The pid that was sent SIGKILL.
    pub killed_pid: u32,
    /// The pid of the server started in its place.
    pub new_pid: u32,
    /// SIGKILL sent -> the killed process reaped (ms).
    pub reaped_ms: f64,
    /// SIGKILL sent -> the new server answers `/readyz` (ms): the downtime.
    pub downtime_ms: f64,
}

/// The engine under test.
pub struct Target {
    pub base: String,
    pub ws_url: String,
    pid: PidCell,
    pub spawned: bool,
    pub description: String,
    /// The key the server checks tokens with (`JWT_SECRET`).
    pub jwt_secret: String,
    child: Option<Child>,
    recipe: Option<Recipe>,
    scratch: Option<PathBuf>,
    database: Option<(String, String)>,
    keep: bool,
}

impl Target {
    /// Reaches the server at `--server`, or starts one.
    pub async fn start(args: &ServerArgs, out: &Path) -> anyhow::Result<Self> {
        let jwt_secret = args.auth.secret(args.server == "spawn")?;
        if args.server != "spawn" {
            let base = args.server.trim_end_matches('/').to_owned();
            if !base.starts_with("http://") {
                bail!("--server must be an http:// URL or 'spawn', not '{base}'");
            }
            let ws_url = format!("ws://{}/ws", &base["http://".len()..]);
            let target = Self {
                description: format!("external server {base}"),
                jwt_secret,
                base,
                ws_url,
                pid: Arc::new(AtomicU32::new(args.server_pid.unwrap_or(0))),
                spawned: false,
                child: None,
                recipe: None,
                scratch: None,
                database: None,
                keep: true,
            };
            target.wait_ready(Duration::from_secs(10)).await?;
            return Ok(target);
        }
        let bin = match &args.rail_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()?
                .parent()
                .ok_or_else(|| anyhow!("the loadtest binary has no folder"))?
                .join("rail"),
        };
        if !bin.is_file() {
            bail!(
                "no rail binary at {} (build it: cargo build --release -p rail; or pass --rail-bin)",
                bin.display()
            );
        }
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
        let scratch =
            std::env::temp_dir().join(format!("rail-loadtest-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut env: Vec<(String, String)> = [
            ("RAIL_HOST", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
            ("RAIL_DEMO", "false".to_owned()),
            ("RAIL_LOG_FORMAT", "human".to_owned()),
            ("RAIL_SHUTDOWN_DRAIN_SECONDS", "0".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(args.server_env.iter().cloned())
        .collect();
        // After --server-env: the server checks the tokens this load test signs.
        env.push(("JWT_SECRET".into(), jwt_secret.clone()));
        env.push(("RAIL_JWT_ISSUER".into(), args.auth.jwt_issuer.clone()));
        env.push(("RAIL_JWT_AUDIENCE".into(), args.auth.jwt_audience.clone()));
        let mut database = None;
        let description = match args.journal {
            JournalKind::Embedded => {
                let path = scratch.join("journal.db");
                env.push((
                    "RAIL_JOURNAL_PATH".into(),
                    path.to_string_lossy().into_owned(),
                ));
                format!(
                    "spawned {} on 127.0.0.1:{port}, embedded journal {}",
                    bin.display(),
                    path.display()
                )
            }
            JournalKind::Postgres => {
                let name = format!("rail_load_{stamp}_{}", std::process::id());
                psql(&args.database_url, &format!("CREATE DATABASE {name}"))?;
                let url = database_url_for(&args.database_url, &name);
                database = Some((args.database_url.clone(), name.clone()));
                env.push(("DATABASE_URL".into(), url));
                format!(
                    "spawned {} on 127.0.0.1:{port}, Postgres journal (database {name})",
                    bin.display()
                )
            }
        };
        let recipe = Recipe {
            bin,
            dir: scratch.clone(),
            env,
            log: out.join("server.log"),
        };
        let child = recipe.spawn(true)?;
        let base = format!("http://127.0.0.1:{port}");
        let mut target = Self {
            ws_url: format!("ws://127.0.0.1:{port}/ws"),
            base,
            pid: Arc::new(AtomicU32::new(child.id())),
            spawned: true,
            description,
            jwt_secret,
            child: Some(child),
            recipe: Some(recipe),
            scratch: Some(scratch),
            database,
            keep: args.keep_journal,
        };
        if let Err(e) = target.wait_ready(Duration::from_secs(60)).await {
            let log = std::fs::read_to_string(out.join("server.log")).unwrap_or_default();
            let _ = target.stop().await;
            bail!("{e}; the server's log ends with:\n{}", tail(&log, 20));
        }
        Ok(target)
    }

    async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + limit;
        let url = format!("{}/readyz", self.base);
        loop {
            if let Ok(res) = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if res.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("{} did not become ready within {limit:?}", self.base);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's pid, when it runs here and is up.
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|&p| p != 0)
    }

    /// The server's pid as it changes across restarts.
    pub fn pid_cell(&self) -> PidCell {
        self.pid.clone()
    }

    /// The server's memory now, when it runs here.
    pub fn memory(&self) -> Option<Memory> {
        memory_of(self.pid()?)
    }

    /// Kills a spawned server with SIGKILL (no shutdown, no drain: a crash), reaps it, and
    /// starts it again at once with the same port, journal, signing key and environment;
    /// returns when the new one answers `/readyz`. Its log goes on in `server.log`.
    pub async fn kill_and_restart(&mut self, ready_within: Duration) -> anyhow::Result<Restart> {
        let (Some(child), Some(recipe)) = (self.child.as_mut(), self.recipe.as_ref()) else {
            bail!("only a spawned server can be killed");
        };
        if let Some(status) = child.try_wait()? {
            bail!("the server had already exited ({status}) before the kill");
        }
        let killed_pid = child.id();
        let killed_at = Instant::now();
        self.pid.store(0, Ordering::Relaxed);
        // std's Child::kill is SIGKILL on Unix, sent to the server process itself.
        child.kill().context("sending SIGKILL to the server")?;
        while child.try_wait()?.is_none() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let reaped = killed_at.elapsed();
        let new = recipe.spawn(false)?;
        let new_pid = new.id();
        self.child = Some(new);
        self.pid.store(new_pid, Ordering::Relaxed);
        self.wait_ready(ready_within).await?;
        Ok(Restart {
            killed_pid,
            new_pid,
            reaped_ms: reaped.as_secs_f64() * 1000.0,
            downtime_ms: killed_at.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Stops a spawned server (SIGTERM, then SIGKILL after 10 s) and removes its journal.
    /// Returns how it had ended if it died before being asked to stop.
    pub async fn stop(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        let mut died_early = None;
        if let Some(mut child) = self.child.take() {
            died_early = child.try_wait()?;
            if died_early.is_none() {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while child.try_wait()?.is_none() {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        if !self.keep {
            if let Some((admin, name)) = self.database.take() {
                psql(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )?;
            }
            if let Some(dir) = self.scratch.take() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        Ok(died_early)
    }
}

/// A process's memory, from `/proc/<pid>/status`.
pub fn memory_of(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    };
    Some(Memory {
        rss_bytes: kb("VmRSS:")? * 1024,
        peak_bytes: kb("VmHWM:")? * 1024,
    })
}

/// CPU time (user + system, in seconds) a process has used: `/proc/<pid>/stat`, or this
/// process's when `pid` is None.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks as f64 / 100.0)
}

/// CPU time (seconds) the whole machine has spent busy: every core, not idle nor waiting on
/// I/O (`/proc/stat`).
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((total - idle) as f64 / 100.0)
}

/// The machine: cores and load average, for the report.
pub fn machine() -> serde_json::Value {
    serde_json::json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "loadavg_at_start": std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.trim().to_owned()),
    })
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .context("running psql (the Postgres client is needed for --journal postgres)")?;
    if !out.status.success() {
        bail!(
            "psql '{sql}' failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The admin URL with its database replaced by `name`, query string kept.
fn database_url_for(admin: &str, name: &str) -> String {
    let (main, query) = match admin.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (admin, None),
    };
    let scheme_end = main.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match main[scheme_end..].find('/') {
        Some(i) => &main[..scheme_end + i],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time_of_this_process() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let cpu = cpu_seconds(None).expect("/proc/self/stat");
        assert!(cpu >= 0.0);
        assert!(cpu_seconds(Some(std::process::id())).is_some());
    }

    #[test]
    fn names_the_fresh_database_in_the_url() {
        assert_eq!(
            database_url_for("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            database_url_for("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            database_url_for("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
