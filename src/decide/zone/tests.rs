use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::config::{parse, Config};
use crate::decide::ownership::Observed;
use crate::decide::policy::{Drain, Intent, Why};
use crate::provider::{Action, HealthCheckConfig, RecordSet};

const OWNER: &str = "me";
const ZONE_ID: &str = "Z1";

/// Two members with Route53 health checks, a third without.
fn config() -> Config {
    let text = r#"
owner: me
provider: {kind: memory, zones: [example.test]}
defaults:
  probe: {url: "http://api.example.test/health"}
  health_check: {enabled: true}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {region: us-east-1, set_identifier: use1, target: {values: [192.0.2.1]}}
      - {region: eu-west-1, set_identifier: euw1, target: {values: [192.0.2.2]}}
      - {region: ap-southeast-2, set_identifier: apse2, target: {values: [192.0.2.3]}, health_check: {enabled: false}}
"#;
    parse(text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn view<'c>(cfg: &'c Config, verdicts: &[Verdict]) -> RecordView<'c> {
    RecordView {
        record: &cfg.records[0],
        members: verdicts.iter().map(|&v| MemberView::new(v)).collect(),
        frozen: false,
    }
}

/// The records the daemon would hold had it published every member
/// (claims included), with `checks[i]` attached to member i.
fn published(cfg: &Config, checks: &[Option<&str>]) -> Observed {
    let all = [Verdict::Healthy; 3];
    let empty = Observed::new(vec![]);
    let d = decide(&ZoneInputs {
        owner: OWNER,
        zone_id: ZONE_ID,
        observed: &empty,
        checks: &[],
        records: vec![view(cfg, &all)],
        lever: None,
    });
    let mut observed = Observed::new(vec![]);
    observed.apply(&d.changes);
    for (member, check) in cfg.records[0].members.iter().zip(checks) {
        let key = crate::decide::ownership::member_key(&cfg.records[0], member);
        let r = observed.records.get_mut(&key).expect("published");
        r.health_check_id = check.map(str::to_string);
    }
    observed
}

fn owned_check(
    cfg: &Config,
    mi: usize,
    id: &str,
    tweak: impl Fn(&mut HealthCheckConfig),
) -> HealthCheck {
    let record = &cfg.records[0];
    let member = &record.members[mi];
    let mut config = hc::desired(member, member.health_check.as_ref().unwrap(), None).unwrap();
    tweak(&mut config);
    let prefix = hc::member_prefix(&hc::zone_prefix(OWNER, ZONE_ID), record, member);
    HealthCheck {
        id: id.into(),
        caller_reference: hc::caller_reference(&prefix, &config),
        version: 1,
        config,
    }
}

fn actions(changes: &[Change]) -> Vec<(Action, String)> {
    changes
        .iter()
        .filter(|c| c.record.set_identifier.is_some())
        .map(|c| (c.action, c.record.set_identifier.clone().unwrap()))
        .collect()
}

#[test]
fn one_value_holds_decisions_check_steps_and_changes() {
    use Verdict::{Healthy as H, Unhealthy as X};
    let cfg = config();
    // Published, us-east-1 with its matching check; eu-west-1's check
    // exists with another failure threshold (an update); none made for
    // ap-southeast-2, whose checks are off.
    let checks = vec![
        owned_check(&cfg, 0, "hc-use1", |_| {}),
        owned_check(&cfg, 1, "hc-euw1", |c| c.failure_threshold = 9),
    ];
    let observed = published(&cfg, &[Some("hc-use1"), Some("hc-euw1"), None]);
    let d = decide(&ZoneInputs {
        owner: OWNER,
        zone_id: ZONE_ID,
        observed: &observed,
        checks: &checks,
        records: vec![view(&cfg, &[H, X, H])],
        lever: None,
    });
    let whys: Vec<(Intent, Why, bool)> = d.members[0]
        .iter()
        .map(|m| (m.decision.intent, m.decision.why, m.conflict))
        .collect();
    assert_eq!(
        whys,
        vec![
            (Intent::Publish, Why::Healthy, false),
            (Intent::Withdraw, Why::Unhealthy, false),
            (Intent::Publish, Why::Healthy, false),
        ]
    );
    assert_eq!(
        actions(&d.changes),
        vec![(Action::Delete, "euw1".to_string())],
        "only the withdrawal: the check update waits for its call"
    );
    assert_eq!(d.calls.len(), 1);
    assert!(matches!(&d.calls[0].step, Step::Update { id, .. } if id == "hc-euw1"));
    assert_eq!((d.calls[0].record, d.calls[0].member), (0, 1));
    let carried: Vec<Option<&str>> = d.members[0].iter().map(|m| m.check.as_deref()).collect();
    assert_eq!(carried, vec![Some("hc-use1"), Some("hc-euw1"), None]);
    assert_eq!(
        d.unused_checks(&checks).len(),
        0,
        "a check waiting for its call is kept"
    );
}

#[test]
fn a_check_made_is_attached_by_the_replan_and_the_one_it_replaces_goes() {
    let cfg = config();
    // us-east-1's check was made with another request interval: it cannot
    // be updated, so a new one is created.
    let old = owned_check(&cfg, 0, "hc-old", |c| c.request_interval = 10);
    let mut checks = vec![old];
    let mut observed = published(&cfg, &[Some("hc-old"), None, None]);
    let healthy = [Verdict::Healthy; 3];
    let d = decide(&ZoneInputs {
        owner: OWNER,
        zone_id: ZONE_ID,
        observed: &observed,
        checks: &checks,
        records: vec![view(&cfg, &healthy)],
        lever: None,
    });
    assert_eq!(d.calls.len(), 2, "a create for each member with checks on");
    assert!(matches!(d.calls[0].step, Step::Create { .. }));
    assert!(d.changes.is_empty(), "nothing to change before the calls");
    observed.apply(&d.changes);

    // Only the first call succeeds.
    let made = owned_check(&cfg, 0, "hc-new", |_| {});
    checks.push(made);
    let call = d.calls[0].clone();
    let mut applied = d.records_applied();
    applied.check_made(&call, "hc-new".into(), &checks);
    let d = applied.replan(OWNER, &observed);
    assert_eq!(d.changes.len(), 1);
    assert_eq!(d.changes[0].action, Action::Upsert);
    assert_eq!(
        d.changes[0].record.health_check_id.as_deref(),
        Some("hc-new")
    );
    assert_eq!(d.members[0][0].check.as_deref(), Some("hc-new"));
    assert_eq!(d.members[0][1].check, None, "its call did not run");
    let unused: Vec<&str> = d
        .unused_checks(&checks)
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(unused, vec!["hc-old"]);
}

#[test]
fn someone_elses_record_is_a_conflict_and_its_check_is_left_alone() {
    let cfg = config();
    let theirs = RecordSet {
        health_check_id: Some("hc-theirs".into()),
        ..RecordSet::latency_a("api.example.test", "use1", "us-east-1", "198.51.100.1")
    };
    let observed = Observed::new(vec![theirs]);
    let d = decide(&ZoneInputs {
        owner: OWNER,
        zone_id: ZONE_ID,
        observed: &observed,
        checks: &[],
        records: vec![view(&cfg, &[Verdict::Unhealthy; 3])],
        lever: None,
    });
    let m = &d.members[0][0];
    assert!(m.conflict);
    assert_eq!(m.decision.why, Why::Conflict);
    assert_eq!(m.check.as_deref(), Some("hc-theirs"));
    assert!(
        d.calls.iter().all(|c| c.member != 0),
        "no call for a conflict"
    );
    assert!(
        d.changes
            .iter()
            .all(|c| c.record.set_identifier.as_deref() != Some("use1")),
        "their record is not touched"
    );
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::Unknown),
        Just(Verdict::Healthy),
        Just(Verdict::Unhealthy)
    ]
}

proptest! {
    /// Whatever the verdicts, and whichever failures wait for
    /// corroboration, applying a zone's changes step after step never
    /// leaves a record with nothing published once something was, and
    /// never withdraws a published member whose failure is not
    /// corroborated.
    #[test]
    fn a_zone_never_empties_a_record_nor_pulls_an_uncorroborated_member(
        steps in proptest::collection::vec(
            proptest::collection::vec((verdict(), any::<bool>()), 3), 1..30),
    ) {
        let cfg = config();
        let record = &cfg.records[0];
        let mut observed = Observed::new(vec![]);
        let mut was_published = false;
        for step in steps {
            let verdicts: Vec<Verdict> = step.iter().map(|(v, _)| *v).collect();
            let mut v = view(&cfg, &verdicts);
            for (m, (_, waits)) in v.members.iter_mut().zip(&step) {
                m.uncorroborated = *waits;
            }
            let before: Vec<bool> = record
                .members
                .iter()
                .map(|m| observed.member_record(record, m).is_some())
                .collect();
            let d = decide(&ZoneInputs {
                owner: OWNER,
                zone_id: ZONE_ID,
                observed: &observed,
                checks: &[],
                records: vec![v],
                lever: None,
            });
            observed.apply(&d.changes);
            let now: Vec<bool> = record
                .members
                .iter()
                .map(|m| observed.member_record(record, m).is_some())
                .collect();
            if was_published {
                prop_assert!(now.contains(&true), "emptied by {step:?}");
            }
            for (i, (_, waits)) in step.iter().enumerate() {
                if *waits && before[i] {
                    prop_assert!(now[i], "member {i} pulled on an uncorroborated failure: {step:?}");
                }
            }
            was_published |= now.contains(&true);
        }
    }
}

#[test]
fn an_uncorroborated_failure_waits_unless_a_safety_rule_already_holds_it() {
    use Verdict::{Healthy as H, Unhealthy as X};
    let cfg = config();
    let observed = published(&cfg, &[None, None, None]);
    let decide_with = |verdicts: &[Verdict], waits: &[bool], drained: Option<usize>| {
        let mut v = view(&cfg, verdicts);
        for (m, w) in v.members.iter_mut().zip(waits) {
            m.uncorroborated = *w;
        }
        if let Some(i) = drained {
            v.members[i].drain = Drain::Yes;
        }
        let d = decide(&ZoneInputs {
            owner: OWNER,
            zone_id: ZONE_ID,
            observed: &observed,
            checks: &[],
            records: vec![v],
            lever: None,
        });
        let whys: Vec<(Why, bool)> = d.members[0]
            .iter()
            .map(|m| (m.decision.why, m.decision.published))
            .collect();
        (whys, actions(&d.changes))
    };
    // eu-west-1 fails and something else passed since: withdrawn.
    let (whys, changes) = decide_with(&[H, X, H], &[false, false, false], None);
    assert_eq!(whys[1], (Why::Unhealthy, false));
    assert_eq!(changes, vec![(Action::Delete, "euw1".to_string())]);
    // Nothing passed since it began: it waits, published, and says why.
    let (whys, changes) = decide_with(&[H, X, H], &[false, true, false], None);
    assert_eq!(whys[1], (Why::Correlated, true));
    assert!(changes.is_empty(), "{changes:?}");
    // Everything fails at the same instant: the first member to reach
    // `fall` finds the others still healthy by verdict, but none has
    // passed a probe since: nothing is withdrawn.
    let (whys, changes) = decide_with(&[X, H, H], &[true, false, false], None);
    assert_eq!(whys[0], (Why::Correlated, true));
    assert!(changes.is_empty());
    // Then all are unhealthy: the safety rules keep them, by name.
    let (whys, _) = decide_with(&[X, X, X], &[true, true, true], None);
    assert!(
        whys.iter().all(|w| *w == (Why::LastMember, true)),
        "{whys:?}"
    );
    // The last member is kept by last_member, named so, corroborated or not.
    let (whys, _) = decide_with(&[X, X, X], &[false, false, true], None);
    assert_eq!(whys[2], (Why::LastMember, true), "{whys:?}");
    // On-call's drain is on-call's word: it goes whatever the evidence.
    let (whys, changes) = decide_with(&[H, X, H], &[false, true, false], Some(1));
    assert_eq!(whys[1], (Why::Drained, false));
    assert_eq!(changes, vec![(Action::Delete, "euw1".to_string())]);
}

#[test]
fn a_freeze_holds_the_changes_and_check_calls_back_and_shows_them() {
    use Verdict::{Healthy as H, Unhealthy as X};
    let cfg = config();
    // eu-west-1's check needs an update, and eu-west-1 fails: a thawed
    // zone would update the check and withdraw the record.
    let checks = vec![
        owned_check(&cfg, 0, "hc-use1", |_| {}),
        owned_check(&cfg, 1, "hc-euw1", |c| c.failure_threshold = 9),
        // An old check of us-east-1 nothing uses any more.
        owned_check(&cfg, 0, "hc-stale", |c| c.request_interval = 10),
    ];
    let observed = published(&cfg, &[Some("hc-use1"), Some("hc-euw1"), None]);
    let inputs = |frozen: bool, drained: bool| {
        let mut v = view(&cfg, &[H, X, H]);
        v.frozen = frozen;
        if drained {
            v.members[2].drain = Drain::Yes;
        }
        ZoneInputs {
            owner: OWNER,
            zone_id: ZONE_ID,
            observed: &observed,
            checks: &checks,
            records: vec![v],
            lever: None,
        }
    };
    let thawed = decide(&inputs(false, true));
    assert!(
        !thawed.changes.is_empty() && !thawed.calls.is_empty(),
        "{:?} {:?}",
        thawed.changes,
        thawed.calls
    );
    assert!(thawed.held.is_empty() && thawed.held_calls.is_empty());
    assert_eq!(thawed.unused_checks(&checks).len(), 1);

    let frozen = decide(&inputs(true, true));
    assert!(frozen.changes.is_empty(), "{:?}", frozen.changes);
    assert!(frozen.calls.is_empty());
    assert_eq!(
        frozen.held, thawed.changes,
        "the held plan is what would be done"
    );
    assert_eq!(frozen.held_calls, thawed.calls);
    assert!(
        frozen.unused_checks(&checks).is_empty(),
        "no check goes while frozen"
    );
    // The decisions are made all the same, so status says what would happen.
    let whys: Vec<Why> = frozen.members[0].iter().map(|m| m.decision.why).collect();
    assert_eq!(whys, [Why::Healthy, Why::Unhealthy, Why::Drained]);
    assert_eq!(
        actions(&frozen.held),
        [
            (Action::Delete, "euw1".into()),
            (Action::Delete, "apse2".into())
        ]
    );
}

/// A member with a switch and an endpoint check carries a CALCULATED
/// check over both: the children are made first (not attached), the
/// calculated check once both exist, and the record moves to it from the
/// endpoint check it carried, which goes once it has moved.
#[test]
fn a_member_with_a_switch_carries_a_calculated_check_over_both() {
    let arn = "arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/use1";
    let text = r#"
owner: me
provider: {kind: memory, zones: [example.test]}
defaults:
  probe: {url: "http://api.example.test/health"}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {region: us-east-1, set_identifier: use1, target: {values: [192.0.2.1]}, routing_control: "ARN"}
      - {region: eu-west-1, set_identifier: euw1, target: {values: [192.0.2.2]}}
routing_control:
  cluster_endpoints: [{url: "https://c.example.aws", region: us-west-2}]
"#
    .replace("ARN", arn);
    let cfg = parse(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let record = &cfg.records[0];
    let member = &record.members[0];
    let zone_prefix = hc::zone_prefix(OWNER, ZONE_ID);
    // It carried its endpoint check before the switch was configured.
    let old = owned_check(&cfg, 0, "hc-endpoint-old", |_| {});
    let mut observed = published(&cfg, &[Some("hc-endpoint-old"), None]);
    let decide_with = |checks: &[HealthCheck], observed: &Observed| {
        let mut v = view(&cfg, &[Verdict::Healthy; 2]);
        v.members[0].switch = Some(crate::decide::lever::Switch::On);
        let d = decide(&ZoneInputs {
            owner: OWNER,
            zone_id: ZONE_ID,
            observed,
            checks,
            records: vec![v],
            lever: Some(crate::config::LeverMode::Switches),
        });
        (d.calls.clone(), d)
    };
    let (calls, d) = decide_with(std::slice::from_ref(&old), &observed);
    let children: Vec<&CheckCall> = calls.iter().filter(|c| c.member == 0).collect();
    assert_eq!(children.len(), 2, "{calls:?}");
    assert!(
        children.iter().all(|c| !c.attach),
        "children are not attached"
    );
    assert_eq!(
        d.members[0][0].check.as_deref(),
        Some("hc-endpoint-old"),
        "kept meanwhile"
    );
    assert!(d.changes.is_empty());
    let mut applied = d.records_applied();
    let mut checks = vec![old.clone()];
    for (n, call) in children.iter().enumerate() {
        let Step::Create {
            caller_reference,
            config,
        } = &call.step
        else {
            panic!("{call:?}")
        };
        assert!(call.prefix.starts_with(&zone_prefix));
        assert_ne!(call.prefix, hc::member_prefix(&zone_prefix, record, member));
        let id = format!("hc-child-{n}");
        checks.push(HealthCheck {
            id: id.clone(),
            caller_reference: caller_reference.clone(),
            version: 1,
            config: config.clone(),
        });
        applied.check_made(call, id, &checks);
    }
    let d = applied.replan(OWNER, &observed);
    assert!(d.changes.is_empty(), "no record moves to a child");
    assert!(d.unused_checks(&checks).is_empty(), "nothing goes yet");

    // Next pass: the calculated check over both children.
    let (calls, d) = decide_with(&checks, &observed);
    let main: Vec<&CheckCall> = calls.iter().filter(|c| c.member == 0).collect();
    assert_eq!(main.len(), 1);
    assert!(main[0].attach);
    let Step::Create {
        caller_reference,
        config,
    } = &main[0].step
    else {
        panic!("{main:?}")
    };
    assert_eq!(config.kind, crate::provider::HealthCheckType::Calculated);
    assert_eq!(config.child_health_checks, ["hc-child-0", "hc-child-1"]);
    assert_eq!(config.health_threshold, 2);
    checks.push(HealthCheck {
        id: "hc-calc".into(),
        caller_reference: caller_reference.clone(),
        version: 1,
        config: config.clone(),
    });
    let call = main[0].clone();
    let mut applied = d.records_applied();
    applied.check_made(&call, "hc-calc".into(), &checks);
    let d = applied.replan(OWNER, &observed);
    assert_eq!(
        d.changes[0].record.health_check_id.as_deref(),
        Some("hc-calc")
    );
    observed.apply(&d.changes);
    let (calls, d) = decide_with(&checks, &observed);
    assert!(calls.iter().all(|c| c.member != 0), "settled: {calls:?}");
    assert_eq!(d.switches.len(), 1, "unfrozen: its switch is set");
    assert!(d.held_switches.is_empty());
    // Frozen: its switch is held, not set.
    let mut v = view(&cfg, &[Verdict::Healthy; 2]);
    v.members[0].switch = Some(crate::decide::lever::Switch::On);
    v.frozen = true;
    let frozen = decide(&ZoneInputs {
        owner: OWNER,
        zone_id: ZONE_ID,
        observed: &observed,
        checks: &checks,
        records: vec![v],
        lever: Some(crate::config::LeverMode::Switches),
    });
    assert!(frozen.switches.is_empty());
    assert_eq!(frozen.held_switches, [arn]);
    let unused: Vec<&str> = d
        .unused_checks(&checks)
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(unused, ["hc-endpoint-old"]);
}
