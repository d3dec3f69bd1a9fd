//! One suite, every provider: the same functions run against the embedded
//! `memory` store, against the same store through its loopback HTTP API
//! (`provider.endpoint_url`), and against the `route53` provider (the AWS
//! SDK) talking to moto's server. The strict rules moto does not honour
//! (docs/design.md, "Emulators": batches only partly atomic, stale DELETE accepted) are the
//! ones marked `strict`; they run against the memory providers only.

mod common;

use std::time::Duration;

use route53_failover::provider::memory::MemoryProvider;
use route53_failover::provider::remote::RemoteMemory;
use route53_failover::provider::route53::Route53Provider;
use route53_failover::provider::{
    Action, AliasTarget, Change, ChangeStatus, HealthCheckConfig, HealthCheckType, Provider,
    RecordSet, RecordType,
};

fn a(name: &str, id: &str, region: &str, value: &str) -> RecordSet {
    RecordSet::latency_a(name, id, region, value)
}

fn ch(action: Action, record: &RecordSet) -> Change {
    Change {
        action,
        record: record.clone(),
    }
}

/// The zone's records at these names (each function of the suite uses its
/// own names, so they share one zone).
async fn sorted(p: &dyn Provider, zone: &str, names: &[&str]) -> Vec<RecordSet> {
    let mut r = p.list_records(zone).await.unwrap();
    r.retain(|r| names.iter().any(|n| r.name.ends_with(n)));
    r.sort_by_key(|r| r.key());
    r
}

async fn finds_zones_by_name_or_id(p: &dyn Provider) {
    let z = p.find_zone("example.test").await.unwrap();
    assert_eq!(z.name, "example.test");
    assert_eq!(p.find_zone(&z.id).await.unwrap(), z);
    assert_eq!(
        p.find_zone("example.test.").await.unwrap(),
        z,
        "a trailing dot is the same zone"
    );
    assert_eq!(
        p.find_zone("nowhere.test").await.unwrap_err().kind(),
        "no_such_hosted_zone"
    );
}

async fn creates_lists_and_deletes_a_latency_set(p: &dyn Provider) {
    let z = p.find_zone("example.test").await.unwrap().id;
    let use1 = a("api.example.test", "use1", "us-east-1", "192.0.2.1");
    let euw1 = a("api.example.test", "euw1", "eu-west-1", "192.0.2.2");
    let info = p
        .change(&z, &[ch(Action::Create, &use1), ch(Action::Create, &euw1)])
        .await
        .unwrap();
    assert!(!info.id.is_empty());
    assert_eq!(
        sorted(p, &z, &["api.example.test"]).await,
        vec![euw1.clone(), use1.clone()]
    );
    // DELETE with the exact values removes only that member of the set.
    p.change(&z, &[ch(Action::Delete, &euw1)]).await.unwrap();
    assert_eq!(sorted(p, &z, &["api.example.test"]).await, vec![use1]);
}

async fn upsert_is_idempotent(p: &dyn Provider) {
    let z = p.find_zone("example.test").await.unwrap().id;
    let r = a("www.example.test", "w-use1", "us-east-1", "192.0.2.1");
    for _ in 0..2 {
        p.change(&z, &[ch(Action::Upsert, &r)]).await.unwrap();
    }
    assert_eq!(sorted(p, &z, &["www.example.test"]).await, vec![r]);
}

async fn alias_and_txt_records_round_trip(p: &dyn Provider) {
    let z = p.find_zone("example.test").await.unwrap().id;
    let mut alias = a("gw.example.test", "gw-use1", "us-east-1", "");
    alias.values.clear();
    alias.ttl = None;
    alias.alias = Some(AliasTarget {
        dns_name: "d-abc123.execute-api.us-east-1.amazonaws.com".into(),
        hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
        evaluate_target_health: false,
    });
    let txt = RecordSet {
        name: "_route53-failover.gw.example.test".into(),
        rtype: RecordType::Txt,
        set_identifier: None,
        region: None,
        ttl: Some(300),
        values: vec!["\"route53-failover owner=x type=A set=gw-use1\"".into()],
        alias: None,
        health_check_id: None,
    };
    p.change(&z, &[ch(Action::Create, &txt), ch(Action::Create, &alias)])
        .await
        .unwrap();
    assert_eq!(sorted(p, &z, &["gw.example.test"]).await, vec![txt, alias]);
}

/// `get_record` (the HA lease's read): the one record of a name and type,
/// not a neighbour the listing starts at.
async fn reads_one_record_by_name_and_type(p: &dyn Provider) {
    let z = p.find_zone("example.test").await.unwrap().id;
    let lease = RecordSet {
        name: "_route53-failover-lease.example.test".into(),
        rtype: RecordType::Txt,
        set_identifier: None,
        region: None,
        ttl: Some(60),
        values: vec!["\"route53-failover-lease holder=a term=1 expires=5\"".into()],
        alias: None,
        health_check_id: None,
    };
    let mut neighbour = lease.clone();
    neighbour.name = "_route53-failover-lease.zz.example.test".into();
    p.change(
        &z,
        &[ch(Action::Create, &lease), ch(Action::Create, &neighbour)],
    )
    .await
    .unwrap();
    let got = p
        .get_record(&z, &lease.name, &RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(got, Some(lease.clone()));
    let none = p.get_record(&z, &lease.name, &RecordType::A).await.unwrap();
    assert_eq!(none, None, "another type of the same name");
    let none = p
        .get_record(
            &z,
            "_route53-failover-lease.m.example.test",
            &RecordType::Txt,
        )
        .await
        .unwrap();
    assert_eq!(none, None, "a missing name, before a neighbour");
    p.change(
        &z,
        &[ch(Action::Delete, &lease), ch(Action::Delete, &neighbour)],
    )
    .await
    .unwrap();
    assert_eq!(
        p.get_record(&z, &lease.name, &RecordType::Txt)
            .await
            .unwrap(),
        None
    );
}

/// `list_records_under` (the instances' views): a name and everything
/// below it, not its neighbours on either side in the listing order.
async fn lists_the_records_under_a_name(p: &dyn Provider) {
    let z = p.find_zone("example.test").await.unwrap().id;
    let txt = |name: &str| RecordSet {
        name: name.into(),
        rtype: RecordType::Txt,
        set_identifier: None,
        region: None,
        ttl: Some(60),
        values: vec![format!("\"{name}\"")],
        alias: None,
        health_check_id: None,
    };
    let parent = "_route53-failover-views.example.test";
    let inside = [
        txt("pod-a._route53-failover-views.example.test"),
        txt("pod-b._route53-failover-views.example.test"),
        txt("x.pod-c._route53-failover-views.example.test"),
    ];
    let outside = [
        txt("_route53-failover-viewsx.example.test"),
        txt("a_route53-failover-views.example.test"),
        txt("_route53-failover-lease.example.test"),
        txt("zz.example.test"),
    ];
    let creates: Vec<Change> = inside
        .iter()
        .chain(&outside)
        .map(|r| ch(Action::Create, r))
        .collect();
    p.change(&z, &creates).await.unwrap();
    let mut got: Vec<String> = p
        .list_records_under(&z, parent)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    got.sort();
    let want: Vec<String> = inside.iter().map(|r| r.name.clone()).collect();
    assert_eq!(got, want);
    let deletes: Vec<Change> = inside
        .iter()
        .chain(&outside)
        .map(|r| ch(Action::Delete, r))
        .collect();
    p.change(&z, &deletes).await.unwrap();
    assert!(p.list_records_under(&z, parent).await.unwrap().is_empty());
}

async fn a_change_reaches_insync(p: &dyn Provider) {
    let z = p.find_zone("example.test").await.unwrap().id;
    let info = p
        .change(
            &z,
            &[ch(
                Action::Create,
                &a("s.example.test", "s1", "us-east-1", "192.0.2.1"),
            )],
        )
        .await
        .unwrap();
    let mut status = info.status;
    for _ in 0..40 {
        if status == ChangeStatus::Insync {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = p.change_status(&info.id).await.unwrap();
    }
    assert_eq!(status, ChangeStatus::Insync);
}

/// strict: Route53 rejects these; moto accepts some of them.
async fn strict_rules_reject_bad_batches_whole(p: &dyn Provider) {
    let z = p.find_zone("example.test").await.unwrap().id;
    let r = a("x.example.test", "x1", "us-east-1", "192.0.2.1");
    p.change(&z, &[ch(Action::Create, &r)]).await.unwrap();
    let before = sorted(p, &z, &["x.example.test", "y.example.test"]).await;
    let mut stale = r.clone();
    stale.values = vec!["192.0.2.9".into()];
    let other = a("y.example.test", "y1", "us-east-1", "192.0.2.5");
    for bad in [
        vec![ch(Action::Create, &other), ch(Action::Create, &r)],
        vec![ch(Action::Create, &other), ch(Action::Delete, &stale)],
    ] {
        let e = p.change(&z, &bad).await.unwrap_err();
        assert_eq!(e.kind(), "invalid_change_batch", "{e}");
        assert_eq!(
            sorted(p, &z, &["x.example.test", "y.example.test"]).await,
            before,
            "nothing of a rejected batch applies"
        );
    }
}

async fn lists_a_zone_across_pages(p: &dyn Provider) {
    // 350 plain records: more than one 300-record page on Route53.
    let z = p.find_zone("example.test").await.unwrap().id;
    let records: Vec<RecordSet> = (0..350)
        .map(|i| RecordSet {
            set_identifier: None,
            region: None,
            ..a(
                &format!("h{i:03}.paged.example.test"),
                "-",
                "-",
                "192.0.2.1",
            )
        })
        .collect();
    let changes: Vec<Change> = records.iter().map(|r| ch(Action::Create, r)).collect();
    p.change(&z, &changes).await.unwrap();
    let mut want = records;
    want.sort_by_key(|r| r.key());
    assert_eq!(sorted(p, &z, &["paged.example.test"]).await, want);
}

fn https_check(path: &str) -> HealthCheckConfig {
    HealthCheckConfig {
        kind: HealthCheckType::HttpsStrMatch,
        ip_address: None,
        fqdn: Some("d-abc.execute-api.us-east-1.amazonaws.com".into()),
        port: 443,
        resource_path: path.into(),
        search_string: Some("ok".into()),
        request_interval: 10,
        failure_threshold: 3,
        measure_latency: true,
        enable_sni: true,
        regions: vec!["eu-west-1".into(), "us-east-1".into(), "us-west-2".into()],
        routing_control_arn: None,
        child_health_checks: Vec::new(),
        health_threshold: 0,
    }
}

async fn health_checks_round_trip_and_attach_to_records(p: &dyn Provider) {
    let https = https_check("/health?deep=1");
    let a_check = p.create_health_check("conf-https", &https).await.unwrap();
    assert_eq!(a_check.config, https, "every field as given");
    assert_eq!(a_check.caller_reference, "conf-https");
    let http = HealthCheckConfig {
        kind: HealthCheckType::Http,
        ip_address: Some("192.0.2.44".into()),
        fqdn: Some("api.example.test".into()),
        port: 8080,
        resource_path: "/health".into(),
        search_string: None,
        request_interval: 30,
        failure_threshold: 2,
        measure_latency: false,
        enable_sni: false,
        regions: Vec::new(),
        routing_control_arn: None,
        child_health_checks: Vec::new(),
        health_threshold: 0,
    };
    let b_check = p.create_health_check("conf-http", &http).await.unwrap();
    let listed = p.list_health_checks().await.unwrap();
    let find = |id: &str| listed.iter().find(|c| c.id == id).cloned();
    assert_eq!(find(&a_check.id).unwrap().config, https);
    assert_eq!(find(&b_check.id).unwrap().config, http);
    assert_eq!(find(&b_check.id).unwrap().caller_reference, "conf-http");

    let mut changed = https.clone();
    changed.resource_path = "/v2/health".into();
    changed.failure_threshold = 5;
    let updated = p
        .update_health_check(&a_check.id, a_check.version, &changed)
        .await
        .unwrap();
    assert_eq!(updated.config, changed);
    let listed = p.list_health_checks().await.unwrap();
    let now = listed.iter().find(|c| c.id == a_check.id).unwrap();
    assert_eq!(
        now.config, changed,
        "regions kept, path and threshold changed"
    );

    let tags = [("route53-failover:owner".to_string(), "conf".to_string())];
    p.tag_health_check(&a_check.id, &tags).await.unwrap();
    let report = p.health_check_status(&a_check.id).await.unwrap();
    assert!(report.total >= 1 && report.is_healthy(), "{report:?}");

    let z = p.find_zone("example.test").await.unwrap().id;
    let mut r = a("checked.example.test", "chk-use1", "us-east-1", "192.0.2.9");
    r.health_check_id = Some(a_check.id.clone());
    p.change(&z, &[ch(Action::Upsert, &r)]).await.unwrap();
    assert_eq!(
        sorted(p, &z, &["checked.example.test"]).await,
        vec![r.clone()]
    );
    p.change(&z, &[ch(Action::Delete, &r)]).await.unwrap();
    for c in [&a_check, &b_check] {
        p.delete_health_check(&c.id).await.unwrap();
    }
    let listed = p.list_health_checks().await.unwrap();
    assert!(listed
        .iter()
        .all(|c| c.id != a_check.id && c.id != b_check.id));
}

/// Route53's health check rules that moto does not honour (docs/design.md, "Emulators").
async fn strict_health_check_rules(p: &dyn Provider) {
    let c = p
        .create_health_check("strict-1", &https_check("/h"))
        .await
        .unwrap();
    assert_eq!(
        p.create_health_check("strict-1", &https_check("/h"))
            .await
            .unwrap(),
        c,
        "a retried create returns the same check"
    );
    let e = p
        .update_health_check(&c.id, c.version + 1, &https_check("/x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "health_check_version_mismatch");
    let z = p.find_zone("example.test").await.unwrap().id;
    let mut r = a("strict-hc.example.test", "shc", "us-east-1", "192.0.2.9");
    r.health_check_id = Some(c.id.clone());
    p.change(&z, &[ch(Action::Create, &r)]).await.unwrap();
    assert_eq!(
        p.delete_health_check(&c.id).await.unwrap_err().kind(),
        "health_check_in_use"
    );
    p.change(&z, &[ch(Action::Delete, &r)]).await.unwrap();
    p.delete_health_check(&c.id).await.unwrap();
    let e = p
        .create_health_check("strict-1", &https_check("/h"))
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        "health_check_already_exists",
        "a deleted check's reference"
    );
}

/// What every provider honours.
async fn suite(p: &dyn Provider) {
    health_checks_round_trip_and_attach_to_records(p).await;
    finds_zones_by_name_or_id(p).await;
    creates_lists_and_deletes_a_latency_set(p).await;
    upsert_is_idempotent(p).await;
    alias_and_txt_records_round_trip(p).await;
    reads_one_record_by_name_and_type(p).await;
    lists_the_records_under_a_name(p).await;
    a_change_reaches_insync(p).await;
    lists_a_zone_across_pages(p).await;
}

/// Route53's strict rules, proven where they are enforced.
async fn strict_suite(p: &dyn Provider) {
    suite(p).await;
    strict_rules_reject_bad_batches_whole(p).await;
    strict_health_check_rules(p).await;
}

#[tokio::test]
async fn the_embedded_memory_provider_passes_the_suite() {
    let p = MemoryProvider::new(&["example.test"], Duration::from_millis(200));
    strict_suite(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_provider_over_http_passes_the_suite() {
    let store = common::start_store(&["example.test"]).await;
    let remote = RemoteMemory::new(store.url.parse().unwrap()).unwrap();
    strict_suite(&remote).await;
    // Errors keep their kind across the wire.
    store
        .store
        .inject(route53_failover::provider::faults::Fault {
            operation: None,
            error: route53_failover::provider::ProviderError::Throttling("Rate exceeded".into()),
            times: 1,
        });
    let z = remote.find_zone("example.test").await.unwrap_err();
    assert_eq!(z.kind(), "throttling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route53_provider_against_moto_passes_the_suite() {
    let moto = common::Moto::start().await;
    moto.create_zone("example.test").await;
    let p = Route53Provider::from_conf(moto.conf());
    suite(&p).await;
    // moto adds NS and SOA records to a new zone; they read back as Other.
    let z = p.find_zone("example.test").await.unwrap().id;
    let all = p.list_records(&z).await.unwrap();
    assert!(all
        .iter()
        .any(|r| r.rtype == RecordType::Other("SOA".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route53_errors_are_classified_against_moto() {
    let moto = common::Moto::start().await;
    let p = Route53Provider::from_conf(moto.conf());
    assert_eq!(
        p.find_zone("missing.test").await.unwrap_err().kind(),
        "no_such_hosted_zone"
    );
    let z = moto.create_zone("example.test").await;
    let r = a("dup.example.test", "d1", "us-east-1", "192.0.2.1");
    p.change(&z, &[ch(Action::Create, &r)]).await.unwrap();
    let e = p.change(&z, &[ch(Action::Create, &r)]).await.unwrap_err();
    assert_eq!(e.kind(), "invalid_change_batch", "{e}");
    // Nothing listens here: a transport failure, worth a retry.
    let (_refusing, closed) = common::refusing_port();
    let dead = Route53Provider::from_conf(
        moto.conf()
            .to_builder()
            .endpoint_url(format!("http://{closed}"))
            .build(),
    );
    let e = dead.find_zone("example.test").await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}
