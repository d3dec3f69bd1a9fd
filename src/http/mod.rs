//! The HTTP surface: `/metrics`, `/status` (JSON), `/events` (JSON, newest
//! first; `?since=ID` for those after an event, `?limit=N`), `/` (HTML), `/healthz`
//! (liveness: the process answers) and `/readyz` (ready after the first
//! successful reconcile of every zone, a latch; red again only for 30 s
//! after a long-running task panics, `controller::supervise`).
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
use crate::status::{page, Status};

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
        .merge(probes())
        .with_state(pages)
}

/// `/healthz` and `/readyz` alone: also served on `health_listen`, a port
/// of their own that no flood of the main one reaches.
pub fn health_router(current: Arc<Current>) -> Router {
    let pages = Arc::new(Pages {
        current,
        page: Semaphore::new(0),
        status: Semaphore::new(0),
        metrics: Semaphore::new(0),
    });
    probes().with_state(pages)
}

fn probes() -> Router<Arc<Pages>> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
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
/// may replace it): of one record when `record` names it (404 when the
/// config has no such record: `Err` says so), else of every record.
fn snapshot(
    current: &Current,
    record: Option<&str>,
) -> Result<(Arc<crate::controller::Runtime>, Status), String> {
    let rt = current.runtime();
    let mut s = match record {
        None => Status::snapshot(&rt),
        Some(name) => {
            let asked = crate::provider::normalize_name(name);
            let s = Status::snapshot_of(&rt, |r| r.name == asked);
            if s.records.is_empty() {
                return Err(format!("no record named {name:?} in the config in force\n"));
            }
            s
        }
    };
    s.config = Some(current.state());
    Ok((rt, s))
}

async fn index(State(p): State<Arc<Pages>>, Query(q): Query<page::Query>) -> Response {
    let current = p.current.clone();
    match rendered(&p.page, move || {
        let (rt, mut s) = snapshot(&current, q.record.as_deref())?;
        let folded = s.fold(&q);
        let events = rt.events.newest(None, 50);
        Ok::<_, String>(s.with_trends(&rt).html(&events, &folded, q.all))
    })
    .await
    {
        Ok(Ok(page)) => Html(page).into_response(),
        Ok(Err(missing)) => (StatusCode::NOT_FOUND, missing).into_response(),
        Err(r) => r,
    }
}

async fn status(State(p): State<Arc<Pages>>, Query(q): Query<page::Query>) -> Response {
    let current = p.current.clone();
    match rendered(&p.status, move || {
        snapshot(&current, q.record.as_deref()).map(|(_, s)| s)
    })
    .await
    {
        Ok(Ok(s)) => Json(s).into_response(),
        Ok(Err(missing)) => (StatusCode::NOT_FOUND, missing).into_response(),
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
    match rendered(&p.metrics, move || rt.render_metrics()).await {
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
    let rt = p.current.runtime();
    if rt.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else if rt.has_reconciled() {
        let why = "not ready: a task panicked and was started again (status: tasks)\n";
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no successful reconcile yet\n",
        )
            .into_response()
    }
}
