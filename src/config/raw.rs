//! The YAML as written. Everything is optional and loosely typed here, so a
//! file with many mistakes deserializes far enough for `validate` to report
//! all of them at once; unknown keys are collected by `serde_ignored` instead
//! of `deny_unknown_fields`, which would stop at the first one.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::provider::RecordSet;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    /// Written into the ownership marker of everything the daemon manages.
    pub owner: Option<String>,
    /// Address for /metrics, /status, / and the probes of Kubernetes.
    pub listen: Option<String>,
    /// `/healthz` and `/readyz` alone, on a port of their own.
    pub health_listen: Option<String>,
    pub provider: Option<RawProvider>,
    /// How often the provider is re-read to repair drift.
    pub resync_interval: Option<String>,
    /// How often each Route53 health check's status is read.
    pub health_check_status_interval: Option<String>,
    pub defaults: Option<RawDefaults>,
    pub records: Option<Vec<RawRecord>>,
    /// Several instances, one writer: the lease kept in Route53.
    pub ha: Option<RawHa>,
    /// Whether every region of a record serves the same API.
    pub parity: Option<RawParity>,
    /// The authenticated routes for drains and freezes.
    pub admin: Option<RawAdmin>,
    /// Route53 ARC routing controls: the data-plane lever.
    pub routing_control: Option<RawRoutingControl>,
    /// Where coordination and the zone knowledge live.
    pub state_store: Option<RawStateStore>,
    /// Whether clients left a withdrawn region (CloudWatch).
    pub traffic: Option<RawTraffic>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTraffic {
    pub enabled: Option<bool>,
    pub within_ttls: Option<i64>,
    pub period: Option<String>,
    pub endpoint_url: Option<String>,
}

/// A member's API Gateway API and stage, for its request count.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawMemberTraffic {
    pub api_id: Option<String>,
    pub stage: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStateStore {
    pub kind: Option<String>,
    pub table: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub path: Option<String>,
    pub call_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRoutingControl {
    pub cluster_endpoints: Option<Vec<RawClusterEndpoint>>,
    pub mode: Option<String>,
    pub call_timeout: Option<String>,
    pub read_interval: Option<String>,
    pub max_requests_per_second: Option<f64>,
    pub allow_safety_override: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawClusterEndpoint {
    pub url: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAdmin {
    pub token_file: Option<String>,
    pub zone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawParity {
    pub enabled: Option<bool>,
    pub interval: Option<String>,
    /// `KIND[.FIELD][:SUBJECT]` rules of differences to leave out.
    pub ignore: Option<Vec<String>>,
}

/// A record's own `parity`: on or off, and more to ignore.
#[derive(Debug, Default, Deserialize)]
pub struct RawRecordParity {
    pub enabled: Option<bool>,
    pub ignore: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawHa {
    pub enabled: Option<bool>,
    /// This instance's name in the lease; default: the hostname.
    pub identity: Option<String>,
    /// The zone holding the lease record; default: the first records' zone by name.
    pub zone: Option<String>,
    /// default: `_route53-failover-lease.<zone>`.
    pub lease_name: Option<String>,
    pub lease_duration: Option<String>,
    pub renew_every: Option<String>,
    pub max_clock_drift: Option<String>,
    /// How old another instance's view may be and still count.
    pub view_max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawProvider {
    /// `memory` (embedded) or `route53`.
    pub kind: Option<String>,
    /// memory: the zones that exist at start.
    pub zones: Option<Vec<String>>,
    /// memory: record sets that exist at start (what other tools made).
    pub records: Option<Vec<RawSeed>>,
    /// memory: how long an accepted change stays PENDING.
    pub insync_after: Option<String>,
    /// memory: use a store served by another process instead of an
    /// embedded one (tests, several instances sharing one store).
    pub endpoint_url: Option<String>,
    /// The daemon's share of the account's 5 requests/s.
    pub max_requests_per_second: Option<f64>,
    /// route53: the SDK region for Route53 calls.
    pub region: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawSeed {
    pub zone: String,
    #[serde(flatten)]
    pub record: RecordSet,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDefaults {
    pub probe: Option<RawProbe>,
    pub policy: Option<RawPolicy>,
    pub health_check: Option<RawHealthCheck>,
    pub practice: Option<RawPractice>,
}

/// Practice runs (`defaults.practice`, a record's own).
#[derive(Debug, Default, Deserialize)]
pub struct RawPractice {
    pub enabled: Option<bool>,
    pub every: Option<String>,
    /// `[DAYS ]HH:MM-HH:MM`, UTC.
    pub windows: Option<Vec<String>>,
    /// `YYYY-MM-DD`, UTC.
    pub blocked_dates: Option<Vec<String>>,
    pub duration: Option<String>,
    pub query: Option<RawPracticeQuery>,
}

/// `practice.query`: a Prometheus query that must stay under a maximum.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawPracticeQuery {
    pub url: Option<String>,
    pub expr: Option<String>,
    pub max: Option<f64>,
    pub every: Option<String>,
}

/// The Route53 health check kept for each member.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawHealthCheck {
    pub enabled: Option<bool>,
    pub request_interval: Option<i64>,
    pub failure_threshold: Option<i64>,
    pub regions: Option<Vec<String>>,
    pub measure_latency: Option<bool>,
    /// Default: the probe URL's path and query.
    pub resource_path: Option<String>,
    /// Default: the regional target, else the probe's connect_to or URL host.
    pub fqdn: Option<String>,
    /// A member only: a check the daemon did not make, attached to the
    /// member's record as it is and never changed or deleted (an adopted
    /// record keeps the check it came with).
    pub existing: Option<String>,
}

impl RawHealthCheck {
    /// `self` over `base`, field by field.
    pub fn over(&self, base: &RawHealthCheck) -> RawHealthCheck {
        RawHealthCheck {
            enabled: self.enabled.or(base.enabled),
            request_interval: self.request_interval.or(base.request_interval),
            failure_threshold: self.failure_threshold.or(base.failure_threshold),
            regions: self.regions.clone().or_else(|| base.regions.clone()),
            measure_latency: self.measure_latency.or(base.measure_latency),
            resource_path: self
                .resource_path
                .clone()
                .or_else(|| base.resource_path.clone()),
            fqdn: self.fqdn.clone().or_else(|| base.fqdn.clone()),
            // One check belongs to one record: never inherited.
            existing: self.existing.clone(),
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawPolicy {
    pub min_healthy: Option<i64>,
    pub max_withdrawn: Option<RawCount>,
    pub damping: Option<RawDamping>,
    /// `majority` or `any`.
    pub quorum: Option<String>,
}

/// A count (`1`) or a share of the record's members (`"50%"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawCount {
    Count(i64),
    Text(String),
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawDamping {
    pub enabled: Option<bool>,
    pub hold: Option<String>,
    pub max_hold: Option<String>,
    pub forget_after: Option<String>,
}

impl RawPolicy {
    /// `self` over `base`, key by key (damping's keys too).
    pub fn over(&self, base: &RawPolicy) -> RawPolicy {
        let damping = match (&base.damping, &self.damping) {
            (None, None) => None,
            (b, s) => {
                let b = b.clone().unwrap_or_default();
                let s = s.clone().unwrap_or_default();
                Some(RawDamping {
                    enabled: s.enabled.or(b.enabled),
                    hold: s.hold.or(b.hold),
                    max_hold: s.max_hold.or(b.max_hold),
                    forget_after: s.forget_after.or(b.forget_after),
                })
            }
        };
        RawPolicy {
            min_healthy: self.min_healthy.or(base.min_healthy),
            max_withdrawn: self
                .max_withdrawn
                .clone()
                .or_else(|| base.max_withdrawn.clone()),
            damping,
            quorum: self.quorum.clone().or_else(|| base.quorum.clone()),
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawProbe {
    pub url: Option<String>,
    pub connect_to: Option<String>,
    pub method: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub expect: Option<RawExpect>,
    pub tls: Option<RawTls>,
    pub interval: Option<String>,
    pub fast_interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<i64>,
    pub fall: Option<i64>,
    pub follow_redirects: Option<bool>,
    pub auth: Option<RawAuth>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawAuth {
    pub oauth2_client_credentials: Option<RawOAuth2>,
}

/// An OAuth2 client-credentials grant for probes behind a JWT authorizer.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawOAuth2 {
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    /// Read at each fetch, so a rotated secret needs no restart.
    pub client_secret_file: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    /// `basic` (HTTP Basic, the default) or `post` (in the form).
    pub client_auth: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawExpect {
    pub status: Option<Vec<i64>>,
    pub body_contains: Option<String>,
    pub max_latency: Option<String>,
    pub slow_vs_baseline: Option<RawBaseline>,
}

/// The `slow` rule against a member's own latency baseline.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawBaseline {
    pub factor: Option<f64>,
    pub min_excess: Option<String>,
    pub window: Option<String>,
    pub warm_up: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawTls {
    pub ca_file: Option<String>,
    pub insecure_skip_verify: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRecord {
    pub name: Option<String>,
    pub zone: Option<String>,
    #[serde(rename = "type")]
    pub rtype: Option<String>,
    pub ttl: Option<i64>,
    pub policy: Option<RawPolicy>,
    /// Probe settings shared by this record's members (usually the URL).
    pub probe: Option<RawProbe>,
    pub health_check: Option<RawHealthCheck>,
    pub regions: Option<Vec<RawMember>>,
    pub parity: Option<RawRecordParity>,
    pub practice: Option<RawPractice>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawMember {
    pub region: Option<String>,
    pub set_identifier: Option<String>,
    pub target: Option<RawTarget>,
    pub probe: Option<RawProbe>,
    pub health_check: Option<RawHealthCheck>,
    /// Take over a record with this set identifier that has no marker of
    /// this owner.
    pub adopt: Option<bool>,
    /// The ARN of the ARC routing control that carries this member's
    /// decision in Route53's data plane.
    pub routing_control: Option<String>,
    /// Its API and stage in CloudWatch (else found through the custom
    /// domain's API mappings).
    pub traffic: Option<RawMemberTraffic>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTarget {
    pub values: Option<Vec<String>>,
    pub cname: Option<String>,
    pub alias: Option<RawAlias>,
    /// An API Gateway custom domain: its regional target in the member's
    /// region is discovered and becomes the alias target.
    pub api_gateway_domain: Option<String>,
    /// With `api_gateway_domain`: the alias's EvaluateTargetHealth.
    pub evaluate_target_health: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAlias {
    pub dns_name: Option<String>,
    pub hosted_zone_id: Option<String>,
    pub evaluate_target_health: Option<bool>,
}

impl RawProbe {
    /// `self` over `base`, field by field; header maps merge by name.
    pub fn over(&self, base: &RawProbe) -> RawProbe {
        let headers = match (&base.headers, &self.headers) {
            (None, None) => None,
            (b, s) => {
                let mut h = b.clone().unwrap_or_default();
                h.extend(s.clone().unwrap_or_default());
                Some(h)
            }
        };
        let expect = match (&base.expect, &self.expect) {
            (None, None) => None,
            (b, s) => {
                let b = b.clone().unwrap_or_default();
                let s = s.clone().unwrap_or_default();
                Some(RawExpect {
                    status: s.status.or(b.status),
                    body_contains: s.body_contains.or(b.body_contains),
                    max_latency: s.max_latency.or(b.max_latency),
                    slow_vs_baseline: s.slow_vs_baseline.or(b.slow_vs_baseline),
                })
            }
        };
        let tls = match (&base.tls, &self.tls) {
            (None, None) => None,
            (b, s) => {
                let b = b.clone().unwrap_or_default();
                let s = s.clone().unwrap_or_default();
                Some(RawTls {
                    ca_file: s.ca_file.or(b.ca_file),
                    insecure_skip_verify: s.insecure_skip_verify.or(b.insecure_skip_verify),
                })
            }
        };
        RawProbe {
            url: self.url.clone().or_else(|| base.url.clone()),
            connect_to: self.connect_to.clone().or_else(|| base.connect_to.clone()),
            method: self.method.clone().or_else(|| base.method.clone()),
            headers,
            expect,
            tls,
            interval: self.interval.clone().or_else(|| base.interval.clone()),
            fast_interval: self
                .fast_interval
                .clone()
                .or_else(|| base.fast_interval.clone()),
            timeout: self.timeout.clone().or_else(|| base.timeout.clone()),
            rise: self.rise.or(base.rise),
            fall: self.fall.or(base.fall),
            follow_redirects: self.follow_redirects.or(base.follow_redirects),
            auth: self.auth.clone().or_else(|| base.auth.clone()),
        }
    }
}
