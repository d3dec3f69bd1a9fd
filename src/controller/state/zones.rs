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
