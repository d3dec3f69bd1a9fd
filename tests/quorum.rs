//! The quorum of vantage points end to end: three instances of the built
//! binary with `ha` on one strict memory store (served on loopback), each
//! probing the same real endpoints, exchanging their views through their
//! own TXT records in the zone. The lease's holder cannot reach eu-west-1
//! (its `connect_to` for that member is a closed port): the others outvote
//! it, and a real failure that all three see still withdraws the region in
//! time. Every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::*;
use route53_failover::demo::Mode;

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(45);
/// interval 1s, fall 3, fast_interval 250ms: the bound is
/// `fall × fast_interval + interval + 1 s`.
const DETECTION_BOUND: Duration = Duration::from_millis(3 * 250 + 1000 + 1000);

fn instance_config(store: &Store, eps: &Endpoints, id: &str) -> String {
    let provider = format!(
        "{{kind: memory, endpoint_url: \"{}\", max_requests_per_second: 50}}",
        store.url
    );
    let mut text = config_with_provider(&provider, eps, 1, "5m").replace(
        "interval: 200ms, timeout: 150ms, rise: 2, fall: 3",
        "interval: 1s, timeout: 500ms, rise: 2, fall: 3, fast_interval: 250ms",
    );
    text.push_str(&format!(
        "ha: {{enabled: true, identity: {id}, lease_duration: 4s, renew_every: 1s, max_clock_drift: 250ms}}\n"
    ));
    text
}

fn view_of<'a>(
    m: &'a route53_failover::status::MemberSnapshot,
    instance: &str,
) -> Option<&'a route53_failover::status::ViewSnapshot> {
    m.views.iter().find(|v| v.instance == instance)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broken_vantage_point_is_outvoted_and_a_real_failure_still_withdraws_in_time() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let euw1 = eps.list.iter().find(|e| e.name == "eu-west-1").unwrap();
    // The holder's path to eu-west-1 is broken; the others' is fine.
    let (_refusing, closed) = refusing_port();
    let broken = instance_config(&store, &eps, "a")
        .replace(&format!("\"{}\"", euw1.addr), &format!("\"{closed}\""));
    assert_ne!(broken, instance_config(&store, &eps, "a"));
    let a = start_daemon(&broken).await;
    wait_until("a holds the lease", LIMIT, || async {
        a.status().await.lease.unwrap().role == "leader"
    })
    .await;
    let b = start_daemon(&instance_config(&store, &eps, "b")).await;
    let c = start_daemon(&instance_config(&store, &eps, "c")).await;

    // b and c outvote a: eu-west-1 is published, and a says why.
    wait_until(
        "eu-west-1 published on the quorum's word",
        LIMIT,
        || async {
            let m = a.member("eu-west-1").await;
            store.member_ids(ZONE, NAME).len() == 3
                && m.decision.as_deref() == Some("quorum")
                && m.views.iter().filter(|v| v.counted).count() == 3
        },
    )
    .await;
    let m = a.member("eu-west-1").await;
    assert_eq!(
        (m.verdict.as_str(), m.agreed.as_str(), m.published),
        ("unhealthy", "healthy", true)
    );
    let verdicts: Vec<(String, bool, String)> = m
        .views
        .iter()
        .map(|v| (v.instance.clone(), v.this_instance, v.verdict.clone()))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("a".to_string(), true, "unhealthy".to_string()),
            ("b".to_string(), false, "healthy".to_string()),
            ("c".to_string(), false, "healthy".to_string()),
        ]
    );
    // Every instance shows the disagreeing view (a follower reads the
    // views every 10 s).
    wait_until("b shows a's view", LIMIT, || async {
        let on_b = b.member("eu-west-1").await;
        view_of(&on_b, "a").map(|v| v.verdict.as_str()) == Some("unhealthy")
            && on_b.agreed == "healthy"
    })
    .await;
    let page = a.metrics().await;
    let views = |verdict: &str| {
        metric(
            &page,
            "route53_failover_member_views",
            &["region=\"eu-west-1\"", &format!("verdict=\"{verdict}\"")],
        )
    };
    assert_eq!(
        (views("healthy"), views("unhealthy")),
        (Some(2.0), Some(1.0))
    );
    let table = std::process::Command::new(BIN)
        .args(["status", "--url", &a.base])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("a=unhealthy b=healthy c=healthy"), "{table}");
    assert!(table.contains("views 2 other instance(s)"), "{table}");

    // It stays published: one view of three never withdraws it (settled
    // first, so the checks' batch is not taken for a change).
    store.settled(ZONE, NAME, 3).await;
    let since = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1")));
    let withdrawn = store
        .store
        .change_log()
        .iter()
        .filter(|c| c.at >= since)
        .flat_map(|c| &c.changes)
        .any(|c| c.record.set_identifier.as_deref() == Some(&set_id("eu-west-1")));
    assert!(
        !withdrawn,
        "no change to eu-west-1 while only a sees it down"
    );

    // eu-west-1 really fails, for all three: withdrawn within the bound.
    let failed_at = Instant::now();
    eps.set("eu-west-1", Mode::Fail);
    let deadline = failed_at + Duration::from_secs(10);
    while store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1")) {
        assert!(Instant::now() < deadline, "eu-west-1 never withdrawn");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = failed_at.elapsed();
    eprintln!("withdrawn {took:?} after the real failure (bound {DETECTION_BOUND:?})");
    assert!(took <= DETECTION_BOUND, "took {took:?}");
    // Status notes the record gone once the store's answer is back in the
    // holder, a moment after the store shows it: waited for, not sampled.
    wait_until("a shows eu-west-1 withdrawn", LIMIT, || async {
        !a.member("eu-west-1").await.published
    })
    .await;
    let m = a.member("eu-west-1").await;
    assert_eq!((m.agreed.as_str(), m.published), ("unhealthy", false));

    // It recovers for b and c: restored on their word, a still outvoted.
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 restored by the quorum", LIMIT, || async {
        store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    let m = a.member("eu-west-1").await;
    assert_eq!(m.verdict, "unhealthy");
    assert_eq!(m.decision.as_deref(), Some("quorum"));

    for d in [c, b, a] {
        d.stop().await;
    }
}
