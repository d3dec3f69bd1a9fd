//! What the daemon knows, sorted by how long it lives:
//! - [`Process`]: built once in `main` and shared by every config
//!   generation (metrics, events, on-call's controls, the lease, the
//!   token sources, the Route53 limiter, the start time): a reload cannot
//!   forget a field of it, because it is not copied;
//! - [`Runtime`]: one config generation, made from the previous one by
//!   `Runtime::reloaded` (`carry`): the config, the member table
//!   (`members`: one row per member, changed only through the named
//!   writers of its handle, `controller::member`), the zones (`zones`),
//!   views, parity, readiness, the health check listing (`listing`);
//! - `panics`: the long-running tasks that panicked (`supervise`);
//! - `signals`: every wake-up channel between the tasks.
//!
//! The std mutexes are held for a few field updates only, never across an
//! `.await` (`lock`).

mod book;
mod carry;
pub mod control_plane;
pub mod controls_kept;
mod listing;
mod lock;
mod members;
pub mod panics;
pub mod practice_book;
mod signals;
pub mod traffic_book;
mod zones;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tracing::info;

pub use book::ControlBook;
pub(in crate::controller) use listing::CheckListing;
pub(in crate::controller) use lock::lock;
pub use members::{MemberId, MemberState, Route53Health};
pub(in crate::controller) use signals::Signals;
pub use zones::ZoneStatus;

use super::calls::Calls;
use super::leadership::Lease;
use crate::config::{Config, RecordConfig};
use crate::decide::controls::Controls;
use crate::decide::correlated::{self, Passes};
use crate::decide::verdict::Verdict;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::parity::ParityReport;
use crate::probe::auth::TokenSources;
use crate::provider::Provider;
use crate::rate_limit::RateLimiter;

/// With `ha`: how this instance's view exchange with the others goes.
#[derive(Debug, Clone, Default)]
pub struct ViewsStatus {
    pub last_write: Option<SystemTime>,
    pub last_read: Option<SystemTime>,
    /// The instances whose views were last read (this one aside).
    pub instances: usize,
    pub last_error: Option<String>,
}

/// What lives as long as the process: every config generation shares it.
pub struct Process {
    pub metrics: Arc<Metrics>,
    pub provider_kind: &'static str,
    pub started: SystemTime,
    /// With `ha`: this instance's view of the lease (`ha` cannot change
    /// on reload: the lease and its task stay).
    pub lease: Option<Arc<Lease>>,
    /// On-call's drains and freezes.
    pub controls: Arc<ControlBook>,
    /// The event timeline.
    pub events: Arc<Events>,
    /// The probes' OAuth2 token sources (a reload does not fetch every
    /// token again).
    pub tokens: Arc<TokenSources>,
    /// The one Route53 rate limiter of the process, every caller's (the
    /// reconcilers, the lease, the views, the controls, the admin routes,
    /// the trackers).
    pub limiter: Arc<RateLimiter>,
    /// Route53's control plane as the reconciles find it.
    control_plane: Mutex<control_plane::ControlPlane>,
    /// The long-running tasks that panicked (`supervise`).
    pub tasks: panics::TaskBoard,
    /// The state store, when the config names one (set once at start:
    /// `state_store` cannot change on reload).
    store: std::sync::OnceLock<Arc<crate::store::Metered>>,
    /// Practice runs' history and what holds them back.
    pub practice: Arc<practice_book::PracticeBook>,
    /// What the traffic confirmation found of each withdrawal.
    pub traffic: Arc<traffic_book::TrafficBook>,
}

impl Process {
    /// The process's state for its first config.
    pub fn new(config: &Config, provider_kind: &'static str, metrics: Arc<Metrics>) -> Self {
        Process {
            metrics,
            provider_kind,
            started: SystemTime::now(),
            lease: config.ha.clone().map(|ha| Arc::new(Lease::new(ha))),
            controls: Arc::default(),
            events: Arc::default(),
            tokens: Arc::default(),
            limiter: Arc::new(RateLimiter::new(config.provider.max_requests_per_second)),
            control_plane: Mutex::default(),
            tasks: Default::default(),
            practice: Arc::default(),
            traffic: Arc::default(),
            store: std::sync::OnceLock::new(),
        }
    }

    /// Gives the process its state store (once, before the tasks start),
    /// counted and remembered for status (`store::Metered`).
    pub fn set_store(&self, store: Arc<crate::store::Metered>) {
        let _ = self.store.set(store);
    }

    /// The state store, if the config names one.
    pub fn store(&self) -> Option<Arc<dyn crate::store::StateStore>> {
        self.store
            .get()
            .map(|s| s.clone() as Arc<dyn crate::store::StateStore>)
    }

    /// What status shows of the state store.
    pub fn store_status(&self) -> Option<crate::store::StoreStatus> {
        self.store.get().map(|s| s.status())
    }

    fn control_plane(&self) -> std::sync::MutexGuard<'_, control_plane::ControlPlane> {
        self.control_plane.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A zone's reconcile failed (`server`: a server error or a timeout).
    pub(in crate::controller) fn control_plane_failed(&self, server: bool, error: &str) {
        let event = self
            .control_plane()
            .failed(server, SystemTime::now(), error);
        if let Some(e) = event {
            self.metrics.provider.control_plane_impaired.set(1);
            self.events.emit(e);
        }
    }

    /// A zone's reconcile passed.
    pub(in crate::controller) fn control_plane_passed(&self) {
        let event = self.control_plane().passed();
        if let Some(e) = event {
            self.metrics.provider.control_plane_impaired.set(0);
            self.events.emit(e);
        }
    }

    /// What status shows; `lever`: one is configured.
    pub fn control_plane_status(&self, lever: bool) -> control_plane::ControlPlaneSnapshot {
        self.control_plane().snapshot(lever)
    }

    /// The one way to reach the provider: every caller's requests go
    /// through the process's one limiter and metrics, and with `ha` its
    /// writes are fenced by the lease (`.unfenced()` for a caller whose
    /// writes are on-call's or its own lease's).
    pub fn calls(&self, provider: &Arc<dyn Provider>) -> Calls {
        Calls::new(
            provider.clone(),
            self.limiter.clone(),
            self.metrics.clone(),
            self.lease.clone(),
        )
    }
}

/// One config generation: everything the daemon knows under it, shared
/// with the HTTP handlers.
pub struct Runtime {
    /// The process's state, read through the runtime (`rt.metrics`):
    /// callers need not know which lifetime a field has.
    process: Arc<Process>,
    pub config: Arc<Config>,
    /// Per record of `config.records`, per member.
    members: Vec<Vec<Mutex<MemberState>>>,
    zones: Mutex<BTreeMap<String, ZoneStatus>>,
    ready: AtomicBool,
    /// The zones reconciled successfully at least once (a reconciler
    /// started again after a panic counts its zone once).
    zones_reconciled: Mutex<std::collections::BTreeSet<String>>,
    /// Members this instance sees unhealthy (to know when it sees all down).
    locally_unhealthy: AtomicUsize,
    member_count: usize,
    views: Mutex<ViewsStatus>,
    /// The latest passes across every member, for `uncorroborated`.
    passes: Mutex<Passes<MemberId>>,
    /// Per record (`name type`): its last parity report.
    parity: Mutex<BTreeMap<String, ParityReport>>,
    /// The account's health checks as last listed.
    pub(in crate::controller) check_listing: CheckListing,
    /// The wake-up channels between the tasks.
    pub(in crate::controller) signals: Signals,
    /// The data-plane lever, once `controller::run` started it.
    pub lever: std::sync::OnceLock<Arc<crate::lever::Lever>>,
}

impl std::ops::Deref for Runtime {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl Runtime {
    /// The first config generation of a process.
    pub fn new(config: Arc<Config>, provider_kind: &'static str, metrics: Arc<Metrics>) -> Self {
        let process = Arc::new(Process::new(&config, provider_kind, metrics));
        Runtime::within(process, config)
    }

    /// A config generation of `process`, knowing nothing yet.
    pub fn within(process: Arc<Process>, config: Arc<Config>) -> Self {
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
        let zones = config
            .records_by_zone()
            .into_keys()
            .map(|z| (z, ZoneStatus::default()))
            .collect();
        Runtime {
            process,
            members,
            zones: Mutex::new(zones),
            ready: AtomicBool::new(false),
            zones_reconciled: Mutex::default(),
            locally_unhealthy: AtomicUsize::new(0),
            member_count,
            views: Mutex::new(ViewsStatus::default()),
            passes: Mutex::new(Passes::default()),
            parity: Mutex::new(BTreeMap::new()),
            check_listing: CheckListing::default(),
            signals: Signals::new(&config),
            lever: std::sync::OnceLock::new(),
            config,
        }
    }

    /// A member's switch as decisions count it (`Lever::counted`); `None`:
    /// it has none.
    pub fn switch_of(
        &self,
        member: &crate::config::MemberConfig,
    ) -> Option<crate::decide::lever::Switch> {
        member.routing_control.as_ref().map(|arn| {
            self.lever
                .get()
                .map_or(crate::decide::lever::Switch::Unknown, |l| l.counted(arn))
        })
    }

    /// The process's state, for the next config generation.
    pub fn process(&self) -> Arc<Process> {
        self.process.clone()
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

    pub(in crate::controller) fn slot(&self, id: MemberId) -> &Mutex<MemberState> {
        &self.members[id.record][id.member]
    }

    /// Whether this instance may write now: always without HA, else while
    /// it holds the lease.
    pub fn may_write(&self) -> bool {
        self.lease.as_ref().is_none_or(|l| l.is_leader())
    }

    /// While this instance may write, the lease's term it writes under
    /// (0 without `ha`): the fencing token its writes name.
    pub fn writing_term(&self) -> Option<u64> {
        match &self.lease {
            None => Some(0),
            Some(l) if l.is_leader() => Some(l.snapshot().term.unwrap_or_default()),
            Some(_) => None,
        }
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

    /// Where on-call's controls are kept: the state store when there is
    /// one, else TXT records in the control zone (`calls` for on-call's
    /// writes and the reads, `fenced` for the holder's deletions).
    pub fn controls_kept<'a>(
        &'a self,
        calls: &'a Calls,
        fenced: &'a Calls,
    ) -> controls_kept::ControlsKept<'a> {
        match self.store() {
            Some(s) => controls_kept::ControlsKept::Store(s),
            None => controls_kept::ControlsKept::Route53 {
                calls,
                fenced,
                zone: self.config.control_zone(),
            },
        }
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

    /// Ready once every zone has been reconciled successfully (a latch),
    /// while no long-running task has just panicked (`supervise`).
    pub fn is_ready(&self) -> bool {
        self.has_reconciled() && self.tasks.steady(SystemTime::now())
    }

    /// Every zone has been reconciled successfully once (the latch).
    pub fn has_reconciled(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// One more zone was reconciled for the first time; the last one makes
    /// the daemon ready.
    pub(super) fn zone_reconciled(&self, zone: &str) {
        let done = {
            let mut reconciled = lock(&self.zones_reconciled);
            reconciled.insert(zone.to_string());
            reconciled.len()
        };
        if done >= lock(&self.zones).len() && !self.ready.swap(true, Ordering::AcqRel) {
            self.metrics.reconcile.ready.set(1);
            info!("ready: every zone reconciled");
        }
    }

    pub fn zone_status(&self) -> BTreeMap<String, ZoneStatus> {
        lock(&self.zones).clone()
    }

    /// Tells every reconciler to read its zone again (something outside
    /// them changed it).
    pub fn zones_changed(&self) {
        self.signals.zones_changed();
    }

    /// Reads one zone's status; the lock is held for `f` only.
    pub(super) fn read_zone<R>(&self, zone: &str, f: impl FnOnce(&ZoneStatus) -> R) -> Option<R> {
        lock(&self.zones).get(zone).map(f)
    }

    fn update_zone(&self, zone: &str, f: impl FnOnce(&mut ZoneStatus)) {
        if let Some(z) = lock(&self.zones).get_mut(zone) {
            f(z)
        }
    }
}

fn parity_key(r: &RecordConfig) -> String {
    format!("{} {}", r.name, r.rtype)
}

#[cfg(test)]
mod tests;
