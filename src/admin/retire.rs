//! `retire`: on-call deletes a record the config no longer manages (an
//! orphan: its records and this owner's claims are left as they are by
//! every reload, so dropping a record from the config never empties it by
//! surprise). Refused for a record the config manages; other owners'
//! records and claims are never touched.

use axum::http::StatusCode;

use super::actions::{required, route53_failed, Done};
use super::{AdminRequest, Refusal};
use crate::config::zone_ref;
use crate::controller::{Calls, Runtime};
use crate::decide::controls::Control;
use crate::decide::ownership::{retirement, Observed};
use crate::events::{Event, Kind};
use crate::provider::{normalize_name, RecordType};

pub(super) async fn retire(rt: &Runtime, calls: &Calls, r: &AdminRequest) -> Done {
    Control::check_by(&r.by).map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "invalid", e))?;
    let name = normalize_name(required(&r.record, "record")?);
    let rtype = r.rtype.as_deref().map(|t| RecordType::from(t.to_string()));
    let managed = rt
        .config
        .records
        .iter()
        .any(|c| c.name == name && rtype.as_ref().is_none_or(|t| c.rtype == *t));
    if managed {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "refused",
            format!("refused: {name} is in the config; the config manages it (drop it from the config first)"),
        ));
    }
    let zone = zone_of(rt, calls, r, &name).await?;
    let zone_id = calls.find_zone(&zone).await.map_err(route53_failed)?.id;
    let records = calls
        .list_records_under(&zone_id, &name)
        .await
        .map_err(route53_failed)?;
    let observed = Observed::new(records);
    let changes = retirement(&rt.config.owner, &observed, &name, rtype.as_ref());
    let what = match &rtype {
        Some(t) => format!("{name} {t}"),
        None => name.clone(),
    };
    if changes.is_empty() {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "invalid",
            format!(
                "record: {what:?} holds no claim of owner {} in {zone}; nothing to retire",
                rt.config.owner
            ),
        ));
    }
    let deleted = changes
        .iter()
        .filter(|c| c.record.set_identifier.is_some())
        .count();
    // One attempt: a DELETE retried after a lost answer would be refused
    // (the records gone) and reported as a failure; on-call asks again.
    calls
        .clone()
        .retried(1)
        .change(&zone_id, &changes)
        .await
        .map_err(route53_failed)?;
    rt.zones_changed();
    rt.events.emit(
        Event::new(
            Kind::Retired,
            format!("retired {what}: {deleted} record(s) and their claims deleted from {zone}"),
        )
        .by(&r.by),
    );
    Ok((
        format!("retired {what}: {deleted} record(s) and their claims deleted from {zone}"),
        None,
    ))
}

/// The zone to retire from: `zone` as given, else the configured zone
/// whose name is the longest suffix of the record's (a zone configured by
/// id is looked up for its name).
async fn zone_of(
    rt: &Runtime,
    calls: &Calls,
    r: &AdminRequest,
    name: &str,
) -> Result<String, Refusal> {
    if let Some(z) = &r.zone {
        return Ok(zone_ref(z));
    }
    let mut best: Option<(usize, String)> = None;
    for (zone, status) in rt.zone_status() {
        let zname = match (status.name, zone.contains('.')) {
            (Some(n), _) => n,
            (None, true) => zone.clone(),
            (None, false) => match calls.find_zone(&zone).await {
                Ok(z) => z.name,
                Err(_) => continue,
            },
        };
        let holds = name == zname || name.ends_with(&format!(".{zname}"));
        if holds && best.as_ref().is_none_or(|(len, _)| zname.len() > *len) {
            best = Some((zname.len(), zone));
        }
    }
    best.map(|(_, zone)| zone).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "invalid",
            format!("zone: no configured zone holds {name}; give zone"),
        )
    })
}
