//! The commands that call a running daemon: `status` (once, as JSON, or
//! `--watch`), `events`, and on-call's admin calls (`drain`, `undrain`,
//! `freeze`, `unfreeze`, `retire`). The calls are `route53_failover::client`;
//! here are their arguments, what is printed, and the exit code.

use std::time::Duration;

use route53_failover::client;

use super::exit::BadInput;

#[derive(clap::Args)]
pub struct StatusArgs {
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    url: String,
    /// Only this record (its name): the daemon builds one record's
    /// status, not every one (cheap in a refresh loop).
    #[arg(long)]
    record: Option<String>,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
    /// Print it again and again (until interrupted), riding out a
    /// daemon that restarts.
    #[arg(long, conflicts_with = "json")]
    watch: bool,
    /// With --watch: how often.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    every: Duration,
}

#[derive(clap::Args)]
pub struct EventsArgs {
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    url: String,
    /// Only the events after this one (an event id).
    #[arg(long)]
    since: Option<u64>,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

/// `status`: the table (or the JSON) once, or again and again.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    if args.watch {
        client::watch_status(&args.url, args.record.as_deref(), args.every)
            .await
            .map_err(client_error)
    } else {
        print!(
            "{}",
            client::status(&args.url, args.record.as_deref(), args.json)
                .await
                .map_err(client_error)?
        );
        Ok(())
    }
}

/// `events`: the timeline as lines, or the JSON.
pub async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let events = client::fetch_events(&args.url, args.since)
        .await
        .map_err(client_error)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&events)?);
    } else {
        print!("{}", client::events_table(&events));
    }
    Ok(())
}

/// One admin call; the daemon's answer printed.
pub async fn on_call(command: client::OnCall) -> anyhow::Result<()> {
    let message = command.run().await.map_err(client_error)?;
    println!("{message}");
    Ok(())
}

/// A client error as the exit code wants it: bad input is 2.
fn client_error(e: client::ClientError) -> anyhow::Error {
    match e {
        client::ClientError::BadInput(m) => BadInput(m).into(),
        client::ClientError::Failed(m) => anyhow::Error::msg(m),
    }
}
