//! The data-plane lever: the decisions carried out on ARC routing controls
//! ("switches"), so a withdrawal or a drain still happens while Route53's
//! control plane (record and health check changes) is down. Each switch
//! drives the `RECOVERY_CONTROL` health check its member's record carries;
//! flipping it is a call to the cluster's data plane (docs/design.md,
//! "The data-plane lever").
//!
//! The zone reconcilers say which state each switch should have
//! ([`Lever::want`], from `decide::zone`'s `switches`); one task reads every
//! configured switch first, then sets what differs from what is known, in
//! one `UpdateRoutingControlStates` call per record and kind (the switches
//! going On; those going Off; those a forced drain turns Off, the only call
//! that may override a safety rule, and only with `allow_safety_override`:
//! ARC judges a call as a whole, so one record's refusal holds back no
//! other record's), reads
//! each change back, and reads every switch at `read_interval` to repair
//! drift. Only while this instance may write (the HA lease): a former
//! holder reads, and sets nothing. A safety rule's refusal is kept with the
//! call it refused: the same call is not sent again for [`REFUSAL_HOLD`],
//! or until the wanted states change.
//!
//! - `client`: the SDK client across the cluster's endpoints;
//! - `claims`: one install per switch, through the state store;
//! - `task`: the task that reads, sets, reads back and repairs;
//! - `status`: what `/status`, the page and the table show of it;
//! - `standin`: a loopback cluster endpoint (demo and tests).

pub mod claims;
pub mod client;
pub mod standin;
mod status;
mod task;

pub use status::{LeverStatus, SwitchStatus};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::config::LeverConfig;
use crate::decide::lever::Switch;
use crate::events::{Event, Events, Kind};
use crate::metrics::Metrics;
pub use client::{LeverClient, LeverError};

/// The member a switch carries: labels for status, events and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub record: String,
    pub rtype: String,
    pub set_identifier: String,
    pub region: String,
}

impl Owner {
    /// `name type set_identifier`.
    pub fn member(&self) -> String {
        format!("{} {} {}", self.record, self.rtype, self.set_identifier)
    }

    /// Every member's switch in `config`, by routing control ARN.
    pub fn of(config: &crate::config::Config) -> BTreeMap<String, Owner> {
        config
            .records
            .iter()
            .flat_map(|r| {
                r.members.iter().filter_map(move |m| {
                    let arn = m.routing_control.clone()?;
                    let owner = Owner {
                        record: r.name.clone(),
                        rtype: r.rtype.to_string(),
                        set_identifier: m.set_identifier.clone(),
                        region: m.region.clone(),
                    };
                    Some((arn, owner))
                })
            })
            .collect()
    }
}

/// What one switch should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub want: Switch,
    /// A forced drain wants it Off.
    pub forced: bool,
}

/// One call's entries: the switch, its state, whether a forced drain
/// wants it.
type Call = Vec<(String, Switch, bool)>;

/// A call ARC refused, kept so it is not sent again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    pub rule: String,
    pub message: String,
    /// Unix seconds.
    pub at: f64,
    #[serde(skip)]
    call: Call,
    #[serde(skip)]
    until: Option<tokio::time::Instant>,
}

/// A refused call is sent again after this long, if still wanted (ARC's
/// `ConflictException` may also be a passing conflict).
pub const REFUSAL_HOLD: Duration = Duration::from_secs(60);
/// How soon a switch whose read failed is read again.
const UNKNOWN_REREAD: Duration = Duration::from_secs(1);

/// How long a conflict that names no safety rule holds its call.
pub const CONFLICT_HOLD: Duration = Duration::from_secs(2);

/// How often a task with nothing to set asks whether it may write.
const WRITER_RECHECK: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    known: BTreeMap<String, Switch>,
    wanted: BTreeMap<String, Wanted>,
    refused: Vec<Refusal>,
    last_error: Option<String>,
    /// When a change was last accepted (unix seconds).
    last_change: Option<f64>,
    /// Sets begun, and the last one to name each switch: a read sent
    /// before a set of its switch answers with what the set replaced,
    /// and is not learnt.
    sets: u64,
    set_by: BTreeMap<String, u64>,
    /// Switches just set, to read back.
    read_back: std::collections::BTreeSet<String>,
}

pub struct Lever {
    pub config: LeverConfig,
    client: LeverClient,
    owners: BTreeMap<String, Owner>,
    /// While this instance may write (the HA lease), the term it writes
    /// under (0 without `ha`): named with every switch it sets.
    writer: Box<dyn Fn() -> Option<u64> + Send + Sync>,
    state: Mutex<State>,
    /// The wanted states changed: wakes the sets.
    wake: Notify,
    /// Switches to read back (a set accepted, or one without an answer):
    /// wakes the reads.
    reread: Notify,
    /// Bumped when a known state changes: the reconcilers decide again
    /// (what counts as published depends on it).
    changed: watch::Sender<u64>,
    events: Arc<Events>,
    metrics: Arc<Metrics>,
}

/// The longest wait between tries while no endpoint answers.
const MAX_RETRY: Duration = Duration::from_secs(2);

impl Lever {
    pub async fn new(
        config: LeverConfig,
        owners: BTreeMap<String, Owner>,
        writer: Box<dyn Fn() -> Option<u64> + Send + Sync>,
        events: Arc<Events>,
        metrics: Arc<Metrics>,
        credentials: Option<aws_sdk_route53recoverycluster::config::Credentials>,
    ) -> Arc<Self> {
        let client = LeverClient::new(&config, credentials).await;
        Arc::new(Lever {
            config,
            client,
            owners,
            writer,
            state: Mutex::default(),
            wake: Notify::new(),
            reread: Notify::new(),
            changed: watch::Sender::new(0),
            events,
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A switch's state as last read back or confirmed.
    pub fn known(&self, arn: &str) -> Switch {
        self.lock()
            .known
            .get(arn)
            .copied()
            .unwrap_or(Switch::Unknown)
    }

    /// A switch as decisions count it: Off once a decision wants it Off
    /// (on its way: no rule may lean on it answering, even before the call
    /// is confirmed, nor on a decision taken beside a pass that had not
    /// seen it), else as known.
    pub fn counted(&self, arn: &str) -> Switch {
        let st = self.lock();
        match st.wanted.get(arn) {
            Some(w) if w.want == Switch::Off => Switch::Off,
            _ => st.known.get(arn).copied().unwrap_or(Switch::Unknown),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The states a zone's decision wants; the task is woken when they
    /// change (not at every decision: a cluster that does not answer is
    /// retried on the task's own backoff).
    pub fn want(&self, wanted: impl IntoIterator<Item = (String, Wanted)>) {
        let mut st = self.lock();
        let mut changed = false;
        for (arn, w) in wanted {
            changed |= st.wanted.insert(arn, w) != Some(w);
        }
        drop(st);
        if changed {
            self.wake.notify_one();
        }
    }

    /// Switches no decision wants now (a freeze holds their records):
    /// nothing is set on them, and drift is not repaired, until wanted again.
    pub fn release(&self, arns: &[String]) {
        let mut st = self.lock();
        for arn in arns {
            st.wanted.remove(arn);
        }
    }

    /// The calls to make now: the wanted states that differ from the known
    /// ones, as switches going On, going Off, and going Off for a forced
    /// drain; a call ARC refused within [`REFUSAL_HOLD`] is left out.
    fn pending(&self) -> Vec<Call> {
        let mut st = self.lock();
        let now = tokio::time::Instant::now();
        st.refused.retain(|r| r.until.is_some_and(|t| t > now));
        let differs: Call = st
            .wanted
            .iter()
            .filter(|(arn, w)| st.known.get(*arn) != Some(&w.want))
            .map(|(arn, w)| (arn.clone(), w.want, w.forced && w.want == Switch::Off))
            .collect();
        // One call per record and kind (going On, going Off, a forced
        // drain's Off): ARC judges a call as a whole, so a rule refusing
        // one record's change holds back no other record's.
        let mut calls: BTreeMap<(u8, String), Call> = BTreeMap::new();
        for e in differs {
            let kind = match (e.1, e.2) {
                (Switch::On, _) => 0,
                (_, false) => 1,
                (_, true) => 2,
            };
            let record = self
                .owners
                .get(&e.0)
                .map(|o| format!("{} {}", o.record, o.rtype))
                .unwrap_or_default();
            calls.entry((kind, record)).or_default().push(e);
        }
        calls
            .into_values()
            .filter(|c| !st.refused.iter().any(|r| &r.call == c))
            .collect()
    }

    fn learn(&self, arn: &str, state: Switch) {
        if let Some(o) = self.owners.get(arn) {
            let v = match state {
                Switch::On => 1,
                Switch::Off => 0,
                Switch::Unknown => -1,
            };
            self.metrics
                .lever
                .routing_control_state
                .with_label_values(&[&o.record, &o.rtype, &o.set_identifier])
                .set(v);
        }
        let mut st = self.lock();
        if st.known.insert(arn.to_string(), state) != Some(state) {
            drop(st);
            self.changed.send_modify(|n| *n += 1);
        }
    }
}
