//! Where the lease is kept, and its compare-and-swap: a TXT record in the
//! lease's zone (Route53's control plane: an atomic batch that deletes
//! exactly what was read and creates the new value), or an item of the
//! state store (a data plane: a write conditional on the version read).
//! The lease's rules (`decide::lease`) are the same for both.

use std::sync::Arc;

use super::{Calls, LeaseValue, ProviderError, RecordSet, RecordType};
use crate::decide::lease;
use crate::store::{Condition, Space, StateStore, StoreError};

/// The store item that holds the lease.
pub(super) const ITEM: &str = "lease";

pub(super) enum Cell {
    Route53 {
        calls: Calls,
        zone_id: String,
        name: String,
    },
    Store(Arc<dyn StateStore>),
}

/// The lease as read: what a swap must name.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Current {
    Record(Option<RecordSet>),
    Version(Option<u64>),
}

/// Why a read or a swap did not go through.
#[derive(Debug)]
pub(super) enum CellError {
    /// Someone else changed the lease since it was read.
    Changed(String),
    /// No answer, or an error: it may have landed (a swap).
    Failed(String),
}

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellError::Changed(e) | CellError::Failed(e) => f.write_str(e),
        }
    }
}

impl From<ProviderError> for CellError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::InvalidChangeBatch(m) => CellError::Changed(m),
            e => CellError::Failed(e.to_string()),
        }
    }
}

impl From<StoreError> for CellError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => CellError::Changed(m),
            e => CellError::Failed(e.to_string()),
        }
    }
}

impl Cell {
    /// `route53` or the store's kind, for logs.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Cell::Route53 { .. } => "route53",
            Cell::Store(s) => s.kind(),
        }
    }

    pub(super) async fn read(&self) -> Result<(Option<LeaseValue>, Current), CellError> {
        match self {
            Cell::Route53 {
                calls,
                zone_id,
                name,
            } => {
                let record = calls.get_record(zone_id, name, &RecordType::Txt).await?;
                Ok((lease::read_value(record.as_ref()), Current::Record(record)))
            }
            Cell::Store(store) => {
                let item = store.get(Space::Lease, ITEM).await?;
                let value = item.as_ref().and_then(|i| LeaseValue::parse(&i.value));
                Ok((value, Current::Version(item.map(|i| i.version))))
            }
        }
    }

    /// Replaces `current` with `new`; returns what names `new` now.
    pub(super) async fn swap(
        &self,
        current: &Current,
        new: &LeaseValue,
    ) -> Result<Current, CellError> {
        match (self, current) {
            (
                Cell::Route53 {
                    calls,
                    zone_id,
                    name,
                },
                Current::Record(old),
            ) => {
                let record = new.record(name);
                calls
                    .change(zone_id, &lease::swap(old.as_ref(), record.clone()))
                    .await?;
                Ok(Current::Record(Some(record)))
            }
            (Cell::Store(store), Current::Version(old)) => {
                let condition = old.map_or(Condition::Absent, Condition::Version);
                let version = store
                    .put(Space::Lease, ITEM, &new.to_txt(), condition)
                    .await?;
                Ok(Current::Version(Some(version)))
            }
            _ => unreachable!("a lease is read and swapped through one cell"),
        }
    }
}
