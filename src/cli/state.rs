//! Opening the projections for a view: every view catches them up to the
//! log's sealed head before answering, with a progress bar on a terminal.
use crate::authority::Class;
use crate::log::lock::DEFAULT_WAIT;
use crate::log::reader::LogReader;
use crate::projections::{self, Projections};
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct State {
    pub reader: LogReader,
    pub projections: Held,
    /// Sealed entries the projections now reflect.
    pub size: u64,
}

/// The projections a view reads: opened by this process, or argusd's,
/// held for reading while the view runs.
pub enum Held {
    Owned(Projections),
    Shared(super::context::ProjectionsRead),
}

impl std::ops::Deref for Held {
    type Target = Projections;
    fn deref(&self) -> &Projections {
        match self {
            Self::Owned(p) => p,
            Self::Shared(g) => g,
        }
    }
}

pub fn open(dir: &Path) -> Result<State> {
    if let Some(shared) = super::context::shared() {
        let (reader, projections, size) = shared.read_caught_up()?;
        return Ok(State {
            reader,
            projections: Held::Shared(projections),
            size,
        });
    }
    let reader = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    // The catch-up reads the active segment's last commit first: read it
    // while the projection store opens, instead of after (a cold process
    // waits on both).
    let mut projections = std::thread::scope(|s| {
        s.spawn(|| reader.preload_active());
        open_projections(dir)
    })?;
    let size = catch_up(&reader, &mut projections)?;
    Ok(State {
        reader,
        projections: Held::Owned(projections),
        size,
    })
}

/// Opens the projections; on a log whose `projections/` cannot be written
/// (a read-only copy), says once per process that they are rebuilt in a
/// temporary store, since every view then replays the whole log.
pub fn open_projections(dir: &Path) -> Result<Projections> {
    static SAID: std::sync::Once = std::sync::Once::new();
    let p = Projections::open(dir, projections::all())?;
    if let projections::store::Backing::Temporary { reason } = p.backing() {
        SAID.call_once(|| {
            super::eprint(&format!(
                "argusctl: {} is read-only ({reason}); projections rebuilt in memory for this run",
                dir.display()
            ))
        });
    }
    Ok(p)
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

/// What a mutating command writes: one entry, by the local principal in the
/// command's writer class (an operator's decision, or Argus's own, such as a
/// policy denial). The command changes nothing else; projections derive the
/// new state from it.
pub struct Decision<'a> {
    pub class: Class,
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
    log: Writer,
}

/// This process's writer, or argusd's with its decision lock held.
enum Writer {
    Owned(Box<crate::Log>),
    /// argusd's writer, with its decision lock held until this drops.
    Shared {
        log: std::sync::Arc<crate::Log>,
        _decisions: super::context::DecisionGuard,
    },
}

impl std::ops::Deref for Writer {
    type Target = crate::Log;
    fn deref(&self) -> &crate::Log {
        match self {
            Self::Owned(l) => l,
            Self::Shared { log, .. } => log,
        }
    }
}

pub fn lock_for_decision(dir: &Path, operation: &str) -> Result<DecisionLock> {
    if let Some(shared) = super::context::shared() {
        let guard = shared.lock_decisions();
        return Ok(DecisionLock {
            log: Writer::Shared {
                log: shared.log.clone(),
                _decisions: guard,
            },
        });
    }
    Ok(DecisionLock {
        log: Writer::Owned(Box::new(open_writer(dir, operation)?)),
    })
}

/// Appends one decision entry (durable and sealed on return) and returns its seq.
pub fn append_one(dir: &Path, operation: &str, d: Decision<'_>) -> Result<u64> {
    lock_for_decision(dir, operation)?.append(d)
}

/// `--lock-timeout`, in milliseconds: set once by the binary, read by every
/// command that opens the log for writing.
static LOCK_WAIT_MS: AtomicU64 = AtomicU64::new(DEFAULT_WAIT.as_millis() as u64);

/// How long this process's writers wait for another's writer lock.
pub fn set_lock_timeout(wait: Duration) {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    LOCK_WAIT_MS.store(ms, Ordering::Relaxed);
}

pub fn lock_timeout() -> Duration {
    Duration::from_millis(LOCK_WAIT_MS.load(Ordering::Relaxed))
}

/// Opens the log for writing on behalf of `operation` ("append",
/// "approve", ...), waiting up to `--lock-timeout` for the writer lock.
/// Decisions use `lock_for_decision`, which inside argusd takes the
/// daemon's writer instead.
pub fn open_writer(dir: &Path, operation: &str) -> Result<crate::Log> {
    open_writer_with(dir, operation, false)
}

/// `open_writer` for a command whose one thread appends and then waits for
/// each commit (`OpenOptions::inline_writer`): commits run on that thread.
pub fn open_writer_inline(dir: &Path, operation: &str) -> Result<crate::Log> {
    open_writer_with(dir, operation, true)
}

fn open_writer_with(dir: &Path, operation: &str, inline_writer: bool) -> Result<crate::Log> {
    let opts = crate::log::OpenOptions {
        operation: operation.to_string(),
        lock_wait: lock_timeout(),
        clock: None,
        inline_writer,
    };
    crate::Log::open_with(dir, &opts)
        .with_context(|| format!("opening {} to {operation}", dir.display()))
}

impl DecisionLock {
    /// Appends entries the caller built (one group commit), durable and
    /// sealed on return.
    pub fn append_entries<E: crate::log::entry::IntoValid>(
        &self,
        entries: Vec<E>,
    ) -> Result<Vec<crate::Ack>> {
        Ok(self.log.append(entries)?)
    }

    /// Appends one decision entry (durable and sealed on return) and returns its seq.
    pub fn append(&self, d: Decision<'_>) -> Result<u64> {
        let acks = self.log.append(vec![crate::NewEntry {
            kind: d.kind.to_string(),
            job_id: d.job_id.map(str::to_string),
            step_id: None,
            agent: d.agent.map(str::to_string),
            actor: super::context::actor(d.class).to_string(),
            parent: d.parent,
            payload: crate::json::to_canonical(&d.payload),
        }])?;
        acks.first()
            .map(|a| a.seq)
            .context("append returned no ack")
    }
}

/// "Now" for a live view or check, in log time: the log clock at the
/// newest entry plus the real time that passed since it, judged as the
/// writer judges it (`crate::time`). Projections never read it (they fold
/// entry times only, so replay is deterministic); views use it so that a
/// quiet log still ages: a worker whose heartbeats stopped is reported dead,
/// an open breaker reaches half-open and a rate-limit window slides even
/// when nothing new is appended. A process whose own clock is off does not
/// move it: the log's clock anchor outvotes it, and a note says so.
pub fn now_ns(st: &State) -> Result<u64> {
    let clock = st.projections.log_clock()?;
    let now = clock.now_ns(
        &*st.reader.dir.storage,
        &st.reader.dir.root,
        &crate::time::SystemClock::new(),
    );
    if let Some(off) = now.clock_off_ns {
        let tol = i128::from(st.reader.meta.skew_tolerance_ns());
        if off.abs() > tol {
            super::eprint(&format!(
                "argusctl: note: this machine's clock is {} {} the log's clock; times are judged in log time",
                crate::time::human_ns(off.unsigned_abs().min(u128::from(u64::MAX)) as u64),
                if off > 0 { "ahead of" } else { "behind" }
            ));
        }
    }
    Ok(now.log_ns)
}
