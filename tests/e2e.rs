//! End to end, through the built binary: real HTTP endpoints on loopback,
//! the strict memory store served on loopback by the test, the daemon as a
//! child process. Each test bounds every wait.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use route53_failover::demo::Mode;
use route53_failover::provider::faults::Fault;
use route53_failover::provider::Operation;
use route53_failover::provider::{Action, ProviderError, RecordSet, RecordType};

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdraws_a_failing_region_after_fall_probes_and_restores_it_after_rise() {
    let (store, eps, daemon) = three_regions(1, "5m").await;
    let before = store.store.change_log().len();
    let failed_at = SystemTime::now();
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;

    // Withdrawn by one DELETE carrying the record's exact values.
    let log = store.store.change_log();
    let withdrawal = &log[before];
    assert_eq!(withdrawal.changes.len(), 1, "{:?}", withdrawal.changes);
    assert_eq!(withdrawal.changes[0].action, Action::Delete);
    assert_eq!(withdrawal.changes[0].record.values, vec!["192.0.2.2"]);
    // What clients get now: the two regions left.
    let mut answered: Vec<String> = store
        .store
        .answer(ZONE, NAME, &RecordType::A)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.region)
        .collect();
    answered.sort();
    assert_eq!(answered, ["ap-southeast-2", "us-east-1"]);
    // fall=3 with fast re-probes (fast_interval defaults to 100ms here): the
    // third failing probe comes two fast intervals after the first.
    let took = withdrawal.at.duration_since(failed_at).unwrap();
    assert!(
        took >= Duration::from_millis(180),
        "withdrawn after {took:?}: before 3 probes"
    );

    // Status notes the record gone once the store's answer is back in the
    // daemon, a moment after the store shows it: waited for, not sampled.
    wait_until("status shows eu-west-1 withdrawn", LIMIT, || async {
        !daemon.member("eu-west-1").await.published
    })
    .await;
    let m = daemon.member("eu-west-1").await;
    assert_eq!((m.verdict.as_str(), m.published), ("unhealthy", false));
    assert_eq!(m.decision.as_deref(), Some("unhealthy"));
    assert_eq!(
        m.reason.as_deref(),
        Some("status: answered 503, expected 200")
    );
    let page = daemon.metrics().await;
    let failures = metric(
        &page,
        "route53_failover_probes_total",
        &["region=\"eu-west-1\"", "result=\"status\""],
    );
    assert!(failures >= Some(3.0), "failed probes counted: {failures:?}");
    assert_eq!(
        metric(
            &page,
            "route53_failover_member_published",
            &["region=\"eu-west-1\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &page,
            "route53_failover_member_healthy",
            &["region=\"eu-west-1\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &page,
            "route53_failover_verdict_changes_total",
            &["region=\"eu-west-1\"", "to=\"unhealthy\""]
        ),
        Some(1.0)
    );

    let recovered_at = SystemTime::now();
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is published again", LIMIT, || async {
        store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    let log = store.store.change_log();
    let restore = log.last().unwrap();
    let took = restore.at.duration_since(recovered_at).unwrap();
    // rise=2: the second success comes one fast interval after the first.
    assert!(
        took >= Duration::from_millis(80),
        "restored after {took:?}: before 2 probes"
    );
    let r = store
        .members(ZONE, NAME)
        .into_iter()
        .find(|r| r.set_identifier == Some(set_id("eu-west-1")))
        .unwrap();
    assert_eq!(
        (r.region.as_deref(), r.ttl, r.values.clone()),
        (Some("eu-west-1"), Some(60), vec!["192.0.2.2".to_string()])
    );
    wait_until("status shows eu-west-1 published", LIMIT, || async {
        daemon.member("eu-west-1").await.published
    })
    .await;
    let m = daemon.member("eu-west-1").await;
    assert_eq!(
        (m.verdict.as_str(), m.published, m.reason),
        ("healthy", true, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_withdraws_the_last_member_even_when_all_fail() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let daemon = start_daemon(&config(&store, &eps, 1, "5m")).await;
    wait_until("both published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 2
    })
    .await;

    eps.set("us-east-1", Mode::Fail);
    wait_until("us-east-1 is withdrawn", LIMIT, || async {
        store.member_ids(ZONE, NAME) == vec![set_id("eu-west-1")]
    })
    .await;
    // The last one hangs instead of failing: reason timeout.
    eps.set("eu-west-1", Mode::Hang);
    wait_until("eu-west-1 is unhealthy", LIMIT, || async {
        daemon.member("eu-west-1").await.verdict == "unhealthy"
    })
    .await;
    wait_until("the decision is in", LIMIT, || async {
        daemon.member("eu-west-1").await.decision.as_deref() == Some("last_member")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.member_ids(ZONE, NAME),
        vec![set_id("eu-west-1")],
        "the last member stays published"
    );
    let m = daemon.member("eu-west-1").await;
    assert!(m.published);
    assert!(
        m.reason
            .as_deref()
            .unwrap()
            .starts_with("timeout: no answer within 150ms"),
        "{:?}",
        m.reason
    );
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_withdrawals_blocked_total",
            &["reason=\"last_member\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &page,
            "route53_failover_record_fail_open",
            &["record=\"api.example.test\""]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_healthy_blocks_a_withdrawal_and_status_and_metrics_say_so() {
    let (store, eps, daemon) = three_regions(3, "5m").await;
    eps.set("ap-southeast-2", Mode::Fail);
    wait_until("the withdrawal is blocked", LIMIT, || async {
        daemon.member("ap-southeast-2").await.decision.as_deref() == Some("min_healthy")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.member_ids(ZONE, NAME).len(),
        3,
        "nothing withdrawn below min_healthy"
    );
    let m = daemon.member("ap-southeast-2").await;
    assert_eq!((m.verdict.as_str(), m.published), ("unhealthy", true));
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_withdrawals_blocked_total",
            &["record=\"api.example.test\"", "reason=\"min_healthy\""]
        ),
        Some(1.0),
        "counted once when the block begins"
    );
    let html = daemon.get("/").await.text().await.unwrap();
    assert!(html.contains("min_healthy"), "the page shows why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_deleted_behind_its_back_is_restored_at_resync() {
    let (store, _eps, daemon) = three_regions(1, "1s").await;
    let victim = store
        .members(ZONE, NAME)
        .into_iter()
        .find(|r| r.set_identifier == Some(set_id("us-east-1")))
        .unwrap();
    store.edit(ZONE, Action::Delete, victim.clone());
    assert_eq!(store.member_ids(ZONE, NAME).len(), 2);
    wait_until(
        "the deleted record is back",
        Duration::from_secs(6),
        || async { store.members(ZONE, NAME).contains(&victim) },
    )
    .await;
    // No verdict changed: the resync found the drift.
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_verdict_changes_total",
            &["to=\"unhealthy\""]
        ),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_record_with_a_configured_set_identifier_is_left_untouched() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let foreign = RecordSet {
        ttl: Some(300),
        ..RecordSet::latency_a(NAME, &set_id("eu-west-1"), "eu-west-1", "203.0.113.77")
    };
    store.edit(ZONE, Action::Create, foreign.clone());
    let daemon = start_daemon(&config(&store, &eps, 1, "1s")).await;
    wait_until("us-east-1 is published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 2
    })
    .await;
    wait_until("the conflict is reported", LIMIT, || async {
        daemon.member("eu-west-1").await.conflict
    })
    .await;
    // Even when its endpoint fails, and across resyncs, it is not ours to touch.
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is unhealthy", LIMIT, || async {
        daemon.member("eu-west-1").await.verdict == "unhealthy"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        store.members(ZONE, NAME).contains(&foreign),
        "the foreign record is unchanged"
    );
    let marker = store
        .store
        .records(ZONE)
        .unwrap()
        .into_iter()
        .find(|r| r.rtype == RecordType::Txt)
        .unwrap();
    assert!(
        !marker.values.iter().any(|v| v.contains("set=id-eu-west-1")),
        "never claimed: {:?}",
        marker.values
    );
    let m = daemon.member("eu-west-1").await;
    assert_eq!(m.decision.as_deref(), Some("conflict"));
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_member_conflict",
            &["region=\"eu-west-1\""]
        ),
        Some(1.0)
    );
    assert!(daemon.logs().contains("without our ownership marker"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_a_rejected_batch_are_survived_and_the_zone_converges() {
    let (store, eps, daemon) = three_regions(1, "5m").await;
    // Someone changes our record behind our back: the cached values go stale,
    // so the withdrawal's DELETE is rejected and must be re-read and re-planned.
    let mut rec = store
        .members(ZONE, NAME)
        .into_iter()
        .find(|r| r.set_identifier == Some(set_id("eu-west-1")))
        .unwrap();
    rec.ttl = Some(30);
    store.edit(ZONE, Action::Upsert, rec);
    // And the next two writes are throttled.
    store.store.inject(Fault {
        operation: Some(Operation::Change),
        error: ProviderError::Throttling("Rate exceeded".into()),
        times: 2,
    });
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1"))
    })
    .await;
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_provider_requests_total",
            &["operation=\"change\"", "outcome=\"throttling\""]
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &page,
            "route53_failover_provider_requests_total",
            &["operation=\"change\"", "outcome=\"invalid_change_batch\""]
        ),
        Some(1.0)
    );
    assert!(
        metric(
            &page,
            "route53_failover_provider_requests_total",
            &["operation=\"list_records\""]
        ) >= Some(2.0),
        "re-read after the rejection"
    );
    assert_eq!(store.member_ids(ZONE, NAME).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_is_retried_until_it_clears() {
    let (store, eps, daemon) = three_regions(1, "5m").await;
    store.store.inject(Fault {
        operation: None,
        error: ProviderError::Service("HTTP 500".into()),
        times: 1000,
    });
    eps.set("us-east-1", Mode::Fail);
    wait_until("the error shows in status", LIMIT, || async {
        daemon.status().await.zones[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 500"))
    })
    .await;
    assert_eq!(
        store.member_ids(ZONE, NAME).len(),
        3,
        "nothing could change during the outage"
    );
    store.store.clear_faults();
    wait_until(
        "us-east-1 is withdrawn once the outage clears",
        Duration::from_secs(40),
        || async { !store.member_ids(ZONE, NAME).contains(&set_id("us-east-1")) },
    )
    .await;
    wait_until("the error clears", LIMIT, || async {
        daemon.status().await.zones[0].last_error.is_none()
    })
    .await;
    let page = daemon.metrics().await;
    assert!(
        metric(
            &page,
            "route53_failover_reconcile_errors_total",
            &["kind=\"service\""]
        ) >= Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_makes_no_writes() {
    let (store, _eps, daemon) = three_regions(1, "1s").await;
    wait_until("ready", LIMIT, || async { daemon.status().await.ready }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = store.store.calls(Operation::Change);
    let reads = store.store.calls(Operation::ListRecords);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        store.store.calls(Operation::Change),
        writes,
        "no write while nothing changes"
    );
    let more_reads = store.store.calls(Operation::ListRecords) - reads;
    assert!(
        (1..=4).contains(&more_reads),
        "reads only at resync (1s): {more_reads} in 2.6s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_and_changes_no_dns() {
    // fall 1: one probe cut by the shutdown and counted as a failure would
    // turn its member unhealthy at once (and say so in the log), so the
    // test sees it; with fall 3 it could pass unseen.
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let text = config(&store, &eps, 1, "5m")
        .replace("fall: 3", "fall: 1")
        .replace(
            "interval: 200ms, timeout: 150ms",
            "interval: 2s, timeout: 1500ms",
        );
    let mut daemon = start_daemon(&text).await;
    wait_until("all three are published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    wait_until("ready", LIMIT, || async {
        daemon.get("/readyz").await.status() == 200
    })
    .await;
    // Settled (the checks attached in a second batch): any later change
    // would be the shutdown's.
    store.settled(ZONE, NAME, 3).await;
    let verdicts_before = daemon.logs().matches("verdict changed").count();
    assert_eq!(daemon.get("/healthz").await.status(), 200);
    let records = store.store.records(ZONE).unwrap();
    let changes = store.store.change_log().len();
    // The endpoints go dark as the pod is stopped: in-flight probes are cut,
    // which must not count as failures.
    eps.set("us-east-1", Mode::Hang);
    eps.set("eu-west-1", Mode::Hang);
    // SIGTERM while both have a probe hanging (each within its 1.5 s).
    let (a, b) = (eps.list[0].requests(), eps.list[1].requests());
    wait_until("a probe of each is in flight", LIMIT, || async {
        eps.list[0].requests() > a && eps.list[1].requests() > b
    })
    .await;
    daemon.sigterm();
    let status = tokio::time::timeout(Duration::from_secs(20), daemon.child.wait())
        .await
        .expect("exits within 20s")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", daemon.logs());
    assert_eq!(store.store.records(ZONE).unwrap(), records);
    assert_eq!(store.store.change_log().len(), changes);
    // The log's last line is in once the pipe is read to its end.
    wait_until("the log is read to its end", LIMIT, || async {
        daemon.logs().contains("stopped")
    })
    .await;
    assert!(daemon.logs().contains("SIGTERM"));
    assert_eq!(
        daemon.logs().matches("verdict changed").count(),
        verdicts_before,
        "a probe cut by the shutdown was counted: {}",
        daemon.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_page_passes_promtool() {
    let (_store, eps, daemon) = three_regions(1, "5m").await;
    eps.set("eu-west-1", Mode::Fail);
    // Until the failure has turned the verdict: a member's first verdict
    // (from unknown) is not counted as a change.
    wait_until(
        "a failure is counted and turns the verdict",
        LIMIT,
        || async {
            let page = daemon.metrics().await;
            metric(
                &page,
                "route53_failover_probes_total",
                &["result=\"status\""],
            )
            .is_some()
                && metric(
                    &page,
                    "route53_failover_verdict_changes_total",
                    &["to=\"unhealthy\""],
                )
                .is_some()
        },
    )
    .await;
    let page = daemon.metrics().await;
    for name in [
        "route53_failover_probe_duration_seconds_bucket",
        "route53_failover_probes_total",
        "route53_failover_member_healthy",
        "route53_failover_member_published",
        "route53_failover_verdict_changes_total",
        "route53_failover_reconcile_duration_seconds_bucket",
        "route53_failover_provider_requests_total",
        "route53_failover_last_reconcile_success_timestamp_seconds",
        "route53_failover_build_info",
    ] {
        assert!(metric(&page, name, &[]).is_some(), "{name} missing");
    }
    promtool_check_metrics(&page);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_command_prints_a_table() {
    let (_store, eps, daemon) = three_regions(1, "5m").await;
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is unhealthy and withdrawn", LIMIT, || async {
        let m = daemon.member("eu-west-1").await;
        m.verdict == "unhealthy" && !m.published
    })
    .await;
    let out = tokio::process::Command::new(BIN)
        .args(["status", "--url", &daemon.base])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("owner e2e  provider memory  ready yes"),
        "{text}"
    );
    let header = lines.iter().position(|l| l.starts_with("RECORD")).unwrap();
    let euw1 = lines.iter().find(|l| l.contains("eu-west-1")).unwrap();
    let cols: Vec<&str> = euw1.split_whitespace().collect();
    assert_eq!(
        &cols[..6],
        [
            "api.example.test",
            "A",
            "eu-west-1",
            "unhealthy",
            "no",
            "unhealthy"
        ],
        "{text}"
    );
    assert_eq!(lines.len(), header + 4, "one line per member:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_reprints_and_rides_out_a_daemon_that_is_gone() {
    let (_store, eps, daemon) = three_regions(1, "5m").await;
    let mut watch = tokio::process::Command::new(BIN)
        .args([
            "status",
            "--url",
            &daemon.base,
            "--watch",
            "--every",
            "200ms",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;
    async fn next(lines: &mut Lines) -> String {
        tokio::time::timeout(LIMIT, lines.next_line())
            .await
            .expect("status --watch keeps printing")
            .unwrap()
            .expect("status --watch keeps running")
    }
    let mut tables = 0;
    for _ in 0..1000 {
        if next(&mut lines)
            .await
            .starts_with("owner e2e  provider memory")
        {
            tables += 1;
            if tables == 2 {
                break;
            }
        }
    }
    assert_eq!(tables, 2, "the table, printed again");
    // The daemon goes away: the watch says so and keeps going.
    daemon.stop().await;
    drop(eps);
    let mut said = None;
    for _ in 0..1000 {
        let line = next(&mut lines).await;
        if line.contains("cannot reach") {
            said = Some(line);
            break;
        }
    }
    let said = said.expect("the watch says the daemon cannot be reached");
    assert!(said.ends_with("retrying every 200ms"), "{said}");
    let _ = watch.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_probes_once_prints_the_changes_and_writes_nothing() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    eps.set("eu-west-1", Mode::Fail);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, config(&store, &eps, 1, "5m")).unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["plan", "--config"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words = |needle: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {text}"));
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(
        words("us-east-1"),
        ["us-east-1", "id-us-east-1", "publish", "healthy"]
    );
    assert_eq!(
        words("eu-west-1"),
        ["eu-west-1", "id-eu-west-1", "withdraw", "unhealthy"]
    );
    assert!(text.contains("2 change(s):"), "{text}");
    assert!(
        text.contains(
            "UPSERT api.example.test A (id-us-east-1) region=us-east-1 ttl=60 values=192.0.2.1"
        ),
        "{text}"
    );
    assert_eq!(
        store.store.calls(Operation::Change),
        0,
        "plan changes nothing"
    );
    assert!(store.store.records(ZONE).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_secrets_never_reach_logs_status_metrics_or_the_page() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("token");
    std::fs::write(&token, "tok-SECRET-4711\n").unwrap();
    let text = config(&store, &eps, 1, "5m").replace(
        "expect: {status: [200], body_contains: ok}",
        &format!(
            "expect: {{status: [200], body_contains: ok}}, headers: {{Authorization: \"Bearer ${{file:{}}}\"}}",
            token.display()
        ),
    );
    assert!(text.contains("Authorization"));
    // Route53's checkers cannot send the token: they check another path.
    let text = text.replace(
        "defaults:\n",
        "defaults:\n  health_check: {resource_path: /public/health}\n",
    );
    let daemon = start_daemon(&text.replace("RUST_LOG", "")).await;
    wait_until("both published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 2
    })
    .await;
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 1
    })
    .await;
    let status = daemon.get("/status").await.text().await.unwrap();
    let page = daemon.get("/").await.text().await.unwrap();
    let metrics = daemon.metrics().await;
    for (what, text) in [
        ("status", &status),
        ("page", &page),
        ("metrics", &metrics),
        ("logs", &daemon.logs()),
    ] {
        assert!(
            !text.contains("SECRET-4711"),
            "the token leaked into {what}"
        );
    }
    assert!(
        daemon.logs().contains("verdict changed"),
        "the logs are there to check"
    );
}

/// The README's first command: `demo` runs three regions in the embedded
/// store; breaking one withdraws it, and the simulated Route53 checkers
/// turn on its health check too; recovering brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_withdraws_a_broken_region_and_brings_it_back() {
    let (_demo, base) = start_demo().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let status = || async {
        let r = http.get(format!("{base}/status")).send().await.ok()?;
        r.json::<route53_failover::status::Status>().await.ok()
    };
    wait_until(
        "the demo publishes its three regions",
        Duration::from_secs(20),
        || async {
            status().await.is_some_and(|s| {
                s.records[0]
                    .members
                    .iter()
                    .all(|m| m.published && m.health_check.as_ref().is_some_and(|h| h.id.is_some()))
            })
        },
    )
    .await;
    let ok = http
        .post(format!("{base}/demo/regions/eu-west-1/fail"))
        .send()
        .await
        .unwrap();
    assert!(ok.status().is_success());
    wait_until(
        "eu-west-1 is withdrawn and Route53 sees it fail",
        Duration::from_secs(30),
        || async {
            status().await.is_some_and(|s| {
                let m = s.member("eu-west-1").unwrap();
                !m.published
                    && m.health_check.as_ref().unwrap().route53.as_deref() == Some("unhealthy")
            })
        },
    )
    .await;
    let zone: Vec<RecordSet> = http
        .get(format!("{base}/memory/zones/example.test/records"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!zone
        .iter()
        .any(|r| r.region.as_deref() == Some("eu-west-1")));
    http.post(format!("{base}/demo/regions/eu-west-1/recover"))
        .send()
        .await
        .unwrap();
    wait_until("eu-west-1 is back", Duration::from_secs(20), || async {
        status()
            .await
            .is_some_and(|s| s.member("eu-west-1").unwrap().published)
    })
    .await;

    // ap-southeast-2 fails over through its routing control: the switch
    // goes Off, its record stays.
    http.post(format!("{base}/demo/regions/ap-southeast-2/fail"))
        .send()
        .await
        .unwrap();
    wait_until(
        "ap-southeast-2's switch is Off",
        Duration::from_secs(20),
        || async {
            status().await.is_some_and(|s| {
                !s.member("ap-southeast-2").unwrap().published
                    && s.lever.as_ref().is_some_and(|l| {
                        l.switches.iter().any(|w| {
                            w.member.ends_with("api-apse2")
                                && w.state == route53_failover::decide::lever::Switch::Off
                        })
                    })
            })
        },
    )
    .await;
    let zone: Vec<RecordSet> = http
        .get(format!("{base}/memory/zones/example.test/records"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(zone
        .iter()
        .any(|r| r.region.as_deref() == Some("ap-southeast-2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_the_page_of_one_record_and_of_a_record_the_config_has_not() {
    let (_store, _eps, daemon) = three_regions(1, "5m").await;
    // A record is named as DNS names are: case and a trailing dot aside.
    let one: route53_failover::status::Status = daemon
        .get("/status?record=API.example.test.")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one.records.len(), 1);
    assert_eq!(one.records[0].name, "api.example.test");
    assert_eq!(one.records[0].members.len(), 3);
    for path in [
        "/status?record=nope.example.test",
        "/?record=nope.example.test",
    ] {
        let r = daemon.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("\"nope.example.test\""), "{path}: {body}");
    }
    let page = daemon
        .get("/?record=api.example.test")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("<h2>api.example.test A").count(), 1, "{page}");
    // The page's own links: the folded records shown, a page turned.
    for path in ["/?all=1", "/?all=1&page=2", "/?page=1"] {
        let r = daemon.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        let page = r.text().await.unwrap();
        assert!(page.contains("<h2>api.example.test A"), "{path}: {page}");
    }
    // The CLI asks for one record the same way; a name the daemon does
    // not manage is bad input, named.
    let status = |record: &'static str| {
        tokio::process::Command::new(BIN)
            .args(["status", "--url", &daemon.base, "--record", record])
            .output()
    };
    let out = status("api.example.test").await.unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows = text.lines().filter(|l| l.starts_with("api.example.test "));
    assert_eq!(rows.count(), 3, "{text}");
    let out = status("nope.example.test").await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--record") && err.contains("nope.example.test"),
        "{err}"
    );
}
