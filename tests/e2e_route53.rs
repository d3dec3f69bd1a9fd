//! End to end through the built binary against moto's Route53 (through the
//! real AWS SDK): records, ownership markers, withdrawal and restore, a
//! foreign record left alone. Read back with the SDK, not through the
//! daemon's own provider code. moto's deviations (docs/design.md, "Emulators") are why the
//! strict rules are proven against the memory provider instead.

mod common;

use std::time::Duration;

use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet, RrType};
use common::*;
use route53_failover::demo::Mode;

const LIMIT: Duration = Duration::from_secs(20);

/// (name, type, set identifier, values) of every record moto holds.
async fn record_sets(client: &aws_sdk_route53::Client, zone: &str) -> Vec<ResourceRecordSet> {
    let out = client
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    assert!(!out.is_truncated());
    out.resource_record_sets().to_vec()
}

async fn records(
    client: &aws_sdk_route53::Client,
    zone: &str,
) -> Vec<(String, String, Option<String>, Vec<String>)> {
    record_sets(client, zone)
        .await
        .iter()
        .map(|r| {
            (
                r.name().to_string(),
                r.r#type().as_str().to_string(),
                r.set_identifier().map(str::to_string),
                r.resource_records()
                    .iter()
                    .map(|v| v.value().to_string())
                    .collect(),
            )
        })
        .collect()
}

async fn member_ids(client: &aws_sdk_route53::Client, zone: &str) -> Vec<String> {
    let mut ids: Vec<String> = records(client, zone)
        .await
        .into_iter()
        .filter(|r| r.0 == "api.example.test." && r.1 == "A")
        .filter_map(|r| r.2)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manages_latency_records_in_route53_through_the_sdk() {
    let moto = Moto::start().await;
    let zone = moto.create_zone("example.test").await;
    let client = aws_sdk_route53::Client::from_conf(moto.conf());
    // Someone else's record in the same set, with a set identifier we configure.
    let foreign = ResourceRecordSet::builder()
        .name("api.example.test.")
        .r#type(RrType::A)
        .set_identifier(set_id("ap-southeast-2"))
        .region("ap-southeast-2".into())
        .ttl(300)
        .resource_records(
            ResourceRecord::builder()
                .value("203.0.113.9")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    create_record(&client, &zone, foreign).await;

    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let provider = format!(
        "{{kind: route53, endpoint_url: \"{}\", region: us-east-1, max_requests_per_second: 20}}",
        moto.url
    );
    let daemon = start_daemon(&config_with_provider(&provider, &eps, 1, "2s")).await;
    wait_until(
        "our two members stand beside the foreign one",
        LIMIT,
        || async { member_ids(&client, &zone).await.len() == 3 },
    )
    .await;
    let all = records(&client, &zone).await;
    let use1 = all
        .iter()
        .find(|r| r.2.as_deref() == Some("id-us-east-1"))
        .unwrap();
    assert_eq!(use1.3, vec!["192.0.2.1"]);
    let marker = all
        .iter()
        .find(|r| r.0 == "_route53-failover.api.example.test.")
        .expect("the ownership marker");
    assert_eq!(marker.1, "TXT");
    assert!(
        marker
            .3
            .iter()
            .any(|v| v.contains("owner=e2e type=A set=id-eu-west-1")),
        "{:?}",
        marker.3
    );
    assert!(
        !marker.3.iter().any(|v| v.contains("set=id-ap-southeast-2")),
        "the foreign member is not claimed"
    );
    assert_eq!(daemon.status().await.provider, "route53");

    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn from Route53", LIMIT, || async {
        !member_ids(&client, &zone)
            .await
            .contains(&set_id("eu-west-1"))
    })
    .await;
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is back in Route53", LIMIT, || async {
        member_ids(&client, &zone)
            .await
            .contains(&set_id("eu-west-1"))
    })
    .await;
    // The foreign record was never touched, across resyncs (2s) too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = records(&client, &zone).await;
    let theirs = all
        .iter()
        .find(|r| r.2.as_deref() == Some("id-ap-southeast-2"))
        .unwrap();
    assert_eq!(theirs.3, vec!["203.0.113.9"]);
    assert!(daemon.member("ap-southeast-2").await.conflict);
    let page = daemon.metrics().await;
    assert!(
        metric(
            &page,
            "route53_failover_provider_requests_total",
            &["operation=\"change\"", "outcome=\"ok\""]
        ) >= Some(3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_route53_does_not_have_is_bad_input() {
    let moto = Moto::start().await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let provider = format!("{{kind: route53, endpoint_url: \"{}\"}}", moto.url);
    let out = run_with_config("run", &config_with_provider(&provider, &eps, 1, "5m")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("records[0].zone: \"example.test\": no hosted zone named example.test"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_prior_requests_and_5xx_on_the_wire_are_retried_and_nothing_is_lost() {
    let moto = Moto::start().await;
    let zone = moto.create_zone("example.test").await;
    let client = aws_sdk_route53::Client::from_conf(moto.conf());
    let proxy = FaultProxy::start(&moto.url).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let provider = format!(
        "{{kind: route53, endpoint_url: \"{}\", max_requests_per_second: 20}}",
        proxy.url
    );
    // CreateHealthCheck is POST .../healthcheck.
    proxy.inject("POST", "healthcheck", 1, 400, "Throttling");
    proxy.inject("POST", "healthcheck", 1, 503, "ServiceUnavailable");
    let daemon = start_daemon(&config_with_provider(&provider, &eps, 1, "5m")).await;
    wait_until("both members are in Route53 with checks", LIMIT, || async {
        let a = attached(&client, &zone).await;
        a.len() == 2 && a.iter().all(|(_, hc)| hc.is_some())
    })
    .await;
    assert_eq!(
        health_checks(&client).await.len(),
        2,
        "retried creates made one check each"
    );
    let page = daemon.metrics().await;
    for outcome in ["throttling", "service"] {
        assert_eq!(
            metric(
                &page,
                "route53_failover_provider_requests_total",
                &[
                    "operation=\"create_health_check\"",
                    &format!("outcome=\"{outcome}\"")
                ]
            ),
            Some(1.0)
        );
    }

    // ChangeResourceRecordSets is POST .../rrset (or /rrset/).
    proxy.inject("POST", "rrset", 1, 400, "Throttling");
    proxy.inject("POST", "rrset", 1, 400, "PriorRequestNotComplete");
    proxy.inject("POST", "rrset", 1, 503, "ServiceUnavailable");
    eps.set("eu-west-1", Mode::Fail);
    wait_until(
        "eu-west-1 is withdrawn despite the faults",
        LIMIT,
        || async { member_ids(&client, &zone).await == vec![set_id("us-east-1")] },
    )
    .await;
    let page = daemon.metrics().await;
    let outcome = |o: &str| {
        metric(
            &page,
            "route53_failover_provider_requests_total",
            &["operation=\"change\"", &format!("outcome=\"{o}\"")],
        )
    };
    assert_eq!(outcome("throttling"), Some(1.0));
    assert_eq!(outcome("prior_request_not_complete"), Some(1.0));
    assert_eq!(outcome("service"), Some(1.0));
    assert!(
        daemon.status().await.zones[0].last_error.is_none(),
        "retried within one reconcile"
    );
    // Every write through the SDK names its writer's term (0 without
    // `ha`): in a header on record and health check writes (creates and
    // tags), and in each change batch's comment.
    let writes: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "POST" && l.status == 200)
        .filter(|l| l.path.contains("rrset") || l.path.contains("healthcheck"))
        .collect();
    assert!(writes.iter().any(|l| l.path.contains("tags/healthcheck")));
    for w in &writes {
        assert_eq!(w.term, Some(0), "{} {} named no term", w.method, w.path);
        if w.path.contains("rrset") {
            assert!(w.body.contains("route53-failover term 0"), "{}", w.body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_regional_targets_are_discovered_and_become_alias_records() {
    let moto = Moto::start().await;
    let zone = moto.create_zone("example.test").await;
    let client = aws_sdk_route53::Client::from_conf(moto.conf());
    create_domain(
        &moto.url,
        "us-east-1",
        "api.example.test",
        "d-use1abc.execute-api.us-east-1.amazonaws.com",
    )
    .await;
    create_domain(
        &moto.url,
        "eu-west-1",
        "api.example.test",
        "d-euw1xyz.execute-api.eu-west-1.amazonaws.com",
    )
    .await;
    // No custom domain in ap-southeast-2: its lookup fails.
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let provider = format!(
        "{{kind: route53, endpoint_url: \"{}\", max_requests_per_second: 20}}",
        moto.url
    );
    let mut text = config_with_provider(&provider, &eps, 1, "5m");
    for (i, _) in eps.list.iter().enumerate() {
        text = text.replace(
            &format!("target: {{values: [192.0.2.{}]}}", i + 1),
            "target: {api_gateway_domain: api.example.test}",
        );
    }
    // `plan` discovers too, probes at the configured endpoints, writes nothing.
    let out = run_with_config("plan", &text).await;
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{plan}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        plan.contains("UPSERT api.example.test A (id-us-east-1) region=us-east-1 alias=d-use1abc.execute-api.us-east-1.amazonaws.com zone=Z1UJRXOUMOOFQ8"),
        "{plan}"
    );
    assert!(
        plan.contains("ap-southeast-2   id-ap-southeast-2 keep      unknown"),
        "{plan}"
    );
    assert!(
        member_ids(&client, &zone).await.is_empty(),
        "plan writes nothing"
    );

    let daemon = start_daemon(&text).await;
    wait_until("both discovered members are in Route53", LIMIT, || async {
        member_ids(&client, &zone).await.len() == 2
    })
    .await;
    let out = client
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap();
    let alias_of = |id: &str| {
        let r = out
            .resource_record_sets()
            .iter()
            .find(|r| r.set_identifier() == Some(id))
            .unwrap();
        let a = r.alias_target().expect("an alias record");
        assert_eq!(r.ttl(), None, "an alias takes no TTL");
        assert_eq!(
            r.region().map(|x| x.as_str()),
            Some(id.trim_start_matches("id-"))
        );
        (
            a.dns_name().trim_end_matches('.').to_string(),
            a.hosted_zone_id().to_string(),
            a.evaluate_target_health(),
        )
    };
    assert_eq!(
        alias_of("id-us-east-1"),
        (
            "d-use1abc.execute-api.us-east-1.amazonaws.com".to_string(),
            "Z1UJRXOUMOOFQ8".to_string(),
            false
        )
    );
    assert_eq!(
        alias_of("id-eu-west-1").0,
        "d-euw1xyz.execute-api.eu-west-1.amazonaws.com"
    );

    let m = daemon.member("us-east-1").await;
    assert_eq!(
        m.target,
        "API Gateway api.example.test → d-use1abc.execute-api.us-east-1.amazonaws.com"
    );
    // Lookups wait their turn at the API Gateway rate limiter.
    wait_until(
        "ap-southeast-2 says why it is not discovered",
        LIMIT,
        || async {
            daemon
                .member("ap-southeast-2")
                .await
                .target
                .starts_with("API Gateway api.example.test: not discovered: no custom domain")
        },
    )
    .await;
    let m = daemon.member("ap-southeast-2").await;
    assert!(!m.published);
    let page = daemon.metrics().await;
    assert!(
        metric(
            &page,
            "route53_failover_discovery_errors_total",
            &["region=\"ap-southeast-2\"", "kind=\"not_found\""]
        ) >= Some(1.0)
    );
}

/// Every health check moto holds.
async fn health_checks(
    client: &aws_sdk_route53::Client,
) -> Vec<aws_sdk_route53::types::HealthCheck> {
    let out = client.list_health_checks().send().await.unwrap();
    assert!(!out.is_truncated());
    out.health_checks().to_vec()
}

/// (set identifier → health check id) of the `api.example.test` A records.
async fn attached(client: &aws_sdk_route53::Client, zone: &str) -> Vec<(String, Option<String>)> {
    let mut v: Vec<_> = record_sets(client, zone)
        .await
        .iter()
        .filter(|r| r.name() == "api.example.test." && r.r#type() == &RrType::A)
        .map(|r| {
            (
                r.set_identifier().unwrap_or_default().to_string(),
                r.health_check_id().map(str::to_string),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_are_kept_in_sync_in_route53() {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType, TagResourceType};
    let moto = Moto::start().await;
    let zone = moto.create_zone("example.test").await;
    let client = aws_sdk_route53::Client::from_conf(moto.conf());
    for (region, target) in [
        ("us-east-1", "d-use1abc.execute-api.us-east-1.amazonaws.com"),
        ("eu-west-1", "d-euw1xyz.execute-api.eu-west-1.amazonaws.com"),
    ] {
        create_domain(&moto.url, region, "api.example.test", target).await;
    }
    // Someone else's check: never touched.
    let foreign = client
        .create_health_check()
        .caller_reference("terraform-20261124")
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Http)
                .ip_address("192.0.2.200")
                .port(80)
                .resource_path("/")
                .request_interval(30)
                .failure_threshold(3)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .health_check()
        .unwrap()
        .clone();

    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let provider = format!(
        "{{kind: route53, endpoint_url: \"{}\", max_requests_per_second: 20}}",
        moto.url
    );
    let mut base = config_with_provider(&provider, &eps, 1, "5m").replace(
        "defaults:\n",
        "health_check_status_interval: 10s\ndefaults:\n  health_check: {request_interval: 10, failure_threshold: 2, regions: [us-west-2, us-east-1, eu-west-1], measure_latency: true}\n",
    );
    for i in 1..=2 {
        base = base.replace(
            &format!("target: {{values: [192.0.2.{i}]}}"),
            "target: {api_gateway_domain: api.example.test}",
        );
    }
    let daemon = start_daemon(&base).await;
    wait_until("both records carry a health check", LIMIT, || async {
        let a = attached(&client, &zone).await;
        a.len() == 2 && a.iter().all(|(_, hc)| hc.is_some())
    })
    .await;
    let first = attached(&client, &zone).await;
    let checks = health_checks(&client).await;
    assert_eq!(checks.len(), 3, "one per member, plus the foreign one");
    for ((set, id), target) in first.iter().zip([
        "d-euw1xyz.execute-api.eu-west-1.amazonaws.com",
        "d-use1abc.execute-api.us-east-1.amazonaws.com",
    ]) {
        let hc = checks
            .iter()
            .find(|c| Some(c.id()) == id.as_deref())
            .unwrap();
        assert!(hc.caller_reference().starts_with("rfo1-"), "{hc:?}");
        let c = hc.health_check_config().unwrap();
        assert_eq!(c.r#type(), &HealthCheckType::HttpStrMatch);
        assert_eq!(
            c.fully_qualified_domain_name(),
            Some(target),
            "the regional target"
        );
        assert_eq!(c.ip_address(), None);
        assert_eq!(
            c.port(),
            Some(80),
            "the URL's port, not the test's connect_to"
        );
        assert_eq!(c.resource_path(), Some("/health"));
        assert_eq!(c.search_string(), Some("ok"));
        assert_eq!(
            (c.request_interval(), c.failure_threshold()),
            (Some(10), Some(2))
        );
        assert_eq!(c.measure_latency(), Some(true));
        let mut regions: Vec<&str> = c.regions().iter().map(|r| r.as_str()).collect();
        regions.sort();
        assert_eq!(regions, ["eu-west-1", "us-east-1", "us-west-2"]);
        let tags = client
            .list_tags_for_resource()
            .resource_type(TagResourceType::Healthcheck)
            .resource_id(hc.id())
            .send()
            .await
            .unwrap();
        let tags: Vec<(&str, &str)> = tags
            .resource_tag_set()
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert!(
            tags.contains(&("route53-failover:owner", "e2e")),
            "{tags:?}"
        );
        assert!(
            tags.contains(&("route53-failover:set-identifier", set.as_str())),
            "{tags:?}"
        );
    }
    // Route53's view (moto: always a success) beside the verdict.
    wait_until("Route53's status is read", LIMIT, || async {
        let m = daemon.member("us-east-1").await;
        let hc = m.health_check.unwrap();
        hc.id == first[1].1 && hc.route53.as_deref() == Some("healthy") && !hc.disagrees
    })
    .await;

    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        attached(&client, &zone).await.len() == 1
    })
    .await;
    assert_eq!(
        health_checks(&client).await.len(),
        3,
        "a withdrawn member keeps its check"
    );
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is back with the same check", LIMIT, || async {
        attached(&client, &zone).await == first
    })
    .await;
    daemon.stop().await;

    // A mutable setting changes: the same check, updated in place.
    let text = base.replace("failure_threshold: 2", "failure_threshold: 4");
    let daemon = start_daemon(&text).await;
    wait_until("the checks are updated in place", LIMIT, || async {
        let checks = health_checks(&client).await;
        checks.len() == 3
            && first.iter().all(|(_, id)| {
                checks.iter().any(|c| {
                    Some(c.id()) == id.as_deref()
                        && c.health_check_config().unwrap().failure_threshold() == Some(4)
                })
            })
    })
    .await;
    assert_eq!(attached(&client, &zone).await, first);
    daemon.stop().await;

    // An immutable one changes: new checks, records moved, old ones deleted.
    let text = text.replace("request_interval: 10", "request_interval: 30");
    let daemon = start_daemon(&text).await;
    wait_until("the records move to new checks", LIMIT, || async {
        let now = attached(&client, &zone).await;
        now.len() == 2
            && now
                .iter()
                .zip(&first)
                .all(|(a, b)| a.1.is_some() && a.1 != b.1)
    })
    .await;
    wait_until("the old checks are deleted", LIMIT, || async {
        let checks = health_checks(&client).await;
        checks.len() == 3
            && first
                .iter()
                .all(|(_, id)| checks.iter().all(|c| Some(c.id()) != id.as_deref()))
    })
    .await;
    let second = attached(&client, &zone).await;
    daemon.stop().await;

    // A member removed from the config loses its record and its check.
    let only_use1: String = {
        let mut out = String::new();
        let mut skip = false;
        for line in text.lines() {
            if line.starts_with("      - region: ") {
                skip = line.contains("eu-west-1");
            }
            if !skip {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    };
    assert!(!only_use1.contains("eu-west-1\n"), "{only_use1}");
    let daemon = start_daemon(&only_use1).await;
    wait_until("eu-west-1's record and check are gone", LIMIT, || async {
        let checks = health_checks(&client).await;
        attached(&client, &zone).await == vec![second[1].clone()]
            && checks.len() == 2
            && checks
                .iter()
                .all(|c| Some(c.id()) != second[0].1.as_deref())
    })
    .await;
    let checks = health_checks(&client).await;
    let theirs = checks
        .iter()
        .find(|c| c.id() == foreign.id())
        .expect("the foreign check");
    assert_eq!(theirs, &foreign, "untouched");
    daemon.stop().await;
}

/// A restart while one region's API Gateway cannot be read (its
/// `GetDomainName` hangs, behind a fault proxy in front of moto): the
/// region's target is taken from the alias record the zone already holds,
/// so its member is probed and its failure still withdrawn; the other
/// region's lookup is not held up by the hanging one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_one_regions_api_gateway_hangs_still_withdraws_its_failure() {
    let moto = Moto::start().await;
    let zone = moto.create_zone("example.test").await;
    let client = aws_sdk_route53::Client::from_conf(moto.conf());
    for (region, target) in [
        ("us-east-1", "d-use1abc.execute-api.us-east-1.amazonaws.com"),
        ("eu-west-1", "d-euw1xyz.execute-api.eu-west-1.amazonaws.com"),
    ] {
        create_domain(&moto.url, region, "api.example.test", target).await;
    }
    let proxy = FaultProxy::start(&moto.url).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let provider = format!(
        "{{kind: route53, endpoint_url: \"{}\", max_requests_per_second: 20}}",
        proxy.url
    );
    let mut text = config_with_provider(&provider, &eps, 1, "5m");
    for i in 1..=2 {
        text = text.replace(
            &format!("target: {{values: [192.0.2.{i}]}}"),
            "target: {api_gateway_domain: api.example.test}",
        );
    }
    let daemon = start_daemon(&text).await;
    wait_until("both discovered members are in Route53", LIMIT, || async {
        member_ids(&client, &zone).await.len() == 2
    })
    .await;
    daemon.stop().await;

    // eu-west-1's API Gateway stops answering; the daemon restarts.
    proxy.answer(std::sync::Arc::new(|asked| {
        let lookup = asked.method == "GET" && asked.path.starts_with("/v2/domainnames/");
        (lookup && asked.region() == Some("eu-west-1")).then_some(Reply::Hang)
    }));
    let restarted = std::time::Instant::now();
    let daemon = start_daemon(&text).await;
    wait_until("us-east-1 is looked up", LIMIT, || async {
        daemon.member("us-east-1").await.target
            == "API Gateway api.example.test → d-use1abc.execute-api.us-east-1.amazonaws.com"
    })
    .await;
    let looked_up = restarted.elapsed();
    assert!(
        looked_up < route53_failover::discovery::LOOKUP_TIMEOUT,
        "us-east-1 waited for eu-west-1's lookup: {looked_up:?}"
    );
    wait_until("eu-west-1 runs on the zone's alias", LIMIT, || async {
        let m = daemon.member("eu-west-1").await;
        m.target.starts_with(
            "API Gateway api.example.test → d-euw1xyz.execute-api.eu-west-1.amazonaws.com (from the zone's record",
        ) && m.verdict == "healthy"
    })
    .await;
    assert!(proxy
        .log()
        .iter()
        .any(|l| l.path.starts_with("/v2/domainnames/") && l.status == 0));

    // The region fails: withdrawn all the same.
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        member_ids(&client, &zone).await == vec!["id-us-east-1".to_string()]
    })
    .await;
    // Once the lookup times out, status says so.
    wait_until("the failed lookup is shown", LIMIT, || async {
        daemon
            .member("eu-west-1")
            .await
            .target
            .contains("(from the zone's record; lookup failed: ")
    })
    .await;
    daemon.stop().await;
}
