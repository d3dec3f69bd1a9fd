//! The view exchange behind the quorum of vantage points (`decide::quorum`):
//! with `ha`, each instance keeps its own verdicts in a view of its own and
//! reads the others' in one listing: items of the state store when there
//! is one (a data plane), else TXT records
//! `<identity>._route53-failover-views.<lease zone>` (`transport`).
//!
//! Cost, per instance: its view is written when one of its verdicts
//! changes and every third of `ha.view_max_age` (0.033 writes/s by
//! default); the others' views are read in one request every 10 s (0.1
//! reads/s). Faster only while a decision waits on them:
//! - every 250 ms while one of its own runs may turn a verdict (a member
//!   failing, or recovering), for up to 30 s after one of its own
//!   verdicts changed while the quorum does not agree with it yet (an
//!   incident: every instance sees the change at about the same time), and
//!   for up to 30 s after another instance's view changed to say otherwise
//!   than this one on some member (a failure the others see first, or this
//!   instance cannot see: the rest of them may follow within seconds);
//! - every 750 ms while the lease's holder is outvoted on some member (its
//!   own path to it is broken, which status and metrics show): it then
//!   learns only from the others, and a real failure they see must still
//!   reach it within a second, request time included.
//!
//! Each instance writes only its own record, so no lease fences it; the
//! lease's holder deletes views left by instances gone for ten times the
//! max age.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::controller::report;
use crate::controller::{MemberId, Runtime, ZoneSignals};
use crate::decide::quorum::{self, View};
use crate::decide::verdict::Verdict;
use crate::provider::RecordSet;

mod transport;
pub(in crate::controller) use transport::Views;

/// How often the others' views are read in the steady state.
const READ_EVERY: Duration = Duration::from_secs(10);
/// How often they are read while this instance's verdict on a member
/// differs from the agreed one, after one of its verdicts changed.
const PENDING_POLL: Duration = Duration::from_millis(250);
/// For how long after a verdict change.
const PENDING_FOR: Duration = Duration::from_secs(30);
/// How often the lease's holder reads them while it is outvoted.
const OUTVOTED_POLL: Duration = Duration::from_millis(750);
/// Verdicts that change together (a region's members) go out in one write.
const GATHER: Duration = Duration::from_millis(50);
/// After a failed call.
const RETRY: Duration = Duration::from_secs(1);

pub(in crate::controller) struct ViewExchange {
    rt: Arc<Runtime>,
    /// Where the views are kept.
    views: Views,
    members: Vec<(MemberId, Arc<ZoneSignals>)>,
    /// Per member, in `members` order.
    keys: Vec<String>,
    fingerprint: String,
    /// The lists of the view last written, and when.
    written: Option<(BTreeSet<String>, BTreeSet<String>, Instant)>,
    /// Per other instance: its view's content as last read, and since when
    /// it has held that content at the latest (monotonic; see `read`).
    contents: std::collections::HashMap<String, (Vec<String>, Instant)>,
    /// When the last listing that went through was sent.
    last_read: Option<Instant>,
    /// The (instance, member) pairs whose vote says otherwise than this
    /// instance's verdict, as last read, and when a pair last joined them
    /// (a failure the others see first, or alone).
    at_odds: std::collections::HashSet<(String, MemberId)>,
    contradicted: Option<Instant>,
}

impl ViewExchange {
    pub(in crate::controller) fn new(
        rt: Arc<Runtime>,
        views: Views,
        members: Vec<(MemberId, Arc<ZoneSignals>)>,
    ) -> Self {
        let keys: Vec<String> = members
            .iter()
            .map(|(id, _)| {
                let m = rt.member(*id);
                quorum::member_key(m.record(), m.config())
            })
            .collect();
        let fingerprint = quorum::fingerprint(&keys);
        ViewExchange {
            rt,
            views,
            members,
            keys,
            fingerprint,
            written: None,
            contents: Default::default(),
            last_read: None,
            at_odds: Default::default(),
            contradicted: None,
        }
    }

    pub(in crate::controller) async fn run(mut self, stop: CancellationToken) {
        let Some(ha) = self.rt.config.ha.clone() else {
            return;
        };
        let heartbeat = ha.view_max_age / 3;
        let name = quorum::view_name(&ha.identity, &ha.zone);
        let mut changed_at: Option<Instant> = None;
        let mut next_read = Instant::now();
        loop {
            let mut retry = false;
            let heartbeat_due = self
                .written
                .as_ref()
                .is_none_or(|w| w.2.elapsed() >= heartbeat);
            if self.own_lists_changed() || heartbeat_due {
                retry |= !self.write(&name).await;
            }
            if Instant::now() >= next_read {
                retry |= !self.read(&ha).await;
                let outvoted = self.outvoted();
                let recent = |t: Option<Instant>| t.is_some_and(|t| t.elapsed() < PENDING_FOR);
                let pending = (outvoted && recent(changed_at)) || recent(self.contradicted);
                // While a run may turn a verdict, the others' views are read
                // fast: at `fall` this instance counts them as they are now.
                let every = if pending || self.any_in_run() {
                    PENDING_POLL
                } else if outvoted && self.rt.may_write() {
                    OUTVOTED_POLL
                } else {
                    READ_EVERY
                };
                next_read = Instant::now() + every;
            }
            let next_write = self
                .written
                .as_ref()
                .map_or(Instant::now(), |w| w.2 + heartbeat);
            let mut wake = next_read.min(next_write);
            if retry {
                wake = wake.min(Instant::now() + RETRY);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = self.rt.signals.views_wake.notified() => {
                    tokio::time::sleep(GATHER).await;
                    changed_at = Some(Instant::now());
                    next_read = Instant::now();
                }
                _ = stop.cancelled() => return,
            }
        }
    }

    /// The keys of the members this instance sees unhealthy, and unknown.
    fn own_lists(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut unhealthy = BTreeSet::new();
        let mut unknown = BTreeSet::new();
        for ((id, _), key) in self.members.iter().zip(&self.keys) {
            match self.rt.member(*id).read(|m| m.health.verdict()) {
                Verdict::Unhealthy => unhealthy.insert(key.clone()),
                Verdict::Unknown => unknown.insert(key.clone()),
                Verdict::Healthy => false,
            };
        }
        (unhealthy, unknown)
    }

    fn own_lists_changed(&self) -> bool {
        let (unhealthy, unknown) = self.own_lists();
        self.written
            .as_ref()
            .is_none_or(|w| w.0 != unhealthy || w.1 != unknown)
    }

    /// A run that may turn one of this instance's verdicts is under way.
    fn any_in_run(&self) -> bool {
        self.members
            .iter()
            .any(|(id, _)| self.rt.member(*id).read(|m| m.health.in_run()))
    }

    /// This instance's own verdict on some member is known and differs
    /// from the agreed one.
    fn outvoted(&self) -> bool {
        self.members.iter().any(|(id, _)| {
            self.rt
                .member(*id)
                .read(|m| m.health.verdict() != Verdict::Unknown && m.health.verdict() != m.agreed)
        })
    }

    /// Writes this instance's view; returns whether it went through.
    async fn write(&mut self, name: &str) -> bool {
        let (unhealthy, unknown) = self.own_lists();
        let ha = self.rt.config.ha.as_ref().expect("views need ha");
        let view = View {
            instance: ha.identity.clone(),
            at: SystemTime::now(),
            members: self.fingerprint.clone(),
            count: self.keys.len(),
            unhealthy: unhealthy.clone(),
            unknown: unknown.clone(),
            partial: false,
        };
        match self.views.write(&ha.identity, view.to_record(name)).await {
            Ok(_) => {
                debug!(
                    unhealthy = unhealthy.len(),
                    unknown = unknown.len(),
                    "view written"
                );
                self.written = Some((unhealthy, unknown, Instant::now()));
                self.rt.update_views(|v| {
                    v.last_write = Some(view.at);
                    v.last_error = None;
                });
                true
            }
            Err(e) => {
                self.failed(format!("writing this instance's view: {e}"));
                false
            }
        }
    }

    /// Reads every instance's view and brings each member's agreed verdict
    /// up to date; returns whether the read went through.
    async fn read(&mut self, ha: &crate::config::HaConfig) -> bool {
        let sent = Instant::now();
        let records = match self.views.list().await {
            Ok(r) => r,
            Err(e) => {
                self.failed(format!("reading the views: {e}"));
                return false;
            }
        };
        let now = SystemTime::now();
        let mono = Instant::now();
        // Each view with the earliest instant its content can have been
        // written, on this instance's clock (no wall clock compared): a
        // content first seen now was not there when the previous listing
        // was sent. That ages its votes, and tells a view refreshed since
        // a failure began from one written before it and read only now.
        let since = self.last_read.replace(sent).unwrap_or(sent);
        let views: Vec<(View, Instant)> = records
            .iter()
            .filter_map(|r| Some((View::parse(r)?, r)))
            .map(|(v, r)| {
                let changed = match self.contents.get(&v.instance) {
                    Some((values, at)) if *values == r.values => *at,
                    _ => {
                        self.contents
                            .insert(v.instance.clone(), (r.values.clone(), since));
                        since
                    }
                };
                (v, changed)
            })
            .collect();
        self.contents
            .retain(|instance, _| views.iter().any(|(v, _)| &v.instance == instance));
        let mut at_odds = std::collections::HashSet::new();
        for ((id, signals), key) in self.members.iter().zip(&self.keys) {
            let votes = quorum::votes(&views, &ha.identity, key, &self.fingerprint);
            let member = self.rt.member(*id);
            let local = member.read(|m| member.local(m));
            // Another instance has come to see this member otherwise: the
            // rest may follow within seconds, so read fast a while.
            for v in &votes {
                let differs = v.ignored.is_none()
                    && local.verdict != Verdict::Unknown
                    && ![Verdict::Unknown, local.verdict].contains(&v.verdict);
                if differs {
                    at_odds.insert((v.instance.clone(), *id));
                }
            }
            if let Some(t) = member.votes_read(votes, now) {
                report::agreed_changed(&self.rt, member.labels(), &t, "the other instances' views");
                signals.trigger.notify_one();
            }
        }
        if !at_odds.is_subset(&self.at_odds) {
            self.contradicted = Some(mono);
        }
        self.at_odds = at_odds;
        let others = views
            .iter()
            .filter(|(v, _)| v.instance != ha.identity)
            .count();
        self.rt.update_views(|v| {
            v.last_read = Some(now);
            v.instances = others;
            v.last_error = None;
        });
        self.forget_gone(&records, ha).await;
        true
    }

    /// The holder deletes the views of instances gone for ten times the
    /// max age (a pod replaced without a clean stop): unchanged that long
    /// on this instance's clock.
    async fn forget_gone(&self, records: &[RecordSet], ha: &crate::config::HaConfig) {
        if !self.rt.may_write() {
            return;
        }
        let long_ago = |instance: &str| {
            self.contents
                .get(instance)
                .is_some_and(|(_, changed)| changed.elapsed() > ha.view_max_age * 10)
        };
        let (instances, gone): (Vec<String>, Vec<RecordSet>) = records
            .iter()
            .filter_map(|r| Some((View::parse(r)?, r)))
            .filter(|(v, _)| v.instance != ha.identity && long_ago(&v.instance))
            .map(|(v, r)| (v.instance, r.clone()))
            .unzip();
        if gone.is_empty() {
            return;
        }
        let names: Vec<&str> = instances.iter().map(String::as_str).collect();
        match self.views.delete(&names, gone).await {
            Ok(()) => info!(
                views = names.len(),
                "deleted the views of instances long gone"
            ),
            Err(e) => warn!(error = %e, "could not delete the views of instances long gone"),
        }
    }

    fn failed(&self, error: String) {
        warn!(error = %error, "view exchange failed; retrying");
        self.rt.update_views(|v| v.last_error = Some(error));
    }
}
