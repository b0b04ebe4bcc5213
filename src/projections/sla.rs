//! SLA tracking (PRD-018 §4.9): time to first update (`job.received` →
//! first `job.progress`) and time to completion (`job.received` →
//! `job.completed`) per job, against per-type targets.
//!
//! A job keeps the targets in force when it was received: the promise made
//! at intake is what it is measured against, and a later `sla.target_set`
//! cannot rewrite history. Breaches are computed, not written: the auditor
//! (a later issue) records them as `sla.breach`, and this projection notes
//! which ones it already recorded so `argusctl sla --breaches` lists only the
//! rest. Open measurements (a running job) depend on "now", so they are
//! evaluated at view time against log time, never stored.
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const NAME: &str = "sla";

pub const TIME_TO_FIRST_UPDATE: &str = "time_to_first_update";
pub const TIME_TO_COMPLETION: &str = "time_to_completion";

/// Seed 003 §4.9 target table: (job type, first update ms, completion ms).
pub const DEFAULT_TARGETS: &[(&str, u64, u64)] = &[
    ("health_check", 5_000, 30_000),
    ("revenue_overview", 5_000, 60_000),
    ("list_projects", 5_000, 30_000),
    ("research_synthesis", 5_000, 120_000),
    ("content_generation", 5_000, 180_000),
];

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Target {
    pub time_to_first_update_ms: u64,
    pub time_to_completion_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobSla {
    pub job_id: String,
    pub job_type: String,
    pub received_seq: u64,
    pub received_ts_ns: u64,
    /// Targets in force at `job.received`; `None` for a type without one.
    pub target: Option<Target>,
    pub first_update_seq: Option<u64>,
    pub first_update_ts_ns: Option<u64>,
    /// The entry that ended the job (completed, failed, cancelled, timed
    /// out, dead-lettered); cleared again by `job.retrying`.
    pub end_kind: Option<String>,
    pub end_seq: Option<u64>,
    pub end_ts_ns: Option<u64>,
    /// Metrics already recorded as `sla.breach` entries for this job.
    pub recorded: Vec<String>,
}

/// One measured or still-open time against its target.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Breach {
    pub job_id: String,
    pub job_type: String,
    pub metric: &'static str,
    pub target_ms: u64,
    pub actual_ms: u64,
    /// The job is still running: `actual_ms` is its elapsed log time so far.
    pub open: bool,
    /// The entry that shows the breach (the measuring entry, or the
    /// `job.received` of an open one).
    pub evidence_seq: u64,
    pub recorded: bool,
}

impl JobSla {
    pub fn time_to_first_update_ms(&self) -> Option<u64> {
        self.first_update_ts_ns
            .map(|t| t.saturating_sub(self.received_ts_ns) / 1_000_000)
    }
    pub fn time_to_completion_ms(&self) -> Option<u64> {
        match self.end_kind.as_deref() {
            Some("job.completed") => self
                .end_ts_ns
                .map(|t| t.saturating_sub(self.received_ts_ns) / 1_000_000),
            _ => None,
        }
    }

    /// Breaches at log time `now_ns`. A job that ended without any progress
    /// breaches first-update if it ran longer than that target: its first
    /// update came no sooner than its end.
    pub fn breaches(&self, now_ns: u64) -> Vec<Breach> {
        let Some(t) = self.target else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut check = |metric: &'static str, target_ms: u64, at_ns: u64, open, seq| {
            let elapsed_ns = at_ns.saturating_sub(self.received_ts_ns);
            if elapsed_ns > target_ms.saturating_mul(1_000_000) {
                out.push(Breach {
                    job_id: self.job_id.clone(),
                    job_type: self.job_type.clone(),
                    metric,
                    target_ms,
                    actual_ms: elapsed_ns / 1_000_000,
                    open,
                    evidence_seq: seq,
                    recorded: self.recorded.iter().any(|m| m == metric),
                });
            }
        };
        let ttfu = t.time_to_first_update_ms;
        match (
            self.first_update_ts_ns,
            self.first_update_seq,
            self.end_ts_ns,
            self.end_seq,
        ) {
            (Some(ts), Some(seq), _, _) => check(TIME_TO_FIRST_UPDATE, ttfu, ts, false, seq),
            (None, _, Some(ts), Some(seq)) => check(TIME_TO_FIRST_UPDATE, ttfu, ts, false, seq),
            _ => check(TIME_TO_FIRST_UPDATE, ttfu, now_ns, true, self.received_seq),
        }
        let ttc = t.time_to_completion_ms;
        match (self.end_kind.as_deref(), self.end_ts_ns, self.end_seq) {
            (Some("job.completed"), Some(ts), Some(seq)) => {
                check(TIME_TO_COMPLETION, ttc, ts, false, seq)
            }
            (None, _, _) => check(TIME_TO_COMPLETION, ttc, now_ns, true, self.received_seq),
            // Failed, cancelled, timed out or dead-lettered: no completion.
            _ => {}
        }
        out
    }
}

pub fn default_target(job_type: &str) -> Option<Target> {
    DEFAULT_TARGETS
        .iter()
        .find(|(t, _, _)| *t == job_type)
        .map(|&(_, f, c)| Target {
            time_to_first_update_ms: f,
            time_to_completion_ms: c,
        })
}

pub fn job_key(job_id: &str) -> Vec<u8> {
    format!("job/{job_id}").into_bytes()
}
pub const JOB_PREFIX: &[u8] = b"job/";

pub fn target_key(job_type: &str) -> Vec<u8> {
    format!("target/{job_type}").into_bytes()
}
pub const TARGET_PREFIX: &[u8] = b"target/";

/// Nearest-rank percentile of sorted values: the smallest value with at
/// least `p`% of the values at or below it. Exact and deterministic.
pub fn nearest_rank(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).clamp(1, n);
    sorted.get((rank - 1) as usize).copied()
}

/// Targets per job type: the seed's defaults overlaid with `sla.target_set`.
pub fn targets(stored: impl IntoIterator<Item = (String, Target)>) -> BTreeMap<String, Target> {
    let mut out: BTreeMap<String, Target> = DEFAULT_TARGETS
        .iter()
        .map(|&(t, f, c)| {
            (
                t.to_string(),
                Target {
                    time_to_first_update_ms: f,
                    time_to_completion_ms: c,
                },
            )
        })
        .collect();
    out.extend(stored);
    out
}

pub struct Sla;

impl Projection for Sla {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if ev.kind == "sla.target_set" {
            let (Some(jt), Some(f), Some(c)) = (
                ev.str("job_type"),
                ev.u64("time_to_first_update_ms"),
                ev.u64("time_to_completion_ms"),
            ) else {
                return Ok(());
            };
            let t = Target {
                time_to_first_update_ms: f,
                time_to_completion_ms: c,
            };
            tx.put_json(&target_key(jt), t);
            return Ok(());
        }
        let Some(job_id) = ev.job_id else {
            return Ok(());
        };
        let key = job_key(job_id);
        match ev.kind {
            "job.received" => {
                let Some(jt) = ev.str("job_type") else {
                    return Ok(());
                };
                // A duplicate receipt does not restart the clock.
                if tx.has(&key)? {
                    return Ok(());
                }
                let target = match tx.get_json::<Target>(&target_key(jt))? {
                    Some(t) => Some(t),
                    None => default_target(jt),
                };
                let job = JobSla {
                    job_id: job_id.to_string(),
                    job_type: jt.to_string(),
                    received_seq: ev.seq,
                    received_ts_ns: ev.log_ns,
                    target,
                    ..JobSla::default()
                };
                tx.put_json(&key, job);
            }
            "job.progress" => {
                let Some(mut job) = tx.get_json::<JobSla>(&key)? else {
                    return Ok(());
                };
                if job.first_update_seq.is_none() && job.end_seq.is_none() {
                    job.first_update_seq = Some(ev.seq);
                    job.first_update_ts_ns = Some(ev.log_ns);
                    tx.put_json(&key, job);
                }
            }
            "job.completed" | "job.failed" | "job.cancelled" | "job.timed_out" | "dlq.enqueued" => {
                let Some(mut job) = tx.get_json::<JobSla>(&key)? else {
                    return Ok(());
                };
                // A completion after a failed attempt still counts; any
                // other end after an end changes nothing.
                let reopen =
                    ev.kind == "job.completed" && job.end_kind.as_deref() == Some("job.failed");
                if job.end_seq.is_none() || reopen {
                    job.end_kind = Some(ev.kind.to_string());
                    job.end_seq = Some(ev.seq);
                    job.end_ts_ns = Some(ev.log_ns);
                    tx.put_json(&key, job);
                }
            }
            "job.retrying" => {
                let Some(mut job) = tx.get_json::<JobSla>(&key)? else {
                    return Ok(());
                };
                if job.end_kind.as_deref() == Some("job.failed") {
                    job.end_kind = None;
                    job.end_seq = None;
                    job.end_ts_ns = None;
                    tx.put_json(&key, job);
                }
            }
            "sla.breach" => {
                let Some(metric) = ev.str("metric") else {
                    return Ok(());
                };
                let Some(mut job) = tx.get_json::<JobSla>(&key)? else {
                    return Ok(());
                };
                if !job.recorded.iter().any(|m| m == metric) {
                    job.recorded.push(metric.to_string());
                    job.recorded.sort();
                    tx.put_json(&key, job);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_definition() {
        let v: Vec<u64> = (1..=20).collect();
        assert_eq!(nearest_rank(&v, 50), Some(10));
        assert_eq!(nearest_rank(&v, 95), Some(19));
        assert_eq!(nearest_rank(&v, 100), Some(20));
        assert_eq!(nearest_rank(&[7], 95), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3], 50), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    fn job(first: Option<u64>, end: Option<(&str, u64)>) -> JobSla {
        JobSla {
            job_id: "j".into(),
            job_type: "health_check".into(),
            received_seq: 1,
            received_ts_ns: 0,
            target: default_target("health_check"),
            first_update_seq: first.map(|_| 2),
            first_update_ts_ns: first.map(|s| s * 1_000_000_000),
            end_kind: end.map(|(k, _)| k.to_string()),
            end_seq: end.map(|_| 3),
            end_ts_ns: end.map(|(_, s)| s * 1_000_000_000),
            recorded: vec![],
        }
    }

    #[test]
    fn breaches_follow_targets() {
        let s = 1_000_000_000;
        assert!(job(Some(5), Some(("job.completed", 30)))
            .breaches(99 * s)
            .is_empty());
        let b = job(Some(6), Some(("job.completed", 31))).breaches(99 * s);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].metric, b[0].actual_ms), (TIME_TO_FIRST_UPDATE, 6000));
        assert_eq!((b[1].metric, b[1].actual_ms), (TIME_TO_COMPLETION, 31000));
        // Running past the completion target breaches while still open.
        let b = job(Some(1), None).breaches(31 * s);
        assert_eq!(b.len(), 1);
        assert!(b[0].open && b[0].metric == TIME_TO_COMPLETION);
        assert!(job(Some(1), None).breaches(30 * s).is_empty());
        // A failed job has no completion time to breach.
        assert!(job(Some(1), Some(("job.failed", 100)))
            .breaches(200 * s)
            .is_empty());
    }
}
