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
mod tls;

pub use tls::TlsConfigs;

use crate::config::ProbeSpec;
use auth::{TokenSource, TokenSources};

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
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Dns => "dns",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Timeout => "timeout",
            FailureKind::Status => "status",
            FailureKind::Body => "body",
            FailureKind::Auth => "auth",
        }
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
}

impl ProbeResult {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Probes one member; cheap to keep one per member.
pub struct Prober {
    spec: Arc<ProbeSpec>,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<Arc<TokenSource>>,
}

/// Where in the probe it stands, to name the phase a timeout hit.
#[derive(Clone, Copy)]
enum Phase {
    Dns,
    Connect,
    Tls,
    Response,
    Body,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Dns => "resolving",
            Phase::Connect => "connecting",
            Phase::Tls => "the TLS handshake",
            Phase::Response => "waiting for the response",
            Phase::Body => "reading the body",
        }
    }
}

struct Progress {
    timings: Timings,
    phase: Phase,
    status: Option<u16>,
}

fn fail(kind: FailureKind, detail: impl Into<String>) -> Failure {
    Failure {
        kind,
        detail: detail.into(),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

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
                    }
                }
            },
        };
        let start = Instant::now();
        let mut progress = Progress {
            timings: Timings::default(),
            phase: Phase::Dns,
            status: None,
        };
        let run = self.run(via, token.as_deref(), &mut progress);
        let outcome = tokio::time::timeout(self.spec.timeout, run).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(f)) => Some(f),
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
        ProbeResult {
            at,
            status: progress.status,
            timings: progress.timings,
            failure,
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

    /// One request on a fresh connection. Returns the Location to follow
    /// when this is a redirect to follow; otherwise judges the response
    /// (status first, then the body).
    async fn exchange(
        &self,
        url: &Url,
        first: bool,
        via: Option<&str>,
        token: Option<&str>,
        p: &mut Progress,
    ) -> Result<Option<String>, Failure> {
        let host = url.host_str().unwrap_or_default().to_string();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let https = url.scheme() == "https";
        let url_port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        // connect_to applies to the configured host only: a redirect to
        // another host goes where DNS says.
        let same_host = first || Some(host.as_str()) == self.spec.url.host_str();
        let (connect_host, port) = match (via, &self.spec.connect_to) {
            (Some(v), _) if same_host => (v.to_string(), url_port),
            (None, Some((h, port))) if same_host => (h.clone(), *port),
            _ => (host.clone(), url_port),
        };

        p.phase = Phase::Dns;
        let t = Instant::now();
        let addrs: Vec<SocketAddr> = match connect_host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((connect_host.as_str(), port))
                .await
                .map_err(|e| fail(FailureKind::Dns, format!("{connect_host}: {e}")))?
                .collect(),
        };
        p.timings.dns += t.elapsed();
        if addrs.is_empty() {
            return Err(fail(
                FailureKind::Dns,
                format!("{connect_host}: no address"),
            ));
        }

        p.phase = Phase::Connect;
        let t = Instant::now();
        let mut last_err = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last_err = Some(format!("{addr}: {e}")),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            fail(
                FailureKind::Connect,
                last_err.unwrap_or_else(|| "no address".into()),
            )
        })?;
        let _ = tcp.set_nodelay(true);
        p.timings.connect += t.elapsed();

        let io: Box<dyn Io> = if https {
            p.phase = Phase::Tls;
            let t = Instant::now();
            let config = self
                .tls
                .clone()
                .ok_or_else(|| fail(FailureKind::Tls, "https redirect without TLS settings"))?;
            let name = ServerName::try_from(host.clone())
                .map_err(|e| fail(FailureKind::Tls, format!("{host}: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| fail(FailureKind::Tls, e.to_string()))?;
            p.timings.tls += t.elapsed();
            Box::new(stream)
        } else {
            Box::new(tcp)
        };

        p.phase = Phase::Response;
        let t = Instant::now();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| fail(FailureKind::Connect, format!("HTTP handshake: {e}")))?;
        let request = self.request(url, &host, url_port, token)?;
        let body_contains = self.spec.body_contains.as_deref();
        let work = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| fail(FailureKind::Connect, format!("no response: {e}")))?;
            p.timings.first_byte += t.elapsed();
            let status = response.status().as_u16();
            p.status = Some(status);
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if self.spec.follow_redirects && (300..400).contains(&status) && location.is_some() {
                return Ok(location);
            }
            self.judge_status(status)?;
            p.phase = Phase::Body;
            let body = read_capped(response.into_body()).await?;
            if let Some(needle) = body_contains {
                if !contains(&body, needle.as_bytes()) {
                    return Err(fail(
                        FailureKind::Body,
                        format!(
                            "the body does not contain {needle:?} within its first {} KiB",
                            BODY_LIMIT / 1024
                        ),
                    ));
                }
            }
            Ok(None)
        };
        let mut conn = std::pin::pin!(conn);
        let mut work = std::pin::pin!(work);
        // Drive the connection while the request runs; the connection may
        // end first (the server closes after answering), the request then
        // finishes from what was read.
        let first = tokio::select! {
            biased;
            r = &mut work => Some(r),
            _ = &mut conn => None,
        };
        match first {
            Some(r) => r,
            None => work.await,
        }
    }

    fn request(
        &self,
        url: &Url,
        host: &str,
        port: u16,
        token: Option<&str>,
    ) -> Result<Request<Empty<Bytes>>, Failure> {
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let default_port = if url.scheme() == "https" { 443 } else { 80 };
        let host_header = match (url.host(), port == default_port) {
            (Some(url::Host::Ipv6(_)), true) => format!("[{host}]"),
            (Some(url::Host::Ipv6(_)), false) => format!("[{host}]:{port}"),
            (_, true) => host.to_string(),
            (_, false) => format!("{host}:{port}"),
        };
        let mut builder = Request::builder()
            .method(self.spec.method.clone())
            .uri(path);
        let headers = builder.headers_mut().expect("a fresh builder has headers");
        headers.insert(
            HOST,
            HeaderValue::from_str(&host_header)
                .map_err(|_| fail(FailureKind::Connect, "bad Host header"))?,
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("route53-failover/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        for (name, value) in &self.spec.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(t) = token {
            let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                fail(
                    FailureKind::Auth,
                    "the token holds characters a header cannot carry",
                )
            })?;
            v.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, v);
        }
        builder
            .body(Empty::new())
            .map_err(|e| fail(FailureKind::Connect, format!("bad request: {e}")))
    }
}

/// Reads at most [`BODY_LIMIT`] bytes; the rest is left unread.
async fn read_capped(mut body: hyper::body::Incoming) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    while buf.len() < BODY_LIMIT {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = BODY_LIMIT - buf.len();
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(e)) => return Err(fail(FailureKind::Body, format!("reading the body: {e}"))),
        }
    }
    Ok(buf)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
