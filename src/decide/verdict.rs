//! The verdict state machine: a member is `unknown` until `rise` consecutive
//! successes make it `healthy` or `fall` consecutive failures make it
//! `unhealthy`; after that, `fall` failures in a row turn a healthy member
//! unhealthy and `rise` successes in a row bring it back. Pure: time comes in
//! as an argument.

use std::time::SystemTime;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Unknown,
    Healthy,
    Unhealthy,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unknown => "unknown",
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

/// A member's health, fed one probe outcome at a time.
#[derive(Debug, Clone)]
pub struct Health {
    rise: u32,
    fall: u32,
    verdict: Verdict,
    since: SystemTime,
    /// Consecutive successes (while the last outcome was a success) or
    /// failures (while it was a failure); one of the two is always zero.
    successes: u32,
    failures: u32,
    /// Why the verdict is what it is: the failure that turned it unhealthy,
    /// or the latest failure seen while healthy.
    reason: Option<String>,
}

/// A change of verdict, to log, count and act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Verdict,
    pub to: Verdict,
}

impl Health {
    pub fn new(rise: u32, fall: u32, now: SystemTime) -> Self {
        Health {
            rise: rise.max(1),
            fall: fall.max(1),
            verdict: Verdict::Unknown,
            since: now,
            successes: 0,
            failures: 0,
            reason: None,
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    pub fn since(&self) -> SystemTime {
        self.since
    }

    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Whether the next outcome can change the verdict: one more failure
    /// or one more success completes a run.
    pub fn may_flip(&self) -> bool {
        (self.verdict != Verdict::Unhealthy && self.failures + 1 >= self.fall)
            || (self.verdict != Verdict::Healthy && self.successes + 1 >= self.rise)
    }

    /// Whether a run that may change the verdict is under way: the latest
    /// outcome goes against the verdict (a failure of a healthy member, a
    /// success of an unhealthy one). Not at start-up (`unknown`): thousands
    /// of members re-probing at once would bunch their probes for nothing
    /// (an unknown member is never withdrawn).
    pub fn in_run(&self) -> bool {
        match self.verdict {
            Verdict::Healthy => self.failures > 0,
            Verdict::Unhealthy => self.successes > 0,
            Verdict::Unknown => false,
        }
    }

    /// Whether the verdict may change soon: one outcome away from it, or
    /// a run toward it under way (what a reconcile waits out before a
    /// write that follows another, `controller::reconcile`).
    pub fn unsettled(&self) -> bool {
        self.may_flip() || self.in_run()
    }

    pub fn consecutive(&self) -> (u32, u32) {
        (self.successes, self.failures)
    }

    /// Feeds one probe outcome: `Ok(())` or `Err(reason)`.
    pub fn observe(&mut self, outcome: Result<(), String>, now: SystemTime) -> Option<Transition> {
        let from = self.verdict;
        match outcome {
            Ok(()) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.verdict != Verdict::Healthy && self.successes >= self.rise {
                    self.verdict = Verdict::Healthy;
                    self.reason = None;
                }
            }
            Err(reason) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                self.reason = Some(reason);
                if self.verdict != Verdict::Unhealthy && self.failures >= self.fall {
                    self.verdict = Verdict::Unhealthy;
                }
            }
        }
        (from != self.verdict).then(|| {
            self.since = now;
            Transition {
                from,
                to: self.verdict,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn run(rise: u32, fall: u32, outcomes: &str) -> Vec<Verdict> {
        let mut h = Health::new(rise, fall, t(0));
        outcomes
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let o = if c == '+' {
                    Ok(())
                } else {
                    Err("status".into())
                };
                h.observe(o, t(i as u64 + 1));
                h.verdict()
            })
            .collect()
    }

    use Verdict::{Healthy as H, Unhealthy as X, Unknown as U};

    #[test]
    fn verdicts_follow_rise_and_fall() {
        let cases: &[(u32, u32, &str, &[Verdict])] = &[
            // rise 2: unknown until two successes in a row
            (2, 3, "++", &[U, H]),
            (2, 3, "+-+", &[U, U, U]),
            // fall 3 from unknown
            (2, 3, "---", &[U, U, X]),
            // withdraws after fall failures, not before
            (2, 3, "++--+---", &[U, H, H, H, H, H, H, X]),
            // comes back after rise successes in a row
            (2, 3, "---+-++", &[U, U, X, X, X, X, H]),
            // rise/fall of 1 flip on every outcome
            (1, 1, "+-+", &[H, X, H]),
        ];
        for (rise, fall, outcomes, want) in cases {
            assert_eq!(
                &run(*rise, *fall, outcomes),
                want,
                "rise={rise} fall={fall} outcomes={outcomes}"
            );
        }
    }

    #[test]
    fn since_and_reason_track_the_last_transition() {
        let mut h = Health::new(1, 2, t(0));
        assert!(h.observe(Ok(()), t(5)).is_some());
        assert_eq!(h.since(), t(5));
        assert_eq!(h.observe(Err("timeout".into()), t(6)), None);
        assert_eq!(h.reason(), Some("timeout"));
        let tr = h.observe(Err("connect".into()), t(7)).unwrap();
        assert_eq!((tr.from, tr.to), (H, X));
        assert_eq!((h.since(), h.reason()), (t(7), Some("connect")));
        h.observe(Ok(()), t(8));
        assert_eq!(
            h.reason(),
            None,
            "a healthy verdict carries no failure reason"
        );
    }

    #[test]
    fn may_flip_says_when_the_next_outcome_can_change_the_verdict() {
        let mut h = Health::new(2, 3, t(0));
        assert!(
            !h.may_flip(),
            "unknown, nothing seen: neither run can complete"
        );
        h.observe(Ok(()), t(1));
        assert!(h.may_flip(), "one more success makes it healthy");
        h.observe(Ok(()), t(2));
        assert!(!h.may_flip(), "healthy, no failures");
        h.observe(Err("x".into()), t(3));
        h.observe(Err("x".into()), t(4));
        assert!(h.may_flip(), "one more failure makes it unhealthy");
    }

    #[test]
    fn a_run_is_under_way_while_outcomes_go_against_the_verdict() {
        let mut h = Health::new(2, 3, t(0));
        assert!(!h.in_run(), "nothing seen yet");
        let steps: &[(bool, bool)] = &[
            // (outcome ok, in a run after it)
            (true, false), // unknown, one success: start-up keeps its pace
            (true, false), // healthy: the run completed
            (false, true), // healthy, one failure
            (true, false), // the run broke
            (false, true),
            (false, true),
            (false, false), // unhealthy: completed
            (false, false), // still failing: nothing may change
            (true, true),   // unhealthy, one success
        ];
        for (i, (ok, want)) in steps.iter().enumerate() {
            let o = if *ok { Ok(()) } else { Err("x".into()) };
            h.observe(o, t(i as u64 + 1));
            assert_eq!(h.in_run(), *want, "after outcome {i}");
        }
    }

    proptest! {
        /// A verdict only becomes unhealthy on a run of `fall` failures and
        /// healthy on a run of `rise` successes.
        #[test]
        fn transitions_need_a_full_run(rise in 1u32..=10, fall in 1u32..=10,
                                      outcomes in proptest::collection::vec(any::<bool>(), 0..200)) {
            let mut h = Health::new(rise, fall, t(0));
            let mut run_ok = 0u32;
            let mut run_fail = 0u32;
            for (i, ok) in outcomes.iter().enumerate() {
                if *ok { run_ok += 1; run_fail = 0 } else { run_fail += 1; run_ok = 0 }
                let o = if *ok { Ok(()) } else { Err("x".to_string()) };
                if let Some(tr) = h.observe(o, t(i as u64)) {
                    match tr.to {
                        Verdict::Healthy => prop_assert!(run_ok >= rise),
                        Verdict::Unhealthy => prop_assert!(run_fail >= fall),
                        Verdict::Unknown => prop_assert!(false, "never back to unknown"),
                    }
                }
                if run_ok >= rise { prop_assert_eq!(h.verdict(), Verdict::Healthy) }
                if run_fail >= fall { prop_assert_eq!(h.verdict(), Verdict::Unhealthy) }
            }
        }
    }
}
