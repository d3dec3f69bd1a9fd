//! When the zone is reconciled: a state machine over [`Wake`]. Each turn
//! is one pass (`pass.rs`), what its outcome means for the zone (`after`),
//! then a wait for the next reason to go again (`wait`); one rule
//! (`Wake::reads`) says whether the zone is read again before the pass.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::{Passed, ReconcileError, Reconciler};
use crate::controller::calls::backoff;
use crate::controller::ZoneSignals;
use crate::provider::ProviderError;

/// The longest wait before a failed reconcile is tried again.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// A write within this long of the previous one is part of a burst.
const BURST: Duration = Duration::from_secs(1);

/// A resync's read gives way to a verdict at most this many times in a
/// row; then it is read whatever comes.
const MAX_INTERRUPTED_READS: u32 = 3;

/// Why the reconciler woke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// A member's verdict changed, or its target was discovered.
    Verdict,
    /// A damping hold or a control ended, or a withdrawal waits for its
    /// failure to be corroborated.
    HoldEnded,
    /// On-call's controls changed.
    Controls,
    /// Something outside the reconcilers changed the zones (`retire`).
    ZonesChanged,
    /// The resync interval passed.
    Resync,
    /// A resync's read that gave way to a verdict is due now.
    ReadDue,
    /// A retry after a failure, or health checks still to make.
    Retry,
    /// This instance gained or lost the HA lease.
    Role,
    /// A routing control's known state changed (what counts as published).
    Switches,
}

/// What a wake-up means for what the reconciler knows of the zone.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// Plan from what was last read plus this instance's writes since.
    Kept,
    /// Someone else may have written: read before the next plan.
    Forget,
    /// Read now, unless a verdict changes first (`resync`).
    Now,
}

impl Wake {
    /// The one rule of reading again.
    fn reads(self) -> Read {
        match self {
            // A new holder starts from what the zone holds now; on-call's
            // retire wrote the zone itself.
            Wake::Role | Wake::ZonesChanged => Read::Forget,
            Wake::Resync | Wake::ReadDue => Read::Now,
            Wake::Verdict | Wake::HoldEnded | Wake::Controls | Wake::Retry | Wake::Switches => {
                Read::Kept
            }
        }
    }
}

/// What the loop carries from one turn to the next.
struct Turn {
    woken_by_verdict: bool,
    /// A read of the zone is due (a resync, or one that gave way).
    read_due: bool,
    /// Resync reads that gave way to a verdict in a row.
    interrupted: u32,
    next_resync: tokio::time::Instant,
    /// Reconciles failed in a row (the backoff).
    failures: u32,
    /// When to go again without a wake-up: a retry, or checks still to make.
    retry_at: Option<tokio::time::Instant>,
    was_ready: bool,
}

/// Wakes when this instance gains or loses the HA lease; never without HA.
async fn role_changed(role: &mut Option<watch::Receiver<bool>>) {
    if let Some(rx) = role {
        if rx.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// Wakes at a verdict's trigger; never without `signals`.
async fn verdict(signals: Option<&ZoneSignals>) {
    match signals {
        Some(s) => s.trigger.notified().await,
        None => std::future::pending().await,
    }
}

/// Wakes when the lever learns a switch's state; never without a lever.
async fn switches_changed(rx: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = rx {
        if rx.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// What the switches are decided from while a pass is under way: the zone
/// as last read (or last known: recalled, or kept from before a failed
/// write), as `pass::switches_from_stale` does.
struct Known {
    zone_id: String,
    observed: crate::decide::ownership::Observed,
    checks: Vec<crate::provider::HealthCheck>,
}

impl Known {
    /// Runs `work` (a pass, a read) to its end; while it waits on Route53
    /// (slow, or hanging in an outage), a verdict, a control or a
    /// switch's state that changes is decided at once from what is known
    /// and carried out on the switches: they never wait behind a read or
    /// a record write. `verdicts`: `None` when `work` gives way to a
    /// verdict itself (a read that may yield). `woken`: something was
    /// decided beside it.
    async fn beside<T>(
        work: impl std::future::Future<Output = T>,
        known: Option<&Known>,
        (rt, records): (&crate::controller::Runtime, &[usize]),
        verdicts: Option<&ZoneSignals>,
        (controls, switches): (&mut watch::Receiver<u64>, &mut Option<watch::Receiver<u64>>),
        woken: &mut bool,
    ) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                _ = verdict(verdicts), if known.is_some() => {}
                _ = controls.changed(), if known.is_some() => {}
                _ = switches_changed(switches), if known.is_some() => {}
            }
            *woken = true;
            if let Some(k) = known {
                k.decide_switches(rt, records);
            }
        }
    }

    fn decide_switches(&self, rt: &crate::controller::Runtime, records: &[usize]) {
        // Only the writer's decisions are switches to set (as in the pass).
        if !rt.may_write() {
            return;
        }
        let decision =
            super::pass::decide_zone(rt, records, &self.zone_id, &self.observed, &self.checks);
        super::pass::set_switches(rt, &decision);
    }
}

/// Resolves at `at`, or never.
async fn at(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Reconciler {
    /// The task, until shutdown.
    pub(in crate::controller) async fn run(mut self, signals: Arc<ZoneSignals>) {
        let mut edge = signals.edge.subscribe();
        let mut role = self.rt.lease.as_ref().map(|l| l.subscribe());
        let mut controls = self.rt.controls.subscribe();
        let mut changed = self.rt.signals.subscribe_zones_changed();
        let mut switches = self.rt.lever.get().map(|l| l.subscribe());
        // What the state store knows of the zone, before anything else.
        self.recall().await;
        // A drained member must not come back for a restart.
        tokio::select! {
            _ = self.rt.controls.loaded(self.rt.config.admin.is_some()) => {}
            _ = self.shutdown.cancelled() => return,
        }
        let mut turn = Turn {
            woken_by_verdict: false,
            read_due: false,
            interrupted: 0,
            next_resync: tokio::time::Instant::now() + self.jittered_resync(),
            failures: 0,
            retry_at: None,
            was_ready: false,
        };
        loop {
            if turn.woken_by_verdict && self.last_write.is_some_and(|t| t.elapsed() < BURST) {
                self.settle(&mut edge).await;
            }
            let start = Instant::now();
            let known = self.known_for_switches();
            let (rt, records) = (self.rt.clone(), self.records.clone());
            // While the pass waits on Route53 (slow, or hanging in an
            // outage), a verdict, a control or a switch's state that
            // changes is decided at once from what is known, and carried
            // out on the switches: they never wait behind a read or a
            // record write. The records follow in the next pass.
            let mut woken = false;
            let outcome = Known::beside(
                self.reconcile(),
                known.as_ref(),
                (&rt, &records),
                Some(&signals),
                (&mut controls, &mut switches),
                &mut woken,
            )
            .await;
            if woken {
                // What woke it is a reason for the next pass too.
                signals.trigger.notify_one();
            }
            let passed = outcome.is_ok();
            self.after(outcome, &mut turn);
            if passed {
                self.keep_knowledge().await;
            }
            self.rt
                .metrics
                .reconcile
                .duration_seconds
                .with_label_values(&[&self.zone])
                .observe(start.elapsed().as_secs_f64());

            let wake = tokio::select! {
                biased;
                _ = std::future::ready(()), if turn.read_due => Wake::ReadDue,
                _ = signals.trigger.notified() => Wake::Verdict,
                _ = at(self.next_hold_end()) => Wake::HoldEnded,
                _ = controls.changed() => Wake::Controls,
                _ = changed.changed() => Wake::ZonesChanged,
                _ = tokio::time::sleep_until(turn.next_resync) => Wake::Resync,
                _ = at(turn.retry_at) => Wake::Retry,
                _ = role_changed(&mut role) => Wake::Role,
                _ = switches_changed(&mut switches) => Wake::Switches,
                _ = self.shutdown.cancelled() => return,
            };
            if self.shutdown.is_cancelled() {
                return;
            }
            debug!(zone = %self.zone, wake = ?wake, "reconcile");
            turn.woken_by_verdict = wake == Wake::Verdict;
            if wake == Wake::Resync {
                // Records held out are tried again: what Route53 refused
                // may have been fixed by hand meanwhile.
                self.rejected.clear();
                turn.next_resync = tokio::time::Instant::now() + self.jittered_resync();
            }
            if wake == Wake::Role {
                // Another holder may have kept other knowledge meanwhile:
                // what this one kept is written again when it differs.
                self.known.clear();
            }
            match wake.reads() {
                Read::Kept => {}
                Read::Forget => self.forget_zone(),
                Read::Now => turn.read_due = true,
            }
            if std::mem::take(&mut turn.read_due)
                && !self
                    .resync(&signals, &mut turn, (&mut controls, &mut switches))
                    .await
            {
                return;
            }
        }
    }

    /// What a pass's switches may be decided from beside it: only with a
    /// lever, once the zone is known.
    fn known_for_switches(&self) -> Option<Known> {
        self.rt.lever.get()?;
        Some(Known {
            zone_id: self.zone_id.clone()?,
            observed: self.observed.as_ref().or(self.stale.as_ref())?.clone(),
            checks: self.checks.clone(),
        })
    }

    /// Zones started together do not resync together (each lists its
    /// zone, and their reads would queue behind one another).
    fn jittered_resync(&self) -> Duration {
        let resync = self.rt.config.resync_interval;
        resync.mul_f64(rand::rng().random_range(0.75..1.25))
    }

    /// What one pass's outcome means for the zone: its status, the lease's
    /// count of failed writes, when to go again.
    fn after(&mut self, outcome: Result<Passed, ReconcileError>, turn: &mut Turn) {
        match outcome {
            Ok(passed) => {
                turn.failures = 0;
                self.rt.control_plane_passed();
                if let Some(lease) = &self.rt.lease {
                    lease.wrote(true);
                }
                // Health checks still to make: carry on at once (the rate
                // limit paces it); a check call that failed is tried again
                // after a backoff.
                turn.retry_at = self.again.then(tokio::time::Instant::now);
                // A resync's read given way to this reconcile: now, and
                // again one a verdict can interrupt.
                if std::mem::take(&mut self.read_after) {
                    turn.read_due = true;
                }
                let check_error = passed.check_error.as_ref().map(|e| e.to_string());
                if let Some(e) = passed.check_error {
                    self.check_failures += 1;
                    let wait = backoff(self.check_failures);
                    warn!(zone = %self.zone, error = %e, retry_in = ?wait,
                        "a health check call failed; the records are in place, the call is retried");
                    self.rt.metrics.reconcile.failed(e.kind());
                    turn.retry_at = Some(tokio::time::Instant::now() + wait);
                } else {
                    self.check_failures = 0;
                }
                self.rt
                    .zone_passed(&self.zone, SystemTime::now(), check_error);
                if !turn.was_ready {
                    turn.was_ready = true;
                    self.rt.zone_reconciled(&self.zone);
                }
            }
            Err(ReconcileError::Provider(ProviderError::Fenced(why))) => {
                // Not an error of the zone: another instance writes now.
                info!(zone = %self.zone, reason = %why, "no longer the lease holder; reconcile stopped before writing more");
                self.forget_zone();
                turn.retry_at = None;
            }
            Err(e) => {
                turn.failures += 1;
                // Capped well below the calls' own: once an outage of
                // Route53's control plane ends, the zone converges within
                // seconds, not after a backoff grown for as long as it lasted.
                let wait = backoff(turn.failures).min(MAX_RETRY);
                error!(zone = %self.zone, error = %e, retry_in = ?wait, "reconcile failed");
                let lever = self.rt.config.lever.is_some();
                if let (Some(lease), true) = (&self.rt.lease, e.cannot_write(lever)) {
                    lease.wrote(false);
                }
                self.rt.metrics.reconcile.failed(e.kind());
                self.rt
                    .control_plane_failed(e.server_side(), &e.to_string());
                self.rt.zone_failed(&self.zone, e.to_string());
                // Whether a failed write landed is unknown: read again.
                self.forget_zone();
                turn.retry_at = Some(tokio::time::Instant::now() + wait);
            }
        }
    }

    /// A resync's read of the zone, unless a verdict changes first: a
    /// withdrawal does not queue behind a resync's read. It goes on what
    /// was read last (Route53 refuses a batch the zone no longer matches,
    /// and the zone is read at once), and the read follows it. Given way
    /// a few times in a row, it is no longer put off: a zone that keeps
    /// changing is still read. False at shutdown.
    async fn resync(
        &mut self,
        signals: &ZoneSignals,
        turn: &mut Turn,
        wakes: (&mut watch::Receiver<u64>, &mut Option<watch::Receiver<u64>>),
    ) -> bool {
        enum Ended {
            Read(bool),
            Yielded,
            Shutdown,
        }
        let shutdown = self.shutdown.clone();
        let may_yield = turn.interrupted < MAX_INTERRUPTED_READS;
        // A control or a switch's state that changes is decided beside the
        // read, as beside a pass (a drain during an outage goes to the
        // switches while the read retries); a verdict too, once the read
        // no longer yields to one.
        let known = self.known_for_switches();
        let (rt, records) = (self.rt.clone(), self.records.clone());
        let mut woken = false;
        let ended = {
            let read = async {
                tokio::select! {
                    read = self.resync_read() => Ended::Read(read.is_ok()),
                    _ = signals.trigger.notified(), if may_yield => Ended::Yielded,
                }
            };
            let beside = Known::beside(
                read,
                known.as_ref(),
                (&rt, &records),
                (!may_yield).then_some(signals),
                wakes,
                &mut woken,
            );
            tokio::select! {
                ended = beside => ended,
                _ = shutdown.cancelled() => Ended::Shutdown,
            }
        };
        if woken {
            signals.trigger.notify_one();
        }
        match ended {
            Ended::Read(ok) => {
                turn.interrupted = 0;
                if ok {
                    self.keep_knowledge().await;
                } else {
                    // Read again by the next reconcile, which reports it.
                    self.forget_zone();
                }
            }
            Ended::Yielded => {
                turn.interrupted += 1;
                turn.woken_by_verdict = true;
                self.read_after = true;
            }
            Ended::Shutdown => return false,
        }
        true
    }

    /// A resync's read of the zone (once the zone is known; until then the
    /// next reconcile finds it and reads).
    async fn resync_read(&mut self) -> Result<(), ProviderError> {
        match self.zone_id.clone() {
            Some(id) => self.read(&id).await,
            None => Ok(()),
        }
    }

    /// Waits until no member's verdict is unsettled (one probe outcome away
    /// from changing, or a run toward a change under way), or until that
    /// count has not fallen for one spread window plus one fast interval
    /// (the rest is waiting for a later round), at most one spread window
    /// plus one probe timeout. Used only for a write that follows another
    /// within a second, which the rate limit would delay anyway: the first
    /// withdrawal of a burst goes at once, and when a region fails across
    /// many records the rest of its members, whose last probes land over the
    /// spread window, go together in the next write.
    async fn settle(&self, edge: &mut watch::Receiver<usize>) {
        let now = tokio::time::Instant::now();
        let cap = now + self.pace.settle_limit;
        let mut quiet_until = (now + self.pace.settle_quiet).min(cap);
        let mut last = *edge.borrow_and_update();
        while last > 0 {
            tokio::select! {
                changed = edge.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(quiet_until) => return,
                _ = self.shutdown.cancelled() => return,
            }
            let count = *edge.borrow_and_update();
            // Only members leaving the edge (verdicts landing) are progress;
            // members reaching it are a later round.
            if count < last {
                quiet_until = (tokio::time::Instant::now() + self.pace.settle_quiet).min(cap);
            }
            last = count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_lever_an_impaired_control_plane_is_no_reason_to_let_go() {
        let write = |e: ProviderError| ReconcileError::Write(e);
        for (error, alone, with_lever) in [
            (ProviderError::Service("503".into()), true, false),
            (ProviderError::Timeout("hung".into()), true, false),
            (ProviderError::AccessDenied("role".into()), true, true),
            (ProviderError::Throttling("slow".into()), false, false),
            (ProviderError::Fenced("lost".into()), false, false),
        ] {
            let e = write(error);
            assert_eq!(e.cannot_write(false), alone, "{e}");
            assert_eq!(e.cannot_write(true), with_lever, "{e} with a lever");
        }
        let read = ReconcileError::Provider(ProviderError::Service("503".into()));
        assert!(
            !read.cannot_write(false),
            "a failed read is no failed write"
        );
    }

    #[test]
    fn only_what_someone_else_may_have_written_forgets_the_zone() {
        for (wake, read) in [
            (Wake::Verdict, Read::Kept),
            (Wake::HoldEnded, Read::Kept),
            (Wake::Controls, Read::Kept),
            (Wake::Retry, Read::Kept),
            (Wake::Switches, Read::Kept),
            (Wake::ZonesChanged, Read::Forget),
            (Wake::Role, Read::Forget),
            (Wake::Resync, Read::Now),
            (Wake::ReadDue, Read::Now),
        ] {
            assert_eq!(wake.reads(), read, "{wake:?}");
        }
    }
}
