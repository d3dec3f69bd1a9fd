//! The state store: where the coordination and memory the failover path
//! needs live (the HA lease, the instances' views, on-call's controls, the
//! zone knowledge, the claims on switches), so that path needs no call to
//! Route53's control plane. One trait, [`StateStore`], with backends and
//! one conformance suite run against each (`tests/store.rs`), as
//! `Provider` is for DNS; callers never know which backend they hold.
//!
//! The trait is a small versioned key-value store, the shape every
//! backend can keep exactly: an item is a name in a [`Space`], a value (a
//! JSON text the caller owns) and a version the store raises by one at
//! every write. A write or delete can be made conditional on the version
//! ([`Condition`]): that is the compare-and-swap the lease and the
//! controls are built on. Reads are strongly consistent: a read that
//! follows a write, from any instance, sees it.
//!
//! Backends:
//! - `dynamodb`: one table (key schema and the global-table setup in
//!   `docs/design.md#the-state-store`), conditional writes, consistent
//!   reads, each instance talking to its own Region's replica;
//! - `file`: one JSON file on a volume, written whole (rename), for a
//!   single instance that must remember across restarts;
//! - `memory`: in the process, for tests and a single instance that need
//!   not remember.
//!
//! Items are scoped by owner (two installs can share a table), except in
//! the spaces every install must see ([`Space::shared`]).

mod dynamodb;
mod file;
mod memory;
mod metered;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use dynamodb::{table_mode, DynamoStore, TableMode};
pub use file::FileStore;
pub use memory::MemoryStore;
pub use metered::{Metered, StoreStatus};

use crate::config::{StateStoreConfig, StoreKind};

/// What an item is about. Each space is listed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// The HA lease: one item.
    Lease,
    /// Each instance's verdicts, one item per instance.
    Views,
    /// On-call's drains and freezes.
    Controls,
    /// What the failover path knows of each zone (its id, which record
    /// carries which check, which member is wired to which switch).
    Zones,
    /// Claims on routing controls: which install owns each switch. Shared
    /// by every install of the table.
    Claims,
    /// Each practising record's runs: when each member last began one,
    /// and how it ended.
    Practice,
}

impl Space {
    pub fn as_str(self) -> &'static str {
        match self {
            Space::Lease => "lease",
            Space::Views => "views",
            Space::Controls => "controls",
            Space::Zones => "zones",
            Space::Claims => "claims",
            Space::Practice => "practice",
        }
    }

    /// Seen by every install of the store, whatever its owner.
    pub fn shared(self) -> bool {
        matches!(self, Space::Claims)
    }
}

/// One item as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub value: String,
    /// Set at its first write (never a version an earlier item of the
    /// name had), one more at each write after.
    pub version: u64,
}

/// When a write or a delete may go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Whatever the item holds, or without one.
    Any,
    /// Only if there is no such item.
    Absent,
    /// Only if the item is at this version.
    Version(u64),
}

/// Why a store call did not do what it asked. The kinds are what a caller
/// acts on: a conflict is an answer (someone else wrote), the rest say
/// whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The condition did not hold: another writer was first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store asks us to slow down.
    #[error("throttled: {0}")]
    Throttled(String),
    /// No answer within the call's time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// A server error, or no connection.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An answer trying again will not change: access denied, no such
    /// table, a key schema that is not ours, a value the store refuses.
    #[error("refused: {0}")]
    Refused(String),
}

impl StoreError {
    /// A label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Conflict(_) => "conflict",
            StoreError::Throttled(_) => "throttled",
            StoreError::Timeout(_) => "timeout",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Refused(_) => "refused",
        }
    }

    /// The store may answer if asked again (a conflict is an answer).
    pub fn transient(&self) -> bool {
        matches!(
            self,
            StoreError::Throttled(_) | StoreError::Timeout(_) | StoreError::Unavailable(_)
        )
    }
}

/// What a backend says of itself at start: shown in status, and what
/// `check` warns about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreReport {
    /// `dynamodb`, `file` or `memory`.
    pub kind: String,
    /// Where: the table and Region, the file's path.
    pub location: String,
    /// Whether two instances that race for one item are sure to agree on
    /// one winner (a single-Region table, a strongly consistent global
    /// table, a file or memory within one process).
    pub linearizable: bool,
    /// What an operator should know (a single-Region table, MREC).
    pub warnings: Vec<String>,
}

/// The state store, whichever backend holds it.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The backend's name: `dynamodb`, `file`, `memory`.
    fn kind(&self) -> &'static str;

    /// Checks the backend is usable (the table exists, with our key
    /// schema; the file can be written) and says what it guarantees.
    async fn describe(&self) -> Result<StoreReport, StoreError>;

    /// Whether the last answered [`describe`](Self::describe) found the
    /// store linearizable, where a wrapper remembers it (`Metered`);
    /// `None`: not asked, or never answered.
    fn known_linearizable(&self) -> Option<bool> {
        None
    }

    /// One item, read strongly consistently.
    async fn get(&self, space: Space, name: &str) -> Result<Option<Item>, StoreError>;

    /// Every item of the space, read strongly consistently, by name.
    async fn list(&self, space: Space) -> Result<Vec<Item>, StoreError>;

    /// Writes `value` if `condition` holds; returns the item's new version.
    async fn put(
        &self,
        space: Space,
        name: &str,
        value: &str,
        condition: Condition,
    ) -> Result<u64, StoreError>;

    /// Deletes the item if `condition` holds. With [`Condition::Any`], an
    /// item already gone is no error.
    async fn delete(
        &self,
        space: Space,
        name: &str,
        condition: Condition,
    ) -> Result<(), StoreError>;
}

/// The store a config's `state_store` names, for `owner`'s items.
pub async fn open(
    config: &StateStoreConfig,
    owner: &str,
) -> Result<Arc<dyn StateStore>, StoreError> {
    let store: Arc<dyn StateStore> = match &config.kind {
        StoreKind::Memory => Arc::new(MemoryStore::new(owner)),
        StoreKind::File { path } => Arc::new(FileStore::open(path, owner)?),
        StoreKind::DynamoDb {
            table,
            region,
            endpoint_url,
        } => Arc::new(
            DynamoStore::new(
                table,
                region,
                endpoint_url.as_ref().map(|u| u.as_str()),
                owner,
                config.call_timeout,
                None,
            )
            .await,
        ),
    };
    Ok(store)
}

/// A TXT record's values as an item's value: the views and the controls
/// keep in the store the very values they would hold in Route53, so one
/// parser reads both.
pub fn txt_value(values: &[String]) -> String {
    serde_json::to_string(values).expect("strings serialize")
}

/// An item written by [`txt_value`], as the TXT record set named `name`;
/// `None` for a value it did not write.
pub fn txt_record(name: &str, item: &Item) -> Option<crate::provider::RecordSet> {
    let values: Vec<String> = serde_json::from_str(&item.value).ok()?;
    Some(crate::provider::RecordSet::txt(name, values))
}

/// The key an item is kept under in a backend that holds several owners:
/// `owner#space` (or `*#space` for a shared space).
pub(crate) fn partition(owner: &str, space: Space) -> String {
    let scope = if space.shared() { "*" } else { owner };
    format!("{scope}#{}", space.as_str())
}

/// The version a new item starts at. Never one an item of the same name
/// had before it was deleted, so a write or delete conditioned on an old
/// version cannot touch its successor: the time in milliseconds times
/// 1,024, plus a random part (two processes), and above every first
/// version this process gave before (the same millisecond, the same
/// random part). Each later write adds one.
pub(crate) fn first_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let candidate = ms * 1024 + rand::random_range(0..1024);
    let last = LAST.fetch_max(candidate, Ordering::Relaxed);
    if candidate > last {
        candidate
    } else {
        LAST.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The version a write gives an item now at `current`.
pub(crate) fn next_version(current: Option<u64>) -> u64 {
    current.map_or_else(first_version, |v| v + 1)
}

/// Whether `condition` holds for an item at `current` (its version, if any).
pub(crate) fn holds(condition: Condition, current: Option<u64>) -> bool {
    match condition {
        Condition::Any => true,
        Condition::Absent => current.is_none(),
        Condition::Version(v) => current == Some(v),
    }
}

/// The conflict a backend reports when `condition` did not hold.
pub(crate) fn conflict(space: Space, name: &str, condition: Condition) -> StoreError {
    let wanted = match condition {
        Condition::Any => "anything".to_string(),
        Condition::Absent => "no item".to_string(),
        Condition::Version(v) => format!("version {v}"),
    };
    StoreError::Conflict(format!("{}/{name}: expected {wanted}", space.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name deleted and written again in the same millisecond must not
    /// get its old version back (found by the conformance suite: 1 run in
    /// about 1,000 drew the same random part).
    #[test]
    fn first_versions_never_repeat_in_one_process() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            assert!(seen.insert(first_version()), "a first version repeated");
        }
    }

    #[test]
    fn conditions_hold_as_a_compare_and_swap() {
        for (condition, current, holds_) in [
            (Condition::Any, None, true),
            (Condition::Any, Some(3), true),
            (Condition::Absent, None, true),
            (Condition::Absent, Some(1), false),
            (Condition::Version(2), Some(2), true),
            (Condition::Version(2), Some(3), false),
            (Condition::Version(2), None, false),
        ] {
            assert_eq!(
                holds(condition, current),
                holds_,
                "{condition:?} {current:?}"
            );
        }
    }

    #[test]
    fn claims_are_shared_by_every_owner_and_the_rest_are_not() {
        assert_eq!(partition("a", Space::Lease), "a#lease");
        assert_eq!(partition("a", Space::Claims), partition("b", Space::Claims));
        assert_ne!(partition("a", Space::Views), partition("b", Space::Views));
    }
}
