//! The auditor over a log on disk: what `argusctl audit` prints, what a
//! restarted auditor folds before it goes live, and what benchmarks time.
use super::config::Config;
use super::finding::{key_of, Output};
use super::fold::Auditor;
use crate::authority::Class;
use crate::log::reader::LogReader;
use crate::projections::admit::{self, admit, log_time};
use crate::time::LogClock;
use std::collections::HashMap;
use std::ops::ControlFlow;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error(transparent)]
    Log(#[from] crate::Error),
    #[error("the built-in event registry is broken: {0}")]
    Registry(String),
}

/// One output of a replay, and where the log already holds it.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub output: Output,
    /// The seq of the entry an auditor wrote for it, if any.
    pub written_seq: Option<u64>,
}

/// Feeds the auditor entries from a reader, keeping the log clock the way
/// the projection lanes keep it.
pub struct Feeder {
    clock: LogClock,
    registry: &'static crate::registry::Registry,
}

impl Feeder {
    pub fn new() -> Result<Self, AuditError> {
        Ok(Self {
            clock: LogClock::default(),
            registry: crate::registry::builtin().map_err(AuditError::Registry)?,
        })
    }

    /// Folds one entry view; returns the auditor's outputs for it.
    pub fn feed(&mut self, a: &mut Auditor, v: &log_format::EntryView<'_>) -> Vec<Output> {
        let admitted = admit(self.registry, v);
        let log_ns = log_time(&mut self.clock, v.kind, v.ts_ns, &admitted);
        let ev = admit::event(v, log_ns, &admitted.payload);
        a.observe(&ev, admitted.refused.is_some())
    }

    /// Folds an entry given as parsed fields (a separate auditor reading
    /// argusd's JSON feed).
    pub fn feed_parsed(&mut self, a: &mut Auditor, e: &ParsedEntry) -> Vec<Output> {
        let admitted = admit::admit_parsed(self.registry, &e.kind, &e.actor, e.payload.clone());
        let log_ns = log_time(&mut self.clock, &e.kind, e.ts_ns, &admitted);
        let ev = crate::projections::Event {
            seq: e.seq,
            log_ns,
            wall_ns: e.ts_ns,
            kind: &e.kind,
            job_id: e.job_id.as_deref(),
            step_id: e.step_id.as_deref(),
            agent: e.agent.as_deref(),
            actor: &e.actor,
            parent: e.parent,
            payload: &admitted.payload,
        };
        a.observe(&ev, admitted.refused.is_some())
    }
}

/// An entry as argusd's JSON feed prints it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ParsedEntry {
    pub seq: u64,
    #[serde(skip)]
    pub ts_ns: u64,
    pub ts: String,
    pub kind: String,
    pub job_id: Option<String>,
    pub step_id: Option<String>,
    pub agent: Option<String>,
    pub actor: String,
    pub parent: Option<u64>,
    pub payload: serde_json::Value,
}

/// Replays the whole log through a fresh auditor; returns the outputs whose
/// trigger is at or after `from`, each with the seq of the entry already
/// written for it.
pub fn replay(reader: &LogReader, cfg: Config, from: u64) -> Result<Vec<Replayed>, AuditError> {
    let mut a = Auditor::new(cfg);
    let mut feeder = Feeder::new()?;
    let mut outs: Vec<Output> = Vec::new();
    let mut written: HashMap<String, u64> = HashMap::new();
    let size = reader.stats()?.entries;
    if size == 0 {
        return Ok(Vec::new());
    }
    reader.for_each(0, size - 1, |v| {
        if Class::of_actor(v.actor) == Class::Auditor {
            if let Ok(p) = serde_json::from_slice::<serde_json::Value>(v.payload) {
                if let Some(t) = p.get("trigger_seq").and_then(serde_json::Value::as_u64) {
                    written.insert(key_of(v.kind, t, v.job_id, &p), v.seq);
                }
            }
        }
        outs.extend(
            feeder
                .feed(&mut a, v)
                .into_iter()
                .filter(|o| o.trigger_seq >= from),
        );
        ControlFlow::Continue(())
    })?;
    Ok(outs
        .into_iter()
        .map(|o| Replayed {
            written_seq: written.get(&o.key()).copied(),
            output: o,
        })
        .collect())
}

/// Folds the log from the start to `size` (a restarting auditor), returning
/// the auditor ready to go live.
pub fn catch_up(
    reader: &LogReader,
    a: &mut Auditor,
    feeder: &mut Feeder,
    size: u64,
) -> Result<(), AuditError> {
    if size <= a.next_seq {
        return Ok(());
    }
    reader.for_each(a.next_seq, size - 1, |v| {
        feeder.feed(a, v);
        ControlFlow::Continue(())
    })?;
    Ok(())
}
