//! Model routes (PRD-018 §4.3): the data-driven table of model choices per
//! task type, keyed by task type + model, and the fallback-chain resolution
//! that turns it into an ordered list of candidates.
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const NAME: &str = "routes";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Route {
    pub task_type: String,
    pub provider: Option<String>,
    pub model: String,
    /// Lower is preferred.
    pub priority: i64,
    pub max_cost_usd: Option<f64>,
    pub conditions: Value,
    pub enabled: bool,
    pub set_seq: u64,
    pub set_ts_ns: u64,
}

impl Route {
    pub fn max_context_length(&self) -> Option<u64> {
        self.conditions.get("max_context_length")?.as_u64()
    }
}

/// Task types and models may contain `/`; NUL separates them so the prefix
/// of task type `a` never matches routes of task type `a/b`.
pub fn task_prefix(task_type: &str) -> Vec<u8> {
    format!("route/{task_type}\0").into_bytes()
}

pub fn route_key(task_type: &str, model: &str) -> Vec<u8> {
    format!("route/{task_type}\0{model}").into_bytes()
}

/// The routing that existed before routes were data (seed §4.3), used only
/// for a task type with no configured route at all.
pub const IMPLICIT: &[(&str, &str, &str)] = &[
    ("health_check", "haiku", "trivial, fast"),
    ("greeting", "haiku", "conversational"),
    ("content_generation", "sonnet", "quality needed"),
    ("code_review", "sonnet", "quality needed"),
    ("research_synthesis", "sonnet", "complex reasoning"),
    ("strategy_planning", "opus", "high-stakes"),
];

/// What the caller needs the model to handle.
#[derive(Debug, Clone, Copy, Default)]
pub struct Constraints {
    pub max_cost_usd: Option<f64>,
    pub context_length: Option<u64>,
}

/// Why a configured route is not in the chain, or `None` if it is.
///
/// A route that declares no `max_cost_usd` cannot be shown to fit a cost
/// cap, so a cap excludes it; a route with no `max_context_length`
/// condition has no stated limit, so it fits any context length.
pub fn excluded_because(r: &Route, c: &Constraints) -> Option<String> {
    if !r.enabled {
        return Some("disabled".into());
    }
    if let Some(cap) = c.max_cost_usd {
        match r.max_cost_usd {
            None => return Some(format!("declares no max_cost_usd (cap {cap})")),
            Some(cost) if cost > cap => {
                return Some(format!("max_cost_usd {cost} > cap {cap}"));
            }
            _ => {}
        }
    }
    if let (Some(need), Some(limit)) = (c.context_length, r.max_context_length()) {
        if limit < need {
            return Some(format!(
                "max_context_length {limit} < context length {need}"
            ));
        }
    }
    None
}

/// Routes in preference order: (priority, model).
pub fn sort_chain(routes: &mut [Route]) {
    routes.sort_by(|a, b| (a.priority, &a.model).cmp(&(b.priority, &b.model)));
}

pub struct Routes;

impl Projection for Routes {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        let (Some(task_type), Some(model)) = (
            ev.str("task_type").filter(|s| !s.is_empty()),
            ev.str("model").filter(|s| !s.is_empty()),
        ) else {
            return Ok(());
        };
        match ev.kind {
            "route.set" => {
                let Some(priority) = ev.payload.get("priority").and_then(Value::as_i64) else {
                    return Ok(());
                };
                let route = Route {
                    task_type: task_type.to_string(),
                    provider: ev.str("provider").map(str::to_string),
                    model: model.to_string(),
                    priority,
                    max_cost_usd: ev.f64("max_cost_usd"),
                    conditions: ev
                        .payload
                        .get("conditions")
                        .filter(|v| v.is_object())
                        .cloned()
                        .unwrap_or_else(|| Value::Object(Default::default())),
                    enabled: ev
                        .payload
                        .get("enabled")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                    set_seq: ev.seq,
                    set_ts_ns: ev.log_ns,
                };
                tx.put_json(&route_key(task_type, model), route);
            }
            "route.removed" => tx.del(&route_key(task_type, model)),
            _ => {}
        }
        Ok(())
    }
}
