//! What the `plan` command prints: the zone decision a reconcile would
//! carry out, from one probe of each member; nothing is written.

use std::collections::BTreeMap;

use tracing::warn;

use super::discovery_endpoint;
use crate::config::{Config, Target};
use crate::decide::controls::{controls_parent, Controls};
use crate::decide::health_check::{self as hc, Step};
use crate::decide::ownership::Observed;
use crate::decide::policy;
use crate::decide::verdict::Verdict;
use crate::decide::zone::{self, MemberFacts, ZoneInputs};
use crate::discovery::Discovery;
use crate::probe::auth::TokenSources;
use crate::probe::{Prober, TlsConfigs};
use crate::provider::{AliasTarget, Change, Provider};

/// What a reconcile would do.
pub struct Preview {
    /// Per record, per member.
    pub decisions: Vec<Vec<policy::MemberDecision>>,
    /// Health check steps, one line each.
    pub checks: Vec<String>,
    /// Record changes; a check still to be created shows as `(new)`.
    pub changes: Vec<Change>,
    /// The changes a freeze holds back (with `admin`: on-call's controls
    /// are read as the daemon would honour them).
    pub held: Vec<Change>,
}

/// Probes every member once, reads the provider, and returns what a
/// reconcile would do. For `plan`.
pub async fn preview(config: &Config, provider: &dyn Provider) -> Result<Preview, String> {
    // API Gateway targets first: the probe goes to the regional endpoint and
    // the record points at it. A target that cannot be found is reported
    // and its member is left as it is (verdict unknown).
    let members = || {
        config
            .records
            .iter()
            .enumerate()
            .flat_map(|(ri, r)| r.members.iter().enumerate().map(move |(mi, m)| (ri, mi, m)))
    };
    let mut discovered: BTreeMap<(usize, usize), Option<AliasTarget>> = BTreeMap::new();
    let apigw: Vec<_> = members()
        .filter(|(_, _, m)| matches!(m.target, Target::ApiGateway { .. }))
        .collect();
    if !apigw.is_empty() {
        let regions = apigw.iter().map(|(_, _, m)| m.region.as_str());
        let discovery = Discovery::new(regions, discovery_endpoint(config)).await;
        for (ri, mi, m) in apigw {
            let found = match discovery.lookup(m).await {
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => {
                    warn!(region = %m.region, error = %e, "API Gateway target lookup failed");
                    None
                }
                None => continue,
            };
            discovered.insert((ri, mi), found);
        }
    }
    let tls = TlsConfigs::default();
    let tokens = TokenSources::default();
    let mut set = tokio::task::JoinSet::new();
    for (ri, mi, m) in members() {
        let via = match discovered.get(&(ri, mi)) {
            Some(Some(t)) if m.probe.connect_to.is_none() => Some(t.dns_name.clone()),
            Some(None) if m.probe.connect_to.is_none() => continue,
            _ => None,
        };
        let prober = Prober::new(m.probe.clone(), &tls, &tokens)?;
        set.spawn(async move {
            let result = prober.probe_via(via.as_deref()).await;
            // A probe that observed nothing (no token, a local error) is
            // no verdict.
            (ri, mi, result.observes().then(|| result.ok()))
        });
    }
    let mut ok: BTreeMap<(usize, usize), bool> = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        if let (ri, mi, Some(passed)) = r.map_err(|e| e.to_string())? {
            ok.insert((ri, mi), passed);
        }
    }
    // One probe each, sent together: a failure is corroborated when any
    // member passed (`decide::correlated`).
    let any_passed = ok.values().any(|&passed| passed);
    let mut decisions = vec![Vec::new(); config.records.len()];
    let mut changes = Vec::new();
    let mut held = Vec::new();
    let mut check_lines = Vec::new();
    let all_checks = provider
        .list_health_checks()
        .await
        .map_err(|e| e.to_string())?;
    // On-call's drains and freezes, as the daemon would honour them.
    let controls = if config.admin.is_some() {
        let zone = config.control_zone();
        let z = provider.find_zone(zone).await.map_err(|e| e.to_string())?;
        let records = provider
            .list_records_under(&z.id, &controls_parent(zone))
            .await
            .map_err(|e| e.to_string())?;
        Controls::from_records(&records)
    } else {
        Controls::default()
    };
    let now = std::time::SystemTime::now();
    for (zone, idxs) in config.records_by_zone() {
        let z = provider.find_zone(&zone).await.map_err(|e| e.to_string())?;
        let records = provider
            .list_records(&z.id)
            .await
            .map_err(|e| e.to_string())?;
        let zone_prefix = hc::zone_prefix(&config.owner, &z.id);
        let owned: Vec<_> = all_checks
            .iter()
            .filter(|c| c.caller_reference.starts_with(&zone_prefix))
            .cloned()
            .collect();
        let observed = Observed::new(records);
        let views = zone::gather(config, &idxs, &controls, now, |ri, mi| {
            let verdict = match ok.get(&(ri, mi)) {
                Some(true) => Verdict::Healthy,
                Some(false) => Verdict::Unhealthy,
                None => Verdict::Unknown,
            };
            // One probe has no flap history (nothing is damped), one
            // instance agrees with itself, and a failure every other
            // member shares is not corroborated.
            MemberFacts {
                own: verdict,
                agreed: verdict,
                discovered: discovered.get(&(ri, mi)).cloned().flatten(),
                damped: false,
                uncorroborated: verdict == Verdict::Unhealthy && !any_passed,
                // The plan does not read the cluster: a switch counts as
                // not known to be On.
                switch: config.records[ri].members[mi]
                    .routing_control
                    .as_ref()
                    .map(|_| crate::decide::lever::Switch::Unknown),
            }
        });
        let d = zone::decide(&ZoneInputs {
            owner: &config.owner,
            zone_id: &z.id,
            observed: &observed,
            checks: &owned,
            records: views,
            lever: config.lever.as_ref().map(|l| l.mode),
        });
        // As if every health check call succeeds: the records that would
        // carry a check still to be created show `(new)`.
        let mut applied = d.records_applied();
        for call in applied.decision().calls.clone() {
            let record = applied.decision().records[call.record].record;
            let member = &record.members[call.member];
            let who = format!("{} {} {}", record.name, record.rtype, member.set_identifier);
            let id = match &call.step {
                Step::Update { id, config, .. } => {
                    check_lines.push(format!("update {id} for {who}: {config}"));
                    id.clone()
                }
                Step::Create { config, .. } => {
                    check_lines.push(format!("create for {who}: {config}"));
                    "(new)".to_string()
                }
                other => unreachable!("only calls are queued: {other:?}"),
            };
            applied.check_made(&call, id, &owned);
        }
        let d = applied.replan(&config.owner, &observed);
        for c in d.unused_checks(&owned) {
            check_lines.push(format!("delete {} (unused): {}", c.id, c.config));
        }
        for (&ri, outcomes) in idxs.iter().zip(&d.members) {
            decisions[ri] = outcomes.iter().map(|o| o.decision).collect();
        }
        changes.extend(d.changes);
        held.extend(d.held);
    }
    Ok(Preview {
        decisions,
        checks: check_lines,
        changes,
        held,
    })
}
