//! The engine: opens the projection store, decides where each projection
//! resumes (or that it must be rebuilt), runs the catch-up lanes, and
//! answers for state (`status`, `reset`, `with_view`).
use super::lane::{self, Member};
use super::store::{self, Store, Tree};
use super::tx::{self, View};
use super::{Projection, ProjectionError, StoreError};
use crate::log::reader::LogReader;
use crate::time::LogClock;
use log_format::{Hash32, Seal};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

/// Bump when the engine changes what reaches `apply` (writer-class checks,
/// log time): every projection is rebuilt.
pub(super) const ENGINE_VERSION: u32 = 2;

/// Catch-up threads at most: beyond this, lanes re-read the log for little gain.
const MAX_LANES: usize = 4;
/// How long to wait for another process holding the projection store.
const BUSY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Checkpoint {
    pub(super) version: u32,
    #[serde(default)]
    pub(super) engine: u32,
    pub(super) next_seq: u64,
    pub(super) last_hash: String,
    /// The log clock after `next_seq` entries, so a resumed catch-up folds
    /// time exactly as a rebuild does.
    #[serde(default)]
    pub(super) clock: LogClock,
}

impl Checkpoint {
    /// The stored checkpoint; one that does not decode counts as none, so
    /// the projection is rebuilt rather than the open failing.
    fn read(tree: &Tree) -> Result<Option<Checkpoint>, StoreError> {
        Ok(tree
            .get(tx::CHECKPOINT_KEY)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }
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

pub struct Projections {
    path: PathBuf,
    store: Store,
    backing: store::Backing,
    set: Vec<Box<dyn Projection>>,
    lanes: usize,
}

impl Projections {
    /// Opens (or creates) `DIR/projections`. Two processes never share it: the
    /// second waits up to 30 s for the store's lock, then fails with `Busy`.
    /// When it cannot be written, state lives in a temporary store for this
    /// process instead (see `backing`).
    pub fn open(log_dir: &Path, set: Vec<Box<dyn Projection>>) -> Result<Self, ProjectionError> {
        let path = log_dir.join("projections");
        // The store would follow a link here, and a damaged store is deleted
        // and rebuilt: only a real directory (or none yet) is used.
        crate::log::safe_fs::real_dir_if_present(&path)?;
        let (store, backing) = store::open(&path, BUSY_WAIT).map_err(|e| match e {
            store::OpenError::Busy => ProjectionError::Busy {
                path: path.clone(),
                waited_s: BUSY_WAIT.as_secs(),
            },
            store::OpenError::Store(e) => e.into(),
        })?;
        let lanes = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_LANES));
        Ok(Self {
            path,
            store,
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

    fn tree(&self, name: &str) -> Result<Tree, ProjectionError> {
        Ok(self.store.tree(name)?)
    }

    /// Read access to one projection's state (call `catch_up` first).
    pub fn with_view<T>(
        &self,
        name: &str,
        f: impl FnOnce(&View<'_>) -> Result<T, StoreError>,
    ) -> Result<T, ProjectionError> {
        let tree = self.tree(name)?;
        Ok(f(&View::new(&tree))?)
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

    /// Whether `p` may resume from `cp` on a log of `size` sealed entries:
    /// same code, same engine, and the log still holds the entry it ends at.
    fn usable(
        p: &dyn Projection,
        cp: &Checkpoint,
        reader: &LogReader,
        seal: &Seal,
    ) -> Result<bool, ProjectionError> {
        let size = seal.tree_size;
        if cp.version != p.version() || cp.engine != ENGINE_VERSION || cp.next_seq > size {
            return Ok(false);
        }
        if cp.next_seq == 0 {
            return Ok(true);
        }
        if cp.next_seq == size {
            // Caught up: the seal names the entry the checkpoint ends at, so
            // a view of a caught-up log reads no entry to trust its state.
            return Ok(hex::encode(seal.head) == cp.last_hash);
        }
        let hash = Self::hash_at(reader, cp.next_seq - 1)?;
        Ok(hash.map(hex::encode).as_deref() == Some(cp.last_hash.as_str()))
    }

    /// Where each projection resumes, with the log clock there; clears any
    /// whose checkpoint is unusable.
    fn resume_points(
        &self,
        reader: &LogReader,
        seal: &Seal,
    ) -> Result<Vec<(u64, LogClock)>, ProjectionError> {
        let mut out = Vec::with_capacity(self.set.len());
        for p in &self.set {
            let tree = self.tree(p.name())?;
            match Checkpoint::read(&tree)? {
                Some(cp) if Self::usable(p.as_ref(), &cp, reader, seal)? => {
                    out.push((cp.next_seq, cp.clock));
                }
                cp => {
                    if cp.is_some() {
                        tracing::info!(
                            projection = p.name(),
                            "checkpoint unusable (version, length or hash); rebuilding"
                        );
                    }
                    tree.clear()?;
                    out.push((0, LogClock::default()));
                }
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
        Ok(Checkpoint::read(&self.tree(p.name())?)?
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
        let seal = reader.latest_seal()?;
        let size = seal.tree_size;
        let next = self.resume_points(reader, &seal)?;
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
        std::thread::scope(|scope| {
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
                    let r = lane::run(reader, &members, start, size, done);
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
            let slowest = || done.iter().map(|d| d.load(Ordering::Relaxed)).min();
            let mut first_err = None;
            for _ in 0..lanes {
                let r = loop {
                    match rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(r) => break r,
                        Err(RecvTimeoutError::Timeout) => {
                            progress(slowest().unwrap_or(0), size - start);
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
        })?;
        self.store.flush()?;
        progress(size - start, size - start);
        Ok(size)
    }

    /// Each projection's name and the entries it is behind `log_size`, from
    /// its checkpoint alone: cheap enough for a health check, unlike
    /// `status`, which digests every projection's state.
    pub fn lag(&self, log_size: u64) -> Result<Vec<(&'static str, u64)>, ProjectionError> {
        self.set
            .iter()
            .map(|p| {
                let tree = self.tree(p.name())?;
                let seq = Checkpoint::read(&tree)?.map(|c| c.next_seq).unwrap_or(0);
                Ok((p.name(), log_size.saturating_sub(seq)))
            })
            .collect()
    }

    pub fn status(&self, log_size: u64) -> Result<Vec<Status>, ProjectionError> {
        self.set
            .iter()
            .map(|p| {
                let tree = self.tree(p.name())?;
                let seq = Checkpoint::read(&tree)?.map(|c| c.next_seq).unwrap_or(0);
                Ok(Status {
                    name: p.name(),
                    version: p.version(),
                    seq,
                    lag: log_size.saturating_sub(seq),
                    state_digest: hex::encode(tx::digest(&tree)?),
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
                self.tree(p.name())?.clear()?;
            }
        }
        Ok(())
    }
}
