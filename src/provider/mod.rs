//! The boundary to the DNS service: the [`Provider`] trait and the types it
//! speaks. Two backends implement it: `memory` (embedded and strict;
//! `remote` serves it over loopback HTTP) and `route53` (the AWS SDK).
//! `faults` wraps any provider with injected faults, latency and call
//! counts.

pub mod faults;
pub mod memory;
mod model;
pub mod remote;
pub mod route53;

pub use model::*;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The provider operations, one per method of [`Provider`]: the label of
/// the request metrics, the key of fault injection and call counts, and
/// what decides whether a call is fenced by the HA lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    FindZone,
    ListRecords,
    GetRecord,
    ListRecordsUnder,
    Change,
    ChangeStatus,
    ListHealthChecks,
    CreateHealthCheck,
    TagHealthCheck,
    UpdateHealthCheck,
    DeleteHealthCheck,
    HealthCheckStatus,
}

impl Operation {
    pub const ALL: [Operation; 12] = [
        Operation::FindZone,
        Operation::ListRecords,
        Operation::GetRecord,
        Operation::ListRecordsUnder,
        Operation::Change,
        Operation::ChangeStatus,
        Operation::ListHealthChecks,
        Operation::CreateHealthCheck,
        Operation::TagHealthCheck,
        Operation::UpdateHealthCheck,
        Operation::DeleteHealthCheck,
        Operation::HealthCheckStatus,
    ];

    /// Whether the operation changes what the service holds. With `ha`,
    /// only the lease's holder sends these (every match arm is explicit,
    /// so a new operation cannot be added without saying).
    pub fn is_write(self) -> bool {
        match self {
            Operation::Change
            | Operation::CreateHealthCheck
            | Operation::TagHealthCheck
            | Operation::UpdateHealthCheck
            | Operation::DeleteHealthCheck => true,
            Operation::FindZone
            | Operation::ListRecords
            | Operation::GetRecord
            | Operation::ListRecordsUnder
            | Operation::ChangeStatus
            | Operation::ListHealthChecks
            | Operation::HealthCheckStatus => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::FindZone => "find_zone",
            Operation::ListRecords => "list_records",
            Operation::GetRecord => "get_record",
            Operation::ListRecordsUnder => "list_records_under",
            Operation::Change => "change",
            Operation::ChangeStatus => "change_status",
            Operation::ListHealthChecks => "list_health_checks",
            Operation::CreateHealthCheck => "create_health_check",
            Operation::TagHealthCheck => "tag_health_check",
            Operation::UpdateHealthCheck => "update_health_check",
            Operation::DeleteHealthCheck => "delete_health_check",
            Operation::HealthCheckStatus => "health_check_status",
        }
    }
}

/// Provider failures, classified the way the reconciler must react to them.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum ProviderError {
    /// The account's request rate was exceeded: back off and retry.
    #[error("throttled: {0}")]
    Throttling(String),
    /// Another change to the zone is still being applied: retry shortly.
    #[error("prior request not complete: {0}")]
    PriorRequestNotComplete(String),
    /// The batch does not fit what the zone holds: re-read and re-plan.
    #[error("invalid change batch: {0}")]
    InvalidChangeBatch(String),
    #[error("no such hosted zone: {0}")]
    NoSuchHostedZone(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("no such health check: {0}")]
    NoSuchHealthCheck(String),
    /// A `CallerReference` already used, by a live check with other
    /// settings or by a deleted one.
    #[error("health check already exists: {0}")]
    HealthCheckAlreadyExists(String),
    /// `UpdateHealthCheck` named a version that is not the current one.
    #[error("health check version mismatch: {0}")]
    HealthCheckVersionMismatch(String),
    /// A record still refers to the check being deleted.
    #[error("health check in use: {0}")]
    HealthCheckInUse(String),
    /// The service refused the request's content (a limit, a bad field).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Anything else the service or transport failed with (5xx, connection).
    #[error("service error: {0}")]
    Service(String),
    /// Not sent, or given up: this instance does not hold the HA lease (or
    /// its hold ended during the call). Never from the service itself.
    #[error("not the leader: {0}")]
    Fenced(String),
}

impl ProviderError {
    /// A stable label for metrics (never the error text).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Throttling(_) => "throttling",
            ProviderError::PriorRequestNotComplete(_) => "prior_request_not_complete",
            ProviderError::InvalidChangeBatch(_) => "invalid_change_batch",
            ProviderError::NoSuchHostedZone(_) => "no_such_hosted_zone",
            ProviderError::AccessDenied(_) => "access_denied",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::NoSuchHealthCheck(_) => "no_such_health_check",
            ProviderError::HealthCheckAlreadyExists(_) => "health_check_already_exists",
            ProviderError::HealthCheckVersionMismatch(_) => "health_check_version_mismatch",
            ProviderError::HealthCheckInUse(_) => "health_check_in_use",
            ProviderError::InvalidInput(_) => "invalid_input",
            ProviderError::Service(_) => "service",
            ProviderError::Fenced(_) => "fenced",
        }
    }

    /// Worth retrying the same request after a backoff.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Throttling(_)
                | ProviderError::PriorRequestNotComplete(_)
                | ProviderError::Timeout(_)
                | ProviderError::Service(_)
        )
    }
}

tokio::task_local! {
    /// The term (the HA lease's fencing token, 0 without `ha`) a record
    /// write is made under, for the provider to name with the call.
    pub static WRITING_TERM: u64;
}

/// The header a write names its writer's term in (records, and the
/// lever's switch calls): a proxy's or a stand-in's log shows which lease
/// each call was made under.
pub const TERM_HEADER: &str = "x-route53-failover-term";

/// The term the current write is made under, if the caller said.
pub fn writing_term() -> Option<u64> {
    WRITING_TERM.try_with(|t| *t).ok()
}

/// The DNS service, as the reconciler needs it. Every call is one request to
/// the service (one page walk for `list_records`), so callers can count them.
#[async_trait]
pub trait Provider: Send + Sync {
    /// `memory` or `route53`, for logs and status.
    fn kind(&self) -> &'static str;
    /// Finds a hosted zone by name (`example.test`) or id.
    async fn find_zone(&self, name_or_id: &str) -> Result<Zone, ProviderError>;
    /// Every record set in the zone.
    async fn list_records(&self, zone_id: &str) -> Result<Vec<RecordSet>, ProviderError>;
    /// The one record set of this name and type with no set identifier (a
    /// TXT such as the HA lease), if the zone holds it. One request where
    /// the service can start a listing at a name; the default walks the zone.
    async fn get_record(
        &self,
        zone_id: &str,
        name: &str,
        rtype: &RecordType,
    ) -> Result<Option<RecordSet>, ProviderError> {
        Ok(self
            .list_records(zone_id)
            .await?
            .into_iter()
            .find(|r| r.name == name && r.rtype == *rtype && r.set_identifier.is_none()))
    }
    /// Every record set named `name` or below it (the instances' views:
    /// `<identity>.<name>`). Few requests where the service can start a
    /// listing at a name (it lists in the order of reversed labels, so a
    /// name's subtree comes right after it); the default walks the zone.
    async fn list_records_under(
        &self,
        zone_id: &str,
        name: &str,
    ) -> Result<Vec<RecordSet>, ProviderError> {
        Ok(self
            .list_records(zone_id)
            .await?
            .into_iter()
            .filter(|r| is_under(&r.name, name))
            .collect())
    }
    /// Applies one change batch atomically.
    async fn change(&self, zone_id: &str, changes: &[Change]) -> Result<ChangeInfo, ProviderError>;
    /// Where an accepted change stands (`PENDING` until `INSYNC`).
    async fn change_status(&self, change_id: &str) -> Result<ChangeStatus, ProviderError>;
    /// Every health check of the account (one page walk).
    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, ProviderError>;
    /// `CreateHealthCheck`: idempotent for the same reference and settings.
    async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError>;
    /// Replaces a check's tags of these keys (`ChangeTagsForResource`).
    async fn tag_health_check(
        &self,
        id: &str,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError>;
    /// `UpdateHealthCheck` of the mutable settings; `version` must be current.
    async fn update_health_check(
        &self,
        id: &str,
        version: i64,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError>;
    /// `DeleteHealthCheck`; fails while a record refers to it.
    async fn delete_health_check(&self, id: &str) -> Result<(), ProviderError>;
    /// `GetHealthCheckStatus`.
    async fn health_check_status(&self, id: &str) -> Result<CheckerReport, ProviderError>;
}

/// `name` is `parent` or a name below it.
pub fn is_under(name: &str, parent: &str) -> bool {
    name == parent
        || name
            .strip_suffix(parent)
            .is_some_and(|head| head.ends_with('.'))
}

/// A provider call's time limit, so no call can hang a reconcile.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
