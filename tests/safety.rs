//! The safety promises through ordinary operations, end to end against the
//! strict store: a record Route53 refuses costs only itself, one hosted
//! zone is named one way, and a reload that renames members never empties
//! their record.

mod common;

use std::time::{Duration, Instant};

use common::*;
use route53_failover::demo::Mode;
use route53_failover::provider::{Action, RecordSet, RecordType};

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(15);

/// The common config plus a CNAME record `web.example.test` over two of
/// the endpoints.
fn with_web(store: &Store, eps: &Endpoints, resync: &str) -> String {
    let base = config(store, eps, 1, resync);
    format!(
        "{base}  - name: web.example.test\n    zone: example.test\n    type: CNAME\n    probe: {{url: \"http://web.example.test/health\", expect: {{status: [200]}}}}\n    regions:\n      - {{region: us-east-1, set_identifier: web-use1, target: {{cname: use1.example.net}}, probe: {{connect_to: \"{a}\"}}}}\n      - {{region: eu-west-1, set_identifier: web-euw1, target: {{cname: euw1.example.net}}, probe: {{connect_to: \"{b}\"}}}}\n",
        a = eps.list[0].addr,
        b = eps.list[1].addr,
    )
}

/// Route53 refuses every change of `web` (someone made a plain A record at
/// that name: a CNAME cannot share it). The zone's other record is
/// published, withdrawn and restored all the same; `web` is held out and
/// shown, and goes in once the name is free. (Before: every batch of the
/// zone failed, retried forever, and no record of it moved.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_route53_refuses_costs_only_itself() {
    let store = start_store(&[ZONE]).await;
    let squatter = RecordSet {
        name: "web.example.test".into(),
        rtype: RecordType::A,
        set_identifier: None,
        region: None,
        ttl: Some(300),
        values: vec!["203.0.113.9".into()],
        alias: None,
        health_check_id: None,
    };
    store.edit(ZONE, Action::Create, squatter.clone());
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let daemon = start_daemon(&with_web(&store, &eps, "6s")).await;
    wait_until("api's three members are published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    wait_until("web is held out and shown", LIMIT, || async {
        let s = daemon.status().await;
        s.zones[0]
            .rejected
            .iter()
            .any(|r| r.starts_with("web.example.test: "))
    })
    .await;
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_records_rejected",
            &["zone=\"example.test\""]
        ),
        Some(1.0)
    );
    assert!(daemon.status().await.ready, "the zone's reconcile stands");

    // A region of api fails: withdrawn within the usual bound (fall 3 at
    // 200 ms), the refused record beside it.
    let failed = Instant::now();
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", Duration::from_secs(5), || async {
        !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    let took = failed.elapsed();
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is restored", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    // Held out, not hammered: a few calls per resync, not one per second.
    let before = store
        .store
        .calls(route53_failover::provider::Operation::Change);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = store
        .store
        .calls(route53_failover::provider::Operation::Change)
        - before;
    assert!(calls <= 8, "{calls} change calls in 3 s");

    // The name is freed by hand: at the next resync web goes in.
    store.edit(ZONE, Action::Delete, squatter);
    wait_until("web is published once its name is free", LIMIT, || async {
        store
            .store
            .records(ZONE)
            .unwrap()
            .iter()
            .filter(|r| r.name == "web.example.test" && r.rtype == RecordType::Cname)
            .count()
            == 2
    })
    .await;
    wait_until("nothing is held out any more", LIMIT, || async {
        daemon.status().await.zones[0].rejected.is_empty()
    })
    .await;
    eprintln!(
        "withdrawal beside a refused record: {:.2}s",
        took.as_secs_f64()
    );
    daemon.stop().await;
}

/// A zone given by its id keeps its case (ids are case-sensitive), and one
/// hosted zone named both by name and by id is refused with both key
/// paths, before anything is written. (Before: the id was lower-cased and
/// not found; the two names made two reconcilers that deleted each
/// other's members.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hosted_zone_is_named_one_way_and_an_id_keeps_its_case() {
    let store = start_store(&[ZONE]).await;
    let id = store.store.zones()[0].id.clone();
    assert!(id.chars().any(|c| c.is_ascii_uppercase()), "{id}");
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let by_id = config(&store, &eps, 1, "5m").replace("zone: example.test", &format!("zone: {id}"));
    let daemon = start_daemon(&by_id).await;
    wait_until("published through the zone's id", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 2
    })
    .await;
    daemon.stop().await;

    let both = format!(
        "{by_id}  - name: www.example.test\n    zone: example.test\n    probe: {{url: \"http://www.example.test/health\", connect_to: \"{a}\"}}\n    regions:\n      - {{region: us-east-1, set_identifier: www1, target: {{values: [192.0.2.7]}}}}\n      - {{region: eu-west-1, set_identifier: www2, target: {{values: [192.0.2.8]}}}}\n",
        a = eps.list[0].addr
    );
    let changes_before = store.store.change_log().len();
    let out = run_with_config("run", &both).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "names the same hosted zone ({id}, example.test) as records[0].zone {id:?}"
        )) && stderr.contains("records[1].zone: \"example.test\""),
        "{stderr}"
    );
    assert_eq!(
        store.store.change_log().len(),
        changes_before,
        "nothing written"
    );
}

/// The ownership marker is deleted by hand: the records are exactly what
/// the config describes, so the claims are written again at the next read
/// and failover goes on. (Before: every member became a conflict and was
/// never withdrawn again; only a gauge said so.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ownership_marker_is_reclaimed_and_failover_goes_on() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let daemon = start_daemon(&config(&store, &eps, 1, "2s")).await;
    wait_until("all three published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    let marker = || {
        store
            .store
            .records(ZONE)
            .unwrap()
            .into_iter()
            .find(|r| r.name == format!("_route53-failover.{NAME}"))
    };
    let lost = marker().expect("claimed");
    store.edit(ZONE, Action::Delete, lost.clone());
    wait_until("the marker is written again", LIMIT, || async {
        marker().is_some_and(|m| m.values == lost.values)
    })
    .await;
    let s = daemon.status().await;
    assert!(s.records[0].members.iter().all(|m| !m.conflict), "{s:?}");
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", Duration::from_secs(5), || async {
        !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    daemon.stop().await;
}

/// Three members fail at the same instant (what the daemon's own egress,
/// its cluster's DNS or a full descriptor table look like from inside):
/// nothing is withdrawn, status says why. Once one of them passes again,
/// the others' failures are corroborated and they go. (Before: one of
/// the three was withdrawn before the "sees everything down" guard could
/// apply.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_that_start_together_withdraw_nothing_until_something_passes() {
    let (store, eps, daemon) = three_regions(1, "5m").await;
    wait_until("all healthy", LIMIT, || async {
        daemon.status().await.records[0]
            .members
            .iter()
            .all(|m| m.verdict == "healthy")
    })
    .await;
    for e in &eps.list {
        e.set_mode(Mode::Fail);
    }
    // Long enough for every member to reach `fall` several times over.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert_eq!(
            store.member_ids(ZONE, NAME).len(),
            3,
            "a region was pulled for the daemon's own trouble: {}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = daemon.status().await;
    let whys: Vec<&str> = s.records[0]
        .members
        .iter()
        .map(|m| m.decision.as_deref().unwrap_or("-"))
        .collect();
    assert!(
        s.records[0]
            .members
            .iter()
            .all(|m| m.verdict == "unhealthy"),
        "{whys:?}"
    );
    assert!(
        whys.iter()
            .all(|w| *w == "last_member" || *w == "correlated"),
        "{whys:?}"
    );
    // (Whether one of them was seen waiting, `correlated`, depends on
    // whether they fell in one reconcile; the next test makes one wait.)
    // us-east-1 answers again: the others' failures are real.
    eps.set("us-east-1", Mode::Serve);
    wait_until("the two failing regions are withdrawn", LIMIT, || async {
        store.member_ids(ZONE, NAME) == vec![set_id("us-east-1")]
    })
    .await;
    daemon.stop().await;
}

/// The moment that matters: one member reaches `fall` while the others,
/// failing at the same instant, are still healthy by verdict. Probed
/// slowly (1 s, fall 2) with the regions' phases apart, the first to fall
/// would be withdrawn at once without the rule; with it, it waits, and the
/// metric and `why` say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_member_to_fall_waits_while_nothing_else_passes() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let text = config(&store, &eps, 1, "5m").replace(
        "interval: 200ms, timeout: 150ms, rise: 2, fall: 3",
        "interval: 1s, timeout: 150ms, rise: 2, fall: 2, fast_interval: 1s",
    );
    let daemon = start_daemon(&text).await;
    wait_until("all three published and healthy", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
            && daemon.status().await.records[0]
                .members
                .iter()
                .all(|m| m.verdict == "healthy")
    })
    .await;
    for e in &eps.list {
        e.set_mode(Mode::Fail);
    }
    // Status and the metric are read at different moments, so each is
    // sampled on its own: both must show the wait at some point (a read
    // of one taken just after the other could fall after the wait ended).
    let (mut saw_wait, mut saw_metric) = (false, false);
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        assert_eq!(store.member_ids(ZONE, NAME).len(), 3, "{}", daemon.logs());
        let s = daemon.status().await;
        saw_wait |= s.records[0]
            .members
            .iter()
            .any(|m| m.decision.as_deref() == Some("correlated"));
        let page = daemon.metrics().await;
        saw_metric |=
            metric(&page, "route53_failover_uncorroborated_failures", &[]).unwrap_or(0.0) >= 1.0;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_wait,
        "a member waited for corroboration: {}",
        daemon.logs()
    );
    assert!(saw_metric, "the metric counted the wait");
    assert!(daemon
        .logs()
        .contains("nothing else this instance probes passes since: withdrawals wait"));
    daemon.stop().await;
}
