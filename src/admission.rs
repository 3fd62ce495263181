//! Load shedding: the engine takes at most so many REST commands at once, so that an
//! overloaded replica answers at once with `503 overloaded` instead of queueing work (and
//! memory) without bound. New orders are refused first, at half the limit: under a rush the
//! kitchen finishes the orders it has before it takes more. New orders are refused as well
//! while fired tickets reach their stations late (`shed_when_screens_behind_ms`, see
//! [`rail_actors::lag::fanout`]): the commands are answered, yet the fan-out to the screens is
//! behind, and new orders would only queue more tickets (and memory) behind it. One slow
//! screen's connection does not count: its own queue is bounded, and it is closed when full.
//! The screens' ticket commands over the websocket are never refused: they only act on
//! tickets of orders already taken, and they free capacity.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use rail_actors::lag::Lag;
use rail_actors::metrics;

use crate::error::ApiError;

/// Commands in the engine's hands (received, not yet answered) on this replica.
#[derive(Debug)]
pub struct Admission {
    in_flight: AtomicUsize,
    limit: usize,
    lag: &'static Lag,
    max_lag: Duration,
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
    /// and `lag` is under `max_lag`.
    pub fn new(limit: usize, max_lag: Duration, lag: &'static Lag) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            limit: limit.max(2),
            lag,
            max_lag,
        }
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
        let lag = Box::leak(Box::default());
        let admission = web::Data::new(Admission::new(4, Duration::from_secs(1), lag));
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
    fn new_orders_wait_while_the_fan_out_is_behind() {
        let lag: &'static Lag = Box::leak(Box::default());
        let admission = web::Data::new(Admission::new(100, Duration::from_millis(500), lag));
        for _ in 0..40 {
            lag.observe(Duration::from_secs(2));
        }
        let refused = Admission::admit(&admission, Ask::NewOrder).unwrap_err();
        assert_eq!(refused.code, "overloaded");
        Admission::admit(&admission, Ask::Command).expect("commands on taken orders go on");
        for _ in 0..40 {
            lag.observe(Duration::from_millis(5));
        }
        Admission::admit(&admission, Ask::NewOrder).expect("taken once the fan-out caught up");
    }
}
