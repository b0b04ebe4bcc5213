//! Open-time recovery of the last segment.
//!
//! Everything after the last valid seal was never acknowledged (the writer
//! acks only once a covering seal is durable), so it may be cut. A bad frame
//! followed by any valid frame is corruption of committed data: refuse to
//! open and name the place, never truncate.
use crate::error::{Error, IoContext, Result};
use crate::log::dir::LogDir;
use crate::log::safe_fs::{self, Durability};
use ed25519_dalek::VerifyingKey;
use log_format::segment::segment_file_name;
use log_format::walk::{ChainWalk, Checks, Item};
use log_format::{CompactRange, Hash32, LogId, SealKey, Tail};

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

pub fn recover(dir: &LogDir, log_id: &LogId, key: &VerifyingKey) -> Result<Recovered> {
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
    let incons = |offset: u64, reason: String| Error::Inconsistent {
        segment: name.clone(),
        offset,
        reason,
    };
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
        len: walk.offset(),
        next_seq: base,
        last_hash: h.prev_hash,
        range: h.frontier.clone(),
        last_ts_ns: None,
        has_footer: false,
        entries_in_segment: 0,
        unrecorded: Vec::new(),
    };
    let mut pending = read_pending(dir)?;
    let mut recorded_ids: Vec<String> = Vec::new();
    let mut ids_unsealed: Vec<String> = Vec::new();
    let mut last_entry_ts: Option<u64> = None;
    while let Some(item) = walk.next() {
        match item.map_err(|f| incons(f.offset(), f.to_string()))? {
            Item::Entry { entry: v, .. } => {
                if v.kind == "log.recovered" {
                    if let Ok(p) = serde_json::from_slice::<serde_json::Value>(v.payload) {
                        if let Some(id) = p.get("recovery_id").and_then(|x| x.as_str()) {
                            ids_unsealed.push(id.to_string());
                        }
                    }
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
    let walked_to = walk.state().next_seq;
    let seal_key = SealKey::new(*log_id, key);
    let (reason, signed_seal) = match walk.tail(&seal_key) {
        Tail::Corrupt {
            offset,
            cause,
            proof,
        } => {
            return Err(Error::Corrupt {
                segment: name,
                offset,
                reason: cause.to_string(),
                proof: proof.to_string(),
            })
        }
        Tail::Torn {
            cause, signed_seal, ..
        } => (format!("torn tail: {cause}"), signed_seal),
        Tail::Clean => ("unsealed entries after the last seal".to_string(), None),
    };
    // The cut loses the unsealed entries walked, or, when the torn bytes
    // held a signed seal, every entry that seal covered.
    let lost_to = walked_to.max(signed_seal.map_or(0, |s| s.tree_size));
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
            seq_from: (lost_to > st.next_seq).then_some(st.next_seq),
            seq_to: (lost_to > st.next_seq).then(|| lost_to - 1),
            reason,
            signed_seal_tree_size: signed_seal.map(|s| s.tree_size),
            signed_seal_offset: signed_seal.map(|s| s.offset),
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
