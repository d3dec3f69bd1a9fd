//! YAML text to a [`Config`]: serde (with every unknown key caught and
//! named by its path), then the `Validator`, which gathers every problem
//! instead of stopping at the first. The top-level keys are validated here;
//! each section in its own file.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{self, RawConfig};
use super::{
    q, valid_owner, Config, ConfigError, ConfigErrors, ProviderConfig, ProviderKind, Target,
    Validator, OWNER_RULE,
};
use crate::provider::normalize_name;

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

impl Validator {
    /// The top-level keys, and every section under them; `None` when
    /// something is in error (each error said).
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
        let health_listen =
            raw.health_listen
                .as_deref()
                .and_then(|h| match h.parse::<SocketAddr>() {
                    // One socket: the same port on the same address, or on any
                    // address (0.0.0.0 and [::] take every one).
                    Ok(a)
                        if listen.is_some_and(|l| {
                            l.port() == a.port()
                                && a.port() != 0
                                && (l.ip() == a.ip()
                                    || l.ip().is_unspecified()
                                    || a.ip().is_unspecified())
                        }) =>
                    {
                        self.err(
                            "health_listen",
                            format!("{} must be another port than listen's", q(h)),
                        );
                        None
                    }
                    Ok(a) => Some(a),
                    Err(_) => {
                        self.err(
                            "health_listen",
                            format!("{} is not an address:port (e.g. 0.0.0.0:9091)", q(h)),
                        );
                        None
                    }
                });
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
                // (name, type, region) across entries: the record's entry
                // already refuses a region twice within itself.
                let mut regions = std::collections::HashMap::new();
                for (i, r) in list.iter().enumerate() {
                    let path = format!("records[{i}]");
                    let defaults = (
                        &default_probe,
                        &default_policy,
                        &default_check,
                        parity.as_ref(),
                        defaults.practice.as_ref(),
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
                            let key = (rc.name.clone(), rc.rtype.clone(), m.region.clone());
                            if let Some(first) = regions.insert(key, i) {
                                if first != i {
                                    self.err(
                                        format!("{path}.regions[{j}].region"),
                                        format!(
                                            "{} is already a region of {} {} in records[{first}]; Route53 takes one latency record per region",
                                            q(&m.region),
                                            rc.name,
                                            rc.rtype
                                        ),
                                    );
                                }
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
        let lever = self.lever(raw.routing_control.as_ref(), &records);
        let with_ha = matches!(&ha, Some(Some(_)));
        let state_store = self.state_store(raw.state_store.as_ref(), with_ha);
        let traffic = self.traffic(raw.traffic.as_ref());
        if let (Some(Some(_)), Some(None)) = (&lever, &state_store) {
            self.warnings.push(ROUTE53_STORE_WITH_LEVER.into());
        }
        if matches!(traffic, Some(Some(_))) {
            for r in &records {
                for m in &r.members {
                    if m.traffic.is_none() && !matches!(m.target, Target::ApiGateway { .. }) {
                        self.warnings.push(format!(
                            "traffic: {} {} {} is not measured (its target is not api_gateway_domain; give it traffic: {{api_id, stage}})",
                            r.name, r.rtype, m.region
                        ));
                    }
                }
            }
        }
        // A practice run is a drain kept where controls are, with its
        // history in the state store: both must be there.
        for (i, r) in records.iter().enumerate() {
            if r.practice.is_none() {
                continue;
            }
            if matches!(admin, Some(None)) {
                self.err(
                    format!("records[{i}].practice"),
                    "needs admin (a practice run is a drain by the author practice, kept with on-call's controls)",
                );
            }
            if matches!(state_store, Some(None)) {
                self.err(
                    format!("records[{i}].practice"),
                    "needs state_store (each run's history is kept there, so a restart neither repeats a run nor forgets one; kind memory keeps it in the process)",
                );
            }
        }
        Some(Config {
            traffic: traffic?,
            state_store: state_store?,
            lever: lever?,
            admin: admin?,
            ha: ha?,
            parity: parity?,
            owner: owner?,
            listen: listen?,
            health_listen,
            provider: provider?,
            resync_interval: resync_interval?,
            health_check_status_interval: health_check_status_interval?,
            records,
            warnings: Vec::new(),
        })
    }
}

/// What keeping coordination in Route53 costs a lever (`check` says it).
const ROUTE53_STORE_WITH_LEVER: &str = "routing_control without state_store: the lease, the \
views, the drains and freezes and what is known of each zone live in Route53 (TXT records, \
or only in memory), so in a Route53 control-plane outage failover through the switches stops \
when: with ha, the lease cannot be renewed and no instance flips switches; the daemon \
restarts or its config is reloaded (the zone ids and which member is wired to which switch \
must be read from Route53 again); on-call drains or freezes a region (written as TXT records). \
Only a daemon already running, alone and untouched keeps failing over. Set state_store \
(dynamodb) to keep them on a data plane (docs/lever.md)";
