//! `argusctl route`: resolve the model fallback chain for a task type.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::routes::{
    excluded_because, sort_chain, task_prefix, Constraints, Route, IMPLICIT, NAME,
};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::Path;

pub fn resolve(dir: &Path, task_type: &str, c: Constraints, format: Format) -> Result<()> {
    if c.max_cost_usd.is_some_and(|m| !m.is_finite() || m < 0.0) {
        bail!("--max-cost must be a non-negative number of USD");
    }
    let st = super::state::open(dir)?;
    let configured: Vec<Route> = st
        .projections
        .with_view(NAME, |v| v.scan_json::<Route>(&task_prefix(task_type)))?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.task_type == task_type)
        .collect();

    let result = if configured.is_empty() {
        implicit(task_type, &c)?
    } else {
        let mut chain = Vec::new();
        let mut excluded = Vec::new();
        for r in configured {
            match excluded_because(&r, &c) {
                None => chain.push(r),
                Some(why) => excluded.push(json!({"model": r.model, "reason": why})),
            }
        }
        sort_chain(&mut chain);
        if chain.is_empty() {
            let reasons: Vec<String> = excluded
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["model"].as_str().unwrap_or(""),
                        e["reason"].as_str().unwrap_or("")
                    )
                })
                .collect();
            return Err(super::error::CommandError::NotFound(format!(
                "no usable route for task type {task_type:?}: {}",
                reasons.join("; ")
            ))
            .into());
        }
        json!({
            "task_type": task_type,
            "source": "configured",
            "chosen": chain[0],
            "chain": chain,
            "excluded": excluded,
        })
    };

    let mut out = Out::default();
    match format {
        Format::Json => out.json(&result.to_string()),
        Format::Text => {
            if result["source"] == "default" {
                out.line(&format!(
                    "task type {}: no route configured; using the built-in default (PRD-018 §4.3)",
                    esc(task_type)
                ));
            } else {
                out.line(&format!(
                    "task type {}: configured routes, in order",
                    esc(task_type)
                ));
            }
            for (i, r) in result["chain"].as_array().into_iter().flatten().enumerate() {
                out.line(&format!(
                    "{:>3}. {}/{:<24} priority {:<4} max_cost_usd {:<8} {}",
                    i + 1,
                    esc(r["provider"].as_str().unwrap_or("-")),
                    esc(r["model"].as_str().unwrap_or("-")),
                    r["priority"],
                    r["max_cost_usd"]
                        .as_f64()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if i == 0 { "<- chosen" } else { "" }
                ));
            }
            for e in result["excluded"].as_array().into_iter().flatten() {
                out.line(&format!(
                    "     excluded {}: {}",
                    esc(e["model"].as_str().unwrap_or("-")),
                    esc(e["reason"].as_str().unwrap_or(""))
                ));
            }
            if let Some(n) = result["note"].as_str() {
                out.line(&format!("note: {n}"));
            }
        }
    }
    out.flush();
    Ok(())
}

/// The seed's pre-configuration routing, for a task type with no route.
fn implicit(task_type: &str, c: &Constraints) -> Result<serde_json::Value> {
    let Some((_, model, rationale)) = IMPLICIT.iter().find(|(t, _, _)| *t == task_type) else {
        return Err(super::error::CommandError::NotFound(format!(
            "unknown task type {task_type:?}: no route is configured for it and it is not one of the default task types ({})",
            IMPLICIT.iter().map(|(t, _, _)| *t).collect::<Vec<_>>().join(", ")
        )).into());
    };
    let r = json!({
        "task_type": task_type,
        "provider": "anthropic",
        "model": model,
        "priority": 0,
        "max_cost_usd": null,
        "conditions": {},
        "enabled": true,
        "rationale": rationale,
    });
    let mut v = json!({
        "task_type": task_type,
        "source": "default",
        "chosen": r,
        "chain": [r],
        "excluded": [],
    });
    if c.max_cost_usd.is_some() || c.context_length.is_some() {
        v["note"] = "default routes carry no cost or context data; --max-cost and --context-length were not applied".into();
    }
    Ok(v)
}
