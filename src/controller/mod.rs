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
//! Here: `run`, which wires a config generation's tasks (one table: a
//! prober per member, a reconciler per zone, the other tasks).
//! - `state`: what the daemon knows, by lifetime (`Process`, `Runtime`, the
//!   member table, zones, the controls book, signals); `member`: a
//!   member's handle, the only writers of its row;
//! - `calls`: every provider request (rate limit, retries, the HA fence),
//!   made by `Process::calls`;
//! - `reconcile`: the zone reconciler (its `Wake` loop, one pass, health
//!   check calls, what a decision means, records held out);
//! - `tasks`: the other tasks, each entry point `run`;
//! - `report`: what each happening means for events, logs and metrics;
//! - `scrape`: the member series, read at scrape time;
//! - `supervise`: every long-running task started again after a panic,
//!   which is seen (logged, counted, shown, `/readyz` red);
//! - `leadership`: the HA lease as held;
//! - `preview`: what the `plan` command prints.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod calls;
mod leadership;
mod member;
mod preview;
mod reconcile;
pub mod report;
mod scrape;
mod state;
pub mod supervise;
pub mod tasks;

pub use calls::{Calls, RateLimiter};
pub use leadership::{Lease, LeaseSnapshot};
pub use member::{Member, Probed};
pub use preview::{preview, Preview};
pub use reconcile::knowledge::known_zones;
use reconcile::Reconciler;
pub use state::control_plane::ControlPlaneSnapshot;
pub use state::panics::TaskPanic;
pub use state::practice_book::{
    key as practice_key, History as PracticeHistory, Run as PracticeRun,
};
pub use state::traffic_book::{key as traffic_key, TrafficStatus};
pub use state::{
    ControlBook, MemberId, MemberState, Process, Route53Health, Runtime, ViewsStatus, ZoneStatus,
};
use supervise::supervised;
use tasks::prober::spread_window;
use tasks::{checker_view, control_reader, discoverer, parity_checker, prober, view_exchange};

use crate::config::{Config, ProviderKind, Target};
use crate::discovery::Discovery;
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
    let by_zone = rt.config.records_by_zone();
    let probes_stop = shutdown.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    // Every task is supervised: started again, afresh, after a panic.
    let mut spawn = |kind: &'static str, name: String, stop: &CancellationToken, start: Start| {
        tasks.spawn(supervised(rt.process(), kind, name, stop.clone(), start));
    };
    if let Some(lever_config) = &rt.config.lever {
        // Weak: the runtime holds the lever.
        let writer = Arc::downgrade(&rt);
        let lever = crate::lever::Lever::new(
            lever_config.clone(),
            crate::lever::Owner::of(&rt.config),
            Box::new(move || writer.upgrade().and_then(|rt| rt.writing_term())),
            rt.events.clone(),
            rt.metrics.clone(),
            None,
        )
        .await;
        let _ = rt.lever.set(lever.clone());
        let stop = probes_stop.clone();
        spawn(
            "lever",
            "lever".into(),
            &probes_stop,
            boxed(move || lever.clone().run(stop.clone())),
        );
    }

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
            let (rt, signals, stop) = (rt.clone(), signals.clone(), probes_stop.clone());
            let name = format!("prober {} {} {}", labels[0], labels[1], labels[2]);
            spawn(
                "prober",
                name,
                &probes_stop,
                boxed(move || {
                    prober::run(
                        rt.clone(),
                        id,
                        prober.clone(),
                        signals.clone(),
                        stop.clone(),
                    )
                }),
            );
        }
        let calls = rt
            .calls(&provider)
            .retried(reconcile::CALL_ATTEMPTS)
            .scoped(&zone);
        let (rt, stop, name) = (rt.clone(), shutdown.clone(), format!("reconciler {zone}"));
        spawn(
            "reconciler",
            name,
            &shutdown,
            boxed(move || {
                let reconciler = Reconciler::new(
                    rt.clone(),
                    calls.clone(),
                    zone.clone(),
                    record_idxs.clone(),
                    stop.clone(),
                    pace.clone(),
                );
                reconciler.run(signals.clone())
            }),
        );
    }
    if rt.config.ha.is_some() {
        let (rt, provider) = (rt.clone(), provider.clone());
        let stop = probes_stop.clone();
        spawn(
            "view_exchange",
            "view_exchange".into(),
            &probes_stop,
            boxed(move || {
                let ha = rt.config.ha.as_ref().expect("views need ha");
                let views = view_exchange::Views::new(
                    rt.store(),
                    rt.calls(&provider).unfenced(),
                    rt.calls(&provider),
                    &ha.zone,
                );
                let exchange =
                    view_exchange::ViewExchange::new(rt.clone(), views, all_members.clone());
                exchange.run(stop.clone())
            }),
        );
    }
    if rt.config.admin.is_some() {
        let (rt, provider) = (rt.clone(), provider.clone());
        let stop = probes_stop.clone();
        spawn(
            "control_reader",
            "control_reader".into(),
            &probes_stop,
            boxed(move || {
                let (unfenced, fenced) = (rt.calls(&provider).unfenced(), rt.calls(&provider));
                control_reader::run(rt.clone(), unfenced, fenced, stop.clone())
            }),
        );
    }
    if tasks::practice::wanted(&rt) {
        let (rt, provider) = (rt.clone(), provider.clone());
        let stop = probes_stop.clone();
        spawn(
            "practice",
            "practice".into(),
            &probes_stop,
            boxed(move || {
                tasks::practice::run(rt.clone(), rt.calls(&provider).unfenced(), stop.clone())
            }),
        );
    }
    {
        let (rt, provider) = (rt.clone(), provider.clone());
        let stop = probes_stop.clone();
        spawn(
            "checker_view",
            "checker_view".into(),
            &probes_stop,
            boxed(move || {
                checker_view::run(rt.clone(), rt.calls(&provider).unfenced(), stop.clone())
            }),
        );
    }
    let mut discovery_for_traffic = None;
    if !discovered_members.is_empty() {
        let regions = discovered_members
            .iter()
            .map(|(id, _)| rt.member(*id).config().region.as_str());
        let discovery = Arc::new(Discovery::new(regions, discovery_endpoint(&rt.config)).await);
        discovery_for_traffic = Some(discovery.clone());
        // Discovery goes first: parity's reads share its rate limiter.
        let (first_round, after_discovery) = watch::channel(false);
        if parity_checker::wanted(&rt) {
            let (rt, discovery, stop) = (rt.clone(), discovery.clone(), probes_stop.clone());
            spawn(
                "parity_checker",
                "parity_checker".into(),
                &probes_stop,
                boxed(move || {
                    parity_checker::run(
                        rt.clone(),
                        discovery.clone(),
                        after_discovery.clone(),
                        stop.clone(),
                    )
                }),
            );
        }
        let (rt, stop) = (rt.clone(), probes_stop.clone());
        spawn(
            "discoverer",
            "discoverer".into(),
            &probes_stop,
            boxed(move || {
                discoverer::run(
                    rt.clone(),
                    discovery.clone(),
                    discovered_members.clone(),
                    first_round.clone(),
                    stop.clone(),
                )
            }),
        );
    }
    if tasks::traffic::wanted(&rt) {
        let (rt, stop) = (rt.clone(), probes_stop.clone());
        // CloudWatch at the config's emulator, else where discovery goes.
        let endpoint = rt
            .config
            .traffic
            .as_ref()
            .and_then(|t| t.endpoint_url.as_ref().map(|u| u.to_string()))
            .or_else(|| discovery_endpoint(&rt.config).map(String::from));
        spawn(
            "traffic",
            "traffic".into(),
            &probes_stop,
            boxed(move || {
                tasks::traffic::run(
                    rt.clone(),
                    discovery_for_traffic.clone(),
                    endpoint.clone(),
                    stop.clone(),
                )
            }),
        );
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

/// A task's factory, as `supervised` takes it (one type for every task,
/// so one spawner serves them all).
type Start = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

fn boxed<F, Fut>(mut start: F) -> Start
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move || Box::pin(start()))
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
pub fn discovery_endpoint(config: &Config) -> Option<&str> {
    match config.provider.kind {
        ProviderKind::Route53 => config.provider.endpoint_url.as_ref().map(|u| u.as_str()),
        ProviderKind::Memory => None,
    }
}
