//! What the DNS service holds and is asked to change, in the daemon's own
//! types: record sets, change batches and their limits, health checks and
//! what Route53's checkers report.

use std::fmt;

use serde::{Deserialize, Serialize};

/// DNS record types the daemon reads. It writes only A, AAAA, CNAME and TXT
/// (the ownership marker); anything else a zone holds is carried through as
/// `Other` so an observed zone is never misread.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Txt,
    Other(String),
}

impl From<String> for RecordType {
    fn from(s: String) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            "CNAME" => RecordType::Cname,
            "TXT" => RecordType::Txt,
            _ => RecordType::Other(s.to_ascii_uppercase()),
        }
    }
}

impl From<RecordType> for String {
    fn from(t: RecordType) -> Self {
        t.to_string()
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
            RecordType::Other(s) => s,
        })
    }
}

/// Lower case, no trailing dot: the form every name takes inside the daemon.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// An alias target (Route53's `AliasTarget`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AliasTarget {
    pub dns_name: String,
    pub hosted_zone_id: String,
    #[serde(default)]
    pub evaluate_target_health: bool,
}

/// One resource record set as Route53 holds it. Names are lower case and
/// carry no trailing dot; the route53 provider translates at its edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordSet {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
}

impl RecordSet {
    /// A plain TXT record with a 60 s TTL; `values` already quoted. The
    /// daemon's own bookkeeping (lease, views, controls) is kept in these.
    pub fn txt(name: &str, values: Vec<String>) -> Self {
        RecordSet {
            name: name.to_string(),
            rtype: RecordType::Txt,
            set_identifier: None,
            region: None,
            ttl: Some(60),
            values,
            alias: None,
            health_check_id: None,
        }
    }

    /// An A latency record with one value and a 60 s TTL.
    pub fn latency_a(name: &str, set_identifier: &str, region: &str, value: &str) -> Self {
        RecordSet {
            name: name.into(),
            rtype: RecordType::A,
            set_identifier: Some(set_identifier.into()),
            region: Some(region.into()),
            ttl: Some(60),
            values: vec![value.into()],
            alias: None,
            health_check_id: None,
        }
    }

    /// Route53 identifies a record set by name, type and set identifier.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            name: self.name.clone(),
            rtype: self.rtype.clone(),
            set_identifier: self.set_identifier.clone(),
        }
    }

    /// How many `ResourceRecord` elements this set counts for in a batch.
    /// An alias has none; it is counted as one to stay on the safe side.
    pub fn resource_record_count(&self) -> usize {
        self.values.len().max(1)
    }

    /// Characters of values, as Route53 counts them against 32,000 per batch.
    pub fn value_chars(&self) -> usize {
        match &self.alias {
            Some(a) => a.dns_name.len(),
            None => self.values.iter().map(String::len).sum(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordKey {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    pub set_identifier: Option<String>,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)?;
        if let Some(id) = &self.set_identifier {
            write!(f, " ({id})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    Create,
    Delete,
    Upsert,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "CREATE",
            Action::Delete => "DELETE",
            Action::Upsert => "UPSERT",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub action: Action,
    pub record: RecordSet,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.record;
        write!(f, "{:<6} {}", self.action, r.key())?;
        if let Some(region) = &r.region {
            write!(f, " region={region}")?;
        }
        match &r.alias {
            Some(a) => write!(f, " alias={} zone={}", a.dns_name, a.hosted_zone_id)?,
            None => write!(
                f,
                " ttl={} values={}",
                r.ttl.unwrap_or(0),
                r.values.join(",")
            )?,
        }
        if let Some(id) = &r.health_check_id {
            write!(f, " health_check={id}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeStatus {
    Pending,
    Insync,
}

/// What a provider answers for an accepted change batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeInfo {
    pub id: String,
    pub status: ChangeStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
}

/// A Route53 health check's `Type`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum HealthCheckType {
    Http,
    Https,
    HttpStrMatch,
    HttpsStrMatch,
    /// Healthy while an ARC routing control is On (`crate::lever`).
    RecoveryControl,
    /// Healthy while `health_threshold` of its child checks are.
    Calculated,
    /// TCP, CALCULATED, CLOUDWATCH_METRIC…: never made by the daemon.
    Other(String),
}

impl From<String> for HealthCheckType {
    fn from(s: String) -> Self {
        match s.as_str() {
            "HTTP" => HealthCheckType::Http,
            "HTTPS" => HealthCheckType::Https,
            "HTTP_STR_MATCH" => HealthCheckType::HttpStrMatch,
            "HTTPS_STR_MATCH" => HealthCheckType::HttpsStrMatch,
            "RECOVERY_CONTROL" => HealthCheckType::RecoveryControl,
            "CALCULATED" => HealthCheckType::Calculated,
            _ => HealthCheckType::Other(s),
        }
    }
}

impl From<HealthCheckType> for String {
    fn from(t: HealthCheckType) -> Self {
        t.as_str().to_string()
    }
}

impl HealthCheckType {
    pub fn as_str(&self) -> &str {
        match self {
            HealthCheckType::Http => "HTTP",
            HealthCheckType::Https => "HTTPS",
            HealthCheckType::HttpStrMatch => "HTTP_STR_MATCH",
            HealthCheckType::HttpsStrMatch => "HTTPS_STR_MATCH",
            HealthCheckType::RecoveryControl => "RECOVERY_CONTROL",
            HealthCheckType::Calculated => "CALCULATED",
            HealthCheckType::Other(s) => s,
        }
    }

    pub fn is_str_match(&self) -> bool {
        matches!(
            self,
            HealthCheckType::HttpStrMatch | HealthCheckType::HttpsStrMatch
        )
    }
}

/// The settings of a Route53 health check (`HealthCheckConfig`), as far as
/// the daemon makes them. `regions` is kept sorted; empty means Route53's
/// default checker regions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthCheckConfig {
    #[serde(rename = "type")]
    pub kind: HealthCheckType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    pub port: u16,
    pub resource_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_string: Option<String>,
    pub request_interval: u32,
    pub failure_threshold: u32,
    pub measure_latency: bool,
    pub enable_sni: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// `RECOVERY_CONTROL`: the routing control whose state the check is
    /// (the endpoint fields are then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_control_arn: Option<String>,
    /// `CALCULATED`: the checks it combines (sorted), and how many of them
    /// must be healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_health_checks: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub health_threshold: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl HealthCheckConfig {
    /// Route53 cannot change these after creation (`UpdateHealthCheck` has
    /// no field for them): a change means a new check.
    pub fn same_immutables(&self, other: &HealthCheckConfig) -> bool {
        self.kind == other.kind
            && self.request_interval == other.request_interval
            && self.measure_latency == other.measure_latency
            && self.routing_control_arn == other.routing_control_arn
    }
}

impl fmt::Display for HealthCheckConfig {
    /// `HTTPS d-abc.execute-api.us-east-1.amazonaws.com:443/health every 30s, 3 failures`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind.as_str())?;
        if let Some(arn) = &self.routing_control_arn {
            return write!(f, "{arn}");
        }
        if self.kind == HealthCheckType::Calculated {
            return write!(
                f,
                "{} of {}",
                self.health_threshold,
                self.child_health_checks.join(", ")
            );
        }
        match (&self.ip_address, &self.fqdn) {
            (Some(ip), Some(name)) => write!(f, "{ip} (host {name})")?,
            (Some(ip), None) => write!(f, "{ip}")?,
            (None, name) => write!(f, "{}", name.as_deref().unwrap_or("?"))?,
        }
        write!(
            f,
            ":{}{} every {}s, {} failures",
            self.port, self.resource_path, self.request_interval, self.failure_threshold
        )?;
        if let Some(s) = &self.search_string {
            write!(f, ", body contains {s:?}")?;
        }
        Ok(())
    }
}

/// A health check as Route53 holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub id: String,
    pub caller_reference: String,
    /// `HealthCheckVersion`, which `UpdateHealthCheck` must name.
    pub version: i64,
    pub config: HealthCheckConfig,
}

/// What Route53's checkers last reported for a check (`GetHealthCheckStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckerReport {
    /// Checkers whose last observation was a success.
    pub healthy: u32,
    /// Checkers that reported at all.
    pub total: u32,
    /// One failing checker's report, e.g. `Failure: HTTP Status Code 403`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl CheckerReport {
    /// Route53 considers an endpoint healthy when more than 18% of its
    /// checkers do.
    pub fn is_healthy(&self) -> bool {
        self.total > 0 && u64::from(self.healthy) * 100 > u64::from(self.total) * 18
    }
}

/// Route53's per-batch limits (docs/design.md, "Route53 rules"): 1,000 `ResourceRecord` elements
/// and 32,000 characters of values; an UPSERT counts twice.
pub const MAX_BATCH_RECORDS: usize = 1000;
pub const MAX_BATCH_CHARS: usize = 32_000;

/// Counts a change against the batch limits the way Route53 does.
pub fn change_weight(change: &Change) -> (usize, usize) {
    let factor = if change.action == Action::Upsert {
        2
    } else {
        1
    };
    (
        change.record.resource_record_count() * factor,
        change.record.value_chars() * factor,
    )
}
