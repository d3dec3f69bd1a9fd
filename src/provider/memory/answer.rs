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
use crate::provider::RecordSet;

/// The records of one name and type (`records`) that Route53 may answer
/// with, given the account's health checks.
pub fn answer<'a>(
    records: &[&'a RecordSet],
    checks: &BTreeMap<String, StoredHealthCheck>,
    switches: &Board,
) -> Vec<&'a RecordSet> {
    // A RECOVERY_CONTROL check is its routing control's state (an unknown
    // control: Off); every other check is what its checkers report.
    let healthy = |c: &StoredHealthCheck| match &c.check.config.routing_control_arn {
        Some(arn) => switches.get(arn).unwrap_or(false),
        None => c.report.is_healthy(),
    };
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
