//! Supervision of the long-running tasks. A panic is a bug, but the job of
//! the task it hits (a zone's withdrawals, a member's probes, the switches)
//! must not stop with it, and must not stop unseen: a tokio task that
//! panics inside a `JoinSet` joined only at shutdown is silent, and a
//! zone whose reconciler died is never reconciled again.
//!
//! [`supervised`] runs a task built by its factory; when it panics, the
//! panic is logged, counted (`route53_failover_task_panics_total{task}`),
//! put on the timeline (`task`) and shown in status (`tasks`), `/readyz`
//! turns red for [`UNSTEADY`], and the task is built again and started
//! after a backoff that grows with panics in a row. Built again, it knows
//! nothing of its previous run: a reconciler reads its zone afresh, the
//! lever reads every switch before it sets one.
//!
//! [`failpoint`] is the tests' way to make a task panic in a release
//! binary (`ROUTE53_FAILOVER_FAILPOINT`, see `docs/design.md`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{error, info};

pub use super::state::panics::UNSTEADY;
use super::Process;
use crate::events::{Event, Kind};

/// The first restart's wait; it doubles with each panic in a row.
const FIRST_WAIT: Duration = Duration::from_millis(250);
const MAX_WAIT: Duration = Duration::from_secs(30);
/// A task that ran this long before its panic starts its backoff afresh.
const RAN_WELL: Duration = Duration::from_secs(60);

/// Runs the task `start` builds until it returns (its own stop), starting
/// it again after each panic (see the module's notes). `kind` is the
/// metric's label, `task` the name status and the log give.
pub async fn supervised<F, Fut>(
    process: Arc<Process>,
    kind: &'static str,
    task: String,
    stop: CancellationToken,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    debug_assert!(crate::metrics::TASK_KINDS.contains(&kind), "{kind}");
    let mut in_a_row = 0u32;
    loop {
        let began = Instant::now();
        // Aborted with this future: a supervisor dropped at shutdown takes
        // its task with it.
        let run = AbortOnDropHandle::new(tokio::spawn(start()));
        let panic = match run.await {
            Ok(()) => return,
            Err(e) if e.is_panic() => panic_message(e.into_panic()),
            // Cancelled: only the runtime shutting down does that.
            Err(_) => return,
        };
        if began.elapsed() >= RAN_WELL {
            in_a_row = 0;
        }
        in_a_row += 1;
        let wait = FIRST_WAIT
            .saturating_mul(1 << (in_a_row - 1).min(8))
            .min(MAX_WAIT);
        error!(task = %task, kind, error = %panic, restart_in = ?wait,
            "task panicked (a bug): it starts again, afresh");
        process
            .tasks
            .panicked(kind, &task, &panic, SystemTime::now());
        process
            .metrics
            .reconcile
            .task_panics_total
            .with_label_values(&[kind])
            .inc();
        process.events.emit(
            Event::new(
                Kind::Task,
                format!("{task} panicked; it starts again in {wait:?}: {panic}"),
            )
            .reason(kind),
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        info!(task = %task, kind, "task started again after a panic");
        process.tasks.restarted(&task);
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with no message".to_string()
    }
}

/// For tests of the binary: with `ROUTE53_FAILOVER_FAILPOINT=NAME@PATH`,
/// the first pass through the failpoint `NAME` once the file `PATH`
/// exists panics (once per process), so a test chooses the moment.
/// Unset (always, outside tests), it costs one load of a `OnceLock`.
pub fn failpoint(name: &str) {
    static ARMED: OnceLock<Option<(String, String)>> = OnceLock::new();
    static FIRED: AtomicBool = AtomicBool::new(false);
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("ROUTE53_FAILOVER_FAILPOINT").ok()?;
        let (point, path) = spec.split_once('@')?;
        Some((point.to_string(), path.to_string()))
    });
    if let Some((point, path)) = armed {
        if point == name
            && std::path::Path::new(path).exists()
            && !FIRED.swap(true, Ordering::AcqRel)
        {
            panic!("failpoint {name} reached (ROUTE53_FAILOVER_FAILPOINT)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::sync::atomic::AtomicU32;

    fn process() -> Arc<Process> {
        let text = r#"
owner: me
provider: {kind: memory, zones: [example.test]}
defaults: {probe: {url: "http://api.example.test/health"}}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {region: us-east-1, target: {values: [192.0.2.1]}}
      - {region: eu-west-1, target: {values: [192.0.2.2]}}
"#;
        let config = crate::config::parse(text, std::path::Path::new(".")).expect("valid");
        Arc::new(Process::new(&config, "memory", Arc::new(Metrics::new())))
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_counted_shown_and_started_again() {
        let process = process();
        let starts = Arc::new(AtomicU32::new(0));
        let stop = CancellationToken::new();
        let s = starts.clone();
        let task = tokio::spawn(supervised(
            process.clone(),
            "reconciler",
            "reconciler example.com.".into(),
            stop.clone(),
            move || {
                let n = s.fetch_add(1, Ordering::AcqRel);
                async move {
                    if n < 2 {
                        panic!("boom {n}");
                    }
                    std::future::pending::<()>().await
                }
            },
        ));
        // Two panics in a row: 250 ms, then 500 ms before the third start.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(starts.load(Ordering::Acquire), 1);
        let shown = process.tasks.snapshot();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].panics, 1);
        assert!(shown[0].restarting);
        assert_eq!(shown[0].message, "boom 0");
        assert!(!process.tasks.steady(SystemTime::now()));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(starts.load(Ordering::Acquire), 3, "started again twice");
        let shown = process.tasks.snapshot();
        assert_eq!((shown[0].panics, shown[0].restarting), (2, false));
        let counted = process
            .metrics
            .reconcile
            .task_panics_total
            .with_label_values(&["reconciler"])
            .get();
        assert_eq!(counted, 2);
        let events = process.events.newest(None, 100);
        assert_eq!(events.iter().filter(|e| e.event == "task").count(), 2);
        // Red for UNSTEADY after the last panic (wall clock), then green.
        let last = SystemTime::now();
        assert!(!process.tasks.steady(last));
        assert!(process.tasks.steady(last + UNSTEADY));
        stop.cancel();
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_returns_is_not_started_again() {
        let process = process();
        let starts = Arc::new(AtomicU32::new(0));
        let s = starts.clone();
        supervised(
            process.clone(),
            "prober",
            "prober a".into(),
            CancellationToken::new(),
            move || {
                s.fetch_add(1, Ordering::AcqRel);
                async {}
            },
        )
        .await;
        assert_eq!(starts.load(Ordering::Acquire), 1);
        assert!(process.tasks.snapshot().is_empty());
        assert!(process.tasks.steady(SystemTime::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_during_the_backoff_ends_the_supervisor() {
        let process = process();
        let stop = CancellationToken::new();
        let sup = tokio::spawn(supervised(
            process,
            "lever",
            "lever".into(),
            stop.clone(),
            || async { panic!("always") },
        ));
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), sup)
            .await
            .expect("the supervisor ends at stop")
            .expect("no panic escapes the supervisor");
    }
}
