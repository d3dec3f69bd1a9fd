//! Practice runs end to end, through the built binary: the strict store
//! on loopback for Route53, loopback endpoints for the regions, the state
//! store in a file (so a restart finds the history). A run is a drain by
//! `practice`: these tests watch the zone, status, the timeline and the
//! metrics, as on-call would.

mod common;

use std::time::{Duration, Instant};

use common::*;
use route53_failover::demo::Mode;
use route53_failover::status::PracticeStatus;

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "s3cret-practice-admin-token-7a41";
const THREE: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

struct Setup {
    store: Store,
    eps: Endpoints,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new(regions: &[&str]) -> Setup {
        Setup {
            store: start_store(&[ZONE]).await,
            eps: Endpoints::start(regions).await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn token(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("token");
        std::fs::write(&path, TOKEN).unwrap();
        path
    }

    /// The e2e config with admin, a state store in a file, and
    /// `practice` (a flow mapping) in the defaults.
    fn config(&self, min_healthy: usize, practice: &str) -> String {
        let base = config(&self.store, &self.eps, min_healthy, "5m");
        let base = base.replace(
            "defaults:\n",
            &format!("defaults:\n  practice: {practice}\n"),
        );
        format!(
            "{base}admin: {{token_file: \"{}\"}}\nstate_store: {{kind: file, path: \"{}\"}}\n",
            self.token().display(),
            self.dir.path().join("state.json").display()
        )
    }

    fn published(&self) -> Vec<String> {
        self.store.member_ids(ZONE, NAME)
    }

    fn is_published(&self, region: &str) -> bool {
        self.published().contains(&set_id(region))
    }
}

async fn practice(daemon: &Daemon) -> PracticeStatus {
    daemon.status().await.records[0]
        .practice
        .clone()
        .expect("the record practises")
}

/// The outcome of `region`'s last run, once it ended.
async fn outcome(daemon: &Daemon, region: &str) -> Option<(String, Option<String>)> {
    practice(daemon)
        .await
        .last
        .into_iter()
        .find(|r| r.region == region)
        .and_then(|r| Some((r.outcome?, r.why)))
}

/// `route53-failover practice …` through the CLI, as alice.
async fn cli(daemon: &Daemon, token: &std::path::Path, args: &[&str]) -> std::process::Output {
    let token = token.display().to_string();
    let mut all: Vec<&str> = vec!["practice"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", &daemon.base]);
    if args[0] != "list" {
        all.extend_from_slice(&["--token-file", &token, "--by", "alice"]);
    }
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(BIN).args(&all).output(),
    )
    .await
    .expect("the CLI ends within 30s")
    .unwrap()
}

/// Scheduled in the current window (any time of day here), never run
/// before: the first member practises as soon as every member is known
/// healthy, its record is withdrawn through the decision, put back at the
/// end, and the run is reported passed: status, timeline, metrics. The
/// next run is a week after this one began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_practice_withdraws_its_member_then_restores_it_and_passes() {
    let s = Setup::new(&THREE).await;
    let daemon = start_daemon(&s.config(1, "{duration: 5s}")).await;
    wait_until("us-east-1 is withdrawn for its practice", LIMIT, || async {
        s.published().len() == 2 && !s.is_published("us-east-1")
    })
    .await;
    let withdrawn = Instant::now();
    let p = practice(&daemon).await;
    assert_eq!(p.running.as_ref().map(|r| r.0.as_str()), Some("us-east-1"));
    let member = daemon.member("us-east-1").await;
    assert_eq!(member.decision.as_deref(), Some("drained"), "{member:?}");
    wait_until("us-east-1 is back", LIMIT, || async {
        s.is_published("us-east-1")
    })
    .await;
    let took = withdrawn.elapsed();
    eprintln!("practice of 5 s: withdrawn for {took:?}");
    assert!(took >= Duration::from_secs(4), "{took:?}: ended early");
    wait_until("the run is reported passed", LIMIT, || async {
        outcome(&daemon, "us-east-1").await == Some(("passed".into(), None))
    })
    .await;
    let p = practice(&daemon).await;
    let started = p.last[0].started_ms as f64 / 1000.0;
    let next = p.next.expect("a next run");
    assert!(
        (next - (started + 7.0 * 86_400.0)).abs() < 2.0,
        "next {next}, started {started}"
    );
    let page = daemon.metrics().await;
    let runs = metric(
        &page,
        "route53_failover_practice_runs_total",
        &["region=\"us-east-1\"", "outcome=\"passed\""],
    );
    assert_eq!(runs, Some(1.0));
    assert_eq!(
        metric(
            &page,
            "route53_failover_practice_last_failed",
            &["region=\"us-east-1\""]
        ),
        Some(0.0)
    );
    let events: Vec<String> = daemon
        .get("/events")
        .await
        .json::<Vec<route53_failover::events::Event>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "practice")
        .map(|e| e.message)
        .collect();
    assert!(
        events.iter().any(|m| m.contains("us-east-1 started")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|m| m.contains("us-east-1 passed")),
        "{events:?}"
    );
    // One run a week: nothing more is withdrawn.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.published().len(), 3);
    daemon.stop().await;
}

/// Another member fails during a practice: the run ends at once, failed,
/// and the practised member is published again within detection + 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_failing_during_a_practice_fails_it_and_restores_the_practised_member() {
    let s = Setup::new(&THREE).await;
    let daemon = start_daemon(&s.config(1, "{duration: 60s}")).await;
    wait_until("us-east-1 is withdrawn for its practice", LIMIT, || async {
        !s.is_published("us-east-1") && s.published().len() == 2
    })
    .await;
    let failed_at = Instant::now();
    s.eps.set("eu-west-1", Mode::Fail);
    wait_until("us-east-1 is back", LIMIT, || async {
        s.is_published("us-east-1")
    })
    .await;
    let took = failed_at.elapsed();
    // Detection: fall 3 at 200 ms, a 150 ms timeout; then at most 1 s.
    eprintln!("another member failed: the practised member back {took:?} after the failure began");
    assert!(took < Duration::from_millis(750 + 1000 + 300), "{took:?}");
    wait_until("the run is reported failed", LIMIT, || async {
        outcome(&daemon, "us-east-1").await.is_some()
    })
    .await;
    let (how, why) = outcome(&daemon, "us-east-1").await.unwrap();
    assert_eq!(how, "failed");
    assert!(why.unwrap().contains("id-eu-west-1 failed"));
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_practice_last_failed",
            &["region=\"us-east-1\""]
        ),
        Some(1.0)
    );
    // eu-west-1 itself is withdrawn for its real failure, as always.
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        !s.is_published("eu-west-1")
    })
    .await;
    daemon.stop().await;
}

/// What holds a run back: another member not healthy (and the run starts
/// once it recovers), and on-call's drain. Said in status; nothing is
/// withdrawn meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_waits_while_a_member_is_unhealthy_or_a_drain_is_in_force() {
    let s = Setup::new(&THREE).await;
    s.eps.set("ap-southeast-2", Mode::Fail);
    let daemon = start_daemon(&s.config(1, "{duration: 5s}")).await;
    wait_until("the run waits, and says why", LIMIT, || async {
        practice(&daemon)
            .await
            .blocked
            .is_some_and(|b| b.contains("id-ap-southeast-2 is not healthy"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        s.is_published("us-east-1"),
        "no practice while a member fails"
    );
    assert!(practice(&daemon).await.running.is_none());
    // On-call drains eu-west-1 meanwhile: still held back once the
    // failing member recovers.
    let token = s.token();
    lever::on_call(&daemon, &token, "drain", "eu-west-1", false).await;
    s.eps.set("ap-southeast-2", Mode::Serve);
    wait_until("the run waits for the drain", LIMIT, || async {
        practice(&daemon)
            .await
            .blocked
            .is_some_and(|b| b.contains("drain api.example.test A eu-west-1"))
    })
    .await;
    assert!(s.is_published("us-east-1"));
    lever::on_call(&daemon, &token, "undrain", "eu-west-1", false).await;
    wait_until("the run starts once nothing holds it", LIMIT, || async {
        !s.is_published("us-east-1")
    })
    .await;
    daemon.stop().await;
}

/// Two members and `min_healthy: 2`: withdrawing either would break it,
/// so no run starts, by schedule or by hand, and nothing is withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_never_breaks_min_healthy() {
    let s = Setup::new(&["us-east-1", "eu-west-1"]).await;
    let daemon = start_daemon(&s.config(2, "{duration: 5s}")).await;
    wait_until("the run waits for min_healthy", LIMIT, || async {
        practice(&daemon)
            .await
            .blocked
            .is_some_and(|b| b.contains("min_healthy"))
    })
    .await;
    let token = s.token();
    let out = cli(
        &daemon,
        &token,
        &["start", "--record", NAME, "--region", "eu-west-1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "refused");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("min_healthy"), "{said}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.published().len(), 2, "nothing withdrawn");
    daemon.stop().await;
}

/// On-call starts one by hand (another member, another length), lists it,
/// and stops it: the member comes back, and the run is aborted, by whom.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_starts_lists_and_stops_a_practice() {
    let s = Setup::new(&THREE).await;
    // Outside every window: no scheduled run gets in the way.
    let daemon = start_daemon(&s.config(
        1,
        "{duration: 5s, blocked_dates: [2020-01-01], windows: [\"Mon 00:00-00:01\"]}",
    ))
    .await;
    wait_until("all three published", LIMIT, || async {
        s.published().len() == 3
    })
    .await;
    let token = s.token();
    wait_until("every member is known healthy", LIMIT, || async {
        daemon.status().await.records[0]
            .members
            .iter()
            .all(|m| m.agreed == "healthy")
    })
    .await;
    let out = cli(
        &daemon,
        &token,
        &[
            "start",
            "--record",
            NAME,
            "--region",
            "eu-west-1",
            "--for",
            "5m",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        !s.is_published("eu-west-1")
    })
    .await;
    let listed = cli(&daemon, &token, &["list"]).await;
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("running eu-west-1 until"), "{listed}");
    let out = cli(&daemon, &token, &["stop", "--record", NAME]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("eu-west-1 is back", LIMIT, || async {
        s.is_published("eu-west-1")
    })
    .await;
    assert_eq!(
        outcome(&daemon, "eu-west-1").await,
        Some(("aborted".into(), Some("stopped by alice".into())))
    );
    daemon.stop().await;
}

/// The daemon is killed during a run and started again: the run goes on
/// (its member stays out), ends on time, and is reported passed; the
/// history in the store keeps a second run from starting at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_a_practice_resumes_it_and_ends_it_on_time() {
    let s = Setup::new(&THREE).await;
    let text = s.config(1, "{duration: 8s}");
    let first = start_daemon(&text).await;
    wait_until("us-east-1 is withdrawn for its practice", LIMIT, || async {
        !s.is_published("us-east-1") && s.published().len() == 2
    })
    .await;
    let until = practice(&first).await.running.expect("running").1;
    first.signal("KILL");
    drop(first);
    let again = start_daemon(&text).await;
    wait_until("the restarted daemon shows the run", LIMIT, || async {
        practice(&again).await.running.is_some()
    })
    .await;
    // Still out after the restart, unless the restart (slow under load)
    // outlasted the run: the return's time is checked below either way.
    let unix_now = || route53_failover::time::unix_secs(std::time::SystemTime::now());
    if unix_now() < until - 0.5 {
        assert!(
            !s.is_published("us-east-1"),
            "back after the restart, before its end"
        );
    }
    wait_until("us-east-1 is back", LIMIT, || async {
        s.is_published("us-east-1")
    })
    .await;
    let now = unix_now();
    eprintln!(
        "restart during a practice: back {:.2}s after its end",
        now - until
    );
    assert!(
        now >= until - 0.5,
        "back {:.2}s before its end",
        until - now
    );
    wait_until("the run is reported passed", LIMIT, || async {
        outcome(&again, "us-east-1").await == Some(("passed".into(), None))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.published().len(), 3, "no second run at once");
    again.stop().await;
}

/// Debian's Prometheus server, scraping every second a loopback exporter
/// whose one gauge (`api_error_ratio`) the test sets.
struct Prometheus {
    url: String,
    value: std::sync::Arc<std::sync::Mutex<f64>>,
    _server: tokio::process::Child,
    _dir: tempfile::TempDir,
    _exporter: tokio_util::sync::DropGuard,
}

impl Prometheus {
    async fn start(initial: f64) -> Prometheus {
        let value = std::sync::Arc::new(std::sync::Mutex::new(initial));
        let served = value.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let v = *served.lock().unwrap();
                async move { format!("# TYPE api_error_ratio gauge\napi_error_ratio {v}\n") }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await;
        });
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: api\n    static_configs: [{{targets: [\"{target}\"]}}]\n"
            ),
        )
        .unwrap();
        // Port 0: Prometheus binds a port of its own and logs it.
        let mut server = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("Debian's prometheus (.ci/run installs it)");
        let address = said(
            server.stderr.take().unwrap(),
            "Prometheus's address",
            |line| {
                let (_, after) = line.split_once("msg=\"Listening on\" address=")?;
                after.split_whitespace().next().map(String::from)
            },
        )
        .await;
        let prometheus = Prometheus {
            url: format!("http://{address}"),
            value,
            _server: server,
            _dir: dir,
            _exporter: stop.drop_guard(),
        };
        prometheus.wait_for(initial).await;
        prometheus
    }

    /// Sets the gauge and waits until Prometheus has scraped it.
    async fn set(&self, v: f64) {
        *self.value.lock().unwrap() = v;
        self.wait_for(v).await;
    }

    async fn wait_for(&self, v: f64) {
        let client = reqwest::Client::new();
        wait_until("Prometheus has the gauge's value", LIMIT, || async {
            route53_failover::prometheus_query::ask(&client, &self.url, "api_error_ratio")
                .await
                .is_ok_and(|got| got == Some(v))
        })
        .await;
    }
}

/// The practice's Prometheus query (the API's error rate, say) over its
/// maximum holds a run back; under it the run starts; over it again, the
/// run ends at once, failed, and its member comes back. Against a real
/// Prometheus server that scrapes a loopback exporter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_query_over_its_maximum_holds_a_practice_back_and_fails_one() {
    let prometheus = Prometheus::start(0.5).await;
    let s = Setup::new(&THREE).await;
    let practice_config = format!(
        "{{duration: 60s, query: {{url: \"{}\", expr: api_error_ratio, max: 0.05, every: 1s}}}}",
        prometheus.url
    );
    let daemon = start_daemon(&s.config(1, &practice_config)).await;
    // Blocked by the query (which implies every verdict healthy) and
    // every record written: a run that started anyway would withdraw one.
    wait_until("the run waits for the query", LIMIT, || async {
        practice(&daemon)
            .await
            .blocked
            .is_some_and(|b| b.contains("the query api_error_ratio is 0.5, over 0.05"))
            && s.published().len() == 3
    })
    .await;
    assert_eq!(
        s.published().len(),
        3,
        "nothing withdrawn while the query is over"
    );
    prometheus.set(0.01).await;
    wait_until("the run starts once the query is under", LIMIT, || async {
        !s.is_published("us-east-1")
    })
    .await;
    prometheus.set(0.5).await;
    let over_at = Instant::now();
    wait_until("us-east-1 is back", LIMIT, || async {
        s.is_published("us-east-1")
    })
    .await;
    eprintln!(
        "query over its maximum during a run: member back {:?} after Prometheus had the value",
        over_at.elapsed()
    );
    wait_until("the run is reported failed", LIMIT, || async {
        outcome(&daemon, "us-east-1").await.is_some()
    })
    .await;
    let (how, why) = outcome(&daemon, "us-east-1").await.unwrap();
    assert_eq!(how, "failed");
    assert!(why.unwrap().contains("api_error_ratio is 0.5, over 0.05"));
    daemon.stop().await;
}
