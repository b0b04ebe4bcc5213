//! The fast path for one segment: its frames split at entry frames into
//! ranges walked on separate threads, each from the state it claims, with
//! seal signatures checked in batches; then the joins are checked (each
//! range starts at the seq and on the hash where the one before it ends)
//! and the Merkle roots of seals past the first range are checked against
//! the tree joined from the ranges before them.
//!
//! It only ever says "this segment is fine": on anything else (a fault, a
//! bad join, a bad root, a failed batch, a torn tail) it gives up and the
//! segment is walked again, sequentially with `verify_strict` on every
//! seal, which names the first failure exactly as it always has.
use super::segment::{clock_note, merge_notes, Ctx, FirstTs, CLOCK_NOTES_MAX};
use super::sigs::{key_fit_for_batch, SigBatch};
use super::span::Span;
use crate::log::redactions::Redaction;
use log_format::entry::decode_entry;
use log_format::frame::decode_frame;
use log_format::walk::{ChainState, ChainWalk, Checks, Item};
use log_format::{CompactRange, FrameType, Hash32, Seal, SegmentHeader, FRAME_HEADER_LEN};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Smallest range worth a thread of its own.
const MIN_RANGE_BYTES: usize = 64 << 10;
/// Ranges per thread, so a slow range does not leave the others idle.
const RANGES_PER_THREAD: usize = 4;
/// How far past a chosen offset to look for the next entry frame.
const SPLIT_SEARCH_BYTES: usize = 256 << 10;
/// Largest frame taken as a range start, and most bytes checksummed while
/// looking for one: the search must stay cheap on hostile bytes (8 MiB of
/// frame headers that each claim a long body) as on a real log.
const SPLIT_FRAME_MAX: usize = 64 << 10;
const SPLIT_CRC_BUDGET: usize = 1 << 20;

/// A segment judged sound by the fast path.
pub(super) struct Sound {
    pub next_seq: u64,
    pub last_hash: Hash32,
    pub range: CompactRange,
    pub last_seal: Option<Seal>,
    pub has_footer: bool,
    pub unsealed: u64,
    pub entries: u64,
    pub roots_at: Vec<(u64, Hash32)>,
    pub clock_notes: Vec<String>,
    pub erased: Vec<(u64, u64, Hash32)>,
    pub redactions: Vec<Redaction>,
}

/// Where a range starts: a file offset holding an entry frame, with the
/// seq and prev that entry claims (both checked at the join).
#[derive(Clone, Copy)]
struct Start {
    offset: u64,
    seq: u64,
    prev: Hash32,
}

/// One range walked on its own.
#[derive(Default)]
struct Part {
    sound: bool,
    next_seq: u64,
    last_hash: Option<Hash32>,
    span: Span,
    /// Seals whose root waits for the ranges before: (root, this range's
    /// tree up to the seal).
    pending: Vec<(Hash32, Span)>,
    /// Checkpoint sizes inside this range, to be rooted likewise.
    want: Vec<(u64, Span)>,
    roots_at: Vec<(u64, Hash32)>,
    entries: u64,
    since_seal: u64,
    saw_seal: bool,
    last_seal: Option<Seal>,
    has_footer: bool,
    notes: Vec<String>,
    first_ts: Option<FirstTs>,
    last_ts: Option<(u64, bool)>,
    erased: Vec<(u64, u64, Hash32)>,
    redactions: Vec<Redaction>,
}

/// Checks the segment's frames after its header on up to `threads`
/// threads; `None` means "not shown sound here: walk it sequentially".
pub(super) fn check_fast(
    bytes: &[u8],
    header: &SegmentHeader,
    header_len: u64,
    ctx: &Ctx,
    progress: &(dyn Fn(u64) + Sync),
) -> Option<Sound> {
    if !ctx.epochs.all().iter().all(|e| key_fit_for_batch(&e.key)) {
        return None;
    }
    let starts = split(bytes, header, header_len, ctx.threads);
    let ends: Vec<u64> = starts
        .iter()
        .skip(1)
        .map(|s| s.offset)
        .chain(std::iter::once(bytes.len() as u64))
        .collect();
    let last = starts.len() - 1;
    let parts = par_map(starts.len(), ctx.threads, |i| {
        let p = walk_range(bytes, header, &starts[i], i, ends[i], i == last, ctx);
        progress(ends[i] - starts[i].offset);
        p
    })?;
    // The joins, in order: every range sound, each starting where the one
    // before it ended; the tree before each range.
    let mut prefixes = Vec::with_capacity(parts.len());
    let mut tree = Span::default();
    for (i, p) in parts.iter().enumerate() {
        if !p.sound {
            return None;
        }
        if i == 0 {
            tree = p.span.clone();
        } else {
            let prev = &parts[i - 1];
            if prev.next_seq != starts[i].seq || prev.last_hash != Some(starts[i].prev) {
                return None;
            }
            prefixes.push(tree.clone());
            tree.extend(&p.span);
        }
    }
    // Roots past the first range, on the threads again.
    let rooted = par_map(prefixes.len(), ctx.threads, |i| {
        let p = &parts[i + 1];
        let root_at = |s: &Span| {
            let mut t = prefixes[i].clone();
            t.extend(s);
            t.root()
        };
        let ok = p.pending.iter().all(|(want, s)| root_at(s) == *want);
        ok.then(|| {
            p.want
                .iter()
                .map(|(n, s)| (*n, root_at(s)))
                .collect::<Vec<_>>()
        })
    })?;
    let range = tree.frontier()?;
    let rooted = rooted.into_iter().collect::<Option<_>>()?;
    Some(assemble(parts, rooted, header, range, ctx))
}

/// The segment's totals from its sound ranges, in order.
fn assemble(
    parts: Vec<Part>,
    rooted: Vec<Vec<(u64, Hash32)>>,
    header: &SegmentHeader,
    range: CompactRange,
    ctx: &Ctx,
) -> Sound {
    let mut out = Sound {
        next_seq: header.base_seq,
        last_hash: header.prev_hash,
        range,
        last_seal: None,
        has_footer: false,
        unsealed: 0,
        entries: 0,
        roots_at: Vec::new(),
        clock_notes: Vec::new(),
        erased: Vec::new(),
        redactions: Vec::new(),
    };
    let mut notes = Vec::new();
    let mut last_ts: Option<(u64, bool)> = None;
    let mut more = std::iter::once(Vec::new()).chain(rooted);
    for p in parts {
        out.next_seq = p.next_seq;
        out.last_hash = p.last_hash.unwrap_or(out.last_hash);
        out.entries += p.entries;
        out.unsealed = if p.saw_seal {
            p.since_seal
        } else {
            out.unsealed + p.entries
        };
        if p.last_seal.is_some() {
            out.last_seal = p.last_seal;
        }
        out.has_footer = p.has_footer;
        out.roots_at.extend(p.roots_at);
        out.roots_at.extend(more.next().unwrap_or_default());
        // The first entry of a range was judged without the one before it.
        if let Some(f) = p.first_ts {
            if let Some(n) = f.step_back_after(last_ts, ctx.skew_tolerance_ns) {
                notes.push(n);
            }
        }
        notes.extend(p.notes);
        last_ts = p.last_ts.or(last_ts);
        out.erased.extend(p.erased);
        out.redactions.extend(p.redactions);
    }
    out.clock_notes = merge_notes(notes);
    out
}

/// Range starts: the first frame after the header, then up to one per
/// thread's share of ranges, each the first entry frame at or after an
/// even share of the bytes.
fn split(bytes: &[u8], header: &SegmentHeader, header_len: u64, threads: usize) -> Vec<Start> {
    let mut starts = vec![Start {
        offset: header_len,
        seq: header.base_seq,
        prev: header.prev_hash,
    }];
    let body = bytes.len().saturating_sub(header_len as usize);
    let n = if threads <= 1 {
        1
    } else {
        (threads * RANGES_PER_THREAD)
            .min(body / MIN_RANGE_BYTES)
            .max(1)
    };
    for i in 1..n {
        let from = header_len as usize + body * i / n;
        let from = from.max(starts[starts.len() - 1].offset as usize + 1);
        if let Some(s) = entry_frame_at_or_after(bytes, from) {
            if s.seq > starts[starts.len() - 1].seq {
                starts.push(s);
            }
        }
    }
    starts
}

/// The first offset at or after `from` that holds a valid entry frame. A
/// frame-shaped run of bytes inside a payload may be found instead; then
/// the range before it does not end there and the fast path gives up.
fn entry_frame_at_or_after(bytes: &[u8], from: usize) -> Option<Start> {
    let to = bytes.len().min(from.saturating_add(SPLIT_SEARCH_BYTES));
    let mut budget = SPLIT_CRC_BUDGET;
    for p in from..to {
        let Some(b) = bytes.get(p..p + FRAME_HEADER_LEN) else {
            break;
        };
        let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if b[8] != FrameType::Entry as u8 || len == 0 || len > SPLIT_FRAME_MAX {
            continue;
        }
        if len > budget {
            break;
        }
        budget -= len;
        let Ok(f) = decode_frame(&bytes[p..], p as u64) else {
            continue;
        };
        let Ok(v) = decode_entry(f.body, (p + FRAME_HEADER_LEN) as u64) else {
            continue;
        };
        return Some(Start {
            offset: p as u64,
            seq: v.seq,
            prev: v.prev,
        });
    }
    None
}

/// Walks `[start, end)` with every check but the first entry's link (the
/// join's) and the signatures (batched here); sound only if it ends
/// exactly at `end` with no fault.
fn walk_range(
    bytes: &[u8],
    header: &SegmentHeader,
    start: &Start,
    index: usize,
    end: u64,
    is_last: bool,
    ctx: &Ctx,
) -> Part {
    let checks = Checks {
        chain: true,
        payload: true,
        erased: true,
        merkle: false,
        signatures: None,
    };
    let Some(buf) = bytes.get(..end as usize) else {
        return Part::default();
    };
    let base = header.base_seq;
    let (state, span) = if index == 0 {
        (
            ChainState::from_header(header),
            Span::from_frontier(&header.frontier),
        )
    } else {
        let state = ChainState {
            next_seq: start.seq,
            last_hash: None,
            range: CompactRange::new(),
            entries: start.seq - base,
            sealed_size: start.seq,
            whole: true,
        };
        (state, Span::at(start.seq))
    };
    let rooted = index == 0;
    let mut walk = ChainWalk::new(buf, 0, start.offset, base, state, checks);
    let mut p = Part {
        span,
        ..Part::default()
    };
    let seal_key = ctx.seal_key();
    let mut sigs = SigBatch::new();
    let mut sound = true;
    for item in walk.by_ref() {
        let Ok(item) = item else {
            sound = false;
            break;
        };
        match item {
            Item::Entry {
                entry,
                offset,
                hash,
                erased,
            } => {
                let Some(h) = hash else {
                    sound = false;
                    break;
                };
                p.span.push(&h);
                if erased {
                    p.erased.push((entry.seq, offset, entry.payload_hash));
                } else if let Some(red) = Redaction::from_entry(&entry) {
                    p.redactions.push(red);
                }
                if p.entries == 0 && !rooted {
                    p.first_ts = Some(FirstTs::of(&entry));
                }
                if let Some(n) = clock_note(&entry, &mut p.last_ts, ctx.skew_tolerance_ns) {
                    if p.notes.len() <= CLOCK_NOTES_MAX {
                        p.notes.push(n);
                    }
                }
                p.entries += 1;
                p.since_seal += 1;
                let size = p.span.end();
                if ctx.want_sizes.contains(&size) {
                    if rooted {
                        p.roots_at.push((size, p.span.root()));
                    } else {
                        p.want.push((size, p.span.clone()));
                    }
                }
            }
            Item::Seal { seal, .. } => {
                // The key of the epoch whose range holds the seal's last
                // seq (SPEC §4.7); any other key is the sequential walk's
                // to name.
                let (_, key, kid) = seal_key.for_tree_size(seal.tree_size);
                if seal.key_id != kid {
                    sound = false;
                    break;
                }
                if rooted {
                    if p.span.root() != seal.root {
                        sound = false;
                        break;
                    }
                } else {
                    p.pending.push((seal.root, p.span.clone()));
                }
                if !sigs.add(key, seal.note_body(&ctx.log_id), &seal.signature) {
                    sound = false;
                    break;
                }
                p.since_seal = 0;
                p.saw_seal = true;
                p.last_seal = Some(seal);
            }
            Item::Footer { .. } => {
                // Only the last range may end the segment.
                if !is_last {
                    sound = false;
                    break;
                }
                p.has_footer = true;
            }
        }
    }
    let st = walk.state();
    p.next_seq = st.next_seq;
    p.last_hash = st.last_hash;
    p.sound = sound && walk.offset() == end && sigs.finish();
    p
}

/// `f(0..n)` on up to `threads` threads, results in index order (`None`
/// only if a result went missing, which a panic would cause).
fn par_map<R: Send>(n: usize, threads: usize, f: impl Fn(usize) -> R + Sync) -> Option<Vec<R>> {
    if threads <= 1 || n <= 1 {
        return Some((0..n).map(f).collect());
    }
    let slots: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.min(n) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = f(i);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().ok().flatten())
        .collect()
}
