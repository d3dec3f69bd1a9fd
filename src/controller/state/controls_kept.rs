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

    /// Writes `control` only if no control of its subject is in force (one
    /// that ended and was not deleted yet goes first): a practice's drain
    /// never replaces on-call's. Checked where controls are kept, not in
    /// this instance's copy.
    pub async fn put_new(&self, control: &Control) -> Result<(), String> {
        let label = control.label();
        let now = std::time::SystemTime::now();
        if let Some((c, handle)) = self
            .list()
            .await?
            .into_iter()
            .find(|(c, _)| c.label() == label)
        {
            if c.in_force(now) {
                return Err(format!("{} by {} is in force", c.subject(), c.by));
            }
            self.delete(handle, false).await?;
        }
        match self {
            ControlsKept::Route53 { calls, zone, .. } => {
                let id = Self::zone_id(calls, zone).await?;
                let change = Change {
                    action: Action::Create,
                    record: control.to_record(zone),
                };
                calls.change(&id, &[change]).await.map_err(route53)?;
            }
            ControlsKept::Store(s) => {
                let value = crate::store::txt_value(&control.to_record("store").values);
                s.put(Space::Controls, &label, &value, Condition::Absent)
                    .await
                    .map_err(store)?;
            }
        }
        Ok(())
    }

    /// Deletes the control with this label if `meant` says it is the one
    /// meant (as kept now); returns it, `None` when there was none or
    /// another one stands there (on-call's drain of the same member).
    pub async fn remove_if(
        &self,
        label: &str,
        meant: impl Fn(&Control) -> bool,
    ) -> Result<Option<Control>, String> {
        let kept = self.list().await?;
        let Some((control, handle)) = kept
            .into_iter()
            .find(|(c, _)| c.label() == label && meant(c))
        else {
            return Ok(None);
        };
        self.delete(handle, false).await?;
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::decide::controls::{Scope, PRACTICE_BY};
    use crate::store::MemoryStore;

    fn drain(by: &str, now: SystemTime) -> Control {
        Control {
            scope: Scope::Drain {
                record: "api.example.com".into(),
                rtype: "A".into(),
                set_identifier: "euw1".into(),
                region: "eu-west-1".into(),
                force: false,
            },
            by: by.into(),
            reason: "r".into(),
            at_ms: crate::decide::unix_ms(now),
            until_ms: crate::decide::unix_ms(now + Duration::from_secs(600)),
        }
    }

    /// A practice's drain never replaces on-call's drain of the same
    /// member (one this instance has not read yet included), and ending a
    /// practice never deletes on-call's.
    #[tokio::test]
    async fn a_practice_never_replaces_nor_removes_on_calls_drain() {
        let kept = ControlsKept::Store(Arc::new(MemoryStore::new("o")));
        let now = SystemTime::now();
        let on_call = drain("alice", now);
        kept.put(&on_call).await.unwrap();
        let practice = drain(PRACTICE_BY, now);
        let refused = kept.put_new(&practice).await.unwrap_err();
        assert!(refused.contains("by alice is in force"), "{refused}");
        let removed = kept
            .remove_if(&practice.label(), |c| c.is_practice())
            .await
            .unwrap();
        assert_eq!(removed, None);
        let listed = kept.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0.by, "alice");
        // Once on-call's has ended, the practice's goes in its place, and
        // is the one removed.
        let ended = Control {
            until_ms: crate::decide::unix_ms(now) - 1,
            ..on_call
        };
        kept.put(&ended).await.unwrap();
        kept.put_new(&practice).await.unwrap();
        let removed = kept
            .remove_if(&practice.label(), |c| {
                c.is_practice() && c.at_ms == practice.at_ms
            })
            .await
            .unwrap();
        assert_eq!(removed.map(|c| c.by), Some(PRACTICE_BY.to_string()));
        assert!(kept.list().await.unwrap().is_empty());
    }
}
