//! Coordination on a data plane, through the built binary: `ha` with the
//! lease and the views in the state store (moto's DynamoDB through the
//! real SDK), the records and checks in the strict store (each instance
//! through a proxy of its own), and the switches on the ARC stand-in.
//! Route53's control plane goes down (every call answers 503): the lease
//! stays held, the views keep flowing, and a region that fails then is
//! switched Off within detection + quorum + 1 s. Without the store the
//! same outage leaves both instances followers (the lease is a Route53
//! record), which `check` warns about.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ha::{lease, Instance};
use common::lever::*;
use common::*;
use route53_failover::decide::health_check::TAG_OWNER;
use route53_failover::demo::Mode;
use route53_failover::provider::faults::Fault;
use route53_failover::provider::ProviderError;
use route53_failover::store::{Space, StateStore};

const LIMIT: Duration = Duration::from_secs(30);
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const LEASE_DURATION: Duration = Duration::from_secs(4);

/// Every Route53 call answers a server error from now on.
fn outage() -> Fault {
    Fault {
        operation: None,
        error: ProviderError::Service("503 Service Unavailable".into()),
        times: u32::MAX,
    }
}

fn instance_config(
    id: &str,
    provider: &str,
    eps: &Endpoints,
    cluster: &[String],
    store: Option<&str>,
) -> String {
    let base = config_with_provider(provider, eps, 1, "2s");
    let mut text = lever_yaml(base, cluster, &REGIONS, "switches", "");
    text.push_str(&format!(
        "ha: {{enabled: true, identity: {id}, lease_duration: {}ms, renew_every: 1s, max_clock_drift: 250ms}}\n",
        LEASE_DURATION.as_millis()
    ));
    if let Some(url) = store {
        text.push_str(&format!(
            "state_store: {{kind: dynamodb, table: route53-failover, region: us-east-2, endpoint_url: \"{url}\", call_timeout: 500ms}}\n"
        ));
    }
    text
}

impl Setup {
    async fn instances(&self, store_url: Option<&str>) -> Vec<Instance> {
        self.instances_with(store_url, "").await
    }

    /// Instances `a` and `b`, with `extra` top-level lines.
    async fn instances_with(&self, store_url: Option<&str>, extra: &str) -> Vec<Instance> {
        self.instances_edited(store_url, &|text| text + extra).await
    }

    /// Instances `a` and `b`, their configs passed through `edit`.
    async fn instances_edited(
        &self,
        store_url: Option<&str>,
        edit: &dyn Fn(String) -> String,
    ) -> Vec<Instance> {
        let mut all = Vec::new();
        for id in ["a", "b"] {
            let i = Instance::start(id, &self.store, Launch::default(), |provider| {
                edit(instance_config(
                    id,
                    provider,
                    &self.eps,
                    &self.fixture.urls,
                    store_url,
                ))
            })
            .await;
            all.push(i);
        }
        all
    }

    async fn all_on(&self) {
        wait_until("both switches On, both answered", LIMIT, || async {
            REGIONS
                .iter()
                .all(|r| self.board.get(&arn(r)) == Some(true))
                && answered(&self.store) == sorted(&REGIONS)
        })
        .await;
        // An outage before the checks are attached (a batch after the
        // records, later under load) would leave the switches nothing to
        // withdraw.
        self.store.settled(ZONE, NAME, REGIONS.len()).await;
    }
}

/// moto with the state store's table, as `docs/design.md#the-state-store`
/// makes it.
async fn store_table() -> Moto {
    let moto = Moto::start().await;
    moto.create_table("route53-failover", "sk").await;
    moto
}

/// (leaders, the term each instance sees)
async fn roles(all: &[Instance]) -> (Vec<&'static str>, Vec<Option<u64>>) {
    roles_of(&all.iter().collect::<Vec<_>>()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_in_dynamodb_failover_goes_on_through_a_control_plane_outage() {
    let moto = store_table().await;
    let s = setup(&REGIONS).await;
    let all = s.instances(Some(&moto.url)).await;
    s.all_on().await;
    wait_until("one leader", LIMIT, || async {
        roles(&all).await.0.len() == 1
    })
    .await;
    let (leaders, terms) = roles(&all).await;
    let term = terms.iter().flatten().max().copied();
    assert!(
        lease(&s.store).is_none(),
        "the lease is not a Route53 record"
    );

    s.store.store.inject(outage());
    wait_until(
        "the leader finds the control plane impaired",
        LIMIT,
        || async {
            for i in &all {
                let st = i.daemon.status().await;
                if st.lease.as_ref().is_some_and(|l| l.role == "leader") {
                    return st.control_plane.impaired;
                }
            }
            false
        },
    )
    .await;
    // Longer than two leases: the same leader, the same term, and the
    // views still read from the store.
    let until = Instant::now() + 2 * LEASE_DURATION + Duration::from_secs(1);
    while Instant::now() < until {
        let (now_leaders, now_terms) = roles(&all).await;
        assert_eq!(
            now_leaders, leaders,
            "the lease changed hands in the outage"
        );
        assert_eq!(now_terms.iter().flatten().max().copied(), term);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for i in &all {
        let st = i.daemon.status().await;
        let views = st.views.expect("ha");
        assert_eq!(views.instances, 1, "{}: {views:?}", i.id);
        assert_eq!(views.last_error, None, "{}", i.id);
        let store = st.store.expect("the store is shown");
        assert_eq!(store.kind, "dynamodb");
        assert!(store.reachable && store.last_write.is_some(), "{store:?}");
        let page = i.daemon.metrics().await;
        assert_eq!(metric(&page, "route53_failover_store_up", &[]), Some(1.0));
        let puts = metric(
            &page,
            "route53_failover_store_requests_total",
            &["operation=\"put\"", "outcome=\"ok\""],
        );
        assert!(puts.unwrap_or(0.0) >= 1.0, "{puts:?}");
        // The lease and the views cost Route53 nothing.
        let asked: Vec<_> = i
            .proxy
            .log()
            .into_iter()
            .filter(|l| {
                l.body.contains("_route53-failover-lease")
                    || l.body.contains("_route53-failover-views")
                    || l.path.contains("_route53-failover")
            })
            .collect();
        assert!(asked.is_empty(), "{}: {asked:?}", i.id);
    }

    let failed_at = Instant::now();
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    let took = failed_at.elapsed();
    eprintln!("ha, store in dynamodb, control plane 503: failure to switch Off in {took:?}");
    // Detection (interval 200 ms, fall 3), the quorum's read (250 ms while
    // a run is under way) and 1 s.
    assert!(
        took < Duration::from_millis(600 + 200 + 250 + 1000 + 1000),
        "{took:?}"
    );
    assert_eq!(answered(&s.store), sorted(&["us-east-1"]));
    assert_eq!(roles(&all).await.0, leaders);
    // The switch was set under the leader's term, and says so. Its event
    // is emitted once the cluster's answer is in, a moment after the
    // board shows it: the timeline is read until it is there.
    let leader = all.iter().find(|i| i.id == leaders[0]).unwrap();
    let named = format!("set off (term {})", term.expect("a term"));
    wait_until("the switch's event names the term", LIMIT, || async {
        let events = leader.daemon.get("/events").await.text().await.unwrap();
        events.contains(&named)
    })
    .await;

    s.store.store.clear_faults();
    s.eps.set("eu-west-1", Mode::Serve);
    s.all_on().await;
    assert!(lease(&s.store).is_none());
    for i in all {
        i.daemon.stop().await;
    }
}

/// The same outage without the store: the lease is a Route53 record that
/// cannot be renewed, so within a lease both instances are followers and a
/// failing region keeps its switch On. (What the store is for; `check`
/// names it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_store_the_same_outage_leaves_nobody_to_flip_switches() {
    let s = setup(&REGIONS).await;
    let all = s.instances(None).await;
    s.all_on().await;
    wait_until("one leader", LIMIT, || async {
        roles(&all).await.0.len() == 1
    })
    .await;
    s.store.store.inject(outage());
    wait_until("nobody holds the lease", LIMIT, || async {
        roles(&all).await.0.is_empty()
    })
    .await;
    s.eps.set("eu-west-1", Mode::Fail);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.board.get(&arn("eu-west-1")), Some(true));
    let text = std::fs::read_to_string(&all[0].daemon.config_path).unwrap();
    let out = run_with_config("check", &text).await;
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("routing_control without state_store"),
        "{said}"
    );
    assert!(
        said.contains("with ha, the lease cannot be renewed"),
        "{said}"
    );
    s.store.store.clear_faults();
    for i in all {
        i.daemon.stop().await;
    }
}

/// The store itself unavailable (every call 503 through a proxy) for
/// longer than a lease: nothing is withdrawn because of it, status and the
/// metric say so, the holder stops writing once its window ends, and one
/// instance holds the lease again once the store answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stops_answering_withdraws_nothing_and_the_lease_comes_back() {
    let moto = store_table().await;
    let dynamo = FaultProxy::start(&moto.url).await;
    let s = setup(&REGIONS).await;
    let all = s.instances(Some(&dynamo.url)).await;
    s.all_on().await;
    wait_until("one leader", LIMIT, || async {
        roles(&all).await.0.len() == 1
    })
    .await;

    dynamo.partition(Some(""));
    let cut_at = Instant::now();
    wait_until("nobody holds the lease", LIMIT, || async {
        roles(&all).await.0.is_empty()
    })
    .await;
    let stepped_down = cut_at.elapsed();
    eprintln!("store unavailable: the holder stopped writing after {stepped_down:?}");
    assert!(
        stepped_down <= LEASE_DURATION + Duration::from_secs(1),
        "{stepped_down:?}"
    );
    for i in &all {
        let st = i.daemon.status().await;
        let store = st.store.expect("shown");
        assert!(!store.reachable, "{store:?}");
        assert!(store.line(st.now).contains("NOT ANSWERING"));
        let page = i.daemon.metrics().await;
        assert_eq!(metric(&page, "route53_failover_store_up", &[]), Some(0.0));
    }
    // Past the window, nobody may write: a region that fails now stays
    // in (its switch On, its record there), and no write lands.
    let accepted = |all: &[Instance]| -> usize {
        all.iter()
            .map(|i| i.writes().iter().filter(|w| w.status == 200).count())
            .sum()
    };
    let writes_before = accepted(&all);
    let updates_before = s
        .fixture
        .cluster
        .updates
        .load(std::sync::atomic::Ordering::Relaxed);
    s.eps.set("eu-west-1", Mode::Fail);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        s.board.get(&arn("eu-west-1")),
        Some(true),
        "a switch was set with no lease held"
    );
    assert_eq!(
        s.fixture
            .cluster
            .updates
            .load(std::sync::atomic::Ordering::Relaxed),
        updates_before,
        "a switch call was sent with no lease held"
    );
    assert_eq!(
        accepted(&all),
        writes_before,
        "a write landed with no lease held"
    );
    assert_eq!(answered(&s.store), sorted(&REGIONS), "nothing withdrawn");
    s.eps.set("eu-west-1", Mode::Serve);

    dynamo.partition(None);
    wait_until("one instance holds the lease again", LIMIT, || async {
        roles(&all).await.0.len() == 1
    })
    .await;
    for i in all {
        i.daemon.stop().await;
    }
}

/// The lease is decided by the store's compare-and-swap only where two
/// racing writers cannot both win. A table whose mode is not known at
/// start (DescribeTable answered 503) starts the instances but takes no
/// lease; one found to be an eventually consistent global table (MREC)
/// never does, and says why; once the table answers as one Region, one
/// instance takes the lease. Before, a table that did not answer at start
/// was never checked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_waits_until_the_store_is_known_to_let_one_writer_win() {
    let moto = store_table().await;
    let dynamo = FaultProxy::start(&moto.url).await;
    dynamo.answer(Arc::new(move |asked: &Asked| {
        describes(asked.body).then(|| Reply::Json(503, INTERNAL_ERROR.into()))
    }));
    let s = setup(&REGIONS).await;
    let all = s.instances(Some(&dynamo.url)).await;
    wait_until("both say the store's mode is not known", LIMIT, || async {
        lease_errors(&all)
            .await
            .iter()
            .all(|e| e.contains("mode is not known yet"))
    })
    .await;
    assert!(
        roles(&all).await.0.is_empty(),
        "a lease taken on a store of unknown mode"
    );

    let mrec = r#"{"Table":{"TableName":"route53-failover","TableStatus":"ACTIVE",
        "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],
        "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"S"}],
        "Replicas":[{"RegionName":"us-east-2"},{"RegionName":"us-west-2"}],
        "MultiRegionConsistency":"EVENTUAL"}}"#;
    dynamo.answer(Arc::new(move |asked: &Asked| {
        describes(asked.body).then(|| Reply::Json(200, mrec.into()))
    }));
    wait_until("both say the table lets two writers win", LIMIT, || async {
        lease_errors(&all)
            .await
            .iter()
            .all(|e| e.contains("lets two writers both win"))
    })
    .await;
    // Two more rounds of asking: still nobody takes it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        roles(&all).await.0.is_empty(),
        "a lease taken on an MREC table"
    );
    // A write to the lease is an UpdateItem of its partition; reads
    // (GetItem) ask for a consistent read.
    let lease_writes = dynamo
        .log()
        .iter()
        .filter(|l| l.body.contains("#lease") && !l.body.contains("ConsistentRead"))
        .count();
    assert_eq!(lease_writes, 0, "no write to the lease item");

    dynamo.answer(Arc::new(|_: &Asked| None));
    wait_until("one instance holds the lease", LIMIT, || async {
        roles(&all).await.0.len() == 1
    })
    .await;
    for i in all {
        i.daemon.stop().await;
    }
}

/// A table whose mode the start read is not asked again before the
/// lease is taken: DescribeTable is DynamoDB's control plane, and an
/// instance restarted while it fails (and the data plane answers) must
/// still be able to lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_needs_no_second_describe_after_the_start_read_the_table() {
    let moto = store_table().await;
    let dynamo = FaultProxy::start(&moto.url).await;
    // The first DescribeTable of each instance (at start) goes through;
    // every later one gets a 503.
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = asked.clone();
    dynamo.answer(Arc::new(move |a: &Asked| {
        if !describes(a.body) {
            return None;
        }
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (n >= 2).then(|| Reply::Json(503, INTERNAL_ERROR.into()))
    }));
    let s = setup(&REGIONS).await;
    let all = s.instances(Some(&dynamo.url)).await;
    wait_until("one instance holds the lease", LIMIT, || async {
        roles(&all).await.0.len() == 1
    })
    .await;
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one DescribeTable per instance, at start"
    );
    for i in all {
        i.daemon.stop().await;
    }
}

/// DescribeTable is the one store call whose body names the table alone.
fn describes(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.len() == 1 && o.contains_key("TableName"))
        })
        .unwrap_or(false)
}

const INTERNAL_ERROR: &str =
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#;

/// Each instance's `lease.last_error` as status shows it ("" for none).
async fn lease_errors(all: &[Instance]) -> Vec<String> {
    let mut out = Vec::new();
    for i in all {
        let st = i.daemon.status().await;
        out.push(st.lease.and_then(|l| l.last_error).unwrap_or_default());
    }
    out
}

const TOKEN: &str = "s3cret-coordination-admin-token-51c2";

/// On-call drains a region during the outage, through the instance that
/// does not hold the lease (the one on-call could reach): the drain is
/// written to the store (Route53 would answer 503), the holder, which
/// reads the controls every 500 ms while the control plane is impaired,
/// turns the switch Off within a second of the answer and shows the
/// drain, and both show it again after a restart of both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_during_the_outage_is_kept_in_the_store_and_flips_the_switch() {
    let moto = store_table().await;
    let s = setup(&REGIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let admin = format!("admin: {{token_file: \"{}\"}}\n", token.display());
    let all = s.instances_with(Some(&moto.url), &admin).await;
    s.all_on().await;
    wait_until("one leader", LIMIT, || async {
        roles(&all).await.0.len() == 1
    })
    .await;
    let (leaders, _) = roles(&all).await;
    let leader = all.iter().find(|i| i.id == leaders[0]).unwrap();
    let other = all.iter().find(|i| i.id != leaders[0]).unwrap();

    s.store.store.inject(outage());
    // Found at the holder's next resyncs (every 2 s here).
    wait_until(
        "the holder finds the control plane impaired",
        LIMIT,
        || async { leader.daemon.status().await.control_plane.impaired },
    )
    .await;
    on_call(&other.daemon, &token, "drain", "eu-west-1", false).await;
    let answered_at = Instant::now();
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    let took = answered_at.elapsed();
    eprintln!(
        "drain during the outage, sent to the follower: switch Off {took:?} after the drain's answer"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    wait_until("the holder shows the drain", LIMIT, || async {
        leader
            .daemon
            .status()
            .await
            .controls
            .iter()
            .any(|c| c.subject().contains("eu-west-1"))
    })
    .await;

    // Both restarted (after the outage: a start reads its zones from
    // Route53 today): the drain is read back from the store.
    s.store.store.clear_faults();
    let (mut again, mut paths) = (Vec::new(), Vec::new());
    for Instance { daemon, proxy, .. } in all {
        let config = std::fs::read_to_string(&daemon.config_path).unwrap();
        daemon.stop().await;
        again.push(launch(&config, Launch::default()).await);
        // Its path to Route53 stays open.
        paths.push(proxy);
    }
    for d in &again {
        wait_until("the drain is read back", LIMIT, || async {
            d.status()
                .await
                .controls
                .iter()
                .any(|c| c.subject().contains("eu-west-1"))
        })
        .await;
    }
    // A restarted daemon that ignored the drain would turn it On.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.board.get(&arn("eu-west-1")), Some(false), "still drained");
    for d in again {
        d.stop().await;
    }
}

/// How Route53's control plane is down.
#[derive(Clone, Copy, Debug)]
enum Down {
    /// Every call answers 503.
    Errors,
    /// Every call hangs (each one ends only at the caller's timeout).
    Hangs,
}

fn go_down(store: &Store, how: Down) {
    match how {
        Down::Errors => store.store.inject(outage()),
        Down::Hangs => store.store.set_latency(Duration::from_secs(3600)),
    }
}

fn come_back(store: &Store) {
    store.store.clear_faults();
    store.store.set_latency(Duration::ZERO);
}

/// One instance with the store in DynamoDB, all members healthy, the zone
/// knowledge kept.
async fn one_instance(s: &Setup, moto: &Moto) -> (String, Daemon) {
    let provider = format!(
        "{{kind: memory, endpoint_url: \"{}\", max_requests_per_second: 50}}",
        s.store.url
    );
    let mut text = lever_yaml(
        config_with_provider(&provider, &s.eps, 1, "2s"),
        &s.fixture.urls,
        &REGIONS,
        "switches",
        "",
    );
    text.push_str(&format!(
        "state_store: {{kind: dynamodb, table: route53-failover, region: us-east-2, endpoint_url: \"{}\", call_timeout: 500ms}}\n",
        moto.url
    ));
    let daemon = start_daemon(&text).await;
    s.all_on().await;
    knowledge_kept(s, moto).await;
    (text, daemon)
}

/// Waits until the zone knowledge in the store names the checks the
/// members carry now (they are attached in a batch after the records, and
/// the knowledge is written after the pass that saw them): an outage
/// starting earlier would leave a restart nothing to switch.
async fn knowledge_kept(s: &Setup, moto: &Moto) {
    let carried: BTreeSet<String> = s
        .store
        .members(ZONE, NAME)
        .into_iter()
        .filter_map(|r| r.health_check_id)
        .collect();
    let store = dynamo_store(&moto.url, "route53-failover", "e2e", Duration::from_secs(2)).await;
    let item = format!("{ZONE}|{NAME}");
    wait_until("the zone knowledge names every check", LIMIT, || async {
        let Ok(Some(known)) = store.get(Space::Zones, &item).await else {
            return false;
        };
        let known: serde_json::Value = serde_json::from_str(&known.value).unwrap();
        let ids = |key: &str, field: &str| -> BTreeSet<String> {
            known[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v[field].as_str().map(String::from))
                .collect()
        };
        let records = ids("records", "health_check_id");
        records == carried && carried.is_subset(&ids("checks", "id"))
    })
    .await;
}

async fn all_healthy(daemon: &Daemon) {
    wait_until("every member healthy", LIMIT, || async {
        daemon.status().await.records[0]
            .members
            .iter()
            .all(|m| m.verdict == "healthy")
    })
    .await;
}

/// A region failing after the restart or reload goes out through its
/// switch within a second of its verdict, and the outage ends cleanly.
async fn fails_over_and_recovers(s: &Setup, daemon: Daemon, what: &str) {
    all_healthy(&daemon).await;
    let failed_at = Instant::now();
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    eprintln!("{what}: failure to switch Off in {:?}", failed_at.elapsed());
    verdict_to_switch_within_a_second(&daemon, "eu-west-1").await;
    assert_eq!(answered(&s.store), sorted(&["us-east-1"]));
    come_back(&s.store);
    s.eps.set("eu-west-1", Mode::Serve);
    s.all_on().await;
    daemon.stop().await;
}

/// A single instance restarted during the outage (SIGTERM, then SIGKILL;
/// the control plane answering 503, then hanging) starts from what the
/// store knows: no Route53 call stands between its start and its first
/// switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_the_outage_fails_over_from_what_the_store_knows() {
    let moto = store_table().await;
    for (how, kill) in [(Down::Errors, false), (Down::Hangs, true)] {
        let s = setup(&REGIONS).await;
        let (text, mut daemon) = one_instance(&s, &moto).await;
        go_down(&s.store, how);
        if kill {
            daemon.child.kill().await.unwrap();
        } else {
            daemon.stop().await;
            // (stop consumed it; a new one follows)
            daemon = launch(&text, Launch::default()).await;
            fails_over_and_recovers(&s, daemon, &format!("restart (SIGTERM), {how:?}")).await;
            continue;
        }
        let again = launch(&text, Launch::default()).await;
        fails_over_and_recovers(&s, again, &format!("restart (SIGKILL), {how:?}")).await;
    }
}

/// A live reload during the outage: the new config's zones are known from
/// the store, so the reload is taken, and its reconcilers decide the
/// switches from what the store knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_during_the_outage_fails_over_from_what_the_store_knows() {
    let moto = store_table().await;
    let s = setup(&REGIONS).await;
    let (text, daemon) = one_instance(&s, &moto).await;
    let hash = daemon.status().await.config.unwrap().hash;
    go_down(&s.store, Down::Hangs);
    let tmp = daemon.config_path.with_extension("new");
    std::fs::write(
        &tmp,
        text.replace("resync_interval: 2s", "resync_interval: 3s"),
    )
    .unwrap();
    std::fs::rename(&tmp, &daemon.config_path).unwrap();
    wait_until("the reload is taken", LIMIT, || async {
        let c = daemon.status().await.config.unwrap();
        c.hash != hash && c.last_reload_error.is_none()
    })
    .await;
    fails_over_and_recovers(&s, daemon, "reload, Hangs").await;
}

/// Two installs (two owners) naming one switch on one table: the first
/// claims it, the second is refused at start (exit 2), naming the owner
/// that holds it, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_install_naming_a_claimed_switch_is_refused() {
    let moto = store_table().await;
    let s = setup(&REGIONS).await;
    let (_, first) = one_instance(&s, &moto).await;
    let text = std::fs::read_to_string(&first.config_path)
        .unwrap()
        .replace("owner: e2e", "owner: staging");
    let changes = s.store.store.change_log().len();
    let out = run_with_config("run", &text).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "routing control {} is claimed by owner \"e2e\"",
            arn("us-east-1")
        )) || stderr.contains(&format!(
            "routing control {} is claimed by owner \"e2e\"",
            arn("eu-west-1")
        )),
        "{stderr}"
    );
    assert!(stderr.contains("\"staging\""), "{stderr}");
    // The first install may still be finishing its own writes (its
    // health checks attached in a second batch, later under load): what
    // the refused one would write is its own, owner "staging" (its claim
    // in the ownership marker, its checks' tag).
    let written: Vec<String> = s.store.store.change_log()[changes..]
        .iter()
        .flat_map(|c| &c.changes)
        .map(|c| format!("{c:?}"))
        .filter(|c| c.contains("owner=staging"))
        .collect();
    assert!(
        written.is_empty(),
        "the refused install changed DNS: {written:?}"
    );
    let made: Vec<_> = s
        .store
        .store
        .health_checks()
        .iter()
        .filter(|h| h.tags.get(TAG_OWNER).map(String::as_str) == Some("staging"))
        .map(|h| h.check.id.clone())
        .collect();
    assert!(
        made.is_empty(),
        "the refused install made health checks: {made:?}"
    );
    first.stop().await;
}

/// The two instances' wall clocks run 20 s ahead and 20 s behind, and the
/// leader is paused (SIGSTOP) past its lease: the other instance takes
/// the lease in the store with the next term and withdraws a region that
/// fails meanwhile (the writer's own probes decide: `quorum: any`). Woken
/// (SIGCONT), the old leader sees the region failing too, but its window
/// ended while it slept: it sends no switch call and lands no write, and
/// it is a follower. Every switch call and record write names its term,
/// and the cluster and the store received them in the order of their
/// terms: none from an old term after a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_woken_after_its_lease_writes_nothing() {
    let moto = store_table().await;
    let s = setup(&REGIONS).await;
    let any = |text: String| {
        text.replace(
            "policy: {min_healthy: 1}",
            "policy: {min_healthy: 1, quorum: any}",
        )
    };
    let mut all = Vec::new();
    for (id, clock) in [("a", "+20s"), ("b", "-20s")] {
        let how = Launch {
            clock: Some(clock.to_string()),
            ..Launch::default()
        };
        let i = Instance::start(id, &s.store, how, |provider| {
            any(instance_config(
                id,
                provider,
                &s.eps,
                &s.fixture.urls,
                Some(&moto.url),
            ))
        })
        .await;
        all.push(i);
    }
    s.all_on().await;
    wait_until("one leader", LIMIT, || async {
        roles(&all).await.0.len() == 1
    })
    .await;
    let (leaders, terms) = roles(&all).await;
    let term = terms.iter().flatten().max().copied().unwrap();
    let old = all.iter().find(|i| i.id == leaders[0]).unwrap();
    let new = all.iter().find(|i| i.id != leaders[0]).unwrap();
    let sets = |page: &str| {
        metric(
            page,
            "route53_failover_routing_control_calls_total",
            &["operation=\"set\""],
        )
        .unwrap_or(0.0)
    };
    let old_sets = sets(&old.daemon.metrics().await);

    old.daemon.signal("STOP");
    wait_until(
        "the other instance holds the lease, next term",
        LIMIT,
        || async {
            let l = new.daemon.status().await.lease.unwrap();
            l.role == "leader" && l.term.is_some_and(|t| t > term)
        },
    )
    .await;
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1's switch is Off", LIMIT, || async {
        s.board.get(&arn("eu-west-1")) == Some(false)
    })
    .await;
    let writes_before = old.writes().iter().filter(|w| w.status == 200).count();
    old.daemon.signal("CONT");
    // Awake long enough to probe, decide and (were it not fenced) write.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sets(&old.daemon.metrics().await),
        old_sets,
        "the old leader sent a switch call after its lease ended"
    );
    assert_eq!(
        old.writes().iter().filter(|w| w.status == 200).count(),
        writes_before,
        "a write of the old leader landed"
    );
    assert_eq!(old.role().await, "follower");
    assert_eq!(new.role().await, "leader");
    let terms = s.fixture.cluster.terms.lock().unwrap().clone();
    assert!(
        terms.iter().all(|(_, t)| t.is_some()),
        "a switch call named no term: {terms:?}"
    );
    let named: Vec<u64> = terms.iter().filter_map(|(_, t)| *t).collect();
    assert!(
        named.windows(2).all(|w| w[0] <= w[1]),
        "a switch call of an older term arrived after a newer one: {named:?}"
    );
    assert!(
        named.contains(&term) && named.last().is_some_and(|t| *t > term),
        "both terms set switches: {named:?}"
    );
    eprintln!("switch calls by term, in the order received: {named:?}");
    // The record and health check writes name theirs too, and landed in
    // the same order.
    let log: Vec<_> = all.iter().flat_map(|i| i.proxy.log()).collect();
    let is_write = |l: &&Logged| {
        l.status == 200
            && (l.method == "POST" && l.path.ends_with("/changes")
                || l.method != "GET" && l.path.contains("/health-checks"))
    };
    let mut changes: Vec<(Instant, Option<u64>)> = log
        .iter()
        .filter(is_write)
        .map(|l| (l.at, l.term))
        .collect();
    changes.sort_by_key(|c| c.0);
    let written: Vec<u64> = changes.iter().filter_map(|c| c.1).collect();
    assert_eq!(
        written.len(),
        changes.len(),
        "a write named no term: {changes:?}"
    );
    assert!(
        written.windows(2).all(|w| w[0] <= w[1]),
        "a write of an older term landed after a newer one: {written:?}"
    );
    let checks = log
        .iter()
        .filter(is_write)
        .filter(|l| l.path.contains("/health-checks"))
        .count();
    assert!(
        checks > 0,
        "no health check was written: the test proves nothing of them"
    );
    eprintln!("record and check writes by term, in the order they landed: {written:?}");
    s.eps.set("eu-west-1", Mode::Serve);
    for i in all {
        i.daemon.stop().await;
    }
}

/// Who leads, and under which term, among `live`: unchanged throughout.
async fn same_lease(live: &[&Instance], leader: &str, term: Option<u64>) {
    let (leaders, terms) = roles_of(live).await;
    assert_eq!(leaders, [leader], "the lease changed hands in the outage");
    assert_eq!(terms.iter().flatten().max().copied(), term);
}

/// [`roles`] of the instances still alive.
async fn roles_of(live: &[&Instance]) -> (Vec<&'static str>, Vec<Option<u64>>) {
    let mut leaders = Vec::new();
    let mut terms = Vec::new();
    for i in live {
        let l = i.daemon.status().await.lease.expect("ha is on");
        if l.role == "leader" {
            leaders.push(i.id);
        }
        terms.push(l.term);
    }
    (leaders, terms)
}

/// Until `at`, checking every 250 ms that the lease stays where it is.
async fn hold_until(at: Instant, live: &[&Instance], leader: &str, term: Option<u64>) {
    while Instant::now() < at {
        same_lease(live, leader, term).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Two regions, two instances in each (one release per region, two
/// replicas: `a1`, `a2` in us-east-1, `b1`, `b2` in eu-west-1), the lease,
/// views and controls in DynamoDB. Route53's control plane is down for
/// 60 s, answering 503 or never answering (`hang`). 15 s in, the region
/// whose instances do not hold the lease fails: its switch is Off within
/// detection + quorum + 1 s. It recovers; 30 s in, it fails again and its
/// two instances are SIGKILLed at the same moment (the region is lost
/// with its pods): the survivors switch it Off within the same bound (the
/// dead instances' last "healthy" views do not outvote them). The lease
/// stays with one holder and one term throughout.
async fn two_per_region_through_a_minute_of_outage(hang: bool) {
    let moto = store_table().await;
    let s = setup(&REGIONS).await;
    let mut all = Vec::new();
    for id in ["a1", "a2", "b1", "b2"] {
        let i = Instance::start(id, &s.store, Launch::default(), |provider| {
            instance_config(id, provider, &s.eps, &s.fixture.urls, Some(&moto.url))
        })
        .await;
        all.push(i);
    }
    s.all_on().await;
    let everyone: Vec<&Instance> = all.iter().collect();
    wait_until("one leader", LIMIT, || async {
        roles_of(&everyone).await.0.len() == 1
    })
    .await;
    let (leaders, terms) = roles_of(&everyone).await;
    let (leader, term) = (leaders[0], terms.iter().flatten().max().copied());
    // The region whose instances do not hold the lease is the one lost.
    let (region, lost) = if leader.starts_with('a') {
        ("eu-west-1", 'b')
    } else {
        ("us-east-1", 'a')
    };
    let what = if hang { "hanging" } else { "503" };
    // Detection (interval 200 ms, fall 3), the quorum's read (250 ms while
    // a run is under way) and 1 s, with a second of slack for the machine.
    let bound = Duration::from_millis(600 + 200 + 250 + 1000 + 1000);

    let start = Instant::now();
    if hang {
        s.store.store.set_latency(Duration::from_secs(3600));
    } else {
        s.store.store.inject(outage());
    }
    hold_until(start + Duration::from_secs(15), &everyone, leader, term).await;
    let failed_at = Instant::now();
    s.eps.set(region, Mode::Fail);
    wait_until("the failing region's switch is Off", LIMIT, || async {
        s.board.get(&arn(region)) == Some(false)
    })
    .await;
    let took = failed_at.elapsed();
    eprintln!("2 x 2 instances, control plane {what}, 15 s in: {region} switched Off {took:?} after it failed");
    assert!(took < bound, "{took:?}");
    same_lease(&everyone, leader, term).await;
    s.eps.set(region, Mode::Serve);
    wait_until("its switch is On again", LIMIT, || async {
        s.board.get(&arn(region)) == Some(true)
    })
    .await;

    hold_until(start + Duration::from_secs(30), &everyone, leader, term).await;
    let (mut dead, survivors): (Vec<Instance>, Vec<Instance>) =
        all.into_iter().partition(|i| i.id.starts_with(lost));
    let failed_at = Instant::now();
    for i in &mut dead {
        i.daemon.child.start_kill().unwrap();
    }
    s.eps.set(region, Mode::Fail);
    wait_until("the lost region's switch is Off", LIMIT, || async {
        s.board.get(&arn(region)) == Some(false)
    })
    .await;
    let took = failed_at.elapsed();
    eprintln!("2 x 2 instances, control plane {what}, 30 s in: {region} lost with its instances, switched Off {took:?} after");
    assert!(took < bound, "{took:?}");
    let live: Vec<&Instance> = survivors.iter().collect();
    hold_until(start + Duration::from_secs(60), &live, leader, term).await;
    let other = REGIONS.iter().copied().find(|r| *r != region).unwrap();
    assert_eq!(answered(&s.store), sorted(&[other]));

    s.store.store.set_latency(Duration::ZERO);
    s.store.store.clear_faults();
    s.eps.set(region, Mode::Serve);
    s.all_on().await;
    for i in survivors {
        i.daemon.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_per_region_fail_over_through_a_minute_of_503s() {
    two_per_region_through_a_minute_of_outage(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_per_region_fail_over_through_a_minute_of_hanging() {
    two_per_region_through_a_minute_of_outage(true).await;
}
