//! `records`: each latency record, its members (one per region), their
//! targets and the policy settings they share.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::raw::{RawHealthCheck, RawMember, RawPolicy, RawPractice, RawProbe, RawRecord};
use super::*;
use crate::parity::IgnoreRule;
use crate::provider::{normalize_name, AliasTarget, RecordType};

/// The latency regions Route53 accepts in a record's `Region`.
pub const LATENCY_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Route53's largest TTL.
const MAX_TTL: i64 = 2_147_483_647;

#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub name: String,
    /// A zone name (`example.test`) or a hosted zone id.
    pub zone: String,
    pub rtype: RecordType,
    pub ttl: u32,
    pub min_healthy: usize,
    /// At most this many members withdrawn at once (`policy.max_withdrawn`).
    pub max_withdrawn: Option<usize>,
    /// `policy.damping`; `None`: off.
    pub damping: Option<DampingSettings>,
    /// `policy.quorum`.
    pub quorum: Quorum,
    /// `parity`: `None` when the record is not checked; else the
    /// differences its report leaves out.
    pub parity: Option<Vec<IgnoreRule>>,
    /// `practice`: when the record practises a failover; `None`: never
    /// (`crate::decide::practice`).
    pub practice: Option<crate::decide::practice::Schedule>,
    pub members: Vec<MemberConfig>,
}

#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub region: String,
    pub set_identifier: String,
    pub target: Target,
    /// Shared with the member's prober.
    pub probe: Arc<ProbeSpec>,
    /// The Route53 health check to keep for this member; `None`: none.
    pub health_check: Option<HealthCheckSettings>,
    /// `health_check.existing`: a check the daemon did not make, attached
    /// as it is (then `health_check` is `None`).
    pub existing_check: Option<String>,
    pub adopt: bool,
    /// The ARC routing control that carries this member's decision in
    /// Route53's data plane (`crate::lever`); `None`: records only.
    pub routing_control: Option<String>,
    /// Its API and stage in CloudWatch, when given (`config::traffic`).
    pub traffic: Option<super::traffic::MemberTraffic>,
}

/// A member's Route53 health check settings, as configured. The check's

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Values(Vec<String>),
    Cname(String),
    Alias(AliasTarget),
    /// Discovered at run time (apigatewayv2 `GetDomainName` in the region).
    ApiGateway {
        domain: String,
        evaluate_target_health: bool,
    },
}

impl Validator {
    pub(super) fn record(
        &mut self,
        path: &str,
        r: &RawRecord,
        (default_probe, default_policy, default_check, top_parity, default_practice): (
            &RawProbe,
            &RawPolicy,
            &RawHealthCheck,
            Option<&ParityConfig>,
            Option<&RawPractice>,
        ),
    ) -> Option<RecordConfig> {
        let name = self
            .required(&format!("{path}.name"), &r.name)
            .map(|n| normalize_name(n));
        if let Some(n) = &name {
            if !is_dns_name(n) {
                self.err(
                    format!("{path}.name"),
                    format!("{} is not a DNS name", q(n)),
                );
            }
        }
        let zone = self.required(&format!("{path}.zone"), &r.zone).cloned();
        if let (Some(n), Some(z)) = (&name, &zone) {
            // A zone given by id (no dot) is checked against the provider at start-up.
            let zn = zone_ref(z);
            if zn.contains('.') && n != &zn && !n.ends_with(&format!(".{zn}")) {
                self.err(
                    format!("{path}.zone"),
                    format!("{} is not a suffix of the record name {}", q(z), q(n)),
                );
            }
            // Route53 refuses a CNAME at the apex; one in a batch would
            // fail the batch every time.
            let cname = r
                .rtype
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("cname"));
            if cname && *n == zn {
                self.err(
                    format!("{path}.type"),
                    format!(
                        "CNAME at the zone's apex ({}): Route53 refuses it; use type A or AAAA with an alias target",
                        q(n)
                    ),
                );
            }
        }
        let rtype = match r.rtype.as_deref() {
            None => Some(RecordType::A),
            Some(t) => match RecordType::from(t.to_string()) {
                t @ (RecordType::A | RecordType::Aaaa | RecordType::Cname) => Some(t),
                _ => {
                    self.err(
                        format!("{path}.type"),
                        format!("{} must be A, AAAA or CNAME", q(t)),
                    );
                    None
                }
            },
        };
        let ttl = r.ttl.unwrap_or(60);
        if !(0..=MAX_TTL).contains(&ttl) {
            self.err(
                format!("{path}.ttl"),
                format!("{ttl} must be 0 to {MAX_TTL}"),
            );
        }
        let record_probe = r.probe.clone().unwrap_or_default().over(default_probe);
        let record_check = r
            .health_check
            .clone()
            .unwrap_or_default()
            .over(default_check);
        self.member_only_check(&format!("{path}.health_check"), &record_check);
        let raw_policy = r.policy.clone().unwrap_or_default().over(default_policy);

        let mut members = Vec::new();
        let mut regions_seen = HashSet::new();
        match &r.regions {
            None => self.err(format!("{path}.regions"), "missing (required)"),
            Some(list) if list.is_empty() => {
                self.err(format!("{path}.regions"), "must list at least one region")
            }
            Some(list) => {
                for (j, m) in list.iter().enumerate() {
                    let mpath = format!("{path}.regions[{j}]");
                    if let Some(region) = &m.region {
                        if !regions_seen.insert(region.clone()) {
                            self.err(
                                format!("{mpath}.region"),
                                format!(
                                    "{} appears twice; Route53 takes one latency record per region",
                                    q(region)
                                ),
                            );
                        }
                    }
                    let inherited = (&record_probe, &record_check);
                    if let Some(mc) = self.member(&mpath, m, rtype.as_ref(), inherited) {
                        members.push(mc);
                    }
                }
                if list.len() == 1 {
                    self.warnings.push(format!(
                        "{path}: {} has a single region: the daemon can never withdraw it",
                        name.as_deref().unwrap_or("?")
                    ));
                }
            }
        }
        let all_members = r.regions.as_ref().map_or(0, Vec::len);
        // Without regions there is nothing to check the policy against.
        let policy = (all_members > 0)
            .then(|| self.policy(&format!("{path}.policy"), &raw_policy, all_members))
            .flatten();
        let parity = self.record_parity(&format!("{path}.parity"), r.parity.as_ref(), top_parity);
        let practice = self.practice(
            &format!("{path}.practice"),
            r.practice.as_ref(),
            default_practice,
        );
        if members.len() != all_members {
            return None;
        }
        let policy = policy?;
        Some(RecordConfig {
            name: name?,
            zone: zone_ref(&zone?),
            rtype: rtype?,
            ttl: u32::try_from(ttl).ok()?,
            min_healthy: policy.min_healthy,
            max_withdrawn: policy.max_withdrawn,
            damping: policy.damping,
            quorum: policy.quorum,
            parity,
            practice,
            members,
        })
    }

    fn member(
        &mut self,
        path: &str,
        m: &RawMember,
        rtype: Option<&RecordType>,
        (record_probe, record_check): (&RawProbe, &RawHealthCheck),
    ) -> Option<MemberConfig> {
        let region = self.required(&format!("{path}.region"), &m.region).cloned();
        if let Some(r) = &region {
            if !LATENCY_REGIONS.contains(&r.as_str()) {
                self.err(
                    format!("{path}.region"),
                    format!("{} is not a Route53 latency region (e.g. us-east-1)", q(r)),
                );
            }
        }
        let set_identifier = m.set_identifier.clone().or_else(|| region.clone());
        if let Some(id) = &set_identifier {
            if id.is_empty() || id.len() > 128 {
                self.err(
                    format!("{path}.set_identifier"),
                    format!("{} must be 1-128 characters", q(id)),
                );
            }
        }
        let target = self.target(&format!("{path}.target"), m, rtype);
        let raw_probe = m.probe.clone().unwrap_or_default().over(record_probe);
        let probe = self.probe(&format!("{path}.probe"), &raw_probe);
        let check = m
            .health_check
            .clone()
            .unwrap_or_default()
            .over(record_check);
        let existing_check = self.existing_check(path, m.health_check.as_ref());
        let routing_control = self.routing_control(path, m.routing_control.as_deref());
        let traffic = self.member_traffic(path, m.traffic.as_ref());
        let health_check = match existing_check {
            Some(_) => Some(None),
            None => self.health_check(path, &check, &raw_probe, probe.as_ref()),
        };
        Some(MemberConfig {
            region: region?,
            set_identifier: set_identifier?,
            target: target?,
            probe: Arc::new(probe?),
            health_check: health_check?,
            existing_check,
            adopt: m.adopt.unwrap_or(false),
            routing_control,
            traffic,
        })
    }

    fn target(&mut self, path: &str, m: &RawMember, rtype: Option<&RecordType>) -> Option<Target> {
        const KINDS: &str = "values, cname, alias or api_gateway_domain";
        let Some(t) = &m.target else {
            self.err(path, format!("missing (required): {KINDS}"));
            return None;
        };
        let given = [
            t.values.is_some(),
            t.cname.is_some(),
            t.alias.is_some(),
            t.api_gateway_domain.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            self.err(path, format!("give exactly one of {KINDS}"));
            return None;
        }
        if t.evaluate_target_health.is_some() && t.api_gateway_domain.is_none() {
            self.err(
                format!("{path}.evaluate_target_health"),
                "only with api_gateway_domain (an alias takes it inside alias)",
            );
        }
        let rtype = rtype?;
        if let Some(values) = &t.values {
            if values.is_empty() {
                self.err(format!("{path}.values"), "must list at least one value");
                return None;
            }
            let mut ok = true;
            for (k, v) in values.iter().enumerate() {
                let fits = match rtype {
                    RecordType::A => v.parse::<Ipv4Addr>().is_ok(),
                    RecordType::Aaaa => v.parse::<Ipv6Addr>().is_ok(),
                    _ => false,
                };
                if !fits {
                    ok = false;
                    let problem = match rtype {
                        RecordType::A => "is not an IPv4 address".to_string(),
                        RecordType::Aaaa => "is not an IPv6 address".to_string(),
                        other => format!("cannot be a value of a {other} record (use cname)"),
                    };
                    self.err(format!("{path}.values[{k}]"), format!("{} {problem}", q(v)));
                }
            }
            return ok.then(|| Target::Values(values.clone()));
        }
        if let Some(c) = &t.cname {
            if *rtype != RecordType::Cname {
                self.err(
                    format!("{path}.cname"),
                    format!("a cname target needs type CNAME, the record is {rtype}"),
                );
                return None;
            }
            let c = normalize_name(c);
            if !is_dns_name(&c) {
                self.err(
                    format!("{path}.cname"),
                    format!("{} is not a DNS name", q(&c)),
                );
                return None;
            }
            return Some(Target::Cname(c));
        }
        if let Some(domain) = &t.api_gateway_domain {
            if *rtype == RecordType::Cname {
                self.err(
                    format!("{path}.api_gateway_domain"),
                    "a CNAME record cannot have an alias target (use type A or AAAA)",
                );
                return None;
            }
            let domain = normalize_name(domain);
            if !is_dns_name(&domain) {
                self.err(
                    format!("{path}.api_gateway_domain"),
                    format!("{} is not a DNS name", q(&domain)),
                );
                return None;
            }
            return Some(Target::ApiGateway {
                domain,
                evaluate_target_health: t.evaluate_target_health.unwrap_or(false),
            });
        }
        let a = t.alias.as_ref()?;
        if *rtype == RecordType::Cname {
            self.err(
                format!("{path}.alias"),
                "a CNAME record cannot have an alias target (use type A or AAAA)",
            );
            return None;
        }
        let dns = self.required(&format!("{path}.alias.dns_name"), &a.dns_name);
        let zone = self.required(&format!("{path}.alias.hosted_zone_id"), &a.hosted_zone_id);
        Some(Target::Alias(AliasTarget {
            dns_name: normalize_name(dns?),
            hosted_zone_id: zone?.clone(),
            evaluate_target_health: a.evaluate_target_health.unwrap_or(false),
        }))
    }
}
