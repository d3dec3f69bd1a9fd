//! With `ha`: this instance's role and the lease as last seen.

use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec};

use super::{opts, Registrar};

/// With `ha`: this instance's role and the lease as last seen.
pub struct LeaseMetrics {
    pub leader: IntGaugeVec,
    pub expiry_timestamp_seconds: Gauge,
    pub term: IntGauge,
    pub clock_offset_seconds: Gauge,
    pub transitions_total: IntCounterVec,
}

impl LeaseMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        LeaseMetrics {
            leader: r.reg(IntGaugeVec::new(
            opts(
                "leader",
                "With ha enabled: 1 while this instance holds the lease and may write, else 0; by this instance's identity."
            ),
            &["identity"]
        )),
            expiry_timestamp_seconds: r.reg(Gauge::with_opts(opts(
            "lease_expiry_timestamp_seconds",
            "With ha enabled: unix time at which the lease as last read or written ends (0 when there is none)."
        ))),
            term: r.reg(IntGauge::with_opts(opts(
            "lease_term",
            "With ha enabled: the term of the lease as last read or written; it grows by one each time the lease is taken."
        ))),
            clock_offset_seconds: r.reg(Gauge::with_opts(opts(
            "lease_clock_offset_seconds",
            "With ha enabled: the lease holder's wall clock less this instance's, as estimated from a fresh lease value (between minus one read interval and 0 when they agree); the lease does not depend on it."
        ))),
            transitions_total: r.reg(IntCounterVec::new(
            opts(
                "lease_transitions_total",
                "Changes of this instance's role: acquired, lost (could not renew in time, or another took it), released (at shutdown)."
            ),
            &["event"]
        )),
        }
    }
}
