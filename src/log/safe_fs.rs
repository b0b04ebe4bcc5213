//! Every file Argus opens in a log directory goes through here.
//!
//! Anyone who can write to the log directory can put a symlink, a FIFO, a
//! socket or a device where Argus expects one of its own files. Followed
//! blindly, a link at `LOCK` or at a `.tmp` name makes a create-and-truncate
//! destroy the link's target, a FIFO makes a read block forever, and a link
//! to `/dev/zero` makes a whole-file read allocate without end. So:
//!
//! - a file Argus creates is opened `O_CREAT | O_EXCL | O_NOFOLLOW`; a stale
//!   one left by a crash is unlinked first (unlink removes a link, never its
//!   target);
//! - a file Argus reads, maps or writes in place is opened
//!   `O_NOFOLLOW | O_NONBLOCK` and then judged by `fstat` on the open
//!   descriptor, so there is no window between checking and opening;
//! - small files are read with a size cap;
//! - a directory Argus descends into must be a real directory, not a link.
//!   The log directory itself may be a link: the user named it.
use crate::error::{Error, IoContext, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Cap for small files (argus.json, keys, the recovery pending file): far
/// above anything Argus writes, far below what could exhaust memory.
pub const SMALL_FILE_MAX: u64 = 1 << 20;

/// What a path turned out to be, for refusals that say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl FileKind {
    pub fn of(t: fs::FileType) -> Self {
        if t.is_symlink() {
            Self::Symlink
        } else if t.is_file() {
            Self::Regular
        } else if t.is_dir() {
            Self::Directory
        } else if t.is_fifo() {
            Self::Fifo
        } else if t.is_socket() {
            Self::Socket
        } else if t.is_char_device() {
            Self::CharDevice
        } else if t.is_block_device() {
            Self::BlockDevice
        } else {
            Self::Unknown
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Regular => "a regular file",
            Self::Directory => "a directory",
            Self::Symlink => "a symbolic link",
            Self::Fifo => "a FIFO",
            Self::Socket => "a socket",
            Self::CharDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Unknown => "a file of unknown type",
        })
    }
}

/// Flags for every open of an existing file: never through a link in the
/// last component, never blocking on a FIFO, never acquiring a terminal.
const EXISTING: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
/// Flags for every file Argus creates (with `create_new`, i.e. `O_EXCL`).
const CREATE: i32 = libc::O_NOFOLLOW | libc::O_CLOEXEC;

fn not_regular(path: &Path, kind: FileKind, action: &'static str) -> Error {
    Error::NotRegularFile {
        path: path.into(),
        kind,
        action,
    }
}

/// Turns the errors that `O_NOFOLLOW | O_NONBLOCK` give for a link
/// (ELOOP), a socket or a reader-less FIFO (ENXIO) or a directory (EISDIR)
/// into a refusal naming what the path is. The `lstat` here only words the
/// message; the decision was already made by the failed open.
fn open_error(path: &Path, e: std::io::Error, action: &'static str) -> Error {
    if matches!(
        e.raw_os_error(),
        Some(libc::ELOOP | libc::ENXIO | libc::EISDIR | libc::ENODEV)
    ) {
        if let Ok(m) = fs::symlink_metadata(path) {
            let kind = FileKind::of(m.file_type());
            if kind != FileKind::Regular {
                return not_regular(path, kind, action);
            }
        }
    }
    Error::Io {
        path: path.into(),
        source: e,
    }
}

/// Refuses an open descriptor that is not a regular file (fstat, so it
/// judges exactly the file that will be read or written).
pub fn check_regular(file: &File, path: &Path, action: &'static str) -> Result<fs::Metadata> {
    let m = file.metadata().at(path)?;
    match FileKind::of(m.file_type()) {
        FileKind::Regular => Ok(m),
        kind => Err(not_regular(path, kind, action)),
    }
}

fn open_existing(path: &Path, opts: &mut OpenOptions, action: &'static str) -> Result<File> {
    let file = opts
        .custom_flags(EXISTING)
        .open(path)
        .map_err(|e| open_error(path, e, action))?;
    check_regular(&file, path, action)?;
    Ok(file)
}

/// Opens an existing regular file for reading or mapping.
pub fn open_read(path: &Path) -> Result<File> {
    open_existing(path, OpenOptions::new().read(true), "read")
}

/// Opens an existing regular file for writing in place (the active
/// segment, a truncation). Never creates it.
pub fn open_write(path: &Path) -> Result<File> {
    open_existing(path, OpenOptions::new().write(true), "write")
}

/// Opens the lock file read-write, creating it if needed. Unlike other
/// files it is not replaced when it exists: another process may hold a
/// `flock` on that very inode, and a new inode would defeat the lock.
pub fn open_lock(path: &Path) -> Result<File> {
    open_existing(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666),
        "lock",
    )
}

/// Reads an open file to its end, refusing more than `cap` bytes.
pub fn read_capped_from(file: &File, path: &Path, cap: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .at(path)?;
    if out.len() as u64 > cap {
        return Err(Error::TooLarge {
            path: path.into(),
            limit: cap,
        });
    }
    Ok(out)
}

/// Reads a small regular file whole, refusing more than `cap` bytes.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let file = open_read(path)?;
    read_capped_from(&file, path, cap)
}

/// Reads a regular file whole. Its size is what `fstat` says it is (a
/// device or FIFO never gets this far), so this cannot read without end.
pub fn read_all(path: &Path) -> Result<Vec<u8>> {
    let mut file = open_read(path)?;
    let len = file.metadata().at(path)?.len();
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut out).at(path)?;
    Ok(out)
}

/// Creates a new file; fails if anything, even a dangling link, has the name.
pub fn create_new(path: &Path, mode: u32) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(CREATE)
        .open(path)
        .map_err(|e| open_error(path, e, "create"))
}

/// Creates a file under a name that a crash may have left behind (a temp
/// file): whatever has the name is unlinked first, which removes a link
/// and never its target, then the file is created exclusively.
pub fn create_replacing(path: &Path, mode: u32) -> Result<File> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(path),
        _ => {}
    }
    create_new(path, mode)
}

/// Whether a file that appears whole must also survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory (metadata, recovery records).
    Synced,
    /// A derived cache: losing it to a crash only means rebuilding it.
    Cache,
}

/// Writes `bytes` to `dest` whole or not at all: a fresh temp file, then a
/// rename over `dest` (which replaces a link at `dest`, never its target).
pub fn write_whole(
    tmp: &Path,
    dest: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> Result<()> {
    let mut f = create_replacing(tmp, mode)?;
    f.write_all(bytes).at(tmp)?;
    if durability == Durability::Synced {
        f.sync_all().at(tmp)?;
    }
    drop(f);
    fs::rename(tmp, dest).at(dest)?;
    if durability == Durability::Synced {
        // A bare file name's parent is "", which is the current directory.
        match dest.parent() {
            Some(p) if p.as_os_str().is_empty() => crate::log::dir::sync_dir(Path::new("."))?,
            Some(p) => crate::log::dir::sync_dir(p)?,
            None => {}
        }
    }
    Ok(())
}

/// Refuses `path` unless it is a real directory (not a link to one).
pub fn real_dir(path: &Path) -> Result<()> {
    let m = fs::symlink_metadata(path).at(path)?;
    match FileKind::of(m.file_type()) {
        FileKind::Directory => Ok(()),
        kind => Err(Error::NotADirectory {
            path: path.into(),
            kind,
        }),
    }
}

/// Like `real_dir`, but a missing path is fine (it will be created).
pub fn real_dir_if_present(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        _ => real_dir(path),
    }
}

/// Lists a directory Argus descends into, refusing a link in its place.
pub fn read_dir(path: &Path) -> Result<fs::ReadDir> {
    real_dir(path)?;
    fs::read_dir(path).at(path)
}

/// Every directory between `root` and the file `path` under it must be a
/// real directory, so that a name like `keys/signing.key` cannot be
/// redirected elsewhere by a link at `keys`. Paths outside `root` are the
/// user's own choice and are not checked here.
pub fn real_dirs_below(root: &Path, path: &Path) -> Result<()> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(());
    };
    let mut at = root.to_path_buf();
    let mut parts: Vec<_> = rel.components().collect();
    parts.pop();
    for c in parts {
        at.push(c);
        if matches!(c, std::path::Component::Normal(_)) {
            real_dir(&at)?;
        }
    }
    Ok(())
}

/// Text from a file anyone could have written (the lock holder's line),
/// made safe to print: at most `cap` bytes, invalid UTF-8 replaced, and
/// control characters (terminal escapes, newlines) replaced by spaces.
pub fn printable(bytes: &[u8], cap: usize) -> String {
    let cut = &bytes[..bytes.len().min(cap)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_strips_escapes_and_caps() {
        let s = printable(b"pid 1 (\x1b[2J\x07x\r\ny)", 256);
        assert_eq!(s, "pid 1 ( [2J x y)");
        assert_eq!(printable(&[b'a'; 1000], 10).len(), 10);
        assert_eq!(printable(b"\xff\xfeok", 16), "\u{fffd}\u{fffd}ok");
    }
}
