//! Segment header and footer. The header links a segment to its predecessor
//! (prev entry hash, base seq, Merkle frontier) so a missing, reordered or
//! foreign segment is detectable from the files alone.
use crate::error::FormatError;
use crate::hash::Hash32;
use crate::merkle::CompactRange;
use crate::{LogId, FORMAT_VERSION};

pub const SEGMENT_MAGIC: [u8; 8] = *b"ARGUSSEG";
/// Bytes of the header before the frontier hashes.
pub const HEADER_FIXED_LEN: usize = 69;
/// Footer body length.
pub const FOOTER_LEN: usize = 48;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    pub log_id: LogId,
    pub base_seq: u64,
    /// Entry hash of seq `base_seq - 1`; zero for the first segment.
    pub prev_hash: Hash32,
    /// Merkle compact range over seqs `0..base_seq`.
    pub frontier: CompactRange,
}

impl SegmentHeader {
    pub fn encode(&self) -> Vec<u8> {
        let hashes = self.frontier.hashes();
        let mut out = Vec::with_capacity(HEADER_FIXED_LEN + 32 * hashes.len() + 4);
        out.extend_from_slice(&SEGMENT_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.base_seq.to_le_bytes());
        out.extend_from_slice(&self.prev_hash);
        out.push(hashes.len() as u8);
        for h in hashes {
            out.extend_from_slice(h);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the header at the start of `buf`; returns it and its length.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), FormatError> {
        let need = |n: usize| -> Result<(), FormatError> {
            if buf.len() < n {
                Err(FormatError::Truncated {
                    what: "segment header",
                    offset: 0,
                    need: n as u64,
                    have: buf.len() as u64,
                })
            } else {
                Ok(())
            }
        };
        need(HEADER_FIXED_LEN)?;
        if buf[0..8] != SEGMENT_MAGIC {
            return Err(FormatError::BadMagic { offset: 0 });
        }
        let version = u32::from_le_bytes(arr(&buf[8..12]));
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                offset: 8,
                version,
                supported: FORMAT_VERSION,
            });
        }
        let n = buf[68] as usize;
        let total = HEADER_FIXED_LEN + 32 * n + 4;
        need(total)?;
        let stored = u32::from_le_bytes(arr(&buf[total - 4..total]));
        let computed = crc32fast::hash(&buf[..total - 4]);
        if stored != computed {
            return Err(FormatError::HeaderChecksum {
                offset: (total - 4) as u64,
                stored,
                computed,
            });
        }
        let base_seq = u64::from_le_bytes(arr(&buf[28..36]));
        let hashes = (0..n)
            .map(|i| arr(&buf[HEADER_FIXED_LEN + 32 * i..HEADER_FIXED_LEN + 32 * (i + 1)]))
            .collect();
        let frontier =
            CompactRange::from_parts(base_seq, hashes).ok_or(FormatError::Malformed {
                what: "segment header",
                offset: 68,
                reason: format!(
                    "frontier has {n} hashes but base seq {base_seq} needs {}",
                    base_seq.count_ones()
                ),
            })?;
        Ok((
            Self {
                log_id: arr(&buf[12..28]),
                base_seq,
                prev_hash: arr(&buf[36..68]),
                frontier,
            },
            total,
        ))
    }
}

/// Marks a segment as sealed and immutable; nothing may follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub base_seq: u64,
    pub entry_count: u64,
    /// Hash of the segment's last entry (the header's prev hash if empty).
    pub last_hash: Hash32,
}

impl Footer {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        out.extend_from_slice(&self.base_seq.to_le_bytes());
        out.extend_from_slice(&self.entry_count.to_le_bytes());
        out.extend_from_slice(&self.last_hash);
        out
    }

    pub fn decode(body: &[u8], offset: u64) -> Result<Self, FormatError> {
        if body.len() != FOOTER_LEN {
            return Err(FormatError::Malformed {
                what: "footer",
                offset,
                reason: format!("{} bytes, expected {FOOTER_LEN}", body.len()),
            });
        }
        Ok(Self {
            base_seq: u64::from_le_bytes(arr(&body[0..8])),
            entry_count: u64::from_le_bytes(arr(&body[8..16])),
            last_hash: arr(&body[16..48]),
        })
    }
}

/// Fixed-size copy out of a slice whose length the caller has checked.
pub(crate) fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

/// Segment file name for a base seq: 20 decimal digits, so names sort by seq.
pub fn segment_file_name(base_seq: u64) -> String {
    format!("{base_seq:020}.seg")
}
