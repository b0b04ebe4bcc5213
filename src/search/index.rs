//! Opening the index and catching it up with the log.
//!
//! The index lives in `DIR/search/` (beside `DIR/projections/`, and like it
//! safe to delete). One process writes it at a time (tantivy's writer lock,
//! an `flock` released if the process dies); a second waits, then fails
//! with `Busy`. When the directory cannot be written (a read-only copy of a
//! log), the index is built from the log in memory for this process
//! instead: rebuilding, rather than trusting whatever index the copy
//! carries, is also what a forensic reader should want.
use super::checkpoint::Checkpoint;
use super::schema::{self, Fields};
use super::{text, Scanner, SearchError, FLAG_KIND};
use crate::authority::Class;
use crate::log::reader::LogReader;
use log_format::EntryView;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tantivy::directory::error::{LockError, OpenDirectoryError, OpenWriteError};
use tantivy::directory::MmapDirectory;
use tantivy::merge_policy::{LogMergePolicy, NoMergePolicy};
use tantivy::{Index, IndexWriter, TantivyDocument, TantivyError};

/// The index directory, under the log directory.
pub const DIR_NAME: &str = "search";
/// Commit (with its checkpoint) this often during a long catch-up, so a
/// crash keeps the progress made.
pub const COMMIT_EVERY: u64 = 250_000;
/// Indexing memory, shared by the writer's threads. Allocated as used.
const MEMORY_BUDGET: usize = 256 << 20;
/// Indexing threads at most: the machines this runs on are small, and a
/// catch-up also needs a core to read the log.
const MAX_THREADS: usize = 2;

/// Where this process's index lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// `DIR/search/`, kept between runs.
    Persistent,
    /// `DIR/search/` cannot be written; built in memory for this process.
    /// `reason` says what could not be written.
    Memory { reason: String },
}

/// Why a catch-up started from seq 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// The caller asked (`--rebuild`).
    Requested,
    /// No usable checkpoint: a new index, or one from other code.
    NoCheckpoint,
    /// The log does not hold the entry the checkpoint ends at: the log was
    /// swapped, rewritten or truncated under the index.
    LogMismatch,
    /// The injection patterns changed since the index was built.
    Patterns,
}

/// What a catch-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// First seq indexed by this catch-up.
    pub from: u64,
    /// The log's sealed size: the index now holds seqs `0..size`.
    pub size: u64,
    pub rebuilt: Option<Rebuild>,
    /// Entries this catch-up flagged.
    pub flagged: u64,
}

pub struct SearchIndex {
    pub(super) index: Index,
    writer: IndexWriter,
    /// Opened once (each opening maps every segment's files) and reloaded
    /// after this process commits.
    pub(super) reader: tantivy::IndexReader,
    pub(super) fields: Fields,
    backing: Backing,
    path: PathBuf,
}

/// Why the on-disk index could not be used.
enum OnDisk {
    ReadOnly(String),
    Failed(SearchError),
}

fn read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// tantivy reports a failed lock or file create inside its own error; only
/// "not allowed to write here" sends us to memory.
fn tantivy_read_only(e: &TantivyError) -> Option<String> {
    match e {
        TantivyError::LockFailure(LockError::IoError(io), _) if read_only(io) => {
            Some(io.to_string())
        }
        TantivyError::OpenDirectoryError(OpenDirectoryError::IoError { io_error, .. })
        | TantivyError::OpenWriteError(OpenWriteError::IoError { io_error, .. })
            if read_only(io_error) =>
        {
            Some(io_error.to_string())
        }
        TantivyError::IoError(io) if read_only(io) => Some(io.to_string()),
        _ => None,
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, MAX_THREADS))
}

impl SearchIndex {
    /// Opens (or creates) `DIR/search/`, waiting up to `busy_wait` for
    /// another process's writer; in memory when it cannot be written.
    pub fn open(log_dir: &Path, busy_wait: Duration) -> Result<Self, SearchError> {
        let path = log_dir.join(DIR_NAME);
        // tantivy would follow a link here, and a damaged index is deleted
        // and rebuilt: only a real directory (or none yet) is used.
        crate::log::safe_fs::real_dir_if_present(&path)?;
        let (schema, fields) = schema::build();
        let (index, writer, backing) = match open_on_disk(&path, &schema, busy_wait) {
            Ok((index, writer)) => (index, writer, Backing::Persistent),
            Err(OnDisk::ReadOnly(reason)) => {
                let index = Index::create_in_ram(schema);
                let writer = index.writer_with_num_threads(threads(), MEMORY_BUDGET)?;
                let reason = format!("{}: {reason}", path.display());
                (index, writer, Backing::Memory { reason })
            }
            Err(OnDisk::Failed(e)) => return Err(e),
        };
        let reader = index
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            index,
            writer,
            reader,
            fields,
            backing,
            path,
        })
    }

    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint of the last commit, if it is this code's.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, SearchError> {
        let metas = self.index.load_metas()?;
        Ok(Checkpoint::decode(metas.payload.as_deref()))
    }

    /// Indexes every sealed entry the index lacks, committing every
    /// `COMMIT_EVERY` entries and at the end. `progress(done, total)` is
    /// called now and then.
    pub fn catch_up(
        &mut self,
        reader: &LogReader,
        scanner: &Scanner,
        rebuild: bool,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<CatchUp, SearchError> {
        let seal = reader.latest_seal()?;
        let size = seal.tree_size;
        let (from, rebuilt) = self.resume_point(reader, scanner, &seal, rebuild)?;
        let mut done = CatchUp {
            from,
            size,
            rebuilt,
            flagged: 0,
        };
        if rebuilt.is_some() {
            self.writer.delete_all_documents()?;
        }
        if from >= size {
            if rebuilt.is_some() {
                self.commit(Checkpoint::new(0, String::new(), scanner.identity()))?;
            }
            return Ok(done);
        }
        // A long catch-up commits several times; merging those segments
        // while still indexing would take the cores the indexing needs.
        // Merges resume with the next small catch-up.
        let bulk = size - from > COMMIT_EVERY / 2;
        if bulk {
            self.writer.set_merge_policy(Box::new(NoMergePolicy));
        }
        let f = self.fields;
        let writer = &mut self.writer;
        let mut failed = None;
        reader.for_each(from, size - 1, |v| {
            let (doc, flagged) = document(&f, v, scanner);
            done.flagged += u64::from(flagged);
            let next = v.seq + 1;
            let r = writer.add_document(doc).and_then(|_| {
                if next % COMMIT_EVERY == 0 && next < size {
                    let cp = Checkpoint::new(next, hex::encode(v.hash()), scanner.identity());
                    commit(writer, &cp)?;
                    progress(next - from, size - from);
                }
                Ok(())
            });
            match r {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        self.commit(Checkpoint::new(
            size,
            hex::encode(seal.head),
            scanner.identity(),
        ))?;
        if bulk {
            self.writer
                .set_merge_policy(Box::<LogMergePolicy>::default());
        }
        progress(size - from, size - from);
        Ok(done)
    }

    /// Where to resume, and why from 0 when the checkpoint cannot be used.
    fn resume_point(
        &self,
        reader: &LogReader,
        scanner: &Scanner,
        seal: &log_format::Seal,
        rebuild: bool,
    ) -> Result<(u64, Option<Rebuild>), SearchError> {
        let size = seal.tree_size;
        if rebuild {
            return Ok((0, Some(Rebuild::Requested)));
        }
        let Some(cp) = self.checkpoint()? else {
            return Ok((0, Some(Rebuild::NoCheckpoint)));
        };
        if cp.patterns != scanner.identity() {
            return Ok((0, Some(Rebuild::Patterns)));
        }
        if cp.next_seq > size {
            return Ok((0, Some(Rebuild::LogMismatch)));
        }
        if cp.next_seq == 0 {
            return Ok((0, None));
        }
        // Caught up already: the seal names the head's hash, no read needed.
        if cp.next_seq == size {
            let same = hex::encode(seal.head) == cp.last_hash;
            return Ok(if same {
                (size, None)
            } else {
                (0, Some(Rebuild::LogMismatch))
            });
        }
        let mut hash = None;
        reader.for_each(cp.next_seq - 1, cp.next_seq - 1, |v| {
            hash = Some(hex::encode(v.hash()));
            ControlFlow::Break(())
        })?;
        if hash.as_deref() != Some(cp.last_hash.as_str()) {
            return Ok((0, Some(Rebuild::LogMismatch)));
        }
        Ok((cp.next_seq, None))
    }

    fn commit(&mut self, cp: Checkpoint) -> Result<(), SearchError> {
        commit(&mut self.writer, &cp)?;
        Ok(self.reader.reload()?)
    }

    /// Lets background segment merges finish, so the next process opens
    /// few segments. Call once, when done writing.
    pub fn close(self) -> Result<(), SearchError> {
        Ok(self.writer.wait_merging_threads()?)
    }
}

fn commit(writer: &mut IndexWriter, cp: &Checkpoint) -> tantivy::Result<()> {
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&cp.encode());
    prepared.commit()?;
    Ok(())
}

/// One entry as an index document, and whether the scan flagged it.
fn document(f: &Fields, v: &EntryView<'_>, scanner: &Scanner) -> (TantivyDocument, bool) {
    let mut d = TantivyDocument::new();
    d.add_u64(f.seq, v.seq);
    d.add_text(f.kind, v.kind);
    if let Some(j) = v.job_id {
        d.add_text(f.job, j);
    }
    if let Some(a) = v.agent {
        d.add_text(f.agent, a);
    }
    d.add_text(f.actor, v.actor);
    d.add_u64(f.ts, v.ts_ns);
    let words = text::payload_text(v.payload);
    let flagged = Scanner::scans(v.kind) && scanner.matches(&words);
    d.add_u64(f.flagged, u64::from(flagged));
    if v.kind == FLAG_KIND && Class::of_actor(v.actor) == Class::Argus {
        if let Some(t) = flag_target(v.payload) {
            d.add_u64(f.target, t);
        }
    }
    d.add_text(f.text, words);
    d.add_text(f.payload_hash, hex::encode(v.payload_hash));
    (d, flagged)
}

/// The `target_seq` of a flag entry's payload.
pub fn flag_target(payload: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Flag {
        target_seq: u64,
    }
    serde_json::from_slice::<Flag>(payload)
        .ok()
        .map(|f| f.target_seq)
}

/// The index in `path`, created if absent; one that does not open, or has
/// another schema, is deleted and created anew (it is a cache).
fn open_on_disk(
    path: &Path,
    schema: &tantivy::schema::Schema,
    busy_wait: Duration,
) -> Result<(Index, IndexWriter), OnDisk> {
    let fail = |e: SearchError| OnDisk::Failed(e);
    let io = |e: std::io::Error| {
        if read_only(&e) {
            OnDisk::ReadOnly(e.to_string())
        } else {
            fail(SearchError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let open = || -> Result<Index, TantivyError> {
        let dir = MmapDirectory::open(path)?;
        let index = Index::open_or_create(dir, schema.clone())?;
        if index.schema() != *schema {
            return Err(TantivyError::SchemaError("another schema".into()));
        }
        Ok(index)
    };
    let index = match open() {
        Ok(index) => index,
        Err(e) => {
            if let Some(reason) = tantivy_read_only(&e) {
                return Err(OnDisk::ReadOnly(reason));
            }
            tracing::warn!(error = %e, path = %path.display(), "search index unusable; rebuilding");
            std::fs::remove_dir_all(path).map_err(io)?;
            std::fs::create_dir(path).map_err(io)?;
            open().map_err(|e| match tantivy_read_only(&e) {
                Some(reason) => OnDisk::ReadOnly(reason),
                None => fail(e.into()),
            })?
        }
    };
    let start = Instant::now();
    loop {
        match index.writer_with_num_threads(threads(), MEMORY_BUDGET) {
            Ok(w) => return Ok((index, w)),
            Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                if start.elapsed() > busy_wait {
                    return Err(fail(SearchError::Busy {
                        path: path.to_path_buf(),
                        waited_s: busy_wait.as_secs(),
                    }));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(match tantivy_read_only(&e) {
                    Some(reason) => OnDisk::ReadOnly(reason),
                    None => fail(e.into()),
                })
            }
        }
    }
}
