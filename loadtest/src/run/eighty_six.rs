//! A manager's 86s: once in each `--eighty-six-every` seconds of the rush, an item drawn from
//! the seed is 86'd at a branch (`PUT .../86/{item}`, as the manager) and put back
//! (`DELETE .../86/{item}`) `--eighty-six-for-ms` later. The run's book knows which items are
//! 86'd from just before the 86 is sent until the item is back, so a waiter refused `item_86`
//! knows which lines to leave out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;

use super::Shared;
use crate::plan::{self, EightySix};

/// Plays every 86 of the rush; returns once the last item is back.
pub(super) async fn eighty_six(shared: &Shared, t0: Instant) {
    let args = &shared.args;
    let every = Duration::from_secs_f64(args.eighty_six_every);
    let plan = plan::eighty_sixes(
        args.seed,
        Duration::from_secs(args.duration),
        every,
        Duration::from_millis(args.eighty_six_for_ms),
        &shared.layout,
    );
    futures_util::future::join_all(plan.into_iter().map(|e| one(shared, t0, e))).await;
}

/// One 86, from the moment it comes to the item put back.
async fn one(shared: &Shared, t0: Instant, e: EightySix) {
    tokio::time::sleep_until((t0 + e.at).into()).await;
    let c = &shared.counts;
    let branch = &shared.layout.branches[e.branch];
    let item = &shared.layout.items[e.item].id;
    let path = format!("/api/v1/branches/{branch}/86/{item}");
    shared.eighty_sixed.lock().expect("lock")[e.branch].insert(e.item);
    let out = shared
        .manage("eighty_six", Method::PUT, e.branch, &path)
        .await;
    if out {
        c.eighty_sixed.fetch_add(1, Ordering::Relaxed);
    } else {
        c.eighty_six_failed.fetch_add(1, Ordering::Relaxed);
    }
    tokio::time::sleep(e.for_).await;
    // Put back, even when the 86 seemed to fail (it may have been carried out).
    if shared
        .manage("restore", Method::DELETE, e.branch, &path)
        .await
    {
        c.restored.fetch_add(1, Ordering::Relaxed);
        shared.eighty_sixed.lock().expect("lock")[e.branch].remove(&e.item);
    } else {
        // Left in the book: waiters go on leaving the item out.
        c.eighty_six_failed.fetch_add(1, Ordering::Relaxed);
    }
}
