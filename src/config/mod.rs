//! Configuration: the YAML file (see `config/example.yaml`), validated into
//! typed values. `load` reports every problem at once, each with its key path
//! and value, before anything touches the network.

mod admin;
mod ha;
mod health_check;
mod parity;
mod policy;
mod probe;
mod provider;
mod raw;
mod record;

pub use admin::{read_token, AdminConfig};
pub use ha::{HaConfig, LEASE_PREFIX};
pub use health_check::HealthCheckSettings;
pub use parity::{ParityConfig, DEFAULT_PARITY_INTERVAL};
pub use policy::{DampingSettings, PolicyConfig, Quorum};
pub use probe::{BaselineSettings, ClientAuth, HeaderSpec, OAuth2Spec, ProbeSpec};
pub use provider::{ProviderConfig, ProviderKind};
pub use record::{MemberConfig, RecordConfig, Target, LATENCY_REGIONS};

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::provider::normalize_name;
use raw::RawConfig;

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
    /// Comparing what each region serves (`crate::parity`).
    pub parity: ParityConfig,
    /// The admin routes (drains, freezes); `None`: off, every route 404.
    pub admin: Option<AdminConfig>,
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

/// A file's `provider` section alone, validated as [`parse`] validates it
/// (for `init`, which takes the provider of a config that may have no
/// records yet), and that section as YAML, one key per line.
pub fn parse_provider(text: &str) -> Result<(ProviderConfig, String), ConfigErrors> {
    let one = |path: &str, message: String| {
        ConfigErrors(vec![ConfigError {
            path: path.into(),
            message,
        }])
    };
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| one("", e.to_string()))?;
    let section = doc
        .get("provider")
        .cloned()
        .ok_or_else(|| one("provider", "missing (required)".into()))?;
    let raw: raw::RawProvider =
        serde_yaml::from_value(section.clone()).map_err(|e| one("provider", e.to_string()))?;
    let mut v = Validator {
        errors: Vec::new(),
        warnings: Vec::new(),
        base_dir: PathBuf::from("."),
    };
    let provider = v.provider(raw);
    match provider {
        Some(p) if v.errors.is_empty() => {
            let yaml =
                serde_yaml::to_string(&section).map_err(|e| one("provider", e.to_string()))?;
            Ok((p, yaml))
        }
        _ => Err(ConfigErrors(v.errors)),
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
            if !valid_owner(o) {
                self.err("owner", format!("{} {OWNER_RULE}", q(o)));
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
        let parity = self.parity(&raw.parity.unwrap_or_default());

        let defaults = raw.defaults.unwrap_or_default();
        let default_probe = defaults.probe.unwrap_or_default();
        let default_policy = defaults.policy.unwrap_or_default();
        let default_check = defaults.health_check.unwrap_or_default();
        self.member_only_check("defaults.health_check", &default_check);
        let mut records = Vec::new();
        match raw.records {
            None => self.err("records", "missing (required)"),
            Some(list) if list.is_empty() => self.err("records", "must list at least one record"),
            Some(list) => {
                let mut seen = HashSet::new();
                for (i, r) in list.iter().enumerate() {
                    let path = format!("records[{i}]");
                    let defaults = (
                        &default_probe,
                        &default_policy,
                        &default_check,
                        parity.as_ref(),
                    );
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
        let admin = self.admin(raw.admin.as_ref(), &zones);
        Some(Config {
            admin: admin?,
            ha: ha?,
            parity: parity?,
            owner: owner?,
            listen: listen?,
            provider: provider?,
            resync_interval: resync_interval?,
            health_check_status_interval: health_check_status_interval?,
            records,
            warnings: Vec::new(),
        })
    }

    /// Expands `${env:NAME}` and `${file:PATH}` once. Errors name the
    /// reference, never the expanded value.
    fn interpolate(&mut self, path: &str, s: &str) -> Option<String> {
        let parts = self.template(path, s)?;
        match Template::new(parts).render() {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(path, format!("a file it names cannot be read: {e}"));
                None
            }
        }
    }

    /// Splits a value into text (with `${env:NAME}` expanded now) and
    /// `${file:PATH}` references, each file checked readable now and read
    /// again whenever it changes ([`Template::render`]).
    fn template(&mut self, path: &str, s: &str) -> Option<Vec<Part>> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            text.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                self.err(path, format!("{} has an unclosed ${{", q(s)));
                return None;
            };
            let reference = &rest[start + 2..start + len];
            if let Some(name) = reference.strip_prefix("env:") {
                match std::env::var(name) {
                    Ok(v) => text.push_str(&v),
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
                if let Err(e) = read_value_file(&full) {
                    self.err(
                        path,
                        format!("${{file:{file}}}: {} cannot be read: {e}", full.display()),
                    );
                    return None;
                }
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::File(full));
            } else {
                self.err(
                    path,
                    format!("${{{reference}}}: use ${{env:NAME}} or ${{file:PATH}}"),
                );
                return None;
            }
            rest = &rest[start + len + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Some(parts)
    }
}

/// A piece of a value with `${...}` references.
#[derive(Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// Read again whenever the file changes (a rotated Secret).
    File(PathBuf),
}

/// A value written with `${env:NAME}` and `${file:PATH}` references: the
/// environment is read once, at load; each file is read at load and again
/// whenever it changes, so a mounted Secret that is rotated takes effect
/// without a restart, as the admin token and OAuth2 client secrets do.
/// Its `Debug` never shows a value: it may be a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<String> = self
            .0
            .iter()
            .filter_map(|p| match p {
                Part::File(f) => Some(f.display().to_string()),
                Part::Text(_) => None,
            })
            .collect();
        write!(f, "Template(<redacted>, files: {files:?})")
    }
}

impl Template {
    pub fn new(parts: Vec<Part>) -> Self {
        Template(parts)
    }

    /// The value now. A file that cannot be read now (a Secret being
    /// swapped) gives its last value; one never read is an error naming
    /// the file, never a value.
    pub fn render(&self) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::File(f) => out.push_str(&read_value_file(f)?),
            }
        }
        Ok(out)
    }
}

/// How often a value file is checked for a change, at most.
const FILE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

struct CachedFile {
    value: String,
    /// Modification time, length and inode when read: a Secret's symlink
    /// swap gives a new inode, an edit a new time or length.
    stamp: (Option<std::time::SystemTime>, u64, u64),
    checked: std::time::Instant,
    /// It could not be read at the last check (said once).
    failing: bool,
}

fn stamp(meta: &std::fs::Metadata) -> (Option<std::time::SystemTime>, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.modified().ok(), meta.len(), meta.ino())
}

/// A value file's content (trailing newlines trimmed), shared by every
/// reader of the file and read again when it changes.
fn read_value_file(path: &Path) -> Result<String, String> {
    static FILES: std::sync::OnceLock<std::sync::Mutex<BTreeMap<PathBuf, CachedFile>>> =
        std::sync::OnceLock::new();
    let files = FILES.get_or_init(Default::default);
    let lock = || files.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    let known = lock().get(path).map(|c| {
        (
            c.value.clone(),
            c.stamp,
            now.duration_since(c.checked) < FILE_CHECK_EVERY,
        )
    });
    if let Some((value, _, true)) = &known {
        return Ok(value.clone());
    }
    // The file system is touched with the lock let go.
    let fresh = std::fs::metadata(path).map(|m| stamp(&m));
    let read = match (&fresh, &known) {
        (Ok(s), Some((value, old, _))) if s == old => Ok((*s, value.clone())),
        (Ok(s), _) => std::fs::read_to_string(path)
            .map(|v| (*s, v.trim_end_matches(['\r', '\n']).to_string())),
        (Err(e), _) => Err(std::io::Error::new(e.kind(), e.to_string())),
    };
    let mut files = lock();
    match (read, files.get_mut(path)) {
        (Ok((stamp, value)), _) => {
            files.insert(
                path.to_path_buf(),
                CachedFile {
                    value: value.clone(),
                    stamp,
                    checked: now,
                    failing: false,
                },
            );
            Ok(value)
        }
        (Err(e), Some(c)) => {
            c.checked = now;
            // Said once, not at every probe, until it reads again.
            if !c.failing {
                c.failing = true;
                tracing::warn!(file = %path.display(), error = %e,
                    "a value file cannot be read now; its last value stays in use");
            }
            Ok(c.value.clone())
        }
        (Err(e), None) => Err(e.to_string()),
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
