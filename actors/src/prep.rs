//! Fire by prep time: a fire's tickets are released to their stations so that they finish
//! together, by how long each item takes at each station (learned from the kitchen itself)
//! and how much work each station has ahead of it.
//!
//! - An item's prep time at a station is the median of its last `SAMPLES` measured
//!   start-to-bump times there; until it has been measured, the menu's `prep_seconds`.
//! - A station's backlog is the prep time still left on its live tickets, shared between the
//!   tickets it works on at once (its `lanes`).
//! - A ticket is expected to be done after its station's backlog and its own prep time (its
//!   longest item's). The ticket that would be done last is released at once; every other one
//!   is held until it would be done at the same time ("starts at 20:06").

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::ids::{ItemId, StationId};
use crate::menu::{Branch, StationKind};
use crate::order::{Order, Release, Ticket, TicketStatus};

/// Measured times kept per item and station.
pub const SAMPLES: usize = 20;

/// What a fire is timed with: learned prep times, and each station's backlog now.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    learned: Arc<HashMap<(StationId, ItemId), f64>>,
    backlog: HashMap<StationId, f64>,
}

impl Timing {
    /// Seconds an item takes at a station: learned, else the menu's.
    pub fn prep(&self, branch: &Branch, station: &StationId, item: &ItemId) -> Option<f64> {
        let key = (station.clone(), item.clone());
        self.learned.get(&key).copied().or_else(|| {
            let configured = branch.item(item).ok()?.item.prep_seconds?;
            Some(f64::from(configured))
        })
    }

    /// Seconds a ticket takes to cook: its longest item's.
    pub fn ticket_prep(&self, branch: &Branch, ticket: &Ticket) -> Option<f64> {
        ticket
            .lines
            .iter()
            .filter(|l| !l.voided)
            .filter_map(|l| self.prep(branch, &ticket.station, &l.item))
            .reduce(f64::max)
    }

    /// Seconds of work ahead at a station before a new ticket is cooked.
    pub fn backlog(&self, station: &StationId) -> f64 {
        self.backlog.get(station).copied().unwrap_or(0.0)
    }

    /// The same learned times, with `backlog` as the stations' work ahead.
    pub fn with_backlog(&self, backlog: HashMap<StationId, f64>) -> Self {
        Self {
            learned: self.learned.clone(),
            backlog,
        }
    }
}

impl Release for Timing {
    /// When each cooking ticket of a fire should start so that all finish together, set on
    /// the tickets (`starts_at`, none for those released at once).
    fn release(&self, branch: &Branch, tickets: &mut [Ticket], now: DateTime<Utc>) {
        let finishing: Vec<Option<(f64, f64)>> = tickets
            .iter()
            .map(|t| {
                if t.kind != StationKind::Cooking {
                    return None;
                }
                let prep = self.ticket_prep(branch, t)?;
                let lanes = f64::from(branch.lanes(&t.station));
                Some((self.backlog(&t.station) / lanes, prep))
            })
            .collect();
        let Some(last) = finishing
            .iter()
            .flatten()
            .map(|(wait, prep)| wait + prep)
            .reduce(f64::max)
        else {
            return;
        };
        for (ticket, finish) in tickets.iter_mut().zip(finishing) {
            let Some((wait, prep)) = finish else { continue };
            let hold = last - (wait + prep);
            // Under a second is no hold a cook would see.
            if hold >= 1.0 {
                let millis = (hold * 1000.0).round() as i64;
                ticket.starts_at = Some(now + TimeDelta::milliseconds(millis));
            }
        }
    }
}

/// What the branch learned of its kitchen: measured start-to-bump times per item and
/// station, the latest `SAMPLES` of each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrepModel {
    samples: HashMap<(StationId, ItemId), VecDeque<f64>>,
    /// The median of each, shared with the fires that use it.
    learned: Arc<HashMap<(StationId, ItemId), f64>>,
}

impl PrepModel {
    /// A model from measured times, oldest first.
    pub fn from_samples(samples: impl IntoIterator<Item = (StationId, ItemId, Vec<f64>)>) -> Self {
        let mut model = Self::default();
        for (station, item, times) in samples {
            for seconds in times {
                model.measured(&station, &item, seconds);
            }
        }
        model
    }

    /// Every measured time, oldest first, for snapshots.
    pub fn samples(&self) -> Vec<(StationId, ItemId, Vec<f64>)> {
        let mut all: Vec<_> = self
            .samples
            .iter()
            .map(|((s, i), times)| (s.clone(), i.clone(), times.iter().copied().collect()))
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    /// Nothing measured yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The learned prep time of an item at a station, in seconds.
    pub fn learned(&self, station: &StationId, item: &ItemId) -> Option<f64> {
        self.learned.get(&(station.clone(), item.clone())).copied()
    }

    fn measured(&mut self, station: &StationId, item: &ItemId, seconds: f64) {
        let key = (station.clone(), item.clone());
        let times = self.samples.entry(key.clone()).or_default();
        if times.len() == SAMPLES {
            times.pop_front();
        }
        times.push_back(seconds);
        let mut sorted: Vec<f64> = times.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Arc::make_mut(&mut self.learned).insert(key, median);
    }

    /// Learns from a ticket bumped at `at`: the time from its start (or release, or fire) to
    /// the bump, taken as its longest item's.
    pub fn bumped(&mut self, branch: Option<&Branch>, ticket: &Ticket, at: DateTime<Utc>) {
        if ticket.kind != StationKind::Cooking || ticket.status == TicketStatus::Bumped {
            return;
        }
        let from = ticket
            .started_at
            .or(ticket.starts_at)
            .unwrap_or(ticket.fired_at);
        let Ok(took) = (at - from).to_std() else {
            return;
        };
        let timing = Timing {
            learned: self.learned.clone(),
            backlog: HashMap::new(),
        };
        let items = ticket.lines.iter().filter(|l| !l.voided);
        let longest = items.max_by(|a, b| {
            let prep = |item: &ItemId| {
                branch
                    .and_then(|b| timing.prep(b, &ticket.station, item))
                    .unwrap_or(0.0)
            };
            prep(&a.item)
                .total_cmp(&prep(&b.item))
                .then(b.item.cmp(&a.item))
        });
        if let Some(line) = longest {
            self.measured(&ticket.station, &line.item, took.as_secs_f64());
        }
    }

    /// What fires are timed with now: the learned times, and the backlog of every station
    /// from the branch's open orders.
    pub fn timing<'a>(
        &self,
        branch: &Branch,
        orders: impl Iterator<Item = &'a Order>,
        now: DateTime<Utc>,
    ) -> Timing {
        let timing = Timing {
            learned: self.learned.clone(),
            backlog: HashMap::new(),
        };
        let mut backlog: HashMap<StationId, f64> = HashMap::new();
        for t in orders.flat_map(|o| o.tickets.iter()) {
            if t.kind != StationKind::Cooking || !t.is_live() {
                continue;
            }
            let Some(prep) = timing.ticket_prep(branch, t) else {
                continue;
            };
            let from = t.started_at.or(t.starts_at).unwrap_or(t.fired_at);
            let done = (now - from).num_milliseconds().max(0) as f64 / 1000.0;
            *backlog.entry(t.station.clone()).or_default() += (prep - done).max(0.0);
        }
        timing.with_backlog(backlog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OrderId, TableId};
    use crate::menu::BranchConfig;
    use crate::order::{NewLine, OrderChange, OrderCommand};

    fn kitchen() -> Branch {
        let config: BranchConfig = serde_json::from_value(serde_json::json!({
            "name": "Prep Kitchen",
            "stations": [
                {"id": "grill", "name": "Grill"}, {"id": "fryer", "name": "Fryer"},
                {"id": "cold", "name": "Cold"}, {"id": "expo", "name": "Expo", "kind": "expo"}
            ],
            "categories": [
                {"id": "mains", "name": "Mains", "stations": ["grill"]},
                {"id": "sides", "name": "Sides", "stations": ["fryer"]},
                {"id": "salads", "name": "Salads", "stations": ["cold"]}
            ],
            "items": [
                {"id": "steak", "name": "Steak", "category": "mains", "prep_seconds": 720},
                {"id": "fries", "name": "Fries", "category": "sides", "prep_seconds": 240},
                {"id": "salad", "name": "Salad", "category": "salads", "prep_seconds": 180}
            ],
            "tables": [{"id": "t1", "name": "Table 1"}]
        }))
        .unwrap();
        Branch::new(config).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// An order with a steak, fries and a salad held, fired at `now` with `timing`.
    fn fire(branch: &Branch, timing: &Timing, now: DateTime<Utc>) -> Vec<Ticket> {
        let opened = OrderChange::OrderOpened {
            ticket_no: 1,
            day: now.date_naive(),
            guests: None,
            source: None,
            external_ref: None,
            priority: false,
        };
        let line = |item: &str| NewLine {
            item: ItemId::parse(item).unwrap(),
            quantity: 1,
            modifiers: Vec::new(),
            note: None,
            seat: None,
            course: 1,
        };
        let then = [
            OrderCommand::AddLines {
                lines: vec![line("steak"), line("fries"), line("salad")],
            },
            OrderCommand::Fire {
                course: None,
                priority: false,
            },
        ];
        let table = TableId::parse("t1").unwrap();
        let changes =
            Order::decide_open(OrderId::new(), table, opened, &then, branch, timing, now).unwrap();
        match changes.last() {
            Some(OrderChange::CourseFired { tickets, .. }) => tickets.clone(),
            other => panic!("no fire: {other:?}"),
        }
    }

    /// When each station's ticket is done: its start (or the fire) plus its prep time.
    fn done_at(branch: &Branch, timing: &Timing, tickets: &[Ticket]) -> Vec<(String, i64)> {
        tickets
            .iter()
            .filter(|t| t.kind == StationKind::Cooking)
            .map(|t| {
                let start = t.starts_at.unwrap_or(t.fired_at);
                let prep = timing.ticket_prep(branch, t).unwrap();
                (
                    t.station.to_string(),
                    (start.timestamp_millis() as f64 / 1000.0 + prep) as i64,
                )
            })
            .collect()
    }

    #[test]
    fn a_fire_is_released_so_that_steak_fries_and_salad_finish_together() {
        let branch = kitchen();
        let now = at("2026-12-01T20:00:00Z");
        let timing = Timing::default();
        let tickets = fire(&branch, &timing, now);
        let starts: Vec<(String, Option<DateTime<Utc>>)> = tickets
            .iter()
            .map(|t| (t.station.to_string(), t.starts_at))
            .collect();
        assert_eq!(
            starts,
            [
                ("cold".into(), Some(at("2026-12-01T20:09:00Z"))),
                ("fryer".into(), Some(at("2026-12-01T20:08:00Z"))),
                ("grill".into(), None),
                ("expo".into(), None),
            ],
            "the steak starts at once, the fries at 20:08, the salad at 20:09"
        );
        let done = done_at(&branch, &timing, &tickets);
        let (first, last) = (
            done.iter().map(|d| d.1).min().unwrap(),
            done.iter().map(|d| d.1).max().unwrap(),
        );
        assert!(last - first <= 30, "all done within 30 s: {done:?}");
    }

    #[test]
    fn a_measured_cook_time_changes_the_next_release() {
        let branch = kitchen();
        let now = at("2026-12-01T20:00:00Z");
        let mut model = PrepModel::default();
        // The grill's steaks take 15 minutes here, not 12, three times over.
        let first = fire(
            &branch,
            &model.timing(&branch, std::iter::empty(), now),
            now,
        );
        let grill = first
            .iter()
            .find(|t| t.station.as_str() == "grill")
            .unwrap();
        for minutes in [15, 14, 16] {
            let mut t = grill.clone();
            t.started_at = Some(now);
            model.bumped(Some(&branch), &t, now + TimeDelta::minutes(minutes));
        }
        let steak = ItemId::parse("steak").unwrap();
        assert_eq!(model.learned(&grill.station, &steak), Some(900.0));
        let timing = model.timing(&branch, std::iter::empty(), now);
        let next = fire(&branch, &timing, now);
        let fryer = next.iter().find(|t| t.station.as_str() == "fryer").unwrap();
        assert_eq!(
            fryer.starts_at,
            Some(at("2026-12-01T20:11:00Z")),
            "900 - 240 s"
        );
        let done = done_at(&branch, &timing, &next);
        assert!(done.iter().all(|d| d.1 == done[0].1), "{done:?}");

        // What the snapshot keeps makes the same model.
        assert_eq!(PrepModel::from_samples(model.samples()), model);
    }

    #[test]
    fn a_busy_station_is_released_sooner_and_the_others_later() {
        let branch = kitchen();
        let now = at("2026-12-01T20:00:00Z");
        // Five steaks already on the grill, none started: 3600 s of work over 4 lanes.
        let model = PrepModel::default();
        let mut orders = Vec::new();
        for _ in 0..5 {
            let tickets = fire(&branch, &Timing::default(), now);
            let mut order = Order::opened(
                OrderId::new(),
                TableId::parse("t1").unwrap(),
                &OrderChange::OrderOpened {
                    ticket_no: 1,
                    day: now.date_naive(),
                    guests: None,
                    source: None,
                    external_ref: None,
                    priority: false,
                },
                now,
            );
            order.tickets = tickets
                .into_iter()
                .filter(|t| t.station.as_str() == "grill")
                .collect();
            orders.push(order);
        }
        let timing = model.timing(&branch, orders.iter(), now);
        assert_eq!(timing.backlog(&StationId::parse("grill").unwrap()), 3600.0);
        let tickets = fire(&branch, &timing, now);
        let fryer = tickets
            .iter()
            .find(|t| t.station.as_str() == "fryer")
            .unwrap();
        // The grill's new steak is done after 900 s of queue and 720 of its own: the fries
        // wait 1620 - 240 = 1380 s.
        assert_eq!(fryer.starts_at, Some(at("2026-12-01T20:23:00Z")));
    }
}
