//! `argusctl memory`: memory proposals with their gate status, and
//! `--sweep`, which records the auto-approvals the gate allows.
use super::safe::esc;
use super::{eprint, Format};
use crate::projections::memory_gate::{MemoryStatus, Proposal, AUTO_REASON, NAME};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;

pub fn run(dir: &Path, sweep: bool, status: Option<&str>, format: Format) -> Result<()> {
    if sweep {
        let approved = sweep_auto(dir)?;
        eprint(&format!(
            "argusctl: sweep approved {} proposal(s){}",
            approved.len(),
            approved
                .iter()
                .map(|(id, seq)| format!(" {}@seq{seq}", esc(id)))
                .collect::<String>()
        ));
    }
    list(dir, status, format)
}

fn proposals(st: &super::state::State) -> Result<Vec<Proposal>> {
    Ok(st
        .projections
        .with_view(NAME, |v| v.scan_json::<Proposal>(b"proposal/"))?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

/// Appends one `memory.proposal.approved` (reviewer "auto") per
/// auto-approvable proposal, all in one group commit, and returns
/// (proposal_id, seq) for each. The writer lock is taken before the
/// projections are read, so no other decision can slip in between.
fn sweep_auto(dir: &Path) -> Result<Vec<(String, u64)>> {
    let log = super::state::lock_for_decision(dir, "memory sweep")?;
    let st = super::state::open(dir)?;
    let todo: Vec<Proposal> = proposals(&st)?
        .into_iter()
        .filter(|p| p.status == MemoryStatus::AutoApprovable)
        .collect();
    drop(st);
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let actor = super::context::actor(crate::authority::Class::Operator).to_string();
    let entries = todo
        .iter()
        .map(|p| {
            Ok(crate::NewEntry {
                kind: "memory.proposal.approved".into(),
                job_id: None,
                step_id: None,
                agent: None,
                actor: actor.clone(),
                parent: Some(p.created_seq),
                payload: crate::json::to_canonical(&json!({
                    "proposal_id": p.proposal_id,
                    "reviewer": "auto",
                    "reason": AUTO_REASON,
                })),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let acks = log.append_entries(entries).context("appending approvals")?;
    Ok(todo
        .into_iter()
        .zip(acks)
        .map(|(p, a)| (p.proposal_id, a.seq))
        .collect())
}

fn list(dir: &Path, status: Option<&str>, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let rows: Vec<Proposal> = proposals(&st)?
        .into_iter()
        .filter(|p| status.is_none_or(|s| p.status.as_str() == s))
        .collect();
    let header = format!(
        "{:<24} {:<16} {:>5} {:>9} {:>5}  {:<24} reviewer",
        "proposal", "status", "score", "authority", "layer", "target_key"
    );
    let json = |p: &Proposal| {
        let mut v = serde_json::to_value(p)?;
        v["max_authority"] = p.max_authority().into();
        Ok(v)
    };
    let num = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
    super::print_rows(format, &rows, &header, json, |p| {
        format!(
            "{:<24} {:<16} {:>5} {:>9} {:>5}  {:<24} {}",
            esc(&p.proposal_id),
            esc(p.status.as_str()),
            num(p.score),
            num(p.max_authority()),
            p.target_layer
                .map(|l| l.to_string())
                .unwrap_or_else(|| "-".into()),
            esc(&p.target_key),
            esc(p.reviewer.as_deref().unwrap_or("-"))
        )
    })
}
