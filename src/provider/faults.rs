//! A wrapper that gives any provider the faults of a real service: the
//! next calls of an operation fail with a chosen error, every call is
//! delayed by a latency, and calls are counted by operation (a fault fires
//! after the call is counted). Tests and the benchmark wrap the strict
//! `memory` store with it; the store itself only keeps Route53's rules.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Deref;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    Change, ChangeInfo, ChangeStatus, CheckerReport, HealthCheck, HealthCheckConfig, Operation,
    Provider, ProviderError, RecordSet, RecordType, Zone,
};

/// A fault to inject: the next `times` calls of `operation` (any operation
/// when `None`) fail with `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub operation: Option<Operation>,
    pub error: ProviderError,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// The strict store with the hooks: what the daemon embeds for the
/// `memory` provider and serves over loopback, and what tests break.
pub type MemoryStore = Faulty<super::memory::MemoryProvider>;

#[derive(Default)]
struct Hooks {
    faults: VecDeque<Fault>,
    latency: Duration,
    calls: HashMap<Operation, u64>,
}

/// `inner` with fault, latency and call-count hooks; reads through to it
/// (`Deref`) for everything else it offers.
pub struct Faulty<P> {
    inner: P,
    hooks: Mutex<Hooks>,
}

impl<P> Faulty<P> {
    pub fn new(inner: P) -> Self {
        Faulty {
            inner,
            hooks: Mutex::new(Hooks::default()),
        }
    }

    fn hooks(&self) -> std::sync::MutexGuard<'_, Hooks> {
        // Every critical section is a few field updates: the data stays whole.
        self.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a fault for the coming calls.
    pub fn inject(&self, fault: Fault) {
        self.hooks().faults.push_back(fault);
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.hooks().faults.clear();
    }

    /// Delays every call by `latency` (a slow or distant service).
    pub fn set_latency(&self, latency: Duration) {
        self.hooks().latency = latency;
    }

    /// How many calls of `op` were made (faulted ones included).
    pub fn calls(&self, op: Operation) -> u64 {
        self.hooks().calls.get(&op).copied().unwrap_or(0)
    }

    /// Every call count, for the inspection API.
    pub fn call_counts(&self) -> BTreeMap<&'static str, u64> {
        let hooks = self.hooks();
        hooks
            .calls
            .iter()
            .map(|(op, n)| (op.as_str(), *n))
            .collect()
    }

    /// Counts the call, sleeps the latency, and fires a queued fault that
    /// matches `op`.
    async fn enter(&self, op: Operation) -> Result<(), ProviderError> {
        let latency = {
            let mut hooks = self.hooks();
            *hooks.calls.entry(op).or_default() += 1;
            hooks.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut hooks = self.hooks();
        let pos = hooks
            .faults
            .iter()
            .position(|f| f.operation.is_none_or(|o| o == op));
        if let Some(pos) = pos {
            let fault = &mut hooks.faults[pos];
            let error = fault.error.clone();
            fault.times = fault.times.saturating_sub(1);
            if fault.times == 0 {
                hooks.faults.remove(pos);
            }
            return Err(error);
        }
        Ok(())
    }
}

impl<P> Deref for Faulty<P> {
    type Target = P;

    fn deref(&self) -> &P {
        &self.inner
    }
}

#[async_trait]
impl<P: Provider> Provider for Faulty<P> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn find_zone(&self, name_or_id: &str) -> Result<Zone, ProviderError> {
        self.enter(Operation::FindZone).await?;
        self.inner.find_zone(name_or_id).await
    }

    async fn list_records(&self, zone_id: &str) -> Result<Vec<RecordSet>, ProviderError> {
        self.enter(Operation::ListRecords).await?;
        self.inner.list_records(zone_id).await
    }

    async fn get_record(
        &self,
        zone_id: &str,
        name: &str,
        rtype: &RecordType,
    ) -> Result<Option<RecordSet>, ProviderError> {
        self.enter(Operation::GetRecord).await?;
        self.inner.get_record(zone_id, name, rtype).await
    }

    async fn list_records_under(
        &self,
        zone_id: &str,
        name: &str,
    ) -> Result<Vec<RecordSet>, ProviderError> {
        self.enter(Operation::ListRecordsUnder).await?;
        self.inner.list_records_under(zone_id, name).await
    }

    async fn change(&self, zone_id: &str, changes: &[Change]) -> Result<ChangeInfo, ProviderError> {
        self.enter(Operation::Change).await?;
        self.inner.change(zone_id, changes).await
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeStatus, ProviderError> {
        self.enter(Operation::ChangeStatus).await?;
        self.inner.change_status(change_id).await
    }

    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, ProviderError> {
        self.enter(Operation::ListHealthChecks).await?;
        self.inner.list_health_checks().await
    }

    async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        self.enter(Operation::CreateHealthCheck).await?;
        self.inner
            .create_health_check(caller_reference, config)
            .await
    }

    async fn tag_health_check(
        &self,
        id: &str,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError> {
        self.enter(Operation::TagHealthCheck).await?;
        self.inner.tag_health_check(id, tags).await
    }

    async fn update_health_check(
        &self,
        id: &str,
        version: i64,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        self.enter(Operation::UpdateHealthCheck).await?;
        self.inner.update_health_check(id, version, config).await
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), ProviderError> {
        self.enter(Operation::DeleteHealthCheck).await?;
        self.inner.delete_health_check(id).await
    }

    async fn health_check_status(&self, id: &str) -> Result<CheckerReport, ProviderError> {
        self.enter(Operation::HealthCheckStatus).await?;
        self.inner.health_check_status(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::memory::MemoryProvider;
    use crate::provider::Action;

    fn create(record: RecordSet) -> Change {
        Change {
            action: Action::Create,
            record,
        }
    }

    #[tokio::test]
    async fn injected_faults_fire_for_their_operation_then_clear() {
        let p = Faulty::new(MemoryProvider::new(&["example.test"], Duration::ZERO));
        let z = p.zones()[0].id.clone();
        p.inject(Fault {
            operation: Some(Operation::Change),
            error: ProviderError::Throttling("Rate exceeded".into()),
            times: 2,
        });
        p.list_records(&z).await.unwrap();
        let a = RecordSet::latency_a("api.example.test", "use1", "us-east-1", "192.0.2.1");
        for _ in 0..2 {
            let err = p.change(&z, &[create(a.clone())]).await.unwrap_err();
            assert_eq!(err.kind(), "throttling");
        }
        p.change(&z, &[create(a)]).await.unwrap();
        assert_eq!(p.calls(Operation::Change), 3);
        assert_eq!(p.calls(Operation::ListRecords), 1);
    }
}
