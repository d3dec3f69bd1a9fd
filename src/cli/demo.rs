//! `demo`: three simulated regions on loopback behind the embedded memory
//! provider, served as `run` serves a config, with controls to break them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use route53_failover::config;
use route53_failover::demo;
use route53_failover::lever::standin;
use route53_failover::provider::remote;

use super::run::{build_provider, serve};

/// `demo --listen ADDR`.
pub async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let mut endpoints = Vec::new();
    for (region, latency_ms) in demo::REGIONS {
        endpoints.push(
            demo::Endpoint::start(region, Duration::from_millis(latency_ms), stop.clone())
                .await
                .context("starting a demo endpoint")?,
        );
    }
    // The loopback ARC cluster, its switches the embedded store's.
    let arc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("starting the demo's ARC cluster")?;
    let arc_addr = arc.local_addr()?;
    let text = demo::config_text(&endpoints, arc_addr);
    let mut config = config::parse(&text, Path::new("."))
        .map_err(|e| anyhow::anyhow!("the demo config is invalid: {e}"))?;
    config.listen = listen;
    let (provider, store) = build_provider(&config.provider).await?;
    let board = store.as_ref().map(|s| s.switches()).unwrap_or_default();
    board.set(demo::SWITCH, true);
    tokio::spawn(standin::serve(
        arc,
        standin::Cluster::new(board),
        stop.clone(),
    ));
    if let Some(store) = &store {
        tokio::spawn(demo::simulate_checkers(
            store.clone(),
            endpoints.clone(),
            stop.clone(),
        ));
    }
    let hash = config::short_digest(text.as_bytes());
    let source = (None, hash);
    // The demo is a sandbox on loopback: the store's writes and faults
    // are served beside its own routes.
    let mut extra = demo::router(&endpoints);
    if let Some(store) = store {
        extra = extra.merge(remote::router(store));
    }
    // The banner names the address bound (the OS's port for `--listen
    // 127.0.0.1:0`).
    let greet = |bound: SocketAddr| {
        let base = format!("http://{bound}");
        println!(
            "Demo: three regions ({}) behind api.example.test in the embedded memory provider.\n\
             \n  status page:   {base}/\n  status (JSON): {base}/status\n  metrics:       {base}/metrics\n  the zone:      {base}/memory/zones/example.test/records\n\
             \nBreak a region, watch it withdrawn after 3 failed probes, then bring it back:\n\
             \n  curl -X POST {base}/demo/regions/eu-west-1/fail\n  route53-failover status --url {base}\n  curl -X POST {base}/demo/regions/eu-west-1/recover\n\
             \nap-southeast-2 fails over through an ARC routing control on a loopback cluster\n\
             (its record stays, the switch goes Off): the lever line of the status page.\n\
             \n(`hang` instead of `fail` makes the endpoint stop answering.) Ctrl-C stops.\n",
            demo::REGIONS.map(|r| r.0).join(", ")
        );
    };
    let result = serve(config, source, provider, Some(extra), greet).await;
    stop.cancel();
    result
}
