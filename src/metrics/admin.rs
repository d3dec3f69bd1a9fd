//! On-call's `/admin` calls, and the listener they arrive on.

use prometheus::{IntCounterVec, IntGauge};

use super::{opts, Registrar};

/// On-call's `/admin` calls.
pub struct AdminMetrics {
    pub actions_total: IntCounterVec,
}

impl AdminMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        AdminMetrics {
            actions_total: r.reg(IntCounterVec::new(
            opts(
                "admin_actions_total",
                "On-call's calls to /admin by action (drain, undrain, freeze, unfreeze, retire, practice, stop-practice) and result (ok, refused, invalid, unauthorized, error)."
            ),
            &["action", "result"]
        )),
        }
    }
}

/// The listener: connections open and the cap.
pub struct HttpMetrics {
    pub connections: IntGauge,
    pub connections_max: IntGauge,
}

impl HttpMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        HttpMetrics {
            connections: r.reg(IntGauge::with_opts(opts(
            "http_connections",
            "Connections open on the listen port now."
        ))),
            connections_max: r.reg(IntGauge::with_opts(opts(
            "http_connections_max",
            "Most connections served at once; past it the listener stops accepting (descriptors are kept for the probes)."
        ))),
        }
    }
}
