//! A member's handle: its config, its labels, and the only ways to change
//! its state, one method per kind of write and so one per writer: the
//! prober (`against_baseline`, `probed`), the view exchange (`votes_read`),
//! discovery (`discovered`, `discovery_failed`), the reconciler (`decided`, `carries_check`,
//! `check_failed`, `published`) and the task that reads Route53's checkers
//! (`route53_read`). Readers get a `&MemberState` inside `read`, never a
//! guard they could write through.

use std::time::{Duration, Instant, SystemTime};

use super::state::{lock, MemberId, MemberState, Route53Health, Runtime};
use crate::config::{MemberConfig, RecordConfig, Target};
use crate::decide::baseline::Judged;
use crate::decide::policy::Why;
use crate::decide::quorum::{self, Vote};
use crate::decide::verdict::{Transition, Verdict};
use crate::decide::zone::MemberOutcome;
use crate::metrics::{rtype_str, MemberLabels};
use crate::probe::{Failure, FailureKind, ProbeResult};
use crate::provider::{AliasTarget, CheckerReport};

/// One member: its config, its labels, and the only ways to change its state.
#[derive(Clone, Copy)]
pub struct Member<'a> {
    rt: &'a Runtime,
    pub id: MemberId,
}

impl Runtime {
    /// The handle of one member.
    pub fn member(&self, id: MemberId) -> Member<'_> {
        Member { rt: self, id }
    }
}

/// What one probe outcome did to a member's verdict.
pub struct Probed {
    /// This instance's verdict changed.
    pub transition: Option<Transition>,
    /// The agreed verdict changed (the one the writer acts on).
    pub agreed: Option<Transition>,
    /// The verdict may change soon (`Health::unsettled`), before and after
    /// this outcome.
    pub was_edge: bool,
    pub is_edge: bool,
    /// With a transition: the failure behind the new verdict, for its log line.
    pub reason: Option<String>,
    /// This outcome began a failure run: is it the member's, or this
    /// instance's? (`Signals::sound_witness_alarm`).
    pub failing_began: bool,
}

impl<'a> Member<'a> {
    pub fn record(&self) -> &'a RecordConfig {
        &self.rt.config.records[self.id.record]
    }

    pub fn config(&self) -> &'a MemberConfig {
        &self.record().members[self.id.member]
    }

    pub fn labels(&self) -> MemberLabels<'a> {
        let r = self.record();
        MemberLabels {
            record: &r.name,
            rtype: rtype_str(&r.rtype),
            region: &self.config().region,
        }
    }

    /// Reads the state; the lock is held for `f` only.
    pub fn read<R>(&self, f: impl FnOnce(&MemberState) -> R) -> R {
        f(&lock(self.rt.slot(self.id)))
    }

    fn write<R>(&self, f: impl FnOnce(&mut MemberState) -> R) -> R {
        f(&mut lock(self.rt.slot(self.id)))
    }

    /// The prober, before `probed`: with `expect.slow_vs_baseline`, a good
    /// answer far slower than the member's own baseline becomes a `slow`
    /// failure; a normal one feeds the baseline.
    pub fn against_baseline(&self, result: &mut ProbeResult) {
        let Some(settings) = self.config().probe.slow_vs_baseline else {
            return;
        };
        if result.failure.is_some() {
            return;
        }
        let total = result.timings.total;
        let judged = self.write(|m| m.baseline.judge(total, result.at, &settings));
        if let Judged::Slow { baseline_ms } = judged {
            result.failure = Some(Failure {
                kind: FailureKind::Slow,
                detail: format!(
                    "answered in {}ms, over {}x its baseline of {baseline_ms:.0}ms",
                    total.as_millis(),
                    settings.factor
                ),
            });
        }
    }

    /// The prober: one probe's outcome feeds the verdict. A probe that
    /// observed nothing of the member (no token, a local error:
    /// `FailureKind::observes`) is shown, and changes nothing else.
    pub fn probed(&self, result: ProbeResult, sent: Instant) -> Probed {
        let outcome = match &result.failure {
            None => Ok(()),
            Some(f) => Err(f.to_string()),
        };
        let at = result.at;
        self.write(|m| {
            m.counters.probed(
                result.failure.as_ref().map(|f| f.kind),
                result.timings.total,
            );
            let was_edge = m.health.unsettled();
            if !result.observes() {
                m.last_probe = Some(result);
                return Probed {
                    transition: None,
                    agreed: None,
                    was_edge,
                    is_edge: was_edge,
                    reason: None,
                    failing_began: false,
                };
            }
            let was_failing = m.seen.failing_since.is_some();
            m.seen.observed(result.ok(), sent, Instant::now());
            let failing_began = !was_failing && m.seen.failing_since.is_some();
            if result.ok() {
                self.rt.note_pass(self.id, sent);
            }
            let transition = m.health.observe(outcome, at);
            if let Some(t) = &transition {
                m.counters.verdict_changed(t.from, t.to);
            }
            m.cert_not_after = result.cert_not_after.or(m.cert_not_after);
            m.trend.record(at, result.timings.total, result.ok());
            m.last_probe = Some(result);
            if let Some(t) = &transition {
                if t.from == Verdict::Unhealthy || t.to == Verdict::Unhealthy {
                    self.rt.local_unhealthy(t.to == Verdict::Unhealthy);
                }
            }
            let agreed = self.agree(m, at);
            Probed {
                agreed,
                reason: transition
                    .as_ref()
                    .and_then(|_| m.health.reason().map(str::to_string)),
                transition,
                was_edge,
                is_edge: m.health.unsettled(),
                failing_began,
            }
        })
    }

    /// The view exchange read the other instances' views of the member.
    pub fn votes_read(&self, votes: Vec<Vote>, now: SystemTime) -> Option<Transition> {
        self.write(|m| {
            m.votes = votes;
            self.agree(m, now)
        })
    }

    /// This instance's side of the member's count (`decide::quorum`).
    pub fn local(&self, m: &MemberState) -> quorum::Local {
        m.local(!self.rt.sees_everything_down())
    }

    /// The agreed verdict from this instance's and the others' (`decide::
    /// quorum`), the votes aged now; its changes feed flap damping (a
    /// flap is counted in the member's counters).
    fn agree(&self, m: &mut MemberState, now: SystemTime) -> Option<Transition> {
        let max_age = self
            .rt
            .config
            .ha
            .as_ref()
            .map_or(Duration::MAX, |ha| ha.view_max_age);
        let to = quorum::agree(
            self.record().quorum,
            m.agreed,
            &self.local(m),
            &m.votes,
            Instant::now(),
            max_age,
        );
        if to == m.agreed {
            return None;
        }
        let t = Transition { from: m.agreed, to };
        m.agreed = to;
        let flapped = self
            .record()
            .damping
            .is_some_and(|settings| m.damping.verdict_changed(t.from, t.to, now, &settings));
        if flapped {
            m.counters.flapped();
        }
        Some(t)
    }

    /// Discovery found the member's API Gateway target; returns whether it
    /// differs from the one known.
    pub fn discovered(&self, target: AliasTarget) -> bool {
        self.write(|m| {
            m.discovery_error = None;
            m.discovered_from_zone = false;
            let changed = m.discovered.as_ref() != Some(&target);
            m.discovered = Some(target);
            changed
        })
    }

    /// The reconciler: no lookup has worked yet (API Gateway down in the
    /// region after a restart, say), and the zone's record holds an alias
    /// for the member: that target stands in, so the member is probed and
    /// its failure withdrawn. A lookup that works replaces it.
    pub fn discovered_in_zone(&self, alias: &AliasTarget) -> Option<AliasTarget> {
        let Target::ApiGateway {
            evaluate_target_health,
            ..
        } = &self.config().target
        else {
            return None;
        };
        self.write(|m| {
            if m.discovered.is_none() {
                m.discovered = Some(AliasTarget {
                    evaluate_target_health: *evaluate_target_health,
                    ..alias.clone()
                });
                m.discovered_from_zone = true;
            }
            m.discovered.clone()
        })
    }

    /// Discovery failed; the last target found stays in use.
    pub fn discovery_failed(&self, error: String) {
        self.write(|m| m.discovery_error = Some(error));
    }

    /// The reconciler's decision for the member; returns the previous
    /// reason, so a change can be logged once.
    pub fn decided(&self, outcome: &MemberOutcome) -> Option<Why> {
        self.carries_check(outcome.check.clone());
        self.write(|m| {
            m.conflict = outcome.conflict;
            m.why.replace(outcome.decision.why)
        })
    }

    /// Which health check the member's record carries; Route53's view of a
    /// check it no longer uses is dropped.
    pub fn carries_check(&self, id: Option<String>) {
        self.write(|m| {
            if m.health_check_id != id {
                m.route53_health = None;
            }
            m.health_check_id = id;
        });
    }

    /// When the member's damping hold ends, if damping holds it at `now`.
    pub fn held_until(&self, now: SystemTime) -> Option<SystemTime> {
        self.record().damping?;
        self.read(|m| m.damping.held_until(now))
    }

    /// A health check call for the member failed (`Some`) or succeeded.
    pub fn check_failed(&self, error: Option<String>) {
        self.write(|m| m.health_check_error = error);
    }

    /// Whether the provider holds the member's record now.
    pub fn published(&self, present: bool) {
        self.write(|m| {
            if m.published && !present {
                m.withdrawn_at = Some(SystemTime::now());
            }
            m.published = present;
        });
    }

    /// What Route53's checkers said of check `id`; ignored when the member
    /// has moved to another check meanwhile.
    pub fn route53_read(&self, id: &str, report: CheckerReport) {
        self.write(|m| {
            if m.health_check_id.as_deref() == Some(id) {
                m.route53_health = Some(Route53Health {
                    report,
                    at: SystemTime::now(),
                });
            }
        });
    }
}
