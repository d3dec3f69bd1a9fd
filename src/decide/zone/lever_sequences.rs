//! The answering rule over sequences, with the lever: a state-machine
//! property test of one record whose members each have a switch, in
//! `switches` or `switches_and_records` mode. The daemon's state (verdicts,
//! what it last read of the zone, what it knows and wants of each switch)
//! and a model of Route53 (records, checks) and of the cluster (each
//! switch's real state) go through random sequences of verdicts, reloads
//! that remove and rename members, restarts (what is in memory lost; the
//! drains are in the state store and stay; the zone knowledge kept there
//! recalled or not, and when recalled the switches decided from it before
//! the zone is read), drains, switches flipped by
//! hand (what the daemon knows is then wrong until read), reads, and
//! reconciles whose record batches the store may refuse, whose switch
//! calls a safety rule may refuse, and whose switch calls land before or
//! after the records (the lever runs beside the reconciler).
//!
//! After every batch and every switch call that lands:
//!
//! - the record is never left with no record;
//! - while no switch is believed On that is really Off, a record that had
//!   a record whose check passes still has one: it is never left to fail
//!   open (no check passing, Route53 answers with every record, the
//!   failed and switched-Off regions' included). Neither a deletion (a
//!   member removed, or withdrawn in `switches_and_records`), nor an
//!   upsert that wires a record to a switch that is Off, nor a switch
//!   going Off before the record the decision counted on has landed.
//!
//! And once every member passes, on-call's drains are lifted and the
//! switches are read, a few reconciles bring every member back: its record
//! present, wired to its switch, the switch On.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::config::{parse, Config};
use crate::decide::ownership::Observed;
use crate::decide::plan::batches_within;
use crate::provider::{RecordKey, RecordSet, MAX_BATCH_CHARS};

const API: &str = "api.example.test";
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

/// The members a config may give, by region index and set identifier.
const VARIANTS: [&[(usize, &str)]; 4] = [
    &[(0, "use1"), (1, "euw1"), (2, "apse2")],
    // one removed
    &[(0, "use1"), (1, "euw1")],
    // one renamed
    &[(0, "use1"), (1, "api-euw1"), (2, "apse2")],
    // one removed, one renamed
    &[(0, "use1"), (1, "api-euw1")],
];

fn arn(region: usize) -> String {
    format!(
        "arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/{}",
        REGIONS[region].replace('-', "")
    )
}

fn config(variant: usize, mode: LeverMode) -> Config {
    let mut text = String::from(
        "owner: me\nprovider: {kind: memory, zones: [example.test]}\ndefaults:\n  probe: {url: \"http://api.example.test/health\"}\n  health_check: {enabled: false}\n  policy: {min_healthy: 1}\nrecords:\n  - name: api.example.test\n    zone: example.test\n    regions:\n",
    );
    for (g, id) in VARIANTS[variant] {
        text.push_str(&format!(
            "      - {{region: {}, set_identifier: {id}, target: {{values: [192.0.2.{}]}}, routing_control: \"{}\"}}\n",
            REGIONS[*g],
            g + 1,
            arn(*g)
        ));
    }
    let mode = match mode {
        LeverMode::Switches => "switches",
        LeverMode::SwitchesAndRecords => "switches_and_records",
    };
    text.push_str(&format!(
        "routing_control:\n  cluster_endpoints: [{{url: \"https://c.example.aws\", region: us-west-2}}]\n  mode: {mode}\n"
    ));
    parse(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Debug, Clone)]
enum Event {
    Verdict {
        region: usize,
        verdict: Verdict,
    },
    Reload {
        variant: usize,
    },
    Restart,
    /// A restart that recalls what the state store kept of the zone: the
    /// switches are decided from it before the zone is read.
    RestartRecalling,
    Drain {
        region: usize,
        on: bool,
    },
    /// Someone flips a switch by hand: what the daemon knows of it is wrong.
    Flip {
        region: usize,
    },
    /// The lever reads one switch, or every one.
    Read {
        region: Option<usize>,
    },
    Reconcile {
        max_records: usize,
        refuse_batch: Option<usize>,
        refuse_switch: Option<usize>,
        switches_first: bool,
    },
}

fn event() -> impl Strategy<Value = Event> {
    let verdict = prop_oneof![
        Just(Verdict::Healthy),
        Just(Verdict::Unhealthy),
        Just(Verdict::Unknown)
    ];
    prop_oneof![
        6 => (0usize..3, verdict).prop_map(|(region, verdict)| Event::Verdict { region, verdict }),
        2 => (0..VARIANTS.len()).prop_map(|variant| Event::Reload { variant }),
        1 => Just(Event::Restart),
        1 => Just(Event::RestartRecalling),
        1 => (0usize..3, any::<bool>()).prop_map(|(region, on)| Event::Drain { region, on }),
        1 => (0usize..3).prop_map(|region| Event::Flip { region }),
        2 => proptest::option::of(0usize..3).prop_map(|region| Event::Read { region }),
        8 => (1usize..3, proptest::option::weighted(0.2, 0usize..3),
              proptest::option::weighted(0.3, 0usize..3), any::<bool>())
            .prop_map(|(max_records, refuse_batch, refuse_switch, switches_first)| {
                Event::Reconcile { max_records, refuse_batch, refuse_switch, switches_first }
            }),
    ]
}

/// What the daemon keeps in memory: lost at a restart.
#[derive(Default)]
struct Memory {
    verdicts: BTreeMap<usize, Verdict>,
    observed: Option<Observed>,
    /// The lever's: each switch as last read back or confirmed, and as
    /// the decisions want it.
    known: BTreeMap<String, Switch>,
    wanted: BTreeMap<String, Switch>,
}

struct World {
    config: Config,
    mode: LeverMode,
    memory: Memory,
    /// On-call's drains, kept in the state store.
    drained: BTreeSet<usize>,
    /// Route53: the records and the owner's checks.
    records: BTreeMap<RecordKey, RecordSet>,
    checks: Vec<HealthCheck>,
    /// The cluster: each switch's real state.
    real: BTreeMap<String, bool>,
    /// The zone knowledge kept in the state store (after a read, or a
    /// pass whose writes all landed): it outlives restarts.
    kept: Option<Observed>,
    /// Recalled at a restart, not read yet (`controller::reconcile`:
    /// `stale`, for the switches only).
    recalled: Option<Observed>,
}

impl World {
    fn new(mode: LeverMode) -> World {
        World {
            config: config(0, mode),
            mode,
            memory: Memory::default(),
            drained: BTreeSet::new(),
            records: BTreeMap::new(),
            checks: Vec::new(),
            real: (0..3).map(|g| (arn(g), true)).collect(),
            kept: None,
            recalled: None,
        }
    }

    fn region(&self, m: &crate::config::MemberConfig) -> usize {
        REGIONS.iter().position(|r| *r == m.region).unwrap()
    }

    /// A switch as the decisions count it (`Lever::counted`).
    fn counted(&self, arn: &str) -> Switch {
        match self.memory.wanted.get(arn) {
            Some(Switch::Off) => Switch::Off,
            _ => self
                .memory
                .known
                .get(arn)
                .copied()
                .unwrap_or(Switch::Unknown),
        }
    }

    /// No switch is counted On that is really Off: what the rule leans on.
    fn trustworthy(&self) -> bool {
        self.real
            .iter()
            .all(|(arn, on)| *on || self.counted(arn) != Switch::On)
    }

    /// The records whose checks pass: present, and the switch its check
    /// follows (if any) On.
    fn passing(&self) -> Vec<&RecordSet> {
        self.members()
            .filter(|r| {
                r.health_check_id
                    .as_deref()
                    .and_then(|id| hc::switch_of(&self.checks, id))
                    .is_none_or(|arn| self.real.get(arn) == Some(&true))
            })
            .collect()
    }

    fn members(&self) -> impl Iterator<Item = &RecordSet> {
        self.records
            .values()
            .filter(|r| r.name == API && r.set_identifier.is_some())
    }

    fn held(&self) -> usize {
        self.members().count()
    }

    fn decide(&self) -> ZoneDecision<'_> {
        let record = &self.config.records[0];
        let members = record
            .members
            .iter()
            .map(|m| {
                let g = self.region(m);
                MemberView {
                    drain: if self.drained.contains(&g) {
                        Drain::Yes
                    } else {
                        Drain::No
                    },
                    switch: Some(self.counted(&arn(g))),
                    ..MemberView::new(
                        self.memory
                            .verdicts
                            .get(&g)
                            .copied()
                            .unwrap_or(Verdict::Unknown),
                    )
                }
            })
            .collect();
        decide(&ZoneInputs {
            owner: "me",
            zone_id: "Z1",
            observed: self.memory.observed.as_ref().expect("read first"),
            checks: &self.checks,
            records: vec![RecordView {
                record,
                members,
                frozen: false,
            }],
            lever: Some(self.mode),
        })
    }

    /// One batch into the strict store, all or nothing.
    fn accept(&mut self, batch: &[Change]) -> bool {
        super::sequences::strict_apply(&mut self.records, batch)
    }

    /// Asserts the promises across one change that landed.
    fn landed(
        &self,
        before: (usize, bool),
        trusted: bool,
        what: &str,
    ) -> Result<(), TestCaseError> {
        let (held, passing) = before;
        prop_assert!(held == 0 || self.held() > 0, "{API} emptied by {what}");
        if trusted && passing {
            prop_assert!(
                !self.passing().is_empty(),
                "{API} left to fail open by {what}: {:?}, switches {:?}",
                self.records.values().collect::<Vec<_>>(),
                self.real
            );
        }
        Ok(())
    }

    /// Record batches: `false` once the store refuses one (read again).
    fn batches(
        &mut self,
        changes: Vec<Change>,
        max_records: usize,
        refuse: Option<usize>,
        trusted: bool,
    ) -> Result<bool, TestCaseError> {
        for (i, batch) in batches_within(changes, max_records, MAX_BATCH_CHARS)
            .into_iter()
            .enumerate()
        {
            let before = (self.held(), !self.passing().is_empty());
            if refuse == Some(i) || !self.accept(&batch) {
                self.memory.observed = None;
                return Ok(false);
            }
            if let Some(o) = self.memory.observed.as_mut() {
                o.apply(&batch);
            }
            self.landed(before, trusted, &format!("{batch:?}"))?;
        }
        Ok(true)
    }

    /// The lever carries the switch calls out (one per switch here; a
    /// refusal costs only its own).
    fn switches(
        &mut self,
        calls: &[(String, Switch)],
        refuse: Option<usize>,
        trusted: bool,
    ) -> Result<(), TestCaseError> {
        for (arn, want) in calls {
            if refuse.is_some_and(|g| *arn == self::arn(g)) {
                continue;
            }
            if self.memory.known.get(arn) == Some(want) {
                continue;
            }
            let before = (self.held(), !self.passing().is_empty());
            self.real.insert(arn.clone(), *want == Switch::On);
            self.memory.known.insert(arn.clone(), *want);
            self.landed(before, trusted, &format!("{arn} set {want:?}"))?;
        }
        Ok(())
    }

    /// As the reconciler does (`set_switches`): what the decision leaves
    /// as it is is no longer wanted, the rest is.
    fn want(&mut self, held: &[String], calls: &[(String, Switch)]) {
        for arn in held {
            self.memory.wanted.remove(arn);
        }
        for (arn, want) in calls {
            self.memory.wanted.insert(arn.clone(), *want);
        }
    }

    fn reconcile(
        &mut self,
        max_records: usize,
        refuse_batch: Option<usize>,
        refuse_switch: Option<usize>,
        switches_first: bool,
    ) -> Result<(), TestCaseError> {
        if self.memory.observed.is_none() {
            // The switches first, from what was recalled (no read needed),
            // as the reconciler does; the records only after a read.
            if let Some(recalled) = self.recalled.take() {
                self.memory.observed = Some(recalled);
                let trusted = self.trustworthy();
                let d = self.decide();
                let held = d.held_switches.clone();
                let calls: Vec<(String, Switch)> =
                    d.switches.iter().map(|s| (s.arn.clone(), s.want)).collect();
                drop(d);
                self.want(&held, &calls);
                self.switches(&calls, refuse_switch, trusted)?;
            }
            self.memory.observed = Some(Observed::new(self.records.values().cloned().collect()));
            self.kept = self.memory.observed.clone();
        }
        let trusted = self.trustworthy();
        let d = self.decide();
        let calls: Vec<(String, Switch)> =
            d.switches.iter().map(|s| (s.arn.clone(), s.want)).collect();
        let held = d.held_switches.clone();
        let changes = d.changes.clone();
        let check_calls = d.calls.clone();
        // Made below, once the records went; decided again then.
        drop(d);
        self.want(&held, &calls);
        if switches_first {
            self.switches(&calls, refuse_switch, trusted)?;
        }
        let went = self.batches(changes, max_records, refuse_batch, trusted)?;
        if !switches_first {
            self.switches(&calls, refuse_switch, trusted)?;
        }
        if !went {
            return Ok(());
        }
        if check_calls.is_empty() {
            self.kept = self.memory.observed.clone();
            return Ok(());
        }
        // The checks, then the follow-up batch that attaches them (decided
        // again from what the store holds now, as a pass does).
        for call in &check_calls {
            if let hc::Step::Create {
                caller_reference,
                config,
            } = &call.step
            {
                let id = format!("hc-{}", self.checks.len());
                self.checks.push(HealthCheck {
                    id,
                    caller_reference: caller_reference.clone(),
                    version: 1,
                    config: config.clone(),
                });
            }
        }
        let trusted = self.trustworthy();
        let d = self.decide();
        let follow = d.changes.clone();
        drop(d);
        if self.batches(follow, max_records, None, trusted)? {
            self.kept = self.memory.observed.clone();
        }
        Ok(())
    }

    fn run(&mut self, e: Event) -> Result<(), TestCaseError> {
        match e {
            Event::Verdict { region, verdict } => {
                self.memory.verdicts.insert(region, verdict);
            }
            Event::Reload { variant } => self.config = config(variant, self.mode),
            Event::Restart => {
                self.memory = Memory::default();
                self.recalled = None;
            }
            Event::RestartRecalling => {
                self.memory = Memory::default();
                self.recalled = self.kept.clone();
            }
            Event::Drain { region, on } => {
                if on {
                    self.drained.insert(region);
                } else {
                    self.drained.remove(&region);
                }
            }
            Event::Flip { region } => {
                let on = self.real.get_mut(&arn(region)).unwrap();
                *on = !*on;
            }
            Event::Read { region } => {
                for g in (0..3).filter(|g| region.is_none_or(|r| r == *g)) {
                    let s = if self.real[&arn(g)] {
                        Switch::On
                    } else {
                        Switch::Off
                    };
                    self.memory.known.insert(arn(g), s);
                }
            }
            Event::Reconcile {
                max_records,
                refuse_batch,
                refuse_switch,
                switches_first,
            } => self.reconcile(max_records, refuse_batch, refuse_switch, switches_first)?,
        }
        Ok(())
    }

    /// Every member passing, drains lifted, the switches read: a few
    /// reconciles bring every member back, wired, its switch On.
    fn converges(&mut self) -> Result<(), TestCaseError> {
        self.drained.clear();
        for g in 0..3 {
            self.run(Event::Verdict {
                region: g,
                verdict: Verdict::Healthy,
            })?;
        }
        self.run(Event::Read { region: None })?;
        for _ in 0..4 {
            self.run(Event::Reconcile {
                max_records: 1000,
                refuse_batch: None,
                refuse_switch: None,
                switches_first: false,
            })?;
        }
        let record = self.config.records[0].clone();
        for m in &record.members {
            let key = crate::decide::ownership::member_key(&record, m);
            let r = self.records.get(&key);
            let a = arn(self.region(m));
            prop_assert!(
                r.and_then(|r| r.health_check_id.as_deref())
                    .and_then(|id| hc::switch_of(&self.checks, id))
                    == Some(a.as_str()),
                "{} is not wired to its switch: {r:?}",
                m.set_identifier
            );
            prop_assert!(self.real[&a], "{}'s switch is not On", m.set_identifier);
        }
        prop_assert_eq!(self.passing().len(), record.members.len());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn no_sequence_leaves_an_answering_record_to_fail_open(
        both in any::<bool>(),
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let mode = if both { LeverMode::SwitchesAndRecords } else { LeverMode::Switches };
        let mut world = World::new(mode);
        for e in events {
            world.run(e)?;
        }
        world.converges()?;
    }
}
