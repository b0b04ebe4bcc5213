//! Projections: deterministic folds over the log, stored in sled, disposable.
//!
//! Each projection is a stateless `apply(event, tx)`; all its state lives in
//! its own sled tree beside a checkpoint (next seq + hash of the last entry
//! applied), written in the same atomic batch. On open a projection resumes
//! from its checkpoint, or is rebuilt from seq 0 when its code version
//! changed, its checkpoint hash disagrees with the log, or the log is shorter
//! than the checkpoint. The same log therefore always yields the same bytes.
pub mod agents;
pub mod approvals;
pub mod breakers;
pub mod clock;
pub mod dlq;
pub mod flags;
pub mod incident;
pub mod jobs;
pub mod memory_gate;
pub mod policy;
pub mod routes;
pub mod sla;
pub mod store;
pub mod workers;
// @@mods: one `pub mod <name>;` line per projection file, above this marker

use crate::authority::Class;
use crate::log::reader::LogReader;
use crate::time::LogClock;
use log_format::{EntryView, Hash32};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;
pub use store::{StoreError, Tx, View};

/// One committed entry as projections see it: payload already parsed.
pub struct Event<'a> {
    pub seq: u64,
    /// Log time (`crate::time::LogClock`): what every time rule counts in.
    /// Never goes backwards, and a clock jump moves it only by the real time
    /// the writer witnessed.
    pub log_ns: u64,
    /// The writer's wall clock as stored: for display, never for rules.
    pub wall_ns: u64,
    pub kind: &'a str,
    pub job_id: Option<&'a str>,
    pub step_id: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub actor: &'a str,
    pub parent: Option<u64>,
    pub payload: &'a Value,
}

impl Event<'_> {
    pub fn str(&self, field: &str) -> Option<&str> {
        self.payload.get(field).and_then(Value::as_str)
    }
    pub fn f64(&self, field: &str) -> Option<f64> {
        self.payload.get(field).and_then(Value::as_f64)
    }
    pub fn u64(&self, field: &str) -> Option<u64> {
        self.payload.get(field).and_then(Value::as_u64)
    }
}

pub trait Projection: Send + Sync {
    fn name(&self) -> &'static str;
    /// Bump whenever `apply` changes meaning: stored state of another version
    /// is thrown away and rebuilt.
    fn version(&self) -> u32;
    /// Folds one event into the state. Must depend only on the event and the
    /// state, never on wall-clock time, randomness or the environment.
    /// Only entries whose writer class may write their kind arrive here.
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError>;

    /// An entry whose writer class may not write its kind (a forged decision
    /// from an older build or a hand-made log): it changes no state, but a
    /// projection may record that it was ignored, and why, for its view.
    fn apply_refused(
        &self,
        _ev: &Event<'_>,
        _reason: &str,
        _tx: &mut Tx<'_>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Bump when the engine changes what reaches `apply` (writer-class checks,
/// log time): every projection is rebuilt.
const ENGINE_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] crate::Error),
    #[error("projections in {path} are in use by another argusctl process (waited {waited_s} s); retry when it finishes")]
    Busy { path: PathBuf, waited_s: u64 },
    #[error("unknown projection {0:?}")]
    Unknown(String),
    #[error("a projection catch-up thread stopped without reporting (it panicked)")]
    LaneFailed,
    #[error("starting a projection catch-up thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the built-in event registry is broken: {0}")]
    Registry(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Checkpoint {
    version: u32,
    #[serde(default)]
    engine: u32,
    next_seq: u64,
    last_hash: String,
    /// The log clock after `next_seq` entries, so a resumed catch-up folds
    /// time exactly as a rebuild does.
    #[serde(default)]
    clock: LogClock,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub name: &'static str,
    pub version: u32,
    /// Next seq to apply; the projection reflects seqs `0..seq`.
    pub seq: u64,
    pub lag: u64,
    pub state_digest: String,
}

/// Entries between atomic commits of projection state during catch-up.
const COMMIT_EVERY: u64 = 25_000;
/// Catch-up threads at most: beyond this, lanes re-read the log for little gain.
const MAX_LANES: usize = 4;
/// How long to wait for another process holding the projection store.
const BUSY_WAIT: Duration = Duration::from_secs(30);

pub struct Projections {
    path: PathBuf,
    db: sled::Db,
    backing: store::Backing,
    set: Vec<Box<dyn Projection>>,
    lanes: usize,
}

/// Every projection this build knows, in a fixed order.
pub fn all() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(jobs::Jobs),
        Box::new(agents::Agents),
        Box::new(routes::Routes),
        Box::new(flags::Flags),
        Box::new(memory_gate::MemoryGate),
        Box::new(approvals::Approvals),
        Box::new(dlq::Dlq),
        Box::new(sla::Sla),
        Box::new(breakers::Breakers),
        Box::new(workers::Workers),
        Box::new(policy::Policies),
        Box::new(incident::Incident),
        Box::new(clock::Clock),
        // @@projections: one `Box::new(...)` line per projection, above this marker
    ]
}

impl Projections {
    /// Opens (or creates) `DIR/projections`. Two processes never share it: the
    /// second waits up to 30 s for sled's lock, then fails with `Busy`. When
    /// it cannot be written, state lives in a temporary store for this
    /// process instead (see `backing`).
    pub fn open(log_dir: &Path, set: Vec<Box<dyn Projection>>) -> Result<Self, ProjectionError> {
        let path = log_dir.join("projections");
        // sled would follow a link here, and a damaged store is deleted and
        // rebuilt: only a real directory (or none yet) is used.
        crate::log::safe_fs::real_dir_if_present(&path)?;
        let (db, backing) = store::open(&path, BUSY_WAIT).map_err(|e| match e {
            store::OpenError::Busy => ProjectionError::Busy {
                path: path.clone(),
                waited_s: BUSY_WAIT.as_secs(),
            },
            store::OpenError::Store(e) => e.into(),
        })?;
        let lanes = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_LANES));
        Ok(Self {
            path,
            db,
            backing,
            set,
            lanes,
        })
    }

    /// Whether state persists in `DIR/projections` or lives in a temporary
    /// store for this process only.
    pub fn backing(&self) -> &store::Backing {
        &self.backing
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, ProjectionError> {
        Ok(self.db.open_tree(name).map_err(StoreError::from)?)
    }

    /// Read access to one projection's state (call `catch_up` first).
    pub fn with_view<T>(
        &self,
        name: &str,
        f: impl FnOnce(&View<'_>) -> Result<T, StoreError>,
    ) -> Result<T, ProjectionError> {
        let tree = self.tree(name)?;
        Ok(f(&View { tree: &tree })?)
    }

    fn checkpoint(tree: &sled::Tree) -> Result<Option<Checkpoint>, ProjectionError> {
        Ok(tree
            .get(store::CHECKPOINT_KEY)
            .map_err(StoreError::from)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Hash of the entry at `seq`, if the log has it sealed.
    fn hash_at(reader: &LogReader, seq: u64) -> Result<Option<Hash32>, ProjectionError> {
        let mut out = None;
        reader.for_each(seq, seq, |v| {
            out = Some(v.hash());
            ControlFlow::Break(())
        })?;
        Ok(out)
    }

    /// Where each projection resumes, with the log clock there; clears any
    /// whose checkpoint is unusable.
    fn resume_points(
        &self,
        reader: &LogReader,
        size: u64,
    ) -> Result<Vec<(u64, LogClock)>, ProjectionError> {
        let mut out = Vec::with_capacity(self.set.len());
        for p in &self.set {
            let tree = self.tree(p.name())?;
            let cp = Self::checkpoint(&tree)?;
            let ok = match &cp {
                None => false,
                Some(cp)
                    if cp.version != p.version()
                        || cp.engine != ENGINE_VERSION
                        || cp.next_seq > size =>
                {
                    false
                }
                Some(cp) if cp.next_seq == 0 => true,
                Some(cp) => {
                    Self::hash_at(reader, cp.next_seq - 1)?
                        .map(hex::encode)
                        .as_deref()
                        == Some(cp.last_hash.as_str())
                }
            };
            if ok {
                out.push(cp.map(|c| (c.next_seq, c.clock)).unwrap_or_default());
            } else {
                if cp.is_some() {
                    tracing::info!(
                        projection = p.name(),
                        "checkpoint unusable (version, length or hash); rebuilding"
                    );
                }
                tree.clear().map_err(StoreError::from)?;
                out.push((0, LogClock::default()));
            }
        }
        Ok(out)
    }

    /// The log clock at the projections' head (after `catch_up`): where
    /// views start counting "now" from.
    pub fn log_clock(&self) -> Result<LogClock, ProjectionError> {
        let Some(p) = self.set.first() else {
            return Ok(LogClock::default());
        };
        Ok(Self::checkpoint(&self.tree(p.name())?)?
            .map(|c| c.clock)
            .unwrap_or_default())
    }

    /// How many threads a catch-up may use. Projections are independent, so
    /// they are split into lanes that each read the log and apply their own
    /// projections; the result does not depend on the split.
    pub fn set_lanes(&mut self, lanes: usize) {
        self.lanes = lanes.max(1);
    }

    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Applies every sealed entry not yet applied. `progress(done, total)`
    /// is called on the calling thread.
    pub fn catch_up(
        &mut self,
        reader: &LogReader,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, ProjectionError> {
        let size = reader.latest_seal()?.tree_size;
        let next = self.resume_points(reader, size)?;
        let Some(start) = next.iter().map(|n| n.0).min() else {
            return Ok(size);
        };
        if start >= size {
            return Ok(size);
        }
        let trees = self
            .set
            .iter()
            .map(|p| self.tree(p.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let lanes = self.lanes.min(self.set.len()).max(1);
        let done: Vec<AtomicU64> = (0..lanes).map(|_| AtomicU64::new(0)).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = std::thread::scope(|scope| {
            for lane in 0..lanes {
                let members: Vec<Member<'_>> = (lane..self.set.len())
                    .step_by(lanes)
                    .map(|i| Member {
                        projection: self.set[i].as_ref(),
                        tree: &trees[i],
                        next: next[i].0,
                        clock: next[i].1,
                    })
                    .collect();
                let (tx, done) = (tx.clone(), &done[lane]);
                let fail = tx.clone();
                let work = move || {
                    let r = run_lane(reader, &members, start, size, done);
                    // The receiver outlives every lane.
                    let _ = tx.send(r);
                };
                // Named so that top and perf show which thread is which.
                let named = std::thread::Builder::new().name(format!("argus-lane-{lane}"));
                if let Err(e) = named.spawn_scoped(scope, work) {
                    let _ = fail.send(Err(ProjectionError::Spawn(e)));
                }
            }
            drop(tx);
            let mut first_err = None;
            for _ in 0..lanes {
                let r = loop {
                    match rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(r) => break r,
                        Err(RecvTimeoutError::Timeout) => {
                            let slowest = done.iter().map(|d| d.load(Ordering::Relaxed)).min();
                            progress(slowest.unwrap_or(0), size - start);
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            break Err(ProjectionError::LaneFailed);
                        }
                    }
                };
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
            }
            first_err.map_or(Ok(()), Err)
        });
        outcome?;
        self.db.flush().map_err(StoreError::from)?;
        progress(size - start, size - start);
        Ok(size)
    }

    pub fn status(&self, log_size: u64) -> Result<Vec<Status>, ProjectionError> {
        self.set
            .iter()
            .map(|p| {
                let tree = self.tree(p.name())?;
                let seq = Self::checkpoint(&tree)?.map(|c| c.next_seq).unwrap_or(0);
                Ok(Status {
                    name: p.name(),
                    version: p.version(),
                    seq,
                    lag: log_size.saturating_sub(seq),
                    state_digest: hex::encode(store::digest(&tree)?),
                })
            })
            .collect()
    }

    /// Throws away one projection's state (or all) so the next catch-up rebuilds it.
    pub fn reset(&mut self, name: Option<&str>) -> Result<(), ProjectionError> {
        if let Some(n) = name {
            if !self.set.iter().any(|p| p.name() == n) {
                return Err(ProjectionError::Unknown(n.to_string()));
            }
        }
        for p in &self.set {
            if name.is_none_or(|n| n == p.name()) {
                self.tree(p.name())?.clear().map_err(StoreError::from)?;
            }
        }
        Ok(())
    }
}

/// One projection as a lane sees it.
struct Member<'a> {
    projection: &'a dyn Projection,
    tree: &'a sled::Tree,
    /// First seq this projection has not applied.
    next: u64,
    /// The log clock after `next` entries.
    clock: LogClock,
}

/// Applies `start..size` (from the first seq any of its projections lacks)
/// to the lane's projections, committing each one's state and checkpoint
/// atomically every `COMMIT_EVERY` entries and at the end. `done` counts
/// entries past `start`, for progress.
fn run_lane(
    reader: &LogReader,
    members: &[Member<'_>],
    start: u64,
    size: u64,
    done: &AtomicU64,
) -> Result<(), ProjectionError> {
    let Some(first) = members.iter().min_by_key(|m| m.next) else {
        return Ok(());
    };
    let (lane_start, mut clock) = (first.next, first.clock);
    let from = lane_start.max(start);
    if from >= size {
        done.store(size - start, Ordering::Relaxed);
        return Ok(());
    }
    let staged: Vec<RefCell<store::Staged>> = members.iter().map(|_| Default::default()).collect();
    let commit_all =
        |next_seq: u64, last_hash: &Hash32, clock: LogClock| -> Result<(), ProjectionError> {
            for (m, staged) in members.iter().zip(&staged) {
                if m.next > next_seq {
                    continue;
                }
                let cp = Checkpoint {
                    version: m.projection.version(),
                    engine: ENGINE_VERSION,
                    next_seq,
                    last_hash: hex::encode(last_hash),
                    clock,
                };
                store::commit(m.tree, staged, serde_json::to_vec(&cp).unwrap_or_default())?;
            }
            Ok(())
        };
    let mut last_hash = [0u8; 32];
    let mut err: Option<ProjectionError> = None;
    let registry = crate::registry::builtin().map_err(ProjectionError::Registry)?;
    reader.for_each(from, size.saturating_sub(1), |v: &EntryView<'_>| {
        let payload: Value = serde_json::from_slice(v.payload).unwrap_or(Value::Null);
        let class = Class::of_actor(v.actor);
        let allowed = registry.writers(v.kind).contains(&class);
        // Only Argus's own record of a clock jump may say how much time
        // passed across it.
        let witnessed = (allowed && v.kind == crate::time::CLOCK_SKEW_KIND)
            .then(|| crate::time::witnessed_ns(&payload))
            .flatten();
        let log_ns = clock.advance(v.ts_ns, witnessed);
        let ev = Event {
            seq: v.seq,
            log_ns,
            wall_ns: v.ts_ns,
            kind: v.kind,
            job_id: v.job_id,
            step_id: v.step_id,
            agent: v.agent,
            actor: v.actor,
            parent: v.parent,
            payload: &payload,
        };
        let refused = (!allowed).then(|| {
            registry
                .authorize(v.kind, &crate::authority::Actor::parse(v.actor))
                .err()
                .map(|u| u.to_string())
                .unwrap_or_default()
        });
        for (m, staged) in members.iter().zip(&staged) {
            if m.next > v.seq {
                continue;
            }
            let mut tx = Tx::new(m.tree, staged);
            let r = match &refused {
                None => m.projection.apply(&ev, &mut tx),
                Some(reason) => m.projection.apply_refused(&ev, reason, &mut tx),
            };
            if let Err(e) = r {
                err = Some(e.into());
                return ControlFlow::Break(());
            }
        }
        let commit_point = (v.seq + 1 - from).is_multiple_of(COMMIT_EVERY);
        // Only checkpoints need an entry hash: the last entry before each
        // commit, and the last entry of all.
        if commit_point || v.seq + 1 == size {
            last_hash = v.hash();
        }
        if commit_point {
            if let Err(e) = commit_all(v.seq + 1, &last_hash, clock) {
                err = Some(e);
                return ControlFlow::Break(());
            }
            done.store(v.seq + 1 - start, Ordering::Relaxed);
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    commit_all(size, &last_hash, clock)?;
    done.store(size - start, Ordering::Relaxed);
    Ok(())
}
