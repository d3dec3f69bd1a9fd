//! On-call's drains and freezes (`decide::controls`) as this instance
//! knows them: read by the reconcilers and status, written by the admin
//! routes and by the task that reads them where they are kept
//! (`controller::tasks::control_reader`, `controls_kept`). Lives as long as the process.

use std::sync::Mutex;

use tokio::sync::watch;

use super::controls_kept::ControlsKept;
use super::lock::lock;
use crate::decide::controls::{Control, Controls};

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

    /// Writes `control` where controls are kept (replacing the one of the
    /// same subject) and takes it into account at once.
    pub async fn put(&self, kept: &ControlsKept<'_>, control: Control) -> Result<(), String> {
        kept.put(&control).await?;
        self.changed(|c| c.put(control));
        Ok(())
    }

    /// Deletes the control with this label where controls are kept (as
    /// read now: it may have been written by another instance); `None`
    /// when there was none.
    pub async fn remove(
        &self,
        kept: &ControlsKept<'_>,
        label: &str,
    ) -> Result<Option<Control>, String> {
        let control = kept.remove(label).await?;
        self.changed(|c| {
            c.remove(label);
        });
        Ok(control)
    }

    /// [`ControlsKept::put_new`], and the book takes it at once.
    pub async fn put_new(&self, kept: &ControlsKept<'_>, control: Control) -> Result<(), String> {
        kept.put_new(&control).await?;
        self.changed(|c| c.put(control));
        Ok(())
    }

    /// [`ControlsKept::remove_if`], and the book forgets it at once.
    pub async fn remove_if(
        &self,
        kept: &ControlsKept<'_>,
        label: &str,
        meant: impl Fn(&Control) -> bool,
    ) -> Result<Option<Control>, String> {
        let removed = kept.remove_if(label, meant).await?;
        if removed.is_some() {
            self.changed(|c| {
                c.remove(label);
            });
        }
        Ok(removed)
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
