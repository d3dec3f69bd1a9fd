//! Supervision through the built binary: a task that panics is seen
//! (status, metrics, `/readyz`, the timeline) and comes back, and the
//! follow-up batch that used to kill a zone's reconciler (rejected after
//! the zone changed between the two batches) leaves the zone reconciled.
//! Against the strict store, which rejects a batch the way Route53 does.

mod common;

use std::time::Duration;

use common::*;
use route53_failover::demo::Mode;
use route53_failover::provider::faults::Fault;
use route53_failover::provider::{Operation, ProviderError};

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(20);

fn carrying_checks(store: &Store) -> usize {
    store
        .members(ZONE, NAME)
        .iter()
        .filter(|r| r.health_check_id.is_some())
        .count()
}

/// A live reload turns health checks on: the records need no change of
/// their own, so the first write is the follow-up batch that attaches the
/// new checks, and it is rejected (the zone changed between the two
/// batches). The zone is read again and reconciled: the checks are
/// attached, and a region that fails afterwards is withdrawn and comes
/// back. (On the old code the reconciler panicked on the zone it had just
/// forgotten, and the zone was never reconciled again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_follow_up_batch_leaves_the_zone_reconciled() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let with_checks = config(&store, &eps, 1, "5m");
    let plain = with_checks.replace(
        "defaults:\n",
        "defaults:\n  health_check: {enabled: false}\n",
    );
    let daemon = start_daemon(&plain).await;
    wait_until("three members published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3 && daemon.status().await.ready
    })
    .await;
    assert_eq!(carrying_checks(&store), 0);

    store.store.inject(Fault {
        operation: Some(Operation::Change),
        error: ProviderError::InvalidChangeBatch("the zone changed between the batches".into()),
        times: 1,
    });
    replace_file(&daemon.config_path, &with_checks);
    wait_until("every record carries its new check", LIMIT, || async {
        carrying_checks(&store) == 3
    })
    .await;
    let logs = daemon.logs();
    assert!(
        logs.contains("follow-up batch rejected; reading the zone again"),
        "the rejection was met: {logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
    let s = daemon.status().await;
    assert!(s.tasks.is_empty(), "{:?}", s.tasks);
    assert!(s.ready);

    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is restored", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    daemon.stop().await;
}

/// The zone's reconciler panics in the very pass that would withdraw a
/// failing region (a failpoint the test arms once the daemon is ready).
/// The panic shows in status, in the metric, on the timeline and as a red
/// `/readyz`; the reconciler starts again, reads the zone afresh and
/// withdraws the region; `/readyz` is green again once it has run
/// steadily.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_panics_is_seen_and_comes_back() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let trigger = tempfile::tempdir().unwrap();
    let armed = trigger.path().join("armed");
    let how = Launch {
        env: vec![(
            "ROUTE53_FAILOVER_FAILPOINT".into(),
            format!("reconcile@{}", armed.display()),
        )],
        ..Launch::default()
    };
    let daemon = launch(&config(&store, &eps, 1, "5m"), how).await;
    wait_until("three members published, ready", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3 && daemon.get("/readyz").await.status().is_success()
    })
    .await;

    std::fs::write(&armed, "").unwrap();
    eps.set("eu-west-1", Mode::Fail);
    wait_until("the panic is seen", LIMIT, || async {
        !daemon.status().await.tasks.is_empty()
    })
    .await;
    // One read of each view: each says it by itself.
    let s = daemon.status().await;
    assert_eq!(s.tasks.len(), 1, "{:?}", s.tasks);
    let t = &s.tasks[0];
    assert_eq!(
        (t.kind.as_str(), t.task.as_str()),
        ("reconciler", "reconciler example.test")
    );
    assert_eq!(t.panics, 1);
    assert!(t.message.contains("failpoint reconcile"), "{}", t.message);
    // The panic is put in status first, then counted, then put on the
    // timeline: the metric and the timeline are read until they say it
    // (the count is 1 and stays 1: the failpoint fires once).
    let panics = |page: &str, task: &str| {
        metric(
            page,
            "route53_failover_task_panics_total",
            &[&format!("task=\"{task}\"")],
        )
    };
    wait_until("the metric counts the panic", LIMIT, || async {
        panics(&daemon.metrics().await, "reconciler") == Some(1.0)
    })
    .await;
    let page = daemon.metrics().await;
    assert_eq!(panics(&page, "reconciler"), Some(1.0));
    assert_eq!(
        panics(&page, "prober"),
        Some(0.0),
        "every kind's series is there before its first panic"
    );
    let readyz = daemon.get("/readyz").await;
    assert_eq!(readyz.status().as_u16(), 503);
    assert!(readyz.text().await.unwrap().contains("panicked"));
    wait_until("the panic is on the timeline", LIMIT, || async {
        let events = daemon.get("/events").await.text().await.unwrap();
        events.contains("\"event\":\"task\"")
    })
    .await;

    wait_until(
        "eu-west-1 is withdrawn by the reconciler started again",
        LIMIT,
        || async { !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1")) },
    )
    .await;
    wait_until(
        "ready again once the task ran steadily",
        route53_failover::controller::supervise::UNSTEADY + LIMIT,
        || async { daemon.get("/readyz").await.status().is_success() },
    )
    .await;
    let s = daemon.status().await;
    assert!(s.ready);
    assert!(!s.tasks[0].restarting);
    daemon.stop().await;
}
