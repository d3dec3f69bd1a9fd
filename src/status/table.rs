//! The `status` command's table: one line per member, for a terminal.

use std::fmt::Write as _;

use super::{ago, HealthCheckSnapshot, Status, ViewsSnapshot};

impl ViewsSnapshot {
    /// `2 other instance(s), read 3s ago, written 5s ago`, and the error.
    pub fn describe(&self, now: f64) -> String {
        let when =
            |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{} ago", ago(now, t)));
        let mut s = format!(
            "{} other instance(s), read {}, written {}",
            self.instances,
            when(self.last_read),
            when(self.last_write)
        );
        if let Some(e) = &self.last_error {
            s.push_str(&format!("  ERROR: {e}"));
        }
        s
    }
}

impl Status {
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
        if let Some(v) = &self.views {
            let _ = writeln!(out, "views {}", v.describe(self.now));
        }
        if let Some(line) = self.control_plane.line() {
            let _ = writeln!(out, "{line}");
        }
        if let Some(st) = &self.store {
            let _ = writeln!(out, "{}", st.line(self.now));
        }
        for t in &self.tasks {
            let _ = writeln!(out, "{}", t.line(self.now));
        }
        if let Some(l) = &self.lever {
            let _ = writeln!(out, "{}", l.describe());
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
            if let Some(e) = &z.check_error {
                let _ = write!(out, "  health checks failing: {e}");
            }
            out.push('\n');
            for h in &z.held {
                let _ = writeln!(out, "  held by a freeze: {h}");
            }
            if z.uncorroborated > 0 {
                let _ = writeln!(
                    out,
                    "  {} withdrawal(s) wait: nothing else this instance probes passes (its own network, DNS or descriptors?)",
                    z.uncorroborated
                );
            }
            for r in &z.retiring {
                let _ = writeln!(
                    out,
                    "  retiring (no longer configured, kept while its record's last): {r}"
                );
            }
            for r in &z.rejected {
                let _ = writeln!(out, "  REJECTED by Route53, held out until it changes: {r}");
            }
            for r in &z.orphaned {
                let _ = writeln!(
                    out,
                    "  orphaned (claimed, not in the config; retire it): {r}"
                );
            }
        }
        for c in &self.controls {
            let _ = writeln!(
                out,
                "{} by {} ({} left): {}",
                c.subject(),
                c.by,
                ago(c.until_ms as f64 / 1000.0, self.now),
                c.reason
            );
        }
        if let Some(e) = &self.controls_error {
            let _ = writeln!(out, "controls NOT READ: {e}");
        }
        for line in self
            .probe_tokens
            .iter()
            .filter_map(|t| super::token_failing(t, self.now))
        {
            let _ = writeln!(out, "{line}");
        }
        let with_views = self.views.is_some();
        let mut header = vec![
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
        if with_views {
            header.insert(9, "VIEWS");
        }
        let with_certs = self
            .records
            .iter()
            .flat_map(|r| &r.members)
            .any(|m| m.cert_not_after.is_some());
        if with_certs {
            header.insert(header.len() - 1, "CERT");
        }
        let mut rows: Vec<Vec<String>> = Vec::new();
        for r in &self.records {
            for m in &r.members {
                let mut row = vec![
                    r.name.clone(),
                    r.rtype.clone(),
                    m.region.clone(),
                    m.verdict.clone(),
                    if m.published { "yes" } else { "no" }.into(),
                    m.why_text(self.now),
                    ago(self.now, m.since),
                    m.latency_ms
                        .map(|l| format!("{l:.1}ms"))
                        .unwrap_or_else(|| "-".into()),
                    m.health_check
                        .as_ref()
                        .map(HealthCheckSnapshot::short)
                        .unwrap_or_else(|| "-".into()),
                    m.reason_text(),
                ];
                if with_views {
                    row.insert(9, m.views_text());
                }
                if with_certs {
                    let days = m.cert_days_left(self.now);
                    let cell = days.map_or_else(|| "-".to_string(), |d| format!("{d}d"));
                    row.insert(row.len() - 1, cell);
                }
                rows.push(row);
            }
        }
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[String]| {
            let last = cells.len() - 1;
            for (i, (c, &w)) in cells.iter().zip(&widths).enumerate() {
                if i == last {
                    let _ = write!(out, "{c}");
                } else {
                    let _ = write!(out, "{c:<w$}  ");
                }
            }
            out.push('\n');
        };
        line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
        for row in &rows {
            line(row);
        }
        for r in &self.records {
            if let Some(p) = &r.practice {
                let _ = writeln!(out, "{}", p.line(&r.name, &r.rtype));
            }
            for m in &r.members {
                if let Some(t) = &m.traffic {
                    let _ = writeln!(
                        out,
                        "traffic {} {} {}: {}",
                        r.name,
                        r.rtype,
                        m.region,
                        t.text()
                    );
                }
            }
            if let Some(p) = &r.parity {
                let _ = writeln!(
                    out,
                    "parity {} {}: {} (checked {} ago)",
                    r.name,
                    r.rtype,
                    p.summary(),
                    ago(self.now, p.checked_at)
                );
            }
        }
        out
    }
}
