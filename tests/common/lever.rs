//! The lever's peers for tests: a loopback ARC cluster (the crate's
//! stand-in) behind five endpoints of which two refuse connections and one
//! never answers, the routing control ARNs, the config section, and what
//! Route53's data plane answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use route53_failover::lever::standin::{self, Board, Cluster};
use route53_failover::provider::RecordType;
use tokio_util::sync::CancellationToken;

use std::time::Duration;

use super::{Daemon, Store};

pub const ZONE: &str = "example.test";
pub const NAME: &str = "api.example.test";

pub fn arn(region: &str) -> String {
    format!(
        "arn:aws:route53-recovery-control::123456789012:controlpanel/panel1/routingcontrol/{}",
        region.replace('-', "")
    )
}

/// Five endpoints of one cluster: refused, hanging, serving, refused,
/// serving (in that order, so the first call passes both kinds of dead one).
pub struct Fixture {
    pub cluster: Arc<Cluster>,
    pub urls: Vec<String>,
    /// Connections the hanging endpoint accepted.
    pub hung: Arc<AtomicU64>,
    _refusing: Vec<tokio::net::TcpSocket>,
    _stop: tokio_util::sync::DropGuard,
}

/// An endpoint URL that refuses connections while the socket lives
/// (`super::refusing_port`).
pub fn refused_url() -> (tokio::net::TcpSocket, String) {
    let (socket, addr) = super::refusing_port();
    (socket, format!("http://{addr}/"))
}

pub async fn start_cluster(board: Board) -> Fixture {
    let cluster = Cluster::new(board);
    let stop = CancellationToken::new();
    let serving = || async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        tokio::spawn(standin::serve(l, cluster.clone(), stop.clone()));
        url
    };
    let hung = Arc::new(AtomicU64::new(0));
    let hanging = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let (stop, hung) = (stop.clone(), hung.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    Ok((s, _)) = l.accept() => { hung.fetch_add(1, Ordering::Relaxed); held.push(s) }
                    _ = stop.cancelled() => return,
                }
            }
        });
        url
    };
    let (refusing, refused): (Vec<_>, Vec<_>) = [refused_url(), refused_url()].into_iter().unzip();
    let urls = vec![
        refused[0].clone(),
        hanging,
        serving().await,
        refused[1].clone(),
        serving().await,
    ];
    Fixture {
        cluster,
        urls,
        hung,
        _refusing: refusing,
        _stop: stop.drop_guard(),
    }
}

/// The e2e config, each member with its switch, and the lever's section.
pub fn lever_yaml(
    base: String,
    urls: &[String],
    regions: &[&str],
    mode: &str,
    extra: &str,
) -> String {
    let mut text = base;
    for r in regions {
        text = text.replace(
            &format!("      - region: {r}\n"),
            &format!(
                "      - region: {r}\n        routing_control: \"{}\"\n",
                arn(r)
            ),
        );
    }
    let endpoints: Vec<String> = urls
        .iter()
        .map(|u| format!("{{url: \"{u}\", region: us-west-2}}"))
        .collect();
    format!(
        "{text}routing_control:\n  cluster_endpoints: [{}]\n  mode: {mode}\n  call_timeout: 300ms\n  read_interval: 1s\n{extra}",
        endpoints.join(", ")
    )
}

/// The regions Route53's data plane answers with now.
pub fn answered(store: &Store) -> Vec<String> {
    let mut r: Vec<String> = store
        .store
        .answer(ZONE, NAME, &RecordType::A)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.region)
        .collect();
    r.sort();
    r
}

pub fn sorted(regions: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = regions.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// On-call's `drain`/`undrain` of `region` through the CLI, as alice.
pub async fn on_call(
    daemon: &Daemon,
    token: &std::path::Path,
    what: &str,
    region: &str,
    force: bool,
) {
    let token = token.display().to_string();
    let mut args = vec![
        what,
        "--url",
        &daemon.base,
        "--record",
        NAME,
        "--region",
        region,
        "--reason",
        "INC-42",
        "--token-file",
        &token,
        "--by",
        "alice",
    ];
    if force {
        args.push("--force");
    }
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(super::BIN)
            .args(&args)
            .output(),
    )
    .await
    .expect("the CLI ends within 30s")
    .unwrap();
    assert!(
        out.status.success(),
        "{what} {region}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Detection is the probes' (bounded by the verdict rules, tested apart);
/// what the lever adds is from the unhealthy verdict to the switch set
/// Off, both in the timeline: at most 1 s.
pub async fn verdict_to_switch_within_a_second(daemon: &Daemon, region: &str) {
    verdict_to_switch_within(daemon, region, 1.0).await
}

/// The same with a bound of `secs`. The switch's event is emitted once
/// the cluster's answer is in, a moment after the board shows it: the
/// events are read until both are there (5 s at most).
pub async fn verdict_to_switch_within(daemon: &Daemon, region: &str, secs: f64) {
    let at = |events: &[route53_failover::events::Event], kind: &str, what: &str| {
        events
            .iter()
            .filter(|e| e.event == kind && e.region.as_deref() == Some(region))
            .find(|e| e.message.contains(what))
            .map(|e| e.at)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // Newest first: the latest of each.
    let (verdict, off) = loop {
        let events: Vec<route53_failover::events::Event> =
            daemon.get("/events").await.json().await.unwrap();
        let found = (
            at(&events, "verdict", "→ unhealthy"),
            at(&events, "switch", "set off"),
        );
        if let (Some(v), Some(o)) = found {
            break (v, o);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no verdict or switch event for {region}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        (0.0..=secs).contains(&(off - verdict)),
        "the switch went Off {:.3}s after the verdict",
        off - verdict
    );
}

/// The strict store, its switches (all Off at first), a cluster over them
/// and endpoints for `regions`.
pub struct Setup {
    pub store: Store,
    pub eps: super::Endpoints,
    pub fixture: Fixture,
    pub board: Board,
}

pub async fn setup(regions: &[&str]) -> Setup {
    setup_zones(regions, &[ZONE]).await
}

/// [`setup`] with the store holding `zones`.
pub async fn setup_zones(regions: &[&str], zones: &[&str]) -> Setup {
    let store = super::start_store(zones).await;
    let board = store.store.switches();
    for r in regions {
        board.set(&arn(r), false);
    }
    let fixture = start_cluster(board.clone()).await;
    let eps = super::Endpoints::start(regions).await;
    Setup {
        store,
        eps,
        fixture,
        board,
    }
}
