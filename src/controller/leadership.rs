//! This instance's view of the HA lease (the rules are in
//! `decide::lease`): whether it may write now, the fence every write goes
//! through, the role change the reconcilers wake on, and what status shows.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::HaConfig;
use crate::decide::lease::LeaseValue;
use crate::provider::ProviderError;

/// This instance's view of the lease, shared by the lease task (which
/// writes it), the reconcilers (which ask before every write) and status.
pub struct Lease {
    pub config: HaConfig,
    state: Mutex<LeaseState>,
    leader: watch::Sender<bool>,
}

#[derive(Debug, Clone, Default)]
struct LeaseState {
    /// This instance may write until then (monotonic); `None`: it does not
    /// hold the lease.
    write_until: Option<Instant>,
    /// The lease as last read or written.
    seen: Option<LeaseValue>,
    last_error: Option<String>,
}

/// What status shows of the lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseSnapshot {
    pub identity: String,
    pub lease_name: String,
    /// `leader` (this instance writes) or `follower`.
    pub role: String,
    /// Who holds the lease as last read or written (null: nobody).
    pub holder: Option<String>,
    pub term: Option<u64>,
    /// When that lease ends (unix seconds).
    pub expires: Option<f64>,
    /// The last failure to read, take or renew it; null after a success.
    pub last_error: Option<String>,
}

impl LeaseSnapshot {
    /// One line for the table and the page: role, holder, term, time left.
    pub fn describe(&self, now: f64) -> String {
        let mut s = format!("{}: {}", self.identity, self.role.to_uppercase());
        match (&self.holder, self.term, self.expires) {
            (Some(h), Some(t), Some(e)) => {
                let left = e - now;
                let when = if left >= 0.0 {
                    format!("ends in {left:.0}s")
                } else {
                    format!("ended {:.0}s ago", -left)
                };
                s.push_str(&format!(" (held by {h}, term {t}, {when})"));
            }
            _ => s.push_str(" (no lease held)"),
        }
        if let Some(e) = &self.last_error {
            s.push_str(&format!("; ERROR: {e}"));
        }
        s
    }
}

impl Lease {
    pub fn new(config: HaConfig) -> Self {
        Lease {
            config,
            state: Mutex::new(LeaseState::default()),
            leader: watch::Sender::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long this instance may still write, if it holds the lease.
    pub fn write_window(&self) -> Option<Duration> {
        let until = self.state().write_until?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Runs `write` only while this instance holds the lease (a future is
    /// lazy: when it does not, nothing is sent) and gives it up when the
    /// hold ends. Whether a write given up landed is unknown, as after any
    /// timeout; the caller re-reads.
    pub async fn fence<T>(
        &self,
        operation: &str,
        write: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let Some(window) = self.write_window() else {
            return Err(ProviderError::Fenced(format!("{operation} not sent")));
        };
        match tokio::time::timeout(window, write).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Fenced(format!(
                "the lease ended during {operation}"
            ))),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.write_window().is_some()
    }

    /// Wakes when this instance gains or loses the right to write.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// The end of the write window, if any (for the lease task's timer).
    pub fn write_until(&self) -> Option<Instant> {
        self.state().write_until
    }

    /// This instance wrote `value`, having sent the write at `sent`.
    pub fn held(&self, value: LeaseValue, sent: Instant) {
        let mut s = self.state();
        s.write_until = Some(sent + self.config.lease_duration - self.config.max_clock_drift);
        s.seen = Some(value);
        s.last_error = None;
    }

    /// The lease as read, held by someone else or by nobody.
    pub fn seen(&self, value: Option<LeaseValue>) {
        let mut s = self.state();
        s.write_until = None;
        s.seen = value;
        s.last_error = None;
    }

    /// Stops writing at once (lost the lease, or shutting down).
    pub fn step_down(&self) {
        self.state().write_until = None;
    }

    pub fn failed(&self, error: String) {
        self.state().last_error = Some(error);
    }

    /// Tells the subscribers if the role changed; returns the new role
    /// when it did.
    pub fn publish(&self) -> Option<bool> {
        let leader = self.is_leader();
        let changed = self.leader.send_if_modified(|l| {
            let changed = *l != leader;
            *l = leader;
            changed
        });
        changed.then_some(leader)
    }

    pub fn snapshot(&self) -> LeaseSnapshot {
        let leader = self.is_leader();
        let s = self.state();
        LeaseSnapshot {
            identity: self.config.identity.clone(),
            lease_name: self.config.lease_name.clone(),
            role: if leader { "leader" } else { "follower" }.into(),
            holder: s.seen.as_ref().map(|v| v.holder.clone()),
            term: s.seen.as_ref().map(|v| v.term),
            expires: s.seen.as_ref().map(|v| v.expires_ms as f64 / 1000.0),
            last_error: s.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
