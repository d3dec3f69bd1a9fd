//! The lease task: reads, takes and renews the HA lease (see `crate::decide::lease`
//! for the rules). It lives as long as the process, across config reloads,
//! and releases the lease at shutdown so another instance takes over at its
//! next read instead of waiting the lease out. The lease is kept in the
//! state store when there is one, else in a TXT record (`cell`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::controller::calls::Calls;
use crate::controller::leadership::Lease;
use crate::controller::tasks::view_exchange::Views;
use crate::decide::lease::{self, LeaseValue, NextStep, Watched};
use crate::events::{Event, Events, Kind};
use crate::metrics::Metrics;
use crate::provider::{ProviderError, RecordSet, RecordType, CALL_TIMEOUT};
use crate::store::StateStore;
use cell::{Cell, CellError, Current};

/// The lease as this instance last wrote it, and what a renewal names.
#[derive(Clone)]
struct Held {
    value: LeaseValue,
    current: Current,
}

/// A write whose answer was lost: it may have landed.
struct InDoubt {
    value: LeaseValue,
    sent: Instant,
}

struct LeaseTask {
    lease: Arc<Lease>,
    /// Where the views are kept: this instance's goes at shutdown.
    views: Views,
    metrics: Arc<Metrics>,
    events: Arc<Events>,
    /// Where the lease is kept.
    cell: Cell,
    /// The lease this instance last wrote, while it holds it.
    held: Option<Held>,
    in_doubt: Option<InDoubt>,
    /// The lease as read, and since when (monotonic) it has not changed.
    watched: Option<Watched<Instant>>,
    /// Whether the holder's wall clock was last found to disagree with
    /// this one's (said once per change).
    clocks_disagree: bool,
    /// After letting go for failing to write: no taking the lease again
    /// before then, so another instance can try.
    stay_out_until: Option<Instant>,
}

/// Runs until `stop`, then releases the lease if this instance holds it.
/// Call it once the controller has stopped writing.
pub async fn run(
    lease: Arc<Lease>,
    calls: Calls,
    store: Option<Arc<dyn StateStore>>,
    metrics: Arc<Metrics>,
    events: Arc<Events>,
    stop: CancellationToken,
) {
    let ha = lease.config.clone();
    metrics
        .lease
        .leader
        .with_label_values(&[&ha.identity])
        .set(0);
    for event in ["acquired", "lost", "released"] {
        metrics.lease.transitions_total.with_label_values(&[event]);
    }
    // The process's one budget, in its urgent lane: a renewal must not
    // wait behind reads, nor spend what the account does not have.
    let calls = calls.unfenced().urgent().scoped(&ha.lease_name);
    let views = Views::new(store.clone(), calls.clone(), calls.clone(), &ha.zone);
    // In the store, the lease needs nothing of Route53's control plane.
    let cell = match store {
        Some(store) => store_cell(store, &lease, &stop).await,
        None => zone_cell(calls, &lease, &stop).await,
    };
    let Some(cell) = cell else {
        // Stopped before the lease could be kept: nothing is held, but
        // this instance's view (written by the view exchange) goes.
        release::forget_view(&views, &ha.identity).await;
        return;
    };
    info!(identity = %ha.identity, kept_in = cell.kind(), "lease keeper started");
    let mut task = LeaseTask {
        lease,
        views,
        metrics,
        events,
        cell,
        held: None,
        in_doubt: None,
        watched: None,
        clocks_disagree: false,
        stay_out_until: None,
    };
    loop {
        let wait = task.step().await;
        task.publish();
        // Wake at the write window's end too, to step down on time.
        let end = task
            .lease
            .write_until()
            .map(tokio::time::Instant::from_std)
            .filter(|_| task.lease.is_leader());
        let deadline = tokio::time::Instant::now() + wait;
        let wake = end.map_or(deadline, |e| e.min(deadline));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.cancelled() => break,
        }
        task.publish();
    }
    task.release().await;
}

impl LeaseTask {
    /// One round; returns how long to wait before the next.
    async fn step(&mut self) -> Duration {
        let ha = self.lease.config.clone();
        if self.lease.is_leader() && self.lease.take_cannot_write() {
            // It renews, but cannot write the records (its role denied
            // them, say): it lets go, and stays out a while so another
            // instance can take over.
            warn!(identity = %ha.identity, failures = crate::controller::leadership::LET_GO_AFTER,
                "this instance cannot write the records; releasing the lease for another instance");
            self.events.emit(
                Event::new(
                    Kind::Lease,
                    format!(
                        "{} lets go of the lease: {} reconciles in a row could not write",
                        ha.identity,
                        crate::controller::leadership::LET_GO_AFTER
                    ),
                )
                .reason("cannot_write"),
            );
            self.release_now().await;
            self.stay_out_until = Some(Instant::now() + 2 * ha.lease_duration);
            return ha.renew_every;
        }
        if self.lease.is_leader() {
            if let Some(held) = self.held.clone() {
                return match self.write(&held.current, held.value.term).await {
                    Ok(()) => ha.renew_every,
                    // Someone else changed it, or an earlier renewal whose
                    // answer was lost did land: read at once.
                    Err(CellError::Changed(_)) => {
                        self.held = None;
                        if self.in_doubt.is_none() {
                            self.lose("the lease was changed by another instance");
                        }
                        Duration::ZERO
                    }
                    // Retry soon; the write window closes by itself.
                    Err(_) => retry_soon(&ha),
                };
            }
        }
        let read = self.cell.read();
        let (value, current) = match self.bounded("read", read).await {
            Ok(c) => c,
            Err(e) => {
                self.lease.failed(format!("reading the lease: {e}"));
                if self.held.is_some() {
                    return retry_soon(&ha);
                }
                return ha.renew_every;
            }
        };
        // A lost answer to our own write: if the lease is what we sent,
        // the write landed, and the window counts from when it was sent.
        if let Some(d) = self.in_doubt.take() {
            if value.as_ref() == Some(&d.value) {
                self.hold(d.value, current, d.sent);
                return ha.renew_every;
            }
        }
        if self.held.take().is_some() || self.lease.is_leader() {
            self.lose("the lease could not be renewed, or another instance holds it");
        }
        self.lease.seen(value.clone());
        let now = Instant::now();
        let watched = self
            .watched
            .get_or_insert_with(|| Watched::new(value.clone(), now));
        if watched.observe(value.clone(), now) {
            if let Some(v) = &value {
                self.check_clock(v);
            }
        }
        let watched = self.watched.as_ref().expect("set above");
        if let Some(until) = self.stay_out_until.filter(|t| *t > now) {
            return until.saturating_duration_since(now).min(ha.renew_every);
        }
        match lease::next_step(watched, now, ha.lease_duration, ha.max_clock_drift) {
            NextStep::Acquire { term } => match self.write(&current, term).await {
                Ok(()) => ha.renew_every,
                // Another instance was quicker: read what it wrote.
                Err(CellError::Changed(_)) => Duration::ZERO,
                Err(_) => retry_soon(&ha),
            },
            NextStep::Wait { until } => until.saturating_duration_since(now).min(ha.renew_every),
        }
    }

    /// Swaps `current` for a lease held by this instance with `term`.
    async fn write(&mut self, current: &Current, term: u64) -> Result<(), CellError> {
        let ha = &self.lease.config;
        let sent = Instant::now();
        let value = lease::claim(&ha.identity, term, SystemTime::now(), ha.lease_duration);
        let result = self.bounded("swap", self.cell.swap(current, &value)).await;
        match result {
            Ok(now) => {
                self.hold(value, now, sent);
                Ok(())
            }
            Err(e) => {
                if !matches!(e, CellError::Changed(_)) {
                    self.in_doubt = Some(InDoubt { value, sent });
                }
                self.lease.failed(format!("writing the lease: {e}"));
                Err(e)
            }
        }
    }

    /// A lease value seen for the first time: does the holder's wall clock
    /// agree with this one? Shown (status, metric, log) and never acted
    /// on: the lease's rules need no clocks in agreement.
    fn check_clock(&mut self, v: &LeaseValue) {
        let ha = &self.lease.config;
        if v.released() || v.holder == ha.identity {
            return;
        }
        let offset = lease::clock_offset(v, ha.lease_duration, SystemTime::now());
        // Written at most one read (and a request) ago.
        let slack = (ha.renew_every + ha.max_clock_drift + CALL_TIMEOUT / 10).as_millis() as i64;
        let drift = ha.max_clock_drift.as_millis() as i64;
        let disagree = offset > drift || offset < -slack;
        self.metrics
            .lease
            .clock_offset_seconds
            .set(offset as f64 / 1000.0);
        self.lease.clock_offset(offset, disagree);
        if disagree != self.clocks_disagree {
            self.clocks_disagree = disagree;
            if disagree {
                warn!(holder = %v.holder, offset_ms = offset,
                    "the lease holder's wall clock disagrees with this instance's; the lease does not depend on it, but check NTP");
            } else {
                info!(holder = %v.holder, "the lease holder's wall clock agrees with this instance's again");
            }
        }
    }

    fn hold(&mut self, value: LeaseValue, current: Current, sent: Instant) {
        self.lease.held(value.clone(), sent);
        self.held = Some(Held { value, current });
        self.in_doubt = None;
    }

    /// Stops writing at once; `publish` tells the rest.
    fn lose(&mut self, why: &str) {
        if self.lease.is_leader() {
            warn!(identity = %self.lease.config.identity, reason = why, "lease lost");
        }
        self.held = None;
        self.lease.step_down();
    }

    /// Tells the reconcilers and metrics of a change of role.
    fn publish(&mut self) {
        let snapshot = self.lease.snapshot();
        self.metrics
            .lease
            .term
            .set(snapshot.term.unwrap_or(0) as i64);
        self.metrics
            .lease
            .expiry_timestamp_seconds
            .set(snapshot.expires.unwrap_or(0.0));
        let leader = self.lease.is_leader();
        self.metrics
            .lease
            .leader
            .with_label_values(&[&snapshot.identity])
            .set(i64::from(leader));
        match self.lease.publish() {
            Some(true) => {
                self.events.emit(
                    Event::new(
                        Kind::Lease,
                        format!(
                            "lease acquired by {} (term {}); this instance writes",
                            snapshot.identity,
                            snapshot.term.unwrap_or(0)
                        ),
                    )
                    .reason("acquired"),
                );
                self.metrics
                    .lease
                    .transitions_total
                    .with_label_values(&["acquired"])
                    .inc();
            }
            Some(false) => {
                // Lost, or the window closed with no renewal (time fencing).
                self.held = None;
                self.events.emit(
                    Event::new(
                        Kind::Lease,
                        format!(
                            "{} is no longer the lease holder; this instance stops writing",
                            snapshot.identity
                        ),
                    )
                    .reason("lost"),
                );
                self.metrics
                    .lease
                    .transitions_total
                    .with_label_values(&["lost"])
                    .inc();
            }
            None => {}
        }
    }

    /// One request about the lease, bounded by the call timeout and,
    /// while this instance leads, by its write window.
    async fn bounded<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T, CellError>>,
    ) -> Result<T, CellError> {
        let limit = self
            .lease
            .write_window()
            .unwrap_or(CALL_TIMEOUT)
            .min(CALL_TIMEOUT);
        match tokio::time::timeout(limit, call).await {
            Ok(r) => r,
            Err(_) => Err(CellError::Failed(format!(
                "{operation} of the lease took longer than {limit:?}"
            ))),
        }
    }
}

/// After a failed read or write: sooner than a renewal, so a holder gets
/// several tries before its window closes.
fn retry_soon(ha: &crate::config::HaConfig) -> Duration {
    (ha.renew_every / 4).max(Duration::from_millis(100))
}

/// The lease in the state store, once the store is known to let one of
/// two racing writers win: the start's answer when it had one, else asked
/// every `renew_every` (a table that did not answer at start is never
/// used for the lease before it does). `None`: stopped first.
async fn store_cell(
    store: Arc<dyn StateStore>,
    lease: &Lease,
    stop: &CancellationToken,
) -> Option<Cell> {
    if store.known_linearizable() == Some(true) {
        return Some(Cell::Store(store));
    }
    let ha = &lease.config;
    let mut said = String::new();
    loop {
        let answer = tokio::select! {
            a = store.describe() => a,
            _ = stop.cancelled() => return None,
        };
        let why = match answer {
            Ok(report) if report.linearizable => return Some(Cell::Store(store)),
            Ok(report) => format!(
                "the state store lets two writers both win, so the lease is never taken there: {}",
                report.warnings.join("; ")
            ),
            Err(e) if e.transient() => format!("the state store's mode is not known yet: {e}"),
            Err(e) => format!("the state store refuses to say its mode: {e}"),
        };
        // Said once per change, not at every try.
        if why != said {
            error!("{why}; the lease waits");
            said.clone_from(&why);
        }
        lease.failed(why);
        tokio::select! {
            _ = tokio::time::sleep(ha.renew_every) => {}
            _ = stop.cancelled() => return None,
        }
    }
}

/// The lease as a TXT record in `ha.zone`, once the zone is found.
/// `None`: stopped first.
async fn zone_cell(calls: Calls, lease: &Lease, stop: &CancellationToken) -> Option<Cell> {
    let ha = &lease.config;
    loop {
        match calls.find_zone(&ha.zone).await {
            Ok(z) => {
                return Some(Cell::Route53 {
                    calls,
                    zone_id: z.id,
                    name: ha.lease_name.clone(),
                })
            }
            Err(e) => {
                warn!(zone = %ha.zone, error = %e, "cannot find the lease's zone; retrying");
                lease.failed(format!("finding zone {}: {e}", ha.zone));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ha.renew_every) => {}
            _ = stop.cancelled() => return None,
        }
    }
}

mod cell;
mod release;
