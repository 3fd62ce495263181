//! The rush: orders arrive open loop, at the times the seeded planner gives, whether or not the
//! engine keeps up. Each arrival gets its waiter (`waiter`), unless `--max-in-flight` orders are
//! in flight already: then it is skipped and counted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::order_task;
use super::Shared;
use crate::plan::{Planner, Shape};

/// Lets the orders arrive for `--duration`; returns when the last arrival is past.
pub(super) async fn rush(shared: &Arc<Shared>, t0: Instant) -> Instant {
    let args = &shared.args;
    let duration = Duration::from_secs(args.duration);
    let mut planner = Planner::new(
        args.seed,
        Shape {
            rate: args.orders_per_sec,
            arrival: args.arrival,
            prep_min_ms: args.prep_min_ms,
            prep_max_ms: args.prep_max_ms,
            course_gap_ms: args.course_gap_ms,
            one_call_share: args.one_call_share,
            void_share: args.void_share,
            recall_share: args.recall_share,
        },
        &shared.layout,
    );
    loop {
        let plan = planner.next_order();
        if plan.at >= duration {
            break;
        }
        tokio::time::sleep_until((t0 + plan.at).into()).await;
        shared.counts.orders_planned.fetch_add(1, Ordering::Relaxed);
        if shared.in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
            shared.counts.orders_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(order_task(shared.clone(), Arc::new(plan)));
    }
    Instant::now()
}
