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
    shape: Shape,
    branches: usize,
    tables: usize,
    items: usize,
    stations: usize,
    clock: f64,
}

impl Planner {
    pub fn new(seed: u64, shape: Shape, layout: &Layout) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            shape,
            branches: layout.branches.len(),
            tables: layout.tables.len(),
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
        OrderPlan {
            at: Duration::from_secs_f64(self.clock),
            branch: rng.random_range(0..self.branches),
            table: rng.random_range(0..self.tables),
            guests,
            courses,
            lines,
            prep_ms,
            course_gap: Duration::from_millis(u64::from(self.shape.course_gap_ms)),
        }
    }
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
}
