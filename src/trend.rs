//! A member's probe latency and outcomes over the last 15 minutes, for the
//! page's sparklines. Probes are folded into [`BUCKETS`] buckets of
//! [`BUCKET_SECS`] seconds (count, failures, sum and max of latency) kept
//! inline in a fixed ring: 364 bytes a member whatever its probe interval,
//! no allocation, so 3,000 members add about 1 MiB.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub const BUCKET_SECS: u64 = 30;
pub const BUCKETS: usize = 30;
/// What the trend covers: 15 minutes.
pub const WINDOW: Duration = Duration::from_secs(BUCKET_SECS * BUCKETS as u64);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    probes: u16,
    failures: u16,
    sum_ms: u32,
    /// Capped at 65.5 s (a probe's timeout is far below).
    max_ms: u16,
}

/// The ring: bucket `i` of the window holds bucket number `i` modulo
/// [`BUCKETS`]; `last` is the newest bucket number written (unix seconds
/// / BUCKET_SECS), 0 before the first probe.
#[derive(Debug, Clone, Default)]
pub struct Trend {
    last: u32,
    buckets: [Bucket; BUCKETS],
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

fn number(t: SystemTime) -> u32 {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    (secs / BUCKET_SECS) as u32
}

impl Trend {
    /// One probe at `at` that took `latency`.
    pub fn record(&mut self, at: SystemTime, latency: Duration, ok: bool) {
        let n = number(at);
        // A probe older than the window's newest bucket (a clock step back)
        // is dropped rather than mixed into the wrong bucket.
        if n < self.last {
            return;
        }
        // Buckets between the last written and this one had no probes.
        for skipped in (self.last + 1).max(n.saturating_sub(BUCKETS as u32 - 1))..=n {
            self.buckets[skipped as usize % BUCKETS] = Bucket::default();
        }
        self.last = n;
        let ms = latency.as_millis().min(u32::MAX as u128) as u32;
        let b = &mut self.buckets[n as usize % BUCKETS];
        b.probes = b.probes.saturating_add(1);
        b.failures = b.failures.saturating_add(u16::from(!ok));
        b.sum_ms = b.sum_ms.saturating_add(ms);
        b.max_ms = b.max_ms.max(ms.min(u16::MAX as u32) as u16);
    }

    /// The buckets with probes within the window that ends at `now`,
    /// oldest first.
    pub fn points(&self, now: SystemTime) -> Vec<TrendPoint> {
        let newest = number(now).min(self.last);
        let first = number(now).saturating_sub(BUCKETS as u32 - 1);
        if self.last == 0 || self.last < first {
            return Vec::new();
        }
        (first..=newest)
            .filter_map(|n| {
                let b = self.buckets[n as usize % BUCKETS];
                (b.probes > 0).then(|| TrendPoint {
                    at: (n as u64 * BUCKET_SECS) as f64,
                    probes: b.probes.into(),
                    failures: b.failures.into(),
                    mean_ms: f64::from(b.sum_ms) / f64::from(b.probes),
                    max_ms: b.max_ms.into(),
                })
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
        t.record(at(1_020), ms(40), true);
        t.record(at(1_025), ms(60), true);
        t.record(at(1_049), ms(900), false);
        t.record(at(1_050), ms(30), true);
        let p = t.points(at(1_060));
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].at, p[0].probes, p[0].failures), (1_020.0, 3, 1));
        assert!((p[0].mean_ms - 1000.0 / 3.0).abs() < 0.01);
        assert_eq!(p[0].max_ms, 900.0);
        assert_eq!((p[1].at, p[1].probes, p[1].failures), (1_050.0, 1, 0));
        // 15 minutes on, the first bucket is out of the window.
        assert_eq!(t.points(at(1_020 + WINDOW.as_secs())).len(), 1);
        assert!(t.points(at(1_050 + WINDOW.as_secs())).is_empty());
        // A probe after a long gap clears the buckets it skipped over.
        t.record(at(1_050 + 5 * BUCKET_SECS), ms(10), true);
        let p = t.points(at(1_050 + 5 * BUCKET_SECS));
        assert_eq!(p.iter().map(|p| p.probes).sum::<u32>(), 5, "{p:?}");
        t.record(at(1_050 + WINDOW.as_secs() * 3), ms(10), true);
        assert_eq!(t.points(at(1_050 + WINDOW.as_secs() * 3)).len(), 1);
    }

    #[test]
    fn memory_is_bounded_whatever_the_probe_rate() {
        let mut t = Trend::default();
        for i in 0..100_000u64 {
            t.record(at(i / 10), Duration::from_millis(i % 500), i % 7 != 0);
        }
        assert!(std::mem::size_of::<Trend>() <= 364);
        let p = t.points(at(9_999));
        assert_eq!(p.len(), BUCKETS);
        assert_eq!(p[BUCKETS - 1].probes, 10 * (9_999 - 9_990 + 1));
    }
}
