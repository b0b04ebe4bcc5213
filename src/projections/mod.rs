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

use crate::log::reader::LogReader;
use log_format::{EntryView, Hash32};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
pub use store::{StoreError, Tx, View};

/// One committed entry as projections see it: payload already parsed.
pub struct Event<'a> {
    pub seq: u64,
    pub ts_ns: u64,
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

pub trait Projection: Send {
    fn name(&self) -> &'static str;
    /// Bump whenever `apply` changes meaning: stored state of another version
    /// is thrown away and rebuilt.
    fn version(&self) -> u32;
    /// Folds one event into the state. Must depend only on the event and the
    /// state, never on wall-clock time, randomness or the environment.
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError>;
}

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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Checkpoint {
    version: u32,
    next_seq: u64,
    last_hash: String,
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
/// How long to wait for another process holding the projection store.
const BUSY_WAIT: Duration = Duration::from_secs(30);

pub struct Projections {
    path: PathBuf,
    db: sled::Db,
    set: Vec<Box<dyn Projection>>,
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
        // @@projections: one `Box::new(...)` line per projection, above this marker
    ]
}

fn open_db(path: &Path) -> Result<sled::Db, ProjectionError> {
    let start = Instant::now();
    loop {
        match sled::Config::new().path(path).flush_every_ms(None).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
            {
                if start.elapsed() > BUSY_WAIT {
                    return Err(ProjectionError::Busy {
                        path: path.into(),
                        waited_s: BUSY_WAIT.as_secs(),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                // The store is a disposable cache: a store that cannot be
                // opened is discarded and rebuilt from the log.
                tracing::warn!(error = %e, path = %path.display(), "projection store unreadable; rebuilding");
                std::fs::remove_dir_all(path).map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
                return Ok(sled::open(path).map_err(StoreError::from)?);
            }
        }
    }
}

impl Projections {
    /// Opens (or creates) `DIR/projections`. Two processes never share it: the
    /// second waits up to 30 s for sled's lock, then fails with `Busy`.
    pub fn open(log_dir: &Path, set: Vec<Box<dyn Projection>>) -> Result<Self, ProjectionError> {
        let path = log_dir.join("projections");
        let db = open_db(&path)?;
        Ok(Self { path, db, set })
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

    /// Where each projection resumes; clears any whose checkpoint is unusable.
    fn resume_points(&self, reader: &LogReader, size: u64) -> Result<Vec<u64>, ProjectionError> {
        let mut out = Vec::with_capacity(self.set.len());
        for p in &self.set {
            let tree = self.tree(p.name())?;
            let cp = Self::checkpoint(&tree)?;
            let ok = match &cp {
                None => false,
                Some(cp) if cp.version != p.version() || cp.next_seq > size => false,
                Some(cp) if cp.next_seq == 0 => true,
                Some(cp) => {
                    Self::hash_at(reader, cp.next_seq - 1)?
                        .map(hex::encode)
                        .as_deref()
                        == Some(cp.last_hash.as_str())
                }
            };
            if ok {
                out.push(cp.map(|c| c.next_seq).unwrap_or(0));
            } else {
                if cp.is_some() {
                    tracing::info!(
                        projection = p.name(),
                        "checkpoint unusable (version, length or hash); rebuilding"
                    );
                }
                tree.clear().map_err(StoreError::from)?;
                out.push(0);
            }
        }
        Ok(out)
    }

    /// Applies every sealed entry not yet applied. `progress(done, total)`.
    pub fn catch_up(
        &mut self,
        reader: &LogReader,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, ProjectionError> {
        let size = reader.latest_seal()?.tree_size;
        let next = self.resume_points(reader, size)?;
        let Some(&start) = next.iter().min() else {
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
        let staged: Vec<RefCell<store::Staged>> =
            self.set.iter().map(|_| Default::default()).collect();
        let mut last_hash = [0u8; 32];
        let mut err: Option<ProjectionError> = None;
        let set = &self.set;
        let commit_all = |next_seq: u64, last_hash: &Hash32| -> Result<(), ProjectionError> {
            for (i, p) in set.iter().enumerate() {
                if next[i] > next_seq {
                    continue;
                }
                let cp = Checkpoint {
                    version: p.version(),
                    next_seq,
                    last_hash: hex::encode(last_hash),
                };
                store::commit(
                    &trees[i],
                    &staged[i],
                    serde_json::to_vec(&cp).unwrap_or_default(),
                )?;
            }
            Ok(())
        };
        reader.for_each(start, size.saturating_sub(1), |v: &EntryView<'_>| {
            let payload: Value = serde_json::from_slice(v.payload).unwrap_or(Value::Null);
            let ev = Event {
                seq: v.seq,
                ts_ns: v.ts_ns,
                kind: v.kind,
                job_id: v.job_id,
                step_id: v.step_id,
                agent: v.agent,
                actor: v.actor,
                parent: v.parent,
                payload: &payload,
            };
            for (i, p) in set.iter().enumerate() {
                if next[i] > v.seq {
                    continue;
                }
                let mut tx = Tx::new(&trees[i], &staged[i]);
                if let Err(e) = p.apply(&ev, &mut tx) {
                    err = Some(e.into());
                    return ControlFlow::Break(());
                }
            }
            let commit_point = (v.seq + 1 - start).is_multiple_of(COMMIT_EVERY);
            // Only checkpoints need an entry hash: the last entry before each
            // commit, and the last entry of all.
            if commit_point || v.seq + 1 == size {
                last_hash = v.hash();
            }
            if commit_point {
                if let Err(e) = commit_all(v.seq + 1, &last_hash) {
                    err = Some(e);
                    return ControlFlow::Break(());
                }
                progress(v.seq + 1 - start, size - start);
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        commit_all(size, &last_hash)?;
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
