//! Route53's rules for change batches and health checks, as the store
//! enforces them: each function refuses what Route53 refuses, with the
//! error kind Route53 answers with.

use std::collections::BTreeMap;

use super::State;
use crate::provider::{
    change_weight, Action, Change, HealthCheckConfig, HealthCheckType, ProviderError, RecordKey,
    RecordSet, RecordType, MAX_BATCH_CHARS, MAX_BATCH_RECORDS,
};

pub(super) fn invalid(msg: String) -> ProviderError {
    ProviderError::InvalidChangeBatch(msg)
}

/// Checks one record set's shape the way Route53 validates a change.
fn check_shape(zone: &str, r: &RecordSet) -> Result<(), ProviderError> {
    let key = r.key();
    if r.name != zone && !r.name.ends_with(&format!(".{zone}")) {
        return Err(invalid(format!(
            "{key}: name is not permitted in zone {zone}"
        )));
    }
    match (&r.alias, r.values.is_empty()) {
        (Some(_), false) => return Err(invalid(format!("{key}: alias and values both given"))),
        (None, true) => return Err(invalid(format!("{key}: no values given"))),
        (Some(_), true) if r.ttl.is_some() => {
            return Err(invalid(format!("{key}: an alias record takes no TTL")))
        }
        (None, false) if r.ttl.is_none() => return Err(invalid(format!("{key}: TTL missing"))),
        _ => {}
    }
    if r.set_identifier.is_some() != r.region.is_some() {
        return Err(invalid(format!(
            "{key}: a set identifier needs a routing policy (region) and a region needs a set identifier"
        )));
    }
    if r.rtype == RecordType::Cname && r.name == zone {
        return Err(invalid(format!(
            "RRSet of type CNAME with DNS name {} is not permitted at apex in zone {zone}",
            r.name
        )));
    }
    if r.rtype == RecordType::Cname && r.values.len() > 1 {
        return Err(invalid(format!("{key}: a CNAME holds one value")));
    }
    if r.rtype == RecordType::Txt && r.values.iter().any(|v| !is_quoted(v)) {
        return Err(invalid(format!("{key}: TXT values must be quoted")));
    }
    Ok(())
}

fn is_quoted(v: &str) -> bool {
    v.len() >= 2 && v.starts_with('"') && v.ends_with('"')
}

pub(super) fn no_such_check(id: &str) -> ProviderError {
    ProviderError::NoSuchHealthCheck(format!("no health check with id {id}"))
}

/// Checks a health check's settings the way `CreateHealthCheck` and
/// `UpdateHealthCheck` validate them.
pub(super) fn check_health_check(c: &HealthCheckConfig) -> Result<(), ProviderError> {
    let bad = |m: String| Err(ProviderError::InvalidInput(m));
    if let HealthCheckType::Other(t) = &c.kind {
        return bad(format!(
            "health check type {t} is not supported by this store"
        ));
    }
    if c.kind == HealthCheckType::Calculated {
        let n = c.child_health_checks.len();
        if n == 0 || n > 256 {
            return bad(format!(
                "CALCULATED needs 1 to 256 ChildHealthChecks, not {n}"
            ));
        }
        if c.health_threshold as usize > n {
            return bad(format!(
                "HealthThreshold {} is more than its {n} ChildHealthChecks",
                c.health_threshold
            ));
        }
        return Ok(());
    }
    if !c.child_health_checks.is_empty() {
        return bad(format!("{} takes no ChildHealthChecks", c.kind.as_str()));
    }
    if c.kind == HealthCheckType::RecoveryControl || c.routing_control_arn.is_some() {
        return match (&c.kind, &c.routing_control_arn) {
            (HealthCheckType::RecoveryControl, Some(arn))
                if crate::config::valid_routing_control_arn(arn) =>
            {
                Ok(())
            }
            (HealthCheckType::RecoveryControl, _) => {
                bad("RECOVERY_CONTROL needs a RoutingControlArn".into())
            }
            (kind, _) => bad(format!("{} takes no RoutingControlArn", kind.as_str())),
        };
    }
    if ![10, 30].contains(&c.request_interval) {
        return bad(format!(
            "RequestInterval {} must be 10 or 30",
            c.request_interval
        ));
    }
    if !(1..=10).contains(&c.failure_threshold) {
        return bad(format!(
            "FailureThreshold {} must be 1 to 10",
            c.failure_threshold
        ));
    }
    if !c.regions.is_empty() && c.regions.len() < 3 {
        return bad(format!(
            "Regions lists {} regions; give at least 3",
            c.regions.len()
        ));
    }
    if c.fqdn.is_none() && c.ip_address.is_none() {
        return bad("a health check needs FullyQualifiedDomainName or IPAddress".into());
    }
    if c.port == 0 {
        return bad("Port must be 1 to 65535".into());
    }
    if c.resource_path.len() > 255 {
        return bad("ResourcePath is longer than 255 characters".into());
    }
    match (&c.search_string, c.kind.is_str_match()) {
        (None, true) => return bad(format!("{} needs a SearchString", c.kind.as_str())),
        (Some(_), false) => return bad(format!("{} takes no SearchString", c.kind.as_str())),
        (Some(s), true) if s.len() > 255 => {
            return bad("SearchString is longer than 255 characters".into())
        }
        _ => {}
    }
    Ok(())
}

/// Applies a batch to a copy of the zone and commits it only when every
/// change and the resulting zone are valid: all or nothing.
pub(super) fn apply(
    st: &mut State,
    zone_id: &str,
    changes: &[Change],
) -> Result<(), ProviderError> {
    if changes.is_empty() {
        return Err(invalid("a change batch needs at least one change".into()));
    }
    let (records, chars) = changes
        .iter()
        .map(change_weight)
        .fold((0, 0), |acc, w| (acc.0 + w.0, acc.1 + w.1));
    if records > MAX_BATCH_RECORDS {
        return Err(invalid(format!(
            "{records} ResourceRecord elements exceed the limit of {MAX_BATCH_RECORDS}"
        )));
    }
    if chars > MAX_BATCH_CHARS {
        return Err(invalid(format!(
            "{chars} characters of values exceed the limit of {MAX_BATCH_CHARS}"
        )));
    }
    let zone = st
        .zones
        .get(zone_id)
        .ok_or_else(|| ProviderError::NoSuchHostedZone(zone_id.to_string()))?;
    let mut work = zone.records.clone();
    for change in changes {
        let r = &change.record;
        check_shape(&zone.name, r)?;
        if let Some(id) = &r.health_check_id {
            if change.action != Action::Delete && !st.health_checks.contains_key(id) {
                return Err(invalid(format!(
                    "{}: Invalid Health Check ID {id}",
                    r.key()
                )));
            }
        }
        let key = r.key();
        match change.action {
            Action::Create => {
                if work.contains_key(&key) {
                    return Err(invalid(format!(
                        "Tried to create resource record set {key} but it already exists"
                    )));
                }
                work.insert(key, r.clone());
            }
            Action::Delete => match work.get(&key) {
                None => {
                    return Err(invalid(format!(
                        "Tried to delete resource record set {key} but it was not found"
                    )))
                }
                Some(current) if current != r => {
                    return Err(invalid(format!(
                        "Tried to delete resource record set {key} but the values provided do not match the current values"
                    )))
                }
                Some(_) => {
                    work.remove(&key);
                }
            },
            Action::Upsert => {
                work.insert(key, r.clone());
            }
        }
    }
    check_zone(&work)?;
    st.zones
        .get_mut(zone_id)
        .expect("zone looked up above under the same lock")
        .records = work;
    Ok(())
}

/// Zone-wide rules: within one name and type, records are either all
/// latency records (distinct set identifiers and regions) or one plain
/// record; a CNAME stands alone at its name.
fn check_zone(records: &BTreeMap<RecordKey, RecordSet>) -> Result<(), ProviderError> {
    let mut by_name_type: BTreeMap<(&str, &RecordType), Vec<&RecordSet>> = BTreeMap::new();
    let mut types_by_name: BTreeMap<&str, Vec<&RecordType>> = BTreeMap::new();
    for r in records.values() {
        by_name_type.entry((&r.name, &r.rtype)).or_default().push(r);
        let types = types_by_name.entry(&r.name).or_default();
        if !types.contains(&&r.rtype) {
            types.push(&r.rtype);
        }
    }
    for ((name, rtype), sets) in &by_name_type {
        let plain = sets.iter().filter(|r| r.set_identifier.is_none()).count();
        if plain > 0 && sets.len() > plain {
            return Err(invalid(format!(
                "RRSet {name} {rtype}: a record without a routing policy cannot share its name and type with latency records"
            )));
        }
        let mut regions: Vec<&str> = sets.iter().filter_map(|r| r.region.as_deref()).collect();
        regions.sort_unstable();
        if let Some(w) = regions.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!(
                "RRSet {name} {rtype}: only one latency record per region ({} given twice)",
                w[0]
            )));
        }
    }
    for (name, types) in &types_by_name {
        if types.contains(&&RecordType::Cname) && types.len() > 1 {
            return Err(invalid(format!(
                "RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with other records with the same DNS name"
            )));
        }
    }
    Ok(())
}
