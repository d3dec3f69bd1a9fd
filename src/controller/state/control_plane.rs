//! Route53's control plane as this daemon's reconciles find it: impaired
//! once [`IMPAIRED_AFTER`] reconciles in a row failed with a server error
//! or a timeout (throttling, a refusal or a lost lease say nothing of its
//! health), recovered at the first reconcile that passes. While it is
//! impaired, record changes wait; a data-plane lever carries failovers and
//! drains on (`crate::lever`). Status, the page, the table, a metric and
//! the events timeline say so.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::events::{Event, Kind};

/// Failed reconciles in a row that make it impaired.
pub const IMPAIRED_AFTER: u32 = 2;

#[derive(Debug, Clone, Default)]
pub struct ControlPlane {
    /// Server-side failures in a row, and when the first of them came.
    streak: u32,
    failing_since: Option<SystemTime>,
    impaired: bool,
    last_error: Option<String>,
}

/// What status shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ControlPlaneSnapshot {
    pub impaired: bool,
    /// Unix seconds: when the failures that made it impaired began.
    #[serde(default)]
    pub impaired_since: Option<f64>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// A lever is configured: failovers and drains go on through it.
    #[serde(default)]
    pub lever: bool,
}

impl ControlPlaneSnapshot {
    /// `route53 control plane: impaired since 12:00:00Z (…)`, or `None`.
    pub fn line(&self) -> Option<String> {
        if !self.impaired {
            return None;
        }
        let since = self
            .impaired_since
            .map(|t| {
                let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(t);
                humantime::format_rfc3339_seconds(at).to_string()
            })
            .unwrap_or_else(|| "?".into());
        let what = if self.lever {
            "record changes wait; failovers and drains go on through the routing controls"
        } else {
            "record changes wait; Route53's own health checks are the fallback"
        };
        Some(format!(
            "route53 control plane: impaired since {since} ({what})"
        ))
    }
}

impl ControlPlane {
    /// A reconcile failed; `server`: with a server error or a timeout.
    /// The event to emit when this makes it impaired.
    pub fn failed(&mut self, server: bool, at: SystemTime, error: &str) -> Option<Event> {
        if !server {
            return None;
        }
        self.streak += 1;
        self.failing_since.get_or_insert(at);
        self.last_error = Some(error.to_string());
        if self.impaired || self.streak < IMPAIRED_AFTER {
            return None;
        }
        self.impaired = true;
        Some(
            Event::new(
                Kind::ControlPlane,
                format!("route53 control plane impaired: {error}"),
            )
            .reason("impaired"),
        )
    }

    /// A reconcile passed. The event to emit when it was impaired.
    pub fn passed(&mut self) -> Option<Event> {
        let was = std::mem::take(self);
        was.impaired.then(|| {
            Event::new(Kind::ControlPlane, "route53 control plane answers again")
                .reason("recovered")
        })
    }

    pub fn snapshot(&self, lever: bool) -> ControlPlaneSnapshot {
        ControlPlaneSnapshot {
            impaired: self.impaired,
            impaired_since: self
                .impaired
                .then_some(self.failing_since)
                .flatten()
                .map(crate::time::unix_secs),
            last_error: self.last_error.clone(),
            lever,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn impaired_after_server_failures_in_a_row_and_recovered_by_a_pass() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut cp = ControlPlane::default();
        // Throttling and refusals say nothing of the control plane.
        assert!(cp.failed(false, t0, "throttled").is_none());
        assert!(cp.failed(false, t0, "throttled").is_none());
        assert!(!cp.snapshot(false).impaired);
        assert!(
            cp.failed(true, t0, "503").is_none(),
            "one failure is not an impairment"
        );
        let e = cp
            .failed(true, t0 + Duration::from_secs(3), "503")
            .expect("impaired now");
        assert_eq!(e.event, "control_plane");
        assert!(
            cp.failed(true, t0 + Duration::from_secs(6), "503")
                .is_none(),
            "said once"
        );
        let s = cp.snapshot(true);
        assert_eq!((s.impaired, s.impaired_since), (true, Some(1_000.0)));
        assert!(s.line().unwrap().contains("impaired since"));
        assert!(s.line().unwrap().contains("routing controls"));
        assert!(cp
            .snapshot(false)
            .line()
            .unwrap()
            .contains("health checks are the fallback"));
        assert!(cp.passed().is_some());
        assert!(!cp.snapshot(false).impaired && cp.snapshot(false).line().is_none());
        assert!(cp.passed().is_none());
        // A pass between failures starts the count again.
        cp.failed(true, t0, "503");
        cp.passed();
        assert!(cp.failed(true, t0, "503").is_none());
    }
}
