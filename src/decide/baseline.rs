//! A member's latency baseline, and the `slow` rule against it: members in
//! different regions differ naturally from the daemon's vantage point
//! (40 ms here, 250 ms there), so one `max_latency` cannot catch a brownout
//! in each. Pure: the time comes in as an argument.
//!
//! The baseline is the median of per-bucket medians over `window` (buckets
//! of `window / 60`), fed only by good answers that were not slow. It
//! counts once `warm_up` worth of buckets hold samples. A good answer is
//! `slow` when it took more than `factor` times the baseline *and* more
//! than `min_excess` above it.
//!
//! A brownout that lasts longer than the window starves the baseline (slow
//! answers do not feed it): after the window it no longer counts, the
//! member comes back, and its answers set the new normal.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::config::BaselineSettings;

/// Samples one bucket keeps at most (the first ones).
const MAX_SAMPLES: usize = 120;

/// Per-bucket medians of good answers, newest last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    /// (bucket start, median in ms) of closed buckets.
    closed: VecDeque<(SystemTime, f64)>,
    /// The open bucket: its start and its samples (ms).
    open: Option<(SystemTime, Vec<f64>)>,
}

/// What a good answer is, judged against the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judged {
    /// Not enough history yet, or within bounds: fed to the baseline.
    Normal,
    /// Slower than the rule allows; the baseline it was judged against (ms).
    Slow { baseline_ms: f64 },
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

impl Baseline {
    fn bucket(settings: &BaselineSettings) -> Duration {
        (settings.window / 60).max(Duration::from_secs(1))
    }

    /// Closes the open bucket once its time is over and drops buckets
    /// older than the window.
    fn roll(&mut self, now: SystemTime, settings: &BaselineSettings) {
        let bucket = Self::bucket(settings);
        if let Some((start, samples)) = &mut self.open {
            if now.duration_since(*start).unwrap_or_default() >= bucket {
                if let Some(m) = median(samples) {
                    self.closed.push_back((*start, m));
                }
                self.open = None;
            }
        }
        while self.closed.front().is_some_and(|(start, _)| {
            now.duration_since(*start).unwrap_or_default() > settings.window
        }) {
            self.closed.pop_front();
        }
    }

    /// The baseline at `now` (ms), once `warm_up` worth of buckets count.
    pub fn current(&self, now: SystemTime, settings: &BaselineSettings) -> Option<f64> {
        let bucket = Self::bucket(settings);
        let needed = (settings.warm_up.as_secs_f64() / bucket.as_secs_f64()).ceil() as usize;
        let mut medians: Vec<f64> = self
            .closed
            .iter()
            .filter(|(start, _)| now.duration_since(*start).unwrap_or_default() <= settings.window)
            .map(|(_, m)| *m)
            .collect();
        if medians.len() < needed.max(1) {
            return None;
        }
        median(&mut medians)
    }

    /// Judges one good answer that took `latency` at `now`; a normal one
    /// feeds the baseline.
    pub fn judge(
        &mut self,
        latency: Duration,
        now: SystemTime,
        settings: &BaselineSettings,
    ) -> Judged {
        self.roll(now, settings);
        let ms = latency.as_secs_f64() * 1000.0;
        if let Some(base) = self.current(now, settings) {
            let excess = ms - base;
            if ms > base * settings.factor && excess > settings.min_excess.as_secs_f64() * 1000.0 {
                return Judged::Slow { baseline_ms: base };
            }
        }
        match &mut self.open {
            // Enough for a median; a bucket's memory stays bounded.
            Some((_, samples)) if samples.len() >= MAX_SAMPLES => {}
            Some((_, samples)) => samples.push(ms),
            None => self.open = Some((now, vec![ms])),
        }
        Judged::Normal
    }
}

#[cfg(test)]
mod tests;
