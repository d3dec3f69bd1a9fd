//! Route53 health checks kept beside the records: the settings a member's
//! check should have, how the daemon recognises its own checks, and what to
//! do to bring one member's check in line. Pure; the reconciler executes.
//!
//! Ownership: a check belongs to this owner and zone when its
//! `CallerReference` starts with `rfo1-<hash of owner and zone id>-`; the
//! next part hashes the record name, type and set identifier, the last one
//! the settings it was created with. The reference is deterministic, so a
//! create retried after a lost answer returns the same check; tags carry
//! the same facts for people and IAM conditions. Checks of other owners,
//! or made by hand, never match and are never touched.

use crate::config::{short_digest, HealthCheckSettings, MemberConfig, RecordConfig, Target};
use crate::provider::{AliasTarget, HealthCheck, HealthCheckConfig, HealthCheckType};

const REFERENCE_VERSION: &str = "rfo1";

/// Tag keys put on every check the daemon creates.
pub const TAG_OWNER: &str = "route53-failover:owner";
pub const TAG_RECORD: &str = "route53-failover:record";
pub const TAG_SET_IDENTIFIER: &str = "route53-failover:set-identifier";

fn short_hash(parts: &[&str]) -> String {
    short_digest(parts.join("\n").as_bytes())
}

/// The reference prefix of every check this owner keeps for one zone.
pub fn zone_prefix(owner: &str, zone_id: &str) -> String {
    format!(
        "{REFERENCE_VERSION}-{}-",
        short_hash(&["owner", owner, zone_id])
    )
}

/// The reference prefix of one member's checks.
pub fn member_prefix(zone_prefix: &str, record: &RecordConfig, member: &MemberConfig) -> String {
    let rtype = record.rtype.to_string();
    format!(
        "{zone_prefix}{}-",
        short_hash(&[&record.name, &rtype, &member.set_identifier])
    )
}

/// The reference prefix of one of a member's child checks (`slot`:
/// `endpoint` or `switch`, see [`children`]): hashed apart from the
/// member's own prefix, so neither is ever taken for the other.
pub fn child_prefix(
    zone_prefix: &str,
    record: &RecordConfig,
    member: &MemberConfig,
    slot: &str,
) -> String {
    let rtype = record.rtype.to_string();
    format!(
        "{zone_prefix}{}-",
        short_hash(&[&record.name, &rtype, &member.set_identifier, slot])
    )
}

/// The checks a member with a routing control and an endpoint check
/// combines: its record carries a `CALCULATED` check healthy while both
/// are ([`calculated`]), so Route53 answers with it only while its switch
/// is On and its endpoint passes Route53's own checkers. `None`: the member
/// carries one check ([`want`]).
pub fn children(
    member: &MemberConfig,
    conflict: bool,
    discovered: Option<&AliasTarget>,
) -> Option<[(&'static str, Want); 2]> {
    let arn = member.routing_control.as_ref()?;
    if conflict {
        return None;
    }
    let endpoint = match (&member.existing_check, &member.health_check) {
        (Some(id), _) => Want::Existing(id.clone()),
        (None, Some(settings)) => match desired(member, settings, discovered) {
            Some(c) => Want::Check(c),
            None => Want::Unknown,
        },
        (None, None) => return None,
    };
    Some([
        ("endpoint", endpoint),
        ("switch", Want::Check(recovery_control(arn))),
    ])
}

/// Whether check `id` (of `owned`) is routing control `arn`'s check, or a
/// calculated check over it: the record carrying it is driven by the switch.
pub fn carries_switch(owned: &[HealthCheck], id: &str, arn: &str) -> bool {
    switch_of(owned, id) == Some(arn)
}

/// The routing control check `id` (of `owned`) follows: its own, or its
/// child's when it is a calculated check over one.
pub fn switch_of<'h>(owned: &'h [HealthCheck], id: &str) -> Option<&'h str> {
    let find = |id: &str| owned.iter().find(|c| c.id == id);
    let c = find(id)?;
    c.config.routing_control_arn.as_deref().or_else(|| {
        c.config
            .child_health_checks
            .iter()
            .find_map(|k| find(k)?.config.routing_control_arn.as_deref())
    })
}

/// A `CALCULATED` check healthy while every one of `children` is.
pub fn calculated(children: [String; 2]) -> HealthCheckConfig {
    let mut children = children.to_vec();
    children.sort();
    HealthCheckConfig {
        kind: HealthCheckType::Calculated,
        routing_control_arn: None,
        health_threshold: children.len() as u32,
        child_health_checks: children,
        ..recovery_control("")
    }
}

/// The `CallerReference` for creating a member's check with `config`
/// (at most 64 characters, as Route53 requires, with room for a salt).
pub fn caller_reference(member_prefix: &str, config: &HealthCheckConfig) -> String {
    let json = serde_json::to_string(config).expect("a health check config serializes");
    format!("{member_prefix}{}", short_hash(&[&json]))
}

/// Ids of the owned checks with this member prefix.
pub fn member_checks(owned: &[HealthCheck], member_prefix: &str) -> Vec<String> {
    owned
        .iter()
        .filter(|c| c.caller_reference.starts_with(member_prefix))
        .map(|c| c.id.clone())
        .collect()
}

/// The tags a member's check carries.
pub fn tags(owner: &str, record: &RecordConfig, member: &MemberConfig) -> Vec<(String, String)> {
    vec![
        (
            "Name".to_string(),
            format!("{} {} {}", record.name, record.rtype, member.set_identifier),
        ),
        (TAG_OWNER.to_string(), owner.to_string()),
        (
            TAG_RECORD.to_string(),
            format!("{} {}", record.name, record.rtype),
        ),
        (
            TAG_SET_IDENTIFIER.to_string(),
            member.set_identifier.clone(),
        ),
    ]
}

/// The settings of a member's check, from its probe: type from the URL
/// scheme (string match when the probe expects a body), the host the probe
/// reaches (the discovered regional target, else `connect_to`, else the
/// URL host; an IP address goes in `IPAddress` with the URL's name kept as
/// the Host header), the URL's port and path. `None` while an API Gateway
/// target is not discovered.
pub fn desired(
    member: &MemberConfig,
    settings: &HealthCheckSettings,
    discovered: Option<&AliasTarget>,
) -> Option<HealthCheckConfig> {
    let probe = &member.probe;
    let url = &probe.url;
    let url_host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let url_port = url.port_or_known_default().unwrap_or(443);
    // The port goes with the host: connect_to's own, else the URL's.
    let (host, port) = match (&settings.fqdn, &member.target, &probe.connect_to) {
        (Some(f), _, _) => (f.clone(), url_port),
        (None, Target::ApiGateway { .. }, _) => (discovered?.dns_name.clone(), url_port),
        (None, _, Some((h, p))) => (h.clone(), *p),
        (None, _, None) => (url_host.to_string(), url_port),
    };
    let (ip_address, fqdn) = if host.parse::<std::net::IpAddr>().is_ok() {
        let name = url_host.parse::<std::net::IpAddr>().is_err();
        (Some(host), name.then(|| url_host.to_string()))
    } else {
        (None, Some(host))
    };
    let https = url.scheme() == "https";
    let kind = match (https, probe.body_contains.is_some()) {
        (true, false) => HealthCheckType::Https,
        (true, true) => HealthCheckType::HttpsStrMatch,
        (false, false) => HealthCheckType::Http,
        (false, true) => HealthCheckType::HttpStrMatch,
    };
    let resource_path = settings
        .resource_path
        .clone()
        .unwrap_or_else(|| match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        });
    Some(HealthCheckConfig {
        kind,
        ip_address,
        fqdn,
        port,
        resource_path,
        search_string: probe.body_contains.clone(),
        request_interval: settings.request_interval,
        failure_threshold: settings.failure_threshold,
        measure_latency: settings.measure_latency,
        enable_sni: https,
        regions: settings.regions.clone(),
        routing_control_arn: None,
        child_health_checks: Vec::new(),
        health_threshold: 0,
    })
}

/// The `RECOVERY_CONTROL` check of a member with a routing control: healthy
/// while the switch is On. The record carries it alone when the member has
/// no endpoint check, else a calculated check over both ([`children`];
/// docs/design.md "The data-plane lever").
pub fn recovery_control(arn: &str) -> HealthCheckConfig {
    HealthCheckConfig {
        kind: HealthCheckType::RecoveryControl,
        ip_address: None,
        fqdn: None,
        port: 0,
        resource_path: String::new(),
        search_string: None,
        request_interval: 0,
        failure_threshold: 0,
        measure_latency: false,
        enable_sni: false,
        regions: Vec::new(),
        routing_control_arn: Some(arn.to_string()),
        child_health_checks: Vec::new(),
        health_threshold: 0,
    }
}

/// What a member asks of its check: its routing control's check when it
/// has one; none when disabled; unknown while its
/// record is someone else's (`conflict`) or its target is not discovered.
pub fn want(member: &MemberConfig, conflict: bool, discovered: Option<&AliasTarget>) -> Want {
    if conflict {
        return Want::Unknown;
    }
    if let Some(arn) = &member.routing_control {
        return Want::Check(recovery_control(arn));
    }
    if let Some(id) = &member.existing_check {
        return Want::Existing(id.clone());
    }
    match &member.health_check {
        None => Want::None,
        Some(settings) => match desired(member, settings, discovered) {
            Some(c) => Want::Check(c),
            None => Want::Unknown,
        },
    }
}

/// What a member asks of its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// No check: checks are disabled for the member.
    None,
    /// Cannot be known now (target not discovered, record not ours):
    /// leave its checks and the record's attachment as they are.
    Unknown,
    Check(HealthCheckConfig),
    /// A check the daemon did not make (`health_check.existing`): attached
    /// as it is, never changed.
    Existing(String),
}

/// The step that brings one member's check in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The record carries no check.
    Detach,
    /// The record keeps whatever check it has.
    Keep,
    /// This check matches: attach it.
    Use(String),
    /// Update this check's mutable settings in place, then attach it.
    Update {
        id: String,
        version: i64,
        config: HealthCheckConfig,
    },
    /// Create a check (none exists, or an immutable setting changed: the
    /// old one is deleted once no record refers to it).
    Create {
        caller_reference: String,
        config: HealthCheckConfig,
    },
}

impl Step {
    /// What the step does, in a word.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::Detach => "detach",
            Step::Keep => "keep",
            Step::Use(_) => "attach",
            Step::Update { .. } => "update",
            Step::Create { .. } => "create",
        }
    }
}

/// The step for one member, given this zone's owned checks, and the ids of
/// the member's checks that stay. The check the record refers to is
/// preferred, so a record is not moved between equal checks.
pub fn step(
    owned: &[HealthCheck],
    member_prefix: &str,
    want: &Want,
    referenced: Option<&str>,
) -> (Step, Vec<String>) {
    let mut mine: Vec<&HealthCheck> = owned
        .iter()
        .filter(|c| c.caller_reference.starts_with(member_prefix))
        .collect();
    mine.sort_by_key(|c| (Some(c.id.as_str()) != referenced, c.id.clone()));
    let want = match want {
        Want::None => return (Step::Detach, Vec::new()),
        Want::Unknown => return (Step::Keep, mine.iter().map(|c| c.id.clone()).collect()),
        // One of this owner's own checks named as existing stays too: it
        // is in use, withdrawn or not.
        Want::Existing(id) => {
            let kept = mine.iter().filter(|c| &c.id == id).map(|c| c.id.clone());
            return (Step::Use(id.clone()), kept.collect());
        }
        Want::Check(c) => c,
    };
    if let Some(c) = mine.iter().find(|c| c.config == *want) {
        return (Step::Use(c.id.clone()), vec![c.id.clone()]);
    }
    if let Some(c) = mine.iter().find(|c| c.config.same_immutables(want)) {
        let step = Step::Update {
            id: c.id.clone(),
            version: c.version,
            config: want.clone(),
        };
        return (step, vec![c.id.clone()]);
    }
    let step = Step::Create {
        caller_reference: caller_reference(member_prefix, want),
        config: want.clone(),
    };
    (step, Vec::new())
}

#[cfg(test)]
mod tests;
