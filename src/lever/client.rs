//! The routing controls' data-plane API (`aws-sdk-route53recoverycluster`)
//! across a cluster's regional endpoints: each call goes to the endpoint
//! that answered last, and on to the next on a connection failure, a
//! timeout or an answer that says "try another endpoint", each try within
//! `call_timeout` and under the lever's own rate limit. An answer that any
//! endpoint would give the same (a safety rule's refusal, a routing control
//! not found, access denied) ends the call at once.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc::error::{ProvideErrorMetadata, SdkError};
use arc::operation::update_routing_control_states::UpdateRoutingControlStatesError;
use arc::types::{RoutingControlState, UpdateRoutingControlStateEntry};
use aws_sdk_route53recoverycluster as arc;

use crate::config::LeverConfig;
use crate::decide::lever::Switch;
use crate::rate_limit::RateLimiter;

/// Why a call did not do what it asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeverError {
    /// An ARC safety rule (assertion or gating rule) refused the change:
    /// the same plan is refused again until something else changes.
    #[error("refused by ARC safety rule {rule}: {message}")]
    Refused { rule: String, message: String },
    /// An answer every endpoint would give: the config or IAM is wrong.
    #[error("{0}")]
    Rejected(String),
    /// No endpoint answered: each one's reason, in the order tried.
    #[error("no cluster endpoint answered: {0}")]
    Unavailable(String),
}

impl LeverError {
    /// A label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LeverError::Refused { .. } => "refused",
            LeverError::Rejected(_) => "rejected",
            LeverError::Unavailable(_) => "unavailable",
        }
    }
}

/// One try at one endpoint: done, or go on to the next endpoint.
enum Try<T> {
    Done(Result<T, LeverError>),
    Next(String),
}

/// Service errors that mean "this endpoint, not now".
fn next_endpoint(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "EndpointTemporarilyUnavailableException"
                | "ThrottlingException"
                | "InternalServerException"
        ) | None
    )
}

fn classify<T, E>(r: Result<T, SdkError<E>>) -> Try<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(v) => Try::Done(Ok(v)),
        Err(SdkError::ServiceError(e)) => {
            let err = e.err();
            let code = err.code();
            let text = format!(
                "{}: {}",
                code.unwrap_or("error"),
                err.message().unwrap_or_default()
            );
            if next_endpoint(code) {
                Try::Next(text)
            } else {
                Try::Done(Err(LeverError::Rejected(text)))
            }
        }
        Err(e) => Try::Next(arc::error::DisplayErrorContext(&e).to_string()),
    }
}

pub use crate::provider::TERM_HEADER;

pub struct LeverClient {
    /// `(url, client)` per endpoint, in the config's order.
    endpoints: Vec<(String, arc::Client)>,
    /// The endpoint to try first: the one that answered last.
    first: AtomicUsize,
    call_timeout: Duration,
    limiter: RateLimiter,
}

impl LeverClient {
    /// Clients for the config's endpoints, with credentials from the
    /// default chain (or `credentials`, for tests).
    pub async fn new(config: &LeverConfig, credentials: Option<arc::config::Credentials>) -> Self {
        // A cluster all on loopback is the stand-in (the demo): it checks
        // no signature, and a machine without AWS credentials runs it.
        let loopback = config.endpoints.iter().all(|e| {
            e.url.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            })
        });
        let credentials = credentials.or_else(|| {
            loopback.then(|| {
                arc::config::Credentials::new("loopback", "loopback", None, None, "stand-in")
            })
        });
        let mut endpoints = Vec::with_capacity(config.endpoints.len());
        for e in &config.endpoints {
            let mut loader = crate::aws::loader(&e.region, Some(e.url.as_str()))
                .retry_config(aws_config::retry::RetryConfig::disabled());
            if let Some(c) = &credentials {
                loader = loader.credentials_provider(c.clone());
            }
            let shared = loader.load().await;
            endpoints.push((
                e.url.to_string(),
                arc::Client::from_conf(arc::config::Builder::from(&shared).build()),
            ));
        }
        LeverClient {
            endpoints,
            first: AtomicUsize::new(0),
            call_timeout: config.call_timeout,
            limiter: RateLimiter::new(config.max_requests_per_second),
        }
    }

    /// Tries the endpoints in turn from the last good one.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, LeverError>
    where
        F: Fn(arc::Client) -> Fut,
        Fut: Future<Output = Try<T>>,
    {
        let n = self.endpoints.len();
        let start = self.first.load(Ordering::Relaxed);
        let mut reasons = Vec::with_capacity(n);
        for k in 0..n {
            let i = (start + k) % n;
            let (url, client) = &self.endpoints[i];
            self.limiter.acquire().await;
            match tokio::time::timeout(self.call_timeout, op(client.clone())).await {
                Ok(Try::Done(r)) => {
                    self.first.store(i, Ordering::Relaxed);
                    return r;
                }
                Ok(Try::Next(why)) => reasons.push(format!("{url}: {why}")),
                Err(_) => reasons.push(format!("{url}: no answer within {:?}", self.call_timeout)),
            }
        }
        Err(LeverError::Unavailable(reasons.join("; ")))
    }

    /// Sets every switch of `entries` in one call (ARC applies them
    /// together, and its safety rules judge the result), overriding the
    /// safety rules named in `overrides`. The writer's `term` goes with the
    /// request in the [`TERM_HEADER`] header: ARC ignores it; a proxy's or
    /// the stand-in's log shows which lease each call was made under.
    pub async fn set(
        &self,
        entries: &[(String, Switch)],
        overrides: &[String],
        term: u64,
    ) -> Result<(), LeverError> {
        let built: Vec<UpdateRoutingControlStateEntry> = entries
            .iter()
            .filter_map(|(arn, s)| {
                let state = match s {
                    Switch::On => RoutingControlState::On,
                    Switch::Off => RoutingControlState::Off,
                    Switch::Unknown => return None,
                };
                UpdateRoutingControlStateEntry::builder()
                    .routing_control_arn(arn)
                    .routing_control_state(state)
                    .build()
                    .ok()
            })
            .collect();
        self.call(|client| {
            let built = built.clone();
            async move {
                let r = client
                    .update_routing_control_states()
                    .set_update_routing_control_state_entries(Some(built))
                    .set_safety_rules_to_override(
                        (!overrides.is_empty()).then(|| overrides.to_vec()),
                    )
                    .customize()
                    .mutate_request(move |req| {
                        req.headers_mut().insert(TERM_HEADER, term.to_string());
                    })
                    .send()
                    .await;
                if let Err(SdkError::ServiceError(e)) = &r {
                    if let UpdateRoutingControlStatesError::ConflictException(c) = e.err() {
                        return Try::Done(Err(LeverError::Refused {
                            rule: c.resource_id().to_string(),
                            message: c.message().to_string(),
                        }));
                    }
                }
                match classify(r) {
                    Try::Done(r) => Try::Done(r.map(|_| ())),
                    Try::Next(why) => Try::Next(why),
                }
            }
        })
        .await
    }

    /// One switch's state as the cluster holds it.
    pub async fn get(&self, arn: &str) -> Result<Switch, LeverError> {
        self.call(|client| async move {
            let r = client
                .get_routing_control_state()
                .routing_control_arn(arn)
                .send()
                .await;
            match classify(r) {
                Try::Done(r) => Try::Done(r.map(|o| match o.routing_control_state() {
                    RoutingControlState::On => Switch::On,
                    RoutingControlState::Off => Switch::Off,
                    _ => Switch::Unknown,
                })),
                Try::Next(why) => Try::Next(why),
            }
        })
        .await
    }
}
