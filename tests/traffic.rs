//! Traffic confirmation end to end, through the built binary against
//! moto's server: Route53 for the records, apigatewayv2 for the custom
//! domain and its API mapping (how the daemon finds the API and stage of
//! a member), and CloudWatch, into which the test puts the request count
//! API Gateway would emit (`AWS/ApiGateway` `Count` by `ApiId` and
//! `Stage`). The daemon's period is one second here (API Gateway publishes
//! per minute; the config allows shorter for an emulator), and the
//! record's TTL 2 s, so "within 5 TTLs" is 10 s.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatch as cw;
use common::*;
use route53_failover::demo::Mode;

const LIMIT: Duration = Duration::from_secs(40);
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

fn cloudwatch(url: &str, region: &str) -> cw::Client {
    let conf = cw::config::Config::builder()
        .behavior_version(cw::config::BehaviorVersion::latest())
        .region(cw::config::Region::new(region.to_string()))
        .credentials_provider(cw::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(url)
        .build();
    cw::Client::from_conf(conf)
}

/// Puts `count` requests of `api` at `at` (one datapoint).
async fn put_count(client: &cw::Client, api: &str, at: SystemTime, count: f64) {
    use cw::types::{Dimension, MetricDatum};
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    client
        .put_metric_data()
        .namespace("AWS/ApiGateway")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Count")
                .dimensions(Dimension::builder().name("ApiId").value(api).build())
                .dimensions(Dimension::builder().name("Stage").value("$default").build())
                .timestamp(cw::primitives::DateTime::from_secs(secs))
                .value(count)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

struct Setup {
    moto: Moto,
    zone: String,
    eps: Endpoints,
    /// eu-west-1's API id.
    api: String,
    /// Requests per second eu-west-1's API serves, as the feeder puts them.
    rate: Arc<AtomicU64>,
    _feeder: tokio_util::sync::DropGuard,
}

impl Setup {
    /// A custom domain in each region, each mapped to its region's HTTP
    /// API, the last 10 s of eu-west-1's requests at 100/s, and a feeder
    /// that puts each next second at `rate`.
    async fn new() -> Setup {
        let moto = Moto::start().await;
        let zone = moto.create_zone("example.test").await;
        let mut api = String::new();
        for region in REGIONS {
            create_domain(
                &moto.url,
                region,
                "api.example.test",
                &format!("d-{region}.execute-api.{region}.amazonaws.com"),
            )
            .await;
            let c = apigw_client(&moto.url, region);
            let id = c
                .create_api()
                .name("api")
                .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
                .send()
                .await
                .unwrap()
                .api_id
                .unwrap();
            c.create_api_mapping()
                .domain_name("api.example.test")
                .api_id(&id)
                .stage("$default")
                .send()
                .await
                .unwrap();
            api = id;
        }
        let cw = cloudwatch(&moto.url, "eu-west-1");
        let now = SystemTime::now();
        for back in 1..=10 {
            put_count(&cw, &api, now - Duration::from_secs(back), 100.0).await;
        }
        let rate = Arc::new(AtomicU64::new(100));
        let stop = tokio_util::sync::CancellationToken::new();
        let (r, s, a) = (rate.clone(), stop.clone(), api.clone());
        // One datapoint per second, each second once: the count of that
        // second, as API Gateway would publish each period's.
        let mut next = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = s.cancelled() => return,
                }
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                while next <= now {
                    let n = r.load(Ordering::Relaxed) as f64;
                    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(next);
                    put_count(&cw, &a, at, n).await;
                    next += 1;
                }
            }
        });
        Setup {
            moto,
            zone,
            eps: Endpoints::start(&REGIONS).await,
            api,
            rate,
            _feeder: stop.drop_guard(),
        }
    }

    fn config(&self) -> String {
        let provider = format!(
            "{{kind: route53, endpoint_url: \"{}\", max_requests_per_second: 20}}",
            self.moto.url
        );
        let mut text = config_with_provider(&provider, &self.eps, 1, "5m");
        for (i, _) in self.eps.list.iter().enumerate() {
            text = text.replace(
                &format!("target: {{values: [192.0.2.{}]}}", i + 1),
                "target: {api_gateway_domain: api.example.test}",
            );
        }
        text = text.replace(
            "    zone: example.test\n",
            "    zone: example.test\n    ttl: 2\n",
        );
        text + "traffic: {period: 1s, within_ttls: 5}\n"
    }

    async fn published(&self) -> Vec<String> {
        let client = aws_sdk_route53::Client::from_conf(self.moto.conf());
        let out = client
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone)
            .send()
            .await
            .unwrap();
        out.resource_record_sets()
            .iter()
            .filter(|r| r.name() == "api.example.test.")
            .filter_map(|r| r.set_identifier().map(String::from))
            .collect()
    }
}

async fn traffic(
    daemon: &Daemon,
    region: &str,
) -> Option<route53_failover::controller::TrafficStatus> {
    daemon.member(region).await.traffic
}

/// eu-west-1 fails and is withdrawn; its request count, 100/s before,
/// falls to 5/s three seconds later: status, the timeline and the metric
/// say the traffic fell by 90 %, and how long after the withdrawal. The
/// daemon found the API and stage through the domain's API mapping, and
/// read CloudWatch at most once per second, only for eu-west-1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_followed_by_a_fall_says_when_traffic_left() {
    let s = Setup::new().await;
    let daemon = start_daemon(&s.config()).await;
    wait_until("both published", LIMIT, || async {
        s.published().await.len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = daemon.metrics().await;
    assert_eq!(
        metric(&page, "route53_failover_cloudwatch_requests_total", &[]),
        None,
        "no CloudWatch call while nothing is withdrawn"
    );
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        s.published().await == vec![set_id("us-east-1")]
    })
    .await;
    let withdrawn = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.rate.store(5, Ordering::Relaxed);
    wait_until("the fall is reported", LIMIT, || async {
        traffic(&daemon, "eu-west-1")
            .await
            .is_some_and(|t| t.state == "fell")
    })
    .await;
    let elapsed = withdrawn.elapsed().as_secs_f64();
    let t = traffic(&daemon, "eu-west-1").await.unwrap();
    let after = t.after_s.unwrap();
    eprintln!(
        "{} (reported {elapsed:.1} s after the withdrawal)",
        t.text()
    );
    assert!((3.0..=7.0).contains(&after), "{after}");
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_traffic_fell_seconds",
            &["region=\"eu-west-1\""]
        ),
        Some(after)
    );
    let calls = metric(
        &page,
        "route53_failover_cloudwatch_requests_total",
        &["region=\"eu-west-1\"", "outcome=\"ok\""],
    )
    .unwrap();
    eprintln!("GetMetricData calls: {calls} in {elapsed:.1} s");
    assert!(calls <= elapsed + 2.0, "{calls} calls in {elapsed:.1} s");
    assert_eq!(
        metric(
            &page,
            "route53_failover_cloudwatch_requests_total",
            &["region=\"us-east-1\""]
        ),
        None
    );
    let events = daemon.get("/events").await.text().await.unwrap();
    assert!(events.contains("traffic fell 90 %"), "{events}");
    // Measured: no more calls.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = metric(
        &daemon.metrics().await,
        "route53_failover_cloudwatch_requests_total",
        &["region=\"eu-west-1\"", "outcome=\"ok\""],
    );
    assert_eq!(later, Some(calls), "calls after the result");
    let _ = &s.api;
    daemon.stop().await;
}

/// eu-west-1 is withdrawn but its traffic stays (clients with a pinned
/// resolver, a hard-coded endpoint): after 5 TTLs, status, the timeline
/// and the alert's metric say clients are not leaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_that_does_not_fall_within_the_bound_is_reported_not_leaving() {
    let s = Setup::new().await;
    let daemon = start_daemon(&s.config()).await;
    wait_until("both published, as the daemon knows", LIMIT, || async {
        s.published().await.len() == 2
            && daemon.status().await.records[0]
                .members
                .iter()
                .all(|m| m.published)
    })
    .await;
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        s.published().await == vec![set_id("us-east-1")]
    })
    .await;
    wait_until("clients are reported not leaving", LIMIT, || async {
        traffic(&daemon, "eu-west-1")
            .await
            .is_some_and(|t| t.state == "not_leaving")
    })
    .await;
    let t = traffic(&daemon, "eu-west-1").await.unwrap();
    assert_eq!(t.after_s, Some(10.0), "5 TTLs of 2 s");
    eprintln!("{}", t.text());
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_traffic_not_leaving",
            &["region=\"eu-west-1\""]
        ),
        Some(1.0)
    );
    let events = daemon.get("/events").await.text().await.unwrap();
    assert!(events.contains("clients are not leaving"), "{events}");
    daemon.stop().await;
}

/// A practice run of eu-west-1, started by hand: its withdrawal's traffic
/// falls, and the run's history says so (`practice list`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_runs_history_says_whether_its_traffic_left() {
    let s = Setup::new().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-traffic-admin-token-99ab").unwrap();
    // Outside every window: only the run started by hand.
    let config = s.config().replace(
        "defaults:\n",
        "defaults:\n  practice: {duration: 60s, windows: [\"Mon 00:00-00:01\"]}\n",
    ) + &format!(
        "admin: {{token_file: \"{}\"}}\nstate_store: {{kind: memory}}\n",
        token.display()
    );
    let daemon = start_daemon(&config).await;
    wait_until("both published and healthy", LIMIT, || async {
        s.published().await.len() == 2
            && daemon.status().await.records[0]
                .members
                .iter()
                .all(|m| m.published && m.agreed == "healthy")
    })
    .await;
    let out = tokio::process::Command::new(BIN)
        .args([
            "practice",
            "start",
            "--url",
            &daemon.base,
            "--record",
            "api.example.test",
        ])
        .args(["--region", "eu-west-1", "--by", "alice", "--token-file"])
        .arg(&token)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("eu-west-1 is withdrawn for its practice", LIMIT, || async {
        s.published().await == vec![set_id("us-east-1")]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.rate.store(0, Ordering::Relaxed);
    wait_until("the run's history has its traffic", LIMIT, || async {
        daemon.status().await.records[0]
            .practice
            .as_ref()
            .and_then(|p| {
                p.last
                    .iter()
                    .find(|r| r.region == "eu-west-1")?
                    .traffic
                    .clone()
            })
            .is_some_and(|t| t.contains("traffic fell 90 %"))
    })
    .await;
    let listed = tokio::process::Command::new(BIN)
        .args(["practice", "list", "--url", &daemon.base])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    eprintln!("{listed}");
    assert!(listed.contains("traffic fell 90 %"), "{listed}");
    daemon.stop().await;
}
