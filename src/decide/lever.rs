//! The data-plane lever: a member's decision carried out on its ARC
//! routing control ("switch") as well as, or instead of, on its record.
//! Route53 answers with a member when its record is present and its
//! switch is On (the switch drives the record's `RECOVERY_CONTROL` health
//! check). Pure; the controller's lever (`crate::lever`) flips the
//! switches, docs/design.md "The data-plane lever" says why.
//!
//! The rules, in one place:
//! - [`answered`]: what the policy counts as published. A switch whose
//!   state is not known counts as Off: the safety rules never withdraw a
//!   member believing another one answers when it may not.
//! - [`switch_for`]: published → On, withdrawn → Off, left → as it is.
//! - [`record_intent`]: in `switches` mode a member with a switch keeps its
//!   record (static stability: its failover needs no control-plane call);
//!   in `switches_and_records` the record follows the decision too.

use serde::{Deserialize, Serialize};

use crate::config::LeverMode;
use crate::decide::policy::Intent;

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
/// its switch, when it has one, is known to be On.
pub fn answered(record_present: bool, switch: Option<Switch>) -> bool {
    record_present && switch.is_none_or(|s| s == Switch::On)
}

/// The state the member's switch should have after `intent`; `None`:
/// leave it as it is.
pub fn switch_for(intent: Intent) -> Option<Switch> {
    match intent {
        Intent::Publish => Some(Switch::On),
        Intent::Withdraw => Some(Switch::Off),
        Intent::Leave => None,
    }
}

/// What happens to the member's record once its decision is `intent`.
pub fn record_intent(mode: Option<LeverMode>, has_switch: bool, intent: Intent) -> Intent {
    match (mode, has_switch, intent) {
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
        // (mode, has switch, decision) -> (record intent, switch)
        let table = [
            (
                Some(Switches),
                true,
                Intent::Withdraw,
                Intent::Publish,
                Some(Off),
            ),
            (
                Some(Switches),
                true,
                Intent::Publish,
                Intent::Publish,
                Some(On),
            ),
            (Some(Switches), true, Intent::Leave, Intent::Leave, None),
            (
                Some(Switches),
                false,
                Intent::Withdraw,
                Intent::Withdraw,
                Some(Off),
            ),
            (
                Some(SwitchesAndRecords),
                true,
                Intent::Withdraw,
                Intent::Withdraw,
                Some(Off),
            ),
            (
                Some(SwitchesAndRecords),
                true,
                Intent::Publish,
                Intent::Publish,
                Some(On),
            ),
            (None, false, Intent::Withdraw, Intent::Withdraw, Some(Off)),
        ];
        for (mode, has, intent, record, switch) in table {
            assert_eq!(
                record_intent(mode, has, intent),
                record,
                "{mode:?} {has} {intent:?}"
            );
            assert_eq!(switch_for(intent), switch, "{intent:?}");
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
        /// Step by step, with the switches as the lever leaves them and
        /// switches read back as Unknown at random (a read that failed):
        /// once Route53 answers with any member, it still answers with one
        /// after the lever carried the decision out; no switch goes Off
        /// below `min_healthy` healthy answering members unless a forced
        /// drain did it; and in `switches` mode no record of a member with
        /// a switch is ever withdrawn.
        #[test]
        fn the_safety_rules_hold_through_the_switches(
            n in 1usize..6,
            min_frac in 0.0f64..1.0,
            with_switch in proptest::collection::vec(any::<bool>(), 6),
            both in any::<bool>(),
            start in proptest::collection::vec(switch(), 6),
            steps in proptest::collection::vec(
                proptest::collection::vec((verdict(), drain(), any::<bool>()), 6), 1..30),
        ) {
            let mode = if both { SwitchesAndRecords } else { Switches };
            let min_healthy = 1 + ((n - 1) as f64 * min_frac) as usize;
            let safety = Safety { min_healthy, max_withdrawn: None };
            let mut present = vec![true; n];
            let mut switches: Vec<Option<Switch>> =
                (0..n).map(|i| with_switch[i].then_some(start[i])).collect();
            for step in steps {
                // A failed read-back: the lever no longer knows the state
                // (Route53 still acts on the real one, kept in `real`).
                let real = switches.clone();
                let known: Vec<Option<Switch>> = (0..n)
                    .map(|i| switches[i].map(|s| if step[i].2 { Unknown } else { s }))
                    .collect();
                let inputs: Vec<MemberInput> = (0..n)
                    .map(|i| MemberInput {
                        verdict: step[i].0,
                        published: answered(present[i], known[i]),
                        conflict: false,
                        damped: false,
                        drain: step[i].1,
                    })
                    .collect();
                let answering = |p: &[bool], s: &[Option<Switch>]| {
                    (0..n).filter(|&i| answered(p[i], s[i])).count()
                };
                let was = answering(&present, &real);
                let decisions = decide(safety, &inputs);
                for i in 0..n {
                    let intent = decisions[i].intent;
                    let record = record_intent(Some(mode), switches[i].is_some(), intent);
                    if mode == Switches && switches[i].is_some() {
                        prop_assert_ne!(record, Intent::Withdraw);
                    }
                    match record {
                        Intent::Publish => present[i] = true,
                        Intent::Withdraw => present[i] = false,
                        Intent::Leave => {}
                    }
                    if let (Some(_), Some(s)) = (switches[i], switch_for(intent)) {
                        switches[i] = Some(s);
                    } else if switches[i].is_some() {
                        switches[i] = real[i];
                    }
                }
                let forced = inputs.iter().zip(&decisions)
                    .any(|(i, d)| i.drain == Drain::Forced && i.published && !d.published);
                let now = answering(&present, &switches);
                if was > 0 {
                    prop_assert!(now > 0, "nothing answers: {inputs:?} -> {decisions:?}");
                }
                let healthy = (0..n)
                    .filter(|&i| answered(present[i], switches[i]) && inputs[i].verdict == Verdict::Healthy)
                    .count();
                let withdrew = (0..n).any(|i| inputs[i].published && !answered(present[i], switches[i]));
                if withdrew && !forced {
                    prop_assert!(healthy >= min_healthy,
                        "withdrew below min_healthy: {inputs:?} -> {decisions:?}");
                }
            }
        }
    }
}
