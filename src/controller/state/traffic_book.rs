//! What the traffic confirmation (`tasks::traffic`) last found of each
//! member's withdrawal, for status. Lives as long as the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::lock::lock;

/// A withdrawal's traffic, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficStatus {
    /// When the member was withdrawn (unix seconds).
    pub withdrawn_at: f64,
    /// `measuring`, `fell`, `not_leaving`, `no_baseline`, `published`
    /// (back before it was known) or `error`.
    pub state: String,
    /// With `fell`: seconds from the withdrawal to the 90 % fall; with
    /// `not_leaving`: the bound.
    #[serde(default)]
    pub after_s: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
}

impl TrafficStatus {
    /// `traffic fell 90 % 95 s after the withdrawal`, and the others.
    pub fn text(&self) -> String {
        let after = self.after_s.unwrap_or_default();
        match self.state.as_str() {
            "fell" => format!("traffic fell 90 % {after:.0} s after the withdrawal"),
            "not_leaving" => {
                format!("traffic did not fall 90 % within {after:.0} s: clients are not leaving")
            }
            "no_baseline" => "no traffic before the withdrawal to see fall".into(),
            "published" => "published again before its traffic was known".into(),
            "error" => format!(
                "traffic not known: {}",
                self.error.as_deref().unwrap_or("?")
            ),
            _ => "measuring its traffic".into(),
        }
    }
}

/// The member's key: `record type set_identifier`.
pub fn key(record: &crate::config::RecordConfig, set_identifier: &str) -> String {
    format!("{} {} {set_identifier}", record.name, record.rtype)
}

#[derive(Debug, Default)]
pub struct TrafficBook {
    members: Mutex<BTreeMap<String, TrafficStatus>>,
}

impl TrafficBook {
    pub fn get(&self, key: &str) -> Option<TrafficStatus> {
        lock(&self.members).get(key).cloned()
    }

    pub fn set(&self, key: &str, status: TrafficStatus) {
        lock(&self.members).insert(key.to_string(), status);
    }
}
