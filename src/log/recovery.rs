//! Open-time recovery of the last segment.
//!
//! Everything after the last valid seal was never acknowledged (the writer
//! acks only once a covering seal is durable), so it may be cut. A bad frame
//! followed by any valid frame is corruption of committed data: refuse to
//! open and name the place, never truncate.
use crate::error::{Error, Inconsistency, IoContext, Result};
use crate::log::dir::LogDir;
use crate::log::safe_fs::{self, Durability};
use log_format::segment::segment_file_name;
use log_format::tail::FoundSeal;
use log_format::walk::{ChainWalk, Checks, Item};
use log_format::{CompactRange, EntryView, Hash32, LogId, SealKey, SegmentHeader, Tail};
use std::path::Path;

/// Cut reports written before the truncation they describe, so a crash
/// between cutting and appending `log.recovered` cannot lose the record.
pub const PENDING_FILE: &str = "recovery.pending.json";

/// What recovery cut, for the `log.recovered` entry.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CutReport {
    /// Random id that lets a later open tell whether this cut is already recorded.
    pub recovery_id: String,
    pub segment: String,
    pub offset: u64,
    pub bytes_cut: u64,
    /// First and last seq of unsealed entries that were cut, if any decoded.
    pub seq_from: Option<u64>,
    pub seq_to: Option<u64>,
    pub reason: String,
    /// Set when the cut bytes held a validly signed seal (SPEC §7.2 row 2):
    /// under the fault model that commit was never durable, but an operator
    /// should compare with a trusted checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_seal_tree_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_seal_offset: Option<u64>,
}

/// Writer state at the end of the durable part of the last segment.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub base_seq: u64,
    pub len: u64,
    pub next_seq: u64,
    pub last_hash: Hash32,
    pub range: CompactRange,
    /// Time of the last sealed entry (or of the last seal, if the segment
    /// holds no entry): what the writer's clock is first judged against.
    pub last_ts_ns: Option<u64>,
    pub has_footer: bool,
    pub entries_in_segment: u64,
    /// Cuts not yet recorded in the log (this open's and any earlier one's).
    pub unrecorded: Vec<CutReport>,
}

/// Cut reports not yet recorded. A missing file means none; a file that is
/// not a regular file or is implausibly large is refused, not ignored.
fn read_pending(dir: &LogDir) -> Result<Vec<CutReport>> {
    let path = dir.root.join(PENDING_FILE);
    match dir.storage.read_capped(&path, safe_fs::SMALL_FILE_MAX) {
        // Written whole by rename, so a file that does not parse was damaged
        // or planted: refusing to open is better than forgetting a cut that
        // was never recorded in the log.
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Damaged {
            path: path.clone(),
            reason: format!(
                "unrecorded recovery cuts do not parse ({e}); move the file aside to open the log without them"
            ),
        }),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

fn write_pending(dir: &LogDir, reports: &[CutReport]) -> Result<()> {
    let path = dir.root.join(PENDING_FILE);
    let tmp = dir.root.join(format!("{PENDING_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(reports).map_err(|source| Error::Encode {
        what: PENDING_FILE,
        source,
    })?;
    dir.storage
        .write_whole(&tmp, &path, &bytes, 0o666, Durability::Synced)
}

/// Called once every pending cut is recorded in the log.
pub fn clear_pending(dir: &LogDir) -> Result<()> {
    let path = dir.root.join(PENDING_FILE);
    match dir.storage.remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(&path),
        _ => Ok(()),
    }
}

/// Walks the last segment to its last valid seal and cuts anything after
/// it that SPEC §7.2 judges a torn tail (or unsealed entries), recording the
/// cut durably first. Damage that proves committed data was lost refuses to
/// open.
pub fn recover(dir: &LogDir, log_id: &LogId, key: &SealKey<'_>) -> Result<Recovered> {
    let (base, buf) = load_last_segment(dir)?;
    let name = segment_file_name(base);
    // Recovery needs the chain and the Merkle range to resume writing; the
    // payload hashes and seal signatures are `verify`'s to check.
    let checks = Checks {
        chain: true,
        merkle: true,
        ..Checks::default()
    };
    let (h, mut walk) = ChainWalk::segment(&buf, checks).map_err(|source| Error::Format {
        segment: name.clone(),
        source,
    })?;
    check_header(&name, &h, base, log_id)?;
    let mut pending = read_pending(dir)?;
    let (mut st, recorded_ids) = walk_to_last_seal(&name, &h, &mut walk)?;
    let (reason, signed_seal) = judge_tail(&name, &walk, key)?;
    // The cut loses the unsealed entries walked, or, when the torn bytes
    // held a signed seal, every entry that seal covered.
    let lost_to = walk
        .state()
        .next_seq
        .max(signed_seal.map_or(0, |s| s.tree_size));
    // Only ids in sealed entries count as recorded: anything after the last
    // seal is about to be cut.
    pending.retain(|r| !recorded_ids.contains(&r.recovery_id));
    let file_len = buf.len() as u64;
    if file_len > st.len {
        // A report already pending for a cut at this very offset is this
        // cut, made durable by an open that crashed before it truncated:
        // the cut is recorded once, under the report written first.
        let already = pending
            .iter()
            .any(|r| r.segment == name && r.offset == st.len);
        if !already {
            let mut id = [0u8; 8];
            getrandom::fill(&mut id).map_err(|e| Error::random("a recovery id", e))?;
            pending.push(CutReport {
                recovery_id: hex::encode(id),
                segment: name,
                offset: st.len,
                bytes_cut: file_len - st.len,
                seq_from: (lost_to > st.next_seq).then_some(st.next_seq),
                seq_to: (lost_to > st.next_seq).then(|| lost_to - 1),
                reason,
                signed_seal_tree_size: signed_seal.map(|s| s.tree_size),
                signed_seal_offset: signed_seal.map(|s| s.offset),
            });
        }
        cut(dir, &dir.segment_path(base), st.len, &pending)?;
    }
    st.unrecorded = pending;
    Ok(st)
}

/// The last segment's base seq and bytes.
fn load_last_segment(dir: &LogDir) -> Result<(u64, Vec<u8>)> {
    let bases = dir.list_segments()?;
    let Some(&base) = bases.last() else {
        return Err(Error::NotALog {
            dir: dir.root.clone(),
            reason: "no segment files in segments/".into(),
        });
    };
    if let (false, true) = dir.segment_forms(base) {
        // Compaction never compresses the last segment (SPEC §12), so the
        // segments after this one are missing.
        return Err(Error::NotALog {
            dir: dir.root.clone(),
            reason: format!(
                "the last segment, {}, is compressed: compaction never compresses the last segment, so the segments after it are missing (run `argusctl verify`)",
                segment_file_name(base).replace(".seg", crate::log::dir::COMPRESSED_SUFFIX)
            ),
        });
    }
    Ok((base, dir.storage.read_all(&dir.segment_path(base))?))
}

/// The header belongs to this log and to this file name.
fn check_header(name: &str, h: &SegmentHeader, base: u64, log_id: &LogId) -> Result<()> {
    let incons = |offset: u64, reason: Inconsistency| Error::Inconsistent {
        segment: name.to_string(),
        offset,
        reason,
    };
    if &h.log_id != log_id {
        return Err(incons(12, Inconsistency::ForeignLog));
    }
    if h.base_seq != base {
        return Err(incons(
            28,
            Inconsistency::BaseSeqMismatch { found: h.base_seq },
        ));
    }
    Ok(())
}

/// Walks every valid frame; returns the writer state at the last seal (or
/// footer) and the recovery ids of `log.recovered` entries that a seal
/// covers. A valid frame with wrong content is an error naming its fault.
fn walk_to_last_seal(
    name: &str,
    h: &SegmentHeader,
    walk: &mut ChainWalk<'_, '_>,
) -> Result<(Recovered, Vec<String>)> {
    let mut st = Recovered {
        base_seq: h.base_seq,
        len: walk.offset(),
        next_seq: h.base_seq,
        last_hash: h.prev_hash,
        range: h.frontier.clone(),
        last_ts_ns: None,
        has_footer: false,
        entries_in_segment: 0,
        unrecorded: Vec::new(),
    };
    let mut recorded_ids: Vec<String> = Vec::new();
    let mut ids_unsealed: Vec<String> = Vec::new();
    let mut last_entry_ts: Option<u64> = None;
    while let Some(item) = walk.next() {
        let item = item.map_err(|f| Error::Inconsistent {
            segment: name.to_string(),
            offset: f.offset(),
            reason: Inconsistency::Fault(f),
        })?;
        match item {
            Item::Entry { entry: v, .. } => {
                if let Some(id) = recovery_id(&v) {
                    ids_unsealed.push(id);
                }
                last_entry_ts = Some(v.ts_ns);
            }
            Item::Seal { seal, end, .. } => {
                let c = walk.state();
                st.len = end;
                st.next_seq = c.next_seq;
                st.last_hash = c.last_hash.unwrap_or(h.prev_hash);
                st.range = c.range.clone();
                st.last_ts_ns = last_entry_ts.or(Some(seal.ts_ns));
                st.entries_in_segment = c.entries;
                recorded_ids.append(&mut ids_unsealed);
            }
            Item::Footer { end, .. } => {
                st.len = end;
                st.has_footer = true;
            }
        }
    }
    Ok((st, recorded_ids))
}

/// The `recovery_id` a `log.recovered` entry records, if it is one.
fn recovery_id(v: &EntryView<'_>) -> Option<String> {
    if v.kind != "log.recovered" {
        return None;
    }
    let p = serde_json::from_slice::<serde_json::Value>(v.payload).ok()?;
    p.get("recovery_id")?.as_str().map(str::to_string)
}

/// Why the bytes after the last seal may be cut, and the signed seal they
/// held if any (SPEC §7.2 row 2); corruption of committed data is an error.
fn judge_tail(
    name: &str,
    walk: &ChainWalk<'_, '_>,
    key: &SealKey<'_>,
) -> Result<(String, Option<FoundSeal>)> {
    match walk.tail(key) {
        Tail::Corrupt {
            offset,
            cause,
            proof,
        } => Err(Error::Corrupt {
            segment: name.to_string(),
            offset,
            cause,
            proof,
        }),
        Tail::Torn {
            cause, signed_seal, ..
        } => Ok((format!("torn tail: {cause}"), signed_seal)),
        Tail::Clean => Ok(("unsealed entries after the last seal".to_string(), None)),
    }
}

/// Records the cut durably first (`pending`), then truncates `path` to `len`.
fn cut(dir: &LogDir, path: &Path, len: u64, pending: &[CutReport]) -> Result<()> {
    write_pending(dir, pending)?;
    let f = dir.storage.open_write(path)?;
    f.set_len(len).at(path)?;
    f.sync_all().at(path)
}
