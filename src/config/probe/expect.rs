//! `probe.expect`: what a good answer is: its statuses, `max_latency`
//! (shorter than the probe's timeout, which is passed in) and the
//! `slow_vs_baseline` rule (`decide::baseline`).

use std::time::Duration;

use crate::config::raw::{self, RawBaseline};
use crate::config::{q, Validator};

/// `expect.slow_vs_baseline`: see `decide::baseline`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineSettings {
    /// Slow above this many times the baseline...
    pub factor: f64,
    /// ...and this much above it.
    pub min_excess: Duration,
    /// The history the baseline is the median of.
    pub window: Duration,
    /// The history needed before the rule counts.
    pub warm_up: Duration,
}

impl Validator {
    /// `expect` (at `path`): the statuses, `max_latency` and the baseline
    /// rule; `None` for a value in error.
    pub(super) fn expect(
        &mut self,
        path: &str,
        expect: &raw::RawExpect,
        timeout: Option<Duration>,
    ) -> (
        Vec<u16>,
        Option<Option<Duration>>,
        Option<Option<BaselineSettings>>,
    ) {
        let mut expect_status = Vec::new();
        for (k, s) in expect.status.iter().flatten().enumerate() {
            if (100..=599).contains(s) {
                expect_status.push(*s as u16);
            } else {
                self.err(
                    format!("{path}.status[{k}]"),
                    format!("{s} is not an HTTP status (100-599)"),
                );
            }
        }
        let max_latency = match expect.max_latency.as_deref() {
            None => Some(None),
            Some(s) => {
                let key = format!("{path}.max_latency");
                match self.duration(&key, Some(s), Duration::ZERO) {
                    Some(d) if d < Duration::from_millis(1) => {
                        self.err(key, format!("{} must be at least 1ms", q(s)));
                        None
                    }
                    Some(d) if timeout.is_some_and(|t| d >= t) => {
                        let t = timeout.unwrap_or_default();
                        self.err(
                            key,
                            format!(
                                "{} must be shorter than the timeout ({}): a slower answer times out first",
                                q(s),
                                humantime::format_duration(t)
                            ),
                        );
                        None
                    }
                    Some(d) => Some(Some(d)),
                    None => None,
                }
            }
        };
        let slow_vs_baseline = match &expect.slow_vs_baseline {
            None => Some(None),
            Some(b) => self
                .baseline(&format!("{path}.slow_vs_baseline"), b)
                .map(Some),
        };
        (expect_status, max_latency, slow_vs_baseline)
    }

    fn baseline(&mut self, path: &str, b: &RawBaseline) -> Option<BaselineSettings> {
        let factor = b.factor.unwrap_or(3.0);
        let mut ok = true;
        if !(factor > 1.0 && factor <= 100.0) {
            self.err(
                format!("{path}.factor"),
                format!("{factor} must be above 1 and at most 100"),
            );
            ok = false;
        }
        let min_excess = self.duration(
            &format!("{path}.min_excess"),
            b.min_excess.as_deref(),
            Duration::from_millis(100),
        );
        let window = self.duration(
            &format!("{path}.window"),
            b.window.as_deref(),
            Duration::from_secs(3600),
        );
        let warm_up = self.duration(
            &format!("{path}.warm_up"),
            b.warm_up.as_deref(),
            Duration::from_secs(300),
        );
        let (min_excess, window, warm_up) = (min_excess?, window?, warm_up?);
        if window < Duration::from_secs(60) {
            self.err(
                format!("{path}.window"),
                format!(
                    "{} must be at least 1m",
                    q(b.window.as_deref().unwrap_or_default())
                ),
            );
            ok = false;
        }
        if ok && warm_up > window {
            let given = match b.warm_up.as_deref() {
                Some(w) => q(w),
                None => format!("the default {}", humantime::format_duration(warm_up)),
            };
            self.err(
                format!("{path}.warm_up"),
                format!(
                    "{given} must be at most the window ({})",
                    humantime::format_duration(window)
                ),
            );
            ok = false;
        }
        ok.then_some(BaselineSettings {
            factor,
            min_excess,
            window,
            warm_up,
        })
    }
}
