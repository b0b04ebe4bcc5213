//! `argusctl config apply`: an operator's configuration, as JSON lines.
//!
//! Policies, routes, agent definitions, SLA targets, breakers, playbooks,
//! flag removals and manual memory reviews are operator decisions without a
//! command of their own. They arrive here, not through `append` (the agent
//! path), and are recorded with the operator class and the operating
//! system's word on who ran the command. All lines commit together, or none
//! does: a configuration is applied whole.
use super::{Out, EXIT_USAGE};
use crate::authority::Class;
use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

/// What `config apply` writes: the kinds whose registry entry names it.
const COMMAND: &str = "argusctl config apply";
/// Largest configuration accepted on stdin.
const INPUT_BYTES_MAX: usize = 64 << 20;

pub fn apply(dir: &Path) -> Result<i32> {
    let mut input = Vec::new();
    match super::context::stdin() {
        // Inside argusd: the request's body.
        Some(body) => input = body,
        None => {
            std::io::stdin()
                .lock()
                .take(INPUT_BYTES_MAX as u64 + 1)
                .read_to_end(&mut input)
                .context("reading stdin")?;
        }
    }
    if input.len() > INPUT_BYTES_MAX {
        super::eprint(&format!(
            "argusctl: stdin is over {} MiB; split the configuration",
            INPUT_BYTES_MAX >> 20
        ));
        return Ok(EXIT_USAGE);
    }
    let registry = crate::registry::builtin().map_err(anyhow::Error::msg)?;
    let actor = super::context::actor(Class::Operator).to_string();
    let mut entries = Vec::new();
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Which kind, first: a decision or an agent's kind is refused for
        // what it is, before its payload is judged.
        let kind = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string));
        if let Some(kind) = kind {
            let def = registry.get(&kind);
            let is_config = def
                .and_then(|d| d.command.as_deref())
                .is_some_and(|c| c.contains(COMMAND));
            if !is_config {
                let how = def.and_then(|d| d.command.clone()).map_or_else(
                    || "agents write it with `argusctl append`".to_string(),
                    |c| format!("use {c}"),
                );
                return Ok(refuse(
                    i + 1,
                    &format!("field `kind`: {kind} is not configuration ({how})"),
                ));
            }
        }
        let e = match super::append::parse_line(line, &actor) {
            Ok(e) => e,
            Err(m) => return Ok(refuse(i + 1, &m)),
        };
        if e.kind == RULES_KIND {
            if let Err(m) = rules_build(&e.payload) {
                return Ok(refuse(i + 1, &format!("field `payload.rules`: {m}")));
            }
        }
        entries.push(e);
    }
    if entries.is_empty() {
        return Ok(0);
    }
    // The newest rules set of this configuration, for the pointer.
    let rules_at = entries
        .iter()
        .rposition(|e| e.kind == RULES_KIND)
        .map(|i| (i, *entries[i].payload_hash()));
    let log = super::state::lock_for_decision(dir, "config apply")?;
    let acks = log.append_entries(entries)?;
    drop(log);
    if let Some((i, hash)) = rules_at {
        let seq = acks.get(i).map(|a| a.seq);
        // Committed first, pointed at second: a crash between the two
        // leaves the old rules in force at ingestion, which `config apply`
        // run again repairs; `status` shows the pointer.
        if let Some(seq) = seq {
            crate::secrets::mirror::write(dir, seq, &hash).with_context(|| {
                format!(
                    "the redaction rules are committed at seq {seq}, but {} could not be written",
                    crate::secrets::mirror::path(dir).display()
                )
            })?;
        }
    }
    let mut out = Out::default();
    for a in acks {
        out.line(&format!(
            r#"{{"seq":{},"hash":"{}"}}"#,
            a.seq,
            hex::encode(a.hash)
        ));
    }
    out.flush();
    Ok(0)
}

use crate::secrets::mirror::RULES_KIND;

/// Builds a `redaction.rules_set` payload's rules, as ingestion will.
fn rules_build(payload: &[u8]) -> std::result::Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    crate::secrets::RulesConfig::from_payload(&v)
        .and_then(|c| c.build())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn refuse(line: usize, message: &str) -> i32 {
    super::eprint(&format!(
        "argusctl: stdin line {line}: {message}; nothing was written"
    ));
    EXIT_USAGE
}
