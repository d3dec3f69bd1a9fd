//! Spacing requests to a service: at most `rate` per second, no bursts.
//! The daemon keeps one for Route53 (the account's 5/s, shared with every
//! other tool) and one for API Gateway (discovery and parity reads).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spaces requests: at most `rate` per second across every task that
/// shares it, no bursts.
pub struct RateLimiter {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(rate: f64) -> Self {
        RateLimiter {
            spacing: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            next: Mutex::new(None),
        }
    }

    pub async fn acquire(&self) {
        let slot = {
            // The critical section leaves the slot whole: a poisoned lock's
            // data is still good.
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.spacing);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}
