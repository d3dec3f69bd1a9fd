//! What is known of one zone: its id and name, its last reconcile, and
//! what its decision holds back or waits on (status reads it).

use std::time::SystemTime;

/// One zone's status, written by its reconciler only.
#[derive(Debug, Clone, Default)]
pub struct ZoneStatus {
    pub id: Option<String>,
    /// The zone's name, as the provider answers (the config may give an id).
    pub name: Option<String>,
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
    /// The last health check call's error, while calls fail (the records'
    /// reconcile stands: `last_error` is not set for it).
    pub check_error: Option<String>,
    pub changes_applied: u64,
    pub pending_changes: usize,
    /// What a freeze holds back now: record changes and health check calls.
    pub held: Vec<String>,
    /// Records of members removed or renamed, kept while they are their
    /// record's last (`decide::plan::ZonePlan::retiring`).
    pub retiring: Vec<String>,
    /// Records with this owner's claims that the config does not manage.
    pub orphaned: Vec<String>,
    /// Unhealthy members whose withdrawal waits for corroboration.
    pub uncorroborated: usize,
    /// Records whose changes Route53 refuses, held out until they change.
    pub rejected: Vec<String>,
}

/// The zones' writers, one per kind of write (the reconciler of each zone
/// is their one caller); status reads through `Runtime::zone_status`.
impl super::Runtime {
    /// The zone was found: its id, and its name as the provider answers.
    pub(in crate::controller) fn zone_found(&self, zone: &str, id: &str, name: &str) {
        self.update_zone(zone, |z| {
            z.id = Some(id.to_string());
            z.name = Some(name.to_string());
        });
    }

    /// A reconcile of the zone wrote its records (`check_error`: a health
    /// check call of it failed, retried; the records stand).
    pub(in crate::controller) fn zone_passed(
        &self,
        zone: &str,
        at: SystemTime,
        check_error: Option<String>,
    ) {
        self.update_zone(zone, |z| {
            z.last_success = Some(at);
            z.last_error = None;
            z.check_error = check_error;
        });
        self.metrics
            .reconcile
            .last_success_timestamp_seconds
            .set(crate::time::unix_secs(at));
    }

    /// A reconcile of the zone failed.
    pub(in crate::controller) fn zone_failed(&self, zone: &str, error: String) {
        self.update_zone(zone, |z| z.last_error = Some(error));
    }

    /// A change was accepted; `pending`: it is not INSYNC yet.
    pub(in crate::controller) fn change_applied(&self, zone: &str, pending: bool) {
        self.update_zone(zone, |z| {
            z.changes_applied += 1;
            z.pending_changes += usize::from(pending);
        });
    }

    /// A pending change is INSYNC (or no longer followed).
    pub(in crate::controller) fn change_settled(&self, zone: &str) {
        self.update_zone(zone, |z| {
            z.pending_changes = z.pending_changes.saturating_sub(1)
        });
    }

    /// What the zone's decision holds back or waits on.
    pub(in crate::controller) fn zone_decided(
        &self,
        zone: &str,
        held: Vec<String>,
        retiring: Vec<String>,
        orphaned: Vec<String>,
        uncorroborated: usize,
    ) {
        self.metrics.reconcile.zone_decided(
            zone,
            held.len(),
            retiring.len(),
            orphaned.len(),
            uncorroborated,
        );
        self.update_zone(zone, |z| {
            z.held = held;
            z.retiring = retiring;
            z.orphaned = orphaned;
            z.uncorroborated = uncorroborated;
        });
    }

    /// The records Route53 refuses, held out of the zone's batches.
    pub(in crate::controller) fn zone_rejected(&self, zone: &str, lines: Vec<String>) {
        self.metrics
            .reconcile
            .records_rejected
            .with_label_values(&[zone])
            .set(lines.len() as i64);
        self.update_zone(zone, |z| z.rejected = lines);
    }
}
