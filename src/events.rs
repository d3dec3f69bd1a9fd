//! The event timeline: what the daemon saw and did, newest last, the last
//! [`KEEP`] kept in memory (served at `/events`, drawn on the page, printed
//! by `route53-failover events`). Each event is also a log line with a
//! stable `event` field ([`Kind`]: `verdict`, `decision`, `blocked`, `change`,
//! `insync`, `drain`, `undrain`, `freeze`, `unfreeze`, `control_ended`,
//! `lease`, `reload`, `switch`, `control_plane`, `task`), so a log pipeline keeps the history past a restart.
//!
//! The timeline outlives config reloads (the runtime hands it over).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Events kept in memory: about an hour of a busy incident, ~0.3 MiB.
pub const KEEP: usize = 1000;

/// What kind of thing happened: the event's `event` field, in the JSON
/// and in its log line. One list, so a log pipeline's queries have one
/// place to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A member's verdict changed (this instance's, or the agreed one).
    Verdict,
    /// A member's decision changed.
    Decision,
    /// A withdrawal the safety rules hold, or that waits for corroboration.
    Blocked,
    /// A record change was accepted.
    Change,
    /// A change reached every Route53 server.
    Insync,
    /// Records Route53 refuses, held out of every batch.
    Rejected,
    Drain,
    Undrain,
    Freeze,
    Unfreeze,
    ControlEnded,
    /// A control read from Route53 that this clock cannot honour.
    ControlRefused,
    /// A record no config manages, retired by on-call.
    Retired,
    /// This instance's role in the lease changed.
    Lease,
    Reload,
    /// A routing control set, or a change ARC's safety rules refused.
    Switch,
    /// Route53's control plane became impaired, or recovered.
    ControlPlane,
    /// A long-running task panicked and is started again (`controller::supervise`).
    Task,
    /// A practice run started, ended, or waits (`decide::practice`).
    Practice,
    /// Whether clients left a withdrawn region (`decide::traffic`).
    Traffic,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Verdict => "verdict",
            Kind::Decision => "decision",
            Kind::Blocked => "blocked",
            Kind::Change => "change",
            Kind::Insync => "insync",
            Kind::Rejected => "rejected",
            Kind::Drain => "drain",
            Kind::Undrain => "undrain",
            Kind::Freeze => "freeze",
            Kind::Unfreeze => "unfreeze",
            Kind::ControlEnded => "control_ended",
            Kind::ControlRefused => "control_refused",
            Kind::Retired => "retired",
            Kind::Lease => "lease",
            Kind::Reload => "reload",
            Kind::Switch => "switch",
            Kind::ControlPlane => "control_plane",
            Kind::Task => "task",
            Kind::Practice => "practice",
            Kind::Traffic => "traffic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Grows by one per event of this process; `since` filters on it.
    pub id: u64,
    /// Unix seconds.
    pub at: f64,
    /// The kind: the log line's `event` field.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub rtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The rule or reason behind it (`unhealthy`, `min_healthy`, `timeout`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// Who, for on-call's actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub message: String,
}

impl Event {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Event {
            id: 0,
            at: 0.0,
            event: kind.as_str().to_string(),
            record: None,
            rtype: None,
            region: None,
            reason: None,
            change_id: None,
            by: None,
            message: message.into(),
        }
    }

    /// The member (or record, without a region) it is about.
    pub fn about(mut self, record: &str, rtype: &str, region: Option<&str>) -> Self {
        self.record = Some(record.to_string());
        self.rtype = Some(rtype.to_string());
        self.region = region.map(str::to_string);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn change_id(mut self, id: &str) -> Self {
        self.change_id = Some(id.to_string());
        self
    }

    pub fn by(mut self, by: &str) -> Self {
        self.by = Some(by.to_string());
        self
    }
}

/// The timeline.
#[derive(Debug, Default)]
pub struct Events {
    inner: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    next_id: u64,
    events: VecDeque<Event>,
}

impl Events {
    /// Stamps, logs and keeps an event.
    pub fn emit(&self, mut e: Event) {
        e.at = crate::time::unix_secs(SystemTime::now());
        {
            let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            ring.next_id += 1;
            e.id = ring.next_id;
            if ring.events.len() == KEEP {
                ring.events.pop_front();
            }
            ring.events.push_back(e.clone());
        }
        tracing::info!(
            event = e.event.as_str(),
            record = e.record.as_deref(),
            r#type = e.rtype.as_deref(),
            region = e.region.as_deref(),
            reason = e.reason.as_deref(),
            change_id = e.change_id.as_deref(),
            by = e.by.as_deref(),
            "{}",
            e.message
        );
    }

    /// Events newest first: those after event `since` (an id), at most `limit`.
    pub fn newest(&self, since: Option<u64>, limit: usize) -> Vec<Event> {
        let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ring.events
            .iter()
            .rev()
            .take_while(|e| since.is_none_or(|s| e.id > s))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_with_since_and_a_bound() {
        let events = Events::default();
        for i in 0..(KEEP + 5) {
            events.emit(Event::new(Kind::Verdict, format!("e{i}")));
        }
        let all = events.newest(None, usize::MAX);
        assert_eq!(all.len(), KEEP, "only the last {KEEP} are kept");
        assert_eq!(all[0].id, (KEEP + 5) as u64);
        assert!(all
            .windows(2)
            .all(|w| w[0].id == w[1].id + 1 && w[0].at >= w[1].at));
        let after = events.newest(Some(KEEP as u64 + 2), usize::MAX);
        assert_eq!(
            after.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["e1004", "e1003", "e1002"]
        );
        assert_eq!(events.newest(None, 2).len(), 2);
    }
}
