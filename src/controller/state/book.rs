//! On-call's drains and freezes (`decide::controls`) as this instance
//! knows them: read by the reconcilers and status, written by the admin
//! routes and by the task that reads them from Route53
//! (`controller::tasks::control_reader`). Lives as long as the process.

use std::sync::Mutex;

use tokio::sync::watch;

use super::lock::lock;
use crate::controller::Calls;
use crate::decide::controls::{controls_parent, Control, Controls};
use crate::provider::{Action, Change, ProviderError};

/// The controls, shared by the reconcilers, the admin routes and status;
/// kept across reloads.
#[derive(Debug)]
pub struct ControlBook {
    controls: Mutex<Controls>,
    /// Bumped at every change: the reconcilers wake on it.
    version: watch::Sender<u64>,
    /// Turns true at the first successful read.
    loaded: watch::Sender<bool>,
    last_error: Mutex<Option<String>>,
}

impl Default for ControlBook {
    fn default() -> Self {
        ControlBook {
            controls: Mutex::new(Controls::default()),
            version: watch::Sender::new(0),
            loaded: watch::Sender::new(false),
            last_error: Mutex::new(None),
        }
    }
}

impl ControlBook {
    pub fn snapshot(&self) -> Controls {
        lock(&self.controls).clone()
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    pub(in crate::controller) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Waits for the first read (at once without `admin`: nothing to read).
    pub(in crate::controller) async fn loaded(&self, admin: bool) {
        if admin {
            let mut rx = self.loaded.subscribe();
            let _ = rx.wait_for(|l| *l).await;
        }
    }

    pub(in crate::controller) fn changed(&self, f: impl FnOnce(&mut Controls)) {
        f(&mut lock(&self.controls));
        self.version.send_modify(|v| *v += 1);
    }

    /// Writes `control` to Route53 (replacing the one of the same subject)
    /// and takes it into account at once.
    pub async fn put(
        &self,
        calls: &Calls,
        zone: &str,
        control: Control,
    ) -> Result<(), ProviderError> {
        let zone_id = calls.find_zone(zone).await?.id;
        let change = Change {
            action: Action::Upsert,
            record: control.to_record(zone),
        };
        calls.change(&zone_id, &[change]).await?;
        self.changed(|c| c.put(control));
        Ok(())
    }

    /// Deletes the control with this label from Route53 (as read now: it
    /// may have been written by another instance); `None` when there was
    /// none.
    pub async fn remove(
        &self,
        calls: &Calls,
        zone: &str,
        label: &str,
    ) -> Result<Option<Control>, ProviderError> {
        let zone_id = calls.find_zone(zone).await?.id;
        let name = format!("{label}.{}", controls_parent(zone));
        let records = calls
            .list_records_under(&zone_id, &controls_parent(zone))
            .await?;
        let record = records.into_iter().find(|r| r.name == name);
        let control = record.as_ref().and_then(Control::parse);
        if let Some(record) = record {
            let change = Change {
                action: Action::Delete,
                record,
            };
            calls.change(&zone_id, &[change]).await?;
        }
        self.changed(|c| {
            c.remove(label);
        });
        Ok(control)
    }

    /// The task read the controls: the book is loaded.
    pub(in crate::controller) fn read_worked(&self) {
        *lock(&self.last_error) = None;
        self.loaded.send_replace(true);
    }

    /// The task's read failed: status says why.
    pub(in crate::controller) fn read_failed(&self, error: String) {
        *lock(&self.last_error) = Some(error);
    }

    /// Bumped at every change (an admin call's write).
    pub(in crate::controller) fn version(&self) -> u64 {
        *self.version.borrow()
    }
}
