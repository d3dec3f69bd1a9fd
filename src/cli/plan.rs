//! `plan`: probe every member once, read the provider, print each
//! member's decision and the changes that would follow; change nothing.

use std::path::Path;

use route53_failover::config::Config;
use route53_failover::controller;
use route53_failover::decide::ownership;
use route53_failover::decide::policy::Intent;
use route53_failover::provider::{Change, Provider, RecordType};

use super::check::load;
use super::run::{build_provider, check_zones};

/// `plan --config PATH`: the zones are checked first, as `run` checks them.
pub async fn run(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    let (provider, _) = build_provider(&config.provider).await?;
    check_zones(&config, provider.as_ref()).await?;
    plan(&config, provider.as_ref()).await
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
