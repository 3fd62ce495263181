//! The drain: after the last arrival no order comes. The run waits (at most
//! `--drain-timeout`) for the orders in flight to close, then until the sockets go quiet (at
//! most 10 s more); once the orders are read back, every screen and tablet hangs up.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Shared;

/// Waits for the orders in flight (bounded), then for the stragglers; how long the orders took
/// to drain.
pub(super) async fn drain(shared: &Shared, load_end: Instant) -> Duration {
    let drain_limit = Duration::from_secs(shared.args.drain_timeout);
    while shared.in_flight.load(Ordering::Relaxed) > 0 && load_end.elapsed() < drain_limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained_in = load_end.elapsed();
    // Stragglers: the screens that do not act on a ticket may see it a moment later, and
    // a server that fell behind is still sending. Wait until the frames stop (at most
    // 10 s).
    let settle = Instant::now();
    let mut frames = shared.rec.frames_total();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now_frames = shared.rec.frames_total();
        if now_frames == frames || settle.elapsed() > Duration::from_secs(10) {
            break;
        }
        frames = now_frames;
    }
    drained_in
}

/// Tells every screen and tablet to hang up, and waits for each (at most 5 s).
pub(super) async fn hang_up(stop: &watch::Sender<bool>, devices: Vec<JoinHandle<()>>) {
    let _ = stop.send(true);
    for t in devices {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
}
