//! The traffic confirmation (`decide::traffic`): how long clients took
//! to leave a withdrawn region, whether they are not leaving, and the
//! CloudWatch reads it costs.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec};

use super::{opts, Registrar};

pub struct TrafficMetrics {
    pub fell_seconds: GaugeVec,
    pub not_leaving: IntGaugeVec,
    pub cloudwatch_requests_total: IntCounterVec,
}

impl TrafficMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        TrafficMetrics {
            fell_seconds: r.reg(GaugeVec::new(
                opts(
                    "traffic_fell_seconds",
                    "Seconds from the member's last withdrawal to its traffic falling by 90 % (API Gateway's request count in CloudWatch, to the end of the first period at or under 10 % of the baseline).",
                ),
                &["record", "type", "region"],
            )),
            not_leaving: r.reg(IntGaugeVec::new(
                opts(
                    "traffic_not_leaving",
                    "1 when the member's traffic did not fall by 90 % within traffic.within_ttls of the record's TTL after its last withdrawal (clients are not leaving: a hard-coded regional endpoint, pinned resolvers, a client cache); 0 once it fell.",
                ),
                &["record", "type", "region"],
            )),
            cloudwatch_requests_total: r.reg(IntCounterVec::new(
                opts(
                    "cloudwatch_requests_total",
                    "GetMetricData calls the traffic confirmation made, by region and outcome (ok, error): at most one per region per period, only while a withdrawal is being measured.",
                ),
                &["region", "outcome"],
            )),
        }
    }
}
