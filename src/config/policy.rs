//! `policy` (under `defaults` and a record, merged key by key): the rules
//! that decide whether a member may be withdrawn, beyond its verdict:
//! `min_healthy`, `max_withdrawn`, flap `damping` and the `quorum` of
//! vantage points. The rules themselves are in `decide::policy`,
//! `decide::damping` and `decide::quorum`.

use std::time::Duration;

use super::raw::{RawCount, RawPolicy};
use super::{q, Validator};

/// The policy of one record, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    pub min_healthy: usize,
    /// At most this many members withdrawn at once; `None`: no cap beyond
    /// the safety rules.
    pub max_withdrawn: Option<usize>,
    /// `None`: damping is off.
    pub damping: Option<DampingSettings>,
    pub quorum: Quorum,
}

/// Whose verdicts withdraw and restore a member (`decide::quorum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// This instance's own probes decide (the only view without `ha`).
    Any,
    /// More than half of the instances with a fresh view must agree (with
    /// one instance: its own view).
    Majority,
}

impl Quorum {
    pub fn as_str(self) -> &'static str {
        match self {
            Quorum::Any => "any",
            Quorum::Majority => "majority",
        }
    }
}

/// Flap damping: a member restored and failing again soon after is held
/// withdrawn for `hold`, doubled at each further flap up to `max_hold`;
/// its flaps are forgotten after `forget_after` without a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DampingSettings {
    pub hold: Duration,
    pub max_hold: Duration,
    pub forget_after: Duration,
}

pub const DEFAULT_HOLD: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(600);
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(600);

impl Validator {
    /// The policy of a record with `members` members (`path` is the
    /// record's `policy` key).
    pub(super) fn policy(
        &mut self,
        path: &str,
        p: &RawPolicy,
        members: usize,
    ) -> Option<PolicyConfig> {
        let min_healthy = p.min_healthy.unwrap_or(1);
        let mut ok = true;
        if min_healthy < 1 || min_healthy as usize > members {
            self.err(
                format!("{path}.min_healthy"),
                format!("{min_healthy} must be between 1 and the number of regions ({members})"),
            );
            ok = false;
        }
        let max_withdrawn = match &p.max_withdrawn {
            None => Some(None),
            Some(c) => self.max_withdrawn(&format!("{path}.max_withdrawn"), c, members),
        };
        let damping = self.damping(&format!("{path}.damping"), p);
        let quorum = match p.quorum.as_deref().map(str::trim) {
            None | Some("majority") => Some(Quorum::Majority),
            Some("any") => Some(Quorum::Any),
            Some(other) => {
                self.err(
                    format!("{path}.quorum"),
                    format!("{} must be \"majority\" or \"any\"", q(other)),
                );
                None
            }
        };
        Some(PolicyConfig {
            min_healthy: usize::try_from(min_healthy).ok().filter(|_| ok)?,
            max_withdrawn: max_withdrawn?,
            damping: damping?,
            quorum: quorum?,
        })
    }

    fn max_withdrawn(&mut self, path: &str, c: &RawCount, members: usize) -> Option<Option<usize>> {
        let n = match c {
            RawCount::Count(n) => *n,
            RawCount::Text(t) => {
                let pct = t
                    .trim()
                    .strip_suffix('%')
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| (0.0..=100.0).contains(v));
                match pct {
                    // As Envoy's max_ejection_percent: rounded down.
                    Some(pct) => (members as f64 * pct / 100.0).floor() as i64,
                    None => {
                        self.err(
                            path,
                            format!(
                                "{} is neither a count nor a percentage such as \"50%\"",
                                q(t)
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        if n < 1 || n as usize >= members.max(1) {
            let shown = match c {
                RawCount::Count(n) => n.to_string(),
                RawCount::Text(t) => format!("{} ({n} of {members})", q(t)),
            };
            self.err(
                path,
                format!(
                    "{shown} must allow between 1 and {} withdrawals (the record has {members} regions, and the last is never withdrawn)",
                    members.saturating_sub(1)
                ),
            );
            return None;
        }
        Some(Some(n as usize))
    }

    fn damping(&mut self, path: &str, p: &RawPolicy) -> Option<Option<DampingSettings>> {
        let d = p.damping.clone().unwrap_or_default();
        let hold = self.duration(&format!("{path}.hold"), d.hold.as_deref(), DEFAULT_HOLD);
        let max_hold = self.duration(
            &format!("{path}.max_hold"),
            d.max_hold.as_deref(),
            DEFAULT_MAX_HOLD,
        );
        let forget_after = self.duration(
            &format!("{path}.forget_after"),
            d.forget_after.as_deref(),
            DEFAULT_FORGET_AFTER,
        );
        let (hold, max_hold, forget_after) = (hold?, max_hold?, forget_after?);
        if hold < Duration::from_secs(1) {
            self.err(
                format!("{path}.hold"),
                format!(
                    "{} must be at least 1s",
                    q(d.hold.as_deref().unwrap_or_default())
                ),
            );
            return None;
        }
        if max_hold < hold {
            self.err(
                format!("{path}.max_hold"),
                format!(
                    "{} must be at least the hold ({})",
                    q(d.max_hold.as_deref().unwrap_or_default()),
                    humantime::format_duration(hold)
                ),
            );
            return None;
        }
        if forget_after < hold {
            self.err(
                format!("{path}.forget_after"),
                format!(
                    "{} must be at least the hold ({}): flaps must outlive their hold",
                    q(d.forget_after.as_deref().unwrap_or_default()),
                    humantime::format_duration(hold)
                ),
            );
            return None;
        }
        Some(d.enabled.unwrap_or(true).then_some(DampingSettings {
            hold,
            max_hold,
            forget_after,
        }))
    }
}
