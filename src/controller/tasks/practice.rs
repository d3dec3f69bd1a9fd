//! The practice task: starts each practising record's runs when they are
//! due, watches them, and ends them (`decide::practice` for the rules,
//! `state::practice_book` for the history). A run is a drain by
//! `practice`, written where on-call's controls are kept, so it goes
//! through the same decision (every safety rule, the lever) and a restart
//! finds it; the writer (the lease's holder) alone starts and ends runs.
//! On-call starts and stops one through the admin routes ([`start`],
//! [`stop`]), on any instance.
//!
//! Every 250 ms, from what this instance knows (no call unless a run
//! starts or ends): a failure of another member ends a run within a
//! verdict and a quarter of a second, and its member is published again
//! by the reconcile that follows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::RecordConfig;
use crate::controller::calls::Calls;
use crate::controller::state::practice_book::{self, Run};
use crate::controller::{MemberId, Runtime};
use crate::decide::controls::{Control, Controls, Scope, PRACTICE_BY};
use crate::decide::practice::{
    self as rules, Block, Member, Outcome, Query, QueryConfig, Situation,
};
use crate::decide::unix_ms;
use crate::decide::verdict::Verdict;
use crate::events::{Event, Kind};
use crate::store::StateStore;

const TICK: Duration = Duration::from_millis(250);
/// How often an instance that does not write reads the history (status).
const READ_EVERY: Duration = Duration::from_secs(30);
/// A run in the history whose drain this instance has not read yet (made
/// through another instance a moment ago) is left alone this long.
const GRACE: Duration = Duration::from_secs(15);
/// After a failed read of the history.
const RETRY: Duration = Duration::from_secs(2);
/// The reason a practice run's drain carries.
const REASON: &str = "practice run";

/// Whether any record practises.
pub(in crate::controller) fn wanted(rt: &Runtime) -> bool {
    rt.config.records.iter().any(|r| r.practice.is_some()) && rt.store().is_some()
}

pub(in crate::controller) async fn run(rt: Arc<Runtime>, calls: Calls, stop: CancellationToken) {
    let Some(store) = rt.store() else { return };
    tokio::select! {
        _ = rt.controls.loaded(true) => {}
        _ = stop.cancelled() => return,
    }
    let mut watched: HashSet<String> = HashSet::new();
    let queries = Queries::default();
    let mut was_writer = false;
    let mut last_read: Option<tokio::time::Instant> = None;
    // A failed read is tried again after RETRY, not at every tick.
    let mut failed_at: Option<tokio::time::Instant> = None;
    loop {
        let writer = rt.may_write();
        // A new writer reads what another may have written meanwhile, and
        // acts on nothing before that read.
        if writer && !was_writer {
            last_read = None;
        }
        let stale = last_read.is_none_or(|t| t.elapsed() >= READ_EVERY);
        let read_now = (!writer && stale) || last_read.is_none();
        if read_now && failed_at.is_none_or(|t| t.elapsed() >= RETRY) {
            match rt.practice.read(store.as_ref()).await {
                Ok(()) => {
                    last_read = Some(tokio::time::Instant::now());
                    failed_at = None;
                }
                Err(e) => {
                    warn!(error = %e, "reading the practice history failed; retrying");
                    failed_at = Some(tokio::time::Instant::now());
                }
            }
        }
        was_writer = writer;
        if writer && last_read.is_some() {
            let mut unknown_run = false;
            for (i, record) in rt.config.records.iter().enumerate() {
                if record.practice.is_some() {
                    unknown_run |= step(&rt, &calls, &store, i, &mut watched, &queries).await;
                }
            }
            // A run started through another instance: its history is read
            // again (at most once a second).
            if unknown_run && last_read.is_some_and(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_read = None;
                continue;
            }
        }
        publish(&rt);
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// A practice's drain among `controls`, of a member of `record` (in
/// force or ended, until the holder deletes it).
fn practice_drain<'c>(controls: &'c Controls, record: &RecordConfig) -> Option<&'c Control> {
    controls.0.iter().find(|c| {
        c.is_practice()
            && matches!(&c.scope, Scope::Drain { record: r, rtype: t, .. }
                if *r == record.name && *t == record.rtype.to_string())
    })
}

fn member_of(record: &RecordConfig, c: &Control) -> Option<usize> {
    let Scope::Drain { set_identifier, .. } = &c.scope else {
        return None;
    };
    record
        .members
        .iter()
        .position(|m| m.set_identifier == *set_identifier)
}

/// Each record's query, as last answered, and when. A query is asked
/// beside the task: a Prometheus that is slow or hangs (5 s at most per
/// query) holds back no tick, so another member's failure still ends a
/// run within a quarter of a second.
#[derive(Default)]
struct Queries {
    client: reqwest::Client,
    answers: Arc<std::sync::Mutex<HashMap<usize, (Query, tokio::time::Instant)>>>,
    asking: Arc<std::sync::Mutex<HashSet<usize>>>,
}

impl Queries {
    /// Record `index`'s query as last answered (`Unknown` before the
    /// first answer); asked again once `every` has passed.
    fn reading(&self, record: &RecordConfig, index: usize) -> Option<Query> {
        let q = record.practice.as_ref()?.query.clone()?;
        let last = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&index)
            .cloned();
        let due = last.as_ref().is_none_or(|(_, at)| at.elapsed() >= q.every);
        if due
            && self
                .asking
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(index)
        {
            let (client, answers, asking) = (
                self.client.clone(),
                self.answers.clone(),
                self.asking.clone(),
            );
            tokio::spawn(async move {
                let answer = ask(&client, &q).await;
                answers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(index, (answer, tokio::time::Instant::now()));
                asking
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&index);
            });
        }
        Some(last.map_or_else(|| Query::Unknown("not answered yet".into()), |(r, _)| r))
    }
}

/// `q` asked now.
async fn ask(client: &reqwest::Client, q: &QueryConfig) -> Query {
    match crate::prometheus_query::ask(client, &q.url, &q.expr).await {
        Ok(v) => Query::reading(&q.expr, v, q.max),
        Err(e) => Query::Unknown(e),
    }
}

/// The record as its practice sees it now: verdicts, on-call's controls
/// (not the practice's own), the control plane, other records' runs, the
/// query's last reading.
fn situation(
    rt: &Runtime,
    index: usize,
    controls: &Controls,
    now: SystemTime,
    query: Option<Query>,
) -> Situation {
    let record = &rt.config.records[index];
    let members = (0..record.members.len())
        .map(|m| {
            let handle = rt.member(MemberId {
                record: index,
                member: m,
            });
            let agreed = handle.read(|s| s.agreed);
            Member {
                set_identifier: record.members[m].set_identifier.clone(),
                healthy: match agreed {
                    Verdict::Healthy => Some(true),
                    Verdict::Unhealthy => Some(false),
                    Verdict::Unknown => None,
                },
            }
        })
        .collect();
    let on_calls = controls
        .in_force(now)
        .filter(|c| !c.is_practice())
        .find(|c| match &c.scope {
            Scope::Drain {
                record: r,
                rtype: t,
                ..
            } => *r == record.name && *t == record.rtype.to_string(),
            Scope::Freeze { record: r } => r.as_deref().is_none_or(|r| r == record.name),
        });
    let other_practice = controls
        .in_force(now)
        .filter(|c| c.is_practice())
        .find(|c| {
            !matches!(&c.scope, Scope::Drain { record: r, rtype: t, .. }
            if *r == record.name && *t == record.rtype.to_string())
        })
        .map(|c| match &c.scope {
            Scope::Drain { record, rtype, .. } => format!("{record} {rtype}"),
            Scope::Freeze { .. } => String::new(),
        });
    Situation {
        members,
        min_healthy: record.min_healthy,
        control: on_calls.map(Control::subject),
        control_plane_impaired: rt.process().control_plane_status(false).impaired,
        other_practice,
        query,
    }
}

/// One record's turn of the task (as the writer). True when a practice's
/// drain is in the book that the history as read does not know.
async fn step(
    rt: &Runtime,
    calls: &Calls,
    store: &Arc<dyn StateStore>,
    index: usize,
    watched: &mut HashSet<String>,
    queries: &Queries,
) -> bool {
    let record = &rt.config.records[index];
    let schedule = record.practice.as_ref().expect("a practising record");
    let key = practice_book::key(record);
    let now = SystemTime::now();
    let controls = rt.controls_in_use();
    let history = rt.practice.history(&key);
    // The query is asked only while it matters: a run due or running.
    let drain = practice_drain(&controls, record);
    let matters = drain.is_some() || rules::due(schedule, now, history.last_start());
    let query = match matters {
        true => queries.reading(record, index),
        false => None,
    };
    let s = situation(rt, index, &controls, now, query);
    if let Some(c) = drain {
        let Some(at) = member_of(record, c) else {
            return false;
        };
        let run = history.runs.get(&record.members[at].set_identifier);
        match run.filter(|r| r.started_ms == c.at_ms) {
            // Ended early, its drain still in force (its removal failed, or
            // it was written after all): it goes now.
            Some(r) if !r.open() && c.in_force(now) => {
                if let Err(e) = remove_drain(rt, calls, record, r).await {
                    warn!(record = %record.name, error = %e, "the drain of an ended practice run could not be removed; tried again");
                }
                return false;
            }
            // Ended; its drain waits for the holder to delete it.
            Some(r) if !r.open() => return false,
            Some(_) => {}
            // Started through another instance, or a history not written.
            None => return c.in_force(now),
        }
        watched.insert(key.clone());
        if let Some(outcome) = rules::run_over(&s, at, now, c.until()) {
            if let Err(e) = end(rt, calls, store, record, &key, Some(c.at_ms), outcome).await {
                warn!(record = %record.name, error = %e, "a practice run could not be ended; tried again");
            }
        }
        return false;
    }
    if let Some(run) = history.open_run() {
        let since = now.duration_since(run.started()).unwrap_or_default();
        let outcome = if now >= run.until() {
            if watched.contains(&key) {
                Outcome::Passed
            } else {
                Outcome::Aborted("it ended while no writer watched it (a restart)".into())
            }
        } else if since > GRACE {
            Outcome::Aborted("its drain was ended by hand".into())
        } else {
            return false;
        };
        if let Err(e) = end(
            rt,
            calls,
            store,
            record,
            &key,
            Some(run.started_ms),
            outcome,
        )
        .await
        {
            warn!(record = %record.name, error = %e, "a practice run could not be ended; tried again");
        }
        return false;
    }
    if !rules::due(schedule, now, history.last_start()) {
        rt.practice.set_blocked(&key, None);
        return false;
    }
    let ids: Vec<String> = record
        .members
        .iter()
        .map(|m| m.set_identifier.clone())
        .collect();
    let turn = rules::turn(&ids, &history.starts());
    match rules::blocks_start(&s, turn) {
        Some(block) => note_blocked(rt, record, &key, &block),
        None => {
            rt.practice.set_blocked(&key, None);
            if let Err(e) = start(rt, calls, index, turn, schedule.duration, "schedule").await {
                warn!(record = %record.name, error = %e, "a practice run could not start");
            }
        }
    }
    false
}

fn note_blocked(rt: &Runtime, record: &RecordConfig, key: &str, block: &Block) {
    if rt.practice.set_blocked(key, Some(block.to_string())) {
        info!(record = %record.name, reason = %block, "practice run due, held back");
        rt.events.emit(
            Event::new(Kind::Practice, format!("practice of {key} waits: {block}"))
                .about(&record.name, &record.rtype.to_string(), None)
                .reason(block.kind()),
        );
    }
}

/// Ends the open run that began at `started_ms`: its history says how
/// first (an outcome is never lost to a drain removed and a history not
/// written), then its drain goes (unless it ran its course: it ends by
/// itself; only the practice's own, never on-call's drain of the same
/// member); then status, events and metrics.
async fn end(
    rt: &Runtime,
    calls: &Calls,
    store: &Arc<dyn StateStore>,
    record: &RecordConfig,
    key: &str,
    started_ms: Option<u64>,
    outcome: Outcome,
) -> Result<Option<Run>, String> {
    let now = SystemTime::now();
    let mut ended: Option<Run> = None;
    rt.practice
        .update(store, key, |h| {
            // Afresh at each try: a retry may find the run ended by
            // another instance meanwhile.
            ended = None;
            let Some(run) = h
                .runs
                .values_mut()
                .find(|r| r.open() && started_ms.is_none_or(|s| r.started_ms == s))
            else {
                return false;
            };
            run.end(&outcome, now);
            ended = Some(run.clone());
            true
        })
        .await?;
    let Some(run) = ended else {
        return Ok(None);
    };
    if outcome != Outcome::Passed {
        remove_drain(rt, calls, record, &run).await?;
    }
    let rtype = record.rtype.to_string();
    rt.metrics
        .practice
        .ended([&record.name, &rtype, &run.region], outcome.kind());
    let why = outcome.why().map(|w| format!(": {w}")).unwrap_or_default();
    info!(record = %record.name, region = %run.region, outcome = outcome.kind(), "practice run ended");
    rt.events.emit(
        Event::new(
            Kind::Practice,
            format!("practice of {key} {} {}{why}", run.region, outcome.kind()),
        )
        .about(&record.name, &rtype, Some(&run.region))
        .reason(outcome.kind()),
    );
    Ok(Some(run))
}

/// Removes `run`'s drain where controls are kept, if it is still there:
/// the practice's own (by `practice`, made when the run began), never
/// another control of the member.
async fn remove_drain(
    rt: &Runtime,
    calls: &Calls,
    record: &RecordConfig,
    run: &Run,
) -> Result<(), String> {
    let label = drain_of(
        record,
        &run.set_identifier,
        &run.region,
        SystemTime::now(),
        Duration::ZERO,
    )
    .label();
    let kept = rt.controls_kept(calls, calls);
    rt.controls
        .remove_if(&kept, &label, |c| {
            c.is_practice() && c.at_ms == run.started_ms
        })
        .await
        .map(|_| ())
}

/// A practice's drain of a member, from `now` for `lasts`.
fn drain_of(
    record: &RecordConfig,
    set_identifier: &str,
    region: &str,
    now: SystemTime,
    lasts: Duration,
) -> Control {
    Control::new(
        Scope::Drain {
            record: record.name.clone(),
            rtype: record.rtype.to_string(),
            set_identifier: set_identifier.to_string(),
            region: region.to_string(),
            force: false,
        },
        PRACTICE_BY,
        REASON,
        now,
        lasts,
    )
}

/// Starts a run of member `at` of record `index` for `lasts`: its history
/// first (a restart must not repeat it early), then its drain. Refused
/// while a run of the record is open.
pub async fn start(
    rt: &Runtime,
    calls: &Calls,
    index: usize,
    at: usize,
    lasts: Duration,
    by: &str,
) -> Result<Control, String> {
    let store = rt.store().ok_or("practice needs a state store")?;
    let record = &rt.config.records[index];
    let member = &record.members[at];
    let key = practice_book::key(record);
    let now = SystemTime::now();
    let control = drain_of(record, &member.set_identifier, &member.region, now, lasts);
    let mut busy = None;
    rt.practice
        .update(&store, &key, |h| {
            if let Some(open) = h.open_run() {
                busy = Some(open.region.clone());
                return false;
            }
            h.runs.insert(
                member.set_identifier.clone(),
                Run {
                    set_identifier: member.set_identifier.clone(),
                    region: member.region.clone(),
                    started_ms: unix_ms(now),
                    until_ms: control.until_ms,
                    ended_ms: None,
                    outcome: None,
                    why: None,
                    by: by.to_string(),
                    traffic: None,
                },
            );
            true
        })
        .await?;
    if let Some(region) = busy {
        return Err(format!("{key} is already practising ({region})"));
    }
    let kept = rt.controls_kept(calls, calls);
    // Only where no control of the member is in force: never over
    // on-call's drain, even one this instance has not read yet.
    if let Err(e) = rt.controls.put_new(&kept, control.clone()).await {
        let failed = Outcome::Aborted(format!("its drain was not written: {e}"));
        let _ = rt
            .practice
            .update(&store, &key, |h| {
                h.runs
                    .get_mut(&member.set_identifier)
                    .filter(|r| r.open())
                    .map(|r| r.end(&failed, SystemTime::now()))
                    .is_some()
            })
            .await;
        return Err(e);
    }
    let until = humantime::format_rfc3339_seconds(control.until());
    info!(record = %record.name, region = %member.region, %until, by, "practice run started");
    rt.events.emit(
        Event::new(
            Kind::Practice,
            format!("practice of {key} {} started until {until}", member.region),
        )
        .about(
            &record.name,
            &record.rtype.to_string(),
            Some(&member.region),
        )
        .by(by),
    );
    Ok(control)
}

/// What holds a run of member `at` of record `index` back now, if
/// anything (an admin call's start is refused for it; its query is asked
/// now).
pub async fn blocks(rt: &Runtime, index: usize, at: usize) -> Option<Block> {
    let controls = rt.controls_in_use();
    let record = &rt.config.records[index];
    if practice_drain(&controls, record).is_some_and(|c| c.in_force(SystemTime::now())) {
        return Some(Block::PracticeInProgress(practice_book::key(record)));
    }
    let query = match record.practice.as_ref().and_then(|p| p.query.as_ref()) {
        Some(q) => Some(ask(&reqwest::Client::new(), q).await),
        None => None,
    };
    let s = situation(rt, index, &controls, SystemTime::now(), query);
    rules::blocks_start(&s, at)
}

/// Ends record `index`'s run at once, on-call's word (`by`), from the
/// history and the controls as kept now (not this instance's copies):
/// `None` when none runs. A practice's drain left in force by a run that
/// ended goes too.
pub async fn stop(
    rt: &Runtime,
    calls: &Calls,
    index: usize,
    by: &str,
) -> Result<Option<Run>, String> {
    let store = rt.store().ok_or("practice needs a state store")?;
    let record = &rt.config.records[index];
    let key = practice_book::key(record);
    let outcome = Outcome::Aborted(format!("stopped by {by}"));
    if let Some(run) = end(rt, calls, &store, record, &key, None, outcome).await? {
        return Ok(Some(run));
    }
    // No open run: a drain of a closed one may still stand.
    let history = rt.practice.update(&store, &key, |_| false).await?;
    for run in history.runs.values() {
        remove_drain(rt, calls, record, run).await?;
    }
    Ok(None)
}

/// The gauges: runs in progress, and each member's last outcome (from
/// the history, so every instance shows the same).
fn publish(rt: &Runtime) {
    let controls = rt.controls_in_use();
    let now = SystemTime::now();
    let metrics = &rt.metrics.practice;
    for record in rt.config.records.iter().filter(|r| r.practice.is_some()) {
        let rtype = record.rtype.to_string();
        let running = practice_drain(&controls, record).is_some_and(|c| c.in_force(now));
        metrics
            .running
            .with_label_values(&[&record.name, &rtype])
            .set(i64::from(running));
        let history = rt.practice.history(&practice_book::key(record));
        for run in history.runs.values().filter(|r| !r.open()) {
            metrics
                .last_failed
                .with_label_values(&[&record.name, &rtype, &run.region])
                .set(i64::from(run.outcome.as_deref() == Some("failed")));
        }
    }
}
