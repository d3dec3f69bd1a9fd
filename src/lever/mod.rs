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
//! - `standin`: a loopback cluster endpoint (demo and tests).

pub mod claims;
pub mod client;
pub mod standin;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::{LeverConfig, LeverMode};
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

#[derive(Default)]
struct State {
    known: BTreeMap<String, Switch>,
    wanted: BTreeMap<String, Wanted>,
    refused: Vec<Refusal>,
    last_error: Option<String>,
    /// When a change was last accepted (unix seconds).
    last_change: Option<f64>,
}

/// One switch in status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwitchStatus {
    pub arn: String,
    pub member: String,
    pub state: Switch,
    pub want: Switch,
}

/// The lever in `/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeverStatus {
    pub mode: LeverMode,
    pub endpoints: Vec<String>,
    pub switches: Vec<SwitchStatus>,
    /// The latest refusal in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change: Option<f64>,
}

impl LeverStatus {
    /// `routing controls (switches): 2 on, 1 off  REFUSED by ARC safety rule …`
    pub fn describe(&self) -> String {
        let count = |s: Switch| self.switches.iter().filter(|w| w.state == s).count();
        let mut line = format!(
            "routing controls ({}): {} on, {} off",
            self.mode.as_str(),
            count(Switch::On),
            count(Switch::Off)
        );
        let unknown = count(Switch::Unknown);
        if unknown > 0 {
            line.push_str(&format!(", {unknown} not known"));
        }
        let pending: Vec<&str> = self
            .switches
            .iter()
            .filter(|w| w.state != w.want)
            .map(|w| w.member.as_str())
            .collect();
        if !pending.is_empty() {
            line.push_str(&format!("; to set: {}", pending.join(", ")));
        }
        if let Some(r) = &self.refused {
            line.push_str(&format!(
                "  REFUSED by ARC safety rule {}: {}",
                r.rule, r.message
            ));
        } else if let Some(e) = &self.last_error {
            line.push_str(&format!("  ERROR: {e}"));
        }
        line
    }
}

pub struct Lever {
    pub config: LeverConfig,
    client: LeverClient,
    owners: BTreeMap<String, Owner>,
    /// Whether this instance may write now (the HA lease).
    may_write: Box<dyn Fn() -> bool + Send + Sync>,
    state: Mutex<State>,
    /// The wanted states changed: wakes the task.
    wake: Notify,
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
        may_write: Box<dyn Fn() -> bool + Send + Sync>,
        events: Arc<Events>,
        metrics: Arc<Metrics>,
        credentials: Option<aws_sdk_route53recoverycluster::config::Credentials>,
    ) -> Arc<Self> {
        let client = LeverClient::new(&config, credentials).await;
        Arc::new(Lever {
            config,
            client,
            owners,
            may_write,
            state: Mutex::default(),
            wake: Notify::new(),
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

    pub fn status(&self) -> LeverStatus {
        let st = self.lock();
        LeverStatus {
            mode: self.config.mode,
            endpoints: self
                .config
                .endpoints
                .iter()
                .map(|e| e.url.to_string())
                .collect(),
            switches: self
                .owners
                .iter()
                .map(|(arn, o)| {
                    let state = st.known.get(arn).copied().unwrap_or(Switch::Unknown);
                    SwitchStatus {
                        arn: arn.clone(),
                        member: o.member(),
                        state,
                        // Nothing wanted yet: as it is.
                        want: st.wanted.get(arn).map_or(state, |w| w.want),
                    }
                })
                .collect(),
            refused: st.refused.last().cloned(),
            last_error: st.last_error.clone(),
            last_change: st.last_change,
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

    /// Reads `arns` back; a failed read makes the state unknown.
    async fn read(&self, arns: impl IntoIterator<Item = String>) {
        for arn in arns {
            let got = self.client.get(&arn).await;
            self.count("get", &got);
            let state = match got {
                Ok(s) => s,
                Err(e) => {
                    warn!(routing_control = %arn, error = %e, "cannot read a routing control");
                    self.lock().last_error = Some(e.to_string());
                    Switch::Unknown
                }
            };
            self.learn(&arn, state);
        }
    }

    /// The configured switches whose state is not known (a failed read).
    fn unknown(&self) -> Vec<String> {
        let st = self.lock();
        self.owners
            .keys()
            .filter(|arn| st.known.get(*arn).is_none_or(|s| *s == Switch::Unknown))
            .cloned()
            .collect()
    }

    fn count<T>(&self, operation: &str, r: &Result<T, LeverError>) {
        let outcome = r.as_ref().map_or_else(|e| e.kind(), |_| "ok");
        self.metrics
            .lever
            .calls_total
            .with_label_values(&[operation, outcome])
            .inc();
    }

    /// Sets one call's switches together; a forced drain's call that a
    /// safety rule refuses is tried once more overriding that rule, when
    /// the config allows.
    async fn set(&self, call: &Call) -> Result<(), LeverError> {
        let entries: Vec<(String, Switch)> =
            call.iter().map(|(arn, s, _)| (arn.clone(), *s)).collect();
        let forced = call.iter().all(|(_, _, f)| *f);
        let mut overrides: Vec<String> = Vec::new();
        loop {
            let r = self.client.set(&entries, &overrides).await;
            self.count("set", &r);
            match r {
                Err(LeverError::Refused { rule, message }) => {
                    if forced && self.config.allow_safety_override && !overrides.contains(&rule) {
                        self.events.emit(
                            Event::new(
                                Kind::Switch,
                                format!("a forced drain overrides ARC safety rule {rule}"),
                            )
                            .reason("safety_override"),
                        );
                        overrides.push(rule);
                        continue;
                    }
                    return Err(LeverError::Refused { rule, message });
                }
                other => return other,
            }
        }
    }

    /// The task: reads every switch, then sets what is pending, reads back,
    /// repairs drift; until `shutdown`. An instance that becomes the
    /// writer reads every switch before its first set (another holder may
    /// have moved them); one that stops being the writer forgets what was
    /// wanted (its successor decides afresh, and so will it if it writes
    /// again).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut next_read = tokio::time::Instant::now();
        let mut failures: u32 = 0;
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut was_writer = false;
        let mut reread_at: Option<tokio::time::Instant> = None;
        loop {
            let now = tokio::time::Instant::now();
            let writer = (self.may_write)();
            if writer && !was_writer {
                next_read = now;
            }
            if !writer && was_writer {
                self.lock().wanted.clear();
            }
            was_writer = writer;
            if now >= next_read {
                self.read(self.owners.keys().cloned()).await;
                next_read = now + self.config.read_interval;
            }
            // A switch whose read failed is unknown, and its member's
            // withdrawal waits on it (`switch_unknown`): it is read again
            // every second until known, not at the next round.
            let unknown = self.unknown();
            let reread = (!unknown.is_empty()).then(|| reread_at.unwrap_or(now + UNKNOWN_REREAD));
            reread_at = reread;
            if let Some(t) = reread.filter(|t| *t <= now) {
                self.read(unknown).await;
                reread_at = Some(t.max(now) + UNKNOWN_REREAD);
            }
            let calls = if writer && (self.may_write)() {
                self.pending()
            } else {
                Vec::new()
            };
            if !calls.is_empty() && retry_at.is_none_or(|t| t <= now) {
                retry_at = None;
                for call in calls {
                    match self.set(&call).await {
                        Ok(()) => {
                            failures = 0;
                            self.applied(call).await;
                        }
                        Err(LeverError::Refused { rule, message }) => {
                            self.refused(call, rule, message)
                        }
                        Err(e) => {
                            failures += 1;
                            let wait = Duration::from_millis(100)
                                .saturating_mul(1 << failures.min(5))
                                .min(MAX_RETRY);
                            warn!(error = %e, retry_in = ?wait, "cannot set the routing controls");
                            self.lock().last_error = Some(e.to_string());
                            retry_at = Some(tokio::time::Instant::now() + wait);
                            break;
                        }
                    }
                }
                continue;
            }
            let until = match retry_at {
                Some(t) if !calls.is_empty() => t.min(next_read),
                _ => next_read,
            };
            let until = reread_at.map_or(until, |t| t.min(until));
            // A refusal's hold ends: its call may go again.
            let until = self
                .lock()
                .refused
                .iter()
                .filter_map(|r| r.until)
                .fold(until, |a, b| a.min(b));
            tokio::select! {
                // New wanted states are tried at once, backoff or not.
                _ = self.wake.notified() => retry_at = None,
                _ = tokio::time::sleep_until(until) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// `call` was accepted: said in the timeline, then read back.
    async fn applied(&self, call: Call) {
        {
            let mut st = self.lock();
            st.refused.retain(|r| {
                !r.call
                    .iter()
                    .any(|(a, _, _)| call.iter().any(|(b, _, _)| a == b))
            });
            st.last_error = None;
            st.last_change = Some(crate::time::unix_secs(SystemTime::now()));
        }
        for (arn, s, _) in &call {
            let Some(o) = self.owners.get(arn) else {
                continue;
            };
            self.events.emit(
                Event::new(
                    Kind::Switch,
                    format!("routing control of {} set {}", o.member(), s.as_str()),
                )
                .about(&o.record, &o.rtype, Some(&o.region))
                .reason(s.as_str()),
            );
        }
        self.read(call.into_iter().map(|(arn, _, _)| arn)).await;
    }

    /// A safety rule refused `call`: said, and kept so it is not sent again
    /// for [`REFUSAL_HOLD`].
    fn refused(&self, call: Call, rule: String, message: String) {
        self.events.emit(
            Event::new(
                Kind::Switch,
                format!(
                    "ARC safety rule {rule} refused the switch change ({message}); \
                     not sent again for {}s unless the wanted states change",
                    REFUSAL_HOLD.as_secs()
                ),
            )
            .reason("safety_rule"),
        );
        // A conflict that names no safety rule (another update to the
        // same control in flight) passes: tried again within seconds.
        let hold = if rule.contains("/safetyrule/") {
            REFUSAL_HOLD
        } else {
            CONFLICT_HOLD
        };
        let mut st = self.lock();
        st.last_error = Some(format!("refused by ARC safety rule {rule}"));
        st.refused.retain(|r| r.call != call);
        st.refused.push(Refusal {
            rule,
            message,
            at: crate::time::unix_secs(SystemTime::now()),
            call,
            until: Some(tokio::time::Instant::now() + hold),
        });
    }
}
