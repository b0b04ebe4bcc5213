//! `argusctl compact DIR`: rewrites sealed segments. Today its one step is
//! the erasure of redacted payloads (`log::erase`); it runs locally, under
//! the log's writer lock, never through argusd.
use super::{Format, Out};
use crate::log::erase::{erase_redacted, EraseReport, Erasure};
use anyhow::{Context, Result};
use std::path::Path;

pub const AFTER_HELP: &str = "Overwrites the payload bytes of every entry an operator redacted (argusctl redact) with zeros,\nsame length, in sealed segments only (each rewritten to a temp file, synced and renamed over\nthe old one, so a crash leaves the old segment or the new). Entries in the active segment are\nreported pending until it is sealed. Offsets, the sparse index, the chain, seals, checkpoints\nand proofs are unchanged; `argusctl verify` reports each erasure. Running it again changes\nnothing. It takes the writer lock: while argusd or an append holds it, compact waits\n--lock-timeout, then refuses; stop argusd first.\n\nProjections are caches derived from payloads: after erasing, delete DIR/projections (they\nrebuild from the log) so no derived copy of an erased value survives.\n\nExamples:\n  argusctl compact ./audit\n  argusctl compact ./audit -o json | jq '.erased[].seq'";

pub fn run(dir: &Path, format: Format) -> Result<i32> {
    let report = erase_redacted(dir, super::state::lock_timeout())
        .with_context(|| format!("compacting {}", dir.display()))?;
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&serde_json::to_string(&report)?),
        Format::Text => {
            for l in text(&report) {
                out.line(&l);
            }
        }
    }
    out.flush();
    Ok(0)
}

fn text(r: &EraseReport) -> Vec<String> {
    let one = |e: &Erasure| {
        format!(
            "seq {} ({} bytes, segments/{} offset {}) by entry.redacted at seq {}",
            e.seq, e.payload_bytes, e.segment, e.offset, e.by_seq
        )
    };
    let mut out = Vec::new();
    for e in &r.erased {
        out.push(format!("erased:    {}", one(e)));
    }
    for e in &r.already {
        out.push(format!("already:   {}", one(e)));
    }
    for e in &r.pending {
        out.push(format!(
            "pending:   {} (active segment: erased once it is sealed)",
            one(e)
        ));
    }
    for s in &r.skipped {
        out.push(format!(
            "skipped:   seq {} by entry.redacted at seq {}: {}",
            s.seq, s.by_seq, s.why
        ));
    }
    out.push(format!(
        "{} erased now, {} already erased, {} pending until sealed, {} skipped; {} segment(s) rewritten",
        r.erased.len(),
        r.already.len(),
        r.pending.len(),
        r.skipped.len(),
        r.segments_rewritten.len()
    ));
    out
}
