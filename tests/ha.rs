//! HA through the lease kept in the zone, with two and three instances of
//! the built binary sharing one strict memory store (served on loopback;
//! each instance reaches it through its own proxy, which logs what that
//! instance sent and can cut it off). The strict store is the right peer:
//! the lease's compare-and-swap needs an exact-value DELETE, which moto
//! does not enforce (docs/design.md, "Emulators").

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::ha::*;
use common::*;
use route53_failover::demo::Mode;

const NAME: &str = "api.example.test";
const LIMIT: Duration = Duration::from_secs(20);
const LEASE_DURATION: Duration = Duration::from_secs(4);
const RENEW_EVERY: Duration = Duration::from_secs(1);
const MAX_CLOCK_DRIFT: Duration = Duration::from_millis(250);
/// The least `ha.view_max_age`: a killed instance's view counts this long.
const VIEW_MAX_AGE: Duration = Duration::from_secs(30);

/// Milliseconds since the Unix epoch, as the lease's expiry is written.
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Starts instance `id` on the store, through a proxy of its own.
async fn instance(id: &'static str, store: &Store, eps: &Endpoints) -> Instance {
    Instance::start(id, store, Launch::default(), |provider| {
        let mut text = config_with_provider(provider, eps, 1, "1m");
        text.push_str(&format!(
            "ha: {{enabled: true, identity: {id}, lease_duration: {}ms, renew_every: {}ms, max_clock_drift: {}ms, view_max_age: {}s}}\n",
            LEASE_DURATION.as_millis(),
            RENEW_EVERY.as_millis(),
            MAX_CLOCK_DRIFT.as_millis(),
            VIEW_MAX_AGE.as_secs()
        ));
        text
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_and_the_follower_takes_over_when_the_leader_dies() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let mut a = instance("a", &store, &eps).await;
    wait_until("a takes the free lease", LIMIT, || async {
        a.role().await == "leader"
    })
    .await;
    let b = instance("b", &store, &eps).await;
    wait_until("three members are published", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    wait_until("b is ready, following a", LIMIT, || async {
        let s = b.daemon.status().await;
        let l = s.lease.unwrap();
        s.ready && l.role == "follower" && l.holder.as_deref() == Some("a")
    })
    .await;
    assert_eq!(lease(&store).unwrap().holder, "a");
    assert_eq!(lease(&store).unwrap().term, 1);
    // On-call sees who writes, on the page and in the table.
    let page = b.daemon.get("/").await.text().await.unwrap();
    assert!(
        page.contains("lease <span class=\"warn\">b: FOLLOWER (held by a, term 1, ends in"),
        "{page}"
    );
    let table = std::process::Command::new(BIN)
        .args(["status", "--url", &a.daemon.base])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("lease a: LEADER (held by a, term 1, ends in"),
        "{table}"
    );

    // A region fails: both see it, only the holder writes.
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 2
    })
    .await;
    wait_until("b sees eu-west-1 unhealthy", LIMIT, || async {
        b.daemon.member("eu-west-1").await.verdict == "unhealthy"
    })
    .await;
    assert!(!a.writes().is_empty());
    assert!(
        b.writes().is_empty(),
        "the follower wrote: {:?}",
        b.writes()
    );
    let page = b.daemon.metrics().await;
    assert_eq!(
        metric(&page, "route53_failover_leader", &["identity=\"b\""]),
        Some(0.0)
    );
    let page = a.daemon.metrics().await;
    assert_eq!(
        metric(&page, "route53_failover_leader", &["identity=\"a\""]),
        Some(1.0)
    );

    // The leader dies (SIGKILL: no release). The follower takes over once
    // the lease has run out, and no sooner.
    let a_last_renewal = lease(&store).unwrap();
    a.daemon.child.kill().await.unwrap();
    let killed = Instant::now();
    let killed_ms = unix_ms(SystemTime::now());
    wait_until("b takes over", LIMIT, || async {
        b.role().await == "leader"
    })
    .await;
    let taken = lease(&store).unwrap();
    assert_eq!((taken.holder.as_str(), taken.term), ("b", 2));
    // The follower saw a's last renewal within a read of it, and takes
    // over once that value has stood for lease_duration + max_clock_drift
    // on its own clock. The take-over is b's lease write, sent at its
    // expiry less lease_duration (b's wall clock is this machine's): the
    // hand-over is measured to it, not to when this test's polling of
    // b's status next saw it lead.
    let sent_ms = taken.expires_ms - LEASE_DURATION.as_millis() as u64;
    assert!(sent_ms >= killed_ms, "b took the lease before a was killed");
    let handover = Duration::from_millis(sent_ms - killed_ms);
    let bound = LEASE_DURATION + MAX_CLOCK_DRIFT + RENEW_EVERY;
    println!(
        "hand-over after the leader was killed: {:.2}s (lease_duration + max_clock_drift + renew_every = {bound:?}); seen in b's status after {:.2}s",
        handover.as_secs_f64(),
        killed.elapsed().as_secs_f64(),
    );
    assert!(handover <= bound, "hand-over took {handover:?}");
    // The event is emitted a moment after b's status says it leads: the
    // timeline is read until it is there.
    let lease_events = || async {
        let events: Vec<route53_failover::events::Event> =
            b.daemon.get("/events").await.json().await.unwrap();
        events
            .into_iter()
            .filter(|e| e.event == "lease")
            .collect::<Vec<_>>()
    };
    wait_until("the take-over is on b's timeline", LIMIT, || async {
        !lease_events().await.is_empty()
    })
    .await;
    let lease_event = lease_events().await.remove(0);
    assert_eq!(lease_event.reason.as_deref(), Some("acquired"));
    assert!(lease_event.message.contains("term 2"), "{lease_event:?}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        now_ms > a_last_renewal.expires_ms,
        "taken over before a's lease ended"
    );

    // The new holder writes: the region recovers and is restored by b,
    // once the view a left when it was killed (eu-west-1 down) is stale:
    // until then b's verdict is one of two (`policy.quorum: majority`).
    eps.set("eu-west-1", Mode::Serve);
    wait_until("b sees eu-west-1 healthy", LIMIT, || async {
        b.daemon.member("eu-west-1").await.verdict == "healthy"
    })
    .await;
    let m = b.daemon.member("eu-west-1").await;
    let a_view = m
        .views
        .iter()
        .find(|v| v.instance == "a")
        .map(|v| (v.verdict.clone(), v.counted));
    if a_view == Some(("unhealthy".into(), true)) {
        assert_eq!(
            store.member_ids(ZONE, NAME).len(),
            2,
            "held while a's view counts"
        );
    }
    wait_until("eu-west-1 is restored", VIEW_MAX_AGE + LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 3
    })
    .await;
    let m = b.daemon.member("eu-west-1").await;
    let a_view = m.views.iter().find(|v| v.instance == "a");
    assert!(
        a_view.is_none_or(|v| !v.counted && v.ignored.as_deref() == Some("stale")),
        "a's view no longer counts: {a_view:?}"
    );
    assert!(!b.writes().is_empty());
    assert!(
        a.writes().iter().all(|w| w.at < killed),
        "nothing of a's after its death"
    );
    assert!(b.writes().iter().all(|w| w.at > killed));

    // A graceful stop hands the lease back: a restarted `a` takes it at its
    // next read, well before the lease would have run out.
    let a2 = instance("a", &store, &eps).await;
    wait_until("a2 follows b", LIMIT, || async {
        a2.daemon.status().await.lease.unwrap().holder.as_deref() == Some("b")
    })
    .await;
    let stopping = Instant::now();
    b.daemon.stop().await;
    wait_until("a2 takes over", LIMIT, || async {
        a2.role().await == "leader"
    })
    .await;
    let released = stopping.elapsed();
    println!(
        "hand-over after a graceful stop (lease released): {:.2}s",
        released.as_secs_f64()
    );
    assert!(released < LEASE_DURATION, "took {released:?}");
    assert_eq!(lease(&store).unwrap().term, 3);
    a2.daemon.stop().await;
}

/// The leader's lease writes fail (a partition between it and Route53 for
/// that record) while its other calls still go through: nothing but its
/// own clock stops it from writing records. It must stop before anyone
/// else starts, then stay a follower once it can see again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_stops_writing_before_another_starts() {
    let store = start_store(&[ZONE]).await;
    let eps = Endpoints::start(&["us-east-1", "eu-west-1", "ap-southeast-2"]).await;
    let a = instance("a", &store, &eps).await;
    wait_until("a takes the free lease", LIMIT, || async {
        a.role().await == "leader"
    })
    .await;
    let b = instance("b", &store, &eps).await;
    let c = instance("c", &store, &eps).await;
    let all = [&a, &b, &c];
    wait_until("three members are published, all ready", LIMIT, || async {
        let mut ready = true;
        for i in all {
            ready &= i.daemon.status().await.ready;
        }
        ready && store.member_ids(ZONE, NAME).len() == 3
    })
    .await;

    a.proxy.partition(Some(LEASE));
    let cut = Instant::now();
    // Watch every role until a new leader appears: never two at once, and
    // a steps down before the other starts.
    let mut a_stopped: Option<(usize, Instant)> = None;
    let mut new_leader = None;
    for round in 0.. {
        assert!(cut.elapsed() < LIMIT, "no new leader within {LIMIT:?}");
        let now = leaders(&all).await;
        assert!(now.len() <= 1, "two leaders at once: {now:?}");
        if a_stopped.is_none() && !now.contains(&"a") {
            a_stopped = Some((round, Instant::now()));
        }
        if let Some(&l) = now.iter().find(|&&l| l != "a") {
            let (stopped_round, _) = a_stopped.expect("a stepped down first");
            assert!(
                stopped_round < round,
                "{l} led in the very round a stepped down: no gap"
            );
            new_leader = Some((l, Instant::now()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, a_stopped) = a_stopped.unwrap();
    let (leader_id, started) = new_leader.unwrap();
    println!(
        "partitioned leader stopped writing {:.2}s after the cut; {leader_id} started {:.2}s after that",
        (a_stopped - cut).as_secs_f64(),
        (started - a_stopped).as_secs_f64()
    );
    assert!(a_stopped < started);
    let leader = all.iter().find(|i| i.id == leader_id).unwrap();

    // A region fails: the new leader withdraws it; `a`, whose record
    // writes would still go through, sends none.
    eps.set("eu-west-1", Mode::Fail);
    wait_until("eu-west-1 is withdrawn", LIMIT, || async {
        store.member_ids(ZONE, NAME).len() == 2
    })
    .await;
    wait_until("a sees eu-west-1 unhealthy", LIMIT, || async {
        a.daemon.member("eu-west-1").await.verdict == "unhealthy"
    })
    .await;
    // The partition heals: `a` reads the new lease and stays a follower.
    a.proxy.partition(None);
    wait_until("a follows the new leader", LIMIT, || async {
        a.daemon.status().await.lease.unwrap().holder.as_deref() == Some(leader_id)
    })
    .await;
    tokio::time::sleep(RENEW_EVERY * 2).await;
    assert_eq!(leaders(&all).await, vec![leader_id]);

    // Every record or check write lies inside its sender's hold: a's
    // before it stepped down, the new leader's after it started, none of
    // the third's.
    assert!(
        a.writes().iter().all(|w| w.at < a_stopped),
        "a wrote after it stepped down: {:?}",
        a.writes()
            .iter()
            .filter(|w| w.at >= a_stopped)
            .collect::<Vec<_>>()
    );
    assert!(leader
        .writes()
        .iter()
        .all(|w| w.at > started - Duration::from_millis(100)));
    assert!(!leader.writes().is_empty());
    for i in all {
        if i.id != "a" && i.id != leader_id {
            assert!(i.writes().is_empty(), "{} wrote", i.id);
        }
    }
    let held = lease(&store).unwrap();
    assert_eq!((held.holder.as_str(), held.term), (leader_id, 2));
    let page = a.daemon.metrics().await;
    assert_eq!(
        metric(
            &page,
            "route53_failover_lease_transitions_total",
            &["event=\"lost\""]
        ),
        Some(1.0)
    );
}
