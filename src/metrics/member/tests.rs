use super::*;

fn sample(record: &'static str, region: &'static str) -> MemberSample<'static> {
    MemberSample {
        labels: MemberLabels {
            record,
            rtype: "A",
            region,
        },
        healthy: true,
        published: true,
        conflict: false,
        damped: false,
        drained: false,
        route53_healthy: None,
        cert_not_after: None,
        views: None,
        counters: MemberCounters::default(),
    }
}

fn lines<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    page.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .collect()
}

#[test]
fn every_member_has_its_verdict_and_record_and_nothing_it_has_not_earned() {
    let mut a = sample("api.example.test", "us-east-1");
    a.counters.probed(None, Duration::from_millis(250));
    a.counters
        .probed(Some(FailureKind::Timeout), Duration::from_millis(500));
    a.counters
        .verdict_changed(Verdict::Unknown, Verdict::Healthy);
    a.counters
        .verdict_changed(Verdict::Healthy, Verdict::Unhealthy);
    a.counters
        .verdict_changed(Verdict::Unhealthy, Verdict::Healthy);
    let mut b = sample("api.example.test", "eu-west-1");
    b.healthy = false;
    b.conflict = true;
    b.route53_healthy = Some(false);
    let mut page = String::new();
    write_families(&mut page, &[a, b]);

    assert_eq!(
        lines(&page, "route53_failover_member_healthy"),
        [
            "route53_failover_member_healthy{record=\"api.example.test\",type=\"A\",region=\"us-east-1\"} 1",
            "route53_failover_member_healthy{record=\"api.example.test\",type=\"A\",region=\"eu-west-1\"} 0",
        ]
    );
    // A flag that holds for one member is a series of that member only.
    assert_eq!(lines(&page, "route53_failover_member_conflict").len(), 1);
    assert_eq!(
        lines(&page, "route53_failover_route53_health_check_healthy").len(),
        1
    );
    // No member is damped: no family, not even its header.
    assert!(!page.contains("member_damped"));
    assert_eq!(
        lines(&page, "route53_failover_probes_total"),
        [
            "route53_failover_probes_total{record=\"api.example.test\",type=\"A\",region=\"us-east-1\",result=\"success\"} 1",
            "route53_failover_probes_total{record=\"api.example.test\",type=\"A\",region=\"us-east-1\",result=\"timeout\"} 1",
        ]
    );
    assert_eq!(
        lines(&page, "route53_failover_member_probe_seconds_total"),
        ["route53_failover_member_probe_seconds_total{record=\"api.example.test\",type=\"A\",region=\"us-east-1\"} 0.75"]
    );
    // The first verdict is not a change; a failure and its recovery are.
    assert_eq!(
        lines(&page, "route53_failover_verdict_changes_total"),
        [
            "route53_failover_verdict_changes_total{record=\"api.example.test\",type=\"A\",region=\"us-east-1\",to=\"healthy\"} 1",
            "route53_failover_verdict_changes_total{record=\"api.example.test\",type=\"A\",region=\"us-east-1\",to=\"unhealthy\"} 1",
        ]
    );
    // Each family is announced once, before its series.
    assert_eq!(
        page.matches("# TYPE route53_failover_probes_total counter")
            .count(),
        1
    );
    let header = page
        .find("# TYPE route53_failover_member_healthy gauge")
        .unwrap();
    assert!(header < page.find("route53_failover_member_healthy{").unwrap());
}

#[test]
fn label_values_are_escaped() {
    let s = sample("a\"b\\c\nd", "us-east-1");
    let mut page = String::new();
    write_families(&mut page, &[s]);
    assert!(page.contains(r#"record="a\"b\\c\nd""#), "{page}");
}

#[test]
fn every_failure_kind_has_its_own_count() {
    let mut c = MemberCounters::default();
    for (i, kind) in FailureKind::ALL.into_iter().enumerate() {
        for _ in 0..=i {
            c.probed(Some(kind), Duration::ZERO);
        }
    }
    for (i, kind) in FailureKind::ALL.into_iter().enumerate() {
        assert_eq!(c.probes(Some(kind)), i as u64 + 1, "{}", kind.as_str());
    }
    assert_eq!(c.probes(None), 0);
}
