//! `provider`: which DNS service, its zones, its rate limit, an emulator.

use std::time::Duration;

use url::Url;

use super::raw::{self};
use super::*;
use crate::provider::{normalize_name, RecordSet};

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

impl Validator {
    pub(super) fn provider(&mut self, raw: raw::RawProvider) -> Option<ProviderConfig> {
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
            .and_then(|u| self.http_url("provider.endpoint_url", u));
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
}
