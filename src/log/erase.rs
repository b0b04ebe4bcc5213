//! Compaction's erase step: the payload bytes of every redacted entry are
//! overwritten with zeros (SPEC §4.2.1) in sealed segments.
//!
//! A sealed segment is never written in place: readers map it and rely on
//! it not changing under them (`mmap.rs`). Each segment that needs erasing
//! is copied whole to `NAME.seg.erase.tmp`, synced, renamed over the
//! original and the directory synced, so a crash leaves the old segment or
//! the new one, never a mix, and a reader holding the old map keeps
//! reading the old inode. The active segment (no footer yet) is left
//! alone: its erasures are reported pending until it is sealed.
//!
//! Compaction takes the writer lock, so it never runs beside a writer
//! (argusd or an append holds it for as long as it writes): two compactions
//! cannot race on one temp file, and which segment is active cannot change
//! under it.
//!
//! The rewrite goes through the log's `Storage` (every read, write, sync,
//! rename and unlink), so the fault simulator cuts the power between any
//! two of them; finding the redactions is a read through `LogReader`.
use crate::error::{Error, IoContext, Result};
use crate::log::dir::LogDir;
use crate::log::lock::WriterLock;
use crate::log::reader::{LogReader, SegmentBytes};
use crate::log::redactions::{erasable, Redaction, Redactions};
use crate::log::storage::SegmentMap;
use log_format::erase::{erase_payload, Erased};
use log_format::segment::segment_file_name;
use log_format::walk::{ChainWalk, Checks, Item};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What one run did, entry by entry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EraseReport {
    /// Payloads zeroed by this run.
    pub erased: Vec<Erasure>,
    /// Payloads a previous run already zeroed (compaction is idempotent).
    pub already: Vec<Erasure>,
    /// Redacted entries in the active segment: erased once it is sealed.
    pub pending: Vec<Erasure>,
    /// Redactions this run will not act on, with why.
    pub skipped: Vec<Skipped>,
    /// Segment files rewritten.
    pub segments_rewritten: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Erasure {
    pub seq: u64,
    pub by_seq: u64,
    pub segment: String,
    /// File offset of the entry's frame.
    pub offset: u64,
    pub payload_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub seq: u64,
    pub by_seq: u64,
    pub why: String,
}

/// Erases the payloads of every redacted entry in the sealed segments of
/// the log in `root`, waiting up to `lock_wait` for the writer lock.
/// The caller holds the writer lock (`_lock`), so no writer can seal,
/// roll or recover a segment while this rewrites it.
pub fn erase_redacted(root: &Path, lock: &WriterLock) -> Result<EraseReport> {
    let reader = LogReader::open(root)?;
    erase_redacted_on(&LogDir::new(root), &reader, lock)
}

/// `erase_redacted` with the redactions found by `reader` (over the same
/// log) and every segment read and rewrite through `dir.storage`.
pub fn erase_redacted_on(
    dir: &LogDir,
    reader: &LogReader,
    _lock: &WriterLock,
) -> Result<EraseReport> {
    let redactions = Redactions::scan(reader, 0)?;
    let mut by_segment: BTreeMap<u64, Vec<&Redaction>> = BTreeMap::new();
    for r in redactions.iter() {
        let i = reader.bases.partition_point(|b| *b <= r.target_seq);
        if let Some(&base) = i.checked_sub(1).and_then(|i| reader.bases.get(i)) {
            by_segment.entry(base).or_default().push(r);
        }
    }
    let mut report = EraseReport::default();
    for (base, wanted) in by_segment {
        erase_in_segment(dir, base, &wanted, &mut report)?;
    }
    Ok(report)
}

/// Erases `wanted` in segment `base`, rewriting it once if anything changed.
fn erase_in_segment(
    dir: &LogDir,
    base: u64,
    wanted: &[&Redaction],
    report: &mut EraseReport,
) -> Result<()> {
    let name = segment_file_name(base);
    // A compressed segment (an earlier compaction) is erased in its
    // original bytes, written back plain; compression then runs again.
    let mut bytes = match load_segment(dir, base)? {
        SegmentBytes::Owned(v)
        | SegmentBytes::Decompressed(v)
        | SegmentBytes::Mapped(SegmentMap::Copied(v)) => v,
        other => other.to_vec(),
    };
    let (targets, sealed) = locate(&name, &bytes, wanted)?;
    let mut changed = false;
    for r in wanted {
        let Some(&(offset, kind_ok, payload_bytes)) = targets.get(&r.target_seq) else {
            report
                .skipped
                .push(skip(r, "not a sealed entry of this log"));
            continue;
        };
        let e = Erasure {
            seq: r.target_seq,
            by_seq: r.by_seq,
            segment: name.clone(),
            offset,
            payload_bytes,
        };
        if !kind_ok {
            report
                .skipped
                .push(skip(r, "its kind is not erasable (only agents' kinds are)"));
            continue;
        }
        if !sealed {
            report.pending.push(e);
            continue;
        }
        let frame = usize::try_from(offset)
            .ok()
            .and_then(|o| bytes.get_mut(o..))
            .ok_or_else(|| Error::Format {
                segment: name.clone(),
                source: log_format::FormatError::Truncated {
                    what: "entry frame",
                    offset,
                    need: 1,
                    have: 0,
                },
            })?;
        match erase_payload(frame, offset, r.target_seq, &r.payload_hash) {
            Ok(Erased::Now) => {
                changed = true;
                report.erased.push(e);
            }
            Ok(Erased::Already) => report.already.push(e),
            Err(err) => report.skipped.push(skip(r, &err.to_string())),
        }
    }
    if changed {
        replace_segment(dir, base, &bytes)?;
        report.segments_rewritten.push(name);
    }
    Ok(())
}

fn skip(r: &Redaction, why: &str) -> Skipped {
    Skipped {
        seq: r.target_seq,
        by_seq: r.by_seq,
        why: why.to_string(),
    }
}

/// Offsets of the wanted entries (with whether their kind is erasable and
/// their payload length), and whether the segment is sealed (ends in its
/// footer). The segment is walked with the chain and payload checks first:
/// a damaged segment is refused, never rewritten.
type Targets = BTreeMap<u64, (u64, bool, u64)>;

fn locate(name: &str, bytes: &[u8], wanted: &[&Redaction]) -> Result<(Targets, bool)> {
    let checks = Checks {
        chain: true,
        payload: true,
        erased: true,
        ..Checks::default()
    };
    let (_, walk) = ChainWalk::segment(bytes, checks).map_err(|source| Error::Format {
        segment: name.to_string(),
        source,
    })?;
    let mut targets = Targets::new();
    let mut sealed = false;
    for item in walk {
        match item.map_err(|fault| Error::Fault {
            segment: name.to_string(),
            fault,
        })? {
            Item::Entry { entry, offset, .. } => {
                if wanted.iter().any(|r| r.target_seq == entry.seq) {
                    let e = (offset, erasable(entry.kind), entry.payload.len() as u64);
                    targets.insert(entry.seq, e);
                }
            }
            Item::Seal { .. } => {}
            Item::Footer { end, .. } => sealed = end == bytes.len() as u64,
        }
    }
    Ok((targets, sealed))
}

/// Segment `base` in whichever form it is stored, through the storage;
/// the plain file wins when both exist (SPEC §12), as `reader::load_segment`.
fn load_segment(dir: &LogDir, base: u64) -> Result<SegmentBytes> {
    match dir.storage.load_segment(&dir.segment_path(base)) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            dir.storage.load_segment(&dir.compressed_path(base))
        }
        other => other,
    }
}

/// Replaces segment `base` with `bytes`, whole or not at all.
fn replace_segment(dir: &LogDir, base: u64, bytes: &[u8]) -> Result<()> {
    let s = &*dir.storage;
    let path = dir.segment_path(base);
    let tmp = dir
        .segments_dir()
        .join(format!("{}.erase.tmp", segment_file_name(base)));
    // A temp file a crashed run left (or a planted link) is unlinked, then
    // created exclusively, never through a link.
    let f = s.create_replacing(&tmp, 0o666)?;
    f.write_all_at(bytes, 0).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    drop(f);
    s.rename(&tmp, &path).at(&path)?;
    s.sync_dir(&dir.segments_dir())?;
    // The plain file now wins over a compressed copy (SPEC §12); the copy
    // still holds the erased bytes, so it goes.
    let packed = dir.compressed_path(base);
    match s.remove_file(&packed) {
        Ok(()) => s.sync_dir(&dir.segments_dir()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at(&packed),
    }
}
