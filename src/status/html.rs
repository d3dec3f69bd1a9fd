//! The HTML page: server-rendered, refreshes itself, no script, nothing
//! loaded from elsewhere (it must work offline during an incident).

use std::fmt::Write as _;

use super::member::CERT_WARN_DAYS;
use super::page::Folded;
use super::{ago, Status};
use crate::events::Event;
use crate::trend::{TrendPoint, BUCKETS, BUCKET_SECS, WINDOW};

impl Status {
    /// The HTML page: server-rendered, refreshes itself, no script.
    /// The page, with the newest `events` as a timeline; `folded` says
    /// what `Status::fold` left out.
    pub fn html(&self, events: &[Event], folded: &Folded, all: bool) -> String {
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
        if let Some(v) = &self.views {
            let class = if v.last_error.is_some() { "warn" } else { "" };
            let _ = writeln!(
                body,
                "<p class=views>views <span class=\"{class}\">{}</span></p>",
                esc(&v.describe(self.now))
            );
        }
        if let Some(line) = self.control_plane.line() {
            let _ = writeln!(body, "<p class=\"bad control-plane\">{}</p>", esc(&line));
        }
        if let Some(st) = &self.store {
            let class = if st.reachable { "" } else { "bad" };
            let _ = writeln!(
                body,
                "<p class=\"store {class}\">{}</p>",
                esc(&st.line(self.now))
            );
        }
        for t in &self.tasks {
            let _ = writeln!(body, "<p class=\"bad task\">{}</p>", esc(&t.line(self.now)));
        }
        if let Some(l) = &self.lever {
            let class = if l.refused.is_some() || l.last_error.is_some() {
                "warn"
            } else {
                ""
            };
            let _ = writeln!(
                body,
                "<p class=lever>lever <span class=\"{class}\">{}</span></p>",
                esc(&l.describe())
            );
        }
        if !self.controls.is_empty() || self.controls_error.is_some() {
            body.push_str("<div class=controls><h2>On-call's controls</h2><ul>");
            for c in &self.controls {
                let _ = write!(
                    body,
                    "<li class=control><b>{}</b> by {} ({} left): {}</li>",
                    esc(&c.subject()),
                    esc(&c.by),
                    ago(c.until_ms as f64 / 1000.0, self.now),
                    esc(&c.reason)
                );
            }
            if let Some(e) = &self.controls_error {
                let _ = write!(body, "<li class=bad>not read: {}</li>", esc(e));
            }
            body.push_str("</ul></div>\n");
        }
        for line in self
            .probe_tokens
            .iter()
            .filter_map(|t| super::token_failing(t, self.now))
        {
            let _ = writeln!(body, "<p class=bad>{}</p>", esc(&line));
        }
        for z in &self.zones {
            let state = match (&z.last_error, z.last_success) {
                (Some(e), _) => format!("<span class=bad>error: {}</span>", esc(e)),
                (None, Some(t)) => format!("reconciled {} ago", ago(self.now, t)),
                (None, None) => "not reconciled yet".into(),
            };
            let state = match &z.check_error {
                Some(e) => format!(
                    "{state}, <span class=bad>health checks failing: {}</span>",
                    esc(e)
                ),
                None => state,
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
            if !z.held.is_empty() {
                let _ = write!(
                    body,
                    "<div class=held><p class=warn>frozen: {} change(s) held back, applied at unfreeze:</p><ul>",
                    z.held.len()
                );
                for h in &z.held {
                    let _ = write!(body, "<li><code>{}</code></li>", esc(h));
                }
                body.push_str("</ul></div>\n");
            }
            if z.uncorroborated > 0 {
                let _ = writeln!(
                    body,
                    "<p class=warn>{} withdrawal(s) wait: these failures started while nothing else this instance probes passed, so its own network, DNS or descriptors are the likelier cause</p>",
                    z.uncorroborated
                );
            }
            for (what, list) in [
                (
                    "retiring: no longer configured, kept while its record's last",
                    &z.retiring,
                ),
                (
                    "orphaned: holds this owner's claims but is not in the config (retire it)",
                    &z.orphaned,
                ),
            ] {
                if !list.is_empty() {
                    let _ = write!(body, "<div class=held><p class=warn>{what}:</p><ul>");
                    for r in list {
                        let _ = write!(body, "<li><code>{}</code></li>", esc(r));
                    }
                    body.push_str("</ul></div>\n");
                }
            }
        }
        body.push_str(&super::page::note(folded, all));
        for r in &self.records {
            let published = r.members.iter().filter(|m| m.published).count();
            let frozen = match &r.frozen {
                Some(c) => format!(
                    " <span class=\"pill frozen\">frozen by {}: {}</span>",
                    esc(&c.by),
                    esc(&c.reason)
                ),
                None => String::new(),
            };
            let _ = writeln!(
                body,
                "<h2>{} {} <small>{published} of {} published, min_healthy {}</small>{frozen}</h2>",
                esc(&r.name),
                esc(&r.rtype),
                r.members.len(),
                r.min_healthy
            );
            let views_head = if self.views.is_some() {
                "<th>vantage points</th>"
            } else {
                ""
            };
            let _ = writeln!(
                body,
                "<table><tr><th>region</th><th>set identifier</th><th>verdict</th><th>published</th><th>why</th><th>since</th><th>latency</th><th>last 15 min</th><th>last status</th><th>reason</th>{views_head}<th>Route53 check</th><th>certificate</th><th>target</th></tr>",
            );
            for m in &r.members {
                let why_class = match m.decision.as_deref().unwrap_or("-") {
                    "min_healthy" | "last_member" | "max_withdrawn" | "fail_open" | "conflict"
                    | "damped" | "quorum" | "drained" => "warn",
                    _ => "",
                };
                let why = m.why_text(self.now);
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
                let views = if self.views.is_some() {
                    let disagree = m.views.iter().any(|v| v.verdict != m.agreed);
                    let class = if disagree { "warn" } else { "" };
                    format!("<td class=\"views {class}\">{}</td>", esc(&m.views_text()))
                } else {
                    String::new()
                };
                let cert = match m.cert_days_left(self.now) {
                    None => "-".to_string(),
                    Some(d) if d < CERT_WARN_DAYS => {
                        format!("<span class=warn>{d} days left</span>")
                    }
                    Some(d) => format!("{d} days left"),
                };
                let _ = writeln!(
                    body,
                    "<tr class={v}><td>{}</td><td>{}</td><td><span class=\"pill {v}\">{v}</span></td><td>{}</td><td class={why_class}>{}</td><td>{} ago</td><td>{}</td><td class=trend>{}</td><td>{}</td><td>{}</td>{views}<td class=check>{check}</td><td class=cert>{cert}</td><td>{}</td></tr>",
                    esc(&m.region),
                    esc(&m.set_identifier),
                    if m.published { "yes" } else { "<b>no</b>" },
                    esc(&why),
                    ago(self.now, m.since),
                    m.latency_ms.map(|l| format!("{l:.1} ms")).unwrap_or_else(|| "-".into()),
                    sparkline(&m.trend, self.now),
                    m.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    esc(&m.reason_text()),
                    esc(&m.target),
                    v = esc(&m.verdict),
                );
            }
            body.push_str("</table>\n");
            if let Some(p) = &r.practice {
                body.push_str(&format!(
                    "<p class=practice>{}</p>\n",
                    esc(&p.line(&r.name, &r.rtype))
                ));
            }
            for m in &r.members {
                if let Some(t) = &m.traffic {
                    body.push_str(&format!(
                        "<p class=traffic>traffic {}: {}</p>\n",
                        esc(&m.region),
                        esc(&t.text())
                    ));
                }
            }
            if let Some(p) = &r.parity {
                body.push_str(&parity_html(p, self.now));
            }
        }
        body.push_str(&timeline(events, self.now));
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
.pill.frozen {{ background: #1565c0; font-size: .8em; }}
svg.spark {{ vertical-align: middle; }}
ol.timeline {{ list-style: none; padding: 0; }}
ol.timeline li {{ padding: .15em 0; border-bottom: 1px solid #eee; }}
ol.timeline time {{ color: #666; font-family: monospace; margin-right: .6em; }}
ol.timeline .kind {{ display: inline-block; min-width: 7em; font-weight: bold; }}
.ev-blocked .kind, .ev-drain .kind, .ev-freeze .kind {{ color: #b26a00; }}
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

/// A member's last 15 minutes as an inline SVG (no script, no external
/// file: the page works offline): mean latency per bucket as a line, red
/// bars where probes failed (as tall as the share that failed); the title
/// says the figures.
fn sparkline(points: &[TrendPoint], now: f64) -> String {
    const W: f64 = 150.0;
    const H: f64 = 24.0;
    if points.is_empty() {
        return "-".into();
    }
    let window = WINDOW.as_secs_f64();
    let bucket = BUCKET_SECS as f64;
    let start = now - window;
    let top = points.iter().map(|p| p.mean_ms).fold(1.0, f64::max);
    let x = |at: f64| ((at + bucket / 2.0 - start) / window * W).clamp(0.0, W);
    let y = |ms: f64| H - 1.0 - ms / top * (H - 2.0);
    let mut bars = String::new();
    let mut line = Vec::new();
    let (mut probes, mut failures) = (0, 0);
    for p in points {
        probes += p.probes;
        failures += p.failures;
        if p.failures > 0 {
            let h = H * f64::from(p.failures) / f64::from(p.probes.max(1));
            let _ = write!(
                bars,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#c62828" opacity=".6"/>"##,
                x(p.at) - W / (2.0 * BUCKETS as f64),
                H - h,
                W / BUCKETS as f64
            );
        }
        line.push(format!("{:.1},{:.1}", x(p.at), y(p.mean_ms)));
        let _ = write!(
            bars,
            r##"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="#1565c0"/>"##,
            x(p.at),
            y(p.mean_ms)
        );
    }
    let title = format!(
        "last 15 min: {probes} probes, {failures} failed, mean up to {top:.0} ms, slowest {:.0} ms",
        points.iter().map(|p| p.max_ms).fold(0.0, f64::max)
    );
    format!(
        r##"<svg class=spark width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title><line x1="0" y1="{H}" x2="{W}" y2="{H}" stroke="#ccc"/>{bars}<polyline points="{}" fill="none" stroke="#1565c0" stroke-width="1.5"/></svg>"##,
        line.join(" "),
        t = esc(&title)
    )
}

/// The newest events, newest first.
fn timeline(events: &[Event], now: f64) -> String {
    let mut out =
        String::from("<h2>Timeline <small>newest first</small></h2>\n<ol class=timeline>");
    for e in events {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(e.at.max(0.0));
        let stamp = humantime::format_rfc3339_seconds(at).to_string();
        let subject = match (&e.record, &e.region) {
            (Some(r), Some(g)) => format!("{r} {g}: "),
            (Some(r), None) => format!("{r}: "),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<li class=\"ev ev-{k}\"><time datetime=\"{stamp}\" title=\"{} ago\">{}</time><span class=kind>{k}</span> {}{}</li>",
            ago(now, e.at),
            esc(stamp.get(11..19).unwrap_or(&stamp)),
            esc(&subject),
            esc(&e.message),
            k = esc(&e.event),
        );
    }
    if events.is_empty() {
        out.push_str("<li>nothing yet</li>");
    }
    out.push_str("</ol>\n");
    out
}

/// A record's parity under its table: the state, then one line per
/// difference and per region that could not be read.
fn parity_html(p: &crate::parity::ParityReport, now: f64) -> String {
    use crate::parity::ParityState;
    let state = match p.state {
        ParityState::InSync => format!("in sync across {}", esc(&p.regions.join(", "))),
        ParityState::Differs => format!(
            "<span class=warn>{} difference(s) between the regions</span>",
            p.differences.len()
        ),
        ParityState::Unknown => {
            "<span class=warn>unknown: a region could not be read</span>".to_string()
        }
    };
    let ignored = if p.ignored > 0 {
        format!(", {} ignored", p.ignored)
    } else {
        String::new()
    };
    let mut out = format!(
        "<div class=parity><p>parity: {state} <small>(checked {} ago{ignored})</small></p>",
        ago(now, p.checked_at)
    );
    if !p.differences.is_empty() || !p.errors.is_empty() {
        out.push_str("<ul>");
        for d in &p.differences {
            let _ = write!(out, "<li class=difference>{}</li>", esc(&d.line));
        }
        for e in &p.errors {
            let _ = write!(
                out,
                "<li class=bad>{} not read: {}</li>",
                esc(&e.region),
                esc(&e.error)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</div>\n");
    out
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
