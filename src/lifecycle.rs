//! Whether this replica takes traffic, and the signal that tells its sockets to go: shared by
//! start-up (which sets it), the readiness probe and every websocket session (which read it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::metrics;
use tokio::sync::watch;

/// Readiness and the stop signal of one replica.
#[derive(Clone)]
pub struct Lifecycle {
    ready: Arc<AtomicBool>,
    stopping: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// Not ready, not stopping.
    pub fn new() -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(false)),
            stopping: watch::Sender::new(false),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
        metrics::set_ready(ready);
    }

    /// Resolves when the server starts closing its sockets.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tells every socket to close with a reconnect hint.
    pub fn stop_sockets(&self) {
        let _ = self.stopping.send(true);
    }
}
