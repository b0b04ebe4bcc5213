//! The full-text retrieval index (`argusctl search`): a projection of the
//! log kept in tantivy instead of the projection store.
//!
//! Like every projection it is never the truth and always disposable: it is
//! built by folding sealed entries in seq order, it resumes from a
//! checkpoint (the next seq and the hash of the last entry indexed, stored
//! in the tantivy commit itself, so index and checkpoint cannot disagree),
//! and a checkpoint that does not match the log rebuilds it from seq 0.
//! A hit is only a pointer: the entry is re-read from the log and its
//! payload hash compared with the one indexed before anything is shown
//! (`query::Hit::stored_payload_hash`).
//!
//! Layout: `schema.rs` names the fields; `text.rs` turns a payload into the
//! words indexed and a snippet; `inject.rs` is the prompt-injection scan;
//! `checkpoint.rs` the commit payload; `index.rs` opens the index (on disk,
//! or in memory when the log directory is read-only) and catches it up;
//! `query.rs` answers; `flags.rs` says which flagged entries still lack
//! their `research.injection_flagged` record. tantivy is named only in
//! `schema.rs`, `index.rs`, `query.rs`, `flags.rs` and `SearchError`.
pub mod checkpoint;
pub mod flags;
pub mod index;
pub mod inject;
pub mod query;
pub mod schema;
pub mod text;

pub use index::{Backing, CatchUp, SearchIndex};
pub use inject::Scanner;
pub use query::{Filters, Hit};

use std::path::PathBuf;

/// The kind Argus writes when a scanned entry matches an injection pattern.
pub const FLAG_KIND: &str = "research.injection_flagged";

/// Kinds whose payloads carry text fetched from outside (web pages, tool
/// output) and are therefore scanned for prompt injection (seed §4.15).
pub const SCANNED_KINDS: &[&str] = &["research.evidence_stored", "tool.call_completed"];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Log(#[from] crate::Error),
    #[error("search index in {path} is in use by another argusctl process (waited {waited_s} s); retry when it finishes")]
    Busy { path: PathBuf, waited_s: u64 },
    /// The query text does not parse; the message names the problem.
    #[error("bad query: {0}")]
    Query(String),
    /// An injection pattern (built-in or configured) does not compile.
    #[error("injection pattern {name:?}: {reason}")]
    Pattern { name: String, reason: String },
    #[error("search index in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
