//! Bad input through the binary: every `config/invalid/*.yaml` makes
//! `check` and `run` exit 2 and print each error its `# error:` lines name,
//! before any network call. The shipped examples are valid.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_route53-failover");

fn expected_errors(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# error: "))
        .collect()
}

#[test]
fn every_invalid_config_exits_2_with_its_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "the invalid configs are there");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let want = expected_errors(&text);
        assert!(!want.is_empty(), "{}: no `# error:` line", file.display());
        for command in ["check", "run"] {
            let out = Command::new(BIN)
                .args([command, "--config"])
                .arg(&file)
                .env_remove("R53F_SURELY_UNSET")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command} {}: {stderr}",
                file.display()
            );
            for w in &want {
                assert!(
                    stderr.lines().any(|l| l.starts_with(w)),
                    "{command} {}: missing {w:?} in:\n{stderr}",
                    file.display()
                );
            }
            assert!(
                out.stdout.is_empty(),
                "nothing started: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

#[test]
fn the_shipped_example_and_demo_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(root.join("config/example.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "config ok: owner api-example-com-prod, 1 record(s), 2 member(s), 1 zone(s), provider memory"
    );
}

#[test]
fn a_missing_file_and_bad_arguments_exit_2() {
    let out = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/c.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/c.yaml"));
    let out = Command::new(BIN).args(["run", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_config_error_never_echoes_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "hunter2-secret\u{7}").unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "owner: x\nprovider: {kind: memory, zones: [a.test]}\nrecords:\n  - name: a.test\n    zone: a.test\n    regions:\n      - {region: us-east-1, target: {values: [192.0.2.1]}, probe: {url: \"http://a.test/\", headers: {Authorization: \"${file:token}\"}}}\n      - {region: bogus-1, target: {values: [192.0.2.2]}, probe: {url: \"http://a.test/\"}}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("headers.Authorization: the value holds characters"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
