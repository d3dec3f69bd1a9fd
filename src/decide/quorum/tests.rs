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

/// This instance's monotonic clock: seconds since an origin.
fn m(secs: u64) -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now) + Duration::from_secs(secs)
}

/// A peer's vote whose view last changed at `changed` (this instance's
/// clock).
fn vote_at(verdict: Verdict, changed: u64) -> Vote {
    Vote {
        instance: "peer".into(),
        verdict,
        written: t(0),
        changed: m(changed),
        ignored: None,
    }
}

/// A fresh vote: changed now (at 100 s).
fn vote(verdict: Verdict) -> Vote {
    vote_at(verdict, 100)
}

/// This instance: its verdict, whether it counts, since when it says so.
fn local(verdict: Verdict, counts: bool) -> Local {
    Local {
        verdict,
        counts,
        since: Some(m(50)),
    }
}

const NOW: u64 = 100;

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
    let vs = votes(&[(back, m(0))], "me", "000000000001", "m3");
    assert_eq!(vs[0].ignored, Some(Ignored::Partial));
}

#[test]
fn which_views_count() {
    // (view, when this instance saw it change) → its standing at 100 s
    let seen = |v: View, changed: u64| (v, m(changed));
    let views = [
        seen(view("me", 10, &["a"], &[]), 100),
        seen(view("fresh", 10, &["a"], &[]), 95),
        // Unchanged for over 90 s on this clock, whatever its `at` says.
        seen(view("stale", 99, &["a"], &[]), 5),
        seen(
            View {
                members: "other".into(),
                ..view("rollout", 10, &["a"], &[])
            },
            95,
        ),
        seen(view("blind", 10, &["a", "b", "c"], &[]), 95),
        seen(
            View {
                partial: true,
                ..view("cut", 10, &["a"], &[])
            },
            95,
        ),
        seen(view("starting", 10, &[], &["a"]), 95),
        // Its writer's clock runs far ahead or behind: it is not read.
        seen(view("ahead", 100_000, &["a"], &[]), 95),
        seen(view("behind", 0, &["a"], &[]), 95),
        // Says healthy, has not changed since this instance's failure run
        // began (at 50 s): lost with its region, maybe.
        seen(view("old", 10, &[], &[]), 40),
        seen(view("renewed", 10, &[], &[]), 60),
    ];
    let here = local(X, true);
    let got: Vec<(String, Verdict, Option<Ignored>)> = votes(&views, "me", "a", "m3")
        .into_iter()
        .map(|v| {
            let standing = v.standing(&here, m(NOW), MAX_AGE);
            (v.instance, v.verdict, standing)
        })
        .collect();
    let want = vec![
        ("fresh".to_string(), X, None),
        ("stale".to_string(), X, Some(Ignored::Stale)),
        ("rollout".to_string(), X, Some(Ignored::OtherConfig)),
        ("blind".to_string(), X, Some(Ignored::EverythingDown)),
        ("cut".to_string(), X, Some(Ignored::Partial)),
        ("starting".to_string(), U, Some(Ignored::Abstains)),
        ("ahead".to_string(), X, None),
        ("behind".to_string(), X, None),
        ("old".to_string(), H, Some(Ignored::Unrefreshed)),
        ("renewed".to_string(), H, None),
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
            "split with a peer that abstains: as it was",
            Quorum::Majority,
            H,
            X,
            true,
            &[H, U],
            H,
        ),
        (
            "two know, the third abstains: they decide",
            Quorum::Majority,
            H,
            X,
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
            "at start-up, unknown until another knows",
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
    for (what, rule, prev, mine, counts, peers, want) in cases {
        let votes: Vec<Vote> = peers.iter().map(|&v| vote(v)).collect();
        assert_eq!(
            agree(
                *rule,
                *prev,
                &local(*mine, *counts),
                &votes,
                m(NOW),
                MAX_AGE
            ),
            *want,
            "{what}"
        );
    }
}

#[test]
fn votes_age_on_this_clock_when_they_are_used_not_when_read() {
    let here = local(X, true);
    // Two peers that saw it down too, their views last changed at 20 s.
    let peers = [vote_at(X, 20), vote_at(X, 20)];
    assert_eq!(
        agree(Quorum::Majority, H, &here, &peers, m(100), MAX_AGE),
        X
    );
    // No read since (reads failing): at 111 s they are stale, and the
    // lone voter left does not decide while... no other view is fresh: it
    // decides alone.
    assert_eq!(
        agree(
            Quorum::Majority,
            X,
            &local(H, true),
            &peers,
            m(111),
            MAX_AGE
        ),
        H
    );
}

#[test]
fn a_region_lost_with_its_instances_is_withdrawn_by_the_survivors() {
    // 2 regions x 2 instances: this one and a peer in the surviving region
    // see the member fail from 50 s; the two instances lost with the
    // member's region still "see" it healthy, their views unchanged since
    // 40 s (fresh by the max age: 90 s).
    let here = local(X, true);
    let votes = [vote_at(X, 60), vote_at(H, 40), vote_at(H, 40)];
    assert_eq!(
        agree(Quorum::Majority, H, &here, &votes, m(NOW), MAX_AGE),
        X
    );
    // The same views, had the lost instances rewritten theirs since the
    // failure began (they are alive, and see it up): no majority.
    let alive = [vote_at(X, 60), vote_at(H, 70), vote_at(H, 70)];
    assert_eq!(
        agree(Quorum::Majority, H, &here, &alive, m(NOW), MAX_AGE),
        H
    );
}

#[test]
fn a_path_broken_for_one_instance_alone_never_decides() {
    // Only this instance sees it down; the others' views have not changed
    // since (they heartbeat later): it does not decide alone while they
    // are there.
    let here = local(X, true);
    let others = [vote_at(H, 40), vote_at(H, 45), vote_at(H, 48)];
    assert_eq!(
        agree(Quorum::Majority, H, &here, &others, m(NOW), MAX_AGE),
        H
    );
    // Once they refresh, they outvote it.
    let refreshed = [vote_at(H, 70), vote_at(H, 75), vote_at(H, 78)];
    assert_eq!(
        agree(Quorum::Majority, H, &here, &refreshed, m(NOW), MAX_AGE),
        H
    );
    // Everyone else gone for good (stale): it decides alone.
    let gone = [vote_at(H, 5), vote_at(H, 5)];
    assert_eq!(agree(Quorum::Majority, H, &here, &gone, m(NOW), MAX_AGE), X);
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
    /// One view out of three never withdraws a member, nor restores one,
    /// whenever the views changed and whatever the writers' clocks.
    #[test]
    fn one_view_of_three_never_decides(
        prev in verdict(),
        views in proptest::collection::vec(verdict(), 3),
        changed in proptest::collection::vec(0u64..100, 2),
        since in proptest::option::of(0u64..100),
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
        let votes: Vec<Vote> = views[1..]
            .iter()
            .zip(&changed)
            .map(|(&v, &c)| vote_at(v, c))
            .collect();
        let here = Local { verdict: views[0], counts: true, since: since.map(m) };
        let agreed = agree(Quorum::Majority, prev, &here, &votes, m(NOW), MAX_AGE);
        // Unless the others are gone for good (stale: this one alone).
        let gone = votes.iter().all(|v| v.standing(&here, m(NOW), MAX_AGE) == Some(Ignored::Stale));
        if prev != target && !gone {
            prop_assert_ne!(agreed, target);
        }
    }

    /// The agreed verdict is always one a voter holds or the one before:
    /// no rule invents a verdict nobody sees; and it moves only on a
    /// majority of the voters that count.
    #[test]
    fn the_agreed_verdict_is_seen_by_someone(
        prev in verdict(),
        mine in verdict(),
        counts in any::<bool>(),
        since in proptest::option::of(0u64..100),
        peers in proptest::collection::vec((verdict(), 0u64..100), 0..6),
    ) {
        let votes: Vec<Vote> = peers.iter().map(|&(v, c)| vote_at(v, c)).collect();
        let here = Local { verdict: mine, counts, since: since.map(m) };
        let agreed = agree(Quorum::Majority, prev, &here, &votes, m(NOW), MAX_AGE);
        prop_assert!(agreed == prev || agreed == mine || peers.iter().any(|p| p.0 == agreed));
        if agreed != prev && agreed != mine {
            let t = Tally::of(&here, &votes, m(NOW), MAX_AGE);
            let holding = match agreed { H => t.healthy, X => t.unhealthy, U => 0 };
            prop_assert!(holding * 2 > t.voters, "{t:?}");
        }
    }
}
