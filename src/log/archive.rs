//! Compaction's compression step: every sealed segment but the last is
//! rewritten as a compressed segment (SPEC §12) whose decompressed blocks
//! concatenate to the original bytes, so nothing hashed or signed changes.
//!
//! Crash safety comes from the order of the steps, each made durable before
//! the next: the compressed file is written under a `.tmp` name and synced,
//! read back from disk and compared with the original, renamed into place
//! (directory synced), and only then is the plain file removed (directory
//! synced). A crash at any point leaves the plain segment, or the
//! compressed one, or both, never neither; with both, the plain file is the
//! segment (SPEC §12) and the next run checks the pair and removes it.
//!
//! The caller holds the writer lock: no writer can roll a segment, cut a
//! torn tail or create a file while segments change form. Readers need no
//! lock: a reader that opened or mapped the plain file keeps reading it
//! after it is unlinked, and one that finds it gone finds the compressed
//! file, which was renamed into place first.
//!
//! Every file operation goes through the log's `Storage`, so the fault
//! simulator cuts the power between any two of them (tests/it/fault_sim).
use crate::error::{Error, IoContext, Result};
use crate::log::dir::LogDir;
use crate::log::lock::WriterLock;
use crate::log::storage;
use log_format::archive::{self, EncodeOptions};
use log_format::segment::segment_file_name;
use serde::Serialize;
use std::path::Path;

/// Test hook, read only here: `ARGUS_COMPACT_FAILPOINT=STEP` or `STEP:N`
/// makes the process abort (as a kill -9 would stop it) when it reaches
/// step `STEP` for the `N`th time (the first when `N` is absent). Steps:
/// `tmp_written` (compressed file synced under its temp name),
/// `renamed` (compressed file in place, plain file still there),
/// `removed` (plain file gone). The crash tests in tests/it/compact.rs
/// use it to stop compaction exactly between two steps.
pub const FAILPOINT_ENV: &str = "ARGUS_COMPACT_FAILPOINT";

/// How segments are compressed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArchiveOptions {
    pub encode: EncodeOptions,
}

/// What happened to one segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentOutcome {
    /// The plain segment's file name.
    pub segment: String,
    /// `compressed`, or `finished` (an interrupted run had already put
    /// the compressed file in place; the plain one was checked and removed).
    pub action: &'static str,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// bytes_after / bytes_before.
    pub ratio: f64,
}

/// What `compress_sealed` did to the log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchiveReport {
    pub segments: Vec<SegmentOutcome>,
    /// Segments that were already compressed.
    pub already_compressed: usize,
    /// The last segment, never compressed (the writer appends to it, or
    /// will start the next segment after it).
    pub active: Option<String>,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub ratio: f64,
}

fn ratio(after: u64, before: u64) -> f64 {
    if before == 0 {
        1.0
    } else {
        after as f64 / before as f64
    }
}

/// Compresses every sealed segment of the log in `root` except the last,
/// and finishes any compaction a crash interrupted. Idempotent: a second
/// run finds nothing to do. `_lock` is the writer lock of `root`, which
/// the caller took (so that other compaction steps can run under the same
/// hold).
pub fn compress_sealed(
    root: &Path,
    _lock: &WriterLock,
    opts: &ArchiveOptions,
) -> Result<ArchiveReport> {
    compress_sealed_on(&LogDir::new(root), _lock, opts)
}

/// `compress_sealed` with every file operation through `dir.storage`.
pub fn compress_sealed_on(
    dir: &LogDir,
    _lock: &WriterLock,
    opts: &ArchiveOptions,
) -> Result<ArchiveReport> {
    let root = &dir.root;
    let bases = dir.list_segments()?;
    let mut report = ArchiveReport::default();
    let Some((&last, sealed)) = bases.split_last() else {
        return Err(Error::NotALog {
            dir: root.clone(),
            reason: "no segment files in segments/".into(),
        });
    };
    report.active = Some(segment_file_name(last));
    for &base in sealed {
        match dir.segment_forms(base) {
            (false, true) => report.already_compressed += 1,
            (true, compressed) => {
                let out = compress_one(dir, base, compressed, opts)?;
                report.bytes_before += out.bytes_before;
                report.bytes_after += out.bytes_after;
                report.segments.push(out);
            }
            // Listed a moment ago: only another process could remove it,
            // and the lock says there is none that should.
            (false, false) => {
                return Err(Error::Damaged {
                    path: dir.segment_path(base),
                    reason: "the segment vanished during compaction".into(),
                })
            }
        }
    }
    report.ratio = ratio(report.bytes_after, report.bytes_before);
    Ok(report)
}

/// One plain segment to its compressed form. `leftover`: a compressed file
/// with the same base is already in place (an interrupted run).
fn compress_one(
    dir: &LogDir,
    base: u64,
    leftover: bool,
    opts: &ArchiveOptions,
) -> Result<SegmentOutcome> {
    let plain_path = dir.segment_path(base);
    let packed_path = dir.compressed_path(base);
    let name = segment_file_name(base);
    let s = &*dir.storage;
    let plain = s.load_segment(&plain_path)?;
    if !plain.is_sealed() {
        // Not the last segment, yet no footer: verify calls this damage.
        return Err(Error::Damaged {
            path: plain_path,
            reason: "a segment before the last does not end in a footer; refusing to compress it (run `argusctl verify`)".into(),
        });
    }
    let before = plain.len() as u64;
    if leftover {
        if let Some(after) = same_bytes(dir, &packed_path, &plain)? {
            remove_plain(dir, &plain_path)?;
            return Ok(SegmentOutcome {
                segment: name,
                action: "finished",
                bytes_before: before,
                bytes_after: after,
                ratio: ratio(after, before),
            });
        }
        // The plain file is the segment; the other is a damaged leftover.
        s.remove_file(&packed_path).at(&packed_path)?;
        s.sync_dir(&dir.segments_dir())?;
    }
    let packed = archive::encode(&plain, &opts.encode).map_err(|source| Error::Archive {
        path: plain_path.clone(),
        source,
    })?;
    let tmp = dir.segments_dir().join(format!(
        "{base:020}{}.tmp",
        crate::log::dir::COMPRESSED_SUFFIX
    ));
    let f = s.create_replacing(&tmp, 0o666)?;
    f.write_all_at(&packed, 0).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    drop(f);
    failpoint("tmp_written");
    // What is on disk, read back, must give back the segment exactly.
    if same_bytes(dir, &tmp, &plain)?.is_none() {
        let _ = s.remove_file(&tmp);
        return Err(Error::Damaged {
            path: tmp,
            reason: "the compressed file read back does not decompress to the segment's bytes; nothing was replaced".into(),
        });
    }
    s.rename(&tmp, &packed_path).at(&packed_path)?;
    s.sync_dir(&dir.segments_dir())?;
    failpoint("renamed");
    remove_plain(dir, &plain_path)?;
    failpoint("removed");
    let after = packed.len() as u64;
    Ok(SegmentOutcome {
        segment: name,
        action: "compressed",
        bytes_before: before,
        bytes_after: after,
        ratio: ratio(after, before),
    })
}

/// The compressed file's size if it decompresses to exactly `plain`;
/// `None` if it does not, or is damaged.
fn same_bytes(dir: &LogDir, packed_path: &Path, plain: &[u8]) -> Result<Option<u64>> {
    match storage::load_compressed(&*dir.storage, packed_path) {
        Ok((bytes, len)) if *bytes == *plain => Ok(Some(len)),
        Ok(_) | Err(Error::Archive { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_plain(dir: &LogDir, plain_path: &Path) -> Result<()> {
    dir.storage.remove_file(plain_path).at(plain_path)?;
    dir.storage.sync_dir(&dir.segments_dir())
}

/// Aborts here if the test hook names this step (see [`FAILPOINT_ENV`]).
fn failpoint(step: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static HITS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let Ok(spec) = std::env::var(FAILPOINT_ENV) else {
        return;
    };
    let (name, nth) = match spec.split_once(':') {
        Some((n, k)) => (n, k.parse::<u64>().unwrap_or(1)),
        None => (spec.as_str(), 1),
    };
    let slot = match step {
        "tmp_written" => 0,
        "renamed" => 1,
        _ => 2,
    };
    if name == step && HITS[slot].fetch_add(1, Ordering::SeqCst) + 1 == nth {
        std::process::abort();
    }
}
