//! Sparse seq → offset index for sealed segments. A cache, never the truth:
//! a missing or damaged index is rebuilt from the segment.
use crate::error::Result;
use crate::log::safe_fs::Durability;
use crate::log::storage::{self, Storage};
use std::path::Path;

const MAGIC: &[u8; 8] = b"ARGUSIDX";
/// One 16-byte pair per 16 entries of a sealed segment (256 or 4096 in
/// older logs, which still read): 64 MiB indexes a segment of 67 million
/// entries, a 4 GiB segment (the most a reader accepts) of 64-byte frames.
const INDEX_BYTES_MAX: u64 = 64 << 20;

pub fn write(path: &Path, pairs: &[(u64, u64)]) -> Result<()> {
    write_through(storage::real().as_ref(), path, pairs)
}

/// `write` through the writer's `Storage`.
pub fn write_through(storage: &dyn Storage, path: &Path, pairs: &[(u64, u64)]) -> Result<()> {
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
    storage.write_whole(&tmp, path, &out, 0o666, Durability::Cache)
}

/// Reads an index; `None` if it is missing, is not a regular file, is
/// implausibly large or fails its checksum (the caller then rebuilds it).
pub fn read(path: &Path) -> Option<Vec<(u64, u64)>> {
    read_through(storage::real().as_ref(), path)
}

/// `read` through a `Storage` (the writer's, or a reader's).
pub fn read_through(storage: &dyn Storage, path: &Path) -> Option<Vec<(u64, u64)>> {
    let b = storage.read_capped(path, INDEX_BYTES_MAX).ok()?;
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
