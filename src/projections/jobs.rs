//! Job index: job_id → status, type, cost, timing and the seqs of its
//! entries, so replay and forensics never scan the whole log.
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "jobs";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub job_id: String,
    pub job_type: Option<String>,
    pub status: String,
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

/// Seqs per chunk record: one sled write per chunk per commit instead of one
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

/// Reuses the status string's buffer: most events leave it unchanged.
fn set_status(status: &mut String, to: &str) {
    if status != to {
        status.clear();
        status.push_str(to);
    }
}

impl Projection for Jobs {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        3
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        let Some(job_id) = ev.job_id else {
            return Ok(());
        };
        let key = job_key(job_id);
        let init = || Job {
            job_id: job_id.to_string(),
            status: "received".into(),
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
                    set_status(&mut job.status, "running")
                }
                "job.progress" => {
                    set_status(&mut job.status, "running");
                    job.first_update_ts_ns.get_or_insert(ev.log_ns);
                }
                "job.retrying" => {
                    set_status(&mut job.status, "retrying");
                    job.retries += 1;
                }
                "job.completed" | "job.failed" | "job.cancelled" | "job.timed_out" => {
                    job.status = ev.kind.trim_start_matches("job.").into();
                    job.finished_ts_ns = Some(ev.log_ns);
                    if let Some(e) = ev.str("error") {
                        job.last_error = Some(e.to_string());
                    }
                }
                "tool.call_failed" => job.last_error = ev.str("error").map(str::to_string),
                "dlq.enqueued" => {
                    job.status = "dead_lettered".into();
                    job.last_error = ev
                        .str("failure_reason")
                        .map(str::to_string)
                        .or(job.last_error.take());
                }
                "dlq.reviewed" => {
                    job.status = format!("dlq_{}", ev.str("resolution").unwrap_or("reviewed"))
                }
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
