//! The delivery check: every ticket the engine acknowledged reached every screen of its
//! station exactly once, with the lines of the fire's answer; every acknowledged void of a
//! fired line reached every screen of each ticket that held it (`line_voided`, and
//! `ticket_voided` for a ticket left with no line), and every acknowledged recall every screen
//! of its station (`ticket_recalled`), once each; and every fire whose expo bump was
//! acknowledged had its ready notice reach the table once. Also the same count, cheaply, for
//! the orders closed in a window of the run (`loadtest soak` reads it every minute).

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{json, Value};

use super::{Shared, TicketTrack};

impl TicketTrack {
    /// Deliveries of this ticket still missing from the `k` screens of its station: the ticket
    /// itself once its fire was acknowledged, and the void and recall of it that were.
    fn missing(&self, k: u64) -> u64 {
        let short = |expected: bool, screens: u64| {
            if expected {
                k.saturating_sub(u64::from(screens.count_ones()))
            } else {
                0
            }
        };
        short(self.confirmed_lines.is_some(), self.screens)
            + short(self.void_expected, self.void_screens)
            + short(self.voided_expected, self.voided_screens)
            + short(self.recall_acked, self.recall_screens)
    }
}

/// Deliveries missing (tickets, voids, recalls) of the orders whose close was answered in
/// `[from, to)`: by then every screen of their stations should have had all of it.
pub(super) fn missing_of_orders_closed(shared: &Shared, from: Instant, to: Instant) -> u64 {
    let closed: Vec<String> = shared
        .completed
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, &at)| at >= from && at < to)
        .map(|(id, _)| id.clone())
        .collect();
    if closed.is_empty() {
        return 0;
    }
    let ticket_ids: Vec<String> = {
        let acked = shared.acked.lock().expect("lock");
        closed
            .iter()
            .filter_map(|id| acked.get(id))
            .flat_map(|o| o.tickets.iter().cloned())
            .collect()
    };
    let k = shared.args.screens_per_station as u64;
    let tickets = shared.tickets.lock().expect("lock");
    ticket_ids
        .iter()
        .map(|id| tickets.get(id).map_or(k, |t| t.missing(k)))
        .sum()
}

/// What the screens and tablets received, against what the engine acknowledged.
pub struct Verification {
    pub tickets_confirmed: u64,
    pub deliveries_expected: u64,
    pub deliveries: u64,
    pub lost: u64,
    /// Of `lost`, deliveries of tickets whose order closed: no longer in flight anywhere.
    pub lost_in_finished_orders: u64,
    pub tickets_incomplete: u64,
    pub duplicated: u64,
    pub events_redelivered: u64,
    pub line_mismatches: u64,
    pub unconfirmed_tickets: u64,
    pub screens_before_ack: u64,
    pub ready_expected: u64,
    pub ready_received: u64,
    pub ready_lost: u64,
    pub ready_duplicated: u64,
    pub ready_unexpected: u64,
    /// Tickets holding a line whose void (after its fire) was acknowledged, and their
    /// `line_voided` deliveries expected, missing and duplicated.
    pub void_tickets: u64,
    pub void_deliveries_expected: u64,
    pub void_lost: u64,
    /// Tickets that void left with no line, and their `ticket_voided` deliveries missing.
    pub voided_tickets: u64,
    pub voided_deliveries_expected: u64,
    pub voided_lost: u64,
    pub voids_duplicated: u64,
    /// Tickets whose recall was acknowledged, and their `ticket_recalled` deliveries expected,
    /// missing and duplicated.
    pub recalled_tickets: u64,
    pub recall_deliveries_expected: u64,
    pub recall_lost: u64,
    pub recalls_duplicated: u64,
    pub samples: Vec<String>,
}

/// Reads what the screens and tablets received, at the end of the run.
pub(super) fn verify(shared: &Shared) -> Verification {
    let k = shared.args.screens_per_station as u64;
    let layout = &shared.layout;
    let mut v = Verification {
        tickets_confirmed: 0,
        deliveries_expected: 0,
        deliveries: 0,
        lost: 0,
        lost_in_finished_orders: 0,
        tickets_incomplete: 0,
        duplicated: shared.counts.tickets_duplicated.load(Ordering::Relaxed),
        events_redelivered: shared.counts.events_redelivered.load(Ordering::Relaxed),
        line_mismatches: 0,
        unconfirmed_tickets: 0,
        screens_before_ack: shared.counts.screens_before_ack.load(Ordering::Relaxed),
        ready_expected: 0,
        ready_received: shared.counts.ready_received.load(Ordering::Relaxed),
        ready_lost: 0,
        ready_duplicated: shared.counts.ready_duplicated.load(Ordering::Relaxed),
        ready_unexpected: shared.counts.ready_unexpected.load(Ordering::Relaxed),
        void_tickets: 0,
        void_deliveries_expected: 0,
        void_lost: 0,
        voided_tickets: 0,
        voided_deliveries_expected: 0,
        voided_lost: 0,
        voids_duplicated: shared.counts.voids_duplicated.load(Ordering::Relaxed),
        recalled_tickets: 0,
        recall_deliveries_expected: 0,
        recall_lost: 0,
        recalls_duplicated: shared.counts.recalls_duplicated.load(Ordering::Relaxed),
        samples: shared.violations.lock().expect("lock").clone(),
    };
    let station_name = |i: usize| layout.stations().nth(i).unwrap_or("?").to_owned();
    let completed = shared.completed.lock().expect("lock");
    for (id, t) in shared.tickets.lock().expect("lock").iter() {
        // What became of it after its fire: a void, and a recall, on every screen.
        for (expected, screens, what, count, want, lost) in [
            (
                t.void_expected,
                t.void_screens,
                "the void of its line",
                &mut v.void_tickets,
                &mut v.void_deliveries_expected,
                &mut v.void_lost,
            ),
            (
                t.voided_expected,
                t.voided_screens,
                "its ticket_voided",
                &mut v.voided_tickets,
                &mut v.voided_deliveries_expected,
                &mut v.voided_lost,
            ),
            (
                t.recall_acked,
                t.recall_screens,
                "its recall",
                &mut v.recalled_tickets,
                &mut v.recall_deliveries_expected,
                &mut v.recall_lost,
            ),
        ] {
            if !expected {
                continue;
            }
            let got = u64::from(screens.count_ones());
            *count += 1;
            *want += k;
            if got < k {
                *lost += k - got;
                if v.samples.len() < 20 {
                    v.samples.push(format!(
                        "ticket {id} (order {} fire {}): {what} reached {got} of {k} screens of {}/{}",
                        t.order_id,
                        t.fire_no,
                        layout.branches.get(t.branch).map_or("?", String::as_str),
                        station_name(t.station)
                    ));
                }
            }
        }
        let got = u64::from(t.screens.count_ones());
        let Some(lines) = t.confirmed_lines else {
            v.unconfirmed_tickets += 1;
            continue;
        };
        v.tickets_confirmed += 1;
        v.deliveries_expected += k;
        v.deliveries += got;
        if got < k {
            v.lost += k - got;
            v.tickets_incomplete += 1;
            let finished = completed.contains_key(&t.order_id);
            if finished {
                v.lost_in_finished_orders += k - got;
            }
            if v.samples.len() < 20 {
                v.samples.push(format!(
                    "ticket {id} (order {} fire {}, {}) reached {got} of {k} screens of {}/{}",
                    t.order_id,
                    t.fire_no,
                    if finished {
                        "order closed"
                    } else {
                        "order unfinished"
                    },
                    layout.branches.get(t.branch).map_or("?", String::as_str),
                    station_name(t.station)
                ));
            }
        }
        if t.line_mismatch || t.seen_lines.is_some_and(|s| s != lines) {
            v.line_mismatches += 1;
            if v.samples.len() < 20 {
                v.samples.push(format!(
                    "ticket {id}: the fire's answer holds {lines} line(s), a screen got {:?}",
                    t.seen_lines
                ));
            }
        }
    }
    for ((order, fire_no), f) in shared.fires.lock().expect("lock").iter() {
        if f.expo_acked {
            v.ready_expected += 1;
            if !f.ready_seen {
                v.ready_lost += 1;
                if v.samples.len() < 20 {
                    v.samples.push(format!(
                        "order {order} fire {fire_no}: expo's bump was acknowledged, the table never heard"
                    ));
                }
            }
        }
    }
    v
}

impl Verification {
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.lost > 0 {
            f.push(format!(
                "{} ticket deliveries missing: {} ticket(s) never reached every screen of their station ({} of the deliveries belong to orders that closed; the rest to orders unfinished when the run ended)",
                self.lost, self.tickets_incomplete, self.lost_in_finished_orders
            ));
        }
        if self.duplicated > 0 {
            f.push(format!(
                "{} ticket(s) reached a screen twice in different events",
                self.duplicated
            ));
        }
        if self.line_mismatches > 0 {
            f.push(format!(
                "{} ticket(s) reached a screen with other lines than the fire acknowledged",
                self.line_mismatches
            ));
        }
        if self.ready_lost > 0 {
            f.push(format!(
                "{} ready notice(s) had not reached their table when the run ended, though expo's bump was acknowledged",
                self.ready_lost
            ));
        }
        if self.ready_duplicated > 0 {
            f.push(format!(
                "{} ready notice(s) reached their table twice in different events",
                self.ready_duplicated
            ));
        }
        if self.void_lost + self.voided_lost > 0 {
            f.push(format!(
                "{} void deliveries missing: {} line_voided and {} ticket_voided never reached a screen of the ticket's station",
                self.void_lost + self.voided_lost,
                self.void_lost,
                self.voided_lost
            ));
        }
        if self.recall_lost > 0 {
            f.push(format!(
                "{} recall deliveries missing: a recalled ticket never reached a screen of its station again",
                self.recall_lost
            ));
        }
        if self.voids_duplicated + self.recalls_duplicated > 0 {
            f.push(format!(
                "{} void(s) and {} recall(s) reached a screen twice in different events",
                self.voids_duplicated, self.recalls_duplicated
            ));
        }
        f
    }

    /// The line for voids and recalls.
    pub fn kitchen_line(&self, k: usize) -> String {
        format!(
            "voids: {} tickets x {k} screens, {} missing; {} tickets voided, {} missing; {} duplicated; recalls: {} tickets x {k} screens, {} missing, {} duplicated",
            self.void_tickets,
            self.void_lost,
            self.voided_tickets,
            self.voided_lost,
            self.voids_duplicated,
            self.recalled_tickets,
            self.recall_lost,
            self.recalls_duplicated
        )
    }

    pub fn summary_line(&self, k: usize) -> String {
        format!(
            "{} tickets x {k} screens: {} missing ({} of closed orders), {} duplicated; {} ready notices: {} missing, {} duplicated",
            self.tickets_confirmed,
            self.lost,
            self.lost_in_finished_orders,
            self.duplicated,
            self.ready_expected,
            self.ready_lost,
            self.ready_duplicated
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "passed": self.failures().is_empty(),
            "tickets_confirmed": self.tickets_confirmed,
            "screen_deliveries_expected": self.deliveries_expected,
            "screen_deliveries": self.deliveries,
            "lost": self.lost,
            "lost_in_finished_orders": self.lost_in_finished_orders,
            "tickets_missing_a_screen": self.tickets_incomplete,
            "duplicated": self.duplicated,
            "events_redelivered_and_dropped": self.events_redelivered,
            "line_mismatches": self.line_mismatches,
            "tickets_seen_but_not_acknowledged": self.unconfirmed_tickets,
            "tickets_on_every_screen_before_the_fire_ack": self.screens_before_ack,
            "ready_notices_expected": self.ready_expected,
            "ready_notices_received": self.ready_received,
            "ready_notices_lost": self.ready_lost,
            "ready_notices_duplicated": self.ready_duplicated,
            "ready_notices_unexpected": self.ready_unexpected,
            "voids": {
                "tickets": self.void_tickets,
                "line_voided_deliveries_expected": self.void_deliveries_expected,
                "line_voided_lost": self.void_lost,
                "tickets_voided": self.voided_tickets,
                "ticket_voided_deliveries_expected": self.voided_deliveries_expected,
                "ticket_voided_lost": self.voided_lost,
                "duplicated": self.voids_duplicated,
            },
            "recalls": {
                "tickets": self.recalled_tickets,
                "deliveries_expected": self.recall_deliveries_expected,
                "lost": self.recall_lost,
                "duplicated": self.recalls_duplicated,
            },
            "samples": self.samples,
        })
    }
}
