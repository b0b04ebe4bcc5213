//! `argusctl sla`: p50/p95 of time to first update and to completion per job
//! type, breaches, and the breaches not yet recorded as `sla.breach`.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::sla::{
    nearest_rank, targets, Breach, JobSla, Target, JOB_PREFIX, NAME, TARGET_PREFIX,
};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    Summary,
    /// Breaches with no `sla.breach` entry yet (what the auditor should write).
    Unrecorded,
    Jobs,
}

#[derive(Serialize)]
struct TypeRow {
    job_type: String,
    jobs: u64,
    target_first_update_ms: Option<u64>,
    target_completion_ms: Option<u64>,
    first_update_count: usize,
    first_update_p50_ms: Option<u64>,
    first_update_p95_ms: Option<u64>,
    completion_count: usize,
    completion_p50_ms: Option<u64>,
    completion_p95_ms: Option<u64>,
    breaches_first_update: u64,
    breaches_completion: u64,
    breaches: u64,
    running: u64,
}

#[derive(Serialize)]
struct JobRow<'a> {
    job_id: &'a str,
    job_type: &'a str,
    received_seq: u64,
    time_to_first_update_ms: Option<u64>,
    time_to_completion_ms: Option<u64>,
    end: Option<&'a str>,
    target: Option<Target>,
    breaches: Vec<&'static str>,
}

fn summary(jobs: &[JobSla], all_targets: &BTreeMap<String, Target>, now_ns: u64) -> Vec<TypeRow> {
    let mut by_type: BTreeMap<&str, Vec<&JobSla>> = BTreeMap::new();
    for j in jobs {
        by_type.entry(&j.job_type).or_default().push(j);
    }
    // Types with a target but no jobs yet still show their targets.
    for t in all_targets.keys() {
        by_type.entry(t).or_default();
    }
    by_type
        .into_iter()
        .map(|(jt, js)| {
            let mut fu: Vec<u64> = js
                .iter()
                .filter_map(|j| j.time_to_first_update_ms())
                .collect();
            let mut tc: Vec<u64> = js
                .iter()
                .filter_map(|j| j.time_to_completion_ms())
                .collect();
            fu.sort_unstable();
            tc.sort_unstable();
            let breaches: Vec<Breach> = js.iter().flat_map(|j| j.breaches(now_ns)).collect();
            let count = |m: &str| breaches.iter().filter(|b| b.metric == m).count() as u64;
            let target = all_targets.get(jt);
            TypeRow {
                job_type: jt.to_string(),
                jobs: js.len() as u64,
                target_first_update_ms: target.map(|t| t.time_to_first_update_ms),
                target_completion_ms: target.map(|t| t.time_to_completion_ms),
                first_update_count: fu.len(),
                first_update_p50_ms: nearest_rank(&fu, 50),
                first_update_p95_ms: nearest_rank(&fu, 95),
                completion_count: tc.len(),
                completion_p50_ms: nearest_rank(&tc, 50),
                completion_p95_ms: nearest_rank(&tc, 95),
                breaches_first_update: count(crate::projections::sla::TIME_TO_FIRST_UPDATE),
                breaches_completion: count(crate::projections::sla::TIME_TO_COMPLETION),
                breaches: breaches.len() as u64,
                running: js.iter().filter(|j| j.end_seq.is_none()).count() as u64,
            }
        })
        .collect()
}

pub fn run(dir: &Path, show: Show, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let now_ns = super::state::now_ns(&st)?;
    let (jobs, stored) = st.projections.with_view(NAME, |v| {
        Ok((
            v.scan_json::<JobSla>(JOB_PREFIX)?,
            v.scan_json::<Target>(TARGET_PREFIX)?,
        ))
    })?;
    let jobs: Vec<JobSla> = jobs.into_iter().map(|(_, j)| j).collect();
    let stored = stored.into_iter().map(|(k, t)| {
        let name = String::from_utf8_lossy(&k[TARGET_PREFIX.len()..]).into_owned();
        (name, t)
    });
    let all_targets = targets(stored);
    let ms = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    match show {
        Show::Summary => {
            let rows = summary(&jobs, &all_targets, now_ns);
            let header = format!(
                "{:<20} {:>5} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>8}",
                "job_type",
                "jobs",
                "tfu_tgt",
                "tfu_p50",
                "tfu_p95",
                "done_tgt",
                "done_p50",
                "done_p95",
                "breaches"
            );
            super::print_rows(format, &rows, &header, super::as_json, |r| {
                format!(
                    "{:<20} {:>5} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>8}",
                    esc(&r.job_type),
                    r.jobs,
                    ms(r.target_first_update_ms),
                    ms(r.first_update_p50_ms),
                    ms(r.first_update_p95_ms),
                    ms(r.target_completion_ms),
                    ms(r.completion_p50_ms),
                    ms(r.completion_p95_ms),
                    r.breaches
                )
            })?;
            if format == Format::Text {
                Out::default().line("(times in ms; p50/p95 are nearest-rank over measured jobs)");
            }
        }
        Show::Unrecorded => {
            let breaches: Vec<Breach> = jobs
                .iter()
                .flat_map(|j| j.breaches(now_ns))
                .filter(|b| !b.recorded)
                .collect();
            let header = format!(
                "{:<24} {:<20} {:<22} {:>10} {:>10} {:<5} {:>8}",
                "job", "type", "metric", "target_ms", "actual_ms", "open", "evidence"
            );
            super::print_rows(format, &breaches, &header, super::as_json, |b| {
                format!(
                    "{:<24} {:<20} {:<22} {:>10} {:>10} {:<5} {:>8}",
                    esc(&b.job_id),
                    esc(&b.job_type),
                    b.metric,
                    b.target_ms,
                    b.actual_ms,
                    b.open,
                    b.evidence_seq
                )
            })?;
        }
        Show::Jobs => {
            let mut out = Out::default();
            for j in &jobs {
                let row = JobRow {
                    job_id: &j.job_id,
                    job_type: &j.job_type,
                    received_seq: j.received_seq,
                    time_to_first_update_ms: j.time_to_first_update_ms(),
                    time_to_completion_ms: j.time_to_completion_ms(),
                    end: j.end_kind.as_deref(),
                    target: j.target,
                    breaches: j.breaches(now_ns).iter().map(|b| b.metric).collect(),
                };
                match format {
                    Format::Json => out.json(&serde_json::to_string(&row)?),
                    Format::Text => out.line(&format!(
                        "{:<24} {:<20} tfu={:>8} done={:>8} end={:<14} breaches={}",
                        esc(row.job_id),
                        esc(row.job_type),
                        ms(row.time_to_first_update_ms),
                        ms(row.time_to_completion_ms),
                        esc(row.end.unwrap_or("-")),
                        row.breaches.join(",")
                    )),
                }
            }
            out.flush();
        }
    }
    Ok(())
}
