//! Route53 health checks end to end, through the built binary, against the
//! strict memory store: the rules moto does not honour (docs/design.md, "Emulators": versions
//! never compared, a check in use can be deleted, CallerReference not
//! idempotent) are enforced here, so these tests prove the daemon follows
//! them. The same lifecycle against moto is in `e2e_route53.rs`.

mod common;

use std::time::Duration;

use common::*;
use route53_failover::demo::Mode;
use route53_failover::provider::memory::StoredHealthCheck;
use route53_failover::provider::{
    CheckerReport, HealthCheckConfig, HealthCheckType, Provider, RecordSet,
};

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(20);

fn with_checks(store: &Store, eps: &Endpoints, resync: &str, check: &str) -> String {
    config(store, eps, 1, resync).replace(
        "defaults:\n",
        &format!("health_check_status_interval: 10s\ndefaults:\n  health_check: {check}\n"),
    )
}

/// The check a member's record carries, as the store holds it.
fn check_of(store: &Store, region: &str) -> Option<StoredHealthCheck> {
    let record: RecordSet = store
        .members(ZONE, NAME)
        .into_iter()
        .find(|r| r.region.as_deref() == Some(region))?;
    let id = record.health_check_id?;
    store
        .store
        .health_checks()
        .into_iter()
        .find(|c| c.check.id == id)
}

fn foreign_config() -> HealthCheckConfig {
    HealthCheckConfig {
        kind: HealthCheckType::Http,
        ip_address: Some("192.0.2.200".into()),
        fqdn: None,
        port: 80,
        resource_path: "/".into(),
        search_string: None,
        request_interval: 30,
        failure_threshold: 3,
        measure_latency: false,
        enable_sni: false,
        regions: Vec::new(),
        routing_control_arn: None,
        child_health_checks: Vec::new(),
        health_threshold: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_follow_the_config_under_route53s_strict_rules() {
    let store = start_store(&[ZONE]).await;
    let foreign = store
        .store
        .create_health_check("made-by-hand", &foreign_config())
        .await
        .unwrap();
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let text = with_checks(&store, &eps, "2s", "{failure_threshold: 2}");
    let daemon = start_daemon(&text).await;
    wait_until("both records carry a check", LIMIT, || async {
        check_of(&store, "us-east-1").is_some() && check_of(&store, "eu-west-1").is_some()
    })
    .await;
    let use1 = check_of(&store, "us-east-1").unwrap();
    let port = eps.list[0].addr.port();
    assert_eq!(
        use1.check.config,
        HealthCheckConfig {
            kind: HealthCheckType::HttpStrMatch,
            ip_address: Some("127.0.0.1".into()),
            fqdn: Some("api.example.test".into()),
            port,
            resource_path: "/health".into(),
            search_string: Some("ok".into()),
            request_interval: 30,
            failure_threshold: 2,
            measure_latency: false,
            enable_sni: false,
            regions: Vec::new(),
            routing_control_arn: None,
            child_health_checks: Vec::new(),
            health_threshold: 0,
        },
        "where the probe goes: connect_to's address, the URL's host as Host header"
    );
    assert_eq!(use1.tags["route53-failover:owner"], "e2e");
    assert_eq!(use1.tags["route53-failover:record"], "api.example.test A");
    assert_eq!(
        use1.tags["route53-failover:set-identifier"],
        set_id("us-east-1")
    );
    assert_eq!(store.store.health_checks().len(), 3);

    // Someone edits our check: the resync (2 s) puts it back, naming the
    // version the store now holds.
    let mut edited = use1.check.config.clone();
    edited.failure_threshold = 9;
    store
        .store
        .update_health_check(&use1.check.id, use1.check.version, &edited)
        .await
        .unwrap();
    wait_until("the drift is repaired", LIMIT, || async {
        let c = check_of(&store, "us-east-1").unwrap();
        c.check.config.failure_threshold == 2 && c.check.version == use1.check.version + 2
    })
    .await;

    // Route53's checkers disagree with the daemon: status and metrics say so.
    store
        .store
        .set_report(
            &use1.check.id,
            CheckerReport {
                healthy: 0,
                total: 3,
                failure: Some("Failure: HTTP Status Code 403".into()),
            },
        )
        .unwrap();
    wait_until("the disagreement shows", LIMIT, || async {
        let hc = daemon.member("us-east-1").await.health_check.unwrap();
        hc.disagrees && hc.route53.as_deref() == Some("unhealthy")
    })
    .await;
    let m = daemon.member("us-east-1").await;
    let hc = m.health_check.unwrap();
    assert_eq!(m.verdict, "healthy");
    assert_eq!(hc.id.as_deref(), Some(use1.check.id.as_str()));
    assert_eq!((hc.checkers_healthy, hc.checkers_total), (Some(0), Some(3)));
    assert_eq!(hc.failure.as_deref(), Some("Failure: HTTP Status Code 403"));
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_route53_health_check_healthy",
            &["region=\"us-east-1\""]
        ),
        Some(0.0)
    );
    let html = daemon.get("/").await.text().await.unwrap();
    assert!(html.contains("unhealthy 0/3 (disagrees)"), "{html}");
    daemon.stop().await;

    // An immutable setting changes: new checks, the records move, and the
    // old checks go only once nothing refers to them (the store refuses a
    // check in use, so an error would show).
    let text = text.replace(
        "{failure_threshold: 2}",
        "{failure_threshold: 2, request_interval: 10}",
    );
    let daemon = start_daemon(&text).await;
    wait_until("the records move to 10 s checks", LIMIT, || async {
        ["us-east-1", "eu-west-1"]
            .iter()
            .all(|r| check_of(&store, r).is_some_and(|c| c.check.config.request_interval == 10))
            && store.store.health_checks().len() == 3
    })
    .await;
    assert!(store
        .store
        .health_checks()
        .iter()
        .all(|c| c.check.id != use1.check.id));
    let status = daemon.status().await;
    assert!(
        status.zones[0].last_error.is_none(),
        "{:?}",
        status.zones[0]
    );
    assert!(
        !daemon.logs().contains("could not be settled"),
        "{}",
        daemon.logs()
    );
    let moved = check_of(&store, "us-east-1").unwrap();
    daemon.stop().await;

    // Checks disabled for one member: its record drops the check, which is
    // deleted; the other keeps its own.
    let text = text.replace(
        "        probe: {connect_to",
        "        health_check: {enabled: false}\n        probe: {connect_to",
    );
    let text = text.replacen("        health_check: {enabled: false}\n", "", 1);
    let daemon = start_daemon(&text).await;
    wait_until(
        "eu-west-1 carries no check and its check is gone",
        LIMIT,
        || async {
            let euw1 = store
                .members(ZONE, NAME)
                .into_iter()
                .find(|r| r.region.as_deref() == Some("eu-west-1"));
            euw1.is_some_and(|r| r.health_check_id.is_none())
                && store.store.health_checks().len() == 2
        },
    )
    .await;
    assert_eq!(
        check_of(&store, "us-east-1").unwrap().check.id,
        moved.check.id
    );
    assert!(daemon.member("eu-west-1").await.health_check.is_none());
    daemon.stop().await;

    let all = store.store.health_checks();
    let theirs = all.iter().find(|c| c.check.id == foreign.id).unwrap();
    assert_eq!(
        theirs.check, foreign,
        "a check of someone else's is never touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_that_cannot_be_created_does_not_hold_back_a_withdrawal() {
    let store = start_store(&[ZONE]).await;
    // The account's quota leaves room for one check only.
    store.store.set_health_check_limit(1);
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let daemon = start_daemon(&with_checks(&store, &eps, "5m", "{}")).await;
    wait_until("all three are published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    wait_until("the quota error shows", LIMIT, || async {
        let s = daemon.status().await;
        s.zones[0]
            .check_error
            .as_deref()
            .is_some_and(|e| e.contains("TooManyHealthChecks"))
    })
    .await;
    // The records' reconcile stands: the zone has no error, the daemon is
    // ready. (Before: the quota failed the reconcile, dropped the zone's
    // view and kept /readyz red.)
    let s = daemon.status().await;
    assert!(s.zones[0].last_error.is_none(), "{:?}", s.zones[0]);
    assert!(s.ready);
    assert_eq!(daemon.get("/readyz").await.status(), 200);
    let with_check: Vec<_> = store
        .members(ZONE, NAME)
        .into_iter()
        .filter(|r| r.health_check_id.is_some())
        .collect();
    assert_eq!(with_check.len(), 1, "{with_check:?}");
    let status = daemon.status().await;
    let errors = status.records[0]
        .members
        .iter()
        .filter(|m| {
            m.health_check
                .as_ref()
                .and_then(|h| h.error.as_deref())
                .is_some_and(|e| e.contains("TooManyHealthChecks"))
        })
        .count();
    assert_eq!(errors, 2);

    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn all the same", LIMIT, || async {
        !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    assert_eq!(store.member_ids(ZONE, NAME).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_for_many_members_are_made_in_rounds_that_never_repeat_a_create() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let text = with_checks(&store, &eps, "5m", "{enabled: false}");
    let (head, record) = text.split_once("records:\n").unwrap();
    let mut text = format!("{head}records:\n");
    const RECORDS: usize = 5;
    for i in 0..RECORDS {
        text.push_str(&record.replace(
            "name: api.example.test",
            &format!("name: r{i}.example.test"),
        ));
    }
    let members = || {
        let records = store.store.records(ZONE).unwrap();
        records
            .into_iter()
            .filter(|r| r.set_identifier.is_some())
            .collect::<Vec<_>>()
    };
    let daemon = start_daemon(&text).await;
    wait_until("every member is published", LIMIT, || async {
        members().len() == RECORDS * 3
    })
    .await;
    daemon.stop().await;
    assert!(members().iter().all(|r| r.health_check_id.is_none()));

    // Checks turned on for 15 published members: one reconcile makes 10,
    // the next the rest, each round attaching what it made.
    let before = store.store.change_log().len();
    let daemon = start_daemon(&text.replace("{enabled: false}", "{}")).await;
    wait_until("every record carries its check", LIMIT, || async {
        members().iter().all(|r| r.health_check_id.is_some())
    })
    .await;
    let rounds = &store.store.change_log()[before..];
    let attached: Vec<usize> = rounds.iter().map(|c| c.changes.len()).collect();
    assert_eq!(attached, vec![10, 5], "{rounds:?}");
    assert_eq!(
        store.store.health_checks().len(),
        RECORDS * 3,
        "one check each"
    );
    assert_eq!(
        store
            .store
            .calls(route53_failover::provider::Operation::CreateHealthCheck),
        (RECORDS * 3) as u64,
        "no create repeated"
    );
    assert_eq!(daemon.status().await.zones[0].last_error, None);
}
