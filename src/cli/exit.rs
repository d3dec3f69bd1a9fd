//! The exit code, chosen by the error a command returns: 0 ok, 2 bad input
//! ([`BadInput`], said on stderr as it is), 3 the regions differ or some
//! parts need a decision (already said), 1 anything else (`error: ...`).
//! Tests in `tests/` hold the binary to these.

use std::process::ExitCode;

/// Bad input: reported, exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The regions of a record differ (`parity`): exit code 3, the report
/// already printed.
#[derive(Debug)]
pub struct RegionsDiffer;

impl std::fmt::Display for RegionsDiffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the regions differ")
    }
}

impl std::error::Error for RegionsDiffer {}

/// Some parts of what `init` read need the operator's decision: exit code
/// 3, each already said.
#[derive(Debug)]
pub struct NeedsDecision;

impl std::fmt::Display for NeedsDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("some parts need a decision")
    }
}

impl std::error::Error for NeedsDecision {}

/// A command's outcome as the process's exit code, its error said first.
pub fn code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<BadInput>() => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) if e.is::<RegionsDiffer>() || e.is::<NeedsDecision>() => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
