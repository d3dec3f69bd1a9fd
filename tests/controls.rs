//! On-call's controls end to end, through the built binary and its CLI on
//! loopback: drains (withdraw, restart, expiry, the last member), freezes
//! (a withdrawal held and shown, applied at unfreeze), the admin routes'
//! lock (404 when off, 401, the token never shown), a drain made through
//! an HA follower honoured by the leader, and the event timeline of a
//! withdraw/restore cycle. The strict memory store is the peer: controls
//! are TXT records beside the lease, read back by every instance.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use route53_failover::demo::Mode;
use route53_failover::events::Event;

const ZONE: &str = "example.test";
const NAME: &str = "api.example.test";
const TOKEN: &str = "s3cret-admin-token-5f1e9a7c";
const CONTROLS: &str = "_route53-failover-controls.example.test";

/// A token file in `dir`.
fn token_file(dir: &Path) -> PathBuf {
    let path = dir.join("admin-token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    path
}

fn with_admin(config: String, token: &Path) -> String {
    format!("{config}admin: {{token_file: \"{}\"}}\n", token.display())
}

/// Runs the CLI (at most 30 s) with `args`, the token in the environment
/// unless `env_token` is None.
async fn cli(args: &[&str], env_token: Option<&str>) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).env_remove("ROUTE53_FAILOVER_ADMIN_TOKEN");
    if let Some(t) = env_token {
        cmd.env("ROUTE53_FAILOVER_ADMIN_TOKEN", t);
    }
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("the CLI ends within 30s")
        .unwrap()
}

/// `route53-failover ACTION --url BASE --record api.example.test ARGS…`.
async fn on_call(
    action: &str,
    base: &str,
    args: &[&str],
    env_token: Option<&str>,
) -> std::process::Output {
    let mut all = vec![action, "--url", base, "--record", NAME];
    all.extend_from_slice(args);
    cli(&all, env_token).await
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn controls_in_store(store: &Store) -> usize {
    store
        .store
        .records(ZONE)
        .unwrap()
        .iter()
        .filter(|r| r.name.ends_with(CONTROLS))
        .count()
}

async fn events(daemon: &Daemon) -> Vec<Event> {
    daemon.get("/events").await.json().await.unwrap()
}

async fn two_regions_with_admin(dir: &Path) -> (Store, Endpoints, String) {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let config = with_admin(config(&store, &eps, 1, "1m"), &token_file(dir));
    (store, eps, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_withdraws_a_healthy_member_survives_a_restart_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path());
    let token_arg = token.display().to_string();
    let (store, _eps, config) = two_regions_with_admin(dir.path()).await;
    let daemon = start_daemon(&config).await;
    wait_until("both published", Duration::from_secs(15), || async {
        store.member_ids(ZONE, NAME).len() == 2
    })
    .await;

    let drain = |region: &'static str, lasts: &'static str| {
        let base = daemon.base.clone();
        let token = token_arg.clone();
        async move {
            cli(
                &[
                    "drain",
                    "--url",
                    &base,
                    "--record",
                    NAME,
                    "--region",
                    region,
                    "--reason",
                    "kernel patching, INC-7",
                    "--for",
                    lasts,
                    "--by",
                    "alice",
                    "--token-file",
                    &token,
                ],
                None,
            )
            .await
        }
    };
    let out = drain("eu-west-1", "12s").await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("drain api.example.test A eu-west-1 until"),
        "{}",
        text(&out)
    );
    let drained_at = SystemTime::now();
    wait_until("eu-west-1 is withdrawn", Duration::from_secs(5), || async {
        store.member_ids(ZONE, NAME) == ["id-us-east-1"]
    })
    .await;
    let m = daemon.member("eu-west-1").await;
    assert_eq!(m.verdict, "healthy", "drained although healthy");
    assert_eq!(m.decision.as_deref(), Some("drained"));
    let d = m.drain.expect("status shows the drain");
    assert_eq!(
        (d.by.as_str(), d.reason.as_str()),
        ("alice", "kernel patching, INC-7")
    );
    let until = SystemTime::UNIX_EPOCH + Duration::from_millis(d.until_ms);
    let lasts = until.duration_since(drained_at).unwrap_or_default();
    assert!(
        lasts > Duration::from_secs(9) && lasts <= Duration::from_secs(12),
        "{lasts:?}"
    );
    assert_eq!(
        controls_in_store(&store),
        1,
        "kept in the zone, beside the lease"
    );

    // The last member left is refused, and nothing changes.
    let out = drain("us-east-1", "1h").await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("last member"), "{}", text(&out));
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_admin_actions_total",
            &["action=\"drain\"", "result=\"ok\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &page,
            "route53_failover_admin_actions_total",
            &["action=\"drain\"", "result=\"refused\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &page,
            "route53_failover_member_drained",
            &["region=\"eu-west-1\""]
        ),
        Some(1.0)
    );
    let table = cli(&["status", "--url", &daemon.base], None).await;
    assert!(
        text(&table).contains("drain api.example.test A eu-west-1 by alice"),
        "{}",
        text(&table)
    );
    assert!(
        text(&table).contains("drained by alice"),
        "{}",
        text(&table)
    );
    let timeline = events(&daemon).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.event == "drain" && e.by.as_deref() == Some("alice")),
        "{timeline:?}"
    );
    assert!(
        timeline
            .iter()
            .any(|e| e.event == "decision" && e.reason.as_deref() == Some("drained")),
        "{timeline:?}"
    );

    // A restart reads the drain back before it writes anything.
    daemon.stop().await;
    let daemon = start_daemon(&config).await;
    wait_until(
        "the restarted daemon is ready",
        Duration::from_secs(10),
        || async { daemon.status().await.ready },
    )
    .await;
    assert_eq!(
        store.member_ids(ZONE, NAME),
        ["id-us-east-1"],
        "still drained after a restart"
    );
    let m = daemon.member("eu-west-1").await;
    assert_eq!(m.decision.as_deref(), Some("drained"));
    assert!(m.drain.is_some());

    // It ends by itself: published again, and its record deleted.
    wait_until(
        "the drain expires and eu-west-1 is back",
        Duration::from_secs(15),
        || async { store.member_ids(ZONE, NAME).len() == 2 },
    )
    .await;
    assert!(SystemTime::now() >= until, "back only once the drain ended");
    wait_until(
        "the ended control's record is deleted",
        Duration::from_secs(5),
        || async { controls_in_store(&store) == 0 },
    )
    .await;
    let m = daemon.member("eu-west-1").await;
    assert_eq!(m.decision.as_deref(), Some("healthy"));
    assert!(m.drain.is_none());
    assert!(events(&daemon)
        .await
        .iter()
        .any(|e| e.event == "control_ended"));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_routes_are_off_without_a_token_file_and_locked_with_one() {
    // Off: every admin route is 404, and the CLI says why.
    let (_store, _eps, daemon) = three_regions(1, "1m").await;
    let resp = reqwest::Client::new()
        .post(format!("{}/admin/drain", daemon.base))
        .bearer_auth(TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        daemon.get("/admin/drain").await.status(),
        404,
        "whatever the method"
    );
    let out = cli(
        &[
            "freeze",
            "--url",
            &daemon.base,
            "--reason",
            "x",
            "--by",
            "a",
        ],
        Some(TOKEN),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("admin routes are off"),
        "{}",
        text(&out)
    );
    daemon.stop().await;

    // On: a missing or wrong token is 401.
    let dir = tempfile::tempdir().unwrap();
    let (_store, _eps, config) = two_regions_with_admin(dir.path()).await;
    let daemon = start_daemon(&config).await;
    let post = |auth: Option<&'static str>, body: &'static str| {
        let url = format!("{}/admin/drain", daemon.base);
        async move {
            let mut req = reqwest::Client::new().post(url).body(body);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send().await.unwrap()
        }
    };
    let body = r#"{"record":"api.example.test","region":"eu-west-1","reason":"x","by":"mallory"}"#;
    assert_eq!(post(None, body).await.status(), 401);
    let wrong = post(Some("Bearer s3cret-admin-token-5f1e9a7d"), body).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        post(Some(TOKEN), body).await.status(),
        401,
        "not a bearer header"
    );
    let out = on_call(
        "drain",
        &daemon.base,
        &["--region", "eu-west-1", "--reason", "x", "--by", "mallory"],
        Some("wrong-token-0000000000"),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("401"), "{}", text(&out));

    // Bad input names the field (exit 2), and changes nothing.
    let bad = post(
        Some("Bearer s3cret-admin-token-5f1e9a7c"),
        r#"{"record":"api.example.test","reason":"x","by":"a"}"#,
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("region: missing"));
    // A value of the wrong type names its field too; the scheme is matched
    // whatever its case (RFC 7235).
    let typed = post(
        Some("bearer s3cret-admin-token-5f1e9a7c"),
        r#"{"record":"api.example.test","region":"eu-west-1","reason":42,"by":"a"}"#,
    )
    .await;
    assert_eq!(typed.status(), 400);
    let message = typed.text().await.unwrap();
    assert!(
        message.contains("reason: invalid type: integer `42`"),
        "{message}"
    );
    // A body is read only once the token is good, and at most 16 KiB of it.
    let big = "x".repeat(2 * 1024 * 1024);
    let huge = |auth: Option<&'static str>| {
        let url = format!("{}/admin/drain", daemon.base);
        let big = big.clone();
        async move {
            let mut req = reqwest::Client::new().post(url).body(big);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send().await.map(|r| r.status().as_u16())
        }
    };
    // Without the token the answer comes before the body is read (the
    // client may see the connection close while it still sends).
    assert!(matches!(huge(None).await, Ok(401) | Err(_)));
    assert!(matches!(
        huge(Some("Bearer s3cret-admin-token-5f1e9a7c")).await,
        Ok(413) | Err(_)
    ));
    let out = on_call(
        "drain",
        &daemon.base,
        &["--region", "mars-north-1", "--reason", "x", "--by", "a"],
        Some(TOKEN),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("region: \"mars-north-1\" is not a member"),
        "{}",
        text(&out)
    );
    let out = on_call(
        "drain",
        &daemon.base,
        &[
            "--region",
            "eu-west-1",
            "--reason",
            "x",
            "--by",
            "a",
            "--for",
            "30d",
        ],
        Some(TOKEN),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("for: 30days must be more than 0 and at most 7days"),
        "{}",
        text(&out)
    );
    let out = on_call("undrain", &daemon.base, &["--region", "eu-west-1"], None).await;
    assert_eq!(out.status.code(), Some(2), "no token given: {}", text(&out));

    // The token from the environment works; it is never shown.
    let out = on_call(
        "undrain",
        &daemon.base,
        &["--region", "eu-west-1", "--by", "bob"],
        Some(TOKEN),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no drain in force"), "{}", text(&out));
    let page = daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_admin_actions_total",
            &["action=\"drain\"", "result=\"unauthorized\""]
        ),
        Some(5.0),
        "four calls with no or a wrong token, and the large body without one"
    );
    let status = daemon.get("/status").await.text().await.unwrap();
    let timeline = daemon.get("/events").await.text().await.unwrap();
    let html = daemon.get("/").await.text().await.unwrap();
    for (what, shown) in [
        ("logs", daemon.logs()),
        ("status", status),
        ("metrics", page),
        ("events", timeline),
        ("page", html),
    ] {
        assert!(
            !shown.contains(TOKEN) && !shown.contains("5f1e9a7"),
            "the token is in the {what}: {shown}"
        );
    }
    assert!(daemon
        .logs()
        .contains("admin call refused: missing or wrong bearer token"));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_holds_a_withdrawal_back_and_shows_it_until_unfreeze() {
    let dir = tempfile::tempdir().unwrap();
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let config = with_admin(config(&store, &eps, 1, "1m"), &token_file(dir.path()));
    let daemon = start_daemon(&config).await;
    wait_until("all published", Duration::from_secs(15), || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    let out = cli(
        &[
            "freeze",
            "--url",
            &daemon.base,
            "--reason",
            "manual change in the console",
            "--for",
            "10m",
            "--by",
            "carol",
        ],
        Some(TOKEN),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    eps.set("eu-west-1", Mode::Fail);
    wait_until(
        "eu-west-1 is unhealthy and its withdrawal held",
        Duration::from_secs(10),
        || async {
            let s = daemon.status().await;
            let m = s.member("eu-west-1").unwrap();
            m.verdict == "unhealthy"
                && m.decision.as_deref() == Some("unhealthy")
                && !s.zones[0].held.is_empty()
        },
    )
    .await;
    // Probing goes on, the decision is made, nothing is written.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        store.member_ids(ZONE, NAME).len(),
        3,
        "frozen: eu-west-1 stays"
    );
    let s = daemon.status().await;
    let held = s.zones[0].held.join("\n");
    assert!(
        held.contains("DELETE") && held.contains("id-eu-west-1"),
        "{held}"
    );
    assert_eq!(
        s.records[0].frozen.as_ref().map(|c| c.by.as_str()),
        Some("carol")
    );
    let table = text(&cli(&["status", "--url", &daemon.base], None).await);
    assert!(table.contains("held by a freeze: DELETE"), "{table}");
    assert!(table.contains("freeze (everything) by carol"), "{table}");
    let page = daemon.metrics().await;
    let held = metric(
        &page,
        "route53_failover_held_changes",
        &["zone=\"example.test\""],
    );
    assert!(held.unwrap_or(0.0) >= 1.0, "{held:?}");

    let out = cli(
        &[
            "unfreeze",
            "--url",
            &daemon.base,
            "--by",
            "carol",
            "--reason",
            "console change done",
        ],
        Some(TOKEN),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    wait_until(
        "the held withdrawal is applied",
        Duration::from_secs(5),
        || async {
            !store
                .member_ids(ZONE, NAME)
                .contains(&"id-eu-west-1".to_string())
        },
    )
    .await;
    let s = daemon.status().await;
    assert!(s.zones[0].held.is_empty() && s.controls.is_empty() && s.records[0].frozen.is_none());
    // The withdrawal's change event is emitted once the store's answer is
    // back in the daemon, a moment after the store shows it: read the
    // timeline until it is there, then place it.
    let withdrawal = |e: &Event| {
        e.event == "change" && e.message.contains("DELETE") && e.message.contains("id-eu-west-1")
    };
    wait_until(
        "the withdrawal is on the timeline",
        Duration::from_secs(5),
        || async { events(&daemon).await.iter().any(withdrawal) },
    )
    .await;
    let timeline = events(&daemon).await;
    let kinds: Vec<&str> = timeline.iter().map(|e| e.event.as_str()).collect();
    let at = |k: &str| {
        kinds
            .iter()
            .position(|e| *e == k)
            .unwrap_or_else(|| panic!("no {k} in {kinds:?}"))
    };
    let change = timeline.iter().position(withdrawal).unwrap();
    assert!(
        change < at("unfreeze") && at("unfreeze") < at("freeze"),
        "newest first: {kinds:?}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_made_through_the_follower_is_honoured_by_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path());
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let config = |id: &str| {
        let mut text = config(&store, &eps, 1, "5m");
        text.push_str(&format!(
            "ha: {{enabled: true, identity: {id}, lease_duration: 4s, renew_every: 1s, max_clock_drift: 250ms}}\n"
        ));
        with_admin(text, &token)
    };
    let a = start_daemon(&config("a")).await;
    let b = start_daemon(&config("b")).await;
    let mut roles = (String::new(), String::new());
    let limit = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < limit {
        roles = (
            a.status().await.lease.unwrap().role,
            b.status().await.lease.unwrap().role,
        );
        if roles.0 != roles.1 && (roles.0 == "leader" || roles.1 == "leader") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (leader, follower) = match (roles.0.as_str(), roles.1.as_str()) {
        ("leader", "follower") => (&a, &b),
        ("follower", "leader") => (&b, &a),
        other => panic!("no single leader within 20s: {other:?}"),
    };
    wait_until("all published", Duration::from_secs(15), || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    let out = on_call(
        "drain",
        &follower.base,
        &[
            "--region",
            "ap-southeast-2",
            "--reason",
            "region evacuation drill",
            "--by",
            "dave",
        ],
        Some(TOKEN),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    // The leader reads controls every 15 s with ha (30 s: room for a
    // loaded machine).
    wait_until(
        "the leader withdraws the drained member",
        Duration::from_secs(30),
        || async { store.member_ids(ZONE, NAME) == ["id-eu-west-1", "id-us-east-1"] },
    )
    .await;
    for d in [leader, follower] {
        let m = d.member("ap-southeast-2").await;
        assert_eq!(m.drain.map(|c| c.by), Some("dave".to_string()));
        assert_eq!(m.decision.as_deref(), Some("drained"));
    }
    let out = on_call(
        "undrain",
        &leader.base,
        &["--region", "ap-southeast-2", "--by", "dave"],
        Some(TOKEN),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    wait_until(
        "published again at undrain",
        Duration::from_secs(5),
        || async { store.member_ids(ZONE, NAME).len() == 3 },
    )
    .await;
    assert_eq!(controls_in_store(&store), 0);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_a_withdraw_and_restore_cycle_in_order() {
    let (store, eps, daemon) = three_regions(1, "1m").await;
    eps.set("eu-west-1", Mode::Fail);
    wait_until(
        "eu-west-1 is withdrawn",
        Duration::from_secs(10),
        || async { store.member_ids(ZONE, NAME).len() == 2 },
    )
    .await;
    let mark = events(&daemon).await[0].id;
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is back", Duration::from_secs(10), || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    // The restore's change event comes once the store's answer is back in
    // the daemon (a moment after the store shows the record), and the
    // withdrawal's INSYNC may come after `mark` too: wait for the
    // restore's own change and its INSYNC.
    wait_until(
        "the restore's change is INSYNC",
        Duration::from_secs(10),
        || async {
            let timeline = events(&daemon).await;
            let restore = timeline.iter().find(|e| {
                e.event == "change"
                    && e.id > mark
                    && e.message.contains("id-eu-west-1")
                    && !e.message.contains("DELETE")
            });
            restore.is_some_and(|r| {
                r.change_id.is_some()
                    && timeline
                        .iter()
                        .any(|e| e.event == "insync" && e.change_id == r.change_id)
            })
        },
    )
    .await;
    let newest_first = events(&daemon).await;
    assert!(newest_first.windows(2).all(|w| w[0].id > w[1].id));
    let mut cycle: Vec<&Event> = newest_first
        .iter()
        .filter(|e| e.region.as_deref() == Some("eu-west-1") || e.event == "change")
        .filter(|e| e.event != "verdict" || e.reason.as_deref() != Some("healthy") || e.id > mark)
        .collect();
    cycle.reverse();
    let steps: Vec<(String, Option<String>)> = cycle
        .iter()
        .map(|e| (e.event.clone(), e.reason.clone()))
        .skip_while(|(k, r)| !(k == "verdict" && r.as_deref() == Some("status")))
        .collect();
    let want = [
        ("verdict", Some("status")),
        ("decision", Some("unhealthy")),
        ("change", None),
        ("verdict", Some("healthy")),
        ("decision", Some("healthy")),
        ("change", None),
    ];
    let got: Vec<(&str, Option<&str>)> = steps
        .iter()
        .map(|(k, r)| (k.as_str(), r.as_deref()))
        .collect();
    assert_eq!(got, want, "{cycle:#?}");
    let failed_at = cycle
        .iter()
        .position(|e| e.event == "verdict" && e.reason.as_deref() == Some("status"))
        .unwrap();
    let withdrawal = cycle[failed_at..]
        .iter()
        .find(|e| e.event == "change")
        .unwrap();
    assert!(
        withdrawal.message.contains("DELETE") && withdrawal.change_id.is_some(),
        "{withdrawal:?}"
    );
    assert!(cycle
        .iter()
        .any(|e| e.event == "decision" && e.message.contains("eu-west-1 withdrawn: unhealthy")));

    // `since` keeps only what came after; the CLI prints the same. The
    // CLI reads the timeline at another moment than this test: its lines
    // are compared with a timeline read before and after it, the same
    // both times (a run that an event fell into is tried again).
    let since = || async {
        let url = format!("/events?since={mark}");
        daemon.get(&url).await.json::<Vec<Event>>().await.unwrap()
    };
    let mut tries = 0;
    let (after, printed) = loop {
        let before = since().await;
        let out = cli(
            &[
                "events",
                "--url",
                &daemon.base,
                "--since",
                &mark.to_string(),
            ],
            None,
        )
        .await;
        assert!(out.status.success());
        let after = since().await;
        tries += 1;
        if before.iter().map(|e| e.id).eq(after.iter().map(|e| e.id)) || tries == 5 {
            break (after, String::from_utf8_lossy(&out.stdout).into_owned());
        }
    };
    assert!(!after.is_empty() && after.iter().all(|e| e.id > mark));
    assert_eq!(printed.lines().count(), after.len(), "{printed}");
    assert!(
        printed.contains("decision") && printed.contains("api.example.test eu-west-1"),
        "{printed}"
    );
    // The log has the same events with a stable `event` field.
    assert!(
        daemon.logs().contains("event=\"decision\""),
        "{}",
        daemon.logs()
    );
    daemon.stop().await;
}

/// A drain whose reason spans several TXT strings reads back whatever
/// order Route53 keeps them in (here: reversed in the store, then a
/// restart); a reload that would move the drains to another zone while one
/// is in force is refused, naming the key that keeps them in place.
/// (Before: the strings were joined in the order given, and a reload that
/// added an earlier-sorting zone dropped every drain without a word.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_stay_put_through_string_order_restarts_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let store = start_store(&["a.example.test", ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1"]).await;
    let conf = with_admin(config(&store, &eps, 1, "1m"), &token_file(dir.path()));
    let mut daemon = start_daemon(&conf).await;
    wait_until("both published", Duration::from_secs(15), || async {
        store.member_ids(ZONE, NAME).len() == 2
    })
    .await;
    let reason = format!("kernel patching, CHG-1234: {}", "é".repeat(150));
    let out = on_call(
        "drain",
        &daemon.base,
        &[
            "--region",
            "eu-west-1",
            "--reason",
            &reason,
            "--by",
            "alice",
        ],
        Some(TOKEN),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    wait_until("eu-west-1 is drained", Duration::from_secs(10), || async {
        store.member_ids(ZONE, NAME) == vec![set_id("us-east-1")]
    })
    .await;
    let mut record = store
        .store
        .records(ZONE)
        .unwrap()
        .into_iter()
        .find(|r| r.name.ends_with(CONTROLS))
        .unwrap();
    assert!(record.values.len() > 2, "{:?}", record.values);
    record.values.reverse();
    store.edit(ZONE, route53_failover::provider::Action::Upsert, record);
    daemon.stop().await;
    daemon = start_daemon(&conf).await;
    wait_until(
        "the drain is read back whole",
        Duration::from_secs(10),
        || async {
            let s = daemon.status().await;
            s.controls.iter().any(|c| c.reason == reason)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(store.member_ids(ZONE, NAME), vec![set_id("us-east-1")]);

    // A record in a zone that sorts first would move the drains there
    // (records come before admin in the file).
    let (head, admin) = conf.split_once("admin:").unwrap();
    let with_record = format!(
        "{head}  - name: www.a.example.test\n    zone: a.example.test\n    probe: {{url: \"http://www.a.example.test/health\", connect_to: \"{a}\"}}\n    regions:\n      - {{region: us-east-1, set_identifier: w1, target: {{values: [192.0.2.7]}}}}\n      - {{region: eu-west-1, set_identifier: w2, target: {{values: [192.0.2.8]}}}}\nadmin:{admin}",
        a = eps.list[0].addr
    );
    std::fs::write(&daemon.config_path, &with_record).unwrap();
    wait_until("the reload is refused", Duration::from_secs(10), || async {
        daemon
            .status()
            .await
            .config
            .and_then(|c| c.last_reload_error)
            .is_some_and(|e| {
                e.contains(
                    "admin.zone: on-call's 1 control(s) in force are kept in \"example.test\"",
                )
            })
    })
    .await;
    assert_eq!(store.member_ids(ZONE, NAME), vec![set_id("us-east-1")]);
    // Pinned where they are: the reload goes through, the drain stays.
    let pinned = with_record.replace(
        "admin: {token_file:",
        "admin: {zone: example.test, token_file:",
    );
    std::fs::write(&daemon.config_path, &pinned).unwrap();
    wait_until(
        "the pinned reload is applied",
        Duration::from_secs(10),
        || async {
            let s = daemon.status().await;
            s.records.len() == 2 && s.config.is_some_and(|c| c.last_reload_error.is_none())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(store.member_ids(ZONE, NAME), vec![set_id("us-east-1")]);
    assert!(daemon
        .status()
        .await
        .controls
        .iter()
        .any(|c| c.reason == reason));
    daemon.stop().await;
}

/// A container runs with no `$USER`: `drain` without `--by` is refused
/// before anything is sent (exit 2), saying to pass `--by`; with `--by`
/// it goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_with_no_user_and_no_by_says_to_pass_by() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path());
    let (_store, _eps, config) = two_regions_with_admin(dir.path()).await;
    let daemon = start_daemon(&config).await;
    let token = token.display().to_string();
    let args = [
        "drain",
        "--url",
        &daemon.base,
        "--record",
        NAME,
        "--region",
        "eu-west-1",
        "--reason",
        "INC-7",
        "--token-file",
        &token,
    ];
    let run = |by: Option<&'static str>| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args).env_remove("USER");
        if let Some(by) = by {
            cmd.args(["--by", by]);
        }
        async move {
            tokio::time::timeout(Duration::from_secs(30), cmd.output())
                .await
                .expect("the CLI ends within 30s")
                .unwrap()
        }
    };
    let out = run(None).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--by"), "{}", text(&out));
    assert!(events(&daemon).await.iter().all(|e| e.event != "control"));
    let out = run(Some("alice")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    daemon.stop().await;
}
