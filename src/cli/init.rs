//! `init`: arguments, the provider they name, where the config goes, and
//! the exit code (0 all mapped, 3 some parts need a decision, 2 bad input,
//! 1 a read failed). What is read and written is `route53_failover::init`.

use std::io::Write as _;
use std::path::PathBuf;

use route53_failover::config::{self, ProviderKind};
use route53_failover::init::{self, map, InitError};

use super::exit::{BadInput, NeedsDecision};
use super::run::build_provider;

#[derive(clap::Args)]
pub struct InitArgs {
    /// The hosted zone to read (its name, or its id).
    #[arg(long)]
    zone: String,
    /// Only this record name (default: every name with a latency set).
    #[arg(long)]
    name: Option<String>,
    /// The provider to read through (as the config's provider.kind).
    #[arg(long, value_parser = ["route53", "memory"], conflicts_with = "config")]
    provider: Option<String>,
    /// route53: the SDK region for Route53 calls.
    #[arg(long, conflicts_with = "config")]
    region: Option<String>,
    /// route53: an emulator's URL; memory: a store served elsewhere.
    #[arg(long, conflicts_with = "config")]
    endpoint_url: Option<String>,
    /// Take the provider from this config file (its provider section only).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The owner written into the config (default: from the zone's name).
    #[arg(long)]
    owner: Option<String>,
    /// The probe's path on each region's endpoint.
    #[arg(long, default_value = "/health")]
    probe_path: String,
    /// Write the config here instead of printing it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --out: overwrite a file that exists.
    #[arg(long, requires = "out")]
    force: bool,
}

pub async fn run(args: InitArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        if out.exists() && !args.force {
            return Err(BadInput(format!(
                "--out: {} exists (--force overwrites it)",
                out.display()
            ))
            .into());
        }
    }
    if let Some(o) = args.owner.as_deref().filter(|o| !config::valid_owner(o)) {
        return Err(BadInput(format!("--owner: {o:?} {}", config::OWNER_RULE)).into());
    }
    if !args.probe_path.starts_with('/') {
        return Err(BadInput(format!(
            "--probe-path: {:?} must start with /",
            args.probe_path
        ))
        .into());
    }
    let (provider_config, provider_yaml) = provider_section(&args)?;
    let (provider, _) = build_provider(&provider_config).await?;
    let api_gateway = match provider_config.kind {
        ProviderKind::Route53 => Some(provider_config.endpoint_url.as_ref().map(|u| u.as_str())),
        // No API Gateway beside the embedded store: aliases stay aliases.
        ProviderKind::Memory => None,
    };
    let read = init::read(
        provider.as_ref(),
        &args.zone,
        args.name.as_deref(),
        api_gateway,
    )
    .await
    .map_err(|e| match e {
        InitError::BadInput(m) => anyhow::Error::new(BadInput(m)),
        InitError::Read(m) => anyhow::Error::msg(m),
    })?;
    if read.found.sets.is_empty() {
        let under = args
            .name
            .as_deref()
            .map(|n| format!(" under {n}"))
            .unwrap_or_default();
        eprintln!(
            "needs a decision: zone {} holds no latency record set{under}: nothing to adopt",
            read.zone_name
        );
        return Err(NeedsDecision.into());
    }
    let owner = match &args.owner {
        Some(o) => o.clone(),
        None => {
            let mut o = format!("{}-failover", read.zone_name.replace('.', "-"));
            o.truncate(64);
            o
        }
    };
    let source = format!(
        "zone {} ({}) through the {} provider",
        read.zone_name,
        read.zone_id,
        provider_config.kind.as_str()
    );
    let rendered = map::render(
        &read.found,
        &read.gateways,
        &map::Options {
            owner: &owner,
            zone: &read.zone_name,
            provider: &provider_yaml,
            probe_path: &args.probe_path,
            source: &source,
        },
    );
    if rendered.adopted == 0 {
        // Every part needs a decision: there is no config to write yet.
        for n in &rendered.notes {
            eprintln!("needs a decision: {n}");
        }
        eprintln!("nothing in zone {} can be adopted as it is", read.zone_name);
        return Err(NeedsDecision.into());
    }
    // What is written must be a config the daemon takes: a bug otherwise.
    if let Err(e) = config::parse(&rendered.text, std::path::Path::new(".")) {
        anyhow::bail!("the config written for this zone does not validate (a bug):\n{e}");
    }
    match &args.out {
        Some(path) => {
            // Whole or not at all: written beside it, then renamed over it.
            let cannot = |e: std::io::Error| {
                BadInput(format!("--out: cannot write {}: {e}", path.display()))
            };
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
                .map_err(cannot)?;
            tmp.write_all(rendered.text.as_bytes()).map_err(cannot)?;
            if args.force {
                tmp.persist(path).map_err(|e| cannot(e.error))?;
            } else {
                // Never over a file that appeared meanwhile.
                tmp.persist_noclobber(path).map_err(|e| cannot(e.error))?;
            }
        }
        None => print!("{}", rendered.text),
    }
    for n in &rendered.notes {
        eprintln!("needs a decision: {n}");
    }
    eprintln!(
        "{} member(s) of {} record(s) adopted{}",
        rendered.adopted,
        read.found.sets.len(),
        match rendered.notes.len() {
            0 => String::new(),
            n => format!("; {n} part(s) need a decision (above, and at the top of the config)"),
        }
    );
    if rendered.notes.is_empty() {
        Ok(())
    } else {
        Err(NeedsDecision.into())
    }
}

/// The provider, validated as the config's `provider` section is, and that
/// section's YAML for the config written.
fn provider_section(args: &InitArgs) -> anyhow::Result<(config::ProviderConfig, String)> {
    let text = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("--config: cannot read {}: {e}", path.display())))?,
        None => {
            let kind = args.provider.as_deref().unwrap_or("route53");
            if kind == "memory" && args.endpoint_url.is_none() {
                return Err(BadInput(
                    "--provider memory: give --endpoint-url (a store another process serves), or --config FILE whose provider section has zones and records".into(),
                )
                .into());
            }
            let mut lines = vec![format!("  kind: {kind}")];
            if let Some(r) = &args.region {
                lines.push(format!("  region: {}", map::yaml_str(r)));
            } else if kind == "route53" {
                lines.push("  region: us-east-1".into());
            }
            if let Some(u) = &args.endpoint_url {
                lines.push(format!("  endpoint_url: {}", map::yaml_str(u)));
            }
            format!("provider:\n{}\n", lines.join("\n"))
        }
    };
    let origin = match &args.config {
        Some(path) => path.display().to_string(),
        None => "the flags".into(),
    };
    config::parse_provider(&text)
        .map_err(|e| BadInput(format!("{origin}: {} problem(s):\n{e}", e.0.len())).into())
}
