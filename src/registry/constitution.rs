//! Janus's constitutional validation of `proposal.created` (seed 002): a
//! substantive rationale, a rollback plan for medium or high risk, a mission
//! context, and a declared risk no lower than the action type's class.
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

pub const RATIONALE_CHARS_MIN: usize = 20;

/// The lowest risk an action type may be declared with. Unknown action types
/// are classed high: a new kind of action is trusted least until classified.
pub fn minimum_risk(action_type: &str) -> Risk {
    match action_type {
        "read_only" | "web_search" | "llm_call" | "summarise" | "analysis" => Risk::Low,
        "file_write" | "code_execution" | "memory_write" | "message_send" => Risk::Medium,
        _ => Risk::High,
    }
}

/// Returns the offending field and the reason.
pub fn check_proposal(p: &Value) -> Result<(), (&'static str, String)> {
    let s = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("")
    };
    let rationale = s("rationale");
    let n = rationale.chars().count();
    if n < RATIONALE_CHARS_MIN {
        return Err((
            "rationale",
            format!("rationale is {n} characters; at least {RATIONALE_CHARS_MIN} are required"),
        ));
    }
    if s("mission_context").is_empty() {
        return Err(("mission_context", "mission_context is required".into()));
    }
    let risk =
        Risk::parse(s("risk")).ok_or(("risk", "risk must be low, medium or high".to_string()))?;
    if risk >= Risk::Medium && s("rollback_plan").is_empty() {
        return Err((
            "rollback_plan",
            format!("a rollback_plan is required for {} risk", risk.as_str()),
        ));
    }
    let action = s("action_type");
    let min = minimum_risk(action);
    if risk < min {
        return Err((
            "risk",
            format!(
                "action_type {action:?} is classified {} risk; it cannot be declared {}",
                min.as_str(),
                risk.as_str()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"proposal_id":"p1","action_type":"web_search","risk":"low","rationale":"exactly twenty chars","mission_context":"m","parameters":{}})
    }

    #[test]
    fn rationale_of_19_chars_is_rejected_and_20_accepted() {
        let mut p = base();
        assert!(check_proposal(&p).is_ok());
        p["rationale"] = json!("nineteen characters");
        assert_eq!("nineteen characters".len(), 19);
        assert_eq!(check_proposal(&p).unwrap_err().0, "rationale");
    }

    #[test]
    fn medium_risk_needs_rollback_and_action_class_binds() {
        let mut p = base();
        p["risk"] = json!("medium");
        assert_eq!(check_proposal(&p).unwrap_err().0, "rollback_plan");
        p["rollback_plan"] = json!("revert");
        assert!(check_proposal(&p).is_ok());
        p["action_type"] = json!("system_admin");
        assert_eq!(check_proposal(&p).unwrap_err().0, "risk");
    }
}
