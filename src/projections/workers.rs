//! Worker health (PRD-018 §4.13): last heartbeat per worker and the claims
//! each one holds, so dead workers and stuck claims can be reported at any
//! log time.
//!
//! The projection stores facts only (who, which claim, which entry, when);
//! "dead" and "stuck" depend on "now" and on thresholds the caller picks, so
//! they are judged by [`findings`] at view time. Reporting only: releasing a
//! claim or requeueing a job is a decision, written as an entry by the
//! supervisor of a later issue.
use super::status::status_enum;
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "workers";

status_enum! {
    /// What a claim holds: a job (`worker.claimed`) or a run (`run.claimed`).
    #[derive(Default)]
    pub enum ClaimKind("claim kind") {
        #[default]
        Job = "job",
        Run = "run",
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Worker {
    pub worker_id: String,
    pub first_seen_seq: u64,
    pub first_seen_ts_ns: u64,
    pub last_heartbeat_seq: Option<u64>,
    pub last_heartbeat_ts_ns: Option<u64>,
    pub heartbeats: u64,
    pub job_id: Option<String>,
    pub cpu_seconds: Option<f64>,
    pub rss_mb: Option<f64>,
    /// The last `heartbeat.stale` about this worker.
    pub stale_reported_seq: Option<u64>,
}

/// A job (`worker.claimed`) or run (`run.claimed`) held under a lease.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claim {
    pub what: ClaimKind,
    pub id: String,
    pub worker_id: String,
    pub claimed_seq: u64,
    pub claimed_ts_ns: u64,
    pub lease_ms: Option<u64>,
    pub renewed_seq: Option<u64>,
    pub renewed_ts_ns: Option<u64>,
}

impl Claim {
    /// The entry the current lease runs from, and when.
    fn lease_from(&self) -> (u64, u64) {
        match (self.renewed_seq, self.renewed_ts_ns) {
            (Some(s), Some(t)) => (s, t),
            _ => (self.claimed_seq, self.claimed_ts_ns),
        }
    }

    /// `job/<id>` or `run/<id>`, as the dead-worker finding lists it.
    fn label(&self) -> String {
        format!("{}/{}", self.what, self.id)
    }
}

pub fn worker_key(id: &str) -> Vec<u8> {
    format!("worker/{id}").into_bytes()
}
pub const WORKER_PREFIX: &[u8] = b"worker/";

pub fn claim_key(what: ClaimKind, id: &str) -> Vec<u8> {
    format!("claim/{what}/{id}").into_bytes()
}
pub const CLAIM_PREFIX: &[u8] = b"claim/";

#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub stale_after_ms: u64,
    pub stuck_after_ms: u64,
    pub rss_max_mb: Option<f64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            stale_after_ms: 90_000,
            stuck_after_ms: 1_800_000,
            rss_max_mb: None,
        }
    }
}

status_enum! {
    /// What is wrong with a worker or one of its claims.
    pub enum FindingKind("worker finding") {
        /// No heartbeat for too long, or reported stale since the last one.
        Dead = "dead",
        /// A claim held too long, or past its lease without renewal.
        Stuck = "stuck",
        /// Resident memory over the caller's limit.
        Rss = "rss",
    }
}

/// One problem at log time `now`, with the entry that proves it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub worker_id: String,
    pub status: FindingKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub reason: String,
    /// How long the evidence has stood (heartbeat age, claim held, lease overdue).
    pub age_ms: u64,
    pub evidence_seq: u64,
    /// Claims the worker still holds (for `dead`): what a supervisor would release.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
}

/// Whole milliseconds from `from_ns` to `now_ns` (0 if `from_ns` is later).
fn ms_since(now_ns: u64, from_ns: u64) -> u64 {
    now_ns.saturating_sub(from_ns) / 1_000_000
}

/// The worker's last sign of life (its first mention if it never sent a
/// heartbeat): seq and log time.
fn last_heartbeat(w: &Worker) -> (u64, u64) {
    match (w.last_heartbeat_seq, w.last_heartbeat_ts_ns) {
        (Some(s), Some(t)) => (s, t),
        _ => (w.first_seen_seq, w.first_seen_ts_ns),
    }
}

/// Dead: a `heartbeat.stale` after the last heartbeat, or silence past
/// the threshold. `held` are the claims a supervisor would release.
fn dead(w: &Worker, held: Vec<String>, now_ns: u64, t: &Thresholds) -> Option<Finding> {
    let (hb_seq, hb_ts) = last_heartbeat(w);
    let age_ms = ms_since(now_ns, hb_ts);
    let (evidence_seq, reason) = if let Some(seq) = w.stale_reported_seq.filter(|&s| s > hb_seq) {
        (
            seq,
            "heartbeat.stale reported after the last heartbeat".to_string(),
        )
    } else if age_ms > t.stale_after_ms {
        let what = if w.last_heartbeat_seq.is_some() {
            "no heartbeat"
        } else {
            "never sent a heartbeat"
        };
        (
            hb_seq,
            format!(
                "{what} for {age_ms} ms (stale after {} ms)",
                t.stale_after_ms
            ),
        )
    } else {
        return None;
    };
    Some(Finding {
        worker_id: w.worker_id.clone(),
        status: FindingKind::Dead,
        job_id: None,
        run_id: None,
        reason,
        age_ms,
        evidence_seq,
        claims: held,
    })
}

/// Over the memory limit, judged on the last heartbeat's report.
fn rss(w: &Worker, now_ns: u64, t: &Thresholds) -> Option<Finding> {
    let (Some(max), Some(rss), Some(seq)) = (t.rss_max_mb, w.rss_mb, w.last_heartbeat_seq) else {
        return None;
    };
    (rss > max).then(|| Finding {
        worker_id: w.worker_id.clone(),
        status: FindingKind::Rss,
        job_id: None,
        run_id: None,
        reason: format!("rss {rss} MB over {max} MB"),
        age_ms: ms_since(now_ns, last_heartbeat(w).1),
        evidence_seq: seq,
        claims: Vec::new(),
    })
}

/// Stuck: held past the threshold (evidence: the claim), or else past its
/// lease without renewal (evidence: the claim or its last renewal).
fn stuck(c: &Claim, now_ns: u64, t: &Thresholds) -> Option<Finding> {
    let (lease_seq, lease_ts) = c.lease_from();
    let held_ms = ms_since(now_ns, c.claimed_ts_ns);
    let (evidence_seq, age_ms, reason) = if held_ms > t.stuck_after_ms {
        (
            c.claimed_seq,
            held_ms,
            format!(
                "claim held {held_ms} ms (stuck after {} ms)",
                t.stuck_after_ms
            ),
        )
    } else {
        let lease_ms = c.lease_ms.filter(|&l| ms_since(now_ns, lease_ts) > l)?;
        let over = ms_since(now_ns, lease_ts) - lease_ms;
        (
            lease_seq,
            over,
            format!("lease of {lease_ms} ms expired {over} ms ago without renewal"),
        )
    };
    let (job_id, run_id) = match c.what {
        ClaimKind::Run => (None, Some(c.id.clone())),
        ClaimKind::Job => (Some(c.id.clone()), None),
    };
    Some(Finding {
        worker_id: c.worker_id.clone(),
        status: FindingKind::Stuck,
        job_id,
        run_id,
        reason,
        age_ms,
        evidence_seq,
        claims: Vec::new(),
    })
}

/// Dead workers, stuck claims and oversized workers at log time `now_ns`,
/// ordered by worker then claim, so the same log and `now` give the same list.
pub fn findings(workers: &[Worker], claims: &[Claim], now_ns: u64, t: Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in workers {
        let mine = || claims.iter().filter(|c| c.worker_id == w.worker_id);
        let held = mine().map(Claim::label).collect();
        out.extend(dead(w, held, now_ns, &t));
        out.extend(rss(w, now_ns, &t));
        out.extend(mine().filter_map(|c| stuck(c, now_ns, &t)));
    }
    out
}

pub struct Workers;

impl Workers {
    /// Loads a worker, creating it at its first mention.
    fn worker(ev: &Event<'_>, tx: &Tx<'_>, id: &str) -> Result<Worker, StoreError> {
        Ok(tx.get_json(&worker_key(id))?.unwrap_or_else(|| Worker {
            worker_id: id.to_string(),
            first_seen_seq: ev.seq,
            first_seen_ts_ns: ev.log_ns,
            ..Worker::default()
        }))
    }

    fn claim(
        ev: &Event<'_>,
        tx: &mut Tx<'_>,
        what: ClaimKind,
        id: &str,
        worker: &str,
    ) -> Result<(), StoreError> {
        let c = Claim {
            what,
            id: id.to_string(),
            worker_id: worker.to_string(),
            claimed_seq: ev.seq,
            claimed_ts_ns: ev.log_ns,
            lease_ms: ev.u64("lease_ms"),
            renewed_seq: None,
            renewed_ts_ns: None,
        };
        tx.put_json(&claim_key(what, id), c);
        let key = worker_key(worker);
        if tx.get(&key)?.is_none() {
            let w = Self::worker(ev, tx, worker)?;
            tx.put_json(&key, w);
        }
        Ok(())
    }
}

impl Projection for Workers {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        // 2: `Claim::what` is a `ClaimKind` (same words).
        2
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        match ev.kind {
            // Both are proof of life at this entry's time.
            "worker.heartbeat" | "heartbeat.ok" => {
                let Some(id) = ev.str("worker_id") else {
                    return Ok(());
                };
                let mut w = Self::worker(ev, tx, id)?;
                w.last_heartbeat_seq = Some(ev.seq);
                w.last_heartbeat_ts_ns = Some(ev.log_ns);
                w.heartbeats += 1;
                if ev.kind == "worker.heartbeat" {
                    w.job_id = ev.str("job_id").map(str::to_string);
                    w.cpu_seconds = ev.f64("cpu_seconds").or(w.cpu_seconds);
                    w.rss_mb = ev.f64("rss_mb").or(w.rss_mb);
                }
                tx.put_json(&worker_key(id), w);
            }
            "heartbeat.stale" => {
                let Some(id) = ev.str("worker_id") else {
                    return Ok(());
                };
                let mut w = Self::worker(ev, tx, id)?;
                w.stale_reported_seq = Some(ev.seq);
                tx.put_json(&worker_key(id), w);
            }
            "worker.claimed" | "run.claimed" => {
                let (what, field) = if ev.kind == "run.claimed" {
                    (ClaimKind::Run, "run_id")
                } else {
                    (ClaimKind::Job, "job_id")
                };
                let (Some(worker), Some(id)) = (ev.str("worker_id"), ev.str(field)) else {
                    return Ok(());
                };
                Self::claim(ev, tx, what, id, worker)?;
            }
            "run.lease_renewed" => {
                let (Some(worker), Some(id)) = (ev.str("worker_id"), ev.str("run_id")) else {
                    return Ok(());
                };
                let key = claim_key(ClaimKind::Run, id);
                match tx.get_json::<Claim>(&key)? {
                    Some(mut c) if c.worker_id == worker => {
                        c.renewed_seq = Some(ev.seq);
                        c.renewed_ts_ns = Some(ev.log_ns);
                        c.lease_ms = ev.u64("lease_ms").or(c.lease_ms);
                        tx.put_json(&key, c);
                    }
                    // Renewing a lease it does not hold on record: the
                    // worker holds it from now on.
                    _ => Self::claim(ev, tx, ClaimKind::Run, id, worker)?,
                }
            }
            "worker.released" => {
                let (Some(worker), Some(id)) = (ev.str("worker_id"), ev.str("job_id")) else {
                    return Ok(());
                };
                let key = claim_key(ClaimKind::Job, id);
                if tx
                    .get_json::<Claim>(&key)?
                    .is_some_and(|c| c.worker_id == worker)
                {
                    tx.del(&key);
                }
            }
            // A finished job's claim is over even if no release was written.
            "job.completed" | "job.failed" | "job.cancelled" | "job.timed_out" | "dlq.enqueued" => {
                if let Some(job) = ev.job_id {
                    let key = claim_key(ClaimKind::Job, job);
                    if tx.get(&key)?.is_some() {
                        tx.del(&key);
                    }
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
    fn stuck_by_hold_time_and_by_lease() {
        let s = 1_000_000_000;
        let w = Worker {
            worker_id: "w".into(),
            last_heartbeat_seq: Some(5),
            last_heartbeat_ts_ns: Some(100 * s),
            ..Worker::default()
        };
        let c = Claim {
            what: ClaimKind::Job,
            id: "j".into(),
            worker_id: "w".into(),
            claimed_seq: 1,
            claimed_ts_ns: 0,
            lease_ms: Some(60_000),
            renewed_seq: Some(4),
            renewed_ts_ns: Some(50 * s),
        };
        let t = Thresholds::default();
        assert!(findings(
            std::slice::from_ref(&w),
            std::slice::from_ref(&c),
            110 * s,
            t
        )
        .is_empty());
        let f = findings(
            std::slice::from_ref(&w),
            std::slice::from_ref(&c),
            111 * s,
            t,
        );
        assert_eq!(
            (f[0].status, f[0].evidence_seq, f[0].age_ms),
            (FindingKind::Stuck, 4, 1000)
        );
        let f = findings(&[w], &[c], 1801 * s, t);
        assert_eq!(
            f.iter()
                .map(|f| (f.status, f.evidence_seq))
                .collect::<Vec<_>>(),
            vec![(FindingKind::Dead, 5), (FindingKind::Stuck, 1)]
        );
    }
}
