//! Loading a config, as every command with `--config` does (its warnings
//! logged, its problems bad input), and `check`, which does only that.

use std::path::Path;

use tracing::warn;

use route53_failover::config::{self, Config};

use super::exit::BadInput;

/// `check`: the config's one-line summary, or every problem (exit 2).
pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    println!("{}", config.summary());
    Ok(())
}

/// The config at `path`; every problem in it is bad input (exit 2),
/// before any network call.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let config = config::load(path).map_err(|errors| {
        BadInput(format!(
            "{}: {} problem(s):\n{errors}",
            path.display(),
            errors.0.len()
        ))
    })?;
    for w in &config.warnings {
        warn!("{w}");
    }
    Ok(config)
}
