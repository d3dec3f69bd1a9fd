//! The state store in the process: for tests, and for a single instance
//! that need not remember across a restart. Holds several owners' items
//! as a shared table would (`MemoryStore::for_owner` gives another
//! install's view of the same items).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{
    conflict, holds, partition, Condition, Item, Space, StateStore, StoreError, StoreReport,
};

type Items = BTreeMap<(String, String), (String, u64)>;

pub struct MemoryStore {
    owner: String,
    items: Arc<Mutex<Items>>,
}

impl MemoryStore {
    pub fn new(owner: &str) -> Self {
        MemoryStore {
            owner: owner.to_string(),
            items: Arc::default(),
        }
    }

    /// The same items, as another owner sees them.
    pub fn for_owner(&self, owner: &str) -> Self {
        MemoryStore {
            owner: owner.to_string(),
            items: self.items.clone(),
        }
    }

    fn items(&self) -> std::sync::MutexGuard<'_, Items> {
        // Each critical section is one map operation: the map stays whole.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, space: Space, name: &str) -> (String, String) {
        (partition(&self.owner, space), name.to_string())
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn describe(&self) -> Result<StoreReport, StoreError> {
        Ok(StoreReport {
            kind: "memory".into(),
            location: "this process".into(),
            linearizable: true,
            warnings: vec![
                "state_store memory: nothing survives a restart (use file or dynamodb)".into(),
            ],
        })
    }

    async fn get(&self, space: Space, name: &str) -> Result<Option<Item>, StoreError> {
        let key = self.key(space, name);
        Ok(self.items().get(&key).map(|(value, version)| Item {
            name: name.to_string(),
            value: value.clone(),
            version: *version,
        }))
    }

    async fn list(&self, space: Space) -> Result<Vec<Item>, StoreError> {
        let p = partition(&self.owner, space);
        Ok(self
            .items()
            .iter()
            .filter(|((part, _), _)| *part == p)
            .map(|((_, name), (value, version))| Item {
                name: name.clone(),
                value: value.clone(),
                version: *version,
            })
            .collect())
    }

    async fn put(
        &self,
        space: Space,
        name: &str,
        value: &str,
        condition: Condition,
    ) -> Result<u64, StoreError> {
        let key = self.key(space, name);
        let mut items = self.items();
        let current = items.get(&key).map(|(_, v)| *v);
        if !holds(condition, current) {
            return Err(conflict(space, name, condition));
        }
        let version = super::next_version(current);
        items.insert(key, (value.to_string(), version));
        Ok(version)
    }

    async fn delete(
        &self,
        space: Space,
        name: &str,
        condition: Condition,
    ) -> Result<(), StoreError> {
        let key = self.key(space, name);
        let mut items = self.items();
        let current = items.get(&key).map(|(_, v)| *v);
        if !holds(condition, current) {
            return Err(conflict(space, name, condition));
        }
        items.remove(&key);
        Ok(())
    }
}
