//! The engine's log: directory layout, the writer thread, recovery, readers
//! and verification.
pub mod archive;
pub mod control_flags;
pub mod dir;
pub mod entry;
pub mod epochs;
pub mod erase;
pub mod follow;
pub mod index;
pub mod keys;
pub mod lock;
// Safe to map only what is sealed; the module says why, and offers only
// the wrapper that checks it.
#[allow(unsafe_code)]
mod mmap;
pub mod readahead;
pub mod reader;
pub mod recovery;
pub mod redactions;
pub mod rotate;
pub mod safe_fs;
pub mod storage;
pub mod verify;
pub mod writer;

use crate::error::{Error, Result};
use dir::{InitOptions, LogDir, Meta};
use entry::{IntoValid, NewEntry};
use lock::WriterLock;
use recovery::CutReport;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use storage::Storage;
use writer::{Ack, Committed, Inline, Reply, Request, Writer};

/// How a writer opens the log: what it is opening it for, how long it
/// waits for another process's writer lock, and where time comes from.
#[derive(Clone)]
pub struct OpenOptions {
    /// What this process wants to do ("append", "approve", "policy check"),
    /// named in the error if the lock wait times out.
    pub operation: String,
    /// How long to wait for the writer lock; zero fails at once.
    pub lock_wait: Duration,
    /// The system's clocks unless a test injects one it moves by hand.
    pub clock: Option<Arc<dyn crate::time::Clock>>,
    /// Commit on the thread that calls `append` instead of on a writer
    /// thread: for a process with one producer thread, which would only
    /// wait for the writer anyway (`argusctl append`). A caller-run `submit`
    /// calls `done` before it returns. Many producers (argusd) want the
    /// writer thread, where their requests meet in one group commit.
    pub inline_writer: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            operation: "append".into(),
            lock_wait: lock::DEFAULT_WAIT,
            clock: None,
            inline_writer: false,
        }
    }
}

/// An open, writable log. Cheap to share by reference across producer
/// threads; every `append` blocks until its entries are durable and sealed.
pub struct Log {
    engine: Engine,
    committed: Arc<Committed>,
    meta: Meta,
    dir: LogDir,
    recovered: Option<(CutReport, Ack)>,
    _lock: WriterLock,
}

/// Where commits run (`OpenOptions::inline_writer`).
enum Engine {
    /// A writer thread, fed by a channel.
    Thread {
        tx: Option<mpsc::Sender<Request>>,
        thread: Option<JoinHandle<()>>,
    },
    /// The caller's thread (boxed: it holds the writer's whole state).
    Inline(Box<Inline>),
}

impl Log {
    /// Creates a new log in `root` and opens it for writing.
    pub fn create(root: &Path, opts: &InitOptions) -> Result<Self> {
        Self::create_on(root, opts, storage::real())
    }

    /// `create` through `storage`. `argus.json` is written last: until it
    /// is durable the directory is not a log (see `dir::create_on`).
    #[doc(hidden)]
    pub fn create_on(root: &Path, opts: &InitOptions, storage: Arc<dyn Storage>) -> Result<Self> {
        let (meta, key) = dir::create_on(&*storage, root, opts)?;
        let d = LogDir::with_storage(root, storage.clone());
        Writer::create_first_segment(&d, meta.log_id()?, &key)?;
        d.write_meta(&meta)?;
        Self::open_on(root, &OpenOptions::default(), storage)
    }

    /// Opens an existing log to append, waiting the default time for the
    /// writer lock (see `open_with`).
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, &OpenOptions::default())
    }

    /// Opens an existing log: takes the writer lock (waiting up to
    /// `opts.lock_wait`), recovers the tail and, if bytes were cut, records
    /// that in a `log.recovered` entry.
    pub fn open_with(root: &Path, opts: &OpenOptions) -> Result<Self> {
        Self::open_on(root, opts, storage::real())
    }

    /// `open_with`, with every file operation of recovery and of the
    /// writer going through `storage` (the fault simulator's hook; see
    /// `storage` for what stays on the real file system).
    #[doc(hidden)]
    pub fn open_on(root: &Path, opts: &OpenOptions, storage: Arc<dyn Storage>) -> Result<Self> {
        let clock = opts
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(crate::time::SystemClock::new()));
        let d = LogDir::with_storage(root, storage);
        let mut meta = d.read_meta()?;
        let lock = WriterLock::acquire_on(&*d.storage, root, &opts.operation, opts.lock_wait)?;
        // A rotation a crash interrupted is finished or forgotten first, so
        // the key loaded next is the current epoch's (SPEC §4.7).
        rotate::settle(&d, &mut meta)?;
        let key_path = d.key_path(&meta);
        storage::real_dirs_below(&*d.storage, root, &key_path)?;
        let key = keys::load_on(&*d.storage, &key_path)?;
        let (epoch, current) = meta.current_key()?;
        if key.verifying_key() != current {
            return Err(Error::BadKey {
                path: key_path,
                reason: format!(
                    "the key does not match the public key of key epoch {epoch} in argus.json"
                ),
            });
        }
        clean_temp_files(&d);
        let log_id = meta.log_id()?;
        let epochs = meta.recorded_epochs()?;
        let rec = recovery::recover(&d, &log_id, &epochs.seal_key())?;
        let committed = Arc::new(Committed::default());
        let cfg = writer::WriterConfig {
            segment_bytes: meta.segment_bytes,
            clock,
            skew_tolerance_ns: meta.skew_tolerance_ns(),
            epoch_from_seq: epochs.all().last().map_or(0, |e| e.from_seq),
        };
        let writer = Writer::new(d.clone(), log_id, key, cfg, &rec, committed.clone())?;
        let engine = if opts.inline_writer {
            Engine::Inline(Box::new(Inline::new(writer)))
        } else {
            let (tx, rx) = mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("argus-writer".into())
                .spawn(move || writer.run(rx))
                .map_err(|e| Error::Io {
                    path: root.into(),
                    source: e,
                })?;
            Engine::Thread {
                tx: Some(tx),
                thread: Some(thread),
            }
        };
        let mut log = Self {
            engine,
            committed,
            meta,
            dir: d.clone(),
            recovered: None,
            _lock: lock,
        };
        // Record every cut not yet in the log, then forget the pending file.
        for cut in rec.unrecorded {
            let payload = serde_json::to_value(&cut).map_err(|source| Error::Encode {
                what: "the log.recovered payload",
                source,
            })?;
            let ack = log.append(vec![NewEntry::argus("log.recovered", &payload)])?;
            if let Some(a) = ack.first() {
                log.recovered = Some((cut, *a));
            }
        }
        recovery::clear_pending(&d)?;
        Ok(log)
    }

    /// Appends entries as one unit: all of them commit in the same group
    /// commit, or none does. Returns after they are durable and sealed.
    ///
    /// `NewEntry`s are checked here, on the producer's thread, before any seq
    /// is assigned (grammar and limits, the actor's authority, canonical
    /// payload bytes, the registry schema): a rejected request writes
    /// nothing. `ValidEntry`s passed those checks when they were made and
    /// are not checked again.
    pub fn append<E: IntoValid>(&self, entries: Vec<E>) -> Result<Vec<Ack>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = mpsc::sync_channel(1);
        let entries = self.submit_with(entries, Reply::channel(reply))?;
        let got = rx.recv().map_err(|_| Error::WriterGone)?;
        // The writer let go of its reference before replying, so the
        // entries are freed here, by the thread that allocated them, and
        // not on the writer's thread, which every producer waits on.
        drop(entries);
        got
    }

    /// Like `append`, but returns at once: `done` is called with the acks
    /// (or the failure) from the writer thread once the commit is durable
    /// and sealed. A refused entry is refused here, before anything is
    /// queued. For callers that must not block a thread on the fdatasync
    /// (argusd's async request handlers). If the writer dies, `done` is
    /// dropped without being called.
    pub fn submit<E: IntoValid>(
        &self,
        entries: Vec<E>,
        done: impl FnOnce(Result<Vec<Ack>>) + Send + 'static,
    ) -> Result<()> {
        if entries.is_empty() {
            done(Ok(Vec::new()));
            return Ok(());
        }
        self.submit_with(entries, Reply::new(done)).map(drop)
    }

    /// Checks and queues `entries`; returns them shared with the writer,
    /// which drops its reference before it calls `reply`.
    fn submit_with<E: IntoValid>(
        &self,
        entries: Vec<E>,
        reply: Reply,
    ) -> Result<Arc<Vec<entry::ValidEntry>>> {
        let registry = crate::registry::builtin().map_err(Error::Registry)?;
        let entries = check_all(entries, registry)?;
        let entries = Arc::new(entries);
        self.dispatch(Request {
            entries: Arc::clone(&entries),
            reply,
            rotate: None,
        })?;
        Ok(entries)
    }

    /// Hands a request to the writer thread, or runs it here to its reply.
    fn dispatch(&self, req: Request) -> Result<()> {
        match &self.engine {
            Engine::Thread { tx, .. } => tx
                .as_ref()
                .ok_or(Error::WriterGone)?
                .send(req)
                .map_err(|_| Error::WriterGone),
            Engine::Inline(w) => w.serve(req),
        }
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Entries durable and sealed so far (the next seq to be assigned).
    pub fn committed(&self) -> &Committed {
        &self.committed
    }

    /// What open-time recovery cut, and the `log.recovered` entry recording it.
    pub fn recovered(&self) -> Option<&(CutReport, Ack)> {
        self.recovered.as_ref()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Engine::Thread { tx, thread } = &mut self.engine {
            tx.take();
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Requests at least this long are checked on two threads: the checks
/// (canonical JSON, schema, payload hash) are most of a batch's cost, the
/// producer is otherwise idle while they run, and a thread start (tens of
/// microseconds) is small next to checking this many entries.
const PARALLEL_CHECK_MIN: usize = 256;

/// Checks every entry (`IntoValid`), refusing the request with the first
/// bad entry by position, as a check in order would.
fn check_all<E: IntoValid>(
    mut entries: Vec<E>,
    registry: &crate::registry::Registry,
) -> Result<Vec<entry::ValidEntry>> {
    let check = |first: usize, part: Vec<E>| {
        part.into_iter()
            .enumerate()
            .map(|(i, e)| {
                e.into_valid(registry)
                    .map_err(|p| Error::invalid(first + i + 1, p))
            })
            .collect::<Result<Vec<_>>>()
    };
    // Short requests never ask for the core count: std reads it from
    // /proc and the cgroup files on every call (about 20 syscalls), which
    // was a tenth of a lone entry's path through `argusctl append`.
    if entries.len() < PARALLEL_CHECK_MIN
        || std::thread::available_parallelism().map_or(1, |n| n.get()) < 2
    {
        return check(0, entries);
    }
    let mid = entries.len() / 2;
    let mut back = Some(entries.split_off(mid));
    let (front, back_checked) = std::thread::scope(|s| {
        let slot = &mut back;
        let other = std::thread::Builder::new()
            .spawn_scoped(s, move || slot.take().map(|part| check(mid, part)));
        let front = check(0, entries);
        let back_checked = match other {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: the back half is checked below.
            Err(_) => None,
        };
        (front, back_checked)
    });
    let mut front = front?;
    let back = match (back_checked, back) {
        (Some(checked), _) => checked?,
        (None, Some(part)) => check(mid, part)?,
        (None, None) => Vec::new(),
    };
    front.extend(back);
    Ok(front)
}

fn clean_temp_files(d: &LogDir) {
    // Unlinking removes a planted link, never its target.
    let dir = d.segments_dir();
    if let Ok(names) = d.storage.list_dir(&dir) {
        for ent in names {
            if ent.name.ends_with(".tmp") {
                let _ = d.storage.remove_file(&dir.join(&ent.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(payload: &[u8]) -> NewEntry {
        NewEntry {
            kind: "x.test".into(),
            job_id: None,
            step_id: None,
            agent: None,
            actor: "agent:t".into(),
            parent: None,
            payload: payload.to_vec(),
        }
    }

    /// A batch checked on two threads still names the first bad entry by
    /// position, whichever half it is in, and writes nothing.
    #[test]
    fn a_batch_checked_in_halves_names_its_first_bad_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            segment_bytes: 1 << 20,
            key_file: None,
            clock_skew_tolerance_s: None,
        };
        let log = Log::create(tmp.path(), &opts).unwrap();
        let n = 2 * PARALLEL_CHECK_MIN;
        for bad in [vec![n / 2 + 3, n - 1], vec![5, n / 2 + 3], vec![n / 2]] {
            let mut batch: Vec<NewEntry> = (0..n).map(|_| entry(b"{}")).collect();
            for &i in &bad {
                batch[i] = entry(b"{\"a\": 1}");
            }
            let before = log.committed().get();
            match log.append(batch) {
                Err(Error::InvalidEntry { entry, .. }) => assert_eq!(entry, bad[0] + 1),
                other => panic!("bad entries at {bad:?}: {other:?}"),
            }
            assert_eq!(log.committed().get(), before, "nothing written");
        }
        let acks = log
            .append((0..n).map(|_| entry(b"{}")).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(acks.len(), n);
    }
}
