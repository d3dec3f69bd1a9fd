//! Verdicts and what Route53 holds → which members of a record are
//! published, and why the others are not. Pure.
//!
//! The rules, in order:
//! - a member whose record belongs to someone else (a conflict) is left alone;
//! - a healthy member is published, unless it is held by flap damping
//!   (`damped`), which withdraws it while the record keeps a published
//!   member and `min_healthy` healthy ones without it;
//! - an unknown member keeps what Route53 holds (no withdrawal at start-up);
//! - an unhealthy member is withdrawn only while at least `min_healthy`
//!   healthy members stay published, and never when it would leave the
//!   record with nothing published (`last_member`);
//! - when nothing would be published and some member is unhealthy, every
//!   unhealthy member is published (fail open, as Route53 answers with all
//!   records of a latency set when all are unhealthy);
//! - last, no more than `max_withdrawn` members are out at once: a
//!   withdrawal past the cap is refused (`max_withdrawn`), the last members
//!   in config order first (Envoy's `max_ejection_percent`).
//!
//! Every rule that withdraws is checked by the safety rules, which come
//! last: no decision empties a record, takes it below `min_healthy`, or
//! past `max_withdrawn` (property tests below).

use serde::Serialize;

use crate::config::RecordConfig;
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
    /// Flap damping holds the member out (`decide::damping`).
    pub damped: bool,
}

/// The limits a record's decisions respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Safety {
    pub min_healthy: usize,
    /// At most this many members out at once; `None`: no cap.
    pub max_withdrawn: Option<usize>,
}

impl Safety {
    pub fn of(record: &RecordConfig) -> Self {
        Safety {
            min_healthy: record.min_healthy,
            max_withdrawn: record.max_withdrawn,
        }
    }
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
    /// Healthy, but held out by flap damping.
    Damped,
    /// Withdrawal blocked: `max_withdrawn` members are out already.
    MaxWithdrawn,
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
            Why::Damped => "damped",
            Why::MaxWithdrawn => "max_withdrawn",
        }
    }

    /// A withdrawal the safety rules refused.
    pub fn is_blocked(self) -> bool {
        matches!(self, Why::MinHealthy | Why::LastMember | Why::MaxWithdrawn)
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
pub fn decide(safety: Safety, members: &[MemberInput]) -> Vec<MemberDecision> {
    let live = |m: &&MemberInput| !m.conflict;
    let healthy_undamped = members
        .iter()
        .filter(live)
        .filter(|m| m.verdict == Verdict::Healthy && !m.damped)
        .count();
    // Published whatever happens to the unhealthy and damped members.
    let staying_base = members
        .iter()
        .filter(|m| {
            if m.conflict || m.verdict == Verdict::Unknown {
                m.published
            } else {
                m.verdict == Verdict::Healthy && !m.damped
            }
        })
        .count();
    // Damping holds a healthy member out only while the record keeps a
    // published member and `min_healthy` healthy ones without it.
    let damping_holds = staying_base > 0 && healthy_undamped >= safety.min_healthy;
    let damped_in = if damping_holds {
        0
    } else {
        members
            .iter()
            .filter(live)
            .filter(|m| m.verdict == Verdict::Healthy && m.damped)
            .count()
    };
    let healthy = healthy_undamped + damped_in;
    let staying = staying_base + damped_in;
    let unhealthy_published = members
        .iter()
        .any(|m| !m.conflict && m.verdict == Verdict::Unhealthy && m.published);

    let mut decisions: Vec<MemberDecision> = members
        .iter()
        .map(|m| {
            if m.conflict {
                return decision(Intent::Leave, m.published, Why::Conflict);
            }
            match m.verdict {
                Verdict::Healthy if m.damped && damping_holds => {
                    decision(Intent::Withdraw, false, Why::Damped)
                }
                Verdict::Healthy if m.damped => {
                    let why = if staying_base == 0 {
                        Why::LastMember
                    } else {
                        Why::MinHealthy
                    };
                    decision(Intent::Publish, true, why)
                }
                Verdict::Healthy => decision(Intent::Publish, true, Why::Healthy),
                Verdict::Unknown => decision(Intent::Leave, m.published, Why::Unknown),
                Verdict::Unhealthy if m.published => {
                    if staying == 0 {
                        decision(Intent::Publish, true, Why::LastMember)
                    } else if healthy < safety.min_healthy {
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
        .collect();
    if let Some(max) = safety.max_withdrawn {
        cap_withdrawals(max, members, &mut decisions);
    }
    decisions
}

/// Refuses the withdrawals of published members that would leave more than
/// `max` members out, the last in config order first. Members already out
/// stay out: the cap limits new withdrawals, it does not publish.
fn cap_withdrawals(max: usize, members: &[MemberInput], decisions: &mut [MemberDecision]) {
    let mut out = members
        .iter()
        .zip(decisions.iter())
        .filter(|(m, d)| !m.conflict && !d.published)
        .count();
    for (m, d) in members.iter().zip(decisions.iter_mut()).rev() {
        if out <= max {
            break;
        }
        if m.published && !m.conflict && d.intent == Intent::Withdraw {
            *d = decision(Intent::Publish, true, Why::MaxWithdrawn);
            out -= 1;
        }
    }
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
            damped: false,
        }
    }

    /// A healthy member held by damping.
    fn d(published: bool) -> MemberInput {
        MemberInput {
            damped: true,
            ..m(H, published)
        }
    }

    fn safety(min_healthy: usize, max_withdrawn: Option<usize>) -> Safety {
        Safety {
            min_healthy,
            max_withdrawn,
        }
    }

    fn whys(min_healthy: usize, members: &[MemberInput]) -> Vec<(bool, Why)> {
        decide(safety(min_healthy, None), members)
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
                        damped: false,
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

    #[test]
    fn damping_and_max_withdrawn_follow_the_rules() {
        type Case = (&'static str, Safety, Vec<MemberInput>, Vec<(bool, Why)>);
        let cases: Vec<Case> = vec![
            (
                "a damped member is withdrawn while a healthy one stays",
                safety(1, None),
                vec![m(H, true), d(true)],
                vec![(true, Why::Healthy), (false, Why::Damped)],
            ),
            (
                "and stays out while held",
                safety(1, None),
                vec![m(H, true), d(false)],
                vec![(true, Why::Healthy), (false, Why::Damped)],
            ),
            (
                "damping never withdraws the last published member",
                safety(1, None),
                vec![d(true), m(X, false)],
                vec![(true, Why::LastMember), (false, Why::Unhealthy)],
            ),
            (
                "nor goes below min_healthy",
                safety(2, None),
                vec![m(H, true), d(true), m(X, false)],
                vec![
                    (true, Why::Healthy),
                    (true, Why::MinHealthy),
                    (false, Why::Unhealthy),
                ],
            ),
            (
                "a damped member kept in for min_healthy counts as healthy: an unhealthy one still goes",
                safety(2, None),
                vec![m(H, true), d(true), m(X, true)],
                vec![
                    (true, Why::Healthy),
                    (true, Why::MinHealthy),
                    (false, Why::Unhealthy),
                ],
            ),
            (
                "a damped member comes back when nothing else is published",
                safety(1, None),
                vec![d(false), m(X, false)],
                vec![(true, Why::LastMember), (false, Why::Unhealthy)],
            ),
            (
                "max_withdrawn refuses the withdrawals past the cap, last first",
                safety(1, Some(1)),
                vec![m(H, true), m(X, true), m(X, true)],
                vec![
                    (true, Why::Healthy),
                    (false, Why::Unhealthy),
                    (true, Why::MaxWithdrawn),
                ],
            ),
            (
                "members already out count against the cap",
                safety(1, Some(1)),
                vec![m(H, true), m(X, false), m(X, true)],
                vec![
                    (true, Why::Healthy),
                    (false, Why::Unhealthy),
                    (true, Why::MaxWithdrawn),
                ],
            ),
            (
                "and so do damped ones",
                safety(1, Some(1)),
                vec![m(H, true), d(true), m(X, true)],
                vec![
                    (true, Why::Healthy),
                    (false, Why::Damped),
                    (true, Why::MaxWithdrawn),
                ],
            ),
        ];
        for (what, safety, members, want) in cases {
            let got: Vec<(bool, Why)> = decide(safety, &members)
                .iter()
                .map(|d| (d.published, d.why))
                .collect();
            assert_eq!(got, want, "{what}");
        }
        assert!(Why::MaxWithdrawn.is_blocked());
        assert!(!Why::Damped.is_blocked());
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![Just(U), Just(H), Just(X)]
    }

    proptest! {
        /// Random verdicts, damping holds and limits applied step by step,
        /// with Route53 taking each decision: once anything is published,
        /// something stays published; no withdrawal leaves fewer than
        /// `min_healthy` healthy members published or more than
        /// `max_withdrawn` out; an undamped healthy member is published and
        /// an unknown one keeps what Route53 holds.
        #[test]
        fn no_rule_breaks_the_safety_rules(
            n in 1usize..6,
            min_frac in 0.0f64..1.0,
            max_out in proptest::option::of(1usize..5),
            steps in proptest::collection::vec(
                proptest::collection::vec((verdict(), any::<bool>()), 6), 1..40),
        ) {
            let min_healthy = 1 + ((n - 1) as f64 * min_frac) as usize;
            let max_withdrawn = max_out.map(|x| x.min(n.saturating_sub(1)).max(1));
            let safety = Safety { min_healthy, max_withdrawn };
            let mut published = vec![false; n];
            for step in steps {
                let inputs: Vec<MemberInput> = (0..n)
                    .map(|i| MemberInput { damped: step[i].1, ..m(step[i].0, published[i]) })
                    .collect();
                let was_any = published.iter().any(|p| *p);
                let decisions = decide(safety, &inputs);
                let healthy_after = decisions.iter().zip(&inputs)
                    .filter(|(d, i)| d.published && i.verdict == H).count();
                let out_after = decisions.iter().filter(|d| !d.published).count();
                let mut withdrew = false;
                for (d, i) in decisions.iter().zip(&inputs) {
                    if i.published && !d.published {
                        withdrew = true;
                        prop_assert!(healthy_after >= min_healthy,
                            "withdrew below min_healthy: {inputs:?} -> {decisions:?}");
                    }
                    if i.verdict == H && !i.damped { prop_assert!(d.published) }
                    if i.verdict == U { prop_assert_eq!(d.published, i.published) }
                }
                if let (true, Some(max)) = (withdrew, max_withdrawn) {
                    prop_assert!(out_after <= max,
                        "withdrew past max_withdrawn {max}: {inputs:?} -> {decisions:?}");
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
