//! The state store in one JSON file, for a single instance that must
//! remember across restarts (a volume the chart mounts). Each call takes
//! an exclusive `flock` on `PATH.lock`, reads the file, and for a change
//! writes the whole file beside its path and renames it over the old one:
//! a crash leaves the old file or the new one, never half of either, and
//! every handle on the file (a restarted process, a second one on the same
//! node) sees every write. The file is on one node: use dynamodb for `ha`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    conflict, holds, partition, Condition, Item, Space, StateStore, StoreError, StoreReport,
};

/// The file's content: partition → name → item.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Content {
    items: BTreeMap<String, BTreeMap<String, Stored>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    value: String,
    version: u64,
}

pub struct FileStore {
    path: Arc<PathBuf>,
    owner: String,
}

/// Holds the exclusive lock while alive (closing the file lets it go).
struct Locked(#[allow(dead_code)] File);

impl FileStore {
    /// A store on `path`; the file is made at the first write. Checks the
    /// file, if there is one, is a state store's.
    pub fn open(path: &Path, owner: &str) -> Result<Self, StoreError> {
        let store = FileStore {
            path: Arc::new(path.to_path_buf()),
            owner: owner.to_string(),
        };
        if path.exists() {
            read(path)?;
        }
        Ok(store)
    }

    /// Runs `f` on the content under the lock, off the async workers; `f`
    /// says whether it changed the content (then it is written).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Content) -> Result<(T, bool), StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let run = move || {
            let _lock = lock(&path)?;
            let mut content = read(&path)?;
            let (out, changed) = f(&mut content)?;
            if changed {
                save(&path, &content)?;
            }
            Ok(out)
        };
        match tokio::task::spawn_blocking(run).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Unavailable(format!("file store call: {e}"))),
        }
    }

    fn change(
        &self,
        space: Space,
        name: &str,
        condition: Condition,
        new: Option<String>,
    ) -> impl FnOnce(&mut Content) -> Result<(u64, bool), StoreError> + Send + 'static {
        let part = partition(&self.owner, space);
        let name = name.to_string();
        move |content| {
            let items = content.items.entry(part).or_default();
            let current = items.get(&name).map(|s| s.version);
            if !holds(condition, current) {
                return Err(conflict(space, &name, condition));
            }
            let version = super::next_version(current);
            match new {
                Some(value) => items.insert(name, Stored { value, version }),
                None => items.remove(&name),
            };
            Ok((version, true))
        }
    }
}

fn refused(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Refused(format!("{}: {e}", path.display()))
}

fn lock(path: &Path) -> Result<Locked, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| refused(path, e))?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(refused(path, std::io::Error::last_os_error()));
    }
    Ok(Locked(file))
}

fn read(path: &Path) -> Result<Content, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| refused(path, format!("not a state store file: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Content::default()),
        Err(e) => Err(refused(path, e)),
    }
}

/// Writes the whole content beside the file and renames it over it.
fn save(path: &Path, content: &Content) -> Result<(), StoreError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
        .map_err(|e| refused(path, e))?;
    let bytes = serde_json::to_vec(content).expect("strings and numbers serialize");
    tmp.write_all(&bytes).map_err(|e| refused(path, e))?;
    tmp.as_file().sync_all().map_err(|e| refused(path, e))?;
    tmp.persist(path).map_err(|e| refused(path, e.error))?;
    Ok(())
}

fn items_of(content: &Content, part: &str) -> Vec<Item> {
    content
        .items
        .get(part)
        .map(|m| {
            m.iter()
                .map(|(name, s)| Item {
                    name: name.clone(),
                    value: s.value.clone(),
                    version: s.version,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl StateStore for FileStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn describe(&self) -> Result<StoreReport, StoreError> {
        // Proves the folder can be written: the first write is not the
        // first time anyone finds out.
        self.with(|_| Ok(((), true))).await?;
        Ok(StoreReport {
            kind: "file".into(),
            location: self.path.display().to_string(),
            linearizable: true,
            warnings: Vec::new(),
        })
    }

    async fn get(&self, space: Space, name: &str) -> Result<Option<Item>, StoreError> {
        let part = partition(&self.owner, space);
        let name = name.to_string();
        self.with(move |c| {
            let found = items_of(c, &part).into_iter().find(|i| i.name == name);
            Ok((found, false))
        })
        .await
    }

    async fn list(&self, space: Space) -> Result<Vec<Item>, StoreError> {
        let part = partition(&self.owner, space);
        self.with(move |c| Ok((items_of(c, &part), false))).await
    }

    async fn put(
        &self,
        space: Space,
        name: &str,
        value: &str,
        condition: Condition,
    ) -> Result<u64, StoreError> {
        let change = self.change(space, name, condition, Some(value.to_string()));
        self.with(change).await
    }

    async fn delete(
        &self,
        space: Space,
        name: &str,
        condition: Condition,
    ) -> Result<(), StoreError> {
        let change = self.change(space, name, condition, None);
        self.with(change).await.map(|_| ())
    }
}
