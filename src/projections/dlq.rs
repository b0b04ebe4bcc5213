//! Dead-letter queue and human review (PRD-018 §4.11).
//!
//! Only `dlq.enqueued` puts a job in the queue: the runtime writes it once
//! `max_retries` is exhausted, so Argus never second-guesses the retry count.
//! The item also carries the job's last observed error (from its
//! `tool.call_failed` / `job.failed` entries), because the runtime's
//! `failure_reason` is often a summary ("retries exhausted") while the
//! reviewer needs the actual error. An item leaves "pending" only through an
//! entry: `job.replayed` (linked by `original_job_id` + `dlq_seq`) or
//! `dlq.reviewed`.
use super::status::status_enum;
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const NAME: &str = "dlq";

status_enum! {
    /// `pending`, or how the item was resolved.
    #[derive(Default)]
    pub enum DlqStatus("DLQ status") {
        #[default]
        Pending = "pending",
        Replayed = "replayed",
        Discarded = "discarded",
        ManualFix = "manual_fix",
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub job_id: String,
    pub job_type: Option<String>,
    pub input: Option<Value>,
    pub failure_reason: String,
    pub retry_count: u64,
    pub max_retries: Option<u64>,
    /// The last error seen on the job before it was dead-lettered.
    pub last_error: Option<String>,
    pub last_error_seq: Option<u64>,
    pub enqueued_seq: u64,
    pub enqueued_ts_ns: u64,
    pub enqueued_by: String,
    pub status: DlqStatus,
    pub resolved_seq: Option<u64>,
    pub resolved_ts_ns: Option<u64>,
    pub resolved_by: Option<String>,
    pub resolution_reason: Option<String>,
    pub replay_job_id: Option<String>,
    /// Replays of this job so far; names the next replay `<job>-r<N+1>`.
    pub replays: u64,
}

impl Item {
    pub fn is_pending(&self) -> bool {
        self.status == DlqStatus::Pending
    }
    /// The job id the next replay of this item gets.
    pub fn next_replay_id(&self) -> String {
        format!("{}-r{}", self.job_id, self.replays + 1)
    }
}

/// What is known about a job before it reaches the queue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Track {
    job_type: Option<String>,
    max_retries: Option<u64>,
    last_error: Option<String>,
    last_error_seq: Option<u64>,
}

pub fn item_key(job_id: &str) -> Vec<u8> {
    format!("item/{job_id}").into_bytes()
}

pub const ITEM_PREFIX: &[u8] = b"item/";

fn track_key(job_id: &str) -> Vec<u8> {
    format!("track/{job_id}").into_bytes()
}

pub struct Dlq;

impl Dlq {
    fn resolve(
        ev: &Event<'_>,
        tx: &mut Tx<'_>,
        job_id: &str,
        status: DlqStatus,
        replay_job_id: Option<&str>,
        dlq_seq: Option<u64>,
    ) -> Result<(), StoreError> {
        let key = item_key(job_id);
        let Some(mut item) = tx.get_json::<Item>(&key)? else {
            return Ok(());
        };
        // A replay of some other (older or non-DLQ) run of this job does not
        // resolve the current item.
        if !item.is_pending() || dlq_seq.is_some_and(|s| s != item.enqueued_seq) {
            return Ok(());
        }
        item.status = status;
        item.resolved_seq = Some(ev.seq);
        item.resolved_ts_ns = Some(ev.log_ns);
        item.resolved_by = Some(ev.actor.to_string());
        item.resolution_reason = ev.str("reason").map(str::to_string);
        if let Some(r) = replay_job_id {
            item.replay_job_id = Some(r.to_string());
            item.replays += 1;
        }
        tx.put_json(&key, item);
        Ok(())
    }
}

impl Projection for Dlq {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        // 2: `status` is a `DlqStatus` (same words).
        2
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        match ev.kind {
            "job.received" => {
                let Some(job) = ev.job_id else { return Ok(()) };
                let track = Track {
                    job_type: ev.str("job_type").map(str::to_string),
                    max_retries: ev.u64("max_retries"),
                    ..Track::default()
                };
                tx.put_json(&track_key(job), track);
            }
            "tool.call_failed" | "job.failed" => {
                let Some(job) = ev.job_id else { return Ok(()) };
                let Some(err) = ev.str("error") else {
                    return Ok(());
                };
                let key = track_key(job);
                let mut track: Track = tx.get_json(&key)?.unwrap_or_default();
                track.last_error = Some(err.to_string());
                track.last_error_seq = Some(ev.seq);
                tx.put_json(&key, track);
            }
            "job.retrying" => {
                let Some(job) = ev.job_id else { return Ok(()) };
                let key = track_key(job);
                let mut track: Track = tx.get_json(&key)?.unwrap_or_default();
                if let Some(m) = ev.u64("max_retries") {
                    track.max_retries = Some(m);
                    tx.put_json(&key, track);
                }
            }
            // A completed job can no longer be dead-lettered.
            "job.completed" => {
                if let Some(job) = ev.job_id {
                    tx.del(&track_key(job));
                }
            }
            "dlq.enqueued" => {
                let Some(job) = ev.job_id else { return Ok(()) };
                let Some(reason) = ev.str("failure_reason") else {
                    return Ok(());
                };
                let track: Track = tx.get_json(&track_key(job))?.unwrap_or_default();
                let key = item_key(job);
                let replays = tx.get_json::<Item>(&key)?.map(|i| i.replays).unwrap_or(0);
                let item = Item {
                    job_id: job.to_string(),
                    job_type: ev.str("job_type").map(str::to_string).or(track.job_type),
                    input: ev.payload.get("input").cloned(),
                    failure_reason: reason.to_string(),
                    retry_count: ev.u64("retry_count").unwrap_or(0),
                    max_retries: track.max_retries,
                    last_error: track.last_error,
                    last_error_seq: track.last_error_seq,
                    enqueued_seq: ev.seq,
                    enqueued_ts_ns: ev.log_ns,
                    enqueued_by: ev.actor.to_string(),
                    status: DlqStatus::Pending,
                    replays,
                    ..Item::default()
                };
                tx.put_json(&key, item);
            }
            "job.replayed" => {
                let Some(orig) = ev.str("original_job_id") else {
                    return Ok(());
                };
                let dlq_seq = ev.u64("dlq_seq");
                Self::resolve(ev, tx, orig, DlqStatus::Replayed, ev.job_id, dlq_seq)?;
            }
            "dlq.reviewed" => {
                let Some(job) = ev.job_id else { return Ok(()) };
                // Pending is not a resolution: a review naming it (or no
                // known resolution) resolves nothing.
                let res = ev.str("resolution").and_then(|r| r.parse().ok());
                if let Some(res) = res.filter(|r| *r != DlqStatus::Pending) {
                    Self::resolve(ev, tx, job, res, None, None)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
