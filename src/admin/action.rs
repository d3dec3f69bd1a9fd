//! The admin actions, one name for each on both sides: the server routes
//! `/admin/{action}` on it and labels `admin_actions_total` with it, the
//! client (`crate::client`) builds the same path from it. A module of its
//! own so the client takes this and nothing of the server.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminAction {
    Drain,
    Undrain,
    Freeze,
    Unfreeze,
    Retire,
    /// Start a practice run now.
    Practice,
    /// End a record's practice run now.
    StopPractice,
}

impl AdminAction {
    /// Every action, in the order the metric's series are made.
    pub const ALL: [AdminAction; 7] = [
        AdminAction::Drain,
        AdminAction::Undrain,
        AdminAction::Freeze,
        AdminAction::Unfreeze,
        AdminAction::Retire,
        AdminAction::Practice,
        AdminAction::StopPractice,
    ];

    /// The path segment (`/admin/drain`) and the metric's `action` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminAction::Drain => "drain",
            AdminAction::Undrain => "undrain",
            AdminAction::Freeze => "freeze",
            AdminAction::Unfreeze => "unfreeze",
            AdminAction::Retire => "retire",
            AdminAction::Practice => "practice",
            AdminAction::StopPractice => "stop-practice",
        }
    }
}

impl fmt::Display for AdminAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path segment that names no action (the route answers 404).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no admin action {0:?}")]
pub struct UnknownAction(pub String);

impl FromStr for AdminAction {
    type Err = UnknownAction;

    /// The exact segment, as [`AdminAction::as_str`] writes it: `Drain` or
    /// `drain ` is no action, as it was no route.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AdminAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_back_from_its_name() {
        for a in AdminAction::ALL {
            assert_eq!(a.as_str().parse::<AdminAction>(), Ok(a));
            assert_eq!(a.to_string(), a.as_str());
        }
    }

    #[test]
    fn the_names_are_the_routes_and_labels_on_call_knows() {
        let names: Vec<&str> = AdminAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "drain",
                "undrain",
                "freeze",
                "unfreeze",
                "retire",
                "practice",
                "stop-practice"
            ]
        );
    }

    #[test]
    fn only_the_exact_segment_is_an_action() {
        for s in ["", "Drain", "drain ", "drains", "status"] {
            assert_eq!(s.parse::<AdminAction>(), Err(UnknownAction(s.into())));
        }
    }
}
