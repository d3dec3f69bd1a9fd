//! What a zone holds, and who owns what in it. Pure.
//!
//! Ownership: next to each managed name the daemon keeps a TXT marker,
//! `_route53-failover.<name>`, with one value per member it manages:
//! `"route53-failover owner=<owner> type=<type> set=<set identifier>"`.
//! A record with a configured set identifier but no claim of this owner is
//! someone else's (a conflict) unless the member says `adopt: true`, or the
//! marker is gone altogether and the zone holds exactly what the config
//! describes (the marker was lost: it is written again). Values of other
//! owners in a marker are kept as they are.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::{MemberConfig, RecordConfig};
use crate::provider::{Action, Change, RecordKey, RecordSet, RecordType};

const MARKER_PREFIX: &str = "_route53-failover.";
const MARKER_HERITAGE: &str = "route53-failover";
const MARKER_TTL: u32 = 300;

pub fn marker_name(record_name: &str) -> String {
    format!("{MARKER_PREFIX}{record_name}")
}

/// The record a marker's name claims for; `None` for any other name.
pub fn marked_record(name: &str) -> Option<&str> {
    name.strip_prefix(MARKER_PREFIX)
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

    pub(crate) fn marker(&self, record_name: &str) -> Option<&RecordSet> {
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

pub fn claim_of(owner: &str, record: &RecordConfig, member: &MemberConfig) -> Claim {
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

/// `reclaim`: the record's marker was lost and what the zone holds is what
/// the config describes (`plan::reclaimable`): not a conflict.
pub fn ownership(
    observed: &Observed,
    claims: &BTreeSet<Claim>,
    owner: &str,
    record: &RecordConfig,
    member: &MemberConfig,
    reclaim: bool,
) -> Ownership {
    let present = observed.member_record(record, member).is_some();
    let owned = claims.contains(&claim_of(owner, record, member));
    Ownership {
        present,
        owned,
        conflict: present && !owned && !member.adopt && !reclaim,
    }
}

/// Marker changes: (those that add a claim, those that only remove claims).
/// A claim of a record the zone still holds is never removed by the plan
/// (`plan::plan_zone`), so the second kind can land anywhere.
pub fn marker_changes(
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
                // A marker not there is created, not upserted: should
                // another writer make it meanwhile, the batch fails and the
                // zone is read again, instead of its claims being lost.
                let action = if current.is_some() {
                    Action::Upsert
                } else {
                    Action::Create
                };
                let change = Change {
                    action,
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

/// The changes that retire this owner's records of `name` (of `rtype`, or
/// of every type): each record it claims, and those claims, in one batch;
/// other owners' claims and records stay. The one deliberate emptying of
/// a record: on-call's, for a record the config no longer manages.
pub fn retirement(
    owner: &str,
    observed: &Observed,
    name: &str,
    rtype: Option<&RecordType>,
) -> Vec<Change> {
    let retired: Vec<Claim> = observed
        .claims()
        .into_iter()
        .filter(|c| c.owner == owner && c.name == name && rtype.is_none_or(|t| c.rtype == *t))
        .collect();
    if retired.is_empty() {
        return Vec::new();
    }
    let mut changes: Vec<Change> = retired
        .iter()
        .filter_map(|c| {
            observed.records.get(&RecordKey {
                name: c.name.clone(),
                rtype: c.rtype.clone(),
                set_identifier: Some(c.set_identifier.clone()),
            })
        })
        .map(|r| Change {
            action: Action::Delete,
            record: r.clone(),
        })
        .collect();
    if let Some(marker) = observed.marker(name) {
        let gone: Vec<String> = retired.iter().map(Claim::value).collect();
        let left: Vec<String> = marker
            .values
            .iter()
            .filter(|v| !gone.contains(v))
            .cloned()
            .collect();
        changes.push(if left.is_empty() {
            Change {
                action: Action::Delete,
                record: marker.clone(),
            }
        } else {
            Change {
                action: Action::Upsert,
                record: RecordSet {
                    values: left,
                    ..marker.clone()
                },
            }
        });
    }
    changes
}
