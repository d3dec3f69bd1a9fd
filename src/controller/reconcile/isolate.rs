//! A bad change costs only itself. Route53 refuses a whole batch for one
//! change it will never take (a CNAME beside another record of its name,
//! one at the zone's apex, a record edited by hand into a shape the plan
//! cannot delete). Retried as it was, that one change would block every
//! withdrawal in its zone for as long as it stands.
//!
//! So, after a rejection that re-reading the zone does not cure, the
//! reconciler sends the zone's changes again record by record (by name,
//! with its marker): whole records packed into batches, those that
//! withdraw first; a rejected batch of several records is halved until
//! the records Route53 refuses stand alone (a few calls for one bad record
//! among thousands). Each refused record is then held out of every batch,
//! and shown (status `zones[].rejected`, `route53_failover_records_rejected`,
//! an event, the chart's alert) until its changes are no longer the same
//! (the zone or the config changed) or the next resync: then it is tried
//! again, at the cost of a few calls.

use std::collections::VecDeque;
use std::time::SystemTime;

use tracing::{info, warn};

use super::rejected::Rejected;
use super::Reconciler;
use crate::decide::plan::{by_record, group_batches, record_of, RecordChanges};
use crate::events::{Event, Kind};
use crate::provider::{Change, ProviderError};

impl Reconciler {
    /// Takes the changes of records refused before (the same changes) out
    /// of `changes`; a record whose changes are no longer the same is
    /// forgotten, so it is tried again.
    pub(super) fn hold_out_rejected(&mut self, changes: Vec<Change>) -> Vec<Change> {
        if self.rejected.is_empty() {
            return changes;
        }
        let groups = by_record(changes.clone());
        let before = self.rejected.len();
        self.rejected.retain(|name, r| {
            groups
                .iter()
                .any(|g| &g.name == name && g.fingerprint() == r.fingerprint)
        });
        if self.rejected.len() < before {
            info!(zone = %self.zone, "a rejected record's changes changed: trying it again");
        }
        // The rest in the plan's order, which is safe to cut anywhere.
        changes
            .into_iter()
            .filter(|c| !self.rejected.contains_key(record_of(c)))
            .collect()
    }

    /// Applies `changes` record by record (see the module's text): returns
    /// once every record went in or was held out; other errors (throttling,
    /// timeouts, the fence) end it as they would any apply.
    pub(super) async fn apply_isolating(
        &mut self,
        zone_id: &str,
        changes: Vec<Change>,
    ) -> Result<(), ProviderError> {
        let mut queue: VecDeque<Vec<RecordChanges>> =
            group_batches(by_record(changes)).into_iter().collect();
        while let Some(part) = queue.pop_front() {
            let batch: Vec<Change> = part.iter().flat_map(|g| g.changes.clone()).collect();
            match self.apply(zone_id, &batch).await {
                Ok(()) => {}
                Err(ProviderError::InvalidChangeBatch(msg)) if part.len() == 1 => {
                    let g = part.into_iter().next().expect("one record");
                    self.reject(g, msg);
                }
                Err(ProviderError::InvalidChangeBatch(_)) => {
                    let mut first = part;
                    let second = first.split_off(first.len() / 2);
                    queue.push_front(second);
                    queue.push_front(first);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn reject(&mut self, record: RecordChanges, error: String) {
        warn!(zone = %self.zone, record = %record.name, error = %error,
            "Route53 refuses this record's changes: held out of every batch until they change, so the zone's other records still fail over");
        self.rt.events.emit(
            Event::new(
                Kind::Rejected,
                format!(
                    "{} change(s) of {} refused and held out until they change: {error}",
                    record.changes.len(),
                    record.name
                ),
            )
            .reason("invalid_change_batch"),
        );
        self.rejected.insert(
            record.name.clone(),
            Rejected {
                fingerprint: record.fingerprint(),
                error,
                since: SystemTime::now(),
            },
        );
    }

    /// The records held out, for status: `name: error (since ...)`.
    pub(super) fn rejected_lines(&self) -> Vec<String> {
        self.rejected
            .iter()
            .map(|(name, r)| {
                let since = humantime::format_rfc3339_seconds(r.since);
                format!("{name}: {} (since {since})", r.error)
            })
            .collect()
    }
}
