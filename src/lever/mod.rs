//! The data-plane lever: the decisions carried out on ARC routing controls
//! ("switches"), so a withdrawal or a drain still happens while Route53's
//! control plane (record and health check changes) is down. Each switch
//! drives the `RECOVERY_CONTROL` health check its member's record carries;
//! flipping it is a call to the cluster's data plane (docs/design.md,
//! "The data-plane lever").
//!
//! The zone reconcilers say which state each switch should have
//! ([`Lever::want`], from `decide::zone`'s `switches`); one task sets what
//! differs from what is known, in one `UpdateRoutingControlStates` call,
//! reads each changed switch back, and reads every switch at
//! `read_interval` to repair drift. A safety rule's refusal is kept with
//! the plan it refused: the same plan is not sent again until the wanted
//! states change. A forced drain may override the refusing rule, once,
//! when `allow_safety_override` is set.
//!
//! - `client`: the SDK client across the cluster's endpoints;
//! - `standin`: a loopback cluster endpoint (demo and tests).

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

/// What one switch should be, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub want: Switch,
    pub forced: bool,
    pub record: String,
    pub rtype: String,
    pub set_identifier: String,
    pub region: String,
}

impl Wanted {
    /// `name type set_identifier`, for status and events.
    pub fn member(&self) -> String {
        format!("{} {} {}", self.record, self.rtype, self.set_identifier)
    }
}

/// A plan ARC refused, kept so it is not sent again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    pub rule: String,
    pub message: String,
    /// Unix seconds.
    pub at: f64,
    /// What was refused: each switch's state and whether a forced drain
    /// wanted it (forcing it later is a new plan).
    #[serde(skip)]
    plan: Vec<(String, Switch, bool)>,
}

#[derive(Default)]
struct State {
    known: BTreeMap<String, Switch>,
    wanted: BTreeMap<String, Wanted>,
    refused: Option<Refusal>,
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
    state: Mutex<State>,
    /// Something to set: wakes the task.
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
        events: Arc<Events>,
        metrics: Arc<Metrics>,
        credentials: Option<aws_sdk_route53recoverycluster::config::Credentials>,
    ) -> Arc<Self> {
        let client = LeverClient::new(&config, credentials).await;
        Arc::new(Lever {
            config,
            client,
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

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The states a zone's decision wants; the task sets what differs.
    pub fn want(&self, wanted: impl IntoIterator<Item = (String, Wanted)>) {
        let mut st = self.lock();
        let mut differs = false;
        for (arn, w) in wanted {
            differs |= st.known.get(&arn) != Some(&w.want);
            st.wanted.insert(arn, w);
        }
        drop(st);
        if differs {
            self.wake.notify_one();
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
            switches: st
                .wanted
                .iter()
                .map(|(arn, w)| SwitchStatus {
                    arn: arn.clone(),
                    member: w.member(),
                    state: st.known.get(arn).copied().unwrap_or(Switch::Unknown),
                    want: w.want,
                })
                .collect(),
            refused: st.refused.clone(),
            last_error: st.last_error.clone(),
            last_change: st.last_change,
        }
    }

    /// The changes to make: wanted states that differ from the known ones,
    /// unless that is the plan ARC refused last.
    fn pending(&self) -> Vec<(String, Switch, bool)> {
        let st = self.lock();
        let plan: Vec<(String, Switch, bool)> = st
            .wanted
            .iter()
            .filter(|(arn, w)| st.known.get(*arn) != Some(&w.want))
            .map(|(arn, w)| (arn.clone(), w.want, w.forced))
            .collect();
        match &st.refused {
            Some(r) if r.plan == plan => Vec::new(),
            _ => plan,
        }
    }

    fn learn(&self, arn: &str, state: Switch) {
        let mut st = self.lock();
        if let Some(w) = st.wanted.get(arn) {
            let v = match state {
                Switch::On => 1,
                Switch::Off => 0,
                Switch::Unknown => -1,
            };
            self.metrics
                .lever
                .routing_control_state
                .with_label_values(&[&w.record, &w.rtype, &w.set_identifier])
                .set(v);
        }
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

    fn count<T>(&self, operation: &str, r: &Result<T, LeverError>) {
        let outcome = r.as_ref().map_or_else(|e| e.kind(), |_| "ok");
        self.metrics
            .lever
            .calls_total
            .with_label_values(&[operation, outcome])
            .inc();
    }

    /// Sets `plan`; a refusal a forced drain may override is tried once
    /// more, overriding the rule.
    async fn set(&self, plan: &[(String, Switch, bool)]) -> Result<(), LeverError> {
        let entries: Vec<(String, Switch)> =
            plan.iter().map(|(arn, s, _)| (arn.clone(), *s)).collect();
        let forced = plan.iter().any(|(_, _, f)| *f);
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

    /// The task: sets what is pending, reads back, repairs drift; until
    /// `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut next_read = tokio::time::Instant::now();
        let mut failures: u32 = 0;
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            let now = tokio::time::Instant::now();
            if now >= next_read {
                let arns: Vec<String> = self.lock().wanted.keys().cloned().collect();
                self.read(arns).await;
                next_read = now + self.config.read_interval;
            }
            let plan = self.pending();
            if !plan.is_empty() && retry_at.is_none_or(|t| t <= now) {
                retry_at = None;
                match self.set(&plan).await {
                    Ok(()) => {
                        failures = 0;
                        self.applied(plan).await;
                    }
                    Err(LeverError::Refused { rule, message }) => self.refused(plan, rule, message),
                    Err(e) => {
                        failures += 1;
                        let wait = Duration::from_millis(100)
                            .saturating_mul(1 << failures.min(5))
                            .min(MAX_RETRY);
                        warn!(error = %e, retry_in = ?wait, "cannot set the routing controls");
                        self.lock().last_error = Some(e.to_string());
                        retry_at = Some(tokio::time::Instant::now() + wait);
                    }
                }
                continue;
            }
            let until = match retry_at {
                Some(t) if !plan.is_empty() => t.min(next_read),
                _ => next_read,
            };
            tokio::select! {
                // New wanted states are tried at once, backoff or not.
                _ = self.wake.notified() => retry_at = None,
                _ = tokio::time::sleep_until(until) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// `plan` was accepted: said in the timeline, then read back.
    async fn applied(&self, plan: Vec<(String, Switch, bool)>) {
        {
            let mut st = self.lock();
            st.refused = None;
            st.last_error = None;
            st.last_change = Some(crate::time::unix_secs(SystemTime::now()));
        }
        for (arn, s, _) in &plan {
            let Some(w) = self.lock().wanted.get(arn).cloned() else {
                continue;
            };
            self.events.emit(
                Event::new(
                    Kind::Switch,
                    format!("routing control of {} set {}", w.member(), s.as_str()),
                )
                .about(&w.record, &w.rtype, Some(&w.region))
                .reason(s.as_str()),
            );
        }
        self.read(plan.into_iter().map(|(arn, _, _)| arn)).await;
    }

    /// A safety rule refused `plan`: said, and kept so it is not sent again.
    fn refused(&self, plan: Vec<(String, Switch, bool)>, rule: String, message: String) {
        self.events.emit(
            Event::new(
                Kind::Switch,
                format!(
                    "ARC safety rule {rule} refused the switch change ({message}); \
                     not sent again until the wanted states change"
                ),
            )
            .reason("safety_rule"),
        );
        let mut st = self.lock();
        st.last_error = Some(format!("refused by ARC safety rule {rule}"));
        st.refused = Some(Refusal {
            rule,
            message,
            at: crate::time::unix_secs(SystemTime::now()),
            plan,
        });
    }
}
