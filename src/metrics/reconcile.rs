//! What the zone reconcilers decide and do, by zone and record.

use prometheus::{
    exponential_buckets, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
};

use super::{opts, Registrar};

/// What the zone reconcilers decide and do, by zone and record.
pub struct ReconcileMetrics {
    pub held_changes: IntGaugeVec,
    pub records_orphaned: IntGaugeVec,
    pub records_retiring: IntGaugeVec,
    pub uncorroborated_failures: IntGaugeVec,
    pub records_rejected: IntGaugeVec,
    pub withdrawals_blocked_total: IntCounterVec,
    pub record_fail_open: IntGaugeVec,
    pub duration_seconds: HistogramVec,
    pub errors_total: IntCounterVec,
    pub change_propagation_seconds: HistogramVec,
    pub last_success_timestamp_seconds: Gauge,
    pub ready: IntGauge,
    pub task_panics_total: IntCounterVec,
}

/// The kinds of long-running task (`controller::supervise`): each one's
/// panic counter is written from the start, so an alert's `increase`
/// sees the first panic.
pub const TASK_KINDS: [&str; 11] = [
    "reconciler",
    "prober",
    "lever",
    "view_exchange",
    "control_reader",
    "checker_view",
    "parity_checker",
    "discoverer",
    "lease_keeper",
    "practice",
    "traffic",
];

impl ReconcileMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        let metrics = ReconcileMetrics {
            held_changes: r.reg(IntGaugeVec::new(
            opts(
                "held_changes",
                "Record changes and health check calls a freeze holds back in the zone (what the daemon would do)."
            ),
            &["zone"]
        )),
            records_orphaned: r.reg(IntGaugeVec::new(
            opts(
                "records_orphaned",
                "Records (name and type) in the zone that hold this owner's claims but that the config does not manage: left as they are until on-call retires them."
            ),
            &["zone"]
        )),
            records_retiring: r.reg(IntGaugeVec::new(
            opts(
                "records_retiring",
                "Records of members the config no longer names (removed or renamed), kept while they are the last their record holds."
            ),
            &["zone"]
        )),
            uncorroborated_failures: r.reg(IntGaugeVec::new(
            opts(
                "uncorroborated_failures",
                "Unhealthy members whose withdrawal waits: nothing else this instance probes has passed since their failure began, so it may be this instance's own trouble (its network, DNS, descriptors)."
            ),
            &["zone"]
        )),
            records_rejected: r.reg(IntGaugeVec::new(
            opts(
                "records_rejected",
                "Records whose changes Route53 refuses for good (after a re-read): held out of every batch until they change, so the zone's other records still fail over."
            ),
            &["zone"]
        )),
            withdrawals_blocked_total: r.reg(IntCounterVec::new(
            opts(
                "withdrawals_blocked_total",
                "Withdrawals of unhealthy members the safety rules refused (min_healthy, last_member, max_withdrawn) or that wait for their failure to be corroborated (correlated), counted when the block begins."
            ),
            &["record", "type", "reason"]
        )),
            record_fail_open: r.reg(IntGaugeVec::new(
            opts(
                "record_fail_open",
                "1 while no member of the record is healthy and unhealthy members stay published."
            ),
            &["record", "type"]
        )),
            duration_seconds: r.reg(HistogramVec::new(
            HistogramOpts::from(opts(
                "reconcile_duration_seconds",
                "Duration of one reconcile of a zone: read (when needed), plan, apply."
            ))
            .buckets(exponential_buckets(0.001, 2.0, 16).expect("static buckets")),
            &["zone"]
        )),
            errors_total: r.reg(IntCounterVec::new(
            opts("reconcile_errors_total", "Reconciles that failed, by error kind."),
            &["kind"]
        )),
            change_propagation_seconds: r.reg(HistogramVec::new(
            HistogramOpts::from(opts(
                "change_propagation_seconds",
                "Time from a change being accepted to the provider reporting it INSYNC."
            ))
            .buckets(vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]),
            &["zone"]
        )),
            last_success_timestamp_seconds: r.reg(Gauge::with_opts(opts(
            "last_reconcile_success_timestamp_seconds",
            "Unix time of the last reconcile that succeeded."
        ))),
            ready: r.reg(IntGauge::with_opts(opts(
            "ready",
            "1 once every zone has been reconciled successfully (a latch), and no long-running task panicked in the last 30 s: what /readyz answers."
        ))),
            task_panics_total: r.reg(IntCounterVec::new(
            opts(
                "task_panics_total",
                "Panics of long-running tasks (a bug), by kind of task (reconciler, prober, lever, ...): each is logged, shown in status and started again with backoff."
            ),
            &["task"]
        )),
        };
        for kind in TASK_KINDS {
            metrics.task_panics_total.with_label_values(&[kind]);
        }
        metrics
    }
}

impl ReconcileMetrics {
    /// A reconcile, or a health check call of one, failed this way.
    pub fn failed(&self, kind: &str) {
        self.errors_total.with_label_values(&[kind]).inc();
    }

    /// What one zone's decision holds back or waits on, by zone.
    pub fn zone_decided(
        &self,
        zone: &str,
        held: usize,
        retiring: usize,
        orphaned: usize,
        uncorroborated: usize,
    ) {
        for (gauge, n) in [
            (&self.held_changes, held),
            (&self.records_retiring, retiring),
            (&self.records_orphaned, orphaned),
            (&self.uncorroborated_failures, uncorroborated),
        ] {
            gauge.with_label_values(&[zone]).set(n as i64);
        }
    }
}
