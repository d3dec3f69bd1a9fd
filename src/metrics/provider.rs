//! Requests to the DNS provider, and API Gateway discovery.

use prometheus::{exponential_buckets, HistogramOpts, HistogramVec, IntCounterVec, IntGauge};

use super::{opts, Registrar};

/// Requests to the DNS provider, and API Gateway discovery.
pub struct ProviderMetrics {
    pub requests_total: IntCounterVec,
    pub request_duration_seconds: HistogramVec,
    pub discovery_errors_total: IntCounterVec,
    pub control_plane_impaired: IntGauge,
}

impl ProviderMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        ProviderMetrics {
            requests_total: r.reg(IntCounterVec::new(
            opts(
                "provider_requests_total",
                "Requests to the DNS provider, by operation and outcome (ok or the error kind)."
            ),
            &["operation", "outcome"]
        )),
            request_duration_seconds: r.reg(HistogramVec::new(
            HistogramOpts::from(opts(
                "provider_request_duration_seconds",
                "Duration of one request to the DNS provider."
            ))
            .buckets(exponential_buckets(0.001, 2.0, 16).expect("static buckets")),
            &["operation"]
        )),
            discovery_errors_total: r.reg(IntCounterVec::new(
            opts(
                "discovery_errors_total",
                "Failed lookups of an API Gateway regional target, by region and kind."
            ),
            &["region", "kind"]
        )),
            control_plane_impaired: r.reg(IntGauge::with_opts(opts(
                "control_plane_impaired",
                "1 while Route53's control plane is impaired: reconciles keep failing with server errors or timeouts, and record changes wait."
            ))),
        }
    }
}
