//! The reconciler's health check calls: it makes the creates and updates a
//! zone decision asks for (a few per reconcile), and deletes the owned
//! checks nothing uses once no record refers to them.

use std::collections::HashSet;
use std::time::SystemTime;

use tracing::{info, warn};

use super::Reconciler;
use crate::controller::{MemberId, Runtime};
use crate::decide::health_check::{self as hc, Step};
use crate::decide::zone::{CheckCall, RecordsApplied};
use crate::provider::{HealthCheck, HealthCheckConfig, ProviderError, WRITING_TERM};

/// Health check calls (creates and updates) one reconcile makes at most;
/// the rest follow in the next reconciles, right after. Creating thousands
/// of checks takes a while under the rate limit, and the records must not
/// wait for it.
const CHECK_CALLS_PER_RECONCILE: usize = 10;

impl Reconciler {
    /// Makes the creates and updates the decision asks for (at most
    /// [`CHECK_CALLS_PER_RECONCILE`]; `again` says when some wait)
    /// and tells the decision what each made. Returns whether any record's
    /// check changed, or the first error (members it hit keep what they
    /// carry).
    pub(super) async fn make_checks(
        &mut self,
        rt: &Runtime,
        decision: &mut RecordsApplied<'_>,
    ) -> Result<bool, ProviderError> {
        let calls: Vec<CheckCall> = decision.decision().calls.clone();
        self.again = calls.len() > CHECK_CALLS_PER_RECONCILE;
        let mut first_error = None;
        let mut attached = false;
        // Each call names the writer's term, as record writes do.
        let term = rt.writing_term().unwrap_or_default();
        for call in calls.into_iter().take(CHECK_CALLS_PER_RECONCILE) {
            let record = decision.decision().records[call.record].record;
            let member = &record.members[call.member];
            let made = async {
                match &call.step {
                    Step::Update {
                        id,
                        version,
                        config,
                    } => self.update_check(id, *version, config).await,
                    Step::Create {
                        caller_reference,
                        config,
                    } => {
                        let tags = hc::tags(&rt.config.owner, record, member);
                        self.create_check(caller_reference, config, &tags).await
                    }
                    other => unreachable!("only calls are queued: {other:?}"),
                }
            };
            let result = WRITING_TERM.scope(term, made).await;
            // The decision's records are this zone's, in order.
            let handle = rt.member(MemberId {
                record: self.records[call.record],
                member: call.member,
            });
            match result {
                Ok(id) => {
                    decision.check_made(&call, id.clone(), &self.checks);
                    handle.check_failed(None);
                    if call.attach {
                        handle.carries_check(Some(id));
                        attached = true;
                    } else {
                        // A child of the member's calculated check: that
                        // check is made in the next reconcile, at once.
                        self.again = true;
                    }
                }
                Err(e @ ProviderError::Fenced(_)) => return Err(e),
                Err(e) => {
                    warn!(record = %record.name, region = %member.region, error = %e,
                        "health check could not be settled; the record keeps what it carries");
                    handle.check_failed(Some(e.to_string()));
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(attached), Err)
    }

    async fn update_check(
        &mut self,
        id: &str,
        version: i64,
        config: &HealthCheckConfig,
    ) -> Result<String, ProviderError> {
        let updated = self.calls.update_health_check(id, version, config).await;
        if let Err(
            ProviderError::HealthCheckVersionMismatch(_) | ProviderError::NoSuchHealthCheck(_),
        ) = &updated
        {
            // Someone else changed or deleted it: read again next time.
            self.forget_zone();
            self.rt.check_listing.forget();
        }
        let updated = updated?;
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
        let created = match self
            .calls
            .create_health_check(caller_reference, config)
            .await
        {
            Err(ProviderError::HealthCheckAlreadyExists(_)) => {
                let salt = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let salted = format!("{caller_reference}-{salt:x}");
                self.calls.create_health_check(&salted, config).await?
            }
            other => other?,
        };
        info!(zone = %self.zone, health_check = %created.id, reference = %created.caller_reference,
            "health check created");
        let id = created.id.clone();
        self.remember(created);
        self.calls.tag_health_check(&id, tags).await?;
        Ok(id)
    }

    fn remember(&mut self, check: HealthCheck) {
        self.rt.check_listing.note(&check.id, Some(check.clone()));
        self.checks.retain(|c| c.id != check.id);
        self.checks.push(check);
    }

    /// Deletes these owned checks that no member uses, once no record
    /// refers to them (Route53 refuses with HealthCheckInUse otherwise) and
    /// no calculated check lists them (Route53 lets that one go through,
    /// and the parent's status is then undefined). Nothing, while the zone
    /// is not known (forgotten in this pass): the next pass reads it.
    pub(super) async fn delete_unused_checks(
        &mut self,
        unused: Vec<String>,
    ) -> Result<(), ProviderError> {
        let Some(observed) = self.observed.as_ref() else {
            return Ok(());
        };
        let referenced: HashSet<&str> = observed
            .records
            .values()
            .filter_map(|r| r.health_check_id.as_deref())
            .collect();
        let mut doomed: Vec<String> = unused
            .into_iter()
            .filter(|id| !referenced.contains(id.as_str()))
            .collect();
        // Calculated checks first: Route53 refuses to delete their children
        // while they stand.
        let calculated: HashSet<&str> = self
            .checks
            .iter()
            .filter(|c| !c.config.child_health_checks.is_empty())
            .map(|c| c.id.as_str())
            .collect();
        doomed.sort_by_key(|id| !calculated.contains(id.as_str()));
        for id in doomed {
            // Kept while a parent lists it (a parent's deletion failed, or
            // the parent is not this pass's to delete): checked afresh at
            // each one, as parents go first.
            let parent = self
                .checks
                .iter()
                .find(|c| c.config.child_health_checks.contains(&id));
            if let Some(parent) = parent {
                info!(zone = %self.zone, health_check = %id, parent = %parent.id,
                    "unused health check kept: a calculated check still lists it");
                continue;
            }
            let term = self.rt.writing_term().unwrap_or_default();
            let deleted = WRITING_TERM.scope(term, self.calls.delete_health_check(&id));
            match deleted.await {
                Ok(()) | Err(ProviderError::NoSuchHealthCheck(_)) => {
                    info!(zone = %self.zone, health_check = %id, "unused health check deleted");
                    self.rt.check_listing.note(&id, None);
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
