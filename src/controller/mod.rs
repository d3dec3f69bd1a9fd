//! Tasks and channels: one prober task per member feeds its verdict; a
//! verdict change wakes its zone's reconciler at once; each zone has one
//! reconciler task (so never two applies to one zone at once) that decides,
//! plans and applies, and re-reads the zone at every resync to repair drift.
//!
//! Between resyncs the reconciler plans from what it last read plus what it
//! has since written, so a withdrawal costs one write and no read. When the
//! provider rejects a batch (the zone changed behind our back) it re-reads
//! and re-plans; transient errors are retried with backoff and jitter inside
//! a client-side rate limit shared by every zone.
//!
//! Here: the shared state and `run`, which wires the tasks (and API Gateway
//! discovery); `probing`: schedules and the prober task; `reconcile`: the
//! zone reconciler; `health_checks`: its Route53 health check steps and the
//! task that reads Route53's view of them; `dry_run`: what `plan` prints.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod dry_run;
mod health_checks;
mod leadership;
mod lease_task;
mod probing;
mod reconcile;

pub use dry_run::{dry_run, DryRun};
pub use leadership::{Lease, LeaseSnapshot};
pub use lease_task::lease_loop;
use probing::{probe_loop, spread_window};
pub use reconcile::RateLimiter;
use reconcile::Reconciler;

use crate::auth::TokenSources;
use crate::config::{Config, ProviderKind, RecordConfig, Target};
use crate::decide::policy::Why;
use crate::decide::verdict::Health;
use crate::discovery::Discovery;
use crate::metrics::Metrics;
use crate::probe::{ProbeResult, Prober, TlsConfigs};
use crate::provider::{AliasTarget, CheckerReport, Provider};

/// What is known of one member, shared by its prober, its reconciler and
/// the status endpoint. A std `Mutex`: held for a few field updates only.
#[derive(Clone)]
pub struct MemberState {
    pub health: Health,
    pub last_probe: Option<ProbeResult>,
    /// The provider holds the member's record (as last read or written).
    pub published: bool,
    /// The policy's latest reason, once a reconcile has run.
    pub why: Option<Why>,
    pub conflict: bool,
    /// An API Gateway target's regional endpoint, once discovered.
    pub discovered: Option<AliasTarget>,
    pub discovery_error: Option<String>,
    /// The Route53 health check the member's record carries (or will).
    pub health_check_id: Option<String>,
    /// Why the member's health check could not be created or updated.
    pub health_check_error: Option<String>,
    /// What Route53's checkers last said of that check.
    pub route53_health: Option<Route53Health>,
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
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
    pub changes_applied: u64,
    pub pending_changes: usize,
}

/// Everything the daemon knows, shared with the HTTP handlers.
pub struct Runtime {
    pub config: Arc<Config>,
    /// Per record of `config.records`, per member.
    members: Vec<Vec<Mutex<MemberState>>>,
    pub zones: Mutex<BTreeMap<String, ZoneStatus>>,
    pub metrics: Arc<Metrics>,
    pub provider_kind: &'static str,
    pub started: SystemTime,
    ready: AtomicBool,
    zones_reconciled: AtomicUsize,
    /// With `ha`: this instance's view of the lease, kept across reloads.
    pub lease: Option<Arc<Lease>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
                    .map(|m| {
                        Mutex::new(MemberState {
                            health: Health::new(m.probe.rise, m.probe.fall, now),
                            last_probe: None,
                            published: false,
                            why: None,
                            conflict: false,
                            discovered: None,
                            discovery_error: None,
                            health_check_id: None,
                            health_check_error: None,
                            route53_health: None,
                        })
                    })
                    .collect()
            })
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
            config,
        }
    }

    /// The runtime for a reloaded config: same process start, metrics and
    /// provider, and what `old` knew (see `carry_over`).
    pub fn reloaded(config: Arc<Config>, old: &Runtime) -> Self {
        let mut rt = Runtime::new(config, old.provider_kind, old.metrics.clone());
        rt.started = old.started;
        // `ha` cannot change on reload: the lease and its task stay.
        rt.lease = old.lease.clone();
        rt.carry_over(old);
        rt
    }

    /// Takes over what `old` knows of the members this config still has
    /// (same record name, type and set identifier), so a reload neither
    /// forgets verdicts nor flips readiness. A member whose probe changed
    /// starts over as `unknown` (its record stays as it is until then); a
    /// member whose target changed is discovered again.
    fn carry_over(&self, old: &Runtime) {
        for (ri, r) in self.config.records.iter().enumerate() {
            for (mi, m) in r.members.iter().enumerate() {
                let Some((ori, omi)) = old.find_member(&r.name, &r.rtype, &m.set_identifier) else {
                    continue;
                };
                let om = &old.config.records[ori].members[omi];
                let prev = old.member(ori, omi).clone();
                let mut st = self.member(ri, mi);
                if *om.probe == *m.probe {
                    *st = prev;
                } else {
                    st.published = prev.published;
                    st.health_check_id = prev.health_check_id;
                    st.route53_health = prev.route53_health;
                    st.discovered = prev.discovered;
                }
                if om.target != m.target {
                    st.discovered = None;
                    st.discovery_error = None;
                }
            }
        }
        for (zone, z) in old.zone_status() {
            self.update_zone(&zone, |mine| *mine = z);
        }
        if old.is_ready() {
            self.ready.store(true, Ordering::Release);
        }
        // Series of members that are gone would otherwise stay forever.
        for (ri, r) in old.config.records.iter().enumerate() {
            for (mi, m) in r.members.iter().enumerate() {
                if self
                    .find_member(&r.name, &r.rtype, &m.set_identifier)
                    .is_none()
                {
                    old.metrics.forget_member(&old.labels(ri, mi));
                }
            }
        }
    }

    fn find_member(
        &self,
        name: &str,
        rtype: &crate::provider::RecordType,
        set_identifier: &str,
    ) -> Option<(usize, usize)> {
        self.config.records.iter().enumerate().find_map(|(ri, r)| {
            (r.name == name && r.rtype == *rtype)
                .then(|| {
                    r.members
                        .iter()
                        .position(|m| m.set_identifier == set_identifier)
                        .map(|mi| (ri, mi))
                })
                .flatten()
        })
    }

    /// Whether this instance may write now: always without HA, else while
    /// it holds the lease.
    pub fn may_write(&self) -> bool {
        self.lease.as_ref().is_none_or(|l| l.is_leader())
    }

    /// Ready once every zone has been reconciled successfully; never goes back.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn member(&self, record: usize, member: usize) -> std::sync::MutexGuard<'_, MemberState> {
        lock(&self.members[record][member])
    }

    pub fn zone_status(&self) -> BTreeMap<String, ZoneStatus> {
        lock(&self.zones).clone()
    }

    fn update_zone(&self, zone: &str, f: impl FnOnce(&mut ZoneStatus)) {
        if let Some(z) = lock(&self.zones).get_mut(zone) {
            f(z)
        }
    }

    fn labels(&self, record: usize, member: usize) -> [&str; 3] {
        let r = &self.config.records[record];
        [&r.name, rtype_str(r), &r.members[member].region]
    }
}

fn rtype_str(r: &RecordConfig) -> &'static str {
    match r.rtype {
        crate::provider::RecordType::A => "A",
        crate::provider::RecordType::Aaaa => "AAAA",
        crate::provider::RecordType::Cname => "CNAME",
        _ => "OTHER",
    }
}

/// Runs the daemon until `shutdown` is cancelled: probes, decides,
/// reconciles. Returns once every task has stopped; an apply in flight at
/// shutdown is allowed to finish (bounded), nothing is withdrawn for it.
pub async fn run(
    rt: Arc<Runtime>,
    provider: Arc<dyn Provider>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let tls = TlsConfigs::default();
    let tokens = TokenSources::default();
    let limiter = Arc::new(RateLimiter::new(rt.config.provider.max_requests_per_second));
    let by_zone = rt.config.records_by_zone();
    let probes_stop = shutdown.child_token();
    let mut tasks = tokio::task::JoinSet::new();

    let mut discovered_members = Vec::new();
    for (zone, record_idxs) in by_zone {
        let members = || {
            record_idxs
                .iter()
                .flat_map(|&ri| (0..rt.config.records[ri].members.len()).map(move |mi| (ri, mi)))
        };
        let at_edge = members()
            .filter(|&(ri, mi)| rt.member(ri, mi).health.may_flip())
            .count();
        let signals = Arc::new(ZoneSignals {
            trigger: Notify::new(),
            edge: watch::Sender::new(at_edge),
        });
        let margin = Duration::from_millis(50);
        let longest = |f: &dyn Fn(&crate::config::ProbeSpec) -> Duration| {
            members()
                .map(|(ri, mi)| f(&rt.config.records[ri].members[mi].probe))
                .max()
                .unwrap_or_default()
                + margin
        };
        let settle_limit = longest(&|p| spread_window(p.interval) + p.timeout);
        let settle_quiet = longest(&|p| spread_window(p.interval));
        for &ri in &record_idxs {
            for (mi, member) in rt.config.records[ri].members.iter().enumerate() {
                // Every member's series exists from the start, for alerts.
                let labels = rt.labels(ri, mi);
                rt.metrics.member_healthy.with_label_values(&labels).set(0);
                rt.metrics
                    .member_published
                    .with_label_values(&labels)
                    .set(0);
                if matches!(member.target, Target::ApiGateway { .. }) {
                    discovered_members.push((ri, mi, signals.clone()));
                }
                let prober = Prober::new(member.probe.clone(), &tls, &tokens).map_err(|e| {
                    format!(
                        "{} {}: TLS settings: {e}",
                        rt.config.records[ri].name, member.region
                    )
                })?;
                tasks.spawn(probe_loop(
                    rt.clone(),
                    ri,
                    mi,
                    prober,
                    signals.clone(),
                    probes_stop.clone(),
                ));
            }
        }
        let reconciler = Reconciler {
            rt: rt.clone(),
            provider: provider.clone(),
            limiter: limiter.clone(),
            zone,
            zone_id: None,
            records: record_idxs,
            observed: None,
            checks: Vec::new(),
            unused_checks: Vec::new(),
            more_checks: false,
            shutdown: shutdown.clone(),
            last_write: None,
            settle_limit,
            settle_quiet,
        };
        tasks.spawn(reconciler.run(signals));
    }
    tasks.spawn(health_checks::status_loop(
        rt.clone(),
        provider.clone(),
        limiter.clone(),
        probes_stop.clone(),
    ));
    if !discovered_members.is_empty() {
        let regions = discovered_members
            .iter()
            .map(|&(ri, mi, _)| rt.config.records[ri].members[mi].region.as_str());
        let discovery = Discovery::new(regions, discovery_endpoint(&rt.config)).await;
        tasks.spawn(discovery_loop(
            rt.clone(),
            discovery,
            discovered_members,
            probes_stop.clone(),
        ));
    }
    info!(
        records = rt.config.records.len(),
        provider = rt.provider_kind,
        "daemon started"
    );
    shutdown.cancelled().await;
    info!("stopping: probes stop, an apply in flight finishes");
    probes_stop.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        warn!("an apply did not finish within {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    Ok(())
}

/// How long shutdown waits for an apply in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// What a zone's probers share with its reconciler.
struct ZoneSignals {
    /// A verdict changed: reconcile now.
    trigger: Notify,
    /// How many members are one probe outcome away from a new verdict
    /// (see `Reconciler::settle`).
    edge: watch::Sender<usize>,
}

/// Where API Gateway is asked: the route53 provider's emulator, if any.
fn discovery_endpoint(config: &Config) -> Option<&str> {
    match config.provider.kind {
        ProviderKind::Route53 => config.provider.endpoint_url.as_ref().map(|u| u.as_str()),
        ProviderKind::Memory => None,
    }
}

/// Looks up every API Gateway target, then again every resync interval
/// (every 30 s while any lookup fails). A target that changes wakes its
/// zone's reconciler; a failed lookup leaves the last one in place.
async fn discovery_loop(
    rt: Arc<Runtime>,
    discovery: Discovery,
    members: Vec<(usize, usize, Arc<ZoneSignals>)>,
    stop: CancellationToken,
) {
    loop {
        let mut failed = false;
        for (ri, mi, signals) in &members {
            let m = &rt.config.records[*ri].members[*mi];
            let result = tokio::select! {
                r = discovery.lookup(m) => r,
                _ = stop.cancelled() => return,
            };
            let Some(result) = result else { continue };
            let changed = {
                let mut st = rt.member(*ri, *mi);
                match result {
                    Ok(target) => {
                        st.discovery_error = None;
                        let changed = st.discovered.as_ref() != Some(&target);
                        if changed {
                            info!(record = %rt.config.records[*ri].name, region = %m.region, target = %target.dns_name,
                                zone_id = %target.hosted_zone_id, "API Gateway target discovered");
                            st.discovered = Some(target);
                        }
                        changed
                    }
                    Err(e) => {
                        failed = true;
                        warn!(record = %rt.config.records[*ri].name, region = %m.region, error = %e,
                            "API Gateway target lookup failed; the record stays as it is");
                        rt.metrics
                            .discovery_errors_total
                            .with_label_values(&[&m.region, e.kind()])
                            .inc();
                        st.discovery_error = Some(e.to_string());
                        false
                    }
                }
            };
            if changed {
                signals.trigger.notify_one();
            }
        }
        let wait = if failed {
            Duration::from_secs(30)
        } else {
            rt.config.resync_interval
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
    }
}
