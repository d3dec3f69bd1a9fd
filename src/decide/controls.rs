//! On-call's controls: a *drain* holds one member out of DNS by hand, a
//! *freeze* holds every change to a record (or to all of them) back. Pure:
//! the TXT record each is kept in, reading it back, which are in force at
//! a time, and the checks on what on-call sends.
//!
//! Each control is its own TXT record below
//! `_route53-failover-controls.<zone>` (the lease's zone with `ha`, else
//! the records' first zone by name): the daemon needs no storage it does
//! not already write to, every instance reads the same set, and a restart
//! or a new lease holder finds them. The name follows from the control's
//! subject (`drain-<digest of record, type, set id>`, `freeze-all`,
//! `freeze-<digest of record>`), so a second drain of a member replaces
//! the first. The value is one form-encoded line
//! (`kind=drain&record=…&by=…&reason=…&until=…`), split into numbered TXT
//! strings of at most 255 characters (Route53 does not keep their order).
//! A control ends by itself at `until`; the lease holder deletes the
//! records of controls that ended. A control read for the first time is
//! checked against the reader's clock ([`Control::admit`]).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::{short_digest, MemberConfig, RecordConfig};
use crate::decide::policy::Drain;
use crate::decide::unix_ms;
use crate::provider::{RecordSet, RecordType};

/// The label below which every control is kept.
pub const CONTROLS_LABEL: &str = "_route53-failover-controls";
/// The first word of a control's first TXT string.
const HERITAGE: &str = "route53-failover-control";
/// Route53 holds at most 255 characters per TXT string.
const TXT_MAX: usize = 255;
/// The longest a control lasts: a forgotten freeze must not stop failover
/// for long.
pub const MAX_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a control lasts unless on-call says.
pub const DEFAULT_FOR: Duration = Duration::from_secs(3600);
pub const MAX_REASON_CHARS: usize = 200;
/// How far ahead of the reader's clock a control may have been made: the
/// instances' clocks need not agree to the second, but a control from a
/// clock this far ahead would be honoured for the wrong time.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
pub const MAX_BY_CHARS: usize = 64;
/// The author of practice runs' drains: on-call may not write under it.
pub const PRACTICE_BY: &str = "practice";

/// What a control applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// One member out of its record.
    Drain {
        record: String,
        #[serde(rename = "type")]
        rtype: String,
        set_identifier: String,
        region: String,
        /// Below `min_healthy` and past `max_withdrawn` too.
        force: bool,
    },
    /// Nothing of the record changes; `None`: nothing of any record.
    Freeze { record: Option<String> },
}

/// One control, as kept in Route53 and shown in status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    #[serde(flatten)]
    pub scope: Scope,
    /// Who asked (the CLI's `--by`).
    pub by: String,
    pub reason: String,
    /// When it was made and when it ends: unix milliseconds.
    pub at_ms: u64,
    pub until_ms: u64,
}

/// Where the control records live.
pub fn controls_parent(zone: &str) -> String {
    format!("{CONTROLS_LABEL}.{zone}")
}

impl Control {
    pub fn new(scope: Scope, by: &str, reason: &str, now: SystemTime, lasts: Duration) -> Self {
        Control {
            scope,
            by: by.to_string(),
            reason: reason.to_string(),
            at_ms: unix_ms(now),
            until_ms: unix_ms(now + lasts),
        }
    }

    pub fn until(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.until_ms)
    }

    pub fn in_force(&self, now: SystemTime) -> bool {
        unix_ms(now) < self.until_ms
    }

    /// A drain with `--force`.
    pub fn forced(&self) -> bool {
        matches!(self.scope, Scope::Drain { force: true, .. })
    }

    pub fn is_drain(&self) -> bool {
        matches!(self.scope, Scope::Drain { .. })
    }

    /// The first label of its record: the same for every control of the
    /// same subject.
    pub fn label(&self) -> String {
        match &self.scope {
            Scope::Drain {
                record,
                rtype,
                set_identifier,
                ..
            } => format!(
                "drain-{}",
                short_digest(format!("{record}\n{rtype}\n{set_identifier}").as_bytes())
            ),
            Scope::Freeze { record: None } => "freeze-all".to_string(),
            Scope::Freeze {
                record: Some(record),
            } => format!("freeze-{}", short_digest(record.as_bytes())),
        }
    }

    /// The name of its record in `zone`.
    pub fn record_name(&self, zone: &str) -> String {
        format!("{}.{}", self.label(), controls_parent(zone))
    }

    /// One line for logs, events and the CLI: `drain api.example.com A
    /// eu-west-1`, `freeze api.example.com`, `freeze (everything)`.
    pub fn subject(&self) -> String {
        match &self.scope {
            Scope::Drain {
                record,
                rtype,
                region,
                force,
                ..
            } => format!(
                "drain {record} {rtype} {region}{}",
                if *force { " (forced)" } else { "" }
            ),
            Scope::Freeze { record: Some(r) } => format!("freeze {r}"),
            Scope::Freeze { record: None } => "freeze (everything)".to_string(),
        }
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        match &self.scope {
            Scope::Drain {
                record,
                rtype,
                set_identifier,
                region,
                force,
            } => {
                pairs.push(("kind", "drain".to_string()));
                pairs.push(("record", record.clone()));
                pairs.push(("type", rtype.clone()));
                pairs.push(("set", set_identifier.clone()));
                pairs.push(("region", region.clone()));
                pairs.push(("force", u8::from(*force).to_string()));
            }
            Scope::Freeze { record } => {
                pairs.push(("kind", "freeze".to_string()));
                if let Some(r) = record {
                    pairs.push(("record", r.clone()));
                }
            }
        }
        pairs.push(("at", self.at_ms.to_string()));
        pairs.push(("until", self.until_ms.to_string()));
        pairs.push(("by", self.by.clone()));
        pairs.push(("reason", self.reason.clone()));
        pairs
    }

    /// Its TXT record in `zone`: the line in numbered chunks, each
    /// `"route53-failover-control <i>/<n> <chunk>"`. Route53 keeps a TXT
    /// record's strings as a set, in no promised order, so each says where
    /// it goes.
    pub fn to_record(&self, zone: &str) -> RecordSet {
        let line = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.pairs())
            .finish();
        // Form encoding leaves only ASCII letters, digits and `%+*-._=&`:
        // nothing TXT needs to escape, and chunks split anywhere. Room for
        // the quotes, the heritage and `999/999 `.
        let room = TXT_MAX - 2 - HERITAGE.len() - 1 - 8;
        let chunks: Vec<&str> = line
            .as_bytes()
            .chunks(room)
            .map(|c| std::str::from_utf8(c).expect("form encoding is ASCII"))
            .collect();
        let n = chunks.len();
        let values = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{HERITAGE} {}/{n} {c}\"", i + 1))
            .collect();
        RecordSet::txt(&self.record_name(zone), values)
    }

    /// The record's line, its chunks put back by number; `None` when one
    /// is missing or the record is not a control. A record written before
    /// chunks were numbered (one string, or strings without numbers) is
    /// read in the order given.
    fn line_of(record: &RecordSet) -> Option<String> {
        let strings: Vec<&str> = record.values.iter().map(|v| v.trim_matches('"')).collect();
        let numbered = |s: &str| -> Option<(usize, usize, String)> {
            let rest = s.strip_prefix(HERITAGE)?.strip_prefix(' ')?;
            let (pos, chunk) = rest.split_once(' ')?;
            let (i, n) = pos.split_once('/')?;
            Some((i.parse().ok()?, n.parse().ok()?, chunk.to_string()))
        };
        let chunks: Option<Vec<_>> = strings.iter().map(|s| numbered(s)).collect();
        match chunks {
            Some(mut chunks) => {
                chunks.sort_by_key(|c| c.0);
                let n = chunks.first()?.1;
                let whole = chunks.len() == n
                    && chunks
                        .iter()
                        .enumerate()
                        .all(|(k, c)| c.0 == k + 1 && c.1 == n);
                whole.then(|| chunks.into_iter().map(|c| c.2).collect())
            }
            None => {
                let text: String = strings.concat();
                Some(text.strip_prefix(HERITAGE)?.strip_prefix(' ')?.to_string())
            }
        }
    }

    /// Whether a control seen for the first time is taken, by this
    /// instance's clock: one that already ended on arrival (the clock of
    /// the instance that took it is behind) or that was made more than
    /// [`MAX_CLOCK_SKEW`] ahead of now is refused, and said so, rather
    /// than honoured for the wrong time or deleted without a word.
    /// `arrived`: it was not there at the reader's previous read (on the
    /// first read after a start, a control that ended is simply ended).
    pub fn admit(&self, now: SystemTime, arrived: bool) -> Result<(), String> {
        let now_ms = unix_ms(now);
        if arrived && self.until_ms <= now_ms {
            return Err(format!(
                "it had already ended when this instance first read it (until {}, now {}): the clock of the instance that took it is behind",
                humantime::format_rfc3339_seconds(self.until()),
                humantime::format_rfc3339_seconds(now)
            ));
        }
        let skew = MAX_CLOCK_SKEW.as_millis() as u64;
        if self.at_ms > now_ms + skew {
            return Err(format!(
                "it was made {}s ahead of this instance's clock: the clock of the instance that took it is ahead",
                (self.at_ms - now_ms) / 1000
            ));
        }
        Ok(())
    }

    /// A control from its record; `None` for anything else.
    pub fn parse(record: &RecordSet) -> Option<Control> {
        if record.rtype != RecordType::Txt {
            return None;
        }
        let text = Control::line_of(record)?;
        let line = text.as_str();
        let pairs: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(line.as_bytes())
                .into_owned()
                .collect();
        let get = |k: &str| pairs.get(k).cloned();
        let scope = match get("kind")?.as_str() {
            "drain" => Scope::Drain {
                record: get("record")?,
                rtype: get("type")?,
                set_identifier: get("set")?,
                region: get("region")?,
                force: get("force")? == "1",
            },
            "freeze" => Scope::Freeze {
                record: get("record"),
            },
            _ => return None,
        };
        Some(Control {
            scope,
            by: get("by").unwrap_or_default(),
            reason: get("reason").unwrap_or_default(),
            at_ms: get("at")?.parse().ok()?,
            until_ms: get("until")?.parse().ok()?,
        })
    }

    /// Checks who acts, which every action names.
    pub fn check_by(by: &str) -> Result<(), String> {
        if by.trim().is_empty() || by.chars().count() > MAX_BY_CHARS {
            return Err(format!("by: {by:?} must be 1 to {MAX_BY_CHARS} characters"));
        }
        if by.trim() == PRACTICE_BY {
            return Err(format!(
                "by: {by:?} is the name practice runs drain under; say who you are"
            ));
        }
        Ok(())
    }

    /// A practice run's drain (`decide::practice`).
    pub fn is_practice(&self) -> bool {
        self.is_drain() && self.by == PRACTICE_BY
    }

    /// Checks what on-call sends: who, why and for how long. The error
    /// names the field and the value.
    pub fn check_input(by: &str, reason: &str, lasts: Duration) -> Result<(), String> {
        Control::check_by(by)?;
        if reason.trim().is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(format!(
                "reason: must be 1 to {MAX_REASON_CHARS} characters (got {})",
                reason.chars().count()
            ));
        }
        if lasts.is_zero() || lasts > MAX_FOR {
            return Err(format!(
                "for: {} must be more than 0 and at most {}",
                humantime::format_duration(lasts),
                humantime::format_duration(MAX_FOR)
            ));
        }
        Ok(())
    }
}

/// The controls as last read (plus this instance's writes since).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls(pub Vec<Control>);

impl Controls {
    /// Every control among `records`, one per name (the last read wins).
    pub fn from_records(records: &[RecordSet]) -> Self {
        Controls(records.iter().filter_map(Control::parse).collect())
    }

    pub fn in_force(&self, now: SystemTime) -> impl Iterator<Item = &Control> {
        self.0.iter().filter(move |c| c.in_force(now))
    }

    /// The drain of a member in force at `now`.
    pub fn drain(
        &self,
        record: &str,
        rtype: &str,
        set_identifier: &str,
        now: SystemTime,
    ) -> Option<&Control> {
        self.in_force(now).find(|c| {
            matches!(&c.scope, Scope::Drain { record: r, rtype: t, set_identifier: s, .. }
                if r == record && t == rtype && s == set_identifier)
        })
    }

    /// How a member is drained at `now`, as the policy takes it.
    pub fn drain_of(&self, record: &RecordConfig, member: &MemberConfig, now: SystemTime) -> Drain {
        match self.drain(
            &record.name,
            &record.rtype.to_string(),
            &member.set_identifier,
            now,
        ) {
            None => Drain::No,
            Some(c) if c.forced() => Drain::Forced,
            Some(_) => Drain::Yes,
        }
    }

    /// The freeze that holds `record` at `now`: its own, or one of all.
    pub fn freeze(&self, record: &str, now: SystemTime) -> Option<&Control> {
        self.in_force(now).find(|c| {
            matches!(&c.scope, Scope::Freeze { record: r } if r.as_deref().is_none_or(|r| r == record))
        })
    }

    /// When the first control in force ends.
    pub fn next_end(&self, now: SystemTime) -> Option<SystemTime> {
        self.in_force(now).map(Control::until).min()
    }

    /// Replaces the control with the same subject, or adds it.
    pub fn put(&mut self, control: Control) {
        self.remove(&control.label());
        self.0.push(control);
    }

    /// Takes out the control with this label.
    pub fn remove(&mut self, label: &str) -> Option<Control> {
        let at = self.0.iter().position(|c| c.label() == label)?;
        Some(self.0.remove(at))
    }
}

#[cfg(test)]
mod tests;
