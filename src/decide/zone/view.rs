//! What is known of a zone's members when it is decided ([`MemberView`],
//! gathered once by [`gather`]), and the policy's inputs worked out from
//! it and from what the zone holds ([`member_inputs`]).

use std::collections::BTreeSet;

use crate::config::{RecordConfig, Target};
use crate::decide::health_check as hc;
use crate::decide::lever::{self, Switch};
use crate::decide::ownership::{ownership, Claim, Observed};
use crate::decide::plan::reclaimable;
use crate::decide::policy::{Drain, MemberInput};
use crate::decide::verdict::Verdict;
use crate::provider::{AliasTarget, HealthCheck};

/// What is known of one member when its zone is decided: one row per
/// member, gathered once (`controller` for a reconcile, `plan` for a
/// preview) and read by every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The verdict the writer acts on: the quorum's with `ha`
    /// (`decide::quorum`), else this instance's.
    pub verdict: Verdict,
    /// That verdict differs from this instance's own: the decision says
    /// `quorum`.
    pub overruled: bool,
    /// An API Gateway target's regional endpoint, once discovered.
    pub discovered: Option<AliasTarget>,
    /// Flap damping holds the member out now (`decide::damping`).
    pub damped: bool,
    /// On-call drained the member (`decide::controls`).
    pub drain: Drain,
    /// Its failure is not corroborated by anything this instance still
    /// reaches (`decide::correlated`): its withdrawal waits, `correlated`.
    pub uncorroborated: bool,
    /// Its routing control's state as last known (`decide::lever`);
    /// `None`: the member has none.
    pub switch: Option<Switch>,
}

impl MemberView {
    /// A member with this verdict and nothing else known of it.
    pub fn new(verdict: Verdict) -> Self {
        MemberView {
            verdict,
            overruled: false,
            discovered: None,
            damped: false,
            drain: Drain::No,
            uncorroborated: false,
            switch: None,
        }
    }
}

/// What a caller knows of one member, before on-call's controls: the
/// rest of its [`MemberView`] is worked out by [`gather`].
#[derive(Debug, Clone)]
pub struct MemberFacts {
    /// This instance's own verdict.
    pub own: Verdict,
    /// The verdict the writer acts on (the quorum's with `ha`).
    pub agreed: Verdict,
    pub discovered: Option<AliasTarget>,
    pub damped: bool,
    pub uncorroborated: bool,
    pub switch: Option<Switch>,
}

/// The decision's rows, gathered one way for the reconciler and for
/// `plan`: per record of `records` (indices into `config.records`), its
/// members' views from `facts(record, member)` and on-call's `controls`
/// as they stand at `now`.
pub fn gather<'c>(
    config: &'c crate::config::Config,
    records: &[usize],
    controls: &crate::decide::controls::Controls,
    now: std::time::SystemTime,
    mut facts: impl FnMut(usize, usize) -> MemberFacts,
) -> Vec<RecordView<'c>> {
    records
        .iter()
        .map(|&ri| {
            let record = &config.records[ri];
            let members = record
                .members
                .iter()
                .enumerate()
                .map(|(mi, m)| {
                    let f = facts(ri, mi);
                    MemberView {
                        verdict: f.agreed,
                        overruled: f.own != Verdict::Unknown
                            && f.agreed != Verdict::Unknown
                            && f.own != f.agreed,
                        discovered: f.discovered,
                        damped: f.damped,
                        drain: controls.drain_of(record, m, now),
                        uncorroborated: f.uncorroborated,
                        switch: f.switch,
                    }
                })
                .collect();
            RecordView {
                record,
                members,
                frozen: controls.freeze(&record.name, now).is_some(),
            }
        })
        .collect()
}

/// One record and what is known of its members (in the config's order).
#[derive(Debug, Clone)]
pub struct RecordView<'c> {
    pub record: &'c RecordConfig,
    pub members: Vec<MemberView>,
    /// On-call froze the record: decided, but nothing of it changes.
    pub frozen: bool,
}

/// Whether the member's record is present and carries its switch's check
/// (`decide::lever`: only then does the switch drive it).
pub fn wired(
    observed: &Observed,
    checks: &[HealthCheck],
    record: &RecordConfig,
    member: &crate::config::MemberConfig,
) -> bool {
    let Some(arn) = &member.routing_control else {
        return false;
    };
    observed
        .member_record(record, member)
        .and_then(|r| r.health_check_id.as_deref())
        .is_some_and(|id| hc::carries_switch(checks, id, arn))
}

/// The policy's inputs for one record: each member's verdict with how its
/// set identifier stands in the zone. A member whose API Gateway target is
/// not discovered counts as `unknown`: there is nothing to point its record
/// at, so Route53 keeps what it holds.
pub fn member_inputs(
    observed: &Observed,
    checks: &[HealthCheck],
    claims: &BTreeSet<Claim>,
    owner: &str,
    view: &RecordView<'_>,
) -> Vec<MemberInput> {
    let record = view.record;
    let discovered: Vec<Option<AliasTarget>> =
        view.members.iter().map(|m| m.discovered.clone()).collect();
    let reclaim = reclaimable(observed, record, &discovered);
    record
        .members
        .iter()
        .zip(&view.members)
        .map(|(member, m)| {
            let own = ownership(observed, claims, owner, record, member, reclaim);
            let undiscovered =
                matches!(member.target, Target::ApiGateway { .. }) && m.discovered.is_none();
            MemberInput {
                verdict: if undiscovered {
                    Verdict::Unknown
                } else {
                    m.verdict
                },
                published: lever::answered(
                    own.present,
                    m.switch.filter(|_| wired(observed, checks, record, member)),
                ),
                conflict: own.conflict,
                damped: m.damped,
                drain: m.drain,
            }
        })
        .collect()
}
