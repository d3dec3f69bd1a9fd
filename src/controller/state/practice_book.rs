//! Practice runs' history (`decide::practice`), as this instance knows it:
//! each practising record's runs, kept in the state store's `practice`
//! space (one item per record, written with a compare-and-swap, so the
//! writer's task and an admin call on any instance never lose each
//! other's writes), and what holds each record's next run back now.
//! A run in progress is its drain (by `practice`), kept with on-call's
//! controls: a restart finds it there. Lives as long as the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::lock::lock;
use crate::config::RecordConfig;
use crate::decide::practice::Outcome;
use crate::decide::unix_ms;
use crate::store::{Condition, Space, StateStore};

/// One member's last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub set_identifier: String,
    pub region: String,
    /// Unix milliseconds.
    pub started_ms: u64,
    pub until_ms: u64,
    /// When it ended (`None`: in progress, or not seen to end yet).
    #[serde(default)]
    pub ended_ms: Option<u64>,
    /// `passed`, `failed` or `aborted`, once ended.
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub why: Option<String>,
    /// Who started it: `schedule`, or on-call's name.
    pub by: String,
    /// Whether clients left while it ran (`decide::traffic`), once known.
    #[serde(default)]
    pub traffic: Option<String>,
}

impl Run {
    pub fn started(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.started_ms)
    }

    pub fn until(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.until_ms)
    }

    pub fn open(&self) -> bool {
        self.outcome.is_none()
    }

    pub fn end(&mut self, outcome: &Outcome, now: SystemTime) {
        self.ended_ms = Some(unix_ms(now));
        self.outcome = Some(outcome.kind().to_string());
        self.why = outcome.why().map(String::from);
    }
}

/// A record's runs: the last of each member, by set identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub runs: BTreeMap<String, Run>,
}

impl History {
    /// When each member last began a run.
    pub fn starts(&self) -> BTreeMap<String, SystemTime> {
        self.runs
            .iter()
            .map(|(k, r)| (k.clone(), r.started()))
            .collect()
    }

    /// When the record's last run began.
    pub fn last_start(&self) -> Option<SystemTime> {
        self.runs.values().map(Run::started).max()
    }

    /// The run not yet ended, if any.
    pub fn open_run(&self) -> Option<&Run> {
        self.runs.values().find(|r| r.open())
    }
}

/// The history item's name: one per record.
pub fn key(record: &RecordConfig) -> String {
    format!("{} {}", record.name, record.rtype)
}

#[derive(Debug, Default)]
pub struct PracticeBook {
    /// Per record key: its history as last read or written.
    histories: Mutex<BTreeMap<String, History>>,
    /// Per record key: why its due run does not start now.
    blocked: Mutex<BTreeMap<String, String>>,
}

/// A write that did not go through.
const TRIES: usize = 4;

impl PracticeBook {
    pub fn history(&self, key: &str) -> History {
        lock(&self.histories).get(key).cloned().unwrap_or_default()
    }

    pub fn blocked(&self, key: &str) -> Option<String> {
        lock(&self.blocked).get(key).cloned()
    }

    /// Notes why `key`'s run waits (`None`: it does not); returns whether
    /// that changed.
    pub fn set_blocked(&self, key: &str, why: Option<String>) -> bool {
        let mut blocked = lock(&self.blocked);
        let before = blocked.get(key).cloned();
        match &why {
            Some(w) => blocked.insert(key.to_string(), w.clone()),
            None => blocked.remove(key),
        };
        before != why
    }

    /// Reads every record's history from the store.
    pub async fn read(&self, store: &dyn StateStore) -> Result<(), String> {
        let items = store
            .list(Space::Practice)
            .await
            .map_err(|e| e.to_string())?;
        let read: BTreeMap<String, History> = items
            .into_iter()
            .filter_map(|i| Some((i.name, serde_json::from_str(&i.value).ok()?)))
            .collect();
        *lock(&self.histories) = read;
        Ok(())
    }

    /// Changes `key`'s history with `f` in the store (read, change, write
    /// if nobody wrote since: tried again a few times) and here. `f`
    /// returns false to change nothing. Returns the history as written.
    pub async fn update(
        &self,
        store: &Arc<dyn StateStore>,
        key: &str,
        mut f: impl FnMut(&mut History) -> bool,
    ) -> Result<History, String> {
        let mut last = String::new();
        for _ in 0..TRIES {
            let item = store
                .get(Space::Practice, key)
                .await
                .map_err(|e| e.to_string())?;
            let mut history: History = item
                .as_ref()
                .and_then(|i| serde_json::from_str(&i.value).ok())
                .unwrap_or_default();
            if !f(&mut history) {
                lock(&self.histories).insert(key.to_string(), history.clone());
                return Ok(history);
            }
            let value = serde_json::to_string(&history).expect("a history serializes");
            let condition = item.map_or(Condition::Absent, |i| Condition::Version(i.version));
            match store.put(Space::Practice, key, &value, condition).await {
                Ok(_) => {
                    lock(&self.histories).insert(key.to_string(), history.clone());
                    return Ok(history);
                }
                Err(e @ crate::store::StoreError::Conflict(_)) => last = e.to_string(),
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!("the history kept changing under the write: {last}"))
    }
}
