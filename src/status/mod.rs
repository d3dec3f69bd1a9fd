//! The snapshot on-call reads: built from the runtime state, served as JSON
//! (`/status`), as an HTML page (`/`, in `html`), and printed as a table by
//! the `status` command (`table`). Holds no secret: probe headers are never
//! part of it.

mod html;
mod member;
pub mod page;
mod table;

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::controller::{MemberId, Runtime};
use crate::decide::controls::Control;
use crate::time::unix_secs as unix;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub owner: String,
    pub version: String,
    pub provider: String,
    pub ready: bool,
    /// Unix seconds.
    pub started: f64,
    pub now: f64,
    pub zones: Vec<ZoneSnapshot>,
    pub records: Vec<RecordSnapshot>,
    /// The config in force (hash) and the last reload's error.
    #[serde(default)]
    pub config: Option<crate::reload::ConfigState>,
    /// With `ha`: this instance's role and the lease as last seen.
    #[serde(default)]
    pub lease: Option<crate::controller::LeaseSnapshot>,
    /// With `ha`: the exchange of views behind the quorum.
    #[serde(default)]
    pub views: Option<ViewsSnapshot>,
    /// On-call's drains and freezes in force (with `admin`).
    #[serde(default)]
    pub controls: Vec<Control>,
    /// Why they could not be read last time.
    #[serde(default)]
    pub controls_error: Option<String>,
    /// The probes' OAuth2 token sources: a probe without its token
    /// observes nothing, so a failing source leaves verdicts as they are.
    #[serde(default)]
    pub probe_tokens: Vec<crate::probe::auth::TokenStatus>,
    /// The data-plane lever (ARC routing controls), when configured: its
    /// mode, each switch as known and as wanted, a safety rule's refusal.
    #[serde(default)]
    pub lever: Option<crate::lever::LeverStatus>,
    /// Route53's control plane as the reconciles find it.
    #[serde(default)]
    pub control_plane: crate::controller::ControlPlaneSnapshot,
    /// The state store, when the config names one: kind, where, whether it
    /// answers, the last write and error (the lease's term and holder are
    /// in `lease`).
    #[serde(default)]
    pub store: Option<crate::store::StoreStatus>,
    /// Long-running tasks that panicked (a bug) and were started again:
    /// empty in a healthy process.
    #[serde(default)]
    pub tasks: Vec<crate::controller::TaskPanic>,
}

/// With `ha`: how this instance's view exchange goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewsSnapshot {
    /// Unix seconds.
    pub last_write: Option<f64>,
    pub last_read: Option<f64>,
    /// Other instances whose views were last read.
    pub instances: usize,
    pub last_error: Option<String>,
}

/// One vantage point's verdict on a member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewSnapshot {
    pub instance: String,
    /// This instance's own probes.
    pub this_instance: bool,
    pub verdict: String,
    /// When that verdict was written (unix seconds).
    pub written: f64,
    /// Whether it counts toward the quorum.
    pub counted: bool,
    /// Why not: `stale`, `other_config`, `partial`, `sees_everything_down`,
    /// `abstains` (no verdict yet), `unrefreshed` (it says otherwise and
    /// has not changed since this instance's probes began to say what
    /// they say).
    pub ignored: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneSnapshot {
    pub name: String,
    pub id: Option<String>,
    pub last_success: Option<f64>,
    pub last_error: Option<String>,
    /// The last health check call's error while calls fail; the records
    /// are reconciled all the same.
    #[serde(default)]
    pub check_error: Option<String>,
    pub changes_applied: u64,
    pub pending_changes: usize,
    /// What a freeze holds back: the changes the daemon would make.
    #[serde(default)]
    pub held: Vec<String>,
    /// Records of members the config no longer names (removed, renamed),
    /// kept while they are their record's last: `name type (set id)`.
    #[serde(default)]
    pub retiring: Vec<String>,
    /// Records (`name type`) holding this owner's claims that the config
    /// does not manage: left alone until retired.
    #[serde(default)]
    pub orphaned: Vec<String>,
    /// Unhealthy members whose withdrawal waits for corroboration
    /// (`decision: correlated`).
    #[serde(default)]
    pub uncorroborated: usize,
    /// Records whose changes Route53 refuses, held out of every batch
    /// until they change: `name: error (since ...)`.
    #[serde(default)]
    pub rejected: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordSnapshot {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub zone: String,
    pub min_healthy: usize,
    pub members: Vec<MemberSnapshot>,
    /// Whether its regions serve the same API; absent when not checked
    /// (or not yet).
    #[serde(default)]
    pub parity: Option<crate::parity::ParityReport>,
    /// The freeze that holds the record, if any.
    #[serde(default)]
    pub frozen: Option<Control>,
    /// Its practice runs, when it practises.
    #[serde(default)]
    pub practice: Option<PracticeStatus>,
    /// Its place in the config (`config.records`), for the page's trends.
    #[serde(skip)]
    pub index: usize,
}

/// A practising record's runs (`decide::practice`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PracticeStatus {
    /// The run in progress: its member's region and end (unix seconds).
    #[serde(default)]
    pub running: Option<(String, f64)>,
    /// When the next run is due (unix seconds); none within a year.
    #[serde(default)]
    pub next: Option<f64>,
    /// Why a due run does not start now.
    #[serde(default)]
    pub blocked: Option<String>,
    /// Each member's last run, by the config's order.
    #[serde(default)]
    pub last: Vec<crate::controller::PracticeRun>,
}

impl PracticeStatus {
    fn of(
        rt: &crate::controller::Runtime,
        r: &crate::config::RecordConfig,
        controls: &crate::decide::controls::Controls,
        now: std::time::SystemTime,
    ) -> Option<PracticeStatus> {
        let schedule = r.practice.as_ref()?;
        let secs = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        };
        let history = rt.practice.history(&crate::controller::practice_key(r));
        let rtype = r.rtype.to_string();
        let running = controls
            .in_force(now)
            .filter(|c| c.is_practice())
            .find_map(|c| match &c.scope {
                crate::decide::controls::Scope::Drain {
                    record,
                    rtype: t,
                    region,
                    ..
                } if *record == r.name && *t == rtype => Some((region.clone(), secs(c.until()))),
                _ => None,
            });
        let next = if running.is_some() {
            None
        } else {
            crate::decide::practice::next_run(schedule, now, history.last_start()).map(secs)
        };
        Some(PracticeStatus {
            running,
            next,
            blocked: rt.practice.blocked(&crate::controller::practice_key(r)),
            last: r
                .members
                .iter()
                .filter_map(|m| history.runs.get(&m.set_identifier).cloned())
                .collect(),
        })
    }

    /// One line: `practice api.example.com A: running eu-west-1 until …`,
    /// `next …`, `held back: …`, and each member's last run.
    pub fn line(&self, record: &str, rtype: &str) -> String {
        let at = |t: f64| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0)),
            )
            .to_string()
        };
        let mut parts = Vec::new();
        if let Some((region, until)) = &self.running {
            parts.push(format!("running {region} until {}", at(*until)));
        }
        if let Some(b) = &self.blocked {
            parts.push(format!("held back: {b}"));
        } else if let Some(n) = self.next {
            parts.push(format!("next {}", at(n)));
        }
        for run in &self.last {
            let how = match (&run.outcome, &run.why) {
                (Some(o), Some(w)) => format!("{o} ({w})"),
                (Some(o), None) => o.clone(),
                (None, _) => "in progress".into(),
            };
            let traffic = run
                .traffic
                .as_ref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default();
            parts.push(format!(
                "{} {} at {}{traffic}",
                run.region,
                how,
                at(run.started_ms as f64 / 1000.0)
            ));
        }
        format!("practice {record} {rtype}: {}", parts.join("; "))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberSnapshot {
    pub region: String,
    pub set_identifier: String,
    /// This instance's verdict from its own probes: `unknown`, `healthy`
    /// or `unhealthy`.
    pub verdict: String,
    /// The verdict the writer acts on: with `ha` and `policy.quorum:
    /// majority`, the quorum's; else the same as `verdict`.
    #[serde(default)]
    pub agreed: String,
    /// With `ha`: every vantage point's verdict, this instance first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<ViewSnapshot>,
    pub published: bool,
    /// Why the member is (not) published: healthy, unhealthy, unknown,
    /// conflict, quorum, damped, min_healthy, last_member, max_withdrawn,
    /// fail_open, drained, correlated; null before the first reconcile.
    pub decision: Option<String>,
    /// While flap damping holds the member: when the hold ends (unix
    /// seconds).
    #[serde(default)]
    pub damped_until: Option<f64>,
    /// Flaps counted since the member was last stable.
    #[serde(default)]
    pub flaps: u32,
    /// On-call's drain of the member (by, reason, until); the decision
    /// says `drained`, or the rule that holds it in.
    #[serde(default)]
    pub drain: Option<Control>,
    /// The verdict holds since (unix seconds).
    pub since: f64,
    /// The failure behind the verdict, or the latest failure seen.
    pub reason: Option<String>,
    /// The last probe observed nothing of the member (no token, a local
    /// error such as no descriptor left): why. The verdict stays as it was.
    #[serde(default)]
    pub not_observed: Option<String>,
    pub conflict: bool,
    pub latency_ms: Option<f64>,
    /// With `expect.slow_vs_baseline`: the member's latency baseline, once
    /// warmed up.
    #[serde(default)]
    pub baseline_ms: Option<f64>,
    pub last_status: Option<u16>,
    pub last_probe: Option<f64>,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
    pub target: String,
    /// HTTPS: when the leaf certificate the endpoint served expires (Unix
    /// seconds).
    #[serde(default)]
    pub cert_not_after: Option<f64>,
    /// The member's Route53 health check; null when checks are disabled.
    pub health_check: Option<HealthCheckSnapshot>,
    /// The last 15 minutes of probes, for the page's sparkline (not in
    /// the JSON: it would multiply its size).
    #[serde(default, skip_serializing)]
    pub trend: Vec<crate::trend::TrendPoint>,
    /// With `traffic`: whether clients left after its last withdrawal.
    #[serde(default)]
    pub traffic: Option<crate::controller::TrafficStatus>,
}

/// A member's Route53 health check next to the daemon's own verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthCheckSnapshot {
    /// Null until it is created (or while its target is not discovered).
    pub id: Option<String>,
    /// Route53's own verdict: `healthy` or `unhealthy`; null until read.
    pub route53: Option<String>,
    pub checkers_healthy: Option<u32>,
    pub checkers_total: Option<u32>,
    /// One failing checker's report, e.g. `Failure: HTTP Status Code 403`.
    pub failure: Option<String>,
    /// When Route53's status was read (unix seconds).
    pub checked: Option<f64>,
    /// Route53 and the daemon's verdict disagree: look at both.
    pub disagrees: bool,
    /// Why the check could not be created or updated.
    pub error: Option<String>,
}

impl Status {
    /// Every record's snapshot.
    pub fn snapshot(rt: &Runtime) -> Status {
        Status::snapshot_of(rt, |_| true)
    }

    /// The snapshot of the records `keep` takes (the zones, controls and
    /// lease are whole): `/status?record=` builds one record, not all.
    pub fn snapshot_of(
        rt: &Runtime,
        keep: impl Fn(&crate::config::RecordConfig) -> bool,
    ) -> Status {
        let zones = rt
            .zone_status()
            .into_iter()
            .map(|(name, z)| ZoneSnapshot {
                name,
                id: z.id,
                last_success: z.last_success.map(unix),
                last_error: z.last_error,
                check_error: z.check_error,
                changes_applied: z.changes_applied,
                pending_changes: z.pending_changes,
                held: z.held,
                retiring: z.retiring,
                orphaned: z.orphaned,
                uncorroborated: z.uncorroborated,
                rejected: z.rejected,
            })
            .collect();
        let counted = !rt.sees_everything_down();
        let me = rt
            .config
            .ha
            .as_ref()
            .map(|ha| (ha.identity.as_str(), counted, ha.view_max_age));
        let now = SystemTime::now();
        let controls = rt.controls_in_use();
        let records = rt
            .config
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| keep(r))
            .map(|(ri, r)| RecordSnapshot {
                name: r.name.clone(),
                rtype: r.rtype.to_string(),
                zone: r.zone.clone(),
                min_healthy: r.min_healthy,
                members: r
                    .members
                    .iter()
                    .enumerate()
                    .map(|(mi, mc)| {
                        let id = MemberId {
                            record: ri,
                            member: mi,
                        };
                        let rtype = r.rtype.to_string();
                        let drain = controls.drain(&r.name, &rtype, &mc.set_identifier, now);
                        let mut snapshot =
                            rt.member(id).read(|m| MemberSnapshot::of(mc, m, me, drain));
                        snapshot.traffic = rt
                            .traffic
                            .get(&crate::controller::traffic_key(r, &mc.set_identifier));
                        snapshot
                    })
                    .collect(),
                parity: rt.parity(r),
                frozen: controls.freeze(&r.name, now).cloned(),
                practice: PracticeStatus::of(rt, r, &controls, now),
                index: ri,
            })
            .collect();
        Status {
            owner: rt.config.owner.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            provider: rt.provider_kind.to_string(),
            ready: rt.is_ready(),
            started: unix(rt.started),
            now: unix(now),
            controls: controls.in_force(now).cloned().collect(),
            controls_error: rt.controls.last_error(),
            probe_tokens: rt.tokens.status(),
            zones,
            records,
            config: None,
            lever: rt.lever.get().map(|l| l.status()),
            control_plane: rt.control_plane_status(rt.lever.get().is_some()),
            lease: rt.lease.as_ref().map(|l| l.snapshot()),
            tasks: rt.tasks.snapshot(),
            store: rt.store_status(),
            views: rt.config.ha.as_ref().map(|_| {
                let v = rt.views_status();
                ViewsSnapshot {
                    last_write: v.last_write.map(unix),
                    last_read: v.last_read.map(unix),
                    instances: v.instances,
                    last_error: v.last_error,
                }
            }),
        }
    }

    /// The same with each member's 15-minute trend, for the page (left out
    /// of the snapshot `/status` serves, which would not show it).
    pub fn with_trends(mut self, rt: &Runtime) -> Status {
        let now = SystemTime::now();
        for r in &mut self.records {
            for (id, m) in rt.record_members(r.index).zip(&mut r.members) {
                m.trend = rt.member(id).read(|s| s.trend.points(now));
            }
        }
        self
    }

    /// The member of the first record in `region`.
    pub fn member(&self, region: &str) -> Option<&MemberSnapshot> {
        self.records
            .first()?
            .members
            .iter()
            .find(|m| m.region == region)
    }
}

/// A failing token source as one line for the table and the page; `None`
/// while it works.
pub(crate) fn token_failing(t: &crate::probe::auth::TokenStatus, now: f64) -> Option<String> {
    if t.ok {
        return None;
    }
    let since = t
        .failing_since
        .map(|s| format!(" for {}", ago(now, s)))
        .unwrap_or_default();
    Some(format!(
        "probe token {} ({}) failing{since}: {}; its probes observe nothing, verdicts stay as they are",
        t.token_url,
        t.client_id,
        t.error.as_deref().unwrap_or("?")
    ))
}

/// `3s`, `4m10s`, `2h5m`: how long ago, coarse.
pub fn ago(now: f64, then: f64) -> String {
    let secs = (now - then).max(0.0).round() as u64;
    let d = Duration::from_secs(secs);
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{}s", secs / 60, secs % 60),
        _ => format!("{}h{}m", d.as_secs() / 3600, (d.as_secs() % 3600) / 60),
    }
}
