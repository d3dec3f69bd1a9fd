//! Flap damping: a member that is restored and fails again soon after is
//! held withdrawn for a hold-down that doubles with each further flap, up
//! to a cap (Envoy's ejection back-off; BGP route-flap damping). Pure: the
//! time comes in as an argument.
//!
//! The rule, per member, fed with its verdict changes (a restoration is a
//! change from `unhealthy` to `healthy`; the first verdict at start-up is
//! not one):
//! - a failure (to `unhealthy`) within `forget_after` of the member's last
//!   restoration (to `healthy`), or while it is held, is a flap: the hold
//!   ends `hold × 2^(flaps-1)` (at most `max_hold`) after that failure, or
//!   later if an earlier flap said so;
//! - any other failure is not a flap and forgets the count: the first
//!   failure, and one after a stable period, withdraw the member only for
//!   as long as it is unhealthy;
//! - a restoration is never delayed unless the member is held: the first
//!   recovery of a member is never delayed beyond `rise`.
//!
//! A held member whose verdict is healthy is `damped`: the policy withdraws
//! it when the safety rules allow (`decide::policy`).

use std::time::{Duration, SystemTime};

use crate::config::DampingSettings;
use crate::decide::verdict::Verdict;

/// One member's flap history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Damping {
    /// Flaps since the member last was stable.
    pub flaps: u32,
    /// When the verdict last turned healthy.
    restored_at: Option<SystemTime>,
    /// The hold's end, once a flap set one.
    until: Option<SystemTime>,
}

/// The hold after the `flaps`-th flap: `hold` doubled per flap, capped.
pub fn hold_for(settings: &DampingSettings, flaps: u32) -> Duration {
    let doubling = 1u32 << flaps.saturating_sub(1).min(20);
    settings
        .hold
        .saturating_mul(doubling)
        .min(settings.max_hold)
}

impl Damping {
    /// Feeds one verdict change at `now`; returns whether it was a flap.
    pub fn verdict_changed(
        &mut self,
        from: Verdict,
        to: Verdict,
        now: SystemTime,
        settings: &DampingSettings,
    ) -> bool {
        match to {
            Verdict::Healthy => {
                if from == Verdict::Unhealthy {
                    self.restored_at = Some(now);
                }
                false
            }
            Verdict::Unhealthy => {
                let soon = self
                    .restored_at
                    .is_some_and(|r| elapsed(r, now) < settings.forget_after);
                if !soon && self.held_until(now).is_none() {
                    self.flaps = 0;
                    return false;
                }
                self.flaps += 1;
                let end = now + hold_for(settings, self.flaps);
                self.until = Some(self.until.map_or(end, |u| u.max(end)));
                true
            }
            Verdict::Unknown => false,
        }
    }

    /// When the hold ends, while it lasts at `now`.
    pub fn held_until(&self, now: SystemTime) -> Option<SystemTime> {
        self.until.filter(|u| *u > now)
    }
}

fn elapsed(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

#[cfg(test)]
mod tests;
