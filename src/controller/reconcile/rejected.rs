//! The records whose changes Route53 refused (`isolate`), held out of
//! every batch until their changes change or the next resync.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// A record whose changes Route53 refused.
#[derive(Debug, Clone)]
pub(super) struct Rejected {
    /// The changes refused ([`RecordChanges::fingerprint`]).
    pub(super) fingerprint: String,
    pub(super) error: String,
    pub(super) since: SystemTime,
}

/// The records held out, by name.
pub(super) type RejectedRecords = BTreeMap<String, Rejected>;
