//! The data-plane lever: ARC routing controls flipped through the real
//! `aws-sdk-route53recoverycluster` client. moto has no ARC backend, so
//! the cluster is the crate's loopback stand-in (`lever::standin`, the
//! routing-control API over awsJson 1.0), sharing its switches with the
//! strict store, whose answer function follows each record's
//! `RECOVERY_CONTROL` check: the tests assert what clients would get.
//! Every cluster here has five endpoints: two refuse connections, one
//! accepts and never answers, two serve.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::lever::*;
use common::*;
use route53_failover::config::{ClusterEndpoint, LeverConfig, LeverMode};
use route53_failover::decide::lever::Switch;
use route53_failover::demo::Mode;
use route53_failover::lever::standin::{AssertionRule, Board};
use route53_failover::lever::{LeverClient, LeverError};
use route53_failover::provider::memory::StoredHealthCheck;
use route53_failover::provider::{CheckerReport, HealthCheckType, RecordType};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(15);

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

const RULE: &str =
    "arn:aws:route53-recovery-control::123456789012:controlpanel/panel1/safetyrule/keep3";

fn lever_config(urls: &[String]) -> LeverConfig {
    LeverConfig {
        endpoints: urls
            .iter()
            .map(|u| ClusterEndpoint {
                url: u.parse().unwrap(),
                region: "us-west-2".into(),
            })
            .collect(),
        mode: LeverMode::Switches,
        call_timeout: Duration::from_millis(300),
        read_interval: Duration::from_secs(30),
        max_requests_per_second: 100.0,
        allow_safety_override: false,
    }
}

fn credentials() -> aws_sdk_route53recoverycluster::config::Credentials {
    aws_sdk_route53recoverycluster::config::Credentials::new("test", "test", None, None, "test")
}

#[tokio::test]
async fn the_client_rotates_past_dead_endpoints_and_names_the_refusing_rule() {
    let board = Board::default();
    for r in ["us-east-1", "eu-west-1"] {
        board.set(&arn(r), true);
    }
    let f = start_cluster(board.clone()).await;
    f.cluster.add_rule(AssertionRule {
        arn: RULE.into(),
        name: "keep-one".into(),
        controls: vec![arn("us-east-1"), arn("eu-west-1")],
        min_on: 1,
    });
    let client = LeverClient::new(&lever_config(&f.urls), Some(credentials())).await;

    // The first call passes a refused and a hanging endpoint.
    assert_eq!(client.get(&arn("us-east-1")).await, Ok(Switch::On));
    assert_eq!(f.hung.load(Ordering::Relaxed), 1);
    // The next ones start at the endpoint that answered: the hanging one
    // is not asked again.
    client
        .set(&[(arn("us-east-1"), Switch::Off)], &[], 7)
        .await
        .unwrap();
    assert_eq!(board.get(&arn("us-east-1")), Some(false));
    // The writer's term goes with the call.
    let terms = f.cluster.terms.lock().unwrap().clone();
    assert_eq!(terms.last().map(|t| t.1), Some(Some(7)));
    assert_eq!(client.get(&arn("us-east-1")).await, Ok(Switch::Off));
    assert_eq!(
        f.hung.load(Ordering::Relaxed),
        1,
        "went back to the hanging endpoint"
    );

    // The rule keeps one On: ARC's refusal names it, and nothing changes.
    let refused = client.set(&[(arn("eu-west-1"), Switch::Off)], &[], 7).await;
    match refused {
        Err(LeverError::Refused { rule, message }) => {
            assert_eq!(rule, RULE);
            assert!(message.contains("keep-one"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(board.get(&arn("eu-west-1")), Some(true));
    // Overriding the rule is what a forced drain may do.
    client
        .set(&[(arn("eu-west-1"), Switch::Off)], &[RULE.to_string()], 7)
        .await
        .unwrap();
    assert_eq!(board.get(&arn("eu-west-1")), Some(false));
    // An unknown routing control: refused by every endpoint alike, said once.
    match client.get(&arn("sa-east-1")).await {
        Err(LeverError::Rejected(m)) => assert!(m.contains("ResourceNotFound"), "{m}"),
        other => panic!("expected not found, got {other:?}"),
    }
}

#[tokio::test]
async fn with_no_endpoint_answering_each_one_is_named() {
    let (_refusing, urls): (Vec<_>, Vec<_>) = [refused_url(), refused_url()].into_iter().unzip();
    let client = LeverClient::new(&lever_config(&urls), Some(credentials())).await;
    match client.get(&arn("us-east-1")).await {
        Err(LeverError::Unavailable(m)) => {
            for u in &urls {
                assert!(m.contains(u.as_str()), "{u} missing from {m}");
            }
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

impl Setup {
    /// The daemon on the e2e config with the lever in `mode` (and `extra`
    /// lines of its section, or top-level keys after them), once every
    /// region answers.
    async fn run(&self, resync: &str, mode: &str, extra: &str) -> Daemon {
        self.run_edited(resync, mode, extra, |c| c).await
    }

    /// [`Setup::run`] with the config text edited by `edit` first.
    async fn run_edited(
        &self,
        resync: &str,
        mode: &str,
        extra: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Daemon {
        let cfg = lever_yaml(
            config(&self.store, &self.eps, 1, resync),
            &self.fixture.urls,
            &REGIONS,
            mode,
            extra,
        );
        let daemon = start_daemon(&edit(cfg)).await;
        all_answering(self).await;
        daemon
    }

    /// ARC's assertion rule `keep3`: every switch stays On.
    fn keep_all_on(&self) {
        self.fixture.cluster.add_rule(AssertionRule {
            arn: RULE.into(),
            name: "keep3".into(),
            controls: REGIONS.iter().map(|r| arn(r)).collect(),
            min_on: 3,
        });
    }
}

/// Route53's control plane down: every call answers a server error.
fn outage() -> route53_failover::provider::faults::Fault {
    route53_failover::provider::faults::Fault {
        operation: None,
        error: route53_failover::provider::ProviderError::Service("503 Service Unavailable".into()),
        times: u32::MAX,
    }
}

/// The check a record carries, and its children, from the store.
fn carried(s: &Setup, region: &str) -> Option<(StoredHealthCheck, Vec<StoredHealthCheck>)> {
    let checks = s.store.store.health_checks();
    let record = s
        .store
        .members(ZONE, NAME)
        .into_iter()
        .find(|r| r.region.as_deref() == Some(region))?;
    let id = record.health_check_id?;
    let c = checks.iter().find(|c| c.check.id == id)?.clone();
    let children = c
        .check
        .config
        .child_health_checks
        .iter()
        .filter_map(|k| checks.iter().find(|c| &c.check.id == k).cloned())
        .collect();
    Some((c, children))
}

/// Waits until every region answers: each record carries a CALCULATED
/// check over its endpoint check and its switch's RECOVERY_CONTROL check,
/// every switch On.
async fn all_answering(s: &Setup) {
    wait_until("every region answers, switches On", LIMIT, || async {
        let attached = REGIONS.iter().all(|r| {
            carried(s, r).is_some_and(|(c, children)| {
                c.check.config.kind == HealthCheckType::Calculated
                    && c.check.config.health_threshold == 2
                    && children.len() == 2
                    && children
                        .iter()
                        .any(|k| k.check.config.routing_control_arn.as_deref() == Some(&arn(r)))
                    && children
                        .iter()
                        .any(|k| k.check.config.kind == HealthCheckType::HttpStrMatch)
            })
        });
        attached
            && s.store.members(ZONE, NAME).len() == 3
            && REGIONS.iter().all(|r| s.board.get(&arn(r)) == Some(true))
            && answered(&s.store) == sorted(&REGIONS)
    })
    .await;
}

#[tokio::test]
async fn a_failing_region_goes_out_through_its_switch_and_back_with_no_record_change() {
    let s = setup(&REGIONS).await;
    let daemon = s.run("1m", "switches", "").await;
    let changes_before = s.store.store.change_log().len();

    let failed_at = Instant::now();
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    let took = failed_at.elapsed();
    assert_eq!(answered(&s.store), sorted(&["us-east-1", "ap-southeast-2"]));
    // Static stability: the record and its check stay as they were.
    assert_eq!(s.store.members(ZONE, NAME).len(), 3);
    assert_eq!(
        s.store.store.change_log().len(),
        changes_before,
        "switches mode changed a record at failover"
    );
    // Status follows once the change is read back.
    wait_until("status shows the switch Off, as wanted", LIMIT, || async {
        let lever = daemon.status().await.lever.expect("status shows the lever");
        lever.mode == LeverMode::Switches
            && lever.switches.iter().any(|w| {
                w.arn == arn("eu-west-1")
                    && w.member == format!("{NAME} A {}", set_id("eu-west-1"))
                    && (w.state, w.want) == (Switch::Off, Switch::Off)
            })
    })
    .await;
    // What counts as published follows the switch's known state at the
    // reconcile it wakes, a moment after the lever shows it: waited for.
    wait_until("status shows eu-west-1 unpublished", LIMIT, || async {
        !daemon.member("eu-west-1").await.published
    })
    .await;
    let m = daemon.member("eu-west-1").await;
    assert_eq!(
        (m.published, m.decision.as_deref()),
        (false, Some("unhealthy"))
    );
    eprintln!("failure to switch Off: {took:?}");
    verdict_to_switch_within_a_second(&daemon, "eu-west-1").await;

    s.eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 answers again", LIMIT, || async {
        answered(&s.store) == sorted(&REGIONS)
    })
    .await;
    assert_eq!(s.store.store.change_log().len(), changes_before);

    // The endpoint check beside the switch: Route53's own checkers failing
    // it take the region out with its switch On (the daemon dead, say).
    let (_, children) = carried(&s, "us-east-1").unwrap();
    let endpoint = children
        .iter()
        .find(|c| c.check.config.routing_control_arn.is_none())
        .unwrap();
    s.store
        .store
        .set_report(
            &endpoint.check.id,
            CheckerReport {
                healthy: 0,
                total: 3,
                failure: Some("Failure: Connection timed out".into()),
            },
        )
        .unwrap();
    assert_eq!(s.board.get(&arn("us-east-1")), Some(true));
    assert_eq!(answered(&s.store), sorted(&["eu-west-1", "ap-southeast-2"]));
    daemon.stop().await;
}

#[tokio::test]
async fn switches_and_records_mode_moves_both() {
    let s = setup(&REGIONS).await;
    let daemon = s.run("1m", "switches_and_records", "").await;
    s.eps.set("ap-southeast-2", Mode::Fail);
    wait_until(
        "ap-southeast-2's switch Off and record gone",
        LIMIT,
        || async {
            s.board.get(&arn("ap-southeast-2")) == Some(false)
                && !s
                    .store
                    .member_ids(ZONE, NAME)
                    .contains(&set_id("ap-southeast-2"))
        },
    )
    .await;
    assert_eq!(answered(&s.store), sorted(&["us-east-1", "eu-west-1"]));
    daemon.stop().await;
}

#[tokio::test]
async fn an_assertion_rule_refusal_is_shown_by_name_and_not_retried_in_a_loop() {
    let s = setup(&REGIONS).await;
    // A rule stricter than the daemon's own: all three On.
    s.keep_all_on();
    let daemon = s.run("1m", "switches", "").await;
    s.eps.set("us-east-1", Mode::Fail);
    wait_until("the refusal is in status", LIMIT, || async {
        daemon
            .status()
            .await
            .lever
            .and_then(|l| l.refused)
            .is_some_and(|r| r.rule == RULE && r.message.contains("keep3"))
    })
    .await;
    assert_eq!(s.board.get(&arn("us-east-1")), Some(true), "ARC kept it On");
    let refusals = s.fixture.cluster.refusals.load(Ordering::Relaxed);
    // Reads go on (read_interval 1s, drift repair); the refused plan is
    // not sent again while nothing changes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        s.fixture.cluster.refusals.load(Ordering::Relaxed),
        refusals,
        "the refused plan was sent again"
    );
    let events = daemon.get("/events").await.text().await.unwrap();
    assert!(
        events.contains("keep3") && events.contains("\"switch\""),
        "{events}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn with_route53s_control_plane_down_a_failing_region_still_goes_out() {
    let s = setup(&REGIONS).await;
    let daemon = s.run("2s", "switches", "").await;
    let checks_before = s.store.store.health_checks().len();

    // Every Route53 call fails with a server error from now on.
    s.store.store.inject(outage());
    // Resyncs (every 2s) fail and forget the zone; status says so.
    wait_until(
        "status says the control plane is impaired",
        Duration::from_secs(10),
        || async {
            let cp = daemon.status().await.control_plane;
            cp.impaired && cp.lever && cp.line().is_some_and(|l| l.contains("routing controls"))
        },
    )
    .await;
    let failed_at = Instant::now();
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is out of the answer", LIMIT, || async {
        answered(&s.store) == sorted(&["us-east-1", "ap-southeast-2"])
    })
    .await;
    eprintln!(
        "during the outage, failure to out of the answer: {:?}",
        failed_at.elapsed()
    );
    verdict_to_switch_within_a_second(&daemon, "eu-west-1").await;

    // The outage ends: records and checks as they were, nothing doubled.
    s.store.store.clear_faults();
    s.eps.set("eu-west-1", Mode::Serve);
    wait_until(
        "every region answers again",
        Duration::from_secs(10),
        || async { answered(&s.store) == sorted(&REGIONS) },
    )
    .await;
    assert_eq!(s.store.store.health_checks().len(), checks_before);
    assert_eq!(s.store.members(ZONE, NAME).len(), 3);
    wait_until(
        "the control plane answers again",
        Duration::from_secs(10),
        || async { !daemon.status().await.control_plane.impaired },
    )
    .await;
    // Each event is emitted a moment after status changes: the timeline
    // is read until the second is there.
    wait_until(
        "the timeline says the control plane answers again",
        Duration::from_secs(5),
        || async {
            let events = daemon.get("/events").await.text().await.unwrap();
            events.contains("route53 control plane answers again")
        },
    )
    .await;
    let events = daemon.get("/events").await.text().await.unwrap();
    assert!(
        events.contains("route53 control plane impaired"),
        "{events}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn without_a_lever_an_outage_is_shown_and_the_endpoint_checks_stay() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&REGIONS).await;
    let daemon = start_daemon(&config(&store, &eps, 1, "2s")).await;
    wait_until("all three published with their checks", LIMIT, || async {
        let m = store.members(ZONE, NAME);
        m.len() == 3 && m.iter().all(|r| r.health_check_id.is_some())
    })
    .await;
    let before = store.members(ZONE, NAME);
    store.store.inject(outage());
    eps.set("eu-west-1", Mode::Fail);
    wait_until(
        "status says the control plane is impaired",
        Duration::from_secs(10),
        || async {
            let st = daemon.status().await;
            st.control_plane.impaired
                && !st.control_plane.lever
                && st
                    .control_plane
                    .line()
                    .is_some_and(|l| l.contains("health checks are the fallback"))
        },
    )
    .await;
    let page = daemon.get("/").await.text().await.unwrap();
    assert!(
        page.contains("route53 control plane: impaired since"),
        "the page says it"
    );
    // The gauge is set a moment after status says it (and stays while
    // the outage lasts): read until it is.
    wait_until("the metric says it", Duration::from_secs(5), || async {
        let page = daemon.metrics().await;
        metric(&page, "route53_failover_control_plane_impaired", &[]) == Some(1.0)
    })
    .await;
    // Nothing could change: each record keeps its endpoint check, which
    // Route53's own checkers act on.
    assert_eq!(store.members(ZONE, NAME), before);
    store.store.clear_faults();
    wait_until(
        "eu-west-1 is withdrawn once the outage ends",
        Duration::from_secs(10),
        || async { !store.member_ids(ZONE, NAME).contains(&set_id("eu-west-1")) },
    )
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_switch_flipped_by_hand_is_set_back() {
    // Drift repair: a switch flipped outside the daemon is set back at the
    // next read (read_interval 1s here).
    let s = setup(&REGIONS).await;
    let daemon = s.run("1m", "switches", "").await;
    s.board.set(&arn("us-east-1"), false);
    wait_until("the switch is set back On", LIMIT, || async {
        s.board.get(&arn("us-east-1")) == Some(true)
    })
    .await;
    daemon.stop().await;
}

const TOKEN: &str = "s3cret-lever-admin-token-7a1c";

/// `route53-failover drain` (or `undrain`) of `region`, at most 30 s.

#[tokio::test]
async fn a_drain_turns_the_switch_off_and_an_undrain_on() {
    let s = setup(&REGIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let admin = format!("admin: {{token_file: \"{}\"}}\n", token.display());
    let daemon = s.run("1m", "switches", &admin).await;
    on_call(&daemon, &token, "drain", "us-east-1", false).await;
    wait_until("us-east-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("us-east-1")) == Some(false)
    })
    .await;
    assert_eq!(answered(&s.store), sorted(&["eu-west-1", "ap-southeast-2"]));
    assert_eq!(s.store.members(ZONE, NAME).len(), 3, "the record stays");
    on_call(&daemon, &token, "undrain", "us-east-1", false).await;
    wait_until("us-east-1 answers again", LIMIT, || async {
        answered(&s.store) == sorted(&REGIONS)
    })
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_forced_drain_overrides_the_refusing_rule_when_allowed() {
    let s = setup(&REGIONS).await;
    s.keep_all_on();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let admin = format!(
        "  allow_safety_override: true\nadmin: {{token_file: \"{}\"}}\n",
        token.display()
    );
    let daemon = s.run("1m", "switches", &admin).await;
    // A plain drain: ARC's rule refuses it, and the switch stays On.
    on_call(&daemon, &token, "drain", "eu-west-1", false).await;
    wait_until("the refusal is in status", LIMIT, || async {
        daemon
            .status()
            .await
            .lever
            .is_some_and(|l| l.refused.is_some_and(|r| r.rule == RULE))
    })
    .await;
    assert_eq!(s.board.get(&arn("eu-west-1")), Some(true));
    // Forced, with allow_safety_override: the rule is overridden.
    on_call(&daemon, &token, "drain", "eu-west-1", true).await;
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    let events = daemon.get("/events").await.text().await.unwrap();
    assert!(events.contains("overrides ARC safety rule"), "{events}");
    daemon.stop().await;
}

/// The lever's task alone, on the five-endpoint cluster: it reads every
/// configured switch before anything is wanted; it sets nothing while
/// this instance may not write (a former lease holder); a call a safety
/// rule refuses (an Off) does not hold back another (an On).
#[tokio::test]
async fn the_lever_sets_only_as_the_writer_and_a_refusal_holds_back_only_its_own_call() {
    use route53_failover::lever::{Lever, Owner, Wanted};
    use std::sync::atomic::AtomicBool;
    let board = Board::default();
    board.set(&arn("us-east-1"), true);
    board.set(&arn("eu-west-1"), true);
    board.set(&arn("ap-southeast-2"), false);
    let f = start_cluster(board.clone()).await;
    // At least two of us-east-1 and eu-west-1 stay On.
    f.cluster.add_rule(AssertionRule {
        arn: RULE.into(),
        name: "keep-two".into(),
        controls: vec![arn("us-east-1"), arn("eu-west-1")],
        min_on: 2,
    });
    let owners = REGIONS
        .iter()
        .map(|r| {
            let o = Owner {
                record: NAME.into(),
                rtype: "A".into(),
                set_identifier: set_id(r),
                region: r.to_string(),
            };
            (arn(r), o)
        })
        .collect();
    let writer = Arc::new(AtomicBool::new(false));
    let w = writer.clone();
    let mut config = lever_config(&f.urls);
    config.read_interval = Duration::from_millis(200);
    let lever = Lever::new(
        config,
        owners,
        Box::new(move || w.load(Ordering::Relaxed).then_some(0)),
        Arc::default(),
        Arc::new(route53_failover::metrics::Metrics::new()),
        Some(credentials()),
    )
    .await;
    let stop = CancellationToken::new();
    tokio::spawn(lever.clone().run(stop.clone()));
    wait_until("every switch is read", LIMIT, || async {
        lever.known(&arn("ap-southeast-2")) == Switch::Off
            && lever.known(&arn("us-east-1")) == Switch::On
    })
    .await;

    let want = |r: &str, s: Switch| {
        (
            arn(r),
            Wanted {
                want: s,
                forced: false,
            },
        )
    };
    lever.want([
        want("us-east-1", Switch::Off),
        want("ap-southeast-2", Switch::On),
    ]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        f.cluster.updates.load(Ordering::Relaxed),
        0,
        "set while not the writer"
    );
    assert_eq!(board.get(&arn("ap-southeast-2")), Some(false));

    writer.store(true, Ordering::Relaxed);
    wait_until(
        "the On goes, the refused Off does not hold it",
        LIMIT,
        || async {
            board.get(&arn("ap-southeast-2")) == Some(true)
                && lever.status().refused.is_some_and(|r| r.rule == RULE)
        },
    )
    .await;
    assert_eq!(board.get(&arn("us-east-1")), Some(true), "ARC kept it On");
    let updates = f.cluster.updates.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        f.cluster.updates.load(Ordering::Relaxed),
        updates,
        "the refused call went again"
    );

    // A freeze releases a switch: flipped by hand, it is not set back.
    lever.release(&[arn("ap-southeast-2")]);
    board.set(&arn("ap-southeast-2"), false);
    wait_until("the hand's flip is read", LIMIT, || async {
        lever.known(&arn("ap-southeast-2")) == Switch::Off
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        board.get(&arn("ap-southeast-2")),
        Some(false),
        "set back while released"
    );
    stop.cancel();
}

/// Route53's control plane hangs (every call waits until the caller's
/// timeout), in `switches_and_records` mode: a region fails and its
/// pass hangs on the record write; 5 s later another region of the same
/// record fails. Each is switched Off within a second of its own verdict:
/// the pass waiting on Route53 for the first does not hold the second's
/// switch (decided beside the pass, from what is known).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_route53_hanging_a_pass_stuck_on_a_write_holds_no_other_switch() {
    let s = setup(&REGIONS).await;
    let daemon = s.run("1m", "switches_and_records", "").await;
    s.store.store.set_latency(Duration::from_secs(3600));
    let first = Instant::now();
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    eprintln!(
        "Route53 hanging, first failure: switch Off in {:?}",
        first.elapsed()
    );
    verdict_to_switch_within_a_second(&daemon, "eu-west-1").await;
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(first.elapsed())).await;
    let second = Instant::now();
    s.eps.set("ap-southeast-2", Mode::Fail);
    wait_until("ap-southeast-2's switch is Off", LIMIT, || async {
        s.board.get(&arn("ap-southeast-2")) == Some(false)
    })
    .await;
    eprintln!(
        "Route53 hanging, second failure 5 s later: switch Off in {:?}",
        second.elapsed()
    );
    verdict_to_switch_within_a_second(&daemon, "ap-southeast-2").await;
    assert_eq!(
        s.board.get(&arn("us-east-1")),
        Some(true),
        "us-east-1 stays"
    );
    assert_eq!(answered(&s.store), sorted(&["us-east-1"]));
    s.store.store.set_latency(Duration::ZERO);
    drop(daemon);
}

/// Two records in the zone, each member with its own switch:
/// `api.example.test` in us-east-1 and eu-west-1, `api2.example.test` in
/// us-east-1 and ap-southeast-2 (its switches `<arn>2`).
fn two_records(s: &Setup) -> String {
    two_records_in(s, ZONE)
}

/// [`two_records`] with `api2` in `zone2`.
fn two_records_in(s: &Setup, zone2: &str) -> String {
    let base = config(&s.store, &s.eps, 1, "1m");
    let (head, members) = base.split_once("    regions:\n").unwrap();
    let member = |r: &str, switch: String| -> String {
        let block: String = members
            .split_inclusive('\n')
            .skip_while(|l| !l.starts_with(&format!("      - region: {r}")))
            .take(4)
            .collect();
        block.replacen(
            '\n',
            &format!("\n        routing_control: \"{switch}\"\n"),
            1,
        )
    };
    let probe = head.lines().find(|l| l.starts_with("    probe:")).unwrap();
    let endpoints: Vec<String> = s
        .fixture
        .urls
        .iter()
        .map(|u| format!("{{url: \"{u}\", region: us-west-2}}"))
        .collect();
    format!(
        "{head}    regions:\n{}{}  - name: api2.{zone2}\n    zone: {zone2}\n{probe}\n    regions:\n{}{}routing_control:\n  cluster_endpoints: [{}]\n  call_timeout: 300ms\n  read_interval: 1s\n",
        member("us-east-1", arn("us-east-1")),
        member("eu-west-1", arn("eu-west-1")),
        member("us-east-1", format!("{}2", arn("us-east-1"))),
        member("ap-southeast-2", format!("{}2", arn("ap-southeast-2"))),
        endpoints.join(", ")
    )
}

/// An assertion rule keeps api.example.test's two switches On; each
/// record loses a region. The refused Off costs only its own record:
/// api2's failing region is switched Off within a second of its verdict
/// while api's refusal (named in status) stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_costs_only_its_own_record() {
    let s = setup(&REGIONS).await;
    for r in ["us-east-1", "ap-southeast-2"] {
        s.board.set(&format!("{}2", arn(r)), false);
    }
    s.fixture.cluster.add_rule(AssertionRule {
        arn: RULE.into(),
        name: "keep-api".into(),
        controls: vec![arn("us-east-1"), arn("eu-west-1")],
        min_on: 2,
    });
    let daemon = start_daemon(&two_records(&s)).await;
    let on = |a: &str| s.board.get(a) == Some(true);
    let api2 = |r: &str| format!("{}2", arn(r));
    wait_until("every switch On", LIMIT, || async {
        on(&arn("us-east-1"))
            && on(&arn("eu-west-1"))
            && on(&api2("us-east-1"))
            && on(&api2("ap-southeast-2"))
    })
    .await;
    // api's region fails first and its Off is refused (and held); then
    // api2's region fails while that refusal stands: in one call with the
    // refused Off, as all Offs once went, it would be refused with it.
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("the refusal is named in status", LIMIT, || async {
        let st = daemon.status().await;
        st.lever
            .and_then(|l| l.refused)
            .is_some_and(|r| r.rule == RULE)
    })
    .await;
    s.eps.set("ap-southeast-2", Mode::Fail);
    wait_until("api2's ap-southeast-2 switch is Off", LIMIT, || async {
        !on(&api2("ap-southeast-2"))
    })
    .await;
    verdict_to_switch_within_a_second(&daemon, "ap-southeast-2").await;
    assert!(on(&arn("eu-west-1")), "ARC kept it On");
    drop(daemon);
}

/// The switch's state as the daemon's status shows it.
async fn shown(daemon: &Daemon, region: &str) -> Option<Switch> {
    let lever = daemon.status().await.lever?;
    lever
        .switches
        .iter()
        .find(|w| w.arn == arn(region))
        .map(|w| w.state)
}

/// Every update answered late (after it applied, past the call timeout):
/// the Off that withdrew eu-west-1 got no answer, so its switch is read
/// back before it is trusted. Trusted unread, the daemon would believe it
/// still On and, once the region recovers, not turn it On: it would stay
/// Off until the next read of every switch (30 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_answered_late_is_read_back_before_it_is_trusted() {
    let s = setup(&REGIONS).await;
    let daemon = s
        .run_edited("1m", "switches", "", |c| {
            c.replace("read_interval: 1s", "read_interval: 30s")
        })
        .await;
    s.fixture
        .cluster
        .delay(Duration::ZERO, Duration::from_secs(1));
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    wait_until("status shows the Off read back", LIMIT, || async {
        shown(&daemon, "eu-west-1").await == Some(Switch::Off)
    })
    .await;
    let recovered = Instant::now();
    s.eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1's switch is On again", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(true)
    })
    .await;
    let took = recovered.elapsed();
    eprintln!("recovery to switch On, every answer late: {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "the switch came back On only {took:?} after the region recovered"
    );
    wait_until("status shows it On, read back", LIMIT, || async {
        shown(&daemon, "eu-west-1").await == Some(Switch::On)
    })
    .await;
    daemon.stop().await;
}

/// Each read takes 2.5 s to answer (inside a 3 s call timeout), so one
/// round over the three switches takes 7.5 s and the reads never rest
/// (read_interval 1 s). A failure's Off goes at once beside them: within
/// a second of the verdict. Behind a read it would wait up to a round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_read_holds_no_set_back() {
    let s = setup(&REGIONS).await;
    let daemon = s
        .run_edited("1m", "switches", "", |c| {
            c.replace("call_timeout: 300ms", "call_timeout: 3s")
        })
        .await;
    s.fixture
        .cluster
        .delay(Duration::from_millis(2500), Duration::ZERO);
    // Reads are under way: one has started since the delay.
    let reads = s.fixture.cluster.reads.load(Ordering::Relaxed);
    wait_until("a slow read is under way", LIMIT, || async {
        s.fixture.cluster.reads.load(Ordering::Relaxed) > reads
    })
    .await;
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    verdict_to_switch_within_a_second(&daemon, "eu-west-1").await;
    daemon.stop().await;
}

/// Every read and every set fails from the start (no answer within the
/// call timeout), so no switch's state is known; then the cluster answers
/// again and a region fails at once. The unknown switches are read again
/// within a second, not at the next read of every switch (30 s here): the
/// failing region's switch is Off within 2 s of its verdict. (It once
/// went On instead: the want of a decision before the failure was still
/// carried out once the switch was known.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_switch_read_is_read_again_within_a_second() {
    let s = setup(&REGIONS).await;
    for r in REGIONS {
        s.board.set(&arn(r), true);
    }
    s.fixture
        .cluster
        .delay(Duration::from_secs(10), Duration::from_secs(10));
    let cfg = lever_yaml(
        config(&s.store, &s.eps, 1, "1m"),
        &s.fixture.urls,
        &REGIONS,
        "switches",
        "",
    )
    .replace("read_interval: 1s", "read_interval: 30s");
    let daemon = start_daemon(&cfg).await;
    wait_until(
        "every record published, every switch's read failed",
        LIMIT,
        || async {
            let lever = daemon.status().await.lever;
            let failed = metric(
                &daemon.metrics().await,
                "route53_failover_routing_control_calls_total",
                &["operation=\"get\"", "outcome=\"unavailable\""],
            );
            s.store.members(ZONE, NAME).len() == 3
                && failed.unwrap_or(0.0) >= 3.0
                && lever.is_some_and(|l| {
                    l.switches.len() == 3 && l.switches.iter().all(|w| w.state == Switch::Unknown)
                })
        },
    )
    .await;
    s.fixture.cluster.delay(Duration::ZERO, Duration::ZERO);
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    verdict_to_switch_within(&daemon, "eu-west-1", 2.0).await;
    // No record carried its switch's check while every switch was
    // unknown (keep_answering held the attach back): eu-west-1 leaves the
    // answer when the attach or its delete lands, sent in the same pass
    // after the switch, so later than the switch's event under load.
    wait_until(
        "eu-west-1 is no longer answered",
        Duration::from_secs(5),
        || async { answered(&s.store) == sorted(&["us-east-1", "ap-southeast-2"]) },
    )
    .await;
    daemon.stop().await;
}

/// A reload that changes a setting Route53 cannot update in place
/// (`request_interval`) replaces every member's endpoint check: the new
/// child is made, the calculated check over it is moved onto it, and only
/// then does the old child go. The store allows a child to be deleted
/// under its parent, as Route53 does (the parent's status is then
/// undefined); the daemon never does it, and failover through the
/// switches goes on afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_replaced_by_a_reload_never_delete_a_child_under_its_parent() {
    let s = setup(&REGIONS).await;
    let daemon = s.run("1m", "switches", "").await;
    let text = std::fs::read_to_string(&daemon.config_path).unwrap();
    let changed = text.replace(
        "defaults:\n",
        "defaults:\n  health_check: {request_interval: 10}\n",
    );
    assert_ne!(text, changed);
    replace_file(&daemon.config_path, &changed);
    wait_until(
        "every calculated check is over a new endpoint check, the old ones gone",
        LIMIT,
        || async {
            REGIONS.iter().all(|r| {
                carried(&s, r).is_some_and(|(c, children)| {
                    c.check.config.kind == HealthCheckType::Calculated
                        && children
                            .iter()
                            .any(|k| k.check.config.request_interval == 10)
                })
            }) && s.store.store.health_checks().len() == 9
        },
    )
    .await;
    assert_eq!(
        s.store.store.orphaned_children(),
        [],
        "a child was deleted while its parent listed it"
    );
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    assert_eq!(answered(&s.store), sorted(&["us-east-1", "ap-southeast-2"]));
    daemon.stop().await;
}

/// Route53's control plane hanging, two zones: a region of
/// api.example.test fails, and 5 s later a region of api2.example2.test.
/// Each zone's pass hangs on its record write; each switch goes Off
/// within a second of its own verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_route53_hanging_two_zones_each_fail_over_through_their_switches() {
    let s = setup_zones(&REGIONS, &[ZONE, "example2.test"]).await;
    for r in ["us-east-1", "ap-southeast-2"] {
        s.board.set(&format!("{}2", arn(r)), false);
    }
    let cfg = two_records_in(&s, "example2.test").replace(
        "routing_control:\n",
        "routing_control:\n  mode: switches_and_records\n",
    );
    let daemon = start_daemon(&cfg).await;
    let on = |a: &str| s.board.get(a) == Some(true);
    let api2 = |r: &str| format!("{}2", arn(r));
    wait_until("every switch On", LIMIT, || async {
        on(&arn("us-east-1"))
            && on(&arn("eu-west-1"))
            && on(&api2("us-east-1"))
            && on(&api2("ap-southeast-2"))
    })
    .await;
    s.store
        .settled("example2.test", "api2.example2.test", 2)
        .await;
    s.store.settled(ZONE, NAME, 2).await;
    s.store.store.set_latency(Duration::from_secs(3600));
    let first = Instant::now();
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("api's eu-west-1 switch is Off", LIMIT, || async {
        !on(&arn("eu-west-1"))
    })
    .await;
    verdict_to_switch_within_a_second(&daemon, "eu-west-1").await;
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(first.elapsed())).await;
    s.eps.set("ap-southeast-2", Mode::Fail);
    wait_until("api2's ap-southeast-2 switch is Off", LIMIT, || async {
        !on(&api2("ap-southeast-2"))
    })
    .await;
    verdict_to_switch_within_a_second(&daemon, "ap-southeast-2").await;
    s.store.store.set_latency(Duration::ZERO);
    drop(daemon);
}

/// Two regions, switches mode. On-call drains eu-west-1 (its switch goes
/// Off), then a reload removes us-east-1, so eu-west-1 is the last member
/// and its switch must go On again (the drain yields to the last member)
/// before us-east-1's record may go. The cluster refuses every change for
/// a while, so the switch stays Off: us-east-1's record stays with it.
/// Deleted, the name would hold only a switched-Off record and Route53
/// would fail open. Sampled every 10 ms: every region answered has its
/// switch On, always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_never_leaves_the_name_with_switched_off_records_only() {
    const TWO: [&str; 2] = ["us-east-1", "eu-west-1"];
    let s = setup(&TWO).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let admin = format!("admin: {{token_file: \"{}\"}}\n", token.display());
    let base = config(&s.store, &s.eps, 1, "1m");
    let full = lever_yaml(base, &s.fixture.urls, &TWO, "switches", &admin);
    let daemon = start_daemon(&full).await;
    wait_until("both answer through their switches", LIMIT, || async {
        answered(&s.store) == sorted(&TWO)
            && TWO
                .iter()
                .all(|r| carried(&s, r).is_some() && s.board.get(&arn(r)) == Some(true))
    })
    .await;
    on_call(&daemon, &token, "drain", "eu-west-1", false).await;
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (store, board, stop) = (s.store.store.clone(), s.board.clone(), stop.clone());
        tokio::spawn(async move {
            let mut samples = 0u32;
            while !stop.load(Ordering::Relaxed) && samples < 6000 {
                let answer = store.answer(ZONE, NAME, &RecordType::A).unwrap();
                for r in answer.iter().filter_map(|r| r.region.as_deref()) {
                    assert_eq!(
                        board.get(&arn(r)),
                        Some(true),
                        "{r} answered with its switch Off: the name failed open"
                    );
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        })
    };
    s.fixture
        .cluster
        .failing_updates
        .store(true, Ordering::Relaxed);
    let text = std::fs::read_to_string(&daemon.config_path).unwrap();
    let (head, rest) = text.split_once("      - region: us-east-1\n").unwrap();
    let (_, tail) = rest.split_once("      - region: eu-west-1\n").unwrap();
    replace_file(
        &daemon.config_path,
        &format!("{head}      - region: eu-west-1\n{tail}"),
    );
    wait_until("the reload is in", LIMIT, || async {
        daemon.status().await.records[0].members.len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        s.store.members(ZONE, NAME).len(),
        2,
        "us-east-1's record went while eu-west-1's switch was Off"
    );
    s.fixture
        .cluster
        .failing_updates
        .store(false, Ordering::Relaxed);
    wait_until("eu-west-1 On, us-east-1's record gone", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(true) && s.store.members(ZONE, NAME).len() == 1
    })
    .await;
    assert_eq!(answered(&s.store), sorted(&["eu-west-1"]));
    stop.store(true, Ordering::Relaxed);
    let samples = watcher.await.expect("the answer never failed open");
    eprintln!("answers sampled: {samples}");
    daemon.stop().await;
}
