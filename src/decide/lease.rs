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
//! Here: the record's value and the pure rules. `controller::leadership`
//! holds this instance's view of the lease (who may write, the fence);
//! `controller::lease_task` runs the task that reads, takes and renews it.

use std::time::{Duration, SystemTime};

use crate::decide::unix_ms;
use crate::provider::{Action, Change, RecordSet};

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
        RecordSet::txt(name, vec![self.to_txt()])
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

#[cfg(test)]
mod tests;
