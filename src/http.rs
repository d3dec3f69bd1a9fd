//! The HTTP surface: `/metrics`, `/status` (JSON), `/` (HTML), `/healthz`
//! (liveness: the process answers) and `/readyz` (a latch: ready after the
//! first successful reconcile of every zone, never back).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::controller::Runtime;
use crate::status::Status;

pub fn router(rt: Arc<Runtime>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(rt)
}

async fn index(State(rt): State<Arc<Runtime>>) -> Html<String> {
    Html(Status::snapshot(&rt).html())
}

async fn status(State(rt): State<Arc<Runtime>>) -> Json<Status> {
    Json(Status::snapshot(&rt))
}

async fn metrics(State(rt): State<Arc<Runtime>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        rt.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(rt): State<Arc<Runtime>>) -> Response {
    if rt.is_ready() {
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
