//! Verdicts and what Route53 holds → which members of a record are
//! published, and why the others are not. Pure.
//!
//! The rules, in order:
//! - a member whose record belongs to someone else (a conflict) is left alone;
//! - a healthy member is published, unless it is held by flap damping
//!   (`damped`), which withdraws it while the record keeps a published
//!   member and `min_healthy` healthy ones without it;
//! - an unknown member keeps what Route53 holds (no withdrawal at start-up);
//! - an unhealthy member is withdrawn only while at least `min_healthy`
//!   healthy members stay published, and never when it would leave the
//!   record with nothing published (`last_member`);
//! - when nothing would be published and some member is unhealthy, every
//!   unhealthy member is published (fail open, as Route53 answers with all
//!   records of a latency set when all are unhealthy);
//! - first of all, a member drained by on-call (`decide::controls`) is
//!   withdrawn whatever its verdict (`drained`) while the record keeps a
//!   published member and `min_healthy` healthy ones without it; a forced
//!   drain needs only the published member, and so does a drained member
//!   already out (it stays out: `min_healthy` stops withdrawals, it does
//!   not undo a drain). A drain the rules hold is decided as if there were
//!   no drain, and says which rule held it;
//! - last, no more than `max_withdrawn` members are out at once: a
//!   withdrawal past the cap is refused (`max_withdrawn`), the last members
//!   in config order first (Envoy's `max_ejection_percent`); a forced
//!   drain is not refused, but counts as out.
//!
//! Every rule that withdraws is checked by the safety rules, which come
//! last: no decision empties a record, takes it below `min_healthy`, or
//! past `max_withdrawn` (property tests below).

use serde::Serialize;

use crate::config::RecordConfig;
use crate::decide::verdict::Verdict;

/// One member as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberInput {
    pub verdict: Verdict,
    /// Route53 holds a record for this member now.
    pub published: bool,
    /// Route53 holds a record with this member's set identifier that this
    /// owner does not own.
    pub conflict: bool,
    /// Flap damping holds the member out (`decide::damping`).
    pub damped: bool,
    /// On-call drained it (`decide::controls`).
    pub drain: Drain,
}

/// Whether on-call drained a member, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Drain {
    #[default]
    No,
    /// Out while the safety rules allow.
    Yes,
    /// Out even below `min_healthy` or past `max_withdrawn`; never the last
    /// published member.
    Forced,
}

/// The limits a record's decisions respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Safety {
    pub min_healthy: usize,
    /// At most this many members out at once; `None`: no cap.
    pub max_withdrawn: Option<usize>,
}

impl Safety {
    pub fn of(record: &RecordConfig) -> Self {
        Safety {
            min_healthy: record.min_healthy,
            max_withdrawn: record.max_withdrawn,
        }
    }
}

/// What to do with the member's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Make sure it is present with the configured values.
    Publish,
    /// Make sure it is absent.
    Withdraw,
    /// Change nothing.
    Leave,
}

/// Why the decision is what it is; shown in status and used as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    Healthy,
    Unhealthy,
    /// No verdict yet: left as Route53 holds it.
    Unknown,
    /// Someone else's record holds this set identifier.
    Conflict,
    /// Withdrawal blocked: fewer than `min_healthy` healthy members.
    MinHealthy,
    /// Withdrawal blocked: it would leave nothing published.
    LastMember,
    /// Published although unhealthy: every member is unhealthy.
    FailOpen,
    /// Healthy, but held out by flap damping.
    Damped,
    /// Withdrawal blocked: `max_withdrawn` members are out already.
    MaxWithdrawn,
    /// Published or withdrawn on the quorum's verdict, which is not this
    /// instance's own (`decide::quorum`).
    Quorum,
    /// Withdrawn by on-call's drain (`decide::controls`).
    Drained,
    /// Unhealthy, but the withdrawal waits: its failure started while this
    /// instance reached nothing else, so it may be this instance's own
    /// trouble (`decide::correlated`). Kept as Route53 holds it.
    Correlated,
    /// Unhealthy or drained, but its routing control's state is not known
    /// (not read yet, or the cluster does not answer): whether it answers
    /// is not known, so neither its switch nor its record is touched
    /// (`decide::lever`).
    SwitchUnknown,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Healthy => "healthy",
            Why::Unhealthy => "unhealthy",
            Why::Unknown => "unknown",
            Why::Conflict => "conflict",
            Why::MinHealthy => "min_healthy",
            Why::LastMember => "last_member",
            Why::FailOpen => "fail_open",
            Why::Damped => "damped",
            Why::MaxWithdrawn => "max_withdrawn",
            Why::Quorum => "quorum",
            Why::Drained => "drained",
            Why::Correlated => "correlated",
            Why::SwitchUnknown => "switch_unknown",
        }
    }

    /// A withdrawal the safety rules refused, or one that waits for its
    /// failure to be corroborated.
    pub fn is_blocked(self) -> bool {
        matches!(
            self,
            Why::MinHealthy
                | Why::LastMember
                | Why::MaxWithdrawn
                | Why::Correlated
                | Why::SwitchUnknown
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemberDecision {
    pub intent: Intent,
    /// Whether the member is published once the decision is carried out.
    pub published: bool,
    pub why: Why,
}

fn decision(intent: Intent, published: bool, why: Why) -> MemberDecision {
    MemberDecision {
        intent,
        published,
        why,
    }
}

/// Decides every member of one record.
pub fn decide(safety: Safety, members: &[MemberInput]) -> Vec<MemberDecision> {
    let mut decisions = if members.iter().all(|m| m.drain == Drain::No || m.conflict) {
        decide_by_health(safety, members)
    } else {
        decide_drains(safety, members)
    };
    if let Some(max) = safety.max_withdrawn {
        cap_withdrawals(max, members, &mut decisions);
    }
    decisions
}

/// Drained members go out where the rules allow; the rest, and the drains
/// held, are decided by health as if the drained members that go out were
/// not there. That keeps every guarantee: what stays published without
/// the drained members (`staying`, more than none) and their healthy count
/// (at least `min_healthy`, unless forced) are what the rest start from.
fn decide_drains(safety: Safety, members: &[MemberInput]) -> Vec<MemberDecision> {
    let drained = |m: &MemberInput| m.drain != Drain::No && !m.conflict;
    let staying = members
        .iter()
        .filter(|m| !drained(m) && stays_published(m))
        .count();
    let healthy = members
        .iter()
        .filter(|m| !drained(m) && !m.conflict && m.verdict == Verdict::Healthy && !m.damped)
        .count();
    // `min_healthy` only stops a drain from withdrawing a published
    // member: a drained member already out stays out while anything else
    // stays published (on-call may be working on it; and at start-up,
    // before the others have a verdict, it must not come back).
    let out = |m: &MemberInput| {
        drained(m)
            && staying > 0
            && (m.drain == Drain::Forced || !m.published || healthy >= safety.min_healthy)
    };
    let rest: Vec<MemberInput> = members
        .iter()
        .filter(|m| !out(m))
        .map(|m| MemberInput {
            drain: Drain::No,
            ..*m
        })
        .collect();
    let mut rest = decide_by_health(safety, &rest).into_iter();
    members
        .iter()
        .map(|m| {
            if out(m) {
                return decision(Intent::Withdraw, false, Why::Drained);
            }
            let mut d = rest.next().expect("one decision per member left");
            if drained(m) {
                d.why = match (d.published, staying) {
                    // Out anyway (unhealthy, or not published yet).
                    (false, _) => Why::Drained,
                    (true, 0) => Why::LastMember,
                    (true, _) => Why::MinHealthy,
                };
            }
            d
        })
        .collect()
}

/// Published whatever happens to the unhealthy, damped and drained members.
fn stays_published(m: &MemberInput) -> bool {
    if m.conflict || m.verdict == Verdict::Unknown {
        m.published
    } else {
        m.verdict == Verdict::Healthy && !m.damped
    }
}

/// The rules by verdict and damping, without drains and the cap.
fn decide_by_health(safety: Safety, members: &[MemberInput]) -> Vec<MemberDecision> {
    let live = |m: &&MemberInput| !m.conflict;
    let healthy_undamped = members
        .iter()
        .filter(live)
        .filter(|m| m.verdict == Verdict::Healthy && !m.damped)
        .count();
    let staying_base = members.iter().filter(|m| stays_published(m)).count();
    // Damping holds a healthy member out only while the record keeps a
    // published member and `min_healthy` healthy ones without it.
    let damping_holds = staying_base > 0 && healthy_undamped >= safety.min_healthy;
    let damped_in = if damping_holds {
        0
    } else {
        members
            .iter()
            .filter(live)
            .filter(|m| m.verdict == Verdict::Healthy && m.damped)
            .count()
    };
    let healthy = healthy_undamped + damped_in;
    let staying = staying_base + damped_in;
    let unhealthy_published = members
        .iter()
        .any(|m| !m.conflict && m.verdict == Verdict::Unhealthy && m.published);

    members
        .iter()
        .map(|m| {
            if m.conflict {
                return decision(Intent::Leave, m.published, Why::Conflict);
            }
            match m.verdict {
                Verdict::Healthy if m.damped && damping_holds => {
                    decision(Intent::Withdraw, false, Why::Damped)
                }
                Verdict::Healthy if m.damped => {
                    let why = if staying_base == 0 {
                        Why::LastMember
                    } else {
                        Why::MinHealthy
                    };
                    decision(Intent::Publish, true, why)
                }
                Verdict::Healthy => decision(Intent::Publish, true, Why::Healthy),
                Verdict::Unknown => decision(Intent::Leave, m.published, Why::Unknown),
                Verdict::Unhealthy if m.published => {
                    if staying == 0 {
                        decision(Intent::Publish, true, Why::LastMember)
                    } else if healthy < safety.min_healthy {
                        decision(Intent::Publish, true, Why::MinHealthy)
                    } else {
                        decision(Intent::Withdraw, false, Why::Unhealthy)
                    }
                }
                Verdict::Unhealthy => {
                    if staying == 0 && !unhealthy_published {
                        decision(Intent::Publish, true, Why::FailOpen)
                    } else {
                        decision(Intent::Withdraw, false, Why::Unhealthy)
                    }
                }
            }
        })
        .collect()
}

/// Refuses the withdrawals of published members that would leave more than
/// `max` members out, the last in config order first. Members already out
/// stay out: the cap limits new withdrawals, it does not publish. A forced
/// drain is on-call's word: it counts as out, and is not refused.
fn cap_withdrawals(max: usize, members: &[MemberInput], decisions: &mut [MemberDecision]) {
    let mut out = members
        .iter()
        .zip(decisions.iter())
        .filter(|(m, d)| !m.conflict && !d.published)
        .count();
    for (m, d) in members.iter().zip(decisions.iter_mut()).rev() {
        if out <= max {
            break;
        }
        if m.published && !m.conflict && d.intent == Intent::Withdraw && m.drain != Drain::Forced {
            *d = decision(Intent::Publish, true, Why::MaxWithdrawn);
            out -= 1;
        }
    }
}

#[cfg(test)]
mod tests;
