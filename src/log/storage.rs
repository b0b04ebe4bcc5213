//! The one narrow door through which the log's write and recovery paths
//! touch files.
//!
//! Durability bugs hide in the gaps between syscalls: a write that went
//! short, an fsync that failed once and then "succeeded" (PostgreSQL's
//! fsyncgate), a full disk, a power cut that kept later pages and lost
//! earlier ones. They cannot be produced on demand with a real file system,
//! so every file operation of the writer (segments, their temp files, the
//! sparse index, directory syncs) and of open-time recovery (listing,
//! reading the last segment, the pending cut report, the cut itself) goes
//! through `Storage`. `RealFs` is the default: the `safe_fs` calls as they
//! were, behind one virtual call per operation, which is noise next to the
//! fdatasync each commit waits for. Tests put a deterministic fault
//! injecting implementation behind it (tests/it/fault_sim) and drive
//! thousands of seeded crashes through the real writer and recovery code.
//!
//! Outside it, on purpose: `argus.json` and the signing key (written once
//! by `init`, only read by the writer), the writer `LOCK` (a process lock,
//! not data), the clock anchor (advisory) and the readers, `verify` and
//! the mmap of sealed segments: they only read bytes that were durable
//! before they looked, so a simulated crash has nothing to tear in them;
//! the simulator checks them by running them over its post-crash state.
use crate::error::{IoContext, Result};
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
    /// Opens an existing regular file to write in place; never creates it.
    fn open_write(&self, path: &Path) -> Result<Box<dyn StorageFile>>;
    /// Creates a file exclusively, unlinking whatever had the name first.
    fn create_replacing(&self, path: &Path, mode: u32) -> Result<Box<dyn StorageFile>>;
    /// Reads a regular file whole.
    fn read_all(&self, path: &Path) -> Result<Vec<u8>>;
    /// Reads a small regular file whole, refusing more than `cap` bytes.
    fn read_capped(&self, path: &Path, cap: u64) -> Result<Vec<u8>>;
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

impl Storage for RealFs {
    fn open_write(&self, path: &Path) -> Result<Box<dyn StorageFile>> {
        Ok(Box::new(safe_fs::open_write(path)?))
    }
    fn create_replacing(&self, path: &Path, mode: u32) -> Result<Box<dyn StorageFile>> {
        Ok(Box::new(safe_fs::create_replacing(path, mode)?))
    }
    fn read_all(&self, path: &Path) -> Result<Vec<u8>> {
        safe_fs::read_all(path)
    }
    fn read_capped(&self, path: &Path, cap: u64) -> Result<Vec<u8>> {
        safe_fs::read_capped(path, cap)
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
