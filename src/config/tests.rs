use super::*;
use crate::provider::RecordType;

fn errors(text: &str) -> Vec<String> {
    match parse(text, Path::new(".")) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const BASE: &str = r#"
owner: prod
provider: {kind: memory, zones: [example.test]}
defaults:
  probe: {interval: 2s, timeout: 1s, rise: 2, fall: 3, headers: {X-Env: prod}}
  policy: {min_healthy: 1}
records:
  - name: API.example.test.
    zone: example.test
    probe: {url: "https://api.example.test/health", expect: {status: [200, 204]}}
    regions:
      - region: us-east-1
        target: {values: [192.0.2.10]}
        probe: {connect_to: "127.0.0.1:8443", interval: 500ms, timeout: 200ms, headers: {X-Region: use1}}
      - region: eu-west-1
        set_identifier: api-euw1
        target: {alias: {dns_name: d-abc.execute-api.eu-west-1.amazonaws.com., hosted_zone_id: Z2IFOLAFXWLO4F}}
        probe: {expect: {body_contains: ok}}
"#;

#[test]
fn defaults_record_and_member_settings_merge() {
    let c = parse(BASE, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let r = &c.records[0];
    assert_eq!(
        r.name, "api.example.test",
        "names are lower case without the dot"
    );
    assert_eq!((r.ttl, r.min_healthy, &r.rtype), (60, 1, &RecordType::A));
    let use1 = &r.members[0];
    assert_eq!(
        use1.set_identifier, "us-east-1",
        "the set identifier defaults to the region"
    );
    assert_eq!(use1.probe.interval, Duration::from_millis(500));
    assert_eq!(use1.probe.rise, 2);
    assert_eq!(use1.probe.connect_to, Some(("127.0.0.1".into(), 8443)));
    let names: Vec<&str> = use1.probe.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["x-env", "x-region"],
        "header maps merge by name"
    );
    assert_eq!(use1.probe.expect_status, vec![200, 204]);
    let euw1 = &r.members[1];
    assert_eq!(euw1.probe.interval, Duration::from_secs(2));
    assert_eq!(
        euw1.probe.expect_status,
        vec![200, 204],
        "expect merges field by field"
    );
    assert_eq!(euw1.probe.body_contains.as_deref(), Some("ok"));
    match &euw1.target {
        Target::Alias(a) => assert_eq!(a.dns_name, "d-abc.execute-api.eu-west-1.amazonaws.com"),
        t => panic!("{t:?}"),
    }
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let text = r#"
owner: "bad owner!"
listen: nowhere
provider: {kind: memory, zones: [example.test], colour: blue}
resync_interval: soon
records:
  - name: api.example.test
    zone: other.test
    type: MX
    regions:
      - region: us-east-1
        target: {values: [192.0.2.10]}
        probe: {url: "ftp://x", interval: 0s, rise: 11, intervl: 2s}
      - region: mars-north-1
        target: {cname: x.example.net}
        probe: {url: "http://api.example.test/", timeout: 3s}
"#;
    let errs = errors(text);
    let want = [
        "owner: \"bad owner!\" must be 1-64 characters",
        "listen: \"nowhere\" is not an address:port",
        "provider.colour: unknown key",
        "records[0].regions[0].probe.intervl: unknown key",
        "resync_interval: \"soon\" is not a duration",
        "records[0].zone: \"other.test\" is not a suffix of the record name \"api.example.test\"",
        "records[0].type: \"MX\" must be A, AAAA or CNAME",
        "records[0].regions[0].probe.url: \"ftp://x\" must be an http:// or https:// URL",
        "records[0].regions[0].probe.interval: \"0s\" must be at least 100ms",
        "records[0].regions[0].probe.rise: 11 must be between 1 and 10",
        "records[0].regions[1].region: \"mars-north-1\" is not a Route53 latency region",
        "records[0].regions[1].probe.timeout: 3s must be shorter than the interval (2s)",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in:\n{}",
            errs.join("\n")
        );
    }
}

#[test]
fn a_type_error_names_its_key_path() {
    let errs = errors(
        "owner: x\nprovider: {kind: memory, zones: [a.test]}\nrecords:\n  - name: a.test\n    ttl: [1]\n",
    );
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("records[0].ttl: invalid type"),
        "{errs:?}"
    );
}

#[test]
fn interpolation_reads_env_and_files_and_reports_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    // SAFETY of the test: a name no other test reads or writes.
    std::env::set_var("R53F_TEST_TENANT", "t-9q7z");
    let text = BASE.replace(
        "headers: {X-Env: prod}",
        "headers: {Authorization: \"Bearer ${file:token}\", X-Tenant: \"${env:R53F_TEST_TENANT}\"}",
    )
    .replace("  policy:", "  health_check: {resource_path: /ping}\n  policy:");
    let c = parse(&text, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let h = &c.records[0].members[1].probe.headers;
    assert_eq!(h[0].value().unwrap().to_str().unwrap(), "Bearer s3cret");
    assert!(h[0].value().unwrap().is_sensitive());
    assert_eq!(h[1].value().unwrap().to_str().unwrap(), "t-9q7z");
    assert!(
        !format!("{:?}", c).contains("s3cret") && !format!("{:?}", c).contains("t-9q7z"),
        "Debug output never shows a secret"
    );
    // A rotated Secret: the file is replaced (a new inode, as Kubernetes
    // swaps the mount's symlink) and the header follows it, no reload.
    let next = dir.path().join("token.next");
    std::fs::write(&next, "n3w\n").unwrap();
    std::fs::rename(&next, dir.path().join("token")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(h[0].value().unwrap().to_str().unwrap(), "Bearer n3w");
    // Gone for a moment (the swap under way): the last value stays.
    std::fs::remove_file(dir.path().join("token")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(h[0].value().unwrap().to_str().unwrap(), "Bearer n3w");

    let text = BASE.replace(
        "headers: {X-Env: prod}",
        "headers: {Authorization: \"${file:missing}\", X-Tenant: \"${env:R53F_TEST_UNSET_VAR}\"}",
    );
    let errs = parse(&text, dir.path()).unwrap_err().to_string();
    assert!(
        errs.contains("headers.Authorization: ${file:missing}: "),
        "{errs}"
    );
    assert!(
        errs.contains("the variable R53F_TEST_UNSET_VAR is not set"),
        "{errs}"
    );
}

#[test]
fn a_single_member_record_is_a_warning_not_an_error() {
    let text = "owner: x\nprovider: {kind: memory, zones: [a.test]}\nrecords:\n  - name: a.test\n    zone: a.test\n    regions:\n      - {region: us-east-1, target: {values: [192.0.2.1]}, probe: {url: \"http://a.test/\"}}\n";
    let c = parse(text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("single region"));
}

#[test]
fn health_checks_merge_and_are_validated_against_route53s_rules() {
    let text = BASE.replace(
        "  policy:",
        "  health_check: {request_interval: 10, regions: [us-west-2, us-east-1, eu-west-1]}\n  policy:",
    );
    let text = text.replace(
        "probe: {expect: {body_contains: ok}}",
        "probe: {expect: {body_contains: ok}}\n        health_check: {failure_threshold: 5, measure_latency: true}",
    );
    let c = parse(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let r = &c.records[0];
    let use1 = r.members[0].health_check.as_ref().unwrap();
    assert_eq!((use1.request_interval, use1.failure_threshold), (10, 3));
    assert_eq!(
        use1.regions,
        ["eu-west-1", "us-east-1", "us-west-2"],
        "sorted"
    );
    assert!(!use1.measure_latency);
    let euw1 = r.members[1].health_check.as_ref().unwrap();
    assert_eq!((euw1.request_interval, euw1.failure_threshold), (10, 5));
    assert!(euw1.measure_latency);

    let off = BASE.replace("  policy:", "  health_check: {enabled: false}\n  policy:");
    let c = parse(&off, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.records[0]
        .members
        .iter()
        .all(|m| m.health_check.is_none()));

    let bad = BASE.replace(
        "  policy:",
        "  health_check: {request_interval: 20, failure_threshold: 11, regions: [us-east-1, mars-1], resource_path: health}\n  policy:",
    );
    let errs = errors(&bad);
    for want in [
        "records[0].regions[0].health_check.request_interval: 20 must be 10 or 30",
        "records[0].regions[0].health_check.failure_threshold: 11 must be between 1 and 10",
        "records[0].regions[0].health_check.regions: lists 2 region(s); Route53 needs at least 3",
        "records[0].regions[0].health_check.regions[1]: \"mars-1\" is not a Route53 health checker region",
        "records[0].regions[0].health_check.resource_path: \"health\" must start with /",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(want)), "missing {want:?} in:\n{}", errs.join("\n"));
    }
}

#[test]
fn a_probe_with_credentials_needs_a_health_check_path_that_answers_without_them() {
    let text = BASE.replace(
        "headers: {X-Env: prod}",
        "headers: {Authorization: Bearer x}",
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e
                .starts_with("records[0].regions[0].health_check: the probe sends credentials")),
        "{errs:?}"
    );
    let fixed = text.replace(
        "  policy:",
        "  health_check: {resource_path: /ping}\n  policy:",
    );
    parse(&fixed, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn ha_is_off_by_default_and_its_defaults_name_the_lease_in_the_records_zone() {
    let c = parse(BASE, Path::new(".")).unwrap();
    assert_eq!(c.ha, None);
    let text = format!("{BASE}ha: {{enabled: true}}\n");
    let ha = parse(&text, Path::new(".")).unwrap().ha.unwrap();
    assert_eq!(ha.zone, "example.test");
    assert_eq!(ha.lease_name, "_route53-failover-lease.example.test");
    assert_eq!(
        (ha.lease_duration, ha.renew_every, ha.max_clock_drift),
        (
            Duration::from_secs(30),
            Duration::from_secs(10),
            Duration::from_secs(1)
        )
    );
    assert!(!ha.identity.is_empty(), "the hostname");
    std::env::set_var("R53F_TEST_POD_NAME", "route53-failover-7c9f-x2");
    let text = format!(
        "{BASE}ha: {{enabled: true, identity: \"${{env:R53F_TEST_POD_NAME}}\", lease_name: Lease.Example.Test.}}\n"
    );
    let ha = parse(&text, Path::new(".")).unwrap().ha.unwrap();
    assert_eq!(ha.identity, "route53-failover-7c9f-x2");
    assert_eq!(ha.lease_name, "lease.example.test");
}

#[test]
fn a_region_is_one_latency_record_of_its_name_and_type_across_entries() {
    let text = format!(
        "{BASE}  - name: api.example.test\n    zone: example.test\n    probe: {{url: \"https://api.example.test/health\"}}\n    regions:\n      \
         - {{region: us-east-1, set_identifier: api-use1-b, target: {{values: [192.0.2.11]}}}}\n      \
         - {{region: ap-south-1, set_identifier: api-aps1, target: {{values: [192.0.2.12]}}}}\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("records[1].regions[0].region: \"us-east-1\" is already a region of api.example.test A in records[0]"),
        "{errs:?}"
    );
    // Another type of the same name is another record set.
    let aaaa = text
        .replace(
            "  - name: api.example.test\n    zone",
            "  - name: api.example.test\n    type: AAAA\n    zone",
        )
        .replace("[192.0.2.11]", "[\"2001:db8::11\"]")
        .replace("[192.0.2.12]", "[\"2001:db8::12\"]");
    parse(&aaaa, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
}

const RC: &str =
    "arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/use1";

#[test]
fn the_lever_is_off_unless_configured_and_defaults_to_switches() {
    let c = parse(BASE, Path::new(".")).unwrap();
    assert!(c.lever.is_none());
    assert!(c.records[0]
        .members
        .iter()
        .all(|m| m.routing_control.is_none()));
    let text = BASE.replace(
        "        target: {values: [192.0.2.10]}\n",
        &format!("        target: {{values: [192.0.2.10]}}\n        routing_control: \"{RC}\"\n"),
    ) + "routing_control:\n  cluster_endpoints:\n    - {url: \"https://host-aaaaaa.us-west-2.example.aws\", region: us-west-2}\n";
    let c = parse(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let lever = c.lever.as_ref().unwrap();
    assert_eq!(lever.mode, LeverMode::Switches);
    assert_eq!(lever.call_timeout, Duration::from_millis(800));
    assert!(!lever.allow_safety_override);
    assert_eq!(c.records[0].members[0].routing_control.as_deref(), Some(RC));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("only three are sure to answer")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn lever_errors_name_the_key_and_the_value() {
    let member = |arn: &str| {
        BASE.replace(
            "        target: {values: [192.0.2.10]}\n",
            &format!(
                "        target: {{values: [192.0.2.10]}}\n        routing_control: \"{arn}\"\n"
            ),
        )
    };
    // A switch without the section.
    let e = errors(&member(RC));
    assert!(
        e.iter()
            .any(|e| e.starts_with("records[0].regions[0].routing_control: ")
                && e.contains(RC)
                && e.contains("top-level routing_control")),
        "{e:?}"
    );
    // Not an ARN of a routing control.
    let e = errors(&member("arn:aws:route53:::healthcheck/abc"));
    assert!(
        e.iter().any(|e| e.starts_with("records[0].regions[0].routing_control: \"arn:aws:route53:::healthcheck/abc\" is not a routing control ARN")),
        "{e:?}"
    );
    let text = member(RC)
        + "routing_control:\n  cluster_endpoints: [{url: \"ftp://x\", region: west}]\n  mode: records\n  call_timeout: 0s\n  max_requests_per_second: 0\n";
    let e = errors(&text);
    for want in [
        "routing_control.cluster_endpoints[0].url: \"ftp://x\" is not an http(s) URL",
        "routing_control.cluster_endpoints[0].region: \"west\" is not an AWS region",
        "routing_control.mode: \"records\" is not switches or switches_and_records",
        "routing_control.call_timeout: ",
        "routing_control.max_requests_per_second: 0 must be a number above 0",
    ] {
        assert!(
            e.iter().any(|e| e.starts_with(want)),
            "{want} missing from {e:?}"
        );
    }
}

#[test]
fn practice_merges_the_defaults_and_names_each_bad_key() {
    use crate::decide::practice::Window;
    let with = |defaults: &str, own: &str, rest: &str| {
        BASE.replace(
            "  policy: {min_healthy: 1}\n",
            &format!("  policy: {{min_healthy: 1}}\n  practice: {defaults}\n"),
        )
        .replace(
            "    zone: example.test\n",
            &format!("    zone: example.test\n    practice: {own}\n"),
        ) + rest
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "a-token-of-sixteen-characters-or-more").unwrap();
    let ready = format!(
        "admin: {{token_file: \"{}\"}}\nstate_store: {{kind: memory}}\n",
        token.display()
    );
    let ready = ready.as_str();
    let c = parse(
        &with(
            "{every: 2h, windows: [\"Tue 09:00-11:00\"]}",
            "{duration: 10m}",
            ready,
        ),
        Path::new("."),
    )
    .unwrap();
    let s = c.records[0].practice.as_ref().expect("practises");
    assert_eq!(
        (s.every, s.duration, s.windows.clone()),
        (
            Duration::from_secs(7200),
            Duration::from_secs(600),
            vec![Window::parse("Tue 09:00-11:00").unwrap()]
        )
    );
    // A record turns the defaults' off.
    let c = parse(&with("{}", "{enabled: false}", ready), Path::new(".")).unwrap();
    assert_eq!(c.records[0].practice, None);
    // Each bad value names where it was written.
    let e = errors(&with(
        "{every: 10m, windows: [\"Mon 11:00-09:00\"], blocked_dates: [12/24]}",
        "{duration: 2s}",
        ready,
    ));
    for (key, says) in [
        ("defaults.practice.every", "\"10m\" must be at least 1h"),
        ("defaults.practice.windows[0]", "is not before"),
        ("defaults.practice.blocked_dates[0]", "is not a date"),
        (
            "records[0].practice.duration",
            "\"2s\" must be between 5s and 1day",
        ),
    ] {
        assert!(
            e.iter().any(|m| m.contains(key) && m.contains(says)),
            "{key}: {says} in {e:?}"
        );
    }
    let e = errors(&with("{every: 1h}", "{duration: 2h}", ready));
    assert!(
        e.iter()
            .any(|m| m.contains("records[0].practice.duration") && m.contains("longer than every")),
        "{e:?}"
    );
    // A query is whole: each missing or wrong key named.
    let e = errors(&with(
        "{query: {url: prometheus:9090, every: 100ms}}",
        "{}",
        ready,
    ));
    for (key, says) in [
        ("defaults.practice.query.url", "is not an http(s) URL"),
        ("defaults.practice.query.expr", "missing (required)"),
        ("defaults.practice.query.max", "missing (required)"),
        ("defaults.practice.query.every", "must be at least 1s"),
    ] {
        assert!(
            e.iter().any(|m| m.contains(key) && m.contains(says)),
            "{key}: {says} in {e:?}"
        );
    }
    // A run is a drain with its history in the store: both are needed.
    let e = errors(&with("{}", "{}", ""));
    assert!(
        e.iter()
            .any(|m| m.contains("records[0].practice: needs admin")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("records[0].practice: needs state_store")),
        "{e:?}"
    );
}

#[test]
fn traffic_is_off_unless_configured_and_names_each_bad_key() {
    let c = parse(BASE, Path::new(".")).unwrap();
    assert_eq!(c.traffic, None);
    let on = format!("{BASE}traffic: {{}}\n");
    let c = parse(&on, Path::new(".")).unwrap();
    let t = c.traffic.expect("on");
    assert_eq!((t.within_ttls, t.period), (5, Duration::from_secs(60)));
    // A member with a literal target and no API says it is not measured.
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("us-east-1 is not measured")),
        "{:?}",
        c.warnings
    );
    let bad = format!("{BASE}traffic: {{within_ttls: 0, period: 1500ms, endpoint_url: \"::\"}}\n");
    let e = errors(&bad);
    for (key, says) in [
        ("traffic.within_ttls", "0 must be between 1 and 100"),
        ("traffic.period", "must be a whole number of seconds"),
        ("traffic.endpoint_url", "\"::\""),
    ] {
        assert!(
            e.iter().any(|m| m.contains(key) && m.contains(says)),
            "{key}: {says} in {e:?}"
        );
    }
    let member = BASE.replace(
        "        target: {values: [192.0.2.10]}\n",
        "        target: {values: [192.0.2.10]}\n        traffic: {api_id: abc}\n",
    );
    let e = errors(&format!("{member}traffic: {{}}\n"));
    assert!(
        e.iter()
            .any(|m| m.contains("records[0].regions[0].traffic.stage: missing")),
        "{e:?}"
    );
}
