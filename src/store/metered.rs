//! Every call to the state store, counted and remembered: the metrics
//! (`route53_failover_store_requests_total`, `_store_up`) and what status
//! shows of the store (reachable, the last write, the last error). The
//! daemon holds its store through this wrapper; callers never know.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Condition, Item, Space, StateStore, StoreError, StoreReport};
use crate::metrics::Metrics;

/// What status shows of the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// `dynamodb`, `file` or `memory`.
    pub kind: String,
    /// The table and Region, or the file.
    pub location: String,
    /// Whether two racing writers are sure to agree on one winner.
    pub linearizable: bool,
    pub warnings: Vec<String>,
    /// The last call was answered (a conflict is an answer).
    pub reachable: bool,
    /// Unix seconds.
    pub last_ok: Option<f64>,
    pub last_write: Option<f64>,
    /// The last failure, while calls fail.
    pub last_error: Option<String>,
}

impl StoreStatus {
    /// One line for the page and the table.
    pub fn line(&self, now: f64) -> String {
        let ago = |t: Option<f64>| {
            t.map_or("never".to_string(), |t| {
                format!("{:.0}s ago", (now - t).max(0.0))
            })
        };
        let mut line = format!(
            "state store {} ({}): {}, last write {}",
            self.kind,
            self.location,
            if self.reachable {
                "answers"
            } else {
                "NOT ANSWERING"
            },
            ago(self.last_write)
        );
        if let Some(e) = &self.last_error {
            line.push_str(&format!("; last error: {e}"));
        }
        line
    }
}

pub struct Metered {
    inner: Arc<dyn StateStore>,
    metrics: Arc<Metrics>,
    up: prometheus::IntGauge,
    status: Mutex<StoreStatus>,
    /// What the last answered describe said of linearizability.
    linearizable: Mutex<Option<bool>>,
}

impl Metered {
    pub fn new(inner: Arc<dyn StateStore>, metrics: Arc<Metrics>, location: String) -> Self {
        let up = metrics.store.configured(inner.kind());
        let status = StoreStatus {
            kind: inner.kind().to_string(),
            location,
            reachable: true,
            ..StoreStatus::default()
        };
        Metered {
            inner,
            metrics,
            up,
            status: Mutex::new(status),
            linearizable: Mutex::new(None),
        }
    }

    pub fn status(&self) -> StoreStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn note<T>(&self, operation: &str, write: bool, r: &Result<T, StoreError>) {
        let outcome = match r {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        self.metrics
            .store
            .requests_total
            .with_label_values(&[operation, outcome])
            .inc();
        let answered = !matches!(r, Err(e) if e.transient() || matches!(e, StoreError::Refused(_)));
        self.up.set(i64::from(answered));
        let now = crate::time::unix_secs(SystemTime::now());
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.reachable = answered;
        if answered {
            s.last_ok = Some(now);
            s.last_error = None;
            if write && r.is_ok() {
                s.last_write = Some(now);
            }
        } else if let Err(e) = r {
            s.last_error = Some(format!("{operation}: {e}"));
        }
    }
}

#[async_trait]
impl StateStore for Metered {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn describe(&self) -> Result<StoreReport, StoreError> {
        let r = self.inner.describe().await;
        self.note("describe", false, &r);
        if let Ok(report) = &r {
            *self.linearizable.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(report.linearizable);
            let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            s.location = report.location.clone();
            s.linearizable = report.linearizable;
            s.warnings = report.warnings.clone();
        }
        r
    }

    fn known_linearizable(&self) -> Option<bool> {
        *self.linearizable.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn get(&self, space: Space, name: &str) -> Result<Option<Item>, StoreError> {
        let r = self.inner.get(space, name).await;
        self.note("get", false, &r);
        r
    }

    async fn list(&self, space: Space) -> Result<Vec<Item>, StoreError> {
        let r = self.inner.list(space).await;
        self.note("list", false, &r);
        r
    }

    async fn put(
        &self,
        space: Space,
        name: &str,
        value: &str,
        condition: Condition,
    ) -> Result<u64, StoreError> {
        let r = self.inner.put(space, name, value, condition).await;
        self.note("put", true, &r);
        r
    }

    async fn delete(
        &self,
        space: Space,
        name: &str,
        condition: Condition,
    ) -> Result<(), StoreError> {
        let r = self.inner.delete(space, name, condition).await;
        self.note("delete", true, &r);
        r
    }
}
