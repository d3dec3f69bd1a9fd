use super::*;
use crate::config::{parse, Config};
use crate::decide::ownership::{ownership, Observed, Ownership};
use crate::decide::policy::Intent::{Leave, Publish, Withdraw};
use crate::decide::verdict::Verdict;
use crate::decide::zone::{member_inputs, MemberView, RecordView};
use crate::provider::RecordType;
use std::path::Path;

fn config(extra_member: &str) -> Config {
    let text = format!(
        r#"
owner: me
provider: {{kind: memory, zones: [example.test]}}
defaults: {{probe: {{url: "http://api.example.test/health"}}}}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {{region: us-east-1, set_identifier: use1, target: {{values: [192.0.2.1]}}}}
      - {{region: eu-west-1, set_identifier: euw1, target: {{values: [192.0.2.2]}}{extra_member}}}
"#
    );
    parse(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn rec(id: &str, region: &str, value: &str) -> RecordSet {
    RecordSet::latency_a("api.example.test", id, region, value)
}

fn marker(values: &[&str]) -> RecordSet {
    RecordSet {
        name: "_route53-failover.api.example.test".into(),
        rtype: RecordType::Txt,
        set_identifier: None,
        region: None,
        ttl: Some(300),
        values: values.iter().map(|v| v.to_string()).collect(),
        alias: None,
        health_check_id: None,
    }
}

const CLAIM_USE1: &str = "\"route53-failover owner=me type=A set=use1\"";
const CLAIM_EUW1: &str = "\"route53-failover owner=me type=A set=euw1\"";

fn plan(cfg: &Config, observed: Vec<RecordSet>, intents: Vec<Intent>) -> Vec<Change> {
    let observed = Observed::new(observed);
    plan_zone(
        "me",
        &observed,
        &[RecordIntents::new(&cfg.records[0], intents)],
    )
    .changes
}

fn summary(changes: &[Change]) -> Vec<(Action, String)> {
    changes
        .iter()
        .map(|c| {
            let what = match &c.record.set_identifier {
                Some(id) => id.clone(),
                None => format!("marker{:?}", c.record.values),
            };
            (c.action, what)
        })
        .collect()
}

#[test]
fn publishing_into_an_empty_zone_creates_the_claims_then_upserts() {
    let cfg = config("");
    let changes = plan(&cfg, vec![], vec![Publish, Publish]);
    assert_eq!(
        summary(&changes),
        vec![
            (
                Action::Create,
                format!("marker{:?}", [CLAIM_EUW1, CLAIM_USE1])
            ),
            (Action::Upsert, "use1".into()),
            (Action::Upsert, "euw1".into()),
        ]
    );
    assert_eq!(changes[1].record, rec("use1", "us-east-1", "192.0.2.1"));
}

#[test]
fn nothing_changes_when_the_zone_matches_the_decision() {
    let cfg = config("");
    let observed = vec![
        marker(&[CLAIM_EUW1, CLAIM_USE1]),
        rec("use1", "us-east-1", "192.0.2.1"),
        rec("euw1", "eu-west-1", "192.0.2.2"),
    ];
    assert!(plan(&cfg, observed.clone(), vec![Publish, Publish]).is_empty());
    assert!(plan(&cfg, observed, vec![Leave, Leave]).is_empty());
}

#[test]
fn withdrawal_deletes_with_the_exact_observed_values() {
    let cfg = config("");
    // The zone holds a TTL the config does not say: DELETE must carry it.
    let mut drifted = rec("euw1", "eu-west-1", "192.0.2.2");
    drifted.ttl = Some(30);
    let observed = vec![
        marker(&[CLAIM_EUW1, CLAIM_USE1]),
        rec("use1", "us-east-1", "192.0.2.1"),
        drifted.clone(),
    ];
    let changes = plan(&cfg, observed, vec![Publish, Withdraw]);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].action, Action::Delete);
    assert_eq!(changes[0].record, drifted);
}

#[test]
fn drifted_values_are_repaired_on_publish() {
    let cfg = config("");
    let observed = vec![
        marker(&[CLAIM_EUW1, CLAIM_USE1]),
        rec("use1", "us-east-1", "192.0.2.99"),
        rec("euw1", "eu-west-1", "192.0.2.2"),
    ];
    let changes = plan(&cfg, observed, vec![Publish, Publish]);
    assert_eq!(summary(&changes), vec![(Action::Upsert, "use1".into())]);
    assert_eq!(changes[0].record.values, vec!["192.0.2.1"]);
}

#[test]
fn a_foreign_record_with_a_configured_set_identifier_is_left_alone() {
    let cfg = config("");
    let foreign = rec("euw1", "eu-west-1", "203.0.113.5");
    let observed = vec![
        marker(&[CLAIM_USE1]),
        rec("use1", "us-east-1", "192.0.2.1"),
        foreign,
    ];
    for intents in [vec![Publish, Publish], vec![Publish, Withdraw]] {
        assert!(plan(&cfg, observed.clone(), intents).is_empty());
    }
    let o = Observed::new(observed);
    let own = ownership(
        &o,
        &o.claims(),
        "me",
        &cfg.records[0],
        &cfg.records[0].members[1],
        false,
    );
    assert_eq!(
        own,
        Ownership {
            present: true,
            owned: false,
            conflict: true
        }
    );
}

#[test]
fn adopt_takes_over_a_foreign_record() {
    let cfg = config(", adopt: true");
    let observed = vec![rec("euw1", "eu-west-1", "203.0.113.5")];
    let changes = plan(&cfg, observed, vec![Leave, Publish]);
    assert_eq!(
        summary(&changes),
        vec![
            (Action::Create, format!("marker{:?}", [CLAIM_EUW1])),
            (Action::Upsert, "euw1".into())
        ]
    );
}

#[test]
fn other_owners_claims_in_a_marker_are_kept() {
    let cfg = config("");
    let theirs = "\"route53-failover owner=other type=A set=aps2\"";
    let plain = "\"v=something-else\"";
    let observed = vec![marker(&[theirs, plain])];
    let changes = plan(&cfg, observed, vec![Publish, Leave]);
    let mut want = vec![
        CLAIM_USE1.to_string(),
        theirs.to_string(),
        plain.to_string(),
    ];
    want.sort();
    assert_eq!(changes[0].record.values, want);
}

#[test]
fn a_member_removed_from_config_loses_its_record_then_its_claim() {
    let cfg = config("");
    let gone = rec("aps2", "ap-southeast-2", "192.0.2.3");
    let claim_aps2 = "\"route53-failover owner=me type=A set=aps2\"";
    let mut observed = Observed::new(vec![
        marker(&[CLAIM_EUW1, CLAIM_USE1, claim_aps2]),
        rec("use1", "us-east-1", "192.0.2.1"),
        rec("euw1", "eu-west-1", "192.0.2.2"),
        gone.clone(),
    ]);
    let intents = || [RecordIntents::new(&cfg.records[0], vec![Publish, Publish])];
    let first = plan_zone("me", &observed, &intents());
    assert_eq!(
        first.changes,
        vec![Change {
            action: Action::Delete,
            record: gone
        }],
        "the record goes first; its claim stays while the record is there"
    );
    assert!(first.retiring.is_empty() && first.orphaned.is_empty());
    observed.apply(&first.changes);
    let second = plan_zone("me", &observed, &intents());
    assert_eq!(second.changes.len(), 1);
    assert_eq!(second.changes[0].action, Action::Upsert);
    assert_eq!(
        second.changes[0].record.values,
        vec![CLAIM_EUW1, CLAIM_USE1]
    );
}

#[test]
fn a_removed_member_that_is_its_records_last_stays_until_another_is_published() {
    // The config names use1 and euw1; the zone holds only aps2, a member
    // the config no longer names, and the configured members have no
    // verdict yet (a reload that renamed every member, say).
    let cfg = config("");
    let old = rec("aps2", "ap-southeast-2", "192.0.2.3");
    let claim_aps2 = "\"route53-failover owner=me type=A set=aps2\"";
    let observed = Observed::new(vec![marker(&[claim_aps2]), old.clone()]);
    let unknown = [RecordIntents::new(&cfg.records[0], vec![Leave, Leave])];
    let waiting = plan_zone("me", &observed, &unknown);
    assert!(waiting.changes.is_empty(), "{:?}", waiting.changes);
    assert_eq!(waiting.retiring, vec![old.key()]);
    assert!(
        waiting.refused.is_empty(),
        "the policy asked for nothing wrong"
    );
    // Once a configured member is published, the old one goes after it.
    let one = [RecordIntents::new(&cfg.records[0], vec![Publish, Leave])];
    let plan = plan_zone("me", &observed, &one);
    assert_eq!(
        summary(&plan.changes),
        vec![
            (
                Action::Upsert,
                format!("marker{:?}", [claim_aps2, CLAIM_USE1])
            ),
            (Action::Upsert, "use1".into()),
            (Action::Delete, "aps2".into()),
        ],
        "claim, publish, then delete: cut anywhere, the record is never empty"
    );
    assert!(plan.retiring.is_empty());
}

#[test]
fn names_the_config_does_not_manage_are_orphaned_never_deleted() {
    // Another install with the same owner manages web.example.test, or the
    // operator removed it from the config: either way it is left alone.
    let cfg = config("");
    let web = RecordSet {
        name: "web.example.test".into(),
        ..rec("w1", "us-east-1", "192.0.2.9")
    };
    let web_marker = RecordSet {
        name: "_route53-failover.web.example.test".into(),
        values: vec!["\"route53-failover owner=me type=A set=w1\"".into()],
        ..marker(&[])
    };
    let observed = Observed::new(vec![
        marker(&[CLAIM_EUW1, CLAIM_USE1]),
        rec("use1", "us-east-1", "192.0.2.1"),
        rec("euw1", "eu-west-1", "192.0.2.2"),
        web_marker,
        web,
    ]);
    let plan = plan_zone(
        "me",
        &observed,
        &[RecordIntents::new(&cfg.records[0], vec![Publish, Withdraw])],
    );
    assert_eq!(
        summary(&plan.changes),
        vec![(Action::Delete, "euw1".into())]
    );
    assert_eq!(
        plan.orphaned,
        vec![("web.example.test".to_string(), RecordType::A)]
    );
}

#[test]
fn the_last_record_rule_refuses_whatever_would_empty_a_record() {
    let observed = Observed::new(vec![
        rec("use1", "us-east-1", "192.0.2.1"),
        rec("euw1", "eu-west-1", "192.0.2.2"),
        RecordSet {
            name: "other.example.test".into(),
            ..rec("o1", "us-east-1", "192.0.2.5")
        },
    ]);
    let delete = |r: RecordSet| Change {
        action: Action::Delete,
        record: r,
    };
    // Both members of api go: refused, both. One of other's goes with a
    // publish beside it: fine.
    let mut deletes = vec![
        delete(rec("use1", "us-east-1", "192.0.2.1")),
        delete(rec("euw1", "eu-west-1", "192.0.2.2")),
        delete(RecordSet {
            name: "other.example.test".into(),
            ..rec("o1", "us-east-1", "192.0.2.5")
        }),
    ];
    let upserts = vec![Change {
        action: Action::Upsert,
        record: RecordSet {
            name: "other.example.test".into(),
            ..rec("o2", "eu-west-1", "192.0.2.6")
        },
    }];
    let refused = keep_nonempty(&observed, &upserts, &mut deletes);
    assert_eq!(
        summary(&refused),
        vec![
            (Action::Delete, "use1".into()),
            (Action::Delete, "euw1".into())
        ]
    );
    assert_eq!(summary(&deletes), vec![(Action::Delete, "o1".into())]);
    // A record the zone did not hold is not "emptied".
    let mut none = vec![];
    assert!(keep_nonempty(&Observed::new(vec![]), &[], &mut none).is_empty());
}

/// Route53 fails open: a name whose records all fail their checks is
/// answered with every record, the failed region's included. So the rule
/// counts the records that answer (here: whose check, a switch's, is On),
/// not the records present. Each row: which of use1 (carrying check
/// "sw-use1") and euw1 (carrying "sw-euw1") answer, the changes asked,
/// and which of them are refused.
#[test]
fn a_name_that_answers_is_never_left_to_fail_open() {
    let with = |id: &str, region: &str, value: &str, check: Option<&str>| RecordSet {
        health_check_id: check.map(str::to_string),
        ..rec(id, region, value)
    };
    let use1 = with("use1", "us-east-1", "192.0.2.1", Some("sw-use1"));
    let euw1 = with("euw1", "eu-west-1", "192.0.2.2", Some("sw-euw1"));
    let observed = Observed::new(vec![use1.clone(), euw1.clone()]);
    let delete = |r: &RecordSet| Change {
        action: Action::Delete,
        record: r.clone(),
    };
    let upsert = |r: RecordSet| Change {
        action: Action::Upsert,
        record: r,
    };
    // use1 carried nothing before, and moves onto its switch's check.
    let bare = with("use1", "us-east-1", "192.0.2.1", None);
    let bare_observed = Observed::new(vec![bare.clone(), euw1.clone()]);
    type Row<'a> = (
        &'a str,
        &'a Observed,
        &'a [&'a str],
        Vec<Change>,
        Vec<Change>,
        usize,
    );
    let rows: Vec<Row> = vec![
        // euw1 goes (a member removed by a reload) while use1's switch is
        // Off: only euw1 answers now, so it stays.
        (
            "euw1 out, use1 Off",
            &observed,
            &["sw-euw1"],
            vec![],
            vec![delete(&euw1)],
            1,
        ),
        // use1's switch On: euw1 may go.
        (
            "euw1 out, use1 On",
            &observed,
            &["sw-euw1", "sw-use1"],
            vec![],
            vec![delete(&euw1)],
            0,
        ),
        // Nothing known to answer now (failed open, or a switch believed
        // Off was turned On by hand since): nothing goes while nothing is
        // known to answer after.
        (
            "none answers, one goes",
            &observed,
            &[],
            vec![],
            vec![delete(&euw1)],
            1,
        ),
        (
            "none answers, both go",
            &observed,
            &[],
            vec![],
            vec![delete(&euw1), delete(&use1)],
            2,
        ),
        // use1 wired to its Off switch while euw1 goes: both held back.
        (
            "use1 wired Off, euw1 out",
            &bare_observed,
            &["sw-euw1"],
            vec![upsert(use1.clone())],
            vec![delete(&euw1)],
            2,
        ),
        // Wired to an On switch: both go ahead.
        (
            "use1 wired On, euw1 out",
            &bare_observed,
            &["sw-euw1", "sw-use1"],
            vec![upsert(use1.clone())],
            vec![delete(&euw1)],
            0,
        ),
    ];
    for (what, observed, on, upserts, deletes, n) in rows {
        let answers = |r: &RecordSet| {
            Some(
                r.health_check_id
                    .as_deref()
                    .is_none_or(|id| on.contains(&id)),
            )
        };
        let (mut u, mut d) = (upserts.clone(), deletes.clone());
        let refused = keep_answering(observed, &mut u, &mut d, &answers);
        assert_eq!(refused.len(), n, "{what}: refused {refused:?}");
        assert_eq!(
            u.len() + d.len() + n,
            upserts.len() + deletes.len(),
            "{what}"
        );
    }
    // Into the answer before out of it: a swap keeps one answering at
    // every prefix.
    let euw1_off = with("euw1", "eu-west-1", "192.0.2.2", Some("sw-euw1-new"));
    let mut u = vec![
        upsert(euw1_off),
        upsert(with("use1", "us-east-1", "192.0.2.1", Some("sw-use1"))),
    ];
    let mut d = vec![];
    let observed = Observed::new(vec![
        with("use1", "us-east-1", "192.0.2.1", Some("sw-off")),
        euw1.clone(),
    ]);
    let answers = |r: &RecordSet| {
        let id = r.health_check_id.as_deref();
        Some(id != Some("sw-off") && id != Some("sw-euw1-new"))
    };
    assert!(keep_answering(&observed, &mut u, &mut d, &answers).is_empty());
    assert_eq!(
        summary(&u),
        vec![
            (Action::Upsert, "use1".into()),
            (Action::Upsert, "euw1".into())
        ]
    );
}

#[test]
fn the_last_claim_removed_deletes_the_marker() {
    let cfg = config("");
    // A claim of a member no longer configured whose record is gone.
    let m = marker(&["\"route53-failover owner=me type=A set=aps2\""]);
    let changes = plan(&cfg, vec![m.clone()], vec![Leave, Leave]);
    assert_eq!(
        changes,
        vec![Change {
            action: Action::Delete,
            record: m
        }]
    );
}

#[test]
fn applying_a_plan_to_observed_makes_the_next_plan_empty() {
    let cfg = config("");
    let mut observed = Observed::new(vec![]);
    let first = plan_zone(
        "me",
        &observed,
        &[RecordIntents::new(&cfg.records[0], vec![Publish, Publish])],
    );
    observed.apply(&first.changes);
    let second = plan_zone(
        "me",
        &observed,
        &[RecordIntents::new(&cfg.records[0], vec![Publish, Publish])],
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

fn deletes(n: usize, value_len: usize) -> Vec<Change> {
    (0..n)
        .map(|i| Change {
            action: Action::Delete,
            record: RecordSet {
                name: format!("r{i}.example.test"),
                values: vec!["x".repeat(value_len)],
                ..rec("use1", "us-east-1", "")
            },
        })
        .collect()
}

#[test]
fn batches_respect_route53_limits_and_keep_order() {
    // 1,000 single-value deletes fit one batch: a region failing across
    // 1,000 records is one call.
    assert_eq!(batches(deletes(1000, 10)).len(), 1);
    let split = batches(deletes(1001, 10));
    assert_eq!(
        split.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1000, 1]
    );
    // UPSERT counts twice: 500 fit, 501 do not.
    let upserts: Vec<Change> = deletes(501, 10)
        .into_iter()
        .map(|c| Change {
            action: Action::Upsert,
            ..c
        })
        .collect();
    assert_eq!(
        batches(upserts).iter().map(Vec::len).collect::<Vec<_>>(),
        vec![500, 1]
    );
    // 32,000 characters: 100-char values, 320 per batch.
    let by_chars = batches(deletes(700, 100));
    assert_eq!(
        by_chars.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![320, 320, 60]
    );
    let flat: Vec<String> = by_chars
        .concat()
        .iter()
        .map(|c| c.record.name.clone())
        .collect();
    let want: Vec<String> = (0..700).map(|i| format!("r{i}.example.test")).collect();
    assert_eq!(flat, want, "order is kept across batches");
    assert!(batches(vec![]).is_empty());
}

#[test]
fn an_undiscovered_api_gateway_target_counts_as_unknown_and_is_not_published() {
    let text = r#"
owner: me
provider: {kind: route53}
defaults: {probe: {url: "https://api.example.test/health"}}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {region: us-east-1, set_identifier: use1, target: {api_gateway_domain: api.example.test}}
      - {region: eu-west-1, set_identifier: euw1, target: {api_gateway_domain: api.example.test}}
"#;
    let cfg = parse(text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let record = &cfg.records[0];
    let use1 = AliasTarget {
        dns_name: "d-1.execute-api.us-east-1.amazonaws.com".into(),
        hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
        evaluate_target_health: false,
    };
    let discovered = vec![Some(use1.clone()), None];
    let observed = Observed::new(vec![]);
    let view = RecordView {
        record,
        members: discovered
            .iter()
            .map(|d| MemberView {
                discovered: d.clone(),
                ..MemberView::new(Verdict::Healthy)
            })
            .collect(),
        frozen: false,
    };
    let inputs = member_inputs(&observed, &[], &observed.claims(), "me", &view);
    assert_eq!(inputs[0].verdict, Verdict::Healthy);
    assert_eq!(
        inputs[1].verdict,
        Verdict::Unknown,
        "nothing to point it at yet"
    );
    let changes = plan_zone(
        "me",
        &observed,
        &[RecordIntents {
            discovered,
            ..RecordIntents::new(record, vec![Publish, Publish])
        }],
    )
    .changes;
    let records: Vec<&RecordSet> = changes
        .iter()
        .map(|c| &c.record)
        .filter(|r| r.rtype == RecordType::A)
        .collect();
    assert_eq!(records.len(), 1, "only the discovered member: {changes:?}");
    assert_eq!(records[0].alias.as_ref(), Some(&use1));
    assert_eq!(records[0].ttl, None);
}

fn plan_with_checks(
    cfg: &Config,
    observed: Vec<RecordSet>,
    intents: Vec<Intent>,
    checks: Vec<Attach>,
) -> Vec<Change> {
    let observed = Observed::new(observed);
    let mut ri = RecordIntents::new(&cfg.records[0], intents);
    ri.checks = checks;
    plan_zone("me", &observed, &[ri]).changes
}

fn with_check(mut r: RecordSet, id: &str) -> RecordSet {
    r.health_check_id = Some(id.into());
    r
}

#[test]
fn records_carry_the_health_check_the_config_asks_for() {
    let cfg = config("");
    let claimed = marker(&[CLAIM_EUW1, CLAIM_USE1]);
    let use1 = with_check(rec("use1", "us-east-1", "192.0.2.1"), "hc-old");
    let euw1 = rec("euw1", "eu-west-1", "192.0.2.2");
    let observed = vec![claimed.clone(), use1.clone(), euw1.clone()];

    // Keep: nothing to do, whatever the records carry.
    let keep = vec![Attach::Keep, Attach::Keep];
    assert!(plan_with_checks(&cfg, observed.clone(), vec![Publish, Publish], keep).is_empty());

    // A published member moves to its new check; a member left alone
    // (verdict unknown) still gets its check attached; a detached one loses it.
    let moved = vec![Attach::Check("hc-new".into()), Attach::Check("hc-2".into())];
    let changes = plan_with_checks(&cfg, observed.clone(), vec![Publish, Leave], moved);
    assert_eq!(
        changes,
        vec![
            Change {
                action: Action::Upsert,
                record: with_check(use1.clone(), "hc-new")
            },
            Change {
                action: Action::Upsert,
                record: with_check(euw1.clone(), "hc-2")
            },
        ]
    );
    let detached = vec![Attach::Detach, Attach::Detach];
    let changes = plan_with_checks(&cfg, observed.clone(), vec![Leave, Leave], detached);
    assert_eq!(
        changes,
        vec![Change {
            action: Action::Upsert,
            record: rec("use1", "us-east-1", "192.0.2.1")
        }]
    );

    // A withdrawal deletes the record exactly as it is, check and all.
    let checks = vec![Attach::Check("hc-new".into()), Attach::Keep];
    let changes = plan_with_checks(&cfg, observed, vec![Withdraw, Leave], checks);
    assert_eq!(
        changes,
        vec![Change {
            action: Action::Delete,
            record: use1
        }]
    );
}

mod splits {
    use super::*;
    use proptest::prelude::*;

    fn intent() -> impl Strategy<Value = Intent> {
        prop_oneof![Just(Publish), Just(Withdraw), Just(Leave)]
    }

    proptest! {
        /// Whatever the zone holds (members published or not, records of
        /// members no longer configured, claims or none), whatever the
        /// intents the policy could give, and however small the batches:
        /// applying the plan batch after batch never leaves the record
        /// empty at any step, once it held something. The policy never
        /// withdraws every member; the plan must not empty the record by
        /// its own deletions (stale records) or by a cut between batches.
        #[test]
        fn no_batch_of_a_split_plan_leaves_a_record_empty(
            present in proptest::collection::vec(any::<bool>(), 4),
            claimed in proptest::collection::vec(any::<bool>(), 4),
            intents in (intent(), intent()),
            max_records in 1usize..4,
        ) {
            let cfg = config("");
            // use1, euw1 configured; aps2, sae1 no longer.
            let all = [
                ("use1", "us-east-1", "192.0.2.1"),
                ("euw1", "eu-west-1", "192.0.2.2"),
                ("aps2", "ap-southeast-2", "192.0.2.3"),
                ("sae1", "sa-east-1", "192.0.2.4"),
            ];
            let mut records = Vec::new();
            let mut claims = Vec::new();
            for (i, (id, region, value)) in all.iter().enumerate() {
                if present[i] {
                    records.push(rec(id, region, value));
                }
                if claimed[i] {
                    claims.push(format!("\"route53-failover owner=me type=A set={id}\""));
                }
            }
            if !claims.is_empty() {
                let values: Vec<&str> = claims.iter().map(String::as_str).collect();
                records.push(marker(&values));
            }
            // The policy never withdraws every configured member it sees
            // published (last_member): mirror that for the inputs.
            let (a, b) = intents;
            let b = if a == Withdraw && b == Withdraw { Leave } else { b };
            let mut observed = Observed::new(records);
            let count = |o: &Observed| {
                o.records
                    .values()
                    .filter(|r| r.name == "api.example.test" && r.rtype == RecordType::A)
                    .count()
            };
            let before = count(&observed);
            let plan = plan_zone("me", &observed, &[RecordIntents::new(&cfg.records[0], vec![a, b])]);
            for batch in batches_within(plan.changes.clone(), max_records, MAX_BATCH_CHARS) {
                observed.apply(&batch);
                let now = count(&observed);
                prop_assert!(before == 0 || now > 0,
                    "a batch emptied the record: {batch:?} of {:?}", plan.changes);
                // No record is left without its claim.
                let claims = observed.claims();
                for r in observed.records.values().filter(|r| r.set_identifier.is_some()) {
                    let set = r.set_identifier.clone().unwrap_or_default();
                    let claimed_now = claims.iter().any(|c| c.set_identifier == set);
                    let claimed_before = claimed[all.iter().position(|(id, ..)| *id == set).unwrap()];
                    prop_assert!(claimed_now || !claimed_before,
                        "{set} lost its claim while its record stays: {:?}", plan.changes);
                }
            }
        }
    }
}

#[test]
fn a_lost_marker_is_written_again_when_the_zone_holds_what_the_config_describes() {
    let cfg = config("");
    let exact = vec![
        rec("use1", "us-east-1", "192.0.2.1"),
        rec("euw1", "eu-west-1", "192.0.2.2"),
    ];
    // Unknown verdicts (Leave), the marker deleted by hand: claimed again
    // at once (a CREATE, a compare-and-swap), nothing else moves.
    let changes = plan(&cfg, exact.clone(), vec![Leave, Leave]);
    assert_eq!(
        summary(&changes),
        vec![(
            Action::Create,
            format!("marker{:?}", [CLAIM_EUW1, CLAIM_USE1])
        )]
    );
    // And a withdrawal is carried out, not left to a conflict.
    let changes = plan(&cfg, exact, vec![Publish, Withdraw]);
    assert_eq!(
        summary(&changes),
        vec![
            (
                Action::Create,
                format!("marker{:?}", [CLAIM_EUW1, CLAIM_USE1])
            ),
            (Action::Delete, "euw1".into()),
        ]
    );
    // One record that is not what the config says: nothing is taken over.
    let other = vec![
        rec("use1", "us-east-1", "192.0.2.1"),
        rec("euw1", "eu-west-1", "203.0.113.7"),
    ];
    assert!(plan(&cfg, other, vec![Publish, Withdraw]).is_empty());
}

#[test]
fn retiring_a_name_deletes_this_owners_records_and_claims_only() {
    use crate::decide::ownership::retirement;
    let theirs = "\"route53-failover owner=them type=A set=t1\"";
    let observed = Observed::new(vec![
        marker(&[CLAIM_EUW1, CLAIM_USE1, theirs]),
        rec("use1", "us-east-1", "192.0.2.1"),
        rec("euw1", "eu-west-1", "192.0.2.2"),
        rec("t1", "sa-east-1", "192.0.2.9"),
    ]);
    let changes = retirement("me", &observed, "api.example.test", None);
    assert_eq!(
        summary(&changes),
        vec![
            (Action::Delete, "euw1".into()),
            (Action::Delete, "use1".into()),
            (Action::Upsert, format!("marker{:?}", [theirs])),
        ]
    );
    // Nothing of this owner's: nothing to do.
    assert!(retirement("nobody", &observed, "api.example.test", None).is_empty());
    assert!(retirement("me", &observed, "api.example.test", Some(&RecordType::Aaaa)).is_empty());
    // The last claims go with the marker.
    let alone = Observed::new(vec![
        marker(&[CLAIM_USE1]),
        rec("use1", "us-east-1", "192.0.2.1"),
    ]);
    let changes = retirement("me", &alone, "api.example.test", Some(&RecordType::A));
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.action == Action::Delete));
}
