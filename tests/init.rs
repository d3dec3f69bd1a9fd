//! `init` against moto through the real AWS SDK: a setup made as a person
//! would make it (a hosted zone, an HTTP API and a regional custom domain
//! in two regions, one latency alias record per region, someone else's
//! weighted record beside them), read back into a config that `check`
//! takes, whose `plan` changes no record, and that `run` takes over:
//! nothing republished, a failing region withdrawn and restored.

mod common;

use std::path::Path;
use std::time::Duration;

use aws_sdk_route53::types::{AliasTarget, ResourceRecord, ResourceRecordSet, RrType};
use common::*;
use route53_failover::demo::Mode;

const LIMIT: Duration = Duration::from_secs(30);
/// The hosted zone id moto gives every regional endpoint (common::create_domain).
const APIGW_ZONE: &str = "Z1UJRXOUMOOFQ8";

/// `route53-failover init` with `args`, AWS credentials for moto.
async fn init(args: &[&str]) -> std::process::Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(BIN)
            .arg("init")
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output(),
    )
    .await
    .expect("init ends within 60s")
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A latency alias record to an API Gateway regional endpoint, as the
/// console makes it.
fn latency_alias(name: &str, id: &str, region: &str, target: &str) -> ResourceRecordSet {
    latency_alias_checked(name, id, region, target, None)
}

fn latency_alias_checked(
    name: &str,
    id: &str,
    region: &str,
    target: &str,
    check: Option<&str>,
) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .set_health_check_id(check.map(str::to_string))
        .name(name)
        .r#type(RrType::A)
        .set_identifier(id)
        .region(region.into())
        .alias_target(
            AliasTarget::builder()
                .dns_name(target)
                .hosted_zone_id(APIGW_ZONE)
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn weighted(name: &str, id: &str, value: &str) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .set_identifier(id)
        .weight(10)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap()
}

/// Every A record of the zone: (name, set identifier, alias target,
/// values, health check).
async fn a_records(
    client: &aws_sdk_route53::Client,
    zone: &str,
) -> Vec<(
    String,
    Option<String>,
    Option<String>,
    Vec<String>,
    Option<String>,
)> {
    let out = client
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    let mut v: Vec<_> = out
        .resource_record_sets()
        .iter()
        .filter(|r| r.r#type() == &RrType::A)
        .map(|r| {
            (
                r.name().to_string(),
                r.set_identifier().map(str::to_string),
                // moto keeps the dot as it was sent; Route53 always adds it.
                r.alias_target()
                    .map(|a| a.dns_name().trim_end_matches('.').to_string()),
                r.resource_records()
                    .iter()
                    .map(|v| v.value().to_string())
                    .collect(),
                r.health_check_id().map(str::to_string),
            )
        })
        .collect();
    v.sort();
    v
}

/// The API, its custom domain and the latency record in one region (with
/// a Route53 health check of its own, when given).
async fn region_setup(
    moto: &Moto,
    client: &aws_sdk_route53::Client,
    zone: &str,
    region: &str,
    id: &str,
    check: Option<&str>,
) -> String {
    let apigw = apigw_client(&moto.url, region);
    apigw
        .create_api()
        .name("orders")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .send()
        .await
        .unwrap();
    let target = format!("d-{id}.execute-api.{region}.amazonaws.com");
    create_domain(&moto.url, region, "api.example.test", &target).await;
    create_record(
        client,
        zone,
        latency_alias_checked("api.example.test", id, region, &target, check),
    )
    .await;
    target
}

/// A health check made by hand, as the console makes it; its id.
async fn hand_made_check(client: &aws_sdk_route53::Client, fqdn: &str) -> String {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    let out = client
        .create_health_check()
        .caller_reference("console-made-1")
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Https)
                .fully_qualified_domain_name(fqdn)
                .resource_path("/ping")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    out.health_check().unwrap().id().to_string()
}

async fn health_check_ids(client: &aws_sdk_route53::Client) -> Vec<String> {
    let out = client.list_health_checks().send().await.unwrap();
    out.health_checks()
        .iter()
        .map(|c| c.id().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_setup_is_adopted_without_a_record_change_and_then_failed_over() {
    let moto = Moto::start().await;
    let zone = moto.create_zone("example.test").await;
    let client = aws_sdk_route53::Client::from_conf(moto.conf());
    let own_check =
        hand_made_check(&client, "d-api-use1.execute-api.us-east-1.amazonaws.com").await;
    let use1 = region_setup(
        &moto,
        &client,
        &zone,
        "us-east-1",
        "api-use1",
        Some(&own_check),
    )
    .await;
    region_setup(&moto, &client, &zone, "eu-west-1", "api-euw1", None).await;
    create_record(
        &client,
        &zone,
        weighted("www.example.test", "blue", "203.0.113.5"),
    )
    .await;
    let before = a_records(&client, &zone).await;
    assert_eq!(before.len(), 3);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let out = init(&[
        "--provider",
        "route53",
        "--endpoint-url",
        &moto.url,
        "--zone",
        "example.test",
        "--owner",
        "e2e",
        "--out",
        path.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "all mapped: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("2 member(s) of 1 record(s) adopted"),
        "{}",
        text(&out.stderr)
    );
    let written = std::fs::read_to_string(&path).unwrap();
    for want in [
        "owner: e2e",
        "- name: api.example.test",
        "url: https://api.example.test/health",
        "set_identifier: api-use1",
        "set_identifier: api-euw1",
        "adopt: true",
        "target: {api_gateway_domain: api.example.test}",
        "health_check: {enabled: false}",
        &format!("health_check: {{existing: {own_check}}}"),
    ] {
        assert!(written.contains(want), "{want} in:\n{written}");
    }
    assert!(!written.contains("www.example.test"), "{written}");

    // Used as it is, but for where the regions' endpoints are: here on
    // loopback, where moto's made-up endpoints cannot be reached.
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let mut config = written
        .replace("listen: 0.0.0.0:9090", "listen: 127.0.0.1:0")
        .replace(
            "https://api.example.test/health",
            "http://api.example.test/health",
        );
    for e in &eps.list {
        config = config.replace(
            &format!("      - region: {}\n", e.name),
            &format!(
                "      - region: {}\n        probe: {{connect_to: \"{}\"}}\n",
                e.name, e.addr
            ),
        );
    }
    let check = run_with_config("check", &config).await;
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    let plan = run_with_config("plan", &config).await;
    let shown = text(&plan.stdout);
    assert!(plan.status.success(), "{shown}{}", text(&plan.stderr));
    assert!(
        shown.contains("no record changes; 1 ownership marker change(s)"),
        "only the marker is written:\n{shown}"
    );
    assert!(shown.contains("(ownership marker)"), "{shown}");
    assert!(!shown.contains("health check change"), "{shown}");
    assert_eq!(
        a_records(&client, &zone).await,
        before,
        "plan writes nothing"
    );

    let daemon = start_daemon(&config).await;
    wait_until("both members claimed", LIMIT, || async {
        let status = daemon.status().await;
        status.ready
            && status.records[0]
                .members
                .iter()
                .all(|m| m.published && m.verdict == "healthy")
    })
    .await;
    assert_eq!(
        a_records(&client, &zone).await,
        before,
        "taken over without withdrawing or republishing anything"
    );
    assert_eq!(
        health_check_ids(&client).await,
        vec![own_check.clone()],
        "the record's own check is kept, none is added"
    );
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 withdrawn", LIMIT, || async {
        !a_records(&client, &zone)
            .await
            .iter()
            .any(|r| r.1.as_deref() == Some("api-euw1"))
    })
    .await;
    eps.set("eu-west-1", Mode::Serve);
    let restored = tokio::time::timeout(LIMIT, async {
        loop {
            let now = a_records(&client, &zone).await;
            if now.iter().any(|r| r.1.as_deref() == Some("api-euw1")) {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("eu-west-1 restored: {}", daemon.logs()));
    assert_eq!(restored, before, "restored as it was");
    let now = a_records(&client, &zone).await;
    let use1_record = now
        .iter()
        .find(|r| r.1.as_deref() == Some("api-use1"))
        .unwrap();
    assert_eq!(use1_record.2.as_deref(), Some(use1.as_str()));
    assert_eq!(health_check_ids(&client).await, vec![own_check.clone()]);
    assert!(
        now.iter()
            .any(|r| r.0 == "www.example.test." && r.3 == ["203.0.113.5"]),
        "the foreign weighted record is untouched: {now:?}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_that_need_a_decision_exit_3_one_line_each_and_bad_input_exits_2() {
    let moto = Moto::start().await;
    let zone = moto.create_zone("example.test").await;
    let client = aws_sdk_route53::Client::from_conf(moto.conf());
    region_setup(&moto, &client, &zone, "us-east-1", "api-use1", None).await;
    region_setup(&moto, &client, &zone, "eu-west-1", "api-euw1", None).await;
    // A region the API lacks: a latency record to an endpoint no custom
    // domain there has; and a weighted record under the same name.
    create_record(
        &client,
        &zone,
        latency_alias(
            "api.example.test",
            "api-apse2",
            "ap-southeast-2",
            "d-gone.execute-api.ap-southeast-2.amazonaws.com",
        ),
    )
    .await;
    create_record(
        &client,
        &zone,
        weighted("api.example.test", "canary", "203.0.113.9"),
    )
    .await;

    let out = init(&[
        "--endpoint-url",
        &moto.url,
        "--zone",
        "example.test",
        "--owner",
        "e2e",
    ])
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let decisions: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("needs a decision: "))
        .collect();
    assert_eq!(decisions.len(), 2, "{stderr}");
    assert!(
        decisions
            .iter()
            .any(|l| l.contains("canary") && l.contains("not by latency")),
        "{stderr}"
    );
    assert!(
        decisions
            .iter()
            .any(|l| l.contains("api-apse2 (ap-southeast-2)")
                && l.contains("no API Gateway custom domain in ap-southeast-2")),
        "{stderr}"
    );
    // The config is valid with those parts commented out.
    let written = text(&out.stdout);
    assert!(
        written.contains("#       - region: ap-southeast-2"),
        "{written}"
    );
    let check = run_with_config("check", &written).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));

    // A name none of whose members can be adopted as it is, and a name
    // with no latency set: exit 3, no config.
    for (id, region) in [("old-use1", "us-east-1"), ("old-euw1", "eu-west-1")] {
        let gone = format!("d-{id}.execute-api.{region}.amazonaws.com");
        create_record(
            &client,
            &zone,
            latency_alias("old.example.test", id, region, &gone),
        )
        .await;
    }
    let before = a_records(&client, &zone).await;
    for (name, says) in [
        (
            "old.example.test",
            "nothing in zone example.test can be adopted as it is",
        ),
        (
            "none.example.test",
            "holds no latency record set under none.example.test",
        ),
    ] {
        let out = init(&[
            "--endpoint-url",
            &moto.url,
            "--zone",
            "example.test",
            "--name",
            name,
        ])
        .await;
        assert_eq!(out.status.code(), Some(3), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(says),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{name}: no config");
    }

    // Bad input: nothing written, exit 2, the flag named.
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("config.yaml");
    std::fs::write(&existing, "keep me\n").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--zone", "nothing.test"],
            "--zone: no hosted zone \"nothing.test\"",
        ),
        (
            &[
                "--zone",
                "example.test",
                "--out",
                existing.to_str().unwrap(),
            ],
            "exists (--force overwrites it)",
        ),
        (
            &["--zone", "example.test", "--probe-path", "health"],
            "--probe-path",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["--endpoint-url", &moto.url];
        all.extend_from_slice(args);
        let out = init(&all).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?} prints no config");
    }
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me\n");
    assert!(!Path::new(&dir.path().join("other.yaml")).exists());
    assert_eq!(
        a_records(&client, &zone).await,
        before,
        "init changes nothing"
    );
}
