use super::*;
use crate::config::{parse, Config};
use std::path::Path;

fn config(member: &str) -> Config {
    let text = format!(
        r#"
owner: me
provider: {{kind: route53}}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {member}
      - {{region: eu-west-1, target: {{values: [192.0.2.2]}}, probe: {{url: "http://192.0.2.2:8080/health"}}}}
"#
    );
    parse(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn want_of(cfg: &Config, mi: usize, discovered: Option<&AliasTarget>) -> Option<HealthCheckConfig> {
    let m = &cfg.records[0].members[mi];
    desired(m, m.health_check.as_ref().unwrap(), discovered)
}

#[test]
fn an_api_gateway_member_is_checked_at_its_regional_target_with_its_probe_path() {
    let cfg = config(
        r#"{region: us-east-1, target: {api_gateway_domain: api.example.com},
            probe: {url: "https://api.example.com/v1/health?deep=1", expect: {body_contains: ok}, connect_to: "127.0.0.1:8443"},
            health_check: {request_interval: 10, failure_threshold: 2, regions: [us-west-2, us-east-1, eu-west-1], measure_latency: true}}"#,
    );
    assert_eq!(
        want_of(&cfg, 0, None),
        None,
        "not discovered yet: nothing to check"
    );
    let target = AliasTarget {
        dns_name: "d-abc.execute-api.us-east-1.amazonaws.com".into(),
        hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
        evaluate_target_health: false,
    };
    let c = want_of(&cfg, 0, Some(&target)).unwrap();
    assert_eq!(
        c,
        HealthCheckConfig {
            kind: HealthCheckType::HttpsStrMatch,
            ip_address: None,
            fqdn: Some("d-abc.execute-api.us-east-1.amazonaws.com".into()),
            port: 443,
            resource_path: "/v1/health?deep=1".into(),
            search_string: Some("ok".into()),
            request_interval: 10,
            failure_threshold: 2,
            measure_latency: true,
            enable_sni: true,
            regions: vec!["eu-west-1".into(), "us-east-1".into(), "us-west-2".into()],
            routing_control_arn: None,
            child_health_checks: Vec::new(),
            health_threshold: 0,
        }
    );
}

#[test]
fn an_ip_endpoint_is_checked_by_address_and_connect_to_keeps_the_name_as_host() {
    let cfg = config(
        r#"{region: us-east-1, target: {values: [192.0.2.1]},
            probe: {url: "https://api.example.com/health", connect_to: "192.0.2.1:8443"}}"#,
    );
    let c = want_of(&cfg, 0, None).unwrap();
    assert_eq!(c.kind, HealthCheckType::Https);
    assert_eq!(c.ip_address.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        c.fqdn.as_deref(),
        Some("api.example.com"),
        "Host header and SNI"
    );
    assert_eq!(c.port, 8443);
    assert_eq!(
        (c.request_interval, c.failure_threshold),
        (30, 3),
        "defaults"
    );
    assert!(!c.measure_latency);

    let plain = want_of(&cfg, 1, None).unwrap();
    assert_eq!(plain.kind, HealthCheckType::Http);
    assert_eq!(plain.ip_address.as_deref(), Some("192.0.2.2"));
    assert_eq!(plain.fqdn, None);
    assert_eq!(plain.port, 8080);
    assert!(!plain.enable_sni);
}

#[test]
fn overrides_replace_the_host_and_path() {
    let cfg = config(
        r#"{region: us-east-1, target: {api_gateway_domain: api.example.com},
            probe: {url: "https://api.example.com/health"},
            health_check: {fqdn: abc123.execute-api.us-east-1.amazonaws.com, resource_path: /ping}}"#,
    );
    let c = want_of(&cfg, 0, None).unwrap();
    assert_eq!(
        c.fqdn.as_deref(),
        Some("abc123.execute-api.us-east-1.amazonaws.com")
    );
    assert_eq!(c.resource_path, "/ping");
}

#[test]
fn references_are_stable_scoped_and_within_route53s_limit() {
    let cfg = config(
        r#"{region: us-east-1, target: {values: [192.0.2.1]}, probe: {url: "http://192.0.2.1/health"}}"#,
    );
    let r = &cfg.records[0];
    let zone = zone_prefix("me", "Z123");
    assert_eq!(zone, zone_prefix("me", "Z123"));
    assert_ne!(zone, zone_prefix("other", "Z123"));
    assert_ne!(zone, zone_prefix("me", "Z456"));
    let a = member_prefix(&zone, r, &r.members[0]);
    let b = member_prefix(&zone, r, &r.members[1]);
    assert!(a.starts_with(&zone) && b.starts_with(&zone) && a != b);
    let c = want_of(&cfg, 0, None).unwrap();
    let reference = caller_reference(&a, &c);
    assert!(reference.starts_with(&a));
    assert_eq!(reference, caller_reference(&a, &c), "deterministic");
    let mut other = c.clone();
    other.failure_threshold = 5;
    assert_ne!(
        reference,
        caller_reference(&a, &other),
        "settings are part of it"
    );
    // Room for the salt used after a deleted check's reference is refused.
    assert!(reference.len() + 12 <= 64, "{reference}");
}

fn check(id: &str, reference: &str, config: HealthCheckConfig) -> HealthCheck {
    HealthCheck {
        id: id.into(),
        caller_reference: reference.into(),
        version: 3,
        config,
    }
}

#[test]
fn steps_reuse_update_or_replace_a_members_check() {
    let cfg = config(
        r#"{region: us-east-1, target: {values: [192.0.2.1]}, probe: {url: "http://192.0.2.1/health"}}"#,
    );
    let r = &cfg.records[0];
    let zone = zone_prefix("me", "Z1");
    let prefix = member_prefix(&zone, r, &r.members[0]);
    let want = want_of(&cfg, 0, None).unwrap();
    let foreign = check("hc-foreign", "terraform-123", want.clone());

    // Nothing of ours: create (a foreign check with equal settings is not ours).
    let (s, keep) = step(
        std::slice::from_ref(&foreign),
        &prefix,
        &Want::Check(want.clone()),
        None,
    );
    assert_eq!(
        s,
        Step::Create {
            caller_reference: caller_reference(&prefix, &want),
            config: want.clone()
        }
    );
    assert!(keep.is_empty());

    // Ours and equal: use it; of two equal ones the referenced one wins.
    let ours = check("hc-1", &format!("{prefix}aaaa"), want.clone());
    let twin = check("hc-0", &format!("{prefix}bbbb"), want.clone());
    let owned = [twin.clone(), ours.clone(), foreign.clone()];
    let (s, keep) = step(&owned, &prefix, &Want::Check(want.clone()), Some("hc-1"));
    assert_eq!(s, Step::Use("hc-1".into()));
    assert_eq!(keep, vec!["hc-1".to_string()], "the twin is unused");

    // A mutable setting changed: update in place with the current version.
    let mut changed = want.clone();
    changed.failure_threshold = 7;
    let (s, keep) = step(
        std::slice::from_ref(&ours),
        &prefix,
        &Want::Check(changed.clone()),
        Some("hc-1"),
    );
    assert_eq!(
        s,
        Step::Update {
            id: "hc-1".into(),
            version: 3,
            config: changed
        }
    );
    assert_eq!(keep, vec!["hc-1".to_string()]);

    // An immutable one changed: a new check; the old one is left unused.
    let mut fast = want.clone();
    fast.request_interval = 10;
    let (s, keep) = step(
        std::slice::from_ref(&ours),
        &prefix,
        &Want::Check(fast.clone()),
        Some("hc-1"),
    );
    assert!(matches!(s, Step::Create { ref config, .. } if *config == fast));
    assert!(keep.is_empty());

    // Unknown keeps every check of the member; None detaches and keeps none.
    let (s, keep) = step(&owned, &prefix, &Want::Unknown, Some("hc-1"));
    assert_eq!((s, keep.len()), (Step::Keep, 2));
    let (s, keep) = step(&owned, &prefix, &Want::None, Some("hc-1"));
    assert_eq!((s, keep.len()), (Step::Detach, 0));
}

/// `health_check.existing` (an adopted record's own check): attached as it
/// is, whatever the member's own checks; those are not kept (they go once
/// nothing uses them), and the existing one is never made or updated.
#[test]
fn an_existing_check_is_attached_as_it_is_and_never_made() {
    let cfg = config(
        r#"{region: us-east-1, target: {values: [192.0.2.1]}, probe: {url: "http://192.0.2.1/health"},
            health_check: {existing: 0f5a3b2c-1111-4222-8333-444455556666}}"#,
    );
    let m = &cfg.records[0].members[0];
    assert!(m.health_check.is_none());
    let want = super::want(m, false, None);
    assert_eq!(
        want,
        Want::Existing("0f5a3b2c-1111-4222-8333-444455556666".into())
    );
    // A record someone else holds: still left as it is.
    assert_eq!(super::want(m, true, None), Want::Unknown);
    let prefix = "rf1-me-x-";
    let ours = check(
        "hc-ours",
        &format!("{prefix}old"),
        want_of(&cfg, 1, None).unwrap(),
    );
    let (s, keep) = step(&[ours], prefix, &want, Some("hc-ours"));
    assert_eq!(s, Step::Use("0f5a3b2c-1111-4222-8333-444455556666".into()));
    assert!(keep.is_empty(), "the member's own checks are not kept");
    // One of this owner's own checks named as existing (init run again on
    // a zone it manages) is kept, withdrawn or not: it is in use.
    let named = Want::Existing("hc-ours".into());
    let ours = check(
        "hc-ours",
        &format!("{prefix}old"),
        want_of(&cfg, 1, None).unwrap(),
    );
    let (s, keep) = step(&[ours], prefix, &named, None);
    assert_eq!(
        (s, keep),
        (Step::Use("hc-ours".into()), vec!["hc-ours".to_string()])
    );
}
