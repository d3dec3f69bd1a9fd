//! The `memory` provider: an in-process zone store that rejects what Route53
//! rejects (atomic batches, exact-match DELETE, duplicate CREATE, batch
//! limits, routing-policy and CNAME conflicts, PENDING then INSYNC; health
//! checks with CallerReference idempotency, version checks, immutable
//! settings and HealthCheckInUse for a check a record carries; a child
//! deleted under its calculated parent is allowed, as Route53 allows it,
//! fails the parent and is kept for tests to see), so a test
//! of the logic fails where Route53 would. The embedded default for local
//! runs and the demo, and the strict backend the logic is tested against;
//! `provider::faults` wraps it to inject faults and latency and count calls.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    normalize_name, Change, ChangeInfo, ChangeStatus, CheckerReport, HealthCheck,
    HealthCheckConfig, Provider, ProviderError, RecordKey, RecordSet, Zone,
};

mod answer;
mod rules;
use rules::{apply, check_health_check, no_such_check};

/// One accepted change batch, kept for tests and the demo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptedChange {
    pub id: String,
    pub zone_id: String,
    pub at: SystemTime,
    pub changes: Vec<Change>,
}

/// How many accepted batches the log keeps (the demo runs for hours).
const CHANGE_LOG_LIMIT: usize = 10_000;

/// A health check with what the store keeps beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredHealthCheck {
    #[serde(flatten)]
    pub check: HealthCheck,
    pub tags: BTreeMap<String, String>,
    /// What `GetHealthCheckStatus` answers; set by tests and the demo.
    pub report: CheckerReport,
}

/// Route53's default quota of health checks per account.
pub const DEFAULT_HEALTH_CHECK_LIMIT: usize = 200;

#[derive(Default)]
struct ZoneData {
    name: String,
    records: BTreeMap<RecordKey, RecordSet>,
}

struct State {
    zones: BTreeMap<String, ZoneData>,
    changes: HashMap<String, Instant>,
    log: VecDeque<AcceptedChange>,
    next_change: u64,
    health_checks: BTreeMap<String, StoredHealthCheck>,
    /// Every CallerReference ever used, with the id of its live check
    /// (`None` once deleted: Route53 refuses to reuse it).
    caller_references: HashMap<String, Option<String>>,
    next_health_check: u64,
    health_check_limit: usize,
    /// Children deleted while a calculated check still listed them:
    /// (parent, child). Route53 allows it; the daemon must never do it.
    orphaned_children: Vec<(String, String)>,
}

/// The store. A std `Mutex` is enough: no lock is held across an `.await`,
/// and every operation is a short in-memory walk.
pub struct MemoryProvider {
    state: Mutex<State>,
    insync_after: Duration,
    /// The ARC routing controls its `RECOVERY_CONTROL` checks follow
    /// (shared with a `lever::standin` cluster).
    switches: crate::lever::standin::Board,
}

impl MemoryProvider {
    /// A store holding the given zones (by name), empty. Changes turn
    /// INSYNC `insync_after` after they were accepted.
    pub fn new<S: AsRef<str>>(zones: &[S], insync_after: Duration) -> Self {
        let zones = zones
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = normalize_name(name.as_ref());
                (
                    format!("ZMEM{:08}", i + 1),
                    ZoneData {
                        name,
                        records: BTreeMap::new(),
                    },
                )
            })
            .collect();
        MemoryProvider {
            state: Mutex::new(State {
                zones,
                changes: HashMap::new(),
                log: VecDeque::new(),
                next_change: 1,
                health_checks: BTreeMap::new(),
                caller_references: HashMap::new(),
                next_health_check: 1,
                health_check_limit: DEFAULT_HEALTH_CHECK_LIMIT,
                orphaned_children: Vec::new(),
            }),
            insync_after,
            switches: crate::lever::standin::Board::default(),
        }
    }

    /// The routing controls this store's `RECOVERY_CONTROL` checks follow:
    /// hand it to a `lever::standin::Cluster`, and what the cluster's
    /// switches say is what [`MemoryProvider::answer`] acts on.
    pub fn switches(&self) -> crate::lever::standin::Board {
        self.switches.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic inside a short critical section that
        // leaves no half-applied batch (batches commit by swap), so the data
        // is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The accepted batches, oldest first.
    pub fn change_log(&self) -> Vec<AcceptedChange> {
        self.lock().log.iter().cloned().collect()
    }

    pub fn zones(&self) -> Vec<Zone> {
        self.lock()
            .zones
            .iter()
            .map(|(id, z)| Zone {
                id: id.clone(),
                name: z.name.clone(),
            })
            .collect()
    }

    /// The zone's records by zone name or id, without counting a call.
    pub fn records(&self, zone: &str) -> Result<Vec<RecordSet>, ProviderError> {
        let st = self.lock();
        let id = zone_id(&st, zone)?;
        Ok(st.zones[&id].records.values().cloned().collect())
    }

    /// Applies a batch with the same rules, outside the daemon's view: what
    /// another tool or a person does to the zone. Not counted, never faulted.
    pub fn apply_direct(&self, zone: &str, changes: &[Change]) -> Result<(), ProviderError> {
        let mut st = self.lock();
        let id = zone_id(&st, zone)?;
        apply(&mut st, &id, changes)
    }

    /// Every health check with its tags and report, without counting a call.
    pub fn health_checks(&self) -> Vec<StoredHealthCheck> {
        self.lock().health_checks.values().cloned().collect()
    }

    /// The records of `name` and `rtype` in `zone` (by name or id) that Route53's
    /// data plane may answer with now (`answer`): the members whose health
    /// checks pass, or every member when none does (fail-open). Tests and
    /// the demo assert what clients would get, not only what the zone holds.
    pub fn answer(
        &self,
        zone: &str,
        name: &str,
        rtype: &super::RecordType,
    ) -> Result<Vec<RecordSet>, ProviderError> {
        let state = self.lock();
        let data = &state.zones[&zone_id(&state, zone)?];
        let name = normalize_name(name);
        let of_name: Vec<&RecordSet> = data
            .records
            .values()
            .filter(|r| r.name == name && r.rtype == *rtype)
            .collect();
        Ok(
            answer::answer(&of_name, &state.health_checks, &self.switches)
                .into_iter()
                .cloned()
                .collect(),
        )
    }

    /// Sets what Route53's checkers report for a check.
    pub fn set_report(&self, id: &str, report: CheckerReport) -> Result<(), ProviderError> {
        let mut st = self.lock();
        let hc = st
            .health_checks
            .get_mut(id)
            .ok_or_else(|| no_such_check(id))?;
        hc.report = report;
        Ok(())
    }

    /// Raises or lowers the account's health check quota.
    pub fn set_health_check_limit(&self, limit: usize) {
        self.lock().health_check_limit = limit;
    }
}

/// A calculated check names checks the account has.
fn children_exist(st: &State, config: &HealthCheckConfig) -> Result<(), ProviderError> {
    match config
        .child_health_checks
        .iter()
        .find(|c| !st.health_checks.contains_key(*c))
    {
        Some(c) => Err(ProviderError::InvalidInput(format!(
            "ChildHealthChecks names {c}, which does not exist"
        ))),
        None => Ok(()),
    }
}

fn zone_id(st: &State, name_or_id: &str) -> Result<String, ProviderError> {
    if st.zones.contains_key(name_or_id) {
        return Ok(name_or_id.to_string());
    }
    let name = normalize_name(name_or_id);
    st.zones
        .iter()
        .find(|(_, z)| z.name == name)
        .map(|(id, _)| id.clone())
        .ok_or_else(|| ProviderError::NoSuchHostedZone(format!("no hosted zone {name_or_id}")))
}

#[async_trait]
impl Provider for MemoryProvider {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn find_zone(&self, name_or_id: &str) -> Result<Zone, ProviderError> {
        let st = self.lock();
        let id = zone_id(&st, name_or_id)?;
        Ok(Zone {
            name: st.zones[&id].name.clone(),
            id,
        })
    }

    async fn list_records(&self, zone_id: &str) -> Result<Vec<RecordSet>, ProviderError> {
        let st = self.lock();
        st.zones
            .get(zone_id)
            .map(|z| z.records.values().cloned().collect())
            .ok_or_else(|| ProviderError::NoSuchHostedZone(zone_id.to_string()))
    }

    async fn change(&self, zone_id: &str, changes: &[Change]) -> Result<ChangeInfo, ProviderError> {
        let mut st = self.lock();
        apply(&mut st, zone_id, changes)?;
        let id = format!("C{:012}", st.next_change);
        st.next_change += 1;
        st.changes.insert(id.clone(), Instant::now());
        if st.log.len() == CHANGE_LOG_LIMIT {
            st.log.pop_front();
        }
        st.log.push_back(AcceptedChange {
            id: id.clone(),
            zone_id: zone_id.to_string(),
            at: SystemTime::now(),
            changes: changes.to_vec(),
        });
        let status = if self.insync_after.is_zero() {
            ChangeStatus::Insync
        } else {
            ChangeStatus::Pending
        };
        Ok(ChangeInfo { id, status })
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeStatus, ProviderError> {
        let st = self.lock();
        let accepted = st.changes.get(change_id).ok_or_else(|| {
            ProviderError::InvalidChangeBatch(format!("no such change {change_id}"))
        })?;
        Ok(if accepted.elapsed() >= self.insync_after {
            ChangeStatus::Insync
        } else {
            ChangeStatus::Pending
        })
    }

    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, ProviderError> {
        let st = self.lock();
        Ok(st.health_checks.values().map(|h| h.check.clone()).collect())
    }

    async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        check_health_check(config)?;
        let mut st = self.lock();
        children_exist(&st, config)?;
        match st.caller_references.get(caller_reference) {
            Some(Some(id)) => {
                let existing = &st.health_checks[id].check;
                return if existing.config == *config {
                    Ok(existing.clone())
                } else {
                    Err(ProviderError::HealthCheckAlreadyExists(format!(
                        "CallerReference {caller_reference} belongs to health check {id}, which has other settings"
                    )))
                };
            }
            Some(None) => {
                return Err(ProviderError::HealthCheckAlreadyExists(format!(
                    "CallerReference {caller_reference} belonged to a deleted health check"
                )))
            }
            None => {}
        }
        if st.health_checks.len() >= st.health_check_limit {
            return Err(ProviderError::InvalidInput(format!(
                "TooManyHealthChecks: the account's limit of {} health checks is reached",
                st.health_check_limit
            )));
        }
        let id = format!("00000000-0000-4000-8000-{:012}", st.next_health_check);
        st.next_health_check += 1;
        let check = HealthCheck {
            id: id.clone(),
            caller_reference: caller_reference.to_string(),
            version: 1,
            config: config.clone(),
        };
        st.caller_references
            .insert(caller_reference.to_string(), Some(id.clone()));
        st.health_checks.insert(
            id,
            StoredHealthCheck {
                check: check.clone(),
                tags: BTreeMap::new(),
                report: CheckerReport {
                    healthy: 3,
                    total: 3,
                    failure: None,
                },
            },
        );
        Ok(check)
    }

    async fn tag_health_check(
        &self,
        id: &str,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let mut st = self.lock();
        let hc = st
            .health_checks
            .get_mut(id)
            .ok_or_else(|| no_such_check(id))?;
        hc.tags.extend(tags.iter().cloned());
        Ok(())
    }

    async fn update_health_check(
        &self,
        id: &str,
        version: i64,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        check_health_check(config)?;
        let mut st = self.lock();
        children_exist(&st, config)?;
        let hc = st
            .health_checks
            .get_mut(id)
            .ok_or_else(|| no_such_check(id))?;
        if hc.check.version != version {
            return Err(ProviderError::HealthCheckVersionMismatch(format!(
                "health check {id} is at version {}, not {version}",
                hc.check.version
            )));
        }
        if !hc.check.config.same_immutables(config) {
            return Err(ProviderError::InvalidInput(format!(
                "health check {id}: Type, RequestInterval and MeasureLatency cannot be updated"
            )));
        }
        hc.check.config = config.clone();
        hc.check.version += 1;
        Ok(hc.check.clone())
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), ProviderError> {
        let mut st = self.lock();
        if !st.health_checks.contains_key(id) {
            return Err(no_such_check(id));
        }
        let user = st
            .zones
            .values()
            .flat_map(|z| z.records.values())
            .find(|r| r.health_check_id.as_deref() == Some(id));
        if let Some(r) = user {
            return Err(ProviderError::HealthCheckInUse(format!(
                "health check {id} is used by {}",
                r.key()
            )));
        }
        // Route53 deletes a child a calculated check still lists, and the
        // parent's status is then undefined: here it counts the child as
        // failing, and the deletion is kept for tests to see.
        let parents: Vec<String> = st
            .health_checks
            .values()
            .filter(|h| h.check.config.child_health_checks.iter().any(|c| c == id))
            .map(|h| h.check.id.clone())
            .collect();
        for parent in parents {
            st.orphaned_children.push((parent, id.to_string()));
        }
        let removed = st.health_checks.remove(id).expect("checked above");
        st.caller_references
            .insert(removed.check.caller_reference, None);
        Ok(())
    }

    async fn health_check_status(&self, id: &str) -> Result<CheckerReport, ProviderError> {
        self.check_status(id)
    }
}

impl MemoryProvider {
    /// Children deleted while a calculated check listed them, as
    /// (parent, child): what Route53 allows and the daemon must not do.
    pub fn orphaned_children(&self) -> Vec<(String, String)> {
        self.lock().orphaned_children.clone()
    }

    fn check_status(&self, id: &str) -> Result<CheckerReport, ProviderError> {
        let st = self.lock();
        let h = st.health_checks.get(id).ok_or_else(|| no_such_check(id))?;
        // A RECOVERY_CONTROL check's checkers report its switch; a
        // CALCULATED check's, its children.
        let config = &h.check.config;
        if config.routing_control_arn.is_none() && config.kind != super::HealthCheckType::Calculated
        {
            return Ok(h.report.clone());
        }
        let up = answer::healthy(h, &st.health_checks, &self.switches, 0);
        Ok(CheckerReport {
            healthy: if up { 3 } else { 0 },
            total: 3,
            failure: (!up).then(|| {
                let gone = config
                    .child_health_checks
                    .iter()
                    .find(|c| !st.health_checks.contains_key(*c));
                if config.routing_control_arn.is_some() {
                    "Failure: the routing control is Off".to_string()
                } else if let Some(gone) = gone {
                    format!("Failure: child health check {gone} no longer exists")
                } else {
                    "Failure: fewer child health checks are healthy than its threshold".to_string()
                }
            }),
        })
    }
}

#[cfg(test)]
mod tests;
