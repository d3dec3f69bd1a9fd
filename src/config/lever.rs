//! `routing_control`: the data-plane lever (`crate::lever`). Route53 ARC
//! routing controls, switched through their cluster's regional endpoints,
//! carry each decision past Route53's control plane. Off unless the
//! section is present; a member takes part with `routing_control: <arn>`.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use super::raw::RawRoutingControl;
use super::{q, RecordConfig, Validator};

/// How a decision is carried out when a member has a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeverMode {
    /// Records and their checks are made once and then left as they are;
    /// a withdrawal is the switch going Off (static stability: nothing in
    /// the failover path needs Route53's control plane). The default.
    Switches,
    /// The switch, and the record change beside it: the record change is
    /// the fast path while the control plane answers, the switch the one
    /// an outage cannot stop.
    SwitchesAndRecords,
}

impl LeverMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LeverMode::Switches => "switches",
            LeverMode::SwitchesAndRecords => "switches_and_records",
        }
    }
}

/// One of the cluster's regional endpoints (`DescribeCluster` lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    pub url: Url,
    /// The region its requests are signed for.
    pub region: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeverConfig {
    pub endpoints: Vec<ClusterEndpoint>,
    pub mode: LeverMode,
    /// How long one call to one endpoint may take before the next is tried.
    pub call_timeout: Duration,
    /// How often every switch is read back, to repair drift.
    pub read_interval: Duration,
    /// The lever's own request budget (not Route53's).
    pub max_requests_per_second: f64,
    /// Whether a forced drain may override ARC's safety rules.
    pub allow_safety_override: bool,
}

/// `arn:aws:route53-recovery-control::123456789012:controlpanel/<id>/routingcontrol/<id>`
pub fn valid_routing_control_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let id = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    match parts.as_slice() {
        ["arn", partition, "route53-recovery-control", "", account, resource] => {
            partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && match resource.split('/').collect::<Vec<_>>().as_slice() {
                    ["controlpanel", panel, "routingcontrol", control] => id(panel) && id(control),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// `us-west-2`: letters, a dash, a word, a dash, a digit.
pub(super) fn region_like(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

impl Validator {
    /// The section, and every member's `routing_control` against it.
    pub(super) fn lever(
        &mut self,
        raw: Option<&RawRoutingControl>,
        records: &[RecordConfig],
    ) -> Option<Option<LeverConfig>> {
        // ARNs used twice, and members with a switch but no section.
        let mut seen: BTreeMap<&str, String> = BTreeMap::new();
        let mut any = false;
        for (i, r) in records.iter().enumerate() {
            for (j, m) in r.members.iter().enumerate() {
                let Some(arn) = m.routing_control.as_deref() else {
                    continue;
                };
                any = true;
                let path = format!("records[{i}].regions[{j}].routing_control");
                if raw.is_none() {
                    self.err(
                        &path,
                        format!(
                            "{} needs the top-level routing_control section (its cluster_endpoints)",
                            q(arn)
                        ),
                    );
                }
                if let Some(first) = seen.insert(arn, path.clone()) {
                    self.err(
                        &path,
                        format!("{} is already the switch of {first}", q(arn)),
                    );
                }
            }
        }
        let Some(raw) = raw else {
            return Some(None);
        };
        let before = self.errors.len();
        if !any {
            self.warnings.push(
                "routing_control: no member names a routing control; the lever switches nothing"
                    .into(),
            );
        }
        let mut endpoints = Vec::new();
        match raw.cluster_endpoints.as_deref() {
            None | Some([]) => self.err(
                "routing_control.cluster_endpoints",
                "missing (required): the cluster's regional endpoints, each {url, region}",
            ),
            Some(list) => {
                for (i, e) in list.iter().enumerate() {
                    let path = format!("routing_control.cluster_endpoints[{i}]");
                    let url = self
                        .required(&format!("{path}.url"), &e.url)
                        .cloned()
                        .and_then(|u| self.http_url(&format!("{path}.url"), &u));
                    let region = self.required(&format!("{path}.region"), &e.region).cloned();
                    if let Some(r) = region.as_deref().filter(|r| !region_like(r)) {
                        self.err(
                            format!("{path}.region"),
                            format!("{} is not an AWS region (e.g. us-west-2)", q(r)),
                        );
                    }
                    if let (Some(url), Some(region)) = (url, region) {
                        endpoints.push(ClusterEndpoint { url, region });
                    }
                }
                if list.len() < 3 {
                    self.warnings.push(format!(
                        "routing_control.cluster_endpoints lists {}; an ARC cluster has five, \
                         and only three are sure to answer: give them all",
                        list.len()
                    ));
                }
            }
        }
        let mode = match raw.mode.as_deref() {
            None | Some("switches") => Some(LeverMode::Switches),
            Some("switches_and_records") => Some(LeverMode::SwitchesAndRecords),
            Some(other) => {
                self.err(
                    "routing_control.mode",
                    format!("{} is not switches or switches_and_records", q(other)),
                );
                None
            }
        };
        let call_timeout = self.duration(
            "routing_control.call_timeout",
            raw.call_timeout.as_deref(),
            Duration::from_millis(800),
        );
        if let Some(d) = call_timeout.filter(|d| d.is_zero() || *d > Duration::from_secs(10)) {
            self.err(
                "routing_control.call_timeout",
                format!(
                    "{} must be more than 0 and at most 10s",
                    q(&format!("{d:?}"))
                ),
            );
        }
        let read_interval = self.duration(
            "routing_control.read_interval",
            raw.read_interval.as_deref(),
            Duration::from_secs(30),
        );
        if let Some(d) = read_interval.filter(|d| *d < Duration::from_secs(1)) {
            self.err(
                "routing_control.read_interval",
                format!("{} must be at least 1s", q(&format!("{d:?}"))),
            );
        }
        let rate = raw.max_requests_per_second.unwrap_or(10.0);
        if !(rate.is_finite() && rate > 0.0) {
            self.err(
                "routing_control.max_requests_per_second",
                format!("{rate} must be a number above 0"),
            );
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Some(LeverConfig {
            endpoints,
            mode: mode?,
            call_timeout: call_timeout?,
            read_interval: read_interval?,
            max_requests_per_second: rate,
            allow_safety_override: raw.allow_safety_override.unwrap_or(false),
        }))
    }

    /// A member's `routing_control` ARN, checked.
    pub(super) fn routing_control(&mut self, path: &str, v: Option<&str>) -> Option<String> {
        let arn = v?.trim();
        if !valid_routing_control_arn(arn) {
            self.err(
                format!("{path}.routing_control"),
                format!(
                    "{} is not a routing control ARN \
                     (arn:aws:route53-recovery-control::<account>:controlpanel/<id>/routingcontrol/<id>)",
                    q(arn)
                ),
            );
            return None;
        }
        Some(arn.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_control_arns() {
        let good = "arn:aws:route53-recovery-control::123456789012:controlpanel/abc123/routingcontrol/def456";
        assert!(valid_routing_control_arn(good));
        for bad in [
            "",
            "arn:aws:route53-recovery-control::12345:controlpanel/a/routingcontrol/b",
            "arn:aws:route53:::healthcheck/abc",
            "arn:aws:route53-recovery-control::123456789012:controlpanel/abc/safetyrule/x",
            "arn:aws:route53-recovery-control::123456789012:controlpanel//routingcontrol/b",
        ] {
            assert!(!valid_routing_control_arn(bad), "{bad}");
        }
        assert!(region_like("us-west-2") && region_like("ap-southeast-2"));
        assert!(!region_like("uswest2") && !region_like("us-west") && !region_like("US-WEST-2"));
    }
}
