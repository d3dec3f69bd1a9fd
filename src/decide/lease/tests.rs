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

#[test]
fn nobody_holds_it_so_take_it_at_term_one() {
    assert_eq!(
        next_step(None, at(10_000), DRIFT),
        NextStep::Acquire { term: 1 }
    );
    // Someone's TXT that is not a lease reads as none: taken over (by an
    // exact swap of its value).
    let mut foreign = value("x", 1, 0).record(NAME);
    foreign.values = vec!["\"v=spf1 -all\"".into()];
    assert_eq!(read_value(Some(&foreign)), None);
}

#[test]
fn a_lease_is_taken_over_only_after_its_end_plus_the_drift_margin() {
    let v = value("b", 4, 20_000);
    // Still running, and within the drift margin after its end: wait,
    // until just past end + drift.
    for now in [10_000, 20_000, 21_000] {
        assert_eq!(
            next_step(Some(&v), at(now), DRIFT),
            NextStep::Wait { until: at(21_001) },
            "at {now}"
        );
    }
    assert_eq!(
        next_step(Some(&v), at(21_001), DRIFT),
        NextStep::Acquire { term: 5 }
    );
    // A lease naming this instance is waited out too (a twin may hold it).
    let mine = value("a", 4, 20_000);
    assert!(matches!(
        next_step(Some(&mine), at(15_000), DRIFT),
        NextStep::Wait { .. }
    ));
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
