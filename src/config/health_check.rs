//! Validation of a member's `health_check` (the Route53 health check kept
//! beside its record).

use super::raw::{RawHealthCheck, RawProbe};
use super::{is_dns_name, normalize_name, q, ProbeSpec, Validator};

/// The regions Route53's health checkers run in (`HealthCheckRegion`).
pub const CHECKER_REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "eu-west-1",
    "sa-east-1",
    "us-east-1",
    "us-west-1",
    "us-west-2",
];

/// Route53's limit on `ResourcePath`, `SearchString` and the domain name.
const MAX_FIELD: usize = 255;

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

impl Validator {
    /// `existing` names one record's check: refused above a member.
    pub(super) fn member_only_check(&mut self, path: &str, c: &RawHealthCheck) {
        if let Some(id) = &c.existing {
            self.err(
                format!("{path}.existing"),
                format!(
                    "{} names one record's check: set it on the member (regions[].health_check)",
                    q(id)
                ),
            );
        }
    }

    /// A member's `health_check.existing`, checked: an id, and nothing the
    /// daemon would set on a check it makes.
    pub(super) fn existing_check(
        &mut self,
        member_path: &str,
        c: Option<&RawHealthCheck>,
    ) -> Option<String> {
        let c = c?;
        let id = c.existing.as_ref()?;
        let path = format!("{member_path}.health_check");
        let valid = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-');
        if !valid {
            self.err(
                format!("{path}.existing"),
                format!("{} is not a Route53 health check id", q(id)),
            );
        }
        let settings = [
            ("enabled", c.enabled.is_some()),
            ("request_interval", c.request_interval.is_some()),
            ("failure_threshold", c.failure_threshold.is_some()),
            ("regions", c.regions.is_some()),
            ("measure_latency", c.measure_latency.is_some()),
            ("resource_path", c.resource_path.is_some()),
            ("fqdn", c.fqdn.is_some()),
        ];
        for (key, given) in settings {
            if given {
                self.err(
                    format!("{path}.{key}"),
                    "does not go with existing: the daemon leaves an existing check as it is",
                );
            }
        }
        Some(id.clone())
    }

    /// `Some(None)`: checks are disabled; `None`: an error was reported.
    pub(super) fn health_check(
        &mut self,
        member_path: &str,
        c: &RawHealthCheck,
        raw_probe: &RawProbe,
        probe: Option<&ProbeSpec>,
    ) -> Option<Option<HealthCheckSettings>> {
        if c.enabled == Some(false) {
            return Some(None);
        }
        let path = format!("{member_path}.health_check");
        let before = self.errors.len();
        let request_interval = c.request_interval.unwrap_or(30);
        if ![10, 30].contains(&request_interval) {
            self.err(
                format!("{path}.request_interval"),
                format!("{request_interval} must be 10 or 30 (seconds)"),
            );
        }
        let failure_threshold = c.failure_threshold.unwrap_or(3);
        if !(1..=10).contains(&failure_threshold) {
            self.err(
                format!("{path}.failure_threshold"),
                format!("{failure_threshold} must be between 1 and 10"),
            );
        }
        let mut regions = c.regions.clone().unwrap_or_default();
        if c.regions.is_some() && regions.len() < 3 {
            self.err(
                format!("{path}.regions"),
                format!(
                    "lists {} region(s); Route53 needs at least 3 (or leave regions out for its default set)",
                    regions.len()
                ),
            );
        }
        for (i, r) in regions.iter().enumerate() {
            if !CHECKER_REGIONS.contains(&r.as_str()) {
                self.err(
                    format!("{path}.regions[{i}]"),
                    format!(
                        "{} is not a Route53 health checker region ({})",
                        q(r),
                        CHECKER_REGIONS.join(", ")
                    ),
                );
            }
        }
        regions.sort();
        if let Some(w) = regions.windows(2).find(|w| w[0] == w[1]) {
            self.err(
                format!("{path}.regions"),
                format!("{} is listed twice", q(&w[0])),
            );
        }
        if let Some(p) = &c.resource_path {
            if !p.starts_with('/') || p.len() > MAX_FIELD {
                self.err(
                    format!("{path}.resource_path"),
                    format!(
                        "{} must start with / and be at most {MAX_FIELD} characters",
                        q(p)
                    ),
                );
            }
        }
        let fqdn = c.fqdn.as_deref().map(normalize_name);
        if let Some(f) = &fqdn {
            if !is_dns_name(f) {
                self.err(
                    format!("{path}.fqdn"),
                    format!("{} is not a DNS name", q(f)),
                );
            }
        }
        if let Some(body) = &raw_probe
            .expect
            .as_ref()
            .and_then(|e| e.body_contains.clone())
        {
            if body.len() > MAX_FIELD {
                self.err(
                    format!("{member_path}.probe.expect.body_contains"),
                    format!(
                        "is {} characters; a Route53 health check's SearchString takes at most {MAX_FIELD} (shorten it, or set health_check.enabled: false)",
                        body.len()
                    ),
                );
            }
        }
        // Route53's checkers send no headers: a path that needs the
        // probe's credentials would fail there, and Route53 would stop
        // answering with a healthy region.
        let sends_credentials = probe.is_some_and(|p| {
            p.auth.is_some()
                || p.headers
                    .iter()
                    .any(|h| h.name == http::header::AUTHORIZATION)
        });
        if sends_credentials && c.resource_path.is_none() {
            self.err(
                path.clone(),
                "the probe sends credentials, which Route53 health checks cannot send: set health_check.resource_path to a path that answers without them, or health_check.enabled: false",
            );
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Some(HealthCheckSettings {
            request_interval: request_interval as u32,
            failure_threshold: failure_threshold as u32,
            regions,
            measure_latency: c.measure_latency.unwrap_or(false),
            resource_path: c.resource_path.clone(),
            fqdn,
        }))
    }
}
