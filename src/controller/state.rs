//! What the daemon knows, shared by its tasks and the HTTP handlers: one
//! [`MemberState`] per member, one [`ZoneStatus`] per zone, readiness.
//!
//! A member's state changes only through the named methods of its
//! [`Member`] handle (`controller::member`), one per kind of write.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{watch, Notify};
use tracing::info;

use super::controls::ControlBook;
use super::leadership::Lease;
use super::member::Member;
use crate::config::{Config, MemberConfig, RecordConfig};
use crate::decide::baseline::Baseline;
use crate::decide::controls::Controls;
use crate::decide::correlated::{self, Passes, Seen};
use crate::decide::damping::Damping;
use crate::decide::policy::Why;
use crate::decide::quorum::Vote;
use crate::decide::verdict::{Health, Verdict};
use crate::events::Events;
use crate::metrics::{MemberCounters, Metrics};
use crate::parity::ParityReport;
use crate::probe::auth::TokenSources;
use crate::probe::ProbeResult;
use crate::provider::{AliasTarget, CheckerReport, HealthCheck, RecordType};
use crate::trend::Trend;

/// What is known of one member. A std `Mutex` guards it: held for a few
/// field updates only, never across an `.await`.
#[derive(Debug, Clone)]
pub struct MemberState {
    /// This instance's verdict, from its own probes.
    pub health: Health,
    /// The verdict the writer acts on: with `ha` and `policy.quorum:
    /// majority`, what a quorum of the instances agree on
    /// (`decide::quorum`); else this instance's verdict.
    pub agreed: Verdict,
    /// The other instances' views of the member, as last read (with `ha`).
    pub votes: Vec<Vote>,
    /// Its failure run and last pass, for `decide::correlated`.
    pub seen: Seen,
    /// The member's flaps and hold, fed with its verdict changes.
    pub damping: Damping,
    /// Its latency baseline, with `expect.slow_vs_baseline`.
    pub baseline: Baseline,
    pub last_probe: Option<ProbeResult>,
    /// The last 15 minutes of probes, for the page's sparkline.
    pub trend: Trend,
    /// HTTPS: when the leaf certificate last served expires (kept while
    /// later probes fail before TLS).
    pub cert_not_after: Option<SystemTime>,
    /// The provider holds the member's record (as last read or written).
    pub published: bool,
    /// The policy's latest reason, once a reconcile has run.
    pub why: Option<Why>,
    pub conflict: bool,
    /// An API Gateway target's regional endpoint, once discovered.
    pub discovered: Option<AliasTarget>,
    /// `discovered` was taken from the alias the zone's record holds: no
    /// lookup has worked yet (`Member::discovered_in_zone`).
    pub discovered_from_zone: bool,
    pub discovery_error: Option<String>,
    /// The Route53 health check the member's record carries (or will).
    pub health_check_id: Option<String>,
    /// Why the member's health check could not be created or updated.
    pub health_check_error: Option<String>,
    /// What Route53's checkers last said of that check.
    pub route53_health: Option<Route53Health>,
    /// Its probes, verdict changes and flaps, for `/metrics`.
    pub counters: MemberCounters,
}

impl MemberState {
    /// This instance's side of the member's count (`decide::quorum`):
    /// its verdict, and since when its probes have said so; `counts` is
    /// false while it sees every member unhealthy.
    pub fn local(&self, counts: bool) -> crate::decide::quorum::Local {
        let verdict = self.health.verdict();
        crate::decide::quorum::Local {
            verdict,
            counts,
            since: match verdict {
                Verdict::Unhealthy => self.seen.failing_since,
                Verdict::Healthy => self.seen.passing_since,
                Verdict::Unknown => None,
            },
        }
    }

    fn new(config: &MemberConfig, now: SystemTime) -> Self {
        MemberState {
            health: Health::new(config.probe.rise, config.probe.fall, now),
            agreed: Verdict::Unknown,
            votes: Vec::new(),
            seen: Seen::default(),
            damping: Damping::default(),
            baseline: Baseline::default(),
            last_probe: None,
            trend: Trend::default(),
            cert_not_after: None,
            published: false,
            why: None,
            conflict: false,
            discovered: None,
            discovered_from_zone: false,
            discovery_error: None,
            health_check_id: None,
            health_check_error: None,
            route53_health: None,
            counters: MemberCounters::default(),
        }
    }
}

/// Route53's own view of a member, from `GetHealthCheckStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route53Health {
    pub report: CheckerReport,
    pub at: SystemTime,
}

#[derive(Debug, Clone, Default)]
pub struct ZoneStatus {
    pub id: Option<String>,
    /// The zone's name, as the provider answers (the config may give an id).
    pub name: Option<String>,
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
    /// The last health check call's error, while calls fail (the records'
    /// reconcile stands: `last_error` is not set for it).
    pub check_error: Option<String>,
    pub changes_applied: u64,
    pub pending_changes: usize,
    /// What a freeze holds back now: record changes and health check calls.
    pub held: Vec<String>,
    /// Records of members removed or renamed, kept while they are their
    /// record's last (`decide::plan::ZonePlan::retiring`).
    pub retiring: Vec<String>,
    /// Records with this owner's claims that the config does not manage.
    pub orphaned: Vec<String>,
    /// Unhealthy members whose withdrawal waits for corroboration.
    pub uncorroborated: usize,
    /// Records whose changes Route53 refuses, held out until they change.
    pub rejected: Vec<String>,
}

/// Where a member is in the config: `config.records[record].members[member]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId {
    pub record: usize,
    pub member: usize,
}

/// With `ha`: how this instance's view exchange with the others goes.
#[derive(Debug, Clone, Default)]
pub struct ViewsStatus {
    pub last_write: Option<SystemTime>,
    pub last_read: Option<SystemTime>,
    /// The instances whose views were last read (this one aside).
    pub instances: usize,
    pub last_error: Option<String>,
}

/// Everything the daemon knows, shared with the HTTP handlers.
pub struct Runtime {
    pub config: Arc<Config>,
    /// Per record of `config.records`, per member.
    members: Vec<Vec<Mutex<MemberState>>>,
    zones: Mutex<BTreeMap<String, ZoneStatus>>,
    pub metrics: Arc<Metrics>,
    pub provider_kind: &'static str,
    pub started: SystemTime,
    ready: AtomicBool,
    zones_reconciled: AtomicUsize,
    /// With `ha`: this instance's view of the lease, kept across reloads.
    pub lease: Option<Arc<Lease>>,
    /// Members this instance sees unhealthy (to know when it sees all down).
    locally_unhealthy: AtomicUsize,
    member_count: usize,
    /// A member's own verdict changed: its view is due (`controller::views`).
    pub(super) views_wake: Notify,
    views: Mutex<ViewsStatus>,
    /// Per region: when one of its members last started a run (see
    /// `controller::probing`: the region's other members probe once at the
    /// fast pace, so members failing together land together).
    region_alarms: BTreeMap<String, watch::Sender<Option<tokio::time::Instant>>>,
    /// The latest passes across every member, for `uncorroborated`.
    passes: Mutex<Passes<MemberId>>,
    /// One member per region, its *witness*, also probes at the fast
    /// pace once when any member starts a failure run: within one fast
    /// interval every region has a probe that tells whether the failure
    /// is the member's or this instance's (`decide::correlated`).
    witness_alarm: watch::Sender<Option<tokio::time::Instant>>,
    witnesses: std::collections::BTreeSet<MemberId>,
    /// Per record (`name type`): its last parity report.
    parity: Mutex<BTreeMap<String, ParityReport>>,
    /// On-call's drains and freezes, kept across reloads.
    pub controls: Arc<ControlBook>,
    /// The event timeline, kept across reloads.
    pub events: Arc<Events>,
    /// The probes' OAuth2 token sources, kept across reloads (a reload
    /// does not fetch every token again).
    pub tokens: Arc<TokenSources>,
    /// Bumped when something outside the reconcilers changed the zones
    /// (`retire`): they read their zone again.
    zones_changed: watch::Sender<u64>,
    /// The account's health checks as last listed, and when: one listing
    /// serves every zone that reads within a while of it (the listing is
    /// of the whole account, not of a zone).
    #[allow(clippy::type_complexity)]
    health_checks: tokio::sync::Mutex<Option<(std::time::Instant, u64, Arc<Vec<HealthCheck>>)>>,
    /// Bumped when the listing may miss a write of this process (made
    /// while a listing was under way: a write never waits on a read's
    /// lock) or someone else's: a listing is good only for the generation
    /// it began in.
    health_checks_generation: std::sync::atomic::AtomicU64,
    /// The one Route53 rate limiter of the process, every caller's (the
    /// reconcilers, the lease, the views, the controls, the admin routes,
    /// the trackers): kept across reloads.
    pub limiter: Arc<crate::rate_limit::RateLimiter>,
}

/// Sounds an alarm unless it sounded within `quiet`.
fn sound(alarm: &watch::Sender<Option<tokio::time::Instant>>, quiet: Duration) {
    let now = tokio::time::Instant::now();
    alarm.send_if_modified(|last| {
        let due = last.is_none_or(|t| now.duration_since(t) >= quiet);
        if due {
            *last = Some(now);
        }
        due
    });
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the state whole, so a poisoned lock's
    // data is still good.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime {
    pub fn new(config: Arc<Config>, provider_kind: &'static str, metrics: Arc<Metrics>) -> Self {
        let now = SystemTime::now();
        let members = config
            .records
            .iter()
            .map(|r| {
                r.members
                    .iter()
                    .map(|m| Mutex::new(MemberState::new(m, now)))
                    .collect()
            })
            .collect();
        let member_count = config.records.iter().map(|r| r.members.len()).sum();
        let region_alarms = config
            .records
            .iter()
            .flat_map(|r| &r.members)
            .map(|m| (m.region.clone(), watch::Sender::new(None)))
            .collect();
        let mut regions_seen = std::collections::BTreeSet::new();
        let witnesses = config
            .records
            .iter()
            .enumerate()
            .flat_map(|(ri, r)| {
                r.members.iter().enumerate().map(move |(mi, m)| {
                    (
                        MemberId {
                            record: ri,
                            member: mi,
                        },
                        m.region.as_str(),
                    )
                })
            })
            .filter(|(_, region)| regions_seen.insert(*region))
            .map(|(id, _)| id)
            .collect();
        let zones = config
            .records_by_zone()
            .into_keys()
            .map(|z| (z, ZoneStatus::default()))
            .collect();
        Runtime {
            members,
            zones: Mutex::new(zones),
            metrics,
            provider_kind,
            started: now,
            ready: AtomicBool::new(false),
            zones_reconciled: AtomicUsize::new(0),
            lease: config.ha.clone().map(|ha| Arc::new(Lease::new(ha))),
            locally_unhealthy: AtomicUsize::new(0),
            member_count,
            views_wake: Notify::new(),
            views: Mutex::new(ViewsStatus::default()),
            region_alarms,
            passes: Mutex::new(Passes::default()),
            witness_alarm: watch::Sender::new(None),
            witnesses,
            parity: Mutex::new(BTreeMap::new()),
            controls: Arc::default(),
            events: Arc::default(),
            tokens: Arc::default(),
            zones_changed: watch::Sender::new(0),
            health_checks: tokio::sync::Mutex::new(None),
            health_checks_generation: Default::default(),
            limiter: Arc::new(crate::rate_limit::RateLimiter::new(
                config.provider.max_requests_per_second,
            )),
            config,
        }
    }

    /// The alarm of a member's region, for its prober to wait on.
    pub(super) fn region_alarm(
        &self,
        region: &str,
    ) -> Option<watch::Receiver<Option<tokio::time::Instant>>> {
        self.region_alarms.get(region).map(|a| a.subscribe())
    }

    /// A member of `region` started a run: the alarm sounds, at most once
    /// per `quiet` (a region failing across a thousand records sounds it
    /// once, not a thousand times).
    pub(super) fn sound_region_alarm(&self, region: &str, quiet: Duration) {
        if let Some(alarm) = self.region_alarms.get(region) {
            sound(alarm, quiet);
        }
    }

    /// The witness alarm, for a witness's prober to wait on (`None` for a
    /// member that is not its region's witness).
    pub(super) fn witness_alarm(
        &self,
        id: MemberId,
    ) -> Option<watch::Receiver<Option<tokio::time::Instant>>> {
        self.witnesses
            .contains(&id)
            .then(|| self.witness_alarm.subscribe())
    }

    /// A member started a failure run: every region's witness probes once
    /// at the fast pace, at most once per `quiet`.
    pub(super) fn sound_witness_alarm(&self, quiet: Duration) {
        sound(&self.witness_alarm, quiet);
    }

    /// The runtime for a reloaded config: same process start, metrics and
    /// provider, and what `old` knew (see `carry_over`).
    pub fn reloaded(config: Arc<Config>, old: &Runtime) -> Self {
        let mut rt = Runtime::new(config, old.provider_kind, old.metrics.clone());
        rt.started = old.started;
        // `ha` cannot change on reload: the lease and its task stay.
        rt.lease = old.lease.clone();
        rt.controls = old.controls.clone();
        rt.events = old.events.clone();
        rt.tokens = old.tokens.clone();
        rt.limiter = old.limiter.clone();
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
        if old.is_ready() {
            self.ready.store(true, Ordering::Release);
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

    /// Every member, record by record.
    pub fn member_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.config.records.iter().enumerate().flat_map(|(ri, r)| {
            (0..r.members.len()).map(move |mi| MemberId {
                record: ri,
                member: mi,
            })
        })
    }

    /// The members of one record.
    pub fn record_members(&self, record: usize) -> impl Iterator<Item = MemberId> {
        (0..self.config.records[record].members.len())
            .map(move |member| MemberId { record, member })
    }

    /// The members of these records.
    pub fn members_of<'a>(&'a self, records: &'a [usize]) -> impl Iterator<Item = MemberId> + 'a {
        records.iter().flat_map(|&ri| self.record_members(ri))
    }

    pub fn member(&self, id: MemberId) -> Member<'_> {
        Member::new(self, id)
    }

    pub(super) fn slot(&self, id: MemberId) -> &Mutex<MemberState> {
        &self.members[id.record][id.member]
    }

    /// Whether this instance may write now: always without HA, else while
    /// it holds the lease.
    pub fn may_write(&self) -> bool {
        self.lease.as_ref().is_none_or(|l| l.is_leader())
    }

    /// This instance's own verdict on a member left or entered `unhealthy`.
    pub(super) fn local_unhealthy(&self, entered: bool) {
        if entered {
            self.locally_unhealthy.fetch_add(1, Ordering::AcqRel);
        } else {
            self.locally_unhealthy.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// This instance sees every member unhealthy: its own network is the
    /// likelier cause, so its verdicts are no evidence (`decide::quorum`).
    pub fn sees_everything_down(&self) -> bool {
        self.member_count > 0 && self.locally_unhealthy.load(Ordering::Acquire) >= self.member_count
    }

    /// Whether a member's failure waits for corroboration
    /// (`decide::correlated`): nothing else this instance probes has passed
    /// since it began, and no other instance's counted vote sees it
    /// unhealthy. Costs nothing of the other members: their passes are kept
    /// as they come (`note_pass`).
    pub fn uncorroborated(&self, id: MemberId) -> bool {
        let passes = *lock(&self.passes);
        self.member(id).read(|m| {
            let voted = m
                .votes
                .iter()
                .any(|v| v.ignored.is_none() && v.verdict == Verdict::Unhealthy);
            correlated::waits(id, &m.seen, &passes) && !voted
        })
    }

    /// A member passed a probe sent at `sent`.
    pub(super) fn note_pass(&self, id: MemberId, sent: std::time::Instant) {
        lock(&self.passes).note(id, sent);
    }

    /// On-call's controls as the daemon honours them: none without
    /// `admin` (a reload that turns it off lets go of them at once).
    pub fn controls_in_use(&self) -> Controls {
        if self.config.admin.is_some() {
            self.controls.snapshot()
        } else {
            Controls::default()
        }
    }

    /// A record's last parity report.
    pub fn parity(&self, record: &RecordConfig) -> Option<ParityReport> {
        lock(&self.parity).get(&parity_key(record)).cloned()
    }

    pub(super) fn set_parity(&self, record: &RecordConfig, report: ParityReport) {
        lock(&self.parity).insert(parity_key(record), report);
    }

    pub fn views_status(&self) -> ViewsStatus {
        lock(&self.views).clone()
    }

    pub(super) fn update_views(&self, f: impl FnOnce(&mut ViewsStatus)) {
        f(&mut lock(&self.views))
    }

    /// Ready once every zone has been reconciled successfully; never goes back.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// One more zone was reconciled for the first time; the last one makes
    /// the daemon ready.
    pub(super) fn zone_reconciled(&self) {
        let done = self.zones_reconciled.fetch_add(1, Ordering::AcqRel) + 1;
        if done >= lock(&self.zones).len() && !self.ready.swap(true, Ordering::AcqRel) {
            self.metrics.reconcile.ready.set(1);
            info!("ready: every zone reconciled");
        }
    }

    pub fn zone_status(&self) -> BTreeMap<String, ZoneStatus> {
        lock(&self.zones).clone()
    }

    /// The account's health checks, listed at most once per `max_age`
    /// for every zone of the process (zones reading at once share one
    /// listing; `max_age` zero lists again).
    pub(super) async fn health_checks(
        &self,
        calls: &super::Calls,
        max_age: Duration,
    ) -> Result<Arc<Vec<HealthCheck>>, crate::provider::ProviderError> {
        use std::sync::atomic::Ordering;
        let mut cached = self.health_checks.lock().await;
        let generation = self.health_checks_generation.load(Ordering::Acquire);
        if let Some((at, listed_in, list)) = cached.as_ref() {
            if at.elapsed() < max_age && *listed_in == generation {
                return Ok(list.clone());
            }
        }
        // Cancelled or failed, nothing is stored and the generation stands.
        let list = Arc::new(calls.list_health_checks().await?);
        *cached = Some((std::time::Instant::now(), generation, list.clone()));
        Ok(list)
    }

    /// Keeps the shared listing true to this process's own writes: `check`
    /// made or updated (its new form), or `None`: deleted. Never waits: a
    /// listing under way (it may or may not see the write) is taken as
    /// stale instead.
    pub(super) fn note_health_check(&self, id: &str, check: Option<HealthCheck>) {
        match self.health_checks.try_lock() {
            Ok(mut cached) => {
                if let Some((_, _, list)) = cached.as_mut() {
                    let list = Arc::make_mut(list);
                    list.retain(|c| c.id != id);
                    list.extend(check);
                }
            }
            Err(_) => self.forget_health_checks(),
        }
    }

    /// The next read lists the account's checks afresh (a call found the
    /// listing stale: someone else changed a check).
    pub(super) fn forget_health_checks(&self) {
        self.health_checks_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Tells every reconciler to read its zone again (something outside
    /// them changed it).
    pub fn zones_changed(&self) {
        self.zones_changed.send_modify(|v| *v += 1);
    }

    pub(super) fn subscribe_zones_changed(&self) -> watch::Receiver<u64> {
        self.zones_changed.subscribe()
    }

    /// Reads one zone's status; the lock is held for `f` only.
    pub(super) fn read_zone<R>(&self, zone: &str, f: impl FnOnce(&ZoneStatus) -> R) -> Option<R> {
        lock(&self.zones).get(zone).map(f)
    }

    pub(super) fn update_zone(&self, zone: &str, f: impl FnOnce(&mut ZoneStatus)) {
        if let Some(z) = lock(&self.zones).get_mut(zone) {
            f(z)
        }
    }
}

fn parity_key(r: &RecordConfig) -> String {
    format!("{} {}", r.name, r.rtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(text: &str) -> Runtime {
        let config = crate::config::parse(text, std::path::Path::new(".")).unwrap();
        Runtime::new(Arc::new(config), "memory", Arc::new(Metrics::new()))
    }

    const BASE: &str = r#"
owner: me
provider: {kind: memory, zones: [example.test]}
defaults: {probe: {url: "http://api.example.test/health", rise: 1}}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {region: us-east-1, set_identifier: use1, target: {values: [192.0.2.1]}}
      - {region: eu-west-1, set_identifier: euw1, target: {values: [192.0.2.2]}}
"#;

    #[test]
    fn a_renamed_member_keeps_its_regions_verdict_and_nothing_of_its_record() {
        let old = runtime(BASE);
        let now = SystemTime::now();
        for id in old.member_ids() {
            let mut st = lock(old.slot(id));
            st.health.observe(Ok(()), now);
            st.agreed = Verdict::Healthy;
            st.published = true;
            st.health_check_id = Some("hc-old".into());
        }
        let renamed = crate::config::parse(
            &BASE.replace("set_identifier: use1", "set_identifier: api-use1"),
            std::path::Path::new("."),
        )
        .unwrap();
        let new = Runtime::reloaded(Arc::new(renamed), &old);
        let (use1, euw1) = (
            MemberId {
                record: 0,
                member: 0,
            },
            MemberId {
                record: 0,
                member: 1,
            },
        );
        new.member(use1).read(|m| {
            assert_eq!(m.health.verdict(), Verdict::Healthy, "its region's verdict");
            assert_eq!(m.agreed, Verdict::Healthy);
            assert!(!m.published, "its own record is not there yet");
            assert_eq!(m.health_check_id, None, "nor its check");
        });
        new.member(euw1).read(|m| {
            assert!(m.published, "a kept member keeps everything");
            assert_eq!(m.health_check_id.as_deref(), Some("hc-old"));
        });
        // Renamed and moved elsewhere: a new member, known afresh.
        let moved = crate::config::parse(
            &BASE
                .replace("set_identifier: use1", "set_identifier: api-use1")
                .replace("[192.0.2.1]", "[192.0.2.9]")
                .replace("rise: 1}", "rise: 1, timeout: 900ms}"),
            std::path::Path::new("."),
        )
        .unwrap();
        let new = Runtime::reloaded(Arc::new(moved), &old);
        new.member(use1)
            .read(|m| assert_eq!(m.health.verdict(), Verdict::Unknown, "its probe changed"));
    }
}
