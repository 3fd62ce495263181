//! The engine under test: one already running at a URL, or a `rail` binary the load test starts
//! itself on a free port with a fresh journal (a temporary SQLite file, or a Postgres database
//! it creates and drops), whose memory it can then read from `/proc`. A spawned server can be
//! killed (SIGKILL) and started again on the same port, journal and signing key. With
//! `--replicas N` it starts N replicas of one chain instead (`RAIL_REPLICA_ID` r1..rN, one
//! Postgres database, and a `redis-server` of its own between them).

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
    /// The engine's `/metrics` URL, when it serves them on a port of its own (`metrics_port`)
    /// [default: the server's URL + /metrics; for a spawned server with RAIL_METRICS_PORT=N
    /// (--server-env, or this environment), http://127.0.0.1:N/metrics].
    #[arg(long)]
    pub metrics_url: Option<String>,
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
            .env_remove("REDIS_URL")
            .env_remove("RAIL_REPLICA_ID")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            // The engine logs to stdout.
            .stdout(log.try_clone()?)
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

/// One kill (SIGKILL) of a spawned process, not restarted.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Killed {
    /// The pid that was sent SIGKILL.
    pub killed_pid: u32,
    /// SIGKILL sent -> the killed process reaped (ms).
    pub reaped_ms: f64,
}

/// One engine process: the only one, or one replica of a chain (`RAIL_REPLICA_ID`).
pub struct Node {
    /// The replica's id (`r1`, `r2`, ...), or `server` for a single engine.
    pub id: String,
    pub base: String,
    pub ws_url: String,
    /// Its `/metrics` URL (on the main port, or the metrics port of its own).
    pub metrics: String,
    /// Its log file, when spawned here.
    pub log: Option<PathBuf>,
    pid: PidCell,
    child: Option<Child>,
    recipe: Option<Recipe>,
}

impl Node {
    /// The pid, when it runs here and is up.
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|&p| p != 0)
    }

    /// The pid as it changes across restarts (0 while down).
    pub fn pid_cell(&self) -> PidCell {
        self.pid.clone()
    }

    fn log_tail(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .map(|log| tail(&log, 20))
            .unwrap_or_default()
    }

    /// SIGKILL (no shutdown, no drain: a crash), and waits until the process is reaped.
    async fn kill(&mut self) -> anyhow::Result<(Killed, Instant)> {
        let Some(child) = self.child.as_mut() else {
            bail!("{}: only a running spawned server can be killed", self.id);
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "{}: the server had already exited ({status}) before the kill",
                self.id
            );
        }
        let killed_pid = child.id();
        let killed_at = Instant::now();
        self.pid.store(0, Ordering::Relaxed);
        // std's Child::kill is SIGKILL on Unix, sent to the server process itself.
        child.kill().context("sending SIGKILL to the server")?;
        while child.try_wait()?.is_none() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.child = None;
        Ok((
            Killed {
                killed_pid,
                reaped_ms: killed_at.elapsed().as_secs_f64() * 1000.0,
            },
            killed_at,
        ))
    }
}

/// The `redis-server` a chain of replicas shares: started here on a free port, keeping nothing
/// on disk.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    async fn start(dir: &Path, log: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_ports(1)?[0];
        let log = std::fs::File::create(log)?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow!("redis-server is not on PATH: --replicas needs it to bridge the replicas (Debian: apt-get install redis-server)")
                } else {
                    anyhow!("starting redis-server: {e}")
                }
            })?;
        let mut redis = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.pings().await {
            if let Some(status) = redis.child.try_wait()? {
                bail!("redis-server exited at once ({status}); see redis.log");
            }
            if Instant::now() > deadline {
                redis.kill();
                bail!("redis-server on port {port} did not answer PING within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn pings(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").await.is_ok()
            && matches!(s.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` distinct free ports on the loopback (held together while chosen, so none repeats).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// The engine under test: one server (spawned here or given by URL), or `--replicas` spawned
/// replicas of one chain sharing a Postgres database and a Redis started here.
pub struct Target {
    /// The first node's base URL and websocket URL.
    pub base: String,
    pub ws_url: String,
    pub spawned: bool,
    pub description: String,
    /// The key the server checks tokens with (`JWT_SECRET`).
    pub jwt_secret: String,
    /// The engine's processes: one, or a replica each.
    pub nodes: Vec<Node>,
    redis: Option<Redis>,
    scratch: Option<PathBuf>,
    database: Option<(String, String)>,
    keep: bool,
}

impl Target {
    /// Reaches the server at `--server`, or starts one.
    pub async fn start(args: &ServerArgs, out: &Path) -> anyhow::Result<Self> {
        Self::start_chain(args, out, 1).await
    }

    /// Reaches the server at `--server`, or starts one; with `replicas` ≥ 2, starts a
    /// `redis-server` and that many replicas (`r1`, `r2`, ...) on the same fresh Postgres
    /// database, and waits until every one is ready.
    pub async fn start_chain(
        args: &ServerArgs,
        out: &Path,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        let jwt_secret = args.auth.secret(args.server == "spawn")?;
        if args.server != "spawn" {
            if replicas > 1 {
                bail!("--replicas needs --server spawn: the load test starts the replicas itself");
            }
            let base = args.server.trim_end_matches('/').to_owned();
            if !base.starts_with("http://") {
                bail!("--server must be an http:// URL or 'spawn', not '{base}'");
            }
            let ws_url = format!("ws://{}/ws", &base["http://".len()..]);
            let target = Self {
                description: format!("external server {base}"),
                jwt_secret,
                nodes: vec![Node {
                    id: "server".into(),
                    base: base.clone(),
                    ws_url: ws_url.clone(),
                    metrics: args
                        .metrics_url
                        .clone()
                        .unwrap_or_else(|| format!("{base}/metrics")),
                    log: None,
                    pid: Arc::new(AtomicU32::new(args.server_pid.unwrap_or(0))),
                    child: None,
                    recipe: None,
                }],
                base,
                ws_url,
                spawned: false,
                redis: None,
                scratch: None,
                database: None,
                keep: true,
            };
            wait_ready(&target.base, Duration::from_secs(10)).await?;
            return Ok(target);
        }
        if replicas > 1 && args.journal != JournalKind::Postgres {
            bail!("--replicas {replicas} needs --journal postgres: the replicas share one Postgres journal");
        }
        if replicas > 1 && args.metrics_url.is_some() {
            bail!("--metrics-url names one engine's /metrics: with --replicas each replica serves its own on its port");
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
        // The server runs in its scratch folder: a relative path must not depend on that.
        let bin = bin.canonicalize().unwrap_or(bin);
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
        let scratch =
            std::env::temp_dir().join(format!("rail-loadtest-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let ports = free_ports(replicas.max(1))?;
        let mut env: Vec<(String, String)> = [
            ("RAIL_HOST", "127.0.0.1".to_owned()),
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
        let mut target = Self {
            base: String::new(),
            ws_url: String::new(),
            spawned: true,
            description: String::new(),
            jwt_secret,
            nodes: Vec::new(),
            redis: None,
            scratch: Some(scratch.clone()),
            database: None,
            keep: args.keep_journal,
        };
        let journal = match args.journal {
            JournalKind::Embedded => {
                let path = scratch.join("journal.db");
                env.push((
                    "RAIL_JOURNAL_PATH".into(),
                    path.to_string_lossy().into_owned(),
                ));
                format!("embedded journal {}", path.display())
            }
            JournalKind::Postgres => {
                let name = format!("rail_load_{stamp}_{}", std::process::id());
                psql(&args.database_url, &format!("CREATE DATABASE {name}"))?;
                let url = database_url_for(&args.database_url, &name);
                target.database = Some((args.database_url.clone(), name.clone()));
                env.push(("DATABASE_URL".into(), url));
                format!("Postgres journal (database {name})")
            }
        };
        if replicas > 1 {
            match Redis::start(&scratch.join("redis"), &out.join("redis.log")).await {
                Ok(redis) => {
                    env.push(("REDIS_URL".into(), redis.url()));
                    target.redis = Some(redis);
                }
                Err(e) => {
                    let _ = target.stop().await;
                    return Err(e);
                }
            }
        }
        for (i, port) in ports.iter().enumerate() {
            let (id, log) = if replicas > 1 {
                let id = format!("r{}", i + 1);
                let log = out.join(format!("replica-{id}.log"));
                (id, log)
            } else {
                ("server".to_owned(), out.join("server.log"))
            };
            let mut env = env.clone();
            env.push(("PORT".into(), port.to_string()));
            if replicas > 1 {
                env.push(("RAIL_REPLICA_ID".into(), id.clone()));
            }
            let recipe = Recipe {
                bin: bin.clone(),
                dir: scratch.clone(),
                env,
                log: log.clone(),
            };
            let child = match recipe.spawn(true) {
                Ok(c) => c,
                Err(e) => {
                    let _ = target.stop().await;
                    return Err(e);
                }
            };
            let metrics = match (&args.metrics_url, own_metrics_port(args)) {
                (Some(url), _) => url.clone(),
                (None, Some(p)) if replicas == 1 => format!("http://127.0.0.1:{p}/metrics"),
                _ => format!("http://127.0.0.1:{port}/metrics"),
            };
            target.nodes.push(Node {
                id,
                base: format!("http://127.0.0.1:{port}"),
                ws_url: format!("ws://127.0.0.1:{port}/ws"),
                metrics,
                log: Some(log),
                pid: Arc::new(AtomicU32::new(child.id())),
                child: Some(child),
                recipe: Some(recipe),
            });
        }
        target.base = target.nodes[0].base.clone();
        target.ws_url = target.nodes[0].ws_url.clone();
        target.description = if replicas > 1 {
            let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            format!(
                "{replicas} replicas of {} on 127.0.0.1:{} (r1..r{replicas}), redis-server on 127.0.0.1:{}, {journal}",
                bin.display(),
                ports.join(","),
                target.redis.as_ref().map_or(0, |r| r.port)
            )
        } else {
            format!(
                "spawned {} on 127.0.0.1:{}, {journal}",
                bin.display(),
                ports[0]
            )
        };
        for i in 0..target.nodes.len() {
            let node = &target.nodes[i];
            if let Err(e) = wait_ready(&node.base, Duration::from_secs(60)).await {
                let log = node.log_tail();
                let which = if replicas > 1 {
                    format!("replica {}", node.id)
                } else {
                    "the server".to_owned()
                };
                let _ = target.stop().await;
                bail!("{e}; the log of {which} ends with:\n{log}");
            }
        }
        Ok(target)
    }

    /// The first node's pid, when it runs here and is up.
    pub fn pid(&self) -> Option<u32> {
        self.nodes[0].pid()
    }

    /// The redis-server's pid, with replicas.
    pub fn redis_pid(&self) -> Option<u32> {
        self.redis.as_ref().map(|r| r.child.id())
    }

    /// The memory of the engine's processes that are up now, summed (RSS and peaks), when
    /// they run here.
    pub fn memory(&self) -> Option<Memory> {
        let readings: Vec<Memory> = self
            .nodes
            .iter()
            .filter_map(|n| memory_of(n.pid()?))
            .collect();
        (!readings.is_empty()).then(|| Memory {
            rss_bytes: readings.iter().map(|m| m.rss_bytes).sum(),
            peak_bytes: readings.iter().map(|m| m.peak_bytes).sum(),
        })
    }

    /// Kills a spawned server with SIGKILL (no shutdown, no drain: a crash), reaps it, and
    /// starts it again at once with the same port, journal, signing key and environment;
    /// returns when the new one answers `/readyz`. Its log goes on in the same file.
    pub async fn kill_and_restart(
        &mut self,
        node: usize,
        ready_within: Duration,
    ) -> anyhow::Result<Restart> {
        let (killed, killed_at) = self.kill(node).await?;
        let new_pid = self.restart(node, ready_within).await?;
        Ok(Restart {
            killed_pid: killed.killed_pid,
            new_pid,
            reaped_ms: killed.reaped_ms,
            downtime_ms: killed_at.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Kills one spawned node with SIGKILL and reaps it; it stays down. Also returns when the
    /// signal was sent.
    pub async fn kill(&mut self, node: usize) -> anyhow::Result<(Killed, Instant)> {
        self.nodes
            .get_mut(node)
            .ok_or_else(|| anyhow!("no node {node}"))?
            .kill()
            .await
    }

    /// Starts a killed node again with its port, journal, key and environment; its pid, once
    /// it answers `/readyz`.
    pub async fn restart(&mut self, node: usize, ready_within: Duration) -> anyhow::Result<u32> {
        let node = self
            .nodes
            .get_mut(node)
            .ok_or_else(|| anyhow!("no node {node}"))?;
        let Some(recipe) = node.recipe.as_ref() else {
            bail!("only a spawned server can be restarted");
        };
        if node.child.is_some() {
            bail!("{} is running", node.id);
        }
        let new = recipe.spawn(false)?;
        let new_pid = new.id();
        node.child = Some(new);
        node.pid.store(new_pid, Ordering::Relaxed);
        wait_ready(&node.base, ready_within).await?;
        Ok(new_pid)
    }

    /// Stops the spawned processes (SIGTERM, then SIGKILL after 10 s), the redis-server, and
    /// removes the journal. Returns how the first node that had died before being asked to
    /// stop had ended (a node the chaos killed and left down does not count).
    pub async fn stop(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.stop_all().await?.into_iter().next().map(|(_, s)| s))
    }

    /// Like [`Target::stop`], naming every node that had died before being asked to stop.
    pub async fn stop_all(&mut self) -> anyhow::Result<Vec<(String, ExitStatus)>> {
        let mut died_early = Vec::new();
        let mut stopping = Vec::new();
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                node.pid.store(0, Ordering::Relaxed);
                match child.try_wait()? {
                    Some(status) => died_early.push((node.id.clone(), status)),
                    None => {
                        let _ = Command::new("kill")
                            .args(["-TERM", &child.id().to_string()])
                            .status();
                        stopping.push(child);
                    }
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for mut child in stopping {
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if let Some(mut redis) = self.redis.take() {
            redis.kill();
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

/// The port a spawned server serves `/metrics` on when it has one of its own:
/// `RAIL_METRICS_PORT` from `--server-env`, else from this environment (which it inherits).
fn own_metrics_port(args: &ServerArgs) -> Option<u16> {
    args.server_env
        .iter()
        .rev()
        .find(|(k, _)| k == "RAIL_METRICS_PORT")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("RAIL_METRICS_PORT").ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until `{base}/readyz` answers 200.
async fn wait_ready(base: &str, limit: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    let url = format!("{base}/readyz");
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
            bail!("{base} did not become ready within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
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
