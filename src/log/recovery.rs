//! Open-time recovery of the last segment.
//!
//! Everything after the last valid seal was never acknowledged (the writer
//! acks only once a covering seal is durable), so it may be cut. A bad frame
//! followed by any valid frame is corruption of committed data: refuse to
//! open and name the place, never truncate.
use crate::error::{Error, IoContext, Result};
use crate::log::dir::LogDir;
use crate::log::safe_fs::{self, Durability};
use log_format::entry::decode_entry;
use log_format::scan::ScanOutcome;
use log_format::segment::segment_file_name;
use log_format::{CompactRange, FrameType, Hash32, LogId, Seal, SegmentScan};

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
}

/// Writer state at the end of the durable part of the last segment.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub base_seq: u64,
    pub len: u64,
    pub next_seq: u64,
    pub last_hash: Hash32,
    pub range: CompactRange,
    pub last_ts_ns: u64,
    pub has_footer: bool,
    pub entries_in_segment: u64,
    /// Cuts not yet recorded in the log (this open's and any earlier one's).
    pub unrecorded: Vec<CutReport>,
}

/// Cut reports not yet recorded. A missing file means none; a file that is
/// not a regular file or is implausibly large is refused, not ignored.
fn read_pending(dir: &LogDir) -> Result<Vec<CutReport>> {
    let path = dir.root.join(PENDING_FILE);
    match safe_fs::read_capped(&path, safe_fs::SMALL_FILE_MAX) {
        Ok(b) => Ok(serde_json::from_slice(&b).unwrap_or_default()),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

fn write_pending(dir: &LogDir, reports: &[CutReport]) -> Result<()> {
    let path = dir.root.join(PENDING_FILE);
    let tmp = dir.root.join(format!("{PENDING_FILE}.tmp"));
    let bytes =
        serde_json::to_vec_pretty(reports).map_err(|e| Error::InvalidEntry(e.to_string()))?;
    safe_fs::write_whole(&tmp, &path, &bytes, 0o666, Durability::Synced)
}

/// Called once every pending cut is recorded in the log.
pub fn clear_pending(dir: &LogDir) -> Result<()> {
    let path = dir.root.join(PENDING_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(&path),
        _ => Ok(()),
    }
}

pub fn recover(dir: &LogDir, log_id: &LogId) -> Result<Recovered> {
    let bases = dir.list_segments()?;
    let Some(&base) = bases.last() else {
        return Err(Error::NotALog {
            dir: dir.root.clone(),
            reason: "no segment files in segments/".into(),
        });
    };
    let name = segment_file_name(base);
    let path = dir.segment_path(base);
    let buf = safe_fs::read_all(&path)?;
    let fmt = |source| Error::Format {
        segment: name.clone(),
        source,
    };
    let incons = |offset: u64, reason: String| Error::Inconsistent {
        segment: name.clone(),
        offset,
        reason,
    };
    let mut scan = SegmentScan::new(&buf).map_err(fmt)?;
    let h = &scan.header;
    if &h.log_id != log_id {
        return Err(incons(12, "segment belongs to another log".into()));
    }
    if h.base_seq != base {
        return Err(incons(
            28,
            format!("header base seq {} does not match file name", h.base_seq),
        ));
    }
    let mut st = Recovered {
        base_seq: base,
        len: scan.header_len as u64,
        next_seq: base,
        last_hash: h.prev_hash,
        range: h.frontier.clone(),
        last_ts_ns: 0,
        has_footer: false,
        entries_in_segment: 0,
        unrecorded: Vec::new(),
    };
    let mut pending = read_pending(dir)?;
    let mut recorded_ids: Vec<String> = Vec::new();
    let mut ids_unsealed: Vec<String> = Vec::new();
    // Running state; `st` holds the state at the last durable boundary.
    let (mut next, mut last, mut range, mut ts, mut n) =
        (st.next_seq, st.last_hash, st.range.clone(), 0u64, 0u64);
    for f in &mut scan.frames {
        if st.has_footer {
            return Err(incons(f.offset, "frame after the segment footer".into()));
        }
        match f.frame_type {
            FrameType::Entry => {
                let v = decode_entry(f.body, f.body_offset()).map_err(fmt)?;
                if v.seq != next || v.prev != last {
                    return Err(incons(
                        f.offset,
                        format!(
                            "entry seq {} does not continue the chain at seq {next}",
                            v.seq
                        ),
                    ));
                }
                if v.kind == "log.recovered" {
                    if let Ok(p) = serde_json::from_slice::<serde_json::Value>(v.payload) {
                        if let Some(id) = p.get("recovery_id").and_then(|x| x.as_str()) {
                            ids_unsealed.push(id.to_string());
                        }
                    }
                }
                let eh = v.hash();
                range.push(&eh);
                last = eh;
                next += 1;
                n += 1;
                ts = ts.max(v.ts_ns);
            }
            FrameType::Seal => {
                let s = Seal::decode(f.body, f.body_offset()).map_err(fmt)?;
                if s.tree_size != next || s.root != range.root() {
                    return Err(incons(
                        f.offset,
                        format!(
                            "seal for tree size {} does not match the entries before it",
                            s.tree_size
                        ),
                    ));
                }
                st.len = f.end();
                st.next_seq = next;
                st.last_hash = last;
                st.range = range.clone();
                st.last_ts_ns = ts.max(s.ts_ns);
                st.entries_in_segment = n;
                recorded_ids.append(&mut ids_unsealed);
            }
            FrameType::Footer => {
                if st.len != f.offset {
                    return Err(incons(
                        f.offset,
                        "footer does not directly follow a seal".into(),
                    ));
                }
                st.len = f.end();
                st.has_footer = true;
            }
        }
    }
    let reason = match scan.frames.outcome() {
        ScanOutcome::Corrupt {
            offset,
            error,
            next_valid,
        } => {
            return Err(Error::Corrupt {
                segment: name,
                offset,
                next_valid,
                reason: error.to_string(),
            })
        }
        ScanOutcome::TornTail { error, .. } => format!("torn tail: {error}"),
        ScanOutcome::Clean => "unsealed entries after the last seal".to_string(),
    };
    // Only ids in sealed entries count as recorded: anything after the last
    // seal is about to be cut.
    pending.retain(|r| !recorded_ids.contains(&r.recovery_id));
    let file_len = buf.len() as u64;
    if file_len > st.len {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| Error::InvalidEntry(e.to_string()))?;
        pending.push(CutReport {
            recovery_id: hex::encode(id),
            segment: name,
            offset: st.len,
            bytes_cut: file_len - st.len,
            seq_from: (next > st.next_seq).then_some(st.next_seq),
            seq_to: (next > st.next_seq).then(|| next - 1),
            reason,
        });
        // Record the cut durably first, then cut.
        write_pending(dir, &pending)?;
        let f = safe_fs::open_write(&path)?;
        f.set_len(st.len).at(&path)?;
        f.sync_all().at(&path)?;
    }
    st.unrecorded = pending;
    Ok(st)
}
