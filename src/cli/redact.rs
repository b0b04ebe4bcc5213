//! `argusctl redact DIR SEQ --reason R`: an operator's decision to erase
//! one entry's payload, recorded as an `entry.redacted` entry naming the
//! seq and the payload hash it erases. From then on readers show the
//! payload as erased; `argusctl compact` removes the bytes from sealed
//! segments. The check (the entry exists, may be erased, is not erased
//! already) and the append happen under the decision lock, so two operators
//! redacting one entry at once get one redaction and one clear refusal.
use super::error::CommandError;
use super::state::{lock_for_decision, Decision};
use super::{Format, Out};
use crate::authority::Class;
use crate::log::reader::LogReader;
use crate::log::redactions::{erasable, Redactions, KIND, REASON_MAX};
use anyhow::{Context, Result};
use serde_json::json;
use std::ops::ControlFlow;
use std::path::Path;

pub const AFTER_HELP: &str = "Appends entry.redacted {target_seq, payload_hash, reason} as the operator (agents may not\nwrite it). From then on cat, tail, inspect, replay and export show the payload as erased,\nnaming who erased it, when and why; `argusctl compact DIR` overwrites the bytes with zeros in\nsealed segments. The entry hash covers the payload only through its hash, so the chain, seals,\ncheckpoints and earlier proofs stay valid, and `verify` reports the erasure.\n\nOnly payloads of kinds agents write (tool calls, outputs, x. kinds) can be erased; decisions,\nArgus's own records, the auditor's findings and entry.redacted itself cannot. A seq past the\nhead, or one already redacted, is refused (naming the earlier redaction).\n\nExamples:\n  argusctl redact ./audit 17 --reason 'customer email pasted into a tool call (GDPR art. 17)'\n  argusctl redact ./audit 17 --reason 'leaked API key' -o json && argusctl compact ./audit";

/// What the entry at the target seq is, read before deciding.
struct Target {
    kind: String,
    payload_hash: [u8; 32],
}

pub fn run(dir: &Path, seq: u64, reason: &str, format: Format) -> Result<i32> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(CommandError::Invalid(
            "--reason must say why (it is on the record next to the erasure)".into(),
        )
        .into());
    }
    if reason.chars().count() > REASON_MAX {
        return Err(CommandError::Invalid(format!(
            "--reason is longer than {REASON_MAX} characters"
        ))
        .into());
    }
    let lock = lock_for_decision(dir, "redact")?;
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let size = r.latest_seal()?.tree_size;
    if seq >= size {
        return Err(CommandError::NotFound(format!(
            "seq {seq} does not exist yet: the log's sealed entries are seqs 0..{size}"
        ))
        .into());
    }
    let mut target = None;
    r.for_each(seq, seq, |v| {
        target = Some(Target {
            kind: v.kind.to_string(),
            payload_hash: v.payload_hash,
        });
        ControlFlow::Break(())
    })?;
    let t = target.with_context(|| format!("seq {seq} is not a sealed entry of this log"))?;
    if t.kind == KIND {
        return Err(CommandError::Invalid(format!(
            "seq {seq} is itself an {KIND}: a redaction stays readable, or the erasure it explains could not be checked"
        ))
        .into());
    }
    if !erasable(&t.kind) {
        return Err(CommandError::Invalid(format!(
            "seq {seq} is a {}, which agents may not write: decisions, Argus's records and the auditor's findings are not erasable (projections and the auditor derive standing state from them)",
            t.kind
        ))
        .into());
    }
    if let Some(earlier) = Redactions::scan(&r, seq)?.get(seq) {
        return Err(CommandError::Conflict(format!(
            "seq {seq} is already redacted by {KIND} at seq {} ({}: {})",
            earlier.by_seq, earlier.actor, earlier.reason
        ))
        .into());
    }
    let hash = hex::encode(t.payload_hash);
    let by = lock.append(Decision {
        class: Class::Operator,
        kind: KIND,
        job_id: None,
        agent: None,
        parent: Some(seq),
        payload: json!({"target_seq": seq, "payload_hash": hash, "reason": reason}),
    })?;
    let mut out = Out::default();
    match format {
        Format::Json => out.json(
            &json!({"seq": by, "kind": KIND, "target_seq": seq, "payload_hash": hash, "reason": reason})
                .to_string(),
        ),
        Format::Text => out.line(&format!(
            "seq {by}: {KIND} of seq {seq}; readers show its payload as erased, `argusctl compact {}` removes the bytes once its segment is sealed",
            dir.display()
        )),
    }
    out.flush();
    Ok(0)
}
