//! route53-failover keeps an active-active, multi-region API reachable: it
//! probes each region's endpoint, decides which regions Route53 should
//! answer with, and keeps the latency records in step.
//!
//! Modules, in the order data flows:
//! - [`config`]: the YAML file, validated into typed values (every error at once).
//! - [`auth`]: OAuth2 client-credentials tokens for probes, shared and refreshed.
//! - [`probe`]: one HTTP(S) probe of a member → status, phase timings, failure reason.
//! - [`health`]: the verdict state machine (rise/fall); pure.
//! - [`health_checks`]: the Route53 health check each member keeps: settings, ownership, sync steps; pure.
//! - [`policy`]: verdicts + what Route53 holds → which members are published, and why; pure.
//! - [`plan`]: decision vs observed zone → changes (with ownership markers), split into batches; pure.
//! - [`provider`]: the DNS service boundary: the trait, the `memory` store, its loopback service, `route53`.
//! - [`discovery`]: API Gateway regional targets (apigatewayv2 `GetDomainName`).
//! - [`controller`]: the tasks: probers → verdicts → per-zone reconcilers, rate limit, retries.
//! - [`lease`]: HA: one writer among several instances, by a lease record in Route53.
//! - [`metrics`]: every Prometheus metric, registered in one place.
//! - [`status`]: the snapshot on-call reads (JSON, HTML, CLI table).
//! - [`reload`]: live config reload (file watch, SIGHUP) around the controller.
//! - [`http`]: `/metrics`, `/status`, `/`, `/healthz`, `/readyz`.
//! - [`demo`]: simulated regional endpoints on loopback for `route53-failover demo`.

pub mod config;
pub mod controller;
pub mod decide;
pub mod demo;
pub mod discovery;
pub mod http;
pub mod metrics;
pub mod probe;
pub mod provider;
pub mod reload;
pub mod status;
