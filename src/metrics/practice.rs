//! Practice runs (`decide::practice`): how each ended, and which members'
//! last run failed.

use prometheus::{IntCounterVec, IntGaugeVec};

use super::{opts, Registrar};

pub struct PracticeMetrics {
    pub runs_total: IntCounterVec,
    pub last_failed: IntGaugeVec,
    pub running: IntGaugeVec,
}

impl PracticeMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        PracticeMetrics {
            runs_total: r.reg(IntCounterVec::new(
                opts(
                    "practice_runs_total",
                    "Practice runs that ended, by member and outcome (passed, failed, aborted).",
                ),
                &["record", "type", "region", "outcome"],
            )),
            last_failed: r.reg(IntGaugeVec::new(
                opts(
                    "practice_last_failed",
                    "1 when the member's last practice run failed (the rest of its record did not stay healthy while it was withdrawn), 0 when it passed or was aborted; absent before its first run. Every instance shows it, from the history in the state store.",
                ),
                &["record", "type", "region"],
            )),
            running: r.reg(IntGaugeVec::new(
                opts(
                    "practice_running",
                    "1 while a practice run withdraws one of the record's members, 0 otherwise; absent for a record that does not practise.",
                ),
                &["record", "type"],
            )),
        }
    }

    /// A run of `member` ended with `outcome` (this instance ended it).
    pub fn ended(&self, [record, rtype, region]: [&str; 3], outcome: &str) {
        self.runs_total
            .with_label_values(&[record, rtype, region, outcome])
            .inc();
    }
}
