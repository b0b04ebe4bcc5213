//! Lock-free readers. Sealed segments are mmapped, the active one is read
//! with pread. Only entries covered by a seal are ever returned, so a reader
//! running beside the writer sees exactly what has been acknowledged.
use crate::error::{Error, IoContext, Result};
use crate::log::dir::{LogDir, Meta};
use crate::log::{index, mmap, safe_fs};
use log_format::entry::decode_entry;
use log_format::frame::FRAME_HEADER_LEN;
use log_format::scan::ScanOutcome;
use log_format::segment::{segment_file_name, FOOTER_LEN};
use log_format::{EntryView, FrameType, FrameWalk, LogId, Seal, SegmentHeader, SegmentScan};
use std::ops::{ControlFlow, Deref};
use std::path::Path;

/// A segment's bytes: mapped when sealed, read into memory when active.
pub enum SegmentBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for SegmentBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(m) => m,
            Self::Owned(v) => v,
        }
    }
}

/// True when the file ends in a CRC-valid footer frame.
pub fn ends_in_footer(bytes: &[u8]) -> bool {
    let n = FRAME_HEADER_LEN + FOOTER_LEN;
    bytes.len() >= n
        && matches!(
            log_format::frame::decode_frame(&bytes[bytes.len() - n..], 0),
            Ok(f) if f.frame_type == FrameType::Footer
        )
}

fn file_ends_in_footer(f: &std::fs::File, path: &Path) -> Result<bool> {
    use std::os::unix::fs::FileExt;
    let len = f.metadata().at(path)?.len();
    let n = (FRAME_HEADER_LEN + FOOTER_LEN) as u64;
    if len < n {
        return Ok(false);
    }
    let mut tail = vec![0u8; n as usize];
    f.read_exact_at(&mut tail, len - n).at(path)?;
    Ok(ends_in_footer(&tail))
}

/// Maps a sealed segment (immutable), reads the active one into memory.
/// One descriptor, opened without following a link and checked to be a
/// regular file, serves the footer check, the map and the read, so a FIFO
/// or device planted as a segment is refused instead of read.
pub fn load_path(path: &Path) -> Result<SegmentBytes> {
    use std::io::Read;
    let mut f = safe_fs::open_read(path)?;
    if file_ends_in_footer(&f, path)? {
        Ok(SegmentBytes::Mapped(mmap::map_sealed(&f, path)?))
    } else {
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).at(path)?;
        Ok(SegmentBytes::Owned(buf))
    }
}

/// Where a walk over a segment stopped.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    /// Offset just past the last seal or footer consumed.
    pub offset: u64,
    pub footer: bool,
    pub last_seal: Option<Seal>,
    /// The callback asked to stop early.
    pub stopped: bool,
}

/// Walks frames and hands `f` every entry that a later seal covers, in order.
/// Unsealed entries at the end are held back, never returned.
pub fn visit_sealed<'a>(
    segment: &str,
    walk: &mut FrameWalk<'a>,
    start: u64,
    mut f: impl FnMut(&EntryView<'a>, u64) -> ControlFlow<()>,
) -> Result<Cursor> {
    let mut cur = Cursor {
        offset: start,
        ..Cursor::default()
    };
    let mut pending = Vec::new();
    let fmt = |source| Error::Format {
        segment: segment.to_string(),
        source,
    };
    for fr in walk.by_ref() {
        match fr.frame_type {
            FrameType::Entry => pending.push(fr),
            FrameType::Seal => {
                let seal = Seal::decode(fr.body, fr.body_offset()).map_err(fmt)?;
                for p in pending.drain(..) {
                    let v = decode_entry(p.body, p.body_offset()).map_err(fmt)?;
                    if f(&v, p.offset).is_break() {
                        cur.stopped = true;
                        return Ok(cur);
                    }
                }
                cur.offset = fr.end();
                cur.last_seal = Some(seal);
            }
            FrameType::Footer => {
                cur.offset = fr.end();
                cur.footer = true;
                return Ok(cur);
            }
        }
    }
    if let ScanOutcome::Corrupt {
        offset,
        error,
        next_valid,
    } = walk.outcome()
    {
        return Err(Error::Corrupt {
            segment: segment.to_string(),
            offset,
            next_valid,
            reason: error.to_string(),
        });
    }
    Ok(cur)
}

pub struct LogReader {
    pub dir: LogDir,
    pub meta: Meta,
    pub log_id: LogId,
    pub bases: Vec<u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    pub log_id: String,
    pub entries: u64,
    pub segments: usize,
    pub bytes: u64,
    pub head_seq: Option<u64>,
    pub head_hash: String,
}

impl LogReader {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = LogDir::new(root);
        let meta = dir.read_meta()?;
        let log_id = meta.log_id()?;
        let bases = dir.list_segments()?;
        if bases.is_empty() {
            return Err(Error::NotALog {
                dir: root.into(),
                reason: "no segment files in segments/".into(),
            });
        }
        Ok(Self {
            dir,
            meta,
            log_id,
            bases,
        })
    }

    pub fn load(&self, base: u64) -> Result<SegmentBytes> {
        load_path(&self.dir.segment_path(base))
    }

    fn header(&self, base: u64, bytes: &[u8]) -> Result<(SegmentHeader, usize)> {
        SegmentHeader::decode(bytes).map_err(|source| Error::Format {
            segment: segment_file_name(base),
            source,
        })
    }

    /// Offset to start scanning a segment for `seq`, from its sparse index
    /// when the segment is sealed. The index is a cache that may be missing,
    /// damaged or copied from elsewhere, so a seek point is used only if the
    /// frame there is an entry with the indexed seq; otherwise the index is
    /// rebuilt from the segment.
    fn start_offset(&self, base: u64, bytes: &SegmentBytes, header_len: usize, seq: u64) -> u64 {
        if seq <= base || !matches!(bytes, SegmentBytes::Mapped(_)) {
            return header_len as u64;
        }
        let path = self.dir.index_path(base);
        let checked = |pairs: &[(u64, u64)]| -> Option<u64> {
            let (want, off) = index::seek_point(pairs, seq)?;
            let frame = log_format::frame::decode_frame(bytes.get(off as usize..)?, off).ok()?;
            let v = decode_entry(frame.body, off).ok()?;
            (frame.frame_type == FrameType::Entry && v.seq == want).then_some(off)
        };
        if let Some(off) = index::read(&path).as_deref().and_then(checked) {
            return off;
        }
        let pairs = build_index(bytes, header_len, base);
        let _ = index::write(&path, &pairs);
        checked(&pairs).unwrap_or(header_len as u64)
    }

    /// Visits sealed entries with `from <= seq <= to`, in order.
    pub fn for_each(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(&EntryView<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        let first = self.bases.partition_point(|b| *b <= from).saturating_sub(1);
        for &base in &self.bases[first..] {
            if base > to {
                break;
            }
            let bytes = self.load(base)?;
            let (_, hlen) = self.header(base, &bytes)?;
            let start = self.start_offset(base, &bytes, hlen, from);
            let mut walk = FrameWalk::new(&bytes, 0);
            walk.seek(start);
            let name = segment_file_name(base);
            let cur = visit_sealed(&name, &mut walk, start, |v, _| {
                if v.seq < from {
                    ControlFlow::Continue(())
                } else if v.seq > to {
                    ControlFlow::Break(())
                } else {
                    f(v)
                }
            })?;
            if cur.stopped {
                break;
            }
        }
        Ok(())
    }

    /// The newest seal in the log: the last one in the last segment that has one.
    pub fn latest_seal(&self) -> Result<Seal> {
        for &base in self.bases.iter().rev() {
            let bytes = self.load(base)?;
            let (_, hlen) = self.header(base, &bytes)?;
            let mut walk = FrameWalk::new(&bytes, 0);
            walk.seek(hlen as u64);
            let last = walk
                .filter(|f| f.frame_type == FrameType::Seal)
                .last()
                .map(|f| Seal::decode(f.body, f.body_offset()));
            if let Some(s) = last {
                return s.map_err(|source| Error::Format {
                    segment: segment_file_name(base),
                    source,
                });
            }
        }
        Err(Error::NotALog {
            dir: self.dir.root.clone(),
            reason: "no seal found in any segment".into(),
        })
    }

    pub fn stats(&self) -> Result<Stats> {
        let seal = self.latest_seal()?;
        let mut bytes = 0;
        for &b in &self.bases {
            let p = self.dir.segment_path(b);
            bytes += safe_fs::open_read(&p)?.metadata().at(&p)?.len();
        }
        Ok(Stats {
            log_id: self.meta.log_id.clone(),
            entries: seal.tree_size,
            segments: self.bases.len(),
            bytes,
            head_seq: seal.tree_size.checked_sub(1),
            head_hash: hex::encode(seal.head),
        })
    }
}

/// Rebuilds a sealed segment's sparse index by walking its frames.
pub fn build_index(bytes: &[u8], header_len: usize, base: u64) -> Vec<(u64, u64)> {
    let mut walk = FrameWalk::new(bytes, 0);
    walk.seek(header_len as u64);
    let mut seq = base;
    let mut out = Vec::new();
    for f in walk {
        if f.frame_type == FrameType::Entry {
            if (seq - base).is_multiple_of(crate::log::writer::INDEX_STRIDE) {
                out.push((seq, f.offset));
            }
            seq += 1;
        }
    }
    out
}

/// Re-export for the verifier, which must walk segments the same way.
pub fn scan(bytes: &[u8]) -> std::result::Result<SegmentScan<'_>, log_format::FormatError> {
    SegmentScan::new(bytes)
}
