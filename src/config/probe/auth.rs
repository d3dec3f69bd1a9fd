//! `probe.auth.oauth2_client_credentials`: the credentials a probe gets
//! its bearer token with (`crate::probe::auth` fetches and caches it).

use std::path::PathBuf;

use url::Url;

use crate::config::{q, raw, Validator};

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

impl Validator {
    pub(super) fn oauth2(&mut self, path: &str, o: &raw::RawOAuth2) -> Option<OAuth2Spec> {
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
}
