//! Mode Beta playbooks: standing approvals for the action types and risk
//! ceiling they name, set and removed by entries.
use super::super::{Event, Tx};
use super::Proposal;
use crate::registry::Risk;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const PLAYBOOK_PREFIX: &[u8] = b"playbook/";

pub fn playbook_key(name: &str) -> Vec<u8> {
    format!("playbook/{name}").into_bytes()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Playbook {
    pub playbook: String,
    pub action_types: Vec<String>,
    pub max_risk: String,
    pub description: Option<String>,
    pub approved_by: Option<String>,
    pub set_seq: u64,
}

impl Playbook {
    /// Whether this playbook covers `p`: its action type is listed and its
    /// risk is at most the ceiling. A risk this build cannot read is
    /// covered by nothing.
    pub fn matches(&self, p: &Proposal) -> bool {
        let (Some(risk), Some(max)) = (Risk::parse(&p.risk), Risk::parse(&self.max_risk)) else {
            return false;
        };
        risk <= max && self.action_types.contains(&p.action_type)
    }
}

pub(super) fn on_playbook_set(ev: &Event<'_>, tx: &mut Tx<'_>) {
    let Some(name) = ev.str("playbook") else {
        return;
    };
    let action_types = ev
        .payload
        .get("action_types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let book = Playbook {
        playbook: name.to_string(),
        action_types,
        max_risk: ev.str("max_risk").unwrap_or_default().to_string(),
        description: ev.str("description").map(str::to_string),
        approved_by: ev.str("approved_by").map(str::to_string),
        set_seq: ev.seq,
    };
    tx.put_json(&playbook_key(name), book);
}

pub(super) fn on_playbook_removed(ev: &Event<'_>, tx: &mut Tx<'_>) {
    if let Some(name) = ev.str("playbook") {
        tx.del(&playbook_key(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbook_matches_action_type_and_risk_ceiling() {
        let book = Playbook {
            playbook: "maintenance-001".into(),
            action_types: vec!["file_write".into()],
            max_risk: "medium".into(),
            ..Playbook::default()
        };
        let mut p = Proposal {
            action_type: "file_write".into(),
            risk: "medium".into(),
            ..Proposal::default()
        };
        assert!(book.matches(&p));
        p.risk = "high".into();
        assert!(!book.matches(&p));
        p.risk = "low".into();
        p.action_type = "deploy".into();
        assert!(!book.matches(&p));
    }
}
