//! Reads what one region serves under a custom domain, through
//! apigatewayv2 in that region: `GetDomainName`, `GetApiMappings`, and per
//! mapped API `GetRoutes`, `GetAuthorizers`, `GetIntegrations` and
//! `GetStage`, every listing followed to its last page. Each request waits
//! its turn at the API Gateway rate limiter (shared with discovery; API
//! Gateway's quota is not Route53's, so parity never delays a failover).

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use aws_sdk_apigatewayv2 as apigw;
use aws_sdk_apigatewayv2::error::{ProvideErrorMetadata, SdkError};

use super::{
    AuthorizerFacts, IntegrationFacts, Kind, MappingFacts, RouteFacts, Served, StageFacts,
};
use crate::rate_limit::RateLimiter;

/// Pages of one listing at most (a guard against a token that never ends).
pub const MAX_PAGES: usize = 100;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Every item of a paged listing: `page(token)` returns one page's items
/// and the next token (none or empty: the last page).
pub async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, String>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), String>>,
{
    let mut items = Vec::new();
    let mut token = None;
    let mut seen = HashSet::new();
    for _ in 0..MAX_PAGES {
        let (mut got, next) = page(token.take()).await?;
        items.append(&mut got);
        match next.filter(|t| !t.is_empty()) {
            None => return Ok(items),
            Some(t) if !seen.insert(t.clone()) => {
                return Err(format!("the listing repeats its page token {t:?}"))
            }
            Some(t) => token = Some(t),
        }
    }
    Err(format!("the listing runs past {MAX_PAGES} pages"))
}

/// One request: its turn at the limiter, a time bound, a readable error.
async fn call<T, E, R, Fut>(limiter: &RateLimiter, what: &str, f: Fut) -> Result<T, String>
where
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    attempt(limiter, what, f)
        .await?
        .map_err(|e| describe(what, &e))
}

/// The same, the service's answer left to the caller (an error it expects
/// is not a failure); only no answer is one.
async fn attempt<T, E, Fut>(
    limiter: &RateLimiter,
    what: &str,
    f: Fut,
) -> Result<Result<T, E>, String>
where
    Fut: Future<Output = Result<T, E>>,
{
    limiter.acquire().await;
    tokio::time::timeout(REQUEST_TIMEOUT, f)
        .await
        .map_err(|_| format!("{what}: no answer within {REQUEST_TIMEOUT:?}"))
}

fn describe<E, R>(what: &str, e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match (e.code(), e.message()) {
        (Some(code), Some(msg)) => format!("{what}: {code}: {msg}"),
        (Some(code), None) => format!("{what}: {code}"),
        _ => format!("{what}: {}", apigw::error::DisplayErrorContext(e)),
    }
}

fn secs(t: Option<&apigw::primitives::DateTime>) -> Option<f64> {
    t.map(|t| t.as_secs_f64())
}

/// Every item of one apigatewayv2 listing, each request at the limiter:
/// `request(token)` is the operation's fluent builder for one page,
/// `facts` turns an item into the daemon's type.
macro_rules! paged {
    ($limiter:expr, $what:expr, |$token:ident| $request:expr, $facts:expr) => {{
        let what = $what;
        all_pages(|$token| {
            let what = &what;
            async move {
                let out = call($limiter, what, $request.send()).await?;
                let items = out.items().iter().map($facts).collect();
                Ok((items, out.next_token().map(str::to_string)))
            }
        })
        .await
    }};
}

/// What `domain` serves in the client's region.
pub async fn served(
    client: &apigw::Client,
    limiter: &RateLimiter,
    domain: &str,
) -> Result<Served, String> {
    let d = call(
        limiter,
        &format!("GetDomainName {domain}"),
        client.get_domain_name().domain_name(domain).send(),
    )
    .await?;
    let config = d.domain_name_configurations().first();
    let mut served = Served {
        endpoint_type: config
            .and_then(|c| c.endpoint_type())
            .map(|t| t.as_str().to_string()),
        security_policy: config
            .and_then(|c| c.security_policy())
            .map(|p| p.as_str().to_string()),
        truststore_uri: d
            .mutual_tls_authentication()
            .and_then(|m| m.truststore_uri())
            .map(str::to_string),
        mappings: Vec::new(),
    };
    let mappings = paged!(
        limiter,
        format!("GetApiMappings {domain}"),
        |token| client
            .get_api_mappings()
            .domain_name(domain)
            .set_next_token(token),
        |m: &apigw::types::ApiMapping| m.clone()
    )?;
    for m in mappings {
        let (Some(api_id), Some(stage)) = (m.api_id(), m.stage()) else {
            continue;
        };
        served.mappings.push(
            mapping(
                client,
                limiter,
                m.api_mapping_key().unwrap_or_default(),
                api_id,
                stage,
            )
            .await?,
        );
    }
    served.mappings.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(served)
}

fn route_facts(r: &apigw::types::Route) -> RouteFacts {
    RouteFacts {
        key: r.route_key().unwrap_or_default().to_string(),
        authorization_type: r.authorization_type().map(|t| t.as_str().to_string()),
        authorizer_id: r.authorizer_id().map(str::to_string),
        scopes: r.authorization_scopes().to_vec(),
        api_key_required: r.api_key_required(),
        target: r.target().map(str::to_string),
    }
}

fn authorizer_facts(a: &apigw::types::Authorizer) -> AuthorizerFacts {
    let jwt = a.jwt_configuration();
    AuthorizerFacts {
        id: a.authorizer_id().unwrap_or_default().to_string(),
        name: a.name().unwrap_or_default().to_string(),
        authorizer_type: a.authorizer_type().map(|t| t.as_str().to_string()),
        identity_source: a.identity_source().to_vec(),
        issuer: jwt.and_then(|j| j.issuer()).map(str::to_string),
        audience: jwt.map(|j| j.audience().to_vec()).unwrap_or_default(),
        uri: a.authorizer_uri().map(str::to_string),
    }
}

fn integration_facts(i: &apigw::types::Integration) -> IntegrationFacts {
    IntegrationFacts {
        id: i.integration_id().unwrap_or_default().to_string(),
        integration_type: i.integration_type().map(|t| t.as_str().to_string()),
        method: i.integration_method().map(str::to_string),
        uri: i.integration_uri().map(str::to_string),
        tls_server_name: i
            .tls_config()
            .and_then(|t| t.server_name_to_verify())
            .map(str::to_string),
        timeout_ms: i.timeout_in_millis(),
        payload_format_version: i.payload_format_version().map(str::to_string),
        connection_type: i.connection_type().map(|t| t.as_str().to_string()),
    }
}

/// A listing's items, or none with its error noted as `kind` unread.
fn keep<T>(unread: &mut Vec<(Kind, String)>, kind: Kind, r: Result<Vec<T>, String>) -> Vec<T> {
    r.unwrap_or_else(|e| {
        unread.push((kind, e));
        Vec::new()
    })
}

async fn mapping(
    client: &apigw::Client,
    limiter: &RateLimiter,
    key: &str,
    api_id: &str,
    stage: &str,
) -> Result<MappingFacts, String> {
    // A listing that fails (an IAM policy without it; moto answers
    // GetAuthorizers with a 500) leaves its kind unread; the rest of the
    // region is still compared.
    let mut unread = Vec::new();
    let routes = paged!(
        limiter,
        format!("GetRoutes {api_id}"),
        |token| client.get_routes().api_id(api_id).set_next_token(token),
        route_facts
    );
    let routes = keep(&mut unread, Kind::Route, routes);
    let authorizers = paged!(
        limiter,
        format!("GetAuthorizers {api_id}"),
        |token| client
            .get_authorizers()
            .api_id(api_id)
            .set_next_token(token),
        authorizer_facts
    );
    let authorizers = keep(&mut unread, Kind::Authorizer, authorizers);
    let integrations = paged!(
        limiter,
        format!("GetIntegrations {api_id}"),
        |token| client
            .get_integrations()
            .api_id(api_id)
            .set_next_token(token),
        integration_facts
    );
    let integrations = keep(&mut unread, Kind::Integration, integrations);
    let what = format!("GetStage {api_id} {stage}");
    let answer = attempt(
        limiter,
        &what,
        client.get_stage().api_id(api_id).stage_name(stage).send(),
    )
    .await;
    let stage_facts = match answer {
        Ok(Err(e)) if e.code() == Some("NotFoundException") => None,
        Ok(Err(e)) => {
            unread.push((Kind::Stage, describe(&what, &e)));
            None
        }
        Err(e) => {
            unread.push((Kind::Stage, e));
            None
        }
        Ok(Ok(s)) => {
            let throttling = s.default_route_settings();
            Some(StageFacts {
                auto_deploy: s.auto_deploy(),
                throttling_burst: throttling.and_then(|t| t.throttling_burst_limit()),
                throttling_rate: throttling.and_then(|t| t.throttling_rate_limit()),
                last_updated: secs(s.last_updated_date()),
            })
        }
    };
    Ok(MappingFacts {
        key: key.to_string(),
        stage: stage.to_string(),
        stage_facts,
        routes,
        authorizers,
        integrations,
        unread,
    })
}
