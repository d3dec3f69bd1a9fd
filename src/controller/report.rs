//! What a member's happenings (its verdicts, its decisions) and on-call's
//! controls mean for on-call, said in one place: the event (and so the
//! log line, `events`), the metric where there is one, the warning. The
//! prober, the view exchange, the reconciler and the admin routes call
//! these. The zone's changes, the lease and reloads emit their events
//! where they happen, each in one place.
//!
//! The member series (`member_healthy`, `flaps_total`, ...) are not set
//! here: they are read off the member's state at scrape time
//! (`controller::scrape`).

use std::time::SystemTime;

use tracing::warn;

use super::{Member, Runtime};
use crate::decide::controls::{Control, Scope};
use crate::decide::policy::Why;
use crate::decide::verdict::{Transition, Verdict};
use crate::decide::zone::MemberOutcome;
use crate::events::{Event, Kind};
use crate::metrics::MemberLabels;

/// This instance's own verdict on a member changed; `reason` is the
/// failure behind it, `outcome` the probe's (`success` or its kind).
pub(super) fn verdict_changed(
    rt: &Runtime,
    labels: MemberLabels<'_>,
    t: &Transition,
    reason: Option<&str>,
    outcome: &str,
) {
    let because = reason.map(|r| format!(" ({r})")).unwrap_or_default();
    let e = Event::new(
        Kind::Verdict,
        format!(
            "{} verdict changed: {} → {}{because}",
            labels.region,
            t.from.as_str(),
            t.to.as_str()
        ),
    )
    .about(labels.record, labels.rtype, Some(labels.region))
    // Unhealthy: this probe's failure kind (`timeout`, `status`, `slow`…).
    .reason(if t.to == Verdict::Unhealthy {
        outcome
    } else {
        t.to.as_str()
    });
    rt.events.emit(e);
}

/// The verdict the writer acts on changed, when it can differ from this
/// instance's own (with `ha`: the quorum's), after `after`.
pub(super) fn agreed_changed(rt: &Runtime, labels: MemberLabels<'_>, t: &Transition, after: &str) {
    if rt.config.ha.is_none() {
        return;
    }
    rt.events.emit(
        Event::new(
            Kind::Verdict,
            format!(
                "{} agreed verdict changed (quorum of vantage points, after {after}): {} → {}",
                labels.region,
                t.from.as_str(),
                t.to.as_str()
            ),
        )
        .about(labels.record, labels.rtype, Some(labels.region))
        .reason("quorum"),
    );
}

/// A reconcile decided a member (its decision was `previous`): a change
/// of decision is an event (the first healthy one aside), a withdrawal
/// newly blocked is counted, a record newly found someone else's warned.
pub(super) fn decided(
    rt: &Runtime,
    member: &Member<'_>,
    outcome: &MemberOutcome,
    previous: Option<Why>,
) {
    let labels = member.labels();
    let why = outcome.decision.why;
    let changed = previous != Some(why);
    if changed && !(previous.is_none() && matches!(why, Why::Healthy | Why::Unknown)) {
        rt.events
            .emit(decision_event(rt, member, outcome, previous));
    }
    if changed && why.is_blocked() {
        rt.metrics
            .reconcile
            .withdrawals_blocked_total
            .with_label_values(&[labels.record, labels.rtype, why.as_str()])
            .inc();
    }
    if outcome.conflict && previous != Some(Why::Conflict) {
        warn!(record = %labels.record, region = labels.region,
            set_identifier = %member.config().set_identifier,
            "a record with this set identifier exists without our ownership marker; leaving it alone (set adopt: true to take it over)");
    }
}

/// The event of a member's decision changing: what happens to its record,
/// and the rule behind it.
fn decision_event(
    rt: &Runtime,
    member: &Member<'_>,
    outcome: &MemberOutcome,
    previous: Option<Why>,
) -> Event {
    let labels = member.labels();
    let d = outcome.decision;
    let what = match (d.why, d.why.is_blocked(), d.published) {
        (Why::Correlated, _, _) => "withdrawal waits, stays published",
        (_, true, _) => "withdrawal blocked, stays published",
        (_, false, true) => "published",
        (_, false, false) => "withdrawn",
    };
    let mut message = format!("{} {what}: {}", labels.region, d.why.as_str());
    match d.why {
        Why::Damped => {
            let now = SystemTime::now();
            let flaps = member.read(|m| m.damping.flaps);
            if let Some(until) = member.held_until(now) {
                let left = until.duration_since(now).unwrap_or_default().as_secs();
                message.push_str(&format!(
                    " ({flaps} flaps, held {left}s more although healthy)"
                ));
            }
        }
        Why::Drained => {
            let r = member.record();
            let rtype = r.rtype.to_string();
            let set = &member.config().set_identifier;
            if let Some(c) = rt
                .controls_in_use()
                .drain(&r.name, &rtype, set, SystemTime::now())
            {
                message.push_str(&format!(" by {}: {}", c.by, c.reason));
            }
        }
        _ => {}
    }
    if let Some(p) = previous {
        message.push_str(&format!(" (was {})", p.as_str()));
    }
    let kind = if d.why.is_blocked() {
        Kind::Blocked
    } else {
        Kind::Decision
    };
    Event::new(kind, message)
        .about(labels.record, labels.rtype, Some(labels.region))
        .reason(d.why.as_str())
}

/// On-call made a control (`how`: through this instance, or read from
/// Route53 as another instance wrote it).
pub fn control_made(rt: &Runtime, c: &Control, how: &str) {
    let kind = if c.is_drain() {
        Kind::Drain
    } else {
        Kind::Freeze
    };
    let until = humantime::format_rfc3339_seconds(c.until());
    let e = Event::new(
        kind,
        format!("{} until {until}: {} ({how})", c.subject(), c.reason),
    )
    .by(&c.by);
    rt.events
        .emit(about_control(e, &c.scope).reason(c.reason.clone()));
}

/// On-call lifted `c` (`lifted`: undrain or unfreeze) through this
/// instance: `by` and `reason` are the lifter's.
pub fn control_lifted(
    rt: &Runtime,
    c: &Control,
    lifted: Kind,
    who: &str,
    by: &str,
    reason: Option<&str>,
) {
    let verb = lifted.as_str();
    let noun = verb.trim_start_matches("un");
    let e = Event::new(
        lifted,
        format!("{verb} {who} (the {noun} was {:?} by {})", c.reason, c.by),
    )
    .by(by);
    let mut e = about_control(e, &c.scope);
    if let Some(reason) = reason {
        e = e.reason(reason);
    }
    rt.events.emit(e);
}

/// A control ran out (its end passed), as the control reader found it.
pub(super) fn control_ended(rt: &Runtime, c: &Control) {
    rt.events.emit(
        Event::new(
            Kind::ControlEnded,
            format!("{} ended ({})", c.subject(), c.reason),
        )
        .by(&c.by),
    );
}

/// A drain's event is about its member.
fn about_control(e: Event, scope: &Scope) -> Event {
    match scope {
        Scope::Drain {
            record,
            rtype,
            region,
            ..
        } => e.about(record, rtype, Some(region)),
        Scope::Freeze { .. } => e,
    }
}
