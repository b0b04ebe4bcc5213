//! `argusctl export`: sealed entries in seq order, each with its hash and
//! the hash it chains to, for SIEM pipelines, as JSON lines or RFC 7464
//! JSON text sequences. `argusctl import` reads the same lines back.
//!
//! Each record names the log it comes from and carries every field the
//! entry hash covers (seed 002's audit-trail shape: timestamp, log id,
//! event type, ids), so a consumer can recompute the chain from the
//! export alone: the payload's canonical form (SPEC §4.1.1) is the stored
//! payload, and `timestamp` is exact to the nanosecond.
use super::{rfc3339_ns, Out};
use crate::log::reader::LogReader;
use crate::log::redactions::{Redaction, Redactions, Shown};
use anyhow::{Context, Result};
use log_format::EntryView;
use serde_json::value::RawValue;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

pub const AFTER_HELP: &str = "Each record: {\"timestamp\", \"log_id\", \"seq\", \"event_type\", \"job_id\", \"step_id\", \"agent\",\n\"actor\", \"parent\", \"payload\", \"hash\", \"prev\"}. timestamp is RFC 3339 UTC to the nanosecond and\npayload is the stored payload, so the entry hash can be recomputed from a record alone; a\npayload an operator erased (argusctl redact) is null, with \"payload_hash\" and \"redacted\"\n{by_seq, actor, ts, reason} in its place (import refuses such a record).\njsonl prints one record per line; json-seq is RFC 7464 (each record starts with 0x1E and\nends with LF). --job uses the job index (the jobs projection) to read only the job's\nentries; while argusd serves the log it scans instead. Only sealed entries are exported.\nRead locally (no lock), never through argusd.\n\nExamples:\n  argusctl export ./audit > audit.jsonl\n  argusctl export ./audit --from 1000 --to 1999 --format json-seq | siem-forwarder\n  argusctl export ./audit --job job-7f3a | jq -c '{seq,event_type,actor}'";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 7464: 0x1E, the JSON object, LF.
    JsonSeq,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    pub dir: PathBuf,
    /// First seq to export (any seq; past the head exports nothing).
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Last seq to export, inclusive.
    #[arg(long)]
    pub to: Option<u64>,
    /// Only this job's entries.
    #[arg(long)]
    pub job: Option<String>,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
}

/// One exported entry. Field order is the record's.
#[derive(serde::Serialize)]
struct Record<'a> {
    timestamp: String,
    log_id: &'a str,
    seq: u64,
    event_type: &'a str,
    job_id: Option<&'a str>,
    step_id: Option<&'a str>,
    agent: Option<&'a str>,
    actor: &'a str,
    parent: Option<u64>,
    payload: Box<RawValue>,
    /// Only for an erased payload (`payload` is then null): its stored
    /// hash, so the entry hash can still be recomputed from the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_hash: Option<String>,
    /// Who erased the payload, when and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted: Option<serde_json::Value>,
    hash: String,
    prev: String,
}

/// One entry as an export record (one line of JSON, not yet escaped). A
/// redacted payload is exported as null with its hash and the redaction,
/// never as its bytes; zeros no redaction explains are refused.
pub fn record(v: &EntryView<'_>, log_id: &str, redactions: &Redactions) -> Result<String> {
    let redaction = match redactions.shown(v) {
        Shown::Payload => None,
        Shown::Erased(r) => Some(r),
        Shown::Unexplained => return Err(super::unexplained_erasure(v.seq)),
    };
    let text = match redaction {
        Some(_) => "null",
        None => std::str::from_utf8(v.payload).unwrap_or("null"),
    };
    let text = if text.is_empty() { "null" } else { text };
    // As `cat -o json`: stored bytes that are not JSON (a hand-made log)
    // are exported as a JSON string rather than dropped.
    let payload = RawValue::from_string(text.to_owned())
        .or_else(|_| RawValue::from_string(serde_json::Value::from(text).to_string()))
        .with_context(|| format!("seq {}: payload cannot be exported", v.seq))?;
    Ok(serde_json::to_string(&Record {
        timestamp: rfc3339_ns(v.ts_ns),
        log_id,
        seq: v.seq,
        event_type: v.kind,
        job_id: v.job_id,
        step_id: v.step_id,
        agent: v.agent,
        actor: v.actor,
        parent: v.parent,
        payload,
        payload_hash: redaction.map(|_| hex::encode(v.payload_hash)),
        redacted: redaction.map(Redaction::json),
        hash: hex::encode(v.hash()),
        prev: hex::encode(v.prev),
    })?)
}

pub fn run(a: &ExportArgs) -> Result<()> {
    let r = LogReader::open(&a.dir).with_context(|| format!("opening {}", a.dir.display()))?;
    let log_id = r.meta.log_id.clone();
    let to = a.to.unwrap_or(u64::MAX);
    let redactions = Redactions::scan(&r, a.from)?;
    let mut out = Out::default();
    let mut failed = None;
    let mut emit = |v: &EntryView<'_>| match record(v, &log_id, &redactions) {
        Ok(s) => {
            match a.format {
                ExportFormat::Jsonl => out.json(&s),
                ExportFormat::JsonSeq => out.json_seq(&s),
            }
            ControlFlow::Continue(())
        }
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    };
    match &a.job {
        None => r.for_each(a.from, to, &mut emit)?,
        Some(job) => match job_seqs(&a.dir, job)? {
            Some(seqs) => {
                let seqs: Vec<u64> = seqs
                    .into_iter()
                    .filter(|s| (a.from..=to).contains(s))
                    .collect();
                for_seqs(&r, &seqs, |v| {
                    if v.job_id == Some(job.as_str()) {
                        emit(v)
                    } else {
                        ControlFlow::Continue(())
                    }
                })?
            }
            None => r.for_each(a.from, to, |v| {
                if v.job_id == Some(job.as_str()) {
                    emit(v)
                } else {
                    ControlFlow::Continue(())
                }
            })?,
        },
    }
    if let Some(e) = failed {
        return Err(e);
    }
    out.flush();
    Ok(())
}

/// The job's seqs from the jobs projection, or `None` when argusd serves
/// the log (it holds the projections store for its life, and a second
/// opener would wait for it): the caller then scans.
fn job_seqs(dir: &Path, job: &str) -> Result<Option<Vec<u64>>> {
    if super::context::shared().is_none() && crate::server::Discovery::read_live(dir).is_some() {
        return Ok(None);
    }
    let st = super::state::open(dir)?;
    let seqs = st
        .projections
        .with_view(crate::projections::jobs::NAME, |v| {
            crate::projections::jobs::job_seqs(v, job)
        })?;
    Ok(Some(seqs))
}

/// Seek points are this far apart in a segment's index; seqs closer than
/// this are read in one walk rather than one seek each.
const GAP: u64 = 4096;

/// Visits the entries with the given seqs (ascending), one walk per run of
/// nearby seqs.
fn for_seqs(
    r: &LogReader,
    seqs: &[u64],
    mut f: impl FnMut(&EntryView<'_>) -> ControlFlow<()>,
) -> Result<()> {
    let mut i = 0;
    while let Some(&first) = seqs.get(i) {
        let mut j = i;
        while let (Some(a), Some(b)) = (seqs.get(j), seqs.get(j + 1)) {
            if b.saturating_sub(*a) > GAP {
                break;
            }
            j += 1;
        }
        let last = seqs.get(j).copied().unwrap_or(first);
        let run = seqs.get(i..=j).unwrap_or_default();
        let mut k = 0;
        let mut stopped = false;
        r.for_each(first, last, |v| {
            while run.get(k).is_some_and(|s| *s < v.seq) {
                k += 1;
            }
            if run.get(k) == Some(&v.seq) && f(v).is_break() {
                stopped = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        if stopped {
            break;
        }
        i = j + 1;
    }
    Ok(())
}
