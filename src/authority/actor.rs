//! The `actor` field: its grammar, and how an old or hand-made one is read.
use std::fmt;

/// A writer class. Ordered by nothing: no class includes another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// The audited party: agents and the runtime that runs them.
    Agent,
    /// A human decision: approve, reject, mode, flags, configuration.
    Operator,
    /// The auditor: anomalies, kills, lockdowns.
    Auditor,
    /// The log itself: recovery records, clock jumps, key rotation.
    Argus,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Agent, Class::Operator, Class::Auditor, Class::Argus];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Operator => "operator",
            Self::Auditor => "auditor",
            Self::Argus => "argus",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The class of an `actor` field, as `Actor::parse` reads it, without
    /// allocating (projections ask this of every entry).
    pub fn of_actor(field: &str) -> Self {
        if field == "argus" {
            return Self::Argus;
        }
        field
            .split_once(':')
            .and_then(|(c, _)| Self::parse(c))
            .unwrap_or(Self::Agent)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `actor` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub class: Class,
    /// Who: `uid:1000:alice` for a local user (`uid:1000` if the password
    /// database has no name), `token:<name>` for an argusd token holder,
    /// `peer:uid:<n>:<name>` for a Unix-socket peer. Empty for legacy
    /// actors that named no one.
    pub principal: String,
}

impl Actor {
    pub fn new(class: Class, principal: impl Into<String>) -> Self {
        Self {
            class,
            principal: principal.into(),
        }
    }

    /// Argus's own entries.
    pub fn argus() -> Self {
        Self::new(Class::Argus, "")
    }

    /// Reads an `actor` field. Fields written before writer classes existed
    /// (`user:alice`, `uid:0`, `argus`) are read with the least authority
    /// they could have had: the bare `argus` of recovery records is Argus,
    /// anything else unknown is an agent. So an approval written by an older
    /// build, or by hand, is judged an agent's, and ignored.
    pub fn parse(field: &str) -> Self {
        let class = Class::of_actor(field);
        match field.split_once(':') {
            Some((c, rest)) if c == class.as_str() => Self::new(class, rest),
            _ if class == Class::Argus => Self::argus(),
            _ => Self::new(class, field),
        }
    }

    /// The name separation of duties compares: a token's name
    /// (`token:<name>`), a user's name, local (`uid:<n>:<name>`) or a socket
    /// peer (`peer:uid:<n>:<name>`), else the whole principal (`uid:N` with
    /// no name). A name is one person however it arrives: the cautious
    /// reading for separation of duties, since switching from a token to the
    /// socket or the command line must not make an operator someone else.
    pub fn name(&self) -> &str {
        let p = self.principal.as_str();
        if let Some(token) = p.strip_prefix("token:").filter(|n| !n.is_empty()) {
            return token;
        }
        let user = p.strip_prefix("peer:").unwrap_or(p);
        match user
            .strip_prefix("uid:")
            .and_then(|rest| rest.split_once(':'))
        {
            Some((_, name)) if !name.is_empty() => name,
            _ => p,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.principal.is_empty() {
            f.write_str(self.class.as_str())
        } else {
            write!(f, "{}:{}", self.class, self.principal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_round_trips_and_names_the_user() {
        let a = Actor::parse("operator:uid:1000:alice");
        assert_eq!(a.class, Class::Operator);
        assert_eq!(a.name(), "alice");
        assert_eq!(a.to_string(), "operator:uid:1000:alice");
        assert_eq!(Actor::parse("agent:uid:7").name(), "uid:7");
        assert_eq!(Actor::parse("argus"), Actor::argus());
        assert_eq!(Actor::argus().to_string(), "argus");
    }

    #[test]
    fn token_and_peer_principals_name_their_holder() {
        let t = Actor::parse("agent:token:researcher");
        assert_eq!(t.class, Class::Agent);
        assert_eq!(t.name(), "researcher");
        assert_eq!(Actor::parse("operator:peer:uid:1000:alice").name(), "alice");
        assert_eq!(Actor::parse("operator:peer:uid:7").name(), "peer:uid:7");
        assert_eq!(Actor::parse("operator:token:").name(), "token:");
        // One name by token, socket or command line is one person.
        assert_eq!(
            Actor::parse("operator:token:alice").name(),
            Actor::parse("operator:uid:1000:alice").name()
        );
    }

    #[test]
    fn legacy_and_unknown_actors_have_the_least_authority() {
        for f in ["user:ceo", "uid:0", "operator", "OPERATOR:x", "root", ""] {
            assert_eq!(Actor::parse(f).class, Class::Agent, "{f}");
        }
    }
}
