//! One member's snapshot, read off its state: its verdicts, decision,
//! views, last probe, target and Route53 health check, and the words the
//! table and the page show for them.

use std::time::{Duration, SystemTime};

use super::{ago, HealthCheckSnapshot, MemberSnapshot, ViewSnapshot};
use crate::config::MemberConfig;
use crate::controller::MemberState;
use crate::decide::controls::Control;
use crate::decide::quorum::Ignored;
use crate::time::unix_secs as unix;

/// Fewer days left than this shows as a warning (as the chart's alert).
pub const CERT_WARN_DAYS: i64 = 14;

impl HealthCheckSnapshot {
    pub(super) fn of(
        enabled: bool,
        verdict: crate::decide::verdict::Verdict,
        m: &MemberState,
    ) -> Option<Self> {
        use crate::decide::verdict::Verdict;
        if !enabled && m.health_check_id.is_none() {
            return None;
        }
        let r53 = m.route53_health.as_ref();
        let healthy = r53.map(|h| h.report.is_healthy());
        Some(HealthCheckSnapshot {
            id: m.health_check_id.clone(),
            route53: healthy.map(|h| if h { "healthy" } else { "unhealthy" }.to_string()),
            checkers_healthy: r53.map(|h| h.report.healthy),
            checkers_total: r53.map(|h| h.report.total),
            failure: r53.and_then(|h| h.report.failure.clone()),
            checked: r53.map(|h| unix(h.at)),
            disagrees: match (healthy, verdict) {
                (Some(_), Verdict::Unknown) | (None, _) => false,
                (Some(h), v) => h != (v == Verdict::Healthy),
            },
            error: m.health_check_error.clone(),
        })
    }

    /// `healthy 3/3`, `unhealthy 0/3 (disagrees)`, `pending`, `error`.
    pub(crate) fn short(&self) -> String {
        match (&self.route53, &self.error) {
            (_, Some(_)) => "error".into(),
            (Some(v), None) => {
                let mut s = format!(
                    "{v} {}/{}",
                    self.checkers_healthy.unwrap_or(0),
                    self.checkers_total.unwrap_or(0)
                );
                if self.disagrees {
                    s.push_str(" (disagrees)");
                }
                s
            }
            (None, None) if self.id.is_some() => "not read yet".into(),
            (None, None) => "pending".into(),
        }
    }
}

impl MemberSnapshot {
    /// The reason column: the failure behind the verdict, or why the last
    /// probe observed nothing (the verdict then stays as it was).
    pub fn reason_text(&self) -> String {
        match (&self.not_observed, &self.reason) {
            (Some(n), _) => format!("not observed: {n}"),
            (None, Some(r)) => r.clone(),
            (None, None) => "-".into(),
        }
    }

    /// Why, for the table and the page: a damped member says for how
    /// long, a drained one by whom and until when, a drain held in says
    /// which rule holds it.
    pub fn why_text(&self, now: f64) -> String {
        let until = |ms: u64| ago(ms as f64 / 1000.0, now);
        match (self.decision.as_deref(), self.damped_until, &self.drain) {
            (Some("damped"), Some(until), _) => {
                format!("damped ({} left)", ago(until, now))
            }
            (Some("drained"), _, Some(d)) => {
                format!(
                    "drained by {} ({} left): {}",
                    d.by,
                    until(d.until_ms),
                    d.reason
                )
            }
            (Some(why), _, Some(d)) => {
                format!("{why}: drain by {} held by {why}", d.by)
            }
            (Some(why), _, None) => why.to_string(),
            (None, _, _) => "-".to_string(),
        }
    }

    /// Days until the certificate expires, to the nearest day (negative
    /// once expired).
    pub fn cert_days_left(&self, now: f64) -> Option<i64> {
        self.cert_not_after
            .map(|t| ((t - now) / 86_400.0).round() as i64)
    }

    /// The vantage points, for the table and the page: `a=healthy
    /// b=unhealthy c=healthy(stale)`, this instance first; empty without
    /// `ha`.
    pub fn views_text(&self) -> String {
        let words: Vec<String> = self
            .views
            .iter()
            .map(|v| match &v.ignored {
                Some(why) => format!("{}={}({why})", v.instance, v.verdict),
                None => format!("{}={}", v.instance, v.verdict),
            })
            .collect();
        words.join(" ")
    }

    pub(super) fn of(
        mc: &MemberConfig,
        m: &MemberState,
        me: Option<(&str, bool, Duration)>,
        drain: Option<&Control>,
    ) -> Self {
        let (successes, failures) = m.health.consecutive();
        let now = std::time::Instant::now();
        let views = me
            .map(|(identity, counted, max_age)| {
                let local = m.local(counted);
                let mine = ViewSnapshot {
                    instance: identity.to_string(),
                    this_instance: true,
                    verdict: m.health.verdict().as_str().to_string(),
                    written: unix(m.health.since()),
                    counted,
                    ignored: (!counted).then(|| Ignored::EverythingDown.as_str().to_string()),
                };
                let others = m.votes.iter().map(|v| {
                    let standing = v.standing(&local, now, max_age);
                    ViewSnapshot {
                        instance: v.instance.clone(),
                        this_instance: false,
                        verdict: v.verdict.as_str().to_string(),
                        written: unix(v.written),
                        counted: standing.is_none(),
                        ignored: standing.map(|i| i.as_str().to_string()),
                    }
                });
                std::iter::once(mine).chain(others).collect()
            })
            .unwrap_or_default();
        MemberSnapshot {
            region: mc.region.clone(),
            set_identifier: mc.set_identifier.clone(),
            verdict: m.health.verdict().as_str().to_string(),
            agreed: m.agreed.as_str().to_string(),
            views,
            published: m.published,
            decision: m.why.map(|w| w.as_str().to_string()),
            damped_until: m.damping.held_until(SystemTime::now()).map(unix),
            flaps: m.damping.flaps,
            drain: drain.cloned(),
            since: unix(m.health.since()),
            reason: m.health.reason().map(str::to_string),
            not_observed: m
                .last_probe
                .as_ref()
                .and_then(|p| p.failure.as_ref())
                .filter(|f| !f.kind.observes())
                .map(|f| f.to_string()),
            conflict: m.conflict,
            latency_ms: m
                .last_probe
                .as_ref()
                .map(|p| p.timings.total.as_secs_f64() * 1000.0),
            last_status: m.last_probe.as_ref().and_then(|p| p.status),
            baseline_ms: mc
                .probe
                .slow_vs_baseline
                .and_then(|s| m.baseline.current(SystemTime::now(), &s)),
            last_probe: m.last_probe.as_ref().map(|p| unix(p.at)),
            consecutive_successes: successes,
            consecutive_failures: failures,
            target: target_text(&mc.target, m),
            cert_not_after: m.cert_not_after.map(unix),
            health_check: HealthCheckSnapshot::of(
                mc.health_check.is_some() || mc.existing_check.is_some(),
                m.health.verdict(),
                m,
            ),
            trend: Vec::new(),
            traffic: None,
        }
    }
}

fn target_text(t: &crate::config::Target, m: &MemberState) -> String {
    use crate::config::Target;
    match t {
        Target::Values(v) => v.join(", "),
        Target::Cname(c) => format!("CNAME {c}"),
        Target::Alias(a) => format!("alias {}", a.dns_name),
        Target::ApiGateway { domain, .. } => match (&m.discovered, &m.discovery_error) {
            (Some(a), Some(e)) if m.discovered_from_zone => format!(
                "API Gateway {domain} → {} (from the zone's record; lookup failed: {e})",
                a.dns_name
            ),
            (Some(a), None) if m.discovered_from_zone => format!(
                "API Gateway {domain} → {} (from the zone's record; looking it up)",
                a.dns_name
            ),
            (Some(a), None) => format!("API Gateway {domain} → {}", a.dns_name),
            (Some(a), Some(e)) => format!(
                "API Gateway {domain} → {} (refresh failed: {e})",
                a.dns_name
            ),
            (None, Some(e)) => format!("API Gateway {domain}: not discovered: {e}"),
            (None, None) => format!("API Gateway {domain}: discovering"),
        },
    }
}
