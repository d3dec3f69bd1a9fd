//! Which records the page shows, so an on-call refresh loop costs little
//! at thousands of members: with more than [`FOLD_OVER`] records, those
//! that need no attention (every member healthy, published and decided
//! `healthy`, no freeze, no parity difference) are folded into one line,
//! and the rest are shown [`PAGE_SIZE`] at a time. `?all=1` unfolds them,
//! `?record=NAME` shows one record, `?page=N` turns the pages.

use serde::Deserialize;

use super::{RecordSnapshot, Status};

/// Up to this many records, the page shows every one of them.
pub const FOLD_OVER: usize = 50;
/// Records shown on one page.
pub const PAGE_SIZE: usize = 100;

/// The page's and `/status`'s query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    /// One record's name (a trailing dot and case do not matter: it is
    /// compared as the config keeps names, `provider::normalize_name`).
    pub record: Option<String>,
    /// Unfold the records that need no attention: `1`, `true`, `yes`.
    #[serde(default, deserialize_with = "flag")]
    pub all: bool,
    /// The page, from 1.
    pub page: Option<usize>,
}

/// A query flag as people type it: `1`, `true`, `yes` (or nothing: `?all`)
/// on, `0`, `false`, `no` off.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    match s.to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(serde::de::Error::custom(format!(
            "all: {s:?} is not a flag (1 or 0)"
        ))),
    }
}

/// What the page left out, for its note and links.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    /// Records folded because they need no attention.
    pub calm: usize,
    /// The page shown and the number of pages.
    pub page: usize,
    pub pages: usize,
}

impl RecordSnapshot {
    /// Nothing here for on-call to look at (`now`: unix seconds, for the
    /// certificates).
    pub fn calm(&self, now: f64) -> bool {
        self.frozen.is_none()
            && self
                .parity
                .as_ref()
                .is_none_or(|p| p.differences.is_empty() && p.errors.is_empty())
            && self.members.iter().all(|m| {
                m.verdict == "healthy"
                    && m.agreed == "healthy"
                    && m.published
                    && m.decision.as_deref() == Some("healthy")
                    && m.drain.is_none()
                    && m.not_observed.is_none()
                    && m.cert_days_left(now)
                        .is_none_or(|d| d >= super::member::CERT_WARN_DAYS)
                    && m.health_check
                        .as_ref()
                        .is_none_or(|h| !h.disagrees && h.error.is_none())
            })
    }
}

impl Status {
    /// The records the page shows for `q`; the others are dropped.
    pub fn fold(&mut self, q: &Query) -> Folded {
        if q.record.is_some() {
            return Folded::default();
        }
        let mut folded = Folded::default();
        if !q.all && self.records.len() > FOLD_OVER {
            let before = self.records.len();
            let now = self.now;
            self.records.retain(|r| !r.calm(now));
            folded.calm = before - self.records.len();
        }
        if self.records.len() > PAGE_SIZE {
            folded.pages = self.records.len().div_ceil(PAGE_SIZE);
            folded.page = q.page.unwrap_or(1).clamp(1, folded.pages);
            let start = (folded.page - 1) * PAGE_SIZE;
            self.records.drain(..start);
            self.records.truncate(PAGE_SIZE);
        }
        folded
    }
}

/// The note and links above the records: what was folded, the pages.
pub(super) fn note(f: &Folded, all: bool) -> String {
    let mut out = String::new();
    if f.calm > 0 {
        out.push_str(&format!(
            "<p class=folded>{} records with every member healthy and published are folded: <a href=\"/?all=1\">show them</a></p>\n",
            f.calm
        ));
    }
    if f.pages > 1 {
        let all = if all { "&amp;all=1" } else { "" };
        out.push_str("<p class=pages>page");
        for p in 1..=f.pages {
            if p == f.page {
                out.push_str(&format!(" <b>{p}</b>"));
            } else {
                out.push_str(&format!(" <a href=\"/?page={p}{all}\">{p}</a>"));
            }
        }
        out.push_str("</p>\n");
    }
    out
}

#[cfg(test)]
mod tests;
