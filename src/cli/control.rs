//! The kill switches from the operator's side: `kill`, `lockdown`,
//! `release`, and the `control` and `anomalies` views.
//!
//! Each decision is one or more entries appended under the decision lock,
//! then the flag files are brought in line with the standing decisions
//! (`sync_flags`), so a flag never claims a decision the log does not hold
//! for longer than the gap between the append and the rename.
use super::error::CommandError;
use super::safe::esc;
use super::state::lock_for_decision;
use super::{rfc3339_ns, Format, Out};
use crate::authority::Class;
use crate::log::control_flags::{self, Flag, FlagRecord, OnDisk};
use crate::projections::control::{self, ControlState, Stand};
use crate::projections::incident::{self, IncidentLevel};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;

/// `argusctl kill`: a hard kill, or with `--job`/`--agent` a soft kill of that scope.
pub fn kill(
    dir: &Path,
    reason: &str,
    job: Option<&str>,
    agent: Option<&str>,
    format: Format,
) -> Result<()> {
    let (kind, payload) = match (job, agent) {
        (Some(_), Some(_)) => {
            return Err(CommandError::Invalid(
                "give --job or --agent, not both: a soft kill has one scope".into(),
            )
            .into())
        }
        (Some(j), None) => (
            "kill.soft",
            json!({"reason": reason, "scope": "job", "target": j}),
        ),
        (None, Some(a)) => (
            "kill.soft",
            json!({"reason": reason, "scope": "agent", "target": a}),
        ),
        (None, None) => ("kill.hard", json!({"reason": reason, "priority": "P0"})),
    };
    decide(dir, "kill", vec![(kind, payload)], format)
}

/// `argusctl lockdown`: refuse agents' writes until released.
pub fn lockdown(dir: &Path, reason: &str, format: Format) -> Result<()> {
    decide(
        dir,
        "lockdown",
        vec![("lockdown.set", json!({"reason": reason, "priority": "P1"}))],
        format,
    )
}

/// `argusctl release`: lift the standing hard kill and lockdown (or the one
/// decision `seq` names), and close the incident they opened.
pub fn release(dir: &Path, reason: &str, seq: Option<u64>, format: Format) -> Result<()> {
    let lock = lock_for_decision(dir, "release")?;
    let st = super::state::open(dir)?;
    let ctl = st.projections.with_view(control::NAME, control::current)?;
    let inc = st
        .projections
        .with_view(incident::NAME, incident::current)?;
    drop(st);
    let mut entries: Vec<(&str, Value)> = Vec::new();
    let rel = |seq: u64| json!({"reason": reason, "released_seq": seq});
    match seq {
        Some(n) => {
            if ctl.lockdown.as_ref().is_some_and(|s| s.seq == n) {
                entries.push(("lockdown.released", rel(n)));
            } else if ctl.hard_kill.as_ref().is_some_and(|s| s.seq == n)
                || ctl.soft_kills.iter().any(|k| k.stand.seq == n)
            {
                entries.push(("kill.released", rel(n)));
            } else {
                return Err(CommandError::NotFound(format!(
                    "seq {n} is not a standing kill or lockdown; `argusctl control DIR` lists them"
                ))
                .into());
            }
        }
        None => {
            if let Some(s) = &ctl.hard_kill {
                entries.push(("kill.released", rel(s.seq)));
            }
            if let Some(s) = &ctl.lockdown {
                entries.push(("lockdown.released", rel(s.seq)));
            }
            if entries.is_empty() {
                return Err(CommandError::Conflict(
                    "nothing to release: no hard kill or lockdown stands (soft kills are released with --seq)".into(),
                )
                .into());
            }
        }
    }
    if inc.state != IncidentLevel::Normal && (seq.is_none() || remaining_after(&ctl, seq)) {
        entries.push((
            "incident.resolved",
            json!({"resolution_note": format!("released by an operator: {reason}")}),
        ));
    }
    let new: Vec<crate::NewEntry> = entries
        .iter()
        .map(|(kind, payload)| entry(kind, None, payload))
        .collect();
    let acks = lock.append_entries(new)?;
    sync_after(dir)?;
    print_decision(&entries, &acks, format);
    Ok(())
}

/// Whether releasing `seq` leaves no hard kill or lockdown standing.
fn remaining_after(ctl: &ControlState, seq: Option<u64>) -> bool {
    let hard = ctl.hard_kill.as_ref().is_some_and(|s| Some(s.seq) != seq);
    let lock = ctl.lockdown.as_ref().is_some_and(|s| Some(s.seq) != seq);
    !hard && !lock
}

fn entry(kind: &str, job: Option<&str>, payload: &Value) -> crate::NewEntry {
    crate::NewEntry {
        job_id: job.map(str::to_string),
        actor: super::context::actor(Class::Operator).to_string(),
        ..crate::NewEntry::argus(kind, payload)
    }
}

fn decide(dir: &Path, op: &str, entries: Vec<(&str, Value)>, format: Format) -> Result<()> {
    let lock = lock_for_decision(dir, op)?;
    let mut new = Vec::new();
    for (kind, payload) in &entries {
        new.push(entry(kind, None, payload));
    }
    let acks = lock.append_entries(new)?;
    drop(lock);
    sync_after(dir)?;
    print_decision(&entries, &acks, format);
    Ok(())
}

/// Brings the flags in line with the log after a decision this process made.
/// Inside argusd the daemon does it when the entry commits.
pub(crate) fn sync_after(dir: &Path) -> Result<()> {
    if super::context::shared().is_some() {
        return Ok(());
    }
    let st = super::state::open(dir)?;
    let ctl = st.projections.with_view(control::NAME, control::current)?;
    sync_flags(dir, &ctl)
}

fn print_decision(entries: &[(&str, Value)], acks: &[crate::Ack], format: Format) {
    let mut out = Out::default();
    for ((kind, payload), ack) in entries.iter().zip(acks) {
        match format {
            Format::Json => {
                out.json(&json!({"seq": ack.seq, "kind": kind, "payload": payload}).to_string())
            }
            Format::Text => out.line(&format!("seq {}: {kind}", ack.seq)),
        }
    }
    out.flush();
}

/// Writes or removes each flag so it mirrors the standing decision. A flag
/// that already says the same is left alone (no write per call).
pub fn sync_flags(dir: &Path, ctl: &ControlState) -> Result<()> {
    for flag in Flag::ALL {
        let want = standing(ctl, flag).map(record);
        let have = control_flags::read(dir, flag);
        match (want, have) {
            (Some(w), OnDisk::Record(h)) if w == h => {}
            (Some(w), _) => control_flags::write(dir, flag, &w)
                .with_context(|| format!("writing {}", flag.file_name()))?,
            (None, OnDisk::Absent) => {}
            (None, _) => {
                control_flags::remove(dir, flag)
                    .with_context(|| format!("removing {}", flag.file_name()))?;
            }
        }
    }
    Ok(())
}

fn standing(ctl: &ControlState, flag: Flag) -> Option<&Stand> {
    match flag {
        Flag::HardKill => ctl.hard_kill.as_ref(),
        Flag::Lockdown => ctl.lockdown.as_ref(),
    }
}

fn record(s: &Stand) -> FlagRecord {
    FlagRecord {
        kind: s.kind.clone(),
        seq: s.seq,
        reason: s.reason.clone(),
        ts: rfc3339_ns(s.ts_ns),
        actor: s.actor.clone(),
    }
}

/// Flag files on disk that the log does not explain: present with no
/// standing decision, absent while one stands, or naming another decision.
pub fn unexplained_flags(dir: &Path, ctl: &ControlState) -> Vec<String> {
    let mut out = Vec::new();
    for flag in Flag::ALL {
        let name = flag.file_name();
        match (standing(ctl, flag), control_flags::read(dir, flag)) {
            (None, OnDisk::Absent) => {}
            (Some(s), OnDisk::Record(r)) if r == record(s) => {}
            (Some(s), OnDisk::Absent) => out.push(format!(
                "{name} is missing, but {} seq {} stands in the log",
                s.kind, s.seq
            )),
            (Some(s), OnDisk::Record(r)) => out.push(format!(
                "{name} names seq {} but the log's standing {} is seq {}",
                r.seq, s.kind, s.seq
            )),
            (None, OnDisk::Record(r)) => out.push(format!(
                "{name} is on disk (seq {}) but no {} stands in the log",
                r.seq,
                flag.kind()
            )),
            (_, OnDisk::Foreign(why)) => {
                out.push(format!("{name} is not a flag Argus wrote: {why}"))
            }
        }
    }
    out
}

fn stand_json(s: &Stand) -> Value {
    json!({
        "seq": s.seq,
        "kind": s.kind,
        "reason": s.reason,
        "actor": s.actor,
        "ts": rfc3339_ns(s.ts_ns),
        "priority": s.priority,
        "trigger_seq": s.trigger_seq,
        "evidence_seqs": s.evidence_seqs,
        "repeats": s.repeats,
    })
}

/// The control state as JSON: what `control -o json`, `status` and the
/// operator page show.
pub fn control_json(dir: &Path, ctl: &ControlState, inc: &incident::IncidentState) -> Value {
    let on_disk = |f| !matches!(control_flags::read(dir, f), OnDisk::Absent);
    json!({
        "hard_kill": ctl.hard_kill.as_ref().map(stand_json),
        "lockdown": ctl.lockdown.as_ref().map(stand_json),
        "soft_kills": ctl.soft_kills.iter().map(|k| {
            let mut v = stand_json(&k.stand);
            v["scope"] = json!(k.scope.as_str());
            v["target"] = json!(k.target);
            v
        }).collect::<Vec<_>>(),
        "incident": {
            "state": inc.state,
            "reason": inc.reason,
            "since_seq": inc.since_seq,
        },
        "flags_on_disk": {
            "hard_kill": on_disk(Flag::HardKill),
            "lockdown": on_disk(Flag::Lockdown),
        },
        "unexplained_flags": unexplained_flags(dir, ctl),
        "last_release": ctl.last_release.as_ref().map(stand_json),
    })
}

/// `argusctl control`: what stands, and whether the flags agree.
pub fn show(dir: &Path, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let ctl = st.projections.with_view(control::NAME, control::current)?;
    let inc = st
        .projections
        .with_view(incident::NAME, incident::current)?;
    let v = control_json(dir, &ctl, &inc);
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&v.to_string()),
        Format::Text => {
            for line in text_lines(&ctl, &inc) {
                out.line(&line);
            }
            for w in unexplained_flags(dir, &ctl) {
                out.line(&format!("warning:    {}", esc(&w)));
            }
        }
    }
    out.flush();
    Ok(())
}

/// The control state in a few lines (also printed by `status`).
pub fn text_lines(ctl: &ControlState, inc: &incident::IncidentState) -> Vec<String> {
    let one = |s: &Stand| {
        format!(
            "seq {} by {} at {}: {}",
            s.seq,
            esc(&s.actor),
            rfc3339_ns(s.ts_ns),
            esc(&s.reason)
        )
    };
    let mut lines = vec![
        format!(
            "hard kill:  {}",
            ctl.hard_kill.as_ref().map_or("none".to_string(), one)
        ),
        format!(
            "lockdown:   {}",
            ctl.lockdown.as_ref().map_or("none".to_string(), one)
        ),
    ];
    for k in &ctl.soft_kills {
        lines.push(format!(
            "soft kill:  {} {}: {}",
            k.scope.as_str(),
            esc(&k.target),
            one(&k.stand)
        ));
    }
    lines.push(format!(
        "incident:   {}{}",
        inc.state.as_str(),
        inc.reason
            .as_deref()
            .map(|r| format!(" ({})", esc(r)))
            .unwrap_or_default()
    ));
    lines
}

/// `argusctl anomalies`: the auditor's detections, newest last.
pub fn anomalies(dir: &Path, n: usize, severity: Option<&str>, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let all = st
        .projections
        .with_view(control::NAME, control::anomalies)?;
    let picked: Vec<_> = all
        .iter()
        .filter(|a| {
            severity.is_none_or(|s| a.payload.get("severity").and_then(Value::as_str) == Some(s))
        })
        .collect();
    let skip = picked.len().saturating_sub(n);
    let mut out = Out::default();
    for a in &picked[skip..] {
        let p = &a.payload;
        match format {
            Format::Json => {
                let mut v = json!({
                    "seq": a.seq,
                    "ts": rfc3339_ns(a.ts_ns),
                    "actor": a.actor,
                    "job_id": a.job_id,
                    "agent": a.agent,
                });
                if let (Some(m), Some(pm)) = (v.as_object_mut(), p.as_object()) {
                    for (k, val) in pm {
                        m.insert(k.clone(), val.clone());
                    }
                }
                out.json(&v.to_string());
            }
            Format::Text => {
                let f = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
                out.line(&format!(
                    "{:>8}  {}  {:<8}  {:<10}  {}  {}",
                    a.seq,
                    rfc3339_ns(a.ts_ns),
                    esc(&f("severity")),
                    esc(&f("detector")),
                    esc(&f("series")),
                    esc(&f("reason"))
                ));
            }
        }
    }
    out.flush();
    Ok(())
}
