//! Probes through a JWT authorizer: a loopback OAuth2 token endpoint issues
//! short-lived tokens and a loopback API accepts only live ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use route53_failover::config::parse;
use route53_failover::probe::auth::TokenSources;
use route53_failover::probe::{FailureKind, Prober, TlsConfigs};

mod common;

#[derive(Default)]
struct Issuer {
    issued: AtomicU64,
    fail: AtomicBool,
    lifetime_s: AtomicU64,
    /// token → expiry
    live: Mutex<HashMap<String, Instant>>,
    api_hits: AtomicU64,
}

async fn token(
    State(i): State<Arc<Issuer>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, String) {
    // failover-probe:s3cret, HTTP Basic.
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok());
    if i.fail.load(Ordering::SeqCst) || basic != Some("Basic ZmFpbG92ZXItcHJvYmU6czNjcmV0") {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_client","error_description":"s3cret is wrong"}"#.into(),
        );
    }
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(
        form.get("audience").map(String::as_str),
        Some("https://api.example.test")
    );
    let n = i.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let lifetime = i.lifetime_s.load(Ordering::SeqCst);
    let tok = format!("tok-{n}");
    i.live
        .lock()
        .unwrap()
        .insert(tok.clone(), Instant::now() + Duration::from_secs(lifetime));
    (
        StatusCode::OK,
        format!(r#"{{"access_token":"{tok}","token_type":"Bearer","expires_in":{lifetime}}}"#),
    )
}

async fn api(State(i): State<Arc<Issuer>>, headers: HeaderMap) -> (StatusCode, &'static str) {
    i.api_hits.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let live = bearer
        .and_then(|t| i.live.lock().unwrap().get(t).copied())
        .is_some_and(|exp| exp > Instant::now());
    if live {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::UNAUTHORIZED, "expired or missing token")
    }
}

async fn start(lifetime_s: u64) -> (Arc<Issuer>, u16) {
    let issuer = Arc::new(Issuer {
        lifetime_s: AtomicU64::new(lifetime_s),
        ..Default::default()
    });
    let app = Router::new()
        .route("/oauth2/token", post(token))
        .route("/health", get(api))
        .with_state(issuer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (issuer, port)
}

fn probers(port: u16, dir: &std::path::Path, n: usize) -> Vec<Prober> {
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
    let text = format!(
        "owner: t\nprovider: {{kind: memory, zones: [example.test]}}\nrecords:\n  - name: api.example.test\n    zone: example.test\n    probe:\n      url: \"http://api.example.test/health\"\n      connect_to: \"127.0.0.1:{port}\"\n      timeout: 500ms\n      auth:\n        oauth2_client_credentials:\n          token_url: \"http://127.0.0.1:{port}/oauth2/token\"\n          client_id: failover-probe\n          client_secret_file: secret\n          audience: https://api.example.test\n    health_check: {{enabled: false}}\n    regions:\n      - {{region: us-east-1, target: {{values: [192.0.2.1]}}}}\n      - {{region: eu-west-1, target: {{values: [192.0.2.2]}}}}\n"
    );
    let c = parse(&text, dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "the config holds where the secret is, not the secret"
    );
    let tls = TlsConfigs::default();
    let tokens = TokenSources::default();
    (0..n)
        .map(|i| Prober::new(c.records[0].members[i % 2].probe.clone(), &tls, &tokens).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_carry_a_token_that_members_with_the_same_settings_share() {
    let (issuer, port) = start(3600).await;
    let dir = tempfile::tempdir().unwrap();
    let ps = probers(port, dir.path(), 2);
    for _ in 0..3 {
        for p in &ps {
            let r = p.probe().await;
            assert!(r.ok(), "{:?}", r.failure);
        }
    }
    assert_eq!(
        issuer.issued.load(Ordering::SeqCst),
        1,
        "one token for both members, reused"
    );
    assert_eq!(issuer.api_hits.load(Ordering::SeqCst), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_replaced_and_an_aging_one_refreshed_in_the_background() {
    // A 3 s token is usable for 2 s (a 1 s margin); the next probe after
    // that fetches a new one first.
    let (issuer, port) = start(3).await;
    let dir = tempfile::tempdir().unwrap();
    let p = &probers(port, dir.path(), 1)[0];
    assert!(p.probe().await.ok());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = p.probe().await;
    assert!(
        r.ok(),
        "an expired token is replaced before probing: {:?}",
        r.failure
    );
    assert_eq!(issuer.issued.load(Ordering::SeqCst), 2);

    // A 12 s token turns stale after 9 s (75% of its life) and stays usable
    // until 10.8 s: a probe at 9.3 s uses it and starts a background refresh.
    issuer.lifetime_s.store(12, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(p.probe().await.ok());
    assert_eq!(issuer.issued.load(Ordering::SeqCst), 3);
    tokio::time::sleep(Duration::from_millis(9300)).await;
    let started = Instant::now();
    assert!(
        p.probe().await.ok(),
        "the aging token still serves this probe"
    );
    assert!(started.elapsed() < Duration::from_millis(400));
    for _ in 0..40 {
        if issuer.issued.load(Ordering::SeqCst) == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        issuer.issued.load(Ordering::SeqCst),
        4,
        "refreshed in the background"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_endpoint_fails_the_probe_with_reason_auth() {
    let (issuer, port) = start(3600).await;
    issuer.fail.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let p = &probers(port, dir.path(), 1)[0];
    let r = p.probe().await;
    assert!(!r.observes(), "a probe without its token observes nothing");
    let f = r.failure.expect("no token, no probe");
    assert_eq!(f.kind, FailureKind::Auth);
    assert_eq!(f.detail, "token endpoint answered 401 invalid_client");
    assert!(!f.detail.contains("s3cret"));
    assert_eq!(
        issuer.api_hits.load(Ordering::SeqCst),
        0,
        "the API is not called without a token"
    );
    issuer.fail.store(false, Ordering::SeqCst);
    assert!(p.probe().await.ok(), "recovers once the endpoint answers");
}

/// A daemon over three regions whose probes all go to `api_port` with
/// `probe_extra` (auth or headers), on a strict store.
fn daemon_config(store: &common::Store, api_port: u16, probe_extra: &str) -> String {
    let mut members = String::new();
    for (i, region) in ["us-east-1", "eu-west-1", "ap-southeast-2"]
        .iter()
        .enumerate()
    {
        members.push_str(&format!(
            "      - {{region: {region}, set_identifier: {id}, target: {{values: [192.0.2.{n}]}}}}\n",
            id = common::set_id(region),
            n = i + 1
        ));
    }
    format!(
        r#"owner: e2e
listen: 127.0.0.1:0
provider: {{kind: memory, endpoint_url: "{url}", max_requests_per_second: 50}}
records:
  - name: api.example.test
    zone: example.test
    health_check: {{enabled: false}}
    probe:
      url: "http://api.example.test/health"
      connect_to: "127.0.0.1:{api_port}"
      interval: 200ms
      timeout: 150ms
      rise: 2
      fall: 3
{probe_extra}
    regions:
{members}"#,
        url = store.url
    )
}

/// Polls the store every 10 ms for `how_long`: the fewest members it held.
async fn fewest_members(store: &common::Store, how_long: Duration) -> usize {
    let until = Instant::now() + how_long;
    let mut fewest = usize::MAX;
    while Instant::now() < until {
        fewest = fewest.min(store.member_ids("example.test", "api.example.test").len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fewest
}

/// An identity provider outage is no observation of the regions: every
/// probe fails for want of a token, and nothing is withdrawn; status names
/// the failing token source. (Before: `auth` failures withdrew healthy
/// regions one after another until `last_member` held.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_provider_outage_withdraws_nothing_and_status_says_why() {
    // Tokens live 2 s (usable for 1 s): the outage outlasts them at once.
    let (issuer, port) = start(2).await;
    let store = common::start_store(&["example.test"]).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let auth = format!(
        "      auth:\n        oauth2_client_credentials:\n          token_url: \"http://127.0.0.1:{port}/oauth2/token\"\n          client_id: failover-probe\n          client_secret_file: {}\n          audience: https://api.example.test",
        secret.display()
    );
    let daemon = common::start_daemon(&daemon_config(&store, port, &auth)).await;
    common::wait_until(
        "three members published",
        Duration::from_secs(15),
        || async { store.member_ids("example.test", "api.example.test").len() == 3 },
    )
    .await;
    issuer.fail.store(true, Ordering::SeqCst);
    let fewest = fewest_members(&store, Duration::from_secs(4)).await;
    assert_eq!(
        fewest,
        3,
        "an identity provider outage pulled a region: {}",
        daemon.logs()
    );
    let status = daemon.status().await;
    let token = &status.probe_tokens[0];
    assert!(!token.ok, "{token:?}");
    assert!(token.error.as_deref().unwrap().contains("401"), "{token:?}");
    for m in &status.records[0].members {
        assert_eq!(m.verdict, "healthy", "the verdict stays: {m:?}");
        let why = m.not_observed.as_deref().unwrap_or_default();
        assert!(why.starts_with("auth: "), "{m:?}");
        assert!(!why.contains("s3cret"));
    }
    issuer.fail.store(false, Ordering::SeqCst);
    common::wait_until(
        "the token source recovers",
        Duration::from_secs(5),
        || async {
            let s = daemon.status().await;
            s.probe_tokens[0].ok
                && s.records[0]
                    .members
                    .iter()
                    .all(|m| m.not_observed.is_none())
        },
    )
    .await;
    daemon.stop().await;
}

/// The API's key is rotated with the mounted Secret the probe header reads
/// (`${file:...}`): the probes follow the file, no failure adds up to a
/// verdict, nothing is withdrawn. (Before: the header was read once at
/// start, every probe answered 401 after the rotation.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_header_secret_is_followed_and_withdraws_nothing() {
    let key = Arc::new(Mutex::new("key-one".to_string()));
    let expected = key.clone();
    let app = Router::new().route(
        "/health",
        get(move |headers: HeaderMap| {
            let expected = expected.clone();
            async move {
                let given = headers.get("x-api-key").and_then(|v| v.to_str().ok());
                if given == Some(expected.lock().unwrap().as_str()) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::UNAUTHORIZED, "bad key")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let store = common::start_store(&["example.test"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-key");
    std::fs::write(&file, "key-one\n").unwrap();
    let headers = format!(
        "      headers: {{X-Api-Key: \"${{file:{}}}\"}}",
        file.display()
    );
    let daemon = common::start_daemon(&daemon_config(&store, port, &headers)).await;
    common::wait_until(
        "three members published",
        Duration::from_secs(15),
        || async { store.member_ids("example.test", "api.example.test").len() == 3 },
    )
    .await;
    // The Secret is swapped (a new file renamed over the old, as the
    // kubelet does) and the API takes the new key at the same moment.
    let next = dir.path().join("api-key.next");
    std::fs::write(&next, "key-two\n").unwrap();
    std::fs::rename(&next, &file).unwrap();
    *key.lock().unwrap() = "key-two".to_string();
    let fewest = fewest_members(&store, Duration::from_secs(3)).await;
    assert_eq!(
        fewest,
        3,
        "a rotated secret pulled a region: {}",
        daemon.logs()
    );
    let status = daemon.status().await;
    for m in &status.records[0].members {
        assert_eq!(m.verdict, "healthy", "{m:?}");
        assert!(
            m.consecutive_successes >= 3,
            "the probes pass with the new key: {m:?}"
        );
    }
    assert!(!daemon.logs().contains("key-two") && !daemon.logs().contains("key-one"));
    daemon.stop().await;
}
