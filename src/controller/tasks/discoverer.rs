//! API Gateway discovery: each member's regional target, looked up at
//! start and every resync (`discovery`), given to its member as it comes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Target;
use crate::controller::{MemberId, Runtime, ZoneSignals};
use crate::discovery::{Discovery, DiscoveryError};

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

/// Looks up every API Gateway target, then again every resync interval
/// (every 30 s while any lookup fails); members with the same domain and
/// settings in the same region share one lookup per round. A target that changes wakes
/// its zone's reconciler; a failed lookup leaves the last one in place.
/// `first_round` turns true once every member has been looked up.
pub(in crate::controller) async fn run(
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
