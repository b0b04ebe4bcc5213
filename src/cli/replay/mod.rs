//! `argusctl replay DIR JOB`: one job's timeline, rebuilt from the job
//! index (the seqs of its entries) and the kill-switch decisions made
//! while it ran, never from a scan of the whole log. It works on a live
//! log and on a read-only copy, like every view. `--requeue` records a new
//! run of the job (`job.replayed`), leaving the original untouched.
mod render;
pub mod timeline;

use super::error::CommandError;
use super::state::{self, Decision};
use super::{Format, Out};
use crate::authority::Class;
use crate::log::redactions::{Redactions, Shown};
use crate::projections::{control, jobs, redactions};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::ops::ControlFlow;
use std::path::Path;
use timeline::Event;

pub struct Opts<'a> {
    pub job: &'a str,
    pub from_step: Option<&'a str>,
    pub until_seq: Option<u64>,
    pub detailed: bool,
    pub requeue: bool,
    pub proof: Option<&'a Path>,
    pub format: Format,
}

pub fn run(dir: &Path, o: &Opts<'_>) -> Result<i32> {
    // The job's entries may be in any segment; their footers and indexes
    // are read ahead while the job index opens.
    crate::log::readahead::hint_sealed(&crate::log::dir::LogDir::new(dir));
    let st = state::open(dir)?;
    let (job, mut seqs) = st.projections.with_view(jobs::NAME, |v| {
        Ok((
            v.get_json::<jobs::Job>(&jobs::job_key(o.job))?,
            jobs::job_seqs(v, o.job)?,
        ))
    })?;
    let Some(job) = job else {
        return Err(CommandError::NotFound(format!("no job {:?} in the log", o.job)).into());
    };
    // Kill switches thrown or released while the job ran touched it even
    // when they name no job.
    let decisions = st.projections.with_view(control::NAME, |v| {
        control::decisions_between(v, job.first_seq, job.last_seq)
    })?;
    seqs.extend(decisions.iter().map(|d| d.seq));
    seqs.sort_unstable();
    seqs.dedup();
    if let Some(n) = o.until_seq {
        seqs.retain(|s| *s <= n);
    }
    let redactions = st
        .projections
        .with_view(redactions::NAME, |v| redactions::of_seqs(v, &seqs))?;
    st.reader.prefetch(&seqs);
    let events = read(&st.reader, &seqs, &redactions)?;
    drop(st);
    let (mut events, derived) = timeline::build(events);
    if let Some(step) = o.from_step {
        let Some(i) = events
            .iter()
            .position(|e| e.step_id.as_deref() == Some(step))
        else {
            return Err(
                CommandError::NotFound(format!("job {:?} has no step {step:?}", o.job)).into(),
            );
        };
        events.drain(..i);
    }
    let mut out = Out::default();
    match o.format {
        Format::Json => render::json(&mut out, &job, &events, &derived, o.detailed),
        Format::Text => render::text(&mut out, &job, &events, &derived, o.detailed),
    }
    out.flush();
    if let Some(path) = o.proof {
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        let n = super::proof::write_job_bundle(dir, o.job, &seqs, path)?;
        super::eprint(&format!(
            "argusctl: wrote a job proof bundle of {n} entries to {} (check it with: argusctl verify-proof {} --key HEX)",
            path.display(),
            path.display()
        ));
    }
    if o.requeue {
        requeue(dir, &job, o)?;
    }
    Ok(0)
}

/// Reads the entries at `seqs` (ascending), one reader pass per run of
/// consecutive seqs. A redacted payload reads as null and the event names
/// its redaction (from the redactions projection); zeros no redaction
/// explains are refused.
fn read(
    reader: &crate::log::reader::LogReader,
    seqs: &[u64],
    redactions: &Redactions,
) -> Result<Vec<Event>> {
    let mut events = Vec::with_capacity(seqs.len());
    let mut failed = None;
    let mut i = 0;
    while i < seqs.len() {
        let start = seqs[i];
        let mut end = start;
        while i + 1 < seqs.len() && seqs[i + 1] == end + 1 {
            i += 1;
            end = seqs[i];
        }
        i += 1;
        reader
            .for_each(start, end, |v| {
                let redacted = match redactions.shown(v) {
                    Shown::Payload => None,
                    Shown::Erased(r) => Some(r.clone()),
                    Shown::Unexplained => {
                        failed = Some(super::unexplained_erasure(v.seq));
                        return ControlFlow::Break(());
                    }
                };
                let payload: Value = match redacted {
                    Some(_) => Value::Null,
                    None => serde_json::from_slice(v.payload).unwrap_or(Value::Null),
                };
                events.push(Event {
                    seq: v.seq,
                    ts_ns: v.ts_ns,
                    kind: v.kind.to_string(),
                    step_id: v.step_id.map(str::to_string),
                    agent: v.agent.map(str::to_string),
                    actor: v.actor.to_string(),
                    parent: v.parent,
                    summary: match &redacted {
                        Some(r) => super::erased_text(r),
                        None => timeline::summarize(v.kind, &payload),
                    },
                    payload,
                    redacted,
                    duration_ms: None,
                    paired_with: None,
                    cost_total_usd: 0.0,
                    by_argus: Class::of_actor(v.actor) != Class::Agent,
                });
                ControlFlow::Continue(())
            })
            .with_context(|| format!("reading seqs {start}..={end}"))?;
        if let Some(e) = failed.take() {
            return Err(e);
        }
    }
    Ok(events)
}

/// `--requeue`: the seed's `replay_job(job_id, from_step)`, recorded.
fn requeue(dir: &Path, job: &jobs::Job, o: &Opts<'_>) -> Result<()> {
    let mut payload = json!({"original_job_id": job.job_id});
    if let Some(s) = o.from_step {
        payload["from_step"] = json!(s);
    }
    let seq = state::append_one(
        dir,
        "replay --requeue",
        Decision {
            class: Class::Operator,
            kind: "job.replayed",
            job_id: Some(&job.job_id),
            agent: None,
            parent: Some(job.first_seq),
            payload,
        },
    )?;
    let mut out = Out::default();
    match o.format {
        Format::Json => {
            out.json(&json!({"requeued": {"seq": seq, "job_id": job.job_id}}).to_string())
        }
        Format::Text => out.line(&format!(
            "requeued: job.replayed at seq {seq} (parent {}: the original, untouched)",
            job.first_seq
        )),
    }
    out.flush();
    Ok(())
}
