//! The HTTP surface: `/metrics`, `/status` (JSON), `/events` (JSON, newest
//! first; `?since=ID` for those after an event, `?limit=N`), `/` (HTML), `/healthz`
//! (liveness: the process answers) and `/readyz` (a latch: ready after the
//! first successful reconcile of every zone, never back).
//!
//! The page, `/status` and `/metrics` are built off the async workers
//! (`spawn_blocking`), one of each at a time: at 3,000 members a render
//! takes a fraction of a second of CPU, and the probes share those
//! workers. A request that waits more than [`RENDER_WAIT`] gets 503.
//! `server` bounds the listener itself (connections, timeouts).

pub mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::Semaphore;

use crate::reload::Current;
use crate::status::Status;

pub use server::{raise_descriptor_limit, serve, Limits};

/// How long a request waits for its turn to be rendered.
pub const RENDER_WAIT: Duration = Duration::from_secs(10);

struct Pages {
    current: Arc<Current>,
    /// One render of each heavy page at a time.
    page: Semaphore,
    status: Semaphore,
    metrics: Semaphore,
}

pub fn router(current: Arc<Current>) -> Router {
    let pages = Arc::new(Pages {
        current,
        page: Semaphore::new(1),
        status: Semaphore::new(1),
        metrics: Semaphore::new(1),
    });
    Router::new()
        .route("/", get(index))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/events", get(events))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(pages)
}

/// Runs `render` off the async workers, once a permit of `gate` is had.
async fn rendered<T: Send + 'static>(
    gate: &Semaphore,
    render: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    let busy = || (StatusCode::SERVICE_UNAVAILABLE, "busy: try again\n").into_response();
    let _permit = tokio::time::timeout(RENDER_WAIT, gate.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    tokio::task::spawn_blocking(render)
        .await
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n").into_response())
}

/// The snapshot of the runtime in force, one runtime throughout (a reload
/// may replace it).
fn snapshot(current: &Current) -> (Arc<crate::controller::Runtime>, Status) {
    let rt = current.runtime();
    let mut s = Status::snapshot(&rt);
    s.config = Some(current.state());
    (rt, s)
}

async fn index(State(p): State<Arc<Pages>>) -> Response {
    let current = p.current.clone();
    match rendered(&p.page, move || {
        let (rt, s) = snapshot(&current);
        let events = rt.events.newest(None, 50);
        s.with_trends(&rt).html(&events)
    })
    .await
    {
        Ok(page) => Html(page).into_response(),
        Err(r) => r,
    }
}

async fn status(State(p): State<Arc<Pages>>) -> Response {
    let current = p.current.clone();
    match rendered(&p.status, move || snapshot(&current).1).await {
        Ok(s) => Json(s).into_response(),
        Err(r) => r,
    }
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

async fn events(
    State(p): State<Arc<Pages>>,
    Query(q): Query<EventsQuery>,
) -> Json<Vec<crate::events::Event>> {
    let limit = q.limit.unwrap_or(crate::events::KEEP);
    Json(p.current.runtime().events.newest(q.since, limit))
}

async fn metrics(State(p): State<Arc<Pages>>) -> Response {
    let rt = p.current.runtime();
    match rendered(&p.metrics, move || rt.metrics.render()).await {
        Ok(page) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            page,
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn readyz(State(p): State<Arc<Pages>>) -> Response {
    if p.current.runtime().is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no successful reconcile yet\n",
        )
            .into_response()
    }
}
