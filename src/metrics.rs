//! Every metric the daemon exports, registered in one place. Names follow
//! `route53_failover_<thing>_<unit>`; labels stay low-cardinality (record,
//! type, region, result, kind, operation): never an error text.

use crate::decide::quorum::{Ignored, Local, Tally, Vote};
use crate::decide::verdict::Verdict;
use prometheus::{
    exponential_buckets, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub probe_duration_seconds: HistogramVec,
    pub probes_total: IntCounterVec,
    pub member_healthy: IntGaugeVec,
    pub member_published: IntGaugeVec,
    pub member_conflict: IntGaugeVec,
    pub member_damped: IntGaugeVec,
    pub member_drained: IntGaugeVec,
    pub held_changes: IntGaugeVec,
    pub records_orphaned: IntGaugeVec,
    pub records_retiring: IntGaugeVec,
    pub uncorroborated_failures: IntGaugeVec,
    pub records_rejected: IntGaugeVec,
    pub admin_actions_total: IntCounterVec,
    pub flaps_total: IntCounterVec,
    pub member_views: IntGaugeVec,
    pub route53_health_check_healthy: IntGaugeVec,
    pub verdict_changes_total: IntCounterVec,
    pub withdrawals_blocked_total: IntCounterVec,
    pub record_fail_open: IntGaugeVec,
    pub reconcile_duration_seconds: HistogramVec,
    pub reconcile_errors_total: IntCounterVec,
    pub provider_requests_total: IntCounterVec,
    pub provider_request_duration_seconds: HistogramVec,
    pub change_propagation_seconds: HistogramVec,
    pub discovery_errors_total: IntCounterVec,
    pub tls_certificate_expiry_timestamp_seconds: GaugeVec,
    pub parity_differences: IntGaugeVec,
    pub parity_last_check_timestamp_seconds: GaugeVec,
    pub last_reconcile_success_timestamp_seconds: Gauge,
    pub config_reloads_total: IntCounterVec,
    pub config_info: IntGaugeVec,
    pub config_last_reload_success: IntGauge,
    pub leader: IntGaugeVec,
    pub lease_expiry_timestamp_seconds: Gauge,
    pub lease_term: IntGauge,
    pub lease_clock_offset_seconds: Gauge,
    pub lease_transitions_total: IntCounterVec,
    pub ready: IntGauge,
    pub http_connections: IntGauge,
    pub http_connections_max: IntGauge,
    pub build_info: GaugeVec,
}

/// A gauge series that is 1 while `on` and absent otherwise.
fn present_while(g: &IntGaugeVec, labels: &[&str], on: bool) {
    if on {
        g.with_label_values(labels).set(1);
    } else {
        let _ = g.remove_label_values(labels);
    }
}

/// A time as gauges and status show it: Unix seconds, fractional.
pub fn unix_secs(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("route53_failover_{name}"), help)
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("metric definitions are static and valid");
                registry
                    .register(Box::new(m.clone()))
                    .expect("each metric is registered once");
                m
            }};
        }
        let member = &["record", "type", "region"];
        let m = Metrics {
            probe_duration_seconds: reg!(HistogramVec::new(
                HistogramOpts::from(opts(
                    "probe_duration_seconds",
                    "Duration of a probe, all phases, whatever its outcome."
                ))
                .buckets(exponential_buckets(0.0025, 2.0, 13).expect("static buckets")),
                member
            )),
            probes_total: reg!(IntCounterVec::new(
                opts(
                    "probes_total",
                    "Probes by outcome: success, or the failure reason (dns, connect, tls, timeout, status, body, slow; auth and local observe nothing of the member and leave its verdict as it is)."
                ),
                &["record", "type", "region", "result"]
            )),
            member_healthy: reg!(IntGaugeVec::new(
                opts(
                    "member_healthy",
                    "1 when the member's verdict is healthy, 0 when unhealthy or not yet known."
                ),
                member
            )),
            member_published: reg!(IntGaugeVec::new(
                opts(
                    "member_published",
                    "1 when the provider holds the member's record."
                ),
                member
            )),
            member_conflict: reg!(IntGaugeVec::new(
                opts(
                    "member_conflict",
                    "1 when a record with the member's set identifier exists without this owner's marker (left alone)."
                ),
                member
            )),
            member_damped: reg!(IntGaugeVec::new(
                opts(
                    "member_damped",
                    "1 while flap damping holds the member withdrawn although its verdict is healthy (policy.damping); absent otherwise (a series per member costs ~2 KiB)."
                ),
                member
            )),
            member_drained: reg!(IntGaugeVec::new(
                opts(
                    "member_drained",
                    "1 while on-call's drain holds the member withdrawn; absent otherwise (a drain the safety rules hold shows in withdrawals_blocked_total)."
                ),
                member
            )),
            held_changes: reg!(IntGaugeVec::new(
                opts(
                    "held_changes",
                    "Record changes and health check calls a freeze holds back in the zone (what the daemon would do)."
                ),
                &["zone"]
            )),
            records_orphaned: reg!(IntGaugeVec::new(
                opts(
                    "records_orphaned",
                    "Records (name and type) in the zone that hold this owner's claims but that the config does not manage: left as they are until on-call retires them."
                ),
                &["zone"]
            )),
            records_retiring: reg!(IntGaugeVec::new(
                opts(
                    "records_retiring",
                    "Records of members the config no longer names (removed or renamed), kept while they are the last their record holds."
                ),
                &["zone"]
            )),
            uncorroborated_failures: reg!(IntGaugeVec::new(
                opts(
                    "uncorroborated_failures",
                    "Unhealthy members whose withdrawal waits: nothing else this instance probes has passed since their failure began, so it may be this instance's own trouble (its network, DNS, descriptors)."
                ),
                &["zone"]
            )),
            records_rejected: reg!(IntGaugeVec::new(
                opts(
                    "records_rejected",
                    "Records whose changes Route53 refuses for good (after a re-read): held out of every batch until they change, so the zone's other records still fail over."
                ),
                &["zone"]
            )),
            admin_actions_total: reg!(IntCounterVec::new(
                opts(
                    "admin_actions_total",
                    "On-call's calls to /admin by action (drain, undrain, freeze, unfreeze) and result (ok, refused, invalid, unauthorized, error)."
                ),
                &["action", "result"]
            )),
            flaps_total: reg!(IntCounterVec::new(
                opts(
                    "flaps_total",
                    "Flaps: a member failing again soon after it was restored (each one lengthens its damping hold)."
                ),
                member
            )),
            member_views: reg!(IntGaugeVec::new(
                opts(
                    "member_views",
                    "With ha: the vantage points that count toward the quorum (this instance and the others with a fresh view) by the verdict they hold on the member, healthy or unhealthy, and those with no verdict yet (unknown, abstaining); absent at 0."
                ),
                &["record", "type", "region", "verdict"]
            )),
            route53_health_check_healthy: reg!(IntGaugeVec::new(
                opts(
                    "route53_health_check_healthy",
                    "1 when Route53's checkers find the member's health check healthy, 0 when not; absent until first read. Compare with member_healthy."
                ),
                member
            )),
            verdict_changes_total: reg!(IntCounterVec::new(
                opts("verdict_changes_total", "Verdict transitions, by the verdict reached."),
                &["record", "type", "region", "to"]
            )),
            withdrawals_blocked_total: reg!(IntCounterVec::new(
                opts(
                    "withdrawals_blocked_total",
                    "Withdrawals of unhealthy members the safety rules refused (min_healthy, last_member, max_withdrawn) or that wait for their failure to be corroborated (correlated), counted when the block begins."
                ),
                &["record", "type", "reason"]
            )),
            record_fail_open: reg!(IntGaugeVec::new(
                opts(
                    "record_fail_open",
                    "1 while no member of the record is healthy and unhealthy members stay published."
                ),
                &["record", "type"]
            )),
            reconcile_duration_seconds: reg!(HistogramVec::new(
                HistogramOpts::from(opts(
                    "reconcile_duration_seconds",
                    "Duration of one reconcile of a zone: read (when needed), plan, apply."
                ))
                .buckets(exponential_buckets(0.001, 2.0, 16).expect("static buckets")),
                &["zone"]
            )),
            reconcile_errors_total: reg!(IntCounterVec::new(
                opts("reconcile_errors_total", "Reconciles that failed, by error kind."),
                &["kind"]
            )),
            provider_requests_total: reg!(IntCounterVec::new(
                opts(
                    "provider_requests_total",
                    "Requests to the DNS provider, by operation and outcome (ok or the error kind)."
                ),
                &["operation", "outcome"]
            )),
            provider_request_duration_seconds: reg!(HistogramVec::new(
                HistogramOpts::from(opts(
                    "provider_request_duration_seconds",
                    "Duration of one request to the DNS provider."
                ))
                .buckets(exponential_buckets(0.001, 2.0, 16).expect("static buckets")),
                &["operation"]
            )),
            change_propagation_seconds: reg!(HistogramVec::new(
                HistogramOpts::from(opts(
                    "change_propagation_seconds",
                    "Time from a change being accepted to the provider reporting it INSYNC."
                ))
                .buckets(vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]),
                &["zone"]
            )),
            discovery_errors_total: reg!(IntCounterVec::new(
                opts(
                    "discovery_errors_total",
                    "Failed lookups of an API Gateway regional target, by region and kind."
                ),
                &["region", "kind"]
            )),
            tls_certificate_expiry_timestamp_seconds: reg!(GaugeVec::new(
                opts(
                    "tls_certificate_expiry_timestamp_seconds",
                    "HTTPS probes: unix time at which the leaf certificate the member's endpoint served (for the probe URL's host) expires; absent until an HTTPS probe completes its handshake."
                ),
                member
            )),
            parity_differences: reg!(IntGaugeVec::new(
                opts(
                    "parity_differences",
                    "Differences between the regions of a record in what API Gateway serves under its custom domain (routes, authorizers, integrations, stage, mapping, domain), by kind, after parity.ignore; absent at 0."
                ),
                &["record", "type", "kind"]
            )),
            parity_last_check_timestamp_seconds: reg!(GaugeVec::new(
                opts(
                    "parity_last_check_timestamp_seconds",
                    "Unix time of a record's last parity check that read every region; it stops moving while a region cannot be read."
                ),
                &["record", "type"]
            )),
            config_reloads_total: reg!(IntCounterVec::new(
                opts(
                    "config_reloads_total",
                    "Config reloads (file change or SIGHUP) by result: ok, or error (the old config keeps running)."
                ),
                &["result"]
            )),
            config_info: reg!(IntGaugeVec::new(
                opts(
                    "config_info",
                    "1 for the config in force, by its hash (sha256 of the file, 12 hex digits)."
                ),
                &["hash"]
            )),
            config_last_reload_success: reg!(IntGauge::with_opts(opts(
                "config_last_reload_success",
                "0 while the config file holds a change that was refused (the previous config runs), else 1."
            ))),
            leader: reg!(IntGaugeVec::new(
                opts(
                    "leader",
                    "With ha enabled: 1 while this instance holds the lease and may write, else 0; by this instance's identity."
                ),
                &["identity"]
            )),
            lease_expiry_timestamp_seconds: reg!(Gauge::with_opts(opts(
                "lease_expiry_timestamp_seconds",
                "With ha enabled: unix time at which the lease as last read or written ends (0 when there is none)."
            ))),
            lease_term: reg!(IntGauge::with_opts(opts(
                "lease_term",
                "With ha enabled: the term of the lease as last read or written; it grows by one at every change of holder."
            ))),
            lease_clock_offset_seconds: reg!(Gauge::with_opts(opts(
                "lease_clock_offset_seconds",
                "With ha enabled: the lease holder's wall clock less this instance's, as estimated from a fresh lease value (between minus one read interval and 0 when they agree); the lease does not depend on it."
            ))),
            lease_transitions_total: reg!(IntCounterVec::new(
                opts(
                    "lease_transitions_total",
                    "Changes of this instance's role: acquired, lost (could not renew in time, or another took it), released (at shutdown)."
                ),
                &["event"]
            )),
            last_reconcile_success_timestamp_seconds: reg!(Gauge::with_opts(opts(
                "last_reconcile_success_timestamp_seconds",
                "Unix time of the last reconcile that succeeded."
            ))),
            ready: reg!(IntGauge::with_opts(opts(
                "ready",
                "1 once every zone has been reconciled successfully (a latch)."
            ))),
            http_connections: reg!(IntGauge::with_opts(opts(
                "http_connections",
                "Connections open on the listen port now."
            ))),
            http_connections_max: reg!(IntGauge::with_opts(opts(
                "http_connections_max",
                "Most connections served at once; past it the listener stops accepting (descriptors are kept for the probes)."
            ))),
            build_info: reg!(GaugeVec::new(
                opts("build_info", "Always 1; the version as a label."),
                &["version"]
            )),
            registry,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            // Best effort: the process metrics are a convenience.
            let _ = m.registry.register(Box::new(pc));
        }
        m
    }

    /// Drops the per-member gauges of a member the config no longer has.
    pub fn forget_member(&self, labels: &[&str]) {
        for g in [
            &self.member_healthy,
            &self.member_published,
            &self.member_conflict,
            &self.member_damped,
            &self.member_drained,
            &self.route53_health_check_healthy,
        ] {
            let _ = g.remove_label_values(labels);
        }
        let _ = self
            .tls_certificate_expiry_timestamp_seconds
            .remove_label_values(labels);
        let _ = self.probe_duration_seconds.remove_label_values(labels);
        let _ = self.flaps_total.remove_label_values(labels);
        for verdict in ["healthy", "unhealthy", "unknown"] {
            let mut l = labels.to_vec();
            l.push(verdict);
            let _ = self.member_views.remove_label_values(&l);
        }
    }

    /// A record's parity report: its differences by kind (a series only
    /// while non-zero), and the time of the check if every region was read.
    pub fn parity(&self, record: [&str; 2], report: &crate::parity::ParityReport) {
        let [name, rtype] = record;
        let counts = report.counts();
        for kind in crate::parity::Kind::ALL {
            let labels = [name, rtype, kind.as_str()];
            match counts.iter().find(|(k, _)| *k == kind.as_str()) {
                Some((_, n)) => self
                    .parity_differences
                    .with_label_values(&labels)
                    .set(*n as i64),
                None => {
                    let _ = self.parity_differences.remove_label_values(&labels);
                }
            }
        }
        if report.errors.is_empty() {
            self.parity_last_check_timestamp_seconds
                .with_label_values(&record)
                .set(report.checked_at);
        }
    }

    /// How the vantage points that count see one member: this instance
    /// (unless it sees every member down) and the counted votes.
    pub fn member_views(
        &self,
        member: [&str; 3],
        local: &Local,
        votes: &[Vote],
        now: std::time::Instant,
        max_age: std::time::Duration,
    ) {
        let t = Tally::of(local, votes, now, max_age);
        // The vantage points that have no verdict yet (and abstain).
        let unknown = votes
            .iter()
            .filter(|v| v.standing(local, now, max_age) == Some(Ignored::Abstains))
            .count()
            + usize::from(local.counts && local.verdict == Verdict::Unknown);
        for (verdict, n) in [
            ("healthy", t.healthy),
            ("unhealthy", t.unhealthy),
            ("unknown", unknown),
        ] {
            let [record, rtype, region] = member;
            let labels = [record, rtype, region, verdict];
            if n > 0 {
                self.member_views.with_label_values(&labels).set(n as i64);
            } else {
                let _ = self.member_views.remove_label_values(&labels);
            }
        }
    }

    /// Whether flap damping holds the member: a series only while it does.
    pub fn member_damped(&self, member: &[&str], damped: bool) {
        present_while(&self.member_damped, member, damped);
    }

    /// A drain holds the member out: the series exists only then.
    pub fn member_drained(&self, member: &[&str], drained: bool) {
        present_while(&self.member_drained, member, drained);
    }

    /// The text exposition format, for /metrics.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
