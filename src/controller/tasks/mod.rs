//! The controller's long-running tasks besides the reconcilers
//! (`controller::reconcile`), each a module whose entry point is `run`,
//! started by `controller::run`:
//! - `prober`: one per member, probes on its schedule and feeds its verdict;
//! - `discoverer`: API Gateway regional targets;
//! - `view_exchange`: with `ha`, the instances' views, for the quorum;
//! - `lease_keeper`: with `ha`, the lease (started by `cli::run`: it
//!   outlives config generations);
//! - `control_reader`: on-call's drains and freezes, read from Route53;
//! - `checker_view`: what Route53's checkers say of each health check;
//! - `parity_checker`: whether a record's regions serve the same API;
//! - `practice`: practice runs: started when due, watched, ended;
//! - `traffic`: whether clients left a withdrawn region (CloudWatch).

pub mod checker_view;
pub mod control_reader;
pub mod discoverer;
pub mod lease_keeper;
pub mod parity_checker;
pub mod practice;
pub mod prober;
pub mod traffic;
pub mod view_exchange;
