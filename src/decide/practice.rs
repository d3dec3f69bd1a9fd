//! Practice runs: a failover practised on purpose, before the day it is
//! needed. A run withdraws one member of a record for a while, as a drain
//! by the author `practice` (so every safety rule applies), and watches the
//! rest of the record carry the traffic. Pure: when a run may start (the
//! schedule: how often, in which windows of the UTC week, never on a
//! blocked date), whose turn it is, what blocks a start, and what ends a
//! run early.
//!
//! A schedule's windows are written `[DAYS ]HH:MM-HH:MM` in UTC: `DAYS` is a
//! day (`Tue`), a range (`Mon-Fri`) or a list (`Mon,Wed`); without it,
//! every day. A run starts only where it fits whole in one window.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

#[cfg(test)]
mod tests;

const DAY_SECS: u64 = 86_400;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// How far ahead [`next_start`] looks: past a year of blocked dates or
/// windows too short for the run, there is no next run.
const HORIZON_DAYS: u64 = 400;

/// A span of the UTC day on some days of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Bit `d` for weekday `d` (0: Monday).
    days: u8,
    /// Seconds since midnight UTC: `start < end <= 86400`.
    start: u32,
    end: u32,
}

impl Window {
    /// Every day, all day.
    pub const ALWAYS: Window = Window {
        days: 0x7f,
        start: 0,
        end: DAY_SECS as u32,
    };

    /// `[DAYS ]HH:MM-HH:MM`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Window, String> {
        let s = s.trim();
        let (days, span) = match s.rsplit_once(' ') {
            Some((days, span)) => (parse_days(days.trim())?, span),
            None => (0x7f, s),
        };
        let (from, to) = span
            .split_once('-')
            .ok_or("write [DAYS ]HH:MM-HH:MM in UTC, e.g. Tue 09:00-11:00")?;
        let (start, end) = (clock(from)?, clock(to)?);
        if start >= end {
            return Err(format!(
                "{from} is not before {to} (a window ends on the day it starts; 24:00 is midnight)"
            ));
        }
        Ok(Window { days, start, end })
    }

    fn on(&self, weekday: u64) -> bool {
        self.days & (1 << weekday) != 0
    }
}

/// `Mon`, `Mon-Fri`, `Mon,Wed,Fri`: the bits of those weekdays.
fn parse_days(s: &str) -> Result<u8, String> {
    let day = |d: &str| {
        DAY_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(d.trim()))
            .ok_or_else(|| format!("{d:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
    };
    let mut bits = 0u8;
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if a > b {
                    return Err(format!(
                        "{part:?}: the range runs backwards (write Mon-Fri)"
                    ));
                }
                (a..=b).for_each(|d| bits |= 1 << d);
            }
            None => bits |= 1 << day(part)?,
        }
    }
    Ok(bits)
}

/// `HH:MM` (up to `24:00`) as seconds since midnight.
fn clock(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a time of day (HH:MM, UTC)");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

/// `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_date(s: &str) -> Result<u64, String> {
    let at = humantime::parse_rfc3339(&format!("{}T00:00:00Z", s.trim()))
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))?;
    Ok(secs(at) / DAY_SECS)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// When and how long a record practises.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// From one run's start to the next's, at the least.
    pub every: Duration,
    /// Where a run may start and end: at least one.
    pub windows: Vec<Window>,
    /// Days (since 1970-01-01, UTC) with no run at all.
    pub blocked: Vec<u64>,
    /// How long a run withdraws its member.
    pub duration: Duration,
    /// A Prometheus query that must stay at or under its maximum before
    /// and throughout a run.
    pub query: Option<QueryConfig>,
}

/// `practice.query`: asked through Prometheus's HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryConfig {
    /// The server's base URL (`http://prometheus:9090`).
    pub url: String,
    pub expr: String,
    pub max: f64,
    /// How often it is asked while a run is due or running.
    pub every: Duration,
}

/// The earliest time at or after `from` (to the second) at which a run
/// fits whole in one of the schedule's windows on a day not blocked;
/// `None` when none comes within [`HORIZON_DAYS`].
pub fn next_start(schedule: &Schedule, from: SystemTime) -> Option<SystemTime> {
    let from = secs(from)
        + u64::from(
            from.duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .subsec_nanos()
                > 0,
        );
    let duration = schedule.duration.as_secs();
    let first_day = from / DAY_SECS;
    (first_day..first_day + HORIZON_DAYS)
        .filter(|day| !schedule.blocked.contains(day))
        .find_map(|day| {
            // 1970-01-01 was a Thursday (weekday 3).
            let weekday = (day + 3) % 7;
            let midnight = day * DAY_SECS;
            schedule
                .windows
                .iter()
                .filter(|w| w.on(weekday))
                .filter_map(|w| {
                    let start = (midnight + u64::from(w.start)).max(from);
                    (start + duration <= midnight + u64::from(w.end)).then_some(start)
                })
                .min()
        })
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// When the record's next run is due: the first fit at or after `now`
/// and a full `every` after the last run began.
pub fn next_run(
    schedule: &Schedule,
    now: SystemTime,
    last_start: Option<SystemTime>,
) -> Option<SystemTime> {
    let from = last_start.map_or(now, |l| (l + schedule.every).max(now));
    next_start(schedule, from)
}

/// Whether a run may start at `now`.
pub fn due(schedule: &Schedule, now: SystemTime, last_start: Option<SystemTime>) -> bool {
    next_run(schedule, now, last_start).is_some_and(|t| t <= now + Duration::from_secs(1))
}

/// Whose turn it is: the member practised longest ago (never, first),
/// the first in the config's order among equals. `last`: when each member
/// (by set identifier) last began a run.
pub fn turn(members: &[String], last: &BTreeMap<String, SystemTime>) -> usize {
    (0..members.len())
        .min_by_key(|&i| last.get(&members[i]).copied())
        .unwrap_or(0)
}

/// A member as a practice run sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub set_identifier: String,
    /// Its verdict: `None` while not yet known.
    pub healthy: Option<bool>,
}

/// What a record looks like to its practice, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Situation {
    pub members: Vec<Member>,
    /// The record's `min_healthy`.
    pub min_healthy: usize,
    /// A drain or freeze on-call put on the record, in force (its subject).
    pub control: Option<String>,
    /// Route53's control plane is impaired.
    pub control_plane_impaired: bool,
    /// A practice of another record in progress (its record).
    pub other_practice: Option<String>,
    /// The record's Prometheus query, as last asked; `None`: it has none.
    pub query: Option<Query>,
}

/// A practice's Prometheus query (the API's error rate, say), as last
/// asked: its value must stay at or under its `max`.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Under,
    Over {
        expr: String,
        value: f64,
        max: f64,
    },
    /// Not asked yet, or Prometheus did not answer.
    Unknown(String),
}

impl Query {
    /// What a reading of `value` (`None`: no series) says.
    pub fn reading(expr: &str, value: Option<f64>, max: f64) -> Query {
        match value {
            // NaN (0/0: no traffic) is not over anything.
            Some(v) if v > max => Query::Over {
                expr: expr.to_string(),
                value: v,
                max,
            },
            _ => Query::Under,
        }
    }
}

/// Why a run does not start, or ends early (`aborted`).
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A member of the record is not healthy (or not known yet).
    MemberNotHealthy(String),
    /// Withdrawing one member would leave fewer healthy than
    /// `min_healthy`, or none.
    TooFewMembers,
    /// On-call's drain or freeze is in force on the record.
    Control(String),
    ControlPlaneImpaired,
    /// Another record practises: one at a time.
    PracticeInProgress(String),
    /// The record's Prometheus query is over its maximum.
    QueryOver {
        expr: String,
        value: f64,
        max: f64,
    },
    /// The record's Prometheus query has no answer.
    QueryUnknown(String),
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Block::MemberNotHealthy(m) => write!(f, "{m} is not healthy"),
            Block::TooFewMembers => {
                f.write_str("withdrawing a member would leave fewer healthy than min_healthy")
            }
            Block::Control(c) => write!(f, "{c} is in force"),
            Block::ControlPlaneImpaired => f.write_str("Route53's control plane is impaired"),
            Block::PracticeInProgress(r) => write!(f, "{r} is practising"),
            Block::QueryOver { expr, value, max } => {
                write!(f, "the query {expr} is {value}, over {max}")
            }
            Block::QueryUnknown(e) => write!(f, "the query has no answer: {e}"),
        }
    }
}

impl Block {
    /// A label for metrics and events.
    pub fn kind(&self) -> &'static str {
        match self {
            Block::MemberNotHealthy(_) => "member_not_healthy",
            Block::TooFewMembers => "too_few_members",
            Block::Control(_) => "control",
            Block::ControlPlaneImpaired => "control_plane_impaired",
            Block::PracticeInProgress(_) => "practice_in_progress",
            Block::QueryOver { .. } => "query_over",
            Block::QueryUnknown(_) => "query_unknown",
        }
    }
}

/// What keeps a run of member `practised` from starting now, if anything.
pub fn blocks_start(s: &Situation, practised: usize) -> Option<Block> {
    if let Some(m) = s.members.iter().find(|m| m.healthy != Some(true)) {
        return Some(Block::MemberNotHealthy(m.set_identifier.clone()));
    }
    let left = s.members.len().saturating_sub(1);
    if practised >= s.members.len() || left < s.min_healthy.max(1) {
        return Some(Block::TooFewMembers);
    }
    standing_blocks(s)
}

/// The conditions outside the record's members, checked at the start and
/// throughout.
fn standing_blocks(s: &Situation) -> Option<Block> {
    if let Some(c) = &s.control {
        return Some(Block::Control(c.clone()));
    }
    if s.control_plane_impaired {
        return Some(Block::ControlPlaneImpaired);
    }
    if let Some(r) = &s.other_practice {
        return Some(Block::PracticeInProgress(r.clone()));
    }
    match &s.query {
        Some(Query::Over { expr, value, max }) => Some(Block::QueryOver {
            expr: expr.clone(),
            value: *value,
            max: *max,
        }),
        Some(Query::Unknown(e)) => Some(Block::QueryUnknown(e.clone())),
        Some(Query::Under) | None => None,
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran its duration and the rest of the record stayed healthy.
    Passed,
    /// The rest of the record did not carry it: a member failed.
    Failed(String),
    /// Ended early for a condition that says nothing of the record's
    /// failover (on-call's control, the control plane, the practised
    /// member failing for real, stopped by hand).
    Aborted(String),
}

impl Outcome {
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "failed",
            Outcome::Aborted(_) => "aborted",
        }
    }

    pub fn why(&self) -> Option<&str> {
        match self {
            Outcome::Passed => None,
            Outcome::Failed(w) | Outcome::Aborted(w) => Some(w),
        }
    }
}

/// Whether a run of member `practised` that ends at `until` is over at
/// `now`, and how: a failure of another member, or the query over its
/// maximum, fails it at once (the outcome); a standing block (the query
/// without an answer among them) or the practised member failing for
/// real aborts it; reaching `until` passes it.
pub fn run_over(
    s: &Situation,
    practised: usize,
    now: SystemTime,
    until: SystemTime,
) -> Option<Outcome> {
    // Its course run: what comes after does not judge it.
    if now >= until {
        return Some(Outcome::Passed);
    }
    for (i, m) in s.members.iter().enumerate() {
        if i != practised && m.healthy == Some(false) {
            return Some(Outcome::Failed(format!(
                "{} failed while {} was withdrawn",
                m.set_identifier,
                s.members
                    .get(practised)
                    .map_or("?", |p| p.set_identifier.as_str())
            )));
        }
    }
    if let Some(b) = standing_blocks(s) {
        return Some(match b {
            Block::QueryOver { .. } => Outcome::Failed(b.to_string()),
            _ => Outcome::Aborted(b.to_string()),
        });
    }
    if s.members
        .get(practised)
        .is_some_and(|m| m.healthy == Some(false))
    {
        return Some(Outcome::Aborted(format!(
            "{} failed for real",
            s.members[practised].set_identifier
        )));
    }
    None
}
