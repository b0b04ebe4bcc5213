//! Compressed segments (SPEC §12): a sealed segment's exact bytes, cut on
//! frame boundaries into blocks, each block an independent zstd frame, with
//! an index of the blocks at the end.
//!
//! The one invariant: the decompressed blocks, concatenated, are the
//! original segment byte for byte. Nothing that is hashed or signed changes,
//! so every seal, checkpoint and proof issued before compaction still
//! verifies after it, and every reader keeps walking the same bytes.
//!
//! Every field of a `.segz` file is hostile input: each length and offset is
//! bounds-checked before use, each block is decompressed into exactly the
//! room its index entry declares (zstd refuses to write past it), and the
//! whole segment is capped, so no file can make a reader allocate without
//! end or panic.
use crate::frame::FrameType;
use crate::scan::SegmentScan;
use crate::segment::arr;
use thiserror::Error;

pub const ARCHIVE_MAGIC: [u8; 8] = *b"ARGUSZST";
pub const ARCHIVE_TRAILER_MAGIC: [u8; 8] = *b"ARGUSZIX";
pub const ARCHIVE_VERSION: u32 = 1;
/// magic 8, version 4, base_seq 8, uncompressed_len 8, block_size 4, crc 4.
pub const ARCHIVE_HEADER_LEN: usize = 36;
/// uncompressed_offset 8, compressed_offset 8, compressed_len 4,
/// uncompressed_len 4, first_seq 8.
pub const INDEX_ENTRY_LEN: usize = 32;
/// index_offset 8, block_count 4, index crc 4, magic 8.
pub const TRAILER_LEN: usize = 24;
/// A block holds whole frames: at most the block size, or one frame (plus
/// the segment header, in block 0) when a single frame is larger. A frame
/// is at most 16 MiB + 9 bytes and a header about 2 KiB, so 32 MiB bounds
/// every block a writer can produce and every allocation a reader makes.
pub const BLOCK_UNCOMPRESSED_MAX: u64 = 32 << 20;
/// The largest segment a reader will decompress into memory. Segments roll
/// at 64 MiB by default; this leaves room for any sane configuration while
/// keeping a forged length from claiming the machine's memory.
pub const SEGMENT_UNCOMPRESSED_MAX: u64 = 4 << 30;
/// Block sizes an encoder accepts.
pub const BLOCK_SIZE_MIN: u32 = 4 << 10;
pub const BLOCK_SIZE_MAX: u32 = 16 << 20;
/// Chosen by measurement (docs/PERFORMANCE.md "Compressed segments"):
/// a reader of a few entries (replay, inspect, a job's proof) decompresses
/// one whole block per entry, so on 64 MiB segments a job spread over the
/// log cost 3x its plain replay at 256 KiB blocks; 64 KiB blocks cost a
/// quarter of that for 0–14% more bytes on disk.
pub const DEFAULT_BLOCK_SIZE: u32 = 64 << 10;
/// zstd level 3 (zstd's default); higher levels cost compaction time for a
/// few percent (see docs/PERFORMANCE.md).
pub const DEFAULT_LEVEL: i32 = 3;

/// Why a compressed segment could not be read, or a segment not compressed.
/// Offsets are file offsets in the `.segz` file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("truncated {what} at offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        offset: u64,
        need: u64,
        have: u64,
    },
    #[error("bad {what} magic at offset {offset}: not an Argus compressed segment")]
    BadMagic { what: &'static str, offset: u64 },
    #[error("unsupported compressed segment version {version} at offset {offset} (this build reads version {ARCHIVE_VERSION})")]
    UnsupportedVersion { offset: u64, version: u32 },
    #[error("{what} checksum mismatch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        what: &'static str,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("malformed {what} at offset {offset}: {reason}")]
    Malformed {
        what: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("block {block} at offset {offset}: {reason}")]
    Block {
        block: u32,
        offset: u64,
        reason: String,
    },
    /// The input to `encode` is not a whole sealed segment.
    #[error("cannot compress: {0}")]
    NotSealed(String),
    #[error("zstd compression failed: {0}")]
    Compress(String),
}

impl ArchiveError {
    /// The file offset the error names (0 when it names none).
    pub fn offset(&self) -> u64 {
        match self {
            Self::Truncated { offset, .. }
            | Self::BadMagic { offset, .. }
            | Self::UnsupportedVersion { offset, .. }
            | Self::Checksum { offset, .. }
            | Self::Malformed { offset, .. }
            | Self::Block { offset, .. } => *offset,
            Self::NotSealed(_) | Self::Compress(_) => 0,
        }
    }
}

/// The fixed header at the start of a `.segz` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveHeader {
    pub base_seq: u64,
    /// Length of the original segment: the sum of the blocks' lengths.
    pub uncompressed_len: u64,
    /// The block size the encoder aimed at (informative).
    pub block_size: u32,
}

impl ArchiveHeader {
    pub fn encode(&self) -> [u8; ARCHIVE_HEADER_LEN] {
        let mut out = [0u8; ARCHIVE_HEADER_LEN];
        out[0..8].copy_from_slice(&ARCHIVE_MAGIC);
        out[8..12].copy_from_slice(&ARCHIVE_VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.base_seq.to_le_bytes());
        out[20..28].copy_from_slice(&self.uncompressed_len.to_le_bytes());
        out[28..32].copy_from_slice(&self.block_size.to_le_bytes());
        let crc = crc32fast::hash(&out[..32]);
        out[32..36].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks the header at the start of `buf` (which may be
    /// just the file's first bytes).
    pub fn decode(buf: &[u8]) -> Result<Self, ArchiveError> {
        if buf.len() < ARCHIVE_HEADER_LEN {
            return Err(ArchiveError::Truncated {
                what: "compressed segment header",
                offset: 0,
                need: ARCHIVE_HEADER_LEN as u64,
                have: buf.len() as u64,
            });
        }
        if buf[0..8] != ARCHIVE_MAGIC {
            return Err(ArchiveError::BadMagic {
                what: "header",
                offset: 0,
            });
        }
        let version = u32::from_le_bytes(arr(&buf[8..12]));
        if version != ARCHIVE_VERSION {
            return Err(ArchiveError::UnsupportedVersion { offset: 8, version });
        }
        let stored = u32::from_le_bytes(arr(&buf[32..36]));
        let computed = crc32fast::hash(&buf[..32]);
        if stored != computed {
            return Err(ArchiveError::Checksum {
                what: "header",
                offset: 32,
                stored,
                computed,
            });
        }
        let h = Self {
            base_seq: u64::from_le_bytes(arr(&buf[12..20])),
            uncompressed_len: u64::from_le_bytes(arr(&buf[20..28])),
            block_size: u32::from_le_bytes(arr(&buf[28..32])),
        };
        if h.uncompressed_len == 0 || h.uncompressed_len > SEGMENT_UNCOMPRESSED_MAX {
            return Err(ArchiveError::Malformed {
                what: "compressed segment header",
                offset: 20,
                reason: format!(
                    "uncompressed length {} is outside 1..={SEGMENT_UNCOMPRESSED_MAX}",
                    h.uncompressed_len
                ),
            });
        }
        Ok(h)
    }
}

/// One block's index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEntry {
    /// Where the block's bytes start in the original segment.
    pub uncompressed_offset: u64,
    /// Where its zstd frame starts in the `.segz` file.
    pub compressed_offset: u64,
    pub compressed_len: u32,
    pub uncompressed_len: u32,
    /// `base_seq` plus the number of entry frames in earlier blocks: the seq
    /// of the first entry that starts in this block, if it holds one. A
    /// hint for seeking; a reader checks the entry it finds there.
    pub first_seq: u64,
}

impl BlockEntry {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.uncompressed_offset.to_le_bytes());
        out.extend_from_slice(&self.compressed_offset.to_le_bytes());
        out.extend_from_slice(&self.compressed_len.to_le_bytes());
        out.extend_from_slice(&self.uncompressed_len.to_le_bytes());
        out.extend_from_slice(&self.first_seq.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        Self {
            uncompressed_offset: u64::from_le_bytes(arr(&b[0..8])),
            compressed_offset: u64::from_le_bytes(arr(&b[8..16])),
            compressed_len: u32::from_le_bytes(arr(&b[16..20])),
            uncompressed_len: u32::from_le_bytes(arr(&b[20..24])),
            first_seq: u64::from_le_bytes(arr(&b[24..32])),
        }
    }
}

/// How `encode` compresses.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub level: i32,
    pub block_size: u32,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            level: DEFAULT_LEVEL,
            block_size: DEFAULT_BLOCK_SIZE,
        }
    }
}

/// Cuts a sealed segment into blocks of whole frames: block 0 starts with
/// the segment header; a block closes before a frame that would take it past
/// `block_size`, unless it holds no frame yet. Returns `(start, end,
/// first_seq)` per block. The segment must be valid frames up to a footer
/// that ends it.
fn plan_blocks(segment: &[u8], block_size: u64) -> Result<Vec<(usize, usize, u64)>, ArchiveError> {
    let scan = SegmentScan::new(segment).map_err(|e| ArchiveError::NotSealed(e.to_string()))?;
    let base = scan.header.base_seq;
    let mut blocks = Vec::new();
    let (mut start, mut frames_in_block) = (0usize, 0usize);
    let mut first_seq = base;
    let mut seq = base;
    let mut end = scan.header_len;
    let mut last_type = None;
    let mut frames = scan.frames;
    for f in frames.by_ref() {
        let f_start = f.offset as usize;
        let f_end = f.end() as usize;
        if frames_in_block > 0 && (f_end - start) as u64 > block_size {
            blocks.push((start, f_start, first_seq));
            start = f_start;
            frames_in_block = 0;
            first_seq = seq;
        }
        frames_in_block += 1;
        if f.frame_type == FrameType::Entry {
            seq += 1;
        }
        last_type = Some(f.frame_type);
        end = f_end;
    }
    if let Some(e) = frames.stopped() {
        return Err(ArchiveError::NotSealed(format!(
            "the frames stop before the end of the segment: {e}"
        )));
    }
    if last_type != Some(FrameType::Footer) || end != segment.len() {
        return Err(ArchiveError::NotSealed(
            "the segment does not end in a footer (only sealed segments are compressed)".into(),
        ));
    }
    blocks.push((start, end, first_seq));
    Ok(blocks)
}

/// Compresses a sealed segment (SPEC §12). Fails, without output, on
/// anything but whole valid frames ending in a footer.
pub fn encode(segment: &[u8], opts: &EncodeOptions) -> Result<Vec<u8>, ArchiveError> {
    if !(BLOCK_SIZE_MIN..=BLOCK_SIZE_MAX).contains(&opts.block_size) {
        return Err(ArchiveError::Compress(format!(
            "block size {} is outside {BLOCK_SIZE_MIN}..={BLOCK_SIZE_MAX}",
            opts.block_size
        )));
    }
    if segment.len() as u64 > SEGMENT_UNCOMPRESSED_MAX {
        return Err(ArchiveError::NotSealed(format!(
            "{} bytes is above the {SEGMENT_UNCOMPRESSED_MAX}-byte limit for compressed segments",
            segment.len()
        )));
    }
    let plan = plan_blocks(segment, opts.block_size as u64)?;
    let (header, _) = crate::SegmentHeader::decode(segment)
        .map_err(|e| ArchiveError::NotSealed(e.to_string()))?;
    let zerr = |e: std::io::Error| ArchiveError::Compress(e.to_string());
    let mut z = zstd::bulk::Compressor::new(opts.level).map_err(zerr)?;
    // zstd's own checksum of each block's content: a damaged block fails
    // to decompress, naming the block, before any frame is walked.
    z.include_checksum(true).map_err(zerr)?;
    let mut out = Vec::with_capacity(segment.len() / 4 + 1024);
    out.extend_from_slice(
        &ArchiveHeader {
            base_seq: header.base_seq,
            uncompressed_len: segment.len() as u64,
            block_size: opts.block_size,
        }
        .encode(),
    );
    let mut index = Vec::with_capacity(plan.len() * INDEX_ENTRY_LEN);
    for (start, end, first_seq) in &plan {
        let block = &segment[*start..*end];
        let packed = z.compress(block).map_err(zerr)?;
        let too_big = |what: &str, n: usize| {
            ArchiveError::Compress(format!("{what} of {n} bytes does not fit the index"))
        };
        BlockEntry {
            uncompressed_offset: *start as u64,
            compressed_offset: out.len() as u64,
            compressed_len: u32::try_from(packed.len())
                .map_err(|_| too_big("compressed block", packed.len()))?,
            uncompressed_len: u32::try_from(block.len())
                .map_err(|_| too_big("block", block.len()))?,
            first_seq: *first_seq,
        }
        .encode_into(&mut index);
        out.extend_from_slice(&packed);
    }
    let index_offset = out.len() as u64;
    let crc = crc32fast::hash(&index);
    out.extend_from_slice(&index);
    out.extend_from_slice(&index_offset.to_le_bytes());
    out.extend_from_slice(&(plan.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&ARCHIVE_TRAILER_MAGIC);
    Ok(out)
}

/// A parsed `.segz` file: header, index and trailer checked, blocks not yet
/// decompressed.
#[derive(Debug)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    pub header: ArchiveHeader,
    pub blocks: Vec<BlockEntry>,
}

impl<'a> Archive<'a> {
    /// Checks everything but the blocks' contents: magics, version, header
    /// and index checksums, and that the blocks tile both the compressed
    /// region (header end to index) and the original segment (0 to its
    /// length) with no gap, overlap or overrun.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        let header = ArchiveHeader::decode(bytes)?;
        let len = bytes.len() as u64;
        let min = (ARCHIVE_HEADER_LEN + INDEX_ENTRY_LEN + TRAILER_LEN) as u64;
        if len < min {
            return Err(ArchiveError::Truncated {
                what: "compressed segment",
                offset: len,
                need: min,
                have: len,
            });
        }
        let t = &bytes[bytes.len() - TRAILER_LEN..];
        let t_at = len - TRAILER_LEN as u64;
        if t[16..24] != ARCHIVE_TRAILER_MAGIC {
            return Err(ArchiveError::BadMagic {
                what: "trailer",
                offset: t_at + 16,
            });
        }
        let index_offset = u64::from_le_bytes(arr(&t[0..8]));
        let count = u32::from_le_bytes(arr(&t[8..12]));
        let stored = u32::from_le_bytes(arr(&t[12..16]));
        let index_len = count as u64 * INDEX_ENTRY_LEN as u64;
        if count == 0
            || index_offset < ARCHIVE_HEADER_LEN as u64
            || index_offset.checked_add(index_len) != Some(t_at)
        {
            return Err(ArchiveError::Malformed {
                what: "trailer",
                offset: t_at,
                reason: format!(
                    "index of {count} blocks at offset {index_offset} does not end where the trailer starts ({t_at})"
                ),
            });
        }
        let index = &bytes[index_offset as usize..t_at as usize];
        let computed = crc32fast::hash(index);
        if stored != computed {
            return Err(ArchiveError::Checksum {
                what: "block index",
                offset: t_at + 12,
                stored,
                computed,
            });
        }
        let blocks: Vec<BlockEntry> = index
            .chunks_exact(INDEX_ENTRY_LEN)
            .map(BlockEntry::decode)
            .collect();
        let mut next_u = 0u64;
        let mut next_c = ARCHIVE_HEADER_LEN as u64;
        let mut prev_seq = header.base_seq;
        for (i, b) in blocks.iter().enumerate() {
            let at = index_offset + (i * INDEX_ENTRY_LEN) as u64;
            let bad = |reason: String| ArchiveError::Malformed {
                what: "block index entry",
                offset: at,
                reason: format!("block {i}: {reason}"),
            };
            if b.uncompressed_offset != next_u || b.compressed_offset != next_c {
                return Err(bad(format!(
                    "starts at {}/{} (uncompressed/compressed), expected {next_u}/{next_c}",
                    b.uncompressed_offset, b.compressed_offset
                )));
            }
            if b.uncompressed_len == 0 || b.uncompressed_len as u64 > BLOCK_UNCOMPRESSED_MAX {
                return Err(bad(format!(
                    "uncompressed length {} is outside 1..={BLOCK_UNCOMPRESSED_MAX}",
                    b.uncompressed_len
                )));
            }
            if b.compressed_len == 0 {
                return Err(bad("compressed length 0".into()));
            }
            if b.first_seq < prev_seq || (i == 0 && b.first_seq != header.base_seq) {
                return Err(bad(format!(
                    "first seq {} goes back (previous {prev_seq}, base {})",
                    b.first_seq, header.base_seq
                )));
            }
            prev_seq = b.first_seq;
            next_u += b.uncompressed_len as u64;
            next_c += b.compressed_len as u64;
            if next_u > header.uncompressed_len || next_c > index_offset {
                return Err(bad(format!(
                    "ends past the segment ({next_u} > {}) or past the index ({next_c} > {index_offset})",
                    header.uncompressed_len
                )));
            }
        }
        if next_u != header.uncompressed_len || next_c != index_offset {
            return Err(ArchiveError::Malformed {
                what: "block index",
                offset: index_offset,
                reason: format!(
                    "blocks cover {next_u} of {} uncompressed bytes and end at {next_c}, not at the index ({index_offset})",
                    header.uncompressed_len
                ),
            });
        }
        Ok(Self {
            bytes,
            header,
            blocks,
        })
    }

    /// Decompresses block `i` into `out`, which must be exactly its
    /// declared length: zstd refuses to write more, and fewer is an error.
    fn decode_into(
        &self,
        z: &mut zstd::bulk::Decompressor<'_>,
        i: usize,
        out: &mut [u8],
    ) -> Result<(), ArchiveError> {
        let b = self.blocks.get(i).ok_or(ArchiveError::Block {
            block: i as u32,
            offset: 0,
            reason: "no such block".into(),
        })?;
        // `parse` checked that the range lies between the header and index.
        let src = &self.bytes[b.compressed_offset as usize
            ..(b.compressed_offset + b.compressed_len as u64) as usize];
        let err = |reason: String| ArchiveError::Block {
            block: i as u32,
            offset: b.compressed_offset,
            reason,
        };
        // The frame must say how large it is, and say the index's length
        // (SPEC §12): then no decoder needs to inflate it to find out.
        match zstd::zstd_safe::get_frame_content_size(src) {
            Ok(Some(n)) if n == out.len() as u64 => {}
            Ok(Some(n)) => {
                return Err(err(format!(
                    "zstd frame declares {n} bytes, index says {}",
                    b.uncompressed_len
                )))
            }
            Ok(None) => return Err(err("zstd frame does not declare its size".into())),
            Err(_) => return Err(err("not a zstd frame".into())),
        }
        let n = z.decompress_to_buffer(src, out).map_err(|e| {
            err(format!(
                "zstd: {e} (damaged, or larger than its declared {} bytes)",
                b.uncompressed_len
            ))
        })?;
        if n != out.len() {
            return Err(err(format!(
                "decompressed to {n} bytes, index says {}",
                b.uncompressed_len
            )));
        }
        Ok(())
    }

    fn decompressor() -> Result<zstd::bulk::Decompressor<'static>, ArchiveError> {
        zstd::bulk::Decompressor::new().map_err(|e| ArchiveError::Block {
            block: 0,
            offset: 0,
            reason: format!("zstd: {e}"),
        })
    }

    /// Block `i`'s original bytes.
    pub fn decode_block(&self, i: usize) -> Result<Vec<u8>, ArchiveError> {
        let len = self
            .blocks
            .get(i)
            .map_or(0, |b| b.uncompressed_len as usize);
        let mut out = vec![0u8; len];
        self.decode_into(&mut Self::decompressor()?, i, &mut out)?;
        Ok(out)
    }

    /// Blocks `first..end`, concatenated, with one decoder: what a reader
    /// of a few entries decompresses. The output grows block by block, as
    /// in `decode_all`.
    pub fn decode_blocks(&self, first: usize, end: usize) -> Result<Vec<u8>, ArchiveError> {
        let mut z = Self::decompressor()?;
        let mut out = Vec::new();
        for i in first..end.min(self.blocks.len()) {
            let start = out.len();
            out.resize(start + self.blocks[i].uncompressed_len as usize, 0);
            self.decode_into(&mut z, i, &mut out[start..])?;
        }
        Ok(out)
    }

    /// The original segment: every block, in order. The output buffer
    /// grows block by block, so a forged total never allocates more than
    /// the blocks actually decompress to (each bounded by its entry).
    pub fn decode_all(&self) -> Result<Vec<u8>, ArchiveError> {
        let mut z = Self::decompressor()?;
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            let start = out.len();
            out.resize(start + b.uncompressed_len as usize, 0);
            self.decode_into(&mut z, i, &mut out[start..])?;
        }
        // The segment's own header is judged by whoever walks it; here only
        // that it is the segment this file says it holds.
        if let Ok((h, _)) = crate::SegmentHeader::decode(&out) {
            if h.base_seq != self.header.base_seq {
                return Err(ArchiveError::Malformed {
                    what: "compressed segment header",
                    offset: 12,
                    reason: format!(
                        "base seq {} but the segment inside starts at seq {}",
                        self.header.base_seq, h.base_seq
                    ),
                });
            }
        }
        Ok(out)
    }

    /// The block where entry `seq`'s frame starts, by the index's hint: the
    /// last block whose `first_seq` is at or below it.
    pub fn block_of_seq(&self, seq: u64) -> Option<usize> {
        if seq < self.header.base_seq {
            return None;
        }
        self.blocks
            .partition_point(|b| b.first_seq <= seq)
            .checked_sub(1)
    }

    /// The block that holds byte `offset` of the original segment.
    pub fn block_of_offset(&self, offset: u64) -> Option<usize> {
        if offset >= self.header.uncompressed_len {
            return None;
        }
        self.blocks
            .partition_point(|b| b.uncompressed_offset <= offset)
            .checked_sub(1)
    }

    /// Total bytes of the `.segz` file.
    pub fn compressed_len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Decompresses a whole `.segz` file: `Archive::parse` then `decode_all`.
pub fn decode(bytes: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    Archive::parse(bytes)?.decode_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::frame::{encode_frame, FRAME_HEADER_LEN};
    use crate::segment::{Footer, SegmentHeader};
    use crate::CompactRange;

    /// A synthetic sealed segment: header, `n` entry-typed frames of
    /// varied text (not decoded by the archive code), a seal-typed frame
    /// and a footer. Only frame boundaries and types matter here.
    fn segment(base: u64, n: usize, body_len: usize) -> Vec<u8> {
        let range =
            CompactRange::from_parts(base, vec![[3; 32]; base.count_ones() as usize]).unwrap();
        let h = SegmentHeader {
            log_id: [7; 16],
            base_seq: base,
            prev_hash: [1; 32],
            frontier: range,
        };
        let mut out = h.encode();
        for i in 0..n {
            let body: Vec<u8> = format!("{{\"tool\":\"search\",\"i\":{i},\"q\":\"")
                .bytes()
                .chain((0..body_len).map(|j| b'a' + ((i * 7 + j) % 26) as u8))
                .collect();
            encode_frame(&mut out, FrameType::Entry, &body);
        }
        encode_frame(&mut out, FrameType::Seal, &[0u8; 148]);
        let footer = Footer {
            base_seq: base,
            entry_count: n as u64,
            last_hash: [2; 32],
        };
        encode_frame(&mut out, FrameType::Footer, &footer.encode());
        out
    }

    fn opts(block_size: u32) -> EncodeOptions {
        EncodeOptions {
            level: 3,
            block_size,
        }
    }

    #[test]
    fn decoding_gives_back_the_exact_segment_bytes() {
        for (base, n, len, bs) in [
            (0, 0, 0, 4096),
            (0, 1, 10, 4096),
            (5, 300, 200, 4096),
            (7, 40, 9000, 4096),
            (1 << 20, 2000, 100, 65536),
        ] {
            let seg = segment(base, n, len);
            let z = encode(&seg, &opts(bs)).unwrap();
            let a = Archive::parse(&z).unwrap();
            assert_eq!(a.header.base_seq, base);
            assert_eq!(a.header.uncompressed_len, seg.len() as u64);
            assert_eq!(a.decode_all().unwrap(), seg, "base {base} n {n}");
            let joined: Vec<u8> = (0..a.blocks.len())
                .flat_map(|i| a.decode_block(i).unwrap())
                .collect();
            assert_eq!(joined, seg);
        }
    }

    #[test]
    fn blocks_hold_whole_frames_and_know_their_first_seq() {
        let seg = segment(100, 500, 300);
        let z = encode(&seg, &opts(8192)).unwrap();
        let a = Archive::parse(&z).unwrap();
        assert!(a.blocks.len() > 10);
        let (_, hlen) = SegmentHeader::decode(&seg).unwrap();
        let mut seq = 100;
        for (i, b) in a.blocks.iter().enumerate() {
            assert!(b.uncompressed_len <= 8192, "block {i} too large");
            let bytes = a.decode_block(i).unwrap();
            let skip = if i == 0 { hlen } else { 0 };
            let mut walk = crate::FrameWalk::new(&bytes[skip..], 0);
            assert_eq!(b.first_seq, seq, "block {i}");
            for f in walk.by_ref() {
                if f.frame_type == FrameType::Entry {
                    seq += 1;
                }
            }
            assert!(walk.stopped().is_none(), "block {i} cuts a frame");
        }
        assert_eq!(a.block_of_seq(100), Some(0));
        assert_eq!(a.block_of_seq(99), None);
        let k = a.block_of_seq(350).unwrap();
        assert!(a.blocks[k].first_seq <= 350);
        assert!(a.blocks.get(k + 1).is_none_or(|b| b.first_seq > 350));
        assert_eq!(a.block_of_offset(0), Some(0));
        assert_eq!(a.block_of_offset(seg.len() as u64), None);
    }

    #[test]
    fn a_frame_larger_than_the_block_size_gets_a_block_of_its_own() {
        let seg = segment(0, 3, 50_000);
        let z = encode(&seg, &opts(4096)).unwrap();
        let a = Archive::parse(&z).unwrap();
        assert_eq!(a.decode_all().unwrap(), seg);
        assert!(a.blocks.iter().any(|b| b.uncompressed_len > 4096));
    }

    #[test]
    fn only_sealed_whole_segments_are_compressed() {
        let seg = segment(0, 10, 10);
        // No footer: the active segment's shape.
        let cut = &seg[..seg.len() - (FRAME_HEADER_LEN + 48)];
        assert!(matches!(
            encode(cut, &opts(4096)),
            Err(ArchiveError::NotSealed(_))
        ));
        // A torn last frame.
        assert!(matches!(
            encode(&seg[..seg.len() - 1], &opts(4096)),
            Err(ArchiveError::NotSealed(_))
        ));
        assert!(encode(b"not a segment", &opts(4096)).is_err());
        assert!(encode(&seg, &opts(1)).is_err());
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error_or_the_same_bytes() {
        let seg = segment(3, 60, 120);
        let z = encode(&seg, &opts(4096)).unwrap();
        for cut in 0..z.len() {
            assert!(decode(&z[..cut]).is_err(), "truncated to {cut} decoded");
        }
        for i in 0..z.len() {
            for mask in [0x01u8, 0x80] {
                let mut bad = z.clone();
                bad[i] ^= mask;
                // Never a panic; a flip zstd and the index cannot see (a
                // reserved bit) must still give back the original bytes.
                if let Ok(out) = decode(&bad) {
                    assert_eq!(out, seg, "flip at {i} changed the segment silently");
                }
            }
        }
    }

    #[test]
    fn a_block_that_decompresses_beyond_its_declared_length_is_refused() {
        let seg = segment(0, 200, 100);
        let mut z = encode(&seg, &opts(4096)).unwrap();
        let a = Archive::parse(&z).unwrap();
        let n = a.blocks.len();
        let index_offset = z.len() - TRAILER_LEN - n * INDEX_ENTRY_LEN;
        // Shrink block 0's declared length and grow block 1's, keeping the
        // tiling and fixing the index CRC: only decompression can tell.
        let e0 = index_offset + 20;
        let e1 = index_offset + INDEX_ENTRY_LEN + 20;
        let l0 = u32::from_le_bytes(z[e0..e0 + 4].try_into().unwrap());
        let u1 = index_offset + INDEX_ENTRY_LEN;
        z[e0..e0 + 4].copy_from_slice(&(l0 - 10).to_le_bytes());
        let l1 = u32::from_le_bytes(z[e1..e1 + 4].try_into().unwrap());
        z[e1..e1 + 4].copy_from_slice(&(l1 + 10).to_le_bytes());
        let o1 = u64::from_le_bytes(z[u1..u1 + 8].try_into().unwrap());
        z[u1..u1 + 8].copy_from_slice(&(o1 - 10).to_le_bytes());
        let crc = crc32fast::hash(&z[index_offset..z.len() - TRAILER_LEN]);
        let at = z.len() - TRAILER_LEN + 12;
        z[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        let a = Archive::parse(&z).unwrap();
        let e = a.decode_all().unwrap_err();
        assert!(matches!(e, ArchiveError::Block { block: 0, .. }), "{e}");
    }

    #[test]
    fn forged_lengths_are_refused_before_any_allocation() {
        let seg = segment(0, 5, 10);
        let z = encode(&seg, &opts(4096)).unwrap();
        let mut h = ArchiveHeader::decode(&z).unwrap();
        h.uncompressed_len = u64::MAX;
        let mut bad = z.clone();
        bad[..ARCHIVE_HEADER_LEN].copy_from_slice(&h.encode());
        assert!(matches!(
            Archive::parse(&bad),
            Err(ArchiveError::Malformed { offset: 20, .. })
        ));
        // A trailer that claims more blocks than fit.
        let mut bad = z.clone();
        let at = bad.len() - TRAILER_LEN + 8;
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Archive::parse(&bad),
            Err(ArchiveError::Malformed {
                what: "trailer",
                ..
            })
        ));
    }
}
