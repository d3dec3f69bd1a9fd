//! What follows a zone's decision once its record changes went: the
//! health check calls, the follow-up plan that attaches what they made,
//! and the checks nothing uses any more.

use super::*;

/// A decision whose record changes have been carried out. What follows
/// comes in this order, and the types carry it: the health check calls
/// (`check_made` for each that made its check), then `replan`, whose
/// changes attach what they made and drop the claims of records now gone;
/// neither can happen before the records have gone (a withdrawal never
/// waits on a health check call).
pub struct RecordsApplied<'c>(ZoneDecision<'c>);

impl<'c> ZoneDecision<'c> {
    /// The record changes went (or were held out): the checks come next.
    pub fn records_applied(self) -> RecordsApplied<'c> {
        RecordsApplied(self)
    }
}

impl<'c> RecordsApplied<'c> {
    /// The decision as it stands.
    pub fn decision(&self) -> &ZoneDecision<'c> {
        &self.0
    }

    /// `call` made check `id` (`owned` includes it): the member's record
    /// carries it from the next plan on, and the member's other checks (the
    /// one replaced, a twin) may go once the record has moved.
    pub fn check_made(&mut self, call: &CheckCall, id: String, owned: &[HealthCheck]) {
        let d = &mut self.0;
        d.keep.insert(id.clone());
        if !call.attach {
            // A child: the calculated check over it comes next, and the
            // child it replaces goes only once that check has moved off it
            // (Route53 refuses to delete a child in use).
            return;
        }
        for other in hc::member_checks(owned, &call.prefix) {
            if other != id {
                d.keep.remove(&other);
            }
        }
        if let Some(arn) = &d.records[call.record].record.members[call.member].routing_control {
            d.carried.insert(id.clone(), arn.clone());
        }
        d.members[call.record][call.member].check = Some(id.clone());
        d.records[call.record].checks[call.member] = Attach::Check(id);
    }

    /// Plans the changes again against what the zone holds now (after the
    /// first changes were applied), so records take the checks just made:
    /// the follow-up decision.
    pub fn replan(mut self, owner: &str, observed: &Observed) -> ZoneDecision<'c> {
        self.0.plan(owner, observed);
        self.0
    }
}

impl ZoneDecision<'_> {
    /// A health check call to make, or to hold while its record is
    /// frozen. Until it is made, nothing under its prefix goes.
    pub(super) fn queue(&mut self, checks: &[HealthCheck], call: CheckCall, frozen: bool) {
        self.keep.extend(hc::member_checks(checks, &call.prefix));
        if frozen {
            self.held_calls.push(call);
        } else {
            self.calls.push(call);
        }
    }

    /// Plans the changes against what the zone holds. The changes of
    /// frozen records (their records and ownership markers) are held back.
    pub(super) fn plan(&mut self, owner: &str, observed: &Observed) {
        let answers = |r: &crate::provider::RecordSet| {
            match r
                .health_check_id
                .as_ref()
                .and_then(|id| self.carried.get(id))
            {
                None => Some(true),
                Some(arn) => match self.counted.get(arn) {
                    Some(Switch::On) => Some(true),
                    Some(Switch::Off) => Some(false),
                    // Not known, or not this config's (a removed member's).
                    _ => None,
                },
            }
        };
        let plan = plan_zone_answering(owner, observed, &self.records, &answers);
        self.retiring = plan.retiring;
        self.orphaned = plan.orphaned;
        self.refused = plan.refused;
        let all = plan.changes;
        if self.frozen.is_empty() {
            self.changes = all;
            return;
        }
        let frozen = |c: &Change| {
            self.frozen.contains(&c.record.name)
                || self.frozen.iter().any(|n| c.record.name == marker_name(n))
        };
        (self.held, self.changes) = all.into_iter().partition(frozen);
    }

    /// The owned checks no member uses or may still use. None while a
    /// record of the zone is frozen: a check may only go once the record
    /// that carries it has moved, which the freeze holds.
    pub fn unused_checks<'h>(&self, owned: &'h [HealthCheck]) -> Vec<&'h HealthCheck> {
        if !self.frozen.is_empty() {
            return Vec::new();
        }
        owned
            .iter()
            .filter(|c| !self.keep.contains(&c.id))
            .collect()
    }
}
