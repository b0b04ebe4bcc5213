//! `argusctl audit`: the auditor replayed over a log, offline. It prints
//! every entry the auditor would write (and where the log already holds
//! each one) and writes nothing: a live run, a restarted run and this
//! replay must agree, which is how anyone can check the auditor's record.
use super::safe::esc;
use super::{Format, Out};
use crate::auditor::{replay, Config};
use crate::log::reader::LogReader;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;

pub fn run(dir: &Path, from: u64, config: Option<&Path>, format: Format) -> Result<i32> {
    let cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let reader = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let outs = replay::replay(&reader, cfg, from)?;
    let mut out = Out::default();
    let mut missing = 0u64;
    for r in &outs {
        let o = &r.output;
        if r.written_seq.is_none() {
            missing += 1;
        }
        match format {
            Format::Json => out.json(
                &json!({
                    "trigger_seq": o.trigger_seq,
                    "kind": o.kind,
                    "job_id": o.job_id,
                    "agent": o.agent,
                    "payload": canonical(&o.payload),
                    "written_seq": r.written_seq,
                })
                .to_string(),
            ),
            Format::Text => {
                let p = &o.payload;
                let f = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
                let what = match o.kind {
                    "anomaly.detected" => format!(
                        "{} {} {}: {}",
                        f("severity"),
                        f("detector"),
                        f("series"),
                        f("reason")
                    ),
                    _ => f("reason").to_string(),
                };
                out.line(&format!(
                    "trigger {:>8}  {:<18} {}  [{}]",
                    o.trigger_seq,
                    o.kind,
                    esc(&what),
                    r.written_seq
                        .map_or("not in the log".to_string(), |s| format!(
                            "written at seq {s}"
                        ))
                ));
            }
        }
    }
    if format == Format::Text {
        out.line(&format!(
            "{} output(s) from seq {from}; {missing} not in the log",
            outs.len()
        ));
    }
    out.flush();
    Ok(0)
}

/// The payload exactly as it would be stored (canonical JSON, SPEC §4.1.1),
/// so a replay compares byte for byte with what a live auditor wrote.
fn canonical(v: &Value) -> Box<serde_json::value::RawValue> {
    let text = String::from_utf8(crate::json::to_canonical(v)).unwrap_or_else(|_| "null".into());
    serde_json::value::RawValue::from_string(text).unwrap_or_else(|_| {
        serde_json::value::RawValue::from_string("null".into()).unwrap_or_default()
    })
}
