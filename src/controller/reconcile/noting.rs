//! What a zone's decision means for on-call: each member's decision in
//! status and metrics, the events of decisions that changed (the rule
//! behind each), the plan a freeze holds back, what the zone now holds.

use tracing::{error, info, warn};

use super::Reconciler;
use crate::controller::report;
use crate::controller::Runtime;
use crate::decide::policy::Why;
use crate::decide::zone::ZoneDecision;

impl Reconciler {
    /// Puts a decision into status and metrics, and logs what changed.
    pub(super) fn note(&self, rt: &Runtime, decision: &ZoneDecision<'_>) {
        for (&ri, outcomes) in self.records.iter().zip(&decision.members) {
            let record = &rt.config.records[ri];
            let mut fail_open = false;
            for (id, outcome) in rt.record_members(ri).zip(outcomes) {
                let member = rt.member(id);
                let previous = member.decided(outcome);
                report::decided(rt, &member, outcome, previous);
                fail_open |= matches!(outcome.decision.why, Why::LastMember | Why::FailOpen);
            }
            rt.metrics
                .reconcile
                .record_fail_open
                .with_label_values(&[&record.name, crate::metrics::rtype_str(&record.rtype)])
                .set(i64::from(fail_open));
        }
        let held: Vec<String> = decision
            .held
            .iter()
            .map(|c| c.to_string())
            .chain(decision.held_calls.iter().map(|c| {
                let record = decision.records[c.record].record;
                let member = &record.members[c.member];
                format!(
                    "health check {} for {} {} {}",
                    c.step.verb(),
                    record.name,
                    record.rtype,
                    member.region
                )
            }))
            .collect();
        let retiring: Vec<String> = decision.retiring.iter().map(|k| k.to_string()).collect();
        let orphaned: Vec<String> = decision
            .orphaned
            .iter()
            .map(|(name, rtype)| format!("{name} {rtype}"))
            .collect();
        let uncorroborated = decision
            .members
            .iter()
            .flatten()
            .filter(|m| m.decision.why == Why::Correlated)
            .count();
        for c in &decision.refused {
            error!(zone = %self.zone, change = %c,
                "refused: this deletion would leave its record with nothing published");
        }
        let before = rt.zone_status().remove(&self.zone).unwrap_or_default();
        if orphaned != before.orphaned && !orphaned.is_empty() {
            warn!(zone = %self.zone, records = ?orphaned,
                "records hold this owner's claims but the config does not manage them: left as they are (retire them with `route53-failover retire`, or give each install its own owner)");
        }
        if retiring != before.retiring && !retiring.is_empty() {
            info!(zone = %self.zone, records = ?retiring,
                "records of members no longer configured stay until their record holds another member");
        }
        if uncorroborated > 0 && before.uncorroborated == 0 {
            warn!(zone = %self.zone, members = uncorroborated,
                "members fail, but nothing else this instance probes passes since: withdrawals wait (this instance's network, DNS or descriptors are the likelier cause)");
        } else if uncorroborated == 0 && before.uncorroborated > 0 {
            info!(zone = %self.zone, "failures corroborated or over: withdrawals go ahead");
        }
        rt.zone_decided(&self.zone, held, retiring, orphaned, uncorroborated);
        self.note_published();
    }

    /// Puts the records held out (`isolate`) into status and metrics.
    pub(super) fn note_rejected(&self) {
        self.rt.zone_rejected(&self.zone, self.rejected_lines());
    }

    /// Puts what Route53 answers with now into status and metrics: the
    /// member's record is present and the switch it is wired to, if any,
    /// is On (`decide::lever::answered`).
    pub(super) fn note_published(&self) {
        let Some(observed) = self.observed.as_ref() else {
            return;
        };
        for id in self.rt.members_of(&self.records) {
            let member = self.rt.member(id);
            let present = observed
                .member_record(member.record(), member.config())
                .is_some();
            let switch = self.rt.switch_of(member.config()).filter(|_| {
                crate::decide::zone::wired(observed, &self.checks, member.record(), member.config())
            });
            member.published(crate::decide::lever::answered(present, switch));
        }
    }
}
