//! `parity`: what API Gateway serves in each region of every checked
//! record, compared and printed; changes nothing. Exit 0 in sync, 3 the
//! regions differ, 1 a region could not be read, 2 bad input.

use std::path::Path;

use route53_failover::config::Config;
use route53_failover::controller;
use route53_failover::controller::tasks::parity_checker::{check, gateway_members, is_checked};
use route53_failover::discovery::Discovery;
use route53_failover::parity::ParityState;

use super::check::load;
use super::exit::{BadInput, RegionsDiffer};

/// `parity --config PATH [--json]`.
pub async fn run(path: &Path, json: bool) -> anyhow::Result<()> {
    parity(&load(path)?, json).await
}

/// The `parity` command: every checked record's report, printed.
async fn parity(config: &Config, json: bool) -> anyhow::Result<()> {
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
