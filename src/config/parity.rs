//! `parity` (top level, and per record): comparing what each region's API
//! Gateway serves under a record's custom domain (see `crate::parity`).
//! It reads and reports; it never changes DNS.

use std::time::Duration;

use super::raw::{RawParity, RawRecordParity};
use super::{q, Validator};
use crate::parity::IgnoreRule;

/// The top-level settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParityConfig {
    /// Whether records are checked unless they say otherwise.
    pub enabled: bool,
    /// How often each record is checked (and once at start).
    pub interval: Duration,
    /// Differences left out of every record's report.
    pub ignore: Vec<IgnoreRule>,
}

pub const DEFAULT_PARITY_INTERVAL: Duration = Duration::from_secs(300);
/// Each check is a handful of API Gateway reads per region and mapping.
pub const MIN_PARITY_INTERVAL: Duration = Duration::from_secs(30);

impl Validator {
    pub(super) fn parity(&mut self, raw: &RawParity) -> Option<ParityConfig> {
        let before = self.errors.len();
        let interval = self.duration(
            "parity.interval",
            raw.interval.as_deref(),
            DEFAULT_PARITY_INTERVAL,
        );
        if interval.is_some_and(|d| d < MIN_PARITY_INTERVAL) {
            self.err(
                "parity.interval",
                format!(
                    "{} must be at least {} (each check reads API Gateway in every region)",
                    q(raw.interval.as_deref().unwrap_or("")),
                    humantime::format_duration(MIN_PARITY_INTERVAL)
                ),
            );
        }
        let ignore = self.ignore_rules("parity.ignore", raw.ignore.as_deref());
        (self.errors.len() == before).then(|| ParityConfig {
            enabled: raw.enabled.unwrap_or(true),
            interval: interval.unwrap_or(DEFAULT_PARITY_INTERVAL),
            ignore,
        })
    }

    /// A record's parity: `None` when it is not checked; else what its
    /// report leaves out (the top level's rules, then its own).
    pub(super) fn record_parity(
        &mut self,
        path: &str,
        raw: Option<&RawRecordParity>,
        top: Option<&ParityConfig>,
    ) -> Option<Vec<IgnoreRule>> {
        let own = raw.map_or_else(Vec::new, |r| {
            self.ignore_rules(&format!("{path}.ignore"), r.ignore.as_deref())
        });
        let top = top?;
        let enabled = raw.and_then(|r| r.enabled).unwrap_or(top.enabled);
        enabled.then(|| top.ignore.iter().cloned().chain(own).collect())
    }

    fn ignore_rules(&mut self, path: &str, raw: Option<&[String]>) -> Vec<IgnoreRule> {
        let mut rules = Vec::new();
        for (i, s) in raw.unwrap_or_default().iter().enumerate() {
            match IgnoreRule::parse(s) {
                Ok(rule) => rules.push(rule),
                Err(e) => self.err(
                    format!("{path}[{i}]"),
                    format!(
                        "{}: {e}; write KIND[.FIELD][:SUBJECT], e.g. route.missing:GET /internal/*",
                        q(s)
                    ),
                ),
            }
        }
        rules
    }
}
