//! Read-ahead hints for the few pages every reader of a log touches first.
//!
//! A reader's first questions about a segment form a chain of dependent
//! reads: its footer, its sparse index, and only then the entries asked
//! for. On a disk where one read waits 17–21 ms (docs/PERFORMANCE.md,
//! replay), that chain, not the work, set the time of a cold `replay`.
//! Asking for the index file while the footer is read makes two round
//! trips one; asking for every segment's footer and index while the
//! projection store opens (`hint_sealed`, for replay) overlaps that round
//! trip with the store's own. Hints only: a file that is gone, is not a regular file, or
//! refuses the hint is skipped, and nothing read here is trusted (the
//! reads that follow check every byte as before).
use super::dir::LogDir;
use std::path::Path;

/// Past this many segments `hint_sealed` hints nothing: the hints are
/// cheap (an open and one fadvise per file, a few KiB read ahead), but a
/// question about a few entries should not touch every file of a huge log.
const HINTED_SEGMENTS_MAX: usize = 64;

/// The tail of a sealed segment a reader reads first: a plain one's footer,
/// a compressed one's trailer and block index (32 bytes per block; a
/// 64 MiB segment in 64 KiB blocks has a 32 KiB index).
const FOOTER_TAIL: u64 = 4 << 10;
const PACKED_TAIL: u64 = 64 << 10;

/// For a reader about to ask for entries scattered over the log (replay):
/// hints every sealed segment's footer and index file before it knows which
/// segments hold them, so those reads overlap with its other start-up work
/// instead of starting after it. The active (last) segment is left out:
/// the reader loads it first anyway.
pub fn hint_sealed(dir: &LogDir) {
    let Ok(bases) = dir.list_segments() else {
        return;
    };
    if bases.len() > HINTED_SEGMENTS_MAX {
        return;
    }
    for &base in bases.iter().take(bases.len().saturating_sub(1)) {
        hint_index(dir, base);
        if !hint(dir, &dir.segment_path(base), Some(FOOTER_TAIL)) {
            hint(dir, &dir.compressed_path(base), Some(PACKED_TAIL));
        }
    }
}

/// Hints segment `base`'s sparse index file, whole (16 bytes per 256
/// entries): a reader needs it right after the segment's footer.
pub fn hint_index(dir: &LogDir, base: u64) {
    let _ = hint(dir, &dir.index_path(base), None);
}

/// Asks for the last `tail` bytes of `path` (all of it with `None`)
/// through the log's storage (`RealFs`: `posix_fadvise`; a storage
/// without a page cache hints nothing); whether the file could be opened.
fn hint(dir: &LogDir, path: &Path, tail: Option<u64>) -> bool {
    dir.storage.read_ahead(path, tail)
}
