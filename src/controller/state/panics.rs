//! The long-running tasks that panicked, as the process remembers them
//! (`controller::supervise` starts them again): what status shows, and
//! what keeps `/readyz` red for a while after a panic.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// `/readyz` stays red this long after a task's panic.
pub const UNSTEADY: Duration = Duration::from_secs(30);

/// A task that panicked, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPanic {
    /// Which task: its kind and what it serves (`reconciler example.com.`).
    pub task: String,
    /// The metric's label (`reconciler`, `prober`, `lever`, ...).
    pub kind: String,
    /// Panics since the process started.
    pub panics: u64,
    /// When the last one happened (unix seconds).
    pub last: f64,
    /// The last panic's message.
    pub message: String,
    /// Waiting for its backoff before it starts again.
    pub restarting: bool,
}

impl TaskPanic {
    /// One line for the page and the table.
    pub fn line(&self, now: f64) -> String {
        let state = if self.restarting {
            "starting again"
        } else {
            "running again"
        };
        format!(
            "task {} panicked {} time(s), last {:.0}s ago ({state}): {}",
            self.task,
            self.panics,
            (now - self.last).max(0.0),
            self.message
        )
    }
}

/// The tasks that have panicked, by name: empty in a healthy process.
#[derive(Default)]
pub struct TaskBoard {
    panicked: Mutex<BTreeMap<String, (TaskPanic, SystemTime)>>,
}

impl TaskBoard {
    fn board(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (TaskPanic, SystemTime)>> {
        self.panicked.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(in crate::controller) fn panicked(
        &self,
        kind: &str,
        task: &str,
        message: &str,
        now: SystemTime,
    ) {
        let mut board = self.board();
        let entry = board.entry(task.to_string()).or_insert_with(|| {
            let first = TaskPanic {
                task: task.to_string(),
                kind: kind.to_string(),
                panics: 0,
                last: 0.0,
                message: String::new(),
                restarting: false,
            };
            (first, now)
        });
        entry.0.panics += 1;
        entry.0.last = crate::time::unix_secs(now);
        entry.0.message = message.to_string();
        entry.0.restarting = true;
        entry.1 = now;
    }

    pub(in crate::controller) fn restarted(&self, task: &str) {
        if let Some(entry) = self.board().get_mut(task) {
            entry.0.restarting = false;
        }
    }

    /// Every task that has panicked, by name.
    pub fn snapshot(&self) -> Vec<TaskPanic> {
        self.board().values().map(|(p, _)| p.clone()).collect()
    }

    /// No task waits to start again, and none panicked within [`UNSTEADY`].
    pub fn steady(&self, now: SystemTime) -> bool {
        self.board()
            .values()
            .all(|(p, at)| !p.restarting && now.duration_since(*at).unwrap_or_default() >= UNSTEADY)
    }
}
