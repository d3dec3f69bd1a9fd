//! The member table's rows: what is known of one member ([`MemberState`]),
//! and where it is in the config ([`MemberId`]). A row changes only
//! through the named writers of its handle (`controller::member`).

use std::time::SystemTime;

use crate::config::MemberConfig;
use crate::decide::baseline::Baseline;
use crate::decide::correlated::Seen;
use crate::decide::damping::Damping;
use crate::decide::policy::Why;
use crate::decide::quorum::Vote;
use crate::decide::verdict::{Health, Verdict};
use crate::metrics::MemberCounters;
use crate::probe::ProbeResult;
use crate::provider::{AliasTarget, CheckerReport};
use crate::trend::Trend;

/// What is known of one member. A std `Mutex` guards it: held for a few
/// field updates only, never across an `.await`.
#[derive(Debug, Clone)]
pub struct MemberState {
    /// This instance's verdict, from its own probes.
    pub health: Health,
    /// The verdict the writer acts on: with `ha` and `policy.quorum:
    /// majority`, what a quorum of the instances agree on
    /// (`decide::quorum`); else this instance's verdict.
    pub agreed: Verdict,
    /// The other instances' views of the member, as last read (with `ha`).
    pub votes: Vec<Vote>,
    /// Its failure run and last pass, for `decide::correlated`.
    pub seen: Seen,
    /// The member's flaps and hold, fed with its verdict changes.
    pub damping: Damping,
    /// Its latency baseline, with `expect.slow_vs_baseline`.
    pub baseline: Baseline,
    pub last_probe: Option<ProbeResult>,
    /// The last 15 minutes of probes, for the page's sparkline.
    pub trend: Trend,
    /// HTTPS: when the leaf certificate last served expires (kept while
    /// later probes fail before TLS).
    pub cert_not_after: Option<SystemTime>,
    /// The provider holds the member's record (as last read or written).
    pub published: bool,
    /// When it last stopped being published (the traffic confirmation
    /// measures from it).
    pub withdrawn_at: Option<SystemTime>,
    /// The policy's latest reason, once a reconcile has run.
    pub why: Option<Why>,
    pub conflict: bool,
    /// An API Gateway target's regional endpoint, once discovered.
    pub discovered: Option<AliasTarget>,
    /// `discovered` was taken from the alias the zone's record holds: no
    /// lookup has worked yet (`Member::discovered_in_zone`).
    pub discovered_from_zone: bool,
    pub discovery_error: Option<String>,
    /// The Route53 health check the member's record carries (or will).
    pub health_check_id: Option<String>,
    /// Why the member's health check could not be created or updated.
    pub health_check_error: Option<String>,
    /// What Route53's checkers last said of that check.
    pub route53_health: Option<Route53Health>,
    /// Its probes, verdict changes and flaps, for `/metrics`.
    pub counters: MemberCounters,
}

impl MemberState {
    /// This instance's side of the member's count (`decide::quorum`):
    /// its verdict, and since when its probes have said so; `counts` is
    /// false while it sees every member unhealthy.
    pub fn local(&self, counts: bool) -> crate::decide::quorum::Local {
        let verdict = self.health.verdict();
        crate::decide::quorum::Local {
            verdict,
            counts,
            since: match verdict {
                Verdict::Unhealthy => self.seen.failing_since,
                Verdict::Healthy => self.seen.passing_since,
                Verdict::Unknown => None,
            },
        }
    }

    pub(super) fn new(config: &MemberConfig, now: SystemTime) -> Self {
        MemberState {
            health: Health::new(config.probe.rise, config.probe.fall, now),
            agreed: Verdict::Unknown,
            votes: Vec::new(),
            seen: Seen::default(),
            damping: Damping::default(),
            baseline: Baseline::default(),
            last_probe: None,
            trend: Trend::default(),
            cert_not_after: None,
            published: false,
            withdrawn_at: None,
            why: None,
            conflict: false,
            discovered: None,
            discovered_from_zone: false,
            discovery_error: None,
            health_check_id: None,
            health_check_error: None,
            route53_health: None,
            counters: MemberCounters::default(),
        }
    }
}

/// Route53's own view of a member, from `GetHealthCheckStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route53Health {
    pub report: CheckerReport,
    pub at: SystemTime,
}

/// Where a member is in the config: `config.records[record].members[member]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId {
    pub record: usize,
    pub member: usize,
}
