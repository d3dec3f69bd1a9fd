//! The docs as their checks read them (`tests/docs.rs`, and the command
//! lines in `src/cli/docs.rs`): the Markdown files a reader sees, their
//! fenced blocks with the marker written before each, the command lines
//! of their shell blocks, their links, and their headings' anchors.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown file a user reads: the README, `docs/`, the chart's.
pub fn files() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![
        root.join("README.md"),
        root.join("charts/route53-failover/README.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// `docs/x.md` for messages.
pub fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fenced block.
pub struct Block {
    /// The line its fence opens on (1-based).
    pub line: usize,
    /// The fence's info string: `yaml`, `sh`, or empty.
    pub lang: String,
    /// What the `<!-- check: … -->` comment on the line before says.
    pub marker: Option<String>,
    pub text: String,
}

/// The fenced blocks of `text`, in order.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    let mut previous = "";
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match open.as_mut() {
            Some(_) if fence => out.extend(open.take()),
            Some(b) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            None if fence => {
                let marker = previous
                    .trim()
                    .strip_prefix("<!-- check:")
                    .and_then(|m| m.strip_suffix("-->"))
                    .map(|m| m.trim().to_string());
                open = Some(Block {
                    line: i + 1,
                    lang: line.trim_start().trim_start_matches('`').trim().to_string(),
                    marker,
                    text: String::new(),
                });
            }
            None => {}
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    out
}

/// The text outside fenced blocks and inline code, line by line (1-based),
/// for links: `[x](y)` inside code is not a link.
pub fn prose(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code spans: every other backtick-separated part.
        let kept: String = line
            .split('`')
            .enumerate()
            .filter(|(n, _)| n % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        out.push((i + 1, kept));
    }
    out
}

/// The inline code spans of the prose (outside fenced blocks) that are a
/// daemon command line (`route53-failover …`), with their line: a span
/// may run onto the next line, as Markdown allows.
pub fn inline_commands(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    let mut open: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            open = None;
            continue;
        }
        if fenced {
            continue;
        }
        if line.trim().is_empty() {
            open = None;
        }
        for (n, part) in line.split('`').enumerate() {
            if n > 0 {
                // A backtick: a span opens or closes.
                open = match open.take() {
                    Some((at, span)) => {
                        if span.starts_with("route53-failover ") {
                            out.push((at, span));
                        }
                        None
                    }
                    None => Some((i + 1, String::new())),
                };
            }
            if let Some((_, span)) = open.as_mut() {
                if n == 0 && !span.is_empty() {
                    span.push(' ');
                }
                span.push_str(part);
            }
        }
    }
    out
}

/// The links of a line of prose: each `[text](target)`'s target.
pub fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split_whitespace().next().unwrap_or("");
        out.push(target.to_string());
        rest = &after[end..];
    }
    out
}

/// The anchors of a file's headings, as GitHub makes them: lowercase,
/// punctuation dropped (but `-` and `_`), spaces to `-`, a repeat given
/// `-1`, `-2`.
pub fn anchors(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let repeats = out
            .iter()
            .filter(|a| {
                **a == slug
                    || a.strip_prefix(&format!("{slug}-"))
                        .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .count();
        out.push(if repeats == 0 {
            slug
        } else {
            format!("{slug}-{repeats}")
        });
    }
    out
}

/// The daemon's command lines in a shell block, as arguments (the program
/// first): a line that starts with `route53-failover` or
/// `cargo run --release --`, joined with the lines it continues onto
/// (`\`), without its comment.
pub fn commands(block: &str) -> Vec<(String, Vec<String>)> {
    let mut lines: Vec<String> = Vec::new();
    let mut carry = String::new();
    for line in block.lines() {
        let line = line.trim();
        match line.strip_suffix('\\') {
            Some(part) => {
                carry.push_str(part);
                carry.push(' ');
            }
            None => {
                carry.push_str(line);
                lines.push(std::mem::take(&mut carry));
            }
        }
    }
    lines
        .into_iter()
        .filter_map(|line| {
            // A shell prompt shown before the command.
            let line = without_comment(&line);
            let line = line.strip_prefix("$ ").unwrap_or(line);
            let mentions = line.starts_with("route53-failover") || line.starts_with("cargo run");
            // A line the shell could not split is a command that does not
            // parse: kept, so the check fails on it.
            let Some(words) = shlex::split(line) else {
                return mentions.then(|| (line.to_string(), vec![line.to_string()]));
            };
            // Leading VAR=value assignments are the shell's.
            let words: Vec<String> = words
                .into_iter()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .collect();
            let args = match words.first().map(String::as_str) {
                Some("route53-failover") => words,
                Some("cargo") if words.starts_with(&cargo_run()) => {
                    let mut args = vec!["route53-failover".to_string()];
                    args.extend(words.into_iter().skip(4));
                    args
                }
                _ => return None,
            };
            Some((line.to_string(), args))
        })
        .collect()
}

fn cargo_run() -> Vec<String> {
    ["cargo", "run", "--release", "--"]
        .map(String::from)
        .to_vec()
}

/// A line without its trailing `# comment` (a `#` outside quotes, after
/// a space).
fn without_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut last = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && last.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        last = c;
    }
    line
}
