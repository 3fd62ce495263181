//! A fault-injecting TCP proxy: sits between the engine and Postgres and adds latency, cuts
//! live connections, or refuses new ones, on command.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

struct Faults {
    delay_ms: AtomicU64,
    refuse: AtomicBool,
    cuts: watch::Sender<u64>,
}

/// The proxy's handle; it stops when the test's runtime does.
pub struct FaultProxy {
    pub port: u16,
    faults: Arc<Faults>,
}

impl FaultProxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Faults {
            delay_ms: AtomicU64::new(0),
            refuse: AtomicBool::new(false),
            cuts: watch::Sender::new(0),
        });
        let f = faults.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if f.refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                tokio::spawn(pipe(client, upstream.clone(), f.clone()));
            }
        });
        Self { port, faults }
    }

    /// Delays every chunk in both directions.
    pub fn set_latency(&self, delay: Duration) {
        self.faults
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Closes new connections at once.
    pub fn set_refuse(&self, refuse: bool) {
        self.faults.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Drops every live connection.
    pub fn cut(&self) {
        self.faults.cuts.send_modify(|n| *n += 1);
    }

    pub fn heal(&self) {
        self.set_latency(Duration::ZERO);
        self.set_refuse(false);
    }
}

async fn pipe(client: TcpStream, upstream: String, faults: Arc<Faults>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let mut cuts = faults.cuts.subscribe();
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::select! {
        _ = pump(cr, sw, faults.clone()) => {}
        _ = pump(sr, cw, faults.clone()) => {}
        _ = cuts.changed() => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    faults: Arc<Faults>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = faults.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
