//! The comparison, pure: each region's facts are flattened into items
//! (a kind, the mapping they sit under, a subject, and fields as text),
//! with what is region-specific by nature taken out, then the items are
//! compared across regions. A listing a region could not read leaves its
//! kind out of that region's side of the comparison.
//!
//! What is taken out: ids (a route names its authorizer and integration by
//! id; here by name and by route key), and the region's own name inside
//! ARNs and URIs (`arn:aws:lambda:eu-west-1:…` → `arn:aws:lambda:{region}:…`,
//! `abc123.execute-api.eu-west-1.amazonaws.com` →
//! `{api}.execute-api.{region}.amazonaws.com`). A JWT issuer and audience
//! are compared as they are: a token carries one issuer, so an issuer that
//! names its region is exactly the drift that rejects tokens elsewhere.
//! Lists whose order means nothing (audience, scopes, identity source) are
//! sorted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Difference, Kind, MappingFacts, Served};

/// One thing compared: its kind, the mapping key it sits under (`""`: the
/// root, or not under a mapping), and its subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemKey {
    pub kind: Kind,
    pub scope: String,
    pub subject: String,
}

impl ItemKey {
    fn new(kind: Kind, scope: &str, subject: &str) -> ItemKey {
        ItemKey {
            kind,
            scope: scope.to_string(),
            subject: subject.to_string(),
        }
    }

    /// The item a region must have for this one's absence to count: a
    /// route missing under a mapping the region lacks is the mapping's
    /// difference, not the route's.
    fn parent(&self) -> Option<ItemKey> {
        match self.kind {
            Kind::Domain | Kind::Mapping => None,
            Kind::Stage => Some(ItemKey::new(Kind::Mapping, "", &self.subject)),
            Kind::Route | Kind::Authorizer => Some(ItemKey::new(Kind::Mapping, "", &self.scope)),
            Kind::Integration => Some(ItemKey::new(Kind::Route, &self.scope, &self.subject)),
        }
    }

    /// `route "GET /orders"`, with ` under mapping "v2"` off the root.
    fn describe(&self) -> String {
        let shown = |s: &str| {
            if s.is_empty() {
                "(none)".to_string()
            } else {
                s.to_string()
            }
        };
        let what = match self.kind {
            Kind::Stage => format!("stage of mapping {:?}", shown(&self.subject)),
            Kind::Integration => format!("integration of route {:?}", self.subject),
            Kind::Mapping => format!("mapping {:?}", shown(&self.subject)),
            Kind::Domain => "custom domain".to_string(),
            k => format!("{} {:?}", k.as_str(), self.subject),
        };
        if self.scope.is_empty() {
            what
        } else {
            format!("{what} under mapping {:?}", self.scope)
        }
    }

    /// The subject as `parity.ignore` matches it.
    fn subject_shown(&self) -> String {
        match self.kind {
            Kind::Mapping | Kind::Stage if self.subject.is_empty() => "(none)".to_string(),
            _ => self.subject.clone(),
        }
    }
}

/// A field's value as text (`(none)` when unset).
pub type Fields = BTreeMap<&'static str, String>;

/// Everything one region serves, flattened.
pub type Items = BTreeMap<ItemKey, Fields>;

/// One region flattened: its items, and which kinds under which mapping
/// could not be read (left out of the comparison for this region).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flat {
    pub items: Items,
    pub unread: BTreeSet<(Kind, String)>,
}

impl Flat {
    /// Whether this region's listing of `key`'s kind was read: if not,
    /// the region neither has nor lacks it.
    fn read(&self, key: &ItemKey) -> bool {
        // A stage's item sits at the root, named by its mapping's key.
        let mapping = match key.kind {
            Kind::Stage => &key.subject,
            _ => &key.scope,
        };
        !self.unread.contains(&(key.kind, mapping.clone()))
    }
}

const NONE: &str = "(none)";
/// A field whose value depends on a listing that could not be read.
const UNREAD: &str = "(unread)";

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| NONE.to_string(), |v| v.to_string())
}

fn list(v: &[String]) -> String {
    let mut v = v.to_vec();
    v.sort();
    format!("[{}]", v.join(", "))
}

/// `value` with what names the region by nature taken out: the region
/// inside an ARN or a URI, an execute-api host's API id, and the ids a
/// region's own load balancers, listeners, target groups and Cloud Map
/// services get (`…:listener/app/api-alb/50dc6c4…/f2f7dc8…` →
/// `…:listener/app/api-alb`: the same API in two regions integrates
/// through a VPC link with each region's own ALB, so they compare by
/// resource type and name).
pub fn normalize(region: &str, value: &str) -> String {
    if !(value.starts_with("arn:") || value.contains("://") || value.contains(".execute-api.")) {
        return value.to_string();
    }
    let mut out = if region.is_empty() {
        value.to_string()
    } else {
        value.replace(region, "{region}")
    };
    if out.starts_with("arn:") {
        out = without_resource_ids(&out);
    }
    // `<api id>.execute-api.` → `{api}.execute-api.` (a URI names one host).
    if let Some(at) = out.find(".execute-api.") {
        let start = out[..at]
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |i| i + 1);
        if start < at {
            out.replace_range(start..at, "{api}");
        }
    }
    out
}

/// An ARN with the per-region ids of its resource taken out, by service:
/// Elastic Load Balancing (`loadbalancer/app|net/<name>/<id>`,
/// `listener/app|net/<name>/<lb id>/<id>`, `listener-rule/…`,
/// `targetgroup/<name>/<id>`) keeps type and name; Cloud Map
/// (`service/<id>`, `namespace/<id>`) keeps the type only (its ARN has no
/// name). Other ARNs are kept as they are.
fn without_resource_ids(arn: &str) -> String {
    let mut parts = arn.splitn(6, ':');
    let head: Vec<&str> = parts.by_ref().take(5).collect();
    let Some(resource) = parts.next() else {
        return arn.to_string();
    };
    let segments: Vec<&str> = resource.split('/').collect();
    let kept: Vec<&str> = match (head.get(2).copied(), segments.as_slice()) {
        (
            Some("elasticloadbalancing"),
            [kind @ ("loadbalancer" | "listener" | "listener-rule"), lb @ ("app" | "net" | "gwy"), name, ..],
        ) => {
            vec![kind, lb, name]
        }
        (Some("elasticloadbalancing"), [kind @ "targetgroup", name, ..]) => vec![kind, name],
        (Some("servicediscovery"), [kind @ ("service" | "namespace"), _]) => vec![kind, "{id}"],
        _ => return arn.to_string(),
    };
    format!("{}:{}", head.join(":"), kept.join("/"))
}

/// One region's facts as comparable items.
pub fn flatten(region: &str, served: &Served) -> Flat {
    let mut flat = Flat::default();
    let items = &mut flat.items;
    let norm = |v: &Option<String>| opt(v.as_deref().map(|s| normalize(region, s)));
    items.insert(
        ItemKey::new(Kind::Domain, "", ""),
        Fields::from([
            ("endpoint_type", opt(served.endpoint_type.as_deref())),
            ("tls_policy", opt(served.security_policy.as_deref())),
            (
                "mutual_tls",
                match &served.truststore_uri {
                    None => "off".to_string(),
                    Some(uri) => format!("on ({})", normalize(region, uri)),
                },
            ),
        ]),
    );
    for m in &served.mappings {
        for (kind, _) in &m.unread {
            flat.unread.insert((*kind, m.key.clone()));
            // Integrations are found through the routes.
            if *kind == Kind::Route {
                flat.unread.insert((Kind::Integration, m.key.clone()));
            }
        }
        flatten_mapping(region, m, &mut flat.items, &norm);
    }
    flat
}

fn flatten_mapping(
    region: &str,
    m: &MappingFacts,
    items: &mut Items,
    norm: &dyn Fn(&Option<String>) -> String,
) {
    let scope = m.key.as_str();
    items.insert(
        ItemKey::new(Kind::Mapping, "", scope),
        Fields::from([("stage", m.stage.clone())]),
    );
    if let Some(s) = &m.stage_facts {
        let throttling = match (s.throttling_burst, s.throttling_rate) {
            (None, None) => NONE.to_string(),
            (b, r) => format!("burst {}, rate {}", opt(b), opt(r)),
        };
        items.insert(
            ItemKey::new(Kind::Stage, "", scope),
            Fields::from([
                ("auto_deploy", opt(s.auto_deploy)),
                ("throttling", throttling),
            ]),
        );
    }
    let authorizer_names: HashMap<&str, &str> = m
        .authorizers
        .iter()
        .map(|a| (a.id.as_str(), a.name.as_str()))
        .collect();
    let unread = |kind: Kind| m.unread.iter().any(|(k, _)| *k == kind);
    for a in &m.authorizers {
        items.insert(
            ItemKey::new(Kind::Authorizer, scope, &a.name),
            Fields::from([
                ("type", opt(a.authorizer_type.as_deref())),
                ("identity_source", list(&a.identity_source)),
                ("issuer", opt(a.issuer.as_deref())),
                ("audience", list(&a.audience)),
                ("uri", norm(&a.uri)),
            ]),
        );
    }
    let integrations: HashMap<&str, &super::IntegrationFacts> =
        m.integrations.iter().map(|i| (i.id.as_str(), i)).collect();
    for r in &m.routes {
        let integration = r
            .target
            .as_deref()
            .and_then(|t| t.strip_prefix("integrations/"))
            .and_then(|id| integrations.get(id));
        let target = match (&r.target, integration) {
            (_, Some(_)) => "integration".to_string(),
            (None, None) => NONE.to_string(),
            (Some(_), None) if unread(Kind::Integration) => UNREAD.to_string(),
            (Some(t), None) => format!("{} (not found)", normalize(region, t)),
        };
        let authorizer = r.authorizer_id.as_deref().map(|id| {
            if unread(Kind::Authorizer) {
                return UNREAD.to_string();
            }
            authorizer_names
                .get(id)
                .map_or_else(|| format!("id {id} (not found)"), |n| n.to_string())
        });
        items.insert(
            ItemKey::new(Kind::Route, scope, &r.key),
            Fields::from([
                (
                    "authorization",
                    r.authorization_type
                        .clone()
                        .unwrap_or_else(|| "NONE".into()),
                ),
                ("authorizer", opt(authorizer)),
                ("scopes", list(&r.scopes)),
                ("api_key_required", opt(r.api_key_required)),
                ("target", target),
            ]),
        );
        if let Some(i) = integration {
            items.insert(
                ItemKey::new(Kind::Integration, scope, &r.key),
                Fields::from([
                    ("type", opt(i.integration_type.as_deref())),
                    ("method", opt(i.method.as_deref())),
                    ("uri", norm(&i.uri)),
                    ("tls_server_name", opt(i.tls_server_name.as_deref())),
                    ("timeout", opt(i.timeout_ms.map(|t| format!("{t}ms")))),
                    (
                        "payload_format_version",
                        opt(i.payload_format_version.as_deref()),
                    ),
                    ("connection_type", opt(i.connection_type.as_deref())),
                ]),
            );
        }
    }
}

/// Every difference between `regions` (each region flattened, in the
/// record's order), in report order: kind, mapping, subject, field. What a
/// region could not read is neither present nor missing there.
pub fn compare(regions: &[(String, Flat)]) -> Vec<Difference> {
    let keys: BTreeSet<&ItemKey> = regions
        .iter()
        .flat_map(|(_, flat)| flat.items.keys())
        .collect();
    let mut out = Vec::new();
    for key in keys {
        let parent = key.parent();
        let mut present = Vec::new();
        for (region, flat) in regions {
            if !flat.read(key) {
                continue;
            }
            let items = &flat.items;
            match items.get(key) {
                Some(fields) => present.push((region, fields)),
                None if parent.as_ref().is_none_or(|p| items.contains_key(p)) => {
                    out.push(difference(
                        key,
                        "missing",
                        format!("{region} lacks {}", key.describe()),
                    ));
                }
                None => {}
            }
        }
        let fields: BTreeSet<&'static str> = present
            .iter()
            .flat_map(|(_, f)| f.keys().copied())
            .collect();
        // In the kind's own order, not the alphabet's.
        for field in key.kind.fields().iter().filter(|f| fields.contains(*f)) {
            let values: Vec<(&String, &str)> = present
                .iter()
                .map(|(r, f)| (*r, f.get(field).map_or(NONE, |v| v.as_str())))
                .filter(|(_, v)| *v != UNREAD)
                .collect();
            if values.is_empty() {
                continue;
            }
            if values.iter().any(|(_, v)| *v != values[0].1) {
                let each: Vec<String> = values.iter().map(|(r, v)| format!("{r} {v}")).collect();
                out.push(difference(
                    key,
                    field,
                    format!(
                        "{} {} differs: {}",
                        key.describe(),
                        field.replace('_', " "),
                        each.join(", ")
                    ),
                ));
            }
        }
    }
    out
}

fn difference(key: &ItemKey, field: &str, line: String) -> Difference {
    Difference {
        kind: key.kind.as_str().to_string(),
        field: field.to_string(),
        subject: key.subject_shown(),
        line,
    }
}
