//! `plan`: what a reconcile would do, from one probe of each member.

use std::collections::{BTreeMap, HashSet};

use tracing::warn;

use super::discovery_endpoint;
use crate::auth::TokenSources;
use crate::config::{Config, Target};
use crate::decide::health_check::{self as hc, Step};
use crate::decide::plan::{self, Attach, Observed, RecordIntents};
use crate::decide::policy;
use crate::decide::verdict::Verdict;
use crate::discovery::Discovery;
use crate::probe::{Prober, TlsConfigs};
use crate::provider::{AliasTarget, Change, Provider};

/// What a reconcile would do.
pub struct DryRun {
    /// Per record, per member.
    pub decisions: Vec<Vec<policy::MemberDecision>>,
    /// Health check steps, one line each.
    pub checks: Vec<String>,
    /// Record changes; a check still to be created shows as `(new)`.
    pub changes: Vec<Change>,
}

/// Probes every member once, reads the provider, and returns what a
/// reconcile would do. For `plan`.
pub async fn dry_run(config: &Config, provider: &dyn Provider) -> Result<DryRun, String> {
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
    let mut check_lines = Vec::new();
    let all_checks = provider
        .list_health_checks()
        .await
        .map_err(|e| e.to_string())?;
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
        let mut keep = HashSet::new();
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
            let mut ri_intents = RecordIntents::new(record, d.iter().map(|d| d.intent).collect());
            for (mi, member) in record.members.iter().enumerate() {
                let want = hc::want(member, inputs[mi].conflict, targets[mi].as_ref());
                let prefix = hc::member_prefix(&zone_prefix, record, member);
                let current = observed.member_record(record, member);
                let referenced = current.and_then(|c| c.health_check_id.as_deref());
                let (step, kept) = hc::step(&owned, &prefix, &want, referenced);
                keep.extend(kept);
                let who = format!("{} {} {}", record.name, record.rtype, member.set_identifier);
                ri_intents.checks[mi] = match step {
                    Step::Detach => Attach::Detach,
                    Step::Keep => Attach::Keep,
                    Step::Use(id) => Attach::Check(id),
                    Step::Update { id, config, .. } => {
                        check_lines.push(format!("update {id} for {who}: {config}"));
                        Attach::Check(id)
                    }
                    Step::Create { config, .. } => {
                        check_lines.push(format!("create for {who}: {config}"));
                        Attach::Check("(new)".into())
                    }
                };
            }
            ri_intents.discovered = targets;
            intents.push(ri_intents);
            decisions[ri] = d;
        }
        changes.extend(plan::plan_zone(&config.owner, &observed, &intents));
        for c in owned.iter().filter(|c| !keep.contains(&c.id)) {
            check_lines.push(format!("delete {} (unused): {}", c.id, c.config));
        }
    }
    Ok(DryRun {
        decisions,
        checks: check_lines,
        changes,
    })
}
