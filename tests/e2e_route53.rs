//! End to end through the built binary against moto's Route53 (through the
//! real AWS SDK): records, ownership markers, withdrawal and restore, a
//! foreign record left alone. Read back with the SDK, not through the
//! daemon's own provider code. moto's deviations (DESIGN.md) are why the
//! strict rules are proven against the memory provider instead.

mod common;

use std::time::Duration;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use common::*;
use route53_failover::demo::Mode;

const LIMIT: Duration = Duration::from_secs(20);

/// (name, type, set identifier, values) of every record moto holds.
async fn records(
    client: &aws_sdk_route53::Client,
    zone: &str,
) -> Vec<(String, String, Option<String>, Vec<String>)> {
    let out = client
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    assert!(!out.is_truncated());
    out.resource_record_sets()
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
    client
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Create)
                        .resource_record_set(foreign)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, config_with_provider(&provider, &eps, 1, "5m")).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(BIN)
            .args(["run", "--config"])
            .arg(&path)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output(),
    )
    .await
    .expect("exits at once")
    .unwrap();
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
    let daemon = start_daemon(&config_with_provider(&provider, &eps, 1, "5m")).await;
    wait_until("both members are in Route53", LIMIT, || async {
        member_ids(&client, &zone).await.len() == 2
    })
    .await;

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
}

/// A regional custom domain in moto's API Gateway, in `region`.
async fn create_domain(moto: &Moto, region: &str, domain: &str, target: &str) {
    let conf = aws_sdk_apigatewayv2::Config::builder()
        .behavior_version(aws_sdk_apigatewayv2::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewayv2::config::Region::new(
            region.to_string(),
        ))
        .credentials_provider(aws_sdk_apigatewayv2::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(&moto.url)
        .build();
    let client = aws_sdk_apigatewayv2::Client::from_conf(conf);
    client
        .create_domain_name()
        .domain_name(domain)
        .domain_name_configurations(
            aws_sdk_apigatewayv2::types::DomainNameConfiguration::builder()
                .api_gateway_domain_name(target)
                .hosted_zone_id("Z1UJRXOUMOOFQ8")
                .endpoint_type(aws_sdk_apigatewayv2::types::EndpointType::Regional)
                .certificate_arn(format!(
                    "arn:aws:acm:{region}:123456789012:certificate/test"
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_regional_targets_are_discovered_and_become_alias_records() {
    let moto = Moto::start().await;
    let zone = moto.create_zone("example.test").await;
    let client = aws_sdk_route53::Client::from_conf(moto.conf());
    create_domain(
        &moto,
        "us-east-1",
        "api.example.test",
        "d-use1abc.execute-api.us-east-1.amazonaws.com",
    )
    .await;
    create_domain(
        &moto,
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
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), &text).unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["plan", "--config"])
        .arg(dir.path().join("c.yaml"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap();
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
    let m = daemon.member("ap-southeast-2").await;
    assert!(
        m.target
            .starts_with("API Gateway api.example.test: not discovered: no custom domain"),
        "{}",
        m.target
    );
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
