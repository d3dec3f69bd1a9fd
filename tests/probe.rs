//! Probes against real HTTP and HTTPS servers on loopback (and one through
//! the daemon, for what it shows of a certificate).

mod common;

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use route53_failover::config::{parse, ProbeSpec};
use route53_failover::probe::{FailureKind, Prober, TlsConfigs};

#[derive(Default)]
struct Seen {
    connections: usize,
    sni: Vec<Option<String>>,
    hosts: Vec<String>,
    auth: Vec<String>,
}

struct Server {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    cert_pem: String,
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    seen: Arc<Mutex<Seen>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    {
        let mut s = seen.lock().unwrap();
        s.hosts.push(
            req.headers()
                .get("host")
                .map(|h| h.to_str().unwrap().to_string())
                .unwrap_or_default(),
        );
        if let Some(a) = req.headers().get("authorization") {
            s.auth.push(a.to_str().unwrap().to_string());
        }
    }
    let resp = |code: u16, body: Vec<u8>| {
        Response::builder()
            .status(code)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    Ok(match req.uri().path() {
        "/health" => resp(200, b"ok".to_vec()),
        "/fail" => resp(503, b"ok but failing".to_vec()),
        "/big" => {
            let mut body = vec![b'a'; 70 * 1024];
            body.extend_from_slice(b"needle");
            resp(200, body)
        }
        "/redirect" => Response::builder()
            .status(302)
            .header("location", "/health")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        // A brownout: the right answer, too slowly.
        "/sluggish" => {
            tokio::time::sleep(Duration::from_millis(150)).await;
            resp(200, b"ok".to_vec())
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            resp(200, b"ok".to_vec())
        }
        _ => resp(404, Vec::new()),
    })
}

/// An HTTP (or HTTPS, for `api.example.test`) server on 127.0.0.1; it runs
/// until the test's runtime ends.
async fn server(tls: bool) -> Server {
    server_until(
        tls,
        time::OffsetDateTime::now_utc() + time::Duration::days(365),
    )
    .await
}

/// The same, its certificate valid until `not_after`.
async fn server_until(tls: bool, not_after: time::OffsetDateTime) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut params = rcgen::CertificateParams::new(vec!["api.example.test".to_string()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = not_after;
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key_pair).unwrap();
    let cert_pem = cert.pem();
    let acceptor = tls.then(|| {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            s.lock().unwrap().connections += 1;
            let seen = s.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let record = seen.clone();
                let svc = hyper::service::service_fn(move |req| handle(req, seen.clone()));
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(a) => {
                        let Ok(stream) = a.accept(tcp).await else {
                            return;
                        };
                        let sni = stream.get_ref().1.server_name().map(str::to_string);
                        record.lock().unwrap().sni.push(sni);
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    });
    Server {
        port,
        seen,
        cert_pem,
    }
}

fn spec(probe: &str, dir: &Path) -> ProbeSpec {
    let text = format!(
        "owner: t\nprovider: {{kind: memory, zones: [example.test]}}\ndefaults: {{health_check: {{enabled: false}}}}\nrecords:\n  - name: api.example.test\n    zone: example.test\n    regions:\n      - region: us-east-1\n        target: {{values: [192.0.2.1]}}\n        probe: {probe}\n      - {{region: eu-west-1, target: {{values: [192.0.2.2]}}, probe: {{url: \"http://x.example.test/\"}}}}\n"
    );
    let c = parse(&text, dir).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (*c.records[0].members[0].probe).clone()
}

fn prober(probe: &str, dir: &Path) -> Prober {
    Prober::new(
        Arc::new(spec(probe, dir)),
        &TlsConfigs::default(),
        &Default::default(),
    )
    .unwrap()
}

fn http(path: &str, port: u16, extra: &str) -> String {
    format!("{{url: \"http://api.example.test{path}\", connect_to: \"127.0.0.1:{port}\", interval: 2s, timeout: 500ms{extra}}}")
}

#[tokio::test]
async fn a_healthy_endpoint_passes_with_host_kept_and_a_fresh_connection_each_time() {
    let s = server(false).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "tok-123\n").unwrap();
    let p = prober(
        &http(
            "/health",
            s.port,
            ", headers: {Authorization: \"Bearer ${file:token}\"}, expect: {body_contains: ok}",
        ),
        dir.path(),
    );
    for _ in 0..3 {
        let r = p.probe().await;
        assert!(r.ok(), "{:?}", r.failure);
        assert_eq!(r.status, Some(200));
        assert!(r.timings.total >= r.timings.first_byte && r.timings.first_byte > Duration::ZERO);
    }
    let seen = s.seen.lock().unwrap();
    assert_eq!(seen.connections, 3, "one new connection per probe");
    assert_eq!(
        seen.hosts,
        vec!["api.example.test"; 3],
        "the URL's host is the Host header, not connect_to"
    );
    assert_eq!(seen.auth, vec!["Bearer tok-123"; 3]);
}

#[tokio::test]
async fn failures_are_classified() {
    let s = server(false).await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            http("/fail", s.port, ""),
            FailureKind::Status,
            "answered 503, expected 2xx",
        ),
        (
            http("/health", s.port, ", expect: {status: [204]}"),
            FailureKind::Status,
            "answered 200, expected 204",
        ),
        (
            http("/health", s.port, ", expect: {body_contains: healthy}"),
            FailureKind::Body,
            "does not contain \"healthy\"",
        ),
        // The body cap: the needle sits past 64 KiB.
        (
            http("/big", s.port, ", expect: {body_contains: needle}"),
            FailureKind::Body,
            "first 64 KiB",
        ),
        // Redirects are not followed unless asked.
        (
            http("/redirect", s.port, ""),
            FailureKind::Status,
            "answered 302",
        ),
    ];
    for (probe, kind, detail) in cases {
        let r = prober(&probe, dir.path()).probe().await;
        let f = r.failure.unwrap_or_else(|| panic!("{probe} passed"));
        assert_eq!(f.kind, kind, "{probe}: {f}");
        assert!(f.detail.contains(detail), "{probe}: {f}");
    }
    let r = prober(
        &http("/redirect", s.port, ", follow_redirects: true"),
        dir.path(),
    )
    .probe()
    .await;
    assert!(
        r.ok(),
        "a redirect to /health is followed when asked: {:?}",
        r.failure
    );
}

#[tokio::test]
async fn a_good_answer_slower_than_max_latency_fails_as_slow() {
    let s = server(false).await;
    let dir = tempfile::tempdir().unwrap();
    let slow = prober(
        &http("/sluggish", s.port, ", expect: {max_latency: 50ms}"),
        dir.path(),
    )
    .probe()
    .await;
    assert_eq!(slow.status, Some(200), "the answer itself was good");
    let f = slow.failure.expect("over max_latency is a failure");
    assert_eq!(f.kind, FailureKind::Slow);
    assert_eq!(f.kind.as_str(), "slow");
    assert!(f.detail.contains("over max_latency 50ms"), "{f}");
    let fast = prober(
        &http("/health", s.port, ", expect: {max_latency: 400ms}"),
        dir.path(),
    )
    .probe()
    .await;
    assert!(fast.ok(), "{:?}", fast.failure);
    // A status failure stays a status failure, however slow.
    let failing = prober(
        &http("/fail", s.port, ", expect: {max_latency: 1ms}"),
        dir.path(),
    )
    .probe()
    .await;
    assert_eq!(failing.failure.unwrap().kind, FailureKind::Status);
}

#[tokio::test]
async fn a_hanging_endpoint_times_out_within_the_timeout() {
    let s = server(false).await;
    let dir = tempfile::tempdir().unwrap();
    let p = prober(&http("/slow", s.port, ""), dir.path());
    let start = Instant::now();
    let r = p.probe().await;
    let took = start.elapsed();
    let f = r.failure.unwrap();
    assert_eq!(f.kind, FailureKind::Timeout);
    assert_eq!(
        f.detail,
        "no answer within 500ms while waiting for the response"
    );
    assert!(
        took < Duration::from_secs(2),
        "bounded by the timeout: {took:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    let (_refusing, closed) = common::refusing_port();
    let dir = tempfile::tempdir().unwrap();
    let r = prober(&http("/health", closed.port(), ""), dir.path())
        .probe()
        .await;
    assert_eq!(r.failure.unwrap().kind, FailureKind::Connect);
    // A name in connect_to is resolved on each probe (localhost: /etc/hosts).
    let s = server(false).await;
    let probe = format!(
        "{{url: \"http://api.example.test/health\", connect_to: \"localhost:{}\"}}",
        s.port
    );
    let r = prober(&probe, dir.path()).probe().await;
    assert!(r.ok(), "{:?}", r.failure);
}

#[tokio::test]
async fn https_sends_the_url_host_as_sni_and_verifies_against_the_ca_file() {
    let s = server(true).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &s.cert_pem).unwrap();
    let url = |tls: &str| {
        format!("{{url: \"https://api.example.test/health\", connect_to: \"127.0.0.1:{}\", timeout: 500ms{tls}}}", s.port)
    };
    let r = prober(&url(", tls: {ca_file: ca.pem}"), dir.path())
        .probe()
        .await;
    assert!(r.ok(), "{:?}", r.failure);
    assert!(r.timings.tls > Duration::ZERO);
    {
        let seen = s.seen.lock().unwrap();
        assert_eq!(
            seen.sni,
            vec![Some("api.example.test".to_string())],
            "SNI is the URL's host, not connect_to"
        );
        assert_eq!(seen.hosts, vec!["api.example.test"]);
    }

    // An unknown issuer fails the TLS phase.
    let r = prober(&url(""), dir.path()).probe().await;
    let f = r.failure.unwrap();
    assert_eq!(f.kind, FailureKind::Tls, "{f}");
    // insecure_skip_verify passes anyway (the config warns about it).
    let r = prober(&url(", tls: {insecure_skip_verify: true}"), dir.path())
        .probe()
        .await;
    assert!(r.ok(), "{:?}", r.failure);
}

#[tokio::test]
async fn probe_via_connects_to_a_discovered_endpoint_and_keeps_the_host() {
    let s = server(false).await;
    let dir = tempfile::tempdir().unwrap();
    let probe = format!("{{url: \"http://api.example.test:{}/health\"}}", s.port);
    let r = prober(&probe, dir.path())
        .probe_via(Some("localhost"))
        .await;
    assert!(r.ok(), "{:?}", r.failure);
    assert!(r.timings.dns > Duration::ZERO || r.timings.connect > Duration::ZERO);
    assert_eq!(
        s.seen.lock().unwrap().hosts,
        vec![format!("api.example.test:{}", s.port)]
    );
}

#[tokio::test]
async fn an_https_probe_records_when_the_leaf_certificate_expires() {
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let s = server_until(true, expires).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &s.cert_pem).unwrap();
    let probe = format!("{{url: \"https://api.example.test/health\", connect_to: \"127.0.0.1:{}\", timeout: 500ms, tls: {{ca_file: ca.pem}}}}", s.port);
    let r = prober(&probe, dir.path()).probe().await;
    assert!(r.ok(), "{:?}", r.failure);
    let got = r
        .cert_not_after
        .expect("the leaf's notAfter")
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(got, expires.unix_timestamp(), "to the second");

    // Failing the status check still tells when the certificate expires.
    let failing = probe.replace("/health", "/fail");
    let r = prober(&failing, dir.path()).probe().await;
    assert!(!r.ok());
    assert!(r.cert_not_after.is_some());

    // Plain HTTP has none.
    let plain = server(false).await;
    let r = prober(&http("/health", plain.port, ""), dir.path())
        .probe()
        .await;
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.cert_not_after, None);
}

/// A daemon config for `api.example.test`: us-east-1 probed over HTTPS at
/// `https` (trusting `ca`), eu-west-1 over HTTP at `plain`, min_healthy 2;
/// `top` is the rest of the top level (the provider, `ha`).
fn https_and_plain(top: &str, https: &Server, ca: &Path, plain: &str) -> String {
    format!(
        r#"owner: e2e
listen: 127.0.0.1:0
{top}
defaults:
  probe: {{interval: 200ms, timeout: 150ms, rise: 2, fall: 3}}
  policy: {{min_healthy: 2}}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - region: us-east-1
        target: {{values: [192.0.2.1]}}
        probe: {{url: "https://api.example.test/health", connect_to: "127.0.0.1:{port}", tls: {{ca_file: "{ca}"}}}}
      - region: eu-west-1
        target: {{values: [192.0.2.2]}}
        probe: {{url: "http://api.example.test/health", connect_to: "{plain}"}}
"#,
        port = https.port,
        ca = ca.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_shows_days_left_on_a_members_certificate() {
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let https = server_until(true, expires).await;
    let plain = server(false).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &https.cert_pem).unwrap();
    let config = https_and_plain(
        "provider: {kind: memory, zones: [example.test]}",
        &https,
        &ca,
        &format!("127.0.0.1:{}", plain.port),
    );
    let daemon = common::start_daemon(&config).await;
    common::wait_until(
        "an HTTPS probe has run",
        Duration::from_secs(20),
        || async { daemon.member("us-east-1").await.cert_not_after.is_some() },
    )
    .await;
    let status = daemon.status().await;
    let use1 = status.member("us-east-1").unwrap();
    assert_eq!(use1.cert_days_left(status.now), Some(10));
    assert_eq!(status.member("eu-west-1").unwrap().cert_not_after, None);
    let page = daemon.metrics().await;
    assert_eq!(
        common::metric(
            &page,
            "route53_failover_tls_certificate_expiry_timestamp_seconds",
            &["region=\"us-east-1\""]
        ),
        Some(expires.unix_timestamp() as f64)
    );
    assert_eq!(
        common::metric(
            &page,
            "route53_failover_tls_certificate_expiry_timestamp_seconds",
            &["region=\"eu-west-1\""]
        ),
        None,
        "no series for a plain HTTP member"
    );
    common::promtool_check_metrics(&page);
    let table = status.table();
    let row = table
        .lines()
        .find(|l| l.contains("us-east-1"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(table.contains("CERT") && row.contains(" 10d "), "{table}");
    let html = daemon.get("/").await.text().await.unwrap();
    assert!(
        html.contains("<td class=cert><span class=warn>10 days left</span></td>"),
        "under 14 days is a warning: {html}"
    );
    daemon.stop().await;
}

/// The chart's Grafana dashboard queries only metrics a running daemon
/// serves: one with `ha` (the lease holder), an HTTPS member (its
/// certificate) and a member that fails once published, kept by
/// `min_healthy` (a blocked withdrawal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_queries_only_metrics_the_daemon_serves() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/route53-failover/dashboards/route53-failover.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("a PromQL expr").to_string());
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            exprs.push(q.to_string());
        }
    }
    let mut names: Vec<String> = exprs
        .iter()
        .flat_map(|e| {
            e.match_indices("route53_failover_").map(move |(i, _)| {
                e[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
        })
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 9, "{names:?}");

    let https = server(true).await;
    let eps = common::Endpoints::start(&["eu-west-1"]).await;
    let store = common::start_store(&["example.test"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &https.cert_pem).unwrap();
    let top = format!(
        "provider: {{kind: memory, endpoint_url: \"{}\", max_requests_per_second: 50}}\nha: {{enabled: true, identity: a}}",
        store.url
    );
    let config = https_and_plain(&top, &https, &ca, &eps.list[0].addr.to_string());
    let daemon = common::start_daemon(&config).await;
    common::wait_until(
        "eu-west-1 is published",
        Duration::from_secs(20),
        || async { daemon.member("eu-west-1").await.published },
    )
    .await;
    // It fails; min_healthy keeps it published: a blocked withdrawal.
    eps.set("eu-west-1", route53_failover::demo::Mode::Fail);
    let missing = |page: &str| -> Vec<String> {
        names
            .iter()
            .filter(|n| {
                !page
                    .lines()
                    .any(|l| l.starts_with(&format!("{n}{{")) || l.starts_with(&format!("{n} ")))
            })
            .cloned()
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut left = missing(&daemon.metrics().await);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = missing(&daemon.metrics().await);
    }
    assert_eq!(left, Vec::<String>::new(), "{}", daemon.logs());
    daemon.stop().await;
}
