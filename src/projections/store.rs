//! The one file that knows the projection state lives in sled.
//!
//! Everything above it (the working set in `tx.rs`, the engine, every
//! projection) sees only `Store`, `Tree` and `StoreError`: ordered byte keys
//! and values, prefix and range scans, and one atomic batch write. sled is
//! pre-1.0 and DESIGN names redb as the reserve; keeping the dependency to
//! this file means a swap rewrites it and nothing else
//! (`source_rules::the_store_database_is_named_only_in_store_rs` holds that line).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store itself failed (I/O, corruption, a lock).
    #[error("projection store: {source}")]
    Backend {
        #[from]
        source: sled::Error,
    },
    #[error("projection store value at {key}: {reason}")]
    Decode { key: String, reason: String },
}

/// Live key/value pairs in key order.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

/// The open projection store of this process: one `Tree` per projection.
pub struct Store {
    db: sled::Db,
}

/// One projection's keyspace: ordered keys, atomic batches. Cheap to clone
/// (a handle), so lanes and views each hold their own.
#[derive(Clone)]
pub struct Tree {
    inner: sled::Tree,
}

impl Store {
    /// The keyspace named `name`, created empty on first use.
    pub fn tree(&self, name: &str) -> Result<Tree, StoreError> {
        Ok(Tree {
            inner: self.db.open_tree(name)?,
        })
    }

    /// Makes every committed batch durable. The store is opened without
    /// background flushing, so a catch-up pays for one flush, at its end.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Owned pairs out of a sled iterator, errors typed.
fn pairs(
    it: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> {
    it.map(|kv| {
        kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
            .map_err(StoreError::from)
    })
}

impl Tree {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.get(key)?.map(|v| v.to_vec()))
    }

    /// Every pair whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> {
        pairs(self.inner.scan_prefix(prefix))
    }

    /// Every pair with `start <= key < end`, in key order.
    pub fn range(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> {
        pairs(self.inner.range(start..end))
    }

    /// Every pair, in key order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> {
        pairs(self.inner.iter())
    }

    /// Writes (`Some`) and removes (`None`) every key in one atomic batch:
    /// after a crash either all of it is there or none of it, which is what
    /// lets state and checkpoint never disagree.
    pub fn write_batch<'k>(
        &self,
        changes: impl IntoIterator<Item = (&'k [u8], Option<Vec<u8>>)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in changes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.inner.apply_batch(batch)?;
        Ok(())
    }

    /// Removes every key (state and checkpoint alike).
    pub fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear()?;
        Ok(())
    }

    /// An empty keyspace in a store deleted on drop, for unit tests.
    #[cfg(test)]
    #[allow(clippy::expect_used)]
    pub fn temporary() -> Tree {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary store");
        Tree {
            inner: db.open_tree("t").expect("temporary tree"),
        }
    }
}

// ---------------------------------------------------------------- opening

/// Where this process keeps projection state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// `DIR/projections`, kept between runs.
    Persistent,
    /// `DIR/projections` cannot be written (a read-only copy of a log, a
    /// read-only file system, another user's store), so state is rebuilt
    /// from the log into a scratch store removed when the process ends.
    /// `reason` says what could not be written.
    Temporary { reason: String },
}

/// Why `open` gave up.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the store's lock past the wait.
    Busy,
    Store(StoreError),
}

impl From<StoreError> for OpenError {
    fn from(e: StoreError) -> Self {
        OpenError::Store(e)
    }
}

impl From<sled::Error> for OpenError {
    fn from(e: sled::Error) -> Self {
        OpenError::Store(e.into())
    }
}

/// sled reports a held lock as an I/O error; on some platforms with no
/// `WouldBlock` kind, only its text ("could not acquire lock") says so. This
/// is the one place text is read, at the boundary of a crate that gives no
/// variant for it, and it stays inside the store.
fn is_busy(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"))
}

/// Errors that mean "you may not write here", as opposed to a damaged store.
fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

fn sled_read_only(e: &sled::Error) -> Option<&std::io::Error> {
    match e {
        sled::Error::Io(io) if is_read_only(io) => Some(io),
        _ => None,
    }
}

/// Opens the store at `path`, waiting up to `busy_wait` for another process
/// to release it. A store that cannot be written is replaced by a temporary
/// one (`Backing::Temporary`): views must work on a read-only copy of a log,
/// and rebuilding from the log, rather than reading whatever state the copy
/// carries, is also what a forensic reader should want. A store that is
/// writable but unreadable is a damaged cache: it is discarded and rebuilt.
pub fn open(path: &Path, busy_wait: Duration) -> Result<(Store, Backing), OpenError> {
    let start = Instant::now();
    let temporary = |e: &std::io::Error| -> Result<(Store, Backing), OpenError> {
        let reason = format!("{}: {e}", path.display());
        Ok((open_temporary()?, Backing::Temporary { reason }))
    };
    let persistent = |db| Ok((Store { db }, Backing::Persistent));
    // The same settings on a rebuild: sled's default cache is 1 GiB.
    let open = || {
        sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .cache_capacity(CACHE_BYTES)
            .open()
    };
    loop {
        match open() {
            Ok(db) => return persistent(db),
            Err(e) if is_busy(&e) => {
                if start.elapsed() > busy_wait {
                    return Err(OpenError::Busy);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                if let Some(io) = sled_read_only(&e) {
                    return temporary(io);
                }
                // The store is a disposable cache: a store that cannot be
                // opened is discarded and rebuilt from the log.
                tracing::warn!(error = %e, path = %path.display(), "projection store unreadable; rebuilding");
                match std::fs::remove_dir_all(path) {
                    Ok(()) => {}
                    Err(io) if io.kind() == std::io::ErrorKind::NotFound => {}
                    Err(io) if is_read_only(&io) => return temporary(&io),
                    Err(io) => return Err(sled::Error::Io(io).into()),
                }
                return match open() {
                    Ok(db) => persistent(db),
                    Err(e) => match sled_read_only(&e) {
                        Some(io) => temporary(io),
                        None => Err(e.into()),
                    },
                };
            }
        }
    }
}

/// sled's page cache. Its default (1 GiB) lets a long-running daemon's
/// memory grow with the projections' state; views read little of it at a
/// time, so a bounded cache costs them nothing visible.
const CACHE_BYTES: u64 = 64 << 20;

/// Scratch stores of this process, removed by `remove_temporary` or when
/// their `Store` is dropped.
static TEMPORARY: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A scratch store in `/dev/shm` (memory) when it is there, else in the
/// temp directory; sled deletes it when the last handle is dropped.
fn open_temporary() -> Result<Store, StoreError> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "argus-projections-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let shm = Path::new("/dev/shm");
    let mut last = None;
    for base in [shm.to_path_buf(), std::env::temp_dir()] {
        if !base.is_dir() {
            continue;
        }
        let path = base.join(&name);
        match sled::Config::new()
            .path(&path)
            .temporary(true)
            .flush_every_ms(None)
            .open()
        {
            Ok(db) => {
                if let Ok(mut t) = TEMPORARY.lock() {
                    t.push(path);
                }
                return Ok(Store { db });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| sled::Error::Unsupported("no temporary directory".into()))
        .into())
}

/// Removes this process's scratch stores now. For exits that skip
/// destructors (`std::process::exit`), so a read-only session leaves
/// nothing behind in memory or on disk.
pub fn remove_temporary() {
    if let Ok(mut t) = TEMPORARY.lock() {
        for p in t.drain(..) {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn batches_scans_and_ranges_see_keys_in_byte_order() {
        let t = Tree::temporary();
        let b = |s: &str| s.as_bytes().to_vec();
        t.write_batch([
            (&b"a/2"[..], Some(b("two"))),
            (&b"a/1"[..], Some(b("one"))),
            (&b"b/1"[..], Some(b("other"))),
        ])
        .unwrap();
        let keys = |it: &mut dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>| {
            it.map(|kv| String::from_utf8(kv.unwrap().0).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&mut t.scan_prefix(b"a/")), ["a/1", "a/2"]);
        assert_eq!(keys(&mut t.range(b"a/2", b"b/1")), ["a/2"]);
        assert_eq!(keys(&mut t.iter()), ["a/1", "a/2", "b/1"]);
        t.write_batch([(&b"a/1"[..], None)]).unwrap();
        assert_eq!(t.get(b"a/1").unwrap(), None);
        assert_eq!(t.get(b"a/2").unwrap(), Some(b("two")));
        t.clear().unwrap();
        assert_eq!(t.iter().count(), 0);
    }
}
