//! Route53's own view of each member: the task that reads every member's
//! health check status (`GetHealthCheckStatus`) for status and metrics, so
//! on-call sees Route53's checkers beside the daemon's verdict.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::controller::{Calls, Runtime};

/// Reads Route53's view of every member's health check, one check at a
/// time, each about every `health_check_status_interval` and never more
/// than one request a second (the requests share the provider's rate
/// limit with the reconcilers).
pub(in crate::controller) async fn run(rt: Arc<Runtime>, calls: Calls, stop: CancellationToken) {
    let interval = rt.config.health_check_status_interval;
    loop {
        let targets: Vec<_> = rt
            .member_ids()
            .filter_map(|id| {
                let check = rt.member(id).read(|m| m.health_check_id.clone());
                check.map(|c| (id, c))
            })
            .collect();
        if targets.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.cancelled() => return,
            }
            continue;
        }
        let spacing = (interval / targets.len() as u32).max(Duration::from_secs(1));
        for (id, check) in targets {
            tokio::select! {
                _ = tokio::time::sleep(spacing) => {}
                _ = stop.cancelled() => return,
            }
            let member = rt.member(id);
            match calls.health_check_status(&check).await {
                Ok(report) => member.route53_read(&check, report),
                Err(e) => {
                    let labels = member.labels();
                    warn!(record = labels.record, region = labels.region, health_check = %check, error = %e,
                        "reading Route53's health check status failed");
                }
            }
        }
    }
}
