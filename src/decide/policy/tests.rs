use super::*;
use proptest::prelude::*;
use Verdict::{Healthy as H, Unhealthy as X, Unknown as U};

fn m(verdict: Verdict, published: bool) -> MemberInput {
    MemberInput {
        verdict,
        published,
        conflict: false,
        damped: false,
        drain: Drain::No,
    }
}

/// A healthy member held by damping.
fn d(published: bool) -> MemberInput {
    MemberInput {
        damped: true,
        ..m(H, published)
    }
}

/// A member on-call drained (`force`: with --force).
fn dr(verdict: Verdict, published: bool, force: bool) -> MemberInput {
    MemberInput {
        drain: if force { Drain::Forced } else { Drain::Yes },
        ..m(verdict, published)
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
                    drain: Drain::No,
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

#[test]
fn drains_follow_the_safety_rules() {
    type Case = (&'static str, Safety, Vec<MemberInput>, Vec<(bool, Why)>);
    let cases: Vec<Case> = vec![
        (
            "a drained healthy member goes while another stays",
            safety(1, None),
            vec![m(H, true), dr(H, true, false)],
            vec![(true, Why::Healthy), (false, Why::Drained)],
        ),
        (
            "whatever its verdict",
            safety(1, None),
            vec![m(H, true), dr(X, true, false), dr(U, true, false)],
            vec![
                (true, Why::Healthy),
                (false, Why::Drained),
                (false, Why::Drained),
            ],
        ),
        (
            "min_healthy holds a drain in, and says so",
            safety(2, None),
            vec![m(H, true), dr(H, true, false)],
            vec![(true, Why::Healthy), (true, Why::MinHealthy)],
        ),
        (
            "--force goes below min_healthy",
            safety(2, None),
            vec![m(H, true), dr(H, true, true)],
            vec![(true, Why::Healthy), (false, Why::Drained)],
        ),
        (
            "nothing drains the last published member, forced or not",
            safety(1, None),
            vec![m(X, false), dr(H, true, true)],
            vec![(false, Why::Unhealthy), (true, Why::LastMember)],
        ),
        (
            "two drains of a two-member record: neither goes",
            safety(1, None),
            vec![dr(H, true, false), dr(H, true, false)],
            vec![(true, Why::LastMember), (true, Why::LastMember)],
        ),
        (
            "an unhealthy member is still withdrawn beside a drain held in",
            safety(2, None),
            vec![m(H, true), dr(H, true, false), m(X, true), m(H, true)],
            vec![
                (true, Why::Healthy),
                (false, Why::Drained),
                (false, Why::Unhealthy),
                (true, Why::Healthy),
            ],
        ),
        (
            "max_withdrawn refuses a drain past the cap",
            safety(1, Some(1)),
            vec![m(H, true), m(X, false), dr(H, true, false)],
            vec![
                (true, Why::Healthy),
                (false, Why::Unhealthy),
                (true, Why::MaxWithdrawn),
            ],
        ),
        (
            "but not a forced one",
            safety(1, Some(1)),
            vec![m(H, true), m(X, false), dr(H, true, true)],
            vec![
                (true, Why::Healthy),
                (false, Why::Unhealthy),
                (false, Why::Drained),
            ],
        ),
        (
            "a drain of a member already out keeps it out",
            safety(1, None),
            vec![m(H, true), dr(H, false, false)],
            vec![(true, Why::Healthy), (false, Why::Drained)],
        ),
        (
            "even below min_healthy: it stops withdrawals, it does not undo a drain",
            safety(2, None),
            vec![m(H, true), m(X, true), dr(H, false, false)],
            vec![
                (true, Why::Healthy),
                (true, Why::MinHealthy),
                (false, Why::Drained),
            ],
        ),
        (
            "and while the others have no verdict yet (a restart)",
            safety(1, None),
            vec![m(U, true), dr(H, false, false)],
            vec![(true, Why::Unknown), (false, Why::Drained)],
        ),
        (
            "but it comes back rather than leave nothing published",
            safety(1, None),
            vec![m(X, false), dr(H, false, false)],
            vec![(false, Why::Unhealthy), (true, Why::LastMember)],
        ),
    ];
    for (what, safety, members, want) in cases {
        let got: Vec<(bool, Why)> = decide(safety, &members)
            .iter()
            .map(|d| (d.published, d.why))
            .collect();
        assert_eq!(got, want, "{what}");
    }
}

/// Mostly no drain, as in life.
fn drain() -> impl Strategy<Value = Drain> {
    prop_oneof![4 => Just(Drain::No), 1 => Just(Drain::Yes), 1 => Just(Drain::Forced)]
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![Just(U), Just(H), Just(X)]
}

proptest! {
    /// Random verdicts, damping holds, drains and limits applied step by
    /// step, with Route53 taking each decision: once anything is
    /// published, something stays published (even with forced drains); no
    /// withdrawal leaves fewer than `min_healthy` healthy members published
    /// or more than `max_withdrawn` out, unless a forced drain went; an
    /// undamped, undrained healthy member is published and an undrained
    /// unknown one keeps what Route53 holds; a drain that goes says
    /// `drained`, one held in says the rule that holds it.
    #[test]
    fn no_rule_breaks_the_safety_rules(
        n in 1usize..6,
        min_frac in 0.0f64..1.0,
        max_out in proptest::option::of(1usize..5),
        steps in proptest::collection::vec(
            proptest::collection::vec((verdict(), any::<bool>(), drain()), 6), 1..40),
    ) {
        let min_healthy = 1 + ((n - 1) as f64 * min_frac) as usize;
        let max_withdrawn = max_out.map(|x| x.min(n.saturating_sub(1)).max(1));
        let safety = Safety { min_healthy, max_withdrawn };
        let mut published = vec![false; n];
        for step in steps {
            let inputs: Vec<MemberInput> = (0..n)
                .map(|i| MemberInput { damped: step[i].1, drain: step[i].2, ..m(step[i].0, published[i]) })
                .collect();
            let was_any = published.iter().any(|p| *p);
            let decisions = decide(safety, &inputs);
            let forced_out = decisions.iter().zip(&inputs)
                .any(|(d, i)| i.drain == Drain::Forced && i.published && !d.published);
            let healthy_after = decisions.iter().zip(&inputs)
                .filter(|(d, i)| d.published && i.verdict == H).count();
            let out_after = decisions.iter().filter(|d| !d.published).count();
            let mut withdrew = false;
            for (d, i) in decisions.iter().zip(&inputs) {
                if i.published && !d.published {
                    withdrew = true;
                    prop_assert!(forced_out || healthy_after >= min_healthy,
                        "withdrew below min_healthy: {inputs:?} -> {decisions:?}");
                }
                if i.drain != Drain::No {
                    prop_assert!(
                        !d.published && d.why == Why::Drained
                            || d.published && matches!(d.why, Why::MinHealthy | Why::LastMember | Why::MaxWithdrawn),
                        "a drain says what holds it: {i:?} -> {d:?}");
                    continue;
                }
                if i.verdict == H && !i.damped { prop_assert!(d.published) }
                if i.verdict == U { prop_assert_eq!(d.published, i.published) }
            }
            if let (true, Some(max), false) = (withdrew, max_withdrawn, forced_out) {
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
