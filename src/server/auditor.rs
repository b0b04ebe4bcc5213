//! The auditor inside argusd, and the watch on it.
//!
//! The internal auditor is one thread: it folds the whole log once
//! (`auditor::replay::catch_up`), writes what a previous run computed but
//! never wrote, then follows the log with `log::follow::Follower`, writing
//! each entry's outputs as the `auditor:argusd` principal as soon as the
//! entry is read. On a quiet log with a staleness deadline due it writes an
//! `auditor.tick`, so the deadline is judged on the writer's clock.
//!
//! `watch` judges whether the auditor (internal or `--auditor-only`) keeps
//! up; when it does not, health says so and the configured policy applies:
//! by default a `lockdown.set` written by argusd itself. Silence must never
//! look like health.
use super::config::{AuditorMode, AuditorSection, LossPolicy};
use super::control::Gate;
use crate::auditor::replay::{self, Feeder};
use crate::auditor::{Auditor, Config, Output};
use crate::authority::{Actor, Class};
use crate::log::follow::Follower;
use crate::log::reader::LogReader;
use crate::Log;
use parking_lot::Mutex;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The principal the internal auditor writes as.
pub const PRINCIPAL: &str = "argusd";

/// What health and the loss watch know about the auditor.
pub struct AuditorStatus {
    pub mode: AuditorMode,
    /// The next seq the auditor has not folded.
    pub next_seq: AtomicU64,
    /// When it last advanced or was seen caught up.
    last_progress: Mutex<Instant>,
    /// The internal thread is running (external: reports are arriving).
    pub alive: AtomicBool,
    /// The loss watch judged it lost (cleared when it is back).
    pub lost: AtomicBool,
    pub last_error: Mutex<Option<String>>,
    /// Outputs written since start.
    pub written: AtomicU64,
}

impl AuditorStatus {
    pub fn new(mode: AuditorMode) -> Self {
        Self {
            mode,
            next_seq: AtomicU64::new(0),
            last_progress: Mutex::new(Instant::now()),
            alive: AtomicBool::new(mode == AuditorMode::Internal),
            lost: AtomicBool::new(false),
            last_error: Mutex::new(None),
            written: AtomicU64::new(0),
        }
    }

    pub fn progress(&self, next_seq: u64) {
        self.next_seq.fetch_max(next_seq, Ordering::Relaxed);
        *self.last_progress.lock() = Instant::now();
    }

    pub fn since_progress(&self) -> Duration {
        self.last_progress.lock().elapsed()
    }

    /// `/v1/health`'s view of the auditor.
    pub fn health(&self, head: u64) -> serde_json::Value {
        let next = self.next_seq.load(Ordering::Relaxed);
        let state = if self.mode == AuditorMode::Off {
            "off"
        } else if self.lost.load(Ordering::Relaxed) {
            "lost"
        } else if next < head {
            "behind"
        } else {
            "ok"
        };
        json!({
            "mode": self.mode,
            "state": state,
            "next_seq": next,
            "lag": head.saturating_sub(next),
            "since_progress_s": self.since_progress().as_secs(),
            "written": self.written.load(Ordering::Relaxed),
            "last_error": *self.last_error.lock(),
        })
    }
}

/// An entry written as `class:principal` rather than as Argus itself.
pub(super) fn entry_as(
    class: Class,
    principal: &str,
    kind: &str,
    payload: &serde_json::Value,
) -> crate::NewEntry {
    crate::NewEntry {
        actor: Actor::new(class, principal).to_string(),
        ..crate::NewEntry::argus(kind, payload)
    }
}

fn new_entry(o: &Output, principal: &str) -> crate::NewEntry {
    crate::NewEntry {
        job_id: o.job_id.clone(),
        agent: o.agent.clone(),
        ..entry_as(Class::Auditor, principal, o.kind, &o.payload)
    }
}

/// Writes outputs in one commit; on success they are no longer owed.
fn write(log: &Log, a: &mut Auditor, outs: &[Output], status: &AuditorStatus) -> bool {
    if outs.is_empty() {
        return true;
    }
    let entries: Vec<crate::NewEntry> = outs.iter().map(|o| new_entry(o, PRINCIPAL)).collect();
    match log.append(entries) {
        Ok(_) => {
            for o in outs {
                a.written(o);
                if o.kind == "anomaly.detected" {
                    let sev = o.payload["severity"].as_str().unwrap_or("").to_string();
                    metrics::counter!("argus_anomalies_total", "severity" => sev).increment(1);
                }
            }
            status
                .written
                .fetch_add(outs.len() as u64, Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, outputs = outs.len(), "the auditor cannot write; it retries");
            *status.last_error.lock() = Some(e.to_string());
            false
        }
    }
}

/// Starts the internal auditor thread.
pub fn start(
    dir: PathBuf,
    log: Arc<Log>,
    cfg: Config,
    status: Arc<AuditorStatus>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name("argusd-auditor".into())
        .spawn(move || {
            if let Err(e) = run(&dir, &log, cfg, &status, &stop) {
                tracing::error!(error = %crate::cli::error::chain_text(&e), "the auditor stopped");
                *status.last_error.lock() = Some(crate::cli::error::chain_text(&e));
            }
            status.alive.store(false, Ordering::Relaxed);
        })?)
}

fn run(
    dir: &std::path::Path,
    log: &Log,
    cfg: Config,
    status: &AuditorStatus,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let tick_min = Duration::from_secs(cfg.staleness.tick_min_s.max(1));
    let mut a = Auditor::new(cfg);
    let mut feeder = Feeder::new()?;
    let size = log.committed().get();
    let started = Instant::now();
    replay::catch_up(&LogReader::open(dir)?, &mut a, &mut feeder, size)?;
    status.progress(a.next_seq);
    let owed = a.unwritten();
    tracing::info!(
        entries = size,
        owed = owed.len(),
        ms = started.elapsed().as_millis() as u64,
        "auditor caught up"
    );
    write(log, &mut a, &owed, status);
    let mut follower = Follower::new(&LogReader::open(dir)?, a.next_seq)?;
    let mut last_entry = Instant::now();
    let mut last_tick = Instant::now() - tick_min;
    let mut last_retry = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut outs = Vec::new();
        let n = follower.poll(|v| outs.extend(feeder.feed(&mut a, v)))?;
        if n > 0 {
            last_entry = Instant::now();
            status.progress(a.next_seq);
            write(log, &mut a, &outs, status);
            continue;
        }
        status.progress(a.next_seq);
        if last_retry.elapsed() > Duration::from_secs(1) {
            last_retry = Instant::now();
            let owed = a.unwritten();
            write(log, &mut a, &owed, status);
        }
        if let Some(due) = a.next_deadline() {
            let now = a.last_log_ns + last_entry.elapsed().as_nanos() as u64;
            if now >= due && last_tick.elapsed() >= tick_min {
                last_tick = Instant::now();
                // A tick is not an output (nothing replays it): it only
                // carries the writer's clock past the deadline.
                let due = json!({"due_seq": a.next_seq.saturating_sub(1)});
                let e = entry_as(Class::Auditor, PRINCIPAL, "auditor.tick", &due);
                if let Err(err) = log.append(vec![e]) {
                    tracing::warn!(error = %err, "auditor tick not written");
                }
            }
        }
        log.committed()
            .wait_for(follower.next_seq() + 1, Duration::from_millis(250));
    }
    Ok(())
}

/// Judges, once a second, whether the auditor keeps up; applies the loss
/// policy once per loss.
pub async fn watch(
    log: Arc<Log>,
    status: Arc<AuditorStatus>,
    gate: Arc<Gate>,
    cfg: AuditorSection,
) {
    if status.mode == AuditorMode::Off {
        return;
    }
    let bound = Duration::from_secs(cfg.loss_after_s.max(1));
    let mut behind_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let head = log.committed().get();
        let lag = head.saturating_sub(status.next_seq.load(Ordering::Relaxed));
        metrics::gauge!("argus_auditor_lag").set(lag as f64);
        let why = if status.mode == AuditorMode::Internal && !status.alive.load(Ordering::Relaxed) {
            Some("the auditor thread stopped".to_string())
        } else if status.mode == AuditorMode::External && status.since_progress() > bound {
            Some(format!(
                "the external auditor has reported nothing for {} s",
                status.since_progress().as_secs()
            ))
        } else if lag > cfg.max_lag_entries {
            let since = *behind_since.get_or_insert_with(Instant::now);
            (since.elapsed() > bound).then(|| {
                format!(
                    "the auditor is {lag} entries behind (bound {}) for over {} s",
                    cfg.max_lag_entries,
                    bound.as_secs()
                )
            })
        } else {
            behind_since = None;
            None
        };
        let was_lost = status.lost.swap(why.is_some(), Ordering::Relaxed);
        metrics::gauge!("argus_auditor_lost").set(if why.is_some() { 1.0 } else { 0.0 });
        match (why, was_lost) {
            (Some(why), false) => {
                tracing::error!(reason = %why, policy = ?cfg.on_auditor_loss, "auditor lost");
                if cfg.on_auditor_loss == LossPolicy::Lockdown && gate.snapshot().lockdown.is_none()
                {
                    let payload = json!({
                            "reason": format!("auditor lost: {why}; agents are locked out until an operator releases (on_auditor_loss = lockdown)"),
                            "priority": "P1",
                    });
                    let e = entry_as(Class::Argus, "argusd", "lockdown.set", &payload);
                    let log = log.clone();
                    let r = tokio::task::spawn_blocking(move || log.append(vec![e])).await;
                    if !matches!(r, Ok(Ok(_))) {
                        tracing::error!("the auditor-loss lockdown could not be written");
                    }
                }
            }
            (None, true) => tracing::warn!(
                "auditor back; a standing lockdown stays until an operator releases it"
            ),
            _ => {}
        }
    }
}
