//! The traffic confirmation task (with `traffic`; `decide::traffic` for
//! the rule): after each withdrawal of a member (a real failure, a drain,
//! a practice run), reads the member's API request count from CloudWatch
//! until its traffic fell by 90 % or the bound passed, and says which in
//! status, events and metrics (and in the practice run's history, for a
//! practice's withdrawal). Only the writer measures.
//!
//! Cost: nothing while no withdrawal is being measured; then at most one
//! GetMetricData per region per period (one minute), for every member of
//! the region being measured at once. A member's API and stage are given
//! in the config, or found once through its custom domain's API mappings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cloudwatch::RequestCounts;
use crate::config::Target;
use crate::controller::state::practice_book;
use crate::controller::state::traffic_book::{self, TrafficStatus};
use crate::controller::{MemberId, Runtime};
use crate::decide::traffic::{self as rules, Traffic, BASELINE_PERIODS};
use crate::decide::unix_ms;
use crate::discovery::Discovery;
use crate::events::{Event, Kind};

/// How often the members' `published` is looked at (no call).
const TICK: Duration = Duration::from_millis(250);
/// After a failed mapping lookup.
const LOOKUP_RETRY: Duration = Duration::from_secs(60);

/// Whether the config asks for it.
pub(in crate::controller) fn wanted(rt: &Runtime) -> bool {
    rt.config.traffic.is_some()
}

/// A withdrawal being measured.
struct Watch {
    since: SystemTime,
}

/// Where a member's requests are counted.
enum Source {
    Known(String, String),
    /// Not found yet; looked up again at this time.
    Lookup(tokio::time::Instant),
    None,
}

pub(in crate::controller) async fn run(
    rt: Arc<Runtime>,
    discovery: Option<Arc<Discovery>>,
    endpoint_url: Option<String>,
    stop: CancellationToken,
) {
    let Some(cfg) = rt.config.traffic.clone() else {
        return;
    };
    let ids: Vec<MemberId> = rt.member_ids().collect();
    let regions: Vec<String> = ids
        .iter()
        .map(|id| rt.member(*id).config().region.clone())
        .collect();
    // Made at the first read: the members are watched from the start.
    let mut counts: Option<RequestCounts> = None;
    let mut sources: HashMap<MemberId, Source> = ids
        .iter()
        .map(|id| {
            let m = rt.member(*id).config();
            let source = match (&m.traffic, &m.target) {
                (Some(t), _) => Source::Known(t.api_id.clone(), t.stage.clone()),
                (None, Target::ApiGateway { .. }) => Source::Lookup(tokio::time::Instant::now()),
                (None, _) => Source::None,
            };
            (*id, source)
        })
        .collect();
    // Each member's last withdrawal as seen. One still within its bound
    // when the task starts (a reload) or this instance becomes the writer
    // (the old writer's measurement is lost with it) is measured afresh.
    let bound = |id: &MemberId| {
        let ttl = u64::from(rt.member(*id).record().ttl);
        Duration::from_secs(ttl * u64::from(cfg.within_ttls)) + cfg.period * 4
    };
    let forget_recent = |seen: &mut HashMap<MemberId, Option<SystemTime>>| {
        for id in &ids {
            let withdrawn = rt.member(*id).read(|s| s.withdrawn_at);
            let recent = withdrawn
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age < bound(id));
            seen.insert(*id, if recent { None } else { withdrawn });
        }
    };
    let mut seen: HashMap<MemberId, Option<SystemTime>> = HashMap::new();
    forget_recent(&mut seen);
    let mut was_writer = false;
    let mut watches: HashMap<MemberId, Watch> = HashMap::new();
    let mut last_call: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.cancelled() => return,
        }
        let writer = rt.may_write();
        if writer && !was_writer {
            forget_recent(&mut seen);
        }
        was_writer = writer;
        for id in &ids {
            let (published, withdrawn) = rt.member(*id).read(|s| (s.published, s.withdrawn_at));
            let new = seen.insert(*id, withdrawn) != Some(withdrawn);
            match (withdrawn, published) {
                // Withdrawn since the last look (however briefly it was
                // published before).
                (Some(since), false) if new && writer && !matches!(sources[id], Source::None) => {
                    watches.insert(*id, Watch { since });
                    note(&rt, *id, status(since, Traffic::Measuring, None));
                }
                (_, true) => {
                    if let Some(w) = watches.remove(id) {
                        let mut back = status(w.since, Traffic::Measuring, None);
                        back.state = "published".into();
                        note(&rt, *id, back);
                    }
                }
                _ => {}
            }
        }
        if !writer {
            watches.clear();
            continue;
        }
        // Find the sources the watched members still lack.
        for id in watches.keys() {
            if let Some(Source::Lookup(at)) = sources.get(id) {
                if *at > tokio::time::Instant::now() {
                    continue;
                }
                let m = rt.member(*id).config();
                let (Target::ApiGateway { domain, .. }, Some(d)) = (&m.target, &discovery) else {
                    sources.insert(*id, Source::None);
                    continue;
                };
                match d.api_mapping(&m.region, domain).await {
                    Ok((api, stage)) => {
                        info!(region = %m.region, %domain, api = %api, %stage, "traffic: the API the domain serves");
                        sources.insert(*id, Source::Known(api, stage));
                    }
                    Err(e) => {
                        warn!(region = %m.region, %domain, error = %e, "traffic: the domain's API mapping cannot be read");
                        sources.insert(
                            *id,
                            Source::Lookup(tokio::time::Instant::now() + LOOKUP_RETRY),
                        );
                    }
                }
            }
        }
        // A member whose API is not found within its bound: said, not
        // measured forever.
        let lost: Vec<MemberId> = watches
            .iter()
            .filter(|(id, w)| {
                !matches!(sources.get(id), Some(Source::Known(..)))
                    && w.since.elapsed().is_ok_and(|age| age > bound(id))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            let w = watches.remove(&id).expect("listed");
            let error = "its API and stage could not be found (the custom domain's API mappings)";
            let mut lost = status(w.since, Traffic::Measuring, Some(error.into()));
            lost.state = "error".into();
            note(&rt, id, lost);
        }
        // One call per region per period, for every member measured there.
        let mut by_region: HashMap<String, Vec<MemberId>> = HashMap::new();
        for id in watches.keys() {
            if matches!(sources.get(id), Some(Source::Known(..))) {
                let region = rt.member(*id).config().region.clone();
                by_region.entry(region).or_default().push(*id);
            }
        }
        for (region, members) in by_region {
            if last_call
                .get(&region)
                .is_some_and(|t| t.elapsed() < cfg.period)
            {
                continue;
            }
            last_call.insert(region.clone(), tokio::time::Instant::now());
            let apis: Vec<(String, String)> = members
                .iter()
                .map(|id| match &sources[id] {
                    Source::Known(a, s) => (a.clone(), s.clone()),
                    _ => unreachable!("only known sources are read"),
                })
                .collect();
            let earliest = members
                .iter()
                .map(|id| watches[id].since)
                .min()
                .expect("a member");
            let since = earliest - cfg.period * (BASELINE_PERIODS as u32 + 1);
            if counts.is_none() {
                let regions = regions.iter().map(String::as_str);
                counts = Some(RequestCounts::new(regions, endpoint_url.as_deref()).await);
            }
            let counts = counts.as_ref().expect("made above");
            let read = counts.counts(&region, &apis, since, cfg.period).await;
            let outcome = if read.is_ok() { "ok" } else { "error" };
            rt.metrics
                .traffic
                .cloudwatch_requests_total
                .with_label_values(&[&region, outcome])
                .inc();
            let points = match read {
                Ok(p) => p,
                Err(e) => {
                    warn!(%region, error = %e, "traffic: CloudWatch cannot be read; tried again next period");
                    for id in &members {
                        let w = &watches[id];
                        let mut s = status(w.since, Traffic::Measuring, None);
                        s.error = Some(e.clone());
                        note(&rt, *id, s);
                    }
                    continue;
                }
            };
            for (id, points) in members.iter().zip(points) {
                let since = watches[id].since;
                let record = rt.member(*id).record();
                let within =
                    Duration::from_secs(u64::from(record.ttl) * u64::from(cfg.within_ttls));
                let now = secs(SystemTime::now());
                let judged = rules::judge(secs(since), &points, cfg.period, now, within);
                if judged.settled() {
                    watches.remove(id);
                    settled(&rt, *id, since, judged).await;
                }
            }
        }
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn status(since: SystemTime, t: Traffic, error: Option<String>) -> TrafficStatus {
    TrafficStatus {
        withdrawn_at: since
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
        state: t.as_str().to_string(),
        after_s: match t {
            Traffic::Fell { after } => Some(after.as_secs_f64()),
            Traffic::NotLeaving { within } => Some(within.as_secs_f64()),
            _ => None,
        },
        error,
    }
}

fn note(rt: &Runtime, id: MemberId, s: TrafficStatus) {
    let m = rt.member(id);
    rt.traffic.set(
        &traffic_book::key(m.record(), &m.config().set_identifier),
        s,
    );
}

/// A withdrawal's traffic is known: status, the event, the metrics, and
/// the practice run it belongs to.
async fn settled(rt: &Runtime, id: MemberId, since: SystemTime, t: Traffic) {
    let s = status(since, t, None);
    note(rt, id, s.clone());
    let m = rt.member(id);
    let (record, member) = (m.record(), m.config());
    let rtype = record.rtype.to_string();
    let labels = [record.name.as_str(), rtype.as_str(), member.region.as_str()];
    let metrics = &rt.metrics.traffic;
    match t {
        Traffic::Fell { after } => {
            metrics
                .fell_seconds
                .with_label_values(&labels)
                .set(after.as_secs_f64());
            metrics.not_leaving.with_label_values(&labels).set(0);
        }
        Traffic::NotLeaving { .. } => metrics.not_leaving.with_label_values(&labels).set(1),
        _ => {}
    }
    let text = s.text();
    info!(record = %record.name, region = %member.region, traffic = t.as_str(), "{text}");
    rt.events.emit(
        Event::new(
            Kind::Traffic,
            format!("{} {}: {text}", record.name, member.region),
        )
        .about(&record.name, &rtype, Some(&member.region))
        .reason(t.as_str()),
    );
    // A practice run's withdrawal: its history says it too.
    let (Some(store), true) = (rt.store(), record.practice.is_some()) else {
        return;
    };
    let at = unix_ms(since);
    let written = rt
        .practice
        .update(&store, &practice_book::key(record), |h| {
            let Some(run) = h.runs.get_mut(&member.set_identifier) else {
                return false;
            };
            let during = run.started_ms <= at + 5_000 && at <= run.until_ms;
            if during {
                run.traffic = Some(text.clone());
            }
            during
        })
        .await;
    if let Err(e) = written {
        warn!(record = %record.name, error = %e, "the practice history could not take the traffic found");
    }
}
