//! One of the two places Argus uses `unsafe` (the other is
//! `cli/exec/sys.rs`): mapping sealed segments.
//!
//! Safety argument. `Mmap::map` is unsafe because the mapped bytes can
//! change, or vanish (SIGBUS), if the file is modified or truncated while
//! mapped; Rust's `&[u8]` promises neither happens. This module therefore
//! maps only what it has itself seen to be a sealed segment: a regular file
//! whose last bytes, read through the same open descriptor, are a CRC-valid
//! footer frame, and it maps exactly the length it checked. A sealed segment
//! is never modified by Argus: the writer never writes after a footer,
//! recovery truncates only the last segment and only after its last seal
//! (a segment with a footer has nothing after it to cut), and nothing
//! rewrites a segment in place. Another process that truncates or rewrites
//! a mapped file could still raise SIGBUS or change bytes under a reader;
//! that is outside the contract, as for any mmap-based reader, and such
//! changes are caught by the hashes readers check, not trusted.
//!
//! The active segment's *sealed prefix* is mapped too: its bytes up to the
//! end of a seal that the caller found signed and whole at the file's end.
//! The writer only appends after its last seal, and recovery truncates only
//! after the last whole seal (SPEC §7.2), so those bytes are as immutable as
//! a sealed segment's; the map never covers the bytes after that seal,
//! which a torn tail's recovery may cut.
//!
//! A compressed segment (`.segz`) is mapped whole for block-level reads:
//! written once under a temp name and renamed into place, never written
//! again.
//!
//! The unsafe function is private; the only ways in are [`map_if_sealed`],
//! [`map_sealed_prefix`] and [`map_compressed`], which check their
//! preconditions first. Only `RealFs`'s `ReadFile` (storage.rs) calls
//! them: readers ask their `Storage` for a map, never this module.
use crate::error::{IoContext, Result};
use log_format::frame::FRAME_HEADER_LEN;
use log_format::segment::FOOTER_LEN;
use log_format::FrameType;
use memmap2::{Mmap, MmapOptions};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Maps `file` if it is a sealed segment (ends in a valid footer), else
/// `None` and the caller reads it. `file` was opened by the caller without
/// following a link and checked to be a regular file; `path` only names it
/// in errors.
pub fn map_if_sealed(file: &File, path: &Path) -> Result<Option<Mmap>> {
    let len = file.metadata().at(path)?.len();
    if !ends_in_footer_at(file, path, len)? {
        return Ok(None);
    }
    // SAFETY: the precondition of `map_sealed` was just checked on this
    // descriptor, for this length.
    let map = unsafe { map_sealed(file, len) }.at(path)?;
    Ok(Some(map))
}

/// Maps the first `end` bytes of an active segment, which the caller has
/// shown to end in a whole, signed seal (reading through this descriptor).
/// `None` if the file is now shorter than that (it was replaced or cut
/// under the caller: read it instead).
pub fn map_sealed_prefix(file: &File, path: &Path, end: u64) -> Result<Option<Mmap>> {
    let len = file.metadata().at(path)?.len();
    if end == 0 || end > len {
        return Ok(None);
    }
    // SAFETY: the first `end` bytes end in a whole seal of this file, which
    // nothing in Argus modifies or truncates (module comment).
    let map = unsafe { map_sealed(file, end) }.at(path)?;
    Ok(Some(map))
}

/// Maps a compressed segment (`.segz`) whole. Compaction writes one under
/// a temp name, syncs it and renames it into place; nothing in Argus
/// writes to it afterwards (an erasure writes a new plain segment and
/// unlinks the compressed one, which leaves a map intact), so it is as
/// immutable as a sealed segment. Its contents are still judged: every
/// offset is bounds-checked and every frame decompressed from it is walked.
pub fn map_compressed(file: &File, path: &Path) -> Result<Option<Mmap>> {
    let len = file.metadata().at(path)?.len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: a compressed segment, which nothing in Argus modifies or
    // truncates (above and the module comment).
    let map = unsafe { map_sealed(file, len) }.at(path)?;
    Ok(Some(map))
}

/// Whether the `len`-byte file ends in a CRC-valid footer frame, read with
/// one pread on the descriptor that will be mapped.
fn ends_in_footer_at(file: &File, path: &Path, len: u64) -> Result<bool> {
    let n = (FRAME_HEADER_LEN + FOOTER_LEN) as u64;
    if len < n {
        return Ok(false);
    }
    let mut tail = vec![0u8; n as usize];
    file.read_exact_at(&mut tail, len - n).at(path)?;
    Ok(ends_in_footer(&tail))
}

/// True when `bytes` end in a CRC-valid footer frame.
pub(crate) fn ends_in_footer(bytes: &[u8]) -> bool {
    let n = FRAME_HEADER_LEN + FOOTER_LEN;
    bytes.len() >= n
        && matches!(
            log_format::frame::decode_frame(&bytes[bytes.len() - n..], 0),
            Ok(f) if f.frame_type == FrameType::Footer
        )
}

/// Maps the first `len` bytes of `file`, read-only.
///
/// # Safety
/// `file` must be a regular file whose first `len` bytes end in a valid
/// footer frame (a sealed segment), or in a whole signed seal of the active
/// segment, checked on this same descriptor, or be a compressed segment:
/// bytes nothing in Argus modifies or truncates (see the module comment).
unsafe fn map_sealed(file: &File, len: u64) -> std::io::Result<Mmap> {
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: the caller upholds this function's contract.
    unsafe { MmapOptions::new().len(len).map(file) }
}
