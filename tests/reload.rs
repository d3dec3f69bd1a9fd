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

/// Polls the store every 10 ms until `done` holds (at most `limit`): the
/// fewest records of the name seen meanwhile, and how long it took.
async fn watch_store(
    store: &Store,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> (usize, Option<Duration>) {
    let start = std::time::Instant::now();
    let mut fewest = usize::MAX;
    while start.elapsed() < limit {
        let ids = store.member_ids(ZONE, NAME);
        fewest = fewest.min(ids.len());
        if done(&ids) {
            return (fewest, Some(start.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (fewest, None)
}

/// A reload renames every member's set identifier: the new members keep
/// their region's verdict and are published before the old records go, so
/// the record is never empty, not for 10 ms. (Before: one batch deleted
/// both members and their marker, and nothing was published until `rise`
/// probes later: resolvers cached the empty answer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_renames_members_never_empties_their_record() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let old = config(&store, &eps, 1, "5m");
    let daemon = start_daemon(&old).await;
    wait_until("all three published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    let renamed = old.replace("set_identifier: id-", "set_identifier: api-");
    let want: Vec<String> = {
        let mut v: Vec<String> = ["ap-southeast-2", "eu-west-1", "us-east-1"]
            .iter()
            .map(|r| format!("api-{r}"))
            .collect();
        v.sort();
        v
    };
    replace_file(&daemon.config_path, &renamed);
    let pid = daemon.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let (fewest, took) = watch_store(&store, LIMIT, |ids| ids == want.as_slice()).await;
    let took =
        took.unwrap_or_else(|| panic!("the renamed members were not published: {}", daemon.logs()));
    assert!(
        fewest >= 1,
        "the record was emptied ({fewest} records at one poll)"
    );
    assert_eq!(fewest, 3, "publish and delete land in one batch here");
    eprintln!(
        "rename reload: new members published {:.0} ms after SIGHUP; fewest records seen {fewest}",
        took.as_secs_f64() * 1000.0
    );
    // The old claims go too, once their records are gone; nothing left.
    wait_until("only the new claims remain", LIMIT, || async {
        let marker = store
            .store
            .records(ZONE)
            .unwrap()
            .into_iter()
            .find(|r| r.name == format!("_route53-failover.{NAME}"));
        marker
            .is_some_and(|m| m.values.len() == 3 && m.values.iter().all(|v| v.contains("set=api-")))
    })
    .await;
    let s = daemon.status().await;
    assert!(s.records[0]
        .members
        .iter()
        .all(|m| m.verdict == "healthy" && m.published));
    assert!(s.zones[0].retiring.is_empty());
    daemon.stop().await;
}

/// A record dropped from the config is left as it is and reported as
/// orphaned (status, metric, log) until on-call retires it; `retire` then
/// deletes its records and claims, and refuses a record the config still
/// manages. (Before: a reload deleted it, along with any other install's
/// records under the same owner.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_dropped_from_the_config_is_orphaned_until_retired() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "s3cret-admin-token-5f1e9a7c\n").unwrap();
    let api = config(&store, &eps, 1, "5m");
    let www = format!(
        "  - name: www.example.test\n    zone: example.test\n    probe: {{url: \"http://www.example.test/health\", connect_to: \"{a}\"}}\n    regions:\n      - {{region: us-east-1, set_identifier: www1, target: {{values: [192.0.2.7]}}}}\n      - {{region: eu-west-1, set_identifier: www2, target: {{values: [192.0.2.8]}}}}\n",
        a = eps.list[0].addr
    );
    let admin = format!("admin: {{token_file: \"{}\"}}\n", token.display());
    let daemon = start_daemon(&format!("{api}{www}{admin}")).await;
    let www_records = || {
        store
            .store
            .records(ZONE)
            .unwrap()
            .into_iter()
            .filter(|r| r.name.ends_with("www.example.test"))
            .count()
    };
    wait_until("both records published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 2 && www_records() == 3
    })
    .await;
    replace_file(&daemon.config_path, &format!("{api}{admin}"));
    wait_until("www is orphaned", LIMIT, || async {
        daemon.status().await.zones[0].orphaned == vec!["www.example.test A".to_string()]
    })
    .await;
    assert_eq!(www_records(), 3, "an orphan is left as it is");
    let page = daemon.metrics().await;
    assert_eq!(
        metric(&page, "route53_failover_records_orphaned", &[]),
        Some(1.0)
    );
    // Logged just before status says it, and read from the daemon's
    // stderr by a task of this test's own: read until it is in.
    wait_until("the orphan is logged", LIMIT, || async {
        daemon.logs().contains("the config does not manage them")
    })
    .await;

    let retire = |record: &str| {
        let base = daemon.base.clone();
        let record = record.to_string();
        async move {
            tokio::process::Command::new(BIN)
                .args([
                    "retire", "--url", &base, "--record", &record, "--by", "alice",
                ])
                .env(
                    "ROUTE53_FAILOVER_ADMIN_TOKEN",
                    "s3cret-admin-token-5f1e9a7c",
                )
                .output()
                .await
                .unwrap()
        }
    };
    let out = retire(NAME).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the config manages it"),
        "{out:?}"
    );
    assert_eq!(store.member_ids(ZONE, NAME).len(), 2);
    let out = retire("www.example.test").await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("retired www.example.test: 2 record(s)"),
        "{out:?}"
    );
    assert_eq!(www_records(), 0, "its records and claims are gone");
    wait_until("nothing is orphaned any more", LIMIT, || async {
        daemon.status().await.zones[0].orphaned.is_empty()
    })
    .await;
    daemon.stop().await;
}
