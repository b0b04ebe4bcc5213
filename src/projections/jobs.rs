//! Job index: job_id → status, type, cost, timing and the seqs of its
//! entries, so replay and forensics never scan the whole log.
use super::status::status_enum;
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "jobs";

status_enum! {
    /// Where a job stands, as its entries tell it.
    #[derive(Default)]
    pub enum JobStatus("job status") {
        #[default]
        Received = "received",
        Running = "running",
        Retrying = "retrying",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
        TimedOut = "timed_out",
        DeadLettered = "dead_lettered",
        DlqReplayed = "dlq_replayed",
        DlqDiscarded = "dlq_discarded",
        DlqManualFix = "dlq_manual_fix",
        /// A `dlq.reviewed` without a resolution this build knows.
        DlqReviewed = "dlq_reviewed",
    }
}

impl JobStatus {
    /// The status a job-ending entry leaves, if `kind` is one.
    fn ended_by(kind: &str) -> Option<Self> {
        Some(match kind {
            "job.completed" => Self::Completed,
            "job.failed" => Self::Failed,
            "job.cancelled" => Self::Cancelled,
            "job.timed_out" => Self::TimedOut,
            _ => return None,
        })
    }

    /// The status after a DLQ review with this resolution.
    fn reviewed(resolution: Option<&str>) -> Self {
        match resolution {
            Some("replayed") => Self::DlqReplayed,
            Some("discarded") => Self::DlqDiscarded,
            Some("manual_fix") => Self::DlqManualFix,
            _ => Self::DlqReviewed,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub job_id: String,
    pub job_type: Option<String>,
    pub status: JobStatus,
    pub agent: Option<String>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub entries: u64,
    pub received_ts_ns: u64,
    pub first_update_ts_ns: Option<u64>,
    pub finished_ts_ns: Option<u64>,
    pub cost_usd: f64,
    pub retries: u64,
    pub last_error: Option<String>,
    /// First seq of the job's current seq chunk (see `chunk_key`).
    pub seq_chunk: u64,
    /// Seqs in that chunk so far.
    #[serde(default)]
    pub chunk_seqs: u64,
}

/// Seqs per chunk record: one store write per chunk per commit instead of one
/// per entry, which made the job index the slowest projection to rebuild.
pub const SEQS_PER_CHUNK: u64 = 128;

impl Job {
    pub fn duration_ms(&self) -> Option<u64> {
        self.finished_ts_ns
            .map(|f| f.saturating_sub(self.received_ts_ns) / 1_000_000)
    }
}

pub fn job_key(job_id: &str) -> Vec<u8> {
    format!("job/{job_id}").into_bytes()
}

/// Key of a chunk of a job's seqs (little-endian u64s, ascending), named by
/// its first seq and zero-padded so chunks sort by seq.
pub fn chunk_key(job_id: &str, first_seq: u64) -> Vec<u8> {
    format!("seq/{job_id}/{first_seq:020}").into_bytes()
}

/// Every seq of a job, in order: what replay reads instead of the log.
pub fn job_seqs(v: &super::View<'_>, job_id: &str) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for (_, chunk) in v.scan(format!("seq/{job_id}/").as_bytes())? {
        out.extend(chunk.chunks_exact(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        }));
    }
    Ok(out)
}

pub struct Jobs;

impl Projection for Jobs {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        // 4: `status` is a `JobStatus` (same words; an unknown DLQ
        // resolution now reads as dlq_reviewed).
        4
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        let Some(job_id) = ev.job_id else {
            return Ok(());
        };
        let key = job_key(job_id);
        let init = || Job {
            job_id: job_id.to_string(),
            status: JobStatus::Received,
            first_seq: ev.seq,
            received_ts_ns: ev.log_ns,
            seq_chunk: ev.seq,
            ..Job::default()
        };
        let chunk = tx.update_json(&key, init, |job: &mut Job| {
            job.last_seq = ev.seq;
            job.entries += 1;
            if job.agent.is_none() {
                job.agent = ev.agent.map(str::to_string);
            }
            match ev.kind {
                "job.received" => {
                    job.job_type = ev.str("job_type").map(str::to_string);
                    job.received_ts_ns = ev.log_ns;
                }
                "job.planning" | "job.dispatched" | "run.claimed" | "worker.claimed" => {
                    job.status = JobStatus::Running
                }
                "job.progress" => {
                    job.status = JobStatus::Running;
                    job.first_update_ts_ns.get_or_insert(ev.log_ns);
                }
                "job.retrying" => {
                    job.status = JobStatus::Retrying;
                    job.retries += 1;
                }
                "job.completed" | "job.failed" | "job.cancelled" | "job.timed_out" => {
                    job.status = JobStatus::ended_by(ev.kind).unwrap_or(job.status);
                    job.finished_ts_ns = Some(ev.log_ns);
                    if let Some(e) = ev.str("error") {
                        job.last_error = Some(e.to_string());
                    }
                }
                "tool.call_failed" => job.last_error = ev.str("error").map(str::to_string),
                "dlq.enqueued" => {
                    job.status = JobStatus::DeadLettered;
                    job.last_error = ev
                        .str("failure_reason")
                        .map(str::to_string)
                        .or(job.last_error.take());
                }
                "dlq.reviewed" => job.status = JobStatus::reviewed(ev.str("resolution")),
                "cost.logged" => job.cost_usd += ev.f64("usd").unwrap_or(0.0),
                _ => {}
            }
            // Any entry after receipt other than the receipt itself is an update.
            if ev.kind != "job.received"
                && job.first_update_ts_ns.is_none()
                && ev.kind.starts_with("job.")
            {
                job.first_update_ts_ns = Some(ev.log_ns);
            }
            if job.chunk_seqs >= SEQS_PER_CHUNK {
                job.seq_chunk = ev.seq;
                job.chunk_seqs = 0;
            }
            job.chunk_seqs += 1;
            job.seq_chunk
        })?;
        tx.extend(&chunk_key(job_id, chunk), &ev.seq.to_le_bytes())?;
        Ok(())
    }
}
