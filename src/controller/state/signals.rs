//! Every wake-up channel between the tasks of one config generation:
//! what a prober tells the others of its region, the witnesses, the view
//! exchange, and the reconcilers (each zone's own trigger lives with its
//! probers: `controller::ZoneSignals`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::MemberId;
use crate::config::Config;

type Alarm = watch::Sender<Option<tokio::time::Instant>>;

pub(in crate::controller) struct Signals {
    /// A member's own verdict changed: its view is due (`controller::tasks::view_exchange`).
    pub(in crate::controller) views_wake: Notify,
    /// Per region: when one of its members last started a run (see
    /// `controller::tasks::prober`: the region's other members probe once at the
    /// fast pace, so members failing together land together).
    region_alarms: BTreeMap<String, Alarm>,
    /// One member per region, its *witness*, also probes at the fast
    /// pace once when any member starts a failure run: within one fast
    /// interval every region has a probe that tells whether the failure
    /// is the member's or this instance's (`decide::correlated`).
    witness_alarm: Alarm,
    witnesses: BTreeSet<MemberId>,
    /// Bumped when something outside the reconcilers changed the zones
    /// (`retire`): they read their zone again.
    zones_changed: watch::Sender<u64>,
}

/// Sounds an alarm unless it sounded within `quiet`.
fn sound(alarm: &Alarm, quiet: Duration) {
    let now = tokio::time::Instant::now();
    alarm.send_if_modified(|last| {
        let due = last.is_none_or(|t| now.duration_since(t) >= quiet);
        if due {
            *last = Some(now);
        }
        due
    });
}

impl Signals {
    pub(super) fn new(config: &Config) -> Self {
        let region_alarms = config
            .records
            .iter()
            .flat_map(|r| &r.members)
            .map(|m| (m.region.clone(), watch::Sender::new(None)))
            .collect();
        let mut regions_seen = BTreeSet::new();
        let witnesses = config
            .records
            .iter()
            .enumerate()
            .flat_map(|(record, r)| {
                r.members
                    .iter()
                    .enumerate()
                    .map(move |(member, m)| (MemberId { record, member }, m.region.as_str()))
            })
            .filter(|(_, region)| regions_seen.insert(*region))
            .map(|(id, _)| id)
            .collect();
        Signals {
            views_wake: Notify::new(),
            region_alarms,
            witness_alarm: watch::Sender::new(None),
            witnesses,
            zones_changed: watch::Sender::new(0),
        }
    }

    /// The alarm of a member's region, for its prober to wait on.
    pub(in crate::controller) fn region_alarm(
        &self,
        region: &str,
    ) -> Option<watch::Receiver<Option<tokio::time::Instant>>> {
        self.region_alarms.get(region).map(|a| a.subscribe())
    }

    /// A member of `region` started a run: the alarm sounds, at most once
    /// per `quiet` (a region failing across a thousand records sounds it
    /// once, not a thousand times).
    pub(in crate::controller) fn sound_region_alarm(&self, region: &str, quiet: Duration) {
        if let Some(alarm) = self.region_alarms.get(region) {
            sound(alarm, quiet);
        }
    }

    /// The witness alarm, for a witness's prober to wait on (`None` for a
    /// member that is not its region's witness).
    pub(in crate::controller) fn witness_alarm(
        &self,
        id: MemberId,
    ) -> Option<watch::Receiver<Option<tokio::time::Instant>>> {
        self.witnesses
            .contains(&id)
            .then(|| self.witness_alarm.subscribe())
    }

    /// A member started a failure run: every region's witness probes once
    /// at the fast pace, at most once per `quiet`.
    pub(in crate::controller) fn sound_witness_alarm(&self, quiet: Duration) {
        sound(&self.witness_alarm, quiet);
    }

    /// Tells every reconciler to read its zone again.
    pub(in crate::controller) fn zones_changed(&self) {
        self.zones_changed.send_modify(|v| *v += 1);
    }

    pub(in crate::controller) fn subscribe_zones_changed(&self) -> watch::Receiver<u64> {
        self.zones_changed.subscribe()
    }
}
