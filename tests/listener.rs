//! The listen port under abuse cannot hurt the prober: idle connections
//! and slowloris clients, with the daemon limited to 1,024 descriptors (as
//! a container often is), change no verdict and pull no region, and the
//! daemon's descriptors come back to what they were.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";

/// Raises this test process's own descriptor limit: it opens thousands of
/// client sockets.
fn raise_own_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        assert!(
            lim.rlim_max >= want,
            "this test needs {want} descriptors; the hard limit is {}",
            lim.rlim_max
        );
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

/// Opens up to `n` connections to `addr`, each given 1 s to connect (past
/// what the daemon accepts, the kernel's backlog fills and connects wait).
async fn connect_many(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::new();
    for i in 0..n {
        let addr = addr.to_string();
        set.spawn(async move {
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr))
                .await
                .ok()
                .and_then(Result::ok)
        });
        // At most 200 connects in flight.
        if i % 200 == 199 {
            while let Some(r) = set.join_next().await {
                out.extend(r.unwrap());
            }
        }
    }
    while let Some(r) = set.join_next().await {
        out.extend(r.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_clients_change_no_verdict_and_hold_no_descriptors() {
    raise_own_limit(4096);
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    // The kubelet's probes on a port of their own, the OS's choice, which
    // the daemon logs.
    let text = config(&store, &eps, 1, "5m").replace(
        "listen: 127.0.0.1:0\n",
        "listen: 127.0.0.1:0\nhealth_listen: 127.0.0.1:0\n",
    );
    let daemon = start_daemon_with(&text, Some(1024)).await;
    wait_until(
        "the daemon logs its health address",
        Duration::from_secs(20),
        || async { daemon.logs().contains("health probes listening") },
    )
    .await;
    let health = daemon
        .logs()
        .lines()
        .find_map(|l| {
            let (_, after) = l.split_once("health probes listening address=")?;
            after.split_whitespace().next().map(String::from)
        })
        .unwrap();
    let health = health.as_str();
    let probe = |path: &'static str| async move {
        let started = Instant::now();
        let answer = reqwest::Client::new()
            .get(format!("http://{health}{path}"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        (answer.map(|r| r.status().as_u16()).ok(), started.elapsed())
    };
    assert_eq!(probe("/healthz").await.0, Some(200));
    wait_until("all three published", Duration::from_secs(15), || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    wait_until("all three healthy", Duration::from_secs(15), || async {
        daemon.status().await.records[0]
            .members
            .iter()
            .all(|m| m.verdict == "healthy")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = daemon.open_descriptors();
    let page = daemon.metrics().await;
    let cap = metric(&page, "route53_failover_http_connections_max", &[]).unwrap() as usize;
    assert!(cap < 1024 - 128, "the cap leaves the probes room: {cap}");
    let changes_before =
        metric(&page, "route53_failover_verdict_changes_total", &[]).unwrap_or(0.0);
    let addr = daemon.base.trim_start_matches("http://").to_string();
    // One idle client before the flood, accepted at once: the daemon must
    // close it once it has held it past the header timeout.
    let mut early = TcpStream::connect(&addr).await.unwrap();
    let connected = Instant::now();
    let closed = tokio::spawn(async move {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncReadExt::read(&mut early, &mut buf),
        )
        .await;
        (read.map(|r| r.map(|n| n == 0)), connected.elapsed())
    });

    // 2,000 clients connect and say nothing; 300 start a request and send
    // one byte a second, never finishing its headers.
    let idle = connect_many(&addr, 2000).await;
    let slow = connect_many(&addr, 300).await;
    let accepted = idle.len() + slow.len();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut dribblers = tokio::task::JoinSet::new();
    for mut s in slow {
        let stop = stop.clone();
        dribblers.spawn(async move {
            if s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nX-")
                .await
                .is_err()
            {
                return;
            }
            for _ in 0..60 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => return,
                }
                if s.write_all(b"a").await.is_err() {
                    return;
                }
            }
        });
    }

    // The early idle client was closed by the daemon after 5 s (well
    // before the 60 s a connection may last).
    let (read, closed_after) = closed.await.unwrap();
    assert!(
        matches!(read, Ok(Ok(true)) | Ok(Err(_))),
        "an idle connection is closed at the header timeout: {read:?}"
    );
    assert!(closed_after < Duration::from_secs(8), "{closed_after:?}");
    // For 15 s: nothing is withdrawn, the probes keep observing, the
    // daemon holds no more than its cap beyond what it held before, and
    // the kubelet's probes are answered within a second every time.
    let until = Instant::now() + Duration::from_secs(15);
    let mut most = 0;
    let (mut probed, mut slowest) = (0, Duration::ZERO);
    while Instant::now() < until {
        for path in ["/healthz", "/readyz"] {
            let (status, took) = probe(path).await;
            assert_eq!(status, Some(200), "{path} under the flood, after {took:?}");
            probed += 1;
            slowest = slowest.max(took);
        }
        assert_eq!(
            store.member_ids(ZONE, NAME).len(),
            3,
            "a region was pulled under the flood: {}",
            daemon.logs()
        );
        most = most.max(daemon.open_descriptors());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        most <= baseline + cap + 16,
        "descriptors: {most} at most, {baseline} before, cap {cap}"
    );
    assert!(
        !daemon.logs().contains("Too many open files"),
        "the process ran out of descriptors: {}",
        daemon.logs()
    );
    // Status may have to wait for a slot: ask until it answers.
    let mut status = None;
    for _ in 0..30 {
        let answer = reqwest::Client::new()
            .get(format!("{}/status", daemon.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(r) = answer {
            if let Ok(s) = r.json::<route53_failover::status::Status>().await {
                status = Some(s);
                break;
            }
        }
    }
    let status = status.expect("status answers within the flood");
    for m in &status.records[0].members {
        assert_eq!(m.verdict, "healthy", "{m:?}");
        assert!(m.not_observed.is_none(), "probes observe: {m:?}");
        assert!(m.consecutive_successes > 20, "probes keep passing: {m:?}");
    }
    let changes_after = metric(
        &daemon.metrics().await,
        "route53_failover_verdict_changes_total",
        &[],
    )
    .unwrap_or(0.0);
    assert_eq!(changes_after, changes_before, "no verdict changed");

    // The clients still hold their sockets: the daemon's own come back to
    // what it held before within 60 s all the same.
    let start = Instant::now();
    wait_until(
        "the daemon's descriptors come back to their baseline",
        Duration::from_secs(60),
        || async { daemon.open_descriptors() <= baseline + 4 },
    )
    .await;
    eprintln!("under the flood: {probed} /healthz and /readyz answered on the health port, the slowest in {slowest:?}");
    eprintln!(
        "listener flood: {accepted} client connections made, the daemon held at most {most} descriptors (baseline {baseline}, cap {cap}); an idle client closed after {:.1}s; back to {} within {:.1}s",
        closed_after.as_secs_f64(),
        daemon.open_descriptors(),
        start.elapsed().as_secs_f64()
    );
    stop.cancel();
    while dribblers.join_next().await.is_some() {}
    drop(idle);
    daemon.stop().await;
}

/// With the embedded store, `run` serves what the store holds and nothing
/// that changes it: the port may be reachable by more than on-call.
/// (Before: one unauthenticated POST deleted a region's record.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_the_embedded_store_serves_no_route_that_writes_to_it() {
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let text = config_with_provider("{kind: memory, zones: [example.test]}", &eps, 1, "5m");
    let daemon = start_daemon(&text).await;
    let records = |d: &Daemon| {
        let url = format!("{}/memory/zones/{ZONE}/records", d.base);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Vec<route53_failover::provider::RecordSet>>()
                .await
                .unwrap()
        }
    };
    wait_until("both published", Duration::from_secs(15), || async {
        records(&daemon)
            .await
            .iter()
            .filter(|r| r.name == NAME)
            .count()
            == 2
    })
    .await;
    let victim = records(&daemon)
        .await
        .into_iter()
        .find(|r| r.name == NAME)
        .unwrap();
    let delete = serde_json::json!([{"action": "DELETE", "record": victim}]);
    let client = reqwest::Client::new();
    for path in [
        format!("/memory/zones/{ZONE}/changes"),
        format!("/memory/api/zones/{ZONE}/changes"),
        "/memory/faults".to_string(),
    ] {
        let r = client
            .post(format!("{}{path}", daemon.base))
            .json(&delete)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 404 || r.status() == 405,
            "{path} answered {}",
            r.status()
        );
    }
    assert_eq!(
        records(&daemon)
            .await
            .iter()
            .filter(|r| r.name == NAME)
            .count(),
        2,
        "nothing was deleted"
    );
    daemon.stop().await;
}
