//! Configuration: the YAML file (see `config/example.yaml`), validated into
//! typed values. `load` reports every problem at once, each with its key path
//! and value, before anything touches the network.
//!
//! Here: the typed [`Config`], the error list, the `Validator` every
//! section reports through, and the name rules sections share. `parse`:
//! text to a `Config` (the top-level keys); `template`: `${env:...}` and
//! `${file:...}` values; `raw`: the file's shape as serde reads it; every
//! other file is one section, its raw → typed validation beside its type.

mod admin;
mod ha;
mod health_check;
mod lever;
mod parity;
mod parse;
mod policy;
mod practice;
mod probe;
mod provider;
mod raw;
mod record;
mod state_store;
mod template;
mod traffic;

pub use admin::{read_token, AdminConfig};
pub use ha::{HaConfig, LEASE_PREFIX};
pub use health_check::HealthCheckSettings;
pub use lever::{valid_routing_control_arn, ClusterEndpoint, LeverConfig, LeverMode};
pub use parity::{ParityConfig, DEFAULT_PARITY_INTERVAL};
pub use parse::{parse, parse_provider};
pub use policy::{DampingSettings, PolicyConfig, Quorum};
pub use probe::{BaselineSettings, ClientAuth, HeaderSpec, OAuth2Spec, ProbeSpec};
pub use provider::{ProviderConfig, ProviderKind};
pub use record::{MemberConfig, RecordConfig, Target, LATENCY_REGIONS};
pub use state_store::{StateStoreConfig, StoreKind};
pub use template::{Part, Template};
pub use traffic::{MemberTraffic, TrafficConfig};

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::provider::normalize_name;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub owner: String,
    pub listen: SocketAddr,
    /// `/healthz` and `/readyz` on a port of their own, so the kubelet's
    /// probes are answered whatever floods `listen`; `None`: on `listen`.
    pub health_listen: Option<SocketAddr>,
    pub provider: ProviderConfig,
    pub resync_interval: Duration,
    /// How often each Route53 health check's status is read.
    pub health_check_status_interval: Duration,
    pub records: Vec<RecordConfig>,
    /// Several instances, one writer; `None`: this instance writes alone.
    pub ha: Option<HaConfig>,
    /// Comparing what each region serves (`crate::parity`).
    pub parity: ParityConfig,
    /// The admin routes (drains, freezes); `None`: off, every route 404.
    pub admin: Option<AdminConfig>,
    /// The data-plane lever (ARC routing controls); `None`: off, every
    /// decision is a record change.
    pub lever: Option<LeverConfig>,
    /// Whether clients left a withdrawn region (`config::traffic`).
    pub traffic: Option<TrafficConfig>,
    /// Where the lease, views, controls and zone knowledge live; `None`:
    /// Route53's TXT records (`crate::store`).
    pub state_store: Option<StateStoreConfig>,
    /// Problems worth a word that do not stop the daemon.
    pub warnings: Vec<String>,
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

/// What an `owner` must be, said where one is refused.
pub const OWNER_RULE: &str = "must be 1-64 characters of letters, digits, '-', '_' or '.'";

/// `owner`: 1-64 of letters, digits, `-`, `_` and `.`.
pub fn valid_owner(o: &str) -> bool {
    !o.is_empty()
        && o.len() <= 64
        && o.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

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

/// Gathers every problem and warning while the raw sections become typed
/// values; each section's method sits in that section's file.
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

    /// An http(s) URL at `path`, or the error that names it.
    fn http_url(&mut self, path: &str, v: &str) -> Option<url::Url> {
        match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Some(u),
            _ => {
                self.err(path, format!("{} is not an http(s) URL", q(v)));
                None
            }
        }
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
}

/// A zone as the config names it: a name (`example.com`: lower case, no
/// trailing dot) or a hosted zone id (`Z0123ABC`, no dot: kept as written,
/// ids are case-sensitive).
pub fn zone_ref(s: &str) -> String {
    let s = s.trim();
    if s.trim_end_matches('.').contains('.') {
        normalize_name(s)
    } else {
        s.trim_end_matches('.').to_string()
    }
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

    /// Where drains and freezes are kept (`decide::controls`): `admin.zone`,
    /// else the lease's zone with `ha`, else the records' first zone by
    /// name (the same for every instance with this config). A reload may
    /// not move it while controls are in force (`reload`).
    pub fn control_zone(&self) -> &str {
        if let Some(z) = self.admin.as_ref().and_then(|a| a.zone.as_deref()) {
            return z;
        }
        match &self.ha {
            Some(ha) => &ha.zone,
            None => self
                .records
                .iter()
                .map(|r| r.zone.as_str())
                .min()
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests;
