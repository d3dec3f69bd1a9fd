//! The command line: parses arguments, loads the config, wires the provider,
//! the controller and the HTTP server, and maps SIGTERM/SIGINT to shutdown.
//! The one place `anyhow` is used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod cli;

use route53_failover::config::{self, Config, ProviderConfig, ProviderKind};
use route53_failover::controller::{self, Runtime};
use route53_failover::decide::ownership;
use route53_failover::decide::policy::Intent;
use route53_failover::discovery::Discovery;
use route53_failover::metrics::Metrics;
use route53_failover::parity::ParityState;
use route53_failover::provider::faults::{Faulty, MemoryStore};
use route53_failover::provider::memory::MemoryProvider;
use route53_failover::provider::remote::{self, RemoteMemory};
use route53_failover::provider::route53::Route53Provider;
use route53_failover::provider::{Action, Change, Provider, RecordType};
use route53_failover::{admin, client, demo, http, reload};

const EXAMPLES: &str = "\
Examples:
  route53-failover demo                              # three simulated regions, no AWS account
  route53-failover check --config config/example.yaml
  route53-failover plan --config config/example.yaml  # probe once, show what would change
  route53-failover run --config /etc/route53-failover/config.yaml
  route53-failover status --url http://127.0.0.1:9090
  route53-failover events --url http://127.0.0.1:9090
  route53-failover drain --url URL --record api.example.com --region eu-west-1 --reason \"patching\" --for 2h
  route53-failover freeze --url URL --reason \"manual change in the console\" --for 30m
  route53-failover init --zone example.com --owner api-prod --out config.yaml  # adopt what exists

Exit codes: 0 ok, 1 failure while running, 2 bad input (config or arguments),\n3 (parity) the regions differ, (init) some parts need a decision.";

#[derive(Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (RUST_LOG syntax), e.g. `info` or `route53_failover=debug`.
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and exit: 0 when valid, 2 with every problem listed.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Probe every member once, read the provider, print the decision and the changes; change nothing.
    Plan {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Compare what API Gateway serves in each region of every record with
    /// api_gateway_domain members, print the differences; change nothing.
    /// Exit 0 when in sync, 3 when regions differ, 1 when a region could not
    /// be read, 2 on bad input.
    Parity {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read an existing latency setup (a zone's latency records, and API
    /// Gateway for the aliases to it) and write the config that adopts it
    /// as it is. Exit 0 all mapped, 3 some parts need a decision (listed),
    /// 2 bad input, 1 a read failed.
    Init(cli::init::InitArgs),
    /// Run on three simulated regions on loopback with the embedded memory provider.
    Demo {
        /// Where to serve the status page, metrics and the demo controls.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
    },
    /// Print a running daemon's status as a table.
    Status {
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        url: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
        /// Print it again and again (until interrupted), riding out a
        /// daemon that restarts.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
        /// With --watch: how often.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        every: Duration,
    },
    /// Print a running daemon's event timeline, newest first.
    Events {
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        url: String,
        /// Only the events after this one (an event id).
        #[arg(long)]
        since: Option<u64>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    OnCall(client::OnCall),
}

/// Bad input: reported, exit code 2.
#[derive(Debug)]
struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The regions of a record differ (`parity`): exit code 3, the report
/// already printed.
#[derive(Debug)]
struct RegionsDiffer;

impl std::fmt::Display for RegionsDiffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the regions differ")
    }
}

impl std::error::Error for RegionsDiffer {}

/// Some parts of what `init` read need the operator's decision: exit code
/// 3, each already said.
#[derive(Debug)]
struct NeedsDecision;

impl std::fmt::Display for NeedsDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("some parts need a decision")
    }
}

impl std::error::Error for NeedsDecision {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<BadInput>() => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) if e.is::<RegionsDiffer>() || e.is::<NeedsDecision>() => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check { config } => {
            let config = load(&config)?;
            println!("{}", config.summary());
            Ok(())
        }
        Command::Run { config: path } => {
            let config = load(&path)?;
            let hash = config::short_digest(&std::fs::read(&path).unwrap_or_default());
            let (provider, store) = build_provider(&config.provider).await?;
            // The embedded store: what it holds, read-only.
            let extra = store.map(remote::inspect_router);
            serve(config, (Some(path), hash), provider, extra).await
        }
        Command::Plan { config } => {
            let config = load(&config)?;
            let (provider, _) = build_provider(&config.provider).await?;
            check_zones(&config, provider.as_ref()).await?;
            plan(&config, provider.as_ref()).await
        }
        Command::Parity { config, json } => parity(&load(&config)?, json).await,
        Command::Init(args) => cli::init::run(args).await,
        Command::Demo { listen } => run_demo(listen).await,
        Command::Status {
            url,
            json,
            watch,
            every,
        } => {
            if watch {
                client::watch_status(&url, every)
                    .await
                    .map_err(client_error)
            } else {
                print!(
                    "{}",
                    client::status(&url, json).await.map_err(client_error)?
                );
                Ok(())
            }
        }
        Command::Events { url, since, json } => {
            let events = client::fetch_events(&url, since)
                .await
                .map_err(client_error)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&events)?);
            } else {
                print!("{}", client::events_table(&events));
            }
            Ok(())
        }
        Command::OnCall(command) => {
            let message = command.run().await.map_err(client_error)?;
            println!("{message}");
            Ok(())
        }
    }
}

/// A client error as the exit code wants it: bad input is 2.
fn client_error(e: client::ClientError) -> anyhow::Error {
    match e {
        client::ClientError::BadInput(m) => BadInput(m).into(),
        client::ClientError::Failed(m) => anyhow::Error::msg(m),
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    let config = config::load(path).map_err(|errors| {
        BadInput(format!(
            "{}: {} problem(s):\n{errors}",
            path.display(),
            errors.0.len()
        ))
    })?;
    for w in &config.warnings {
        warn!("{w}");
    }
    Ok(config)
}

/// The provider, and the embedded store when there is one (its inspection
/// routes are served next to the status page).
type Providers = (Arc<dyn Provider>, Option<Arc<MemoryStore>>);

async fn build_provider(provider: &ProviderConfig) -> anyhow::Result<Providers> {
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
/// loaded) when it changes.
async fn serve(
    config: Config,
    source: (Option<PathBuf>, String),
    provider: Arc<dyn Provider>,
    extra: Option<axum::Router>,
) -> anyhow::Result<()> {
    check_zones(&config, provider.as_ref()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let descriptors = http::raise_descriptor_limit();
    let rt = Arc::new(Runtime::new(
        Arc::new(config),
        provider.kind(),
        metrics.clone(),
    ));
    // The lease outlives reloads, and is released only once the controller
    // has stopped writing.
    let lease_stop = CancellationToken::new();
    let lease_task = rt.lease.clone().map(|lease| {
        tokio::spawn(controller::lease_loop(
            lease,
            provider.clone(),
            rt.limiter.clone(),
            rt.metrics.clone(),
            rt.events.clone(),
            lease_stop.clone(),
        ))
    });
    let (path, hash) = source;
    let current = Arc::new(reload::Current::new(rt, path.as_deref(), hash));
    let mut app =
        http::router(current.clone()).merge(admin::router(current.clone(), provider.clone()));
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
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
    let server = tokio::spawn(http::serve(
        listener,
        app,
        limits,
        metrics.http.connections.clone(),
        shutdown.clone(),
    ));
    let result = reload::supervise(current, provider, path, shutdown.clone()).await;
    lease_stop.cancel();
    if let Some(task) = lease_task {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    result.map_err(anyhow::Error::msg)?;
    // The server stops with the same token; give it a moment to close.
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    info!("stopped");
    Ok(())
}

/// Every configured zone must exist, be named one way and hold no CNAME
/// at its apex (`reload::check_zones`): bad input otherwise.
async fn check_zones(config: &Config, provider: &dyn Provider) -> anyhow::Result<()> {
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

/// The `parity` command: every checked record's report, printed.
async fn parity(config: &Config, json: bool) -> anyhow::Result<()> {
    use route53_failover::controller::parity_task::{check, gateway_members, is_checked};
    let records: Vec<_> = config.records.iter().filter(|r| is_checked(r)).collect();
    if records.is_empty() {
        return Err(BadInput(
            "no record to compare: parity needs a record with two or more members whose target is api_gateway_domain, with parity not disabled".into(),
        )
        .into());
    }
    let regions = records
        .iter()
        .flat_map(|r| gateway_members(r))
        .map(|(region, _)| region);
    let discovery = Discovery::new(regions, controller::discovery_endpoint(config)).await;
    let mut reports = Vec::new();
    for r in records {
        if let Some(report) = check(&discovery, r).await {
            reports.push((r, report));
        }
    }
    if json {
        let out: Vec<serde_json::Value> = reports
            .iter()
            .map(|(r, p)| {
                serde_json::json!({"record": r.name, "type": r.rtype.to_string(), "parity": p})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (r, p) in &reports {
            println!("{} {}: {}", r.name, r.rtype, p.headline());
            for d in &p.differences {
                println!("  {}", d.line);
            }
            for e in &p.errors {
                println!("  {} not read: {}", e.region, e.error);
            }
            if p.ignored > 0 {
                println!("  ({} ignored by parity.ignore)", p.ignored);
            }
        }
    }
    if reports.iter().any(|(_, p)| p.state == ParityState::Differs) {
        return Err(RegionsDiffer.into());
    }
    if reports.iter().any(|(_, p)| p.state == ParityState::Unknown) {
        anyhow::bail!("a region could not be read");
    }
    Ok(())
}

async fn plan(config: &Config, provider: &dyn Provider) -> anyhow::Result<()> {
    let controller::Preview {
        decisions,
        checks,
        changes,
        held,
    } = controller::preview(config, provider)
        .await
        .map_err(anyhow::Error::msg)?;
    for (record, ds) in config.records.iter().zip(&decisions) {
        println!("{} {} (zone {})", record.name, record.rtype, record.zone);
        for (m, d) in record.members.iter().zip(ds) {
            let action = match d.intent {
                Intent::Publish => "publish",
                Intent::Withdraw => "withdraw",
                Intent::Leave => "keep",
            };
            println!(
                "  {:<16} {:<14} {:<9} {}",
                m.region,
                m.set_identifier,
                action,
                d.why.as_str()
            );
        }
    }
    if !checks.is_empty() {
        println!("{} health check change(s):", checks.len());
        for c in &checks {
            println!("  {c}");
        }
    }
    // An ownership marker claims what the daemon manages; adopting a
    // record as it is writes only that.
    let marker = |c: &Change| {
        c.record.rtype == RecordType::Txt && ownership::marked_record(&c.record.name).is_some()
    };
    if changes.is_empty() {
        println!("no changes");
    } else if changes.iter().all(marker) {
        println!(
            "no record changes; {} ownership marker change(s), claiming what the config manages:",
            changes.len()
        );
    } else {
        println!("{} change(s):", changes.len());
    }
    for c in &changes {
        let note = if marker(c) {
            "  (ownership marker)"
        } else {
            ""
        };
        println!("  {c}{note}");
    }
    if !held.is_empty() {
        println!("{} change(s) held back by a freeze:", held.len());
        for c in &held {
            println!("  {c}");
        }
    }
    Ok(())
}

async fn run_demo(listen: SocketAddr) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let mut endpoints = Vec::new();
    for (region, latency_ms) in demo::REGIONS {
        endpoints.push(
            demo::Endpoint::start(region, Duration::from_millis(latency_ms), stop.clone())
                .await
                .context("starting a demo endpoint")?,
        );
    }
    let mut config = config::parse(&demo::config_text(&endpoints), Path::new("."))
        .map_err(|e| anyhow::anyhow!("the demo config is invalid: {e}"))?;
    config.listen = listen;
    let (provider, store) = build_provider(&config.provider).await?;
    if let Some(store) = &store {
        tokio::spawn(demo::simulate_checkers(
            store.clone(),
            endpoints.clone(),
            stop.clone(),
        ));
    }
    let base = format!("http://{listen}");
    println!(
        "Demo: three regions ({}) behind api.example.test in the embedded memory provider.\n\
         \n  status page:   {base}/\n  status (JSON): {base}/status\n  metrics:       {base}/metrics\n  the zone:      {base}/memory/zones/example.test/records\n\
         \nBreak a region, watch it withdrawn after 3 failed probes, then bring it back:\n\
         \n  curl -X POST {base}/demo/regions/eu-west-1/fail\n  route53-failover status --url {base}\n  curl -X POST {base}/demo/regions/eu-west-1/recover\n\
         \n(`hang` instead of `fail` makes the endpoint stop answering.) Ctrl-C stops.\n",
        demo::REGIONS.map(|r| r.0).join(", ")
    );
    let hash = config::short_digest(demo::config_text(&endpoints).as_bytes());
    let source = (None, hash);
    // The demo is a sandbox on loopback: the store's writes and faults
    // are served beside its own routes.
    let mut extra = demo::router(&endpoints);
    if let Some(store) = store {
        extra = extra.merge(remote::router(store));
    }
    let result = serve(config, source, provider, Some(extra)).await;
    stop.cancel();
    result
}
