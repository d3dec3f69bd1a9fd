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
    /// Wakes every write in flight when the hold ends early (lost).
    stepped_down: tokio::sync::Notify,
    /// Reconciles in a row whose writes failed while this instance held
    /// the lease (not throttled): a holder that can renew but not write
    /// lets go (`tasks::lease_keeper`).
    write_failures: std::sync::atomic::AtomicU32,
}

/// After this many reconciles in a row fail on writes, the holder lets go.
pub const LET_GO_AFTER: u32 = 3;

#[derive(Debug, Clone, Default)]
struct LeaseState {
    /// This instance may write until then (monotonic); `None`: it does not
    /// hold the lease.
    write_until: Option<Instant>,
    /// The lease as last read or written.
    seen: Option<LeaseValue>,
    last_error: Option<String>,
    /// The holder's wall clock less this instance's, as last estimated
    /// (`decide::lease::clock_offset`), and whether that is a disagreement.
    clock_offset_ms: Option<(i64, bool)>,
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
    /// The holder's wall clock less this instance's (seconds), as estimated
    /// from a fresh lease value; shown, never acted on.
    #[serde(default)]
    pub clock_offset: Option<f64>,
    /// That offset is more than the lease's timing can explain.
    #[serde(default)]
    pub clocks_disagree: bool,
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
        if let (true, Some(o)) = (self.clocks_disagree, self.clock_offset) {
            s.push_str(&format!(
                "; the holder's clock is {o:+.1}s off this one's (check NTP)"
            ));
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
            stepped_down: tokio::sync::Notify::new(),
            write_failures: std::sync::atomic::AtomicU32::new(0),
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
    /// hold ends, at the window's end or when the lease is lost before it.
    /// Whether a write given up landed is unknown, as after any timeout;
    /// the caller re-reads.
    pub async fn fence<T>(
        &self,
        operation: &str,
        write: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let lost = self.stepped_down.notified();
        tokio::pin!(lost);
        lost.as_mut().enable();
        let Some(window) = self.write_window() else {
            return Err(ProviderError::Fenced(format!("{operation} not sent")));
        };
        tokio::select! {
            r = tokio::time::timeout(window, write) => r.unwrap_or_else(|_| {
                Err(ProviderError::Fenced(format!("the lease ended during {operation}")))
            }),
            _ = lost => Err(ProviderError::Fenced(format!("the lease was lost during {operation}"))),
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
        let was = {
            let mut s = self.state();
            let was = s.write_until.take().is_some();
            s.seen = value;
            s.last_error = None;
            was
        };
        if was {
            self.stepped_down.notify_waiters();
        }
    }

    /// Stops writing at once (lost the lease, or shutting down): nothing
    /// more is sent, and writes in flight are given up.
    pub fn step_down(&self) {
        self.state().write_until = None;
        self.stepped_down.notify_waiters();
    }

    pub fn failed(&self, error: String) {
        self.state().last_error = Some(error);
    }

    /// A reconcile's records were written (`true`), or its writes failed
    /// for a reason the holder cannot wait out.
    pub fn wrote(&self, ok: bool) {
        use std::sync::atomic::Ordering;
        if ok {
            self.write_failures.store(0, Ordering::Relaxed);
        } else if self.is_leader() {
            self.write_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether this holder has failed to write [`LET_GO_AFTER`] times in a
    /// row; the count starts again.
    pub fn take_cannot_write(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.write_failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n >= LET_GO_AFTER).then_some(0)
            })
            .is_ok()
    }

    pub fn clock_offset(&self, offset_ms: i64, disagree: bool) {
        self.state().clock_offset_ms = Some((offset_ms, disagree));
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
            clock_offset: s.clock_offset_ms.map(|(o, _)| o as f64 / 1000.0),
            clocks_disagree: s.clock_offset_ms.is_some_and(|(_, d)| d),
        }
    }
}

#[cfg(test)]
mod tests;
