//! The workload, drawn from one seeded generator: when each order arrives, where, what it holds
//! and how long each station takes to cook it. The same seed and flags give the same orders in
//! the same order at the same offsets.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::menu::Layout;

const MODIFIERS: [&str; 8] = [
    "no onion",
    "extra cheese",
    "gluten free",
    "well done",
    "medium rare",
    "sauce on the side",
    "no salt",
    "allergy: nuts",
];

/// How orders arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential gaps (a Poisson process) at the configured mean rate.
    Poisson,
    /// One order every 1/rate seconds.
    Fixed,
}

/// What shapes the orders.
#[derive(Debug, Clone)]
pub struct Shape {
    pub rate: f64,
    pub arrival: Arrival,
    pub prep_min_ms: u32,
    pub prep_max_ms: u32,
    pub course_gap_ms: u32,
    /// Share of orders sent as one-call counter or takeaway orders (lines and fire in the open).
    pub one_call_share: f64,
    /// Share of orders that void one line (before or after its fire).
    pub void_share: f64,
    /// Share of (table) orders that have one cooking ticket recalled and bumped again.
    pub recall_share: f64,
}

/// What an order does besides open, fire, serve and close: at most one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    None,
    /// The waiter voids one held line of this course before firing it (when the course has two
    /// lines or more); `pick` chooses which.
    VoidBeforeFire {
        course: u8,
        pick: u32,
    },
    /// The waiter voids one line of this course's fire once it is answered, before expo sends
    /// it (when the fire holds two lines or more).
    VoidAfterFire {
        course: u8,
        pick: u32,
    },
    /// One cooking ticket of this course's fire (at the station `pick` chooses among those the
    /// fire goes to) is recalled once bumped, and bumped again.
    Recall {
        course: u8,
        pick: u32,
    },
}

/// A line as the waiter keys it in.
#[derive(Debug, Clone)]
pub struct LinePlan {
    pub item: usize,
    pub quantity: u16,
    pub modifiers: Vec<&'static str>,
    pub seat: u16,
    pub course: u8,
}

/// One order of the rush.
#[derive(Debug, Clone)]
pub struct OrderPlan {
    /// When it arrives, from the start of the load.
    pub at: Duration,
    pub branch: usize,
    pub table: usize,
    pub guests: u16,
    pub courses: u8,
    pub lines: Vec<LinePlan>,
    /// Cooking time of each course (outer) at each cooking station (inner), in ms.
    pub prep_ms: Vec<Vec<u32>>,
    /// Pause between serving a course and firing the next.
    pub course_gap: Duration,
    /// Sent in one call (`POST .../orders` with its lines and `fire: {}`), at a counter or
    /// takeaway table: one course, one fire.
    pub one_call: bool,
    pub extra: Extra,
}

impl OrderPlan {
    pub fn prep(&self, fire_no: u32, station: usize) -> Option<Duration> {
        let course = usize::try_from(fire_no).ok()?.checked_sub(1)?;
        let ms = *self.prep_ms.get(course)?.get(station)?;
        Some(Duration::from_millis(u64::from(ms)))
    }
}

/// Draws orders one after another from the seed.
pub struct Planner {
    rng: StdRng,
    /// The one-call orders, voids and recalls come from a generator of their own (seeded from
    /// the same seed), so the orders themselves are the same whatever their shares.
    extras: StdRng,
    shape: Shape,
    branches: usize,
    tables: usize,
    counters: usize,
    items: usize,
    stations: usize,
    clock: f64,
}

/// Derives the seed of a second generator from the run's seed.
pub fn derived(seed: u64, salt: u64) -> u64 {
    (seed ^ salt)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29)
}

impl Planner {
    pub fn new(seed: u64, shape: Shape, layout: &Layout) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            extras: StdRng::seed_from_u64(derived(seed, 0x00e4_77a5)),
            shape,
            branches: layout.branches.len(),
            tables: layout.tables.len(),
            counters: layout.counters.len(),
            items: layout.items.len(),
            stations: layout.cooking.len(),
            clock: 0.0,
        }
    }

    pub fn next_order(&mut self) -> OrderPlan {
        let rng = &mut self.rng;
        let gap = match self.shape.arrival {
            Arrival::Fixed => 1.0 / self.shape.rate,
            // 1 - U is in (0, 1], so the logarithm is finite.
            Arrival::Poisson => -(1.0 - rng.random::<f64>()).ln() / self.shape.rate,
        };
        self.clock += gap;
        let guests: u16 = rng.random_range(1..=6);
        let line_count: usize = rng.random_range(2..=5);
        let courses: u8 = if rng.random_bool(0.5) { 2 } else { 1 };
        // With two courses, at least one line in each.
        let first_course_lines = if courses == 2 {
            rng.random_range(1..line_count)
        } else {
            line_count
        };
        let lines = (0..line_count)
            .map(|i| {
                let quantity = match rng.random_range(0..10) {
                    0..=6 => 1,
                    7 | 8 => 2,
                    _ => 3,
                };
                let modifier_count = match rng.random_range(0..10) {
                    0..=5 => 0,
                    6..=8 => 1,
                    _ => 2,
                };
                let mut modifiers: Vec<&'static str> = Vec::new();
                for _ in 0..modifier_count {
                    let m = MODIFIERS[rng.random_range(0..MODIFIERS.len())];
                    if !modifiers.contains(&m) {
                        modifiers.push(m);
                    }
                }
                LinePlan {
                    item: rng.random_range(0..self.items),
                    quantity,
                    modifiers,
                    seat: rng.random_range(1..=guests),
                    course: if i < first_course_lines { 1 } else { 2 },
                }
            })
            .collect();
        let (lo, hi) = (
            self.shape.prep_min_ms,
            self.shape.prep_max_ms.max(self.shape.prep_min_ms),
        );
        let prep_ms = (0..courses)
            .map(|_| {
                (0..self.stations)
                    .map(|_| rng.random_range(lo..=hi))
                    .collect()
            })
            .collect();
        let mut plan = OrderPlan {
            at: Duration::from_secs_f64(self.clock),
            branch: rng.random_range(0..self.branches),
            table: rng.random_range(0..self.tables),
            guests,
            courses,
            lines,
            prep_ms,
            course_gap: Duration::from_millis(u64::from(self.shape.course_gap_ms)),
            one_call: false,
            extra: Extra::None,
        };
        self.draw_extras(&mut plan);
        plan
    }

    /// What the order does besides its courses, from the second generator: the same number of
    /// draws for every order, so each order's extras depend only on the seed and the shares.
    fn draw_extras(&mut self, plan: &mut OrderPlan) {
        let x = &mut self.extras;
        let one_call = x.random::<f64>() < self.shape.one_call_share && self.counters > 0;
        let counter = x.random_range(0..self.counters.max(1));
        let kind = x.random::<f64>();
        let before = x.random_bool(0.5);
        let course_draw = x.random_range(0..2u8);
        let pick = x.random::<u32>();
        if one_call {
            // A counter's order: everything in one course, fired at once.
            plan.one_call = true;
            plan.table = self.tables + counter;
            plan.courses = 1;
            plan.prep_ms.truncate(1);
            for l in &mut plan.lines {
                l.course = 1;
            }
        }
        let course = 1 + course_draw % plan.courses.max(1);
        let (void, recall) = (self.shape.void_share, self.shape.recall_share);
        plan.extra = if kind < void {
            if before && !one_call {
                Extra::VoidBeforeFire { course, pick }
            } else {
                Extra::VoidAfterFire { course, pick }
            }
        } else if kind < void + recall && !one_call {
            Extra::Recall { course, pick }
        } else {
            Extra::None
        };
    }
}

/// One 86 of the rush: at `at` (from the start of the load) a manager 86's `item` at `branch`,
/// and puts it back `for_` later.
#[derive(Debug, Clone, PartialEq)]
pub struct EightySix {
    pub at: Duration,
    pub branch: usize,
    pub item: usize,
    pub for_: Duration,
}

/// The 86s of a rush of `duration`: one in each `every` (at a time drawn in its middle half),
/// each lasting `for_`; none when `every` is zero. Drawn from the seed, like the orders.
pub fn eighty_sixes(
    seed: u64,
    duration: Duration,
    every: Duration,
    for_: Duration,
    layout: &Layout,
) -> Vec<EightySix> {
    let mut rng = StdRng::seed_from_u64(derived(seed, 0x86));
    let mut out = Vec::new();
    if every.is_zero() || layout.items.is_empty() {
        return out;
    }
    for k in 0u32.. {
        let at = every.mul_f64(f64::from(k) + 0.25 + 0.5 * rng.random::<f64>());
        if at >= duration {
            break;
        }
        out.push(EightySix {
            at,
            branch: rng.random_range(0..layout.branches.len()),
            item: rng.random_range(0..layout.items.len()),
            for_,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(arrival: Arrival) -> Shape {
        Shape {
            rate: 100.0,
            arrival,
            prep_min_ms: 50,
            prep_max_ms: 200,
            course_gap_ms: 10,
            one_call_share: 0.0,
            void_share: 0.0,
            recall_share: 0.0,
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_rush() {
        let layout = Layout::new(2, 4, 10);
        let mut a = Planner::new(7, shape(Arrival::Poisson), &layout);
        let mut b = Planner::new(7, shape(Arrival::Poisson), &layout);
        for _ in 0..100 {
            let (x, y) = (a.next_order(), b.next_order());
            assert_eq!(x.at, y.at);
            assert_eq!(
                (x.branch, x.table, x.courses),
                (y.branch, y.table, y.courses)
            );
            assert_eq!(x.prep_ms, y.prep_ms);
            assert_eq!(
                x.lines.iter().map(|l| l.item).collect::<Vec<_>>(),
                y.lines.iter().map(|l| l.item).collect::<Vec<_>>()
            );
        }
        let mut c = Planner::new(8, shape(Arrival::Poisson), &layout);
        assert_ne!(a.next_order().at, c.next_order().at);
    }

    #[test]
    fn orders_have_two_to_five_lines_over_their_courses() {
        let layout = Layout::new(1, 3, 5);
        let mut p = Planner::new(1, shape(Arrival::Fixed), &layout);
        let mut last = Duration::ZERO;
        for _ in 0..500 {
            let o = p.next_order();
            assert!((2..=5).contains(&o.lines.len()));
            for c in 1..=o.courses {
                assert!(o.lines.iter().any(|l| l.course == c), "course {c} is empty");
            }
            assert!(o.lines.iter().all(|l| l.seat >= 1 && l.seat <= o.guests));
            assert!(o.prep(1, 2).unwrap() >= Duration::from_millis(50));
            assert!(o.prep(u32::from(o.courses) + 1, 0).is_none());
            assert!(o.at > last);
            last = o.at;
        }
        // Fixed arrivals at 100/s: the 500th order at 5 s.
        assert!((last.as_secs_f64() - 5.0).abs() < 1e-6);
    }

    #[test]
    fn the_extras_leave_the_orders_as_they_were_and_follow_the_seed() {
        let layout = Layout::new(2, 4, 10);
        let mixed = Shape {
            one_call_share: 0.3,
            void_share: 0.1,
            recall_share: 0.1,
            ..shape(Arrival::Poisson)
        };
        let mut plain = Planner::new(3, shape(Arrival::Poisson), &layout);
        let mut a = Planner::new(3, mixed.clone(), &layout);
        let mut b = Planner::new(3, mixed, &layout);
        let (mut one_call, mut voids, mut recalls) = (0, 0, 0);
        for _ in 0..2000 {
            let (p, x, y) = (plain.next_order(), a.next_order(), b.next_order());
            assert_eq!((p.at, p.branch, p.guests), (x.at, x.branch, x.guests));
            assert_eq!(p.extra, Extra::None);
            assert_eq!(
                (x.one_call, x.table, x.extra),
                (y.one_call, y.table, y.extra)
            );
            assert_eq!(
                p.lines.iter().map(|l| l.item).collect::<Vec<_>>(),
                x.lines.iter().map(|l| l.item).collect::<Vec<_>>()
            );
            if x.one_call {
                one_call += 1;
                // At the counter or the takeaway, in one course.
                assert!(x.table >= layout.tables.len());
                assert_eq!(x.courses, 1);
                assert!(x.lines.iter().all(|l| l.course == 1));
                assert_eq!(x.prep_ms.len(), 1);
                assert!(!matches!(
                    x.extra,
                    Extra::Recall { .. } | Extra::VoidBeforeFire { .. }
                ));
            } else {
                assert_eq!(x.table, p.table);
                assert_eq!(x.courses, p.courses);
            }
            match x.extra {
                Extra::VoidBeforeFire { course, .. } | Extra::VoidAfterFire { course, .. } => {
                    voids += 1;
                    assert!((1..=x.courses).contains(&course));
                }
                Extra::Recall { course, .. } => {
                    recalls += 1;
                    assert!((1..=x.courses).contains(&course));
                }
                Extra::None => {}
            }
        }
        // About 600 one-call orders, 200 voids, 140 recalls (a tenth of the table orders).
        assert!((450..750).contains(&one_call), "{one_call}");
        assert!((130..270).contains(&voids), "{voids}");
        assert!((80..200).contains(&recalls), "{recalls}");
    }

    #[test]
    fn eighty_sixes_come_once_in_each_period_and_follow_the_seed() {
        let layout = Layout::new(3, 4, 10);
        let every = Duration::from_secs(4);
        let for_ = Duration::from_millis(1500);
        let a = eighty_sixes(7, Duration::from_secs(30), every, for_, &layout);
        assert_eq!(
            a,
            eighty_sixes(7, Duration::from_secs(30), every, for_, &layout)
        );
        // 30 s at one each 4 s: periods 0..7 start before 30 s; the eighth's 86 may fall after.
        assert!((7..=8).contains(&a.len()), "{a:?}");
        for (k, e) in a.iter().enumerate() {
            let offset = e.at.as_secs_f64() - 4.0 * k as f64;
            assert!((1.0..=3.0).contains(&offset), "{e:?}");
            assert!(e.branch < 3 && e.item < layout.items.len());
        }
        // A 3 s rush still has one, between 1 and 3 s.
        assert_eq!(
            eighty_sixes(7, Duration::from_secs(3), every, for_, &layout).len(),
            1
        );
        assert!(eighty_sixes(7, Duration::from_secs(30), Duration::ZERO, for_, &layout).is_empty());
    }
}
