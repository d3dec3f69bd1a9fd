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

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::auth::TokenSources;
use crate::config::{Config, ProviderKind, RecordConfig, Target};
use crate::discovery::Discovery;
use crate::health::{Health, Verdict};
use crate::metrics::Metrics;
use crate::plan::{self, Observed, RecordIntents};
use crate::policy::{self, Why};
use crate::probe::{ProbeResult, Prober, TlsConfigs};
use crate::provider::{AliasTarget, Change, ChangeStatus, Provider, ProviderError, CALL_TIMEOUT};

/// What is known of one member, shared by its prober, its reconciler and
/// the status endpoint. A std `Mutex`: held for a few field updates only.
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
            config,
            members,
            zones: Mutex::new(zones),
            metrics,
            provider_kind,
            started: now,
            ready: AtomicBool::new(false),
            zones_reconciled: AtomicUsize::new(0),
        }
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
            shutdown: shutdown.clone(),
            last_write: None,
            settle_limit,
            settle_quiet,
        };
        tasks.spawn(reconciler.run(signals));
    }
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
    info!("shutting down: probes stop, an apply in flight finishes");
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

/// Probes of one region start within this window of the region's phase.
fn spread_window(interval: Duration) -> Duration {
    (interval / 4).min(Duration::from_millis(500))
}

fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// When a member's first probe runs; later ones follow every interval.
/// Each region has a phase, so regions are spread over the interval; a
/// region's members start within a short window after it (a fixed offset
/// each, so they never drift apart). Together they fail together, and their
/// withdrawal goes out in one or two writes; spread over the window, a
/// thousand of them do not hit the endpoint in the same instant.
fn first_probe_at(interval: Duration, region: &str, member: &str) -> tokio::time::Instant {
    let interval_ms = interval.as_millis().max(1) as u64;
    let window_ms = spread_window(interval).as_millis().max(1) as u64;
    let phase = fnv(region.bytes()) % interval_ms + fnv(member.bytes()) % window_ms;
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let wait = (phase + interval_ms - now_ms % interval_ms) % interval_ms;
    tokio::time::Instant::now() + Duration::from_millis(wait)
}

/// Up to 5% of the interval, at most 20 ms: enough to avoid lockstep with
/// the server's own timers, small enough to keep a region's members together.
fn jitter(interval: Duration) -> Duration {
    let max = (interval / 20).min(Duration::from_millis(20));
    if max.is_zero() {
        return Duration::ZERO;
    }
    rand::rng().random_range(Duration::ZERO..max)
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

async fn probe_loop(
    rt: Arc<Runtime>,
    ri: usize,
    mi: usize,
    prober: Prober,
    signals: Arc<ZoneSignals>,
    stop: CancellationToken,
) {
    let interval = prober.spec().interval;
    let labels = rt.labels(ri, mi);
    let region = labels[2];
    // The schedule itself stays on the region's phase; jitter is applied to
    // each tick, never accumulated, so members of a region stay together.
    let member = &rt.config.records[ri].name;
    let set_id = &rt.config.records[ri].members[mi].set_identifier;
    let target = rt.config.records[ri].members[mi].target.clone();
    let mut tick = first_probe_at(interval, region, &format!("{member} {set_id}"));
    let duration = rt.metrics.probe_duration_seconds.with_label_values(&labels);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(tick + jitter(interval)) => {}
            _ = stop.cancelled() => return,
        }
        // An API Gateway target is probed at its regional endpoint (unless
        // connect_to says otherwise); never through the public name, which
        // resolves to the very record being decided.
        let via = match (&target, &prober.spec().connect_to) {
            (Target::ApiGateway { .. }, None) => {
                let discovered = rt
                    .member(ri, mi)
                    .discovered
                    .as_ref()
                    .map(|a| a.dns_name.clone());
                if discovered.is_none() {
                    tick += interval;
                    continue;
                }
                discovered
            }
            _ => None,
        };
        // A probe cut short by shutdown is not a failure: it is dropped.
        // Boxed, so an idle prober task holds no probe state.
        let result = tokio::select! {
            r = Box::pin(prober.probe_via(via.as_deref())) => r,
            _ = stop.cancelled() => return,
        };
        duration.observe(result.timings.total.as_secs_f64());
        let outcome = match &result.failure {
            None => "success",
            Some(f) => f.kind.as_str(),
        };
        rt.metrics
            .probes_total
            .with_label_values(&[labels[0], labels[1], labels[2], outcome])
            .inc();
        let verdict_input = match &result.failure {
            None => Ok(()),
            Some(f) => Err(f.to_string()),
        };
        let (transition, was_edge, is_edge) = {
            let mut m = rt.member(ri, mi);
            let was_edge = m.health.may_flip();
            let t = m.health.observe(verdict_input, result.at);
            m.last_probe = Some(result);
            (t, was_edge, m.health.may_flip())
        };
        // Counted before the reconciler hears of the change.
        match (was_edge, is_edge) {
            (false, true) => signals.edge.send_modify(|n| *n += 1),
            (true, false) => signals.edge.send_modify(|n| *n = n.saturating_sub(1)),
            _ => {}
        }
        if let Some(t) = transition {
            let reason = rt.member(ri, mi).health.reason().map(str::to_string);
            info!(
                record = labels[0],
                region,
                from = t.from.as_str(),
                to = t.to.as_str(),
                reason = reason.as_deref().unwrap_or(""),
                "verdict changed"
            );
            rt.metrics
                .verdict_changes_total
                .with_label_values(&[labels[0], labels[1], labels[2], t.to.as_str()])
                .inc();
            rt.metrics
                .member_healthy
                .with_label_values(&labels)
                .set(i64::from(t.to == Verdict::Healthy));
            signals.trigger.notify_one();
        }
        // Keep the schedule; skip ticks missed while a probe ran long.
        let now = tokio::time::Instant::now();
        tick += interval;
        while tick <= now {
            tick += interval;
        }
    }
}

/// Spaces requests to the provider: at most `rate` per second across every
/// zone, no bursts (the account's 5/s is shared with other tools).
pub struct RateLimiter {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(rate: f64) -> Self {
        RateLimiter {
            spacing: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            next: Mutex::new(None),
        }
    }

    pub async fn acquire(&self) {
        let slot = {
            let mut next = lock(&self.next);
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.spacing);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// Backoff before retry `attempt` (1-based): doubling from 200 ms, capped at
/// 30 s, with full jitter on the upper half.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(1 << attempt.min(8).saturating_sub(1));
    let base = base.min(Duration::from_secs(30));
    base / 2 + rand::rng().random_range(Duration::ZERO..=base / 2)
}

/// Transient errors are retried this many times within one reconcile.
const CALL_ATTEMPTS: u32 = 4;
/// Re-read and re-plan at most this often within one reconcile.
const REPLANS: usize = 3;

struct Reconciler {
    rt: Arc<Runtime>,
    provider: Arc<dyn Provider>,
    limiter: Arc<RateLimiter>,
    zone: String,
    zone_id: Option<String>,
    records: Vec<usize>,
    /// The zone as last read, plus our writes since. `None`: read it.
    observed: Option<Observed>,
    shutdown: CancellationToken,
    /// When this zone was last written to.
    last_write: Option<Instant>,
    /// The longest spread window plus probe timeout of the zone's members.
    settle_limit: Duration,
    /// The longest spread window of the zone's members.
    settle_quiet: Duration,
}

/// A write within this long of the previous one is part of a burst.
const BURST: Duration = Duration::from_secs(1);

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the zone kept changing under us: {0}")]
    Replan(ProviderError),
}

impl ReconcileError {
    fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Provider(e) => e.kind(),
            ReconcileError::Replan(_) => "replan_exhausted",
        }
    }
}

impl Reconciler {
    async fn run(mut self, signals: Arc<ZoneSignals>) {
        let resync = self.rt.config.resync_interval;
        let mut edge = signals.edge.subscribe();
        let mut woken_by_verdict = false;
        let mut next_resync = tokio::time::Instant::now() + resync;
        let mut failures = 0u32;
        let mut retry_at;
        let mut was_ready = false;
        loop {
            if woken_by_verdict && self.last_write.is_some_and(|t| t.elapsed() < BURST) {
                self.settle(&mut edge).await;
            }
            let start = Instant::now();
            match self.reconcile().await {
                Ok(()) => {
                    failures = 0;
                    retry_at = None;
                    let now = SystemTime::now();
                    self.rt.update_zone(&self.zone, |z| {
                        z.last_success = Some(now);
                        z.last_error = None;
                    });
                    self.rt
                        .metrics
                        .last_reconcile_success_timestamp_seconds
                        .set(
                            now.duration_since(SystemTime::UNIX_EPOCH)
                                .unwrap_or_default()
                                .as_secs_f64(),
                        );
                    if !was_ready {
                        was_ready = true;
                        self.mark_reconciled();
                    }
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff(failures);
                    error!(zone = %self.zone, error = %e, retry_in = ?wait, "reconcile failed");
                    self.rt
                        .metrics
                        .reconcile_errors_total
                        .with_label_values(&[e.kind()])
                        .inc();
                    let msg = e.to_string();
                    self.rt
                        .update_zone(&self.zone, |z| z.last_error = Some(msg));
                    // Whether a failed write landed is unknown: read again.
                    self.observed = None;
                    retry_at = Some(tokio::time::Instant::now() + wait);
                }
            }
            self.rt
                .metrics
                .reconcile_duration_seconds
                .with_label_values(&[&self.zone])
                .observe(start.elapsed().as_secs_f64());

            let retry = async {
                match retry_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            woken_by_verdict = false;
            tokio::select! {
                _ = signals.trigger.notified() => woken_by_verdict = true,
                _ = tokio::time::sleep_until(next_resync) => {
                    debug!(zone = %self.zone, "resync");
                    self.observed = None;
                    next_resync = tokio::time::Instant::now() + resync;
                }
                _ = retry => {}
                _ = self.shutdown.cancelled() => return,
            }
            if self.shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// Waits until no member is one probe outcome away from a new verdict,
    /// or until that count has not fallen for one spread window (the rest of
    /// the edge is waiting for a later round), at most one spread window
    /// plus one probe timeout. Used only for a write that follows another
    /// within a second, which the rate limit would delay anyway: the first
    /// withdrawal of a burst goes at once, and when a region fails across
    /// many records the rest of its members, whose last probes land over the
    /// spread window, go together in the next write.
    async fn settle(&self, edge: &mut watch::Receiver<usize>) {
        let now = tokio::time::Instant::now();
        let cap = now + self.settle_limit;
        let mut quiet_until = (now + self.settle_quiet).min(cap);
        let mut last = *edge.borrow_and_update();
        while last > 0 {
            tokio::select! {
                changed = edge.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(quiet_until) => return,
                _ = self.shutdown.cancelled() => return,
            }
            let count = *edge.borrow_and_update();
            // Only members leaving the edge (verdicts landing) are progress;
            // members reaching it are a later round.
            if count < last {
                quiet_until = (tokio::time::Instant::now() + self.settle_quiet).min(cap);
            }
            last = count;
        }
    }

    fn mark_reconciled(&self) {
        let done = self.rt.zones_reconciled.fetch_add(1, Ordering::AcqRel) + 1;
        if done >= lock(&self.rt.zones).len() && !self.rt.ready.swap(true, Ordering::AcqRel) {
            self.rt.metrics.ready.set(1);
            info!("ready: every zone reconciled");
        }
    }

    /// One provider request: rate-limited, timed, counted, and retried on
    /// transient errors with backoff.
    async fn call<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let start = Instant::now();
            let result = match tokio::time::timeout(CALL_TIMEOUT, f()).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::Timeout(format!(
                    "{operation} took longer than {CALL_TIMEOUT:?}"
                ))),
            };
            let m = &self.rt.metrics;
            m.provider_request_duration_seconds
                .with_label_values(&[operation])
                .observe(start.elapsed().as_secs_f64());
            let outcome = result.as_ref().map_or_else(|e| e.kind(), |_| "ok");
            m.provider_requests_total
                .with_label_values(&[operation, outcome])
                .inc();
            match result {
                Err(e) if e.is_transient() && attempt < CALL_ATTEMPTS => {
                    let wait = backoff(attempt);
                    warn!(zone = %self.zone, operation, error = %e, retry_in = ?wait, "provider call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn zone_id(&mut self) -> Result<String, ProviderError> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        let provider = self.provider.clone();
        let name = self.zone.clone();
        let zone = self.call("find_zone", || provider.find_zone(&name)).await?;
        self.rt
            .update_zone(&self.zone, |z| z.id = Some(zone.id.clone()));
        self.zone_id = Some(zone.id.clone());
        Ok(zone.id)
    }

    async fn reconcile(&mut self) -> Result<(), ReconcileError> {
        let zone_id = self.zone_id().await?;
        let mut last_rejection = None;
        for _ in 0..REPLANS {
            if self.observed.is_none() {
                let provider = self.provider.clone();
                let records = self
                    .call("list_records", || provider.list_records(&zone_id))
                    .await?;
                self.observed = Some(Observed::new(records));
            }
            let changes = self.decide_and_plan();
            if changes.is_empty() {
                return Ok(());
            }
            match self.apply(&zone_id, changes).await {
                Ok(()) => {
                    self.refresh_published();
                    return Ok(());
                }
                Err(ProviderError::InvalidChangeBatch(msg)) => {
                    warn!(zone = %self.zone, error = %msg, "batch rejected; re-reading the zone");
                    self.observed = None;
                    last_rejection = Some(ProviderError::InvalidChangeBatch(msg));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ReconcileError::Replan(
            last_rejection.expect("the loop only continues after a rejection"),
        ))
    }

    /// Runs the policy for every record of the zone, records the decisions
    /// for status and metrics, and returns the plan.
    fn decide_and_plan(&self) -> Vec<Change> {
        let observed = self.observed.as_ref().expect("read before planning");
        let claims = observed.claims();
        let owner = &self.rt.config.owner;
        let mut intents = Vec::with_capacity(self.records.len());
        for &ri in &self.records {
            let record = &self.rt.config.records[ri];
            let verdicts: Vec<Verdict> = (0..record.members.len())
                .map(|mi| self.rt.member(ri, mi).health.verdict())
                .collect();
            let discovered: Vec<Option<AliasTarget>> = (0..record.members.len())
                .map(|mi| self.rt.member(ri, mi).discovered.clone())
                .collect();
            let inputs =
                plan::member_inputs(observed, &claims, owner, record, &verdicts, &discovered);
            let decisions = policy::decide(record.min_healthy, &inputs);
            let mut fail_open = false;
            for (mi, (d, input)) in decisions.iter().zip(&inputs).enumerate() {
                let labels = self.rt.labels(ri, mi);
                let previous = {
                    let mut m = self.rt.member(ri, mi);
                    m.conflict = input.conflict;
                    m.why.replace(d.why)
                };
                if d.why.is_blocked() && previous != Some(d.why) {
                    warn!(record = %record.name, region = labels[2], reason = d.why.as_str(),
                        "withdrawal of an unhealthy member blocked by policy");
                    self.rt
                        .metrics
                        .withdrawals_blocked_total
                        .with_label_values(&[labels[0], labels[1], d.why.as_str()])
                        .inc();
                }
                if input.conflict && previous != Some(Why::Conflict) {
                    warn!(record = %record.name, region = labels[2],
                        set_identifier = %record.members[mi].set_identifier,
                        "a record with this set identifier exists without our ownership marker; leaving it alone (set adopt: true to take it over)");
                }
                fail_open |= matches!(d.why, Why::LastMember | Why::FailOpen);
                self.rt
                    .metrics
                    .member_conflict
                    .with_label_values(&labels)
                    .set(i64::from(input.conflict));
            }
            self.rt
                .metrics
                .record_fail_open
                .with_label_values(&[&record.name, rtype_str(record)])
                .set(i64::from(fail_open));
            intents.push(RecordIntents {
                record,
                intents: decisions.iter().map(|d| d.intent).collect(),
                discovered,
            });
        }
        self.refresh_published();
        plan::plan_zone(owner, observed, &intents)
    }

    /// Publishes what the provider holds now into status and metrics.
    fn refresh_published(&self) {
        let Some(observed) = self.observed.as_ref() else {
            return;
        };
        for &ri in &self.records {
            let record = &self.rt.config.records[ri];
            for (mi, member) in record.members.iter().enumerate() {
                let present = observed.member_record(record, member).is_some();
                self.rt.member(ri, mi).published = present;
                self.rt
                    .metrics
                    .member_published
                    .with_label_values(&self.rt.labels(ri, mi))
                    .set(i64::from(present));
            }
        }
    }

    async fn apply(&mut self, zone_id: &str, changes: Vec<Change>) -> Result<(), ProviderError> {
        for batch in plan::batches(changes) {
            for c in &batch {
                info!(zone = %self.zone, change = %c, "applying");
            }
            let provider = self.provider.clone();
            let info = self
                .call("change", || provider.change(zone_id, &batch))
                .await?;
            info!(zone = %self.zone, change_id = %info.id, changes = batch.len(), "change accepted");
            self.last_write = Some(Instant::now());
            if let Some(observed) = self.observed.as_mut() {
                observed.apply(&batch);
            }
            self.rt.update_zone(&self.zone, |z| z.changes_applied += 1);
            if info.status == ChangeStatus::Pending {
                self.track(info.id);
            }
        }
        Ok(())
    }

    /// Follows a change until INSYNC, for the propagation metric and status.
    fn track(&self, change_id: String) {
        let rt = self.rt.clone();
        let provider = self.provider.clone();
        let limiter = self.limiter.clone();
        let zone = self.zone.clone();
        let shutdown = self.shutdown.clone();
        rt.update_zone(&zone, |z| z.pending_changes += 1);
        tokio::spawn(async move {
            let accepted = Instant::now();
            // Route53 is usually INSYNC within 60 s; give up after 10 min.
            let deadline = accepted + Duration::from_secs(600);
            let mut wait = Duration::from_millis(500);
            while Instant::now() < deadline {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => break,
                }
                limiter.acquire().await;
                let status = provider.change_status(&change_id).await;
                let outcome = status.as_ref().map_or_else(|e| e.kind(), |_| "ok");
                rt.metrics
                    .provider_requests_total
                    .with_label_values(&["change_status", outcome])
                    .inc();
                if let Ok(ChangeStatus::Insync) = status {
                    rt.metrics
                        .change_propagation_seconds
                        .with_label_values(&[&zone])
                        .observe(accepted.elapsed().as_secs_f64());
                    debug!(zone = %zone, change_id = %change_id, "change INSYNC");
                    break;
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            rt.update_zone(&zone, |z| {
                z.pending_changes = z.pending_changes.saturating_sub(1)
            });
        });
    }
}

/// Probes every member once, reads the provider, and returns what a
/// reconcile would do: the decisions per record, and the changes. For `plan`.
pub async fn dry_run(
    config: &Config,
    provider: &dyn Provider,
) -> Result<(Vec<Vec<policy::MemberDecision>>, Vec<Change>), String> {
    // API Gateway targets first: the probe goes to the regional endpoint and
    // the record points at it. A target that cannot be found is reported
    // and its member is left as it is (verdict unknown).
    let members = || {
        config
            .records
            .iter()
            .enumerate()
            .flat_map(|(ri, r)| r.members.iter().enumerate().map(move |(mi, m)| (ri, mi, m)))
    };
    let mut discovered: BTreeMap<(usize, usize), Option<AliasTarget>> = BTreeMap::new();
    let apigw: Vec<_> = members()
        .filter(|(_, _, m)| matches!(m.target, Target::ApiGateway { .. }))
        .collect();
    if !apigw.is_empty() {
        let regions = apigw.iter().map(|(_, _, m)| m.region.as_str());
        let discovery = Discovery::new(regions, discovery_endpoint(config)).await;
        for (ri, mi, m) in apigw {
            let found = match discovery.lookup(m).await {
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => {
                    warn!(region = %m.region, error = %e, "API Gateway target lookup failed");
                    None
                }
                None => continue,
            };
            discovered.insert((ri, mi), found);
        }
    }
    let tls = TlsConfigs::default();
    let tokens = TokenSources::default();
    let mut set = tokio::task::JoinSet::new();
    for (ri, mi, m) in members() {
        let via = match discovered.get(&(ri, mi)) {
            Some(Some(t)) if m.probe.connect_to.is_none() => Some(t.dns_name.clone()),
            Some(None) if m.probe.connect_to.is_none() => continue,
            _ => None,
        };
        let prober = Prober::new(m.probe.clone(), &tls, &tokens)?;
        set.spawn(async move { (ri, mi, prober.probe_via(via.as_deref()).await.ok()) });
    }
    let mut ok: BTreeMap<(usize, usize), bool> = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let (ri, mi, passed) = r.map_err(|e| e.to_string())?;
        ok.insert((ri, mi), passed);
    }
    let mut decisions = vec![Vec::new(); config.records.len()];
    let mut changes = Vec::new();
    for (zone, idxs) in config.records_by_zone() {
        let z = provider.find_zone(&zone).await.map_err(|e| e.to_string())?;
        let records = provider
            .list_records(&z.id)
            .await
            .map_err(|e| e.to_string())?;
        let observed = Observed::new(records);
        let claims = observed.claims();
        let mut intents = Vec::new();
        for &ri in &idxs {
            let record = &config.records[ri];
            let verdicts: Vec<Verdict> = (0..record.members.len())
                .map(|mi| match ok.get(&(ri, mi)) {
                    Some(true) => Verdict::Healthy,
                    Some(false) => Verdict::Unhealthy,
                    None => Verdict::Unknown,
                })
                .collect();
            let targets: Vec<Option<AliasTarget>> = (0..record.members.len())
                .map(|mi| discovered.get(&(ri, mi)).cloned().flatten())
                .collect();
            let inputs = plan::member_inputs(
                &observed,
                &claims,
                &config.owner,
                record,
                &verdicts,
                &targets,
            );
            let d = policy::decide(record.min_healthy, &inputs);
            intents.push(RecordIntents {
                record,
                intents: d.iter().map(|d| d.intent).collect(),
                discovered: targets,
            });
            decisions[ri] = d;
        }
        changes.extend(plan::plan_zone(&config.owner, &observed, &intents));
    }
    Ok((decisions, changes))
}
