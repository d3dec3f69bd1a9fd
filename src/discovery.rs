//! API Gateway regional targets: for a member whose target is
//! `api_gateway_domain`, apigatewayv2 `GetDomainName` in the member's region
//! gives the regional endpoint (`d-xxxx.execute-api.<region>.amazonaws.com`)
//! and its hosted zone id, which become the record's alias target and,
//! unless the probe says `connect_to`, where the probe connects.

use std::collections::HashMap;

use aws_sdk_apigatewayv2 as apigw;
use aws_sdk_apigatewayv2::error::{ProvideErrorMetadata, SdkError};

use crate::config::{MemberConfig, Target};
use crate::provider::AliasTarget;
use crate::rate_limit::RateLimiter;

/// API Gateway requests per second, discovery and parity together (API
/// Gateway's management quota is its own, apart from Route53's; this stays
/// well under it).
pub const API_GATEWAY_RATE: f64 = 5.0;

/// How long one lookup may take.
pub const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DiscoveryError {
    #[error("no custom domain {domain} in {region}")]
    NotFound { domain: String, region: String },
    #[error("{domain} in {region} has no regional endpoint (only edge-optimized?)")]
    NoRegionalEndpoint { domain: String, region: String },
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("apigatewayv2: no answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("apigatewayv2: {0}")]
    Service(String),
}

impl DiscoveryError {
    pub fn kind(&self) -> &'static str {
        match self {
            DiscoveryError::NotFound { .. } => "not_found",
            DiscoveryError::NoRegionalEndpoint { .. } => "no_regional_endpoint",
            DiscoveryError::AccessDenied(_) => "access_denied",
            DiscoveryError::Timeout(_) => "timeout",
            DiscoveryError::Service(_) => "service",
        }
    }
}

/// One apigatewayv2 client per region, and the rate limiter every
/// API Gateway request waits at (`crate::parity` reads through these too).
pub struct Discovery {
    clients: HashMap<String, apigw::Client>,
    limiter: RateLimiter,
}

impl Discovery {
    /// Clients for `regions` from the default credential chain, talking to
    /// `endpoint_url` when given (an emulator).
    pub async fn new<'a>(
        regions: impl IntoIterator<Item = &'a str>,
        endpoint_url: Option<&str>,
    ) -> Self {
        Discovery {
            clients: crate::aws::per_region(regions, endpoint_url, apigw::Client::new).await,
            limiter: RateLimiter::new(API_GATEWAY_RATE),
        }
    }

    /// The client for `region`, if one was made.
    pub fn client(&self, region: &str) -> Option<&apigw::Client> {
        self.clients.get(region)
    }

    /// The client of `region`, or the error a lookup there answers.
    fn region_client(&self, region: &str) -> Result<&apigw::Client, DiscoveryError> {
        self.client(region)
            .ok_or_else(|| DiscoveryError::Service(format!("no client for {region}")))
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// A member's regional target; `None` when its target is not an API
    /// Gateway domain.
    pub async fn lookup(
        &self,
        member: &MemberConfig,
    ) -> Option<Result<AliasTarget, DiscoveryError>> {
        let Target::ApiGateway {
            domain,
            evaluate_target_health,
        } = &member.target
        else {
            return None;
        };
        Some(
            self.regional_target(&member.region, domain, *evaluate_target_health)
                .await,
        )
    }

    /// The regional target of `domain` in `region`.
    pub async fn regional_target(
        &self,
        region: &str,
        domain: &str,
        evaluate_target_health: bool,
    ) -> Result<AliasTarget, DiscoveryError> {
        let client = self.region_client(region)?;
        self.limiter.acquire().await;
        // Its own bound: a region whose API Gateway hangs holds up no
        // other (the lookups of a round run side by side).
        let out = tokio::time::timeout(
            LOOKUP_TIMEOUT,
            client.get_domain_name().domain_name(domain).send(),
        )
        .await
        .map_err(|_| DiscoveryError::Timeout(LOOKUP_TIMEOUT))?
        .map_err(|e| classify(e, domain, region))?;
        regional(out.domain_name_configurations(), evaluate_target_health).ok_or_else(|| {
            DiscoveryError::NoRegionalEndpoint {
                domain: domain.to_string(),
                region: region.to_string(),
            }
        })
    }
}

impl Discovery {
    /// The API and stage `domain` serves at its root in `region` (its API
    /// mapping with no key, else its first): where its requests are
    /// counted in CloudWatch (`crate::cloudwatch`).
    pub async fn api_mapping(
        &self,
        region: &str,
        domain: &str,
    ) -> Result<(String, String), DiscoveryError> {
        let client = self.region_client(region)?;
        self.limiter.acquire().await;
        let out = tokio::time::timeout(
            LOOKUP_TIMEOUT,
            client.get_api_mappings().domain_name(domain).send(),
        )
        .await
        .map_err(|_| DiscoveryError::Timeout(LOOKUP_TIMEOUT))?
        .map_err(|e| classify(e, domain, region))?;
        let mut mappings: Vec<_> = out
            .items()
            .iter()
            .filter_map(|m| {
                Some((
                    m.api_mapping_key().unwrap_or_default(),
                    m.api_id()?,
                    m.stage()?,
                ))
            })
            .collect();
        mappings.sort_by_key(|(key, _, _)| !key.is_empty());
        let (_, api, stage) = mappings.first().ok_or_else(|| {
            DiscoveryError::Service(format!("{domain} in {region} has no API mapping"))
        })?;
        Ok((api.to_string(), stage.to_string()))
    }

    /// Every regional custom domain in `region` and its regional target
    /// (`GetDomainNames`, every page): for `init`, to find which domain an
    /// existing alias record points at.
    pub async fn regional_domains(
        &self,
        region: &str,
    ) -> Result<Vec<(String, AliasTarget)>, DiscoveryError> {
        let client = self.region_client(region)?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        // Bounded: a listing that does not end is an error, not a hang.
        for _ in 0..1000 {
            self.limiter.acquire().await;
            let page = tokio::time::timeout(
                LOOKUP_TIMEOUT,
                client
                    .get_domain_names()
                    .set_next_token(token.clone())
                    .send(),
            )
            .await
            .map_err(|_| DiscoveryError::Timeout(LOOKUP_TIMEOUT))?
            .map_err(|e| classify(e, "*", region))?;
            for d in page.items() {
                let Some(name) = d.domain_name() else {
                    continue;
                };
                if let Some(t) = regional(d.domain_name_configurations(), false) {
                    out.push((crate::provider::normalize_name(name), t));
                }
            }
            match page.next_token() {
                Some(next) if Some(next) != token.as_deref() => token = Some(next.to_string()),
                Some(_) => {
                    return Err(DiscoveryError::Service(
                        "GetDomainNames returned the same page token twice".into(),
                    ))
                }
                None => return Ok(out),
            }
        }
        Err(DiscoveryError::Service(
            "GetDomainNames: more than 1000 pages".into(),
        ))
    }
}

/// A domain's regional endpoint: a regional custom domain has one
/// configuration with it; an edge-optimized one has none.
fn regional(
    configs: &[apigw::types::DomainNameConfiguration],
    evaluate_target_health: bool,
) -> Option<AliasTarget> {
    configs.iter().find_map(|c| {
        Some(AliasTarget {
            dns_name: crate::provider::normalize_name(c.api_gateway_domain_name()?),
            hosted_zone_id: c.hosted_zone_id()?.to_string(),
            evaluate_target_health,
        })
    })
}

fn classify<E, R>(err: SdkError<E, R>, domain: &str, region: &str) -> DiscoveryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match err.code() {
        Some("NotFoundException") => DiscoveryError::NotFound {
            domain: domain.to_string(),
            region: region.to_string(),
        },
        Some("AccessDeniedException") => {
            DiscoveryError::AccessDenied(err.message().unwrap_or_default().to_string())
        }
        _ => DiscoveryError::Service(
            aws_sdk_apigatewayv2::error::DisplayErrorContext(&err).to_string(),
        ),
    }
}
