//! Checks the parity of every record that asks for it (see `crate::parity`)
//! at start and every `parity.interval`, and keeps the reports for status
//! and metrics. Reads only, through the API Gateway clients and rate
//! limiter discovery uses; nothing here touches DNS or waits on a
//! reconcile.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{RecordConfig, Target};
use crate::controller::Runtime;
use crate::discovery::Discovery;
use crate::parity::{fetch, ParityReport};

/// Whether any record of `rt` is checked.
pub(in crate::controller) fn wanted(rt: &Runtime) -> bool {
    rt.config.records.iter().any(is_checked)
}

/// Whether `record`'s parity is checked: parity on for it, and two or more
/// API Gateway members to compare.
pub fn is_checked(record: &RecordConfig) -> bool {
    record.parity.is_some() && gateway_members(record).len() >= 2
}

/// Checks every record at start (once discovery has gone round once, so
/// its lookups never wait behind these reads) and every `parity.interval`.
pub(in crate::controller) async fn run(
    rt: Arc<Runtime>,
    discovery: Arc<Discovery>,
    mut after_discovery: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = after_discovery.wait_for(|done| *done) => {}
        _ = stop.cancelled() => return,
    }
    loop {
        for record in &rt.config.records {
            let report = tokio::select! {
                r = check(&discovery, record) => r,
                _ = stop.cancelled() => return,
            };
            let Some(report) = report else { continue };
            let rtype = record.rtype.to_string();
            let labels = [record.name.as_str(), rtype.as_str()];
            let before = rt.parity(record);
            let lines = |r: &ParityReport| {
                r.differences
                    .iter()
                    .map(|d| d.line.clone())
                    .collect::<Vec<_>>()
            };
            if before.as_ref().map(lines) != Some(lines(&report)) {
                if report.differences.is_empty() {
                    info!(record = %record.name, regions = ?report.regions, "parity: the regions serve the same API");
                }
                for d in &report.differences {
                    warn!(record = %record.name, kind = %d.kind, difference = %d.line, "parity: the regions differ");
                }
            }
            let errors = |r: &ParityReport| r.errors.clone();
            if before.as_ref().map(errors) != Some(errors(&report)) {
                for e in &report.errors {
                    warn!(record = %record.name, region = %e.region, error = %e.error,
                        "parity: a region could not be read (not taken for a difference)");
                }
            }
            rt.metrics.parity.report(labels, &report);
            rt.set_parity(record, report);
        }
        tokio::select! {
            _ = tokio::time::sleep(rt.config.parity.interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// The members of `record` whose target is an API Gateway custom domain:
/// (region, domain), in the record's order.
pub fn gateway_members(record: &RecordConfig) -> Vec<(&str, &str)> {
    record
        .members
        .iter()
        .filter_map(|m| match &m.target {
            Target::ApiGateway { domain, .. } => Some((m.region.as_str(), domain.as_str())),
            _ => None,
        })
        .collect()
}

/// Checks `record` now: what each API Gateway member's region serves,
/// compared. `None` when the record is not checked (parity off for it, or
/// fewer than two API Gateway members).
pub async fn check(discovery: &Discovery, record: &RecordConfig) -> Option<ParityReport> {
    if !is_checked(record) {
        return None;
    }
    let ignore = record.parity.as_ref()?;
    let mut read = Vec::new();
    for (region, domain) in gateway_members(record) {
        let facts = match discovery.client(region) {
            Some(client) => fetch::served(client, discovery.limiter(), domain).await,
            None => Err(format!("no API Gateway client for {region}")),
        };
        read.push((region.to_string(), facts));
    }
    let now = crate::time::unix_secs(SystemTime::now());
    Some(ParityReport::new(now, read, ignore))
}
