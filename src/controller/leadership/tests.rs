use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::decide::lease::{claim, swap, LeaseValue};
use crate::provider::memory::MemoryProvider;
use crate::provider::{Provider, ProviderError};

const NAME: &str = "_route53-failover-lease.example.test";
const DRIFT: Duration = Duration::from_secs(1);

fn value(holder: &str, term: u64, expires_ms: u64) -> LeaseValue {
    LeaseValue {
        holder: holder.into(),
        term,
        expires_ms,
    }
}

/// Route53's rules (exact-value DELETE, CREATE of an existing name fails,
/// atomic batches) make the swap a compare-and-swap: of two instances that
/// read the same lease, one wins. Proven on the strict memory provider:
/// moto accepts a DELETE with stale values (docs/design.md, "Emulators").
#[tokio::test]
async fn of_two_swaps_from_one_read_exactly_one_wins() {
    let store = MemoryProvider::new(&["example.test"], Duration::ZERO);
    let zone = store.find_zone("example.test").await.unwrap().id;
    let now = SystemTime::now();
    let d = Duration::from_secs(30);
    // Nobody holds it: both create, one wins.
    let a = claim("a", 1, now, d).record(NAME);
    let b = claim("b", 1, now, d).record(NAME);
    store.change(&zone, &swap(None, a.clone())).await.unwrap();
    let lost = store.change(&zone, &swap(None, b.clone())).await;
    assert!(matches!(lost, Err(ProviderError::InvalidChangeBatch(_))));
    // Both read a's lease and swap it: one wins, the other is refused and
    // the lease is whole.
    let a2 = claim("a", 2, now, d).record(NAME);
    let b2 = claim("b", 2, now, d).record(NAME);
    store
        .change(&zone, &swap(Some(&a), b2.clone()))
        .await
        .unwrap();
    let lost = store.change(&zone, &swap(Some(&a), a2)).await;
    assert!(matches!(lost, Err(ProviderError::InvalidChangeBatch(_))));
    let held: Vec<_> = store
        .records("example.test")
        .unwrap()
        .into_iter()
        .filter(|r| r.name == NAME)
        .collect();
    assert_eq!(held, vec![b2]);
}

fn ha() -> HaConfig {
    HaConfig {
        identity: "a".into(),
        zone: "example.test".into(),
        lease_name: NAME.into(),
        lease_duration: Duration::from_secs(30),
        renew_every: Duration::from_secs(10),
        max_clock_drift: DRIFT,
        view_max_age: Duration::from_secs(90),
    }
}

#[test]
fn the_holder_writes_until_its_send_time_plus_the_lease_less_the_drift() {
    let lease = Lease::new(ha());
    let mut rx = lease.subscribe();
    assert!(!lease.is_leader());
    // Sent 29.5 s ago: 30 s - 1 s of drift is over.
    let sent = Instant::now() - Duration::from_millis(29_500);
    lease.held(value("a", 1, 0), sent);
    assert!(!lease.is_leader());
    assert_eq!(lease.publish(), None);
    // Sent 20 s ago: about 9 s left.
    lease.held(value("a", 1, 0), Instant::now() - Duration::from_secs(20));
    let left = lease.write_window().unwrap();
    assert!(left <= Duration::from_secs(9) && left > Duration::from_secs(8));
    assert_eq!(lease.publish(), Some(true));
    assert!(rx.has_changed().unwrap() && *rx.borrow_and_update());
    assert_eq!(lease.snapshot().role, "leader");
    lease.step_down();
    assert_eq!(lease.publish(), Some(false));
    assert_eq!(lease.snapshot().role, "follower");
    assert_eq!(lease.snapshot().holder.as_deref(), Some("a"));
}

/// Losing the lease mid-reconcile: a write is not sent without the lease,
/// and one in flight is given up when the hold ends (the reconcile stops
/// there, before its next batch).
#[tokio::test]
async fn writes_are_fenced_by_the_hold() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let lease = Lease::new(ha());
    let polled = AtomicBool::new(false);
    let write = async {
        polled.store(true, Ordering::SeqCst);
        Ok::<_, ProviderError>(())
    };
    let r = lease.fence("change", write).await;
    assert!(matches!(r, Err(ProviderError::Fenced(m)) if m == "change not sent"));
    assert!(!polled.load(Ordering::SeqCst), "nothing was sent");

    // Held, about 200 ms left: a quick write goes through, a slow one is
    // given up when the hold ends.
    let sent = Instant::now() - (Duration::from_secs(29) - Duration::from_millis(200));
    lease.held(value("a", 1, 0), sent);
    assert!(lease.fence("change", async { Ok(()) }).await.is_ok());
    let slow = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, ProviderError>(())
    };
    let started = Instant::now();
    let r = lease.fence("change", slow).await;
    assert!(matches!(r, Err(ProviderError::Fenced(m)) if m == "the lease ended during change"));
    assert!(started.elapsed() < Duration::from_secs(5));
}
