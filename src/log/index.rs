//! Sparse seq → offset index for sealed segments. A cache, never the truth:
//! a missing or damaged index is rebuilt from the segment.
use crate::error::{IoContext, Result};
use std::path::Path;

const MAGIC: &[u8; 8] = b"ARGUSIDX";

pub fn write(path: &Path, pairs: &[(u64, u64)]) -> Result<()> {
    let mut out = Vec::with_capacity(12 + pairs.len() * 16);
    out.extend_from_slice(MAGIC);
    for (seq, off) in pairs {
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&off.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    // Unique temp name: two readers may rebuild the same index at once.
    let tmp = path.with_extension(format!("idx.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &out).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// Reads an index; `None` if it is missing or fails its checksum.
pub fn read(path: &Path) -> Option<Vec<(u64, u64)>> {
    let b = std::fs::read(path).ok()?;
    if b.len() < 12 || &b[..8] != MAGIC || (b.len() - 12) % 16 != 0 {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    Some(
        body[8..]
            .chunks_exact(16)
            .map(|c| {
                let mut s = [0u8; 8];
                let mut o = [0u8; 8];
                s.copy_from_slice(&c[..8]);
                o.copy_from_slice(&c[8..]);
                (u64::from_le_bytes(s), u64::from_le_bytes(o))
            })
            .collect(),
    )
}

/// The indexed (seq, offset) at or before `seq`, if any.
pub fn seek_point(pairs: &[(u64, u64)], seq: u64) -> Option<(u64, u64)> {
    let i = pairs.partition_point(|(s, _)| *s <= seq);
    i.checked_sub(1).map(|i| pairs[i])
}
