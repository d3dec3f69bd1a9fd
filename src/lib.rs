//! route53-failover keeps an active-active, multi-region API reachable: it
//! probes each region's endpoint, decides which regions Route53 should
//! answer with, and keeps the latency records in step. `docs/design.md`
//! explains the shape of the code and the Route53 rules it respects.
//!
//! Modules, in the order data flows:
//! - [`config`]: the YAML file, validated into typed values (every error at
//!   once), one file per section.
//! - [`probe`]: one HTTP(S) probe of a member → status, phase timings,
//!   failure reason; TLS settings and OAuth2 tokens for probes.
//! - [`aws`]: the SDK configuration every AWS client starts from (region,
//!   emulator endpoint).
//! - [`cloudwatch`]: API Gateway's request count per period (traffic
//!   confirmation).
//! - [`discovery`]: API Gateway regional targets (apigatewayv2 `GetDomainName`).
//! - [`prometheus_query`]: one instant query to a Prometheus server (a
//!   practice run's condition).
//! - [`parity`]: whether every region of a record serves the same API
//!   (read through apigatewayv2, compared purely); informs, never acts.
//! - [`rate_limit`]: spacing requests to Route53 and to API Gateway.
//! - [`decide`]: the pure core, time passed in: baselines, verdicts,
//!   corroboration, the quorum of vantage points, damping, the policy's safety rules, health
//!   check steps, ownership, the plan, one zone's
//!   decision, the lease rules. No tokio, no provider calls.
//! - [`provider`]: the DNS service boundary: the trait and its types, the
//!   strict `memory` store, its loopback service, the fault wrapper, `route53`.
//! - [`store`]: the state store: the lease, the views, on-call's controls
//!   and the zone knowledge on a data plane (DynamoDB, a file, memory),
//!   one trait and one conformance suite.
//! - [`controller`]: what does I/O for the core: its state by lifetime
//!   (`state`: the process, a config generation, the member table), the
//!   per-zone reconcilers (`reconcile`), the other tasks (`tasks`: probers,
//!   discovery, the view exchange, the lease, on-call's controls, Route53's
//!   checkers, parity), one place that says what each happening means
//!   (`report`); every provider request goes through its `Calls`.
//! - [`lever`]: the data-plane lever: decisions carried out on ARC
//!   routing controls, across the cluster's endpoints, so failover works
//!   while Route53's control plane is down; a loopback cluster stand-in.
//! - [`events`]: the event timeline (`/events`, the page, structured logs).
//! - [`metrics`]: every Prometheus metric, grouped by subsystem; the
//!   per-member series written at scrape time.
//! - [`trend`]: each member's last 15 minutes of probes, for sparklines.
//! - [`time`]: wall-clock times as status, events and gauges show them.
//! - [`status`]: the snapshot on-call reads (JSON, HTML page, CLI table).
//! - [`reload`]: live config reload (file watch, SIGHUP) around the controller.
//! - [`http`]: `/metrics`, `/status`, `/events`, `/`, `/healthz`, `/readyz`,
//!   and the listener bounded so no client can starve the prober.
//! - [`admin`]: on-call's authenticated `/admin` routes (drains, freezes,
//!   retiring a record the config no longer manages).
//! - [`client`]: the CLI's side of those routes, `/status` and `/events`.
//! - [`init`]: `route53-failover init`: an existing latency setup read back
//!   into the config that adopts it.
//! - [`demo`]: simulated regional endpoints on loopback for `route53-failover demo`.

pub mod admin;
pub mod aws;
pub mod client;
pub mod cloudwatch;
pub mod config;
pub mod controller;
pub mod decide;
pub mod demo;
pub mod discovery;
pub mod events;
pub mod http;
pub mod init;
pub mod lever;
pub mod metrics;
pub mod parity;
pub mod probe;
pub mod prometheus_query;
pub mod provider;
pub mod rate_limit;
pub mod reload;
pub mod status;
pub mod store;
pub mod time;
pub mod trend;
