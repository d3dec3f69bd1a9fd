use super::*;
use proptest::prelude::*;

fn drain(record: &str, region: &str, force: bool) -> Scope {
    Scope::Drain {
        record: record.into(),
        rtype: "A".into(),
        set_identifier: region.into(),
        region: region.into(),
        force,
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn a_control_reads_back_from_its_record() {
    let long = "maintenance window: \"db failover\" — see INC-42; ".repeat(4);
    let cases = [
        Control::new(
            drain("api.example.com", "eu-west-1", false),
            "alice",
            "patching",
            at(1_000),
            Duration::from_secs(7200),
        ),
        Control::new(
            drain("api.example.com", "us-east-1", true),
            "bob smith",
            &long,
            at(5),
            Duration::from_secs(1),
        ),
        Control::new(
            Scope::Freeze { record: None },
            "carol",
            "incident 7",
            at(9),
            DEFAULT_FOR,
        ),
        Control::new(
            Scope::Freeze {
                record: Some("api.example.com".into()),
            },
            "d",
            "console edit",
            at(9),
            MAX_FOR,
        ),
    ];
    for c in cases {
        let record = c.to_record("example.com");
        assert_eq!(
            record.name,
            format!("{}._route53-failover-controls.example.com", c.label())
        );
        for v in &record.values {
            assert!(v.len() <= TXT_MAX, "a TXT string over 255: {v}");
            let inner = v.trim_matches('"');
            assert!(
                inner.chars().all(|ch| ch.is_ascii_graphic() || ch == ' ')
                    && !inner.contains(['"', '\\']),
                "needs escaping in TXT: {v}"
            );
        }
        assert_eq!(Control::parse(&record), Some(c));
    }
}

#[test]
fn a_long_reason_spans_several_strings() {
    let c = Control::new(
        drain("a.example.com", "eu-west-1", false),
        "x",
        &"é".repeat(200),
        at(1),
        DEFAULT_FOR,
    );
    let mut record = c.to_record("example.com");
    assert!(record.values.len() > 2, "{:?}", record.values);
    assert!(record.values.iter().all(|v| v.len() <= 255));
    assert_eq!(Control::parse(&record).unwrap().reason, "é".repeat(200));
    // Route53 keeps the strings as a set: any order reads the same.
    record.values.reverse();
    assert_eq!(Control::parse(&record), Some(c.clone()));
    record.values.rotate_left(1);
    assert_eq!(Control::parse(&record), Some(c.clone()));
    // A chunk missing: not a control (never half of one).
    record.values.pop();
    assert_eq!(Control::parse(&record), None);
    // One written before chunks were numbered still reads.
    let line = c
        .to_record("example.com")
        .values
        .iter()
        .map(|v| {
            let s = v.trim_matches('"');
            let rest = s.splitn(3, ' ').nth(2).unwrap();
            rest.to_string()
        })
        .collect::<String>();
    let legacy = format!("route53-failover-control {line}");
    let (head, tail) = legacy.split_at(200);
    record.values = vec![format!("\"{head}\""), format!("\"{tail}\"")];
    assert_eq!(Control::parse(&record), Some(c));
}

#[test]
fn a_control_is_checked_against_the_readers_clock_on_arrival() {
    let c = Control::new(
        Scope::Freeze { record: None },
        "a",
        "b",
        at(1000),
        Duration::from_secs(600),
    );
    assert_eq!(c.admit(at(1000), true), Ok(()));
    assert_eq!(c.admit(at(1599), true), Ok(()));
    // Made by a clock 20 min behind: ended before it arrived.
    let late = c.admit(at(1600), true).unwrap_err();
    assert!(
        late.contains("already ended") && late.contains("behind"),
        "{late}"
    );
    // Read first after a restart: it may simply have ended meanwhile.
    assert_eq!(c.admit(at(1600), false), Ok(()));
    // Made by a clock 10 min ahead, whenever it is read.
    let early = c.admit(at(400), false).unwrap_err();
    assert!(early.contains("600s ahead"), "{early}");
    // A few minutes of skew are taken as they come.
    assert_eq!(c.admit(at(800), true), Ok(()));
}

#[test]
fn other_records_are_not_controls() {
    let c = Control::new(Scope::Freeze { record: None }, "a", "b", at(1), DEFAULT_FOR);
    let mut record = c.to_record("example.com");
    record.values = vec!["\"route53-failover-lease holder=a term=1 expires=5\"".into()];
    assert_eq!(Control::parse(&record), None);
    record.values = vec!["\"route53-failover-control kind=reboot&at=1&until=2\"".into()];
    assert_eq!(Control::parse(&record), None);
    record.values = vec!["\"route53-failover-control 1/1 kind=reboot&at=1&until=2\"".into()];
    assert_eq!(Control::parse(&record), None);
    let mut a = c.to_record("example.com");
    a.rtype = RecordType::A;
    assert_eq!(Control::parse(&a), None);
}

#[test]
fn one_name_per_subject() {
    let a = Control::new(
        drain("api.example.com", "eu-west-1", false),
        "a",
        "x",
        at(1),
        DEFAULT_FOR,
    );
    let again = Control::new(
        drain("api.example.com", "eu-west-1", true),
        "b",
        "y",
        at(2),
        MAX_FOR,
    );
    let other = Control::new(
        drain("api.example.com", "us-east-1", false),
        "a",
        "x",
        at(1),
        DEFAULT_FOR,
    );
    assert_eq!(
        a.label(),
        again.label(),
        "force and who do not change the subject"
    );
    assert_ne!(a.label(), other.label());
    let all = Control::new(Scope::Freeze { record: None }, "a", "x", at(1), DEFAULT_FOR);
    let one = Control::new(
        Scope::Freeze {
            record: Some("api.example.com".into()),
        },
        "a",
        "x",
        at(1),
        DEFAULT_FOR,
    );
    assert_eq!(all.label(), "freeze-all");
    assert_ne!(one.label(), all.label());
    let mut set = Controls::default();
    set.put(a);
    set.put(again.clone());
    set.put(other);
    assert_eq!(set.0.len(), 2);
    assert_eq!(
        set.drain("api.example.com", "A", "eu-west-1", at(3)),
        Some(&again)
    );
}

#[test]
fn controls_end_by_themselves() {
    let mut set = Controls::default();
    set.put(Control::new(
        drain("api.example.com", "eu-west-1", false),
        "a",
        "x",
        at(100),
        Duration::from_secs(60),
    ));
    set.put(Control::new(
        Scope::Freeze {
            record: Some("api.example.com".into()),
        },
        "a",
        "x",
        at(100),
        Duration::from_secs(30),
    ));
    // (now, drained, api frozen, other frozen, next end)
    let cases = [
        (99, true, true, false, Some(130)),
        (129, true, true, false, Some(130)),
        (130, true, false, false, Some(160)),
        (159, true, false, false, Some(160)),
        (160, false, false, false, None),
    ];
    for (now, drained, frozen, other, end) in cases {
        let now = at(now);
        assert_eq!(
            set.drain("api.example.com", "A", "eu-west-1", now)
                .is_some(),
            drained,
            "{now:?}"
        );
        assert_eq!(
            set.freeze("api.example.com", now).is_some(),
            frozen,
            "{now:?}"
        );
        assert_eq!(
            set.freeze("www.example.com", now).is_some(),
            other,
            "{now:?}"
        );
        assert_eq!(set.next_end(now), end.map(at), "{now:?}");
    }
    set.put(Control::new(
        Scope::Freeze { record: None },
        "a",
        "x",
        at(200),
        Duration::from_secs(10),
    ));
    assert!(
        set.freeze("www.example.com", at(205)).is_some(),
        "a freeze of all holds every record"
    );
    assert!(
        set.drain("api.example.com", "AAAA", "eu-west-1", at(101))
            .is_none(),
        "another type"
    );
}

#[test]
fn input_is_checked_with_the_field_named() {
    let ok = Duration::from_secs(60);
    assert!(Control::check_input("alice", "patching", ok).is_ok());
    let cases = [
        ("", "r", ok, "by:"),
        (&*"x".repeat(65), "r", ok, "by:"),
        ("a", " ", ok, "reason:"),
        ("a", &*"r".repeat(201), ok, "reason:"),
        ("a", "r", Duration::ZERO, "for:"),
        ("a", "r", MAX_FOR + Duration::from_secs(1), "for:"),
    ];
    for (by, reason, lasts, field) in cases {
        let e = Control::check_input(by, reason, lasts).unwrap_err();
        assert!(e.starts_with(field), "{e}");
    }
}

proptest! {
    /// Whatever on-call writes as who and why reads back the same.
    #[test]
    fn any_text_round_trips(by in "\\PC{1,64}", reason in "\\PC{1,200}", secs in 1u64..604_800, force: bool) {
        let c = Control::new(drain("api.example.com", "eu-west-1", force), &by, &reason, at(1_700_000_000), Duration::from_secs(secs));
        let record = c.to_record("example.com");
        prop_assert!(record.values.iter().all(|v| v.len() <= TXT_MAX));
        prop_assert_eq!(Control::parse(&record), Some(c));
    }
}
