//! `argusctl incident`: the system mode (normal / degraded / incident), why
//! and since when, from the incident projection.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::incident;
use anyhow::Result;
use serde_json::json;
use std::path::Path;

pub fn show(dir: &Path, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let s = st
        .projections
        .with_view(incident::NAME, incident::current)?;
    let since = s.since_ts_ns.map(super::rfc3339_ns);
    let mut out = Out::default();
    match format {
        Format::Json => out.json(
            &json!({
                "state": s.state,
                "reason": s.reason,
                "trigger": s.trigger,
                "since": since,
                "since_ts_ns": s.since_ts_ns,
                "since_seq": s.since_seq,
                "actor": s.actor,
                "effects": effects(s.state),
            })
            .to_string(),
        ),
        Format::Text => {
            out.line(&format!("state:   {}", esc(s.state.as_str())));
            if let Some(r) = &s.reason {
                out.line(&format!("reason:  {}", esc(r)));
            }
            if let (Some(t), Some(seq)) = (&since, s.since_seq) {
                out.line(&format!(
                    "since:   {t} (seq {seq}, {} by {})",
                    esc(s.trigger.map_or("-", |t| t.as_str())),
                    esc(s.actor.as_deref().unwrap_or("-"))
                ));
            }
            if let Some(e) = effects(s.state) {
                out.line(&format!("effects: {e}"));
            }
        }
    }
    out.flush();
    Ok(())
}

fn effects(state: incident::IncidentLevel) -> Option<&'static str> {
    (state == incident::IncidentLevel::Incident)
        .then_some("daily_usd budgets halved; max_retries 1")
}
