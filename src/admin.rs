//! On-call's routes: `POST /admin/{drain,undrain,freeze,unfreeze}` with a
//! JSON body ([`AdminRequest`]). Off unless `admin.token_file` is set:
//! then every route answers 404, as if it did not exist. A call carries
//! `Authorization: Bearer <token>`; the token is read from the file on each
//! call (a rotated Secret takes effect at once) and compared in constant
//! time; a wrong or missing one gets 401 and a log line without it.
//!
//! Every call is counted (`admin_actions_total{action,result}`), and an
//! action is an event (logged with who and why). With `ha` any instance
//! takes the call and writes the control itself (`controller::controls`).
//!
//! Answers: 200 done, 400 bad input (the field and value named), 401, 404
//! (no such member or record), 409 refused (the last member), 502 when
//! Route53 did not take the write.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::{read_token, Config, RecordConfig};
use crate::controller::{control_event, Calls, RateLimiter, Runtime};
use crate::decide::controls::{Control, Scope, DEFAULT_FOR};
use crate::events::Event;
use crate::provider::{normalize_name, Provider};
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
}

/// The answer to every admin call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminAnswer {
    pub ok: bool,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
}

const ACTIONS: [&str; 4] = ["drain", "undrain", "freeze", "unfreeze"];
const RESULTS: [&str; 5] = ["ok", "refused", "invalid", "unauthorized", "error"];

struct Admin {
    current: Arc<Current>,
    provider: Arc<dyn Provider>,
    limiter: Arc<RateLimiter>,
}

pub fn router(current: Arc<Current>, provider: Arc<dyn Provider>) -> Router {
    let rt = current.runtime();
    if rt.config.admin.is_some() {
        // Every series from the start, for alerts on refusals.
        for action in ACTIONS {
            for result in RESULTS {
                rt.metrics
                    .admin_actions_total
                    .with_label_values(&[action, result]);
            }
        }
    }
    let rps = rt.config.provider.max_requests_per_second;
    let admin = Arc::new(Admin {
        current,
        provider,
        limiter: Arc::new(RateLimiter::new(rps)),
    });
    Router::new()
        .route("/admin/{action}", any(action))
        .with_state(admin)
}

/// A refusal: the status and what to say.
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

async fn action(
    State(admin): State<Arc<Admin>>,
    Path(action): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rt = admin.current.runtime();
    // Off: nothing here, whatever the method.
    let (Some(settings), Some(action)) = (
        rt.config.admin.as_ref(),
        ACTIONS.iter().find(|a| **a == action),
    ) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    }
    let count = |result: &str| {
        rt.metrics
            .admin_actions_total
            .with_label_values(&[action, result])
            .inc()
    };
    match authorized(&headers, &settings.token_file) {
        Ok(true) => {}
        Ok(false) => {
            warn!(action, "admin call refused: missing or wrong bearer token");
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
            warn!(action, error = %e, "admin call refused: the token file cannot be read");
            count("error");
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the admin token file cannot be read; see the daemon's log".into(),
                None,
            );
        }
    }
    let request: AdminRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            count("invalid");
            return answer(StatusCode::BAD_REQUEST, format!("the body: {e}"), None);
        }
    };
    let calls = Calls::new(
        admin.provider.clone(),
        admin.limiter.clone(),
        rt.metrics.clone(),
        None,
    )
    .retried(3)
    .scoped("admin");
    let done = match *action {
        "drain" => drain(&rt, &calls, &request).await,
        "undrain" => undrain(&rt, &calls, &request).await,
        "freeze" => freeze(&rt, &calls, &request).await,
        _ => unfreeze(&rt, &calls, &request).await,
    };
    match done {
        Ok((message, control)) => {
            count("ok");
            answer(StatusCode::OK, message, control)
        }
        Err(Refusal(status, result, message)) => {
            warn!(action, by = %request.by, error = %message, "admin call refused");
            count(result);
            answer(status, message, None)
        }
    }
}

/// Whether the call carries the token in `file`, compared in constant time.
fn authorized(headers: &HeaderMap, file: &std::path::Path) -> Result<bool, String> {
    let token = read_token(file)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    Ok(same_secret(given.trim().as_bytes(), token.as_bytes()))
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

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, "invalid", message)
}

fn not_found(message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::NOT_FOUND, "invalid", message)
}

fn route53_failed(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        StatusCode::BAD_GATEWAY,
        "error",
        format!("Route53 did not take the write: {e}"),
    )
}

fn required<'a>(value: &'a Option<String>, key: &str) -> Result<&'a str, Refusal> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| invalid(format!("{key}: missing (required)")))
}

/// Who, why and how long, checked.
fn who_why_how_long(r: &AdminRequest, reason: &str) -> Result<Duration, Refusal> {
    let lasts = match &r.lasts {
        None => DEFAULT_FOR,
        Some(s) => humantime::parse_duration(s.trim())
            .map_err(|_| invalid(format!("for: {s:?} is not a duration (write e.g. 30m, 2h)")))?,
    };
    Control::check_input(&r.by, reason, lasts).map_err(invalid)?;
    Ok(lasts)
}

/// The records of the config with this name, and of this type if given.
fn records<'c>(config: &'c Config, r: &AdminRequest) -> Result<Vec<&'c RecordConfig>, Refusal> {
    let name = normalize_name(required(&r.record, "record")?);
    let found: Vec<&RecordConfig> = config
        .records
        .iter()
        .filter(|c| c.name == name)
        .filter(|c| {
            r.rtype
                .as_deref()
                .is_none_or(|t| c.rtype.to_string().eq_ignore_ascii_case(t))
        })
        .collect();
    if found.is_empty() {
        return Err(not_found(format!(
            "record: {name:?}{} is not in the config",
            r.rtype
                .as_deref()
                .map(|t| format!(" type {t}"))
                .unwrap_or_default()
        )));
    }
    Ok(found)
}

/// The member a drain or undrain names: `(record, its index)`.
fn member<'c>(config: &'c Config, r: &AdminRequest) -> Result<(&'c RecordConfig, usize), Refusal> {
    let found = records(config, r)?;
    let [record] = found[..] else {
        return Err(invalid(format!(
            "type: {} has several types ({}); say which",
            found[0].name,
            found
                .iter()
                .map(|r| r.rtype.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let region = required(&r.region, "region")?;
    // A set identifier names one member; a region may name several.
    if let Some(at) = record
        .members
        .iter()
        .position(|m| m.set_identifier == region)
    {
        return Ok((record, at));
    }
    let named: Vec<usize> = (0..record.members.len())
        .filter(|&i| record.members[i].region == region)
        .collect();
    let at = match named[..] {
        [at] => at,
        [] => {
            return Err(not_found(format!(
                "region: {region:?} is not a member of {} {} ({})",
                record.name,
                record.rtype,
                record
                    .members
                    .iter()
                    .map(|m| m.region.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        _ => {
            return Err(invalid(format!(
                "region: {region:?} names {} members of {} {}; give the set identifier ({})",
                named.len(),
                record.name,
                record.rtype,
                named
                    .iter()
                    .map(|&i| record.members[i].set_identifier.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    Ok((record, at))
}

fn drain_scope(record: &RecordConfig, at: usize, force: bool) -> Scope {
    let m = &record.members[at];
    Scope::Drain {
        record: record.name.clone(),
        rtype: record.rtype.to_string(),
        set_identifier: m.set_identifier.clone(),
        region: m.region.clone(),
        force,
    }
}

type Done = Result<(String, Option<Control>), Refusal>;

async fn drain(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
    let (record, at) = member(&rt.config, r)?;
    let reason = required(&r.reason, "reason")?;
    let lasts = who_why_how_long(r, reason)?;
    // Not the record's last member not drained: something must stay.
    let now = SystemTime::now();
    let controls = rt.controls.snapshot();
    let others = record
        .members
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            *i != at && controls.drain_of(record, m, now) == crate::decide::policy::Drain::No
        })
        .count();
    if others == 0 {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "refused",
            format!(
                "refused: {} is the last member of {} {} not drained; a record is never emptied",
                record.members[at].region, record.name, record.rtype
            ),
        ));
    }
    let control = Control::new(drain_scope(record, at, r.force), &r.by, reason, now, lasts);
    put(
        rt,
        calls,
        control,
        "withdrawn while the safety rules allow (status says)",
    )
    .await
}

/// Writes a control, says so in the timeline, and answers with `what`.
async fn put(rt: &Runtime, calls: &Calls, control: Control, what: &str) -> Done {
    rt.controls
        .put(calls, rt.config.control_zone(), control.clone())
        .await
        .map_err(route53_failed)?;
    rt.events
        .emit(control_event(&control, "through this instance"));
    let until = humantime::format_rfc3339_seconds(control.until());
    Ok((
        format!("{} until {until}: {what}", control.subject()),
        Some(control),
    ))
}

async fn undrain(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
    check_by(r)?;
    let (record, at) = member(&rt.config, r)?;
    let label = Control::new(
        drain_scope(record, at, false),
        "-",
        "-",
        SystemTime::now(),
        DEFAULT_FOR,
    )
    .label();
    let removed = rt
        .controls
        .remove(calls, rt.config.control_zone(), &label)
        .await
        .map_err(route53_failed)?;
    let who = format!(
        "{} {} {}",
        record.name, record.rtype, record.members[at].region
    );
    ended(rt, r, "undrain", &who, removed)
}

async fn freeze(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
    let record = match &r.record {
        Some(_) => Some(records(&rt.config, r)?[0].name.clone()),
        None => None,
    };
    let reason = required(&r.reason, "reason")?;
    let lasts = who_why_how_long(r, reason)?;
    let control = Control::new(
        Scope::Freeze { record },
        &r.by,
        reason,
        SystemTime::now(),
        lasts,
    );
    put(
        rt,
        calls,
        control,
        "nothing in its scope changes; status shows the plan held back",
    )
    .await
}

async fn unfreeze(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
    check_by(r)?;
    let record = match &r.record {
        Some(_) => Some(records(&rt.config, r)?[0].name.clone()),
        None => None,
    };
    let probe = Control::new(
        Scope::Freeze { record },
        "-",
        "-",
        SystemTime::now(),
        DEFAULT_FOR,
    );
    let removed = rt
        .controls
        .remove(calls, rt.config.control_zone(), &probe.label())
        .await
        .map_err(route53_failed)?;
    let who = probe.subject().trim_start_matches("freeze ").to_string();
    ended(rt, r, "unfreeze", &who, removed)
}

/// The answer and event of an undrain or unfreeze.
fn ended(rt: &Runtime, r: &AdminRequest, kind: &str, who: &str, removed: Option<Control>) -> Done {
    let noun = kind.trim_start_matches("un");
    let Some(control) = removed else {
        return Ok((format!("{who}: no {noun} in force; nothing to do"), None));
    };
    let mut e = Event::new(
        kind,
        format!(
            "{kind} {who} (the {noun} was {:?} by {})",
            control.reason, control.by
        ),
    )
    .by(&r.by);
    if let Scope::Drain {
        record,
        rtype,
        region,
        ..
    } = &control.scope
    {
        e = e.about(record, rtype, Some(region));
    }
    if let Some(reason) = &r.reason {
        e = e.reason(reason.clone());
    }
    rt.events.emit(e);
    Ok((format!("{kind} {who}: done"), Some(control)))
}

/// `by` is required of every action.
fn check_by(r: &AdminRequest) -> Result<(), Refusal> {
    if r.by.trim().is_empty() || r.by.chars().count() > crate::decide::controls::MAX_BY_CHARS {
        return Err(invalid(format!(
            "by: {:?} must be 1 to 64 characters",
            r.by
        )));
    }
    Ok(())
}
