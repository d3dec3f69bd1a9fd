//! Parity end to end: the same API created by the test in two regions of
//! moto's API Gateway (routes, integration, stage, custom domain, mapping),
//! read by the built binary through the real SDK, in sync; then drift in
//! one region (a route removed, an integration's TLS server name changed,
//! the mapping pointed at another stage, an authorizer's audience cut),
//! reported line by line by the `parity` command (exit 3), in status, the
//! table, the page and the metrics.
//!
//! moto answers `GetAuthorizers` with a 500 (docs/design.md, "Emulators"),
//! so the authorizers come from a stand-in on loopback in front of moto,
//! reached through the same SDK client: it serves them in two pages, so the
//! second authorizer's drift also proves the pages are followed.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_apigatewayv2 as apigw;
use common::*;
use route53_failover::parity::ParityState;

const LIMIT: Duration = Duration::from_secs(30);
const ROUTE: &str = "GET /learn-api/gcp-courses";

/// What the test made in one region.
struct Deployed {
    api: String,
    integration: String,
    route: String,
}

/// The API, as a deploy pipeline would create it in `region`.
async fn deploy(url: &str, region: &str) -> Deployed {
    let c = &apigw_client(url, region);
    use apigw::types::{
        AuthorizationType, IntegrationType, ProtocolType, RouteSettings, TlsConfigInput,
    };
    let api = c
        .create_api()
        .name("learn")
        .protocol_type(ProtocolType::Http)
        .send()
        .await
        .unwrap()
        .api_id
        .unwrap();
    let integration = c
        .create_integration()
        .api_id(&api)
        .integration_type(IntegrationType::HttpProxy)
        .integration_method("ANY")
        .integration_uri(format!("https://backend.{region}.example.test/{{proxy}}"))
        .payload_format_version("1.0")
        .tls_config(
            TlsConfigInput::builder()
                .server_name_to_verify("backend.example.test")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .integration_id
        .unwrap();
    let mut route = String::new();
    for (key, auth) in [(ROUTE, true), ("GET /health", false)] {
        let mut r = c
            .create_route()
            .api_id(&api)
            .route_key(key)
            .target(format!("integrations/{integration}"));
        if auth {
            r = r
                .authorization_type(AuthorizationType::Jwt)
                .authorizer_id(format!("jwt-{api}"));
        }
        let id = r.send().await.unwrap().route_id.unwrap();
        if auth {
            route = id;
        }
    }
    for stage in ["prod", "staging"] {
        c.create_stage()
            .api_id(&api)
            .stage_name(stage)
            .auto_deploy(true)
            .default_route_settings(
                RouteSettings::builder()
                    .throttling_burst_limit(100)
                    .throttling_rate_limit(50.0)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    create_domain(
        url,
        region,
        "api.example.test",
        &format!("d-{api}.execute-api.{region}.amazonaws.com"),
    )
    .await;
    c.create_api_mapping()
        .domain_name("api.example.test")
        .api_id(&api)
        .stage("prod")
        .send()
        .await
        .unwrap();
    Deployed {
        api,
        integration,
        route,
    }
}

/// The authorizers the stand-in serves, per API id: (its region, the JWT
/// audience, the second authorizer's identity source).
type Authorizers = Arc<Mutex<HashMap<String, (&'static str, Vec<&'static str>, &'static str)>>>;

/// `GET /v2/apis/{id}/authorizers`, one authorizer per page.
fn authorizers_stand_in(fixture: Authorizers) -> Answer {
    Arc::new(move |asked| {
        let api = asked
            .path
            .strip_prefix("/v2/apis/")?
            .strip_suffix("/authorizers")?;
        if asked.method != "GET" {
            return None;
        }
        let (region, audience, source) = fixture.lock().unwrap().get(api)?.clone();
        let body = if asked.query.contains("nextToken=page2") {
            serde_json::json!({"items": [{
                "authorizerId": format!("req-{api}"), "name": "internal",
                "authorizerType": "REQUEST", "identitySource": [source],
                "authorizerUri": format!("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{region}:123456789012:function:authz/invocations")
            }]})
        } else {
            serde_json::json!({"items": [{
                "authorizerId": format!("jwt-{api}"), "name": "jwt", "authorizerType": "JWT",
                "identitySource": ["$request.header.Authorization"],
                "jwtConfiguration": {"audience": audience, "issuer": "https://auth.example.test/"}
            }], "nextToken": "page2"})
        };
        Some(Reply::Json(200, body.to_string()))
    })
}

/// A daemon's config over the endpoints whose members are the custom
/// domain `api.example.test`, through `proxy` in front of moto.
fn gateway_config(proxy: &FaultProxy, eps: &Endpoints) -> String {
    let provider = format!(
        "{{kind: route53, endpoint_url: \"{}\", max_requests_per_second: 20}}",
        proxy.url
    );
    let mut text = config_with_provider(&provider, eps, 1, "5m");
    for i in 0..eps.list.len() {
        text = text.replace(
            &format!("target: {{values: [192.0.2.{}]}}", i + 1),
            "target: {api_gateway_domain: api.example.test}",
        );
    }
    text
}

/// Runs `parity --config` on `text`: (exit code, what it printed).
async fn parity_command(text: &str) -> (i32, String) {
    let out = run_with_config("parity", text).await;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), printed)
}

/// `parity` says the two regions are in sync, exit 0.
async fn assert_in_sync(text: &str) {
    let (code, out) = parity_command(text).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("api.example.test A: in sync (us-east-1, eu-west-1)"),
        "{out}"
    );
}

async fn parity_of(daemon: &Daemon) -> route53_failover::parity::ParityReport {
    wait_until("the daemon's first parity check", LIMIT, || async {
        daemon.status().await.records[0].parity.is_some()
    })
    .await;
    daemon.status().await.records[0].parity.clone().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_between_two_regions_is_reported_line_by_line() {
    let moto = Moto::start().await;
    moto.create_zone("example.test").await;
    let proxy = FaultProxy::start(&moto.url).await;
    let fixture: Authorizers = Default::default();
    proxy.answer(authorizers_stand_in(fixture.clone()));
    let regions = ["us-east-1", "eu-west-1"];
    let mut deployed = Vec::new();
    for region in regions {
        let d = deploy(&moto.url, region).await;
        fixture.lock().unwrap().insert(
            d.api.clone(),
            (region, vec!["web", "api"], "$request.header.X-Key"),
        );
        deployed.push(d);
    }
    let eps = Endpoints::start(&regions).await;
    let text = gateway_config(&proxy, &eps);

    // In sync: the same API, with its own ids, ARNs and hosts per region.
    assert_in_sync(&text).await;
    let daemon = start_daemon(&text).await;
    let report = parity_of(&daemon).await;
    assert_eq!(report.state, ParityState::InSync, "{report:?}");
    assert!(report.differences.is_empty());
    let page = daemon.metrics().await;
    assert!(
        metric(
            &page,
            "route53_failover_parity_last_check_timestamp_seconds",
            &["record=\"api.example.test\""]
        )
        .is_some_and(|t| (t - report.checked_at).abs() < 1e-3),
        "{page}"
    );
    assert!(
        !page.contains("route53_failover_parity_differences{"),
        "no difference series while in sync"
    );
    daemon.stop().await;

    // Drift in eu-west-1.
    let eu = apigw_client(&moto.url, "eu-west-1");
    let d = &deployed[1];
    eu.delete_route()
        .api_id(&d.api)
        .route_id(&d.route)
        .send()
        .await
        .unwrap();
    eu.update_integration()
        .api_id(&d.api)
        .integration_id(&d.integration)
        .tls_config(
            apigw::types::TlsConfigInput::builder()
                .server_name_to_verify("backend.eu-west-1.example.test")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mappings = eu
        .get_api_mappings()
        .domain_name("api.example.test")
        .send()
        .await
        .unwrap();
    let mapping = mappings.items()[0].api_mapping_id().unwrap();
    eu.delete_api_mapping()
        .domain_name("api.example.test")
        .api_mapping_id(mapping)
        .send()
        .await
        .unwrap();
    eu.create_api_mapping()
        .domain_name("api.example.test")
        .api_id(&d.api)
        .stage("staging")
        .send()
        .await
        .unwrap();
    fixture.lock().unwrap().insert(
        d.api.clone(),
        ("eu-west-1", vec!["api"], "$request.header.X-Other"),
    );

    let want = [
        r#"mapping "(none)" stage differs: us-east-1 prod, eu-west-1 staging"#,
        r#"authorizer "internal" identity source differs: us-east-1 [$request.header.X-Key], eu-west-1 [$request.header.X-Other]"#,
        r#"authorizer "jwt" audience differs: us-east-1 [api, web], eu-west-1 [api]"#,
        r#"eu-west-1 lacks route "GET /learn-api/gcp-courses""#,
        r#"integration of route "GET /health" tls server name differs: us-east-1 backend.example.test, eu-west-1 backend.eu-west-1.example.test"#,
    ];
    let (code, out) = parity_command(&text).await;
    assert_eq!(code, 3, "{out}");
    let printed: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("  ")).collect();
    assert_eq!(printed, want, "{out}");
    assert!(
        out.starts_with("api.example.test A: 5 difference(s) between us-east-1, eu-west-1"),
        "{out}"
    );

    let daemon = start_daemon(&text).await;
    let report = parity_of(&daemon).await;
    assert_eq!(report.state, ParityState::Differs);
    let lines: Vec<&str> = report.differences.iter().map(|d| d.line.as_str()).collect();
    assert_eq!(lines, want);
    let page = daemon.metrics().await;
    for (kind, n) in [
        ("mapping", 1.0),
        ("authorizer", 2.0),
        ("route", 1.0),
        ("integration", 1.0),
    ] {
        assert_eq!(
            metric(
                &page,
                "route53_failover_parity_differences",
                &[&format!("kind=\"{kind}\"")]
            ),
            Some(n),
            "{kind}"
        );
    }
    promtool_check_metrics(&page);
    let table = tokio::process::Command::new(BIN)
        .args(["status", "--url", &daemon.base])
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&format!(
            "parity api.example.test A: 5 difference(s) between us-east-1, eu-west-1; {}",
            want[0]
        )),
        "{table}"
    );
    let html = daemon.get("/").await.text().await.unwrap();
    assert!(
        html.contains("eu-west-1 lacks route &quot;GET /learn-api/gcp-courses&quot;"),
        "{html}"
    );
    assert!(
        daemon.logs().contains("parity: the regions differ"),
        "each difference is logged"
    );
    daemon.stop().await;
}

/// The architecture this daemon is built for: the same HTTP API in each
/// region, integrating through a VPC link with its own region's ALB (the
/// listener's ARN names that region's load balancer and listener ids).
/// In sync, not 30 `uri differs` lines. Then, with GetAuthorizers failing
/// (moto's own 500, the stand-in gone), a route missing in one region is
/// still found: one failing listing costs only itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_regions_own_alb_behind_a_vpc_link_is_in_sync_and_a_failing_listing_costs_only_itself()
{
    use apigw::types::{ConnectionType, IntegrationType, ProtocolType};
    let moto = Moto::start().await;
    moto.create_zone("example.test").await;
    let proxy = FaultProxy::start(&moto.url).await;
    let fixture: Authorizers = Default::default();
    proxy.answer(authorizers_stand_in(fixture.clone()));
    let regions = ["us-east-1", "eu-west-1"];
    let mut apis = Vec::new();
    for (n, region) in regions.iter().enumerate() {
        let c = &apigw_client(&moto.url, region);
        let api = c
            .create_api()
            .name("learn")
            .protocol_type(ProtocolType::Http)
            .send()
            .await
            .unwrap()
            .api_id
            .unwrap();
        let link = c
            .create_vpc_link()
            .name("learn-link")
            .subnet_ids(format!("subnet-{n}a"))
            .security_group_ids(format!("sg-{n}"))
            .send()
            .await
            .unwrap()
            .vpc_link_id
            .unwrap();
        // Each region's own ALB: its load balancer and listener ids differ.
        let listener = format!(
            "arn:aws:elasticloadbalancing:{region}:123456789012:listener/app/learn-alb/{n}0dc6c495c0c918{n}/f2f7dc8efc522ab{n}"
        );
        let integration = c
            .create_integration()
            .api_id(&api)
            .integration_type(IntegrationType::HttpProxy)
            .integration_method("ANY")
            .connection_type(ConnectionType::VpcLink)
            .connection_id(&link)
            .integration_uri(listener)
            .payload_format_version("1.0")
            .send()
            .await
            .unwrap()
            .integration_id
            .unwrap();
        for key in ["ANY /{proxy+}", "GET /health"] {
            c.create_route()
                .api_id(&api)
                .route_key(key)
                .target(format!("integrations/{integration}"))
                .send()
                .await
                .unwrap();
        }
        c.create_stage()
            .api_id(&api)
            .stage_name("prod")
            .auto_deploy(true)
            .send()
            .await
            .unwrap();
        create_domain(
            &moto.url,
            region,
            "api.example.test",
            &format!("d-{api}.execute-api.{region}.amazonaws.com"),
        )
        .await;
        c.create_api_mapping()
            .domain_name("api.example.test")
            .api_id(&api)
            .stage("prod")
            .send()
            .await
            .unwrap();
        fixture
            .lock()
            .unwrap()
            .insert(api.clone(), (region, vec!["api"], "$request.header.X-Key"));
        apis.push(api);
    }
    let eps = Endpoints::start(&regions).await;
    let text = gateway_config(&proxy, &eps);
    assert_in_sync(&text).await;

    // GetAuthorizers now fails in both regions (moto answers 500), and
    // eu-west-1 lacks a route.
    proxy.answer(Arc::new(|_| None));
    let eu = apigw_client(&moto.url, "eu-west-1");
    let routes = eu.get_routes().api_id(&apis[1]).send().await.unwrap();
    let health = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("GET /health"))
        .and_then(|r| r.route_id())
        .unwrap()
        .to_string();
    eu.delete_route()
        .api_id(&apis[1])
        .route_id(health)
        .send()
        .await
        .unwrap();
    let (code, out) = parity_command(&text).await;
    assert_eq!(code, 3, "{out}");
    let printed: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("  ")).collect();
    assert_eq!(
        printed[0], r#"eu-west-1 lacks route "GET /health""#,
        "{out}"
    );
    assert_eq!(
        printed
            .iter()
            .filter(|l| l.contains("not read: GetAuthorizers"))
            .count(),
        2,
        "{out}"
    );
    assert_eq!(printed.len(), 3, "nothing else is counted: {out}");
}
