use std::sync::Arc;

use super::*;
use crate::controller::Runtime;
use crate::metrics::Metrics;

/// A status of `n` records of two members, every member healthy and
/// published but those of the records in `troubled`.
fn status(n: usize, troubled: &[usize]) -> Status {
    let mut text = String::from(
        "owner: me\nprovider: {kind: memory, zones: [example.test]}\n\
         defaults: {probe: {url: \"http://api.example.test/health\"}}\nrecords:\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "  - name: r{i}.example.test\n    zone: example.test\n    regions:\n      \
             - {{region: us-east-1, set_identifier: a{i}, target: {{values: [192.0.2.1]}}}}\n      \
             - {{region: eu-west-1, set_identifier: b{i}, target: {{values: [192.0.2.2]}}}}\n"
        ));
    }
    let config = crate::config::parse(&text, std::path::Path::new(".")).unwrap();
    let rt = Runtime::new(Arc::new(config), "memory", Arc::new(Metrics::new()));
    let mut s = Status::snapshot(&rt);
    for r in &mut s.records {
        for m in &mut r.members {
            m.verdict = "healthy".into();
            m.agreed = "healthy".into();
            m.published = true;
            m.decision = Some("healthy".into());
        }
        if troubled.contains(&r.index) {
            r.members[1].verdict = "unhealthy".into();
            r.members[1].decision = Some("unhealthy".into());
            r.members[1].published = false;
        }
    }
    s
}

fn names_of(s: &Status) -> Vec<&str> {
    s.records.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn a_small_install_shows_every_record() {
    let mut s = status(FOLD_OVER, &[3]);
    assert_eq!(s.fold(&Query::default()), Folded::default());
    assert_eq!(s.records.len(), FOLD_OVER);
}

#[test]
fn a_large_install_shows_what_needs_attention_and_folds_the_rest() {
    let mut s = status(1000, &[7, 512]);
    let folded = s.fold(&Query::default());
    assert_eq!(names_of(&s), ["r7.example.test", "r512.example.test"]);
    assert_eq!(folded.calm, 998);
    assert_eq!(folded.pages, 0, "two records fit on one page");
    let note = note(&folded, false);
    assert!(note.contains("998 records"), "{note}");
    assert!(note.contains("href=\"/?all=1\""), "{note}");
}

#[test]
fn unfolded_records_are_shown_a_page_at_a_time() {
    let mut s = status(250, &[]);
    let q = Query {
        all: true,
        page: Some(3),
        ..Query::default()
    };
    let folded = s.fold(&q);
    assert_eq!((folded.page, folded.pages, folded.calm), (3, 3, 0));
    assert_eq!(s.records.len(), 50);
    assert_eq!(s.records[0].name, "r200.example.test");
    // A page past the last shows the last.
    let mut s = status(250, &[]);
    let folded = s.fold(&Query {
        all: true,
        page: Some(99),
        ..Query::default()
    });
    assert_eq!(folded.page, 3);
    let links = note(&folded, true);
    assert!(links.contains("href=\"/?page=1&amp;all=1\""), "{links}");
    assert!(links.contains("<b>3</b>"), "{links}");
}

#[test]
fn a_drained_or_frozen_or_disagreeing_record_is_never_folded() {
    let mut s = status(60, &[]);
    s.records[1].members[0].decision = Some("damped".into());
    s.records[2].members[0].agreed = "unhealthy".into();
    s.records[3].frozen = Some(crate::decide::controls::Control::new(
        crate::decide::controls::Scope::Freeze {
            record: Some("r3.example.test".into()),
        },
        "me",
        "release",
        std::time::SystemTime::now(),
        std::time::Duration::from_secs(60),
    ));
    // A certificate about to expire, a probe that observes nothing.
    s.records[4].members[1].cert_not_after = Some(s.now + 3.0 * 86_400.0);
    s.records[5].members[0].cert_not_after = Some(s.now + 90.0 * 86_400.0);
    s.records[6].members[0].not_observed = Some("local: no descriptor left".into());
    s.fold(&Query::default());
    assert_eq!(
        names_of(&s),
        [
            "r1.example.test",
            "r2.example.test",
            "r3.example.test",
            "r4.example.test",
            "r6.example.test"
        ]
    );
}

#[test]
fn the_flag_reads_as_people_type_it() {
    // As the HTTP handlers read it.
    let q = |text: &str| {
        let uri: axum::http::Uri = format!("/?{text}").parse().unwrap();
        axum::extract::Query::<Query>::try_from_uri(&uri).map(|q| q.0)
    };
    for on in ["all=1", "all=true", "all=yes", "all="] {
        assert!(q(on).unwrap().all, "{on}");
    }
    for off in ["all=0", "all=false", "", "page=2"] {
        assert!(!q(off).unwrap().all, "{off}");
    }
    let err = q("all=maybe").unwrap_err().body_text();
    assert!(err.contains("maybe"), "{err}");
}
