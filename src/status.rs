//! The snapshot on-call reads: built from the runtime state, served as JSON
//! (`/status`), as an HTML page (`/`), and printed as a table by the
//! `status` command. Holds no secret: probe headers are never part of it.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::controller::Runtime;

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneSnapshot {
    pub name: String,
    pub id: Option<String>,
    pub last_success: Option<f64>,
    pub last_error: Option<String>,
    pub changes_applied: u64,
    pub pending_changes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordSnapshot {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub zone: String,
    pub min_healthy: usize,
    pub members: Vec<MemberSnapshot>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberSnapshot {
    pub region: String,
    pub set_identifier: String,
    /// `unknown`, `healthy` or `unhealthy`.
    pub verdict: String,
    pub published: bool,
    /// Why the member is (not) published: healthy, unhealthy, unknown,
    /// conflict, min_healthy, last_member, fail_open; null before the first
    /// reconcile.
    pub decision: Option<String>,
    /// The verdict holds since (unix seconds).
    pub since: f64,
    /// The failure behind the verdict, or the latest failure seen.
    pub reason: Option<String>,
    pub conflict: bool,
    pub latency_ms: Option<f64>,
    pub last_status: Option<u16>,
    pub last_probe: Option<f64>,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
    pub target: String,
    /// The member's Route53 health check; null when checks are disabled.
    pub health_check: Option<HealthCheckSnapshot>,
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

impl HealthCheckSnapshot {
    fn of(
        enabled: bool,
        verdict: crate::decide::verdict::Verdict,
        m: &crate::controller::MemberState,
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
    fn short(&self) -> String {
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

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl Status {
    pub fn snapshot(rt: &Runtime) -> Status {
        let zones = rt
            .zone_status()
            .into_iter()
            .map(|(name, z)| ZoneSnapshot {
                name,
                id: z.id,
                last_success: z.last_success.map(unix),
                last_error: z.last_error,
                changes_applied: z.changes_applied,
                pending_changes: z.pending_changes,
            })
            .collect();
        let records = rt
            .config
            .records
            .iter()
            .enumerate()
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
                        let m = rt.member(ri, mi);
                        let (successes, failures) = m.health.consecutive();
                        MemberSnapshot {
                            region: mc.region.clone(),
                            set_identifier: mc.set_identifier.clone(),
                            verdict: m.health.verdict().as_str().to_string(),
                            published: m.published,
                            decision: m.why.map(|w| w.as_str().to_string()),
                            since: unix(m.health.since()),
                            reason: m.health.reason().map(str::to_string),
                            conflict: m.conflict,
                            latency_ms: m
                                .last_probe
                                .as_ref()
                                .map(|p| p.timings.total.as_secs_f64() * 1000.0),
                            last_status: m.last_probe.as_ref().and_then(|p| p.status),
                            last_probe: m.last_probe.as_ref().map(|p| unix(p.at)),
                            consecutive_successes: successes,
                            consecutive_failures: failures,
                            target: target_text(&mc.target, &m),
                            health_check: HealthCheckSnapshot::of(
                                mc.health_check.is_some(),
                                m.health.verdict(),
                                &m,
                            ),
                        }
                    })
                    .collect(),
            })
            .collect();
        Status {
            owner: rt.config.owner.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            provider: rt.provider_kind.to_string(),
            ready: rt.is_ready(),
            started: unix(rt.started),
            now: unix(SystemTime::now()),
            zones,
            records,
            config: None,
            lease: rt.lease.as_ref().map(|l| l.snapshot()),
        }
    }

    /// The member of the first record in `region`.
    pub fn member(&self, region: &str) -> Option<&MemberSnapshot> {
        self.records
            .first()?
            .members
            .iter()
            .find(|m| m.region == region)
    }

    /// A table for a terminal: one line per member.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "owner {}  provider {}  ready {}  version {}",
            self.owner,
            self.provider,
            if self.ready { "yes" } else { "NO" },
            self.version
        );
        if let Some(c) = &self.config {
            let _ = write!(out, "config {}", c.hash);
            if let Some(e) = &c.last_reload_error {
                let _ = write!(out, "  RELOAD REFUSED: {e}");
            }
            out.push('\n');
        }
        if let Some(l) = &self.lease {
            let _ = writeln!(out, "lease {}", l.describe(self.now));
        }
        for z in &self.zones {
            let last = z
                .last_success
                .map(|t| format!("{} ago", ago(self.now, t)))
                .unwrap_or_else(|| "never".into());
            let _ = write!(out, "zone {}  last reconcile {last}", z.name);
            if z.pending_changes > 0 {
                let _ = write!(out, "  {} change(s) pending", z.pending_changes);
            }
            if let Some(e) = &z.last_error {
                let _ = write!(out, "  ERROR: {e}");
            }
            out.push('\n');
        }
        let header = [
            "RECORD",
            "TYPE",
            "REGION",
            "VERDICT",
            "PUBLISHED",
            "WHY",
            "SINCE",
            "LATENCY",
            "ROUTE53",
            "REASON",
        ];
        let mut rows: Vec<[String; 10]> = Vec::new();
        for r in &self.records {
            for m in &r.members {
                rows.push([
                    r.name.clone(),
                    r.rtype.clone(),
                    m.region.clone(),
                    m.verdict.clone(),
                    if m.published { "yes" } else { "no" }.into(),
                    m.decision.clone().unwrap_or_else(|| "-".into()),
                    ago(self.now, m.since),
                    m.latency_ms
                        .map(|l| format!("{l:.1}ms"))
                        .unwrap_or_else(|| "-".into()),
                    m.health_check
                        .as_ref()
                        .map(HealthCheckSnapshot::short)
                        .unwrap_or_else(|| "-".into()),
                    m.reason.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
        }
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[String]| {
            let last = cells.len() - 1;
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                if i == last {
                    let _ = write!(out, "{c}");
                } else {
                    let _ = write!(out, "{c:<w$}  ");
                }
            }
            out.push('\n');
        };
        line(&header.map(String::from));
        for row in &rows {
            line(row);
        }
        out
    }

    /// The HTML page: server-rendered, refreshes itself, no script.
    pub fn html(&self) -> String {
        let mut body = String::new();
        if let Some(c) = &self.config {
            let _ = write!(body, "<p class=config>config <b>{}</b>", esc(&c.hash));
            if let Some(e) = &c.last_reload_error {
                let _ = write!(
                    body,
                    ": <span class=bad>reload refused, the previous config runs: {}</span>",
                    esc(e)
                );
            }
            body.push_str("</p>\n");
        }
        if let Some(l) = &self.lease {
            let class = if l.role == "leader" { "" } else { "warn" };
            let _ = writeln!(
                body,
                "<p class=lease>lease <span class=\"{class}\">{}</span></p>",
                esc(&l.describe(self.now))
            );
        }
        for z in &self.zones {
            let state = match (&z.last_error, z.last_success) {
                (Some(e), _) => format!("<span class=bad>error: {}</span>", esc(e)),
                (None, Some(t)) => format!("reconciled {} ago", ago(self.now, t)),
                (None, None) => "not reconciled yet".into(),
            };
            let pending = if z.pending_changes > 0 {
                format!(", {} change(s) pending", z.pending_changes)
            } else {
                String::new()
            };
            let _ = writeln!(
                body,
                "<p class=zone>zone <b>{}</b> ({}): {state}{pending}</p>",
                esc(&z.name),
                esc(z.id.as_deref().unwrap_or("?"))
            );
        }
        for r in &self.records {
            let published = r.members.iter().filter(|m| m.published).count();
            let _ = writeln!(
                body,
                "<h2>{} {} <small>{published} of {} published, min_healthy {}</small></h2>",
                esc(&r.name),
                esc(&r.rtype),
                r.members.len(),
                r.min_healthy
            );
            body.push_str(
                "<table><tr><th>region</th><th>set identifier</th><th>verdict</th><th>published</th><th>why</th><th>since</th><th>latency</th><th>last status</th><th>reason</th><th>Route53 check</th><th>target</th></tr>\n",
            );
            for m in &r.members {
                let why = m.decision.as_deref().unwrap_or("-");
                let why_class = match why {
                    "min_healthy" | "last_member" | "fail_open" | "conflict" => "warn",
                    _ => "",
                };
                let check = match &m.health_check {
                    None => "-".to_string(),
                    Some(h) => {
                        let class = if h.disagrees || h.error.is_some() {
                            "warn"
                        } else {
                            ""
                        };
                        let title = h.error.as_deref().or(h.failure.as_deref()).unwrap_or("");
                        format!(
                            "<span class=\"{class}\" title=\"{}\">{}</span> <small>{}</small>",
                            esc(title),
                            esc(&h.short()),
                            esc(h.id.as_deref().unwrap_or(""))
                        )
                    }
                };
                let _ = writeln!(
                    body,
                    "<tr class={v}><td>{}</td><td>{}</td><td><span class=\"pill {v}\">{v}</span></td><td>{}</td><td class={why_class}>{}</td><td>{} ago</td><td>{}</td><td>{}</td><td>{}</td><td class=check>{check}</td><td>{}</td></tr>",
                    esc(&m.region),
                    esc(&m.set_identifier),
                    if m.published { "yes" } else { "<b>no</b>" },
                    esc(why),
                    ago(self.now, m.since),
                    m.latency_ms.map(|l| format!("{l:.1} ms")).unwrap_or_else(|| "-".into()),
                    m.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    esc(m.reason.as_deref().unwrap_or("")),
                    esc(&m.target),
                    v = esc(&m.verdict),
                );
            }
            body.push_str("</table>\n");
        }
        format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>route53-failover: {owner}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.3em; }} h2 {{ font-size: 1.1em; margin-top: 1.5em; }}
h2 small {{ font-weight: normal; color: #666; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: .3em .8em; border-bottom: 1px solid #ddd; }}
.pill {{ padding: .1em .6em; border-radius: 1em; color: #fff; }}
.pill.healthy {{ background: #2e7d32; }} .pill.unhealthy {{ background: #c62828; }}
.pill.unknown {{ background: #757575; }}
.warn {{ color: #b26a00; font-weight: bold; }} .bad {{ color: #c62828; }}
</style></head>
<body>
<h1>route53-failover <small>owner {owner}, provider {provider}, {ready}, v{version}</small></h1>
{body}
<p><a href="/status">/status</a> (JSON) · <a href="/metrics">/metrics</a></p>
</body></html>
"#,
            owner = esc(&self.owner),
            provider = esc(&self.provider),
            ready = if self.ready {
                "ready"
            } else {
                "<b class=bad>not ready</b>"
            },
            version = esc(&self.version),
        )
    }
}

fn target_text(t: &crate::config::Target, m: &crate::controller::MemberState) -> String {
    use crate::config::Target;
    match t {
        Target::Values(v) => v.join(", "),
        Target::Cname(c) => format!("CNAME {c}"),
        Target::Alias(a) => format!("alias {}", a.dns_name),
        Target::ApiGateway { domain, .. } => match (&m.discovered, &m.discovery_error) {
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

/// HTML-escapes text for element content and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_it_shows() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn ago_reads_at_a_glance() {
        assert_eq!(ago(100.0, 97.0), "3s");
        assert_eq!(ago(400.0, 150.0), "4m10s");
        assert_eq!(ago(10_000.0, 2_500.0), "2h5m");
        assert_eq!(ago(1.0, 5.0), "0s", "clock skew never shows negative");
    }
}
