//! `run`: the daemon and its HTTP server until SIGTERM or SIGINT, with the
//! config reloaded when its file changes. Also what `plan`, `init` and
//! `demo` share with it: the provider a config names ([`build_provider`])
//! and the start-up check of its zones ([`check_zones`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use route53_failover::config::{self, Config, ProviderConfig, ProviderKind};
use route53_failover::controller::supervise::supervised;
use route53_failover::controller::{self, Runtime};
use route53_failover::metrics::Metrics;
use route53_failover::provider::faults::{Faulty, MemoryStore};
use route53_failover::provider::memory::MemoryProvider;
use route53_failover::provider::remote::{self, RemoteMemory};
use route53_failover::provider::route53::Route53Provider;
use route53_failover::provider::{Action, Change, Provider};
use route53_failover::store::{Metered, StateStore};
use route53_failover::{admin, http, reload};

use super::check::load;
use super::exit::BadInput;

/// `run --config PATH`.
pub async fn run(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    let hash = config::short_digest(&std::fs::read(path).unwrap_or_default());
    let (provider, store) = build_provider(&config.provider).await?;
    // The embedded store: what it holds, read-only.
    let extra = store.map(remote::inspect_router);
    let source = (Some(path.to_path_buf()), hash);
    serve(config, source, provider, extra, |_| ()).await
}

/// The provider, and the embedded store when there is one (its inspection
/// routes are served next to the status page).
pub type Providers = (Arc<dyn Provider>, Option<Arc<MemoryStore>>);

pub async fn build_provider(provider: &ProviderConfig) -> anyhow::Result<Providers> {
    match provider.kind {
        ProviderKind::Route53 => {
            let endpoint = provider.endpoint_url.as_ref().map(|u| u.as_str());
            let route53 = Route53Provider::new(&provider.region, endpoint).await;
            Ok((Arc::new(route53), None))
        }
        ProviderKind::Memory => match &provider.endpoint_url {
            Some(url) => Ok((
                Arc::new(RemoteMemory::new(url.clone()).map_err(anyhow::Error::msg)?),
                None,
            )),
            None => {
                let store = Arc::new(Faulty::new(MemoryProvider::new(
                    &provider.zones,
                    provider.insync_after,
                )));
                for (i, (zone, record)) in provider.seed.iter().enumerate() {
                    let change = Change {
                        action: Action::Create,
                        record: record.clone(),
                    };
                    store
                        .apply_direct(zone, &[change])
                        .map_err(|e| BadInput(format!("provider.records[{i}]: {e}")))?;
                }
                Ok((store.clone(), Some(store)))
            }
        },
    }
}

/// Runs the daemon and its HTTP server until SIGTERM or SIGINT, reloading
/// the config file (`source`: its path, if any, and the hash of what was
/// loaded) when it changes. `greet` is called with the address the server
/// is bound to (the port the OS chose, for `listen: 127.0.0.1:0`), before
/// the `listening on` line.
pub async fn serve(
    config: Config,
    source: (Option<PathBuf>, String),
    provider: Arc<dyn Provider>,
    extra: Option<axum::Router>,
    greet: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let store = open_store(&config, &metrics).await?;
    // The zones the state store knows need no Route53 call (a start in a
    // control-plane outage).
    let known = match &store {
        Some(s) => controller::known_zones(s.as_ref()).await,
        None => Default::default(),
    };
    reload::check_zones(&config, provider.as_ref(), &known)
        .await
        .map_err(BadInput)?;
    if let Some(store) = &store {
        let switches = route53_failover::lever::Owner::of(&config);
        route53_failover::lever::claims::claim(
            store.as_ref(),
            &config.owner,
            switches.keys().map(String::as_str),
        )
        .await
        .map_err(BadInput)?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let health = match config.health_listen {
        Some(a) => {
            let health = tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (health_listen)"))?;
            info!(address = %health.local_addr()?, "health probes listening");
            Some(health)
        }
        None => None,
    };
    let descriptors = http::raise_descriptor_limit();
    let rt = Arc::new(Runtime::new(
        Arc::new(config),
        provider.kind(),
        metrics.clone(),
    ));
    if let Some(store) = store {
        rt.set_store(store);
    }
    let mut stops = Stops::default();
    // The lease outlives reloads, and is released only once the controller
    // has stopped writing.
    if let Some(lease) = rt.lease.clone() {
        let stop = CancellationToken::new();
        let (calls, process, until) = (rt.calls(&provider), rt.process(), stop.clone());
        let task = tokio::spawn(supervised(
            rt.process(),
            "lease_keeper",
            "lease_keeper".into(),
            stop.clone(),
            move || {
                let (m, e) = (process.metrics.clone(), process.events.clone());
                let (lease, calls, store) = (lease.clone(), calls.clone(), process.store());
                controller::tasks::lease_keeper::run(lease, calls, store, m, e, until.clone())
            },
        ));
        stops.lease = Some((stop, task));
    }
    let (path, hash) = source;
    let current = Arc::new(reload::Current::new(rt, path.as_deref(), hash));
    let mut app =
        http::router(current.clone()).merge(admin::router(current.clone(), provider.clone()));
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    let shutdown = stops.signal.clone();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    greet(addr);
    println!("route53-failover listening on http://{addr}");
    let members = current
        .runtime()
        .config
        .records
        .iter()
        .map(|r| r.members.len())
        .sum();
    let limits = http::Limits::for_process(descriptors, members);
    metrics
        .http
        .connections_max
        .set(limits.max_connections as i64);
    info!(
        descriptors,
        max_connections = limits.max_connections,
        "listener limits"
    );
    stops.server = Some(tokio::spawn(http::serve(
        listener,
        app,
        limits,
        metrics.http.connections.clone(),
        shutdown.clone(),
    )));
    if let Some(health) = health {
        // Its own small cap: only the kubelet's probes come here.
        let limits = http::Limits {
            max_connections: 16,
        };
        let open =
            prometheus::IntGauge::new("health_connections", "not exported").expect("a valid gauge");
        stops.health = Some(tokio::spawn(http::serve(
            health,
            http::health_router(current.clone()),
            limits,
            open,
            shutdown.clone(),
        )));
    }
    // Returns once the controller has stopped (probes stopped, an apply
    // in flight finished, bounded by controller::SHUTDOWN_GRACE).
    let result = reload::supervise(current, provider, path, shutdown).await;
    stops.after_controller().await;
    result.map_err(anyhow::Error::msg)?;
    info!("stopped");
    Ok(())
}

/// The order the process stops in, in one place. A signal cancels
/// `signal`: the listener begins to close and the controller stops (its
/// probes first, an apply in flight finishes). Once the controller has
/// stopped writing, `after_controller` releases the lease, so another
/// instance takes over at its next read, and gives the listener a moment
/// to close.
#[derive(Default)]
struct Stops {
    signal: CancellationToken,
    /// The lease keeper, with its own token: it must outlive the
    /// controller's writes.
    lease: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// `/healthz` and `/readyz` on their own port, if any.
    health: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Stops {
    async fn after_controller(self) {
        // The controller stopped for an error too: the listener goes.
        self.signal.cancel();
        if let Some((stop, task)) = self.lease {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        for server in [self.server, self.health].into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
    }
}

/// The state store the config names, checked: a table that is not ours
/// or cannot be reached for good (no table, access denied) is bad input,
/// and so is one where two instances can both win the lease (`ha` on a
/// global table in eventual consistency). One that does not answer now
/// is used all the same: the store is retried at every call, and status
/// says so.
async fn open_store(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<Arc<Metered>>> {
    let bad = |e: String| anyhow::Error::from(BadInput(e));
    let Some(settings) = &config.state_store else {
        return Ok(None);
    };
    let store = route53_failover::store::open(settings, &config.owner)
        .await
        .map_err(|e| bad(format!("state_store: {e}")))?;
    let store = Arc::new(Metered::new(
        store,
        metrics.clone(),
        settings.kind.location(),
    ));
    match store.describe().await {
        Ok(report) => {
            if config.ha.is_some() && !report.linearizable {
                let why = report.warnings.join("; ");
                return Err(bad(format!(
                    "state_store: with ha, the lease needs a store where one writer wins: {why}"
                )));
            }
            for w in &report.warnings {
                warn!("{w}");
            }
            info!(kind = %report.kind, location = %report.location, "state store");
        }
        Err(e) if e.transient() => {
            warn!(error = %e, "the state store does not answer now; every call retries it, and with ha the lease is taken only once its mode is known")
        }
        Err(e) => return Err(bad(format!("state_store: {e}"))),
    }
    Ok(Some(store))
}

/// Every configured zone must exist, be named one way and hold no CNAME
/// at its apex (`reload::check_zones`): bad input otherwise.
pub async fn check_zones(config: &Config, provider: &dyn Provider) -> anyhow::Result<()> {
    reload::check_zones(config, provider, &Default::default())
        .await
        .map_err(|e| BadInput(e).into())
}

async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, "shutdown requested");
    shutdown.cancel();
}
