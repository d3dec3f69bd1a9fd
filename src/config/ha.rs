//! Validation of `ha`: several instances (one release per region) agree on
//! one writer through a lease record kept in Route53 (see `crate::decide::lease`).

use std::time::Duration;

use super::raw::RawHa;
use super::{is_dns_name, normalize_name, q, zone_ref, Validator};

/// Where the lease lives and how it is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// Who this instance is in the lease (unique per instance: a pod name).
    pub identity: String,
    /// The zone that holds the lease record (one of the records' zones).
    pub zone: String,
    /// The lease record's name (a TXT record inside `zone`).
    pub lease_name: String,
    /// How long a lease lasts from the moment its holder sends a renewal.
    pub lease_duration: Duration,
    /// How often the holder renews and the others read it.
    pub renew_every: Duration,
    /// How far apart two instances' wall clocks may be: the holder stops
    /// writing this long before its lease ends, the others wait this long
    /// after it ends.
    pub max_clock_drift: Duration,
    /// Another instance's view of the members counts toward a quorum while
    /// it is younger than this (`decide::quorum`); each instance rewrites
    /// its view every third of it.
    pub view_max_age: Duration,
}

pub const DEFAULT_VIEW_MAX_AGE: Duration = Duration::from_secs(90);

/// The lease name's first label; the zone follows.
pub const LEASE_PREFIX: &str = "_route53-failover-lease.";

impl Validator {
    /// `Some(None)`: HA is off; `None`: an error was reported.
    pub(super) fn ha(&mut self, raw: &RawHa, zones: &[&str]) -> Option<Option<HaConfig>> {
        if raw.enabled != Some(true) {
            return Some(None);
        }
        let before = self.errors.len();
        let identity = match &raw.identity {
            Some(s) => self.interpolate("ha.identity", s),
            None => Some(hostname()),
        };
        if let Some(id) = &identity {
            let ok = !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                self.err(
                    "ha.identity",
                    format!(
                        "{} must be 1-128 characters of letters, digits, '-', '_' or '.' (unique per instance, e.g. ${{env:POD_NAME}})",
                        q(id)
                    ),
                );
            }
        }
        let zone = match &raw.zone {
            Some(z) => {
                let z = zone_ref(z);
                if !zones.contains(&z.as_str()) {
                    self.err(
                        "ha.zone",
                        format!(
                            "{} is not the zone of any record ({})",
                            q(raw.zone.as_deref().unwrap_or("")),
                            zones.join(", ")
                        ),
                    );
                }
                z
            }
            // The records' zones in name order: the first is stable
            // across instances that share the config.
            None => zones.first().copied().unwrap_or_default().to_string(),
        };
        let lease_name = match &raw.lease_name {
            Some(n) => {
                let n = normalize_name(n);
                if !is_dns_name(&n) || !(n.ends_with(&format!(".{zone}")) || n == zone) {
                    self.err(
                        "ha.lease_name",
                        format!(
                            "{} must be a DNS name inside the lease zone {}",
                            q(raw.lease_name.as_deref().unwrap_or("")),
                            q(&zone)
                        ),
                    );
                }
                n
            }
            None => format!("{LEASE_PREFIX}{zone}"),
        };
        let lease_duration = self.duration(
            "ha.lease_duration",
            raw.lease_duration.as_deref(),
            Duration::from_secs(30),
        );
        let renew_every = self.duration(
            "ha.renew_every",
            raw.renew_every.as_deref(),
            Duration::from_secs(10),
        );
        let max_clock_drift = self.duration(
            "ha.max_clock_drift",
            raw.max_clock_drift.as_deref(),
            Duration::from_secs(1),
        );
        let view_max_age = self.duration(
            "ha.view_max_age",
            raw.view_max_age.as_deref(),
            DEFAULT_VIEW_MAX_AGE,
        );
        if view_max_age.is_some_and(|a| a < Duration::from_secs(30)) {
            self.err(
                "ha.view_max_age",
                format!(
                    "{} must be at least 30s (each instance rewrites its view every third of it, a Route53 write)",
                    q(raw.view_max_age.as_deref().unwrap_or(""))
                ),
            );
        }
        if renew_every.is_some_and(|r| r < Duration::from_millis(200)) {
            self.err(
                "ha.renew_every",
                format!(
                    "{} must be at least 200ms (each renewal is a Route53 write)",
                    q(raw.renew_every.as_deref().unwrap_or(""))
                ),
            );
        }
        if let (Some(d), Some(r), Some(drift)) = (lease_duration, renew_every, max_clock_drift) {
            // Two renewals may fail and the holder still leads, with the
            // drift margin taken off its end.
            if r * 2 + drift > d {
                self.err(
                    "ha.lease_duration",
                    format!(
                        "{} must be at least twice ha.renew_every ({}) plus ha.max_clock_drift ({})",
                        q(&humantime::format_duration(d).to_string()),
                        humantime::format_duration(r),
                        humantime::format_duration(drift)
                    ),
                );
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Some(HaConfig {
            identity: identity?,
            zone,
            lease_name,
            lease_duration: lease_duration?,
            renew_every: renew_every?,
            max_clock_drift: max_clock_drift?,
            view_max_age: view_max_age?,
        }))
    }
}

/// The machine's name (a pod's name in Kubernetes), the default identity.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "route53-failover".into())
}
