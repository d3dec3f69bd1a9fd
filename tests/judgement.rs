//! The judgement rules end to end, through the built binary, against real
//! endpoints on loopback and the strict store: brownouts (`max_latency`),
//! the cap on withdrawals (`max_withdrawn`) and flap damping. Each test
//! bounds every wait.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::*;
use route53_failover::demo::Mode;
use route53_failover::provider::faults::MemoryStore;

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(20);

/// Starts a daemon over `regions` with `config` rewritten by `edit`, and
/// waits until every member is published.
async fn daemon_over(
    regions: &[&str],
    edit: impl Fn(String) -> String,
) -> (Store, Endpoints, Daemon) {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(regions).await;
    let daemon = start_daemon(&edit(config(&store, &eps, 1, "5m"))).await;
    store.settled(ZONE, NAME, regions.len()).await;
    (store, eps, daemon)
}

/// Record changes (not ownership markers) the store accepted for `set_id`.
fn record_changes(store: &MemoryStore, set_id: &str) -> usize {
    store
        .change_log()
        .iter()
        .flat_map(|c| &c.changes)
        .filter(|c| c.record.set_identifier.as_deref() == Some(set_id))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_answering_slowly_is_withdrawn_as_slow_and_restored_when_fast() {
    let (store, eps, daemon) = daemon_over(&["us-east-1", "eu-west-1", "ap-southeast-2"], |c| {
        // Room for a slow answer (300 ms more) inside the timeout.
        c.replace(
            "interval: 200ms, timeout: 150ms",
            "interval: 500ms, timeout: 450ms",
        )
        .replace(
            "body_contains: ok}",
            "body_contains: ok, max_latency: 150ms}",
        )
    })
    .await;
    eps.set("eu-west-1", Mode::Slow);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    // Status notes the record gone once the store's answer is back in the
    // daemon, a moment after the store shows it: waited for, not sampled.
    wait_until("status shows eu-west-1 withdrawn", LIMIT, || async {
        !daemon.member("eu-west-1").await.published
    })
    .await;
    let m = daemon.member("eu-west-1").await;
    assert_eq!((m.verdict.as_str(), m.published), ("unhealthy", false));
    assert_eq!(m.decision.as_deref(), Some("unhealthy"));
    let reason = m.reason.unwrap_or_default();
    assert!(
        reason.starts_with("slow: answered in") && reason.contains("over max_latency 150ms"),
        "{reason}"
    );
    assert_eq!(m.last_status, Some(200), "the answers themselves were good");
    let page = daemon.metrics().await;
    let slow = metric(
        &page,
        "route53_failover_probes_total",
        &["region=\"eu-west-1\"", "result=\"slow\""],
    );
    assert!(slow >= Some(3.0), "slow probes counted: {slow:?}");

    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is published again", LIMIT, || async {
        store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    let m = daemon.member("eu-west-1").await;
    assert_eq!(m.decision.as_deref(), Some("healthy"));
    assert_eq!(m.damped_until, None, "a first recovery is never damped");
    daemon.stop().await;
}

/// Against its own baseline: the endpoints answer in about a millisecond,
/// so 300 ms more is a brownout for this member, with no absolute bound
/// configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_far_slower_than_its_own_baseline_is_withdrawn_as_slow() {
    let (store, eps, daemon) = daemon_over(&["us-east-1", "eu-west-1", "ap-southeast-2"], |c| {
        c.replace("interval: 200ms, timeout: 150ms", "interval: 500ms, timeout: 450ms")
            .replace(
                "body_contains: ok}",
                "body_contains: ok, slow_vs_baseline: {factor: 3, min_excess: 100ms, window: 1m, warm_up: 5s}}",
            )
    })
    .await;
    wait_until("the baseline is warm", LIMIT, || async {
        daemon.member("eu-west-1").await.baseline_ms.is_some()
    })
    .await;
    let base = daemon.member("eu-west-1").await.baseline_ms.unwrap();
    assert!(base < 50.0, "loopback answers fast: {base}ms");
    eps.set("eu-west-1", Mode::Slow);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    let m = daemon.member("eu-west-1").await;
    let reason = m.reason.unwrap_or_default();
    assert!(
        reason.starts_with("slow: answered in") && reason.contains("its baseline of"),
        "{reason}"
    );
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is published again", LIMIT, || async {
        store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_withdrawn_blocks_a_third_withdrawal_and_says_so() {
    let regions = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"];
    let (store, eps, daemon) = daemon_over(&regions, |c| {
        c.replace(
            "policy: {min_healthy: 1}",
            "policy: {min_healthy: 1, max_withdrawn: 2}",
        )
    })
    .await;
    let failing = ["eu-west-1", "ap-southeast-2", "us-west-2"];
    for r in failing {
        eps.set(r, Mode::Fail);
    }
    wait_until(
        "one failing member is held by max_withdrawn",
        LIMIT,
        || async {
            let s = daemon.status().await;
            let members = &s.records[0].members;
            let out = members.iter().filter(|m| !m.published).count();
            let held = members
                .iter()
                .filter(|m| m.decision.as_deref() == Some("max_withdrawn"))
                .count();
            out == 2 && held == 1
        },
    )
    .await;
    // It stays that way: no third withdrawal.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ids = store.member_ids(ZONE, NAME);
    assert_eq!(ids.len(), 2, "two withdrawn, two published: {ids:?}");
    assert!(ids.contains(&set_id("us-east-1")), "the healthy one stays");
    let s = daemon.status().await;
    let held: Vec<_> = s.records[0]
        .members
        .iter()
        .filter(|m| m.decision.as_deref() == Some("max_withdrawn"))
        .collect();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].verdict.as_str(), held[0].published),
        ("unhealthy", true)
    );
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_withdrawals_blocked_total",
            &["record=\"api.example.test\"", "reason=\"max_withdrawn\""]
        ),
        Some(1.0),
        "counted once when the block begins"
    );
    let table = s.table();
    assert!(table.contains("max_withdrawn"), "{table}");
    daemon.stop().await;
}

/// The flap scenario: 20 times 4.5 s down and 3.5 s up (160 s), probed
/// every second, rise 2, fall 3. Without damping that is 40 record changes;
/// damped, the member stays withdrawn after its first flap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_member_is_damped_to_a_few_record_changes() {
    let (store, eps, daemon) = daemon_over(&["us-east-1", "eu-west-1", "ap-southeast-2"], |c| {
        c.replace(
            "interval: 200ms, timeout: 150ms",
            "interval: 1s, timeout: 500ms",
        )
    })
    .await;
    let id = set_id("eu-west-1");
    let before = record_changes(&store.store, &id);
    let mut saw_damped = false;
    let start = Instant::now();
    for _ in 0..20 {
        for (mode, secs) in [(Mode::Fail, 4.5), (Mode::Serve, 3.5)] {
            eps.set("eu-west-1", mode);
            let until = Instant::now() + Duration::from_secs_f64(secs);
            while Instant::now() < until {
                let m = daemon.member("eu-west-1").await;
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                if m.verdict == "healthy"
                    && m.decision.as_deref() == Some("damped")
                    && !m.published
                    && m.damped_until.is_some_and(|u| u > now + 2.0)
                    && !saw_damped
                {
                    saw_damped = true;
                    let page = daemon.metrics().await;
                    let damped = metric(
                        &page,
                        "route53_failover_member_damped",
                        &["region=\"eu-west-1\""],
                    );
                    assert_eq!(damped, Some(1.0), "the damped series while held");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    assert!(start.elapsed() < Duration::from_secs(200), "bounded");
    let changes = record_changes(&store.store, &id) - before;
    eprintln!("flap scenario: {changes} record changes for 20 flaps");
    assert!(
        changes <= 6,
        "{changes} record changes for 20 flaps (at most 6)"
    );
    assert!(saw_damped, "status said damped, with until, while healthy");
    let m = daemon.member("eu-west-1").await;
    assert!(m.flaps >= 10, "flaps counted: {}", m.flaps);
    let page = daemon.metrics().await;
    let flaps = metric(
        &page,
        "route53_failover_flaps_total",
        &["region=\"eu-west-1\""],
    );
    assert!(flaps >= Some(10.0), "{flaps:?}");
    // The damped series exists only while a member is held.
    assert_eq!(
        metric(
            &page,
            "route53_failover_member_damped",
            &["region=\"us-east-1\""]
        ),
        None
    );
    // The others never moved.
    assert_eq!(record_changes(&store.store, &set_id("us-east-1")), 1);
    daemon.stop().await;
}
