//! `probe` (under `defaults`, a record and a member, merged key by key):
//! the request, what to expect, timings, rise/fall, OAuth2 credentials.
//! Here the request, its TLS settings and the schedule; `expect` (what a
//! good answer is) and `auth` (OAuth2) are sections of their own.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use url::Url;

mod auth;
mod expect;

pub use auth::{ClientAuth, OAuth2Spec};
pub use expect::BaselineSettings;

use super::raw::RawProbe;
use super::*;

const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MIN_TIMEOUT: Duration = Duration::from_millis(10);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RISE: i64 = 2;
const DEFAULT_FALL: i64 = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub url: Url,
    /// Where the TCP connection goes instead of the URL's host; the URL's
    /// host stays the Host header and the TLS SNI.
    pub connect_to: Option<(String, u16)>,
    pub method: Method,
    /// Values may hold tokens: never shown, and read again when a
    /// `${file:...}` they name changes.
    pub headers: Vec<HeaderSpec>,
    /// Accepted status codes; empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub body_contains: Option<String>,
    /// A probe answering slower than this fails with reason `slow` (a
    /// brownout is an outage for an API); `None`: only the timeout.
    pub max_latency: Option<Duration>,
    /// A good answer far slower than the member's own baseline fails with
    /// reason `slow` (`decide::baseline`); `None`: off.
    pub slow_vs_baseline: Option<BaselineSettings>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub interval: Duration,
    /// While a run may change the verdict (a failure of a healthy member,
    /// a success of an unhealthy one), the next probes come this often
    /// (HAProxy's `fastinter`).
    pub fast_interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub follow_redirects: bool,
    pub auth: Option<OAuth2Spec>,
}

/// One probe header: its name and its value, a [`Template`] (a
/// `${file:...}` in it follows the file).
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderSpec {
    pub name: HeaderName,
    pub value: Template,
}

impl HeaderSpec {
    /// The value to send now, marked sensitive (kept out of `Debug`).
    pub fn value(&self) -> Result<HeaderValue, String> {
        let text = self.value.render()?;
        // The value is not echoed: it may be a secret read from a file.
        let mut v = HeaderValue::from_str(&text)
            .map_err(|_| "the value holds characters a header cannot carry".to_string())?;
        v.set_sensitive(true);
        Ok(v)
    }
}

impl Validator {
    pub(super) fn probe(&mut self, path: &str, p: &RawProbe) -> Option<ProbeSpec> {
        let url = match &p.url {
            None => {
                self.err(format!("{path}.url"), "missing (required)");
                None
            }
            Some(s) => match Url::parse(s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                    Some(u)
                }
                Ok(_) => {
                    self.err(
                        format!("{path}.url"),
                        format!("{} must be an http:// or https:// URL with a host", q(s)),
                    );
                    None
                }
                Err(e) => {
                    self.err(format!("{path}.url"), format!("{} is not a URL: {e}", q(s)));
                    None
                }
            },
        };
        let connect_to = p
            .connect_to
            .as_deref()
            .and_then(|s| match split_host_port(s) {
                Some(hp) => Some(hp),
                None => {
                    self.err(
                        format!("{path}.connect_to"),
                        format!("{} must be host:port", q(s)),
                    );
                    None
                }
            });
        if let (Some(u), Some((_, port))) = (&url, &connect_to) {
            if let Some(explicit) = u.port() {
                if explicit != *port {
                    self.err(
                        format!("{path}.connect_to"),
                        format!(
                            "port {port} differs from the port {explicit} in the url; give the port in one place"
                        ),
                    );
                }
            }
        }
        let method_s = p.method.as_deref().unwrap_or("GET");
        let method = match Method::from_bytes(method_s.to_ascii_uppercase().as_bytes()) {
            Ok(m) => Some(m),
            Err(_) => {
                self.err(
                    format!("{path}.method"),
                    format!("{} is not an HTTP method", q(method_s)),
                );
                None
            }
        };
        let mut headers = Vec::new();
        for (name, value) in p.headers.iter().flatten() {
            let hpath = format!("{path}.headers.{name}");
            let Ok(hn) = HeaderName::from_bytes(name.as_bytes()) else {
                self.err(hpath, format!("{} is not a header name", q(name)));
                continue;
            };
            let Some(parts) = self.template(&hpath, value) else {
                continue;
            };
            let header = HeaderSpec {
                name: hn,
                value: Template::new(parts),
            };
            match header.value() {
                Ok(_) => headers.push(header),
                Err(e) => self.err(hpath, e),
            }
        }
        let tls = p.tls.clone().unwrap_or_default();
        let ca_file = tls.ca_file.as_deref().map(|f| self.base_dir.join(f));
        if let Some(f) = &ca_file {
            if let Err(e) = std::fs::metadata(f) {
                self.err(
                    format!("{path}.tls.ca_file"),
                    format!("{} cannot be read: {e}", q(&f.display().to_string())),
                );
            }
        }
        let insecure = tls.insecure_skip_verify.unwrap_or(false);
        if insecure {
            self.warnings.push(format!(
                "{path}.tls.insecure_skip_verify: certificates are not verified; a probe may pass against the wrong server"
            ));
        }
        let (interval, fast_interval, timeout) = self.schedule(path, p);
        let expect = p.expect.clone().unwrap_or_default();
        let (expect_status, max_latency, slow_vs_baseline) =
            self.expect(&format!("{path}.expect"), &expect, timeout);
        let auth = match p.auth.as_ref().map(|a| &a.oauth2_client_credentials) {
            None => Some(None),
            Some(None) => {
                self.err(
                    format!("{path}.auth"),
                    "give oauth2_client_credentials (the only kind)",
                );
                None
            }
            Some(Some(o)) => self
                .oauth2(&format!("{path}.auth.oauth2_client_credentials"), o)
                .map(Some),
        };
        let rise = self.threshold(&format!("{path}.rise"), p.rise.unwrap_or(DEFAULT_RISE));
        let fall = self.threshold(&format!("{path}.fall"), p.fall.unwrap_or(DEFAULT_FALL));
        Some(ProbeSpec {
            url: url?,
            connect_to,
            method: method?,
            headers,
            expect_status,
            body_contains: expect.body_contains,
            max_latency: max_latency?,
            slow_vs_baseline: slow_vs_baseline?,
            ca_file,
            insecure_skip_verify: insecure,
            interval: interval?,
            fast_interval: fast_interval?,
            timeout: timeout?,
            rise: rise?,
            fall: fall?,
            follow_redirects: p.follow_redirects.unwrap_or(false),
            auth: auth?,
        })
    }

    fn threshold(&mut self, path: &str, v: i64) -> Option<u32> {
        if (1..=10).contains(&v) {
            Some(v as u32)
        } else {
            self.err(path, format!("{v} must be between 1 and 10"));
            None
        }
    }
}

/// The probe's schedule: `interval`, `fast_interval` and `timeout` depend
/// on each other's values (a timeout shorter than the interval).
impl Validator {
    /// `interval`, `fast_interval` and `timeout`, each checked against the
    /// others.
    fn schedule(
        &mut self,
        path: &str,
        p: &RawProbe,
    ) -> (Option<Duration>, Option<Duration>, Option<Duration>) {
        let interval = self.duration(
            &format!("{path}.interval"),
            p.interval.as_deref(),
            DEFAULT_INTERVAL,
        );
        let timeout = self.duration(
            &format!("{path}.timeout"),
            p.timeout.as_deref(),
            DEFAULT_TIMEOUT,
        );
        if let Some(i) = interval {
            if i < MIN_INTERVAL {
                self.err(
                    format!("{path}.interval"),
                    format!(
                        "{} must be at least 100ms",
                        q(p.interval.as_deref().unwrap_or_default())
                    ),
                );
            }
        }
        let fast_interval = match (p.fast_interval.as_deref(), interval) {
            // A quarter of the interval, at least 100ms.
            (None, Some(i)) => Some((i / 4).max(MIN_INTERVAL).min(i)),
            (None, None) => None,
            (Some(s), i) => {
                let key = format!("{path}.fast_interval");
                match self.duration(&key, Some(s), Duration::ZERO) {
                    Some(f) if f < MIN_INTERVAL => {
                        self.err(key, format!("{} must be at least 100ms", q(s)));
                        None
                    }
                    Some(f) if i.is_some_and(|i| f > i) => {
                        let i = i.unwrap_or_default();
                        self.err(
                            key,
                            format!(
                                "{} must be at most the interval ({})",
                                q(s),
                                humantime::format_duration(i)
                            ),
                        );
                        None
                    }
                    other => other,
                }
            }
        };
        if let Some(t) = timeout {
            if t < MIN_TIMEOUT {
                self.err(
                    format!("{path}.timeout"),
                    format!(
                        "{} must be at least 10ms",
                        q(p.timeout.as_deref().unwrap_or_default())
                    ),
                );
            }
        }
        if let (Some(i), Some(t)) = (interval, timeout) {
            if t >= i {
                self.err(
                    format!("{path}.timeout"),
                    format!(
                        "{} must be shorter than the interval ({})",
                        humantime::format_duration(t),
                        humantime::format_duration(i)
                    ),
                );
            }
        }
        (interval, fast_interval, timeout)
    }
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some((sa.ip().to_string(), sa.port()));
    }
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if host.is_empty() || host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
        return None;
    }
    Some((host.to_string(), port))
}
