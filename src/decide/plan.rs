//! Decision vs what a zone holds → the changes that move one to the other,
//! split into batches within Route53's limits. Pure.
//!
//! Ownership: next to each managed name the daemon keeps a TXT marker,
//! `_route53-failover.<name>`, with one value per member it manages:
//! `"route53-failover owner=<owner> type=<type> set=<set identifier>"`.
//! A record with a configured set identifier but no claim of this owner is
//! someone else's (a conflict) unless the member says `adopt: true`. Values
//! of other owners in a marker are kept as they are.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::{MemberConfig, RecordConfig, Target};
use crate::decide::policy::{Intent, MemberInput};
use crate::decide::verdict::Verdict;
use crate::provider::{
    change_weight, Action, AliasTarget, Change, RecordKey, RecordSet, RecordType, MAX_BATCH_CHARS,
    MAX_BATCH_RECORDS,
};

const MARKER_PREFIX: &str = "_route53-failover.";
const MARKER_HERITAGE: &str = "route53-failover";
const MARKER_TTL: u32 = 300;

pub fn marker_name(record_name: &str) -> String {
    format!("{MARKER_PREFIX}{record_name}")
}

/// One claim in a marker: this owner manages (name, type, set identifier).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Claim {
    pub owner: String,
    pub name: String,
    pub rtype: RecordType,
    pub set_identifier: String,
}

impl Claim {
    fn value(&self) -> String {
        format!(
            "\"{MARKER_HERITAGE} owner={} type={} set={}\"",
            self.owner, self.rtype, self.set_identifier
        )
    }

    fn parse(name: &str, value: &str) -> Option<Claim> {
        let inner = value.strip_prefix('"')?.strip_suffix('"')?;
        let mut words = inner.split_whitespace();
        if words.next()? != MARKER_HERITAGE {
            return None;
        }
        let mut fields = HashMap::new();
        for w in words {
            let (k, v) = w.split_once('=')?;
            fields.insert(k, v);
        }
        Some(Claim {
            owner: fields.get("owner")?.to_string(),
            name: name.to_string(),
            rtype: RecordType::from(fields.get("type")?.to_string()),
            set_identifier: fields.get("set")?.to_string(),
        })
    }
}

/// What a zone holds, indexed for planning.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub records: BTreeMap<RecordKey, RecordSet>,
}

impl Observed {
    pub fn new(records: Vec<RecordSet>) -> Self {
        Observed {
            records: records.into_iter().map(|r| (r.key(), r)).collect(),
        }
    }

    /// Applies accepted changes, so the next plan starts from what the zone
    /// now holds without reading it again.
    pub fn apply(&mut self, changes: &[Change]) {
        for c in changes {
            match c.action {
                Action::Delete => {
                    self.records.remove(&c.record.key());
                }
                Action::Create | Action::Upsert => {
                    self.records.insert(c.record.key(), c.record.clone());
                }
            }
        }
    }

    fn marker(&self, record_name: &str) -> Option<&RecordSet> {
        self.records.get(&RecordKey {
            name: marker_name(record_name),
            rtype: RecordType::Txt,
            set_identifier: None,
        })
    }

    /// Every claim in every marker of the zone.
    pub fn claims(&self) -> BTreeSet<Claim> {
        self.records
            .values()
            .filter(|r| r.rtype == RecordType::Txt && r.set_identifier.is_none())
            .filter_map(|r| Some((r.name.strip_prefix(MARKER_PREFIX)?, r)))
            .flat_map(|(name, r)| r.values.iter().filter_map(|v| Claim::parse(name, v)))
            .collect()
    }

    /// The record Route53 holds for a member, if any.
    pub fn member_record(
        &self,
        record: &RecordConfig,
        member: &MemberConfig,
    ) -> Option<&RecordSet> {
        self.records.get(&member_key(record, member))
    }
}

pub fn member_key(record: &RecordConfig, member: &MemberConfig) -> RecordKey {
    RecordKey {
        name: record.name.clone(),
        rtype: record.rtype.clone(),
        set_identifier: Some(member.set_identifier.clone()),
    }
}

fn claim_of(owner: &str, record: &RecordConfig, member: &MemberConfig) -> Claim {
    Claim {
        owner: owner.to_string(),
        name: record.name.clone(),
        rtype: record.rtype.clone(),
        set_identifier: member.set_identifier.clone(),
    }
}

/// How a member's set identifier stands in the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Route53 holds a record for it.
    pub present: bool,
    /// This owner claims it.
    pub owned: bool,
    /// Present, not claimed, and not to be adopted: someone else's.
    pub conflict: bool,
}

pub fn ownership(
    observed: &Observed,
    claims: &BTreeSet<Claim>,
    owner: &str,
    record: &RecordConfig,
    member: &MemberConfig,
) -> Ownership {
    let present = observed.member_record(record, member).is_some();
    let owned = claims.contains(&claim_of(owner, record, member));
    Ownership {
        present,
        owned,
        conflict: present && !owned && !member.adopt,
    }
}

/// The policy's inputs for one record: each member's verdict with how its
/// set identifier stands in the zone. A member whose API Gateway target is
/// not discovered counts as `unknown`: there is nothing to point its record
/// at, so Route53 keeps what it holds.
pub fn member_inputs(
    observed: &Observed,
    claims: &BTreeSet<Claim>,
    owner: &str,
    record: &RecordConfig,
    verdicts: &[Verdict],
    discovered: &[Option<AliasTarget>],
) -> Vec<MemberInput> {
    record
        .members
        .iter()
        .zip(verdicts)
        .zip(discovered)
        .map(|((member, verdict), discovered)| {
            let own = ownership(observed, claims, owner, record, member);
            let undiscovered =
                matches!(member.target, Target::ApiGateway { .. }) && discovered.is_none();
            MemberInput {
                verdict: if undiscovered {
                    Verdict::Unknown
                } else {
                    *verdict
                },
                published: own.present,
                conflict: own.conflict,
            }
        })
        .collect()
}

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

/// Marker changes: (those that add a claim, those that only remove claims).
fn marker_changes(
    owner: &str,
    observed: &Observed,
    wanted: &BTreeSet<Claim>,
) -> (Vec<Change>, Vec<Change>) {
    let mut names: BTreeSet<&str> = wanted.iter().map(|c| c.name.as_str()).collect();
    let existing_ours: Vec<Claim> = observed
        .claims()
        .into_iter()
        .filter(|c| c.owner == owner)
        .collect();
    names.extend(existing_ours.iter().map(|c| c.name.as_str()));

    let (mut grow, mut shrink) = (Vec::new(), Vec::new());
    for name in names {
        let current = observed.marker(name);
        // Values that are not this owner's claims stay as they are.
        let mut values: Vec<String> = current
            .map(|m| {
                m.values
                    .iter()
                    .filter(|v| Claim::parse(name, v).is_none_or(|c| c.owner != owner))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let ours: Vec<String> = wanted
            .iter()
            .filter(|c| c.name == name)
            .map(Claim::value)
            .collect();
        values.extend(ours.iter().cloned());
        values.sort();
        values.dedup();
        let adds = ours
            .iter()
            .any(|v| current.is_none_or(|m| !m.values.contains(v)));
        match current {
            Some(m) if values.is_empty() => shrink.push(Change {
                action: Action::Delete,
                record: m.clone(),
            }),
            None if values.is_empty() => {}
            _ => {
                let mut current_values = current.map(|m| m.values.clone()).unwrap_or_default();
                current_values.sort();
                if current_values == values {
                    continue;
                }
                let change = Change {
                    action: Action::Upsert,
                    record: RecordSet {
                        name: marker_name(name),
                        rtype: RecordType::Txt,
                        set_identifier: None,
                        region: None,
                        ttl: Some(current.and_then(|m| m.ttl).unwrap_or(MARKER_TTL)),
                        values,
                        alias: None,
                        health_check_id: None,
                    },
                };
                if adds {
                    grow.push(change)
                } else {
                    shrink.push(change)
                }
            }
        }
    }
    (grow, shrink)
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
