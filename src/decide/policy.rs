//! Verdicts and what Route53 holds → which members of a record are
//! published, and why the others are not. Pure.
//!
//! The rules, in order:
//! - a member whose record belongs to someone else (a conflict) is left alone;
//! - a healthy member is published;
//! - an unknown member keeps what Route53 holds (no withdrawal at start-up);
//! - an unhealthy member is withdrawn only while at least `min_healthy`
//!   healthy members stay published, and never when it would leave the
//!   record with nothing published (`last_member`);
//! - when nothing would be published and some member is unhealthy, every
//!   unhealthy member is published (fail open, as Route53 answers with all
//!   records of a latency set when all are unhealthy).

use serde::Serialize;

use crate::decide::verdict::Verdict;

/// One member as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberInput {
    pub verdict: Verdict,
    /// Route53 holds a record for this member now.
    pub published: bool,
    /// Route53 holds a record with this member's set identifier that this
    /// owner does not own.
    pub conflict: bool,
}

/// What to do with the member's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Make sure it is present with the configured values.
    Publish,
    /// Make sure it is absent.
    Withdraw,
    /// Change nothing.
    Leave,
}

/// Why the decision is what it is; shown in status and used as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    Healthy,
    Unhealthy,
    /// No verdict yet: left as Route53 holds it.
    Unknown,
    /// Someone else's record holds this set identifier.
    Conflict,
    /// Withdrawal blocked: fewer than `min_healthy` healthy members.
    MinHealthy,
    /// Withdrawal blocked: it would leave nothing published.
    LastMember,
    /// Published although unhealthy: every member is unhealthy.
    FailOpen,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Healthy => "healthy",
            Why::Unhealthy => "unhealthy",
            Why::Unknown => "unknown",
            Why::Conflict => "conflict",
            Why::MinHealthy => "min_healthy",
            Why::LastMember => "last_member",
            Why::FailOpen => "fail_open",
        }
    }

    /// A withdrawal the safety rules refused.
    pub fn is_blocked(self) -> bool {
        matches!(self, Why::MinHealthy | Why::LastMember)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemberDecision {
    pub intent: Intent,
    /// Whether the member is published once the decision is carried out.
    pub published: bool,
    pub why: Why,
}

fn decision(intent: Intent, published: bool, why: Why) -> MemberDecision {
    MemberDecision {
        intent,
        published,
        why,
    }
}

/// Decides every member of one record.
pub fn decide(min_healthy: usize, members: &[MemberInput]) -> Vec<MemberDecision> {
    let healthy = members
        .iter()
        .filter(|m| !m.conflict && m.verdict == Verdict::Healthy)
        .count();
    // Published whatever happens to the unhealthy members.
    let staying = members
        .iter()
        .filter(|m| {
            if m.conflict || m.verdict == Verdict::Unknown {
                m.published
            } else {
                m.verdict == Verdict::Healthy
            }
        })
        .count();
    let unhealthy_published = members
        .iter()
        .any(|m| !m.conflict && m.verdict == Verdict::Unhealthy && m.published);

    members
        .iter()
        .map(|m| {
            if m.conflict {
                return decision(Intent::Leave, m.published, Why::Conflict);
            }
            match m.verdict {
                Verdict::Healthy => decision(Intent::Publish, true, Why::Healthy),
                Verdict::Unknown => decision(Intent::Leave, m.published, Why::Unknown),
                Verdict::Unhealthy if m.published => {
                    if staying == 0 {
                        decision(Intent::Publish, true, Why::LastMember)
                    } else if healthy < min_healthy {
                        decision(Intent::Publish, true, Why::MinHealthy)
                    } else {
                        decision(Intent::Withdraw, false, Why::Unhealthy)
                    }
                }
                Verdict::Unhealthy => {
                    if staying == 0 && !unhealthy_published {
                        decision(Intent::Publish, true, Why::FailOpen)
                    } else {
                        decision(Intent::Withdraw, false, Why::Unhealthy)
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Verdict::{Healthy as H, Unhealthy as X, Unknown as U};

    fn m(verdict: Verdict, published: bool) -> MemberInput {
        MemberInput {
            verdict,
            published,
            conflict: false,
        }
    }

    fn whys(min_healthy: usize, members: &[MemberInput]) -> Vec<(bool, Why)> {
        decide(min_healthy, members)
            .iter()
            .map(|d| (d.published, d.why))
            .collect()
    }

    #[test]
    fn decisions_follow_the_rules() {
        type Case = (usize, Vec<MemberInput>, Vec<(bool, Why)>);
        let cases: Vec<Case> = vec![
            // withdraws an unhealthy member while a healthy one stays
            (
                1,
                vec![m(H, true), m(X, true)],
                vec![(true, Why::Healthy), (false, Why::Unhealthy)],
            ),
            // never withdraws the last published member
            (
                1,
                vec![m(X, true), m(X, false)],
                vec![(true, Why::LastMember), (false, Why::Unhealthy)],
            ),
            (
                1,
                vec![m(X, true), m(X, true)],
                vec![(true, Why::LastMember), (true, Why::LastMember)],
            ),
            // min_healthy blocks a withdrawal
            (
                2,
                vec![m(H, true), m(X, true), m(H, false)],
                vec![
                    (true, Why::Healthy),
                    (false, Why::Unhealthy),
                    (true, Why::Healthy),
                ],
            ),
            (
                2,
                vec![m(H, true), m(X, true), m(X, true)],
                vec![
                    (true, Why::Healthy),
                    (true, Why::MinHealthy),
                    (true, Why::MinHealthy),
                ],
            ),
            // unknown keeps what Route53 holds, either way
            (
                1,
                vec![m(U, true), m(U, false)],
                vec![(true, Why::Unknown), (false, Why::Unknown)],
            ),
            // an unknown published member lets an unhealthy one go
            (
                1,
                vec![m(U, true), m(X, true)],
                vec![(true, Why::Unknown), (true, Why::MinHealthy)],
            ),
            // a recovered member is published again
            (
                1,
                vec![m(H, false), m(H, true)],
                vec![(true, Why::Healthy), (true, Why::Healthy)],
            ),
            // nothing published and all unhealthy: fail open
            (
                1,
                vec![m(X, false), m(X, false)],
                vec![(true, Why::FailOpen), (true, Why::FailOpen)],
            ),
            // a conflict is left alone and still counts as published
            (
                1,
                vec![
                    MemberInput {
                        verdict: H,
                        published: true,
                        conflict: true,
                    },
                    m(X, true),
                ],
                vec![(true, Why::Conflict), (true, Why::MinHealthy)],
            ),
        ];
        for (min_healthy, members, want) in cases {
            assert_eq!(
                whys(min_healthy, &members),
                want,
                "min_healthy={min_healthy} {members:?}"
            );
        }
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![Just(U), Just(H), Just(X)]
    }

    proptest! {
        /// Random verdict sequences applied step by step, with Route53 taking
        /// each decision: once anything is published, something stays
        /// published, and no withdrawal leaves fewer than `min_healthy`
        /// healthy members published.
        #[test]
        fn published_is_never_emptied_nor_taken_below_min_healthy(
            n in 1usize..6,
            min_frac in 0.0f64..1.0,
            steps in proptest::collection::vec(proptest::collection::vec(verdict(), 6), 1..40),
        ) {
            let min_healthy = 1 + ((n - 1) as f64 * min_frac) as usize;
            let mut published = vec![false; n];
            for step in steps {
                let inputs: Vec<MemberInput> =
                    (0..n).map(|i| m(step[i], published[i])).collect();
                let was_any = published.iter().any(|p| *p);
                let decisions = decide(min_healthy, &inputs);
                let healthy_after = decisions.iter().zip(&inputs)
                    .filter(|(d, i)| d.published && i.verdict == H).count();
                for (d, i) in decisions.iter().zip(&inputs) {
                    if i.published && !d.published {
                        prop_assert!(healthy_after >= min_healthy,
                            "withdrew below min_healthy: {inputs:?} -> {decisions:?}");
                    }
                    if i.verdict == H { prop_assert!(d.published) }
                    if i.verdict == U { prop_assert_eq!(d.published, i.published) }
                }
                published = decisions.iter().map(|d| d.published).collect();
                let any_verdict = inputs.iter().any(|i| i.verdict != U);
                if was_any || any_verdict {
                    prop_assert!(published.iter().any(|p| *p),
                        "nothing published: {inputs:?} -> {decisions:?}");
                }
            }
        }
    }
}
