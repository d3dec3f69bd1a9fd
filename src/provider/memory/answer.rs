//! What Route53's data plane would answer for a name, as far as a test or
//! the demo can tell without a client's location: the records it may
//! answer with. A set of latency (or other routing) records answers with
//! one of the members whose health is good; a member without a health
//! check is good; a check counts as its checkers say (more than 18%
//! healthy), a `RECOVERY_CONTROL` check as its routing control's state. When no member is good, Route53 fails open and answers as if
//! every member were. A record without a set identifier is the answer.
//! Which member a client gets is decided by its latency to each region:
//! this is the set Route53 chooses from.

use std::collections::BTreeMap;

use super::StoredHealthCheck;
use crate::lever::standin::Board;
use crate::provider::HealthCheckType;
use crate::provider::RecordSet;

/// The records of one name and type (`records`) that Route53 may answer
/// with, given the account's health checks.
pub fn answer<'a>(
    records: &[&'a RecordSet],
    checks: &BTreeMap<String, StoredHealthCheck>,
    switches: &Board,
) -> Vec<&'a RecordSet> {
    let healthy = |c: &StoredHealthCheck| healthy(c, checks, switches, 0);
    let good = |r: &RecordSet| match &r.health_check_id {
        None => true,
        // A record cannot name a check the account does not have (Route53
        // refuses the change, and a check in use cannot be deleted).
        Some(id) => checks.get(id).is_none_or(healthy),
    };
    let healthy: Vec<&RecordSet> = records.iter().copied().filter(|r| good(r)).collect();
    if healthy.is_empty() {
        records.to_vec()
    } else {
        healthy
    }
}

/// Whether Route53 counts a check healthy: a `RECOVERY_CONTROL` check is
/// its routing control's state (an unknown control: Off), a `CALCULATED`
/// one has `health_threshold` healthy children (a child gone counts as
/// unhealthy), every other check is what its checkers report.
pub fn healthy(
    c: &StoredHealthCheck,
    checks: &BTreeMap<String, StoredHealthCheck>,
    switches: &Board,
    depth: u8,
) -> bool {
    let config = &c.check.config;
    if let Some(arn) = &config.routing_control_arn {
        return switches.get(arn).unwrap_or(false);
    }
    if config.kind == HealthCheckType::Calculated {
        // Route53 nests calculated checks one level deep at most.
        let up = config
            .child_health_checks
            .iter()
            .filter_map(|id| checks.get(id))
            .filter(|child| depth < 2 && healthy(child, checks, switches, depth + 1))
            .count();
        return up >= config.health_threshold as usize;
    }
    c.report.is_healthy()
}
