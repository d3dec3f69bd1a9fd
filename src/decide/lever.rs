//! The data-plane lever: a member's decision carried out on its ARC
//! routing control ("switch") as well as, or instead of, on its record.
//! Route53 answers with a member when its record is present and its
//! switch is On (the switch drives the record's `RECOVERY_CONTROL` health
//! check). Pure; the controller's lever (`crate::lever`) flips the
//! switches, docs/design.md "The data-plane lever" says why.
//!
//! A switch drives the member only once its record carries the switch's
//! check ("wired": the calculated check over it, or the `RECOVERY_CONTROL`
//! check itself); until then the record decides, as without a lever.
//!
//! The rules, in one place:
//! - [`answered`]: what the policy counts as published. A switch whose
//!   state is not known counts as Off: the safety rules never withdraw a
//!   member believing another one answers when it may not.
//! - [`switch_for`]: published → On, withdrawn → Off, left → as it is; and
//!   never Off for a switch whose state is not known: it may be On, and
//!   the safety rules counted it as out already, so they did not guard it.
//! - [`record_intent`]: in `switches` mode a wired member keeps its record
//!   (static stability: its failover needs no control-plane call); an
//!   absent record is not made for a withdrawn member; in
//!   `switches_and_records`, and for a member not wired yet, the record
//!   follows the decision.

use serde::{Deserialize, Serialize};

use crate::config::LeverMode;
use crate::decide::policy::{Intent, MemberDecision, Why};

/// A routing control's state, as last read back or confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Switch {
    On,
    Off,
    /// Not read yet, or the last read failed.
    Unknown,
}

impl Switch {
    pub fn as_str(self) -> &'static str {
        match self {
            Switch::On => "on",
            Switch::Off => "off",
            Switch::Unknown => "unknown",
        }
    }
}

/// Whether Route53 may answer with the member: its record is present and
/// the switch it is wired to, if any, is known to be On.
pub fn answered(record_present: bool, wired_switch: Option<Switch>) -> bool {
    record_present && wired_switch.is_none_or(|s| s == Switch::On)
}

/// The state the member's switch should have after `intent`, given its
/// state as known; `None`: leave it as it is.
pub fn switch_for(intent: Intent, known: Switch) -> Option<Switch> {
    match (intent, known) {
        (Intent::Publish, _) => Some(Switch::On),
        (Intent::Withdraw, Switch::Unknown) => None,
        (Intent::Withdraw, _) => Some(Switch::Off),
        (Intent::Leave, _) => None,
    }
}

/// A withdrawal of a wired member whose switch's state is not known
/// waits (`switch_unknown`): it may answer, and the safety rules counted
/// it as out, so they did not guard its withdrawal. Neither its switch nor
/// its record moves until the switch is read.
pub fn hold_unknown(decision: &mut MemberDecision, wired: bool, known: Switch) {
    if wired && known == Switch::Unknown && decision.intent == Intent::Withdraw {
        decision.intent = Intent::Leave;
        decision.why = Why::SwitchUnknown;
    }
}

/// What happens to the member's record once its decision is `intent`;
/// `wired`: its record is present and carries its switch's check.
pub fn record_intent(mode: Option<LeverMode>, wired: bool, intent: Intent) -> Intent {
    match (mode, wired, intent) {
        (Some(LeverMode::Switches), true, Intent::Withdraw) => Intent::Publish,
        _ => intent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::policy::{decide, Drain, MemberInput, Safety};
    use crate::decide::verdict::Verdict;
    use proptest::prelude::*;
    use LeverMode::*;
    use Switch::*;

    #[test]
    fn the_lever_table() {
        // (mode, wired, decision) -> record intent
        let table = [
            (Some(Switches), true, Intent::Withdraw, Intent::Publish),
            (Some(Switches), true, Intent::Publish, Intent::Publish),
            (Some(Switches), true, Intent::Leave, Intent::Leave),
            // Not wired (no record, or its check is not the switch's yet):
            // the record decides.
            (Some(Switches), false, Intent::Withdraw, Intent::Withdraw),
            (
                Some(SwitchesAndRecords),
                true,
                Intent::Withdraw,
                Intent::Withdraw,
            ),
            (
                Some(SwitchesAndRecords),
                true,
                Intent::Publish,
                Intent::Publish,
            ),
            (None, false, Intent::Withdraw, Intent::Withdraw),
        ];
        for (mode, wired, intent, record) in table {
            assert_eq!(
                record_intent(mode, wired, intent),
                record,
                "{mode:?} {wired} {intent:?}"
            );
        }
        // (decision, known) -> switch
        for (intent, known, switch) in [
            (Intent::Publish, Unknown, Some(On)),
            (Intent::Publish, Off, Some(On)),
            (Intent::Withdraw, On, Some(Off)),
            (Intent::Withdraw, Off, Some(Off)),
            (Intent::Withdraw, Unknown, None),
            (Intent::Leave, On, None),
        ] {
            assert_eq!(switch_for(intent, known), switch, "{intent:?} {known:?}");
        }
        assert!(answered(true, None));
        assert!(answered(true, Some(On)));
        assert!(!answered(true, Some(Off)));
        assert!(
            !answered(true, Some(Unknown)),
            "an unknown switch is not counted as answering"
        );
        assert!(!answered(false, Some(On)));
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![
            Just(Verdict::Unknown),
            Just(Verdict::Healthy),
            Just(Verdict::Unhealthy)
        ]
    }

    fn switch() -> impl Strategy<Value = Switch> {
        prop_oneof![Just(On), Just(Off), Just(Unknown)]
    }

    fn drain() -> impl Strategy<Value = Drain> {
        prop_oneof![
            Just(Drain::No),
            Just(Drain::No),
            Just(Drain::Yes),
            Just(Drain::Forced)
        ]
    }

    proptest! {
        /// Step by step, a member wired while its record is present, with
        /// switches read back as Unknown at random (a read that failed):
        /// Route53 acts on the real state. Once it answers with any member, it still answers
        /// with one after the lever carried the decision out; no member
        /// that really answered stops answering below `min_healthy` really
        /// healthy answering members unless a forced drain did it; and in
        /// `switches` mode no record of a wired member is withdrawn.
        #[test]
        fn the_safety_rules_hold_through_the_switches(
            n in 1usize..6,
            min_frac in 0.0f64..1.0,
            both in any::<bool>(),
            start in proptest::collection::vec(switch(), 6),
            steps in proptest::collection::vec(
                proptest::collection::vec((verdict(), drain(), any::<bool>()), 6), 1..30),
        ) {
            let mode = if both { SwitchesAndRecords } else { Switches };
            let min_healthy = 1 + ((n - 1) as f64 * min_frac) as usize;
            let safety = Safety { min_healthy, max_withdrawn: None };
            let mut present = vec![true; n];
            // The real states: Unknown at the start stands for On or Off.
            let mut real: Vec<Switch> = (0..n)
                .map(|i| if start[i] == Unknown { On } else { start[i] })
                .collect();
            for step in steps {
                let known: Vec<Switch> = (0..n)
                    .map(|i| if step[i].2 { Unknown } else { real[i] })
                    .collect();
                let wired = |i: usize, present: &[bool]| present[i];
                let inputs: Vec<MemberInput> = (0..n)
                    .map(|i| MemberInput {
                        verdict: step[i].0,
                        published: answered(present[i], wired(i, &present).then_some(known[i])),
                        conflict: false,
                        damped: false,
                        drain: step[i].1,
                    })
                    .collect();
                let really = |present: &[bool], real: &[Switch], i: usize| {
                    answered(present[i], wired(i, present).then_some(real[i]))
                };
                let before: Vec<bool> = (0..n).map(|i| really(&present, &real, i)).collect();
                let mut decisions = decide(safety, &inputs);
                for i in 0..n {
                    hold_unknown(&mut decisions[i], wired(i, &present), known[i]);
                }
                for i in 0..n {
                    let intent = decisions[i].intent;
                    let record = record_intent(Some(mode), wired(i, &present), intent);
                    if mode == Switches && wired(i, &present) {
                        prop_assert_ne!(record, Intent::Withdraw);
                    }
                    if let Some(s) = switch_for(intent, known[i]) {
                        real[i] = s;
                    }
                    match record {
                        Intent::Publish => present[i] = true,
                        Intent::Withdraw => present[i] = false,
                        Intent::Leave => {}
                    }
                }
                let after: Vec<bool> = (0..n).map(|i| really(&present, &real, i)).collect();
                let forced = inputs.iter().zip(&decisions)
                    .any(|(i, d)| i.drain == Drain::Forced && !d.published);
                if before.iter().any(|a| *a) {
                    prop_assert!(after.iter().any(|a| *a),
                        "nothing answers: {inputs:?} {known:?} -> {decisions:?}");
                }
                let healthy = (0..n)
                    .filter(|&i| after[i] && inputs[i].verdict == Verdict::Healthy)
                    .count();
                let withdrew = (0..n).any(|i| before[i] && !after[i]);
                if withdrew && !forced {
                    prop_assert!(healthy >= min_healthy,
                        "withdrew below min_healthy: {inputs:?} {known:?} -> {decisions:?}");
                }
            }
        }
    }
}
