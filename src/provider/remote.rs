//! The `memory` provider over loopback HTTP: a router that serves a store
//! (the embedded one in the daemon, or one a test or another process owns)
//! and a client that implements [`Provider`] against it, so several daemon
//! processes can share one strict store and a test can inspect and break
//! the store a daemon binary writes to.
//!
//! `/memory/api/...` is the provider API (counted, faults apply);
//! the other `/memory/...` routes inspect the store or change it as another
//! tool would (not counted, never faulted). A daemon `run` with the
//! embedded store serves only the inspection routes ([`inspect_router`]);
//! `demo` and tests serve them all.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::faults::{Fault, MemoryStore};
use super::memory::StoredHealthCheck;
use super::{
    Change, ChangeInfo, ChangeStatus, CheckerReport, HealthCheck, HealthCheckConfig, Provider,
    ProviderError, RecordSet, Zone,
};

/// Every route: the provider API (`/memory/api`), inspection, and the
/// routes that change the store as another tool would or inject faults.
/// For tests and `demo` only: nothing here asks for a token.
pub fn router(store: Arc<MemoryStore>) -> Router {
    Router::new()
        .route("/memory/api/zones/{zone}", get(api_find_zone))
        .route("/memory/api/zones/{zone}/records", get(api_list))
        .route("/memory/api/zones/{zone}/changes", post(api_change))
        .route("/memory/api/changes/{id}", get(api_change_status))
        .route(
            "/memory/api/health-checks",
            get(api_list_checks).post(api_create_check),
        )
        .route(
            "/memory/api/health-checks/{id}",
            put(api_update_check).delete(api_delete_check),
        )
        .route("/memory/api/health-checks/{id}/tags", post(api_tag_check))
        .route(
            "/memory/api/health-checks/{id}/status",
            get(api_check_status),
        )
        .route("/memory/health-checks", get(health_checks))
        .route("/memory/health-checks/{id}/report", put(set_report))
        .route("/memory/zones", get(zones))
        .route("/memory/zones/{zone}/records", get(records))
        .route("/memory/zones/{zone}/changes", post(direct_change))
        .route("/memory/faults", post(inject).delete(clear_faults))
        .route("/memory/log", get(log))
        .route("/memory/calls", get(calls))
        .with_state(store)
}

struct ApiError(ProviderError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = match &self.0 {
            ProviderError::Throttling(_) | ProviderError::PriorRequestNotComplete(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ProviderError::InvalidChangeBatch(_) | ProviderError::InvalidInput(_) => {
                StatusCode::BAD_REQUEST
            }
            ProviderError::NoSuchHostedZone(_) | ProviderError::NoSuchHealthCheck(_) => {
                StatusCode::NOT_FOUND
            }
            ProviderError::HealthCheckAlreadyExists(_)
            | ProviderError::HealthCheckVersionMismatch(_)
            | ProviderError::HealthCheckInUse(_) => StatusCode::CONFLICT,
            ProviderError::AccessDenied(_) => StatusCode::FORBIDDEN,
            ProviderError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProviderError::Service(_) | ProviderError::Fenced(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (code, Json(self.0)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn api_find_zone(
    State(s): State<Arc<MemoryStore>>,
    Path(zone): Path<String>,
) -> ApiResult<Zone> {
    s.find_zone(&zone).await.map(Json).map_err(ApiError)
}

async fn api_list(
    State(s): State<Arc<MemoryStore>>,
    Path(zone): Path<String>,
) -> ApiResult<Vec<RecordSet>> {
    s.list_records(&zone).await.map(Json).map_err(ApiError)
}

async fn api_change(
    State(s): State<Arc<MemoryStore>>,
    Path(zone): Path<String>,
    Json(changes): Json<Vec<Change>>,
) -> ApiResult<ChangeInfo> {
    s.change(&zone, &changes).await.map(Json).map_err(ApiError)
}

#[derive(Serialize, Deserialize)]
struct StatusBody {
    status: ChangeStatus,
}

async fn api_change_status(
    State(s): State<Arc<MemoryStore>>,
    Path(id): Path<String>,
) -> ApiResult<StatusBody> {
    s.change_status(&id)
        .await
        .map(|status| Json(StatusBody { status }))
        .map_err(ApiError)
}

#[derive(Serialize, Deserialize)]
struct CreateCheck {
    caller_reference: String,
    config: HealthCheckConfig,
}

#[derive(Serialize, Deserialize)]
struct UpdateCheck {
    version: i64,
    config: HealthCheckConfig,
}

async fn api_list_checks(State(s): State<Arc<MemoryStore>>) -> ApiResult<Vec<HealthCheck>> {
    s.list_health_checks().await.map(Json).map_err(ApiError)
}

async fn api_create_check(
    State(s): State<Arc<MemoryStore>>,
    Json(body): Json<CreateCheck>,
) -> ApiResult<HealthCheck> {
    s.create_health_check(&body.caller_reference, &body.config)
        .await
        .map(Json)
        .map_err(ApiError)
}

async fn api_update_check(
    State(s): State<Arc<MemoryStore>>,
    Path(id): Path<String>,
    Json(body): Json<UpdateCheck>,
) -> ApiResult<HealthCheck> {
    s.update_health_check(&id, body.version, &body.config)
        .await
        .map(Json)
        .map_err(ApiError)
}

async fn api_delete_check(
    State(s): State<Arc<MemoryStore>>,
    Path(id): Path<String>,
) -> ApiResult<()> {
    s.delete_health_check(&id).await.map(Json).map_err(ApiError)
}

async fn api_tag_check(
    State(s): State<Arc<MemoryStore>>,
    Path(id): Path<String>,
    Json(tags): Json<Vec<(String, String)>>,
) -> ApiResult<()> {
    s.tag_health_check(&id, &tags)
        .await
        .map(Json)
        .map_err(ApiError)
}

async fn api_check_status(
    State(s): State<Arc<MemoryStore>>,
    Path(id): Path<String>,
) -> ApiResult<CheckerReport> {
    s.health_check_status(&id).await.map(Json).map_err(ApiError)
}

async fn health_checks(State(s): State<Arc<MemoryStore>>) -> Json<Vec<StoredHealthCheck>> {
    Json(s.health_checks())
}

async fn set_report(
    State(s): State<Arc<MemoryStore>>,
    Path(id): Path<String>,
    Json(report): Json<CheckerReport>,
) -> Result<StatusCode, ApiError> {
    s.set_report(&id, report)
        .map(|_| StatusCode::NO_CONTENT)
        .map_err(ApiError)
}

async fn zones(State(s): State<Arc<MemoryStore>>) -> Json<Vec<Zone>> {
    Json(s.zones())
}

async fn records(
    State(s): State<Arc<MemoryStore>>,
    Path(zone): Path<String>,
) -> ApiResult<Vec<RecordSet>> {
    s.records(&zone).map(Json).map_err(ApiError)
}

async fn direct_change(
    State(s): State<Arc<MemoryStore>>,
    Path(zone): Path<String>,
    Json(changes): Json<Vec<Change>>,
) -> Result<StatusCode, ApiError> {
    s.apply_direct(&zone, &changes)
        .map(|_| StatusCode::NO_CONTENT)
        .map_err(ApiError)
}

async fn inject(State(s): State<Arc<MemoryStore>>, Json(fault): Json<Fault>) -> StatusCode {
    s.inject(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(s): State<Arc<MemoryStore>>) -> StatusCode {
    s.clear_faults();
    StatusCode::NO_CONTENT
}

async fn log(State(s): State<Arc<MemoryStore>>) -> Json<Vec<super::memory::AcceptedChange>> {
    Json(s.change_log())
}

async fn calls(
    State(s): State<Arc<MemoryStore>>,
) -> Json<std::collections::BTreeMap<&'static str, u64>> {
    Json(s.call_counts())
}

/// What `run` serves next to status with the embedded store: reading what
/// the store holds, nothing that changes it (the daemon's port may be
/// reachable by more than on-call).
pub fn inspect_router(store: Arc<MemoryStore>) -> Router {
    Router::new()
        .route("/memory/health-checks", get(health_checks))
        .route("/memory/zones", get(zones))
        .route("/memory/zones/{zone}/records", get(records))
        .route("/memory/log", get(log))
        .route("/memory/calls", get(calls))
        .with_state(store)
}

/// A [`Provider`] backed by a store served by [`router`] elsewhere.
pub struct RemoteMemory {
    base: Url,
    client: reqwest::Client,
}

impl RemoteMemory {
    pub fn new(base: Url) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(RemoteMemory { base, client })
    }

    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        self.base
            .join(path)
            .map_err(|e| ProviderError::Service(format!("bad endpoint_url: {e}")))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        // A write names its writer's term (records and health checks).
        let req = match super::writing_term() {
            Some(term) => req.header(super::TERM_HEADER, term.to_string()),
            None => req,
        };
        let resp = req.send().await.map_err(transport)?;
        if resp.status().is_success() {
            resp.json().await.map_err(transport)
        } else {
            let code = resp.status();
            Err(resp.json::<ProviderError>().await.unwrap_or_else(|_| {
                ProviderError::Service(format!("memory store answered {code}"))
            }))
        }
    }
}

fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(e.to_string())
    } else {
        ProviderError::Service(e.to_string())
    }
}

/// Zone names and ids travel in a path segment.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[async_trait]
impl Provider for RemoteMemory {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn find_zone(&self, name_or_id: &str) -> Result<Zone, ProviderError> {
        let url = self.url(&format!("memory/api/zones/{}", seg(name_or_id)))?;
        self.send(self.client.get(url)).await
    }

    async fn list_records(&self, zone_id: &str) -> Result<Vec<RecordSet>, ProviderError> {
        let url = self.url(&format!("memory/api/zones/{}/records", seg(zone_id)))?;
        self.send(self.client.get(url)).await
    }

    async fn change(&self, zone_id: &str, changes: &[Change]) -> Result<ChangeInfo, ProviderError> {
        let url = self.url(&format!("memory/api/zones/{}/changes", seg(zone_id)))?;
        self.send(self.client.post(url).json(changes)).await
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeStatus, ProviderError> {
        let url = self.url(&format!("memory/api/changes/{}", seg(change_id)))?;
        let body: StatusBody = self.send(self.client.get(url)).await?;
        Ok(body.status)
    }

    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, ProviderError> {
        let url = self.url("memory/api/health-checks")?;
        self.send(self.client.get(url)).await
    }

    async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        let url = self.url("memory/api/health-checks")?;
        let body = CreateCheck {
            caller_reference: caller_reference.to_string(),
            config: config.clone(),
        };
        self.send(self.client.post(url).json(&body)).await
    }

    async fn tag_health_check(
        &self,
        id: &str,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let url = self.url(&format!("memory/api/health-checks/{}/tags", seg(id)))?;
        self.send(self.client.post(url).json(tags)).await
    }

    async fn update_health_check(
        &self,
        id: &str,
        version: i64,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        let url = self.url(&format!("memory/api/health-checks/{}", seg(id)))?;
        let body = UpdateCheck {
            version,
            config: config.clone(),
        };
        self.send(self.client.put(url).json(&body)).await
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), ProviderError> {
        let url = self.url(&format!("memory/api/health-checks/{}", seg(id)))?;
        self.send(self.client.delete(url)).await
    }

    async fn health_check_status(&self, id: &str) -> Result<CheckerReport, ProviderError> {
        let url = self.url(&format!("memory/api/health-checks/{}/status", seg(id)))?;
        self.send(self.client.get(url)).await
    }
}
