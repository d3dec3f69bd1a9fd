//! A member's probe latency and outcomes over the last 15 minutes, for the
//! page's sparklines. Probes are folded into [`BUCKETS`] buckets of
//! [`BUCKET_SECS`] seconds (count, failures, sum and max of latency), so a
//! member costs under 1 KiB whatever its probe interval: 3,000 members
//! stay within the memory target.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub const BUCKET_SECS: u64 = 20;
pub const BUCKETS: usize = 45;
/// What the trend covers: 15 minutes.
pub const WINDOW: Duration = Duration::from_secs(BUCKET_SECS * BUCKETS as u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// Unix seconds / BUCKET_SECS.
    index: u32,
    probes: u16,
    failures: u16,
    sum_ms: u32,
    max_ms: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Trend {
    buckets: VecDeque<Bucket>,
}

/// One bucket, as the page draws it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The bucket's start, unix seconds.
    pub at: f64,
    pub probes: u32,
    pub failures: u32,
    pub mean_ms: f64,
    pub max_ms: f64,
}

fn index(t: SystemTime) -> u32 {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    (secs / BUCKET_SECS) as u32
}

impl Trend {
    /// One probe at `at` that took `latency`.
    pub fn record(&mut self, at: SystemTime, latency: Duration, ok: bool) {
        let i = index(at);
        let ms = latency.as_millis().min(u32::MAX as u128) as u32;
        match self.buckets.back_mut() {
            Some(b) if b.index == i => {
                b.probes = b.probes.saturating_add(1);
                b.failures = b.failures.saturating_add(u16::from(!ok));
                b.sum_ms = b.sum_ms.saturating_add(ms);
                b.max_ms = b.max_ms.max(ms);
            }
            // A probe older than the last bucket (clock step): dropped.
            Some(b) if b.index > i => {}
            _ => {
                if self.buckets.capacity() == 0 {
                    self.buckets.reserve_exact(BUCKETS);
                }
                if self.buckets.len() == BUCKETS {
                    self.buckets.pop_front();
                }
                self.buckets.push_back(Bucket {
                    index: i,
                    probes: 1,
                    failures: u16::from(!ok),
                    sum_ms: ms,
                    max_ms: ms,
                });
            }
        }
    }

    /// The buckets within the window that ends at `now`, oldest first.
    pub fn points(&self, now: SystemTime) -> Vec<TrendPoint> {
        let first = index(now).saturating_sub(BUCKETS as u32 - 1);
        self.buckets
            .iter()
            .filter(|b| b.index >= first)
            .map(|b| TrendPoint {
                at: (b.index as u64 * BUCKET_SECS) as f64,
                probes: b.probes.into(),
                failures: b.failures.into(),
                mean_ms: b.sum_ms as f64 / f64::from(b.probes.max(1)),
                max_ms: b.max_ms.into(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn probes_fold_into_buckets_and_age_out() {
        let mut t = Trend::default();
        let ms = Duration::from_millis;
        t.record(at(1_000), ms(40), true);
        t.record(at(1_005), ms(60), true);
        t.record(at(1_019), ms(900), false);
        t.record(at(1_020), ms(30), true);
        let p = t.points(at(1_030));
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].at, p[0].probes, p[0].failures), (1_000.0, 3, 1));
        assert!((p[0].mean_ms - 1000.0 / 3.0).abs() < 0.01);
        assert_eq!(p[0].max_ms, 900.0);
        assert_eq!((p[1].at, p[1].probes, p[1].failures), (1_020.0, 1, 0));
        // 15 minutes on, the first bucket is out of the window.
        assert_eq!(t.points(at(1_000 + WINDOW.as_secs())).len(), 1);
        assert!(t.points(at(1_020 + WINDOW.as_secs())).is_empty());
    }

    #[test]
    fn memory_is_bounded_whatever_the_probe_rate() {
        let mut t = Trend::default();
        for i in 0..100_000u64 {
            t.record(at(i / 10), Duration::from_millis(i % 500), i % 7 != 0);
        }
        assert_eq!(t.buckets.len(), BUCKETS);
        assert!(t.buckets.capacity() < 64, "{}", t.buckets.capacity());
        assert_eq!(t.points(at(9_999)).len(), BUCKETS);
    }
}
