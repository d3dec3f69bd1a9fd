use proptest::prelude::*;

use super::*;
use Verdict::{Healthy as H, Unhealthy as X, Unknown as U};

fn settings() -> DampingSettings {
    DampingSettings {
        hold: Duration::from_secs(30),
        max_hold: Duration::from_secs(600),
        forget_after: Duration::from_secs(600),
    }
}

fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
}

/// Feeds (second, verdict) changes, from `unknown`; returns the hold's end
/// (seconds after the start) at each, as seen right after it.
fn run(changes: &[(u64, Verdict)]) -> Vec<Option<u64>> {
    let mut d = Damping::default();
    let mut from = U;
    changes
        .iter()
        .map(|&(s, v)| {
            d.verdict_changed(from, v, t(s), &settings());
            from = v;
            d.held_until(t(s))
                .map(|u| u.duration_since(t(0)).unwrap().as_secs())
        })
        .collect()
}

#[test]
fn holds_follow_the_flaps() {
    type Case<'a> = (&'a str, &'a [(u64, Verdict)], &'a [Option<u64>]);
    let cases: &[Case] = &[
        (
            "the first failure and the first recovery are never held",
            &[(10, X), (20, H)],
            &[None, None],
        ),
        (
            "the first verdict at start-up is no restoration: the first failure is not held",
            &[(1, H), (10, X), (20, H)],
            &[None, None, None],
        ),
        (
            "a failure soon after a restoration is a flap: held 30 s",
            &[(10, X), (20, H), (25, X)],
            &[None, None, Some(55)],
        ),
        (
            "each further flap doubles the hold, from its own failure",
            &[
                (10, X),
                (20, H),
                (25, X),
                (40, H),
                (45, X),
                (50, H),
                (52, X),
            ],
            &[
                None,
                None,
                Some(55),
                Some(55),
                Some(105),
                Some(105),
                Some(172),
            ],
        ),
        (
            "a failure long after the last restoration is not a flap",
            &[(10, X), (20, H), (25, X), (56, H), (56 + 601, X)],
            &[None, None, Some(55), None, None],
        ),
    ];
    for (what, changes, want) in cases {
        assert_eq!(&run(changes), want, "{what}");
    }
}

#[test]
fn the_hold_doubles_up_to_its_cap() {
    let s = settings();
    let holds: Vec<u64> = (1..=7).map(|f| hold_for(&s, f).as_secs()).collect();
    assert_eq!(holds, vec![30, 60, 120, 240, 480, 600, 600]);
    assert_eq!(hold_for(&s, 1000).as_secs(), 600, "no overflow");
}

#[test]
fn flaps_are_forgotten_after_a_stable_period() {
    let mut d = Damping::default();
    let mut from = U;
    for (s, v) in [(10, X), (20, H), (25, X), (30, H), (35, X)] {
        d.verdict_changed(from, v, t(s), &settings());
        from = v;
    }
    assert_eq!(d.flaps, 2);
    d.verdict_changed(X, H, t(200), &settings());
    // Stable for longer than forget_after: the next failure starts over.
    assert!(!d.verdict_changed(H, X, t(200 + 700), &settings()));
    assert_eq!(d.flaps, 0);
    assert_eq!(d.held_until(t(900)), None);
}

fn change() -> impl Strategy<Value = (u64, bool)> {
    (1u64..400, any::<bool>())
}

proptest! {
    /// Whatever the history, a hold never outlasts `max_hold` after the
    /// last failure, and a member with no earlier restoration is never held.
    #[test]
    fn holds_are_bounded_and_need_a_restoration_first(
        changes in proptest::collection::vec(change(), 1..60),
    ) {
        let s = settings();
        let mut d = Damping::default();
        let mut now = 0u64;
        let mut restored = false;
        let mut from = U;
        for (gap, healthy) in changes {
            now += gap;
            let v = if healthy { H } else { X };
            d.verdict_changed(from, v, t(now), &s);
            restored |= healthy && from == X;
            from = v;
            if let Some(u) = d.held_until(t(now)) {
                prop_assert!(restored, "held before any restoration");
                prop_assert!(u <= t(now) + s.max_hold, "held past max_hold");
            }
        }
    }
}
