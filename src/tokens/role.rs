//! What a token holder may do. A role is exactly a writer class: the
//! registry's `writers` then decide, kind by kind, what each role writes.
use crate::authority::Class;
use std::fmt;

/// A token's role. There is no `argus` role: Argus's own entries come only
/// from the writer itself, never from a request.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Appends agents' work, and only under its own name.
    Agent,
    /// Decisions: approvals, mode, release.
    Operator,
    /// Reads everything; writes the auditor's kinds.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Agent, Role::Operator, Role::Auditor];

    /// The writer class of every entry this role's requests write.
    pub fn class(self) -> Class {
        match self {
            Self::Agent => Class::Agent,
            Self::Operator => Class::Operator,
            Self::Auditor => Class::Auditor,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.class().as_str()
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_writer_classes_of_the_same_name() {
        for r in Role::ALL {
            assert_eq!(r.class().as_str(), r.as_str());
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("argus"), None);
    }
}
