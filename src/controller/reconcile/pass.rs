//! One reconcile of the zone: read when needed, decide, apply, follow
//! the changes.

use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use super::{Passed, ReconcileError, Reconciler, Written, REPLANS};
use crate::controller::Runtime;
use crate::decide::health_check as hc;
use crate::decide::ownership::Observed;
use crate::decide::plan;
use crate::decide::zone::{self, MemberFacts, ZoneDecision, ZoneInputs};
use crate::events::{Event, Kind};
use crate::provider::{Change, ChangeStatus, ProviderError};

/// One reconcile: read, decide, apply, follow the changes.
impl Reconciler {
    async fn zone_id(&mut self) -> Result<String, ProviderError> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        let zone = self.calls.find_zone(&self.zone).await?;
        self.rt.zone_found(&self.zone, &zone.id, &zone.name);
        self.zone_id = Some(zone.id.clone());
        Ok(zone.id)
    }

    /// Reads the zone's records and this owner's health checks for it (the
    /// account's listing shared by every zone reading within half a resync
    /// of it, kept true to this process's own check calls).
    pub(super) async fn read(&mut self, zone_id: &str) -> Result<(), ProviderError> {
        let records = self.calls.list_records(zone_id).await?;
        let max_age = self.rt.config.resync_interval / 2;
        let checks = self.rt.check_listing.get(&self.calls, max_age).await?;
        let prefix = hc::zone_prefix(&self.rt.config.owner, zone_id);
        self.checks = checks
            .iter()
            .filter(|c| c.caller_reference.starts_with(&prefix))
            .cloned()
            .collect();
        self.observed = Some(Observed::new(records));
        self.stale = None;
        Ok(())
    }

    /// Before the zone is read again: the switches are decided from what
    /// was last known of it (a record not written since is as it was; one
    /// whose write failed may or may not have changed: what counts is its
    /// switch, set before the write). Only the switches' half of the
    /// decision is carried out.
    fn switches_from_stale(&mut self, rt: &Runtime, zone_id: &str) {
        if rt.lever.get().is_none() || self.observed.is_some() {
            return;
        }
        let Some(stale) = self.stale.take() else {
            return;
        };
        self.observed = Some(stale);
        let decision = self.decide(rt, zone_id);
        set_switches(rt, &decision);
        drop(decision);
        self.stale = self.observed.take();
    }

    /// Decide and apply the records, then make the health checks that need
    /// a call and attach them (a second write, only then), then delete the
    /// checks nothing uses. A withdrawal never waits on a health check
    /// call; a check that cannot be made leaves its record with what it
    /// carries and is reported (the member's `health_check.error`), and
    /// retried with backoff, without failing the records' reconcile.
    pub(super) async fn reconcile(&mut self) -> Result<Passed, ReconcileError> {
        crate::controller::supervise::failpoint("reconcile");
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
                // The switches first, from what was last known of the
                // zone: they need no read (which fails, retried, while
                // Route53's control plane is down).
                self.switches_from_stale(&rt, &zone_id);
                self.read(&zone_id).await?;
            }
            let decision = self.decide(&rt, &zone_id);
            // The switches before the records: they need no control plane.
            set_switches(&rt, &decision);
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
                    self.forget_zone();
                    // It may name a check that is gone: list them afresh.
                    rt.check_listing.forget();
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
            let mut applied = decision.records_applied();
            let checks = match self.make_checks(&rt, &mut applied).await {
                Err(e @ ProviderError::Fenced(_)) => return Err(e.into()),
                other => other,
            };
            // What is left once the records moved: checks just made to
            // attach, claims of records now gone to drop.
            let Some(observed) = self.observed.as_ref() else {
                // A check call found the checks changed by someone else
                // and forgot the zone: read it and go again, at once.
                self.again = true;
                return Ok(Passed {
                    check_error: checks.err(),
                });
            };
            let decision = applied.replan(&rt.config.owner, observed);
            let follow_up = self.hold_out_rejected(decision.changes.clone());
            match self.apply(&zone_id, &follow_up).await {
                // The zone changed behind our back, or a held-out record's
                // changes changed with its new check: read again and go
                // again at once; the main pass isolates what is refused.
                // What the zone refers to is unknown until then, so no
                // check is deleted in this pass.
                Err(ProviderError::InvalidChangeBatch(msg)) => {
                    warn!(zone = %self.zone, error = %msg, "follow-up batch rejected; reading the zone again");
                    self.forget_zone();
                    self.again = true;
                    self.note_rejected();
                    return Ok(Passed {
                        check_error: checks.err(),
                    });
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
        let decision = decide_zone(rt, &self.records, zone_id, observed, &self.checks);
        self.note(rt, &decision);
        decision
    }
}

/// A zone's decision from `observed` and `checks` (as last read, or as
/// last known) and each member's facts now. The reconciler's pass and the
/// switches decided beside a slow pass (`run::Known`) both come here.
pub(super) fn decide_zone<'a>(
    rt: &'a Runtime,
    records: &[usize],
    zone_id: &str,
    observed: &Observed,
    checks: &[crate::provider::HealthCheck],
) -> ZoneDecision<'a> {
    let now = SystemTime::now();
    let controls = rt.controls_in_use();
    let gathered = zone::gather(&rt.config, records, &controls, now, |record, member| {
        let id = crate::controller::MemberId { record, member };
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
            switch: rt.switch_of(member.config()),
        }
    });
    zone::decide(&ZoneInputs {
        owner: &rt.config.owner,
        zone_id,
        observed,
        checks,
        records: gathered,
        lever: rt.config.lever.as_ref().map(|l| l.mode),
    })
}

/// The decision's switches to the lever, when there is one.
pub(super) fn set_switches(rt: &Runtime, decision: &ZoneDecision<'_>) {
    let Some(lever) = rt.lever.get() else {
        return;
    };
    lever.release(&decision.held_switches);
    lever.want(decision.switches.iter().map(|c| {
        let wanted = crate::lever::Wanted {
            want: c.want,
            forced: c.forced,
        };
        (c.arn.clone(), wanted)
    }));
}

impl Reconciler {
    /// When the first damping hold of this zone's members, or the first
    /// control, ends.
    pub(super) fn next_hold_end(&self) -> Option<tokio::time::Instant> {
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
        let term = self.rt.writing_term().unwrap_or_default();
        for batch in plan::batches(changes.to_vec()) {
            for c in &batch {
                info!(zone = %self.zone, change = %c, term, "applying");
            }
            let info = crate::provider::WRITING_TERM
                .scope(term, self.calls.change(zone_id, &batch))
                .await?;
            let mut summary: Vec<String> = batch.iter().take(4).map(|c| c.to_string()).collect();
            if batch.len() > 4 {
                summary.push(format!("and {} more", batch.len() - 4));
            }
            self.rt.events.emit(
                Event::new(
                    Kind::Change,
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
            let pending = info.status == ChangeStatus::Pending;
            self.rt.change_applied(&self.zone, pending);
            if pending {
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
                            Kind::Insync,
                            format!("change in {zone} INSYNC after {took:.1}s"),
                        )
                        .change_id(&change_id),
                    );
                    break;
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            rt.change_settled(&zone);
        });
    }
}
