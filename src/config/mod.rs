//! Configuration: the YAML file (see `config/example.yaml`), validated into
//! typed values. `load` reports every problem at once, each with its key path
//! and value, before anything touches the network.

mod ha;
mod health_check;
mod raw;

pub use ha::{HaConfig, LEASE_PREFIX};

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use url::Url;

use crate::provider::normalize_name;
use crate::provider::{AliasTarget, RecordSet, RecordType};
use raw::{RawConfig, RawHealthCheck, RawMember, RawPolicy, RawProbe, RawRecord};

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

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub owner: String,
    pub listen: SocketAddr,
    pub provider: ProviderConfig,
    pub resync_interval: Duration,
    /// How often each Route53 health check's status is read.
    pub health_check_status_interval: Duration,
    pub records: Vec<RecordConfig>,
    /// Several instances, one writer; `None`: this instance writes alone.
    pub ha: Option<HaConfig>,
    /// Problems worth a word that do not stop the daemon.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Memory,
    Route53,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Memory => "memory",
            ProviderKind::Route53 => "route53",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub zones: Vec<String>,
    /// Seed record sets, by zone name.
    pub seed: Vec<(String, RecordSet)>,
    pub insync_after: Duration,
    /// memory: a store served elsewhere; route53: an emulator.
    pub endpoint_url: Option<Url>,
    pub max_requests_per_second: f64,
    /// route53: the SDK region for Route53 calls.
    pub region: String,
}

#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub name: String,
    /// A zone name (`example.test`) or a hosted zone id.
    pub zone: String,
    pub rtype: RecordType,
    pub ttl: u32,
    pub min_healthy: usize,
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
    pub adopt: bool,
}

/// A member's Route53 health check settings, as configured. The check's
/// full settings are derived from these and the probe at run time
/// (`health_checks::desired`), once the target is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSettings {
    /// 10 or 30 seconds; fixed once the check exists.
    pub request_interval: u32,
    pub failure_threshold: u32,
    /// Checker regions, sorted; empty: Route53's default set.
    pub regions: Vec<String>,
    pub measure_latency: bool,
    /// Instead of the probe URL's path and query.
    pub resource_path: Option<String>,
    /// Instead of the regional target or the probe's host.
    pub fqdn: Option<String>,
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub url: Url,
    /// Where the TCP connection goes instead of the URL's host; the URL's
    /// host stays the Host header and the TLS SNI.
    pub connect_to: Option<(String, u16)>,
    pub method: Method,
    /// Values are marked sensitive: they may hold tokens.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Accepted status codes; empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub body_contains: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub follow_redirects: bool,
    pub auth: Option<OAuth2Spec>,
}

/// OAuth2 client credentials for a probe; holds where the secret is, not
/// the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OAuth2Spec {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret_file: PathBuf,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// client_secret_basic: HTTP Basic with the client id and secret.
    Basic,
    /// client_secret_post: both in the form.
    Post,
}

/// One problem: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MIN_TIMEOUT: Duration = Duration::from_millis(10);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RISE: i64 = 2;
const DEFAULT_FALL: i64 = 3;
/// Route53's largest TTL.
const MAX_TTL: i64 = 2_147_483_647;

/// sha256 of `bytes`, 12 hex digits: names a config file's content, and
/// the parts of a health check's CallerReference.
pub fn short_digest(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and validates a config file. Relative paths inside it (`ca_file`,
/// `${file:...}`) are taken from the file's directory, as a mounted
/// ConfigMap and its secrets sit side by side.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }])
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base)
}

/// Parses and validates YAML text.
pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut unknown = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(&path));
    let de = serde_ignored::Deserializer::new(de, &mut on_unknown);
    let raw: RawConfig = match serde_path_to_error::deserialize(de) {
        Ok(raw) => raw,
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            // serde_yaml may already lead its message with the path.
            let message = e.into_inner().to_string();
            let message = message
                .strip_prefix(&format!("{path}: "))
                .unwrap_or(&message)
                .to_string();
            errors.push(ConfigError { path, message });
            return Err(ConfigErrors(errors));
        }
    };
    for path in unknown {
        errors.push(ConfigError {
            path,
            message: "unknown key".into(),
        });
    }
    let mut v = Validator {
        errors,
        warnings: Vec::new(),
        base_dir: base_dir.to_path_buf(),
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        let mut config = config.expect("a config is built whenever no error was found");
        config.warnings = v.warnings;
        Ok(config)
    } else {
        Err(ConfigErrors(v.errors))
    }
}

/// `records[0].regions[1].probe.intervl`, from serde_ignored's path.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let p = ignored_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

struct Validator {
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    base_dir: PathBuf,
}

/// Formats a value for an error message: strings quoted, as the user wrote them.
fn q(s: &str) -> String {
    format!("{s:?}")
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn required<'a, T>(&mut self, path: &str, v: &'a Option<T>) -> Option<&'a T> {
        if v.is_none() {
            self.err(path, "missing (required)");
        }
        v.as_ref()
    }

    fn duration(&mut self, path: &str, v: Option<&str>, default: Duration) -> Option<Duration> {
        let Some(s) = v else {
            return Some(default);
        };
        match humantime::parse_duration(s.trim()) {
            Ok(d) => Some(d),
            Err(_) => {
                self.err(
                    path,
                    format!("{} is not a duration (write e.g. 500ms, 2s, 5m)", q(s)),
                );
                None
            }
        }
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let owner = self.required("owner", &raw.owner).cloned();
        if let Some(o) = &owner {
            let ok = !o.is_empty()
                && o.len() <= 64
                && o.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                self.err(
                    "owner",
                    format!(
                        "{} must be 1-64 characters of letters, digits, '-', '_' or '.'",
                        q(o)
                    ),
                );
            }
        }
        let listen_s = raw.listen.as_deref().unwrap_or("0.0.0.0:9090");
        let listen = match listen_s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    "listen",
                    format!("{} is not an address:port (e.g. 0.0.0.0:9090)", q(listen_s)),
                );
                None
            }
        };
        let resync_interval = self.duration(
            "resync_interval",
            raw.resync_interval.as_deref(),
            Duration::from_secs(300),
        );
        if let Some(d) = resync_interval {
            if d < Duration::from_secs(1) {
                self.err(
                    "resync_interval",
                    format!(
                        "{} must be at least 1s",
                        q(raw.resync_interval.as_deref().unwrap_or(""))
                    ),
                );
            }
        }
        let health_check_status_interval = self.duration(
            "health_check_status_interval",
            raw.health_check_status_interval.as_deref(),
            Duration::from_secs(60),
        );
        if health_check_status_interval.is_some_and(|d| d < Duration::from_secs(10)) {
            self.err(
                "health_check_status_interval",
                format!(
                    "{} must be at least 10s (each read is a Route53 request)",
                    q(raw.health_check_status_interval.as_deref().unwrap_or(""))
                ),
            );
        }
        let provider = self.provider(raw.provider.unwrap_or_default());

        let defaults = raw.defaults.unwrap_or_default();
        let default_probe = defaults.probe.unwrap_or_default();
        let default_policy = defaults.policy.unwrap_or_default();
        let default_check = defaults.health_check.unwrap_or_default();
        let mut records = Vec::new();
        match raw.records {
            None => self.err("records", "missing (required)"),
            Some(list) if list.is_empty() => self.err("records", "must list at least one record"),
            Some(list) => {
                let mut seen = HashSet::new();
                for (i, r) in list.iter().enumerate() {
                    let path = format!("records[{i}]");
                    let defaults = (&default_probe, &default_policy, &default_check);
                    if let Some(rc) = self.record(&path, r, defaults) {
                        for (j, m) in rc.members.iter().enumerate() {
                            let key = (rc.name.clone(), rc.rtype.clone(), m.set_identifier.clone());
                            if !seen.insert(key) {
                                self.err(
                                    format!("{path}.regions[{j}].set_identifier"),
                                    format!(
                                        "{} is used twice for {} {}",
                                        q(&m.set_identifier),
                                        rc.name,
                                        rc.rtype
                                    ),
                                );
                            }
                        }
                        records.push(rc);
                    }
                }
            }
        }
        if let Some(p) = &provider {
            if p.kind != ProviderKind::Route53 {
                for (i, r) in records.iter().enumerate() {
                    for (j, m) in r.members.iter().enumerate() {
                        if matches!(m.target, Target::ApiGateway { .. }) {
                            self.err(
                                format!("records[{i}].regions[{j}].target.api_gateway_domain"),
                                "needs provider kind route53 (discovery asks API Gateway)",
                            );
                        }
                    }
                }
            }
            // The embedded store's zones are known now; other providers'
            // zones are checked against the service at start-up.
            if p.kind == ProviderKind::Memory && p.endpoint_url.is_none() {
                for (i, r) in records.iter().enumerate() {
                    let zone = normalize_name(&r.zone);
                    if !p.zones.contains(&zone) {
                        self.err(
                            format!("records[{i}].zone"),
                            format!(
                                "{} is not one of provider.zones ({})",
                                q(&r.zone),
                                p.zones.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        let zones: Vec<&str> = records
            .iter()
            .map(|r| r.zone.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ha = self.ha(&raw.ha.unwrap_or_default(), &zones);
        Some(Config {
            ha: ha?,
            owner: owner?,
            listen: listen?,
            provider: provider?,
            resync_interval: resync_interval?,
            health_check_status_interval: health_check_status_interval?,
            records,
            warnings: Vec::new(),
        })
    }

    fn provider(&mut self, raw: raw::RawProvider) -> Option<ProviderConfig> {
        let kind = match raw.kind.as_deref() {
            None => {
                self.err("provider.kind", "missing (required): memory or route53");
                None
            }
            Some("memory") => Some(ProviderKind::Memory),
            Some("route53") => Some(ProviderKind::Route53),
            Some(other) => {
                self.err(
                    "provider.kind",
                    format!("{} is not a provider (memory or route53)", q(other)),
                );
                None
            }
        };
        let endpoint_url = raw
            .endpoint_url
            .as_deref()
            .and_then(|s| match Url::parse(s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
                _ => {
                    self.err(
                        "provider.endpoint_url",
                        format!("{} is not an http(s) URL", q(s)),
                    );
                    None
                }
            });
        let zones: Vec<String> = raw
            .zones
            .unwrap_or_default()
            .iter()
            .map(|z| normalize_name(z))
            .collect();
        if kind == Some(ProviderKind::Route53) {
            let memory_only = [
                ("zones", !zones.is_empty()),
                ("records", raw.records.is_some()),
                ("insync_after", raw.insync_after.is_some()),
            ];
            for (key, given) in memory_only {
                if given {
                    self.err(
                        format!("provider.{key}"),
                        "only for kind memory (route53 reads the account's zones)",
                    );
                }
            }
        } else if raw.region.is_some() {
            self.err("provider.region", "only for kind route53");
        }
        if kind == Some(ProviderKind::Memory) && endpoint_url.is_none() && zones.is_empty() {
            self.err(
                "provider.zones",
                "the embedded memory provider needs at least one zone",
            );
        }
        for (i, z) in zones.iter().enumerate() {
            if !is_dns_name(z) {
                self.err(
                    format!("provider.zones[{i}]"),
                    format!("{} is not a DNS name", q(z)),
                );
            }
        }
        let mut seed = Vec::new();
        for (i, s) in raw.records.unwrap_or_default().into_iter().enumerate() {
            let zone = normalize_name(&s.zone);
            if !zones.contains(&zone) {
                self.err(
                    format!("provider.records[{i}].zone"),
                    format!("{} is not one of provider.zones", q(&s.zone)),
                );
            }
            let mut r = s.record;
            r.name = normalize_name(&r.name);
            seed.push((zone, r));
        }
        let insync_after = self.duration(
            "provider.insync_after",
            raw.insync_after.as_deref(),
            Duration::from_secs(2),
        );
        let rate = raw.max_requests_per_second.unwrap_or(4.0);
        if !(rate > 0.0 && rate <= 100.0) {
            self.err(
                "provider.max_requests_per_second",
                format!("{rate} must be above 0 and at most 100"),
            );
        }
        let region = raw.region.unwrap_or_else(|| "us-east-1".to_string());
        Some(ProviderConfig {
            region,
            kind: kind?,
            zones,
            seed,
            insync_after: insync_after?,
            endpoint_url,
            max_requests_per_second: rate,
        })
    }

    fn record(
        &mut self,
        path: &str,
        r: &RawRecord,
        (default_probe, default_policy, default_check): (&RawProbe, &RawPolicy, &RawHealthCheck),
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
            let zn = normalize_name(z);
            if zn.contains('.') && n != &zn && !n.ends_with(&format!(".{zn}")) {
                self.err(
                    format!("{path}.zone"),
                    format!("{} is not a suffix of the record name {}", q(z), q(n)),
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
        let min_healthy = r
            .policy
            .as_ref()
            .and_then(|p| p.min_healthy)
            .or(default_policy.min_healthy)
            .unwrap_or(1);

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
                if min_healthy < 1 || min_healthy as usize > list.len() {
                    self.err(
                        format!("{path}.policy.min_healthy"),
                        format!(
                            "{min_healthy} must be between 1 and the number of regions ({})",
                            list.len()
                        ),
                    );
                }
            }
        }
        let all_members = r.regions.as_ref().map_or(0, Vec::len);
        if members.len() != all_members {
            return None;
        }
        Some(RecordConfig {
            name: name?,
            zone: normalize_name(&zone?),
            rtype: rtype?,
            ttl: u32::try_from(ttl).ok()?,
            min_healthy: usize::try_from(min_healthy).ok()?,
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
        let health_check = self.health_check(path, &check, &raw_probe, probe.as_ref());
        Some(MemberConfig {
            region: region?,
            set_identifier: set_identifier?,
            target: target?,
            probe: Arc::new(probe?),
            health_check: health_check?,
            adopt: m.adopt.unwrap_or(false),
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

    fn probe(&mut self, path: &str, p: &RawProbe) -> Option<ProbeSpec> {
        let url = match &p.url {
            None => {
                self.err(format!("{path}.url"), "missing (required)");
                None
            }
            Some(s) => match Url::parse(s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                    Some(u)
                }
                Ok(_) => {
                    self.err(
                        format!("{path}.url"),
                        format!("{} must be an http:// or https:// URL with a host", q(s)),
                    );
                    None
                }
                Err(e) => {
                    self.err(format!("{path}.url"), format!("{} is not a URL: {e}", q(s)));
                    None
                }
            },
        };
        let connect_to = p
            .connect_to
            .as_deref()
            .and_then(|s| match split_host_port(s) {
                Some(hp) => Some(hp),
                None => {
                    self.err(
                        format!("{path}.connect_to"),
                        format!("{} must be host:port", q(s)),
                    );
                    None
                }
            });
        if let (Some(u), Some((_, port))) = (&url, &connect_to) {
            if let Some(explicit) = u.port() {
                if explicit != *port {
                    self.err(
                        format!("{path}.connect_to"),
                        format!(
                            "port {port} differs from the port {explicit} in the url; give the port in one place"
                        ),
                    );
                }
            }
        }
        let method_s = p.method.as_deref().unwrap_or("GET");
        let method = match Method::from_bytes(method_s.to_ascii_uppercase().as_bytes()) {
            Ok(m) => Some(m),
            Err(_) => {
                self.err(
                    format!("{path}.method"),
                    format!("{} is not an HTTP method", q(method_s)),
                );
                None
            }
        };
        let mut headers = Vec::new();
        for (name, value) in p.headers.iter().flatten() {
            let hpath = format!("{path}.headers.{name}");
            let Ok(hn) = HeaderName::from_bytes(name.as_bytes()) else {
                self.err(hpath, format!("{} is not a header name", q(name)));
                continue;
            };
            let Some(expanded) = self.interpolate(&hpath, value) else {
                continue;
            };
            match HeaderValue::from_str(&expanded) {
                Ok(mut hv) => {
                    // Keeps the value out of Debug output; it may be a token.
                    hv.set_sensitive(true);
                    headers.push((hn, hv));
                }
                // The value is not echoed: it may be a secret read from a file.
                Err(_) => self.err(hpath, "the value holds characters a header cannot carry"),
            }
        }
        let expect = p.expect.clone().unwrap_or_default();
        let mut expect_status = Vec::new();
        for (k, s) in expect.status.iter().flatten().enumerate() {
            if (100..=599).contains(s) {
                expect_status.push(*s as u16);
            } else {
                self.err(
                    format!("{path}.expect.status[{k}]"),
                    format!("{s} is not an HTTP status (100-599)"),
                );
            }
        }
        let tls = p.tls.clone().unwrap_or_default();
        let ca_file = tls.ca_file.as_deref().map(|f| self.base_dir.join(f));
        if let Some(f) = &ca_file {
            if let Err(e) = std::fs::metadata(f) {
                self.err(
                    format!("{path}.tls.ca_file"),
                    format!("{} cannot be read: {e}", q(&f.display().to_string())),
                );
            }
        }
        let insecure = tls.insecure_skip_verify.unwrap_or(false);
        if insecure {
            self.warnings.push(format!(
                "{path}.tls.insecure_skip_verify: certificates are not verified; a probe may pass against the wrong server"
            ));
        }
        let interval = self.duration(
            &format!("{path}.interval"),
            p.interval.as_deref(),
            DEFAULT_INTERVAL,
        );
        let timeout = self.duration(
            &format!("{path}.timeout"),
            p.timeout.as_deref(),
            DEFAULT_TIMEOUT,
        );
        if let Some(i) = interval {
            if i < MIN_INTERVAL {
                self.err(
                    format!("{path}.interval"),
                    format!(
                        "{} must be at least 100ms",
                        q(p.interval.as_deref().unwrap_or_default())
                    ),
                );
            }
        }
        if let Some(t) = timeout {
            if t < MIN_TIMEOUT {
                self.err(
                    format!("{path}.timeout"),
                    format!(
                        "{} must be at least 10ms",
                        q(p.timeout.as_deref().unwrap_or_default())
                    ),
                );
            }
        }
        if let (Some(i), Some(t)) = (interval, timeout) {
            if t >= i {
                self.err(
                    format!("{path}.timeout"),
                    format!(
                        "{} must be shorter than the interval ({})",
                        humantime::format_duration(t),
                        humantime::format_duration(i)
                    ),
                );
            }
        }
        let auth = match p.auth.as_ref().map(|a| &a.oauth2_client_credentials) {
            None => Some(None),
            Some(None) => {
                self.err(
                    format!("{path}.auth"),
                    "give oauth2_client_credentials (the only kind)",
                );
                None
            }
            Some(Some(o)) => self
                .oauth2(&format!("{path}.auth.oauth2_client_credentials"), o)
                .map(Some),
        };
        let rise = self.threshold(&format!("{path}.rise"), p.rise.unwrap_or(DEFAULT_RISE));
        let fall = self.threshold(&format!("{path}.fall"), p.fall.unwrap_or(DEFAULT_FALL));
        Some(ProbeSpec {
            url: url?,
            connect_to,
            method: method?,
            headers,
            expect_status,
            body_contains: expect.body_contains,
            ca_file,
            insecure_skip_verify: insecure,
            interval: interval?,
            timeout: timeout?,
            rise: rise?,
            fall: fall?,
            follow_redirects: p.follow_redirects.unwrap_or(false),
            auth: auth?,
        })
    }

    fn oauth2(&mut self, path: &str, o: &raw::RawOAuth2) -> Option<OAuth2Spec> {
        let token_url = match o.token_url.as_deref() {
            None => {
                self.err(format!("{path}.token_url"), "missing (required)");
                None
            }
            Some(s) => match Url::parse(s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
                _ => {
                    self.err(
                        format!("{path}.token_url"),
                        format!("{} is not an http(s) URL", q(s)),
                    );
                    None
                }
            },
        };
        let client_id = self
            .required(&format!("{path}.client_id"), &o.client_id)
            .cloned();
        let secret = self
            .required(&format!("{path}.client_secret_file"), &o.client_secret_file)
            .map(|f| self.base_dir.join(f));
        if let Some(f) = &secret {
            if let Err(e) = std::fs::metadata(f) {
                self.err(
                    format!("{path}.client_secret_file"),
                    format!("{} cannot be read: {e}", q(&f.display().to_string())),
                );
            }
        }
        let client_auth = match o.client_auth.as_deref() {
            None | Some("basic") => Some(ClientAuth::Basic),
            Some("post") => Some(ClientAuth::Post),
            Some(other) => {
                self.err(
                    format!("{path}.client_auth"),
                    format!("{} must be basic or post", q(other)),
                );
                None
            }
        };
        Some(OAuth2Spec {
            token_url: token_url?,
            client_id: client_id?,
            client_secret_file: secret?,
            audience: o.audience.clone(),
            scope: o.scope.clone(),
            client_auth: client_auth?,
        })
    }

    fn threshold(&mut self, path: &str, v: i64) -> Option<u32> {
        if (1..=10).contains(&v) {
            Some(v as u32)
        } else {
            self.err(path, format!("{v} must be between 1 and 10"));
            None
        }
    }

    /// Expands `${env:NAME}` and `${file:PATH}`. Errors name the reference,
    /// never the expanded value.
    fn interpolate(&mut self, path: &str, s: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                self.err(path, format!("{} has an unclosed ${{", q(s)));
                return None;
            };
            let reference = &rest[start + 2..start + len];
            let value = if let Some(name) = reference.strip_prefix("env:") {
                match std::env::var(name) {
                    Ok(v) => v,
                    Err(_) => {
                        self.err(
                            path,
                            format!("${{env:{name}}}: the variable {name} is not set"),
                        );
                        return None;
                    }
                }
            } else if let Some(file) = reference.strip_prefix("file:") {
                let full = self.base_dir.join(file);
                match std::fs::read_to_string(&full) {
                    Ok(v) => v.trim_end_matches(['\r', '\n']).to_string(),
                    Err(e) => {
                        self.err(
                            path,
                            format!("${{file:{file}}}: {} cannot be read: {e}", full.display()),
                        );
                        return None;
                    }
                }
            } else {
                self.err(
                    path,
                    format!("${{{reference}}}: use ${{env:NAME}} or ${{file:PATH}}"),
                );
                return None;
            };
            out.push_str(&value);
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some((sa.ip().to_string(), sa.port()));
    }
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if host.is_empty() || host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
        return None;
    }
    Some((host.to_string(), port))
}

/// Letters, digits, '-', '_' (service labels such as `_route53-failover`)
/// and '*' in labels of 1-63 characters, 253 in all.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))
        })
}

impl Config {
    /// A one-line summary for `check`.
    pub fn summary(&self) -> String {
        let members: usize = self.records.iter().map(|r| r.members.len()).sum();
        let zones: std::collections::BTreeSet<&str> =
            self.records.iter().map(|r| r.zone.as_str()).collect();
        format!(
            "config ok: owner {}, {} record(s), {} member(s), {} zone(s), provider {}",
            self.owner,
            self.records.len(),
            members,
            zones.len(),
            self.provider.kind.as_str()
        )
    }

    /// Record indices grouped by zone, in config order.
    pub fn records_by_zone(&self) -> BTreeMap<String, Vec<usize>> {
        let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in self.records.iter().enumerate() {
            m.entry(r.zone.clone()).or_default().push(i);
        }
        m
    }
}

#[cfg(test)]
mod tests;
