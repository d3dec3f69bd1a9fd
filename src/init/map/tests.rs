use std::path::Path;

use super::*;
use crate::provider::RecordSet;

fn alias(name: &str, id: &str, region: &str, dns: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        rtype: RecordType::A,
        set_identifier: Some(id.into()),
        region: Some(region.into()),
        ttl: None,
        values: vec![],
        alias: Some(AliasTarget {
            dns_name: dns.into(),
            hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
            evaluate_target_health: false,
        }),
        health_check_id: None,
    }
}

fn weighted(name: &str, id: &str) -> RecordSet {
    RecordSet {
        region: None,
        ..RecordSet::latency_a(name, id, "x", "203.0.113.7")
    }
}

const USE1: &str = "d-use1.execute-api.us-east-1.amazonaws.com";
const EUW1: &str = "d-euw1.execute-api.eu-west-1.amazonaws.com";

fn gateways(entries: &[(&str, &str, Gateway)]) -> Gateways {
    entries
        .iter()
        .map(|(r, d, g)| ((r.to_string(), d.to_string()), g.clone()))
        .collect()
}

fn opts() -> Options<'static> {
    Options {
        owner: "api-prod",
        zone: "example.test",
        provider: "kind: route53\nregion: us-east-1",
        probe_path: "/health",
        source: "zone example.test",
    }
}

/// The text must be a config the daemon takes.
fn valid(text: &str) -> crate::config::Config {
    crate::config::parse(text, Path::new("."))
        .unwrap_or_else(|e| panic!("not a valid config:\n{e}\n---\n{text}"))
}

#[test]
fn latency_sets_are_found_by_name_and_type_and_other_routing_is_kept_apart() {
    let records = vec![
        alias("api.example.test", "api-use1", "us-east-1", USE1),
        alias("api.example.test", "api-euw1", "eu-west-1", EUW1),
        weighted("www.example.test", "w1"),
        RecordSet::txt("api.example.test", vec!["\"x\"".into()]),
    ];
    let found = find(&records, None);
    assert_eq!(found.sets.len(), 1);
    assert_eq!(found.sets[0].members.len(), 2);
    assert_eq!(
        found.sets[0].members[0].region.as_deref(),
        Some("eu-west-1"),
        "sorted by region"
    );
    assert!(
        found.others.is_empty(),
        "www is another name: not ours to judge"
    );

    let mut with_weighted = records.clone();
    with_weighted.push(weighted("api.example.test", "w1"));
    let found = find(&with_weighted, Some("API.example.test."));
    assert_eq!(found.others.len(), 1, "a weighted set under the name");
    assert!(find(&records, Some("nothing.example.test")).sets.is_empty());
}

#[test]
fn api_gateway_endpoint_names_give_their_region() {
    let cases = [
        (USE1, Some("us-east-1")),
        (
            "abc.execute-api.eu-west-1.amazonaws.com.",
            Some("eu-west-1"),
        ),
        ("lb-1.eu-west-1.elb.amazonaws.com", None),
        ("x.execute-api..amazonaws.com", None),
        ("x.execute-api.a.b.amazonaws.com", None),
    ];
    for (name, want) in cases {
        assert_eq!(execute_api_region(name), want, "{name}");
    }
}

#[test]
fn checked_gateway_aliases_become_api_gateway_domains_and_the_config_is_valid() {
    let mut euw1 = alias("api.example.test", "api-euw1", "eu-west-1", EUW1);
    euw1.health_check_id = Some("hc-123".into());
    let found = find(
        &[
            alias("api.example.test", "api-use1", "us-east-1", USE1),
            euw1,
        ],
        None,
    );
    let gw = gateways(&[
        (
            "us-east-1",
            USE1,
            Gateway::Domain("api.example.test".into()),
        ),
        (
            "eu-west-1",
            EUW1,
            Gateway::Domain("api.example.test".into()),
        ),
    ]);
    let out = render(&found, &gw, &opts());
    assert_eq!(out.notes, Vec::<String>::new(), "{}", out.text);
    assert_eq!(out.adopted, 2);
    let config = valid(&out.text);
    assert_eq!(config.owner, "api-prod");
    let r = &config.records[0];
    assert_eq!(
        (r.name.as_str(), r.zone.as_str()),
        ("api.example.test", "example.test")
    );
    for m in &r.members {
        assert!(m.adopt);
        assert!(
            matches!(&m.target, crate::config::Target::ApiGateway { domain, evaluate_target_health: false } if domain == "api.example.test"),
            "{:?}",
            m.target
        );
        assert_eq!(m.probe.connect_to, None, "left to discovery");
        assert_eq!(m.probe.url.as_str(), "https://api.example.test/health");
    }
    let euw1 = r.members.iter().find(|m| m.region == "eu-west-1").unwrap();
    assert_eq!(euw1.existing_check.as_deref(), Some("hc-123"), "kept");
    assert!(euw1.health_check.is_none(), "no check of the daemon's own");
    let use1 = r.members.iter().find(|m| m.region == "us-east-1").unwrap();
    assert!(use1.health_check.is_none() && use1.existing_check.is_none());
    assert!(out
        .text
        .contains("Route53 health check hc-123: kept as it is"));
}

#[test]
fn values_cnames_and_other_aliases_stay_as_they_are_and_probe_their_own_endpoint() {
    let mut v6 = RecordSet::latency_a("v6.example.test", "use1", "us-east-1", "2001:db8::1");
    v6.rtype = RecordType::Aaaa;
    let mut v6b = v6.clone();
    v6b.set_identifier = Some("euw1".into());
    v6b.region = Some("eu-west-1".into());
    v6b.values = vec!["2001:db8::2".into()];
    let mut cname = RecordSet::latency_a("c.example.test", "1", "us-east-1", "use1.lb.example.net");
    cname.rtype = RecordType::Cname;
    cname.ttl = Some(300);
    let mut cname2 = cname.clone();
    cname2.set_identifier = Some("2".into());
    cname2.region = Some("eu-west-1".into());
    cname2.values = vec!["euw1.lb.example.net".into()];
    let elb = "dualstack.lb-1.eu-west-1.elb.amazonaws.com";
    let records = vec![
        v6,
        v6b,
        cname,
        cname2,
        RecordSet::latency_a("a.example.test", "use1", "us-east-1", "192.0.2.1"),
        alias("a.example.test", "euw1", "eu-west-1", elb),
    ];
    let out = render(&find(&records, None), &Gateways::new(), &opts());
    assert_eq!(out.notes, Vec::<String>::new(), "{}", out.text);
    assert_eq!(out.adopted, 6);
    let config = valid(&out.text);
    let record = |n: &str| config.records.iter().find(|r| r.name == n).unwrap();
    let c = record("c.example.test");
    assert_eq!(c.ttl, 300);
    assert_eq!(
        c.members[0].set_identifier, "2",
        "a numeric identifier stays a string"
    );
    assert_eq!(
        c.members[0].probe.connect_to,
        Some(("euw1.lb.example.net".into(), 443))
    );
    assert_eq!(
        record("v6.example.test").members[0].probe.connect_to,
        Some(("2001:db8::2".into(), 443))
    );
    let a = record("a.example.test");
    assert!(matches!(&a.members[0].target, crate::config::Target::Alias(t) if t.dns_name == elb));
    assert_eq!(a.members[0].probe.connect_to, Some((elb.into(), 443)));
}

#[test]
fn what_needs_a_decision_is_one_line_each_and_the_config_stays_valid() {
    let apse2 = "d-apse2.execute-api.ap-southeast-2.amazonaws.com";
    let records = vec![
        alias("api.example.test", "api-use1", "us-east-1", USE1),
        alias("api.example.test", "api-euw1", "eu-west-1", EUW1),
        alias("api.example.test", "api-apse2", "ap-southeast-2", apse2),
        weighted("api.example.test", "w1"),
    ];
    let gw = gateways(&[
        (
            "us-east-1",
            USE1,
            Gateway::Domain("api.example.test".into()),
        ),
        (
            "eu-west-1",
            EUW1,
            Gateway::Domain("api.example.test".into()),
        ),
        (
            "ap-southeast-2",
            apse2,
            Gateway::Unknown("no API Gateway custom domain in ap-southeast-2 has it".into()),
        ),
    ]);
    let out = render(&find(&records, None), &gw, &opts());
    assert_eq!(out.notes.len(), 2, "{:#?}", out.notes);
    assert!(out.notes[0].contains("\"w1\"") || out.notes[0].contains("w1"));
    assert!(out.notes[0].contains("not by latency"), "{}", out.notes[0]);
    assert!(
        out.notes[1].contains("api-apse2 (ap-southeast-2)")
            && out.notes[1].contains("commented out"),
        "{}",
        out.notes[1]
    );
    for n in &out.notes {
        assert!(!n.contains('\n'), "one line: {n}");
        assert!(out.text.contains(&format!("# - {n}")), "at the top too");
    }
    assert_eq!(out.adopted, 2);
    let config = valid(&out.text);
    assert_eq!(
        config.records[0].members.len(),
        2,
        "the undecided member is commented out"
    );

    // Every member undecided: the whole record is commented out, and the
    // rest of the config still stands.
    let mixed = vec![
        alias("api.example.test", "api-apse2", "ap-southeast-2", apse2),
        alias("api.example.test", "other", "us-east-1", EUW1),
        RecordSet::latency_a("b.example.test", "use1", "us-east-1", "192.0.2.1"),
        RecordSet::latency_a("b.example.test", "euw1", "eu-west-1", "192.0.2.2"),
    ];
    let out = render(&find(&mixed, None), &gw, &opts());
    assert_eq!(out.notes.len(), 2, "{:#?}", out.notes);
    assert!(
        out.notes[1].contains("a us-east-1 member aliased to eu-west-1's API Gateway"),
        "{}",
        out.notes[1]
    );
    let config = valid(&out.text);
    assert_eq!(config.records.len(), 1);
    assert_eq!(config.records[0].name, "b.example.test");

    // A region the config does not take for latency records yet.
    let far = vec![
        RecordSet::latency_a("c.example.test", "use1", "us-east-1", "192.0.2.1"),
        RecordSet::latency_a("c.example.test", "x", "xx-nowhere-9", "192.0.2.2"),
    ];
    let out = render(&find(&far, None), &gw, &opts());
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("xx-nowhere-9 is not a region")),
        "{:#?}",
        out.notes
    );
    assert_eq!(valid(&out.text).records[0].members.len(), 1);
}

#[test]
fn a_set_lacking_a_region_its_name_has_elsewhere_and_ttls_that_differ_are_said() {
    let mut aaaa = RecordSet::latency_a("api.example.test", "use1", "us-east-1", "2001:db8::1");
    aaaa.rtype = RecordType::Aaaa;
    let mut aaaa2 = aaaa.clone();
    aaaa2.set_identifier = Some("apse2".into());
    aaaa2.region = Some("ap-southeast-2".into());
    let mut a2 = RecordSet::latency_a("api.example.test", "euw1", "eu-west-1", "192.0.2.2");
    a2.ttl = Some(30);
    let records = vec![
        RecordSet::latency_a("api.example.test", "use1", "us-east-1", "192.0.2.1"),
        a2,
        aaaa,
        aaaa2,
    ];
    let out = render(&find(&records, None), &Gateways::new(), &opts());
    let joined = out.notes.join("\n");
    assert!(
        joined.contains("api.example.test A: no member in ap-southeast-2"),
        "{joined}"
    );
    assert!(
        joined.contains("api.example.test AAAA: no member in eu-west-1"),
        "{joined}"
    );
    assert!(joined.contains("differ in TTL (30, 60)"), "{joined}");
    valid(&out.text);
}

#[test]
fn scalars_read_back_as_the_same_string() {
    for s in [
        "api-use1",
        "1",
        "true",
        "on",
        "a b",
        "x: y",
        "[::1]:443",
        "-x",
        "ok.example.test",
    ] {
        let yaml = format!("v: {}", yaml_str(s));
        let v: std::collections::BTreeMap<String, String> =
            serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        assert_eq!(v["v"], s, "{yaml}");
        // In a flow sequence too, as values are written.
        let flow = format!("v: [{}]", yaml_str(s));
        let v: std::collections::BTreeMap<String, Vec<String>> =
            serde_yaml::from_str(&flow).unwrap_or_else(|e| panic!("{flow}: {e}"));
        assert_eq!(v["v"], [s], "{flow}");
    }
    assert_eq!(yaml_str("api-use1"), "api-use1", "plain stays bare");
}
