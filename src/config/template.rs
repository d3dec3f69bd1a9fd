//! Values written with `${env:NAME}` and `${file:PATH}` references: the
//! environment read once, at load; a file read at load and again whenever
//! it changes (a rotated Secret), through one cache shared by every reader.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{q, Validator};

impl Validator {
    /// Expands `${env:NAME}` and `${file:PATH}` once. Errors name the
    /// reference, never the expanded value.
    pub(super) fn interpolate(&mut self, path: &str, s: &str) -> Option<String> {
        let parts = self.template(path, s)?;
        match Template::new(parts).render() {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(path, format!("a file it names cannot be read: {e}"));
                None
            }
        }
    }

    /// Splits a value into text (with `${env:NAME}` expanded now) and
    /// `${file:PATH}` references, each file checked readable now and read
    /// again whenever it changes ([`Template::render`]).
    pub(super) fn template(&mut self, path: &str, s: &str) -> Option<Vec<Part>> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            text.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                self.err(path, format!("{} has an unclosed ${{", q(s)));
                return None;
            };
            let reference = &rest[start + 2..start + len];
            if let Some(name) = reference.strip_prefix("env:") {
                match std::env::var(name) {
                    Ok(v) => text.push_str(&v),
                    Err(_) => {
                        self.err(
                            path,
                            format!("${{env:{name}}}: the variable {name} is not set"),
                        );
                        return None;
                    }
                }
            } else if let Some(file) = reference.strip_prefix("file:") {
                let full = self.base_dir.join(file);
                if let Err(e) = read_value_file(&full) {
                    self.err(
                        path,
                        format!("${{file:{file}}}: {} cannot be read: {e}", full.display()),
                    );
                    return None;
                }
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::File(full));
            } else {
                self.err(
                    path,
                    format!("${{{reference}}}: use ${{env:NAME}} or ${{file:PATH}}"),
                );
                return None;
            }
            rest = &rest[start + len + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Some(parts)
    }
}

/// A piece of a value with `${...}` references.
#[derive(Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// Read again whenever the file changes (a rotated Secret).
    File(PathBuf),
}

/// A value written with `${env:NAME}` and `${file:PATH}` references: the
/// environment is read once, at load; each file is read at load and again
/// whenever it changes, so a mounted Secret that is rotated takes effect
/// without a restart, as the admin token and OAuth2 client secrets do.
/// Its `Debug` never shows a value: it may be a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<String> = self
            .0
            .iter()
            .filter_map(|p| match p {
                Part::File(f) => Some(f.display().to_string()),
                Part::Text(_) => None,
            })
            .collect();
        write!(f, "Template(<redacted>, files: {files:?})")
    }
}

impl Template {
    pub fn new(parts: Vec<Part>) -> Self {
        Template(parts)
    }

    /// The value now. A file that cannot be read now (a Secret being
    /// swapped) gives its last value; one never read is an error naming
    /// the file, never a value.
    pub fn render(&self) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::File(f) => out.push_str(&read_value_file(f)?),
            }
        }
        Ok(out)
    }
}

/// How often a value file is checked for a change, at most.
const FILE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

struct CachedFile {
    value: String,
    /// Modification time, length and inode when read: a Secret's symlink
    /// swap gives a new inode, an edit a new time or length.
    stamp: (Option<std::time::SystemTime>, u64, u64),
    checked: std::time::Instant,
    /// It could not be read at the last check (said once).
    failing: bool,
}

fn stamp(meta: &std::fs::Metadata) -> (Option<std::time::SystemTime>, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.modified().ok(), meta.len(), meta.ino())
}

/// A value file's content (trailing newlines trimmed), shared by every
/// reader of the file and read again when it changes.
fn read_value_file(path: &Path) -> Result<String, String> {
    static FILES: std::sync::OnceLock<std::sync::Mutex<BTreeMap<PathBuf, CachedFile>>> =
        std::sync::OnceLock::new();
    let files = FILES.get_or_init(Default::default);
    let lock = || files.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    let known = lock().get(path).map(|c| {
        (
            c.value.clone(),
            c.stamp,
            now.duration_since(c.checked) < FILE_CHECK_EVERY,
        )
    });
    if let Some((value, _, true)) = &known {
        return Ok(value.clone());
    }
    // The file system is touched with the lock let go.
    let fresh = std::fs::metadata(path).map(|m| stamp(&m));
    let read = match (&fresh, &known) {
        (Ok(s), Some((value, old, _))) if s == old => Ok((*s, value.clone())),
        (Ok(s), _) => std::fs::read_to_string(path)
            .map(|v| (*s, v.trim_end_matches(['\r', '\n']).to_string())),
        (Err(e), _) => Err(std::io::Error::new(e.kind(), e.to_string())),
    };
    let mut files = lock();
    match (read, files.get_mut(path)) {
        (Ok((stamp, value)), _) => {
            files.insert(
                path.to_path_buf(),
                CachedFile {
                    value: value.clone(),
                    stamp,
                    checked: now,
                    failing: false,
                },
            );
            Ok(value)
        }
        (Err(e), Some(c)) => {
            c.checked = now;
            // Said once, not at every probe, until it reads again.
            if !c.failing {
                c.failing = true;
                tracing::warn!(file = %path.display(), error = %e,
                    "a value file cannot be read now; its last value stays in use");
            }
            Ok(c.value.clone())
        }
        (Err(e), None) => Err(e.to_string()),
    }
}
