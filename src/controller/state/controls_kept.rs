//! Where on-call's drains and freezes are kept: TXT records under
//! `_route53-failover-controls.<zone>` (Route53's control plane), or items
//! of the state store's `controls` space, one per control, named by its
//! label (a data plane: a drain goes through while Route53's control
//! plane is down). Either way a control is the same TXT values
//! (`Control::to_record`).

use std::sync::Arc;

use crate::controller::Calls;
use crate::decide::controls::{controls_parent, Control};
use crate::provider::{Action, Change, ProviderError, RecordSet};
use crate::store::{Condition, Space, StateStore, StoreError};

pub enum ControlsKept<'a> {
    Route53 {
        /// On-call's writes and the reads: unfenced.
        calls: &'a Calls,
        /// The deletion of ended controls: the lease holder's.
        fenced: &'a Calls,
        zone: &'a str,
    },
    Store(Arc<dyn StateStore>),
}

/// A control as read: what a deletion names, so it never deletes one
/// written since (Route53: the exact record; the store: its version).
#[derive(Debug, Clone)]
pub enum Handle {
    Record(RecordSet),
    Item(String, u64),
}

fn route53(e: ProviderError) -> String {
    format!("Route53: {e}")
}

fn store(e: StoreError) -> String {
    format!("state store: {e}")
}

impl ControlsKept<'_> {
    async fn zone_id(calls: &Calls, zone: &str) -> Result<String, String> {
        calls.find_zone(zone).await.map(|z| z.id).map_err(route53)
    }

    /// Every control kept, with what a deletion of it names.
    pub async fn list(&self) -> Result<Vec<(Control, Handle)>, String> {
        Ok(match self {
            ControlsKept::Route53 { calls, zone, .. } => {
                let id = Self::zone_id(calls, zone).await?;
                calls
                    .list_records_under(&id, &controls_parent(zone))
                    .await
                    .map_err(route53)?
                    .into_iter()
                    .filter_map(|r| Some((Control::parse(&r)?, Handle::Record(r))))
                    .collect()
            }
            ControlsKept::Store(s) => s
                .list(Space::Controls)
                .await
                .map_err(store)?
                .into_iter()
                .filter_map(|i| {
                    let control = Control::parse(&crate::store::txt_record(&i.name, &i)?)?;
                    Some((control, Handle::Item(i.name, i.version)))
                })
                .collect(),
        })
    }

    /// Writes `control`, replacing the one of the same subject.
    pub async fn put(&self, control: &Control) -> Result<(), String> {
        match self {
            ControlsKept::Route53 { calls, zone, .. } => {
                let id = Self::zone_id(calls, zone).await?;
                let change = Change {
                    action: Action::Upsert,
                    record: control.to_record(zone),
                };
                calls.change(&id, &[change]).await.map_err(route53)?;
            }
            ControlsKept::Store(s) => {
                let value = crate::store::txt_value(&control.to_record("store").values);
                s.put(Space::Controls, &control.label(), &value, Condition::Any)
                    .await
                    .map_err(store)?;
            }
        }
        Ok(())
    }

    /// Deletes what `handle` names (Route53: through `fenced`, the lease
    /// holder's calls, or on-call's); `false` when it changed since, or
    /// was gone.
    async fn delete(&self, handle: Handle, fenced: bool) -> Result<bool, String> {
        match (self, handle) {
            (
                ControlsKept::Route53 {
                    calls,
                    fenced: f,
                    zone,
                },
                Handle::Record(record),
            ) => {
                let id = Self::zone_id(calls, zone).await?;
                let change = Change {
                    action: Action::Delete,
                    record,
                };
                let via = if fenced { *f } else { *calls };
                match via.change(&id, &[change]).await {
                    Ok(_) => Ok(true),
                    Err(ProviderError::InvalidChangeBatch(_) | ProviderError::Fenced(_)) => {
                        Ok(false)
                    }
                    Err(e) => Err(route53(e)),
                }
            }
            (ControlsKept::Store(s), Handle::Item(name, version)) => {
                let condition = Condition::Version(version);
                match s.delete(Space::Controls, &name, condition).await {
                    Ok(()) => Ok(true),
                    Err(StoreError::Conflict(_)) => Ok(false),
                    Err(e) => Err(store(e)),
                }
            }
            _ => unreachable!("a control is listed and deleted in one place"),
        }
    }

    /// Deletes the control with this label (as kept now: another instance
    /// may have written it); returns it, `None` when there was none.
    pub async fn remove(&self, label: &str) -> Result<Option<Control>, String> {
        let kept = self.list().await?;
        let Some((control, handle)) = kept.into_iter().find(|(c, _)| c.label() == label) else {
            return Ok(None);
        };
        if !self.delete(handle, false).await? {
            return Err(format!(
                "{label} changed while it was being deleted; try again"
            ));
        }
        Ok(Some(control))
    }

    /// Deletes the controls that ended (as listed): the lease holder's job.
    /// One renewed meanwhile, or deleted first by another instance, stays.
    /// Returns how many went.
    pub async fn delete_ended(&self, ended: Vec<Handle>) -> Result<usize, String> {
        let mut deleted = 0;
        for handle in ended {
            deleted += usize::from(self.delete(handle, true).await?);
        }
        Ok(deleted)
    }
}
