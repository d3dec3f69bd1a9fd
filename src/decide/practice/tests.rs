use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use super::*;

fn at(s: &str) -> SystemTime {
    humantime::parse_rfc3339(s).unwrap()
}

fn schedule(windows: &[&str], blocked: &[&str], minutes: u64) -> Schedule {
    Schedule {
        every: Duration::from_secs(7 * DAY_SECS),
        windows: windows.iter().map(|w| Window::parse(w).unwrap()).collect(),
        blocked: blocked.iter().map(|d| parse_date(d).unwrap()).collect(),
        duration: Duration::from_secs(minutes * 60),
        query: None,
    }
}

#[test]
fn windows_parse_or_say_what_is_wrong() {
    let w = Window::parse("Mon-Fri 09:00-11:30").unwrap();
    assert_eq!(
        (w.days, w.start, w.end),
        (0b1_1111, 9 * 3600, 11 * 3600 + 1800)
    );
    assert_eq!(Window::parse("Tue,Thu 00:00-24:00").unwrap().days, 0b1010);
    assert_eq!(Window::parse("10:00-12:00").unwrap().days, 0x7f);
    for (bad, says) in [
        ("Mon 11:00-09:00", "is not before"),
        ("Fri-Mon 09:00-10:00", "runs backwards"),
        ("Mo 09:00-10:00", "is not a day"),
        ("Mon 9-10", "is not a time of day"),
        ("Mon 09:00-24:30", "is not a time of day"),
        ("Mon 09:60-10:00", "is not a time of day"),
        ("Mon", "write [DAYS ]HH:MM-HH:MM"),
    ] {
        let e = Window::parse(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
    assert!(parse_date("2026-12-24").is_ok());
    assert!(parse_date("24.12.2026").unwrap_err().contains("YYYY-MM-DD"));
}

#[test]
fn the_next_run_fits_a_window_on_a_day_not_blocked() {
    // 2026-12-01 is a Tuesday.
    let tue_thu = schedule(&["Tue,Thu 09:00-11:00"], &["2026-12-03"], 30);
    for (now, want, case) in [
        (
            "2026-12-01T08:00:00Z",
            "2026-12-01T09:00:00Z",
            "before the window: at its start",
        ),
        (
            "2026-12-01T09:15:20Z",
            "2026-12-01T09:15:20Z",
            "inside it: now",
        ),
        (
            "2026-12-01T10:30:00Z",
            "2026-12-01T10:30:00Z",
            "the run just fits",
        ),
        (
            "2026-12-01T10:30:01Z",
            "2026-12-08T09:00:00Z",
            "too late to fit; Thursday is blocked",
        ),
        (
            "2026-12-05T12:00:00Z",
            "2026-12-08T09:00:00Z",
            "a weekend: next Tuesday",
        ),
    ] {
        assert_eq!(next_start(&tue_thu, at(now)), Some(at(want)), "{case}");
    }
    // A run longer than every window never fits.
    assert_eq!(
        next_start(
            &schedule(&["Mon 09:00-09:20"], &[], 30),
            at("2026-12-01T00:00:00Z")
        ),
        None
    );
    // The earliest of several windows.
    let two = schedule(&["Wed 14:00-16:00", "Tue 18:00-19:00"], &[], 60);
    assert_eq!(
        next_start(&two, at("2026-12-01T12:00:00Z")),
        Some(at("2026-12-01T18:00:00Z"))
    );
}

#[test]
fn a_run_is_due_a_full_every_after_the_last_began() {
    let s = schedule(&["00:00-24:00"], &[], 30);
    let now = at("2026-12-10T10:00:00Z");
    assert!(due(&s, now, None), "never run: due at once");
    assert!(
        !due(&s, now, Some(at("2026-12-04T10:00:00Z"))),
        "six days ago"
    );
    assert!(
        due(&s, now, Some(at("2026-12-03T10:00:00Z"))),
        "seven days ago"
    );
    assert_eq!(
        next_run(&s, now, Some(at("2026-12-05T00:00:00Z"))),
        Some(at("2026-12-12T00:00:00Z"))
    );
    // A clock that went back (a last start ahead of now) waits for it.
    assert!(!due(&s, now, Some(at("2026-12-11T00:00:00Z"))));
}

#[test]
fn members_take_their_turn() {
    let members: Vec<String> = ["use1", "euw1", "apse2"].map(String::from).to_vec();
    let mut last = BTreeMap::new();
    assert_eq!(turn(&members, &last), 0, "none practised: the first");
    last.insert("use1".to_string(), at("2026-12-01T00:00:00Z"));
    assert_eq!(turn(&members, &last), 1, "never practised first");
    last.insert("euw1".to_string(), at("2026-12-08T00:00:00Z"));
    last.insert("apse2".to_string(), at("2026-12-15T00:00:00Z"));
    assert_eq!(turn(&members, &last), 0, "the longest ago");
}

fn member(id: &str, healthy: Option<bool>) -> Member {
    Member {
        set_identifier: id.to_string(),
        healthy,
    }
}

fn situation(healthy: [Option<bool>; 3]) -> Situation {
    Situation {
        members: ["use1", "euw1", "apse2"]
            .iter()
            .zip(healthy)
            .map(|(id, h)| member(id, h))
            .collect(),
        min_healthy: 1,
        control: None,
        control_plane_impaired: false,
        other_practice: None,
        query: None,
    }
}

#[test]
fn what_blocks_a_start() {
    let ok = situation([Some(true); 3]);
    assert_eq!(blocks_start(&ok, 1), None);
    let cases: Vec<(Situation, Block)> = vec![
        (
            situation([Some(true), None, Some(true)]),
            Block::MemberNotHealthy("euw1".into()),
        ),
        (
            situation([Some(true), Some(true), Some(false)]),
            Block::MemberNotHealthy("apse2".into()),
        ),
        (
            Situation {
                min_healthy: 3,
                ..ok.clone()
            },
            Block::TooFewMembers,
        ),
        (
            Situation {
                members: ok.members[..1].to_vec(),
                ..ok.clone()
            },
            Block::TooFewMembers,
        ),
        (
            Situation {
                control: Some("freeze api.example.com".into()),
                ..ok.clone()
            },
            Block::Control("freeze api.example.com".into()),
        ),
        (
            Situation {
                control_plane_impaired: true,
                ..ok.clone()
            },
            Block::ControlPlaneImpaired,
        ),
        (
            Situation {
                other_practice: Some("www.example.com A".into()),
                ..ok.clone()
            },
            Block::PracticeInProgress("www.example.com A".into()),
        ),
    ];
    for (s, want) in cases {
        assert_eq!(blocks_start(&s, 0), Some(want.clone()), "{s:?}");
        assert!(!want.to_string().is_empty() && !want.kind().is_empty());
    }
}

#[test]
fn how_a_run_ends() {
    let (now, until) = (at("2026-12-01T09:10:00Z"), at("2026-12-01T09:30:00Z"));
    // The practised member (1) shows unhealthy or unknown? It is withdrawn,
    // still probed: healthy while it serves.
    let running = situation([Some(true); 3]);
    assert_eq!(run_over(&running, 1, now, until), None);
    assert_eq!(run_over(&running, 1, until, until), Some(Outcome::Passed));
    let other_fails = situation([Some(false), Some(true), Some(true)]);
    assert!(matches!(
        run_over(&other_fails, 1, now, until),
        Some(Outcome::Failed(w)) if w == "use1 failed while euw1 was withdrawn"
    ));
    let itself = situation([Some(true), Some(false), Some(true)]);
    assert!(matches!(
        run_over(&itself, 1, now, until),
        Some(Outcome::Aborted(_))
    ));
    let frozen = Situation {
        control: Some("freeze (everything)".into()),
        ..running.clone()
    };
    assert_eq!(
        run_over(&frozen, 1, now, until),
        Some(Outcome::Aborted("freeze (everything) is in force".into()))
    );
    // The query: over its maximum fails the run (the outcome), without
    // an answer aborts it; under, or no series, lets it go on.
    let query = |q: Query| Situation {
        query: Some(q),
        ..running.clone()
    };
    let over = Query::reading("api_error_ratio", Some(0.3), 0.05);
    assert_eq!(
        run_over(&query(over.clone()), 1, now, until),
        Some(Outcome::Failed(
            "the query api_error_ratio is 0.3, over 0.05".into()
        ))
    );
    assert!(matches!(
        run_over(&query(Query::Unknown("connection refused".into())), 1, now, until),
        Some(Outcome::Aborted(w)) if w.contains("connection refused")
    ));
    for under in [Some(0.05), None, Some(f64::NAN)] {
        let q = Query::reading("api_error_ratio", under, 0.05);
        assert_eq!(q, Query::Under, "{under:?}");
        assert_eq!(run_over(&query(q), 1, now, until), None);
    }
    assert!(matches!(
        blocks_start(&query(over), 0),
        Some(Block::QueryOver { .. })
    ));
    assert!(matches!(
        blocks_start(&query(Query::Unknown("not asked yet".into())), 0),
        Some(Block::QueryUnknown(_))
    ));
    // Another member not known yet (a restart) does not fail it.
    let restarting = situation([None, Some(true), None]);
    assert_eq!(run_over(&restarting, 1, now, until), None);
}

fn arb_window() -> impl Strategy<Value = Window> {
    (1u8..0x80, 0u32..(24 * 60), 1u32..(24 * 60)).prop_map(|(days, a, len)| {
        let start = a * 60;
        let end = ((a + len).min(24 * 60)) * 60;
        Window {
            days,
            start: start.min(end - 60),
            end,
        }
    })
}

/// Whether a run of `s` starting at `t` (seconds) fits.
fn fits(s: &Schedule, t: u64) -> bool {
    let day = t / DAY_SECS;
    if s.blocked.contains(&day) {
        return false;
    }
    let weekday = (day + 3) % 7;
    let of_day = t % DAY_SECS;
    s.windows.iter().any(|w| {
        w.on(weekday)
            && of_day >= u64::from(w.start)
            && of_day + s.duration.as_secs() <= u64::from(w.end)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The next start fits, and nothing earlier does (checked at `from`
    /// and at every minute after it: windows begin on the minute).
    #[test]
    fn the_next_start_is_the_earliest_that_fits(
        windows in prop::collection::vec(arb_window(), 1..3),
        blocked in prop::collection::vec(0u64..12, 0..5),
        minutes in 1u64..150,
        offset in 0u64..(14 * DAY_SECS),
    ) {
        let base = parse_date("2026-11-30").unwrap();
        let s = Schedule {
            every: Duration::from_secs(DAY_SECS),
            windows,
            blocked: blocked.iter().map(|d| base + d).collect(),
            duration: Duration::from_secs(minutes * 60),
            query: None,
        };
        let from = base * DAY_SECS + offset;
        let found = next_start(&s, SystemTime::UNIX_EPOCH + Duration::from_secs(from));
        let Some(found) = found else {
            // Only when no window can hold the run.
            prop_assert!(s.windows.iter().all(|w| u64::from(w.end - w.start) < s.duration.as_secs()));
            return Ok(());
        };
        let found = found.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        prop_assert!(found >= from);
        prop_assert!(fits(&s, found), "{found} does not fit");
        prop_assert!(!fits(&s, from) || found == from);
        let mut t = (from / 60 + 1) * 60;
        while t < found {
            prop_assert!(!fits(&s, t), "{t} fits, before {found}");
            t += 60;
        }
    }
}

proptest! {
    /// A run that may start never takes the last member, nor one that
    /// `min_healthy` needs: every other member is healthy, and there are
    /// enough of them.
    #[test]
    fn a_run_that_may_start_keeps_min_healthy_and_the_last_member(
        health in prop::collection::vec(prop::option::of(any::<bool>()), 1..6),
        min_healthy in 0usize..6,
        at in 0usize..6,
        control in any::<bool>(),
        impaired in any::<bool>(),
    ) {
        let s = Situation {
            members: health
                .iter()
                .enumerate()
                .map(|(i, h)| member(&format!("m{i}"), *h))
                .collect(),
            min_healthy,
            control: control.then(|| "drain x".to_string()),
            control_plane_impaired: impaired,
            other_practice: None,
            query: None,
        };
        if blocks_start(&s, at).is_none() {
            prop_assert!(at < s.members.len());
            let left = s
                .members
                .iter()
                .enumerate()
                .filter(|(i, m)| *i != at && m.healthy == Some(true))
                .count();
            prop_assert!(left >= 1, "the last member");
            prop_assert!(left >= min_healthy, "{left} left, min_healthy {min_healthy}");
            prop_assert!(!control && !impaired);
        }
    }
}
