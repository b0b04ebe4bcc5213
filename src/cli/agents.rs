//! `argusctl agents`: the agent registry, or one agent with its versions.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::agents::{
    agent_key, ignored_prefix, versions_prefix, Agent, AgentVersion, Ignored, NAME,
};
use anyhow::Result;
use std::path::Path;

pub fn run(dir: &Path, slug: Option<&str>, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    match slug {
        None => list(&st, format),
        Some(s) => show(&st, s, format),
    }
}

fn list(st: &super::state::State, format: Format) -> Result<()> {
    let agents: Vec<Agent> = st
        .projections
        .with_view(NAME, |v| v.scan_json::<Agent>(b"agent/"))?
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let header = format!(
        "{:<24} {:>7} {:<8} capabilities",
        "slug", "version", "enabled"
    );
    super::print_rows(format, &agents, &header, super::as_json, |a| {
        format!(
            "{:<24} {:>7} {:<8} {}",
            esc(&a.slug),
            a.version,
            a.enabled,
            esc(&a.capabilities.join(","))
        )
    })
}

fn show(st: &super::state::State, slug: &str, format: Format) -> Result<()> {
    let (agent, versions, ignored) = st.projections.with_view(NAME, |v| {
        Ok((
            v.get_json::<Agent>(&agent_key(slug))?,
            v.scan_json::<AgentVersion>(&versions_prefix(slug))?,
            v.scan_json::<Ignored>(&ignored_prefix(slug))?,
        ))
    })?;
    let versions: Vec<AgentVersion> = versions.into_iter().map(|(_, v)| v).collect();
    let ignored: Vec<Ignored> = ignored.into_iter().map(|(_, v)| v).collect();
    let Some(agent) = agent else {
        if ignored.is_empty() {
            return Err(super::error::CommandError::NotFound(format!(
                "no agent with slug {slug:?} in the registry (`argusctl agents DIR` lists them)"
            ))
            .into());
        }
        return Err(super::error::CommandError::NotFound(format!(
            "no agent with slug {slug:?} in the registry; {} entries for it were ignored: {}",
            ignored.len(),
            ignored
                .iter()
                .map(|i| format!("seq {} {} ({})", i.seq, esc(&i.kind), esc(&i.reason)))
                .collect::<Vec<_>>()
                .join("; ")
        ))
        .into());
    };
    let mut out = Out::default();
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(&agent)?;
            v["versions"] = serde_json::to_value(&versions)?;
            v["ignored_entries"] = serde_json::to_value(&ignored)?;
            out.json(&v.to_string());
        }
        Format::Text => {
            out.line(&format!("slug:          {}", esc(&agent.slug)));
            out.line(&format!("version:       {}", agent.version));
            out.line(&format!(
                "enabled:       {}{}",
                agent.enabled,
                agent
                    .disabled_reason
                    .as_deref()
                    .filter(|_| !agent.enabled)
                    .map(|r| format!(" (disabled: {})", esc(r)))
                    .unwrap_or_default()
            ));
            if let Some(d) = &agent.description {
                out.line(&format!("description:   {}", esc(d)));
            }
            let list = |l: &[String]| esc(&l.join(", ")).to_string();
            out.line(&format!("capabilities:  {}", list(&agent.capabilities)));
            out.line(&format!("memory_read:   {}", list(&agent.memory_read)));
            out.line(&format!("memory_write:  {}", list(&agent.memory_write)));
            out.line(&format!(
                "model_policy:  {}",
                super::safe::json(&agent.model_policy.to_string())
            ));
            out.line("versions:");
            for v in &versions {
                out.line(&format!(
                    "  v{:<5} seq {:<8} {} {:<16} by {}  {}",
                    v.version,
                    v.seq,
                    super::rfc3339_ns(v.ts_ns),
                    esc(&v.kind),
                    esc(&v.actor),
                    esc(v.changelog.as_deref().unwrap_or(""))
                ));
            }
            if !ignored.is_empty() {
                out.line("ignored entries:");
                for i in &ignored {
                    out.line(&format!(
                        "  seq {:<8} {:<16} {}",
                        i.seq,
                        esc(&i.kind),
                        esc(&i.reason)
                    ));
                }
            }
        }
    }
    out.flush();
    Ok(())
}
