//! `state_store`: where the lease, the views, on-call's controls and the
//! zone knowledge live (`crate::store`). Absent: in Route53's TXT records,
//! as before (the control plane the lever exists to route around; `check`
//! says what that costs).

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::lever::region_like;
use super::raw::RawStateStore;
use super::{q, Validator};

/// Which backend, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// A DynamoDB table (a global table in strong consistency for `ha`).
    DynamoDb {
        table: String,
        /// This instance's own Region: the replica it talks to.
        region: String,
        /// An emulator, for tests.
        endpoint_url: Option<Url>,
    },
    /// One file on a volume: a single instance that remembers.
    File { path: PathBuf },
    /// In the process: remembers nothing across a restart.
    Memory,
}

impl StoreKind {
    /// Where, for status and logs.
    pub fn location(&self) -> String {
        match self {
            StoreKind::DynamoDb { table, region, .. } => format!("table {table} in {region}"),
            StoreKind::File { path } => path.display().to_string(),
            StoreKind::Memory => "this process".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateStoreConfig {
    pub kind: StoreKind,
    /// How long one store call may take.
    pub call_timeout: Duration,
}

/// DynamoDB's rule for a table name.
fn valid_table(t: &str) -> bool {
    (3..=255).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Validator {
    /// The section; `ha`: whether several instances share it.
    pub(super) fn state_store(
        &mut self,
        raw: Option<&RawStateStore>,
        ha: bool,
    ) -> Option<Option<StateStoreConfig>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let before = self.errors.len();
        let call_timeout = self.duration(
            "state_store.call_timeout",
            raw.call_timeout.as_deref(),
            Duration::from_secs(1),
        );
        if let Some(d) = call_timeout.filter(|d| d.is_zero() || *d > Duration::from_secs(10)) {
            self.err(
                "state_store.call_timeout",
                format!(
                    "{} must be more than 0 and at most 10s",
                    q(&format!("{d:?}"))
                ),
            );
        }
        let kind = match raw.kind.as_deref() {
            Some("dynamodb") => {
                let table = self.required("state_store.table", &raw.table).cloned();
                if let Some(t) = table.as_deref().filter(|t| !valid_table(t)) {
                    self.err(
                        "state_store.table",
                        format!("{} is not a DynamoDB table name (3-255 of letters, digits, '_', '-', '.')", q(t)),
                    );
                }
                let region = self.required("state_store.region", &raw.region).cloned();
                if let Some(r) = region.as_deref().filter(|r| !region_like(r)) {
                    self.err(
                        "state_store.region",
                        format!("{} is not an AWS region (e.g. us-east-2)", q(r)),
                    );
                }
                let endpoint_url = raw
                    .endpoint_url
                    .as_deref()
                    .and_then(|u| self.http_url("state_store.endpoint_url", u));
                self.unused("state_store.path", raw.path.is_some(), "dynamodb");
                table
                    .zip(region)
                    .map(|(table, region)| StoreKind::DynamoDb {
                        table,
                        region,
                        endpoint_url,
                    })
            }
            Some("file") => {
                let path = self.required("state_store.path", &raw.path);
                let path = path.map(|p| self.base_dir.join(p));
                for (key, set) in [
                    ("table", raw.table.is_some()),
                    ("region", raw.region.is_some()),
                    ("endpoint_url", raw.endpoint_url.is_some()),
                ] {
                    self.unused(&format!("state_store.{key}"), set, "file");
                }
                if ha {
                    self.err(
                        "state_store.kind",
                        "\"file\" is one instance's: with ha, the instances need one store they all reach (dynamodb)",
                    );
                }
                path.map(|path| StoreKind::File { path })
            }
            Some("memory") => {
                if ha {
                    self.err(
                        "state_store.kind",
                        "\"memory\" is one process's: with ha, the instances need one store they all reach (dynamodb)",
                    );
                }
                Some(StoreKind::Memory)
            }
            None => {
                self.err(
                    "state_store.kind",
                    "missing (required): dynamodb, file or memory",
                );
                None
            }
            Some(other) => {
                self.err(
                    "state_store.kind",
                    format!(
                        "{} is not a state store (dynamodb, file or memory)",
                        q(other)
                    ),
                );
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(Some(StateStoreConfig {
            kind: kind?,
            call_timeout: call_timeout?,
        }))
    }

    /// A key that the chosen kind does not read.
    fn unused(&mut self, path: &str, set: bool, kind: &str) {
        if set {
            self.err(path, format!("is not read by state_store kind {kind}"));
        }
    }
}
