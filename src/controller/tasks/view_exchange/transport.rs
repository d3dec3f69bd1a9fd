//! Where the views are kept: TXT records under
//! `_route53-failover-views.<lease zone>` (Route53's control plane), or
//! items of the state store's `views` space (a data plane), one per
//! instance. Either way a view is the same TXT values (`quorum::View`),
//! so what is read is a record set whatever carried it.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::controller::calls::Calls;
use crate::decide::quorum;
use crate::provider::{Action, Change, ProviderError, RecordSet, RecordType};
use crate::store::{Condition, Space, StateStore};

pub(in crate::controller) enum Views {
    Route53 {
        /// Writes of this instance's own record and reads: unfenced.
        calls: Box<Calls>,
        /// Deletions of others' records: the lease holder's only.
        fenced: Calls,
        /// The lease's zone, and its id once found.
        zone: String,
        zone_id: OnceCell<String>,
    },
    Store(Arc<dyn StateStore>),
}

impl Views {
    pub(in crate::controller) fn new(
        store: Option<Arc<dyn StateStore>>,
        calls: Calls,
        fenced: Calls,
        zone: &str,
    ) -> Self {
        match store {
            Some(s) => Views::Store(s),
            None => Views::Route53 {
                calls: Box::new(calls),
                fenced,
                zone: zone.to_string(),
                zone_id: OnceCell::new(),
            },
        }
    }

    async fn zone_id<'a>(
        calls: &Calls,
        zone: &str,
        id: &'a OnceCell<String>,
    ) -> Result<&'a str, String> {
        id.get_or_try_init(|| async {
            calls
                .find_zone(zone)
                .await
                .map(|z| z.id)
                .map_err(|e| format!("finding zone {zone}: {e}"))
        })
        .await
        .map(String::as_str)
    }

    /// One change to the lease's zone through `calls`.
    async fn change(
        calls: &Calls,
        zone: &str,
        zone_id: &OnceCell<String>,
        change: Change,
    ) -> Result<(), String> {
        let id = Self::zone_id(calls, zone, zone_id).await?;
        calls
            .change(id, &[change])
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Writes this instance's view (`view`: its record).
    pub(in crate::controller) async fn write(
        &self,
        identity: &str,
        view: RecordSet,
    ) -> Result<(), String> {
        match self {
            Views::Route53 {
                calls,
                zone,
                zone_id,
                ..
            } => {
                let change = Change {
                    action: Action::Upsert,
                    record: view,
                };
                Self::change(calls, zone, zone_id, change).await
            }
            Views::Store(store) => {
                let value = crate::store::txt_value(&view.values);
                store
                    .put(Space::Views, identity, &value, Condition::Any)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Every instance's view, as record sets.
    pub(in crate::controller) async fn list(&self) -> Result<Vec<RecordSet>, String> {
        match self {
            Views::Route53 {
                calls,
                zone,
                zone_id,
                ..
            } => {
                let id = Self::zone_id(calls, zone, zone_id).await?;
                calls
                    .list_records_under(id, &quorum::views_parent(zone))
                    .await
                    .map_err(|e| e.to_string())
            }
            Views::Store(store) => {
                let items = store.list(Space::Views).await.map_err(|e| e.to_string())?;
                Ok(items
                    .into_iter()
                    // The zone part of the name is not read back.
                    .filter_map(|i| {
                        crate::store::txt_record(&quorum::view_name(&i.name, "store"), &i)
                    })
                    .collect())
            }
        }
    }

    /// Deletes these instances' views (`records`: as listed). Another
    /// instance's: the lease holder's job (fenced).
    pub(in crate::controller) async fn delete(
        &self,
        instances: &[&str],
        records: Vec<RecordSet>,
    ) -> Result<(), String> {
        match self {
            Views::Route53 {
                calls,
                fenced,
                zone,
                zone_id,
            } => {
                let id = Self::zone_id(calls, zone, zone_id).await?;
                let gone: Vec<Change> = records
                    .into_iter()
                    .map(|record| Change {
                        action: Action::Delete,
                        record,
                    })
                    .collect();
                match fenced.change(id, &gone).await {
                    // Another holder did it first, the instance came back,
                    // or this one no longer holds the lease.
                    Ok(_)
                    | Err(ProviderError::InvalidChangeBatch(_) | ProviderError::Fenced(_)) => {
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Views::Store(store) => {
                for instance in instances {
                    store
                        .delete(Space::Views, instance, Condition::Any)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// This instance's own view, at shutdown.
    pub(in crate::controller) async fn forget(&self, identity: &str) -> Result<(), String> {
        match self {
            Views::Route53 {
                calls,
                zone,
                zone_id,
                ..
            } => {
                let id = Self::zone_id(calls, zone, zone_id).await?;
                let name = quorum::view_name(identity, zone);
                let view = calls
                    .get_record(id, &name, &RecordType::Txt)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(view) = view else { return Ok(()) };
                let delete = Change {
                    action: Action::Delete,
                    record: view,
                };
                Self::change(calls, zone, zone_id, delete).await
            }
            Views::Store(store) => store
                .delete(Space::Views, identity, Condition::Any)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}
