//! Load shedding: the engine takes at most so many REST commands at once, so that an
//! overloaded replica answers at once with `503 overloaded` instead of queueing work (and
//! memory) without bound. New orders are refused first, at half the limit: under a rush the
//! kitchen finishes the orders it has before it takes more. New orders are refused as well
//! while fired tickets reach the station screens late (`shed_when_screens_behind_ms`): the
//! commands are answered, yet the fan-out behind them is behind, and new orders would only
//! queue more tickets (and memory) behind it. The screens' ticket commands are never refused:
//! they only act on tickets of orders already taken, and they free capacity.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::web;
use rail_actors::metrics;

use crate::error::ApiError;

/// Commands in the engine's hands (received, not yet answered) on this replica.
#[derive(Debug)]
pub struct Admission {
    in_flight: AtomicUsize,
    limit: usize,
    lag: ScreenLag,
    max_lag: Duration,
}

/// How late fired tickets reach the station screens, smoothed over the last few tickets; a
/// reading older than `FRESH` is no reading (no ticket is flowing, so nothing is behind).
#[derive(Debug)]
pub struct ScreenLag {
    started: Instant,
    /// Smoothed lag, in microseconds.
    smoothed: AtomicU64,
    /// When it was last read off a screen, in milliseconds since `started`.
    seen_at: AtomicU64,
}

const FRESH: Duration = Duration::from_secs(1);

impl ScreenLag {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            smoothed: AtomicU64::new(0),
            seen_at: AtomicU64::new(0),
        }
    }

    /// A fired ticket was written to a screen `age` after its fire was committed.
    pub fn observe(&self, age: Duration) {
        let sample = age.as_micros().min(u64::MAX as u128) as u64;
        let old = self.smoothed.load(Ordering::Relaxed);
        // An exponential average over about eight tickets; racing writers lose a sample.
        let new = old - old / 8 + sample / 8;
        self.smoothed.store(new, Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        self.seen_at.store(now, Ordering::Relaxed);
    }

    /// The smoothed lag, or zero when no ticket reached a screen lately.
    pub fn current(&self) -> Duration {
        let seen = Duration::from_millis(self.seen_at.load(Ordering::Relaxed));
        if self.started.elapsed().saturating_sub(seen) > FRESH {
            return Duration::ZERO;
        }
        Duration::from_micros(self.smoothed.load(Ordering::Relaxed))
    }
}

/// What is being asked: opening an order, or any other command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    NewOrder,
    Command,
}

/// A command let in; it leaves the count when this is dropped (answered, or its client gone).
#[derive(Debug)]
pub struct Admitted(web::Data<Admission>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// `limit` commands at once (at least 2); new orders while fewer than half are in hand
    /// and the screens are less than `max_lag` behind.
    pub fn new(limit: usize, max_lag: Duration) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            limit: limit.max(2),
            lag: ScreenLag::new(),
            max_lag,
        }
    }

    /// Where the screens' writers report how late fired tickets reach them.
    pub fn screen_lag(&self) -> &ScreenLag {
        &self.lag
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Lets a command in, or refuses it with `503 overloaded` (nothing was done: retry).
    pub fn admit(this: &web::Data<Self>, ask: Ask) -> Result<Admitted, ApiError> {
        let cap = match ask {
            Ask::NewOrder => this.limit / 2,
            Ask::Command => this.limit,
        };
        let before = this.in_flight.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(this.clone());
        let behind = ask == Ask::NewOrder && this.lag.current() > this.max_lag;
        if before >= cap || behind {
            drop(admitted);
            metrics::shed(match ask {
                Ask::NewOrder => "new_order",
                Ask::Command => "command",
            });
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the kitchen's system is at capacity: nothing was done, retry in a second",
            ));
        }
        Ok(admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_orders_are_refused_first_and_the_count_returns_to_zero() {
        let admission = web::Data::new(Admission::new(4, Duration::from_secs(1)));
        let first = Admission::admit(&admission, Ask::NewOrder).expect("room");
        let second = Admission::admit(&admission, Ask::NewOrder).expect("room");
        let refused = Admission::admit(&admission, Ask::NewOrder).unwrap_err();
        assert_eq!(refused.code, "overloaded");
        let third = Admission::admit(&admission, Ask::Command).expect("room for a command");
        let fourth = Admission::admit(&admission, Ask::Command).expect("room for a command");
        assert!(Admission::admit(&admission, Ask::Command).is_err());
        assert_eq!(admission.in_flight(), 4);
        drop((first, second, third, fourth));
        assert_eq!(admission.in_flight(), 0);
        Admission::admit(&admission, Ask::NewOrder).expect("room again");
    }

    #[test]
    fn new_orders_wait_while_the_screens_are_behind() {
        let admission = web::Data::new(Admission::new(100, Duration::from_millis(500)));
        for _ in 0..40 {
            admission.screen_lag().observe(Duration::from_secs(2));
        }
        assert!(admission.screen_lag().current() > Duration::from_millis(500));
        let refused = Admission::admit(&admission, Ask::NewOrder).unwrap_err();
        assert_eq!(refused.code, "overloaded");
        Admission::admit(&admission, Ask::Command).expect("commands on taken orders go on");
        // The screens catch up: new orders are taken again.
        for _ in 0..40 {
            admission.screen_lag().observe(Duration::from_millis(5));
        }
        Admission::admit(&admission, Ask::NewOrder).expect("taken once the screens caught up");
        // A reading that nothing refreshed for a while is no reading.
        for _ in 0..40 {
            admission.screen_lag().observe(Duration::from_secs(2));
        }
        std::thread::sleep(FRESH + Duration::from_millis(100));
        assert_eq!(admission.screen_lag().current(), Duration::ZERO);
        Admission::admit(&admission, Ask::NewOrder).expect("no stale refusal");
    }
}
