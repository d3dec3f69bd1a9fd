//! The tasks, and the state they share. One prober task per member feeds
//! its verdict; a verdict change wakes its zone's reconciler at once; each
//! zone has one reconciler task (so never two applies to one zone at once)
//! that gathers the inputs, asks `decide::zone` for the decision and
//! carries it out, and re-reads the zone at every resync to repair drift.
//!
//! Between resyncs the reconciler plans from what it last read plus what it
//! has since written, so a withdrawal costs one write and no read. When the
//! provider rejects a batch (the zone changed behind our back) it re-reads
//! and re-plans; transient errors are retried with backoff and jitter inside
//! a client-side rate limit shared by every zone.
//!
//! Here: `run`, which wires the tasks (and API Gateway discovery).
//! - `state`: the shared state; `member`: the handle it changes through;
//! - `calls`: every provider request (rate limit, retries, the HA fence);
//! - `probing`: probe schedules and the prober task;
//! - `reconcile`: the zone reconciler; `checks`: its health check calls;
//!   `isolate`: a record Route53 refuses is held out, not retried;
//!   `noting`: what its decisions mean for status, metrics and events;
//! - `route53_view`: the task that reads Route53's view of each check;
//! - `leadership` and `lease_task`: the HA lease, as held and as renewed;
//! - `views`: with `ha`, the instances' views, for the quorum;
//! - `controls`: on-call's drains and freezes, as read and written;
//! - `preview`: what the `plan` command prints.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod calls;
mod checks;
mod controls;
mod isolate;
mod leadership;
mod lease_task;
mod member;
mod noting;
pub mod parity_task;
mod preview;
mod probing;
mod reconcile;
mod route53_view;
mod scrape;
mod state;
mod views;

pub use calls::{Calls, RateLimiter};
pub use controls::{control_event, ControlBook};
pub use leadership::{Lease, LeaseSnapshot};
pub use lease_task::lease_loop;
pub use member::{Member, Probed};
pub use preview::{preview, Preview};
use probing::{probe_loop, spread_window};
use reconcile::Reconciler;
pub use state::{MemberId, MemberState, Route53Health, Runtime, ViewsStatus, ZoneStatus};

use crate::config::{Config, ProviderKind, Target};
use crate::discovery::{Discovery, DiscoveryError};
use crate::probe::{Prober, TlsConfigs};
use crate::provider::Provider;

/// Runs the daemon until `shutdown` is cancelled: probes, decides,
/// reconciles. Returns once every task has stopped; an apply in flight at
/// shutdown is allowed to finish (bounded), nothing is withdrawn for it.
pub async fn run(
    rt: Arc<Runtime>,
    provider: Arc<dyn Provider>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let tls = TlsConfigs::default();
    let tokens = rt.tokens.clone();
    let limiter = rt.limiter.clone();
    let by_zone = rt.config.records_by_zone();
    let probes_stop = shutdown.child_token();
    let mut tasks = tokio::task::JoinSet::new();

    let mut discovered_members = Vec::new();
    let mut all_members = Vec::new();
    for (zone, record_idxs) in by_zone {
        let members: Vec<MemberId> = rt.members_of(&record_idxs).collect();
        let at_edge = members
            .iter()
            .filter(|&&id| rt.member(id).read(|m| m.health.unsettled()))
            .count();
        let signals = Arc::new(ZoneSignals {
            trigger: Notify::new(),
            edge: watch::Sender::new(at_edge),
        });
        let margin = Duration::from_millis(50);
        let longest = |f: &dyn Fn(&crate::config::ProbeSpec) -> Duration| {
            members
                .iter()
                .map(|&id| f(&rt.member(id).config().probe))
                .max()
                .unwrap_or_default()
                + margin
        };
        let pace = reconcile::Pace {
            settle_limit: longest(&|p| spread_window(p.interval) + p.timeout),
            settle_quiet: longest(&|p| spread_window(p.interval) + p.fast_interval),
            recheck: members
                .iter()
                .map(|&id| rt.member(id).config().probe.fast_interval)
                .min()
                .unwrap_or(Duration::from_secs(1)),
        };
        for &id in &members {
            let member = rt.member(id);
            let labels = member.labels().values();
            all_members.push((id, signals.clone()));
            if matches!(member.config().target, Target::ApiGateway { .. }) {
                discovered_members.push((id, signals.clone()));
            }
            let prober = Prober::new(member.config().probe.clone(), &tls, &tokens)
                .map_err(|e| format!("{} {}: TLS settings: {e}", labels[0], labels[2]))?;
            tasks.spawn(probe_loop(
                rt.clone(),
                id,
                prober,
                signals.clone(),
                probes_stop.clone(),
            ));
        }
        let calls = Calls::new(
            provider.clone(),
            limiter.clone(),
            rt.metrics.clone(),
            rt.lease.clone(),
        )
        .retried(reconcile::CALL_ATTEMPTS)
        .scoped(&zone);
        let reconciler =
            Reconciler::new(rt.clone(), calls, zone, record_idxs, shutdown.clone(), pace);
        tasks.spawn(reconciler.run(signals));
    }
    if rt.config.ha.is_some() {
        let calls =
            |lease| Calls::new(provider.clone(), limiter.clone(), rt.metrics.clone(), lease);
        let exchange = views::ViewExchange::new(
            rt.clone(),
            calls(None).unfenced(),
            calls(rt.lease.clone()),
            all_members,
        );
        tasks.spawn(exchange.run(probes_stop.clone()));
    }
    if rt.config.admin.is_some() {
        let calls =
            |lease| Calls::new(provider.clone(), limiter.clone(), rt.metrics.clone(), lease);
        tasks.spawn(controls::controls_loop(
            rt.clone(),
            calls(None).unfenced(),
            calls(rt.lease.clone()),
            probes_stop.clone(),
        ));
    }
    tasks.spawn(route53_view::status_loop(
        rt.clone(),
        Calls::new(provider.clone(), limiter.clone(), rt.metrics.clone(), None),
        probes_stop.clone(),
    ));
    if !discovered_members.is_empty() {
        let regions = discovered_members
            .iter()
            .map(|(id, _)| rt.member(*id).config().region.as_str());
        let discovery = Arc::new(Discovery::new(regions, discovery_endpoint(&rt.config)).await);
        // Discovery goes first: parity's reads share its rate limiter.
        let (first_round, after_discovery) = watch::channel(false);
        if parity_task::wanted(&rt) {
            tasks.spawn(parity_task::parity_loop(
                rt.clone(),
                discovery.clone(),
                after_discovery,
                probes_stop.clone(),
            ));
        }
        tasks.spawn(discovery_loop(
            rt.clone(),
            discovery,
            discovered_members,
            first_round,
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

/// Gives a lookup's result to the members asked about (region, domain,
/// flag); returns whether it worked.
fn took(
    rt: &Runtime,
    members: &[(MemberId, Arc<ZoneSignals>)],
    key: &(String, String, bool),
    result: Result<crate::provider::AliasTarget, DiscoveryError>,
) -> bool {
    let worked = result.is_ok();
    for (id, signals) in members {
        let member = rt.member(*id);
        let m = member.config();
        let Target::ApiGateway {
            domain,
            evaluate_target_health: eth,
        } = &m.target
        else {
            continue;
        };
        if (&m.region, domain, eth) != (&key.0, &key.1, &key.2) {
            continue;
        }
        let record = &member.record().name;
        match &result {
            Ok(target) => {
                let (dns_name, zone_id) = (target.dns_name.clone(), target.hosted_zone_id.clone());
                if member.discovered(target.clone()) {
                    info!(record = %record, region = %m.region, target = %dns_name,
                        zone_id = %zone_id, "API Gateway target discovered");
                    signals.trigger.notify_one();
                }
            }
            Err(e) => {
                warn!(record = %record, region = %m.region, error = %e,
                    "API Gateway target lookup failed; the target the zone's record holds is used meanwhile");
                rt.metrics
                    .provider
                    .discovery_errors_total
                    .with_label_values(&[&m.region, e.kind()])
                    .inc();
                member.discovery_failed(e.to_string());
            }
        }
    }
    worked
}

/// Where API Gateway is asked: the route53 provider's emulator, if any.
pub fn discovery_endpoint(config: &Config) -> Option<&str> {
    match config.provider.kind {
        ProviderKind::Route53 => config.provider.endpoint_url.as_ref().map(|u| u.as_str()),
        ProviderKind::Memory => None,
    }
}

/// Looks up every API Gateway target, then again every resync interval
/// (every 30 s while any lookup fails); members with the same domain and
/// settings in the same region share one lookup per round. A target that changes wakes
/// its zone's reconciler; a failed lookup leaves the last one in place.
/// `first_round` turns true once every member has been looked up.
async fn discovery_loop(
    rt: Arc<Runtime>,
    discovery: Arc<Discovery>,
    members: Vec<(MemberId, Arc<ZoneSignals>)>,
    first_round: watch::Sender<bool>,
    stop: CancellationToken,
) {
    loop {
        let mut failed = false;
        // One lookup per region, domain and flag, all at once: each has its
        // own timeout, so a region that hangs holds up no other.
        let mut lookups = tokio::task::JoinSet::new();
        let mut asked = std::collections::BTreeSet::new();
        for (id, _) in &members {
            let m = rt.member(*id).config();
            if let Target::ApiGateway {
                domain,
                evaluate_target_health: eth,
            } = &m.target
            {
                let key = (m.region.clone(), domain.clone(), *eth);
                if asked.insert(key.clone()) {
                    let discovery = discovery.clone();
                    lookups.spawn(async move {
                        let r = discovery.regional_target(&key.0, &key.1, key.2).await;
                        (key, r)
                    });
                }
            }
        }
        // Each result is taken as it comes: one region's slow lookup holds
        // back no other's.
        loop {
            let next = tokio::select! {
                n = lookups.join_next() => n,
                _ = stop.cancelled() => return,
            };
            match next {
                Some(Ok((key, result))) => failed |= !took(&rt, &members, &key, result),
                Some(Err(_)) => {}
                None => break,
            }
        }
        first_round.send_replace(true);
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
