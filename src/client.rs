//! The CLI's side of a running daemon: `status`, `events`, and on-call's
//! admin calls (`drain`, `undrain`, `freeze`, `unfreeze`, `retire`,
//! `practice`).

use std::path::Path;
use std::time::Duration;

use crate::admin::{AdminAction, AdminAnswer, AdminRequest};
use crate::events::Event;
use crate::status::Status;

/// The environment variable the admin commands read the token from when
/// `--token-file` is not given.
pub const TOKEN_ENV: &str = "ROUTE53_FAILOVER_ADMIN_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The command's input is wrong (exit 2).
    #[error("{0}")]
    BadInput(String),
    /// The daemon could not be reached, or said no (exit 1).
    #[error("{0}")]
    Failed(String),
}

use ClientError::{BadInput, Failed};

/// `path` on the daemon at `url`.
pub fn endpoint(url: &str, path: &str) -> Result<url::Url, ClientError> {
    let base =
        url::Url::parse(url).map_err(|e| BadInput(format!("--url: {url:?} is not a URL: {e}")))?;
    base.join(path).map_err(|e| BadInput(format!("--url: {e}")))
}

fn client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Failed(e.to_string()))
}

/// GET `endpoint` as JSON (`what` it should be, for the error); a 404 is
/// `missing` when given (the asked thing does not exist there).
async fn get<T: serde::de::DeserializeOwned>(
    endpoint: &url::Url,
    what: &str,
    missing: Option<ClientError>,
) -> Result<T, ClientError> {
    let resp = client()?
        .get(endpoint.clone())
        .send()
        .await
        .map_err(|e| Failed(format!("cannot reach {endpoint}: {e}")))?;
    if let (reqwest::StatusCode::NOT_FOUND, Some(missing)) = (resp.status(), missing) {
        return Err(missing);
    }
    if !resp.status().is_success() {
        return Err(Failed(format!("{endpoint} answered {}", resp.status())));
    }
    resp.json()
        .await
        .map_err(|e| Failed(format!("{endpoint} did not answer with {what}: {e}")))
}

/// `/status`, or with `record` one record's (`?record=`).
pub fn status_endpoint(url: &str, record: Option<&str>) -> Result<url::Url, ClientError> {
    let mut endpoint = endpoint(url, "status")?;
    if let Some(record) = record {
        endpoint.query_pairs_mut().append_pair("record", record);
    }
    Ok(endpoint)
}

/// The status document at `endpoint` (of `record` when given: a name the
/// daemon's config does not have is bad input).
async fn fetch_status(endpoint: &url::Url, record: Option<&str>) -> Result<Status, ClientError> {
    let missing = record.map(|r| {
        BadInput(format!(
            "--record: {r:?}: no such record in the daemon's config"
        ))
    });
    get(endpoint, "a status document", missing).await
}

/// `status`: the table, or the JSON (of one record with `record`).
pub async fn status(url: &str, record: Option<&str>, json: bool) -> Result<String, ClientError> {
    let status = fetch_status(&status_endpoint(url, record)?, record).await?;
    Ok(if json {
        serde_json::to_string_pretty(&status).map_err(|e| Failed(e.to_string()))? + "\n"
    } else {
        status.table()
    })
}

/// `status --watch`: the table every `every`, the screen cleared first on
/// a terminal; an unreachable daemon is said and retried, not fatal.
pub async fn watch_status(
    url: &str,
    record: Option<&str>,
    every: Duration,
) -> Result<(), ClientError> {
    use std::io::{IsTerminal, Write};
    let endpoint = status_endpoint(url, record)?;
    let every = every.max(Duration::from_millis(100));
    let clear = std::io::stdout().is_terminal();
    loop {
        let text = match fetch_status(&endpoint, record).await {
            Ok(status) => status.table(),
            Err(e) => format!(
                "{e}; retrying every {}\n",
                humantime::format_duration(every)
            ),
        };
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let screen = format!(
            "{}{now}  every {}\n{text}\n",
            if clear { "\x1b[2J\x1b[H" } else { "" },
            humantime::format_duration(every)
        );
        let mut out = std::io::stdout().lock();
        out.write_all(screen.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| Failed(format!("stdout: {e}")))?;
        drop(out);
        tokio::time::sleep(every).await;
    }
}

/// The daemon's events, newest first, after event `since`.
pub async fn fetch_events(url: &str, since: Option<u64>) -> Result<Vec<Event>, ClientError> {
    let mut endpoint = endpoint(url, "events")?;
    if let Some(s) = since {
        endpoint
            .query_pairs_mut()
            .append_pair("since", &s.to_string());
    }
    get(&endpoint, "a list of events", None).await
}

/// The admin token: from `file` when given, else from `ROUTE53_FAILOVER_ADMIN_TOKEN`.
pub fn admin_token(file: Option<&Path>) -> Result<String, ClientError> {
    let token = match file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| BadInput(format!("--token-file: cannot read {}: {e}", f.display())))?,
        None => std::env::var(TOKEN_ENV).map_err(|_| {
            BadInput(format!(
                "no admin token: give --token-file FILE or set {TOKEN_ENV}"
            ))
        })?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(BadInput("the admin token is empty".into()));
    }
    Ok(token)
}

/// Who the audit names: `--by`, else `$USER`; neither (a container runs
/// with no `USER`) is bad input that says to pass `--by`.
pub fn acting_as(by: Option<String>, user: Option<String>) -> Result<String, ClientError> {
    by.or(user.filter(|u| !u.trim().is_empty())).ok_or_else(|| {
        BadInput(
            "--by: who is acting is not known ($USER is not set): pass --by NAME, \
             as the audit log and the timeline name it"
                .into(),
        )
    })
}

/// Sends one admin call. 400 and 404 (an unknown member) are bad input;
/// 401, 409 and the rest are failures, with the daemon's words.
pub async fn admin(
    url: &str,
    action: AdminAction,
    token: &str,
    request: &AdminRequest,
) -> Result<AdminAnswer, ClientError> {
    let endpoint = endpoint(url, &format!("admin/{}", action.as_str()))?;
    let resp = client()?
        .post(endpoint.clone())
        .bearer_auth(token)
        .json(request)
        .send()
        .await
        .map_err(|e| Failed(format!("cannot reach {endpoint}: {e}")))?;
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let answer: Option<AdminAnswer> = serde_json::from_slice(&body).ok();
    match (status.as_u16(), answer) {
        (200, Some(a)) => Ok(a),
        (400 | 404, Some(a)) => Err(BadInput(a.message)),
        (404, None) => Err(Failed(format!(
            "{endpoint} answered 404: the daemon's admin routes are off (set admin.token_file)"
        ))),
        (_, Some(a)) => Err(Failed(format!("{status}: {}", a.message))),
        (_, None) => Err(Failed(format!("{endpoint} answered {status}"))),
    }
}

/// On-call's commands: each is one admin call.
#[derive(clap::Subcommand)]
pub enum OnCall {
    /// Take a member out of DNS by hand (while the safety rules allow) until
    /// --for ends or `undrain`. Needs the daemon's admin token.
    Drain {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        record: String,
        /// The record's type, when its name has several.
        #[arg(long = "type")]
        rtype: Option<String>,
        /// The member's region (or set identifier).
        #[arg(long)]
        region: String,
        #[arg(long)]
        reason: String,
        /// How long: default 1h, at most 7d.
        #[arg(long = "for")]
        lasts: Option<String>,
        /// Also below min_healthy and past max_withdrawn (never the last member).
        #[arg(long)]
        force: bool,
    },
    /// End a member's drain.
    Undrain {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        record: String,
        #[arg(long = "type")]
        rtype: Option<String>,
        #[arg(long)]
        region: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Hands off: change nothing of a record (or of every record) until
    /// --for ends or `unfreeze`; probes go on and status shows the plan held.
    Freeze {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only this record (every type); default: everything.
        #[arg(long)]
        record: Option<String>,
        #[arg(long)]
        reason: String,
        /// How long: default 1h, at most 7d.
        #[arg(long = "for")]
        lasts: Option<String>,
    },
    /// End a freeze (of --record, or of everything).
    Unfreeze {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        record: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete a record the config no longer manages (status lists it as
    /// orphaned): its records and this owner's claims. Refused for a record
    /// in the config.
    Retire {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        record: String,
        /// Only this type; default: every type this owner claims.
        #[arg(long = "type")]
        rtype: Option<String>,
        /// The zone that holds it; default: the configured zone whose name
        /// ends the record's.
        #[arg(long)]
        zone: Option<String>,
    },
    /// Practice runs: start one now, stop one, list them.
    #[command(subcommand)]
    Practice(PracticeCommand),
}

/// `practice`: on-call's side of practice runs.
#[derive(clap::Subcommand)]
pub enum PracticeCommand {
    /// Practise a failover now: withdraw a member of a practising record
    /// (--region, else the one whose turn it is) for --for (else the
    /// record's practice duration), as a drain by `practice`: every safety
    /// rule applies. Refused while anything would hold a run back.
    Start {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        record: String,
        #[arg(long = "type")]
        rtype: Option<String>,
        /// The member's region (or set identifier); default: whose turn it is.
        #[arg(long)]
        region: Option<String>,
        /// How long; default: the record's practice.duration.
        #[arg(long = "for")]
        lasts: Option<String>,
    },
    /// End a record's practice run now (it is reported aborted).
    Stop {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        record: String,
        #[arg(long = "type")]
        rtype: Option<String>,
    },
    /// Each practising record's run in progress, next run, and each
    /// member's last run (from status; no token needed).
    List {
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        url: String,
    },
}

/// `practice list`: one line per practising record.
pub async fn practice_list(url: &str) -> Result<String, ClientError> {
    let status = fetch_status(&status_endpoint(url, None)?, None).await?;
    let lines: Vec<String> = status
        .records
        .iter()
        .filter_map(|r| Some(r.practice.as_ref()?.line(&r.name, &r.rtype)))
        .collect();
    Ok(if lines.is_empty() {
        "no record practises (give it practice: in the config)".into()
    } else {
        lines.join("\n")
    })
}

/// What every admin command needs: where, the token, and who.
#[derive(clap::Args)]
pub struct AdminArgs {
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    pub url: String,
    /// The file holding the admin token (else ROUTE53_FAILOVER_ADMIN_TOKEN).
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Who acts, for the audit trail (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
}

impl OnCall {
    /// Sends the call; the daemon's answer.
    pub async fn run(self) -> Result<String, ClientError> {
        let (action, admin, request) = match self {
            OnCall::Drain {
                admin,
                record,
                rtype,
                region,
                reason,
                lasts,
                force,
            } => (
                AdminAction::Drain,
                admin,
                AdminRequest {
                    record: Some(record),
                    rtype,
                    region: Some(region),
                    reason: Some(reason),
                    lasts,
                    force,
                    ..Default::default()
                },
            ),
            OnCall::Undrain {
                admin,
                record,
                rtype,
                region,
                reason,
            } => (
                AdminAction::Undrain,
                admin,
                AdminRequest {
                    record: Some(record),
                    rtype,
                    region: Some(region),
                    reason,
                    ..Default::default()
                },
            ),
            OnCall::Freeze {
                admin,
                record,
                reason,
                lasts,
            } => (
                AdminAction::Freeze,
                admin,
                AdminRequest {
                    record,
                    reason: Some(reason),
                    lasts,
                    ..Default::default()
                },
            ),
            OnCall::Unfreeze {
                admin,
                record,
                reason,
            } => (
                AdminAction::Unfreeze,
                admin,
                AdminRequest {
                    record,
                    reason,
                    ..Default::default()
                },
            ),
            OnCall::Practice(PracticeCommand::List { url }) => {
                return practice_list(&url).await;
            }
            OnCall::Practice(PracticeCommand::Start {
                admin,
                record,
                rtype,
                region,
                lasts,
            }) => (
                AdminAction::Practice,
                admin,
                AdminRequest {
                    record: Some(record),
                    rtype,
                    region,
                    lasts,
                    ..Default::default()
                },
            ),
            OnCall::Practice(PracticeCommand::Stop {
                admin,
                record,
                rtype,
            }) => (
                AdminAction::StopPractice,
                admin,
                AdminRequest {
                    record: Some(record),
                    rtype,
                    ..Default::default()
                },
            ),
            OnCall::Retire {
                admin,
                record,
                rtype,
                zone,
            } => (
                AdminAction::Retire,
                admin,
                AdminRequest {
                    record: Some(record),
                    rtype,
                    zone,
                    ..Default::default()
                },
            ),
        };
        let token = admin_token(admin.token_file.as_deref())?;
        let by = acting_as(admin.by, std::env::var("USER").ok())?;
        let request = AdminRequest { by, ..request };
        Ok(self::admin(&admin.url, action, &token, &request)
            .await?
            .message)
    }
}

/// Events as lines: time, kind, subject, message.
pub fn events_table(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        let at = std::time::UNIX_EPOCH + Duration::from_secs_f64(e.at.max(0.0));
        let subject = match (&e.record, &e.region) {
            (Some(r), Some(g)) => format!("{r} {g}"),
            (Some(r), None) => r.clone(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{}  {:<13} {:<28} {}\n",
            humantime::format_rfc3339_seconds(at),
            e.event,
            subject,
            e.message
        ));
    }
    if events.is_empty() {
        out.push_str("no events\n");
    }
    out
}
