//! `/metrics` at scrape time: each member's series read off the state it
//! keeps anyway (`metrics::member`), one member's lock at a time.

use std::time::Instant;

use super::Runtime;
use crate::decide::policy::Why;
use crate::decide::verdict::Verdict;
use crate::metrics::member::views;
use crate::metrics::MemberSample;
use crate::time::unix_secs;

impl Runtime {
    /// The text exposition format, for /metrics.
    pub fn render_metrics(&self) -> String {
        let counts = !self.sees_everything_down();
        let now = Instant::now();
        let view_max_age = self.config.ha.as_ref().map(|ha| ha.view_max_age);
        let samples: Vec<MemberSample> = self
            .member_ids()
            .map(|id| {
                let member = self.member(id);
                member.read(|m| MemberSample {
                    labels: member.labels(),
                    healthy: m.health.verdict() == Verdict::Healthy,
                    published: m.published,
                    conflict: m.conflict,
                    damped: m.why == Some(Why::Damped),
                    drained: m.why == Some(Why::Drained),
                    route53_healthy: m.route53_health.as_ref().map(|h| h.report.is_healthy()),
                    cert_not_after: m.cert_not_after.map(unix_secs),
                    views: view_max_age.map(|age| views(&m.local(counts), &m.votes, now, age)),
                    counters: m.counters,
                })
            })
            .collect();
        // Readiness falls when a task panics: read now, as /readyz is.
        self.metrics.reconcile.ready.set(i64::from(self.is_ready()));
        self.metrics.render(&samples)
    }
}
