//! Probe credentials: OAuth2 client-credentials tokens for APIs behind a JWT
//! authorizer. One [`TokenSource`] per distinct setting, shared by the
//! members that use it; a token is reused until shortly before it expires,
//! and refreshed in the background once most of its life has passed, so
//! probes rarely wait for the token endpoint. The client secret is read
//! from its file at each fetch (rotation needs no restart). Neither the
//! secret nor a token is ever logged or put in an error.
//!
//! A probe that cannot get a token observes nothing of its member
//! (`FailureKind::Auth` does not feed the verdict): an identity provider
//! outage must not pull regions that serve users. Status says which
//! source fails and since when.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::{ClientAuth, OAuth2Spec};

/// Why no token could be had: for the probe's `auth` failure detail.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct TokenError(String);

#[derive(Clone)]
struct Token {
    value: String,
    fetched: Instant,
    lifetime: Duration,
}

impl Token {
    /// Usable: not within the last 10% (at least 1 s) of its life.
    fn usable(&self) -> bool {
        let margin = (self.lifetime / 10).max(Duration::from_secs(1));
        self.fetched.elapsed() + margin < self.lifetime
    }

    /// Time to fetch the next one: 75% of its life has passed.
    fn stale(&self) -> bool {
        self.fetched.elapsed() >= self.lifetime * 3 / 4
    }
}

pub struct TokenSource {
    spec: OAuth2Spec,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
    /// Held while a fetch runs, so concurrent probes share one fetch.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// Since when fetches fail, and the last error; `None` while they work.
    failing: Mutex<Option<(SystemTime, String)>>,
}

/// How a token source stands, for status: probes without a token observe
/// nothing (`FailureKind::Auth`), so on-call must see why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenStatus {
    pub token_url: String,
    pub client_id: String,
    pub ok: bool,
    /// Unix seconds since fetches fail.
    pub failing_since: Option<f64>,
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
}

/// Used when the token endpoint does not say how long a token lives.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

impl TokenSource {
    fn new(spec: OAuth2Spec) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        TokenSource {
            spec,
            http,
            token: Mutex::new(None),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
            failing: Mutex::new(None),
        }
    }

    fn status(&self) -> TokenStatus {
        let failing = self
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        TokenStatus {
            token_url: self.spec.token_url.to_string(),
            client_id: self.spec.client_id.clone(),
            ok: failing.is_none(),
            failing_since: failing.as_ref().map(|(t, _)| crate::time::unix_secs(*t)),
            error: failing.map(|(_, e)| e),
        }
    }

    /// Notes a fetch's outcome for status.
    fn fetched(&self, result: &Result<String, TokenError>) {
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => *failing = None,
            Err(e) => {
                let since = failing.as_ref().map_or_else(SystemTime::now, |(t, _)| *t);
                *failing = Some((since, e.to_string()));
            }
        }
    }

    fn current(&self) -> Option<Token> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A usable token: the cached one (starting a background refresh when
    /// it is getting old), or a fresh one.
    pub async fn token(self: &Arc<Self>) -> Result<String, TokenError> {
        if let Some(t) = self.current().filter(Token::usable) {
            if t.stale() {
                if let Ok(guard) = self.fetching.clone().try_lock_owned() {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let _guard = guard;
                        if let Err(e) = me.fetch().await {
                            tracing::warn!(token_url = %me.spec.token_url, error = %e,
                                "refreshing a probe token failed; the current one is still valid");
                        }
                    });
                }
            }
            return Ok(t.value);
        }
        let _guard = self.fetching.lock().await;
        // Another probe may have fetched while this one waited.
        if let Some(t) = self.current().filter(Token::usable) {
            return Ok(t.value);
        }
        self.fetch().await
    }

    async fn fetch(&self) -> Result<String, TokenError> {
        let result = self.fetch_once().await;
        self.fetched(&result);
        result
    }

    async fn fetch_once(&self) -> Result<String, TokenError> {
        let spec = &self.spec;
        let secret = std::fs::read_to_string(&spec.client_secret_file)
            .map_err(|e| {
                TokenError(format!(
                    "cannot read {}: {e}",
                    spec.client_secret_file.display()
                ))
            })?
            .trim_end_matches(['\r', '\n'])
            .to_string();
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(a) = &spec.audience {
            form.push(("audience", a));
        }
        if let Some(s) = &spec.scope {
            form.push(("scope", s));
        }
        let mut req = self.http.post(spec.token_url.clone());
        match spec.client_auth {
            ClientAuth::Basic => req = req.basic_auth(&spec.client_id, Some(&secret)),
            ClientAuth::Post => {
                form.push(("client_id", &spec.client_id));
                form.push(("client_secret", &secret));
            }
        }
        let started = Instant::now();
        let resp =
            req.form(&form).send().await.map_err(|e| {
                TokenError(format!("token endpoint unreachable: {}", transport(&e)))
            })?;
        let status = resp.status();
        if !status.is_success() {
            // Only the OAuth2 error code is shown, never the body as such.
            let code = resp
                .json::<ErrorResponse>()
                .await
                .ok()
                .and_then(|e| e.error)
                .unwrap_or_default();
            return Err(TokenError(format!(
                "token endpoint answered {} {code}",
                status.as_u16()
            )));
        }
        let body: TokenResponse = resp
            .json()
            .await
            .map_err(|_| TokenError("token endpoint answered without an access_token".into()))?;
        let lifetime = body
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIFETIME);
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(Token {
            value: body.access_token.clone(),
            fetched: started,
            lifetime,
        });
        tracing::debug!(token_url = %spec.token_url, lifetime = ?lifetime, "probe token fetched");
        Ok(body.access_token)
    }
}

/// What went wrong on the way, without reqwest's text (it quotes the URL).
fn transport(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// The token sources of a daemon, one per distinct setting.
#[derive(Default)]
pub struct TokenSources {
    sources: Mutex<HashMap<OAuth2Spec, Arc<TokenSource>>>,
}

impl TokenSources {
    /// Every source, for status.
    pub fn status(&self) -> Vec<TokenStatus> {
        let map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<TokenStatus> = map.values().map(|s| s.status()).collect();
        all.sort_by(|a, b| (&a.token_url, &a.client_id).cmp(&(&b.token_url, &b.client_id)));
        all
    }

    pub fn get(&self, spec: &OAuth2Spec) -> Arc<TokenSource> {
        let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(spec.clone())
            .or_insert_with(|| Arc::new(TokenSource::new(spec.clone())))
            .clone()
    }
}
