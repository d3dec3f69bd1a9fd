//! On-call's drains and freezes (`decide::controls`) as this instance
//! knows them: the [`ControlBook`] (read by the reconcilers, written by the
//! admin routes) and the task that reads them where they are kept (the
//! state store, or Route53's TXT records: `state::controls_kept`).
//!
//! Any instance takes an admin call and writes the control's record
//! itself (an `UPSERT` of a name of its own subject, or a `DELETE` of the
//! value it read): no lease fences it, because it is on-call's word, not
//! the automation's, and a follower need not find the holder. The holder
//! sees it at its next read: every 15 s with `ha` (0.067 reads/s; every
//! 5 s from the state store, 0.2 reads/s), at every resync without (only this instance writes them then, and it knows
//! at once). The holder deletes the records of controls that ended.
//!
//! While Route53's control plane is impaired and a lever carries drains,
//! the holder reads the state store's controls every 500 ms instead (2
//! reads/s, for the outage only): a drain on-call sent to another
//! instance turns its switch Off within a second, as one sent to the
//! holder does. In the steady state it stays at one read per 5 s, within
//! the budget of one store request/s per instance.
//!
//! Controls are read only when `admin` is configured. Until the first read
//! succeeds the reconcilers write nothing: a drained member must not come
//! back for a restart.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::controller::calls::Calls;
use crate::controller::report;
use crate::controller::state::controls_kept::ControlsKept;
use crate::controller::Runtime;
use crate::decide::controls::{Control, Controls};
use crate::events::{Event, Kind};

/// How often the controls are read with `ha`: from Route53, and from the
/// state store (a data plane, with no account-wide budget to spare).
const HA_READ_EVERY: Duration = Duration::from_secs(15);
const HA_STORE_READ_EVERY: Duration = Duration::from_secs(5);
/// How often the holder reads them from the store during an outage of
/// Route53's control plane, with a lever ([`outage_reads`]).
const OUTAGE_READ_EVERY: Duration = Duration::from_millis(500);
const RETRY: Duration = Duration::from_secs(1);

/// Reads the controls at start, then every 15 s with `ha` or every resync
/// without, and when a control ends; says what came and went (controls
/// written by another instance, controls that ended), and as the lease's
/// holder deletes the records of those that ended.
pub(in crate::controller) async fn run(
    rt: Arc<Runtime>,
    calls: Calls,
    fenced: Calls,
    stop: CancellationToken,
) {
    let book = rt.controls.clone();
    let kept = rt.controls_kept(&calls, &fenced);
    let every = match (rt.config.ha.is_some(), &kept) {
        (true, ControlsKept::Store(_)) => HA_STORE_READ_EVERY,
        (true, ControlsKept::Route53 { .. }) => HA_READ_EVERY,
        (false, _) => rt.config.resync_interval,
    };
    let mut reading = Reading::default();
    loop {
        let wait = match read(&rt, &kept, &mut reading).await {
            // An admin call wrote while the read was under way: what was
            // read may lack it, so read again.
            Ok(false) => Duration::ZERO,
            Ok(true) => {
                book.read_worked();
                let now = SystemTime::now();
                let end = book
                    .snapshot()
                    .next_end(now)
                    .and_then(|t| t.duration_since(now).ok())
                    .map(|d| d + Duration::from_millis(10));
                end.map_or(every, |e| e.min(every))
            }
            Err(e) => {
                warn!(error = %e, "reading on-call's drains and freezes failed; retrying");
                book.read_failed(e);
                RETRY
            }
        };
        // In steps of at most OUTAGE_READ_EVERY, so an outage that begins
        // (or a lease taken) during a long wait shortens it.
        let until = tokio::time::Instant::now() + wait;
        let read_at = tokio::time::Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            if now >= until || outage_reads(&rt, &kept) && now >= read_at + OUTAGE_READ_EVERY {
                break;
            }
            let step = (until - now).min(OUTAGE_READ_EVERY);
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// Whether this instance reads the controls every [`OUTAGE_READ_EVERY`]:
/// it holds the lease, they are kept in the state store, a lever is
/// configured and Route53's control plane is impaired. Then a drain
/// written by another instance reaches the switches within a second.
fn outage_reads(rt: &Runtime, kept: &ControlsKept<'_>) -> bool {
    rt.config.ha.is_some()
        && rt.config.lever.is_some()
        && matches!(kept, ControlsKept::Store(_))
        && rt.may_write()
        && rt.process().control_plane_status(true).impaired
}

/// What the controls task remembers from one read to the next.
#[derive(Default)]
struct Reading {
    /// Labels of the controls already said to have ended or been refused.
    told: Vec<String>,
    /// Controls refused on arrival: never taken later (a clock that has
    /// caught up since does not make their times right).
    refused: Vec<Control>,
    /// The labels read last time; `None` before the first read, when no
    /// control counts as new (one that ended while this instance was down
    /// ends quietly).
    last: Option<Vec<String>>,
}

async fn read(
    rt: &Runtime,
    kept: &ControlsKept<'_>,
    reading: &mut Reading,
) -> Result<bool, String> {
    let book = &rt.controls;
    let version = book.version();
    let pairs = kept.list().await?;
    if book.version() != version {
        return Ok(false);
    }
    let now = SystemTime::now();
    let before = book.snapshot();
    // A control that arrived since the last read is checked against this
    // clock: one that ended before it arrived, or was made by a clock far
    // ahead, is refused and said so (never honoured for the wrong time,
    // never deleted without a word).
    let mut admitted = Vec::new();
    for (c, _) in &pairs {
        if reading.refused.contains(c) {
            continue;
        }
        let label = c.label();
        let known = before.0.contains(c);
        let new = !known
            && reading
                .last
                .as_ref()
                .is_some_and(|last| !last.contains(&label));
        let check = if known { Ok(()) } else { c.admit(now, new) };
        if let Err(why) = check {
            warn!(control = %c.subject(), by = %c.by, reason = %why, "on-call's control refused");
            rt.events.emit(
                Event::new(
                    Kind::ControlRefused,
                    format!("{} refused: {why}", c.subject()),
                )
                .by(&c.by)
                .reason("clock"),
            );
            reading.told.push(label);
            reading.refused.push(c.clone());
            continue;
        }
        if !known && c.in_force(now) {
            report::control_made(rt, c, "read where controls are kept");
        }
        admitted.push(c.clone());
    }
    reading.last = Some(pairs.iter().map(|(c, _)| c.label()).collect());
    let read = Controls(admitted);
    let mut gone = Vec::new();
    for (c, handle) in &pairs {
        if c.in_force(now) && read.0.contains(c) {
            continue;
        }
        if c.in_force(now) {
            // Refused, but not ended: left for on-call to see and end.
            continue;
        }
        let label = c.label();
        if !reading.told.contains(&label) {
            reading.told.push(label);
            report::control_ended(rt, c);
        }
        gone.push(handle.clone());
    }
    // Forget what is no longer there.
    let there = |label: &String| pairs.iter().any(|(c, _)| &c.label() == label);
    reading.told.retain(there);
    reading
        .refused
        .retain(|r| pairs.iter().any(|(c, _)| c == r));
    if read != before {
        book.changed(|c| *c = read);
    }
    if !gone.is_empty() && rt.may_write() {
        match kept.delete_ended(gone).await {
            Ok(0) => {}
            Ok(n) => info!(controls = n, "deleted the controls that ended"),
            Err(e) => warn!(error = %e, "could not delete the controls that ended"),
        }
    }
    Ok(true)
}
