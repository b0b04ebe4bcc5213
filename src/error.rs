//! The engine's typed errors. Binaries add context with `anyhow`; the
//! library keeps structured fields so a caller can act on them.
use log_format::FormatError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir} is not an Argus log: {reason}")]
    NotALog { dir: PathBuf, reason: String },
    #[error("{dir} already holds an Argus log; refusing to overwrite it")]
    AlreadyALog { dir: PathBuf },
    #[error("log {dir} is locked by another writer ({holder})")]
    Locked { dir: PathBuf, holder: String },
    #[error("key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`", path = path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("key file {path}: {reason}", path = path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("segment {segment}: {source}")]
    Format {
        segment: String,
        #[source]
        source: FormatError,
    },
    #[error("segment {segment} offset {offset}: corruption in committed data ({reason}); not a torn tail: {proof}. Refusing to open; run `argusctl verify` for details")]
    Corrupt {
        segment: String,
        offset: u64,
        reason: String,
        /// Why the bytes after the damage prove it was committed (SPEC §7.2).
        proof: String,
    },
    /// A valid frame with wrong content (SPEC §7): a payload that does not
    /// match its hash, a broken chain, a seq gap. Never a torn write.
    #[error("segment {segment}: {fault}; refusing to read past it (run `argusctl verify`)")]
    Fault {
        segment: String,
        #[source]
        fault: log_format::Fault,
    },
    #[error("segment {segment} offset {offset}: {reason}")]
    Inconsistent {
        segment: String,
        offset: u64,
        reason: String,
    },
    #[error("invalid entry: {0}")]
    InvalidEntry(String),
    /// Invariant 8: the writer's class may not write this kind.
    #[error("entry {entry}: {source}")]
    Unauthorized {
        entry: usize,
        #[source]
        source: crate::registry::Unauthorized,
    },
    #[error("log is in lockdown after a write failure ({0}); no appends are accepted until it is reopened")]
    Lockdown(String),
    #[error("the writer thread has stopped")]
    WriterGone,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an I/O error, because a bare "No such file" helps nobody.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
