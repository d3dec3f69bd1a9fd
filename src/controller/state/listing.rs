//! The account's health checks as last listed: one listing serves every
//! zone that reads within a while of it (the listing is of the whole
//! account, not of a zone), kept true to this process's own writes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::controller::Calls;
use crate::provider::{HealthCheck, ProviderError};

#[derive(Default)]
pub(in crate::controller) struct CheckListing {
    /// The listing, when it was made, and the generation it began in.
    #[allow(clippy::type_complexity)]
    cached: tokio::sync::Mutex<Option<(Instant, u64, Arc<Vec<HealthCheck>>)>>,
    /// Bumped when the listing may miss a write of this process (made
    /// while a listing was under way: a write never waits on a read's
    /// lock) or someone else's: a listing is good only for the generation
    /// it began in.
    generation: AtomicU64,
}

impl CheckListing {
    /// The account's health checks, listed at most once per `max_age`
    /// for every zone of the process (zones reading at once share one
    /// listing; `max_age` zero lists again).
    pub(in crate::controller) async fn get(
        &self,
        calls: &Calls,
        max_age: Duration,
    ) -> Result<Arc<Vec<HealthCheck>>, ProviderError> {
        let mut cached = self.cached.lock().await;
        let generation = self.generation.load(Ordering::Acquire);
        if let Some((at, listed_in, list)) = cached.as_ref() {
            if at.elapsed() < max_age && *listed_in == generation {
                return Ok(list.clone());
            }
        }
        // Cancelled or failed, nothing is stored and the generation stands.
        let list = Arc::new(calls.list_health_checks().await?);
        *cached = Some((Instant::now(), generation, list.clone()));
        Ok(list)
    }

    /// `check` made or updated (its new form), or `None`: deleted. Never
    /// waits: a listing under way (it may or may not see the write) is
    /// taken as stale instead.
    pub(in crate::controller) fn note(&self, id: &str, check: Option<HealthCheck>) {
        match self.cached.try_lock() {
            Ok(mut cached) => {
                if let Some((_, _, list)) = cached.as_mut() {
                    let list = Arc::make_mut(list);
                    list.retain(|c| c.id != id);
                    list.extend(check);
                }
            }
            Err(_) => self.forget(),
        }
    }

    /// The next read lists the account's checks afresh (a call found the
    /// listing stale: someone else changed a check).
    pub(in crate::controller) fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
