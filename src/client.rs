//! The CLI's side of a running daemon: `status`, `events`, and on-call's
//! admin calls (`drain`, `undrain`, `freeze`, `unfreeze`).

use std::path::Path;
use std::time::Duration;

use crate::admin::{AdminAnswer, AdminRequest};
use crate::events::Event;
use crate::status::Status;

/// The environment variable the admin commands read the token from when
/// `--token-file` is not given.
pub const TOKEN_ENV: &str = "ROUTE53_FAILOVER_ADMIN_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The command's input is wrong (exit 2).
    #[error("{0}")]
    BadInput(String),
    /// The daemon could not be reached, or said no (exit 1).
    #[error("{0}")]
    Failed(String),
}

use ClientError::{BadInput, Failed};

/// `path` on the daemon at `url`.
pub fn endpoint(url: &str, path: &str) -> Result<url::Url, ClientError> {
    let base =
        url::Url::parse(url).map_err(|e| BadInput(format!("--url: {url:?} is not a URL: {e}")))?;
    base.join(path).map_err(|e| BadInput(format!("--url: {e}")))
}

fn client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Failed(e.to_string()))
}

async fn get<T: serde::de::DeserializeOwned>(
    endpoint: &url::Url,
    what: &str,
) -> Result<T, ClientError> {
    let resp = client()?
        .get(endpoint.clone())
        .send()
        .await
        .map_err(|e| Failed(format!("cannot reach {endpoint}: {e}")))?;
    if !resp.status().is_success() {
        return Err(Failed(format!("{endpoint} answered {}", resp.status())));
    }
    resp.json()
        .await
        .map_err(|e| Failed(format!("{endpoint} did not answer with {what}: {e}")))
}

pub async fn fetch_status(endpoint: &url::Url) -> Result<Status, ClientError> {
    get(endpoint, "a status document").await
}

/// The daemon's events, newest first, after event `since`.
pub async fn fetch_events(url: &str, since: Option<u64>) -> Result<Vec<Event>, ClientError> {
    let mut endpoint = endpoint(url, "events")?;
    if let Some(s) = since {
        endpoint
            .query_pairs_mut()
            .append_pair("since", &s.to_string());
    }
    get(&endpoint, "a list of events").await
}

/// The admin token: from `file` when given, else from `ROUTE53_FAILOVER_ADMIN_TOKEN`.
pub fn admin_token(file: Option<&Path>) -> Result<String, ClientError> {
    let token = match file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| BadInput(format!("--token-file: cannot read {}: {e}", f.display())))?,
        None => std::env::var(TOKEN_ENV).map_err(|_| {
            BadInput(format!(
                "no admin token: give --token-file FILE or set {TOKEN_ENV}"
            ))
        })?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(BadInput("the admin token is empty".into()));
    }
    Ok(token)
}

/// Sends one admin call. 400 and 404 (an unknown member) are bad input;
/// 401, 409 and the rest are failures, with the daemon's words.
pub async fn admin(
    url: &str,
    action: &str,
    token: &str,
    request: &AdminRequest,
) -> Result<AdminAnswer, ClientError> {
    let endpoint = endpoint(url, &format!("admin/{action}"))?;
    let resp = client()?
        .post(endpoint.clone())
        .bearer_auth(token)
        .json(request)
        .send()
        .await
        .map_err(|e| Failed(format!("cannot reach {endpoint}: {e}")))?;
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let answer: Option<AdminAnswer> = serde_json::from_slice(&body).ok();
    match (status.as_u16(), answer) {
        (200, Some(a)) => Ok(a),
        (400 | 404, Some(a)) => Err(BadInput(a.message)),
        (404, None) => Err(Failed(format!(
            "{endpoint} answered 404: the daemon's admin routes are off (set admin.token_file)"
        ))),
        (_, Some(a)) => Err(Failed(format!("{status}: {}", a.message))),
        (_, None) => Err(Failed(format!("{endpoint} answered {status}"))),
    }
}

/// Events as lines: time, kind, subject, message.
pub fn events_table(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        let at = std::time::UNIX_EPOCH + Duration::from_secs_f64(e.at.max(0.0));
        let subject = match (&e.record, &e.region) {
            (Some(r), Some(g)) => format!("{r} {g}"),
            (Some(r), None) => r.clone(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{}  {:<13} {:<28} {}\n",
            humantime::format_rfc3339_seconds(at),
            e.event,
            subject,
            e.message
        ));
    }
    if events.is_empty() {
        out.push_str("no events\n");
    }
    out
}
