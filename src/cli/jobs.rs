//! `argusctl jobs`: every job with its status, cost and duration.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::jobs::{Job, NAME};
use anyhow::Result;
use std::path::Path;

/// One job with every seq of its entries, from the index (no log scan).
pub fn show(dir: &Path, job_id: &str, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let (job, seqs) = st.projections.with_view(NAME, |v| {
        Ok((
            v.get_json::<Job>(&crate::projections::jobs::job_key(job_id))?,
            crate::projections::jobs::job_seqs(v, job_id)?,
        ))
    })?;
    let Some(job) = job else {
        return Err(
            super::error::CommandError::NotFound(format!("no job {job_id:?} in the log")).into(),
        );
    };
    let mut v = serde_json::to_value(&job)?;
    v["duration_ms"] = job.duration_ms().into();
    v["seqs"] = seqs.into();
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&v.to_string()),
        Format::Text => out.json_lines(&serde_json::to_string_pretty(&v)?),
    }
    out.flush();
    Ok(())
}

pub fn list(dir: &Path, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let jobs: Vec<Job> = st
        .projections
        .with_view(NAME, |v| v.scan_json::<Job>(b"job/"))?
        .into_iter()
        .map(|(_, j)| j)
        .collect();
    let header = format!(
        "{:<20} {:<20} {:<14} {:>10} {:>12} {:>8}",
        "job", "type", "status", "cost_usd", "duration_ms", "entries"
    );
    let json = |j: &Job| {
        let mut v = serde_json::to_value(j)?;
        v["duration_ms"] = j.duration_ms().into();
        Ok(v)
    };
    super::print_rows(format, &jobs, &header, json, |j| {
        format!(
            "{:<20} {:<20} {:<14} {:>10.4} {:>12} {:>8}",
            esc(&j.job_id),
            esc(j.job_type.as_deref().unwrap_or("-")),
            esc(j.status.as_str()),
            j.cost_usd,
            j.duration_ms()
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            j.entries
        )
    })
}
