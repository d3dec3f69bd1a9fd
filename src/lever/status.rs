//! What `/status`, the page and the table show of the lever: its mode,
//! each switch as known and as wanted, a safety rule's refusal.

use serde::{Deserialize, Serialize};

use super::{Lever, Refusal};
use crate::config::LeverMode;
use crate::decide::lever::Switch;

/// One switch in status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwitchStatus {
    pub arn: String,
    pub member: String,
    pub state: Switch,
    pub want: Switch,
}

/// The lever in `/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeverStatus {
    pub mode: LeverMode,
    pub endpoints: Vec<String>,
    pub switches: Vec<SwitchStatus>,
    /// The latest refusal in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change: Option<f64>,
}

impl LeverStatus {
    /// `routing controls (switches): 2 on, 1 off  REFUSED by ARC safety rule …`
    pub fn describe(&self) -> String {
        let count = |s: Switch| self.switches.iter().filter(|w| w.state == s).count();
        let mut line = format!(
            "routing controls ({}): {} on, {} off",
            self.mode.as_str(),
            count(Switch::On),
            count(Switch::Off)
        );
        let unknown = count(Switch::Unknown);
        if unknown > 0 {
            line.push_str(&format!(", {unknown} not known"));
        }
        let pending: Vec<&str> = self
            .switches
            .iter()
            .filter(|w| w.state != w.want)
            .map(|w| w.member.as_str())
            .collect();
        if !pending.is_empty() {
            line.push_str(&format!("; to set: {}", pending.join(", ")));
        }
        if let Some(r) = &self.refused {
            line.push_str(&format!(
                "  REFUSED by ARC safety rule {}: {}",
                r.rule, r.message
            ));
        } else if let Some(e) = &self.last_error {
            line.push_str(&format!("  ERROR: {e}"));
        }
        line
    }
}

impl Lever {
    pub fn status(&self) -> LeverStatus {
        let st = self.lock();
        LeverStatus {
            mode: self.config.mode,
            endpoints: self
                .config
                .endpoints
                .iter()
                .map(|e| e.url.to_string())
                .collect(),
            switches: self
                .owners
                .iter()
                .map(|(arn, o)| {
                    let state = st.known.get(arn).copied().unwrap_or(Switch::Unknown);
                    SwitchStatus {
                        arn: arn.clone(),
                        member: o.member(),
                        state,
                        // Nothing wanted yet: as it is.
                        want: st.wanted.get(arn).map_or(state, |w| w.want),
                    }
                })
                .collect(),
            refused: st.refused.last().cloned(),
            last_error: st.last_error.clone(),
            last_change: st.last_change,
        }
    }
}
