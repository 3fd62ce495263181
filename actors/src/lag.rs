//! How far the fan-out is behind: how late fired tickets reach their stations' actors, on
//! their way to the screens. The edge sheds new orders while it is too far behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// A lag smoothed over the last few samples; a reading older than [`FRESH`] is no reading
/// (nothing is flowing, so nothing is behind).
#[derive(Debug)]
pub struct Lag {
    started: Instant,
    /// Smoothed lag, in microseconds.
    smoothed: AtomicU64,
    /// When it was last observed, in milliseconds since `started`.
    seen_at: AtomicU64,
}

/// How long a reading counts.
pub const FRESH: Duration = Duration::from_secs(1);

impl Default for Lag {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            smoothed: AtomicU64::new(0),
            seen_at: AtomicU64::new(0),
        }
    }
}

impl Lag {
    /// Something arrived `age` after it was recorded.
    pub fn observe(&self, age: Duration) {
        let sample = age.as_micros().min(u64::MAX as u128) as u64;
        let old = self.smoothed.load(Ordering::Relaxed);
        // An exponential average over about eight samples; racing observers lose a sample.
        self.smoothed
            .store(old - old / 8 + sample / 8, Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        self.seen_at.store(now, Ordering::Relaxed);
    }

    /// The smoothed lag, or zero when nothing was observed lately.
    pub fn current(&self) -> Duration {
        let seen = Duration::from_millis(self.seen_at.load(Ordering::Relaxed));
        if self.started.elapsed().saturating_sub(seen) > FRESH {
            return Duration::ZERO;
        }
        Duration::from_micros(self.smoothed.load(Ordering::Relaxed))
    }
}

static FANOUT: LazyLock<Lag> = LazyLock::new(Lag::default);

/// How late fired tickets reach their stations' actors in this process (from the fire's
/// record to the station taking it): the commit feed's and the actors' backlog, whatever
/// any one screen's connection does.
pub fn fanout() -> &'static Lag {
    &FANOUT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooths_and_forgets() {
        let lag = Lag::default();
        assert_eq!(lag.current(), Duration::ZERO);
        for _ in 0..40 {
            lag.observe(Duration::from_secs(2));
        }
        assert!(lag.current() > Duration::from_millis(1500));
        lag.observe(Duration::from_millis(1));
        assert!(
            lag.current() > Duration::from_secs(1),
            "one sample does not undo a trend"
        );
        for _ in 0..40 {
            lag.observe(Duration::from_millis(1));
        }
        assert!(lag.current() < Duration::from_millis(50));
        for _ in 0..40 {
            lag.observe(Duration::from_secs(2));
        }
        std::thread::sleep(FRESH + Duration::from_millis(100));
        assert_eq!(
            lag.current(),
            Duration::ZERO,
            "a stale reading is no reading"
        );
    }
}
