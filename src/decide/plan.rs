//! Decisions vs what a zone holds → the changes that move one to the other
//! (records and their ownership claims), split into batches within
//! Route53's limits. Pure.

use std::collections::BTreeSet;

use crate::config::{MemberConfig, RecordConfig, Target};
use crate::decide::ownership::{claim_of, marker_changes, ownership, Claim, Observed};
use crate::decide::policy::Intent;
use crate::provider::{
    change_weight, Action, AliasTarget, Change, RecordKey, RecordSet, MAX_BATCH_CHARS,
    MAX_BATCH_RECORDS,
};

/// The record set the configuration asks for; `None` while an API Gateway
/// target is not discovered yet (`discovered` is its alias target).
pub fn desired_record(
    record: &RecordConfig,
    member: &MemberConfig,
    discovered: Option<&AliasTarget>,
) -> Option<RecordSet> {
    let (ttl, values, alias) = match &member.target {
        Target::Values(v) => (Some(record.ttl), v.clone(), None),
        Target::Cname(c) => (Some(record.ttl), vec![c.clone()], None),
        Target::Alias(a) => (None, Vec::new(), Some(a.clone())),
        Target::ApiGateway { .. } => (None, Vec::new(), Some(discovered?.clone())),
    };
    Some(RecordSet {
        name: record.name.clone(),
        rtype: record.rtype.clone(),
        set_identifier: Some(member.set_identifier.clone()),
        region: Some(member.region.clone()),
        ttl,
        values,
        alias,
        health_check_id: None,
    })
}

/// Which Route53 health check a member's record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// Whatever it carries now (the check could not be settled this time).
    Keep,
    /// None.
    Detach,
    Check(String),
}

impl Attach {
    /// The check id a record carries, given the one it carries now.
    pub fn resolve(&self, referenced: Option<&str>) -> Option<String> {
        match self {
            Attach::Keep => referenced.map(str::to_string),
            Attach::Detach => None,
            Attach::Check(id) => Some(id.clone()),
        }
    }
}

/// One record of the zone with the policy's intent for each member.
#[derive(Debug)]
pub struct RecordIntents<'a> {
    pub record: &'a RecordConfig,
    pub intents: Vec<Intent>,
    /// Per member: the discovered alias target of an API Gateway target.
    pub discovered: Vec<Option<AliasTarget>>,
    /// Per member: the health check its record carries.
    pub checks: Vec<Attach>,
}

impl<'a> RecordIntents<'a> {
    /// Intents for a record whose targets need no discovery, keeping the
    /// health checks records carry.
    pub fn new(record: &'a RecordConfig, intents: Vec<Intent>) -> Self {
        let n = record.members.len();
        RecordIntents {
            record,
            intents,
            discovered: vec![None; n],
            checks: vec![Attach::Keep; n],
        }
    }
}

/// The changes for one zone: claims first, so a record is never written
/// without its claim, then records, then markers that only shrink.
pub fn plan_zone(owner: &str, observed: &Observed, records: &[RecordIntents<'_>]) -> Vec<Change> {
    let claims = observed.claims();
    let mut wanted_claims: BTreeSet<Claim> = claims
        .iter()
        .filter(|c| c.owner == owner)
        .cloned()
        .collect();
    let mut configured: BTreeSet<Claim> = BTreeSet::new();
    let mut record_changes = Vec::new();

    for ri in records {
        let record = ri.record;
        let members = record.members.iter().zip(&ri.intents);
        for ((member, intent), (discovered, check)) in
            members.zip(ri.discovered.iter().zip(&ri.checks))
        {
            let own = ownership(observed, &claims, owner, record, member);
            let claim = claim_of(owner, record, member);
            configured.insert(claim.clone());
            if own.conflict {
                continue;
            }
            let current = observed.member_record(record, member);
            match intent {
                Intent::Publish => {
                    // An undiscovered target cannot be published yet.
                    let Some(mut want) = desired_record(record, member, discovered.as_ref()) else {
                        continue;
                    };
                    want.health_check_id =
                        check.resolve(current.and_then(|c| c.health_check_id.as_deref()));
                    if current != Some(&want) {
                        record_changes.push(Change {
                            action: Action::Upsert,
                            record: want,
                        });
                    }
                    wanted_claims.insert(claim);
                }
                Intent::Withdraw => {
                    if let Some(c) = current {
                        record_changes.push(Change {
                            action: Action::Delete,
                            record: c.clone(),
                        });
                        // An adopted record becomes ours once we act on it.
                        wanted_claims.insert(claim);
                    }
                }
                Intent::Leave => {
                    // Published or not stays as it is; which check the
                    // record carries follows the config.
                    if let Some(c) = current {
                        let id = check.resolve(c.health_check_id.as_deref());
                        if c.health_check_id != id {
                            let mut moved = c.clone();
                            moved.health_check_id = id;
                            record_changes.push(Change {
                                action: Action::Upsert,
                                record: moved,
                            });
                            wanted_claims.insert(claim);
                        }
                    }
                }
            }
        }
    }

    // Claims of this owner that the config no longer names: the member was
    // removed, so its record goes and the claim with it.
    let stale: Vec<Claim> = wanted_claims
        .iter()
        .filter(|c| c.owner == owner && !configured.contains(c))
        .cloned()
        .collect();
    for c in stale {
        let key = RecordKey {
            name: c.name.clone(),
            rtype: c.rtype.clone(),
            set_identifier: Some(c.set_identifier.clone()),
        };
        if let Some(r) = observed.records.get(&key) {
            record_changes.push(Change {
                action: Action::Delete,
                record: r.clone(),
            });
        }
        wanted_claims.remove(&c);
    }

    let (grow, shrink) = marker_changes(owner, observed, &wanted_claims);
    let mut changes = grow;
    changes.extend(record_changes);
    changes.extend(shrink);
    changes
}

/// Splits changes into batches within Route53's limits, keeping their order.
pub fn batches(changes: Vec<Change>) -> Vec<Vec<Change>> {
    let mut out: Vec<Vec<Change>> = Vec::new();
    let (mut records, mut chars) = (0, 0);
    for c in changes {
        let (r, ch) = change_weight(&c);
        let fits = records + r <= MAX_BATCH_RECORDS && chars + ch <= MAX_BATCH_CHARS;
        match out.last_mut() {
            Some(batch) if fits => batch.push(c),
            _ => {
                records = 0;
                chars = 0;
                out.push(vec![c]);
            }
        }
        records += r;
        chars += ch;
    }
    out
}

#[cfg(test)]
mod tests;
