//! `probe` (under `defaults`, a record and a member, merged key by key):
//! the request, what to expect, timings, rise/fall, OAuth2 credentials.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use url::Url;

use super::raw::{self, RawBaseline, RawProbe};
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

/// OAuth2 client credentials for a probe; holds where the secret is, not
/// the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OAuth2Spec {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret_file: PathBuf,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// client_secret_basic: HTTP Basic with the client id and secret.
    Basic,
    /// client_secret_post: both in the form.
    Post,
}

/// `expect.slow_vs_baseline`: see `decide::baseline`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineSettings {
    /// Slow above this many times the baseline...
    pub factor: f64,
    /// ...and this much above it.
    pub min_excess: Duration,
    /// The history the baseline is the median of.
    pub window: Duration,
    /// The history needed before the rule counts.
    pub warm_up: Duration,
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
}

/// The probe's schedule and what a good answer is: the parts of the
/// section that depend on each other's values (a timeout shorter than the
/// interval, `max_latency` shorter than the timeout).
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

    /// `expect` (at `path`): the statuses, `max_latency` and the baseline
    /// rule; `None` for a value in error.
    fn expect(
        &mut self,
        path: &str,
        expect: &raw::RawExpect,
        timeout: Option<Duration>,
    ) -> (
        Vec<u16>,
        Option<Option<Duration>>,
        Option<Option<BaselineSettings>>,
    ) {
        let mut expect_status = Vec::new();
        for (k, s) in expect.status.iter().flatten().enumerate() {
            if (100..=599).contains(s) {
                expect_status.push(*s as u16);
            } else {
                self.err(
                    format!("{path}.status[{k}]"),
                    format!("{s} is not an HTTP status (100-599)"),
                );
            }
        }
        let max_latency = match expect.max_latency.as_deref() {
            None => Some(None),
            Some(s) => {
                let key = format!("{path}.max_latency");
                match self.duration(&key, Some(s), Duration::ZERO) {
                    Some(d) if d < Duration::from_millis(1) => {
                        self.err(key, format!("{} must be at least 1ms", q(s)));
                        None
                    }
                    Some(d) if timeout.is_some_and(|t| d >= t) => {
                        let t = timeout.unwrap_or_default();
                        self.err(
                            key,
                            format!(
                                "{} must be shorter than the timeout ({}): a slower answer times out first",
                                q(s),
                                humantime::format_duration(t)
                            ),
                        );
                        None
                    }
                    Some(d) => Some(Some(d)),
                    None => None,
                }
            }
        };
        let slow_vs_baseline = match &expect.slow_vs_baseline {
            None => Some(None),
            Some(b) => self
                .baseline(&format!("{path}.slow_vs_baseline"), b)
                .map(Some),
        };
        (expect_status, max_latency, slow_vs_baseline)
    }

    fn oauth2(&mut self, path: &str, o: &raw::RawOAuth2) -> Option<OAuth2Spec> {
        let token_url = match o.token_url.as_deref() {
            None => {
                self.err(format!("{path}.token_url"), "missing (required)");
                None
            }
            Some(s) => match Url::parse(s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
                _ => {
                    self.err(
                        format!("{path}.token_url"),
                        format!("{} is not an http(s) URL", q(s)),
                    );
                    None
                }
            },
        };
        let client_id = self
            .required(&format!("{path}.client_id"), &o.client_id)
            .cloned();
        let secret = self
            .required(&format!("{path}.client_secret_file"), &o.client_secret_file)
            .map(|f| self.base_dir.join(f));
        if let Some(f) = &secret {
            if let Err(e) = std::fs::metadata(f) {
                self.err(
                    format!("{path}.client_secret_file"),
                    format!("{} cannot be read: {e}", q(&f.display().to_string())),
                );
            }
        }
        let client_auth = match o.client_auth.as_deref() {
            None | Some("basic") => Some(ClientAuth::Basic),
            Some("post") => Some(ClientAuth::Post),
            Some(other) => {
                self.err(
                    format!("{path}.client_auth"),
                    format!("{} must be basic or post", q(other)),
                );
                None
            }
        };
        Some(OAuth2Spec {
            token_url: token_url?,
            client_id: client_id?,
            client_secret_file: secret?,
            audience: o.audience.clone(),
            scope: o.scope.clone(),
            client_auth: client_auth?,
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

impl Validator {
    fn baseline(&mut self, path: &str, b: &RawBaseline) -> Option<BaselineSettings> {
        let factor = b.factor.unwrap_or(3.0);
        let mut ok = true;
        if !(factor > 1.0 && factor <= 100.0) {
            self.err(
                format!("{path}.factor"),
                format!("{factor} must be above 1 and at most 100"),
            );
            ok = false;
        }
        let min_excess = self.duration(
            &format!("{path}.min_excess"),
            b.min_excess.as_deref(),
            Duration::from_millis(100),
        );
        let window = self.duration(
            &format!("{path}.window"),
            b.window.as_deref(),
            Duration::from_secs(3600),
        );
        let warm_up = self.duration(
            &format!("{path}.warm_up"),
            b.warm_up.as_deref(),
            Duration::from_secs(300),
        );
        let (min_excess, window, warm_up) = (min_excess?, window?, warm_up?);
        if window < Duration::from_secs(60) {
            self.err(
                format!("{path}.window"),
                format!(
                    "{} must be at least 1m",
                    q(b.window.as_deref().unwrap_or_default())
                ),
            );
            ok = false;
        }
        if ok && warm_up > window {
            let given = match b.warm_up.as_deref() {
                Some(w) => q(w),
                None => format!("the default {}", humantime::format_duration(warm_up)),
            };
            self.err(
                format!("{path}.warm_up"),
                format!(
                    "{given} must be at most the window ({})",
                    humantime::format_duration(window)
                ),
            );
            ok = false;
        }
        ok.then_some(BaselineSettings {
            factor,
            min_excess,
            window,
            warm_up,
        })
    }
}
