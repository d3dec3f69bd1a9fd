//! Evidence about the viewer. A probe that fails says the member failed,
//! or that this instance could not reach it: its egress, its cluster's
//! DNS, its own host. The two look the same from here, except in what
//! else the instance reaches at the same time. So a failure counts against
//! a member only once it is *corroborated*: another member passed a probe
//! that was sent after this member's failure run was first seen. Until
//! then the member's withdrawal waits (`why: correlated`) and its record
//! stays as Route53 holds it. Pure: what was seen comes in as values.
//!
//! - A region failing on its own is corroborated within one probe of
//!   another region's: a member starting a failure run makes one member of
//!   every region probe at once (`controller::tasks::prober`, the witness alarm),
//!   before `fall` failures can add up.
//! - Everything failing at the same instant (this instance's egress, its
//!   resolver, a full descriptor table) is never corroborated, so nothing
//!   is withdrawn; it ends when something passes again.
//! - Members failing for a long time do not corroborate each other: only a
//!   pass does. When every member has failed for its own reasons the
//!   safety rules keep the record published anyway (`last_member`).
//! - Probes that observe nothing (no token to send, a local error such as
//!   no descriptor left: `probe::FailureKind::observes`) neither pass nor
//!   fail.
//!
//! With `ha`, another instance's counted vote that the member is unhealthy
//! corroborates it too: a second vantage point saw it.

use std::time::Instant;

/// What this instance saw of one member lately, on its monotonic clock
/// (a step of the wall clock neither stretches nor skips a hold).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// When its current failure run was first seen (the first failing
    /// probe came back); `None` while its last probe passed.
    pub failing_since: Option<Instant>,
    /// When the last probe that passed was sent.
    pub last_pass: Option<Instant>,
    /// When its current run of passes began (the first passing probe was
    /// sent); `None` while its last probe failed.
    pub passing_since: Option<Instant>,
}

impl Seen {
    /// A probe sent at `sent` came back at `seen`, passing or not.
    pub fn observed(&mut self, passed: bool, sent: Instant, seen: Instant) {
        if passed {
            self.failing_since = None;
            self.last_pass = Some(sent);
            self.passing_since.get_or_insert(sent);
        } else {
            self.passing_since = None;
            self.failing_since.get_or_insert(seen);
        }
    }
}

/// The latest pass of any member and the latest of every other member:
/// all the rule needs to know of the whole instance, kept up to date one
/// pass at a time (`controller` holds one for every member it probes, so
/// deciding a member costs nothing of the others').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passes<K> {
    best: Option<(Instant, K)>,
    /// The latest pass of a member other than `best`'s.
    second: Option<Instant>,
}

impl<K> Default for Passes<K> {
    fn default() -> Self {
        Passes {
            best: None,
            second: None,
        }
    }
}

impl<K: Copy + PartialEq> Passes<K> {
    /// Member `who` passed a probe sent at `sent`.
    pub fn note(&mut self, who: K, sent: Instant) {
        match self.best {
            Some((b, k)) if sent <= b => {
                if k != who {
                    self.second = Some(self.second.map_or(sent, |s| s.max(sent)));
                }
            }
            Some((b, k)) if k != who => {
                self.second = Some(self.second.map_or(b, |s| s.max(b)));
                self.best = Some((sent, who));
            }
            _ => self.best = Some((sent, who)),
        }
    }

    /// Whether a member other than `who` passed a probe sent after `since`.
    pub fn another_after(&self, who: K, since: Instant) -> bool {
        let others = match self.best {
            Some((_, k)) if k == who => self.second,
            Some((t, _)) => Some(t),
            None => None,
        };
        others.is_some_and(|pass| pass > since)
    }
}

/// Whether the failure of member `who`, as `seen`, waits for
/// corroboration: it is in a failure run and no *other* member passed a
/// probe sent after that run was first seen. `false` for a member not
/// failing.
pub fn waits<K: Copy + PartialEq>(who: K, seen: &Seen, passes: &Passes<K>) -> bool {
    seen.failing_since
        .is_some_and(|since| !passes.another_after(who, since))
}

/// The rule for a whole set of members at once (what [`Passes`] keeps
/// incrementally): for each, whether its failure waits for corroboration.
pub fn uncorroborated(members: &[Seen]) -> Vec<bool> {
    let mut passes = Passes::default();
    for (i, m) in members.iter().enumerate() {
        if let Some(t) = m.last_pass {
            passes.note(i, t);
        }
    }
    members
        .iter()
        .enumerate()
        .map(|(i, m)| waits(i, m, &passes))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn t(ms: u64) -> Instant {
        // One origin for every case of a run.
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    fn seen(failing_since: Option<u64>, last_pass: Option<u64>) -> Seen {
        Seen {
            failing_since: failing_since.map(t),
            last_pass: last_pass.map(t),
            passing_since: None,
        }
    }

    #[test]
    fn a_failure_waits_until_another_member_passes_a_probe_sent_after_it() {
        // (members as (failing since, last pass sent)) → uncorroborated
        type Row = (Option<u64>, Option<u64>);
        let cases: &[(&str, &[Row], &[bool])] = &[
            (
                "nothing fails",
                &[(None, Some(10)), (None, Some(12))],
                &[false, false],
            ),
            (
                "one fails, another passed after it: corroborated",
                &[(Some(100), Some(10)), (None, Some(150))],
                &[false, false],
            ),
            (
                "one fails, the others' last passes were sent before it",
                &[(Some(100), Some(10)), (None, Some(90)), (None, Some(99))],
                &[true, false, false],
            ),
            (
                "a pass sent at the very instant does not count",
                &[(Some(100), Some(10)), (None, Some(100))],
                &[true, false],
            ),
            (
                "everything fails at once: nothing corroborates anything",
                &[
                    (Some(100), Some(90)),
                    (Some(101), Some(95)),
                    (Some(102), Some(99)),
                ],
                &[true, true, true],
            ),
            (
                "its own later pass does not count (it is failing again)",
                &[(Some(300), Some(250)), (None, Some(200))],
                &[true, false],
            ),
            (
                "a long failure is corroborated by any pass since",
                &[(Some(5), None), (Some(400), Some(300)), (None, Some(350))],
                &[false, true, false],
            ),
            (
                "no pass ever: waits",
                &[(Some(5), None), (Some(6), None)],
                &[true, true],
            ),
            (
                "a single member failing waits",
                &[(Some(5), Some(1))],
                &[true],
            ),
        ];
        for (what, rows, want) in cases {
            let members: Vec<Seen> = rows.iter().map(|&(f, p)| seen(f, p)).collect();
            assert_eq!(uncorroborated(&members), *want, "{what}");
        }
    }

    #[test]
    fn a_pass_ends_the_run_and_a_failure_starts_one_once() {
        let mut s = Seen::default();
        s.observed(false, t(0), t(5));
        s.observed(false, t(10), t(15));
        assert_eq!(s.failing_since, Some(t(5)), "the run's first failure");
        s.observed(true, t(20), t(21));
        s.observed(true, t(30), t(31));
        assert_eq!(
            s,
            Seen {
                passing_since: Some(t(20)),
                ..seen(None, Some(30))
            },
            "a run of passes counts from its first"
        );
    }

    proptest! {
        /// Passes noted one at a time, in any order, answer as the rule
        /// asks of the whole set.
        #[test]
        fn passes_kept_one_at_a_time_answer_as_the_whole_set(
            passes in proptest::collection::vec((0usize..5, 0u64..50), 0..30),
            who in 0usize..5, since in 0u64..50) {
            let mut kept = Passes::default();
            for &(k, at) in &passes {
                kept.note(k, t(at));
            }
            let want = passes.iter().any(|&(k, at)| k != who && t(at) > t(since));
            prop_assert_eq!(kept.another_after(who, t(since)), want);
        }

        /// The one-walk answer is the rule as stated, for any members.
        #[test]
        fn matches_the_rule_as_stated(rows in proptest::collection::vec(
            (proptest::option::of(0u64..50), proptest::option::of(0u64..50)), 0..12)) {
            let members: Vec<Seen> = rows.iter().map(|&(f, p)| seen(f, p)).collect();
            let got = uncorroborated(&members);
            for (i, m) in members.iter().enumerate() {
                let want = m.failing_since.is_some_and(|since| {
                    !members.iter().enumerate().any(|(j, o)| {
                        j != i && o.last_pass.is_some_and(|p| p > since)
                    })
                });
                prop_assert_eq!(got[i], want, "member {} of {:?}", i, rows);
            }
        }
    }
}
