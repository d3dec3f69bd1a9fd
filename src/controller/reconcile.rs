//! The reconciler of one zone: gathers the inputs, asks `decide::zone` for
//! the decision, and carries it out: records first, then health check
//! calls (`checks`), then the records that attach what they made. Retries,
//! burst coalescing and change tracking live here too.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::calls::{backoff, Calls};
use super::isolate::RejectedRecords;
use super::{Runtime, ZoneSignals};
use crate::decide::health_check as hc;
use crate::decide::ownership::Observed;
use crate::decide::plan;
use crate::decide::zone::{self, MemberFacts, ZoneDecision, ZoneInputs};
use crate::events::Event;
use crate::provider::{Change, ChangeStatus, HealthCheck, ProviderError};

/// Transient errors are retried this many times within one reconcile.
pub(super) const CALL_ATTEMPTS: u32 = 4;
/// Re-read and re-plan at most this often within one reconcile.
const REPLANS: usize = 3;

pub(super) struct Reconciler {
    pub(super) rt: Arc<Runtime>,
    pub(super) calls: Calls,
    pub(super) zone: String,
    zone_id: Option<String>,
    pub(super) records: Vec<usize>,
    /// The zone as last read, plus our writes since. `None`: read it.
    pub(super) observed: Option<Observed>,
    /// This owner's health checks for the zone, read and kept with `observed`.
    pub(super) checks: Vec<HealthCheck>,
    /// Reconcile again at once: health check calls are left for the next
    /// reconcile, or a follow-up batch was refused (read and plan again).
    pub(super) again: bool,
    shutdown: CancellationToken,
    /// When this zone was last written to.
    last_write: Option<Instant>,
    pace: Pace,
    /// Records whose changes Route53 refused, held out (`isolate`).
    pub(super) rejected: RejectedRecords,
    /// Health check calls failed this many reconciles in a row.
    check_failures: u32,
    /// A resync's read gave way to a reconcile a verdict asked for: the
    /// zone is read once that reconcile has written.
    read_after: bool,
}

/// A zone's timings, from its members' probe settings.
pub(super) struct Pace {
    /// The longest spread window plus probe timeout of the zone's members.
    pub(super) settle_limit: Duration,
    /// The longest spread window of the zone's members.
    pub(super) settle_quiet: Duration,
    /// While a withdrawal waits for its failure to be corroborated, the
    /// zone is decided again this often (the shortest fast interval of its
    /// members): the pass that corroborates it wakes nothing by itself.
    pub(super) recheck: Duration,
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

/// A resync's read gives way to a verdict at most this many times in a
/// row; then it is read whatever comes.
const MAX_INTERRUPTED_READS: u32 = 3;

/// What a reconcile that wrote its records leaves to say.
#[derive(Debug, Default)]
struct Passed {
    /// A health check call failed (reported on its member): retried with
    /// backoff, the records' reconcile stands.
    check_error: Option<ProviderError>,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Writing the records failed (not a read).
    #[error("writing the records: {0}")]
    Write(ProviderError),
    #[error("the zone kept changing under us: {0}")]
    Replan(ProviderError),
}

impl ReconcileError {
    fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Provider(e) | ReconcileError::Write(e) => e.kind(),
            ReconcileError::Replan(_) => "replan_exhausted",
        }
    }

    /// The write failed for a reason that throttling, a change still
    /// under way or a lost hold do not explain: the leader may be unable
    /// to do its job (`Lease::wrote`).
    fn cannot_write(&self) -> bool {
        match self {
            ReconcileError::Write(e) => !matches!(
                e,
                ProviderError::Throttling(_)
                    | ProviderError::PriorRequestNotComplete(_)
                    | ProviderError::Fenced(_)
            ),
            _ => false,
        }
    }
}

/// A write of the records, its failure told apart from a read's.
trait Written<T> {
    fn written(self) -> Result<T, ReconcileError>;
}

impl<T> Written<T> for Result<T, ProviderError> {
    fn written(self) -> Result<T, ReconcileError> {
        self.map_err(|e| match e {
            ProviderError::Fenced(_) => ReconcileError::Provider(e),
            e => ReconcileError::Write(e),
        })
    }
}

/// The task: when to reconcile (a verdict changed, resync, retry, a
/// change of HA role) and what a reconcile's outcome means for the zone.
impl Reconciler {
    pub(super) async fn run(mut self, signals: Arc<ZoneSignals>) {
        let resync = self.rt.config.resync_interval;
        let mut edge = signals.edge.subscribe();
        let mut woken_by_verdict = false;
        let mut resync_due = false;
        let mut interrupted = 0u32;
        // Zones started together do not resync together (each lists its
        // zone, and their reads would queue behind one another).
        let jittered = || resync.mul_f64(rand::rng().random_range(0.75..1.25));
        let mut next_resync = tokio::time::Instant::now() + jittered();
        let mut failures = 0u32;
        let mut retry_at;
        let mut was_ready = false;
        let mut role = self.rt.lease.as_ref().map(|l| l.subscribe());
        let mut controls = self.rt.controls.subscribe();
        let mut changed = self.rt.subscribe_zones_changed();
        // A drained member must not come back for a restart.
        tokio::select! {
            _ = self.rt.controls.loaded(self.rt.config.admin.is_some()) => {}
            _ = self.shutdown.cancelled() => return,
        }
        loop {
            if woken_by_verdict && self.last_write.is_some_and(|t| t.elapsed() < BURST) {
                self.settle(&mut edge).await;
            }
            let start = Instant::now();
            match self.reconcile().await {
                Ok(passed) => {
                    failures = 0;
                    if let Some(lease) = &self.rt.lease {
                        lease.wrote(true);
                    }
                    // Health checks still to make: carry on at once (the
                    // rate limit paces it); a check call that failed is
                    // tried again after a backoff.
                    retry_at = self.again.then(tokio::time::Instant::now);
                    // A resync's read given way to this reconcile: now,
                    // and again one a verdict can interrupt.
                    if std::mem::take(&mut self.read_after) {
                        resync_due = true;
                    }
                    let check_error = passed.check_error.as_ref().map(|e| e.to_string());
                    self.rt
                        .update_zone(&self.zone, |z| z.check_error = check_error);
                    if let Some(e) = passed.check_error {
                        self.check_failures += 1;
                        let wait = backoff(self.check_failures);
                        warn!(zone = %self.zone, error = %e, retry_in = ?wait,
                            "a health check call failed; the records are in place, the call is retried");
                        self.rt
                            .metrics
                            .reconcile
                            .errors_total
                            .with_label_values(&[e.kind()])
                            .inc();
                        retry_at = Some(tokio::time::Instant::now() + wait);
                    } else {
                        self.check_failures = 0;
                    }
                    let now = SystemTime::now();
                    self.rt.update_zone(&self.zone, |z| {
                        z.last_success = Some(now);
                        z.last_error = None;
                    });
                    self.rt
                        .metrics
                        .reconcile
                        .last_success_timestamp_seconds
                        .set(crate::metrics::unix_secs(now));
                    if !was_ready {
                        was_ready = true;
                        self.rt.zone_reconciled();
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
                    if let (Some(lease), true) = (&self.rt.lease, e.cannot_write()) {
                        lease.wrote(false);
                    }
                    self.rt
                        .metrics
                        .reconcile
                        .errors_total
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
                .reconcile
                .duration_seconds
                .with_label_values(&[&self.zone])
                .observe(start.elapsed().as_secs_f64());

            let retry = async {
                match retry_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            // A damping hold or a control that ends: the member may come
            // back then, a held plan may go.
            let hold_end = async {
                match self.next_hold_end() {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            woken_by_verdict = false;
            // A read that is due goes first; a verdict interrupts it (below).
            let read_first = resync_due;
            let read_now = async move {
                if read_first {
                    std::future::ready(()).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                biased;
                _ = read_now => {}
                _ = signals.trigger.notified() => woken_by_verdict = true,
                _ = hold_end => debug!(zone = %self.zone, "a damping hold or a control ended, or a withdrawal waits"),
                _ = controls.changed() => debug!(zone = %self.zone, "on-call's controls changed"),
                _ = changed.changed() => {
                    debug!(zone = %self.zone, "the zones were changed from outside: reading again");
                    self.observed = None;
                }
                _ = tokio::time::sleep_until(next_resync) => {
                    debug!(zone = %self.zone, "resync");
                    // Records held out are tried again: what Route53
                    // refused may have been fixed by hand meanwhile.
                    self.rejected.clear();
                    next_resync = tokio::time::Instant::now() + jittered();
                    resync_due = true;
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
            if std::mem::take(&mut resync_due) {
                let shutdown = self.shutdown.clone();
                // The zone is read again, unless a verdict changes first:
                // a withdrawal does not queue behind a resync's read. It
                // goes on what was read last (Route53 refuses a batch the
                // zone no longer matches, and the zone is read at once),
                // and the read follows it.
                // Given way a few times in a row, it is no longer put off:
                // a zone that keeps changing is still read.
                let may_yield = interrupted < MAX_INTERRUPTED_READS;
                let yielded = async {
                    if may_yield {
                        signals.trigger.notified().await
                    } else {
                        std::future::pending().await
                    }
                };
                tokio::select! {
                    read = self.resync_read() => {
                        interrupted = 0;
                        if read.is_err() {
                            // Read again by the next reconcile, which reports it.
                            self.observed = None;
                        }
                    }
                    _ = yielded => {
                        interrupted += 1;
                        woken_by_verdict = true;
                        self.read_after = true;
                    }
                    _ = shutdown.cancelled() => return,
                }
            }
        }
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

/// One reconcile: read, decide, apply, follow the changes.
impl Reconciler {
    pub(super) fn new(
        rt: Arc<Runtime>,
        calls: Calls,
        zone: String,
        records: Vec<usize>,
        shutdown: CancellationToken,
        pace: Pace,
    ) -> Self {
        Reconciler {
            rt,
            calls,
            zone,
            zone_id: None,
            records,
            observed: None,
            checks: Vec::new(),
            again: false,
            shutdown,
            last_write: None,
            pace,
            rejected: RejectedRecords::new(),
            check_failures: 0,
            read_after: false,
        }
    }

    async fn zone_id(&mut self) -> Result<String, ProviderError> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        let zone = self.calls.find_zone(&self.zone).await?;
        self.rt.update_zone(&self.zone, |z| {
            z.id = Some(zone.id.clone());
            z.name = Some(zone.name.clone());
        });
        self.zone_id = Some(zone.id.clone());
        Ok(zone.id)
    }

    /// Reads the zone's records and this owner's health checks for it (the
    /// account's listing shared by every zone reading within half a resync
    /// of it, kept true to this process's own check calls).
    async fn read(&mut self, zone_id: &str) -> Result<(), ProviderError> {
        let records = self.calls.list_records(zone_id).await?;
        let max_age = self.rt.config.resync_interval / 2;
        let checks = self.rt.health_checks(&self.calls, max_age).await?;
        let prefix = hc::zone_prefix(&self.rt.config.owner, zone_id);
        self.checks = checks
            .iter()
            .filter(|c| c.caller_reference.starts_with(&prefix))
            .cloned()
            .collect();
        self.observed = Some(Observed::new(records));
        Ok(())
    }

    /// Decide and apply the records, then make the health checks that need
    /// a call and attach them (a second write, only then), then delete the
    /// checks nothing uses. A withdrawal never waits on a health check
    /// call; a check that cannot be made leaves its record with what it
    /// carries and is reported (the member's `health_check.error`), and
    /// retried with backoff, without failing the records' reconcile.
    async fn reconcile(&mut self) -> Result<Passed, ReconcileError> {
        let zone_id = self.zone_id().await?;
        let rt = self.rt.clone();
        if !rt.may_write() {
            // Another instance holds the lease: read (at resync) and decide,
            // so status shows what this one sees; write nothing.
            if self.observed.is_none() {
                self.read(&zone_id).await?;
            }
            self.decide(&rt, &zone_id);
            return Ok(Passed::default());
        }
        let mut rejections = 0;
        loop {
            if self.observed.is_none() {
                self.read(&zone_id).await?;
            }
            let mut decision = self.decide(&rt, &zone_id);
            let changes = self.hold_out_rejected(decision.changes.clone());
            // Records first: a withdrawal never waits on a health check call.
            match self.apply(&zone_id, &changes).await {
                Ok(()) => {}
                Err(ProviderError::InvalidChangeBatch(msg)) if rejections < REPLANS => {
                    // The zone changed behind our back, or one of its records
                    // will never go in: read again, plan again; a second
                    // refusal is sent record by record (`isolate`).
                    rejections += 1;
                    warn!(zone = %self.zone, error = %msg, "batch rejected; re-reading the zone");
                    self.observed = None;
                    // It may name a check that is gone: list them afresh.
                    rt.forget_health_checks();
                    if rejections == 1 {
                        continue;
                    }
                    self.read(&zone_id).await?;
                    let decision = self.decide(&rt, &zone_id);
                    let changes = self.hold_out_rejected(decision.changes);
                    self.apply_isolating(&zone_id, changes).await.written()?;
                    continue;
                }
                Err(ProviderError::InvalidChangeBatch(msg)) => {
                    return Err(ReconcileError::Replan(ProviderError::InvalidChangeBatch(
                        msg,
                    )))
                }
                Err(e) => return Err(e).written(),
            }
            let checks = match self.make_checks(&rt, &mut decision).await {
                Err(e @ ProviderError::Fenced(_)) => return Err(e.into()),
                other => other,
            };
            // What is left once the records moved: checks just made to
            // attach, claims of records now gone to drop.
            let observed = self.observed.as_ref().expect("read before planning");
            decision.replan(&rt.config.owner, observed);
            let follow_up = self.hold_out_rejected(decision.changes.clone());
            match self.apply(&zone_id, &follow_up).await {
                // The zone changed behind our back, or a held-out record's
                // changes changed with its new check: read again and go
                // again at once; the main pass isolates what is refused.
                Err(ProviderError::InvalidChangeBatch(msg)) => {
                    warn!(zone = %self.zone, error = %msg, "follow-up batch rejected; reading the zone again");
                    self.observed = None;
                    self.again = true;
                }
                other => other.written()?,
            }
            self.note_rejected();
            let unused: Vec<String> = decision
                .unused_checks(&self.checks)
                .into_iter()
                .map(|c| c.id.clone())
                .collect();
            let deleted = self.delete_unused_checks(unused).await;
            return Ok(Passed {
                check_error: checks.err().or(deleted.err()),
            });
        }
    }

    /// The zone's decision from what this instance knows now, noted in
    /// status and metrics.
    fn decide<'a>(&self, rt: &'a Runtime, zone_id: &str) -> ZoneDecision<'a> {
        let observed = self.observed.as_ref().expect("read before planning");
        let now = SystemTime::now();
        let controls = rt.controls_in_use();
        let records = zone::gather(
            &rt.config,
            &self.records,
            &controls,
            now,
            |record, member| {
                let id = super::MemberId { record, member };
                let member = rt.member(id);
                let (own, agreed, mut discovered) =
                    member.read(|m| (m.health.verdict(), m.agreed, m.discovered.clone()));
                if discovered.is_none() {
                    let held = observed
                        .member_record(member.record(), member.config())
                        .and_then(|r| r.alias.as_ref());
                    if let Some(alias) = held {
                        discovered = member.discovered_in_zone(alias);
                    }
                }
                MemberFacts {
                    own,
                    agreed,
                    discovered,
                    damped: member.held_until(now).is_some(),
                    uncorroborated: rt.uncorroborated(id),
                }
            },
        );
        let decision = zone::decide(&ZoneInputs {
            owner: &rt.config.owner,
            zone_id,
            observed,
            checks: &self.checks,
            records,
        });
        self.note(rt, &decision);
        decision
    }
}

impl Reconciler {
    /// When the first damping hold of this zone's members, or the first
    /// control, ends.
    fn next_hold_end(&self) -> Option<tokio::time::Instant> {
        let now = SystemTime::now();
        let waiting = self
            .rt
            .read_zone(&self.zone, |z| z.uncorroborated > 0)
            .unwrap_or(false);
        let end = self
            .rt
            .members_of(&self.records)
            .filter_map(|id| self.rt.member(id).held_until(now))
            .chain(self.rt.controls_in_use().next_end(now))
            .chain(waiting.then(|| now + self.pace.recheck))
            .min()?;
        let wait = end.duration_since(now).unwrap_or_default();
        // A hair later, so the hold has ended when the reconcile looks.
        Some(tokio::time::Instant::now() + wait + Duration::from_millis(10))
    }

    pub(super) async fn apply(
        &mut self,
        zone_id: &str,
        changes: &[Change],
    ) -> Result<(), ProviderError> {
        for batch in plan::batches(changes.to_vec()) {
            for c in &batch {
                info!(zone = %self.zone, change = %c, "applying");
            }
            let info = self.calls.change(zone_id, &batch).await?;
            let mut summary: Vec<String> = batch.iter().take(4).map(|c| c.to_string()).collect();
            if batch.len() > 4 {
                summary.push(format!("and {} more", batch.len() - 4));
            }
            self.rt.events.emit(
                Event::new(
                    "change",
                    format!(
                        "{} change(s) accepted in {}: {}",
                        batch.len(),
                        self.zone,
                        summary.join("; ")
                    ),
                )
                .change_id(&info.id),
            );
            self.last_write = Some(Instant::now());
            if let Some(observed) = self.observed.as_mut() {
                observed.apply(&batch);
            }
            self.rt.update_zone(&self.zone, |z| z.changes_applied += 1);
            if info.status == ChangeStatus::Pending {
                self.track(info.id);
            }
        }
        if !changes.is_empty() {
            self.note_published();
        }
        Ok(())
    }

    /// Follows a change until INSYNC, for the propagation metric and status.
    fn track(&self, change_id: String) {
        let rt = self.rt.clone();
        // One attempt each: the loop itself retries.
        let calls = self.calls.clone().retried(1);
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
                if let Ok(ChangeStatus::Insync) = calls.change_status(&change_id).await {
                    let took = accepted.elapsed().as_secs_f64();
                    rt.metrics
                        .reconcile
                        .change_propagation_seconds
                        .with_label_values(&[&zone])
                        .observe(took);
                    rt.events.emit(
                        Event::new(
                            "insync",
                            format!("change in {zone} INSYNC after {took:.1}s"),
                        )
                        .change_id(&change_id),
                    );
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
