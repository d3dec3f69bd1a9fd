//! The config in force and its reloads.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec};

use super::{opts, Registrar};

/// The config in force and its reloads.
pub struct ConfigMetrics {
    pub reloads_total: IntCounterVec,
    pub info: IntGaugeVec,
    pub last_reload_success: IntGauge,
}

impl ConfigMetrics {
    pub(super) fn new(r: &Registrar) -> Self {
        ConfigMetrics {
            reloads_total: r.reg(IntCounterVec::new(
            opts(
                "config_reloads_total",
                "Config reloads (file change or SIGHUP) by result: ok, or error (the old config keeps running)."
            ),
            &["result"]
        )),
            info: r.reg(IntGaugeVec::new(
            opts(
                "config_info",
                "1 for the config in force, by its hash (sha256 of the file, 12 hex digits)."
            ),
            &["hash"]
        )),
            last_reload_success: r.reg(IntGauge::with_opts(opts(
            "config_last_reload_success",
            "0 while the config file holds a change that was refused (the previous config runs), else 1."
        ))),
        }
    }
}
