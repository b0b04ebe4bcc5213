//! The one place Argus uses `unsafe`: mapping sealed segments.
//!
//! Safety argument: only segments that end in a valid footer are mapped.
//! The writer never modifies a sealed segment, recovery only truncates bytes
//! *after* a footer (which readers never touch, they stop at the footer), and
//! nothing in Argus rewrites a segment in place. Another process that
//! truncates a mapped file could still raise SIGBUS; that is outside the
//! contract, as for any mmap-based reader.
use crate::error::{IoContext, Result};
use memmap2::Mmap;
use std::fs::File;
use std::path::Path;

/// Maps `file`, already opened (and checked to be a regular file) by the
/// caller; `path` only names it in errors.
pub fn map_sealed(file: &File, path: &Path) -> Result<Mmap> {
    // SAFETY: see the module comment; the mapping is read-only and the
    // segment is immutable once its footer is written.
    unsafe { Mmap::map(file) }.at(path)
}
