//! What one socket, or one address, may take from the server: the size of a frame, frames a
//! second, open sockets per address, and the bounded queue of pushes whose overflow closes a
//! screen too slow to keep up.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use actix_ws::{AggregatedMessageStream, MessageStream};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rail_actors::subscriber::{Push, Subscriber};
use tokio::sync::{mpsc, Notify};

/// Reads a socket's frames whole, refusing any (or any continued message) over `max` bytes.
pub(super) fn frames_up_to(stream: MessageStream, max: usize) -> AggregatedMessageStream {
    stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max)
}

/// Open websockets per client address.
#[derive(Clone, Default)]
pub struct Addresses(Arc<Mutex<HashMap<IpAddr, u32>>>);

impl Addresses {
    /// A place for one more connection from `ip`, if it is under `cap`.
    pub(super) fn take(&self, ip: IpAddr, cap: u32) -> Option<Slot> {
        let mut open = self.0.lock().expect("address counts");
        let n = open.entry(ip).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            addresses: self.clone(),
        })
    }
}

/// One connection's place under its address's cap; dropping it frees the place.
pub struct Slot {
    ip: IpAddr,
    addresses: Addresses,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.addresses.0.lock().expect("address counts");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A socket's frame budget: so many frames a second, in bursts up to a limit.
pub(super) struct FrameBudget {
    limiter: DefaultDirectRateLimiter,
    burst: u32,
    /// Frames refused in a row.
    refused: u32,
}

/// What the budget says to one frame.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Spend {
    /// Carry it out.
    Allowed,
    /// Refuse it: the client is to slow down.
    Refused,
    /// More frames in a row were refused than a burst holds: the client keeps flooding.
    Exhausted,
}

impl FrameBudget {
    pub(super) fn new(per_second: u32, burst: u32) -> Self {
        let at_least_one = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let burst = at_least_one(burst);
        let quota = Quota::per_second(at_least_one(per_second)).allow_burst(burst);
        Self {
            limiter: RateLimiter::direct(quota),
            burst: burst.get(),
            refused: 0,
        }
    }

    /// Spends one frame's worth of the budget.
    pub(super) fn spend(&mut self) -> Spend {
        if self.limiter.check().is_ok() {
            self.refused = 0;
            return Spend::Allowed;
        }
        self.refused += 1;
        if self.refused > self.burst {
            Spend::Exhausted
        } else {
            Spend::Refused
        }
    }
}

/// The sending end of a session's bounded queue of pushes. The engine pushes without
/// waiting; a push that finds the queue full drops the subscription and raises the overflow
/// signal, on which the session closes the screen as a slow consumer.
pub(super) struct SendQueue {
    pushes: mpsc::Sender<Push>,
    overflow: Arc<Notify>,
}

impl SendQueue {
    /// A queue of `capacity` pushes (at least one) and its receiving end.
    pub(super) fn new(capacity: usize) -> (Self, mpsc::Receiver<Push>) {
        let (pushes, queued) = mpsc::channel(capacity.max(1));
        let overflow = Arc::new(Notify::new());
        (Self { pushes, overflow }, queued)
    }

    /// The engine's handle on this queue for one subscription of session `session`.
    pub(super) fn subscriber(&self, session: u64) -> Subscriber {
        Subscriber::new(session, self.pushes.clone(), self.overflow.clone())
    }

    /// Resolves once a push has found the queue full.
    pub(super) async fn overflowed(&self) {
        self.overflow.notified().await;
    }
}
