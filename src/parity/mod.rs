//! Parity: whether every region of a record serves the same API. For a
//! record whose members are API Gateway custom domains, each region's
//! domain, API mappings, stages, routes, authorizers and integrations are
//! read ([`fetch`]), flattened into comparable items with the
//! region-specific parts taken out, and compared across the regions
//! ([`compare`]). A difference is one line a person can act on:
//! `eu-west-1 lacks route "GET /orders"`.
//!
//! Parity informs; it never changes DNS (docs/design.md, "Parity"): a drift
//! is a deploy to fix, not a reason to withdraw a region that answers.
//!
//! [`compare`] is pure; [`fetch`] talks to apigatewayv2. Which records are
//! checked, and when, is `controller::tasks::parity_checker`'s.

pub mod compare;
pub mod fetch;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use compare::{compare, flatten, Flat, Items};

/// The kinds of thing compared, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The custom domain itself (subject: the domain name).
    Domain,
    /// An API mapping (subject: its key, `(none)` for the root).
    Mapping,
    /// The stage behind a mapping (subject: the mapping key).
    Stage,
    /// A JWT or Lambda authorizer (subject: its name).
    Authorizer,
    /// A route (subject: its route key, `GET /orders`).
    Route,
    /// The integration a route sends to (subject: the route key).
    Integration,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Domain,
        Kind::Mapping,
        Kind::Stage,
        Kind::Authorizer,
        Kind::Route,
        Kind::Integration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Domain => "domain",
            Kind::Mapping => "mapping",
            Kind::Stage => "stage",
            Kind::Authorizer => "authorizer",
            Kind::Route => "route",
            Kind::Integration => "integration",
        }
    }

    /// The fields compared for this kind; `missing` is a region lacking
    /// the item while another has it.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Domain => &["endpoint_type", "tls_policy", "mutual_tls"],
            Kind::Mapping => &["missing", "stage"],
            Kind::Stage => &["missing", "auto_deploy", "throttling"],
            Kind::Authorizer => &[
                "missing",
                "type",
                "identity_source",
                "issuer",
                "audience",
                "uri",
            ],
            Kind::Route => &[
                "missing",
                "authorization",
                "authorizer",
                "scopes",
                "api_key_required",
                "target",
            ],
            Kind::Integration => &[
                "missing",
                "type",
                "method",
                "uri",
                "tls_server_name",
                "timeout",
                "payload_format_version",
                "connection_type",
            ],
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What one region serves under a custom domain, as read: ids and ARNs
/// still as the region has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    pub endpoint_type: Option<String>,
    pub security_policy: Option<String>,
    /// Mutual TLS: the truststore's URI, if any.
    pub truststore_uri: Option<String>,
    pub mappings: Vec<MappingFacts>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappingFacts {
    /// `""` for the root mapping.
    pub key: String,
    pub stage: String,
    /// `None`: the mapped stage does not exist.
    pub stage_facts: Option<StageFacts>,
    pub routes: Vec<RouteFacts>,
    pub authorizers: Vec<AuthorizerFacts>,
    pub integrations: Vec<IntegrationFacts>,
    /// Listings that could not be read, each with its error: the kind is
    /// left out of the comparison for this mapping, the rest compared.
    pub unread: Vec<(Kind, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageFacts {
    pub auto_deploy: Option<bool>,
    pub throttling_burst: Option<i32>,
    pub throttling_rate: Option<f64>,
    /// When the stage last changed (a deployment, with auto-deploy): shown,
    /// not compared (regions deploy one after another).
    pub last_updated: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteFacts {
    pub key: String,
    pub authorization_type: Option<String>,
    pub authorizer_id: Option<String>,
    pub scopes: Vec<String>,
    pub api_key_required: Option<bool>,
    /// `integrations/<id>`.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthorizerFacts {
    pub id: String,
    pub name: String,
    pub authorizer_type: Option<String>,
    pub identity_source: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    /// A Lambda authorizer's function URI.
    pub uri: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntegrationFacts {
    pub id: String,
    pub integration_type: Option<String>,
    pub method: Option<String>,
    pub uri: Option<String>,
    pub tls_server_name: Option<String>,
    pub timeout_ms: Option<i32>,
    pub payload_format_version: Option<String>,
    pub connection_type: Option<String>,
}

/// One difference between the regions of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: String,
    /// `missing`, or the field whose values differ.
    pub field: String,
    /// The route key, authorizer name, mapping key…
    pub subject: String,
    /// The line on-call reads.
    pub line: String,
}

/// A region that could not be read: shown, never taken for drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupError {
    pub region: String,
    pub error: String,
}

/// Where a record's regions stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParityState {
    /// Every region was read, and none differs after `parity.ignore`.
    InSync,
    /// Regions differ (whether or not every region was read).
    Differs,
    /// A region could not be read, and those that could agree.
    Unknown,
}

/// One record's parity, as of `checked_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityReport {
    /// Unix seconds.
    pub checked_at: f64,
    pub state: ParityState,
    /// The regions compared, in the record's order.
    pub regions: Vec<String>,
    pub differences: Vec<Difference>,
    /// Differences left out by `parity.ignore`.
    pub ignored: usize,
    pub errors: Vec<LookupError>,
    /// Per compared region: when its root stage last changed (Unix seconds).
    pub stage_updated: Vec<(String, Option<f64>)>,
}

impl ParityReport {
    /// The report for `read` (each region's facts or its lookup error),
    /// leaving out what `ignore` matches.
    pub fn new(
        checked_at: f64,
        read: Vec<(String, Result<Served, String>)>,
        ignore: &[IgnoreRule],
    ) -> ParityReport {
        let mut regions = Vec::new();
        let mut items = Vec::new();
        let mut errors = Vec::new();
        let mut stage_updated = Vec::new();
        for (region, r) in read {
            match r {
                Ok(served) => {
                    let root = served.mappings.iter().find(|m| m.key.is_empty());
                    let updated = root.and_then(|m| m.stage_facts.as_ref()?.last_updated);
                    stage_updated.push((region.clone(), updated));
                    for m in &served.mappings {
                        for (_, error) in &m.unread {
                            errors.push(LookupError {
                                region: region.clone(),
                                error: error.clone(),
                            });
                        }
                    }
                    items.push((region.clone(), flatten(&region, &served)));
                    regions.push(region);
                }
                Err(error) => errors.push(LookupError { region, error }),
            }
        }
        let all = compare(&items);
        let before = all.len();
        let differences: Vec<Difference> = all
            .into_iter()
            .filter(|d| !ignore.iter().any(|i| i.matches(d)))
            .collect();
        let state = if !differences.is_empty() {
            ParityState::Differs
        } else if !errors.is_empty() {
            ParityState::Unknown
        } else {
            ParityState::InSync
        };
        ParityReport {
            checked_at,
            state,
            regions,
            ignored: before - differences.len(),
            differences,
            errors,
            stage_updated,
        }
    }

    /// `in sync (us-east-1, eu-west-1)`, `2 difference(s) between
    /// us-east-1, eu-west-1`, `unknown (compared: us-east-1)`.
    pub fn headline(&self) -> String {
        let regions = self.regions.join(", ");
        match self.state {
            ParityState::InSync => format!("in sync ({regions})"),
            ParityState::Differs => {
                format!("{} difference(s) between {regions}", self.differences.len())
            }
            ParityState::Unknown => format!("unknown (compared: {regions})"),
        }
    }

    /// The headline, every difference and every region not read, on one line.
    pub fn summary(&self) -> String {
        let mut s = self.headline();
        for d in &self.differences {
            s.push_str(&format!("; {}", d.line));
        }
        for e in &self.errors {
            s.push_str(&format!("; {} not read: {}", e.region, e.error));
        }
        s
    }

    /// How many differences of each kind (kinds without any left out).
    pub fn counts(&self) -> Vec<(&str, usize)> {
        Kind::ALL
            .iter()
            .map(|k| {
                let n = self
                    .differences
                    .iter()
                    .filter(|d| d.kind == k.as_str())
                    .count();
                (k.as_str(), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// A difference `parity.ignore` leaves out: `KIND[.FIELD][:SUBJECT]`, the
/// subject matched whole or, ending in `*`, by prefix
/// (`route.missing:GET /internal/*`, `stage.throttling`, `authorizer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRule {
    pub kind: Kind,
    pub field: Option<&'static str>,
    pub subject: Option<String>,
}

impl IgnoreRule {
    /// Parses a rule; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<IgnoreRule, String> {
        let (head, subject) = match s.split_once(':') {
            Some((h, subj)) if !subj.is_empty() => (h, Some(subj.to_string())),
            Some(_) => return Err("the subject after ':' is empty".into()),
            None => (s, None),
        };
        let (kind_s, field_s) = match head.split_once('.') {
            Some((k, f)) => (k, Some(f)),
            None => (head, None),
        };
        let names = || {
            Kind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kind = Kind::parse(kind_s)
            .ok_or_else(|| format!("no kind of difference {kind_s:?} (kinds: {})", names()))?;
        let field = match field_s {
            None => None,
            Some(f) => Some(*kind.fields().iter().find(|x| **x == f).ok_or_else(|| {
                format!(
                    "{} has no field {f:?} (fields: {})",
                    kind.as_str(),
                    kind.fields().join(", ")
                )
            })?),
        };
        Ok(IgnoreRule {
            kind,
            field,
            subject,
        })
    }

    pub fn matches(&self, d: &Difference) -> bool {
        d.kind == self.kind.as_str()
            && self.field.is_none_or(|f| d.field == f)
            && self
                .subject
                .as_deref()
                .is_none_or(|s| match s.strip_suffix('*') {
                    Some(prefix) => d.subject.starts_with(prefix),
                    None => d.subject == s,
                })
    }
}
