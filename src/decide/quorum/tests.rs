use proptest::prelude::*;

use super::*;
use Verdict::{Healthy as H, Unhealthy as X, Unknown as U};

const MAX_AGE: Duration = Duration::from_secs(90);

fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
}

fn keys(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A view of three members `a`, `b`, `c`, written at second `at`.
fn view(instance: &str, at: u64, unhealthy: &[&str], unknown: &[&str]) -> View {
    View {
        instance: instance.into(),
        at: t(at),
        members: "m3".into(),
        count: 3,
        unhealthy: keys(unhealthy),
        unknown: keys(unknown),
        partial: false,
    }
}

fn vote(verdict: Verdict) -> Vote {
    Vote {
        instance: "peer".into(),
        verdict,
        written: t(0),
        ignored: None,
    }
}

#[test]
fn a_view_survives_its_record() {
    let mut v = view("pod-a", 5, &["k1", "k2"], &["k3"]);
    v.at = t(5) + Duration::from_millis(250);
    let r = v.to_record("pod-a._route53-failover-views.example.test");
    assert_eq!(r.rtype, RecordType::Txt);
    assert!(r.values.iter().all(|s| s.len() <= TXT_MAX), "{r:?}");
    assert_eq!(View::parse(&r), Some(v));
    // Not a view: another TXT, a value of another kind.
    let mut other = r.clone();
    other.values = vec!["\"route53-failover-lease holder=a term=1 expires=1\"".into()];
    assert_eq!(View::parse(&other), None);
    let mut a = r.clone();
    a.rtype = RecordType::A;
    assert_eq!(View::parse(&a), None);
}

#[test]
fn a_long_list_is_split_into_strings_and_a_view_too_long_is_partial() {
    let many: Vec<String> = (0..400).map(|i| format!("{i:012x}")).collect();
    let mut v = view("pod-a", 1, &[], &[]);
    v.count = 400;
    v.unhealthy = many[..300].iter().cloned().collect();
    let r = v.to_record("n");
    assert!(r.values.len() > 10);
    assert!(r.values.iter().all(|s| s.len() <= TXT_MAX));
    assert_eq!(View::parse(&r).unwrap().unhealthy.len(), 300);

    let mut huge = v.clone();
    huge.count = 5000;
    huge.unhealthy = (0..5000).map(|i| format!("{i:012x}")).collect();
    let back = View::parse(&huge.to_record("n")).unwrap();
    assert!(back.partial);
    assert_eq!(back.unhealthy.len(), MAX_LIST_VALUES * 18);
    let vs = votes(&[back], "me", "000000000001", "m3", t(1), MAX_AGE);
    assert_eq!(vs[0].ignored, Some(Ignored::Partial));
}

#[test]
fn which_views_count() {
    let views = [
        view("me", 10, &["a"], &[]),
        view("fresh", 10, &["a"], &[]),
        view("stale", 0, &["a"], &[]),
        View {
            members: "other".into(),
            ..view("rollout", 10, &["a"], &[])
        },
        view("blind", 10, &["a", "b", "c"], &[]),
        View {
            partial: true,
            ..view("cut", 10, &["a"], &[])
        },
        view("starting", 10, &[], &["a"]),
        // Its clock runs ahead: age zero, it counts.
        view("ahead", 200, &[], &[]),
    ];
    let got: Vec<(String, Verdict, Option<Ignored>)> =
        votes(&views, "me", "a", "m3", t(100), MAX_AGE)
            .into_iter()
            .map(|v| (v.instance, v.verdict, v.ignored))
            .collect();
    let want = vec![
        ("fresh".to_string(), X, None),
        ("stale".to_string(), X, Some(Ignored::Stale)),
        ("rollout".to_string(), X, Some(Ignored::OtherConfig)),
        ("blind".to_string(), X, Some(Ignored::EverythingDown)),
        ("cut".to_string(), X, Some(Ignored::Partial)),
        ("starting".to_string(), U, None),
        ("ahead".to_string(), H, None),
    ];
    assert_eq!(got, want);
}

#[test]
fn the_agreed_verdict() {
    // (what it shows, rule, prev, local, local counts, peers) → agreed
    type Case<'a> = (
        &'a str,
        Quorum,
        Verdict,
        Verdict,
        bool,
        &'a [Verdict],
        Verdict,
    );
    let cases: &[Case] = &[
        (
            "alone, a majority is this instance",
            Quorum::Majority,
            H,
            X,
            true,
            &[],
            X,
        ),
        (
            "one of three sees it down: it stays",
            Quorum::Majority,
            H,
            X,
            true,
            &[H, H],
            H,
        ),
        (
            "a follower alone sees it down: it stays",
            Quorum::Majority,
            H,
            H,
            true,
            &[X, H],
            H,
        ),
        (
            "two of three: withdrawn",
            Quorum::Majority,
            H,
            X,
            true,
            &[X, H],
            X,
        ),
        (
            "two of three, not this one: withdrawn",
            Quorum::Majority,
            H,
            H,
            true,
            &[X, X],
            X,
        ),
        (
            "one of three recovers: still out",
            Quorum::Majority,
            X,
            H,
            true,
            &[X, X],
            X,
        ),
        (
            "two of three recover: restored",
            Quorum::Majority,
            X,
            H,
            true,
            &[H, X],
            H,
        ),
        (
            "split with an unknown: as it was",
            Quorum::Majority,
            H,
            X,
            true,
            &[H, U],
            H,
        ),
        (
            "split with an unknown, from out: as it was",
            Quorum::Majority,
            X,
            H,
            true,
            &[X, U],
            X,
        ),
        (
            "two instances must both agree",
            Quorum::Majority,
            H,
            X,
            true,
            &[H],
            H,
        ),
        (
            "two instances agreeing",
            Quorum::Majority,
            H,
            X,
            true,
            &[X],
            X,
        ),
        (
            "at start-up, unknown until a majority knows",
            Quorum::Majority,
            U,
            H,
            true,
            &[U, U],
            U,
        ),
        (
            "this one sees everything down: the others decide",
            Quorum::Majority,
            H,
            X,
            false,
            &[H, H],
            H,
        ),
        (
            "no voter left: this instance's verdict",
            Quorum::Majority,
            H,
            X,
            false,
            &[],
            X,
        ),
        (
            "any: this instance alone, whatever the others see",
            Quorum::Any,
            H,
            X,
            true,
            &[H, H],
            X,
        ),
        (
            "any: and restored alone",
            Quorum::Any,
            X,
            H,
            true,
            &[X, X],
            H,
        ),
    ];
    for (what, rule, prev, local, counts, peers, want) in cases {
        let votes: Vec<Vote> = peers.iter().map(|&v| vote(v)).collect();
        assert_eq!(
            agree(*rule, *prev, *local, *counts, &votes),
            *want,
            "{what}"
        );
    }
}

#[test]
fn ignored_votes_do_not_count() {
    let mut stale = vote(X);
    stale.ignored = Some(Ignored::Stale);
    // Three instances, one stale: two voters, both must agree.
    assert_eq!(
        agree(Quorum::Majority, H, X, true, &[stale.clone(), vote(H)]),
        H
    );
    assert_eq!(agree(Quorum::Majority, H, X, true, &[stale, vote(X)]), X);
}

#[test]
fn member_keys_and_fingerprints_are_stable() {
    let text = r#"
owner: me
provider: {kind: memory, zones: [example.test]}
defaults: {probe: {url: "http://api.example.test/health"}}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {region: us-east-1, set_identifier: use1, target: {values: [192.0.2.1]}}
      - {region: eu-west-1, set_identifier: euw1, target: {values: [192.0.2.2]}}
"#;
    let cfg = crate::config::parse(text, std::path::Path::new(".")).unwrap();
    let r = &cfg.records[0];
    let k: Vec<String> = r.members.iter().map(|m| member_key(r, m)).collect();
    assert_eq!(k.len(), r.members.len());
    assert!(k.iter().all(|k| k.len() == 12), "{k:?}");
    assert_eq!(
        k,
        r.members
            .iter()
            .map(|m| member_key(r, m))
            .collect::<Vec<_>>()
    );
    let mut rev = k.clone();
    rev.reverse();
    assert_eq!(fingerprint(&k), fingerprint(&rev));
    assert_ne!(fingerprint(&k), fingerprint(&k[1..]));
    assert_eq!(
        view_name("pod-a", "example.test"),
        "pod-a._route53-failover-views.example.test"
    );
    assert!(view_name("pod-a", "example.test").ends_with(&views_parent("example.test")));
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![Just(H), Just(X), Just(U)]
}

proptest! {
    /// One view out of three never withdraws a member, nor restores one.
    #[test]
    fn one_view_of_three_never_decides(
        prev in verdict(),
        views in proptest::collection::vec(verdict(), 3),
        lone in 0usize..3,
        target in prop_oneof![Just(H), Just(X)],
    ) {
        // Exactly one of the three sees `target`; the other two do not.
        let mut views = views;
        for (i, v) in views.iter_mut().enumerate() {
            if i == lone {
                *v = target;
            } else if *v == target {
                *v = U;
            }
        }
        let votes: Vec<Vote> = views[1..].iter().map(|&v| vote(v)).collect();
        let agreed = agree(Quorum::Majority, prev, views[0], true, &votes);
        if prev != target {
            prop_assert_ne!(agreed, target);
        }
    }

    /// The agreed verdict is always one a voter holds or the one before:
    /// no rule invents a verdict nobody sees.
    #[test]
    fn the_agreed_verdict_is_seen_by_someone(
        prev in verdict(),
        local in verdict(),
        counts in any::<bool>(),
        peers in proptest::collection::vec(verdict(), 0..6),
    ) {
        let votes: Vec<Vote> = peers.iter().map(|&v| vote(v)).collect();
        let agreed = agree(Quorum::Majority, prev, local, counts, &votes);
        prop_assert!(agreed == prev || agreed == local || peers.contains(&agreed));
        // A majority of the voters holds it, unless it stayed as it was.
        if agreed != prev {
            let t = Tally::of(counts.then_some(local), &votes);
            let holding = match agreed { H => t.healthy, X => t.unhealthy, U => 0 };
            prop_assert!(t.voters == 0 || holding * 2 > t.voters);
        }
    }
}
