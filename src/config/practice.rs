//! `practice` (in `defaults`, and per record): practice runs, off unless
//! configured (`crate::decide::practice` for what a run is). A record's
//! own keys override the defaults' key by key; `enabled: false` turns a
//! record's off.

use std::time::Duration;

use super::raw::{RawPractice, RawPracticeQuery};
use super::{q, Validator};
use crate::decide::practice::{parse_date, QueryConfig, Schedule, Window};

pub const DEFAULT_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30 * 60);
/// A practice more often than this spends more of the record's safety
/// margin on practice than on the real thing.
pub const MIN_EVERY: Duration = Duration::from_secs(3600);
/// Long enough to see traffic move; short runs are for tests.
pub const MIN_DURATION: Duration = Duration::from_secs(5);
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// How often a practice's query is asked while a run is due or running.
pub const DEFAULT_QUERY_EVERY: Duration = Duration::from_secs(15);
pub const MIN_QUERY_EVERY: Duration = Duration::from_secs(1);

impl Validator {
    /// A record's schedule, from its own `practice` over the defaults';
    /// `None` when it does not practise (or the keys are wrong: said).
    pub(super) fn practice(
        &mut self,
        path: &str,
        own: Option<&RawPractice>,
        defaults: Option<&RawPractice>,
    ) -> Option<Schedule> {
        if own.is_none() && defaults.is_none() {
            return None;
        }
        let pick = |f: fn(&RawPractice) -> Option<&'_ str>| {
            own.and_then(f).map(|v| (path.to_string(), v)).or_else(|| {
                defaults
                    .and_then(f)
                    .map(|v| ("defaults.practice".to_string(), v))
            })
        };
        let enabled = own
            .and_then(|p| p.enabled)
            .or_else(|| defaults.and_then(|p| p.enabled))
            .unwrap_or(true);
        if !enabled {
            return None;
        }
        let before = self.errors.len();
        let every_at = pick(|p| p.every.as_deref());
        let duration_at = pick(|p| p.duration.as_deref());
        let (every, duration) = (
            self.practice_duration(every_at, "every", DEFAULT_EVERY, MIN_EVERY, None),
            self.practice_duration(
                duration_at,
                "duration",
                DEFAULT_DURATION,
                MIN_DURATION,
                Some(MAX_DURATION),
            ),
        );
        let windows_from = own
            .and_then(|p| p.windows.as_ref().map(|w| (path.to_string(), w)))
            .or_else(|| {
                defaults
                    .and_then(|p| p.windows.as_ref())
                    .map(|w| ("defaults.practice".into(), w))
            });
        let mut windows = Vec::new();
        match windows_from {
            None => windows.push(Window::ALWAYS),
            Some((at, list)) if list.is_empty() => self.err(
                format!("{at}.windows"),
                "must list at least one window (or leave it out: any time)",
            ),
            Some((at, list)) => {
                for (i, w) in list.iter().enumerate() {
                    match Window::parse(w) {
                        Ok(w) => windows.push(w),
                        Err(e) => self.err(format!("{at}.windows[{i}]"), format!("{}: {e}", q(w))),
                    }
                }
            }
        }
        let dates_from = own
            .and_then(|p| p.blocked_dates.as_ref().map(|d| (path.to_string(), d)))
            .or_else(|| {
                defaults
                    .and_then(|p| p.blocked_dates.as_ref())
                    .map(|d| ("defaults.practice".into(), d))
            });
        let mut blocked = Vec::new();
        if let Some((at, list)) = dates_from {
            for (i, d) in list.iter().enumerate() {
                match parse_date(d) {
                    Ok(day) => blocked.push(day),
                    Err(e) => self.err(format!("{at}.blocked_dates[{i}]"), e),
                }
            }
        }
        let query = match own.and_then(|p| p.query.as_ref()) {
            Some(q) => self.practice_query(&format!("{path}.query"), q),
            None => match defaults.and_then(|p| p.query.as_ref()) {
                Some(q) => self.practice_query("defaults.practice.query", q),
                None => Some(None),
            },
        };
        if self.errors.len() != before {
            return None;
        }
        let schedule = Schedule {
            every: every?,
            windows,
            blocked,
            duration: duration?,
            query: query?,
        };
        if schedule.duration > schedule.every {
            let at = pick(|p| p.duration.as_deref()).map_or(path.to_string(), |(at, _)| at);
            self.err(
                format!("{at}.duration"),
                "must not be longer than every (one run at a time)",
            );
            return None;
        }
        Some(schedule)
    }

    /// A practice's query, whole (a record's replaces the defaults').
    fn practice_query(
        &mut self,
        path: &str,
        raw: &RawPracticeQuery,
    ) -> Option<Option<QueryConfig>> {
        let before = self.errors.len();
        let url = self.required(&format!("{path}.url"), &raw.url).cloned();
        if let Some(u) = &url {
            let parsed = url::Url::parse(u);
            if !parsed.is_ok_and(|p| matches!(p.scheme(), "http" | "https")) {
                self.err(
                    format!("{path}.url"),
                    format!("{} is not an http(s) URL (the Prometheus server's, e.g. http://prometheus:9090)", q(u)),
                );
            }
        }
        let expr = self.required(&format!("{path}.expr"), &raw.expr).cloned();
        if raw.max.is_none() {
            self.err(
                format!("{path}.max"),
                "missing (required): the value the query must stay at or under",
            );
        }
        let every = self.duration(
            &format!("{path}.every"),
            raw.every.as_deref(),
            DEFAULT_QUERY_EVERY,
        );
        if let Some(e) = every.filter(|e| *e < MIN_QUERY_EVERY) {
            self.err(
                format!("{path}.every"),
                format!(
                    "{} must be at least {}",
                    q(&humantime::format_duration(e).to_string()),
                    humantime::format_duration(MIN_QUERY_EVERY)
                ),
            );
        }
        if self.errors.len() != before {
            return None;
        }
        Some(Some(QueryConfig {
            url: url?,
            expr: expr?,
            max: raw.max?,
            every: every?,
        }))
    }

    /// `key` as written at `at` (the record's, or the defaults'), checked
    /// against its bounds; the default when not written.
    fn practice_duration(
        &mut self,
        written: Option<(String, &str)>,
        key: &str,
        default: Duration,
        min: Duration,
        max: Option<Duration>,
    ) -> Option<Duration> {
        let Some((at, v)) = written else {
            return Some(default);
        };
        let path = format!("{at}.{key}");
        let d = self.duration(&path, Some(v), default)?;
        if d < min || max.is_some_and(|m| d > m) {
            let bounds = match max {
                Some(m) => format!(
                    "between {} and {}",
                    humantime::format_duration(min),
                    humantime::format_duration(m)
                ),
                None => format!("at least {}", humantime::format_duration(min)),
            };
            self.err(path, format!("{} must be {bounds}", q(v)));
            return None;
        }
        Some(d)
    }
}
