//! Probe scheduling and the prober task of one member.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Target;
use crate::controller::report;
use crate::controller::{MemberId, Runtime, ZoneSignals};
use crate::probe::Prober;

/// Probes of one region start within this window of the region's phase.
pub(in crate::controller) fn spread_window(interval: Duration) -> Duration {
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

/// When the probe after one that ran at `last` goes: `fast` after it while
/// a run is under way (`in_run`), else at the next tick of the member's
/// grid (its phase plus whole intervals), whichever comes first; never in
/// the past. Fast probes keep the member's offset within its region, so a
/// region's members failing together stay together.
fn next_probe<T>(last: T, grid: T, now: T, in_run: bool, fast: Duration) -> T
where
    T: Copy + Ord + std::ops::Add<Duration, Output = T>,
{
    let next = if in_run {
        (last + fast).min(grid)
    } else {
        grid
    };
    next.max(now)
}

pub(in crate::controller) async fn run(
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
    let fast = prober.spec().fast_interval;
    // The member's grid (phase plus whole intervals), and its next probe:
    // on the grid, or sooner while a run is under way.
    let mut grid = first_probe_at(
        interval,
        labels.region,
        &format!("{} {set_id}", labels.record),
    );
    let mut tick = grid;
    // The tick of the last probe, and whether a run was under way after it.
    let mut last = grid;
    let mut in_run = false;
    // A run of another member of the region: probe once at the fast pace.
    let mut alarm = rt.signals.region_alarm(labels.region);
    // A failure run anywhere, when this member is its region's witness.
    let mut witness = rt.signals.witness_alarm(id);
    let duration = rt.metrics.probes.of(labels.region);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(tick + jitter(interval)) => {}
            Ok(()) = region_alarmed(&mut alarm) => {
                let now = tokio::time::Instant::now();
                tick = tick.min(next_probe(last, grid, now, true, fast));
                continue;
            }
            Ok(()) = region_alarmed(&mut witness) => {
                let now = tokio::time::Instant::now();
                tick = tick.min(next_probe(last, grid, now, true, fast));
                continue;
            }
            _ = stop.cancelled() => return,
        }
        last = tick;
        // An API Gateway target is probed at its regional endpoint (unless
        // connect_to says otherwise); never through the public name, which
        // resolves to the very record being decided.
        let via = match (target, &prober.spec().connect_to) {
            (Target::ApiGateway { .. }, None) => {
                let discovered = member.read(|m| m.discovered.as_ref().map(|a| a.dns_name.clone()));
                if discovered.is_none() {
                    grid += interval;
                    tick = grid;
                    continue;
                }
                discovered
            }
            _ => None,
        };
        // A probe cut short by shutdown is not a failure: it is dropped.
        // Boxed, so an idle prober task holds no probe state.
        let sent = std::time::Instant::now();
        let mut result = tokio::select! {
            r = Box::pin(prober.probe_via(via.as_deref())) => r,
            _ = stop.cancelled() => return,
        };
        member.against_baseline(&mut result);
        duration.observe(result.timings.total.as_secs_f64());
        let outcome = match &result.failure {
            None => "success",
            Some(f) => f.kind.as_str(),
        };
        let probed = member.probed(result, sent);
        let failing_began = probed.failing_began;
        // Counted before the reconciler hears of the change.
        match (probed.was_edge, probed.is_edge) {
            (false, true) => signals.edge.send_modify(|n| *n += 1),
            (true, false) => signals.edge.send_modify(|n| *n = n.saturating_sub(1)),
            _ => {}
        }
        if let Some(t) = probed.transition {
            report::verdict_changed(&rt, labels, &t, probed.reason.as_deref(), outcome);
            // With `ha`, the others hear of it through this instance's view.
            rt.signals.views_wake.notify_one();
            signals.trigger.notify_one();
        }
        if let Some(t) = probed.agreed {
            report::agreed_changed(&rt, labels, &t, "this instance's verdict");
            signals.trigger.notify_one();
        }
        // Keep the grid; skip ticks missed while a probe ran long.
        let now = tokio::time::Instant::now();
        while grid <= now {
            grid += interval;
        }
        if failing_began {
            // Is it this member, or this instance? Every region answers
            // within one fast interval (`decide::correlated`), also when
            // `fall: 1` turns the verdict at once. With `ha`, the others'
            // views are read now and fast while the run lasts.
            rt.signals.sound_witness_alarm(fast);
            rt.signals.views_wake.notify_one();
        }
        let was_in_run = in_run;
        in_run = member.read(|m| m.health.in_run());
        if in_run && !was_in_run {
            rt.signals.sound_region_alarm(labels.region, interval);
        }
        tick = next_probe(last, grid, now, in_run, fast);
    }
}

/// Waits for the region's alarm (forever without one).
async fn region_alarmed(
    alarm: &mut Option<watch::Receiver<Option<tokio::time::Instant>>>,
) -> Result<(), watch::error::RecvError> {
    match alarm {
        Some(a) => a.changed().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_come_fast_while_a_run_is_under_way_and_back_on_the_grid_after() {
        let fast = Duration::from_millis(250);
        let ms = Duration::from_millis;
        // (last, grid, now, in_run) → next, in ms from an origin.
        let cases: &[(u64, u64, u64, bool, u64)] = &[
            // steady: the grid
            (1000, 2000, 1005, false, 2000),
            // a failure of a healthy member: a quarter interval later
            (1000, 2000, 1005, true, 1250),
            // the run goes on, keeping the member's offset
            (1250, 2000, 1260, true, 1500),
            // the grid comes first
            (1900, 2000, 1910, true, 2000),
            // a probe that ran long: not in the past
            (1000, 2000, 1400, true, 1400),
            // the run is over: back on the grid
            (1500, 2000, 1510, false, 2000),
        ];
        for &(last, grid, now, in_run, want) in cases {
            let got = next_probe(ms(last), ms(grid), ms(now), in_run, fast);
            assert_eq!(
                got,
                ms(want),
                "last={last} grid={grid} now={now} in_run={in_run}"
            );
        }
    }

    /// A run in a region wakes the region's probers, once per quiet period,
    /// and no other region's.
    #[tokio::test]
    async fn a_region_alarm_sounds_once_per_quiet_period_for_its_region_only() {
        let text = r#"
owner: me
provider: {kind: memory, zones: [example.test]}
defaults: {probe: {url: "http://a.example.test/health"}}
records:
  - name: a.example.test
    zone: example.test
    regions:
      - {region: us-east-1, set_identifier: a1, target: {values: [192.0.2.1]}}
      - {region: eu-west-1, set_identifier: a2, target: {values: [192.0.2.2]}}
"#;
        let config = crate::config::parse(text, std::path::Path::new(".")).unwrap();
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let rt = Runtime::new(Arc::new(config), "memory", metrics);
        let mut east = rt.signals.region_alarm("us-east-1").unwrap();
        let west = rt.signals.region_alarm("eu-west-1").unwrap();
        let quiet = Duration::from_secs(3600);
        rt.signals.sound_region_alarm("us-east-1", quiet);
        assert!(east.has_changed().unwrap(), "the region hears it");
        assert!(!west.has_changed().unwrap(), "another region does not");
        east.borrow_and_update();
        // A thousand members starting their runs together: one alarm.
        for _ in 0..1000 {
            rt.signals.sound_region_alarm("us-east-1", quiet);
        }
        assert!(!east.has_changed().unwrap(), "quiet within the period");
        // Once the period is over (here: a period of zero), it sounds again.
        rt.signals.sound_region_alarm("us-east-1", Duration::ZERO);
        assert!(east.has_changed().unwrap(), "sounds again after the quiet");
        assert!(!west.has_changed().unwrap());
        assert!(rt.signals.region_alarm("sa-east-1").is_none());
    }
}
