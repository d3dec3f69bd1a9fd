//! Decisions vs what a zone holds → the changes that move one to the other
//! (records and their ownership claims), split into batches within
//! Route53's limits. Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{MemberConfig, RecordConfig, Target};
use crate::decide::ownership::{
    claim_of, marked_record, marker_changes, ownership, Claim, Observed,
};
use crate::decide::policy::Intent;
use crate::provider::{
    change_weight, Action, AliasTarget, Change, RecordKey, RecordSet, RecordType, MAX_BATCH_CHARS,
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

/// A zone's plan: the changes, and what it leaves alone on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZonePlan {
    /// In the order they must land: markers that add claims, records
    /// published, records deleted, markers that only drop the claims of
    /// records already gone. Split anywhere in that order, no prefix of it
    /// leaves a record with nothing (see [`keep_nonempty`]).
    pub changes: Vec<Change>,
    /// Records under a name and type the config manages that no configured
    /// member names any more (a member removed, or renamed by a reload):
    /// they go once the record holds another member, and stay until then.
    pub retiring: Vec<RecordKey>,
    /// Names and types that hold this owner's claims but that the config
    /// does not manage at all: left as they are until on-call retires them.
    pub orphaned: Vec<(String, RecordType)>,
    /// Changes [`keep_answering`] refused although the policy asked for
    /// them; never expected (the policy keeps a member that answers), and
    /// logged if so.
    pub refused: Vec<Change>,
}

/// The changes for one zone, claims first, so a record is never written
/// without its claim; a claim goes only once its record is gone, so a plan
/// cut short (a batch rejected, a crash) never leaves a record unclaimed.
pub fn plan_zone(owner: &str, observed: &Observed, records: &[RecordIntents<'_>]) -> ZonePlan {
    plan_zone_answering(owner, observed, records, &|_| Some(true))
}

/// [`plan_zone`] where a record answers only when `answers` says so
/// (switches: [`keep_answering`]).
pub fn plan_zone_answering(
    owner: &str,
    observed: &Observed,
    records: &[RecordIntents<'_>],
    answers: Answers<'_>,
) -> ZonePlan {
    let claims = observed.claims();
    let ours: BTreeSet<Claim> = claims
        .iter()
        .filter(|c| c.owner == owner)
        .cloned()
        .collect();
    let mut wanted_claims = ours.clone();
    let managed: BTreeSet<(&str, &RecordType)> = records
        .iter()
        .map(|ri| (ri.record.name.as_str(), &ri.record.rtype))
        .collect();
    let mut configured: BTreeSet<Claim> = BTreeSet::new();
    let (mut upserts, mut deletes) = (Vec::new(), Vec::new());

    for ri in records {
        let record = ri.record;
        let reclaim = reclaimable(observed, record, &ri.discovered);
        let members = record.members.iter().zip(&ri.intents);
        for ((member, intent), (discovered, check)) in
            members.zip(ri.discovered.iter().zip(&ri.checks))
        {
            let own = ownership(observed, &claims, owner, record, member, reclaim);
            let claim = claim_of(owner, record, member);
            configured.insert(claim.clone());
            if own.conflict {
                continue;
            }
            if reclaim && own.present {
                // The lost marker is written again, whatever the verdict.
                wanted_claims.insert(claim.clone());
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
                        upserts.push(Change {
                            action: Action::Upsert,
                            record: want,
                        });
                    }
                    wanted_claims.insert(claim);
                }
                Intent::Withdraw => {
                    if let Some(c) = current {
                        deletes.push(Change {
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
                            upserts.push(Change {
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

    // Claims of this owner the config no longer names. Under a name and
    // type it manages, the member was removed or renamed: its record goes
    // (while the record keeps another, below), its claim once the record is
    // gone. Under a name it does not manage, nothing is touched: the name
    // may be another install's with the same owner, or one the operator
    // has not retired yet.
    let mut stale = Vec::new();
    let mut orphaned = BTreeSet::new();
    for c in ours.iter().filter(|c| !configured.contains(c)) {
        if !managed.contains(&(c.name.as_str(), &c.rtype)) {
            orphaned.insert((c.name.clone(), c.rtype.clone()));
            continue;
        }
        let key = RecordKey {
            name: c.name.clone(),
            rtype: c.rtype.clone(),
            set_identifier: Some(c.set_identifier.clone()),
        };
        match observed.records.get(&key) {
            Some(r) => {
                stale.push(key);
                deletes.push(Change {
                    action: Action::Delete,
                    record: r.clone(),
                });
            }
            None => {
                wanted_claims.remove(c);
            }
        }
    }
    let kept = keep_answering(observed, &mut upserts, &mut deletes, answers);
    let (retiring, refused): (Vec<Change>, Vec<Change>) = kept
        .into_iter()
        .partition(|c| stale.contains(&c.record.key()));

    let (grow, shrink) = marker_changes(owner, observed, &wanted_claims);
    let mut changes = grow;
    changes.extend(upserts);
    changes.extend(deletes);
    changes.extend(shrink);
    ZonePlan {
        changes,
        retiring: retiring.into_iter().map(|c| c.record.key()).collect(),
        orphaned: orphaned.into_iter().collect(),
        refused,
    }
}

/// Whether a record whose ownership marker is gone altogether is still
/// this config's: every record the zone holds under its name and type is
/// exactly what a configured member would write (its health check aside).
/// Then the marker was lost (deleted by hand, or by another tool), and
/// failover must not stop for it: the claims are written again, with a
/// `CREATE` that fails should anyone else write a marker meanwhile.
/// Anything else stays a conflict, and left alone.
pub fn reclaimable(
    observed: &Observed,
    record: &RecordConfig,
    discovered: &[Option<AliasTarget>],
) -> bool {
    if observed.marker(&record.name).is_some() {
        return false;
    }
    let mut held = observed
        .records
        .values()
        .filter(|r| r.name == record.name && r.rtype == record.rtype)
        .peekable();
    held.peek().is_some()
        && held.all(|r| {
            record.members.iter().zip(discovered).any(|(m, d)| {
                desired_record(record, m, d.as_ref()).is_some_and(|mut want| {
                    want.health_check_id = r.health_check_id.clone();
                    want == *r
                })
            })
        })
}

/// The rule that keeps a record from going empty, in the one place every
/// record change passes: [`keep_answering`] with every record counted as
/// answered (no lever).
pub fn keep_nonempty(
    observed: &Observed,
    upserts: &[Change],
    deletes: &mut Vec<Change>,
) -> Vec<Change> {
    let mut upserts = upserts.to_vec();
    keep_answering(observed, &mut upserts, deletes, &|_| Some(true))
}

/// Whether Route53 answers with a record as it stands: `Some(true)` when
/// its check passes (no check of this owner drives it, or the switch it
/// follows is known On), `Some(false)` when it fails, `None` when that is
/// not known (the switch's state is not).
pub type Answers<'a> = &'a dyn Fn(&RecordSet) -> Option<bool>;

/// The rule that keeps a record answering, in the one place every record
/// change passes. Route53 answers a name with the records whose checks
/// pass; when none passes it fails open and answers with all of them, the
/// failed region's included. So a name and type the zone holds records of
/// keeps at least one after the plan and at least one known to answer
/// after it; or none of its deletions go, nor the upserts that move a
/// record onto a check not known to pass (it stays as it is). Whether one
/// answers *now* is not asked: a switch believed Off may have been turned
/// On by hand since it was read, and its record be the one answering (the
/// lever property test found a rename deleting it and failing the name
/// open). Holding changes while nothing is known to answer costs nothing:
/// the name fails open either way.
/// Upserts that bring a record into the answer are put first, and
/// publishes land before deletions, so no prefix of the plan (a split, a
/// batch rejected halfway) breaks it either. Returns the changes taken out.
pub fn keep_answering(
    observed: &Observed,
    upserts: &mut Vec<Change>,
    deletes: &mut Vec<Change>,
    answers: Answers<'_>,
) -> Vec<Change> {
    type Group<'r> = (&'r str, &'r RecordType);
    let group = |r: &RecordSet| (r.name.clone(), r.rtype.clone());
    // Per group: records held before; records held and any known to
    // answer, after.
    let mut before: BTreeMap<Group<'_>, usize> = BTreeMap::new();
    for r in observed.records.values() {
        *before.entry((r.name.as_str(), &r.rtype)).or_default() += 1;
    }
    let mut after: BTreeMap<RecordKey, &RecordSet> = observed
        .records
        .iter()
        .map(|(k, r)| (k.clone(), r))
        .collect();
    for u in upserts.iter() {
        after.insert(u.record.key(), &u.record);
    }
    for d in deletes.iter() {
        after.remove(&d.record.key());
    }
    let mut left: BTreeMap<Group<'_>, (usize, bool)> = BTreeMap::new();
    for r in after.values() {
        let g = left.entry((r.name.as_str(), &r.rtype)).or_default();
        g.0 += 1;
        g.1 |= answers(r) == Some(true);
    }
    let held: BTreeSet<(String, RecordType)> = before
        .iter()
        .filter(|(g, n)| {
            let (m, answering) = left.get(*g).copied().unwrap_or_default();
            **n > 0 && (m == 0 || !answering)
        })
        .map(|((name, rtype), _)| (name.to_string(), (*rtype).clone()))
        .collect();
    // Into the answer first, out of it last.
    let leaves = |c: &Change| {
        observed.records.get(&c.record.key()).is_some_and(|r| {
            r.health_check_id != c.record.health_check_id
                && answers(r) != Some(false)
                && answers(&c.record) != Some(true)
        })
    };
    upserts.sort_by_key(|c| leaves(c));
    if held.is_empty() {
        return Vec::new();
    }
    let mut refused = Vec::new();
    for list in [&mut *upserts, &mut *deletes] {
        let (out, keep): (Vec<Change>, Vec<Change>) =
            std::mem::take(list).into_iter().partition(|c| {
                held.contains(&group(&c.record)) && (c.action == Action::Delete || leaves(c))
            });
        *list = keep;
        refused.extend(out);
    }
    refused
}

/// The changes of one record name (its types and its ownership marker),
/// in the plan's order: what a rejection is held against
/// (`controller::reconcile` (isolate)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChanges {
    pub name: String,
    pub changes: Vec<Change>,
}

impl RecordChanges {
    /// Names these exact changes: the same rejected changes are not sent
    /// again, changed ones are.
    pub fn fingerprint(&self) -> String {
        let text: Vec<String> = self.changes.iter().map(|c| format!("{c:?}")).collect();
        crate::config::short_digest(text.join("\n").as_bytes())
    }

    /// Whether it withdraws a member (a latency record deleted).
    pub fn withdraws(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.action == Action::Delete && c.record.set_identifier.is_some())
    }
}

/// The record name a change is about: its own, or the one its marker
/// claims for.
pub fn record_of(change: &Change) -> &str {
    marked_record(&change.record.name).unwrap_or(&change.record.name)
}

/// Changes grouped by the record name they are about (a marker counts for
/// the record it claims for), each group in the plan's order; groups that
/// withdraw come first, the others in the order they first appear.
pub fn by_record(changes: Vec<Change>) -> Vec<RecordChanges> {
    let mut groups: Vec<RecordChanges> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for c in changes {
        let name = record_of(&c).to_string();
        match at.get(&name) {
            Some(&i) => groups[i].changes.push(c),
            None => {
                at.insert(name.clone(), groups.len());
                groups.push(RecordChanges {
                    name,
                    changes: vec![c],
                });
            }
        }
    }
    let (mut first, rest): (Vec<_>, Vec<_>) = groups.into_iter().partition(|g| g.withdraws());
    first.extend(rest);
    first
}

/// Packs whole groups into batches within Route53's limits, in order. A
/// group too large for one batch (never one latency set: a name holds at
/// most one record per region and type) is a batch of its own, which the
/// apply splits again in the plan's order.
pub fn group_batches(groups: Vec<RecordChanges>) -> Vec<Vec<RecordChanges>> {
    pack(groups, MAX_BATCH_RECORDS, MAX_BATCH_CHARS, |g| {
        g.changes
            .iter()
            .map(change_weight)
            .fold((0, 0), |a, w| (a.0 + w.0, a.1 + w.1))
    })
}

/// Splits changes into batches within Route53's limits, keeping their order
/// (which [`plan_zone`] makes safe to cut anywhere).
pub fn batches(changes: Vec<Change>) -> Vec<Vec<Change>> {
    batches_within(changes, MAX_BATCH_RECORDS, MAX_BATCH_CHARS)
}

/// [`batches`] with other limits (tests cut small plans this way).
pub fn batches_within(
    changes: Vec<Change>,
    max_records: usize,
    max_chars: usize,
) -> Vec<Vec<Change>> {
    pack(changes, max_records, max_chars, change_weight)
}

/// Packs items into batches in order, each within `max_records` and
/// `max_chars` by `weight` (an item heavier than a batch is one alone).
fn pack<T>(
    items: Vec<T>,
    max_records: usize,
    max_chars: usize,
    weight: impl Fn(&T) -> (usize, usize),
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let (mut records, mut chars) = (0, 0);
    for item in items {
        let (r, ch) = weight(&item);
        let fits = records + r <= max_records && chars + ch <= max_chars;
        match out.last_mut() {
            Some(batch) if fits => batch.push(item),
            _ => {
                records = 0;
                chars = 0;
                out.push(vec![item]);
            }
        }
        records += r;
        chars += ch;
    }
    out
}

#[cfg(test)]
mod tests;
