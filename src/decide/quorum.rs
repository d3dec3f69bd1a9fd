//! A quorum of vantage points. With `ha` every instance probes every member
//! and keeps its view in a TXT record of its own in the lease's zone; a
//! member is withdrawn only when a quorum of the instances with a fresh view
//! agree it is unhealthy, and restored on the same rule. A broken path from
//! one cluster (a NAT gateway, a peering link) then no longer pulls a region
//! every user can still reach. Pure: views come in as values, the time as
//! an argument.
//!
//! The rule, per member, with `policy.quorum: majority`:
//! - the voters are this instance and every other instance whose view is
//!   fresh (its content last changed less than `ha.view_max_age` ago, on
//!   *this* instance's monotonic clock: no wall clock is compared), made
//!   from the same members (the same config), whole, and with a verdict on
//!   the member (a view that does not know it yet abstains);
//! - a vote that says otherwise than this instance's own probes, and has
//!   not changed since those probes began to say what they say, is no
//!   evidence about the member: the instances lost with a region keep
//!   their last "healthy" until their views go stale, and must not outvote
//!   the survivors meanwhile;
//! - an instance that sees *every* member unhealthy is not a voter, this
//!   one included: its own network is the likelier cause;
//! - of `n` voters, `n/2 + 1` unhealthy verdicts make the agreed verdict
//!   unhealthy and as many healthy ones make it healthy; short of that it
//!   stays as it was, so one view out of three never withdraws a member and
//!   never restores one;
//! - one voter decides only when no other instance has a fresh view: while
//!   one does, a lone verdict (this instance's or a peer's) keeps what was
//!   (the others' views refresh within a heartbeat and then count);
//! - with no voter left, this instance's own verdict stands (and with one
//!   instance, a majority is that instance).
//!
//! `policy.quorum: any` is this instance's verdict alone, as without `ha`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{short_digest, MemberConfig, Quorum, RecordConfig};
use crate::decide::verdict::Verdict;
use crate::provider::{RecordSet, RecordType};

/// The first word of a view's first TXT value.
pub const HERITAGE: &str = "route53-failover-view";
/// Views live below `_route53-failover-views.<zone>`, one name per instance.
pub const VIEWS_LABEL: &str = "_route53-failover-views";

/// Route53 holds at most 255 characters per TXT string.
const TXT_MAX: usize = 255;
/// A view's TXT values after the first, at most: a record stays well inside
/// one change batch (32,000 characters, an `UPSERT` counting twice), and
/// lists about 1,100 members that are not healthy.
const MAX_LIST_VALUES: usize = 58;

/// The name below which every instance keeps its view.
pub fn views_parent(zone: &str) -> String {
    format!("{VIEWS_LABEL}.{zone}")
}

/// The name of one instance's view record.
pub fn view_name(identity: &str, zone: &str) -> String {
    format!("{identity}.{VIEWS_LABEL}.{zone}")
}

/// A member's key in views: the same for every instance with the config.
pub fn member_key(record: &RecordConfig, member: &MemberConfig) -> String {
    short_digest(
        format!(
            "{}\n{}\n{}",
            record.name, record.rtype, member.set_identifier
        )
        .as_bytes(),
    )
}

/// Names a set of members (`keys` in any order): two views count for each
/// other only when they are made from the same members.
pub fn fingerprint(keys: &[String]) -> String {
    let sorted: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let joined: Vec<&str> = sorted.into_iter().collect();
    short_digest(joined.join(",").as_bytes())
}

/// One instance's view of the members, as kept in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub instance: String,
    /// When the instance wrote it, by its clock.
    pub at: SystemTime,
    /// The fingerprint of the members it probes.
    pub members: String,
    /// How many members it probes.
    pub count: usize,
    /// Keys of the members it sees unhealthy, and of those it has no
    /// verdict for yet; every other member it sees healthy.
    pub unhealthy: BTreeSet<String>,
    pub unknown: BTreeSet<String>,
    /// The lists did not fit a record: the view does not count.
    pub partial: bool,
}

/// Why a view does not count toward a quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Its content has not changed for `ha.view_max_age` (this instance's
    /// clock): its writer is gone, or cannot write.
    Stale,
    /// Made from other members (another config, during a rollout).
    OtherConfig,
    /// Its lists did not fit its record.
    Partial,
    /// It sees every member unhealthy.
    EverythingDown,
    /// It has no verdict on the member yet (starting).
    Abstains,
    /// It says otherwise than this instance's own probes, and has not
    /// changed since they began to say what they say.
    Unrefreshed,
}

impl Ignored {
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Stale => "stale",
            Ignored::OtherConfig => "other_config",
            Ignored::Partial => "partial",
            Ignored::EverythingDown => "sees_everything_down",
            Ignored::Abstains => "abstains",
            Ignored::Unrefreshed => "unrefreshed",
        }
    }
}

/// Another instance's verdict on one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub instance: String,
    pub verdict: Verdict,
    /// When the view was written, by its writer's clock (shown only).
    pub written: SystemTime,
    /// Since when the view has held this content at the latest, on this
    /// instance's monotonic clock (when the last listing without it was
    /// sent): what ages the vote, and what tells a refreshed view from one
    /// written before this instance's probes turned.
    pub changed: Instant,
    /// Why it does not count, whatever the time (`Some`: shown only).
    pub ignored: Option<Ignored>,
}

/// This instance's side of a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    pub verdict: Verdict,
    /// False while this instance sees every member unhealthy.
    pub counts: bool,
    /// Since when its own probes have said what its verdict says (the run
    /// of failures behind `unhealthy`, of passes behind `healthy`).
    pub since: Option<Instant>,
}

impl Vote {
    /// Why this vote does not count at `now`, if it does not: aged at use,
    /// so a vote ages even while the views cannot be read.
    pub fn standing(&self, local: &Local, now: Instant, max_age: Duration) -> Option<Ignored> {
        if let Some(i) = self.ignored {
            return Some(i);
        }
        if now.saturating_duration_since(self.changed) > max_age {
            return Some(Ignored::Stale);
        }
        if self.verdict == Verdict::Unknown {
            return Some(Ignored::Abstains);
        }
        let contradicts = local.verdict != Verdict::Unknown && self.verdict != local.verdict;
        if contradicts && local.since.is_some_and(|since| self.changed < since) {
            return Some(Ignored::Unrefreshed);
        }
        None
    }

    /// The view is fresh and of this config: its writer is alive and
    /// would vote, given time.
    fn alive(&self, now: Instant, max_age: Duration) -> bool {
        matches!(self.ignored, None | Some(Ignored::EverythingDown))
            && now.saturating_duration_since(self.changed) <= max_age
    }
}

impl View {
    /// The view's verdict on the member with `key`.
    pub fn verdict(&self, key: &str) -> Verdict {
        if self.unhealthy.contains(key) {
            Verdict::Unhealthy
        } else if self.unknown.contains(key) {
            Verdict::Unknown
        } else {
            Verdict::Healthy
        }
    }

    pub fn sees_everything_down(&self) -> bool {
        self.count > 0 && self.unhealthy.len() >= self.count
    }

    /// The TXT record at `name`: a header, then the keys of the members
    /// not healthy, as many per string as fit.
    pub fn to_record(&self, name: &str) -> RecordSet {
        let mut lists = Vec::new();
        for (word, keys) in [("unhealthy", &self.unhealthy), ("unknown", &self.unknown)] {
            let mut line = String::new();
            for k in keys {
                if !line.is_empty() && line.len() + 1 + k.len() > TXT_MAX - 2 {
                    lists.push(std::mem::take(&mut line));
                }
                if line.is_empty() {
                    line.push_str(word);
                }
                line.push(' ');
                line.push_str(k);
            }
            if !line.is_empty() {
                lists.push(line);
            }
        }
        let partial = self.partial || lists.len() > MAX_LIST_VALUES;
        lists.truncate(MAX_LIST_VALUES);
        let at = self
            .at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let mut header = format!(
            "{HERITAGE} id={} at={at} members={} count={}",
            self.instance, self.members, self.count
        );
        if partial {
            header.push_str(" partial");
        }
        let values = std::iter::once(header)
            .chain(lists)
            .map(|v| format!("\"{v}\""))
            .collect();
        RecordSet::txt(name, values)
    }

    /// Reads a view record; `None` for anything else.
    pub fn parse(record: &RecordSet) -> Option<View> {
        if record.rtype != RecordType::Txt {
            return None;
        }
        let mut view: Option<View> = None;
        let mut unhealthy = BTreeSet::new();
        let mut unknown = BTreeSet::new();
        for value in &record.values {
            let mut words = value.trim().trim_matches('"').split_whitespace();
            match words.next()? {
                HERITAGE => view = Some(header(words)?),
                "unhealthy" => unhealthy.extend(words.map(str::to_string)),
                "unknown" => unknown.extend(words.map(str::to_string)),
                _ => return None,
            }
        }
        let mut view = view?;
        view.unhealthy = unhealthy;
        view.unknown = unknown;
        Some(view)
    }
}

fn header<'a>(words: impl Iterator<Item = &'a str>) -> Option<View> {
    let (mut id, mut at, mut members, mut count, mut partial) = (None, None, None, None, false);
    for w in words {
        match w.split_once('=') {
            Some(("id", v)) if !v.is_empty() => id = Some(v.to_string()),
            Some(("at", v)) => at = v.parse::<u64>().ok(),
            Some(("members", v)) => members = Some(v.to_string()),
            Some(("count", v)) => count = v.parse().ok(),
            None if w == "partial" => partial = true,
            _ => {}
        }
    }
    Some(View {
        instance: id?,
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(at?),
        members: members?,
        count: count?,
        unhealthy: BTreeSet::new(),
        unknown: BTreeSet::new(),
        partial,
    })
}

/// The other instances' votes on the member with `key`, for an instance
/// named `me` whose members have fingerprint `members`; each view comes
/// with when this instance last saw its content change.
pub fn votes(views: &[(View, Instant)], me: &str, key: &str, members: &str) -> Vec<Vote> {
    views
        .iter()
        .filter(|(v, _)| v.instance != me)
        .map(|(v, changed)| {
            let ignored = if v.members != members {
                Some(Ignored::OtherConfig)
            } else if v.partial {
                Some(Ignored::Partial)
            } else if v.sees_everything_down() {
                Some(Ignored::EverythingDown)
            } else {
                None
            };
            Vote {
                instance: v.instance.clone(),
                verdict: v.verdict(key),
                written: v.at,
                changed: *changed,
                ignored,
            }
        })
        .collect()
}

/// How the counted verdicts on one member stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub voters: usize,
    pub healthy: usize,
    pub unhealthy: usize,
}

impl Tally {
    /// This instance's verdict (when it counts and knows one) and the
    /// votes that count at `now`.
    pub fn of(local: &Local, votes: &[Vote], now: Instant, max_age: Duration) -> Tally {
        let counted = votes
            .iter()
            .filter(|v| v.standing(local, now, max_age).is_none())
            .map(|v| v.verdict);
        let mine = (local.counts && local.verdict != Verdict::Unknown).then_some(local.verdict);
        let mut t = Tally::default();
        for verdict in mine.into_iter().chain(counted) {
            t.voters += 1;
            match verdict {
                Verdict::Healthy => t.healthy += 1,
                Verdict::Unhealthy => t.unhealthy += 1,
                Verdict::Unknown => {}
            }
        }
        t
    }

    /// How many verdicts make a majority.
    pub fn needed(&self) -> usize {
        self.voters / 2 + 1
    }
}

/// The verdict the writer acts on at `now`: `prev` is the agreed verdict
/// so far, `local` this instance's side.
pub fn agree(
    rule: Quorum,
    prev: Verdict,
    local: &Local,
    votes: &[Vote],
    now: Instant,
    max_age: Duration,
) -> Verdict {
    if rule == Quorum::Any {
        return local.verdict;
    }
    let tally = Tally::of(local, votes, now, max_age);
    let others_alive = votes.iter().any(|v| v.alive(now, max_age));
    if tally.voters < 2 && others_alive {
        // One verdict, or none, while other instances are there: their
        // views refresh within a heartbeat, and then count.
        prev
    } else if tally.voters == 0 {
        // Nobody else at all: this instance decides.
        local.verdict
    } else if tally.unhealthy >= tally.needed() {
        Verdict::Unhealthy
    } else if tally.healthy >= tally.needed() {
        Verdict::Healthy
    } else {
        prev
    }
}

#[cfg(test)]
mod tests;
