//! `argusctl dlq list|show|replay|discard`: the dead-letter review queue.
//!
//! `replay` and `discard` are decisions: each appends exactly one entry and
//! the projection derives the item's new status from it.
use super::safe::{self, esc};
use super::{Format, Out};
use crate::projections::dlq::{item_key, Item, ITEM_PREFIX, NAME};
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum DlqCmd {
    /// Dead-lettered jobs awaiting review (with --all, resolved ones too).
    #[command(
        after_help = "Examples:\n  argusctl dlq list ./audit\n  argusctl dlq list ./audit --all -o json | jq 'select(.status==\"replayed\")'"
    )]
    List {
        dir: PathBuf,
        /// Include items already replayed, discarded or fixed by hand.
        #[arg(long)]
        all: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One item: input, failure reason, last error, retries, resolution.
    #[command(after_help = "Example:\n  argusctl dlq show ./audit job-7f3a -o json | jq .input")]
    Show {
        dir: PathBuf,
        job: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Re-run a pending item as a new job: appends job.replayed {original_job_id, dlq_seq}.
    #[command(
        after_help = "The new job is <JOB>-r<N>; its entry's parent is the dlq.enqueued seq, linking it to the\noriginal. Refused (exit 1) unless the item is pending.\n\nExample:\n  argusctl dlq replay ./audit job-7f3a"
    )]
    Replay {
        dir: PathBuf,
        job: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Drop a pending item for good: appends dlq.reviewed {resolution: "discarded", reason}.
    #[command(
        after_help = "Refused (exit 1) unless the item is pending.\n\nExample:\n  argusctl dlq discard ./audit job-7f3a --reason \"input was malformed; customer re-submitted\""
    )]
    Discard {
        dir: PathBuf,
        job: String,
        #[arg(long)]
        reason: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

pub fn dispatch(cmd: DlqCmd) -> Result<()> {
    match cmd {
        DlqCmd::List { dir, all, format } => list(&dir, all, format),
        DlqCmd::Show { dir, job, format } => show(&dir, &job, format),
        DlqCmd::Replay { dir, job, format } => replay(&dir, &job, format),
        DlqCmd::Discard {
            dir,
            job,
            reason,
            format,
        } => discard(&dir, &job, &reason, format),
    }
}

fn items(dir: &Path) -> Result<Vec<Item>> {
    let st = super::state::open(dir)?;
    Ok(st
        .projections
        .with_view(NAME, |v| v.scan_json::<Item>(ITEM_PREFIX))?
        .into_iter()
        .map(|(_, i)| i)
        .collect())
}

fn item(dir: &Path, job: &str) -> Result<Item> {
    let st = super::state::open(dir)?;
    match st
        .projections
        .with_view(NAME, |v| v.get_json::<Item>(&item_key(job)))?
    {
        Some(i) => Ok(i),
        None => Err(super::error::CommandError::NotFound(format!(
            "job {job:?} is not in the dead-letter queue"
        ))
        .into()),
    }
}

fn pending(dir: &Path, job: &str, verb: &str) -> Result<Item> {
    let i = item(dir, job)?;
    if !i.is_pending() {
        return Err(super::error::CommandError::Conflict(format!(
            "cannot {verb} {job:?}: its DLQ item is already {} (seq {})",
            i.status,
            i.resolved_seq
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into())
        ))
        .into());
    }
    Ok(i)
}

pub fn list(dir: &Path, all: bool, format: Format) -> Result<()> {
    let items: Vec<Item> = items(dir)?
        .into_iter()
        .filter(|i| all || i.is_pending())
        .collect();
    let header = format!(
        "{:<24} {:<20} {:<10} {:>7} {:>8}  failure_reason / last_error",
        "job", "type", "status", "retries", "seq"
    );
    super::print_rows(format, &items, &header, super::as_json, |i| {
        format!(
            "{:<24} {:<20} {:<10} {:>7} {:>8}  {} / {}",
            esc(&i.job_id),
            esc(i.job_type.as_deref().unwrap_or("-")),
            esc(i.status.as_str()),
            i.retry_count,
            i.enqueued_seq,
            esc(&i.failure_reason),
            esc(i.last_error.as_deref().unwrap_or("-"))
        )
    })
}

pub fn show(dir: &Path, job: &str, format: Format) -> Result<()> {
    let i = item(dir, job)?;
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&serde_json::to_string(&i)?),
        Format::Text => {
            let opt =
                |v: Option<String>| v.map(|s| esc(&s).to_string()).unwrap_or_else(|| "-".into());
            let text = |s: &str| esc(s).to_string();
            for (k, v) in [
                ("job", text(&i.job_id)),
                ("type", opt(i.job_type.clone())),
                ("status", text(i.status.as_str())),
                ("failure_reason", text(&i.failure_reason)),
                ("last_error", opt(i.last_error.clone())),
                (
                    "last_error_seq",
                    opt(i.last_error_seq.map(|s| s.to_string())),
                ),
                ("retry_count", i.retry_count.to_string()),
                ("max_retries", opt(i.max_retries.map(|s| s.to_string()))),
                ("enqueued_seq", i.enqueued_seq.to_string()),
                ("enqueued_at", super::rfc3339_ns(i.enqueued_ts_ns)),
                ("enqueued_by", text(&i.enqueued_by)),
                (
                    "input",
                    i.input
                        .as_ref()
                        .map(|v| safe::json(&v.to_string()).into_owned())
                        .unwrap_or_else(|| "-".into()),
                ),
                ("resolved_seq", opt(i.resolved_seq.map(|s| s.to_string()))),
                ("resolved_by", opt(i.resolved_by.clone())),
                ("resolution_reason", opt(i.resolution_reason.clone())),
                ("replay_job", opt(i.replay_job_id.clone())),
            ] {
                out.line(&format!("{k:<18} {v}"));
            }
        }
    }
    out.flush();
    Ok(())
}

pub fn replay(dir: &Path, job: &str, format: Format) -> Result<()> {
    let lock = super::state::lock_for_decision(dir, "dlq replay")?;
    let i = pending(dir, job, "replay")?;
    let new_id = i.next_replay_id();
    // The input travels with the replay so the runtime can re-run it from
    // this one entry.
    let mut payload = json!({"original_job_id": job, "dlq_seq": i.enqueued_seq});
    if let Some(t) = &i.job_type {
        payload["job_type"] = t.clone().into();
    }
    if let Some(input) = &i.input {
        payload["input"] = input.clone();
    }
    let seq = lock.append(super::state::Decision {
        class: crate::authority::Class::Operator,
        kind: "job.replayed",
        job_id: Some(&new_id),
        agent: None,
        parent: Some(i.enqueued_seq),
        payload,
    })?;
    let mut out = Out::default();
    match format {
        Format::Json => out.json(
            &json!({"seq": seq, "kind": "job.replayed", "job_id": new_id,
                    "original_job_id": job, "dlq_seq": i.enqueued_seq})
            .to_string(),
        ),
        Format::Text => out.line(&format!(
            "replayed {} as {} (seq {seq}, from dlq seq {})",
            esc(job),
            esc(&new_id),
            i.enqueued_seq
        )),
    }
    out.flush();
    Ok(())
}

pub fn discard(dir: &Path, job: &str, reason: &str, format: Format) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(super::error::CommandError::Invalid(
            "--reason is empty: say why the job is discarded".into(),
        )
        .into());
    }
    let lock = super::state::lock_for_decision(dir, "dlq discard")?;
    let i = pending(dir, job, "discard")?;
    let seq = lock.append(super::state::Decision {
        class: crate::authority::Class::Operator,
        kind: "dlq.reviewed",
        job_id: Some(job),
        agent: None,
        parent: Some(i.enqueued_seq),
        payload: json!({"resolution": "discarded", "reason": reason}),
    })?;
    let mut out = Out::default();
    match format {
        Format::Json => out.json(
            &json!({"seq": seq, "kind": "dlq.reviewed", "job_id": job,
                    "resolution": "discarded"})
            .to_string(),
        ),
        Format::Text => out.line(&format!("discarded {} (seq {seq})", esc(job))),
    }
    out.flush();
    Ok(())
}
