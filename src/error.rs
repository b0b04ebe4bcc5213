//! The engine's typed errors. Binaries add context with `anyhow`; the
//! library keeps structured fields so a caller can act on them.
use crate::log::entry::Problem;
use crate::log::safe_fs::FileKind;
use log_format::tail::Proof;
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
    #[error("{dir} is not empty and is not an Argus log; refusing to create a log in it", dir = dir.display())]
    NotEmpty { dir: PathBuf },
    /// Another process holds the writer lock and did not let go within the
    /// wait bound. `holder` is the holder's own line from `LOCK`, capped and
    /// stripped of control characters.
    #[error("timed out after {} waiting for the writer lock of {} to {operation}: it is locked by {}", seconds(*waited_ms), dir.display(), if holder.is_empty() { "an unknown process" } else { holder.as_str() })]
    Locked {
        dir: PathBuf,
        operation: String,
        waited_ms: u64,
        holder_pid: Option<u32>,
        holder: String,
    },
    #[error("{path} is {kind}, not a regular file; refusing to {action} it", path = path.display())]
    NotRegularFile {
        path: PathBuf,
        kind: FileKind,
        action: &'static str,
    },
    #[error("{path} is {kind}, not a directory; refusing to follow it", path = path.display())]
    NotADirectory { path: PathBuf, kind: FileKind },
    #[error("{path} is larger than {limit} bytes; refusing to read it", path = path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`", path = path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("key file {path}: {reason}", path = path.display())]
    BadKey { path: PathBuf, reason: String },
    /// A file the log keeps beside its segments (the recovery record) does
    /// not parse: it is written whole by rename, so it was damaged or planted.
    #[error("{path}: {reason}", path = path.display())]
    Damaged { path: PathBuf, reason: String },
    /// `argus.json` parsed, but one of its fields cannot be used.
    #[error("{path}: field `{field}`: {reason}", path = path.display())]
    BadMeta {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },
    /// The operating system's random source failed; nothing was written
    /// that needed the random bytes.
    #[error("the operating system's random source failed while choosing {purpose}: {source}")]
    Random {
        purpose: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Serialising one of Argus's own documents failed (a bug, not input).
    #[error("encoding {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("segment {segment}: {source}")]
    Format {
        segment: String,
        #[source]
        source: FormatError,
    },
    /// A compressed segment (SPEC §12) whose layout or blocks are damaged:
    /// the offset is in the `.segz` file.
    #[error("{path}: damaged compressed segment at offset {offset}: {source}; run `argusctl verify`", path = path.display(), offset = source.offset())]
    Archive {
        path: PathBuf,
        #[source]
        source: log_format::ArchiveError,
    },
    #[error("segment {segment} offset {offset}: corruption in committed data ({cause}); not a torn tail: {proof}. Refusing to open; run `argusctl verify` for details")]
    Corrupt {
        segment: String,
        offset: u64,
        /// The invalid frame.
        cause: FormatError,
        /// Why the bytes after the damage prove it was committed (SPEC §7.2).
        proof: Proof,
    },
    /// A valid frame with wrong content (SPEC §7): a payload that does not
    /// match its hash, a broken chain, a seq gap. Never a torn write.
    #[error("segment {segment}: {fault}; refusing to read past it (run `argusctl verify`)")]
    Fault {
        segment: String,
        #[source]
        fault: log_format::Fault,
    },
    /// A segment the writer would resume from, or create, does not fit the
    /// log; the reason is typed so a caller can tell a foreign segment from
    /// a broken chain.
    #[error("segment {segment} offset {offset}: {reason}")]
    Inconsistent {
        segment: String,
        offset: u64,
        #[source]
        reason: Inconsistency,
    },
    /// Entry `entry` (1-based, within one `append` call) was refused before
    /// any seq was assigned; `problem` names the field and why.
    #[error("invalid entry: entry {entry}: {problem}")]
    InvalidEntry {
        entry: usize,
        #[source]
        problem: Problem,
    },
    /// The event registry compiled into this build does not load (a build
    /// defect; `registry_compiles` in the tests catches it).
    #[error("the built-in event registry is broken: {0}")]
    Registry(String),
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
    /// A key rotation (SPEC §4.7) refused, or its bookkeeping in argus.json
    /// is not what `key rotate` writes. Never holds key material.
    #[error("key rotation: {0}")]
    Rotation(String),
}

/// Why a segment does not fit where the writer finds it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Inconsistency {
    #[error("segment belongs to another log")]
    ForeignLog,
    #[error("header base seq {found} does not match file name")]
    BaseSeqMismatch { found: u64 },
    /// A valid frame with wrong content in the segment recovery walks.
    #[error("{0}")]
    Fault(log_format::Fault),
    #[error("segment file already exists")]
    SegmentExists,
}

impl Error {
    /// Entry `entry` was refused for `problem`; an authority refusal keeps
    /// its own variant, since a caller reacts to it differently.
    pub(crate) fn invalid(entry: usize, problem: Problem) -> Self {
        match problem {
            Problem::Unauthorized(source) => Self::Unauthorized { entry, source },
            problem => Self::InvalidEntry { entry, problem },
        }
    }

    /// A random-source failure, kept as an OS error where there is one.
    pub(crate) fn random(purpose: &'static str, e: getrandom::Error) -> Self {
        let source = e
            .raw_os_error()
            .map(std::io::Error::from_raw_os_error)
            .unwrap_or_else(|| std::io::Error::other(e.to_string()));
        Self::Random { purpose, source }
    }
}

/// "5 s", "0.2 s": how long a wait lasted, for messages.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
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
