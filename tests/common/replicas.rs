//! Several engine processes as replicas of one chain: one Postgres database, and a Redis
//! server of the test's own on a free port, so that the test can kill and restart it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{client, fresh_database, Server, Store, TestJournal, SECRET};

/// How long a lease runs in these tests (a fifth of it is the placement tick).
pub const LEASE_TTL: Duration = Duration::from_millis(2000);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of the test's own, keeping nothing on disk.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on its port (after `kill`), empty.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server could not start ({e}): it is needed for the replica tests; scripts/test installs it (Debian: apt-get install redis-server)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pings().await {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn pings(&self) -> bool {
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").await.is_ok()
            && matches!(s.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    /// SIGKILL: every connection drops, every subscription and key is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh Postgres database, whatever journal the rest of the suite runs on: replicas share
/// one.
pub async fn shared_journal() -> TestJournal {
    TestJournal {
        store: Store::Postgres(fresh_database().await),
        _dir: tempfile::tempdir().unwrap(),
    }
}

/// The database URL of a shared journal.
pub fn database_url(journal: &TestJournal) -> String {
    match &journal.store {
        Store::Postgres(url) => url.clone(),
        Store::File(_) => unreachable!("replicas share a Postgres journal"),
    }
}

/// One replica process.
pub struct Replica {
    pub id: String,
    pub server: Server,
    pub port: u16,
}

impl Replica {
    /// Starts a replica and waits until it is ready (its branches placed).
    pub async fn start(
        id: &str,
        database_url: &str,
        redis_url: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let log_dir = std::env::var_os("RAIL_REPLICA_LOGS").map(PathBuf::from);
        let (stdout, stderr) = match &log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).unwrap();
                let file = std::fs::File::create(dir.join(format!("{id}.log"))).unwrap();
                (file.try_clone().unwrap().into(), file.into())
            }
            None => (Stdio::null(), Stdio::inherit()),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_rail"))
            .env("RAIL_HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url)
            .env("RAIL_REPLICA_ID", id)
            .env("RAIL_LEASE_TTL_MS", LEASE_TTL.as_millis().to_string())
            .env("RAIL_SHUTDOWN_DRAIN_SECONDS", "0")
            .env("RUST_LOG", if log_dir.is_some() { "info" } else { "warn" })
            .env("JWT_SECRET", SECRET)
            .envs(env.iter().copied())
            .env("RAIL_LOG_FORMAT", "json")
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("server binary starts");
        let replica = Self {
            id: id.to_owned(),
            server: Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
                client: client(),
            },
            port,
        };
        replica.wait_ready().await;
        replica
    }

    pub fn base(&self) -> &str {
        &self.server.base
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .server
                .client
                .get(format!("{}/readyz", self.base()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "replica {} not ready", self.id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal to the process (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.server.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(self) {
        drop(self);
    }

    /// The branches this replica says it writes, from its metrics.
    pub async fn owns(&self, branch: &str) -> bool {
        let series = format!("rail_branch_owned{{branch=\"{branch}\"}}");
        self.server.metric(&series).await == Some(1.0)
    }
}

impl Drop for Replica {
    /// A replica never outlives its test, whatever the test's outcome.
    fn drop(&mut self) {
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
    }
}

/// Who holds a branch's lease, by the database (the owner's id and epoch, and whether it runs).
pub async fn lease_of(database_url: &str, branch: &str) -> Option<(String, i64, bool)> {
    let (client, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_opt(
            "SELECT owner, epoch, expires_at > now() FROM branch_leases WHERE branch = $1",
            &[&branch],
        )
        .await
        .unwrap()?;
    Some((row.get(0), row.get(1), row.get(2)))
}

/// Waits until a replica holds a running lease of the branch; returns its id.
pub async fn owner_of(database_url: &str, branch: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some((owner, _, true)) = lease_of(database_url, branch).await {
            return owner;
        }
        assert!(Instant::now() < deadline, "nobody took {branch}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event position a screen was sent, in order, checked for gaps and repeats.
pub fn assert_positions_increase(frames: &[Value]) {
    let positions: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["position"].as_u64().expect("an event has a position"))
        .collect();
    for pair in positions.windows(2) {
        assert!(
            pair[0] < pair[1],
            "a screen saw position {} then {}",
            pair[0],
            pair[1]
        );
    }
}
