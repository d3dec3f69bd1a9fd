//! One zone's decision, whole: every record's policy decisions, every
//! member's health check step, and the record changes, from what the zone
//! holds and what is known of the members. Pure: one value comes back, and
//! no step reads what another wrote into shared state.
//!
//! The reconciler carries the value out in an order the types hold: the
//! record changes first (a withdrawal never waits on a health check call),
//! then [`ZoneDecision::records_applied`], the health check calls
//! ([`RecordsApplied::check_made`]) and [`RecordsApplied::replan`] for the
//! records that attach what those calls made, then the deletion of checks
//! nothing uses. The `plan` command prints the same value.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::config::LeverMode;
use crate::config::RecordConfig;
use crate::decide::health_check::{self as hc, Step};
use crate::decide::lever::{self, Switch};
use crate::decide::ownership::{marker_name, Observed};
use crate::decide::plan::{plan_zone_answering, Attach, RecordIntents};
use crate::decide::policy::{self, Drain, Intent, MemberDecision, MemberInput, Safety, Why};
use crate::decide::verdict::Verdict;
use crate::provider::{Change, HealthCheck, RecordKey, RecordType};

/// Everything one zone's decision depends on.
pub struct ZoneInputs<'c, 'z> {
    pub owner: &'c str,
    pub zone_id: &'z str,
    /// What the zone holds: as last read, plus this daemon's writes since.
    pub observed: &'z Observed,
    /// This owner's health checks for the zone.
    pub checks: &'z [HealthCheck],
    pub records: Vec<RecordView<'c>>,
    /// The data-plane lever's mode; `None`: no lever configured.
    pub lever: Option<LeverMode>,
}

/// What was decided for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOutcome {
    pub decision: MemberDecision,
    /// The zone holds a record with this member's set identifier that this
    /// owner does not own: it is left alone.
    pub conflict: bool,
    /// The health check the member's record carries once the changes are
    /// applied.
    pub check: Option<String>,
}

/// A member whose health check needs a call (create or update) before
/// its record can carry it. Until then the record keeps what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCall {
    /// Where the member is: `ZoneInputs::records[record].record.members[member]`.
    pub record: usize,
    pub member: usize,
    /// The reference prefix of the member's checks.
    pub prefix: String,
    /// `Step::Create` or `Step::Update`.
    pub step: Step,
    /// The record carries what the call makes; `false`: a child of the
    /// member's calculated check (`hc::children`), which the record
    /// carries through it once both children exist.
    pub attach: bool,
}

/// A routing control the decision sets (`decide::lever`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchCall {
    pub record: usize,
    pub member: usize,
    pub arn: String,
    pub want: Switch,
    /// A forced drain: ARC's safety rules may be overridden for it, when
    /// the config allows (`routing_control.allow_safety_override`).
    pub forced: bool,
}

/// One zone's decision.
#[derive(Debug)]
pub struct ZoneDecision<'c> {
    /// Per record: the policy's intent and the check each member's record
    /// carries (what `changes` was planned from).
    pub records: Vec<RecordIntents<'c>>,
    /// Per record, per member.
    pub members: Vec<Vec<MemberOutcome>>,
    /// Health check creates and updates to make, in member order.
    pub calls: Vec<CheckCall>,
    /// The record changes, in the order they must land (not yet split
    /// into batches; `plan::plan_zone`).
    pub changes: Vec<Change>,
    /// Records of members removed or renamed, kept while they are their
    /// record's last (`plan::ZonePlan::retiring`).
    pub retiring: Vec<RecordKey>,
    /// Names with this owner's claims the config does not manage.
    pub orphaned: Vec<(String, RecordType)>,
    /// Changes the answering rule refused (`plan::keep_answering`).
    pub refused: Vec<Change>,
    /// What a freeze holds back: the changes of frozen records, and their
    /// members' health check calls (left out of `changes` and `calls`).
    pub held: Vec<Change>,
    pub held_calls: Vec<CheckCall>,
    /// The state every switch of an unfrozen record should have (those
    /// the decision leaves as they are are not listed).
    pub switches: Vec<SwitchCall>,
    /// The switches the lever leaves as they are, so no earlier want is
    /// carried out on them: those of frozen records (a switch on-call
    /// flips by hand during a freeze is not set back), and those whose
    /// member's decision sets nothing (`lever::switch_for`: left, or a
    /// withdrawal whose switch is not known).
    pub held_switches: Vec<String>,
    /// Owned checks some member uses or may still use.
    keep: HashSet<String>,
    /// Which switch each owned check follows, and each switch as counted:
    /// whether Route53 answers with a record (`plan::keep_answering`).
    carried: HashMap<String, String>,
    counted: HashMap<String, Switch>,
    /// The names of frozen records.
    frozen: BTreeSet<String>,
}

/// Decides one zone.
pub fn decide<'c>(inputs: &ZoneInputs<'c, '_>) -> ZoneDecision<'c> {
    let claims = inputs.observed.claims();
    let zone_prefix = hc::zone_prefix(inputs.owner, inputs.zone_id);
    let mut d = ZoneDecision {
        records: Vec::with_capacity(inputs.records.len()),
        members: Vec::with_capacity(inputs.records.len()),
        calls: Vec::new(),
        changes: Vec::new(),
        retiring: Vec::new(),
        orphaned: Vec::new(),
        refused: Vec::new(),
        held: Vec::new(),
        held_calls: Vec::new(),
        switches: Vec::new(),
        held_switches: Vec::new(),
        keep: HashSet::new(),
        carried: inputs
            .checks
            .iter()
            .filter_map(|c| {
                Some((
                    c.id.clone(),
                    hc::switch_of(inputs.checks, &c.id)?.to_string(),
                ))
            })
            .collect(),
        counted: inputs
            .records
            .iter()
            .flat_map(|v| v.record.members.iter().zip(&v.members))
            .filter_map(|(m, v)| Some((m.routing_control.clone()?, v.switch?)))
            .collect(),
        frozen: BTreeSet::new(),
    };
    for (pos, view) in inputs.records.iter().enumerate() {
        let record = view.record;
        let policy_inputs =
            member_inputs(inputs.observed, inputs.checks, &claims, inputs.owner, view);
        let lever = inputs.lever;
        let wired: Vec<bool> = record
            .members
            .iter()
            .map(|m| lever.is_some() && wired(inputs.observed, inputs.checks, record, m))
            .collect();
        if view.frozen {
            d.frozen.insert(record.name.clone());
            if lever.is_some() {
                d.held_switches.extend(
                    record
                        .members
                        .iter()
                        .filter_map(|m| m.routing_control.clone()),
                );
            }
        }
        let mut decisions = decide_record(record, &policy_inputs, &view.members);
        for ((d, m), &wired) in decisions.iter_mut().zip(&view.members).zip(&wired) {
            if m.overruled && matches!(d.why, Why::Healthy | Why::Unhealthy) {
                d.why = Why::Quorum;
            }
            if let Some(known) = m.switch {
                lever::hold_unknown(d, wired, known);
            }
        }
        let mut intents = RecordIntents::new(
            record,
            decisions
                .iter()
                .zip(&wired)
                .map(|(d, &wired)| lever::record_intent(lever, wired, d.intent))
                .collect(),
        );
        if lever.is_some() && !view.frozen {
            let calls = switch_calls(pos, view, &policy_inputs, &decisions);
            d.held_switches.extend(
                record
                    .members
                    .iter()
                    .filter_map(|m| m.routing_control.clone())
                    .filter(|arn| !calls.iter().any(|c| &c.arn == arn)),
            );
            d.switches.extend(calls);
        }
        intents.discovered = view.members.iter().map(|m| m.discovered.clone()).collect();
        let mut outcomes = Vec::with_capacity(record.members.len());
        for (mi, member) in record.members.iter().enumerate() {
            let conflict = policy_inputs[mi].conflict;
            let referenced = inputs
                .observed
                .member_record(record, member)
                .and_then(|c| c.health_check_id.as_deref());
            let discovered = view.members[mi].discovered.as_ref();
            let want = match hc::children(member, conflict, discovered) {
                None => hc::want(member, conflict, discovered),
                Some(children) => {
                    // The endpoint check and the switch's first; the
                    // calculated check over them once both exist.
                    let mut ids = Vec::new();
                    for (slot, want) in children {
                        let prefix = hc::child_prefix(&zone_prefix, record, member, slot);
                        let (step, kept) = hc::step(inputs.checks, &prefix, &want, None);
                        d.keep.extend(kept);
                        match step {
                            Step::Use(id) => ids.push(id),
                            step @ (Step::Update { .. } | Step::Create { .. }) => {
                                if let Step::Update { id, .. } = &step {
                                    ids.push(id.clone());
                                }
                                let call = CheckCall {
                                    record: pos,
                                    member: mi,
                                    prefix,
                                    step,
                                    attach: false,
                                };
                                d.queue(inputs.checks, call, view.frozen);
                            }
                            Step::Keep | Step::Detach => {}
                        }
                    }
                    match <[String; 2]>::try_from(ids) {
                        Ok(ids) => hc::Want::Check(hc::calculated(ids)),
                        Err(_) => hc::Want::Unknown,
                    }
                }
            };
            let prefix = hc::member_prefix(&zone_prefix, record, member);
            let (step, kept) = hc::step(inputs.checks, &prefix, &want, referenced);
            d.keep.extend(kept);
            let attach = match step {
                Step::Detach => Attach::Detach,
                Step::Keep => Attach::Keep,
                Step::Use(id) => Attach::Check(id),
                step @ (Step::Update { .. } | Step::Create { .. }) => {
                    let call = CheckCall {
                        record: pos,
                        member: mi,
                        prefix,
                        step,
                        attach: true,
                    };
                    d.queue(inputs.checks, call, view.frozen);
                    Attach::Keep
                }
            };
            outcomes.push(MemberOutcome {
                decision: decisions[mi],
                conflict,
                check: attach.resolve(referenced),
            });
            intents.checks[mi] = attach;
        }
        d.records.push(intents);
        d.members.push(outcomes);
    }
    d.plan(inputs.owner, inputs.observed);
    d
}

/// The switch calls of one unfrozen record (`decide::lever`). A switch
/// goes Off only on what answers now: the plan may count on a member it
/// is about to publish, and that record may not land (the control plane
/// down) while the switch, the data plane's, lands at once. Such an Off
/// waits a pass.
fn switch_calls(
    pos: usize,
    view: &RecordView<'_>,
    inputs: &[MemberInput],
    decisions: &[MemberDecision],
) -> Vec<SwitchCall> {
    // What the safety rules allow member `mi`, counting only the members
    // that answer now (and `mi` itself) as there.
    let on_what_answers = |mi: usize| {
        let answering: Vec<MemberInput> = inputs
            .iter()
            .enumerate()
            .map(|(k, i)| MemberInput {
                verdict: if i.published || k == mi {
                    i.verdict
                } else {
                    Verdict::Unknown
                },
                ..*i
            })
            .collect();
        decide_record(view.record, &answering, &view.members)[mi].intent
    };
    let mut calls = Vec::new();
    for (mi, (dec, member)) in decisions.iter().zip(&view.record.members).enumerate() {
        let known = view.members[mi].switch.unwrap_or(Switch::Unknown);
        let off_waits = dec.intent == Intent::Withdraw && on_what_answers(mi) != Intent::Withdraw;
        if let (Some(arn), Some(want), false) = (
            &member.routing_control,
            lever::switch_for(dec.intent, known),
            off_waits,
        ) {
            calls.push(SwitchCall {
                record: pos,
                member: mi,
                arn: arn.clone(),
                want,
                forced: view.members[mi].drain == Drain::Forced,
            });
        }
    }
    calls
}

/// The policy's decisions for one record. A published member the policy
/// would withdraw for a failure that is not corroborated
/// (`decide::correlated`) is decided again as `unknown` (kept as Route53
/// holds it), its reason `correlated`: the failure may be this instance's
/// own. A withdrawal a safety rule refuses anyway keeps that rule's name.
fn decide_record(
    record: &RecordConfig,
    inputs: &[MemberInput],
    members: &[MemberView],
) -> Vec<policy::MemberDecision> {
    let safety = Safety::of(record);
    let decisions = policy::decide(safety, inputs);
    let held: Vec<bool> = inputs
        .iter()
        .zip(members)
        .zip(&decisions)
        .map(|((i, m), d)| {
            m.uncorroborated
                && i.published
                && d.intent == Intent::Withdraw
                && d.why == Why::Unhealthy
        })
        .collect();
    if !held.contains(&true) {
        return decisions;
    }
    let waiting: Vec<MemberInput> = inputs
        .iter()
        .zip(&held)
        .map(|(i, &held)| MemberInput {
            verdict: if held { Verdict::Unknown } else { i.verdict },
            ..*i
        })
        .collect();
    let mut decisions = policy::decide(safety, &waiting);
    for (d, &held) in decisions.iter_mut().zip(&held) {
        if held {
            d.why = Why::Correlated;
        }
    }
    decisions
}

mod applied;
mod view;
pub use applied::RecordsApplied;
pub use view::*;

#[cfg(test)]
mod lever_sequences;
#[cfg(test)]
mod sequences;
#[cfg(test)]
mod tests;
