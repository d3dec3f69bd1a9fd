//! Whether the regions of a record serve the same API.

use prometheus::{GaugeVec, IntGaugeVec};

use super::{opts, Registrar};

/// Whether the regions of a record serve the same API.
pub struct ParityMetrics {
    pub differences: IntGaugeVec,
    pub last_check_timestamp_seconds: GaugeVec,
}

impl ParityMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        ParityMetrics {
            differences: r.reg(IntGaugeVec::new(
            opts(
                "parity_differences",
                "Differences between the regions of a record in what API Gateway serves under its custom domain (routes, authorizers, integrations, stage, mapping, domain), by kind, after parity.ignore; absent at 0."
            ),
            &["record", "type", "kind"]
        )),
            last_check_timestamp_seconds: r.reg(GaugeVec::new(
            opts(
                "parity_last_check_timestamp_seconds",
                "Unix time of a record's last parity check that read every region; it stops moving while a region cannot be read."
            ),
            &["record", "type"]
        )),
        }
    }
}

impl ParityMetrics {
    /// A record's parity report: its differences by kind (a series only
    /// while non-zero), and the time of the check if every region was read.
    pub fn report(&self, record: [&str; 2], report: &crate::parity::ParityReport) {
        let [name, rtype] = record;
        let counts = report.counts();
        for kind in crate::parity::Kind::ALL {
            let labels = [name, rtype, kind.as_str()];
            match counts.iter().find(|(k, _)| *k == kind.as_str()) {
                Some((_, n)) => self.differences.with_label_values(&labels).set(*n as i64),
                None => {
                    let _ = self.differences.remove_label_values(&labels);
                }
            }
        }
        if report.errors.is_empty() {
            self.last_check_timestamp_seconds
                .with_label_values(&record)
                .set(report.checked_at);
        }
    }
}
