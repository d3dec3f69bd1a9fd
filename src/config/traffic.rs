//! `traffic` (top level): after each withdrawal, whether clients left the
//! region (`crate::decide::traffic`), from API Gateway's request count in
//! CloudWatch. Off unless configured. A member's API and stage are found
//! through its custom domain's API mappings (`api_gateway_domain`
//! targets), or given on the member (`traffic: {api_id, stage}`).

use std::time::Duration;

use url::Url;

use super::raw::{RawMemberTraffic, RawTraffic};
use super::{q, Validator};

#[derive(Debug, Clone, PartialEq)]
pub struct TrafficConfig {
    /// Clients that have not left after this many of the record's TTLs
    /// are reported as not leaving.
    pub within_ttls: u32,
    /// CloudWatch's period: API Gateway publishes per minute; shorter only
    /// for an emulator.
    pub period: Duration,
    /// An emulator, for tests.
    pub endpoint_url: Option<Url>,
}

/// A member's API and stage, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTraffic {
    pub api_id: String,
    pub stage: String,
}

pub const DEFAULT_WITHIN_TTLS: u32 = 5;
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

impl Validator {
    pub(super) fn traffic(&mut self, raw: Option<&RawTraffic>) -> Option<Option<TrafficConfig>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        if raw.enabled == Some(false) {
            return Some(None);
        }
        let before = self.errors.len();
        let within_ttls = raw.within_ttls.unwrap_or(i64::from(DEFAULT_WITHIN_TTLS));
        if !(1..=100).contains(&within_ttls) {
            self.err(
                "traffic.within_ttls",
                format!("{within_ttls} must be between 1 and 100"),
            );
        }
        let period = self.duration("traffic.period", raw.period.as_deref(), DEFAULT_PERIOD);
        if let Some(p) = period.filter(|p| p.as_secs() == 0 || p.subsec_nanos() != 0) {
            self.err(
                "traffic.period",
                format!(
                    "{} must be a whole number of seconds (60s: API Gateway publishes per minute)",
                    q(&humantime::format_duration(p).to_string())
                ),
            );
        }
        let endpoint_url = raw.endpoint_url.as_ref().and_then(|u| match Url::parse(u) {
            Ok(url) => Some(url),
            Err(e) => {
                self.err("traffic.endpoint_url", format!("{}: {e}", q(u)));
                None
            }
        });
        (self.errors.len() == before).then(|| {
            Some(TrafficConfig {
                within_ttls: within_ttls as u32,
                period: period.unwrap_or(DEFAULT_PERIOD),
                endpoint_url,
            })
        })
    }

    pub(super) fn member_traffic(
        &mut self,
        path: &str,
        raw: Option<&RawMemberTraffic>,
    ) -> Option<MemberTraffic> {
        let raw = raw?;
        let api_id = self
            .required(&format!("{path}.traffic.api_id"), &raw.api_id)
            .cloned();
        let stage = self
            .required(&format!("{path}.traffic.stage"), &raw.stage)
            .cloned();
        Some(MemberTraffic {
            api_id: api_id?,
            stage: stage?,
        })
    }
}
