//! One segment, judged on its own from the state its header claims (SPEC
//! §7 steps 1–4): header, every frame through the chain walker with every
//! check, and how its frames end. Segments are judged in parallel; the
//! links between them are `verify`'s sequential pass.
use super::failure::{fail, header_failure, At, Cause, Class, Failure};
use crate::log::redactions::Redaction;
use log_format::tail::FoundSeal;
use log_format::walk::{ChainWalk, Checks, Item};
use log_format::{
    CompactRange, EntryView, FormatError, Hash32, KeyEpochs, LogId, Seal, SealKey, SegmentHeader,
    Tail,
};

/// What every segment is checked against.
pub(super) struct Ctx {
    pub log_id: LogId,
    /// The key epochs certified so far, from the pinned key (SPEC §4.7):
    /// segments are judged in order, each after its own `key.rotated`
    /// entries are added.
    pub epochs: KeyEpochs,
    /// Tree sizes of the trusted checkpoints, whose roots are recorded.
    pub want_sizes: Vec<u64>,
    pub skew_tolerance_ns: u64,
    /// Threads one segment's ranges are checked on.
    pub threads: usize,
}

impl Ctx {
    pub fn seal_key(&self) -> SealKey<'_> {
        self.epochs.seal_key()
    }
}

/// Where a segment's valid frames stop before its end, judged a torn tail
/// (SPEC §7.2 rows 1–2). Only the last segment may have one.
pub(super) struct Torn {
    pub offset: u64,
    pub cause: FormatError,
    pub signed_seal: Option<FoundSeal>,
}

impl Torn {
    /// The cause, and the signed seal the torn bytes held, for people.
    pub fn why(&self) -> String {
        let mut why = self.cause.to_string();
        if let Some(s) = self.signed_seal {
            why.push_str(&format!(
                "; the torn bytes hold a validly signed seal for tree size {} at offset {}: under the fault model (SPEC §7.1) that commit was never durable, but compare with a trusted checkpoint",
                s.tree_size, s.offset
            ));
        }
        why
    }
}

/// What one segment looked like, judged on its own.
pub(super) struct SegResult {
    pub name: String,
    pub bytes: u64,
    pub header: Option<SegmentHeader>,
    pub failure: Option<Box<Failure>>,
    pub next_seq: u64,
    pub last_hash: Hash32,
    pub range: CompactRange,
    pub last_seal: Option<Seal>,
    pub has_footer: bool,
    pub end_offset: u64,
    pub torn: Option<Torn>,
    pub unsealed: u64,
    pub entries: u64,
    pub roots_at: Vec<(u64, Hash32)>,
    /// Clock jumps on record, and steps back no record explains (SPEC §4.5).
    pub clock_notes: Vec<String>,
    /// Entries whose payload is in the erased form: (seq, frame offset,
    /// payload hash), to be explained by a later redaction (SPEC §4.2.1).
    pub erased: Vec<(u64, u64, Hash32)>,
    /// The redactions this segment records.
    pub redactions: Vec<Redaction>,
}

/// A segment that could not be judged because it could not be read back
/// (a damaged compressed segment): only its failure.
pub(super) fn unreadable(name: &str, base: u64, failure: Box<Failure>) -> SegResult {
    SegResult {
        name: name.to_string(),
        bytes: 0,
        header: None,
        failure: Some(failure),
        next_seq: base,
        last_hash: [0; 32],
        range: CompactRange::new(),
        last_seal: None,
        has_footer: false,
        end_offset: 0,
        torn: None,
        unsealed: 0,
        entries: 0,
        roots_at: Vec::new(),
        clock_notes: Vec::new(),
        erased: Vec::new(),
        redactions: Vec::new(),
    }
}

/// Judges one segment. Never fails: what is wrong is in `failure`.
pub(super) fn check_segment(
    name: &str,
    base: u64,
    bytes: &[u8],
    ctx: &Ctx,
    progress: &(dyn Fn(u64) + Sync),
) -> SegResult {
    let mut r = SegResult {
        name: name.to_string(),
        bytes: bytes.len() as u64,
        header: None,
        failure: None,
        next_seq: base,
        last_hash: [0; 32],
        range: CompactRange::new(),
        last_seal: None,
        has_footer: false,
        end_offset: bytes.len() as u64,
        torn: None,
        unsealed: 0,
        entries: 0,
        roots_at: Vec::new(),
        clock_notes: Vec::new(),
        erased: Vec::new(),
        redactions: Vec::new(),
    };
    let (h, mut walk) = match open_walk(name, base, bytes, ctx) {
        Ok(w) => w,
        Err(f) => {
            r.failure = Some(f);
            return r;
        }
    };
    r.next_seq = h.base_seq;
    r.last_hash = h.prev_hash;
    r.range = h.frontier.clone();
    r.header = Some(h);
    if ctx.want_sizes.contains(&base) {
        r.roots_at.push((base, r.range.root()));
    }
    if let Some(h) = &r.header {
        if let Some(s) = super::ranges::check_fast(bytes, h, walk.offset(), ctx, progress) {
            r.next_seq = s.next_seq;
            r.last_hash = s.last_hash;
            r.range = s.range;
            r.last_seal = s.last_seal;
            r.has_footer = s.has_footer;
            r.unsealed = s.unsealed;
            r.entries = s.entries;
            r.roots_at.extend(s.roots_at);
            r.clock_notes = s.clock_notes;
            r.erased = s.erased;
            r.redactions = s.redactions;
            return r;
        }
    }
    match walk_frames(&mut r, &mut walk, ctx, progress) {
        Ok(reported) => progress(bytes.len() as u64 - reported),
        Err(f) => {
            r.failure = Some(f);
            return r;
        }
    }
    judge_tail(&mut r, &walk, ctx);
    r
}

/// The header, checked against the log and the file name, and a walk from
/// the state it claims with every check (SPEC §7 steps 1–4).
fn open_walk<'a, 'k>(
    name: &str,
    base: u64,
    bytes: &'a [u8],
    ctx: &'k Ctx,
) -> Result<(SegmentHeader, ChainWalk<'a, 'k>), Box<Failure>> {
    let checks = Checks {
        chain: true,
        payload: true,
        erased: true,
        merkle: true,
        signatures: Some(ctx.seal_key()),
    };
    let (h, walk) = ChainWalk::segment(bytes, checks).map_err(|e| header_failure(name, e, true))?;
    if h.log_id != ctx.log_id {
        let at = At {
            segment: name,
            offset: 12,
            seq: None,
        };
        let msg = format!(
            "foreign segment: log id {} is not this log's {}",
            hex::encode(h.log_id),
            hex::encode(ctx.log_id)
        );
        let cause = Cause::ForeignSegment {
            found: h.log_id,
            expected: ctx.log_id,
        };
        return Err(fail(Class::Structure, at, cause, msg));
    }
    if h.base_seq != base {
        let at = At {
            segment: name,
            offset: 28,
            seq: None,
        };
        let msg = format!(
            "header base seq {} does not match the file name (renamed or reordered segment)",
            h.base_seq
        );
        let cause = Cause::BaseSeqMismatch { found: h.base_seq };
        return Err(fail(Class::Structure, at, cause, msg));
    }
    Ok((h, walk))
}

/// Walks every valid frame, recording seals, roots at the checkpoints'
/// sizes and clock notes; ends the segment's state where the walk ends.
/// Returns the bytes reported to `progress` (in 8 MiB steps). A fault is
/// the failure.
fn walk_frames(
    r: &mut SegResult,
    walk: &mut ChainWalk<'_, '_>,
    ctx: &Ctx,
    progress: &dyn Fn(u64),
) -> Result<u64, Box<Failure>> {
    let mut since_seal = 0u64;
    let mut reported = 0u64;
    let mut last_ts: Option<(u64, bool)> = None;
    while let Some(item) = walk.next() {
        match item.map_err(|f| fault_failure(&r.name, f))? {
            Item::Entry {
                entry,
                offset,
                erased,
                ..
            } => {
                if erased {
                    r.erased.push((entry.seq, offset, entry.payload_hash));
                } else if let Some(red) = Redaction::from_entry(&entry) {
                    r.redactions.push(red);
                }
                if let Some(n) = clock_note(&entry, &mut last_ts, ctx.skew_tolerance_ns) {
                    if r.clock_notes.len() <= CLOCK_NOTES_MAX {
                        r.clock_notes.push(n);
                    }
                }
                if offset - reported > (8 << 20) {
                    progress(offset - reported);
                    reported = offset;
                }
                since_seal += 1;
                let st = walk.state();
                if ctx.want_sizes.contains(&st.next_seq) {
                    r.roots_at.push((st.next_seq, st.range.root()));
                }
            }
            Item::Seal { seal, .. } => {
                r.last_seal = Some(seal);
                since_seal = 0;
            }
            Item::Footer { .. } => r.has_footer = true,
        }
    }
    r.clock_notes = merge_notes(std::mem::take(&mut r.clock_notes));
    let st = walk.state();
    r.next_seq = st.next_seq;
    r.last_hash = st.last_hash.unwrap_or(r.last_hash);
    r.range = st.range.clone();
    r.entries = st.entries;
    r.unsealed = since_seal;
    Ok(reported)
}

fn fault_failure(segment: &str, f: log_format::Fault) -> Box<Failure> {
    let at = At {
        segment,
        offset: f.offset(),
        seq: f.seq(),
    };
    let msg = f.to_string();
    fail(f.class().into(), at, Cause::Fault(f), msg)
}

/// How the segment's frames end (SPEC §7.2): a torn tail is noted (a
/// failure unless it is the last segment, which `verify` decides); damage
/// that later bytes prove was committed is the failure.
fn judge_tail(r: &mut SegResult, walk: &ChainWalk<'_, '_>, ctx: &Ctx) {
    match walk.tail(&ctx.seal_key()) {
        Tail::Clean => {}
        Tail::Torn {
            offset,
            cause,
            signed_seal,
        } => {
            r.torn = Some(Torn {
                offset,
                cause,
                signed_seal,
            })
        }
        Tail::Corrupt {
            offset,
            cause,
            proof,
        } => {
            let at = At {
                segment: &r.name,
                offset,
                seq: Some(r.next_seq),
            };
            let msg = format!("{cause}; this is corruption, not a torn tail: {proof}");
            r.failure = Some(fail(
                Class::Content,
                at,
                Cause::Corrupt { cause, proof },
                msg,
            ));
        }
    }
}

/// Most clock notes one segment reports; the count says how many more.
pub(super) const CLOCK_NOTES_MAX: usize = 8;

/// The first `CLOCK_NOTES_MAX` notes, and a line saying there were more
/// (callers keep at most one more than the limit).
pub(super) fn merge_notes(mut notes: Vec<String>) -> Vec<String> {
    if notes.len() > CLOCK_NOTES_MAX {
        notes.truncate(CLOCK_NOTES_MAX);
        notes.push("more clock notes in this segment not shown".into());
    }
    notes
}

/// A `clock.skew` entry written by Argus: a jump on record.
fn is_recorded(v: &EntryView<'_>) -> bool {
    v.kind == crate::time::CLOCK_SKEW_KIND
        && crate::authority::Class::of_actor(v.actor) == crate::authority::Class::Argus
}

fn step_back(seq: u64, prev: u64, ts_ns: u64) -> String {
    format!(
        "seq {seq}: time steps back {} with no clock.skew entry before it",
        crate::time::human_ns(prev - ts_ns)
    )
}

/// The first entry of a range checked on its own thread, judged there
/// without the entry before it.
#[derive(Clone, Copy)]
pub(super) struct FirstTs {
    seq: u64,
    ts_ns: u64,
    recorded: bool,
}

impl FirstTs {
    pub fn of(v: &EntryView<'_>) -> Self {
        Self {
            seq: v.seq,
            ts_ns: v.ts_ns,
            recorded: is_recorded(v),
        }
    }

    /// The note `clock_note` would have made had it seen `last_ts` first.
    pub fn step_back_after(
        &self,
        last_ts: Option<(u64, bool)>,
        tolerance_ns: u64,
    ) -> Option<String> {
        match last_ts {
            Some((prev, explained))
                if !self.recorded
                    && !explained
                    && self.ts_ns.saturating_add(tolerance_ns) < prev =>
            {
                Some(step_back(self.seq, prev, self.ts_ns))
            }
            _ => None,
        }
    }
}

/// A recorded clock jump, or a step back in time that no `clock.skew`
/// entry explains (a log written by hand, or by a build that did not record
/// jumps). Neither is a failure: an entry's time is only its writer's clock.
pub(super) fn clock_note(
    v: &EntryView<'_>,
    last_ts: &mut Option<(u64, bool)>,
    tolerance_ns: u64,
) -> Option<String> {
    let recorded = is_recorded(v);
    let note = if recorded {
        let p: serde_json::Value = serde_json::from_slice(v.payload).unwrap_or_default();
        let skew = p["skew_ms"].as_i64().unwrap_or(0).saturating_mul(1_000_000);
        Some(format!(
            "seq {}: clock jump on record: a writer's clock read {} {} the log's clock (evidence {}); log time counted {} across it",
            v.seq,
            crate::time::human_ns(skew.unsigned_abs()),
            if skew >= 0 { "ahead of" } else { "behind" },
            p["evidence"].as_str().unwrap_or("?"),
            crate::time::human_ns(crate::time::witnessed_ns(&p).unwrap_or(0)),
        ))
    } else {
        match *last_ts {
            Some((prev, explained))
                if !explained && v.ts_ns.saturating_add(tolerance_ns) < prev =>
            {
                Some(step_back(v.seq, prev, v.ts_ns))
            }
            _ => None,
        }
    };
    // A recorded jump explains the next entry's step.
    *last_ts = Some((v.ts_ns, recorded));
    note
}
