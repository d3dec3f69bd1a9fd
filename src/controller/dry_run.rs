//! `plan`: what a reconcile would do, from one probe of each member.

use std::collections::BTreeMap;

use tracing::warn;

use super::discovery_endpoint;
use crate::auth::TokenSources;
use crate::config::{Config, Target};
use crate::discovery::Discovery;
use crate::health::Verdict;
use crate::plan::{self, Observed, RecordIntents};
use crate::policy;
use crate::probe::{Prober, TlsConfigs};
use crate::provider::{AliasTarget, Change, Provider};

/// Probes every member once, reads the provider, and returns what a
/// reconcile would do: the decisions per record, and the changes. For `plan`.
pub async fn dry_run(
    config: &Config,
    provider: &dyn Provider,
) -> Result<(Vec<Vec<policy::MemberDecision>>, Vec<Change>), String> {
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
        set.spawn(async move { (ri, mi, prober.probe_via(via.as_deref()).await.ok()) });
    }
    let mut ok: BTreeMap<(usize, usize), bool> = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let (ri, mi, passed) = r.map_err(|e| e.to_string())?;
        ok.insert((ri, mi), passed);
    }
    let mut decisions = vec![Vec::new(); config.records.len()];
    let mut changes = Vec::new();
    for (zone, idxs) in config.records_by_zone() {
        let z = provider.find_zone(&zone).await.map_err(|e| e.to_string())?;
        let records = provider
            .list_records(&z.id)
            .await
            .map_err(|e| e.to_string())?;
        let observed = Observed::new(records);
        let claims = observed.claims();
        let mut intents = Vec::new();
        for &ri in &idxs {
            let record = &config.records[ri];
            let verdicts: Vec<Verdict> = (0..record.members.len())
                .map(|mi| match ok.get(&(ri, mi)) {
                    Some(true) => Verdict::Healthy,
                    Some(false) => Verdict::Unhealthy,
                    None => Verdict::Unknown,
                })
                .collect();
            let targets: Vec<Option<AliasTarget>> = (0..record.members.len())
                .map(|mi| discovered.get(&(ri, mi)).cloned().flatten())
                .collect();
            let inputs = plan::member_inputs(
                &observed,
                &claims,
                &config.owner,
                record,
                &verdicts,
                &targets,
            );
            let d = policy::decide(record.min_healthy, &inputs);
            intents.push(RecordIntents {
                record,
                intents: d.iter().map(|d| d.intent).collect(),
                discovered: targets,
            });
            decisions[ri] = d;
        }
        changes.extend(plan::plan_zone(&config.owner, &observed, &intents));
    }
    Ok((decisions, changes))
}
