//! `admin`: the authenticated routes on-call acts through (drains and
//! freezes, `crate::admin`). Off unless `token_file` is set: without it
//! every `/admin` route answers 404.

use std::path::PathBuf;

use super::raw::RawAdmin;
use super::{q, zone_ref, Validator};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// The bearer token's file (a mounted Secret). It is read again on each
    /// call, so a rotated Secret takes effect without a restart.
    pub token_file: PathBuf,
    /// Where drains and freezes are kept (`admin.zone`); `None`: the
    /// lease's zone with `ha`, else the records' first zone by name.
    pub zone: Option<String>,
}

/// Shorter tokens are refused: a guessable token is no lock.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The token in `path`, trimmed; an error that never contains the token.
pub fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let token = text.trim();
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!(
            "{} holds a token shorter than {MIN_TOKEN_CHARS} characters",
            path.display()
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{} holds whitespace inside the token",
            path.display()
        ));
    }
    Ok(token.to_string())
}

impl Validator {
    pub(super) fn admin(
        &mut self,
        raw: Option<&RawAdmin>,
        zones: &[&str],
    ) -> Option<Option<AdminConfig>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let Some(file) = raw.token_file.as_deref() else {
            self.err(
                "admin.token_file",
                "missing (required with admin: the file holding the bearer token)",
            );
            return None;
        };
        let zone = raw.zone.as_deref().map(zone_ref);
        let zone_ok = zone.as_deref().is_none_or(|z| zones.contains(&z));
        if !zone_ok {
            self.err(
                "admin.zone",
                format!(
                    "{} is not the zone of any record ({})",
                    q(raw.zone.as_deref().unwrap_or_default()),
                    zones.join(", ")
                ),
            );
        }
        let path = self.base_dir.join(file);
        if let Err(e) = read_token(&path) {
            self.err("admin.token_file", format!("{}: {e}", q(file)));
            return None;
        }
        zone_ok.then_some(Some(AdminConfig {
            token_file: path,
            zone,
        }))
    }
}
