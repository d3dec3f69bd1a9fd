//! `init`'s pure half: what a zone holds → the latency sets to adopt, and
//! the config text that adopts them as they are, with a line for every
//! part that needs the operator's decision. No I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::provider::{AliasTarget, RecordSet, RecordType};

/// One name and type whose members route by latency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySet {
    pub name: String,
    pub rtype: RecordType,
    /// Sorted by region, then set identifier.
    pub members: Vec<RecordSet>,
}

/// What the zone holds under the names that have latency sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub sets: Vec<LatencySet>,
    /// A, AAAA and CNAME sets under those names that route another way
    /// (weighted, failover, geolocation, multivalue, or plain).
    pub others: Vec<RecordSet>,
}

/// Record types the daemon manages.
fn managed_type(t: &RecordType) -> bool {
    matches!(t, RecordType::A | RecordType::Aaaa | RecordType::Cname)
}

fn is_latency(r: &RecordSet) -> bool {
    managed_type(&r.rtype) && r.set_identifier.is_some() && r.region.is_some()
}

/// The latency sets of `records` (one name's when `name` is given), and
/// what else those names hold.
pub fn find(records: &[RecordSet], name: Option<&str>) -> Found {
    let wanted = name.map(crate::provider::normalize_name);
    let asked = |r: &RecordSet| wanted.as_ref().is_none_or(|n| &r.name == n);
    let mut sets: BTreeMap<(String, RecordType), Vec<RecordSet>> = BTreeMap::new();
    for r in records.iter().filter(|r| asked(r) && is_latency(r)) {
        sets.entry((r.name.clone(), r.rtype.clone()))
            .or_default()
            .push(r.clone());
    }
    let names: BTreeSet<&str> = sets.keys().map(|(n, _)| n.as_str()).collect();
    let mut others: Vec<RecordSet> = records
        .iter()
        .filter(|r| names.contains(r.name.as_str()) && managed_type(&r.rtype) && !is_latency(r))
        .cloned()
        .collect();
    others.sort_by_key(RecordSet::key);
    let sets = sets
        .into_iter()
        .map(|((name, rtype), mut members)| {
            members.sort_by(|a, b| {
                (&a.region, &a.set_identifier).cmp(&(&b.region, &b.set_identifier))
            });
            LatencySet {
                name,
                rtype,
                members,
            }
        })
        .collect();
    Found { sets, others }
}

/// The region of an API Gateway endpoint name
/// (`d-abc123.execute-api.eu-west-1.amazonaws.com` → `eu-west-1`).
pub fn execute_api_region(dns_name: &str) -> Option<&str> {
    let rest = dns_name
        .trim_end_matches('.')
        .split_once(".execute-api.")?
        .1;
    rest.strip_suffix(".amazonaws.com")
        .filter(|r| !r.is_empty() && !r.contains('.'))
}

/// What API Gateway says of an alias target to one of its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gateway {
    /// The custom domain whose regional endpoint the alias is.
    Domain(String),
    /// No custom domain in the member's region has it (the text: why).
    Unknown(String),
}

/// By (member region, alias target name): what API Gateway said. An alias
/// missing here was not asked about (not an API Gateway name, or no API
/// Gateway to ask).
pub type Gateways = BTreeMap<(String, String), Gateway>;

/// What goes into the config besides the records.
pub struct Options<'a> {
    pub owner: &'a str,
    /// The zone as the records name it (its name).
    pub zone: &'a str,
    /// The `provider:` section, YAML, one key per line, unindented.
    pub provider: &'a str,
    /// `/health`.
    pub probe_path: &'a str,
    /// Said in the header: what was read, through what.
    pub source: &'a str,
}

/// The config text, and every part that needs a decision (one line each,
/// also written as comments at the top of the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub notes: Vec<String>,
    /// Members written to be adopted.
    pub adopted: usize,
}

/// One member as it will be written.
struct Member<'a> {
    record: &'a RecordSet,
    target: String,
    /// `connect_to` for the probe: the member's own endpoint, since the
    /// record's name resolves to whichever region is nearest.
    connect_to: Option<String>,
    /// Why it is written commented out.
    undecided: Option<String>,
    comments: Vec<String>,
}

/// The config that adopts `found`'s latency sets as they are.
pub fn render(found: &Found, gateways: &Gateways, opts: &Options<'_>) -> Rendered {
    let mut notes = Vec::new();
    let mut body = String::new();
    let mut adopted = 0;
    for r in &found.others {
        notes.push(format!(
            "{} {}{}: routes by weight, failover, geolocation or not at all, not by latency: left alone (the daemon manages latency members only; move it to another name, or make it a latency member)",
            r.name,
            r.rtype,
            r.set_identifier
                .as_deref()
                .map(|s| format!(" {}", yaml_str(s)))
                .unwrap_or_default(),
        ));
    }
    // Regions one type of a name has and another lacks.
    let mut regions_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &found.sets {
        let all = regions_of.entry(&s.name).or_default();
        all.extend(s.members.iter().filter_map(|m| m.region.as_deref()));
    }
    for set in &found.sets {
        let label = format!("{} {}", set.name, set.rtype);
        let have: BTreeSet<&str> = set
            .members
            .iter()
            .filter_map(|m| m.region.as_deref())
            .collect();
        let missing: Vec<&str> = regions_of[set.name.as_str()]
            .difference(&have)
            .copied()
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "{label}: no member in {} although the name's other records have one there: add it, or leave the region out on purpose",
                missing.join(", ")
            ));
        }
        if set.members.len() == 1 {
            notes.push(format!(
                "{label}: one region only: nothing to fail over to (add the other regions' records first)"
            ));
        }
        let members: Vec<Member<'_>> = set
            .members
            .iter()
            .map(|m| member(set, m, gateways))
            .collect();
        for m in &members {
            if let Some(why) = &m.undecided {
                notes.push(format!(
                    "{label} {} ({}): {why}: written commented out",
                    yaml_str(m.record.set_identifier.as_deref().unwrap_or_default()),
                    m.record.region.as_deref().unwrap_or_default()
                ));
            }
        }
        let ttls: BTreeSet<u32> = set.members.iter().filter_map(|m| m.ttl).collect();
        if ttls.len() > 1 {
            notes.push(format!(
                "{label}: members differ in TTL ({}): the config has one per record; the others' records would be rewritten with the first",
                ttls.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
        let wildcard = set.name.starts_with('*');
        if wildcard {
            notes.push(format!(
                "{label}: a wildcard name: the probe needs a concrete host name: written commented out"
            ));
        }
        let live = members.iter().filter(|m| m.undecided.is_none()).count();
        let whole = if wildcard || live == 0 { "# " } else { "" };
        if !wildcard {
            adopted += live;
        }
        let _ = writeln!(body, "{whole}  - name: {}", yaml_str(&set.name));
        let _ = writeln!(body, "{whole}    zone: {}", yaml_str(opts.zone));
        let _ = writeln!(body, "{whole}    type: {}", set.rtype);
        if let Some(ttl) = ttls.iter().next() {
            let _ = writeln!(body, "{whole}    ttl: {ttl}");
        }
        let _ = writeln!(body, "{whole}    probe:");
        let url = format!("https://{}{}", set.name, opts.probe_path);
        let _ = writeln!(body, "{whole}      url: {}", yaml_str(&url));
        let _ = writeln!(
            body,
            "{whole}      # Decide: does this route need a token (auth: or headers:), and what does a healthy answer say (expect: {{status: [200], body_contains: ...}})?"
        );
        let _ = writeln!(body, "{whole}    regions:");
        for m in &members {
            let c = if whole.is_empty() && m.undecided.is_some() {
                "# "
            } else {
                whole
            };
            if let Some(why) = &m.undecided {
                let _ = writeln!(body, "{c}      # Needs a decision: {why}.");
            }
            let r = m.record;
            let _ = writeln!(
                body,
                "{c}      - region: {}",
                r.region.as_deref().unwrap_or_default()
            );
            let _ = writeln!(
                body,
                "{c}        set_identifier: {}",
                yaml_str(r.set_identifier.as_deref().unwrap_or_default())
            );
            let _ = writeln!(body, "{c}        adopt: true");
            let _ = writeln!(body, "{c}        target: {}", m.target);
            for line in &m.comments {
                let _ = writeln!(body, "{c}        # {line}");
            }
            if let Some(to) = &m.connect_to {
                let _ = writeln!(body, "{c}        probe: {{connect_to: {}}}", yaml_str(to));
            }
            match &r.health_check_id {
                Some(id) => {
                    let _ = writeln!(
                        body,
                        "{c}        # The record carries Route53 health check {id}: kept as it is (never changed or deleted)."
                    );
                    let _ = writeln!(
                        body,
                        "{c}        health_check: {{existing: {}}}",
                        yaml_str(id)
                    );
                }
                None => {
                    let _ = writeln!(
                        body,
                        "{c}        # No Route53 health check on the record now. Remove this line to have the daemon make one (a create, then the record changes to carry it)."
                    );
                    let _ = writeln!(body, "{c}        health_check: {{enabled: false}}");
                }
            }
        }
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# route53-failover config written by `route53-failover init`"
    );
    let _ = writeln!(text, "# from {}.", opts.source);
    let _ = writeln!(
        text,
        "# Every member is adopted as it is: `plan` shows no record change, only the"
    );
    let _ = writeln!(
        text,
        "# ownership markers the daemon adds to claim them. Next: `check`, `plan`, `run`."
    );
    if !notes.is_empty() {
        let _ = writeln!(text, "#\n# Needs a decision:");
        for n in &notes {
            let _ = writeln!(text, "# - {n}");
        }
    }
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "# Written into the ownership marker of every record this daemon manages;"
    );
    let _ = writeln!(
        text,
        "# one per install (every instance of one HA install shares it)."
    );
    let _ = writeln!(text, "owner: {}", yaml_str(opts.owner));
    let _ = writeln!(text, "listen: 0.0.0.0:9090");
    let _ = writeln!(text, "provider:");
    for line in opts.provider.lines() {
        let _ = writeln!(text, "  {line}");
    }
    let _ = writeln!(text, "defaults:");
    let _ = writeln!(
        text,
        "  probe: {{interval: 2s, timeout: 1s, rise: 2, fall: 3, fast_interval: 500ms}}"
    );
    let _ = writeln!(text, "records:");
    text.push_str(&body);
    Rendered {
        text,
        notes,
        adopted,
    }
}

/// How one member's target is written, and whether it needs a decision.
fn member<'a>(set: &LatencySet, r: &'a RecordSet, gateways: &Gateways) -> Member<'a> {
    let region = r.region.clone().unwrap_or_default();
    let mut m = Member {
        record: r,
        target: String::new(),
        connect_to: None,
        undecided: None,
        comments: Vec::new(),
    };
    if !crate::config::LATENCY_REGIONS.contains(&region.as_str()) {
        m.undecided = Some(format!(
            "{region} is not a region this daemon takes for latency records yet"
        ));
    }
    let Some(alias) = &r.alias else {
        let values: Vec<String> = r.values.iter().map(|v| yaml_str(v)).collect();
        let first = r
            .values
            .first()
            .map(|v| v.trim_end_matches('.').to_string());
        m.target = if set.rtype == RecordType::Cname {
            format!("{{cname: {}}}", values.first().cloned().unwrap_or_default())
        } else {
            format!("{{values: [{}]}}", values.join(", "))
        };
        m.connect_to = first.map(|host| match host.contains(':') {
            true => format!("[{host}]:443"),
            false => format!("{host}:443"),
        });
        if r.values.len() > 1 {
            m.comments.push(format!(
                "The probe connects to the first of {} values.",
                r.values.len()
            ));
        }
        return m;
    };
    let key = (region.clone(), alias.dns_name.clone());
    match (gateways.get(&key), execute_api_region(&alias.dns_name)) {
        (Some(Gateway::Domain(domain)), _) => {
            let eth = if alias.evaluate_target_health {
                ", evaluate_target_health: true"
            } else {
                ""
            };
            m.target = format!("{{api_gateway_domain: {}{eth}}}", yaml_str(domain));
            m.comments.push(format!(
                "{} in {region} is {domain}'s regional endpoint (checked with API Gateway); the probe connects there.",
                alias.dns_name
            ));
            if domain != &set.name {
                m.undecided = Some(format!(
                    "the alias is custom domain {domain}'s endpoint, not {}'s: API Gateway answers it for {domain} only, and the probe would send {} as its Host",
                    set.name, set.name
                ));
            }
        }
        (Some(Gateway::Unknown(why)), _) => {
            m.target = literal_alias(alias);
            m.undecided = Some(format!("an alias to {}, but {why}", alias.dns_name));
        }
        (None, Some(api_region)) if api_region != region => {
            m.target = literal_alias(alias);
            m.undecided = Some(format!(
                "a {region} member aliased to {api_region}'s API Gateway ({})",
                alias.dns_name
            ));
        }
        (None, Some(_)) => {
            m.target = literal_alias(alias);
            m.connect_to = Some(format!("{}:443", alias.dns_name));
            m.comments.push(
                "An API Gateway endpoint not checked with API Gateway (no apigatewayv2 to ask): kept as an alias."
                    .into(),
            );
        }
        (None, None) => {
            m.target = literal_alias(alias);
            m.connect_to = Some(format!("{}:443", alias.dns_name));
        }
    }
    m
}

fn literal_alias(a: &AliasTarget) -> String {
    format!(
        "{{alias: {{dns_name: {}, hosted_zone_id: {}, evaluate_target_health: {}}}}}",
        yaml_str(&a.dns_name),
        yaml_str(&a.hosted_zone_id),
        a.evaluate_target_health
    )
}

/// A YAML scalar that reads back as the same string: bare when it plainly
/// is one, else double-quoted (JSON's quoting is YAML's).
pub fn yaml_str(s: &str) -> String {
    let plain = s.chars().any(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && !s.contains(": ")
        // A `:` ends a plain scalar before a flow indicator or at its end.
        && !s.ends_with(':')
        && ![":,", ":]", ":}", ":[", ":{"].iter().any(|p| s.contains(p))
        && !["true", "false", "yes", "no", "on", "off", "null", "y", "n"]
            .contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests;
