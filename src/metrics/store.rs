//! The state store (`crate::store`): its calls and whether it answers.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec};

use super::{opts, Registrar};

pub struct StoreMetrics {
    pub requests_total: IntCounterVec,
    /// By kind, written only once a store is configured (`configured`).
    up: IntGaugeVec,
}

/// The store's operations, each written from the start.
pub const STORE_OPERATIONS: [&str; 5] = ["describe", "get", "list", "put", "delete"];

impl StoreMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        StoreMetrics {
            requests_total: r.reg(IntCounterVec::new(
                opts(
                    "store_requests_total",
                    "Calls to the state store by operation (get, list, put, delete, describe) and outcome (ok, conflict, throttled, timeout, unavailable, refused).",
                ),
                &["operation", "outcome"],
            )),
            up: r.reg(IntGaugeVec::new(
                opts(
                    "store_up",
                    "1 while the state store's last call was answered (a conflict is an answer), 0 while it fails; absent without a state_store.",
                ),
                &["kind"],
            )),
        }
    }

    /// Writes the series a configured store of `kind` has from the
    /// start; returns its `up` gauge.
    pub fn configured(&self, kind: &str) -> IntGauge {
        for op in STORE_OPERATIONS {
            self.requests_total.with_label_values(&[op, "ok"]);
        }
        let up = self.up.with_label_values(&[kind]);
        up.set(1);
        up
    }
}
