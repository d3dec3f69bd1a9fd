use proptest::prelude::*;

use super::*;

fn settings() -> BaselineSettings {
    BaselineSettings {
        factor: 3.0,
        min_excess: Duration::from_millis(100),
        window: Duration::from_secs(3600),
        warm_up: Duration::from_secs(300),
    }
}

fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A baseline fed one `latency_ms` answer a second for `secs` seconds.
fn fed(latency_ms: u64, secs: u64) -> Baseline {
    let mut b = Baseline::default();
    for s in 0..secs {
        assert_eq!(b.judge(ms(latency_ms), t(s), &settings()), Judged::Normal);
    }
    b
}

#[test]
fn nothing_is_slow_before_the_warm_up() {
    let mut b = fed(40, 200);
    assert_eq!(b.current(t(200), &settings()), None);
    assert_eq!(b.judge(ms(2000), t(200), &settings()), Judged::Normal);
}

#[test]
fn slow_needs_both_the_factor_and_the_margin() {
    let cases: &[(u64, u64, bool)] = &[
        // (baseline ms, answer ms, slow)
        (40, 119, false),  // under 3x
        (40, 141, true),   // over 3x and over 100ms above
        (5, 90, false),    // 18x, but only 85ms above: not a brownout
        (5, 106, true),    // 21x and 101ms above
        (250, 700, false), // a far region: 2.8x
        (250, 800, true),
    ];
    for &(base, answer, slow) in cases {
        let mut b = fed(base, 400);
        let got = b.judge(ms(answer), t(400), &settings());
        assert_eq!(
            matches!(got, Judged::Slow { .. }),
            slow,
            "baseline {base}ms, answer {answer}ms: {got:?}"
        );
        if let Judged::Slow { baseline_ms } = got {
            assert_eq!(baseline_ms, base as f64);
        }
    }
}

#[test]
fn a_brownout_longer_than_the_window_becomes_the_new_normal() {
    let s = settings();
    let mut b = fed(40, 400);
    // 900 ms from now on: slow, and slow answers do not feed the baseline.
    assert!(matches!(b.judge(ms(900), t(400), &s), Judged::Slow { .. }));
    assert!(matches!(b.judge(ms(900), t(3000), &s), Judged::Slow { .. }));
    // An hour after the last normal answer the old baseline is gone.
    let later = 400 + 3600 + 120;
    assert_eq!(b.judge(ms(900), t(later), &s), Judged::Normal);
    assert_eq!(b.current(t(later), &s), None, "warming up again");
}

proptest! {
    /// An answer at or under the baseline is never slow, whatever the history.
    #[test]
    fn an_answer_at_the_baseline_is_never_slow(
        latencies in proptest::collection::vec(1u64..2000, 1..400),
    ) {
        let s = settings();
        let mut b = Baseline::default();
        for (i, l) in latencies.iter().enumerate() {
            let now = t(i as u64 * 2);
            if let Some(base) = b.current(now, &s) {
                let at = Duration::from_secs_f64(base / 1000.0);
                prop_assert_eq!(b.clone().judge(at, now, &s), Judged::Normal);
            }
            b.judge(ms(*l), now, &s);
        }
    }
}
