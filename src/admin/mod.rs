//! On-call's routes: `POST /admin/{drain,undrain,freeze,unfreeze,retire}` with a
//! JSON body ([`AdminRequest`]). Off unless `admin.token_file` is set:
//! then every route answers 404, as if it did not exist. A call carries
//! `Authorization: Bearer <token>`; the token is read from the file on each
//! call (a rotated Secret takes effect at once) and compared in constant
//! time; a wrong or missing one gets 401 and a log line without it.
//!
//! Every call is counted (`admin_actions_total{action,result}`), and an
//! action is an event (logged with who and why). With `ha` any instance
//! takes the call and writes the control itself (`controller::tasks::control_reader`).
//!
//! Answers: 200 done, 400 bad input (the field and value named), 401, 404
//! (no such member or record), 409 refused (the last member), 413 a body
//! over 16 KiB (read only after the token is checked), 502 when the
//! control was not written (Route53, or the state store when there is
//! one: `controller::state::controls_kept`).

mod action;
mod actions;
mod retire;

pub use action::{AdminAction, UnknownAction};

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::read_token;
use crate::decide::controls::Control;
use crate::provider::Provider;
use crate::reload::Current;

/// The body of every admin call; each action reads the fields it needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The record's type, when the name has several.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub rtype: Option<String>,
    /// A drained member: its region (or set identifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long (`2h`); default 1h, at most 7 days.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub lasts: Option<String>,
    #[serde(default)]
    pub by: String,
    /// A drain below `min_healthy` and past `max_withdrawn`.
    #[serde(default)]
    pub force: bool,
    /// `retire`: the zone that holds the record (default: the configured
    /// zone whose name ends the record's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// The answer to every admin call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminAnswer {
    pub ok: bool,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
}

const RESULTS: [&str; 5] = ["ok", "refused", "invalid", "unauthorized", "error"];

struct Admin {
    current: Arc<Current>,
    provider: Arc<dyn Provider>,
}

pub fn router(current: Arc<Current>, provider: Arc<dyn Provider>) -> Router {
    let rt = current.runtime();
    if rt.config.admin.is_some() {
        // Every series from the start, for alerts on refusals.
        for action in AdminAction::ALL {
            for result in RESULTS {
                rt.metrics
                    .admin
                    .actions_total
                    .with_label_values(&[action.as_str(), result]);
            }
        }
    }
    let admin = Arc::new(Admin { current, provider });
    Router::new()
        .route("/admin/{action}", any(action))
        .with_state(admin)
}

/// A refusal: the status, the metric's result and what to say.
struct Refusal(StatusCode, &'static str, String);

impl Refusal {
    fn new(status: StatusCode, result: &'static str, message: impl Into<String>) -> Self {
        Refusal(status, result, message.into())
    }
}

fn answer(status: StatusCode, message: String, control: Option<Control>) -> Response {
    let body = AdminAnswer {
        ok: status.is_success(),
        message,
        control,
    };
    (status, Json(body)).into_response()
}

/// The most an admin body may hold; read only once the token is checked,
/// so an unauthenticated client cannot make the daemon buffer anything.
pub const BODY_LIMIT: usize = 16 * 1024;

async fn action(
    State(admin): State<Arc<Admin>>,
    Path(action): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rt = admin.current.runtime();
    // Off: nothing here, whatever the method.
    let (Some(settings), Ok(action)) = (rt.config.admin.as_ref(), action.parse::<AdminAction>())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    }
    let count = |result: &str| {
        rt.metrics
            .admin
            .actions_total
            .with_label_values(&[action.as_str(), result])
            .inc()
    };
    match authorized(&headers, &settings.token_file) {
        Ok(true) => {}
        Ok(false) => {
            warn!(
                action = action.as_str(),
                "admin call refused: missing or wrong bearer token"
            );
            count("unauthorized");
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(AdminAnswer {
                    ok: false,
                    message: "missing or wrong bearer token".into(),
                    control: None,
                }),
            )
                .into_response();
        }
        Err(e) => {
            warn!(action = action.as_str(), error = %e, "admin call refused: the token file cannot be read");
            count("error");
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the admin token file cannot be read; see the daemon's log".into(),
                None,
            );
        }
    }
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            count("invalid");
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body: larger than {BODY_LIMIT} bytes"),
                None,
            );
        }
    };
    let request = match parse_request(&body) {
        Ok(r) => r,
        Err(message) => {
            count("invalid");
            return answer(StatusCode::BAD_REQUEST, message, None);
        }
    };
    let calls = rt
        .calls(&admin.provider)
        .unfenced()
        .retried(3)
        .scoped("admin");
    let done = match action {
        AdminAction::Drain => actions::drain(&rt, &calls, &request).await,
        AdminAction::Undrain => actions::undrain(&rt, &calls, &request).await,
        AdminAction::Freeze => actions::freeze(&rt, &calls, &request).await,
        AdminAction::Unfreeze => actions::unfreeze(&rt, &calls, &request).await,
        AdminAction::Retire => retire::retire(&rt, &calls, &request).await,
        AdminAction::Practice => actions::practice(&rt, &calls, &request).await,
        AdminAction::StopPractice => actions::stop_practice(&rt, &calls, &request).await,
    };
    match done {
        Ok((message, control)) => {
            count("ok");
            answer(StatusCode::OK, message, control)
        }
        Err(Refusal(status, result, message)) => {
            warn!(action = action.as_str(), by = %request.by, error = %message, "admin call refused");
            count(result);
            answer(status, message, None)
        }
    }
}

/// The body as an [`AdminRequest`]; a bad one is named by its field:
/// `reason: invalid type: integer `42`, expected a string`.
fn parse_request(body: &[u8]) -> Result<AdminRequest, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        format!(
            "the body: {}",
            text.split(" at line ").next().unwrap_or(&text)
        )
    })?;
    if !value.is_object() {
        return Err(
            "the body: must be a JSON object (record, type, region, reason, for, by, force)".into(),
        );
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends where in the text it stopped; the field is
        // what on-call needs.
        let text = inner.to_string();
        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
        if path == "." || path.is_empty() {
            format!("the body: {text}")
        } else {
            format!("{path}: {text}")
        }
    })
}

/// The credentials of an `Authorization: Bearer <token>` header; the scheme
/// is matched case-insensitively (RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// Whether the call carries the token in `file`, compared in constant time.
fn authorized(headers: &HeaderMap, file: &std::path::Path) -> Result<bool, String> {
    let token = read_token(file)?;
    let given = bearer(headers).unwrap_or("");
    Ok(same_secret(given.as_bytes(), token.as_bytes()))
}

/// Compares digests, so neither the time nor the length tells how much of
/// a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let da = ring::digest::digest(&ring::digest::SHA256, a);
    let db = ring::digest::digest(&ring::digest::SHA256, b);
    da.as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_is_named_by_its_field() {
        let cases = [
            (
                r#"{"reason": 42}"#,
                "reason: invalid type: integer `42`, expected a string",
            ),
            (
                r#"{"force": "yes"}"#,
                "force: invalid type: string \"yes\", expected a boolean",
            ),
            (
                r#"{"region": "eu-west-1", "colour": 1}"#,
                "colour: unknown field `colour`",
            ),
            ("[1]", "the body: must be a JSON object"),
            ("{", "the body: EOF while parsing an object"),
        ];
        for (body, want) in cases {
            let got = parse_request(body.as_bytes()).unwrap_err();
            assert!(got.starts_with(want), "{body}: {got}");
        }
        assert!(parse_request(br#"{"record": "a", "by": "x"}"#).is_ok());
    }

    #[test]
    fn the_bearer_scheme_is_matched_whatever_its_case() {
        let mut h = HeaderMap::new();
        for (value, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearerabc", None),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer(&h), want, "{value:?}");
        }
    }
}
