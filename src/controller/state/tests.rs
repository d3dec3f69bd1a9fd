use std::sync::Arc;
use std::time::SystemTime;

use super::*;
use crate::decide::verdict::Verdict;
use crate::metrics::Metrics;

fn runtime(text: &str) -> Runtime {
    let config = crate::config::parse(text, std::path::Path::new(".")).unwrap();
    Runtime::new(Arc::new(config), "memory", Arc::new(Metrics::new()))
}

const BASE: &str = r#"
owner: me
provider: {kind: memory, zones: [example.test]}
defaults: {probe: {url: "http://api.example.test/health", rise: 1}}
records:
  - name: api.example.test
    zone: example.test
    regions:
      - {region: us-east-1, set_identifier: use1, target: {values: [192.0.2.1]}}
      - {region: eu-west-1, set_identifier: euw1, target: {values: [192.0.2.2]}}
"#;

#[test]
fn a_renamed_member_keeps_its_regions_verdict_and_nothing_of_its_record() {
    let old = runtime(BASE);
    let now = SystemTime::now();
    for id in old.member_ids() {
        let mut st = lock(old.slot(id));
        st.health.observe(Ok(()), now);
        st.agreed = Verdict::Healthy;
        st.published = true;
        st.health_check_id = Some("hc-old".into());
    }
    let renamed = crate::config::parse(
        &BASE.replace("set_identifier: use1", "set_identifier: api-use1"),
        std::path::Path::new("."),
    )
    .unwrap();
    let new = Runtime::reloaded(Arc::new(renamed), &old);
    let (use1, euw1) = (
        MemberId {
            record: 0,
            member: 0,
        },
        MemberId {
            record: 0,
            member: 1,
        },
    );
    new.member(use1).read(|m| {
        assert_eq!(m.health.verdict(), Verdict::Healthy, "its region's verdict");
        assert_eq!(m.agreed, Verdict::Healthy);
        assert!(!m.published, "its own record is not there yet");
        assert_eq!(m.health_check_id, None, "nor its check");
    });
    new.member(euw1).read(|m| {
        assert!(m.published, "a kept member keeps everything");
        assert_eq!(m.health_check_id.as_deref(), Some("hc-old"));
    });
    // Renamed and moved elsewhere: a new member, known afresh.
    let moved = crate::config::parse(
        &BASE
            .replace("set_identifier: use1", "set_identifier: api-use1")
            .replace("[192.0.2.1]", "[192.0.2.9]")
            .replace("rise: 1}", "rise: 1, timeout: 900ms}"),
        std::path::Path::new("."),
    )
    .unwrap();
    let new = Runtime::reloaded(Arc::new(moved), &old);
    new.member(use1)
        .read(|m| assert_eq!(m.health.verdict(), Verdict::Unknown, "its probe changed"));
}
