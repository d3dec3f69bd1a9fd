//! The actions behind the admin routes: what each checks against
//! the config (the field and value named when wrong), what it writes
//! (`controller::ControlBook`), and what it answers.

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;

use super::{AdminRequest, Refusal};
use crate::config::{Config, RecordConfig};
use crate::controller::{report, Calls, Runtime};
use crate::decide::controls::{Control, Scope, DEFAULT_FOR};
use crate::events::Kind;
use crate::provider::normalize_name;

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, "invalid", message)
}

fn not_found(message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::NOT_FOUND, "invalid", message)
}

/// A control that could not be written where controls are kept (the
/// error names Route53 or the state store).
fn write_failed(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        StatusCode::BAD_GATEWAY,
        "error",
        format!("the control was not written: {e}"),
    )
}

pub(super) fn route53_failed(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        StatusCode::BAD_GATEWAY,
        "error",
        format!("Route53 did not take the write: {e}"),
    )
}

pub(super) fn required<'a>(value: &'a Option<String>, key: &str) -> Result<&'a str, Refusal> {
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

pub(super) type Done = Result<(String, Option<Control>), Refusal>;

pub(super) async fn drain(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
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
        .put(&rt.controls_kept(calls, calls), control.clone())
        .await
        .map_err(write_failed)?;
    report::control_made(rt, &control, "through this instance");
    let until = humantime::format_rfc3339_seconds(control.until());
    Ok((
        format!("{} until {until}: {what}", control.subject()),
        Some(control),
    ))
}

pub(super) async fn undrain(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
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
        .remove(&rt.controls_kept(calls, calls), &label)
        .await
        .map_err(write_failed)?;
    let who = format!(
        "{} {} {}",
        record.name, record.rtype, record.members[at].region
    );
    ended(rt, r, Kind::Undrain, &who, removed)
}

pub(super) async fn freeze(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
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

pub(super) async fn unfreeze(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
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
        .remove(&rt.controls_kept(calls, calls), &probe.label())
        .await
        .map_err(write_failed)?;
    let who = probe.subject().trim_start_matches("freeze ").to_string();
    ended(rt, r, Kind::Unfreeze, &who, removed)
}

/// The answer and event of an undrain or unfreeze.
fn ended(rt: &Runtime, r: &AdminRequest, kind: Kind, who: &str, removed: Option<Control>) -> Done {
    let verb = kind.as_str();
    let noun = verb.trim_start_matches("un");
    let Some(control) = removed else {
        return Ok((format!("{who}: no {noun} in force; nothing to do"), None));
    };
    report::control_lifted(rt, &control, kind, who, &r.by, r.reason.as_deref());
    Ok((format!("{verb} {who}: done"), Some(control)))
}

/// `by` is required of every action.
fn check_by(r: &AdminRequest) -> Result<(), Refusal> {
    Control::check_by(&r.by).map_err(invalid)
}

/// The practising record a practice action names, by its index.
fn practising(rt: &Runtime, r: &AdminRequest) -> Result<usize, Refusal> {
    let found = records(&rt.config, r)?;
    let [record] = found[..] else {
        return Err(invalid(format!(
            "type: {} has several types; say which",
            found[0].name
        )));
    };
    if record.practice.is_none() {
        return Err(invalid(format!(
            "record: {} {} does not practise (give it practice: in the config)",
            record.name, record.rtype
        )));
    }
    Ok(rt
        .config
        .records
        .iter()
        .position(|c| std::ptr::eq(c, record))
        .expect("a record of the config"))
}

/// Starts a practice run now: the member named (`region`), else the one
/// whose turn it is, for `for` (else the record's duration). Refused
/// while anything would hold a scheduled run back.
pub(super) async fn practice(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
    check_by(r)?;
    let index = practising(rt, r)?;
    let record = &rt.config.records[index];
    let schedule = record.practice.as_ref().expect("a practising record");
    let at = match &r.region {
        Some(_) => member(&rt.config, r)?.1,
        None => {
            let key = crate::controller::practice_key(record);
            let ids: Vec<String> = record
                .members
                .iter()
                .map(|m| m.set_identifier.clone())
                .collect();
            crate::decide::practice::turn(&ids, &rt.practice.history(&key).starts())
        }
    };
    let lasts = match &r.lasts {
        None => schedule.duration,
        Some(_) => who_why_how_long(r, "practice")?,
    };
    if let Some(block) = crate::controller::tasks::practice::blocks(rt, index, at).await {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "refused",
            format!("refused: {block}"),
        ));
    }
    let control = crate::controller::tasks::practice::start(rt, calls, index, at, lasts, &r.by)
        .await
        .map_err(|e| Refusal::new(StatusCode::CONFLICT, "refused", format!("refused: {e}")))?;
    let until = humantime::format_rfc3339_seconds(control.until());
    Ok((
        format!(
            "practice of {} {} {} until {until}: withdrawn while the safety rules allow",
            record.name, record.rtype, record.members[at].region
        ),
        Some(control),
    ))
}

/// Ends a record's practice run now (aborted, stopped by `by`).
pub(super) async fn stop_practice(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
    check_by(r)?;
    let index = practising(rt, r)?;
    let record = &rt.config.records[index];
    let stopped = crate::controller::tasks::practice::stop(rt, calls, index, &r.by)
        .await
        .map_err(write_failed)?;
    let who = format!("{} {}", record.name, record.rtype);
    Ok(match stopped {
        Some(run) => (format!("practice of {who} {} stopped", run.region), None),
        None => (
            format!("{who}: no practice run in progress; nothing to do"),
            None,
        ),
    })
}
