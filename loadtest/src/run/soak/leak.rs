//! The soak's leak rule: whether the engine's resident memory keeps growing once warmed up.
//!
//! The warm-up is the first sixth of the run (10 minutes of an hour), and at least one sample
//! interval, so that it holds a sample under load. Over the samples after it, a least-squares
//! line of RSS against time gives the growth rate. Memory keeps growing when that slope is above
//! `--max-rss-slope` (MiB per 10 minutes) **and** the last sample is more than `--rss-margin`
//! MiB above the highest sample of the warm-up: a slope alone is noise on a flat line, a last
//! sample alone is one spike.

use std::time::Duration;

use serde::Serialize;

/// The rule's thresholds for one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Rule {
    /// Samples at or before this offset are the warm-up's.
    #[serde(serialize_with = "secs")]
    pub(super) warm_up: Duration,
    pub(super) max_slope_mib_per_10_min: f64,
    pub(super) margin_mib: f64,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What the rule made of the samples.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Judgement {
    /// The highest RSS of the warm-up's samples (MiB).
    pub(super) warm_up_max_mib: Option<f64>,
    /// Samples after the warm-up, fitted.
    pub(super) fitted: usize,
    /// The least-squares slope of those, in MiB per 10 minutes.
    pub(super) slope_mib_per_10_min: Option<f64>,
    /// The last sample, and how far above the warm-up's highest it is (MiB).
    pub(super) last_mib: Option<f64>,
    pub(super) above_warm_up_mib: Option<f64>,
    /// Both limits passed: memory keeps growing.
    pub(super) growing: bool,
    /// Why the rule could not be applied, when it could not.
    pub(super) unjudged: Option<String>,
}

impl Rule {
    /// The rule for a run of `duration` sampled every `every`: the warm-up is a sixth of the
    /// run, and at least one sample interval.
    pub(super) fn new(duration: Duration, every: Duration, max_slope: f64, margin: f64) -> Self {
        Self {
            warm_up: (duration / 6).max(every),
            max_slope_mib_per_10_min: max_slope,
            margin_mib: margin,
        }
    }

    /// Judges the RSS samples, `(seconds since the rush began, MiB)` in time order.
    pub(super) fn judge(&self, samples: &[(f64, f64)]) -> Judgement {
        let warm_up = self.warm_up.as_secs_f64();
        let warm_up_max = samples
            .iter()
            .filter(|(t, _)| *t <= warm_up)
            .map(|&(_, m)| m)
            .reduce(f64::max);
        let after: Vec<(f64, f64)> = samples
            .iter()
            .copied()
            .filter(|(t, _)| *t > warm_up)
            .collect();
        let slope = least_squares_slope(&after).map(|per_s| per_s * 600.0);
        let last = after.last().map(|&(_, m)| m);
        let above = last.zip(warm_up_max).map(|(l, w)| l - w);
        let unjudged = if warm_up_max.is_none() {
            Some("no RSS sample in the warm-up".to_owned())
        } else if after.len() < 2 {
            Some(format!(
                "{} RSS sample(s) after the warm-up, at least 2 are needed",
                after.len()
            ))
        } else {
            None
        };
        let growing = unjudged.is_none()
            && slope.is_some_and(|s| s > self.max_slope_mib_per_10_min)
            && above.is_some_and(|a| a > self.margin_mib);
        Judgement {
            warm_up_max_mib: warm_up_max,
            fitted: after.len(),
            slope_mib_per_10_min: slope,
            last_mib: last,
            above_warm_up_mib: above,
            growing,
            unjudged,
        }
    }
}

/// The slope (y per x) of the least-squares line through the points; None for fewer than two
/// points or all at one x.
pub(super) fn least_squares_slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An hour sampled every minute, RSS from `f(minute)`.
    fn hour(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..=60).map(|m| (m as f64 * 60.0, f(m as f64))).collect()
    }

    fn rule() -> Rule {
        Rule::new(Duration::from_secs(3600), Duration::from_secs(60), 1.0, 8.0)
    }

    #[test]
    fn the_warm_up_is_a_sixth_of_the_run_and_at_least_one_sample() {
        let minute = Duration::from_secs(60);
        let w =
            |d: u64, every: Duration| Rule::new(Duration::from_secs(d), every, 1.0, 8.0).warm_up;
        assert_eq!(w(3600, minute), Duration::from_secs(600));
        assert_eq!(w(600, minute), Duration::from_secs(100));
        assert_eq!(
            w(75, Duration::from_secs(10)),
            Duration::from_millis(12_500)
        );
        assert_eq!(w(120, minute), minute);
    }

    #[test]
    fn fits_a_line() {
        let slope = least_squares_slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((slope - 2.0).abs() < 1e-12);
        assert_eq!(least_squares_slope(&[(1.0, 1.0)]), None);
        assert_eq!(least_squares_slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn flat_memory_after_a_warm_up_climb_passes() {
        // Climbs 40 MiB in the first 5 minutes, then stays at 100 +- 1.
        let j = rule().judge(&hour(|m| {
            if m < 5.0 {
                60.0 + 8.0 * m
            } else {
                100.0
                    + if (m as u64).is_multiple_of(2) {
                        1.0
                    } else {
                        -1.0
                    }
            }
        }));
        assert_eq!(j.fitted, 50);
        assert!(!j.growing, "{j:?}");
        assert!(j.slope_mib_per_10_min.unwrap().abs() < 0.5, "{j:?}");
        assert!(j.unjudged.is_none());
    }

    #[test]
    fn steady_growth_fails() {
        // 2 MiB every 10 minutes: 10 MiB over the 50 minutes after the warm-up.
        let j = rule().judge(&hour(|m| 100.0 + 0.2 * m));
        assert!(j.growing, "{j:?}");
        assert!(
            (j.slope_mib_per_10_min.unwrap() - 2.0).abs() < 1e-9,
            "{j:?}"
        );
        assert!((j.above_warm_up_mib.unwrap() - 10.0).abs() < 1e-9, "{j:?}");
    }

    #[test]
    fn a_slope_within_the_margin_or_a_lone_spike_passes() {
        // Above the slope limit, but the last sample within the margin of the warm-up's peak.
        let j = rule().judge(&hour(|m| {
            if m <= 10.0 {
                110.0
            } else {
                100.0 + 0.2 * (m - 10.0)
            }
        }));
        assert!(j.slope_mib_per_10_min.unwrap() > 1.0 && !j.growing, "{j:?}");
        // One high last sample on a flat line: the slope stays under the limit.
        let j = rule().judge(&hour(|m| if m == 60.0 { 120.0 } else { 100.0 }));
        assert!(j.above_warm_up_mib.unwrap() > 8.0 && !j.growing, "{j:?}");
    }

    #[test]
    fn too_few_samples_cannot_be_judged() {
        let j = rule().judge(&[(0.0, 50.0), (600.0, 60.0), (660.0, 90.0)]);
        assert!(!j.growing);
        assert!(j.unjudged.unwrap().contains("1 RSS sample"));
        let j = rule().judge(&[(700.0, 60.0), (760.0, 90.0)]);
        assert!(j.unjudged.unwrap().contains("warm-up"));
    }
}
