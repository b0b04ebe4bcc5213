//! Lock-free readers. Sealed segments are mmapped, the active one is read
//! with pread. Only entries covered by a seal are ever returned, so a reader
//! running beside the writer sees exactly what has been acknowledged.
use crate::error::{Error, Result};
use crate::log::dir::{LogDir, Meta, COMPRESSED_SUFFIX};
use crate::log::storage::{self, SegmentMap, Storage};
use crate::log::{index, mmap};
use log_format::entry::decode_entry;
use log_format::segment::segment_file_name;
use log_format::walk::{ChainState, ChainWalk, Checks, Fault, Item};
use log_format::{
    EntryView, FrameType, FrameWalk, KeyEpochs, LogId, Seal, SealKey, SegmentHeader, Tail,
};
use std::ops::{ControlFlow, Deref};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A segment's bytes: mapped when sealed; for the active segment, its
/// sealed prefix mapped (up to the end of its last whole seal), or, when
/// that cannot be shown from the file's end, the whole file read;
/// decompressed into memory when compacted (SPEC §12).
pub enum SegmentBytes {
    /// A sealed segment: mapped by `RealFs`, copied by a `Storage` that
    /// cannot map (the fault simulator).
    Mapped(SegmentMap),
    /// The active segment's bytes up to the end of its newest seal.
    SealedPrefix(SegmentMap),
    Owned(Vec<u8>),
    /// A compressed segment's original bytes; sealed, like `Mapped`.
    Decompressed(Vec<u8>),
}

impl SegmentBytes {
    /// Whether these are a sealed segment's bytes (ending in a footer),
    /// which never change and have a sparse index file.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Self::Mapped(_) | Self::Decompressed(_))
    }

    /// A plain segment file's bytes read whole: sealed when they end in a
    /// valid footer, as `load_path` would have mapped them.
    pub fn from_read(bytes: Vec<u8>) -> Self {
        if mmap::ends_in_footer(&bytes) {
            Self::Mapped(SegmentMap::Copied(bytes))
        } else {
            Self::Owned(bytes)
        }
    }
}

/// Whether `path` names a compressed segment (`.segz`).
pub fn is_compressed_name(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(COMPRESSED_SUFFIX))
}

impl Deref for SegmentBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(m) | Self::SealedPrefix(m) => m,
            Self::Owned(v) | Self::Decompressed(v) => v,
        }
    }
}

/// Maps a sealed segment (immutable), reads the active one into memory,
/// decompresses a compressed one (`.segz`, by its name). One descriptor,
/// opened without following a link and checked to be a regular file,
/// serves the footer check, the map and the read, so a FIFO or device
/// planted as a segment is refused instead of read.
pub fn load_path(path: &Path) -> Result<SegmentBytes> {
    load_path_on(&*storage::real(), path)
}

/// `load_path` through `storage`.
pub fn load_path_on(storage: &dyn Storage, path: &Path) -> Result<SegmentBytes> {
    if is_compressed_name(path) {
        return load_compressed_on(storage, path);
    }
    let f = storage.open_read(path)?;
    if let Some(map) = f.map_if_sealed()? {
        return Ok(SegmentBytes::Mapped(map));
    }
    Ok(SegmentBytes::Owned(f.read_to_end()?))
}

/// How far back from a segment's end a newest seal is looked for: a commit
/// is at most a few MiB; a seal further back is found by a whole walk.
const TAIL_WINDOW: u64 = 8 << 20;
/// The window tried first. It must hold the last commit and the seal
/// before it: 1 MiB holds a 1,000-entry batch of ~300-byte entries (about
/// 330 KB), which a 256 KiB window missed, costing a second, 8 MiB read
/// and a backward scan of it on every cold open of a batched log.
pub(crate) const FIRST_TAIL_WINDOW: u64 = 1 << 20;

/// `load_path` for readers of a live log: an active segment whose last
/// write is a whole, signed commit is mapped up to the end of that commit's
/// seal instead of read whole, so a question about a few entries of a large
/// active segment touches only their pages. Only the last write can be
/// undurable (SPEC §7.1) and recovery cuts only after the last whole seal,
/// so those bytes never change (see `mmap`). Otherwise (a torn or damaged
/// last write, no seal near the end) the file is read whole and judged by
/// the walk, as `load_path` does.
fn load_for_reader(dir: &LogDir, base: u64, key: &SealKey<'_>) -> Result<SegmentBytes> {
    let storage = &*dir.storage;
    let path = &dir.segment_path(base);
    let f = match storage.open_read(path) {
        // Compacted (see `load_segment`).
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return load_path_on(storage, &dir.compressed_path(base));
        }
        other => other?,
    };
    if let Some(map) = f.map_if_sealed()? {
        return Ok(SegmentBytes::Mapped(map));
    }
    let len = f.size()?;
    // A small window first: most commits are far smaller than the largest.
    for window in [FIRST_TAIL_WINDOW, TAIL_WINDOW] {
        let from = len.saturating_sub(window);
        let mut buf = vec![0u8; (len - from) as usize];
        f.read_exact_at(&mut buf, from)?;
        if let Some((_, end)) = whole_last_seal(&buf, from, base, key) {
            if let Some(map) = f.map_sealed_prefix(end)? {
                return Ok(SegmentBytes::SealedPrefix(map));
            }
        }
        if from == 0 {
            break;
        }
    }
    Ok(SegmentBytes::Owned(f.read_to_end()?))
}

/// The newest seal in `buf` (the bytes of a segment from offset `from`),
/// with the offset just past it, accepted only if the write it closes is
/// whole: walked from the seal before it, or from the header, to it.
fn whole_last_seal(buf: &[u8], from: u64, base: u64, key: &SealKey<'_>) -> Option<(Seal, u64)> {
    let seals = log_format::tail::last_seals(buf, from, key, 2);
    let (newest_at, newest) = seals.first()?;
    let (start, state) = match seals.get(1) {
        Some((at, before)) => (
            at + log_format::tail::SEAL_FRAME_LEN as u64,
            ChainState::resume_at(before.tree_size),
        ),
        None if from == 0 => {
            let (h, header_len) = log_format::SegmentHeader::decode(buf).ok()?;
            (header_len as u64, ChainState::from_header(&h))
        }
        None => return None,
    };
    let walk = ChainWalk::new(buf, from, start, base, state, Checks::default());
    for item in walk {
        match item {
            Ok(Item::Entry { .. }) => {}
            Ok(Item::Seal { seal, offset, end }) => {
                let whole = offset == *newest_at && seal.tree_size == newest.tree_size;
                return whole.then_some((seal, end));
            }
            Ok(Item::Footer { .. }) | Err(_) => return None,
        }
    }
    None
}

/// Asks for the compressed pages of the blocks holding `seqs`; a packed
/// file that does not parse is left for the read to report.
fn advise_blocks(packed: &SegmentMap, seqs: &[u64]) {
    let Ok(archive) = log_format::archive::Archive::parse(packed) else {
        return;
    };
    for &seq in seqs {
        let Some(b) = archive
            .block_of_seq(seq)
            .and_then(|i| archive.blocks.get(i))
        else {
            continue;
        };
        packed.will_need(b.compressed_offset as usize, b.compressed_len as usize);
    }
}

/// No valid compressed segment is larger than the largest segment a reader
/// accepts plus its index: a larger file is refused unread.
pub(crate) const PACKED_MAX: u64 = log_format::archive::SEGMENT_UNCOMPRESSED_MAX + (64 << 20);

/// A compressed file's original segment bytes, whatever its name (compaction
/// reads back its temp file). The file is read whole (a regular file, so
/// its size is what `fstat` says) and every block decompressed into the
/// room its index entry declares.
pub fn load_compressed(path: &Path) -> Result<SegmentBytes> {
    load_compressed_on(&*storage::real(), path)
}

/// `load_compressed` through `storage`.
pub fn load_compressed_on(storage: &dyn Storage, path: &Path) -> Result<SegmentBytes> {
    let file = storage.open_read(path)?;
    let len = file.size()?;
    if len > PACKED_MAX {
        return Err(Error::Archive {
            path: path.to_path_buf(),
            source: log_format::ArchiveError::Malformed {
                what: "compressed segment",
                offset: 0,
                reason: format!("{len} bytes, more than any compressed segment ({PACKED_MAX})"),
            },
        });
    }
    let mut packed = vec![0u8; len as usize];
    file.read_exact_at(&mut packed, 0)?;
    let bytes = log_format::archive::decode(&packed).map_err(|source| Error::Archive {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(SegmentBytes::Decompressed(bytes))
}

/// Segment `base` of `dir` in whichever form it is stored. The plain file
/// wins when both exist (SPEC §12: a compaction interrupted between its
/// rename and its removal). Compaction renames the compressed file into
/// place before it removes the plain one, so a plain file that vanishes
/// between listing and opening is found compressed.
pub fn load_segment(dir: &LogDir, base: u64) -> Result<SegmentBytes> {
    let storage = &*dir.storage;
    match load_path_on(storage, &dir.segment_path(base)) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            load_path_on(storage, &dir.compressed_path(base))
        }
        other => other,
    }
}

/// The length of segment `base` as readers see it (a compressed segment's
/// original length, from its header), without reading it whole.
pub fn segment_len(dir: &LogDir, base: u64) -> Result<u64> {
    let plain = dir.segment_path(base);
    match dir.storage.open_read(&plain) {
        Ok(f) => return f.size(),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let path = dir.compressed_path(base);
    let f = dir.storage.open_read(&path)?;
    let mut head = [0u8; log_format::archive::ARCHIVE_HEADER_LEN];
    f.read_exact_at(&mut head, 0)?;
    log_format::archive::ArchiveHeader::decode(&head)
        .map(|h| h.uncompressed_len)
        .map_err(|source| Error::Archive { path, source })
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

/// What readers check: each payload against its hash, so a payload edited in
/// place (CRC fixed up) is refused instead of believed. The chain and the
/// seal signatures are `verify`'s to check. A payload in the erased form
/// (SPEC §4.2.1) is handed out as zeros, never as a payload: the commands
/// that show payloads hold it to its redaction (`log::redactions`), and
/// projections read it as no payload at all.
pub const READER_CHECKS: Checks<'static> = Checks {
    chain: false,
    payload: true,
    erased: true,
    merkle: false,
    signatures: None,
};

/// Hands `f` every entry that a later seal covers, in order, starting where
/// `walk` stands. Unsealed entries at the end are held back, never returned.
/// A damaged frame is an error only if `key` shows it is not a torn tail.
pub fn visit_sealed<'a>(
    segment: &str,
    walk: &mut ChainWalk<'a, '_>,
    key: &SealKey<'_>,
    mut f: impl FnMut(&EntryView<'a>, u64) -> ControlFlow<()>,
) -> Result<Cursor> {
    visit_sealed_with_seal(segment, walk, key, |v, offset, _| f(v, offset))
}

/// `visit_sealed`, also handing `f` the seal that covers each entry (the
/// first seal after it in its segment) and that seal's frame offset.
pub fn visit_sealed_with_seal<'a>(
    segment: &str,
    walk: &mut ChainWalk<'a, '_>,
    key: &SealKey<'_>,
    mut f: impl FnMut(&EntryView<'a>, u64, (&Seal, u64)) -> ControlFlow<()>,
) -> Result<Cursor> {
    let mut cur = Cursor {
        offset: walk.offset(),
        ..Cursor::default()
    };
    let mut pending = Vec::new();
    let fault = |fault: Fault| Error::Fault {
        segment: segment.to_string(),
        fault,
    };
    for item in walk.by_ref() {
        match item.map_err(fault)? {
            Item::Entry { entry, offset, .. } => pending.push((entry, offset)),
            Item::Seal {
                seal,
                offset: seal_offset,
                end,
            } => {
                for (v, offset) in pending.drain(..) {
                    if f(&v, offset, (&seal, seal_offset)).is_break() {
                        cur.stopped = true;
                        return Ok(cur);
                    }
                }
                cur.offset = end;
                cur.last_seal = Some(seal);
            }
            Item::Footer { end, .. } => {
                cur.offset = end;
                cur.footer = true;
                return Ok(cur);
            }
        }
    }
    if let Tail::Corrupt {
        offset,
        cause,
        proof,
    } = walk.tail(key)
    {
        return Err(Error::Corrupt {
            segment: segment.to_string(),
            offset,
            cause,
            proof,
        });
    }
    Ok(cur)
}

/// `for_each`'s walk over entries already known to be sealed: each entry in
/// `from..=to` goes to `f` as it is read. `Break` when the walk reached
/// past `to` or `f` asked to stop; `Continue` when the segment ended first.
fn walk_known_sealed(
    segment: &str,
    walk: &mut ChainWalk<'_, '_>,
    from: u64,
    to: u64,
    f: &mut impl FnMut(&EntryView<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>> {
    for item in walk.by_ref() {
        let item = item.map_err(|fault| Error::Fault {
            segment: segment.to_string(),
            fault,
        })?;
        match item {
            Item::Entry { entry, .. } if entry.seq > to => return Ok(ControlFlow::Break(())),
            Item::Entry { entry, .. } if entry.seq >= from => {
                if f(&entry).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
                if entry.seq == to {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Item::Entry { .. } | Item::Seal { .. } => {}
            Item::Footer { .. } => break,
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Where `LogReader::locate` found an entry.
#[derive(Debug, Clone)]
pub struct Location {
    /// Base seq of its segment.
    pub base: u64,
    /// The segment's file name (`segments/NAME`).
    pub segment: String,
    /// File offset of the entry's frame.
    pub offset: u64,
    /// The frame's length, header included, and its body's.
    pub frame_bytes: u64,
    pub body_bytes: u64,
    /// The first seal after the entry in its segment, and its frame offset.
    pub seal: Seal,
    pub seal_offset: u64,
}

/// (seq, offset) of every `INDEX_STRIDE`th entry of a segment.
type SeekPoints = Arc<Vec<(u64, u64)>>;

/// A snapshot of the log: the segments listed when it was opened, each
/// read (active) or mapped (sealed) at most once, the first time it is
/// needed, and kept for the reader's life. A view asks several questions
/// of one reader (the latest seal, each projection's resume point, one walk
/// per catch-up lane, stats); they all see the same bytes, and the active
/// segment is read once instead of once per question. Entries sealed after
/// the snapshot are not seen: open a new reader (or follow, as `tail -f`
/// does) to see them. Shared across catch-up lanes by reference.
pub struct LogReader {
    pub dir: LogDir,
    pub meta: Meta,
    pub log_id: LogId,
    /// The key epochs as `argus.json` records them: good enough to tell a
    /// torn tail from corruption (a forged key there can only make a reader
    /// stop early); `verify` takes a pinned key and follows the log's
    /// certificates (SPEC §4.7).
    pub epochs: KeyEpochs,
    pub bases: Vec<u64>,
    /// One slot per entry of `bases`. A slot's lock is held while its
    /// segment loads, so lanes that want it at once wait for one load.
    loaded: Vec<Mutex<Option<Arc<SegmentBytes>>>>,
    /// Segment files this reader has read or mapped.
    loads: AtomicU64,
    /// Seek points of each loaded active segment, built from its bytes on
    /// first use (sealed segments keep theirs in index files).
    /// Seek points of each segment, found on first use, and whether they
    /// were built from the bytes (rather than read from an index file).
    memory_index: Vec<Mutex<Option<(SeekPoints, bool)>>>,
    /// Entries below this seq are covered by a seal this reader found
    /// (`latest_seal`), so a read of them need not walk on to their seal.
    known_sealed: AtomicU64,
    /// Compressed segments' packed bytes, read for block-level reads.
    packed: Vec<Mutex<Option<Arc<SegmentMap>>>>,
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
        Self::open_on(root, storage::real())
    }

    /// A reader of the log in `root` whose every file read goes through
    /// `storage` (the fault simulator's hook).
    pub fn open_on(root: &Path, storage: Arc<dyn Storage>) -> Result<Self> {
        let dir = LogDir::with_storage(root, storage);
        let meta = dir.read_meta()?;
        let log_id = meta.log_id()?;
        let epochs = meta.recorded_epochs()?;
        let bases = dir.list_segments()?;
        let packed = bases.iter().map(|_| Mutex::new(None)).collect();
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
            epochs,
            loaded: bases.iter().map(|_| Mutex::new(None)).collect(),
            memory_index: bases.iter().map(|_| Mutex::new(None)).collect(),
            bases,
            loads: AtomicU64::new(0),
            known_sealed: AtomicU64::new(0),
            packed,
        })
    }

    /// Loads the active segment now (its last commit, read once and kept,
    /// as `load` does), so a caller can overlap that read with other
    /// start-up work; a failure is left for the next `load` to report.
    pub fn preload_active(&self) {
        if let Some(&last) = self.bases.last() {
            let _ = self.load(last);
        }
    }

    /// The bytes of segment `base` as this reader first loaded them.
    pub fn load(&self, base: u64) -> Result<Arc<SegmentBytes>> {
        let Some(slot) = self
            .bases
            .binary_search(&base)
            .ok()
            .and_then(|i| self.loaded.get(i))
        else {
            // Not in the snapshot: read it, but do not keep it.
            self.loads.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::new(load_segment(&self.dir, base)?));
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bytes) = slot.as_ref() {
            return Ok(bytes.clone());
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        let bytes = Arc::new(load_for_reader(&self.dir, base, &self.seal_key())?);
        *slot = Some(bytes.clone());
        Ok(bytes)
    }

    /// The seek points of segment `base`, found once per reader: its index
    /// file (the writer keeps one for the active segment too), else built
    /// from the bytes this reader holds (and saved, for a sealed segment).
    /// `rebuild` replaces points that failed their check with points built
    /// from the bytes, once.
    fn seek_points(
        &self,
        base: u64,
        bytes: &SegmentBytes,
        header_len: usize,
        rebuild: bool,
    ) -> SeekPoints {
        let build = || {
            let pairs = build_index(bytes, header_len, base);
            if bytes.is_sealed() {
                let _ =
                    index::write_through(&*self.dir.storage, &self.dir.index_path(base), &pairs);
            }
            Arc::new(pairs)
        };
        let Some(slot) = self
            .bases
            .binary_search(&base)
            .ok()
            .and_then(|i| self.memory_index.get(i))
        else {
            return build();
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some((points, built)) if !rebuild || *built => points.clone(),
            Some(_) => {
                let points = build();
                *slot = Some((points.clone(), true));
                points
            }
            None => {
                let index_path = self.dir.index_path(base);
                let (points, built) = match index::read_through(&*self.dir.storage, &index_path) {
                    Some(pairs) => (Arc::new(pairs), false),
                    None => (build(), true),
                };
                *slot = Some((points.clone(), built));
                points
            }
        }
    }

    /// Asks the kernel to read ahead the pages that reads of `seqs` will
    /// touch (from each one's seek point), all at once, so a cold read of
    /// entries spread over a large log waits for the disk about once
    /// instead of once per entry. Only a hint: failures are ignored.
    pub fn prefetch(&self, seqs: &[u64]) {
        // Group by segment, then prepare the segments on threads of their
        // own: opening a cold segment and its index file costs a few disk
        // round trips each, which then overlap instead of adding up.
        let mut by_segment: Vec<(u64, Vec<u64>)> = Vec::new();
        for &seq in seqs {
            let i = self.bases.partition_point(|b| *b <= seq);
            let Some(&base) = i.checked_sub(1).and_then(|i| self.bases.get(i)) else {
                continue;
            };
            match by_segment.last_mut() {
                Some((b, v)) if *b == base => v.push(seq),
                _ => by_segment.push((base, vec![seq])),
            }
        }
        // Each segment's index file is needed right after its footer:
        // asked for now, it arrives while the footer is read.
        for (base, _) in &by_segment {
            super::readahead::hint_index(&self.dir, *base);
        }
        std::thread::scope(|scope| {
            for (base, seqs) in &by_segment {
                scope.spawn(move || self.prefetch_segment(*base, seqs));
            }
        });
    }

    fn prefetch_segment(&self, base: u64, seqs: &[u64]) {
        /// Past a seek point, a read walks at most `INDEX_STRIDE` frames.
        const AHEAD: u64 = 128 << 10;
        if self.loaded_len(base).is_none() {
            if let Ok(Some(packed)) = self.packed(base) {
                // Compressed: read by blocks when asked, not decompressed
                // whole; ask for the pages of the blocks that will be.
                packed.random_access();
                advise_blocks(&packed, seqs);
                return;
            }
        }
        let Ok(bytes) = self.load(base) else { return };
        let map = match &*bytes {
            SegmentBytes::Mapped(m) | SegmentBytes::SealedPrefix(m) => m,
            SegmentBytes::Owned(_) | SegmentBytes::Decompressed(_) => return,
        };
        // Every page these reads touch is asked for below. Without this,
        // each fault on a cold page also reads around it as far as the
        // device's read-ahead reaches (8 MiB on the machine of
        // docs/PERFORMANCE.md: a cold replay of 100 entries read 45 MB).
        // The advice lasts as long as this reader's mapping.
        map.random_access();
        let Ok((_, hlen)) = self.header(base, &bytes) else {
            return;
        };
        let points = self.seek_points(base, &bytes, hlen, false);
        for &seq in seqs {
            // The walk to `seq` starts at its seek point and ends before
            // the next one: ask for exactly those pages.
            let i = points.partition_point(|(s, _)| *s <= seq);
            let from = i
                .checked_sub(1)
                .and_then(|i| points.get(i))
                .map_or(hlen as u64, |&(_, off)| off);
            let to = points
                .get(i)
                .map_or(from.saturating_add(AHEAD), |&(_, off)| off.max(from));
            let end = to.min(map.len() as u64);
            let at = from.min(map.len() as u64);
            let len = end.saturating_sub(at).clamp(1, AHEAD);
            map.will_need(at as usize, len as usize);
        }
    }

    /// How many segment files this reader has read or mapped: each at most
    /// once, whatever was asked of it.
    pub fn segment_loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// A loaded segment's length, without touching the file again.
    fn loaded_len(&self, base: u64) -> Option<u64> {
        let i = self.bases.binary_search(&base).ok()?;
        let slot = self
            .loaded
            .get(i)?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(|b| b.len() as u64)
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
        if seq <= base {
            return header_len as u64;
        }
        let checked = |pairs: &[(u64, u64)]| -> Option<u64> {
            let (want, off) = index::seek_point(pairs, seq)?;
            let frame = log_format::frame::decode_frame(bytes.get(off as usize..)?, off).ok()?;
            let v = decode_entry(frame.body, off).ok()?;
            (frame.frame_type == FrameType::Entry && v.seq == want)
                .then(|| skip_frames(bytes, want, off, seq))
        };
        if let Some(off) = checked(&self.seek_points(base, bytes, header_len, false)) {
            return off;
        }
        // The index file was missing a point or wrong (it is a cache that
        // may be stale, damaged or copied from elsewhere): use points built
        // from the bytes.
        checked(&self.seek_points(base, bytes, header_len, true)).unwrap_or(header_len as u64)
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
            let name = segment_file_name(base);
            let known = to < self.known_sealed.load(Ordering::Relaxed);
            if known && self.loaded_len(base).is_none() {
                // A compressed segment not yet decompressed: decompress only
                // the blocks that hold the entries asked for.
                if let Some(flow) = self.walk_packed_blocks(base, from, to, &mut f)? {
                    match flow {
                        ControlFlow::Break(()) => break,
                        ControlFlow::Continue(()) => continue,
                    }
                }
            }
            let bytes = self.load(base)?;
            let (header, hlen) = self.header(base, &bytes)?;
            let start = self.start_offset(base, &bytes, hlen, from);
            let state = if start == hlen as u64 {
                ChainState::from_header(&header)
            } else {
                ChainState::resume_at(from)
            };
            let mut walk = ChainWalk::new(&bytes, 0, start, base, state, READER_CHECKS);
            walk.payloads_until(to);
            if known {
                // Known to be sealed: hand entries out as they are read and
                // stop at `to`, instead of walking on to the seal after it
                // (up to a whole commit further). Readers check payloads,
                // not the chain, either way.
                match walk_known_sealed(&name, &mut walk, from, to, &mut f)? {
                    ControlFlow::Break(()) => break,
                    ControlFlow::Continue(()) => continue,
                }
            }
            let cur = visit_sealed(&name, &mut walk, &self.seal_key(), |v, _| {
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
            if !cur.footer && Some(&base) != self.bases.last() {
                // Only the last segment may end torn (SPEC §7.2). A sealed
                // one whose walk stops short of its footer (a flipped bit
                // in its last seal, say) is damaged: going on to the next
                // segment would skip its last entries without a word.
                return Err(Error::Damaged {
                    path: self.dir.segment_path(base),
                    reason: format!(
                        "a sealed segment's frames end at offset {} without its footer: damaged, not torn (only the last segment may end torn)",
                        cur.offset
                    ),
                });
            }
        }
        Ok(())
    }

    /// Segment `base`'s packed bytes when it is stored compressed only (a
    /// plain file wins when both exist, SPEC §12), read once per reader.
    fn packed(&self, base: u64) -> Result<Option<Arc<SegmentMap>>> {
        let Some(slot) = self
            .bases
            .binary_search(&base)
            .ok()
            .and_then(|i| self.packed.get(i))
        else {
            return Ok(None);
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(Some(p.clone()));
        }
        if self.dir.storage.exists(&self.dir.segment_path(base)) {
            return Ok(None);
        }
        let path = self.dir.compressed_path(base);
        let file = match self.dir.storage.open_read(&path) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        if file.size()? > PACKED_MAX {
            // Refused unread, as `load_compressed` refuses it.
            return Ok(None);
        }
        let Some(map) = file.map_compressed()? else {
            return Ok(None);
        };
        let map = Arc::new(map);
        *slot = Some(map.clone());
        Ok(Some(map))
    }

    /// `for_each` over a compressed segment, for entries known to be sealed:
    /// decompresses only the blocks from the one where `from` starts (by the
    /// block index) to the last whose first entry is at or below `to`, and
    /// walks them as readers walk a segment (every frame's CRC, every
    /// payload's hash). `None` when the segment is not stored compressed:
    /// the caller then reads it as usual.
    fn walk_packed_blocks(
        &self,
        base: u64,
        from: u64,
        to: u64,
        f: &mut impl FnMut(&EntryView<'_>) -> ControlFlow<()>,
    ) -> Result<Option<ControlFlow<()>>> {
        let Some(packed) = self.packed(base)? else {
            return Ok(None);
        };
        let path = self.dir.compressed_path(base);
        let bad = |source| Error::Archive {
            path: path.clone(),
            source,
        };
        let archive = log_format::archive::Archive::parse(&packed).map_err(bad)?;
        let Some(first) = archive.block_of_seq(from.max(base)) else {
            return Ok(None);
        };
        let mut next = first;
        while let Some(b) = archive.blocks.get(next) {
            if next > first && b.first_seq > to {
                break;
            }
            next += 1;
        }
        let buf = archive.decode_blocks(first, next).map_err(bad)?;
        let Some(at) = archive.blocks.get(first).map(|b| b.uncompressed_offset) else {
            return Ok(None);
        };
        let name = segment_file_name(base);
        let (start, state) = if first == 0 {
            let (header, hlen) = self.header(base, &buf)?;
            (hlen as u64, ChainState::from_header(&header))
        } else {
            let first_seq = archive.blocks.get(first).map_or(base, |b| b.first_seq);
            (at, ChainState::resume_at(first_seq))
        };
        let mut walk = ChainWalk::new(&buf, at, start, base, state, READER_CHECKS);
        walk.payloads_until(to);
        let flow = walk_known_sealed(&name, &mut walk, from, to, f)?;
        if flow.is_continue() && next < archive.blocks.len() {
            // Entry `to` starts in a block whose first seq is at or below
            // it, and every such block was decoded: an index that says
            // otherwise does not describe its blocks.
            return Err(bad(log_format::ArchiveError::Malformed {
                what: "block index",
                offset: at,
                reason: format!(
                    "the blocks from {first} end before seq {to}, which the index puts in them"
                ),
            }));
        }
        Ok(Some(flow))
    }

    /// One sealed entry by seq, with where it is stored and the seal that
    /// covers it, handed to `f`; `None` when no sealed entry has that seq.
    /// The walk is the readers' own (payload hash checked, tail judged by
    /// SPEC §7.2), from the segment's sparse index.
    pub fn locate<T>(
        &self,
        seq: u64,
        f: impl FnOnce(&EntryView<'_>, &Location) -> T,
    ) -> Result<Option<T>> {
        let i = self.bases.partition_point(|b| *b <= seq);
        let Some(&base) = i.checked_sub(1).and_then(|i| self.bases.get(i)) else {
            return Ok(None);
        };
        let bytes = self.load(base)?;
        let (header, hlen) = self.header(base, &bytes)?;
        let start = self.start_offset(base, &bytes, hlen, seq);
        let state = if start == hlen as u64 {
            ChainState::from_header(&header)
        } else {
            ChainState::resume_at(seq)
        };
        let mut walk = ChainWalk::new(&bytes, 0, start, base, state, READER_CHECKS);
        let name = segment_file_name(base);
        let mut f = Some(f);
        let mut out = None;
        let mut bad_frame = None;
        visit_sealed_with_seal(&name, &mut walk, &self.seal_key(), |v, offset, seal| {
            if v.seq < seq {
                return ControlFlow::Continue(());
            }
            if v.seq == seq {
                // The walk decoded this frame, so it is whole and valid;
                // its length is read back for the report.
                let frame = usize::try_from(offset)
                    .ok()
                    .and_then(|o| bytes.get(o..))
                    .and_then(|b| log_format::frame::decode_frame(b, offset).ok());
                match (frame, f.take()) {
                    (Some(frame), Some(f)) => {
                        let loc = Location {
                            base,
                            segment: name.clone(),
                            offset,
                            frame_bytes: frame.total_len as u64,
                            body_bytes: frame.body.len() as u64,
                            seal: seal.0.clone(),
                            seal_offset: seal.1,
                        };
                        out = Some(f(v, &loc));
                    }
                    _ => bad_frame = Some(offset),
                }
            }
            ControlFlow::Break(())
        })?;
        if let Some(offset) = bad_frame {
            return Err(Error::Format {
                segment: name,
                source: log_format::FormatError::Malformed {
                    what: "entry frame",
                    offset,
                    reason: "cannot be read back after the walk decoded it".into(),
                },
            });
        }
        Ok(out)
    }

    /// The key that judges a damaged tail (SPEC §7.2).
    pub fn seal_key(&self) -> SealKey<'_> {
        self.epochs.seal_key()
    }

    /// The newest seal in the log: the last one in the last segment that has
    /// one. Payloads are not read here, only where the valid frames end.
    pub fn latest_seal(&self) -> Result<Seal> {
        let seal = self.find_latest_seal()?;
        self.known_sealed
            .fetch_max(seal.tree_size, Ordering::Relaxed);
        Ok(seal)
    }

    fn find_latest_seal(&self) -> Result<Seal> {
        let checks = Checks::default();
        for &base in self.bases.iter().rev() {
            if let Some(seal) = self.tail_seal(base)? {
                return Ok(seal);
            }
            let bytes = self.load(base)?;
            let name = segment_file_name(base);
            let (_, mut walk) =
                ChainWalk::segment(&bytes, checks).map_err(|source| Error::Format {
                    segment: name.clone(),
                    source,
                })?;
            let cur = visit_sealed(&name, &mut walk, &self.seal_key(), |_, _| {
                ControlFlow::Continue(())
            })?;
            if let Some(s) = cur.last_seal {
                return Ok(s);
            }
        }
        Err(Error::NotALog {
            dir: self.dir.root.clone(),
            reason: "no seal found in any segment".into(),
        })
    }

    /// The last seal of segment `base`, read from the end of its file: the
    /// newest signed seal there, accepted only if the write it closes is
    /// whole (walked from the seal before it, or from the header, to it).
    /// Under the fault model (SPEC §7.1) only the last write can be
    /// undurable, so this is the seal a walk of the whole segment reaches,
    /// at the cost of one commit instead of the segment. `None` when that
    /// cannot be shown this way (no seal near the end, a torn or damaged
    /// last write): the caller walks the segment and judges its tail.
    /// It reads the segment as this reader loaded it, so the seal it names
    /// and every entry the reader hands out come from one snapshot.
    fn tail_seal(&self, base: u64) -> Result<Option<Seal>> {
        let bytes = self.load(base)?;
        let all: &[u8] = &bytes;
        let from = all.len().saturating_sub(TAIL_WINDOW as usize);
        Ok(whole_last_seal(&all[from..], from as u64, base, &self.seal_key()).map(|(s, _)| s))
    }

    pub fn stats(&self) -> Result<Stats> {
        let seal = self.latest_seal()?;
        let mut bytes = 0;
        for &b in &self.bases {
            bytes += match self.loaded_len(b) {
                Some(n) => n,
                None => segment_len(&self.dir, b)?,
            };
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
/// From the entry `at_seq` at offset `at`, the offset of entry `seq`,
/// found by counting entry frames (CRC checked, nothing decoded or hashed):
/// a seek point is up to `INDEX_STRIDE` entries before the one wanted, and
/// the walk that reads it checks only what it hands out. Falls back to `at`
/// if the frames stop first (the walk from there judges why).
fn skip_frames(bytes: &[u8], at_seq: u64, at: u64, seq: u64) -> u64 {
    let mut walk = FrameWalk::new(bytes, 0);
    walk.seek(at);
    let mut n = at_seq;
    for f in walk {
        if f.frame_type == FrameType::Entry {
            if n == seq {
                return f.offset;
            }
            n += 1;
        }
    }
    at
}

/// Seek points by hopping frame lengths, without checking CRCs or decoding:
/// an index is only a hint, since every seek point is checked (a whole,
/// valid entry frame with the indexed seq) before it is used, so a wrong
/// point costs a walk from the segment's start, never a wrong answer. The
/// hop touches only frame headers, which keeps a reader's first question
/// about a large active segment cheap.
pub fn build_index(bytes: &[u8], header_len: usize, base: u64) -> Vec<(u64, u64)> {
    use log_format::frame::{FRAME_BODY_MAX, FRAME_HEADER_LEN};
    let stride = crate::log::writer::INDEX_STRIDE;
    let mut out = Vec::new();
    let mut seq = base;
    let mut at = header_len;
    while let Some(head) = bytes.get(at..at + FRAME_HEADER_LEN) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if len == 0 || len > FRAME_BODY_MAX || at + FRAME_HEADER_LEN + len > bytes.len() {
            break;
        }
        if head[8] == FrameType::Entry as u8 {
            if (seq - base).is_multiple_of(stride) {
                out.push((seq, at as u64));
            }
            seq += 1;
        }
        at += FRAME_HEADER_LEN + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::dir::InitOptions;
    use crate::{Log, NewEntry};

    #[test]
    fn one_reader_loads_each_segment_once_whatever_it_is_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            segment_bytes: 1 << 20,
            key_file: None,
            clock_skew_tolerance_s: None,
        };
        let log = Log::create(tmp.path(), &opts).unwrap();
        let e = NewEntry {
            actor: "agent:t".into(),
            ..NewEntry::argus("x.test", &serde_json::json!({"a": 1}))
        };
        log.append(vec![e.clone(), e.clone(), e]).unwrap();
        drop(log);
        let r = LogReader::open(tmp.path()).unwrap();
        assert_eq!(r.latest_seal().unwrap().tree_size, 3);
        let mut seen = 0;
        for from in [0, 1, 2] {
            r.for_each(from, from, |_| {
                seen += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        }
        assert_eq!(seen, 3);
        assert_eq!(r.stats().unwrap().entries, 3);
        assert_eq!(r.segment_loads(), 1, "the active segment was loaded again");
    }

    #[test]
    fn the_plain_form_wins_and_the_compressed_form_reads_back_the_same_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            segment_bytes: 4096,
            key_file: None,
            clock_skew_tolerance_s: None,
        };
        let log = Log::create(tmp.path(), &opts).unwrap();
        let e = NewEntry {
            actor: "agent:t".into(),
            ..NewEntry::argus("x.test", &serde_json::json!({"pad": "x".repeat(300)}))
        };
        for _ in 0..4 {
            log.append(vec![e.clone(); 12]).unwrap();
        }
        drop(log);
        let dir = LogDir::new(tmp.path());
        let plain = std::fs::read(dir.segment_path(0)).unwrap();
        let packed = log_format::archive::encode(&plain, &Default::default()).unwrap();
        // Both forms, the compressed one damaged: the plain one is read.
        let mut bad = packed.clone();
        bad[40] ^= 0xff;
        std::fs::write(dir.compressed_path(0), &bad).unwrap();
        assert_eq!(
            dir.list_segments()
                .unwrap()
                .iter()
                .filter(|b| **b == 0)
                .count(),
            1
        );
        let got = load_segment(&dir, 0).unwrap();
        assert!(matches!(got, SegmentBytes::Mapped(_)));
        assert_eq!(*got, *plain);
        // Compressed only: the same bytes, and the damaged copy is refused.
        std::fs::remove_file(dir.segment_path(0)).unwrap();
        assert!(matches!(load_segment(&dir, 0), Err(Error::Archive { .. })));
        std::fs::write(dir.compressed_path(0), &packed).unwrap();
        let got = load_segment(&dir, 0).unwrap();
        assert!(got.is_sealed());
        assert_eq!(*got, *plain);
        assert_eq!(segment_len(&dir, 0).unwrap(), plain.len() as u64);
        let r = LogReader::open(tmp.path()).unwrap();
        let mut n = 0;
        r.for_each(0, u64::MAX, |_| {
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(n, 48);
    }

    fn log_with_commits(commits: usize) -> (tempfile::TempDir, Vec<u64>) {
        let tmp = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            segment_bytes: 1 << 20,
            key_file: None,
            clock_skew_tolerance_s: None,
        };
        let log = Log::create(tmp.path(), &opts).unwrap();
        let e = NewEntry {
            actor: "agent:t".into(),
            ..NewEntry::argus("x.test", &serde_json::json!({"a": 1}))
        };
        let mut sizes = Vec::new();
        for c in 0..commits {
            let acks = log.append(vec![e.clone(); 1 + c % 3]).unwrap();
            sizes.push(acks.last().unwrap().seq + 1);
        }
        drop(log);
        (tmp, sizes)
    }

    /// The seal a walk of the whole segment reaches, for comparison.
    fn walked_seal(r: &LogReader, base: u64) -> Option<Seal> {
        let bytes = r.load(base).unwrap();
        let (_, mut walk) = ChainWalk::segment(&bytes, Checks::default()).unwrap();
        visit_sealed("t", &mut walk, &r.seal_key(), |_, _| {
            ControlFlow::Continue(())
        })
        .ok()
        .and_then(|c| c.last_seal)
    }

    #[test]
    fn the_seal_found_from_the_end_is_the_one_a_whole_walk_reaches() {
        for commits in [1, 2, 7] {
            let (tmp, sizes) = log_with_commits(commits);
            let r = LogReader::open(tmp.path()).unwrap();
            let fast = r.tail_seal(0).unwrap().expect("found from the end");
            let walked = walked_seal(&r, 0).expect("walked");
            assert_eq!(fast.tree_size, walked.tree_size);
            assert_eq!(fast.head, walked.head);
            assert_eq!(Some(&fast.tree_size), sizes.last());
        }
    }

    #[test]
    fn a_torn_last_write_is_not_taken_from_the_end() {
        let (tmp, sizes) = log_with_commits(5);
        let seg = LogDir::new(tmp.path()).segment_path(0);
        let len = std::fs::metadata(&seg).unwrap().len();
        // Zero a byte inside the last commit's entries (a power cut that lost
        // one of its pages but kept its seal): its seal must not be believed.
        let seal_len = log_format::tail::SEAL_FRAME_LEN as u64;
        let mut bytes = std::fs::read(&seg).unwrap();
        let at = (len - seal_len - 20) as usize;
        bytes[at] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        let r = LogReader::open(tmp.path()).unwrap();
        assert!(
            r.tail_seal(0).unwrap().is_none(),
            "a damaged last write must send the reader to the whole walk"
        );
        // The whole walk judges it (torn or corrupt); either way the newest
        // seal is not reported as if its entries were whole.
        if let Ok(s) = r.latest_seal() {
            assert!(s.tree_size < *sizes.last().unwrap(), "{}", s.tree_size);
        }
    }
}
