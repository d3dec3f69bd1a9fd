//! The HA lease: several instances of the daemon (one release per region)
//! agree on one writer through a TXT record in Route53 itself, so no shared
//! Kubernetes API is needed and the lease survives the loss of any region.
//!
//! The record holds `holder`, `term` and `expires` (unix time). It is only
//! ever changed by one atomic batch `DELETE` (the exact value read) +
//! `CREATE` (the new value): Route53 refuses the batch if anyone changed the
//! value in between, so of two instances racing, one wins.
//!
//! Fencing is by time. The holder may write only until its lease's end,
//! counted on its own monotonic clock from the moment it *sent* the renewal,
//! less `max_clock_drift`; every write is bounded by what is left of that
//! window. Another instance takes over only once the lease's `expires` plus
//! `max_clock_drift` has passed on its wall clock. So a holder that cannot
//! renew (partitioned, stalled) has stopped writing before anyone else
//! starts, as long as the clocks are within `max_clock_drift` of each other.
//!
//! Here: the record's value and the pure rules; `controller::lease` runs the
//! task that reads, takes and renews it.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::HaConfig;
use crate::provider::{Action, Change, ProviderError, RecordSet, RecordType};

/// The first word of a lease record's value.
const HERITAGE: &str = "route53-failover-lease";

/// A lease record's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseValue {
    pub holder: String,
    pub term: u64,
    /// When the lease ends, in unix milliseconds.
    pub expires_ms: u64,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl LeaseValue {
    /// Reads one TXT value (quoted, as Route53 holds it).
    pub fn parse(txt: &str) -> Option<LeaseValue> {
        let mut words = txt.trim().trim_matches('"').split_whitespace();
        if words.next()? != HERITAGE {
            return None;
        }
        let (mut holder, mut term, mut expires) = (None, None, None);
        for w in words {
            match w.split_once('=')? {
                ("holder", v) if !v.is_empty() => holder = Some(v.to_string()),
                ("term", v) => term = v.parse().ok(),
                ("expires", v) => expires = v.parse().ok(),
                _ => {}
            }
        }
        Some(LeaseValue {
            holder: holder?,
            term: term?,
            expires_ms: expires?,
        })
    }

    pub fn to_txt(&self) -> String {
        format!(
            "\"{HERITAGE} holder={} term={} expires={}\"",
            self.holder, self.term, self.expires_ms
        )
    }

    pub fn record(&self, name: &str) -> RecordSet {
        RecordSet {
            name: name.to_string(),
            rtype: RecordType::Txt,
            set_identifier: None,
            region: None,
            ttl: Some(60),
            values: vec![self.to_txt()],
            alias: None,
            health_check_id: None,
        }
    }

    pub fn expires(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.expires_ms)
    }

    /// Whether another instance may take it over at `now` (its wall clock).
    pub fn is_expired(&self, now: SystemTime, drift: Duration) -> bool {
        unix_ms(now) > self.expires_ms.saturating_add(drift.as_millis() as u64)
    }
}

/// The lease record as read: what it says, if it says anything we can read.
pub fn read_value(record: Option<&RecordSet>) -> Option<LeaseValue> {
    record?.values.iter().find_map(|v| LeaseValue::parse(v))
}

/// What an instance that does not hold the lease does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// No lease, or it has expired: try to take it with this term.
    Acquire { term: u64 },
    /// Someone holds it: read again no later than this.
    Wait { until: SystemTime },
}

/// The rule for an instance that does not hold the lease. A record that
/// cannot be read as a lease (someone else's TXT) is taken over like an
/// expired one: the compare-and-swap still needs its exact value. A lease
/// naming this very identity is waited out like any other: it may be a
/// twin with the same name, and two holders must never overlap.
pub fn next_step(value: Option<&LeaseValue>, now: SystemTime, drift: Duration) -> NextStep {
    match value {
        // Nothing there, or nothing we can read as a lease.
        None => NextStep::Acquire { term: 1 },
        Some(v) if v.is_expired(now, drift) => NextStep::Acquire { term: v.term + 1 },
        Some(v) => NextStep::Wait {
            until: v.expires() + drift + Duration::from_millis(1),
        },
    }
}

/// The compare-and-swap batch: delete exactly what was read, create the new.
pub fn swap(current: Option<&RecordSet>, new: RecordSet) -> Vec<Change> {
    let mut changes = Vec::with_capacity(2);
    if let Some(old) = current {
        changes.push(Change {
            action: Action::Delete,
            record: old.clone(),
        });
    }
    changes.push(Change {
        action: Action::Create,
        record: new,
    });
    changes
}

/// The value a holder writes when it takes or renews the lease, sent at
/// `now`.
pub fn claim(identity: &str, term: u64, now: SystemTime, duration: Duration) -> LeaseValue {
    LeaseValue {
        holder: identity.to_string(),
        term,
        expires_ms: unix_ms(now + duration),
    }
}

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
