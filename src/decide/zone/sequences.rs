//! The safety promises over sequences of events, not single decisions: a
//! state-machine property test of the whole pipeline. The daemon's state
//! (verdicts, what it last read of the zone, drains and freezes, its
//! config) and a model of the strict store go through random sequences of
//! probe outcomes (members failing alone, all together), reloads that
//! add, remove and rename members and drop or bring back a record,
//! restarts (everything in memory lost), drains and freezes, and
//! reconciles whose plans are cut into batches of one to three records
//! and whose batches the store may refuse halfway. After every batch the
//! store accepts:
//!
//! - no name and type that held records is left with none (nothing here
//!   retires a record);
//! - no configured member whose failure is not corroborated, and that
//!   on-call did not drain, loses its record;
//! - nothing this install does not own is touched: another owner's record
//!   under the managed name, and this owner's record under a name the
//!   config no longer (or never) manages.
//!
//! And at the end, once on-call's controls are lifted and every member
//! passes, a few reconciles bring the zone to exactly what the config
//! describes (members and claims): the rules hold changes back, they
//! never wedge them.
//!
//! Shrunk counterexamples are kept in `proptest-regressions/`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use super::*;
use crate::config::{parse, Config};
use crate::decide::correlated::{self, Seen};
use crate::decide::ownership::Observed;
use crate::decide::plan::batches_within;
use crate::decide::verdict::Health;
use crate::provider::{Action, RecordKey, RecordSet, MAX_BATCH_CHARS};

const OWNER: &str = "me";
const API: &str = "api.example.test";
const WWW: &str = "www.example.test";

/// The members of `api` a config may give: (region, set identifier).
const API_VARIANTS: [&[(&str, &str)]; 5] = [
    &[
        ("us-east-1", "use1"),
        ("eu-west-1", "euw1"),
        ("ap-southeast-2", "apse2"),
    ],
    // one removed
    &[("us-east-1", "use1"), ("eu-west-1", "euw1")],
    // one added
    &[
        ("us-east-1", "use1"),
        ("eu-west-1", "euw1"),
        ("ap-southeast-2", "apse2"),
        ("sa-east-1", "sae1"),
    ],
    // every one renamed
    &[
        ("us-east-1", "api-use1"),
        ("eu-west-1", "api-euw1"),
        ("ap-southeast-2", "api-apse2"),
    ],
    // one renamed, one removed
    &[("us-east-1", "use1"), ("eu-west-1", "api-euw1")],
];

fn config_text(api: usize, www: bool) -> String {
    let mut text = String::from(
        "owner: me\nprovider: {kind: memory, zones: [example.test]}\ndefaults:\n  probe: {url: \"http://api.example.test/health\", rise: 2, fall: 2}\n  health_check: {enabled: false}\n  policy: {min_healthy: 1}\nrecords:\n",
    );
    let mut record = |name: &str, members: &[(&str, &str)]| {
        text.push_str(&format!(
            "  - name: {name}\n    zone: example.test\n    regions:\n"
        ));
        for (i, (region, id)) in members.iter().enumerate() {
            text.push_str(&format!(
                "      - {{region: {region}, set_identifier: {id}, target: {{values: [192.0.2.{}]}}}}\n",
                i + 1
            ));
        }
    };
    record(API, API_VARIANTS[api]);
    if www {
        record(WWW, &[("us-east-1", "w1"), ("eu-west-1", "w2")]);
    }
    text
}

fn config(api: usize, www: bool) -> Config {
    parse(&config_text(api, www), Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

/// One step of a sequence.
#[derive(Debug, Clone)]
enum Step {
    /// A member of `api` (by region index) is probed.
    Probe {
        region: usize,
        ok: bool,
    },
    /// Every member's probe fails at the same instant.
    AllFail,
    /// Every member's probe passes.
    AllPass,
    Reload {
        api: usize,
        www: bool,
    },
    Restart,
    Drain {
        region: usize,
        on: bool,
    },
    Freeze {
        on: bool,
    },
    /// A reconcile whose plan is cut into batches of at most
    /// `max_records` records; the store refuses batch `refuse` (if any).
    Reconcile {
        max_records: usize,
        refuse: Option<usize>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0usize..4, any::<bool>()).prop_map(|(region, ok)| Step::Probe { region, ok }),
        2 => Just(Step::AllFail),
        2 => Just(Step::AllPass),
        2 => (0..API_VARIANTS.len(), any::<bool>()).prop_map(|(api, www)| Step::Reload { api, www }),
        1 => Just(Step::Restart),
        1 => (0usize..4, any::<bool>()).prop_map(|(region, on)| Step::Drain { region, on }),
        1 => any::<bool>().prop_map(|on| Step::Freeze { on }),
        6 => (1usize..4, proptest::option::of(0usize..3))
            .prop_map(|(max_records, refuse)| Step::Reconcile { max_records, refuse }),
    ]
}

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"];

/// What one instance keeps in memory, by (record name, region): lost at a
/// restart; carried by region through a reload (a renamed member keeps
/// what was known of its region, as `controller::state` does).
#[derive(Default)]
struct Memory {
    health: BTreeMap<(String, String), Health>,
    seen: BTreeMap<(String, String), Seen>,
    /// The zone as last read plus this instance's writes since.
    observed: Option<Observed>,
}

struct World {
    config: Config,
    memory: Memory,
    /// The store: what Route53 holds.
    store: BTreeMap<RecordKey, RecordSet>,
    drained: Vec<usize>,
    frozen: bool,
    now: SystemTime,
    /// The same time on the monotonic clock, for corroboration.
    mono: std::time::Instant,
    /// What must never change: records this install does not own.
    untouchable: Vec<RecordSet>,
}

/// The strict store: a batch applies whole, or not at all (a CREATE of a
/// record there, a DELETE of one not exactly there, refuse it).
pub(super) fn strict_apply(store: &mut BTreeMap<RecordKey, RecordSet>, batch: &[Change]) -> bool {
    let mut work = store.clone();
    for c in batch {
        let key = c.record.key();
        match c.action {
            Action::Create if work.contains_key(&key) => return false,
            Action::Delete if work.get(&key) != Some(&c.record) => return false,
            Action::Delete => {
                work.remove(&key);
            }
            Action::Create | Action::Upsert => {
                work.insert(key, c.record.clone());
            }
        }
    }
    *store = work;
    true
}

fn latency(name: &str, id: &str, region: &str, value: &str) -> RecordSet {
    RecordSet::latency_a(name, id, region, value)
}

fn marker(name: &str, values: &[&str]) -> RecordSet {
    RecordSet {
        ttl: Some(300),
        ..RecordSet::txt(
            &format!("_route53-failover.{name}"),
            values.iter().map(|v| v.to_string()).collect(),
        )
    }
}

impl World {
    fn new() -> World {
        // Another owner's member under a name the config manages (www,
        // when it is configured), and this owner's record under a name the
        // config never manages (another install with the same owner, or
        // one not retired yet) beside another owner's.
        let theirs = latency(WWW, "t1", "me-south-1", "198.51.100.1");
        let legacy = latency("legacy.example.test", "l1", "us-east-1", "198.51.100.2");
        let beside = latency("legacy.example.test", "l2", "eu-west-1", "198.51.100.3");
        let records = [
            theirs.clone(),
            marker(WWW, &["\"route53-failover owner=them type=A set=t1\""]),
            legacy.clone(),
            beside.clone(),
            marker(
                "legacy.example.test",
                &[
                    "\"route53-failover owner=me type=A set=l1\"",
                    "\"route53-failover owner=them type=A set=l2\"",
                ],
            ),
        ];
        World {
            config: config(0, true),
            memory: Memory::default(),
            store: records.iter().map(|r| (r.key(), r.clone())).collect(),
            drained: Vec::new(),
            frozen: false,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            mono: std::time::Instant::now(),
            untouchable: vec![theirs, legacy, beside],
        }
    }

    fn members(&self) -> Vec<(String, String)> {
        self.config
            .records
            .iter()
            .flat_map(|r| r.members.iter().map(|m| (r.name.clone(), m.region.clone())))
            .collect()
    }

    fn probe(&mut self, key: &(String, String), ok: bool) {
        let now = self.now;
        let h = self
            .memory
            .health
            .entry(key.clone())
            .or_insert_with(|| Health::new(2, 2, now));
        let outcome = if ok {
            Ok(())
        } else {
            Err("status".to_string())
        };
        h.observe(outcome, now);
        self.memory.seen.entry(key.clone()).or_default().observed(
            ok,
            self.mono,
            self.mono + Duration::from_millis(1),
        );
    }

    /// The zone's decision now, and the members whose failure waits.
    fn decide(&self) -> (ZoneDecision<'_>, Vec<RecordKey>) {
        let observed = self.memory.observed.as_ref().expect("read before deciding");
        let keys = self.members();
        let seen: Vec<Seen> = keys
            .iter()
            .map(|k| self.memory.seen.get(k).copied().unwrap_or_default())
            .collect();
        let waits: BTreeMap<&(String, String), bool> =
            keys.iter().zip(correlated::uncorroborated(&seen)).collect();
        let mut protected = Vec::new();
        let records = self
            .config
            .records
            .iter()
            .map(|r| RecordView {
                record: r,
                members: r
                    .members
                    .iter()
                    .map(|m| {
                        let key = (r.name.clone(), m.region.clone());
                        let verdict = self
                            .memory
                            .health
                            .get(&key)
                            .map_or(Verdict::Unknown, Health::verdict);
                        let region = REGIONS.iter().position(|g| *g == m.region);
                        let drained =
                            r.name == API && region.is_some_and(|g| self.drained.contains(&g));
                        let uncorroborated = waits[&key];
                        if uncorroborated && !drained {
                            protected.push(crate::decide::ownership::member_key(r, m));
                        }
                        MemberView {
                            drain: if drained { Drain::Yes } else { Drain::No },
                            uncorroborated,
                            ..MemberView::new(verdict)
                        }
                    })
                    .collect(),
                frozen: self.frozen && r.name == API,
            })
            .collect();
        let d = decide(&ZoneInputs {
            owner: OWNER,
            zone_id: "Z1",
            observed,
            checks: &[],
            records,
            lever: None,
        });
        (d, protected)
    }

    fn accept(&mut self, batch: &[Change]) -> bool {
        strict_apply(&mut self.store, batch)
    }

    fn counts(&self) -> BTreeMap<(String, RecordType), usize> {
        let mut n = BTreeMap::new();
        for r in self.store.values().filter(|r| r.set_identifier.is_some()) {
            *n.entry((r.name.clone(), r.rtype.clone())).or_default() += 1;
        }
        n
    }

    fn read(&mut self) {
        self.memory.observed = Some(Observed::new(self.store.values().cloned().collect()));
    }

    fn reconcile(
        &mut self,
        max_records: usize,
        refuse: Option<usize>,
    ) -> Result<(), TestCaseError> {
        if self.memory.observed.is_none() {
            self.read();
        }
        let (changes, protected) = {
            let (d, protected) = self.decide();
            (d.changes, protected)
        };
        for (i, batch) in batches_within(changes, max_records, MAX_BATCH_CHARS)
            .into_iter()
            .enumerate()
        {
            let before = self.counts();
            if refuse == Some(i) || !self.accept(&batch) {
                // Refused: read again next time.
                self.memory.observed = None;
                return Ok(());
            }
            if let Some(o) = self.memory.observed.as_mut() {
                o.apply(&batch);
            }
            let after = self.counts();
            for (group, n) in &before {
                prop_assert!(
                    *n == 0 || after.get(group).copied().unwrap_or(0) > 0,
                    "{group:?} emptied by {batch:?}"
                );
            }
            for c in batch.iter().filter(|c| c.action == Action::Delete) {
                prop_assert!(
                    !protected.contains(&c.record.key()),
                    "{} withdrawn on an uncorroborated failure: {batch:?}",
                    c.record.key()
                );
            }
            for r in &self.untouchable {
                prop_assert_eq!(
                    self.store.get(&r.key()),
                    Some(r),
                    "a record this install does not own was touched by {:?}",
                    batch
                );
            }
        }
        Ok(())
    }

    fn run(&mut self, s: Step) -> Result<(), TestCaseError> {
        self.now += Duration::from_millis(250);
        self.mono += Duration::from_millis(250);
        match s {
            Step::Probe { region, ok } => {
                let key = (API.to_string(), REGIONS[region].to_string());
                if self.members().contains(&key) {
                    self.probe(&key, ok);
                }
            }
            Step::AllFail | Step::AllPass => {
                for key in self.members() {
                    self.probe(&key, matches!(s, Step::AllPass));
                }
            }
            Step::Reload { api, www } => {
                // What is known is kept by record and region: a renamed
                // member keeps its region's verdict; a member no longer
                // configured is forgotten.
                self.config = config(api, www);
                let keep = self.members();
                self.memory.health.retain(|k, _| keep.contains(k));
                self.memory.seen.retain(|k, _| keep.contains(k));
            }
            Step::Restart => self.memory = Memory::default(),
            Step::Drain { region, on } => {
                self.drained.retain(|&g| g != region);
                if on {
                    self.drained.push(region);
                }
            }
            Step::Freeze { on } => self.frozen = on,
            Step::Reconcile {
                max_records,
                refuse,
            } => self.reconcile(max_records, refuse)?,
        }
        Ok(())
    }
}

impl World {
    /// Once every control is lifted and every member passes, a few
    /// reconciles bring the zone to exactly what the config describes: the
    /// safety rules hold things back, they never wedge them.
    fn converges(&mut self) -> Result<(), TestCaseError> {
        for s in [Step::Freeze { on: false }, Step::AllPass, Step::AllPass] {
            self.run(s)?;
        }
        self.drained.clear();
        for _ in 0..4 {
            self.run(Step::Reconcile {
                max_records: 1000,
                refuse: None,
            })?;
        }
        for r in &self.config.records {
            let want: Vec<&str> = r
                .members
                .iter()
                .map(|m| m.set_identifier.as_str())
                .collect();
            let mut held: Vec<&str> = self
                .store
                .values()
                .filter(|x| x.name == r.name && x.rtype == r.rtype)
                .filter_map(|x| x.set_identifier.as_deref())
                .filter(|id| *id != "t1")
                .collect();
            held.sort();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            prop_assert_eq!(
                &held,
                &want_sorted,
                "{} holds other members than the config's",
                r.name
            );
            let claims: Vec<String> = Observed::new(self.store.values().cloned().collect())
                .claims()
                .into_iter()
                .filter(|c| c.owner == OWNER && c.name == r.name)
                .map(|c| c.set_identifier)
                .collect();
            let mut claims_sorted = claims.clone();
            claims_sorted.sort();
            prop_assert_eq!(
                claims_sorted,
                want_sorted
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
                "{} claims other members than the config's",
                r.name
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn no_sequence_of_events_breaks_a_safety_promise(
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut world = World::new();
        for s in steps {
            world.run(s)?;
        }
        world.converges()?;
    }
}
