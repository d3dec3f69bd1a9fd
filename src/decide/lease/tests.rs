use crate::provider::RecordType;
use std::time::{Duration, SystemTime};

use super::*;

const NAME: &str = "_route53-failover-lease.example.test";
const DRIFT: Duration = Duration::from_secs(1);

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn value(holder: &str, term: u64, expires_ms: u64) -> LeaseValue {
    LeaseValue {
        holder: holder.into(),
        term,
        expires_ms,
    }
}

#[test]
fn value_round_trips_through_its_txt_form() {
    let v = value("pod-a.eu", 7, 1_764_000_000_123);
    assert_eq!(
        v.to_txt(),
        "\"route53-failover-lease holder=pod-a.eu term=7 expires=1764000000123\""
    );
    assert_eq!(LeaseValue::parse(&v.to_txt()), Some(v.clone()));
    let record = v.record(NAME);
    assert_eq!(record.rtype, RecordType::Txt);
    assert_eq!(read_value(Some(&record)), Some(v));
}

#[test]
fn values_that_are_not_a_lease_are_not_read_as_one() {
    for txt in [
        "\"v=spf1 -all\"",
        "\"route53-failover-lease term=1 expires=5\"",
        "\"route53-failover-lease holder=a term=x expires=5\"",
        "\"route53-failover-lease holder= term=1 expires=5\"",
        "\"route53-failover-lease holder=a term=1\"",
    ] {
        assert_eq!(LeaseValue::parse(txt), None, "{txt}");
    }
}

/// Monotonic time for the tables: milliseconds since an origin.
fn mono(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

const LEASE: Duration = Duration::from_secs(10);

#[test]
fn nobody_holds_it_so_take_it_at_term_one() {
    let none = Watched::new(None, mono(0));
    assert_eq!(
        next_step(&none, mono(0), LEASE, DRIFT),
        NextStep::Acquire { term: 1 }
    );
    // Someone's TXT that is not a lease reads as none: taken over (by an
    // exact swap of its value).
    let mut foreign = value("x", 1, 0).record(NAME);
    foreign.values = vec!["\"route53-failover-lease-ish\"".into()];
    assert_eq!(read_value(Some(&foreign)), None);
}

#[test]
fn a_lease_is_taken_over_only_once_its_value_stood_still_for_its_duration() {
    // (what the follower read at which of its own instants) → step at `now`
    let v = value("b", 4, 20_000);
    let mut seen = Watched::new(Some(v.clone()), mono(1_000));
    // Unchanged since 1 s: wait until 1 s + 10 s + the 1 s margin, whatever
    // `expires` says of any wall clock.
    for now in [1_000, 5_000, 11_999] {
        assert_eq!(
            next_step(&seen, mono(now), LEASE, DRIFT),
            NextStep::Wait {
                until: mono(12_000)
            },
            "at {now}"
        );
    }
    assert_eq!(
        next_step(&seen, mono(12_000), LEASE, DRIFT),
        NextStep::Acquire { term: 5 }
    );
    // A renewal seen (the holder lives): the count starts again.
    assert!(seen.observe(Some(value("b", 4, 30_000)), mono(11_000)));
    assert!(matches!(
        next_step(&seen, mono(12_000), LEASE, DRIFT),
        NextStep::Wait { until } if until == mono(22_000)
    ));
    // The same value read again changes nothing.
    assert!(!seen.observe(Some(value("b", 4, 30_000)), mono(15_000)));
    assert_eq!(seen.since, mono(11_000));
    // Handed back at shutdown: taken at once.
    let released = Watched::new(Some(value("b", 4, 0)), mono(0));
    assert_eq!(
        next_step(&released, mono(1), LEASE, DRIFT),
        NextStep::Acquire { term: 5 }
    );
    // A lease naming this instance is waited out too (a twin may hold it).
    let mine = Watched::new(Some(value("a", 4, 20_000)), mono(0));
    assert!(matches!(
        next_step(&mine, mono(5_000), LEASE, DRIFT),
        NextStep::Wait { .. }
    ));
}

#[test]
fn the_clock_offset_is_read_off_a_fresh_value() {
    // Written at wall 100 s by the holder (expires 110 s), seen at 102 s.
    let v = value("b", 1, 110_000);
    assert_eq!(clock_offset(&v, LEASE, at(102_000)), -2_000);
    // Seen by a clock 20 s behind the holder's.
    assert_eq!(clock_offset(&v, LEASE, at(80_500)), 19_500);
}

mod clocks {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A holder renewing every `renew` ms and a follower reading every
        /// `read` ms, each with its own wall clock (offsets within ±60 s):
        /// while the holder renews, the follower never takes the lease;
        /// once the holder stops, the follower takes it after the
        /// holder's write window has closed, and within the lease's
        /// duration, the margin and one read.
        #[test]
        fn clocks_that_disagree_neither_displace_a_live_holder_nor_overlap(
            holder_offset in -60_000i64..60_000,
            follower_offset in -60_000i64..60_000,
            renew in 500u64..3_000,
            read in 100u64..3_000,
            stops_at in 0u64..40_000,
            phase in 0u64..3_000,
        ) {
            let duration = Duration::from_millis(3 * renew + 1_000);
            let wall = |offset: i64, t: u64| (1_800_000_000_000i64 + offset + t as i64) as u64;
            let mut seen = Watched::new(None, mono(0));
            // The holder's renewals: when sent (monotonic), what was written.
            let renewals: Vec<(u64, LeaseValue)> = (0..)
                .map(|k| k * renew)
                .take_while(|&t| t <= stops_at)
                .map(|t| {
                    (t, LeaseValue {
                        holder: "a".into(),
                        term: 1,
                        expires_ms: wall(holder_offset, t) + duration.as_millis() as u64,
                    })
                })
                .collect();
            let last_send = renewals.last().map(|r| r.0).unwrap_or(0);
            // The holder writes until its window from the last send closes.
            let window_end = mono(last_send) + duration - DRIFT;
            let mut t = phase;
            loop {
                // What the follower reads at `t`: the latest renewal (a
                // write lands when it is sent, at the latest).
                let current = renewals.iter().rev().find(|r| r.0 <= t).map(|r| r.1.clone());
                seen.observe(current, mono(t));
                // The wall clocks do not enter the rule.
                let _ = wall(follower_offset, t);
                if let NextStep::Acquire { .. } = next_step(&seen, mono(t), duration, DRIFT) {
                    if renewals.is_empty() {
                        break;
                    }
                    prop_assert!(t > stops_at, "took over from a live holder at {t}");
                    prop_assert!(mono(t) >= window_end,
                        "overlap: taken at {t}, the holder writes until {window_end:?}");
                    // Seen within a read of the last renewal (or at the
                    // follower's first read), taken within a read of the
                    // count's end.
                    let seen_from = last_send.max(phase);
                    prop_assert!(mono(t) <= mono(seen_from) + duration + DRIFT + mono(2 * read),
                        "took {t}, last renewal {last_send}");
                    break;
                }
                t += read;
                prop_assert!(t < stops_at + 10 * duration.as_millis() as u64 + 10 * read);
            }
        }
    }
}

#[test]
fn the_swap_deletes_exactly_what_was_read() {
    let old = value("b", 4, 20_000).record(NAME);
    let new = claim("a", 5, at(30_000), Duration::from_secs(30)).record(NAME);
    assert_eq!(new.values, vec![value("a", 5, 60_000).to_txt()]);
    let batch = swap(Some(&old), new.clone());
    assert_eq!(batch.len(), 2);
    assert_eq!((batch[0].action, &batch[0].record), (Action::Delete, &old));
    assert_eq!((batch[1].action, &batch[1].record), (Action::Create, &new));
    assert_eq!(swap(None, new).len(), 1);
}
