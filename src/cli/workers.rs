//! `argusctl workers`: dead workers and stuck claims now (`state::now_ns`), each
//! with the entry that shows it. Reporting only; nothing is released here.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::workers::{
    findings, Claim, Thresholds, Worker, CLAIM_PREFIX, NAME, WORKER_PREFIX,
};
use anyhow::Result;
use serde_json::json;
use std::path::Path;

pub fn run(dir: &Path, t: Thresholds, all: bool, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let now_ns = super::state::now_ns(&st)?;
    let (workers, claims) = st.projections.with_view(NAME, |v| {
        Ok((
            v.scan_json::<Worker>(WORKER_PREFIX)?,
            v.scan_json::<Claim>(CLAIM_PREFIX)?,
        ))
    })?;
    let workers: Vec<Worker> = workers.into_iter().map(|(_, w)| w).collect();
    let claims: Vec<Claim> = claims.into_iter().map(|(_, c)| c).collect();
    let found = findings(&workers, &claims, now_ns, t);
    let mut out = Out::default();
    match format {
        Format::Json => {
            for f in &found {
                out.json(&serde_json::to_string(f)?);
            }
            if all {
                for w in workers
                    .iter()
                    .filter(|w| !found.iter().any(|f| f.worker_id == w.worker_id))
                {
                    let last = w.last_heartbeat_ts_ns.unwrap_or(w.first_seen_ts_ns);
                    out.json(
                        &json!({
                            "worker_id": w.worker_id,
                            "status": "ok",
                            "age_ms": now_ns.saturating_sub(last) / 1_000_000,
                            "evidence_seq": w.last_heartbeat_seq.unwrap_or(w.first_seen_seq),
                            "job_id": w.job_id,
                            "rss_mb": w.rss_mb,
                            "cpu_seconds": w.cpu_seconds,
                        })
                        .to_string(),
                    );
                }
            }
        }
        Format::Text => {
            out.line(&format!(
                "{:<20} {:<6} {:<24} {:>10} {:>8}  reason",
                "worker", "status", "claim", "age_ms", "evidence"
            ));
            for f in &found {
                let claim = match (&f.job_id, &f.run_id) {
                    (Some(j), _) => format!("job/{}", esc(j)),
                    (_, Some(r)) => format!("run/{}", esc(r)),
                    _ if !f.claims.is_empty() => esc(&f.claims.join(",")).to_string(),
                    _ => "-".into(),
                };
                out.line(&format!(
                    "{:<20} {:<6} {:<24} {:>10} {:>8}  {}",
                    esc(&f.worker_id),
                    f.status,
                    claim,
                    f.age_ms,
                    f.evidence_seq,
                    esc(&f.reason)
                ));
            }
            if all {
                for w in workers
                    .iter()
                    .filter(|w| !found.iter().any(|f| f.worker_id == w.worker_id))
                {
                    let last = w.last_heartbeat_ts_ns.unwrap_or(w.first_seen_ts_ns);
                    out.line(&format!(
                        "{:<20} {:<6} {:<24} {:>10} {:>8}  heartbeat current",
                        esc(&w.worker_id),
                        "ok",
                        esc(w.job_id.as_deref().unwrap_or("-")),
                        now_ns.saturating_sub(last) / 1_000_000,
                        w.last_heartbeat_seq.unwrap_or(w.first_seen_seq)
                    ));
                }
            }
        }
    }
    out.flush();
    Ok(())
}
