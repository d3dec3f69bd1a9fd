//! Every provider request the daemon makes goes through [`Calls`]: one
//! typed method per [`Provider`] method, each naming its [`Operation`].
//! A request is rate-limited (the account's 5/s is shared with every other
//! tool), bounded by [`CALL_TIMEOUT`], timed and counted by operation and
//! outcome, and retried with backoff on transient errors. An operation that
//! writes ([`Operation::is_write`]) is fenced by the HA lease: not sent
//! while this instance does not hold it, and given up when the hold ends.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tracing::warn;

use super::leadership::Lease;
use crate::metrics::Metrics;
use crate::provider::Change;
use crate::provider::{
    ChangeInfo, ChangeStatus, CheckerReport, HealthCheck, HealthCheckConfig, Operation, Provider,
    ProviderError, RecordSet, RecordType, Zone, CALL_TIMEOUT,
};
pub use crate::rate_limit::{Lane, RateLimiter};

/// Backoff before retry `attempt` (1-based): doubling from 200 ms, capped at
/// 30 s; the wait is drawn between half and all of that.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(1 << attempt.min(8).saturating_sub(1));
    let base = base.min(Duration::from_secs(30));
    base / 2 + rand::rng().random_range(Duration::ZERO..=base / 2)
}

/// Which lane of the limiter an operation waits in: record changes first
/// (failover waits on them), then the reads a decision waits on and the
/// health check calls, then what nobody waits on (status polls, INSYNC).
pub fn lane_of(op: Operation) -> Lane {
    match op {
        Operation::Change => Lane::Urgent,
        Operation::ChangeStatus | Operation::HealthCheckStatus => Lane::Background,
        Operation::FindZone
        | Operation::ListRecords
        | Operation::GetRecord
        | Operation::ListRecordsUnder
        | Operation::ListHealthChecks
        | Operation::CreateHealthCheck
        | Operation::TagHealthCheck
        | Operation::UpdateHealthCheck
        | Operation::DeleteHealthCheck => Lane::Normal,
    }
}

/// A provider with the rules above.
#[derive(Clone)]
pub struct Calls {
    provider: Arc<dyn Provider>,
    limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
    /// With `ha`: the lease every write is fenced by.
    lease: Option<Arc<Lease>>,
    /// Attempts per request (1: no retry).
    attempts: u32,
    /// The limiter's lane for every request, instead of the operation's
    /// own ([`lane_of`]): the lease's reads are urgent too.
    lane: Option<Lane>,
    /// What the requests are for (a zone), for log lines.
    scope: String,
}

impl Calls {
    pub fn new(
        provider: Arc<dyn Provider>,
        limiter: Arc<RateLimiter>,
        metrics: Arc<Metrics>,
        lease: Option<Arc<Lease>>,
    ) -> Self {
        Calls {
            provider,
            limiter,
            metrics,
            lease,
            attempts: 1,
            lane: None,
            scope: String::new(),
        }
    }

    /// The same, retrying transient errors up to `attempts` in all.
    pub fn retried(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The same, for `scope` (named in log lines).
    pub fn scoped(mut self, scope: &str) -> Self {
        self.scope = scope.to_string();
        self
    }

    /// Every request in the urgent lane (the lease: a renewal that waits
    /// behind reads lets the hold lapse).
    pub fn urgent(mut self) -> Self {
        self.lane = Some(Lane::Urgent);
        self
    }

    /// Without the lease's fence: for the lease's own swaps, which are the
    /// fence (a compare-and-swap bounded by the write window).
    pub fn unfenced(mut self) -> Self {
        self.lease = None;
        self
    }

    async fn send<T, F, Fut>(&self, op: Operation, f: F) -> Result<T, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.once(op, f()).await {
                Err(e) if e.is_transient() && attempt < self.attempts => {
                    let wait = backoff(attempt);
                    warn!(scope = %self.scope, operation = op.as_str(), error = %e, retry_in = ?wait,
                        "provider call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// One attempt; a write only while this instance may write. The fence
    /// is asked after the rate limiter's wait, at the moment the write
    /// would be sent, and bounds it by what is left of the window (a hold
    /// lost during the wait sends nothing).
    async fn once<T>(
        &self,
        op: Operation,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        self.limiter
            .acquire_in(self.lane.unwrap_or_else(|| lane_of(op)))
            .await;
        let sent = self.request(op, call);
        match &self.lease {
            Some(lease) if op.is_write() => lease.fence(op.as_str(), sent).await,
            _ => sent.await,
        }
    }

    async fn request<T>(
        &self,
        op: Operation,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let start = Instant::now();
        let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout(format!(
                "{} took longer than {CALL_TIMEOUT:?}",
                op.as_str()
            ))),
        };
        self.metrics
            .provider
            .request_duration_seconds
            .with_label_values(&[op.as_str()])
            .observe(start.elapsed().as_secs_f64());
        let outcome = result.as_ref().map_or_else(|e| e.kind(), |_| "ok");
        self.metrics
            .provider
            .requests_total
            .with_label_values(&[op.as_str(), outcome])
            .inc();
        result
    }

    pub async fn find_zone(&self, name_or_id: &str) -> Result<Zone, ProviderError> {
        let p = &self.provider;
        self.send(Operation::FindZone, || p.find_zone(name_or_id))
            .await
    }

    pub async fn list_records(&self, zone_id: &str) -> Result<Vec<RecordSet>, ProviderError> {
        let p = &self.provider;
        self.send(Operation::ListRecords, || p.list_records(zone_id))
            .await
    }

    pub async fn get_record(
        &self,
        zone_id: &str,
        name: &str,
        rtype: &RecordType,
    ) -> Result<Option<RecordSet>, ProviderError> {
        let p = &self.provider;
        self.send(Operation::GetRecord, || p.get_record(zone_id, name, rtype))
            .await
    }

    pub async fn list_records_under(
        &self,
        zone_id: &str,
        name: &str,
    ) -> Result<Vec<RecordSet>, ProviderError> {
        let p = &self.provider;
        self.send(Operation::ListRecordsUnder, || {
            p.list_records_under(zone_id, name)
        })
        .await
    }

    pub async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
    ) -> Result<ChangeInfo, ProviderError> {
        let p = &self.provider;
        self.send(Operation::Change, || p.change(zone_id, changes))
            .await
    }

    pub async fn change_status(&self, change_id: &str) -> Result<ChangeStatus, ProviderError> {
        let p = &self.provider;
        self.send(Operation::ChangeStatus, || p.change_status(change_id))
            .await
    }

    pub async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, ProviderError> {
        let p = &self.provider;
        self.send(Operation::ListHealthChecks, || p.list_health_checks())
            .await
    }

    pub async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        let p = &self.provider;
        self.send(Operation::CreateHealthCheck, || {
            p.create_health_check(caller_reference, config)
        })
        .await
    }

    pub async fn tag_health_check(
        &self,
        id: &str,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let p = &self.provider;
        self.send(Operation::TagHealthCheck, || p.tag_health_check(id, tags))
            .await
    }

    pub async fn update_health_check(
        &self,
        id: &str,
        version: i64,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        let p = &self.provider;
        self.send(Operation::UpdateHealthCheck, || {
            p.update_health_check(id, version, config)
        })
        .await
    }

    pub async fn delete_health_check(&self, id: &str) -> Result<(), ProviderError> {
        let p = &self.provider;
        self.send(Operation::DeleteHealthCheck, || p.delete_health_check(id))
            .await
    }

    pub async fn health_check_status(&self, id: &str) -> Result<CheckerReport, ProviderError> {
        let p = &self.provider;
        self.send(Operation::HealthCheckStatus, || p.health_check_status(id))
            .await
    }
}

#[cfg(test)]
mod tests;
