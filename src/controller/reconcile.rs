//! The reconciler of one zone: decide, plan, apply; retries, rate limit,
//! burst coalescing, change tracking.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::{lock, rtype_str, Runtime, ZoneSignals};
use crate::decide::plan::{self, Observed, RecordIntents};
use crate::decide::policy::{self, Why};
use crate::decide::verdict::Verdict;
use crate::provider::{
    AliasTarget, Change, ChangeStatus, HealthCheck, Provider, ProviderError, CALL_TIMEOUT,
};

/// Spaces requests to the provider: at most `rate` per second across every
/// zone, no bursts (the account's 5/s is shared with other tools).
pub struct RateLimiter {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(rate: f64) -> Self {
        RateLimiter {
            spacing: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            next: Mutex::new(None),
        }
    }

    pub async fn acquire(&self) {
        let slot = {
            let mut next = lock(&self.next);
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.spacing);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// Backoff before retry `attempt` (1-based): doubling from 200 ms, capped at
/// 30 s; the wait is drawn between half and all of that.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(1 << attempt.min(8).saturating_sub(1));
    let base = base.min(Duration::from_secs(30));
    base / 2 + rand::rng().random_range(Duration::ZERO..=base / 2)
}

/// One attempt of a provider request: rate-limited, bounded by
/// [`CALL_TIMEOUT`], timed and counted by operation and outcome.
pub(super) async fn request<T>(
    m: &crate::metrics::Metrics,
    limiter: &RateLimiter,
    operation: &'static str,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    limiter.acquire().await;
    let start = Instant::now();
    let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::Timeout(format!(
            "{operation} took longer than {CALL_TIMEOUT:?}"
        ))),
    };
    m.provider_request_duration_seconds
        .with_label_values(&[operation])
        .observe(start.elapsed().as_secs_f64());
    let outcome = result.as_ref().map_or_else(|e| e.kind(), |_| "ok");
    m.provider_requests_total
        .with_label_values(&[operation, outcome])
        .inc();
    result
}

/// The operations that change what the provider holds: only the HA
/// lease's holder sends them.
const WRITES: &[&str] = &[
    "change",
    "create_health_check",
    "update_health_check",
    "tag_health_check",
    "delete_health_check",
];

/// Transient errors are retried this many times within one reconcile.
const CALL_ATTEMPTS: u32 = 4;
/// Re-read and re-plan at most this often within one reconcile.
const REPLANS: usize = 3;

pub(super) struct Reconciler {
    pub(super) rt: Arc<Runtime>,
    pub(super) provider: Arc<dyn Provider>,
    pub(super) limiter: Arc<RateLimiter>,
    pub(super) zone: String,
    pub(super) zone_id: Option<String>,
    pub(super) records: Vec<usize>,
    /// The zone as last read, plus our writes since. `None`: read it.
    pub(super) observed: Option<Observed>,
    /// This owner's health checks for the zone, read and kept with `observed`.
    pub(super) checks: Vec<HealthCheck>,
    /// Owned checks no member uses: deleted once no record refers to them.
    pub(super) unused_checks: Vec<String>,
    /// Health check calls are left for the next reconcile.
    pub(super) more_checks: bool,
    pub(super) shutdown: CancellationToken,
    /// When this zone was last written to.
    pub(super) last_write: Option<Instant>,
    /// The longest spread window plus probe timeout of the zone's members.
    pub(super) settle_limit: Duration,
    /// The longest spread window of the zone's members.
    pub(super) settle_quiet: Duration,
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

/// A write within this long of the previous one is part of a burst.
const BURST: Duration = Duration::from_secs(1);

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the zone kept changing under us: {0}")]
    Replan(ProviderError),
}

impl ReconcileError {
    fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Provider(e) => e.kind(),
            ReconcileError::Replan(_) => "replan_exhausted",
        }
    }
}

impl Reconciler {
    pub(super) async fn run(mut self, signals: Arc<ZoneSignals>) {
        let resync = self.rt.config.resync_interval;
        let mut edge = signals.edge.subscribe();
        let mut woken_by_verdict = false;
        let mut next_resync = tokio::time::Instant::now() + resync;
        let mut failures = 0u32;
        let mut retry_at;
        let mut was_ready = false;
        let mut role = self.rt.lease.as_ref().map(|l| l.subscribe());
        loop {
            if woken_by_verdict && self.last_write.is_some_and(|t| t.elapsed() < BURST) {
                self.settle(&mut edge).await;
            }
            let start = Instant::now();
            match self.reconcile().await {
                Ok(()) => {
                    failures = 0;
                    // Health checks still to make: carry on at once (the
                    // rate limit paces it).
                    retry_at = self.more_checks.then(tokio::time::Instant::now);
                    let now = SystemTime::now();
                    self.rt.update_zone(&self.zone, |z| {
                        z.last_success = Some(now);
                        z.last_error = None;
                    });
                    self.rt
                        .metrics
                        .last_reconcile_success_timestamp_seconds
                        .set(
                            now.duration_since(SystemTime::UNIX_EPOCH)
                                .unwrap_or_default()
                                .as_secs_f64(),
                        );
                    if !was_ready {
                        was_ready = true;
                        self.mark_reconciled();
                    }
                }
                Err(ReconcileError::Provider(ProviderError::Fenced(why))) => {
                    // Not an error of the zone: another instance writes now.
                    info!(zone = %self.zone, reason = %why, "no longer the lease holder; reconcile stopped before writing more");
                    self.observed = None;
                    retry_at = None;
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff(failures);
                    error!(zone = %self.zone, error = %e, retry_in = ?wait, "reconcile failed");
                    self.rt
                        .metrics
                        .reconcile_errors_total
                        .with_label_values(&[e.kind()])
                        .inc();
                    let msg = e.to_string();
                    self.rt
                        .update_zone(&self.zone, |z| z.last_error = Some(msg));
                    // Whether a failed write landed is unknown: read again.
                    self.observed = None;
                    retry_at = Some(tokio::time::Instant::now() + wait);
                }
            }
            self.rt
                .metrics
                .reconcile_duration_seconds
                .with_label_values(&[&self.zone])
                .observe(start.elapsed().as_secs_f64());

            let retry = async {
                match retry_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            woken_by_verdict = false;
            tokio::select! {
                _ = signals.trigger.notified() => woken_by_verdict = true,
                _ = tokio::time::sleep_until(next_resync) => {
                    debug!(zone = %self.zone, "resync");
                    self.observed = None;
                    next_resync = tokio::time::Instant::now() + resync;
                }
                _ = retry => {}
                _ = role_changed(&mut role) => {
                    // A new holder starts from what the zone holds now.
                    self.observed = None;
                }
                _ = self.shutdown.cancelled() => return,
            }
            if self.shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// Waits until no member is one probe outcome away from a new verdict,
    /// or until that count has not fallen for one spread window (the rest of
    /// the edge is waiting for a later round), at most one spread window
    /// plus one probe timeout. Used only for a write that follows another
    /// within a second, which the rate limit would delay anyway: the first
    /// withdrawal of a burst goes at once, and when a region fails across
    /// many records the rest of its members, whose last probes land over the
    /// spread window, go together in the next write.
    async fn settle(&self, edge: &mut watch::Receiver<usize>) {
        let now = tokio::time::Instant::now();
        let cap = now + self.settle_limit;
        let mut quiet_until = (now + self.settle_quiet).min(cap);
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
                quiet_until = (tokio::time::Instant::now() + self.settle_quiet).min(cap);
            }
            last = count;
        }
    }

    fn mark_reconciled(&self) {
        let done = self.rt.zones_reconciled.fetch_add(1, Ordering::AcqRel) + 1;
        if done >= lock(&self.rt.zones).len() && !self.rt.ready.swap(true, Ordering::AcqRel) {
            self.rt.metrics.ready.set(1);
            info!("ready: every zone reconciled");
        }
    }

    /// One provider request, retried on transient errors with backoff.
    pub(super) async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        f: F,
    ) -> Result<T, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = if WRITES.contains(&operation) {
                self.fenced(operation, f()).await
            } else {
                request(&self.rt.metrics, &self.limiter, operation, f()).await
            };
            match result {
                Err(e) if e.is_transient() && attempt < CALL_ATTEMPTS => {
                    let wait = backoff(attempt);
                    warn!(zone = %self.zone, operation, error = %e, retry_in = ?wait, "provider call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// A write: sent only while this instance may write (always, without
    /// HA), and given up when its hold on the lease ends.
    async fn fenced<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let sent = request(&self.rt.metrics, &self.limiter, operation, call);
        match &self.rt.lease {
            Some(lease) => lease.fence(operation, sent).await,
            None => sent.await,
        }
    }

    async fn zone_id(&mut self) -> Result<String, ProviderError> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        let provider = self.provider.clone();
        let name = self.zone.clone();
        let zone = self.call("find_zone", || provider.find_zone(&name)).await?;
        self.rt
            .update_zone(&self.zone, |z| z.id = Some(zone.id.clone()));
        self.zone_id = Some(zone.id.clone());
        Ok(zone.id)
    }

    /// Reads the zone's records and this owner's health checks for it.
    async fn read(&mut self, zone_id: &str) -> Result<(), ProviderError> {
        let provider = self.provider.clone();
        let records = self
            .call("list_records", || provider.list_records(zone_id))
            .await?;
        let checks = self
            .call("list_health_checks", || provider.list_health_checks())
            .await?;
        let prefix = crate::decide::health_check::zone_prefix(&self.rt.config.owner, zone_id);
        self.checks = checks
            .into_iter()
            .filter(|c| c.caller_reference.starts_with(&prefix))
            .collect();
        self.observed = Some(Observed::new(records));
        Ok(())
    }

    /// Decide and apply the records, then make the health checks that need
    /// a call and attach them (a second write, only then), then delete the
    /// checks nothing uses. A withdrawal never waits on a health check
    /// call; a check that cannot be made leaves its record with what it
    /// carries, and the reconcile reports the error so it is retried.
    async fn reconcile(&mut self) -> Result<(), ReconcileError> {
        let zone_id = self.zone_id().await?;
        let rt = self.rt.clone();
        if !rt.may_write() {
            // Another instance holds the lease: read (at resync) and decide,
            // so status shows what this one sees; write nothing.
            if self.observed.is_none() {
                self.read(&zone_id).await?;
            }
            let mut intents = self.decide(&rt);
            self.check_steps(&rt, &zone_id, &mut intents);
            return Ok(());
        }
        let mut last_rejection = None;
        for _ in 0..REPLANS {
            if self.observed.is_none() {
                self.read(&zone_id).await?;
            }
            let mut intents = self.decide(&rt);
            let work = self.check_steps(&rt, &zone_id, &mut intents);
            // Records first: a withdrawal never waits on a health check call.
            match self.plan_and_apply(&rt, &zone_id, &intents).await {
                Ok(()) => {}
                Err(ProviderError::InvalidChangeBatch(msg)) => {
                    warn!(zone = %self.zone, error = %msg, "batch rejected; re-reading the zone");
                    self.observed = None;
                    last_rejection = Some(ProviderError::InvalidChangeBatch(msg));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            let checks = self.run_check_calls(&rt, work, &mut intents).await;
            if let Ok(true) = checks {
                // Attach the checks just made.
                self.plan_and_apply(&rt, &zone_id, &intents).await?;
            }
            self.delete_unused_checks().await?;
            return checks.map(|_| ()).map_err(Into::into);
        }
        Err(ReconcileError::Replan(
            last_rejection.expect("the loop only continues after a rejection"),
        ))
    }

    async fn plan_and_apply(
        &mut self,
        rt: &Runtime,
        zone_id: &str,
        intents: &[RecordIntents<'_>],
    ) -> Result<(), ProviderError> {
        let observed = self.observed.as_ref().expect("read before planning");
        let changes = plan::plan_zone(&rt.config.owner, observed, intents);
        if !changes.is_empty() {
            self.apply(zone_id, changes).await?;
            self.refresh_published();
        }
        Ok(())
    }

    /// Runs the policy for every record of the zone and records the
    /// decisions for status and metrics.
    fn decide<'a>(&self, rt: &'a Runtime) -> Vec<RecordIntents<'a>> {
        let observed = self.observed.as_ref().expect("read before planning");
        let claims = observed.claims();
        let owner = &rt.config.owner;
        let mut intents = Vec::with_capacity(self.records.len());
        for &ri in &self.records {
            let record = &rt.config.records[ri];
            let verdicts: Vec<Verdict> = (0..record.members.len())
                .map(|mi| self.rt.member(ri, mi).health.verdict())
                .collect();
            let discovered: Vec<Option<AliasTarget>> = (0..record.members.len())
                .map(|mi| self.rt.member(ri, mi).discovered.clone())
                .collect();
            let inputs =
                plan::member_inputs(observed, &claims, owner, record, &verdicts, &discovered);
            let decisions = policy::decide(record.min_healthy, &inputs);
            let mut fail_open = false;
            for (mi, (d, input)) in decisions.iter().zip(&inputs).enumerate() {
                let labels = self.rt.labels(ri, mi);
                let previous = {
                    let mut m = self.rt.member(ri, mi);
                    m.conflict = input.conflict;
                    m.why.replace(d.why)
                };
                if d.why.is_blocked() && previous != Some(d.why) {
                    warn!(record = %record.name, region = labels[2], reason = d.why.as_str(),
                        "withdrawal of an unhealthy member blocked by policy");
                    self.rt
                        .metrics
                        .withdrawals_blocked_total
                        .with_label_values(&[labels[0], labels[1], d.why.as_str()])
                        .inc();
                }
                if input.conflict && previous != Some(Why::Conflict) {
                    warn!(record = %record.name, region = labels[2],
                        set_identifier = %record.members[mi].set_identifier,
                        "a record with this set identifier exists without our ownership marker; leaving it alone (set adopt: true to take it over)");
                }
                fail_open |= matches!(d.why, Why::LastMember | Why::FailOpen);
                self.rt
                    .metrics
                    .member_conflict
                    .with_label_values(&labels)
                    .set(i64::from(input.conflict));
            }
            self.rt
                .metrics
                .record_fail_open
                .with_label_values(&[&record.name, rtype_str(record)])
                .set(i64::from(fail_open));
            let mut ri = RecordIntents::new(record, decisions.iter().map(|d| d.intent).collect());
            ri.discovered = discovered;
            intents.push(ri);
        }
        self.refresh_published();
        intents
    }

    /// Publishes what the provider holds now into status and metrics.
    fn refresh_published(&self) {
        let Some(observed) = self.observed.as_ref() else {
            return;
        };
        for &ri in &self.records {
            let record = &self.rt.config.records[ri];
            for (mi, member) in record.members.iter().enumerate() {
                let present = observed.member_record(record, member).is_some();
                self.rt.member(ri, mi).published = present;
                self.rt
                    .metrics
                    .member_published
                    .with_label_values(&self.rt.labels(ri, mi))
                    .set(i64::from(present));
            }
        }
    }

    async fn apply(&mut self, zone_id: &str, changes: Vec<Change>) -> Result<(), ProviderError> {
        for batch in plan::batches(changes) {
            for c in &batch {
                info!(zone = %self.zone, change = %c, "applying");
            }
            let provider = self.provider.clone();
            let info = self
                .call("change", || provider.change(zone_id, &batch))
                .await?;
            info!(zone = %self.zone, change_id = %info.id, changes = batch.len(), "change accepted");
            self.last_write = Some(Instant::now());
            if let Some(observed) = self.observed.as_mut() {
                observed.apply(&batch);
            }
            self.rt.update_zone(&self.zone, |z| z.changes_applied += 1);
            if info.status == ChangeStatus::Pending {
                self.track(info.id);
            }
        }
        Ok(())
    }

    /// Follows a change until INSYNC, for the propagation metric and status.
    fn track(&self, change_id: String) {
        let rt = self.rt.clone();
        let provider = self.provider.clone();
        let limiter = self.limiter.clone();
        let zone = self.zone.clone();
        let shutdown = self.shutdown.clone();
        rt.update_zone(&zone, |z| z.pending_changes += 1);
        tokio::spawn(async move {
            let accepted = Instant::now();
            // Route53 is usually INSYNC within 60 s; give up after 10 min.
            let deadline = accepted + Duration::from_secs(600);
            let mut wait = Duration::from_millis(500);
            while Instant::now() < deadline {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => break,
                }
                let status = provider.change_status(&change_id);
                let status = request(&rt.metrics, &limiter, "change_status", status).await;
                if let Ok(ChangeStatus::Insync) = status {
                    rt.metrics
                        .change_propagation_seconds
                        .with_label_values(&[&zone])
                        .observe(accepted.elapsed().as_secs_f64());
                    debug!(zone = %zone, change_id = %change_id, "change INSYNC");
                    break;
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            rt.update_zone(&zone, |z| {
                z.pending_changes = z.pending_changes.saturating_sub(1)
            });
        });
    }
}
