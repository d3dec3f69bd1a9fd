//! The pure core: what the daemon decides, from inputs and the time passed
//! in. No tokio, no provider calls, no shared state: every function here
//! takes values and returns values, and is tested with tables and property
//! tests. The controller gathers the inputs and carries out what comes back.
//!
//! In the order a decision is made:
//! - [`baseline`]: a member's own latency baseline, and `slow` against it.
//! - [`verdict`]: probe outcomes → a member's verdict (rise/fall).
//! - [`quorum`]: with `ha`, every instance's view → the verdict the writer
//!   acts on (a quorum of vantage points).
//! - [`correlated`]: whether a failure is corroborated by anything else
//!   this instance still reaches, or may be the instance's own trouble.
//! - [`damping`]: verdict changes → flaps → how long a member is held out.
//! - [`controls`]: on-call's drains and freezes, as kept in Route53.
//! - [`policy`]: verdicts + what Route53 holds → which members of a record
//!   are published, and why the others are not (the safety rules).
//! - [`lever`]: the decision carried out on a member's ARC routing
//!   control, and what counts as published when it has one.
//! - [`health_check`]: the Route53 health check each member should carry,
//!   and the step that brings it in line.
//! - [`ownership`]: what a zone holds, and which records this owner claims.
//! - [`plan`]: decisions vs what a zone holds → changes (with ownership
//!   markers), split into batches.
//! - [`zone`]: the four above for one zone, as one value the reconciler
//!   carries out and the `plan` command prints.
//! - [`lease`]: the HA lease's record and the rules for taking it over.
//! - [`practice`]: practice runs: their schedule, whose turn, what blocks
//!   a start and what ends a run.
//! - [`traffic`]: whether clients left a withdrawn region, from its
//!   request count.

pub mod baseline;
pub mod controls;
pub mod correlated;
pub mod damping;
pub mod health_check;
pub mod lease;
pub mod lever;
pub mod ownership;
pub mod plan;
pub mod policy;
pub mod practice;
pub mod quorum;
pub mod traffic;
pub mod verdict;
pub mod zone;

/// A time as the daemon's TXT records keep it: unix milliseconds.
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
