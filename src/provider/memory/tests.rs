//! Each Route53 rule the store enforces, one test each.
use super::*;
use crate::provider::{Action, RecordType};

fn latency(name: &str, id: &str, region: &str, value: &str) -> RecordSet {
    RecordSet::latency_a(name, id, region, value)
}

fn change(action: Action, record: RecordSet) -> Change {
    Change { action, record }
}

fn store() -> (MemoryProvider, String) {
    let p = MemoryProvider::new(&["example.test"], Duration::from_millis(50));
    let id = p.zones()[0].id.clone();
    (p, id)
}

#[tokio::test]
async fn create_of_an_existing_record_is_rejected() {
    let (p, z) = store();
    let r = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    p.change(&z, &[change(Action::Create, r.clone())])
        .await
        .unwrap();
    let err = p
        .change(&z, &[change(Action::Create, r)])
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidChangeBatch(m) if m.contains("already exists")));
}

#[tokio::test]
async fn delete_must_match_current_values_exactly() {
    let (p, z) = store();
    let r = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    p.change(&z, &[change(Action::Create, r.clone())])
        .await
        .unwrap();
    let mut stale = r.clone();
    stale.ttl = Some(300);
    let err = p
        .change(&z, &[change(Action::Delete, stale)])
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidChangeBatch(m) if m.contains("do not match")));
    assert_eq!(p.records("example.test").unwrap(), vec![r.clone()]);
    p.change(&z, &[change(Action::Delete, r)]).await.unwrap();
    assert!(p.records("example.test").unwrap().is_empty());
}

#[tokio::test]
async fn delete_of_a_missing_record_is_rejected() {
    let (p, z) = store();
    let r = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    let err = p
        .change(&z, &[change(Action::Delete, r)])
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidChangeBatch(m) if m.contains("not found")));
}

#[tokio::test]
async fn a_batch_applies_all_or_nothing() {
    let (p, z) = store();
    let a = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    let b = latency("api.example.test", "euw1", "eu-west-1", "192.0.2.2");
    let missing = latency("api.example.test", "aps2", "ap-southeast-2", "192.0.2.3");
    let err = p
        .change(
            &z,
            &[
                change(Action::Create, a),
                change(Action::Upsert, b),
                change(Action::Delete, missing),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_change_batch");
    assert!(
        p.records(&z).unwrap().is_empty(),
        "nothing of a failed batch stays"
    );
}

#[tokio::test]
async fn upsert_creates_then_replaces() {
    let (p, z) = store();
    let a = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    p.change(&z, &[change(Action::Upsert, a.clone())])
        .await
        .unwrap();
    let mut a2 = a.clone();
    a2.values = vec!["192.0.2.9".into()];
    p.change(&z, &[change(Action::Upsert, a2.clone())])
        .await
        .unwrap();
    assert_eq!(p.records(&z).unwrap(), vec![a2]);
}

#[tokio::test]
async fn delete_and_create_in_one_batch_swap_a_value() {
    // The compare-and-swap the HA lease relies on.
    let (p, z) = store();
    let a = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    p.change(&z, &[change(Action::Create, a.clone())])
        .await
        .unwrap();
    let mut a2 = a.clone();
    a2.values = vec!["192.0.2.9".into()];
    p.change(
        &z,
        &[
            change(Action::Delete, a),
            change(Action::Create, a2.clone()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(p.records(&z).unwrap(), vec![a2]);
}

#[tokio::test]
async fn batches_over_route53_limits_are_rejected() {
    let (p, z) = store();
    let upserts: Vec<Change> = (0..501)
        .map(|i| {
            change(
                Action::Upsert,
                latency(
                    &format!("r{i}.example.test"),
                    "use1",
                    "us-east-1",
                    "192.0.2.1",
                ),
            )
        })
        .collect();
    // 501 UPSERTs count as 1,002 elements.
    let err = p.change(&z, &upserts).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidChangeBatch(m) if m.contains("1002")));
    let long = "x".repeat(250);
    let txt: Vec<Change> = (0..130)
        .map(|i| {
            let mut r = latency(&format!("t{i}.example.test"), "use1", "us-east-1", "");
            r.rtype = RecordType::Txt;
            r.values = vec![format!("\"{long}\"")];
            change(Action::Create, r)
        })
        .collect();
    let err = p.change(&z, &txt).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidChangeBatch(m) if m.contains("characters")));
    assert!(
        p.change(&z, &[]).await.is_err(),
        "an empty batch is rejected"
    );
    assert!(p.records(&z).unwrap().is_empty());
}

#[tokio::test]
async fn names_outside_the_zone_are_rejected() {
    let (p, z) = store();
    let r = latency("api.other.test", "use1", "us-east-1", "192.0.2.1");
    let err = p
        .change(&z, &[change(Action::Create, r)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_change_batch");
}

#[tokio::test]
async fn latency_and_plain_records_cannot_share_name_and_type() {
    let (p, z) = store();
    let a = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    p.change(&z, &[change(Action::Create, a)]).await.unwrap();
    let mut plain = latency("api.example.test", "x", "us-east-1", "192.0.2.2");
    plain.set_identifier = None;
    plain.region = None;
    let err = p
        .change(&z, &[change(Action::Create, plain)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_change_batch");
}

#[tokio::test]
async fn one_latency_record_per_region() {
    let (p, z) = store();
    let a = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    let b = latency("api.example.test", "use1-b", "us-east-1", "192.0.2.2");
    let err = p
        .change(&z, &[change(Action::Create, a), change(Action::Create, b)])
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidChangeBatch(m) if m.contains("us-east-1")));
}

#[tokio::test]
async fn a_cname_cannot_share_its_name() {
    let (p, z) = store();
    let a = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    let mut c = latency("api.example.test", "euw1", "eu-west-1", "x.example.net");
    c.rtype = RecordType::Cname;
    let err = p
        .change(&z, &[change(Action::Create, a), change(Action::Create, c)])
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidChangeBatch(m) if m.contains("CNAME")));
}

#[tokio::test]
async fn a_cname_is_refused_at_the_apex() {
    let (p, z) = store();
    let mut c = latency("example.test", "use1", "us-east-1", "x.example.net");
    c.rtype = RecordType::Cname;
    let err = p
        .change(&z, &[change(Action::Upsert, c)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::InvalidChangeBatch(m) if m.contains("not permitted at apex")),
        "{err}"
    );
}

#[tokio::test]
async fn alias_records_take_no_ttl_and_plain_records_need_one() {
    let (p, z) = store();
    let mut alias = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    alias.values.clear();
    alias.alias = Some(super::super::AliasTarget {
        dns_name: "d-1.execute-api.us-east-1.amazonaws.com".into(),
        hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
        evaluate_target_health: false,
    });
    assert!(p
        .change(&z, &[change(Action::Create, alias.clone())])
        .await
        .is_err());
    alias.ttl = None;
    p.change(&z, &[change(Action::Create, alias)])
        .await
        .unwrap();
    let mut no_ttl = latency("www.example.test", "use1", "us-east-1", "192.0.2.1");
    no_ttl.ttl = None;
    assert!(p
        .change(&z, &[change(Action::Create, no_ttl)])
        .await
        .is_err());
}

#[tokio::test]
async fn changes_are_pending_then_insync() {
    let (p, z) = store();
    let a = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    let info = p.change(&z, &[change(Action::Create, a)]).await.unwrap();
    assert_eq!(info.status, ChangeStatus::Pending);
    assert_eq!(
        p.change_status(&info.id).await.unwrap(),
        ChangeStatus::Pending
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        p.change_status(&info.id).await.unwrap(),
        ChangeStatus::Insync
    );
}

#[tokio::test]
async fn zones_are_found_by_name_or_id() {
    let (p, z) = store();
    assert_eq!(p.find_zone("Example.Test.").await.unwrap().id, z);
    assert_eq!(p.find_zone(&z).await.unwrap().name, "example.test");
    let err = p.find_zone("missing.test").await.unwrap_err();
    assert_eq!(err.kind(), "no_such_hosted_zone");
}

// Health checks. moto does not honour these rules (docs/design.md, "Emulators": same
// CallerReference makes a new check, versions are never compared, a
// check in use can be deleted), so they are proven here only.

fn check_config(path: &str) -> HealthCheckConfig {
    HealthCheckConfig {
        kind: super::super::HealthCheckType::Https,
        ip_address: None,
        fqdn: Some("d-1.execute-api.us-east-1.amazonaws.com".into()),
        port: 443,
        resource_path: path.into(),
        search_string: None,
        request_interval: 30,
        failure_threshold: 3,
        measure_latency: false,
        enable_sni: true,
        regions: Vec::new(),
        routing_control_arn: None,
        child_health_checks: Vec::new(),
        health_threshold: 0,
    }
}

#[tokio::test]
async fn a_caller_reference_makes_one_check_and_is_never_reused() {
    let (p, _) = store();
    let a = p
        .create_health_check("ref-1", &check_config("/health"))
        .await
        .unwrap();
    let again = p
        .create_health_check("ref-1", &check_config("/health"))
        .await
        .unwrap();
    assert_eq!(a, again, "same reference and settings: the same check");
    assert_eq!(p.health_checks().len(), 1);
    let err = p
        .create_health_check("ref-1", &check_config("/other"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "health_check_already_exists");
    p.delete_health_check(&a.id).await.unwrap();
    let err = p
        .create_health_check("ref-1", &check_config("/health"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        "health_check_already_exists",
        "a deleted check's reference"
    );
}

#[tokio::test]
async fn updates_name_the_current_version_and_keep_immutables() {
    let (p, _) = store();
    let a = p
        .create_health_check("ref-1", &check_config("/health"))
        .await
        .unwrap();
    let b = p
        .update_health_check(&a.id, a.version, &check_config("/v2/health"))
        .await
        .unwrap();
    assert_eq!(b.version, a.version + 1);
    assert_eq!(b.config.resource_path, "/v2/health");
    let err = p
        .update_health_check(&a.id, a.version, &check_config("/v3"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "health_check_version_mismatch");
    let mut fast = check_config("/v2/health");
    fast.request_interval = 10;
    let err = p
        .update_health_check(&a.id, b.version, &fast)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_input");
}

#[tokio::test]
async fn a_check_in_use_cannot_be_deleted_and_records_need_existing_checks() {
    let (p, z) = store();
    let hc = p
        .create_health_check("ref-1", &check_config("/health"))
        .await
        .unwrap();
    let mut r = latency("api.example.test", "use1", "us-east-1", "192.0.2.1");
    r.health_check_id = Some("no-such-check".into());
    let err = p
        .change(&z, &[change(Action::Create, r.clone())])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_change_batch");
    r.health_check_id = Some(hc.id.clone());
    p.change(&z, &[change(Action::Create, r.clone())])
        .await
        .unwrap();
    let err = p.delete_health_check(&hc.id).await.unwrap_err();
    assert_eq!(err.kind(), "health_check_in_use");
    p.change(&z, &[change(Action::Delete, r)]).await.unwrap();
    p.delete_health_check(&hc.id).await.unwrap();
    let err = p.delete_health_check(&hc.id).await.unwrap_err();
    assert_eq!(err.kind(), "no_such_health_check");
}

#[tokio::test]
async fn health_check_settings_are_validated_and_the_quota_holds() {
    let (p, _) = store();
    let mut c = check_config("/health");
    c.request_interval = 20;
    assert_eq!(
        p.create_health_check("a", &c).await.unwrap_err().kind(),
        "invalid_input"
    );
    let mut c = check_config("/health");
    c.regions = vec!["us-east-1".into(), "eu-west-1".into()];
    assert_eq!(
        p.create_health_check("b", &c).await.unwrap_err().kind(),
        "invalid_input"
    );
    let mut c = check_config("/health");
    c.kind = super::super::HealthCheckType::HttpsStrMatch;
    assert_eq!(
        p.create_health_check("c", &c).await.unwrap_err().kind(),
        "invalid_input"
    );
    p.set_health_check_limit(1);
    p.create_health_check("d", &check_config("/health"))
        .await
        .unwrap();
    let err = p
        .create_health_check("e", &check_config("/health"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TooManyHealthChecks"), "{err}");
}

#[tokio::test]
async fn the_answer_is_the_members_whose_checks_pass_or_every_member_when_none_does() {
    let (p, zone) = store();
    let mut checks = Vec::new();
    for (i, path) in ["/a", "/b"].into_iter().enumerate() {
        let c = p
            .create_health_check(&format!("ref-{i}"), &check_config(path))
            .await
            .unwrap();
        checks.push(c.id);
    }
    let with_check = |id: &str, region: &str, value: &str, check: Option<&String>| RecordSet {
        health_check_id: check.cloned(),
        ..latency("api.example.test", id, region, value)
    };
    let batch = [
        with_check("use1", "us-east-1", "192.0.2.1", Some(&checks[0])),
        with_check("euw1", "eu-west-1", "192.0.2.2", Some(&checks[1])),
        // No check: always a candidate.
        with_check("aps2", "ap-southeast-2", "192.0.2.3", None),
    ]
    .map(|r| change(Action::Create, r));
    p.change(&zone, &batch).await.unwrap();
    let answer = |p: &MemoryProvider| -> Vec<String> {
        let mut ids: Vec<String> = p
            .answer("example.test", "API.example.test.", &RecordType::A)
            .unwrap()
            .into_iter()
            .filter_map(|r| r.set_identifier)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(answer(&p), ["aps2", "euw1", "use1"], "new checks pass");
    let failing = CheckerReport {
        healthy: 2,
        total: 15,
        failure: Some("Failure: HTTP Status Code 503".into()),
    };
    p.set_report(&checks[1], failing.clone()).unwrap();
    assert_eq!(
        answer(&p),
        ["aps2", "use1"],
        "2 of 15 checkers is under 18%"
    );
    p.set_report(&checks[0], failing.clone()).unwrap();
    assert_eq!(answer(&p), ["aps2"]);

    // Without the unchecked member, nothing passes: Route53 fails open.
    p.change(
        &zone,
        &[change(
            Action::Delete,
            with_check("aps2", "ap-southeast-2", "192.0.2.3", None),
        )],
    )
    .await
    .unwrap();
    assert_eq!(answer(&p), ["euw1", "use1"], "fail-open: every member");
    // A name with no records has no answer, and a zone not held is an error.
    assert!(p
        .answer(&zone, "www.example.test", &RecordType::A)
        .unwrap()
        .is_empty());
    assert!(p
        .answer("other.test", "api.other.test", &RecordType::A)
        .is_err());
}

/// RECOVERY_CONTROL and CALCULATED checks as Route53 keeps them: a
/// calculated check names checks that exist, and its status is its
/// children's (a recovery control check's, its switch's). A child can be
/// deleted under it, as Route53 allows: the parent then fails, naming the
/// child gone, and the store keeps the deletion for tests to see.
#[tokio::test]
async fn calculated_and_recovery_control_checks() {
    use crate::decide::health_check::{calculated, recovery_control};
    let (p, _) = store();
    let arn = "arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/use1";
    let endpoint = p
        .create_health_check("ref-e", &check_config("/health"))
        .await
        .unwrap();
    let switch = p
        .create_health_check("ref-s", &recovery_control(arn))
        .await
        .unwrap();
    let bad = recovery_control("arn:aws:route53:::healthcheck/x");
    assert!(matches!(
        p.create_health_check("ref-bad", &bad).await,
        Err(ProviderError::InvalidInput(_))
    ));
    let missing = calculated([endpoint.id.clone(), "no-such".into()]);
    assert!(matches!(
        p.create_health_check("ref-m", &missing).await,
        Err(ProviderError::InvalidInput(m)) if m.contains("no-such")
    ));
    let calc = p
        .create_health_check(
            "ref-c",
            &calculated([endpoint.id.clone(), switch.id.clone()]),
        )
        .await
        .unwrap();
    assert!(p.orphaned_children().is_empty());
    // An unknown routing control is Off: the calculated check fails.
    assert!(!p.health_check_status(&calc.id).await.unwrap().is_healthy());
    p.switches().set(arn, true);
    assert!(p
        .health_check_status(&switch.id)
        .await
        .unwrap()
        .is_healthy());
    assert!(p.health_check_status(&calc.id).await.unwrap().is_healthy());
    p.set_report(
        &endpoint.id,
        CheckerReport {
            healthy: 0,
            total: 3,
            failure: Some("Failure: HTTP Status Code 503".into()),
        },
    )
    .unwrap();
    assert!(!p.health_check_status(&calc.id).await.unwrap().is_healthy());
    p.set_report(
        &endpoint.id,
        CheckerReport {
            healthy: 3,
            total: 3,
            failure: None,
        },
    )
    .unwrap();
    assert!(p.health_check_status(&calc.id).await.unwrap().is_healthy());
    // The child deleted under its parent: allowed, and the parent fails.
    p.delete_health_check(&endpoint.id).await.unwrap();
    assert_eq!(
        p.orphaned_children(),
        [(calc.id.clone(), endpoint.id.clone())]
    );
    let report = p.health_check_status(&calc.id).await.unwrap();
    assert!(!report.is_healthy());
    assert!(
        report
            .failure
            .as_deref()
            .is_some_and(|f| f.contains(&endpoint.id)),
        "{report:?}"
    );
    p.delete_health_check(&calc.id).await.unwrap();
}
