//! Spacing requests to a service: at most `rate` per second, no bursts.
//! The daemon keeps one for Route53, shared by every task of the process
//! (the account's budget is shared with every other tool), and one for
//! API Gateway (discovery and parity reads).
//!
//! Route53's requests do not all wait alike: when several are waiting,
//! the next slot goes to the most urgent lane ([`Lane`]), so a withdrawal
//! never queues behind a zone's listing or a status poll.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Which requests go first when several wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// What failover waits on: record changes, and the HA lease.
    Urgent = 0,
    /// Reads a decision waits on (a zone's records, the views, on-call's
    /// controls) and health check calls.
    Normal = 1,
    /// What no decision waits on: Route53's checker status, INSYNC tracking.
    Background = 2,
}

const LANES: usize = 3;

/// Spaces requests: at most `rate` per second across every task that
/// shares it, no bursts; the most urgent waiting lane first, each lane in
/// the order its requests came.
pub struct RateLimiter {
    spacing: Duration,
    state: Mutex<State>,
    /// Wakes the waiters when a slot is taken or a waiter leaves.
    changed: Notify,
}

struct State {
    /// The first instant the next request may go.
    next: Option<Instant>,
    /// The tickets waiting in each lane, oldest first.
    lanes: [VecDeque<u64>; LANES],
    tickets: u64,
}

impl State {
    /// The ticket whose turn it is.
    fn head(&self) -> Option<u64> {
        self.lanes.iter().find_map(|q| q.front().copied())
    }
}

/// One waiter's place, given back if its future is dropped.
struct Waiting<'a> {
    limiter: &'a RateLimiter,
    lane: usize,
    ticket: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.limiter.lock().lanes[self.lane].retain(|&t| t != self.ticket);
        self.limiter.changed.notify_waiters();
    }
}

impl RateLimiter {
    pub fn new(rate: f64) -> Self {
        RateLimiter {
            spacing: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            state: Mutex::new(State {
                next: None,
                lanes: Default::default(),
                tickets: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The critical sections leave the state whole: a poisoned lock's
        // data is still good.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot in the normal lane.
    pub async fn acquire(&self) {
        self.acquire_in(Lane::Normal).await
    }

    /// Waits for a slot: the next free one, once every request ahead of
    /// this one (in a more urgent lane, or earlier in its own) has gone.
    pub async fn acquire_in(&self, lane: Lane) {
        let lane = lane as usize;
        let ticket = {
            let mut st = self.lock();
            st.tickets += 1;
            let t = st.tickets;
            st.lanes[lane].push_back(t);
            t
        };
        let place = Waiting {
            limiter: self,
            lane,
            ticket,
        };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wake = {
                let mut st = self.lock();
                let now = Instant::now();
                let free = st.next.map_or(now, |n| n.max(now));
                let turn = st.head() == Some(ticket);
                if turn && free <= now {
                    st.next = Some(free + self.spacing);
                    drop(st);
                    drop(place);
                    return;
                }
                turn.then_some(free)
            };
            match wake {
                // Next in line: sleep until the slot, unless the line
                // changes (a more urgent request arrives).
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = changed => {}
                },
                // Others are ahead: after them.
                None => changed.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_and_the_urgent_lane_goes_first() {
        let limiter = Arc::new(RateLimiter::new(10.0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        // Ten background reads queue first, then one urgent write.
        for i in 0..10 {
            let (l, o) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire_in(Lane::Background).await;
                o.lock()
                    .unwrap()
                    .push((format!("read{i}"), start.elapsed()));
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (l, o) = (limiter.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            l.acquire_in(Lane::Urgent).await;
            o.lock()
                .unwrap()
                .push(("write".to_string(), start.elapsed()));
        }));
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let at = |what: &str| order.iter().find(|(w, _)| w == what).unwrap().1;
        // Spaced by 100 ms, no burst; one lane in the order it came.
        let reads: Vec<&str> = order
            .iter()
            .map(|(w, _)| w.as_str())
            .filter(|w| *w != "write")
            .collect();
        let want: Vec<String> = (0..10).map(|i| format!("read{i}")).collect();
        assert_eq!(reads, want);
        let mut times: Vec<Duration> = order.iter().map(|(_, t)| *t).collect();
        times.sort();
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(99), "{order:?}");
        }
        // The write came in at 150 ms behind eight waiting reads and took
        // the next slot, at 200 ms.
        assert_eq!(at("write"), Duration::from_millis(200), "{order:?}");
        assert!(at("read9") > at("write"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_lets_the_others_through() {
        let limiter = Arc::new(RateLimiter::new(1.0));
        limiter.acquire_in(Lane::Background).await;
        // An urgent request waits for the next slot, then is dropped.
        let l = limiter.clone();
        let gone = tokio::spawn(async move { l.acquire_in(Lane::Urgent).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        gone.abort();
        let _ = gone.await;
        // A background request is not kept waiting behind it.
        let t = tokio::time::Instant::now();
        limiter.acquire_in(Lane::Background).await;
        assert!(t.elapsed() <= Duration::from_secs(1));
    }
}
