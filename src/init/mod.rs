//! `route53-failover init`: read an existing latency setup (a zone's
//! latency record sets, and API Gateway for the aliases that point at it)
//! and write the config that adopts it as it is. The reading is here; what
//! the records become is [`map`] (pure).

pub mod map;

use std::collections::BTreeSet;

use crate::discovery::{Discovery, DiscoveryError};
use crate::provider::{Provider, ProviderError};
use map::{execute_api_region, Found, Gateway, Gateways};

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Bad input (exit 2): a zone that does not exist, say.
    #[error("{0}")]
    BadInput(String),
    /// A read failed (exit 1).
    #[error("{0}")]
    Read(String),
}

/// What was read: the zone's name and id, its latency sets, and what API
/// Gateway said of the aliases that point at it.
pub struct Read {
    pub zone_name: String,
    pub zone_id: String,
    pub found: Found,
    pub gateways: Gateways,
}

/// Reads `zone` (a name or an id) through `provider`, the latency sets
/// under `name` (every name when `None`), and, with `api_gateway` (the
/// endpoint, `Some(None)` for AWS's own), which custom domain each alias to
/// an API Gateway endpoint belongs to.
pub async fn read(
    provider: &dyn Provider,
    zone: &str,
    name: Option<&str>,
    api_gateway: Option<Option<&str>>,
) -> Result<Read, InitError> {
    let found_zone = provider.find_zone(zone).await.map_err(|e| match e {
        ProviderError::NoSuchHostedZone(_) => {
            InitError::BadInput(format!("--zone: no hosted zone {zone:?}"))
        }
        e => InitError::Read(format!("reading zone {zone:?}: {e}")),
    })?;
    let records = provider
        .list_records(&found_zone.id)
        .await
        .map_err(|e| InitError::Read(format!("listing zone {}: {e}", found_zone.name)))?;
    let found = map::find(&records, name);
    let gateways = match api_gateway {
        Some(endpoint) => gateways(&found, endpoint).await?,
        None => Gateways::new(),
    };
    Ok(Read {
        zone_name: found_zone.name,
        zone_id: found_zone.id,
        found,
        gateways,
    })
}

/// For every alias to an API Gateway endpoint: the custom domain in the
/// member's region whose regional endpoint it is. The record's own name is
/// asked first (`GetDomainName`), then the region's domains are listed.
async fn gateways(found: &Found, endpoint: Option<&str>) -> Result<Gateways, InitError> {
    let asked: BTreeSet<(String, String, String)> = found
        .sets
        .iter()
        .flat_map(|s| s.members.iter().map(move |m| (s, m)))
        .filter_map(|(s, m)| {
            let alias = m.alias.as_ref()?;
            let region = m.region.clone()?;
            // An alias to another region's API is said as it is (map).
            (execute_api_region(&alias.dns_name) == Some(region.as_str()))
                .then(|| (region, alias.dns_name.clone(), s.name.clone()))
        })
        .collect();
    let mut out = Gateways::new();
    if asked.is_empty() {
        return Ok(out);
    }
    let discovery = Discovery::new(asked.iter().map(|(r, _, _)| r.as_str()), endpoint).await;
    for (region, target, name) in asked {
        let key = (region.clone(), target.clone());
        if out.contains_key(&key) {
            continue;
        }
        let gateway = domain_of(&discovery, &region, &target, &name).await?;
        out.insert(key, gateway);
    }
    Ok(out)
}

/// Which custom domain in `region` has `target` as its regional endpoint.
async fn domain_of(
    discovery: &Discovery,
    region: &str,
    target: &str,
    name: &str,
) -> Result<Gateway, InitError> {
    let same =
        |t: &str| crate::provider::normalize_name(t) == crate::provider::normalize_name(target);
    match discovery.regional_target(region, name, false).await {
        Ok(t) if same(&t.dns_name) => return Ok(Gateway::Domain(name.to_string())),
        Ok(_)
        | Err(DiscoveryError::NotFound { .. } | DiscoveryError::NoRegionalEndpoint { .. }) => {}
        Err(e) => return Err(InitError::Read(format!("apigatewayv2 in {region}: {e}"))),
    }
    let domains = discovery
        .regional_domains(region)
        .await
        .map_err(|e| InitError::Read(format!("apigatewayv2 in {region}: {e}")))?;
    Ok(match domains.into_iter().find(|(_, t)| same(&t.dns_name)) {
        Some((domain, _)) => Gateway::Domain(domain),
        None => Gateway::Unknown(format!(
            "no API Gateway custom domain in {region} has it as its regional endpoint"
        )),
    })
}
