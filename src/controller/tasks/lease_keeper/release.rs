//! Letting go at shutdown: the lease handed back and this instance's
//! view deleted, so the others take over at their next read instead of
//! waiting either out.

use super::*;

impl LeaseTask {
    /// At shutdown: hands the lease back (its end set to now) so another
    /// instance takes it at its next read.
    pub(super) async fn release(mut self) {
        // The lease first: another instance takes over at its next read.
        self.release_now().await;
        self.forget_view().await;
    }

    /// Hands the lease back (`expires` 0) if this instance holds it.
    pub(super) async fn release_now(&mut self) {
        let Some(held) = self.held.take().filter(|_| self.lease.is_leader()) else {
            return;
        };
        self.lease.step_down();
        self.lease.publish();
        let ha = self.lease.config.clone();
        let released = LeaseValue {
            expires_ms: 0,
            ..held.value.clone()
        };
        let swap = self.cell.swap(&held.current, &released);
        let result = tokio::time::timeout(Duration::from_secs(5), swap).await;
        self.metrics
            .lease
            .leader
            .with_label_values(&[&ha.identity])
            .set(0);
        match result {
            Ok(Ok(_)) => {
                info!(identity = %ha.identity, "lease released");
                self.metrics
                    .lease
                    .transitions_total
                    .with_label_values(&["released"])
                    .inc();
            }
            Ok(Err(e)) => warn!(error = %e, "could not release the lease; it expires by itself"),
            Err(_) => warn!("releasing the lease timed out; it expires by itself"),
        }
    }

    /// At shutdown, this instance's view (`decide::quorum`) goes too: the
    /// others stop counting it at once instead of once it is stale (a
    /// rolling update leaves no views behind).
    async fn forget_view(&self) {
        forget_view(&self.views, &self.lease.config.identity).await;
    }
}

/// Deletes `identity`'s view, bounded.
pub(super) async fn forget_view(views: &Views, identity: &str) {
    match tokio::time::timeout(Duration::from_secs(5), views.forget(identity)).await {
        Ok(Ok(())) => info!(identity = %identity, "view deleted"),
        _ => warn!("could not delete this instance's view; the others ignore it once stale"),
    }
}
