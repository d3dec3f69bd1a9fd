//! The docs are kept true by these checks (the command lines' is in
//! `src/cli/docs.rs`, next to the CLI's definition; every alert's runbook
//! section is checked by `scripts/check-chart.sh`, which renders them):
//!
//! - every YAML block is marked on the line before it: `<!-- check:
//!   config -->` (a whole config: it passes `check`), `<!-- check:
//!   fragment -->` (merged into a minimal config, which then passes
//!   `check`), or `<!-- check: none, <why> -->` (not a config: Helm
//!   values, a manifest);
//! - every metric the docs name is one the daemon shows: a family of its
//!   registry (`Metrics::families`), which holds every family the demo's
//!   `/metrics` shows (checked here too) and those that appear only once
//!   they have a series (a lease, a store, a first error); and
//!   `docs/metrics.md` lists every family;
//! - every relative link resolves, and so does its anchor.
//!
//! Each collects every fault before failing, naming file and line.

mod common;
#[allow(dead_code)]
#[path = "docs/markdown.rs"]
mod markdown;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_yaml::Value;

const BIN: &str = env!("CARGO_BIN_EXE_route53-failover");

/// What a fragment is merged into: the least config `check` passes.
const MINIMAL: &str = "
owner: docs-check
provider: {kind: memory, zones: [example.com]}
records:
  - name: api.example.com
    zone: example.com
    type: A
    probe: {url: https://api.example.com/health}
    regions:
      - region: us-east-1
        target: {values: [192.0.2.10]}
      - region: eu-west-1
        target: {values: [192.0.2.20]}
";

/// A fragment in the minimal config: each top-level key replaces the
/// base's (a `provider` of another kind is a whole), except `records`,
/// refined item by item (the fragment's first record, the base's first).
fn merge_fragment(base: &mut Value, fragment: Value) {
    let (Value::Mapping(b), Value::Mapping(f)) = (base, fragment) else {
        panic!("a fragment is a mapping of top-level keys");
    };
    for (k, v) in f {
        match b.get_mut(&k) {
            Some(slot) if k.as_str() == Some("records") => merge(slot, v),
            _ => {
                b.insert(k, v);
            }
        }
    }
}

/// `fragment` over `base`: maps key by key, lists item by item, the rest
/// replaced.
fn merge(base: &mut Value, fragment: Value) {
    match (base, fragment) {
        (Value::Mapping(b), Value::Mapping(f)) => {
            for (k, v) in f {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(f)) => {
            for (i, v) in f.into_iter().enumerate() {
                match b.get_mut(i) {
                    Some(slot) if slot.is_mapping() && v.is_mapping() => merge(slot, v),
                    Some(slot) => *slot = v,
                    None => b.push(v),
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Makes what a config reads exist, below `dir`: each `${file:…}` and
/// `…_file` path gets a stand-in (an absolute one is moved below `dir`),
/// and each `${env:…}` a value. Returns the variables to set.
fn stand_ins(value: &mut Value, dir: &Path, config_dir: &Path) -> Vec<String> {
    let mut env = Vec::new();
    let mut visit = |s: &mut String, is_file_key: bool| {
        let mut paths = Vec::new();
        let mut rest = s.as_str();
        while let Some(at) = rest.find("${") {
            let Some(end) = rest[at..].find('}') else {
                break;
            };
            let inner = &rest[at + 2..at + end];
            if let Some(p) = inner.strip_prefix("file:") {
                paths.push(p.to_string());
            } else if let Some(v) = inner.strip_prefix("env:") {
                env.push(v.to_string());
            }
            rest = &rest[at + end..];
        }
        if is_file_key && !s.contains("${") {
            paths.push(s.clone());
        }
        for p in paths {
            let file = if Path::new(&p).is_absolute() {
                let moved = format!("{}{p}", dir.display());
                *s = s.replace(&p, &moved);
                std::path::PathBuf::from(moved)
            } else {
                config_dir.join(&p)
            };
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, "stand-in-secret-for-the-docs-check-0123456789\n").unwrap();
        }
    };
    fn walk(v: &mut Value, file_key: bool, visit: &mut dyn FnMut(&mut String, bool)) {
        match v {
            Value::String(s) => visit(s, file_key),
            Value::Mapping(m) => {
                for (k, v) in m.iter_mut() {
                    let is_file = k.as_str().is_some_and(|k| k.ends_with("_file"));
                    walk(v, is_file, visit);
                }
            }
            Value::Sequence(items) => {
                for v in items {
                    walk(v, false, visit);
                }
            }
            _ => {}
        }
    }
    walk(value, false, &mut visit);
    env
}

/// `check` on one block's config; the error, if it does not pass.
fn check(text: &str, fragment: bool) -> Result<(), String> {
    let mut config: Value = if fragment {
        let mut base: Value = serde_yaml::from_str(MINIMAL).unwrap();
        let piece: Value = serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
        merge_fragment(&mut base, piece);
        base
    } else {
        serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))?
    };
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let env = stand_ins(&mut config, dir.path(), &config_dir);
    let path = config_dir.join("config.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["check", "--config"]).arg(&path);
    for name in env {
        cmd.env(name, "docs-check-value");
    }
    let out = cmd.output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn every_config_block_in_the_docs_passes_check() {
    let (mut checked, mut wrong) = (0, Vec::new());
    for file in markdown::files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for block in markdown::blocks(&text) {
            if !matches!(block.lang.as_str(), "yaml" | "yml") {
                continue;
            }
            let at = format!("{}:{}", markdown::shown(&file), block.line);
            let fragment = match block.marker.as_deref() {
                Some("config") => false,
                Some("fragment") => true,
                Some(m) if m.starts_with("none") => continue,
                other => {
                    wrong.push(format!(
                        "{at}: a YAML block needs <!-- check: config | fragment | none, <why> --> on the line before it (found {other:?})"
                    ));
                    continue;
                }
            };
            checked += 1;
            if let Err(e) = check(&block.text, fragment) {
                wrong.push(format!("{at}: {e}"));
            }
        }
    }
    assert!(wrong.is_empty(), "docs' configs:\n{}", wrong.join("\n"));
    assert!(checked >= 5, "only {checked} config blocks found");
}

/// The demo's `/metrics` page.
async fn demo_metrics() -> String {
    let (_demo, base) = common::start_demo().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        // Once the demo has reconciled, every family is there.
        let ready = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            let page = http.get(format!("{base}/metrics")).send().await.unwrap();
            return page.text().await.unwrap();
        }
        assert!(Instant::now() < until, "the demo did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each `route53_failover_…` word of `text` (a trailing `_` or `*`
/// kept: a prefix).
fn metric_names(text: &str) -> Vec<String> {
    const PREFIX: &str = "route53_failover_";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '*')
            .collect();
        rest = &rest[at + word.len()..];
        out.push(word);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_docs_name_is_one_the_daemon_shows() {
    let families: BTreeSet<String> = route53_failover::metrics::Metrics::new()
        .families()
        .iter()
        .cloned()
        .collect();
    // The registry's list is the page's: every family the demo shows
    // (but the process collector's) is in it.
    let page = demo_metrics().await;
    let shown: BTreeSet<String> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with("route53_failover_"))
        .map(String::from)
        .collect();
    assert!(shown.len() > 20, "{page}");
    let unlisted: Vec<&String> = shown.difference(&families).collect();
    assert!(
        unlisted.is_empty(),
        "on /metrics, not in Metrics::families: {unlisted:?}"
    );
    let known = |name: &str| {
        if let Some(prefix) = name
            .strip_suffix('*')
            .or(name.ends_with('_').then_some(name))
        {
            return families.iter().any(|f| f.starts_with(prefix));
        }
        families.contains(name)
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.strip_suffix(s).is_some_and(|f| families.contains(f)))
    };
    let mut wrong = BTreeSet::new();
    let mut named = 0;
    for file in markdown::files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for name in metric_names(line) {
                named += 1;
                if !known(&name) {
                    wrong.insert(format!("{}:{}: {name}", markdown::shown(&file), n + 1));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "metrics the docs name that the daemon does not have:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(named > 20, "only {named} metric names found");
    // And the other way: the metrics page lists every family.
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
            .unwrap();
    let listed: BTreeSet<String> = page.lines().flat_map(metric_names).collect();
    let missing: Vec<&String> = families.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "docs/metrics.md does not list: {missing:?}"
    );
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let (mut checked, mut wrong) = (0, Vec::new());
    for file in markdown::files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for (n, line) in markdown::prose(&text) {
            for target in markdown::links(&line) {
                if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                    continue;
                }
                checked += 1;
                let at = format!("{}:{n}: {target}", markdown::shown(&file));
                let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !linked.exists() {
                    wrong.push(format!("{at}: no such file"));
                    continue;
                }
                if anchor.is_empty() || linked.extension().is_none_or(|e| e != "md") {
                    continue;
                }
                let linked_text = std::fs::read_to_string(&linked).unwrap();
                if !markdown::anchors(&linked_text).iter().any(|a| a == anchor) {
                    wrong.push(format!("{at}: no heading makes #{anchor}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "links that do not resolve:\n{}",
        wrong.join("\n")
    );
    assert!(checked > 50, "only {checked} links found");
}
