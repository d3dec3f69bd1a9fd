//! Probe scheduling and the prober task of one member.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{MemberId, Runtime, ZoneSignals};
use crate::config::Target;
use crate::decide::verdict::Verdict;
use crate::probe::Prober;

/// Probes of one region start within this window of the region's phase.
pub(super) fn spread_window(interval: Duration) -> Duration {
    (interval / 4).min(Duration::from_millis(500))
}

fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// When a member's first probe runs; later ones follow every interval.
/// Each region has a phase, so regions are spread over the interval; a
/// region's members start within a short window after it (a fixed offset
/// each, so they never drift apart). Together they fail together, and their
/// withdrawal goes out in one or two writes; spread over the window, a
/// thousand of them do not hit the endpoint in the same instant.
fn first_probe_at(interval: Duration, region: &str, member: &str) -> tokio::time::Instant {
    let interval_ms = interval.as_millis().max(1) as u64;
    let window_ms = spread_window(interval).as_millis().max(1) as u64;
    let phase = fnv(region.bytes()) % interval_ms + fnv(member.bytes()) % window_ms;
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let wait = (phase + interval_ms - now_ms % interval_ms) % interval_ms;
    tokio::time::Instant::now() + Duration::from_millis(wait)
}

/// Up to 5% of the interval, at most 20 ms: enough to avoid lockstep with
/// the server's own timers, small enough to keep a region's members together.
fn jitter(interval: Duration) -> Duration {
    let max = (interval / 20).min(Duration::from_millis(20));
    if max.is_zero() {
        return Duration::ZERO;
    }
    rand::rng().random_range(Duration::ZERO..max)
}

pub(super) async fn probe_loop(
    rt: Arc<Runtime>,
    id: MemberId,
    prober: Prober,
    signals: Arc<ZoneSignals>,
    stop: CancellationToken,
) {
    let member = rt.member(id);
    let interval = prober.spec().interval;
    let labels = member.labels();
    // The schedule itself stays on the region's phase; jitter is applied to
    // each tick, never accumulated, so members of a region stay together.
    let set_id = &member.config().set_identifier;
    let target = &member.config().target;
    let mut tick = first_probe_at(
        interval,
        labels.region,
        &format!("{} {set_id}", labels.record),
    );
    let duration = rt
        .metrics
        .probe_duration_seconds
        .with_label_values(&labels.values());
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(tick + jitter(interval)) => {}
            _ = stop.cancelled() => return,
        }
        // An API Gateway target is probed at its regional endpoint (unless
        // connect_to says otherwise); never through the public name, which
        // resolves to the very record being decided.
        let via = match (target, &prober.spec().connect_to) {
            (Target::ApiGateway { .. }, None) => {
                let discovered = member.read(|m| m.discovered.as_ref().map(|a| a.dns_name.clone()));
                if discovered.is_none() {
                    tick += interval;
                    continue;
                }
                discovered
            }
            _ => None,
        };
        // A probe cut short by shutdown is not a failure: it is dropped.
        // Boxed, so an idle prober task holds no probe state.
        let result = tokio::select! {
            r = Box::pin(prober.probe_via(via.as_deref())) => r,
            _ = stop.cancelled() => return,
        };
        duration.observe(result.timings.total.as_secs_f64());
        let outcome = match &result.failure {
            None => "success",
            Some(f) => f.kind.as_str(),
        };
        rt.metrics
            .probes_total
            .with_label_values(&labels.with(outcome))
            .inc();
        let probed = member.probed(result);
        // Counted before the reconciler hears of the change.
        match (probed.was_edge, probed.is_edge) {
            (false, true) => signals.edge.send_modify(|n| *n += 1),
            (true, false) => signals.edge.send_modify(|n| *n = n.saturating_sub(1)),
            _ => {}
        }
        if probed.flapped {
            rt.metrics
                .flaps_total
                .with_label_values(&labels.values())
                .inc();
        }
        if let Some(t) = probed.transition {
            info!(
                record = labels.record,
                region = labels.region,
                from = t.from.as_str(),
                to = t.to.as_str(),
                reason = probed.reason.as_deref().unwrap_or(""),
                "verdict changed"
            );
            rt.metrics
                .verdict_changes_total
                .with_label_values(&labels.with(t.to.as_str()))
                .inc();
            rt.metrics
                .member_healthy
                .with_label_values(&labels.values())
                .set(i64::from(t.to == Verdict::Healthy));
            signals.trigger.notify_one();
        }
        // Keep the schedule; skip ticks missed while a probe ran long.
        let now = tokio::time::Instant::now();
        tick += interval;
        while tick <= now {
            tick += interval;
        }
    }
}
