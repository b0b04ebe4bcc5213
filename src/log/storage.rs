//! The one narrow door through which the log touches its files.
//!
//! Durability bugs hide in the gaps between syscalls: a write that went
//! short, an fsync that failed once and then "succeeded" (PostgreSQL's
//! fsyncgate), a full disk, a power cut that kept later pages and lost
//! earlier ones. They cannot be produced on demand with a real file system,
//! so every file operation of the paths that can lose data goes through
//! `Storage`: the writer (segments, their temp files, the sparse index,
//! directory syncs), open-time recovery (listing, reading the last segment,
//! the pending cut report, the cut itself), `argus.json` (`LogDir::read_meta`
//! / `write_meta`), the signing keys as the writer loads them, key rotation
//! (`rotate.rs`: the new key, the pending state, the old key's
//! zero+sync+unlink), compaction (`erase.rs` and `archive.rs`: temp file,
//! rename, removal) and the control-flag mirrors (`control_flags.rs`).
//!
//! The read side goes through it too (`open_read`, `ReadFile`,
//! `SegmentMap`, `read_ahead`): `LogReader`, `Follower`, the sparse index
//! reader, the key-epoch scan, the redaction scan and `verify`, so the
//! simulator's own state, a bit it flipped included, is judged by the code
//! that judges a real disk, not by a copy written out for it. A reader
//! opens a file once and asks it for a map or a few `pread`s: one virtual
//! call per file, never per entry. `RealFs` maps sealed bytes with `mmap`
//! exactly as before (zero-copy; `mmap.rs` holds the checks that make each
//! map safe, on the descriptor that is mapped); a storage that cannot map
//! copies them (`SegmentMap::Copied`).
//!
//! `RealFs` is the default: the `safe_fs` calls as they were (every refusal
//! of a link, FIFO or device kept), behind one virtual call per operation,
//! which is noise next to the fdatasync each commit waits for. Tests put a
//! deterministic fault injecting implementation behind it
//! (tests/it/fault_sim) and drive thousands of seeded crashes through the
//! real writer, recovery, rotation, compaction, readers and verify.
//!
//! So do the writer `LOCK` (`open_lock`, `LockFile`: a simulated crash
//! must release it as a kill -9 releases an `flock`), the clock anchor
//! (`time.rs`) and `init` (`dir::create_on`): every file the log keeps is
//! made, read, locked and removed through this trait.
//!
//! Outside it, on purpose:
//! - a key file named by the user with `init --key-file` (outside the log
//!   directory; its path is resolved with `canonicalize` before it is
//!   loaded through here);
//! - waiting for news: `tail -f` and `argusd` decide *when* to poll a
//!   `Follower` (a timer, the writer's commit signal); what the poll reads
//!   goes through here.
use crate::error::{Error, IoContext, Result};
use crate::log::mmap;
use crate::log::reader::SegmentBytes;
use crate::log::safe_fs::{self, Durability, FileKind};
use std::fmt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// A file opened for writing through a `Storage`.
pub trait StorageFile: Send + Sync {
    /// Writes all of `buf` at `offset`, or fails (a short write is a failure).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    /// fdatasync: the bytes written so far, and the size, survive a crash.
    fn sync_data(&self) -> std::io::Result<()>;
    /// fsync: as `sync_data`, and the metadata too.
    fn sync_all(&self) -> std::io::Result<()>;
    /// Truncates or extends the file to `len` (not durable until a sync).
    fn set_len(&self, len: u64) -> std::io::Result<()>;
}

/// The writer's lock file, opened through a `Storage`. The lock is
/// advisory and held until this is dropped (or the process dies); the
/// file's text only says who holds it, for the one who waits.
pub trait LockFile: Send + Sync {
    /// Takes the lock without waiting: `Ok(false)` while another holds it.
    fn try_lock(&self) -> std::io::Result<bool>;
    /// Up to `cap` bytes of the holder's text (empty when unreadable).
    fn read_text(&self, cap: usize) -> Vec<u8>;
    /// Replaces the holder's text; called only by the holder.
    fn replace_text(&self, text: &[u8]) -> std::io::Result<()>;
}

/// A file opened for reading through a `Storage`. Readers judge a segment
/// and take its bytes through this one handle (one open, one dynamic call
/// per question about the file, never one per entry read), so what was
/// checked is what is read.
pub trait ReadFile: Send + Sync {
    /// The file's size now.
    fn size(&self) -> Result<u64>;
    /// Reads exactly `buf.len()` bytes at `offset` (fewer is an error).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
    /// The whole file, from its start to wherever it ends now.
    fn read_to_end(&self) -> Result<Vec<u8>> {
        let n = usize::try_from(self.size()?).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; n];
        self.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
    /// The whole file, if it is a sealed segment (ends in a CRC-valid
    /// footer, checked through this handle); `None`: read it instead.
    /// `RealFs` maps it (zero-copy, see `mmap`); the default copies it.
    fn map_if_sealed(&self) -> Result<Option<SegmentMap>> {
        let len = self.size()?;
        let n = (log_format::frame::FRAME_HEADER_LEN + log_format::segment::FOOTER_LEN) as u64;
        if len < n {
            return Ok(None);
        }
        let mut tail = vec![0u8; n as usize];
        self.read_exact_at(&mut tail, len - n)?;
        if !crate::log::mmap::ends_in_footer(&tail) {
            return Ok(None);
        }
        self.copy_prefix(len).map(Some)
    }
    /// The first `end` bytes of an active segment, which the caller has
    /// shown to end in a whole, signed seal (read through this handle);
    /// `None` if the file is now shorter (read it instead).
    fn map_sealed_prefix(&self, end: u64) -> Result<Option<SegmentMap>> {
        if end == 0 || end > self.size()? {
            return Ok(None);
        }
        self.copy_prefix(end).map(Some)
    }
    /// A compressed segment (`.segz`) whole; `None` when it is empty.
    fn map_compressed(&self) -> Result<Option<SegmentMap>> {
        let len = self.size()?;
        if len == 0 {
            return Ok(None);
        }
        self.copy_prefix(len).map(Some)
    }
    /// The first `len` bytes, copied: the default `map_*` for a storage
    /// that cannot map.
    fn copy_prefix(&self, len: u64) -> Result<SegmentMap> {
        let n = usize::try_from(len).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; n];
        self.read_exact_at(&mut buf, 0)?;
        Ok(SegmentMap::Copied(buf))
    }
}

/// Bytes of a file that never change while held: a sealed segment, an
/// active segment's sealed prefix, a compressed segment. An enum, not a
/// trait object, so reading them costs a branch, not a virtual call.
pub enum SegmentMap {
    /// `RealFs`: the file's pages, mapped read-only (`mmap`).
    Mapped(memmap2::Mmap),
    /// A storage that cannot map (the fault simulator): a copy.
    Copied(Vec<u8>),
}

impl std::ops::Deref for SegmentMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(m) => m,
            Self::Copied(v) => v,
        }
    }
}

impl SegmentMap {
    /// Tells the kernel reads of this mapping jump around, so a fault on a
    /// cold page does not also read the device's whole read-ahead window
    /// around it (a hint, for a reader that asks for its pages with
    /// `will_need`; nothing for a copy).
    pub fn random_access(&self) {
        if let Self::Mapped(m) = self {
            let _ = m.advise(memmap2::Advice::Random);
        }
    }

    /// Asks for the pages of `len` bytes at `at` to be read ahead (a hint:
    /// nothing for a copy, and a refusal costs nothing).
    pub fn will_need(&self, at: usize, len: usize) {
        if let Self::Mapped(m) = self {
            // madvise takes a page-aligned start.
            let start = at & !4095;
            let end = at.saturating_add(len).min(m.len());
            let _ = m.advise_range(memmap2::Advice::WillNeed, start, end.saturating_sub(start));
        }
    }
}

/// One name in a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    /// The entry's own type: a link is a link, never what it points at.
    pub kind: FileKind,
}

/// The file operations of the log's write and recovery paths. Errors carry
/// the path, as `safe_fs`'s do; the `safe_fs` refusals (links, FIFOs,
/// devices in place of a log file) are `RealFs`'s to make.
pub trait Storage: Send + Sync {
    /// Opens (creating if needed, never through a link) the lock file
    /// `path`, without taking the lock.
    fn open_lock(&self, path: &Path) -> Result<Box<dyn LockFile>>;
    /// Opens an existing regular file to write in place; never creates it.
    fn open_write(&self, path: &Path) -> Result<Box<dyn StorageFile>>;
    /// Creates a file exclusively, unlinking whatever had the name first.
    fn create_replacing(&self, path: &Path, mode: u32) -> Result<Box<dyn StorageFile>>;
    /// Creates a file that must be new: fails if anything, even a dangling
    /// link, has the name (a key file never replaces another).
    fn create_new(&self, path: &Path, mode: u32) -> Result<Box<dyn StorageFile>>;
    /// Creates one directory (never its parents); fails if the name is taken.
    fn create_dir(&self, path: &Path) -> Result<()>;
    /// What has the name, as `lstat` sees it (a link is a link, never its
    /// target); `None` when nothing does.
    fn kind_of(&self, path: &Path) -> Result<Option<FileKind>>;
    /// Reads a regular file whole.
    fn read_all(&self, path: &Path) -> Result<Vec<u8>>;
    /// Reads a small regular file whole, refusing more than `cap` bytes.
    fn read_capped(&self, path: &Path, cap: u64) -> Result<Vec<u8>>;
    /// `read_capped`, with the file's permission bits taken from the same
    /// open descriptor: a private key's mode is judged on the file read.
    fn read_capped_mode(&self, path: &Path, cap: u64) -> Result<(Vec<u8>, u32)>;
    /// A segment file whole (`.segz` by its name: decompressed), for the
    /// log's own rewriting steps: rotation's look for its entry, compaction
    /// and erasure. `RealFs` maps a sealed segment as the readers do
    /// (`reader::load_path`, zero-copy); the default reads it into memory.
    fn load_segment(&self, path: &Path) -> Result<SegmentBytes> {
        if crate::log::reader::is_compressed_name(path) {
            return load_compressed(self, path).map(|(b, _)| b);
        }
        let bytes = self.read_all(path)?;
        Ok(crate::log::reader::SegmentBytes::from_read(bytes))
    }
    /// Opens an existing regular file to read: never through a link, and
    /// a FIFO or device in its place is refused, not read.
    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadFile>>;
    /// Asks for the last `tail` bytes of `path` (all of it with `None`) to
    /// be read ahead; whether the file could be opened. A hint only: the
    /// default hints nothing.
    fn read_ahead(&self, path: &Path, tail: Option<u64>) -> bool {
        let _ = tail;
        self.exists(path)
    }
    /// Renames `from` over `to` (not durable until `sync_dir`).
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()>;
    /// Unlinks a name (a link, never its target).
    fn remove_file(&self, path: &Path) -> std::io::Result<()>;
    /// Whether anything, even a dangling link, has the name.
    fn exists(&self, path: &Path) -> bool;
    /// Lists a real directory (a link in its place is refused).
    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>>;
    /// fsync a directory so creates, renames and unlinks in it survive.
    fn sync_dir(&self, path: &Path) -> Result<()>;

    /// Writes `bytes` to `dest` whole or not at all: a fresh temp file,
    /// then a rename over `dest`; synced with its directory if asked.
    fn write_whole(
        &self,
        tmp: &Path,
        dest: &Path,
        bytes: &[u8],
        mode: u32,
        durability: Durability,
    ) -> Result<()> {
        let f = self.create_replacing(tmp, mode)?;
        f.write_all_at(bytes, 0).at(tmp)?;
        if durability == Durability::Synced {
            f.sync_all().at(tmp)?;
        }
        drop(f);
        self.rename(tmp, dest).at(dest)?;
        if durability == Durability::Synced {
            // A bare file name's parent is "", which is the current directory.
            match dest.parent() {
                Some(p) if p.as_os_str().is_empty() => self.sync_dir(Path::new("."))?,
                Some(p) => self.sync_dir(p)?,
                None => {}
            }
        }
        Ok(())
    }
}

/// A compressed segment's original bytes and its size on disk, whatever
/// its name (compaction reads back its temp file). Read with the same cap
/// as `reader::load_compressed`; a larger file is damage, not a reason to
/// allocate.
pub fn load_compressed<S: Storage + ?Sized>(s: &S, path: &Path) -> Result<(SegmentBytes, u64)> {
    let cap = crate::log::reader::PACKED_MAX;
    let packed = s.read_capped(path, cap).map_err(|e| match e {
        Error::TooLarge { path, limit } => Error::Archive {
            path,
            source: log_format::ArchiveError::Malformed {
                what: "compressed segment",
                offset: 0,
                reason: format!("more bytes than any compressed segment ({limit})"),
            },
        },
        other => other,
    })?;
    let bytes = log_format::archive::decode(&packed).map_err(|source| Error::Archive {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((SegmentBytes::Decompressed(bytes), packed.len() as u64))
}

/// Refuses `path` unless it is a real directory (not a link to one).
pub fn real_dir<S: Storage + ?Sized>(s: &S, path: &Path) -> Result<()> {
    match s.kind_of(path)? {
        Some(FileKind::Directory) => Ok(()),
        Some(kind) => Err(Error::NotADirectory {
            path: path.into(),
            kind,
        }),
        None => Err(Error::Io {
            path: path.into(),
            source: std::io::ErrorKind::NotFound.into(),
        }),
    }
}

/// `safe_fs::real_dirs_below` through a `Storage`: every directory between
/// `root` and the file `path` under it must be a real directory, so that a
/// name like `keys/epoch-2.key` cannot be redirected by a link at `keys`.
pub fn real_dirs_below<S: Storage + ?Sized>(s: &S, root: &Path, path: &Path) -> Result<()> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(());
    };
    let mut at = root.to_path_buf();
    let mut parts: Vec<_> = rel.components().collect();
    parts.pop();
    for c in parts {
        at.push(c);
        if matches!(c, std::path::Component::Normal(_)) {
            real_dir(s, &at)?;
        }
    }
    Ok(())
}

/// The directory `path`, created (and its parent synced) if missing;
/// refused when something else, a link included, has the name.
pub fn ensure_dir<S: Storage + ?Sized>(s: &S, path: &Path) -> Result<()> {
    if s.kind_of(path)?.is_none() {
        s.create_dir(path)?;
        match path.parent() {
            Some(p) if p.as_os_str().is_empty() => s.sync_dir(Path::new("."))?,
            Some(p) => s.sync_dir(p)?,
            None => {}
        }
        return Ok(());
    }
    real_dir(s, path)
}

impl fmt::Debug for dyn Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Storage")
    }
}

/// The real file system, through `safe_fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

/// The process-wide `RealFs`, shared so that making a `LogDir` costs an
/// atomic increment, not an allocation.
pub fn real() -> Arc<dyn Storage> {
    static REAL: OnceLock<Arc<dyn Storage>> = OnceLock::new();
    REAL.get_or_init(|| Arc::new(RealFs)).clone()
}

impl StorageFile for std::fs::File {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        std::fs::File::sync_data(self)
    }
    fn sync_all(&self) -> std::io::Result<()> {
        std::fs::File::sync_all(self)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}

impl LockFile for std::fs::File {
    fn try_lock(&self) -> std::io::Result<bool> {
        match std::fs::File::try_lock(self) {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn read_text(&self, cap: usize) -> Vec<u8> {
        let mut buf = vec![0u8; cap];
        let n = self.read_at(&mut buf, 0).unwrap_or(0);
        buf.truncate(n);
        buf
    }
    fn replace_text(&self, text: &[u8]) -> std::io::Result<()> {
        std::fs::File::set_len(self, 0)?;
        FileExt::write_all_at(self, text, 0)
    }
}

impl Storage for RealFs {
    fn open_lock(&self, path: &Path) -> Result<Box<dyn LockFile>> {
        Ok(Box::new(safe_fs::open_lock(path)?))
    }
    fn open_write(&self, path: &Path) -> Result<Box<dyn StorageFile>> {
        Ok(Box::new(safe_fs::open_write(path)?))
    }
    fn create_replacing(&self, path: &Path, mode: u32) -> Result<Box<dyn StorageFile>> {
        Ok(Box::new(safe_fs::create_replacing(path, mode)?))
    }
    fn create_new(&self, path: &Path, mode: u32) -> Result<Box<dyn StorageFile>> {
        Ok(Box::new(safe_fs::create_new(path, mode)?))
    }
    fn create_dir(&self, path: &Path) -> Result<()> {
        std::fs::create_dir(path).at(path)
    }
    fn kind_of(&self, path: &Path) -> Result<Option<FileKind>> {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(FileKind::of(m.file_type()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(path),
        }
    }
    fn read_all(&self, path: &Path) -> Result<Vec<u8>> {
        safe_fs::read_all(path)
    }
    fn read_capped(&self, path: &Path, cap: u64) -> Result<Vec<u8>> {
        safe_fs::read_capped(path, cap)
    }
    fn read_capped_mode(&self, path: &Path, cap: u64) -> Result<(Vec<u8>, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let file = safe_fs::open_read(path)?;
        let mode = file.metadata().at(path)?.permissions().mode() & 0o7777;
        Ok((safe_fs::read_capped_from(&file, path, cap)?, mode))
    }
    fn load_segment(&self, path: &Path) -> Result<SegmentBytes> {
        crate::log::reader::load_path_on(self, path)
    }
    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadFile>> {
        Ok(Box::new(RealReadFile {
            file: safe_fs::open_read(path)?,
            path: path.to_path_buf(),
        }))
    }
    fn read_ahead(&self, path: &Path, tail: Option<u64>) -> bool {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
        let Ok(file) = safe_fs::open_read(path) else {
            return false;
        };
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            return true;
        };
        let from = tail.map_or(0, |t| len.saturating_sub(t));
        let (Ok(off), Ok(n)) = (i64::try_from(from), i64::try_from(len - from)) else {
            return true;
        };
        // A refused hint costs nothing but the hint.
        let _ = posix_fadvise(&file, off, n, PosixFadviseAdvice::POSIX_FADV_WILLNEED);
        true
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }
    fn exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for ent in safe_fs::read_dir(path)? {
            let ent = ent.at(path)?;
            let kind = FileKind::of(ent.file_type().at(ent.path())?);
            out.push(DirEntry {
                name: ent.file_name().to_string_lossy().into_owned(),
                kind,
            });
        }
        Ok(out)
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        crate::log::dir::sync_dir(path)
    }
}

/// A file `RealFs` opened to read, with its path for errors. The maps are
/// `mmap`'s, which checks on this descriptor what makes each one safe.
struct RealReadFile {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl ReadFile for RealReadFile {
    fn size(&self) -> Result<u64> {
        Ok(self.file.metadata().at(&self.path)?.len())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        FileExt::read_exact_at(&self.file, buf, offset).at(&self.path)
    }
    fn read_to_end(&self) -> Result<Vec<u8>> {
        use std::io::Read;
        let mut buf = Vec::new();
        (&self.file).read_to_end(&mut buf).at(&self.path)?;
        Ok(buf)
    }
    fn map_if_sealed(&self) -> Result<Option<SegmentMap>> {
        Ok(mmap::map_if_sealed(&self.file, &self.path)?.map(SegmentMap::Mapped))
    }
    fn map_sealed_prefix(&self, end: u64) -> Result<Option<SegmentMap>> {
        Ok(mmap::map_sealed_prefix(&self.file, &self.path, end)?.map(SegmentMap::Mapped))
    }
    fn map_compressed(&self) -> Result<Option<SegmentMap>> {
        Ok(mmap::map_compressed(&self.file, &self.path)?.map(SegmentMap::Mapped))
    }
}
