//! The commands: what the command line takes (`Cli`, `Command`, each
//! command's help) and, one file per command or per group of commands,
//! their bodies. `main.rs` parses with these and dispatches to them.
//!
//! - `exit`: the errors that choose an exit code other than 1.
//! - `check`: loading a config (every `--config` goes through it), `check`.
//! - `run`: the daemon (`run`), the provider a config names, signals.
//! - `plan`, `parity`, `init`, `demo`: one command each.
//! - `oncall`: the commands that call a running daemon (`status`,
//!   `events`, `drain` and the other admin calls).
//!
//! Part of the binary, not of the library: this is where `anyhow` is used
//! and where output is printed.

pub mod check;
pub mod demo;
#[cfg(test)]
mod docs;
pub mod exit;
pub mod init;
pub mod oncall;
pub mod parity;
pub mod plan;
pub mod run;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use route53_failover::client;

const EXAMPLES: &str = "\
Examples:
  route53-failover demo                              # three simulated regions, no AWS account
  route53-failover check --config config/example.yaml
  route53-failover plan --config config/example.yaml  # probe once, show what would change
  route53-failover run --config /etc/route53-failover/config.yaml
  route53-failover status --url http://127.0.0.1:9090
  route53-failover events --url http://127.0.0.1:9090
  route53-failover drain --url URL --record api.example.com --region eu-west-1 --reason \"patching\" --for 2h
  route53-failover freeze --url URL --reason \"manual change in the console\" --for 30m
  route53-failover init --zone example.com --owner api-prod --out config.yaml  # adopt what exists

Exit codes: 0 ok, 1 failure while running, 2 bad input (config or arguments),\n3 (parity) the regions differ, (init) some parts need a decision.";

#[derive(Parser)]
#[command(version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (RUST_LOG syntax), e.g. `info` or `route53_failover=debug`.
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and exit: 0 when valid, 2 with every problem listed.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Probe every member once, read the provider, print the decision and the changes; change nothing.
    Plan {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Compare what API Gateway serves in each region of every record with
    /// api_gateway_domain members, print the differences; change nothing.
    /// Exit 0 when in sync, 3 when regions differ, 1 when a region could not
    /// be read, 2 on bad input.
    Parity {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read an existing latency setup (a zone's latency records, and API
    /// Gateway for the aliases to it) and write the config that adopts it
    /// as it is. Exit 0 all mapped, 3 some parts need a decision (listed),
    /// 2 bad input, 1 a read failed.
    Init(init::InitArgs),
    /// Run on three simulated regions on loopback with the embedded memory provider.
    Demo {
        /// Where to serve the status page, metrics and the demo controls.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
    },
    /// Print a running daemon's status as a table.
    Status(oncall::StatusArgs),
    /// Print a running daemon's event timeline, newest first.
    Events(oncall::EventsArgs),
    #[command(flatten)]
    OnCall(client::OnCall),
}
