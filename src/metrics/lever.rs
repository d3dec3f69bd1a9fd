//! The data-plane lever (`crate::lever`): its routing controls and the
//! calls that set them.

use prometheus::{IntCounterVec, IntGaugeVec};

use super::{opts, Registrar};

pub struct LeverMetrics {
    pub routing_control_state: IntGaugeVec,
    pub calls_total: IntCounterVec,
}

impl LeverMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        LeverMetrics {
            routing_control_state: r.reg(IntGaugeVec::new(
                opts(
                    "routing_control_state",
                    "Each member's ARC routing control as last read back: 1 On, 0 Off, -1 not known (a read failed).",
                ),
                &["record", "type", "set_identifier"],
            )),
            calls_total: r.reg(IntCounterVec::new(
                opts(
                    "routing_control_calls_total",
                    "Calls to the ARC cluster by operation (set, get) and outcome (ok, refused, rejected, unavailable).",
                ),
                &["operation", "outcome"],
            )),
        }
    }
}
