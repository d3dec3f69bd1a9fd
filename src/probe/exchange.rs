//! One HTTP exchange of a probe on a fresh connection: resolve, connect,
//! TLS, request, response, body (capped), each phase timed; and the
//! request itself (Host, credentials, no keep-alive).

use super::*;

/// Where in the probe it stands, to name the phase a timeout hit.
#[derive(Clone, Copy)]
pub(super) enum Phase {
    Dns,
    Connect,
    Tls,
    Response,
    Body,
}

impl Phase {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Phase::Dns => "resolving",
            Phase::Connect => "connecting",
            Phase::Tls => "the TLS handshake",
            Phase::Response => "waiting for the response",
            Phase::Body => "reading the body",
        }
    }
}

pub(super) struct Progress {
    pub(super) timings: Timings,
    pub(super) phase: Phase,
    pub(super) status: Option<u16>,
    /// When the first hop's leaf certificate expires (HTTPS).
    pub(super) cert_not_after: Option<SystemTime>,
}

/// When a DER certificate stops being valid; `None` if it cannot be read.
pub(super) fn not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let secs = cert.validity().not_after.timestamp();
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Errors of this host, not of the peer: no descriptor left (`EMFILE`,
/// `ENFILE`), no buffer or memory for a socket (`ENOBUFS`, `ENOMEM`), no
/// local address or ephemeral port (`EADDRNOTAVAIL`).
fn is_local(e: &std::io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    const EADDRNOTAVAIL: i32 = 99;
    matches!(
        e.raw_os_error(),
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM | EADDRNOTAVAIL)
    )
}

/// A failed connect: the member's (`connect`), or this host's (`local`).
pub(super) fn connect_failure(e: &std::io::Error) -> FailureKind {
    if is_local(e) {
        FailureKind::Local
    } else {
        FailureKind::Connect
    }
}

/// A failed lookup: a name that does not resolve is the member's (`dns`);
/// a resolver that cannot answer now (`EAI_AGAIN`, which the system
/// resolver reports only as text) or a local error is this host's.
pub(super) fn resolve_failure(e: &std::io::Error) -> FailureKind {
    let text = e.to_string();
    if is_local(e) || text.contains("Temporary failure in name resolution") {
        FailureKind::Local
    } else {
        FailureKind::Dns
    }
}

pub(super) fn fail(kind: FailureKind, detail: impl Into<String>) -> Failure {
    Failure {
        kind,
        detail: detail.into(),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Prober {
    /// One request on a fresh connection. Returns the Location to follow
    /// when this is a redirect to follow; otherwise judges the response
    /// (status first, then the body).
    pub(super) async fn exchange(
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
                .map_err(|e| fail(resolve_failure(&e), format!("{connect_host}: {e}")))?
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
        // Local only when every address failed locally: one refused
        // address (the region down) beside one this host could not reach
        // (no IPv6 here, say) is the member's failure.
        let mut all_local = true;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => {
                    all_local &= connect_failure(&e) == FailureKind::Local;
                    last_err = Some(format!("{addr}: {e}"));
                }
            }
        }
        let tcp = tcp.ok_or_else(|| {
            let kind = if all_local {
                FailureKind::Local
            } else {
                FailureKind::Connect
            };
            fail(kind, last_err.unwrap_or_else(|| "no address".into()))
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
            if first {
                p.cert_not_after = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| not_after(leaf));
            }
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
        for h in &self.spec.headers {
            // A value file that can no longer be read is the instance's
            // trouble, not the member's.
            let value = h
                .value()
                .map_err(|e| fail(FailureKind::Local, format!("header {}: {e}", h.name)))?;
            headers.insert(h.name.clone(), value);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_hosts_own_errors_are_local_not_the_members() {
        let os = std::io::Error::from_raw_os_error;
        // (errno, what a connect that fails with it is)
        let cases = [
            (24, FailureKind::Local),    // EMFILE: no descriptor left
            (23, FailureKind::Local),    // ENFILE: the system's table is full
            (99, FailureKind::Local),    // EADDRNOTAVAIL: no ephemeral port
            (105, FailureKind::Local),   // ENOBUFS
            (12, FailureKind::Local),    // ENOMEM
            (111, FailureKind::Connect), // ECONNREFUSED: the member's
            (113, FailureKind::Connect), // EHOSTUNREACH: the member's
            (110, FailureKind::Connect), // ETIMEDOUT
        ];
        for (errno, want) in cases {
            assert_eq!(connect_failure(&os(errno)), want, "errno {errno}");
        }
        // The system resolver says EAI_AGAIN only in words.
        let again = std::io::Error::other(
            "failed to lookup address information: Temporary failure in name resolution",
        );
        assert_eq!(resolve_failure(&again), FailureKind::Local);
        assert_eq!(resolve_failure(&os(24)), FailureKind::Local);
        let nxdomain = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        assert_eq!(resolve_failure(&nxdomain), FailureKind::Dns);
        assert!(!FailureKind::Local.observes() && !FailureKind::Auth.observes());
        assert!(FailureKind::Dns.observes() && FailureKind::Connect.observes());
    }
}
