//! The reconciler's Route53 health check steps (create, update, attach,
//! delete what nothing uses) and the task that reads Route53's own view of
//! each check for status and metrics.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::reconcile::{request, RateLimiter, Reconciler};
use super::{Route53Health, Runtime};
use crate::decide::health_check::{self as hc, Step};
use crate::decide::plan::{Attach, RecordIntents};
use crate::provider::{HealthCheck, HealthCheckConfig, Provider, ProviderError};

/// Health check calls (creates and updates) one reconcile makes at most;
/// the rest follow in the next reconciles, right after. Creating thousands
/// of checks takes a while under the rate limit, and the records must not
/// wait for it.
const CHECK_CALLS_PER_RECONCILE: usize = 10;

/// A member whose check needs a call.
pub(super) struct CheckCall {
    pos: usize,
    ri: usize,
    mi: usize,
    prefix: String,
    step: Step,
    referenced: Option<String>,
}

/// What `check_steps` leaves to do.
pub(super) struct CheckWork {
    calls: Vec<CheckCall>,
    /// Owned checks some member uses or may still use.
    keep: HashSet<String>,
}

impl Reconciler {
    /// Decides every member's health check step and sets which check each
    /// record carries where that needs no call (`intents[..].checks`);
    /// members whose check must be created or updated keep what they
    /// carry until `run_check_calls` has made it.
    pub(super) fn check_steps(
        &self,
        rt: &Runtime,
        zone_id: &str,
        intents: &mut [RecordIntents<'_>],
    ) -> CheckWork {
        let zone_prefix = hc::zone_prefix(&rt.config.owner, zone_id);
        let observed = self.observed.as_ref().expect("read before planning");
        let mut work = CheckWork {
            calls: Vec::new(),
            keep: HashSet::new(),
        };
        for (pos, (ri, intent)) in self.records.iter().zip(intents.iter_mut()).enumerate() {
            let record = intent.record;
            for (mi, member) in record.members.iter().enumerate() {
                let current = observed.member_record(record, member);
                let referenced = current.and_then(|c| c.health_check_id.clone());
                let conflict = rt.member(*ri, mi).conflict;
                let want = hc::want(member, conflict, intent.discovered[mi].as_ref());
                let prefix = hc::member_prefix(&zone_prefix, record, member);
                let (step, kept) = hc::step(&self.checks, &prefix, &want, referenced.as_deref());
                work.keep.extend(kept);
                let attach = match step {
                    Step::Detach => Attach::Detach,
                    Step::Keep => Attach::Keep,
                    Step::Use(id) => Attach::Check(id),
                    step @ (Step::Update { .. } | Step::Create { .. }) => {
                        // Until the call is made, nothing of the member's goes.
                        work.keep.extend(self.mine(&prefix));
                        work.calls.push(CheckCall {
                            pos,
                            ri: *ri,
                            mi,
                            prefix,
                            step,
                            referenced: referenced.clone(),
                        });
                        Attach::Keep
                    }
                };
                set_member_check(rt, *ri, mi, &attach, referenced);
                intent.checks[mi] = attach;
            }
        }
        work
    }

    /// Ids of the owned checks with this member prefix.
    fn mine(&self, prefix: &str) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.caller_reference.starts_with(prefix))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Makes the creates and updates `check_steps` left (at most
    /// [`CHECK_CALLS_PER_RECONCILE`]; `more_checks` says when some wait),
    /// sets the records' new attachments, and notes which owned checks
    /// nothing uses. Returns whether any attachment changed, or the first
    /// error (members it hit keep what they carry).
    pub(super) async fn run_check_calls(
        &mut self,
        rt: &Runtime,
        work: CheckWork,
        intents: &mut [RecordIntents<'_>],
    ) -> Result<bool, ProviderError> {
        let CheckWork { calls, mut keep } = work;
        self.more_checks = calls.len() > CHECK_CALLS_PER_RECONCILE;
        let mut first_error = None;
        let mut attached = false;
        for call in calls.into_iter().take(CHECK_CALLS_PER_RECONCILE) {
            let record = intents[call.pos].record;
            let member = &record.members[call.mi];
            let result = match call.step {
                Step::Update {
                    id,
                    version,
                    config,
                } => self.update_check(&id, version, &config).await,
                Step::Create {
                    caller_reference,
                    config,
                } => {
                    let tags = hc::tags(&rt.config.owner, record, member);
                    self.create_check(&caller_reference, &config, &tags).await
                }
                other => unreachable!("only calls are queued: {other:?}"),
            };
            match result {
                Ok(id) => {
                    // The member's other checks (the one replaced, a twin)
                    // go once the record has moved, in this reconcile.
                    for other in self.mine(&call.prefix) {
                        keep.remove(&other);
                    }
                    keep.insert(id.clone());
                    rt.member(call.ri, call.mi).health_check_error = None;
                    let attach = Attach::Check(id);
                    set_member_check(rt, call.ri, call.mi, &attach, call.referenced);
                    intents[call.pos].checks[call.mi] = attach;
                    attached = true;
                }
                Err(e @ ProviderError::Fenced(_)) => return Err(e),
                Err(e) => {
                    warn!(record = %record.name, region = %member.region, error = %e,
                        "health check could not be settled; the record keeps what it carries");
                    // `check_steps` kept the member's checks already.
                    rt.member(call.ri, call.mi).health_check_error = Some(e.to_string());
                    first_error.get_or_insert(e);
                }
            }
        }
        self.unused_checks = self
            .checks
            .iter()
            .filter(|c| !keep.contains(&c.id))
            .map(|c| c.id.clone())
            .collect();
        first_error.map_or(Ok(attached), Err)
    }

    async fn update_check(
        &mut self,
        id: &str,
        version: i64,
        config: &HealthCheckConfig,
    ) -> Result<String, ProviderError> {
        let provider = self.provider.clone();
        let updated = self
            .call("update_health_check", || {
                provider.update_health_check(id, version, config)
            })
            .await
            .inspect_err(|e| {
                // Someone else changed or deleted it: read again next time.
                if matches!(
                    e,
                    ProviderError::HealthCheckVersionMismatch(_)
                        | ProviderError::NoSuchHealthCheck(_)
                ) {
                    self.observed = None;
                }
            })?;
        info!(zone = %self.zone, health_check = %id, version = updated.version, "health check updated");
        self.remember(updated);
        Ok(id.to_string())
    }

    /// Creates a check, idempotently: a retry after a lost answer gets the
    /// same check back. A reference Route53 refuses because a deleted check
    /// used it (or a live one with other settings) is salted with the time.
    async fn create_check(
        &mut self,
        caller_reference: &str,
        config: &HealthCheckConfig,
        tags: &[(String, String)],
    ) -> Result<String, ProviderError> {
        let provider = self.provider.clone();
        let create = |reference: String| {
            let provider = provider.clone();
            async move { provider.create_health_check(&reference, config).await }
        };
        let created = match self
            .call("create_health_check", || {
                create(caller_reference.to_string())
            })
            .await
        {
            Err(ProviderError::HealthCheckAlreadyExists(_)) => {
                let salt = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let salted = format!("{caller_reference}-{salt:x}");
                self.call("create_health_check", || create(salted.clone()))
                    .await?
            }
            other => other?,
        };
        info!(zone = %self.zone, health_check = %created.id, reference = %created.caller_reference,
            "health check created");
        let id = created.id.clone();
        self.remember(created);
        self.call("tag_health_check", || provider.tag_health_check(&id, tags))
            .await?;
        Ok(id)
    }

    fn remember(&mut self, check: HealthCheck) {
        self.checks.retain(|c| c.id != check.id);
        self.checks.push(check);
    }

    /// Deletes the owned checks no member uses, once no record refers to
    /// them (Route53 refuses with HealthCheckInUse otherwise).
    pub(super) async fn delete_unused_checks(&mut self) -> Result<(), ProviderError> {
        let observed = self.observed.as_ref().expect("read before planning");
        let referenced: HashSet<&str> = observed
            .records
            .values()
            .filter_map(|r| r.health_check_id.as_deref())
            .collect();
        let doomed: Vec<String> = std::mem::take(&mut self.unused_checks)
            .into_iter()
            .filter(|id| !referenced.contains(id.as_str()))
            .collect();
        let provider = self.provider.clone();
        for id in doomed {
            match self
                .call("delete_health_check", || provider.delete_health_check(&id))
                .await
            {
                Ok(()) | Err(ProviderError::NoSuchHealthCheck(_)) => {
                    info!(zone = %self.zone, health_check = %id, "unused health check deleted");
                    self.checks.retain(|c| c.id != id);
                }
                Err(ProviderError::HealthCheckInUse(msg)) => {
                    warn!(zone = %self.zone, health_check = %id, error = %msg,
                        "unused health check is still referenced outside this zone; kept");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Notes which check a member's record carries, for status; Route53's
/// view of a check the member no longer uses is dropped.
fn set_member_check(
    rt: &Runtime,
    ri: usize,
    mi: usize,
    attach: &Attach,
    referenced: Option<String>,
) {
    let id = attach.resolve(referenced.as_deref());
    let mut st = rt.member(ri, mi);
    if st.health_check_id != id {
        st.route53_health = None;
        let labels = rt.labels(ri, mi);
        rt.metrics
            .route53_health_check_healthy
            .remove_label_values(&labels)
            .ok();
    }
    st.health_check_id = id;
}

/// Reads Route53's view of every member's health check, one check at a
/// time, each about every `health_check_status_interval` and never more
/// than one request a second (the requests share the provider's rate
/// limit with the reconcilers).
pub(super) async fn status_loop(
    rt: Arc<Runtime>,
    provider: Arc<dyn Provider>,
    limiter: Arc<RateLimiter>,
    stop: CancellationToken,
) {
    let interval = rt.config.health_check_status_interval;
    loop {
        let mut targets = Vec::new();
        for (ri, r) in rt.config.records.iter().enumerate() {
            for mi in 0..r.members.len() {
                if let Some(id) = rt.member(ri, mi).health_check_id.clone() {
                    targets.push((ri, mi, id));
                }
            }
        }
        if targets.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.cancelled() => return,
            }
            continue;
        }
        let spacing = (interval / targets.len() as u32).max(Duration::from_secs(1));
        for (ri, mi, id) in targets {
            tokio::select! {
                _ = tokio::time::sleep(spacing) => {}
                _ = stop.cancelled() => return,
            }
            let call = provider.health_check_status(&id);
            let result = request(&rt.metrics, &limiter, "health_check_status", call).await;
            let labels = rt.labels(ri, mi);
            let mut st = rt.member(ri, mi);
            // The member may have moved to another check meanwhile.
            if st.health_check_id.as_deref() != Some(&id) {
                continue;
            }
            match result {
                Ok(report) => {
                    rt.metrics
                        .route53_health_check_healthy
                        .with_label_values(&labels)
                        .set(i64::from(report.is_healthy()));
                    st.route53_health = Some(Route53Health {
                        report,
                        at: SystemTime::now(),
                    });
                }
                Err(e) => {
                    warn!(record = labels[0], region = labels[2], health_check = %id, error = %e,
                        "reading Route53's health check status failed");
                }
            }
        }
    }
}
