//! Opening the projections for a view: every view catches them up to the
//! log's sealed head before answering, with a progress bar on a terminal.
use crate::log::reader::LogReader;
use crate::projections::{self, Projections};
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::path::Path;

pub struct State {
    pub reader: LogReader,
    pub projections: Projections,
    /// Sealed entries the projections now reflect.
    pub size: u64,
}

pub fn open(dir: &Path) -> Result<State> {
    let reader = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut projections = Projections::open(dir, projections::all())?;
    let size = catch_up(&reader, &mut projections)?;
    Ok(State {
        reader,
        projections,
        size,
    })
}

pub fn catch_up(reader: &LogReader, p: &mut Projections) -> Result<u64> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "projections {bar:40} {pos}/{len} entries {per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let size = p
        .catch_up(reader, |done, total| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        })
        .context("catching up projections")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(size)
}

/// What a mutating command writes: one entry, by the local principal. The
/// command changes nothing else; projections derive the new state from it.
pub struct Decision<'a> {
    pub kind: &'a str,
    pub job_id: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub parent: Option<u64>,
    pub payload: serde_json::Value,
}

/// The log's writer, held from before a command reads the state it checks
/// until after it appends its decision. Only one process can hold it, so no
/// other decision lands between the check and the append: two operators
/// approving at once get one approval and one clear "locked" error.
pub struct DecisionLock {
    log: crate::Log,
}

pub fn lock_for_decision(dir: &Path) -> Result<DecisionLock> {
    let log =
        crate::Log::open(dir).with_context(|| format!("opening {} for append", dir.display()))?;
    Ok(DecisionLock { log })
}

/// Appends one decision entry (durable and sealed on return) and returns its seq.
pub fn append_one(dir: &Path, d: Decision<'_>) -> Result<u64> {
    lock_for_decision(dir)?.append(d)
}

impl DecisionLock {
    /// Appends one decision entry (durable and sealed on return) and returns its seq.
    pub fn append(&self, d: Decision<'_>) -> Result<u64> {
        let acks = self.log.append(vec![crate::NewEntry {
            kind: d.kind.to_string(),
            job_id: d.job_id.map(str::to_string),
            step_id: None,
            agent: d.agent.map(str::to_string),
            actor: super::append::local_actor(),
            parent: d.parent,
            payload: crate::json::to_canonical(&d.payload),
        }])?;
        acks.first()
            .map(|a| a.seq)
            .context("append returned no ack")
    }
}

/// "Now" for a live view or check: the time an entry appended now would
/// carry. The writer stamps `max(wall clock, newest entry)`, so this is the
/// same. Projections never read it (they fold entry timestamps only, so
/// replay is deterministic); views use it so that a quiet log still ages: a
/// worker whose heartbeats stopped is reported dead, an open breaker
/// reaches half-open and a rate-limit window slides even when nothing new
/// is appended.
pub fn now_ns(reader: &LogReader) -> Result<u64> {
    Ok(reader
        .latest_seal()?
        .ts_ns
        .max(crate::log::writer::now_ns()))
}
