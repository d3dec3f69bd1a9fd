//! A reload: the runtime of the new config generation, made from the
//! previous one. The process's state (`Process`) is shared, not copied, so
//! nothing can be left off; what is carried is what is known of the
//! members the new config still has (or renamed), the zones, views and
//! parity reports.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use super::lock::lock;
use super::{MemberId, MemberState, Runtime};
use crate::config::Config;
use crate::decide::verdict::{Health, Verdict};
use crate::provider::RecordType;

impl Runtime {
    /// The runtime for a reloaded config: the same process, and what
    /// `old` knew (see `carry_over`).
    pub fn reloaded(config: Arc<Config>, old: &Runtime) -> Self {
        let rt = Runtime::within(old.process(), config);
        rt.carry_over(old);
        let unhealthy = rt
            .member_ids()
            .filter(|&id| {
                rt.member(id)
                    .read(|m| m.health.verdict() == Verdict::Unhealthy)
            })
            .count();
        rt.locally_unhealthy.store(unhealthy, Ordering::Release);
        // What was known of the passes, for corroboration.
        for id in rt.member_ids() {
            if let Some(t) = rt.member(id).read(|m| m.seen.last_pass) {
                rt.note_pass(id, t);
            }
        }
        *lock(&rt.views) = old.views_status();
        *lock(&rt.parity) = lock(&old.parity).clone();
        rt
    }

    /// Takes over what `old` knows of the members this config still has
    /// (same record name, type and set identifier), so a reload neither
    /// forgets verdicts nor flips readiness. A member whose probe changed
    /// starts over as `unknown` (its record stays as it is until then); a
    /// member whose target changed is discovered again.
    fn carry_over(&self, old: &Runtime) {
        for id in self.member_ids() {
            let r = &self.config.records[id.record];
            let m = &r.members[id.member];
            let (oid, renamed) = match old.find_member(&r.name, &r.rtype, &m.set_identifier) {
                Some(oid) => (oid, false),
                // A member renamed (a new set identifier for the same
                // region) keeps what was known of its region, so it is
                // published at once and the old record can go: nothing
                // waits for `rise` probes while the record empties.
                None => match old.renamed_from(&r.name, &r.rtype, &m.region, self) {
                    Some(oid) => (oid, true),
                    None => continue,
                },
            };
            let om = old.member(oid).config();
            let prev = old.member(oid).read(MemberState::clone);
            let mut st = lock(self.slot(id));
            if renamed {
                // What the zone holds is the old set identifier's: the
                // new member's record and check are its own.
                *st = MemberState {
                    health: prev.health,
                    agreed: prev.agreed,
                    seen: prev.seen,
                    damping: prev.damping,
                    baseline: prev.baseline,
                    last_probe: prev.last_probe,
                    trend: prev.trend,
                    cert_not_after: prev.cert_not_after,
                    counters: prev.counters,
                    discovered: prev.discovered.filter(|_| om.target == m.target),
                    ..MemberState::new(m, SystemTime::now())
                };
                if *om.probe != *m.probe {
                    st.health = Health::new(m.probe.rise, m.probe.fall, SystemTime::now());
                    st.agreed = Verdict::Unknown;
                }
            } else if *om.probe == *m.probe {
                *st = prev;
            } else {
                st.published = prev.published;
                st.withdrawn_at = prev.withdrawn_at;
                st.health_check_id = prev.health_check_id;
                st.route53_health = prev.route53_health;
                st.discovered = prev.discovered;
                st.counters = prev.counters;
            }
            if om.target != m.target {
                st.discovered = None;
                st.discovery_error = None;
            }
        }
        for (zone, z) in old.zone_status() {
            self.update_zone(&zone, |mine| *mine = z);
        }
        if old.has_reconciled() {
            self.ready.store(true, Ordering::Release);
        }
        let regions = |rt: &Runtime| -> std::collections::BTreeSet<String> {
            let members = rt.config.records.iter().flat_map(|r| &r.members);
            members.map(|m| m.region.clone()).collect()
        };
        for gone in regions(old).difference(&regions(self)) {
            self.metrics.probes.forget(gone);
        }
    }

    /// The member a reload renamed into `new`'s member of `region`: the one
    /// member of this region in this record whose set identifier `new`
    /// no longer has, when `new` has one member of the region whose set
    /// identifier this runtime does not. Anything less plain (two members
    /// of a region gone, or two new) is not taken for a rename.
    fn renamed_from(
        &self,
        name: &str,
        rtype: &RecordType,
        region: &str,
        new: &Runtime,
    ) -> Option<MemberId> {
        let unmatched = |from: &Runtime, to: &Runtime| -> Vec<MemberId> {
            from.member_ids()
                .filter(|id| {
                    let r = &from.config.records[id.record];
                    let m = &r.members[id.member];
                    r.name == name
                        && r.rtype == *rtype
                        && m.region == region
                        && to.find_member(name, rtype, &m.set_identifier).is_none()
                })
                .collect()
        };
        let gone = unmatched(self, new);
        match (gone.as_slice(), unmatched(new, self).len()) {
            ([old], 1) => Some(*old),
            _ => None,
        }
    }

    fn find_member(
        &self,
        name: &str,
        rtype: &RecordType,
        set_identifier: &str,
    ) -> Option<MemberId> {
        self.member_ids().find(|id| {
            let r = &self.config.records[id.record];
            r.name == name
                && r.rtype == *rtype
                && r.members[id.member].set_identifier == set_identifier
        })
    }
}
