//! The HTTP surface: `/metrics`, `/status` (JSON), `/events` (JSON, newest
//! first; `?since=ID` for those after an event, `?limit=N`), `/` (HTML), `/healthz`
//! (liveness: the process answers) and `/readyz` (a latch: ready after the
//! first successful reconcile of every zone, never back).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::controller::Runtime;
use crate::reload::Current;
use crate::status::Status;

pub fn router(current: Arc<Current>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/events", get(events))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(current)
}

fn snapshot(current: &Current) -> Status {
    snapshot_of(current, &current.runtime())
}

/// The snapshot of `rt`, one runtime throughout (a reload may replace it).
fn snapshot_of(current: &Current, rt: &Runtime) -> Status {
    let mut s = Status::snapshot(rt);
    s.config = Some(current.state());
    s
}

async fn index(State(current): State<Arc<Current>>) -> Html<String> {
    let rt = current.runtime();
    let events = rt.events.newest(None, 50);
    Html(snapshot_of(&current, &rt).with_trends(&rt).html(&events))
}

async fn status(State(current): State<Arc<Current>>) -> Json<Status> {
    Json(snapshot(&current))
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

async fn events(
    State(current): State<Arc<Current>>,
    Query(q): Query<EventsQuery>,
) -> Json<Vec<crate::events::Event>> {
    let limit = q.limit.unwrap_or(crate::events::KEEP);
    Json(current.runtime().events.newest(q.since, limit))
}

async fn metrics(State(current): State<Arc<Current>>) -> Response {
    let rt = current.runtime();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        rt.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(current): State<Arc<Current>>) -> Response {
    if current.runtime().is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no successful reconcile yet\n",
        )
            .into_response()
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
