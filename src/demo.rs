//! Simulated regional endpoints on loopback, for `route53-failover demo`
//! and for tests: each answers `GET /health` after its own small latency,
//! and can be told to fail (503) or to hang (no answer) and to recover.
//! With the embedded store, Route53's checkers are simulated from the same
//! state, so the demo shows their (slower) view beside the daemon's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

/// What an endpoint does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Serve = 0,
    /// Answers 503.
    Fail = 1,
    /// Accepts the connection and never answers.
    Hang = 2,
    /// Answers 200, but [`SLOW_BY`] later: a brownout.
    Slow = 3,
}

/// How much later a `Slow` endpoint answers.
pub const SLOW_BY: Duration = Duration::from_millis(300);

/// One simulated region's endpoint.
#[derive(Clone)]
pub struct Endpoint {
    pub name: String,
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Requests received so far (a test waits for a probe to be in flight).
    requests: Arc<AtomicU64>,
}

impl Endpoint {
    /// Serves on 127.0.0.1 (a free port) until `stop` is cancelled.
    pub async fn start(
        name: &str,
        latency: Duration,
        stop: CancellationToken,
    ) -> std::io::Result<Endpoint> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(AtomicU8::new(Mode::Serve as u8));
        let requests = Arc::new(AtomicU64::new(0));
        let region = name.to_string();
        let m = mode.clone();
        let seen = requests.clone();
        let app = Router::new().route(
            "/health",
            get(move || {
                let m = m.clone();
                let region = region.clone();
                seen.fetch_add(1, Ordering::Relaxed);
                async move {
                    tokio::time::sleep(latency).await;
                    match m.load(Ordering::Relaxed) {
                        3 => {
                            tokio::time::sleep(SLOW_BY).await;
                            (StatusCode::OK, format!("ok region={region}\n"))
                        }
                        1 => (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n".to_string()),
                        2 => std::future::pending().await,
                        _ => (StatusCode::OK, format!("ok region={region}\n")),
                    }
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(Endpoint {
            name: name.to_string(),
            addr,
            mode,
            requests,
        })
    }

    /// How many requests it has received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            1 => Mode::Fail,
            2 => Mode::Hang,
            3 => Mode::Slow,
            _ => Mode::Serve,
        }
    }
}

/// The demo's regions and the latency each endpoint adds.
pub const REGIONS: [(&str, u64); 3] = [("us-east-1", 5), ("eu-west-1", 20), ("ap-southeast-2", 40)];

/// The demo configuration with the endpoints' ports filled in.
/// The routing control of the demo's switch-driven region.
pub const SWITCH: &str =
    "arn:aws:route53-recovery-control::123456789012:controlpanel/demo/routingcontrol/apse2";

/// The demo's config, for its endpoints and its loopback ARC cluster.
pub fn config_text(endpoints: &[Endpoint], arc: SocketAddr) -> String {
    let mut text =
        include_str!("../config/demo.yaml").replace("__PORT_arc__", &arc.port().to_string());
    for e in endpoints {
        text = text.replace(&format!("__PORT_{}__", e.name), &e.addr.port().to_string());
    }
    text
}

/// Plays Route53's checkers for the embedded store: every 2 s each health
/// check aimed at a demo endpoint (by port) gets a report from that
/// endpoint's mode, as three checkers would see it.
pub async fn simulate_checkers(
    store: Arc<crate::provider::faults::MemoryStore>,
    endpoints: Vec<Endpoint>,
    stop: CancellationToken,
) {
    use crate::provider::CheckerReport;
    loop {
        for check in store.health_checks() {
            let port = check.check.config.port;
            let Some(e) = endpoints.iter().find(|e| e.addr.port() == port) else {
                continue;
            };
            let failure = match e.mode() {
                Mode::Serve => None,
                Mode::Fail => Some("Failure: HTTP Status Code 503, Service Unavailable"),
                Mode::Hang => Some("Failure: Connection timed out"),
                // Route53's checkers wait seconds: a brownout passes them.
                Mode::Slow => None,
            };
            let report = CheckerReport {
                healthy: if failure.is_none() { 3 } else { 0 },
                total: 3,
                failure: failure.map(str::to_string),
            };
            // A check deleted meanwhile is simply skipped.
            let _ = store.set_report(&check.check.id, report);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// `POST /demo/regions/{region}/{fail|hang|recover}`.
pub fn router(endpoints: &[Endpoint]) -> Router {
    let map: BTreeMap<String, Endpoint> = endpoints
        .iter()
        .map(|e| (e.name.clone(), e.clone()))
        .collect();
    Router::new()
        .route("/demo/regions/{region}/{action}", post(act))
        .with_state(Arc::new(map))
}

async fn act(
    State(map): State<Arc<BTreeMap<String, Endpoint>>>,
    Path((region, action)): Path<(String, String)>,
) -> (StatusCode, String) {
    let Some(e) = map.get(&region) else {
        return (StatusCode::NOT_FOUND, format!("no region {region}\n"));
    };
    let mode = match action.as_str() {
        "fail" => Mode::Fail,
        "hang" => Mode::Hang,
        "slow" => Mode::Slow,
        "recover" => Mode::Serve,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "use fail, hang, slow or recover\n".into(),
            )
        }
    };
    e.set_mode(mode);
    tracing::info!(region = %region, action = %action, "demo endpoint changed");
    (StatusCode::OK, format!("{region}: {action}\n"))
}
