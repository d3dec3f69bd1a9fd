//! A loopback stand-in for an ARC cluster endpoint: the routing-control
//! data-plane API (awsJson 1.0, `x-amz-target: ToggleCustomerAPI.<op>`)
//! over one [`Board`] of switches, with assertion rules ("at least N of
//! these On") that refuse a change the way ARC does (`ConflictException`
//! naming the rule). moto has no ARC backend; the demo and the tests run
//! this through the real SDK client. Several endpoints of one cluster
//! share the board, as the cluster's endpoints share its state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The switches of one cluster: routing control ARN → On.
#[derive(Clone, Default)]
pub struct Board(Arc<Mutex<BTreeMap<String, bool>>>);

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a routing control (or sets one), as the control panel does.
    pub fn set(&self, arn: &str, on: bool) {
        self.lock().insert(arn.to_string(), on);
    }

    /// `None`: no such routing control.
    pub fn get(&self, arn: &str) -> Option<bool> {
        self.lock().get(arn).copied()
    }
}

/// An assertion rule: at least `min_on` of `controls` stay On.
#[derive(Debug, Clone)]
pub struct AssertionRule {
    pub arn: String,
    pub name: String,
    pub controls: Vec<String>,
    pub min_on: usize,
}

/// A change the cluster applied: when, and each switch's new state.
pub type Accepted = (std::time::SystemTime, Vec<(String, bool)>);

/// One cluster's state, shared by every endpoint serving it.
#[derive(Default)]
pub struct Cluster {
    pub board: Board,
    pub rules: Mutex<Vec<AssertionRule>>,
    /// Update calls answered (accepted or refused), and reads answered.
    pub updates: AtomicU64,
    pub refusals: AtomicU64,
    pub reads: AtomicU64,
    /// Every change applied, with when (a benchmark times them).
    pub accepted: Mutex<Vec<Accepted>>,
    /// Every update call as it arrived: when, and the term its writer
    /// named (`lever::client::TERM_HEADER`; `None`: none named).
    pub terms: Mutex<Vec<(std::time::SystemTime, Option<u64>)>>,
    /// Tests' faults: how long a read takes to answer, and how long an
    /// update waits to answer after it applied (a late answer: the
    /// caller's timeout passes, the change stands).
    pub read_delay: Mutex<std::time::Duration>,
    pub update_delay: Mutex<std::time::Duration>,
    /// Tests' fault: every update answered `InternalServerException`,
    /// nothing applied.
    pub failing_updates: std::sync::atomic::AtomicBool,
}

impl Cluster {
    /// Reads answer `read` late, updates `update` late (after applying).
    pub fn delay(&self, read: std::time::Duration, update: std::time::Duration) {
        *self.read_delay.lock().unwrap_or_else(|e| e.into_inner()) = read;
        *self.update_delay.lock().unwrap_or_else(|e| e.into_inner()) = update;
    }

    fn delay_of(d: &Mutex<std::time::Duration>) -> std::time::Duration {
        *d.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn new(board: Board) -> Arc<Self> {
        Arc::new(Cluster {
            board,
            ..Cluster::default()
        })
    }

    pub fn add_rule(&self, rule: AssertionRule) {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule);
    }

    /// Applies `entries` together unless a rule not overridden would be
    /// broken by the result: all or nothing, as ARC does. The answer.
    fn update(&self, entries: &[(String, bool)], overrides: &[String]) -> Response {
        let mut board = self.board.lock();
        for (arn, _) in entries {
            if !board.contains_key(arn) {
                return not_found(arn);
            }
        }
        let mut after = board.clone();
        for (arn, on) in entries {
            after.insert(arn.clone(), *on);
        }
        let rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        for rule in rules.iter().filter(|r| !overrides.contains(&r.arn)) {
            let on = rule
                .controls
                .iter()
                .filter(|c| after.get(*c).copied().unwrap_or(false))
                .count();
            if on < rule.min_on {
                self.refusals.fetch_add(1, Ordering::Relaxed);
                return error(
                    StatusCode::CONFLICT,
                    "ConflictException",
                    json!({"message": format!(
                            "the change breaks assertion rule {} (at least {} On)",
                            rule.name, rule.min_on),
                           "resourceId": rule.arn, "resourceType": "SafetyRule"}),
                );
            }
        }
        *board = after;
        self.accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((std::time::SystemTime::now(), entries.to_vec()));
        ok(json!({}))
    }
}

fn error(status: StatusCode, kind: &str, mut body: Value) -> Response {
    body["__type"] = json!(kind);
    (
        status,
        [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amzn-errortype", kind),
        ],
        body.to_string(),
    )
        .into_response()
}

fn not_found(arn: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        json!({"message": format!("routing control {arn} not found"),
               "resourceId": arn, "resourceType": "RoutingControl"}),
    )
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

fn invalid(message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        json!({"message": message}),
    )
}

fn state_of(v: &Value) -> Option<bool> {
    match v.as_str()? {
        "On" => Some(true),
        "Off" => Some(false),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn handle(State(cluster): State<Arc<Cluster>>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(input) = serde_json::from_str::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    let op = target.strip_prefix("ToggleCustomerAPI.").unwrap_or(target);
    match op {
        "GetRoutingControlState" => {
            cluster.reads.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Cluster::delay_of(&cluster.read_delay)).await;
            let Some(arn) = input["RoutingControlArn"].as_str() else {
                return invalid("RoutingControlArn is required");
            };
            match cluster.board.get(arn) {
                Some(on) => ok(json!({
                    "RoutingControlArn": arn,
                    "RoutingControlState": if on { "On" } else { "Off" },
                    "RoutingControlName": arn.rsplit('/').next().unwrap_or(arn),
                })),
                None => not_found(arn),
            }
        }
        "UpdateRoutingControlState" | "UpdateRoutingControlStates" => {
            cluster.updates.fetch_add(1, Ordering::Relaxed);
            let term = headers
                .get(super::client::TERM_HEADER)
                .and_then(|v| v.to_str().ok()?.parse().ok());
            cluster
                .terms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((std::time::SystemTime::now(), term));
            if cluster.failing_updates.load(Ordering::Relaxed) {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerException",
                    json!({"message": "the cluster cannot apply changes now"}),
                );
            }
            let entries: Option<Vec<(String, bool)>> = if op == "UpdateRoutingControlState" {
                match (
                    input["RoutingControlArn"].as_str(),
                    state_of(&input["RoutingControlState"]),
                ) {
                    (Some(arn), Some(on)) => Some(vec![(arn.to_string(), on)]),
                    _ => None,
                }
            } else {
                input["UpdateRoutingControlStateEntries"]
                    .as_array()
                    .and_then(|list| {
                        list.iter()
                            .map(|e| {
                                Some((
                                    e["RoutingControlArn"].as_str()?.to_string(),
                                    state_of(&e["RoutingControlState"])?,
                                ))
                            })
                            .collect()
                    })
            };
            let Some(entries) = entries.filter(|e| !e.is_empty()) else {
                return invalid(
                    "each entry needs RoutingControlArn and RoutingControlState On or Off",
                );
            };
            let answer = cluster.update(&entries, &strings(&input["SafetyRulesToOverride"]));
            tokio::time::sleep(Cluster::delay_of(&cluster.update_delay)).await;
            answer
        }
        _ => invalid(&format!("unknown operation {target:?}")),
    }
}

/// Serves one endpoint of `cluster` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cluster: Arc<Cluster>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let app = axum::Router::new()
        .fallback(axum::routing::post(handle))
        .with_state(cluster);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
}
