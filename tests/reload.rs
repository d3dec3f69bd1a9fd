//! Live config reload through the built binary: the file the daemon runs
//! changes under it (as a mounted ConfigMap does), and the change is
//! applied without a restart, or refused with the old config running.

mod common;

use std::time::Duration;

use common::*;
use route53_failover::demo::Mode;

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(20);

/// `text` without the member in `region`.
fn without(text: &str, region: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in text.lines() {
        if line.starts_with("      - region: ") {
            skip = line.ends_with(region);
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Writes the file the way Kubernetes updates a ConfigMap: a new file
/// renamed over the old one.
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_is_applied_live_and_a_bad_one_is_refused() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let full = config(&store, &eps, 1, "5m");
    let daemon = start_daemon(&without(&full, "ap-southeast-2")).await;
    let pid = daemon.child.id();
    wait_until("two members are published", LIMIT, || async {
        store
            .members(ZONE, NAME)
            .iter()
            .filter(|r| r.health_check_id.is_some())
            .count()
            == 2
    })
    .await;
    let first = daemon.status().await;
    let first_hash = first.config.clone().unwrap().hash;

    // A member is added: probed, published, in status, without a restart.
    replace_file(&daemon.config_path, &full);
    wait_until("ap-southeast-2 is published", LIMIT, || async {
        store
            .member_ids(ZONE, NAME)
            .contains(&set_id("ap-southeast-2"))
    })
    .await;
    let s = daemon.status().await;
    assert_eq!(s.records[0].members.len(), 3);
    assert_eq!(s.started, first.started, "the same process, not restarted");
    assert_eq!(daemon.child.id(), pid);
    assert!(s.ready, "readiness does not flip on reload");
    let c = s.config.unwrap();
    assert_ne!(c.hash, first_hash);
    assert_eq!(c.last_reload_error, None);
    let kept = daemon.member("us-east-1").await;
    assert_eq!(kept.verdict, "healthy", "a kept member keeps its verdict");
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_config_reloads_total",
            &["result=\"ok\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &page,
            "route53_failover_config_info",
            &[&format!("hash=\"{}\"", c.hash)]
        ),
        Some(1.0)
    );

    // A bad file is refused; the running config stays in force.
    replace_file(
        &daemon.config_path,
        &full.replace("interval: 200ms", "interval: 0s"),
    );
    wait_until("the refusal shows", LIMIT, || async {
        daemon
            .status()
            .await
            .config
            .unwrap()
            .last_reload_error
            .is_some_and(|e| e.contains("probe.interval: \"0s\" must be at least 100ms"))
    })
    .await;
    let s = daemon.status().await;
    assert_eq!(
        s.config.as_ref().unwrap().hash,
        c.hash,
        "the old config runs"
    );
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_config_reloads_total",
            &["result=\"error\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&page, "route53_failover_config_last_reload_success", &[]),
        Some(0.0)
    );
    assert!(daemon
        .get("/")
        .await
        .text()
        .await
        .unwrap()
        .contains("reload refused"));
    // Both reloads are on the timeline, the refusal with its reason.
    let events: Vec<route53_failover::events::Event> =
        daemon.get("/events").await.json().await.unwrap();
    let reloads: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.event == "reload")
        .map(|e| (e.reason.as_deref().unwrap_or(""), e.message.as_str()))
        .collect();
    assert_eq!(reloads.len(), 2, "{reloads:?}");
    assert_eq!(reloads[0].0, "refused");
    assert!(reloads[0].1.contains("probe.interval"), "{reloads:?}");
    assert_eq!(reloads[1].0, "ok");
    // Still working on the old config: a failing region is withdrawn.
    eps.set("eu-west-1", Mode::Fail);
    wait_until(
        "eu-west-1 is withdrawn on the old config",
        LIMIT,
        || async { !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1")) },
    )
    .await;
    eps.set("eu-west-1", Mode::Serve);

    // A member is removed (SIGHUP asks at once): its record and check go.
    replace_file(&daemon.config_path, &without(&full, "us-east-1"));
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &pid.unwrap().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    wait_until("us-east-1's record and check are gone", LIMIT, || async {
        let members = store.members(ZONE, NAME);
        members.len() == 2
            && !store.member_ids(ZONE, NAME).contains(&set_id("us-east-1"))
            && store.store.health_checks().len() == 2
    })
    .await;
    let s = daemon.status().await;
    assert_eq!(s.records[0].members.len(), 2);
    assert_eq!(s.config.unwrap().last_reload_error, None);
    let page = daemon.metrics().await;
    assert_eq!(
        metric(&page, "route53_failover_config_last_reload_success", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &page,
            "route53_failover_member_healthy",
            &["region=\"us-east-1\""]
        ),
        None,
        "a removed member's series is gone"
    );
    daemon.stop().await;
}
