//! The HA lease: several instances of the daemon (one release per region)
//! agree on one writer through a TXT record in Route53 itself, so no shared
//! Kubernetes API is needed and the lease survives the loss of any region.
//!
//! The record holds `holder`, `term` and `expires` (unix time). It is only
//! ever changed by one atomic batch `DELETE` (the exact value read) +
//! `CREATE` (the new value): Route53 refuses the batch if anyone changed the
//! value in between, so of two instances racing, one wins.
//!
//! Fencing is by time, and needs no clocks in agreement. The holder may
//! write only until its lease's end, counted on its own monotonic clock
//! from the moment it *sent* the renewal, less `max_clock_drift`; every
//! write is bounded by what is left of that window, checked again at the
//! moment it is sent. Another instance takes over only once the value it
//! read has stayed the same for `lease_duration` plus `max_clock_drift` on
//! *its* monotonic clock (as client-go's leader election does): a live
//! holder renews every `renew_every`, so its value never stands still that
//! long, whatever any wall clock says. The value's `expires` (wall time)
//! is for people, and for telling that the clocks disagree
//! ([`clock_offset`]), never for deciding.
//!
//! Here: the record's value and the pure rules. `controller::leadership`
//! holds this instance's view of the lease (who may write, the fence);
//! `controller::tasks::lease_keeper` runs the task that reads, takes and renews it.

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

    /// Handed back at shutdown (`expires` 0): anyone may take it at once.
    pub fn released(&self) -> bool {
        self.expires_ms == 0
    }
}

/// The holder's wall clock less this instance's, as far as a value seen
/// for the first time at `now` tells: it was written `duration` before its
/// `expires`, and at most one read interval before `now`. So with clocks
/// in agreement it lies between minus that interval and zero.
pub fn clock_offset(v: &LeaseValue, duration: Duration, now: SystemTime) -> i64 {
    let written = v.expires_ms as i64 - duration.as_millis() as i64;
    written - unix_ms(now) as i64
}

/// What an instance has read of the lease, on its own monotonic clock
/// (`T`: `Instant` in the daemon): the value, and since when it has read
/// that very value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched<T> {
    pub value: Option<LeaseValue>,
    pub since: T,
}

impl<T: Copy> Watched<T> {
    pub fn new(value: Option<LeaseValue>, now: T) -> Self {
        Watched { value, since: now }
    }

    /// A read at `now`: a value unlike the last starts the count again.
    /// Returns whether it was new.
    pub fn observe(&mut self, value: Option<LeaseValue>, now: T) -> bool {
        if value == self.value {
            return false;
        }
        self.value = value;
        self.since = now;
        true
    }
}

/// The lease record as read: what it says, if it says anything we can read.
pub fn read_value(record: Option<&RecordSet>) -> Option<LeaseValue> {
    record?.values.iter().find_map(|v| LeaseValue::parse(v))
}

/// What an instance that does not hold the lease does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep<T> {
    /// No lease, handed back, or unchanged for long enough: try to take it
    /// with this term.
    Acquire { term: u64 },
    /// Someone holds it: read again no later than this.
    Wait { until: T },
}

/// The rule for an instance that does not hold the lease, by its own
/// monotonic clock `now`. A record that cannot be read as a lease
/// (someone else's TXT) is taken over like a free one: the compare-and-swap
/// still needs its exact value. A lease naming this very identity is
/// waited out like any other: it may be a twin with the same name (or this
/// instance's before a restart), and two holders must never overlap.
pub fn next_step<T>(seen: &Watched<T>, now: T, duration: Duration, margin: Duration) -> NextStep<T>
where
    T: Copy + Ord + std::ops::Add<Duration, Output = T>,
{
    match &seen.value {
        None => NextStep::Acquire { term: 1 },
        Some(v) if v.released() => NextStep::Acquire { term: v.term + 1 },
        Some(v) => {
            let end = seen.since + duration + margin;
            if now >= end {
                NextStep::Acquire { term: v.term + 1 }
            } else {
                NextStep::Wait { until: end }
            }
        }
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
