//! One HTTP(S) probe of a member's endpoint → [`ProbeResult`].
//!
//! Every probe resolves the name, opens a fresh connection and closes it, as
//! Route53's checkers and blackbox_exporter do, so a region that still serves
//! old keep-alive connections but refuses new ones is caught. The connection
//! is driven by hyper's connection-level client rather than a pooled client:
//! that gives the phase timings (DNS, connect, TLS, first byte, total), lets
//! `connect_to` send the TCP connection elsewhere while the URL's host stays
//! the Host header and the TLS SNI, and lets thousands of members share one
//! TLS configuration. The body read is capped and the whole probe ends within
//! its timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{CONNECTION, HOST, LOCATION, USER_AGENT};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

pub mod auth;
mod exchange;
mod tls;

pub use tls::TlsConfigs;

use crate::config::ProbeSpec;
use auth::{TokenSource, TokenSources};
use exchange::{fail, Phase, Progress};

/// At most this much of a body is read.
pub const BODY_LIMIT: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 5;

/// Why a probe failed. The label set of `route53_failover_probes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Dns,
    Connect,
    Tls,
    Timeout,
    Status,
    Body,
    /// No probe credentials (the token endpoint failed).
    Auth,
    /// Answered as expected, but slower than `expect.max_latency`.
    Slow,
    /// This instance's own trouble, not the member's: no descriptor or
    /// ephemeral port left, no memory for a socket, a resolver that does
    /// not answer.
    Local,
}

impl FailureKind {
    /// Every kind, in the order `probes_total` lists them.
    pub const ALL: [FailureKind; 9] = [
        FailureKind::Dns,
        FailureKind::Connect,
        FailureKind::Tls,
        FailureKind::Timeout,
        FailureKind::Status,
        FailureKind::Body,
        FailureKind::Auth,
        FailureKind::Slow,
        FailureKind::Local,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Dns => "dns",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Timeout => "timeout",
            FailureKind::Status => "status",
            FailureKind::Body => "body",
            FailureKind::Auth => "auth",
            FailureKind::Slow => "slow",
            FailureKind::Local => "local",
        }
    }

    /// Whether a probe that failed this way observed the member at all. A
    /// probe without its token, or cut short by a local error, says
    /// nothing of the region: it feeds no verdict (the verdict stays) and
    /// corroborates nothing (`decide::correlated`).
    pub fn observes(self) -> bool {
        !matches!(self, FailureKind::Auth | FailureKind::Local)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// For on-call: what went wrong, never a header or body.
    pub detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

/// Time spent in each phase (zero for a phase that did not happen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    pub dns: Duration,
    pub connect: Duration,
    pub tls: Duration,
    /// Request sent until the response headers arrived.
    pub first_byte: Duration,
    pub total: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub at: SystemTime,
    pub status: Option<u16>,
    pub timings: Timings,
    pub failure: Option<Failure>,
    /// HTTPS: when the configured host's leaf certificate expires (as
    /// served on this probe's first connection).
    pub cert_not_after: Option<SystemTime>,
}

impl ProbeResult {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// Whether the probe observed the member (see [`FailureKind::observes`]).
    pub fn observes(&self) -> bool {
        self.failure.as_ref().is_none_or(|f| f.kind.observes())
    }
}

/// Probes one member; cheap to keep one per member (and to clone: a
/// prober task started again after a panic gets a copy).
#[derive(Clone)]
pub struct Prober {
    spec: Arc<ProbeSpec>,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<Arc<TokenSource>>,
}

impl Prober {
    /// Fails only when the TLS settings cannot be loaded.
    pub fn new(
        spec: Arc<ProbeSpec>,
        tls: &TlsConfigs,
        tokens: &TokenSources,
    ) -> Result<Self, String> {
        let token = spec.auth.as_ref().map(|a| tokens.get(a));
        let needs_tls = spec.url.scheme() == "https" || spec.follow_redirects;
        let tls = if needs_tls {
            Some(tls.get(spec.ca_file.as_ref(), spec.insecure_skip_verify)?)
        } else {
            None
        };
        Ok(Prober { spec, tls, token })
    }

    pub fn spec(&self) -> &ProbeSpec {
        &self.spec
    }

    /// Runs one probe; always returns within the spec's timeout (plus a
    /// scheduling hair).
    pub async fn probe(&self) -> ProbeResult {
        self.probe_via(None).await
    }

    /// Runs one probe connecting to `via` (a discovered regional endpoint;
    /// the URL's port) instead of `connect_to` or the URL's host.
    pub async fn probe_via(&self, via: Option<&str>) -> ProbeResult {
        let at = SystemTime::now();
        // The token comes first and outside the probe's timeout, so a slow
        // or failing token endpoint reads as `auth`, never as the region's
        // `timeout`.
        let token = match &self.token {
            None => None,
            Some(source) => match source.token().await {
                Ok(t) => Some(t),
                Err(e) => {
                    return ProbeResult {
                        at,
                        status: None,
                        timings: Timings::default(),
                        failure: Some(fail(FailureKind::Auth, e.to_string())),
                        cert_not_after: None,
                    }
                }
            },
        };
        let start = Instant::now();
        let mut progress = Progress {
            timings: Timings::default(),
            phase: Phase::Dns,
            status: None,
            cert_not_after: None,
        };
        let run = self.run(via, token.as_deref(), &mut progress);
        let outcome = tokio::time::timeout(self.spec.timeout, run).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(f)) => Some(f),
            // The resolver is this instance's (the cluster's DNS): a
            // timeout there is local trouble, not the region's.
            Err(_) if matches!(progress.phase, Phase::Dns) => Some(fail(
                FailureKind::Local,
                format!(
                    "the resolver did not answer within {}",
                    humantime::format_duration(self.spec.timeout)
                ),
            )),
            Err(_) => Some(fail(
                FailureKind::Timeout,
                format!(
                    "no answer within {} while {}",
                    humantime::format_duration(self.spec.timeout),
                    progress.phase.as_str()
                ),
            )),
        };
        progress.timings.total = start.elapsed();
        let failure = failure.or_else(|| self.judge_latency(progress.timings.total));
        ProbeResult {
            at,
            status: progress.status,
            timings: progress.timings,
            failure,
            cert_not_after: progress.cert_not_after,
        }
    }

    async fn run(
        &self,
        via: Option<&str>,
        token: Option<&str>,
        p: &mut Progress,
    ) -> Result<(), Failure> {
        let mut url = self.spec.url.clone();
        for hop in 0..=MAX_REDIRECTS {
            let Some(location) = self.exchange(&url, hop == 0, via, token, p).await? else {
                return Ok(());
            };
            url = url.join(&location).map_err(|e| {
                fail(
                    FailureKind::Status,
                    format!("redirect to a bad Location: {e}"),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(fail(FailureKind::Status, "redirect to a non-HTTP URL"));
            }
        }
        Err(fail(
            FailureKind::Status,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    /// A good answer that took longer than `expect.max_latency` is a
    /// failure: users of an API see a brownout as an outage.
    fn judge_latency(&self, total: Duration) -> Option<Failure> {
        let max = self.spec.max_latency?;
        (total > max).then(|| {
            fail(
                FailureKind::Slow,
                format!(
                    "answered in {}ms, over max_latency {}",
                    total.as_millis(),
                    humantime::format_duration(max)
                ),
            )
        })
    }

    fn judge_status(&self, status: u16) -> Result<(), Failure> {
        let ok = if self.spec.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.spec.expect_status.contains(&status)
        };
        if ok {
            return Ok(());
        }
        let expected = if self.spec.expect_status.is_empty() {
            "2xx".to_string()
        } else {
            let codes: Vec<String> = self.spec.expect_status.iter().map(u16::to_string).collect();
            codes.join(" or ")
        };
        Err(fail(
            FailureKind::Status,
            format!("answered {status}, expected {expected}"),
        ))
    }
}
