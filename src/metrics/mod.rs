//! Every metric the daemon exports. Names follow
//! `route53_failover_<thing>_<unit>`; labels stay low-cardinality (record,
//! type, region, result, kind, operation): never an error text.
//!
//! Grouped by the part of the daemon that moves them, one file each:
//! `member` (the per-member series, built at scrape time from the member
//! table, and the per-region probe histogram), `reconcile`, `provider`
//! (requests and API Gateway discovery), `lease`, `lever` (the routing controls), `store` (the state store), `config`, `admin` (with
//! the listener's connections) and `parity`. The registry holds the
//! process-wide series; `render` writes them and the member families.

mod admin;
mod config;
mod lease;
mod lever;
pub mod member;
mod parity;
mod practice;
mod provider;
mod reconcile;
mod store;
mod text;
mod traffic;

use prometheus::core::Collector;
use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

pub use admin::{AdminMetrics, HttpMetrics};
pub use config::ConfigMetrics;
pub use lease::LeaseMetrics;
pub use lever::LeverMetrics;
pub use member::{rtype_str, MemberCounters, MemberLabels, MemberSample, Probes};
pub use parity::ParityMetrics;
pub use practice::PracticeMetrics;
pub use provider::ProviderMetrics;
pub use reconcile::{ReconcileMetrics, TASK_KINDS};
pub use store::StoreMetrics;
pub use traffic::TrafficMetrics;

pub struct Metrics {
    registry: Registry,
    /// Every family this daemon can show, by name (see [`Metrics::families`]).
    families: Vec<String>,
    pub probes: Probes,
    pub reconcile: ReconcileMetrics,
    pub provider: ProviderMetrics,
    pub lease: LeaseMetrics,
    pub lever: LeverMetrics,
    pub store: StoreMetrics,
    pub config: ConfigMetrics,
    pub admin: AdminMetrics,
    pub http: HttpMetrics,
    pub parity: ParityMetrics,
    pub practice: PracticeMetrics,
    pub traffic: TrafficMetrics,
}

/// Registers each metric of a group as it is made, and keeps its name.
pub(crate) struct Registrar<'a>(&'a Registry, std::cell::RefCell<Vec<String>>);

impl Registrar<'_> {
    /// `m`, registered; the definitions are static, so failing is a bug.
    pub(crate) fn reg<M: Collector + Clone + 'static>(&self, m: prometheus::Result<M>) -> M {
        let m = m.expect("metric definitions are static and valid");
        self.1
            .borrow_mut()
            .extend(m.desc().iter().map(|d| d.fq_name.clone()));
        self.0
            .register(Box::new(m.clone()))
            .expect("each metric is registered once");
        m
    }
}

pub(crate) fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("route53_failover_{name}"), help)
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = Registrar(&registry, Default::default());
        let build_info = r.reg(GaugeVec::new(
            opts("build_info", "Always 1; the version as a label."),
            &["version"],
        ));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            // Best effort: the process metrics are a convenience.
            let _ = registry.register(Box::new(pc));
        }
        let mut metrics = Metrics {
            probes: Probes::new(&r),
            reconcile: ReconcileMetrics::new(&r),
            provider: ProviderMetrics::new(&r),
            lease: LeaseMetrics::new(&r),
            lever: LeverMetrics::new(&r),
            store: StoreMetrics::new(&r),
            config: ConfigMetrics::new(&r),
            admin: AdminMetrics::new(&r),
            http: HttpMetrics::new(&r),
            parity: ParityMetrics::new(&r),
            practice: PracticeMetrics::new(&r),
            traffic: TrafficMetrics::new(&r),
            registry: registry.clone(),
            families: Vec::new(),
        };
        let families = &mut metrics.families;
        families.extend(r.1.into_inner());
        families.extend(
            member::FAMILIES
                .iter()
                .map(|f| format!("route53_failover_{}", f.0)),
        );
        families.sort();
        metrics
    }

    /// The name of every family this daemon can show on `/metrics`, sorted:
    /// a family with labels appears there only once it has a series (a
    /// lease, a store, a first error), so the page alone does not list
    /// them all. The process collector's `process_*` are not included.
    pub fn families(&self) -> &[String] {
        &self.families
    }

    /// The text exposition format, for /metrics: the registry's series,
    /// then the member families from `members` (read at this scrape).
    pub fn render(&self, members: &[MemberSample]) -> String {
        let mut buf = Vec::with_capacity(64 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        let mut out = String::from_utf8(buf).unwrap_or_default();
        out.reserve(members.len() * 400);
        member::write_families(&mut out, members);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
