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
//!
//! New orders are refused as well while the replica's resident memory is above
//! `shed_when_memory_above_mib` (by default 85% of its container's limit): the orders it holds
//! finish and free what they hold, rather than the replica being killed for memory with every
//! branch on it. Memory is read every [`MEMORY_EVERY`] by [`watch_memory`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::metrics;
use actix_web::web;
use rail_actors::lag::Lag;

use crate::error::{ApiError, ErrorCode};

/// Commands in the engine's hands (received, not yet answered) on this replica.
#[derive(Debug)]
pub struct Admission {
    in_flight: AtomicUsize,
    limit: usize,
    lag: &'static Lag,
    max_lag: Duration,
    /// Resident memory above which new orders are refused, in bytes (none: no limit).
    memory_limit: Option<u64>,
    /// The last reading of the replica's resident memory, in bytes.
    resident: AtomicU64,
}

/// How often [`watch_memory`] reads the replica's resident memory.
pub const MEMORY_EVERY: Duration = Duration::from_millis(250);

/// Why a command was refused (the `reason` label of `rail_shed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Too many commands in hand.
    InFlight,
    /// Fired tickets reach their stations late.
    FanoutLag,
    /// Resident memory above the limit.
    Memory,
}

impl Shed {
    fn label(self) -> &'static str {
        match self {
            Self::InFlight => "in_flight",
            Self::FanoutLag => "fanout_lag",
            Self::Memory => "memory",
        }
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
    /// `limit` commands at once (at least 2); new orders while fewer than half are in hand,
    /// `lag` is under `max_lag` and resident memory under `memory_limit` bytes.
    pub fn new(
        limit: usize,
        max_lag: Duration,
        lag: &'static Lag,
        memory_limit: Option<u64>,
    ) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            limit: limit.max(2),
            lag,
            max_lag,
            memory_limit,
            resident: AtomicU64::new(0),
        }
    }

    /// The replica's resident memory is now `bytes`.
    pub fn observe_memory(&self, bytes: u64) {
        self.resident.store(bytes, Ordering::Relaxed);
    }

    /// Resident memory above which new orders are refused, in bytes.
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
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
        let refused = if before >= cap {
            Some(Shed::InFlight)
        } else if ask == Ask::NewOrder && this.lag.current() > this.max_lag {
            Some(Shed::FanoutLag)
        } else if ask == Ask::NewOrder
            && this
                .memory_limit
                .is_some_and(|limit| this.resident.load(Ordering::Relaxed) > limit)
        {
            Some(Shed::Memory)
        } else {
            None
        };
        if let Some(why) = refused {
            drop(admitted);
            let ask = match ask {
                Ask::NewOrder => "new_order",
                Ask::Command => "command",
            };
            metrics::shed(ask, why.label());
            return Err(ApiError::new(
                ErrorCode::Overloaded,
                "the kitchen's system is at capacity: nothing was done, retry in a second",
            ));
        }
        Ok(admitted)
    }
}

/// The memory limit new orders are refused above: `mib` when set, otherwise 85% of the
/// container's memory limit (`container_limit`), otherwise none.
pub fn memory_limit(mib: u64, container_limit: Option<u64>) -> Option<u64> {
    match mib {
        0 => container_limit.map(|bytes| bytes / 20 * 17),
        mib => Some(mib.saturating_mul(1024 * 1024)),
    }
}

/// The memory limit of the cgroup this process runs in (cgroup v2 `memory.max`, else v1
/// `memory.limit_in_bytes`), if it has one.
pub fn container_memory_limit() -> Option<u64> {
    [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|text| parse_cgroup_limit(&text))
}

/// A cgroup's memory limit: `max` (v2) or a page-rounded `i64::MAX` (v1) mean none.
fn parse_cgroup_limit(text: &str) -> Option<u64> {
    let bytes: u64 = text.trim().parse().ok()?;
    (bytes < 1 << 60).then_some(bytes)
}

/// This process's resident memory (`VmRSS` of `/proc/self/status`), in bytes.
pub fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Reads the replica's resident memory every [`MEMORY_EVERY`] for `admission`, while the
/// actix system runs. Nothing to do without a memory limit.
pub fn watch_memory(admission: web::Data<Admission>) {
    if admission.memory_limit.is_none() {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut every = tokio::time::interval(MEMORY_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Some(bytes) = resident_memory() {
                admission.observe_memory(bytes);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_orders_are_refused_first_and_the_count_returns_to_zero() {
        let lag = Box::leak(Box::default());
        let admission = web::Data::new(Admission::new(4, Duration::from_secs(1), lag, None));
        let first = Admission::admit(&admission, Ask::NewOrder).expect("room");
        let second = Admission::admit(&admission, Ask::NewOrder).expect("room");
        let refused = Admission::admit(&admission, Ask::NewOrder).unwrap_err();
        assert_eq!(refused.code.as_str(), "overloaded");
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
        let admission = web::Data::new(Admission::new(100, Duration::from_millis(500), lag, None));
        for _ in 0..40 {
            lag.observe(Duration::from_secs(2));
        }
        let refused = Admission::admit(&admission, Ask::NewOrder).unwrap_err();
        assert_eq!(refused.code.as_str(), "overloaded");
        Admission::admit(&admission, Ask::Command).expect("commands on taken orders go on");
        for _ in 0..40 {
            lag.observe(Duration::from_millis(5));
        }
        Admission::admit(&admission, Ask::NewOrder).expect("taken once the fan-out caught up");
    }

    #[test]
    fn new_orders_wait_while_memory_is_above_the_limit() {
        let lag: &'static Lag = Box::leak(Box::default());
        let admission = web::Data::new(Admission::new(
            100,
            Duration::from_secs(1),
            lag,
            Some(400 << 20),
        ));
        admission.observe_memory(300 << 20);
        Admission::admit(&admission, Ask::NewOrder).expect("under the limit");
        admission.observe_memory(401 << 20);
        let refused = Admission::admit(&admission, Ask::NewOrder).unwrap_err();
        assert_eq!(refused.code.as_str(), "overloaded");
        Admission::admit(&admission, Ask::Command).expect("orders taken go on");
        admission.observe_memory(399 << 20);
        Admission::admit(&admission, Ask::NewOrder).expect("taken again below the limit");
    }

    #[test]
    fn the_memory_limit_defaults_to_most_of_the_containers() {
        assert_eq!(memory_limit(0, None), None);
        assert_eq!(memory_limit(0, Some(400 << 20)), Some(340 << 20));
        assert_eq!(memory_limit(300, Some(512 << 20)), Some(300 << 20));
        assert_eq!(memory_limit(300, None), Some(300 << 20));
    }

    #[test]
    fn reads_cgroup_limits_and_resident_memory() {
        assert_eq!(parse_cgroup_limit("536870912\n"), Some(512 << 20));
        assert_eq!(parse_cgroup_limit("max\n"), None);
        // cgroup v1 without a limit: i64::MAX rounded down to a page.
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        let status = "Name:\trail\nVmPeak:\t  900 kB\nVmRSS:\t   123456 kB\nThreads:\t7\n";
        assert_eq!(parse_vm_rss(status), Some(123456 * 1024));
        let ours = resident_memory().expect("this process's resident memory");
        assert!(ours > 1 << 20, "{ours} bytes resident");
    }
}
