//! `argusctl status`: the log at a glance, with what deserves a look: clock
//! jumps on record, a clock on this machine that disagrees with the log's, a
//! recovery not yet recorded, projections lagging; and the kill switches:
//! what stands, the incident state, and flag files the log does not explain.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::clock::{ClockState, NAME, STATE_KEY};
use crate::time::{human_ns, rfc3339_ns};
use anyhow::Result;
use serde_json::json;
use std::path::Path;

pub fn run(dir: &Path, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let stats = st.reader.stats()?;
    let clock: ClockState = st
        .projections
        .with_view(NAME, |v| v.get_json(STATE_KEY))?
        .unwrap_or_default();
    let log_clock = st.projections.log_clock()?;
    let ctl = st.projections.with_view(
        crate::projections::control::NAME,
        crate::projections::control::current,
    )?;
    let inc = st.projections.with_view(
        crate::projections::incident::NAME,
        crate::projections::incident::current,
    )?;
    let now = log_clock.now_ns(
        &*crate::log::storage::real(),
        dir,
        &crate::time::SystemClock::new(),
    );
    let mut warnings: Vec<String> = Vec::new();
    if clock.skews > 0 {
        warnings.push(format!(
            "{} clock jump(s) on record; log time counted only what was witnessed",
            clock.skews
        ));
    }
    for s in &clock.recent {
        warnings.push(format!(
            "seq {}: clock.skew {} {} (evidence {}), log time counted {}",
            s.seq,
            esc(&s.direction),
            human_ns(s.skew_ns.unsigned_abs()),
            esc(&s.evidence),
            human_ns(s.witnessed_ns)
        ));
    }
    let tol = i128::from(st.reader.meta.skew_tolerance_ns());
    if let Some(off) = now.clock_off_ns.filter(|o| o.abs() > tol) {
        warnings.push(format!(
            "this machine's clock is {} {} the log's clock",
            human_ns(off.unsigned_abs().min(u128::from(u64::MAX)) as u64),
            if off > 0 { "ahead of" } else { "behind" }
        ));
    }
    warnings.extend(super::control::unexplained_flags(dir, &ctl));
    // The redaction rules ingestion applies now, as `append` finds them.
    let rules = match crate::secrets::mirror::active(dir) {
        Ok(r) => Some(r),
        Err(e) => {
            warnings.push(format!("redaction rules: {e}"));
            None
        }
    };
    let rules_seq = rules.as_ref().and_then(|r| r.seq());
    let rule_names: Vec<String> = rules
        .as_ref()
        .map(|r| r.redactor().rule_names().map(str::to_string).collect())
        .unwrap_or_default();
    if dir.join(crate::log::recovery::PENDING_FILE).exists() {
        warnings.push(
            "a recovery cut is not yet recorded in the log; the next writer records it".into(),
        );
    }
    let mut out = Out::default();
    match format {
        Format::Json => {
            let v = json!({
                "log_id": stats.log_id,
                "entries": stats.entries,
                "segments": stats.segments,
                "bytes": stats.bytes,
                "head_seq": stats.head_seq,
                "head_hash": stats.head_hash,
                "log_time": rfc3339_ns(now.log_ns),
                "log_time_ns": now.log_ns,
                "last_entry_ts_ns": log_clock.started.then_some(log_clock.last_ts_ns),
                "clock_skews": clock.skews,
                "recent_clock_skews": clock.recent,
                "control": super::control::control_json(dir, &ctl, &inc),
                "redaction": {"rules_seq": rules_seq, "rules": rule_names},
                "warnings": warnings,
            });
            out.json(&v.to_string());
        }
        Format::Text => {
            out.line(&format!("log:       {}", stats.log_id));
            out.line(&format!(
                "entries:   {} in {} segment(s), {} bytes",
                stats.entries, stats.segments, stats.bytes
            ));
            out.line(&format!(
                "head:      seq {} {}",
                stats
                    .head_seq
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
                stats.head_hash
            ));
            out.line(&format!("log time:  {}", rfc3339_ns(now.log_ns)));
            for l in super::control::text_lines(&ctl, &inc) {
                out.line(&l);
            }
            out.line(&format!(
                "redaction: {} rule(s), {}",
                rule_names.len(),
                rules_seq.map_or_else(
                    || "built-in only".to_string(),
                    |s| format!("operator's set at seq {s}")
                )
            ));
            for w in &warnings {
                out.line(&format!("warning:   {w}"));
            }
        }
    }
    out.flush();
    Ok(())
}
