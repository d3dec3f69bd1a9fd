//! The lever's task: reads every switch, sets what differs from what is
//! wanted (one call per record and kind), reads each change back, repairs
//! drift at `read_interval`, reads an unknown switch again within a
//! second, and keeps a safety rule's refusal with its call. The reads and
//! the sets run side by side: no read holds a set back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::*;

impl Lever {
    /// Reads `arns` back; a failed read makes the state unknown.
    async fn read(&self, arns: impl IntoIterator<Item = String>) {
        for arn in arns {
            let sent = self.lock().sets;
            let got = self.client.get(&arn).await;
            self.count("get", &got);
            if self.lock().set_by.get(&arn).is_some_and(|&n| n > sent) {
                // A set of it began meanwhile: its read-back tells.
                continue;
            }
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
    async fn set(&self, call: &Call, term: u64) -> Result<(), LeverError> {
        let entries: Vec<(String, Switch)> =
            call.iter().map(|(arn, s, _)| (arn.clone(), *s)).collect();
        let forced = call.iter().all(|(_, _, f)| *f);
        {
            let mut st = self.lock();
            st.sets += 1;
            let n = st.sets;
            for (arn, _) in &entries {
                st.set_by.insert(arn.clone(), n);
            }
        }
        let mut overrides: Vec<String> = Vec::new();
        loop {
            let r = self.client.set(&entries, &overrides, term).await;
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

    /// The task: the reads and the sets, side by side (a read that takes
    /// its time, a hundred switches at the lever's rate or an endpoint
    /// that does not answer, never holds a set back); until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::join!(self.reads(shutdown.clone()), self.sets(shutdown));
    }

    /// Reads back what was just set, every switch at `read_interval`
    /// (drift is repaired from what it finds), and a switch whose state is
    /// not known (a failed read, a set without an answer) again a second
    /// later, until known.
    async fn reads(&self, shutdown: CancellationToken) {
        let mut next_read = tokio::time::Instant::now();
        let mut reread_at: Option<tokio::time::Instant> = None;
        loop {
            let back = std::mem::take(&mut self.lock().read_back);
            if !back.is_empty() {
                self.read(back).await;
                continue;
            }
            let now = tokio::time::Instant::now();
            if now >= next_read {
                self.read(self.owners.keys().cloned()).await;
                next_read = now + self.config.read_interval;
                continue;
            }
            // Its member's withdrawal waits on it (`switch_unknown`).
            let unknown = self.unknown();
            reread_at = (!unknown.is_empty()).then(|| reread_at.unwrap_or(now + UNKNOWN_REREAD));
            if reread_at.is_some_and(|t| t <= now) {
                self.read(unknown).await;
                // From when the reads ended: a second between rounds
                // however long they took.
                reread_at = Some(tokio::time::Instant::now() + UNKNOWN_REREAD);
                continue;
            }
            let until = reread_at.map_or(next_read, |t| t.min(next_read));
            tokio::select! {
                _ = self.reread.notified() => {}
                _ = tokio::time::sleep_until(until) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Sets what is pending, while this instance may write. One that
    /// becomes the writer reads every switch before its first set
    /// (another holder may have moved them); one that stops being the
    /// writer forgets what was wanted (its successor decides afresh, and
    /// so will it if it writes again). A set that got no answer may still
    /// have landed: its switches are not known until read again.
    async fn sets(&self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut was_writer = false;
        loop {
            let term = (self.writer)();
            let writer = term.is_some();
            if writer && !was_writer {
                self.read(self.owners.keys().cloned()).await;
            }
            if !writer && was_writer {
                self.lock().wanted.clear();
            }
            was_writer = writer;
            let now = tokio::time::Instant::now();
            let calls = if writer { self.pending() } else { Vec::new() };
            if !calls.is_empty() && retry_at.is_none_or(|t| t <= now) {
                retry_at = None;
                for call in calls {
                    // Asked again before each call: the calls before it
                    // may have outlasted the lease's window.
                    let Some(term) = (self.writer)() else {
                        break;
                    };
                    match self.set(&call, term).await {
                        Ok(()) => {
                            failures = 0;
                            self.applied(call, term);
                        }
                        Err(LeverError::Refused { rule, message }) => {
                            self.refused(call, rule, message)
                        }
                        Err(e) => {
                            if matches!(e, LeverError::Unavailable(_)) {
                                for (arn, _, _) in &call {
                                    self.learn(arn, Switch::Unknown);
                                }
                                self.reread.notify_one();
                            }
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
            // A refusal's hold ends: its call may go again (one that has
            // ended is dropped by the writer's next `pending`).
            let held = self
                .lock()
                .refused
                .iter()
                .filter_map(|r| r.until)
                .filter(|t| *t > now)
                .min();
            let until = match retry_at {
                Some(t) if !calls.is_empty() => Some(held.map_or(t, |h| h.min(t))),
                _ => held,
            };
            // The lease's window is asked again at least every second.
            let until = until.map_or(now + WRITER_RECHECK, |t| t.min(now + WRITER_RECHECK));
            tokio::select! {
                // New wanted states are tried at once, backoff or not.
                _ = self.wake.notified() => retry_at = None,
                _ = tokio::time::sleep_until(until) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// `call` was accepted: said in the timeline, then read back.
    fn applied(&self, call: Call, term: u64) {
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
                    format!(
                        "routing control of {} set {} (term {term})",
                        o.member(),
                        s.as_str()
                    ),
                )
                .about(&o.record, &o.rtype, Some(&o.region))
                .reason(s.as_str()),
            );
        }
        // Accepted is applied (ARC judges a call whole); the read-back,
        // beside the next sets, confirms it.
        for (arn, s, _) in &call {
            self.learn(arn, *s);
        }
        self.lock()
            .read_back
            .extend(call.into_iter().map(|(arn, _, _)| arn));
        self.reread.notify_one();
    }

    /// A safety rule refused `call`: said, and kept so it is not sent again
    /// for [`REFUSAL_HOLD`]; a conflict that names no safety rule (another
    /// update to the same control in flight) passes, and is held
    /// [`CONFLICT_HOLD`].
    fn refused(&self, call: Call, rule: String, message: String) {
        let (hold, what, reason) = if rule.contains("/safetyrule/") {
            (
                REFUSAL_HOLD,
                format!("ARC safety rule {rule}"),
                "safety_rule",
            )
        } else {
            (CONFLICT_HOLD, format!("a conflict on {rule}"), "conflict")
        };
        self.events.emit(
            Event::new(
                Kind::Switch,
                format!(
                    "{what} refused the switch change ({message}); \
                     not sent again for {}s unless the wanted states change",
                    hold.as_secs()
                ),
            )
            .reason(reason),
        );
        let mut st = self.lock();
        st.last_error = Some(format!("refused by {what}"));
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
