//! The reconciler of one zone, one task per zone (so never two applies to
//! one zone at once):
//! - `run`: when to reconcile. Its loop is a state machine over [`Wake`]
//!   (`run.rs`): each wake-up says why, and one rule (`Wake::reads`) says
//!   whether the zone is read again first;
//! - `pass`: one reconcile: read when needed, gather and decide
//!   (`decide::zone`), apply the records first, then the health check
//!   calls (`checks`) and the records that attach what they made, then the
//!   deletion of checks nothing uses; and the changes' tracking;
//! - `noting`: what a decision means for status, metrics and events;
//! - `isolate` and `rejected`: a record Route53 refuses is held out, not
//!   retried;
//! - `knowledge`: the zone as known, kept in the state store and recalled
//!   at start, so a restart or reload in an outage decides switches at once.

mod checks;
mod isolate;
pub(super) mod knowledge;
mod noting;
mod pass;
mod rejected;
mod run;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::calls::Calls;
use super::Runtime;
use crate::decide::ownership::Observed;
use crate::provider::{HealthCheck, ProviderError};
use rejected::RejectedRecords;

/// Transient errors are retried this many times within one reconcile.
pub(super) const CALL_ATTEMPTS: u32 = 4;
/// Re-read and re-plan at most this often within one reconcile.
const REPLANS: usize = 3;

/// One zone's reconciler. Its fields are its own: the files of this
/// folder are its parts.
pub(super) struct Reconciler {
    rt: Arc<Runtime>,
    calls: Calls,
    zone: String,
    zone_id: Option<String>,
    records: Vec<usize>,
    /// The zone as last read, plus our writes since. `None`: read it
    /// (`forget_zone`).
    observed: Option<Observed>,
    /// What `observed` was when it was forgotten: the switches are still
    /// decided from it while the zone cannot be read (Route53's control
    /// plane down), records are not.
    stale: Option<Observed>,
    /// This owner's health checks for the zone, read and kept with `observed`.
    checks: Vec<HealthCheck>,
    /// Reconcile again at once: health check calls are left for the next
    /// reconcile, or a follow-up batch was refused (read and plan again).
    again: bool,
    shutdown: CancellationToken,
    /// When this zone was last written to.
    last_write: Option<Instant>,
    pace: Pace,
    /// Records whose changes Route53 refused, held out (`isolate`).
    rejected: RejectedRecords,
    /// Health check calls failed this many reconciles in a row.
    check_failures: u32,
    /// A resync's read gave way to a reconcile a verdict asked for: the
    /// zone is read once that reconcile has written.
    read_after: bool,
    /// The zone knowledge kept in the state store: item → digest of what
    /// was written (`knowledge`).
    known: std::collections::HashMap<String, String>,
}

/// A zone's timings, from its members' probe settings.
#[derive(Clone)]
pub(super) struct Pace {
    /// The longest spread window plus probe timeout of the zone's members.
    pub(super) settle_limit: Duration,
    /// The longest spread window of the zone's members.
    pub(super) settle_quiet: Duration,
    /// While a withdrawal waits for its failure to be corroborated, the
    /// zone is decided again this often (the shortest fast interval of its
    /// members): the pass that corroborates it wakes nothing by itself.
    pub(super) recheck: Duration,
}

/// What a reconcile that wrote its records leaves to say.
#[derive(Debug, Default)]
struct Passed {
    /// A health check call failed (reported on its member): retried with
    /// backoff, the records' reconcile stands.
    check_error: Option<ProviderError>,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Writing the records failed (not a read).
    #[error("writing the records: {0}")]
    Write(ProviderError),
    #[error("the zone kept changing under us: {0}")]
    Replan(ProviderError),
}

impl ReconcileError {
    fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Provider(e) | ReconcileError::Write(e) => e.kind(),
            ReconcileError::Replan(_) => "replan_exhausted",
        }
    }

    /// A server error or a timeout: what an impaired control plane answers
    /// (`state::control_plane`).
    fn server_side(&self) -> bool {
        match self {
            ReconcileError::Provider(e) | ReconcileError::Write(e) | ReconcileError::Replan(e) => {
                matches!(e, ProviderError::Service(_) | ProviderError::Timeout(_))
            }
        }
    }

    /// The write failed for a reason that throttling, a change still
    /// under way or a lost hold do not explain: the leader may be unable
    /// to do its job (`Lease::wrote`). With a lever (`lever`), a server
    /// error or a timeout is Route53's control plane, not the leader: the
    /// switches carry failover meanwhile, and another holder would meet
    /// the same outage, so the leader keeps the lease; its own faults
    /// (access denied, a batch refused for good) still count.
    fn cannot_write(&self, lever: bool) -> bool {
        match self {
            ReconcileError::Write(e) => {
                let waits = matches!(
                    e,
                    ProviderError::Throttling(_)
                        | ProviderError::PriorRequestNotComplete(_)
                        | ProviderError::Fenced(_)
                );
                let impaired = matches!(e, ProviderError::Service(_) | ProviderError::Timeout(_));
                !(waits || lever && impaired)
            }
            _ => false,
        }
    }
}

/// A write of the records, its failure told apart from a read's.
trait Written<T> {
    fn written(self) -> Result<T, ReconcileError>;
}

impl<T> Written<T> for Result<T, ProviderError> {
    fn written(self) -> Result<T, ReconcileError> {
        self.map_err(|e| match e {
            ProviderError::Fenced(_) => ReconcileError::Provider(e),
            e => ReconcileError::Write(e),
        })
    }
}

impl Reconciler {
    pub(super) fn new(
        rt: Arc<Runtime>,
        calls: Calls,
        zone: String,
        records: Vec<usize>,
        shutdown: CancellationToken,
        pace: Pace,
    ) -> Self {
        // A reload keeps the zone's id: the new reconciler needs no
        // Route53 call to find it.
        let zone_id = rt.read_zone(&zone, |z| z.id.clone()).flatten();
        Reconciler {
            rt,
            calls,
            zone,
            zone_id,
            records,
            observed: None,
            stale: None,
            checks: Vec::new(),
            again: false,
            shutdown,
            last_write: None,
            pace,
            rejected: RejectedRecords::new(),
            check_failures: 0,
            read_after: false,
            known: Default::default(),
        }
    }

    /// What was read of the zone is no longer to be trusted (someone else
    /// may have written, or a write's fate is unknown): the next pass reads
    /// it first.
    fn forget_zone(&mut self) {
        if let Some(o) = self.observed.take() {
            self.stale = Some(o);
        }
    }
}
