//! Whether clients left a withdrawn region. Route53 stops answering with
//! the region at once, but clients move only as their resolvers' caches
//! expire (the record's TTL, or longer: resolvers that stretch TTLs,
//! clients that cache addresses). Pure: from the region's request count
//! per period (API Gateway's `Count` in CloudWatch) around the withdrawal,
//! when its traffic fell by 90 %, or that it did not within a bound.
//!
//! The baseline is the mean count of the five whole periods before the
//! withdrawal. A period after it "fell" when its count is at most 10 % of
//! the baseline; CloudWatch writes no datapoint for a period without
//! requests, so a period with none counts as 0 once it has settled:
//! [`SETTLE_PERIODS`] periods after its end (CloudWatch's delay), or once
//! a later period has data.

use std::time::Duration;

/// Periods after its end before a period without data counts as none.
pub const SETTLE_PERIODS: u64 = 2;
/// Whole periods before the withdrawal that make the baseline.
pub const BASELINE_PERIODS: u64 = 5;
/// The share of the baseline at or under which traffic has left.
pub const LEFT_SHARE: f64 = 0.10;

/// What is known of a withdrawn region's traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Traffic {
    /// Not yet known.
    Measuring,
    /// No requests before the withdrawal: nothing to see fall.
    NoBaseline,
    /// It fell by 90 % by this long after the withdrawal (the end of the
    /// first period at or under 10 %).
    Fell { after: Duration },
    /// It had not fallen by 90 % within the bound.
    NotLeaving { within: Duration },
}

impl Traffic {
    pub fn as_str(self) -> &'static str {
        match self {
            Traffic::Measuring => "measuring",
            Traffic::NoBaseline => "no_baseline",
            Traffic::Fell { .. } => "fell",
            Traffic::NotLeaving { .. } => "not_leaving",
        }
    }

    /// Whether more data can change it.
    pub fn settled(self) -> bool {
        self != Traffic::Measuring
    }
}

/// The region's traffic, withdrawn at `withdrawn` (unix seconds), from
/// `points` (each period's start, in unix seconds aligned to `period`,
/// and its count), at `now`; clients that have not left `within` of the
/// withdrawal are not leaving.
pub fn judge(
    withdrawn: u64,
    points: &[(u64, f64)],
    period: Duration,
    now: u64,
    within: Duration,
) -> Traffic {
    let p = period.as_secs().max(1);
    let count = |start: u64| {
        points
            .iter()
            .filter(|(t, _)| *t == start)
            .map(|(_, c)| *c)
            .sum::<f64>()
    };
    let latest = points.iter().map(|(t, _)| *t).max();
    let settled =
        |start: u64| start + p * (1 + SETTLE_PERIODS) <= now || latest.is_some_and(|l| l > start);
    // The whole periods before the withdrawal.
    let last_before = (withdrawn / p) * p; // the period holding the withdrawal starts here
    let baseline: f64 = (1..=BASELINE_PERIODS)
        .filter_map(|i| last_before.checked_sub(i * p))
        .map(count)
        .sum::<f64>()
        / BASELINE_PERIODS as f64;
    if baseline <= 0.0 {
        return if settled(last_before.saturating_sub(p)) {
            Traffic::NoBaseline
        } else {
            Traffic::Measuring
        };
    }
    // The first whole period after the withdrawal. The bound is never
    // before the end of the second (a TTL shorter than a period would
    // judge by the period that held the withdrawal's last clients).
    let mut start = last_before + p;
    let bound = (withdrawn + within.as_secs()).max(last_before + 3 * p);
    while settled(start) {
        if count(start) <= LEFT_SHARE * baseline {
            return Traffic::Fell {
                after: Duration::from_secs(start + p - withdrawn),
            };
        }
        if start + p >= bound {
            return Traffic::NotLeaving { within };
        }
        start += p;
    }
    Traffic::Measuring
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    /// Per-minute counts: 100 for the five minutes before 10:00, then
    /// `after` for the minutes from 10:00 (withdrawn at 10:00:30).
    fn points(after: &[f64]) -> Vec<(u64, f64)> {
        let ten = 36_000;
        let mut p: Vec<(u64, f64)> = (1..=5).map(|i| (ten - i * 60, 100.0)).collect();
        p.push((ten, 60.0));
        p.extend(
            after
                .iter()
                .enumerate()
                .map(|(i, c)| (ten + 60 * (i as u64 + 1), *c)),
        );
        p
    }

    #[test]
    fn a_fall_is_timed_from_the_withdrawal_to_the_end_of_its_first_quiet_period() {
        let w = 36_030;
        let within = Duration::from_secs(300);
        for (after, now, want) in [
            // Minutes at 80, 30, then 5: fell by the end of 10:03.
            (
                vec![80.0, 30.0, 5.0],
                36_000 + 600,
                Traffic::Fell {
                    after: Duration::from_secs(210),
                },
            ),
            // 10 is 10 % of 100: fallen.
            (
                vec![10.0],
                36_000 + 600,
                Traffic::Fell {
                    after: Duration::from_secs(90),
                },
            ),
            // Nothing after 10:01 yet, and not settled: still measuring.
            (vec![80.0], 36_000 + 150, Traffic::Measuring),
            // No datapoint for 10:02, settled (now well past): none came.
            (
                vec![80.0],
                36_000 + 600,
                Traffic::Fell {
                    after: Duration::from_secs(150),
                },
            ),
            // 50 a minute to the bound: not leaving.
            (vec![50.0; 6], 36_000 + 600, Traffic::NotLeaving { within }),
        ] {
            assert_eq!(
                judge(w, &points(&after), MIN, now, within),
                want,
                "{after:?} at {now}"
            );
        }
    }

    #[test]
    fn a_bound_shorter_than_a_period_still_waits_for_the_second_whole_period() {
        // TTL 10 s: 50 s, shorter than a minute; the first whole minute
        // (80) is not the last word, the second (5) is.
        let within = Duration::from_secs(50);
        assert_eq!(
            judge(36_050, &points(&[80.0, 5.0]), MIN, 36_600, within),
            Traffic::Fell {
                after: Duration::from_secs(130)
            }
        );
        assert_eq!(
            judge(36_050, &points(&[80.0, 50.0]), MIN, 36_600, Duration::ZERO),
            Traffic::NotLeaving {
                within: Duration::ZERO
            }
        );
    }

    #[test]
    fn without_traffic_before_there_is_nothing_to_see_fall() {
        assert_eq!(
            judge(36_030, &[(36_000, 5.0)], MIN, 36_600, MIN * 5),
            Traffic::NoBaseline
        );
        // Before the last baseline minute has settled, it may still come.
        assert_eq!(judge(36_030, &[], MIN, 36_040, MIN * 5), Traffic::Measuring);
    }
}
