//! The per-member series, built at scrape time from the member table.
//!
//! A series the `prometheus` registry keeps costs about 2 KiB (its labels,
//! its hash entry, its atomics); at 3,000 members and twenty series each,
//! that was most of the daemon's memory and a 7.5 MB scrape. Here a
//! member's counters are plain integers in its state ([`MemberCounters`],
//! about 130 bytes), its gauges are read off the state it keeps anyway,
//! and both are written as text straight into the response
//! ([`write_families`]): nothing is kept between scrapes.
//!
//! What is per member, and what is not (docs/metrics.md): a probe
//! duration histogram per member would be 16 series each for a question
//! asked per region ("is a region slow?"), so the histogram is per region
//! ([`super::Probes`]); per member, the pair `probes_total` and
//! `member_probe_seconds_total` gives the mean duration over any window,
//! and `/status` has the last probe's phases.

use std::fmt::Write;
use std::time::Duration;

use crate::decide::quorum::{Ignored, Local, Tally, Vote};
use crate::decide::verdict::Verdict;
use crate::probe::FailureKind;
use crate::provider::RecordType;

use super::text::{escape, family};
use super::{opts, Registrar};

/// Probe durations by region: the one histogram of them (see above).
pub struct Probes {
    duration: prometheus::HistogramVec,
}

impl Probes {
    pub(super) fn new(r: &Registrar) -> Self {
        Probes {
            duration: r.reg(prometheus::HistogramVec::new(
                prometheus::HistogramOpts::from(opts(
                    "probe_duration_seconds",
                    "Duration of a probe, all phases, whatever its outcome, by the member's region (per member: member_probe_seconds_total over probes_total).",
                ))
                .buckets(prometheus::exponential_buckets(0.0025, 2.0, 13).expect("static buckets")),
                &["region"],
            )),
        }
    }

    /// The histogram of one region, for its probers to observe into.
    pub fn of(&self, region: &str) -> prometheus::Histogram {
        self.duration.with_label_values(&[region])
    }

    /// A region the config no longer has: its series goes.
    pub fn forget(&self, region: &str) {
        let _ = self.duration.remove_label_values(&[region]);
    }
}

/// A member's labels, by name.
#[derive(Debug, Clone, Copy)]
pub struct MemberLabels<'a> {
    pub record: &'a str,
    pub rtype: &'static str,
    pub region: &'a str,
}

impl<'a> MemberLabels<'a> {
    /// `record`, `type`, `region`: the order every member series has.
    pub fn values(&self) -> [&'a str; 3] {
        [self.record, self.rtype, self.region]
    }

    fn write(&self, out: &mut String, extra: Option<(&str, &str)>) {
        out.push_str("{record=\"");
        escape(out, self.record);
        out.push_str("\",type=\"");
        out.push_str(self.rtype);
        out.push_str("\",region=\"");
        escape(out, self.region);
        if let Some((name, value)) = extra {
            let _ = write!(out, "\",{name}=\"");
            escape(out, value);
        }
        out.push_str("\"}");
    }
}

pub fn rtype_str(rtype: &RecordType) -> &'static str {
    match rtype {
        RecordType::A => "A",
        RecordType::Aaaa => "AAAA",
        RecordType::Cname => "CNAME",
        _ => "OTHER",
    }
}

/// A probe's outcome as `probes_total` labels it: `success`, or the
/// failure kind.
const RESULTS: [Option<FailureKind>; 1 + FailureKind::ALL.len()] = {
    let mut all = [None; 1 + FailureKind::ALL.len()];
    let mut i = 0;
    while i < FailureKind::ALL.len() {
        all[i + 1] = Some(FailureKind::ALL[i]);
        i += 1;
    }
    all
};

fn result_str(r: Option<FailureKind>) -> &'static str {
    r.map_or("success", FailureKind::as_str)
}

const VERDICTS: [Verdict; 3] = [Verdict::Healthy, Verdict::Unhealthy, Verdict::Unknown];

/// A member's counters, kept in its state: monotonic while the process
/// runs (a reload carries them with the member).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemberCounters {
    probes: [u64; RESULTS.len()],
    probe_seconds: f64,
    verdict_changes: [u64; VERDICTS.len()],
    flaps: u64,
}

impl MemberCounters {
    /// One probe ended: `failure` is its failure kind, `None` a success.
    pub fn probed(&mut self, failure: Option<FailureKind>, took: Duration) {
        if let Some(i) = RESULTS.iter().position(|r| *r == failure) {
            self.probes[i] += 1;
        }
        self.probe_seconds += took.as_secs_f64();
    }

    /// This instance's verdict changed. The first verdict a member reaches
    /// (from `unknown`, at start or after its probe changed) is not
    /// counted: at 3,000 members a restart would be 3,000 "changes" and a
    /// series each for nothing that happened to them.
    pub fn verdict_changed(&mut self, from: Verdict, to: Verdict) {
        if from == Verdict::Unknown {
            return;
        }
        if let Some(i) = VERDICTS.iter().position(|v| *v == to) {
            self.verdict_changes[i] += 1;
        }
    }

    /// The agreed verdict flapped (`decide::damping`).
    pub fn flapped(&mut self) {
        self.flaps += 1;
    }

    /// Probes counted with this outcome (`None`: success).
    pub fn probes(&self, failure: Option<FailureKind>) -> u64 {
        RESULTS
            .iter()
            .position(|r| *r == failure)
            .map_or(0, |i| self.probes[i])
    }

    pub fn verdict_changes(&self, to: Verdict) -> u64 {
        VERDICTS
            .iter()
            .position(|v| *v == to)
            .map_or(0, |i| self.verdict_changes[i])
    }
}

/// How the vantage points that count see one member (with `ha`): this
/// instance (unless it sees every member down) and the counted votes, by
/// verdict: healthy, unhealthy, and those with no verdict yet (abstaining).
pub fn views(
    local: &Local,
    votes: &[Vote],
    now: std::time::Instant,
    max_age: Duration,
) -> [usize; 3] {
    let t = Tally::of(local, votes, now, max_age);
    let unknown = votes
        .iter()
        .filter(|v| v.standing(local, now, max_age) == Some(Ignored::Abstains))
        .count()
        + usize::from(local.counts && local.verdict == Verdict::Unknown);
    [t.healthy, t.unhealthy, unknown]
}

/// What one member's series say, read off its state at scrape time.
#[derive(Debug, Clone)]
pub struct MemberSample<'a> {
    pub labels: MemberLabels<'a>,
    pub healthy: bool,
    pub published: bool,
    pub conflict: bool,
    pub damped: bool,
    pub drained: bool,
    /// Route53's checkers on the member's check, once read.
    pub route53_healthy: Option<bool>,
    /// Unix seconds at which the leaf certificate last served expires.
    pub cert_not_after: Option<f64>,
    /// With `ha`: [`views`].
    pub views: Option<[usize; 3]>,
    pub counters: MemberCounters,
}

/// Writes one family over every member: its header, then a line per
/// member that has a value (`value` returns `None` for no series).
fn each<V: std::fmt::Display>(
    out: &mut String,
    samples: &[MemberSample],
    (name, kind, help): (&str, &str, &str),
    mut lines: impl FnMut(&MemberSample, &mut dyn FnMut(Option<(&str, &str)>, V)),
) {
    let start = out.len();
    family(out, name, kind, help);
    let header = out.len();
    for s in samples {
        lines(s, &mut |extra, v| {
            out.push_str("route53_failover_");
            out.push_str(name);
            s.labels.write(out, extra);
            let _ = writeln!(out, " {v}");
        });
    }
    if out.len() == header {
        // No member has this series: no family either.
        out.truncate(start);
    }
}

/// The member families, in the text exposition format.
pub fn write_families(out: &mut String, samples: &[MemberSample]) {
    let flag = |on: bool| i64::from(on);
    each(out, samples, HEALTHY, |s, line| line(None, flag(s.healthy)));
    each(out, samples, PUBLISHED, |s, line| {
        line(None, flag(s.published))
    });
    each(out, samples, CONFLICT, |s, line| {
        if s.conflict {
            line(None, 1)
        }
    });
    each(out, samples, DAMPED, |s, line| {
        if s.damped {
            line(None, 1)
        }
    });
    each(out, samples, DRAINED, |s, line| {
        if s.drained {
            line(None, 1)
        }
    });
    each(out, samples, ROUTE53, |s, line| {
        if let Some(h) = s.route53_healthy {
            line(None, flag(h))
        }
    });
    each(out, samples, CERT, |s, line| {
        if let Some(t) = s.cert_not_after {
            line(None, t)
        }
    });
    each(out, samples, VIEWS, |s, line| {
        for (verdict, n) in ["healthy", "unhealthy", "unknown"]
            .iter()
            .zip(s.views.unwrap_or_default())
        {
            if n > 0 {
                line(Some(("verdict", verdict)), n)
            }
        }
    });
    each(out, samples, PROBES, |s, line| {
        for r in RESULTS {
            let n = s.counters.probes(r);
            if n > 0 {
                line(Some(("result", result_str(r))), n)
            }
        }
    });
    each(out, samples, PROBE_SECONDS, |s, line| {
        if s.counters.probes.iter().any(|n| *n > 0) {
            line(None, s.counters.probe_seconds)
        }
    });
    each(out, samples, VERDICT_CHANGES, |s, line| {
        for to in VERDICTS {
            let n = s.counters.verdict_changes(to);
            if n > 0 {
                line(Some(("to", to.as_str())), n)
            }
        }
    });
    each(out, samples, FLAPS, |s, line| {
        if s.counters.flaps > 0 {
            line(None, s.counters.flaps)
        }
    });
}

type Family = (&'static str, &'static str, &'static str);

/// Every family [`write_families`] writes (`Metrics::families`).
pub(super) const FAMILIES: [Family; 12] = [
    HEALTHY,
    PUBLISHED,
    CONFLICT,
    DAMPED,
    DRAINED,
    ROUTE53,
    CERT,
    VIEWS,
    PROBES,
    PROBE_SECONDS,
    VERDICT_CHANGES,
    FLAPS,
];

const HEALTHY: Family = (
    "member_healthy",
    "gauge",
    "1 when the member's verdict is healthy, 0 when unhealthy or not yet known.",
);
const PUBLISHED: Family = (
    "member_published",
    "gauge",
    "1 when the provider holds the member's record.",
);
const CONFLICT: Family = (
    "member_conflict",
    "gauge",
    "1 when a record with the member's set identifier exists without this owner's marker (left alone); absent otherwise.",
);
const DAMPED: Family = (
    "member_damped",
    "gauge",
    "1 while flap damping holds the member withdrawn although its verdict is healthy (policy.damping); absent otherwise.",
);
const DRAINED: Family = (
    "member_drained",
    "gauge",
    "1 while on-call's drain holds the member withdrawn; absent otherwise (a drain the safety rules hold shows in withdrawals_blocked_total).",
);
const ROUTE53: Family = (
    "route53_health_check_healthy",
    "gauge",
    "1 when Route53's checkers find the member's health check healthy, 0 when not; absent until first read. Compare with member_healthy.",
);
const CERT: Family = (
    "tls_certificate_expiry_timestamp_seconds",
    "gauge",
    "HTTPS probes: unix time at which the leaf certificate the member's endpoint served (for the probe URL's host) expires; absent until an HTTPS probe completes its handshake.",
);
const VIEWS: Family = (
    "member_views",
    "gauge",
    "With ha: the vantage points that count toward the quorum (this instance and the others with a fresh view) by the verdict they hold on the member, healthy or unhealthy, and those with no verdict yet (unknown, abstaining); absent at 0.",
);
const PROBES: Family = (
    "probes_total",
    "counter",
    "Probes by outcome: success, or the failure reason (dns, connect, tls, timeout, status, body, slow; auth and local observe nothing of the member and leave its verdict as it is).",
);
const PROBE_SECONDS: Family = (
    "member_probe_seconds_total",
    "counter",
    "Seconds the member's probes took, all phases, whatever their outcome; divided by probes_total (rates of both), the mean probe duration.",
);
const VERDICT_CHANGES: Family = (
    "verdict_changes_total",
    "counter",
    "Verdict transitions, by the verdict reached (a member's first verdict, from unknown, is not one).",
);
const FLAPS: Family = (
    "flaps_total",
    "counter",
    "Flaps: a member failing again soon after it was restored (each one lengthens its damping hold).",
);

#[cfg(test)]
mod tests;
