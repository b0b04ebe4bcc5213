//! Offline verification (SPEC §7). Every hash is re-derived from stored
//! bytes; no stored hash is trusted. Segments are checked in parallel, each
//! from the state its own header claims, then a sequential pass checks that
//! every header matches where the previous segment ended.
use crate::error::{Error, IoContext, Result};
use crate::log::dir::{parse_segment_name, LogDir};
use crate::log::reader;
use crate::log::safe_fs::{self, FileKind};
use ed25519_dalek::VerifyingKey;
use log_format::walk::{ChainWalk, Checks, FaultClass, Item};
use log_format::{
    Checkpoint, CompactRange, FormatError, Hash32, LogId, Seal, SealKey, SegmentHeader, Tail,
};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Failure classes; the discriminant is `argusctl verify`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Class {
    Content = 10,
    Signature = 11,
    Truncation = 12,
    Structure = 13,
}

impl Class {
    pub fn code(self) -> i32 {
        self as i32
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub class: Class,
    pub segment: String,
    pub offset: u64,
    pub seq: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}: segments/{} offset {}",
            self.class, self.segment, self.offset
        )?;
        if let Some(s) = self.seq {
            write!(f, " seq {s}")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: &'static str,
    pub code: i32,
    pub failure: Option<Failure>,
    pub warnings: Vec<String>,
    pub key_pinned: bool,
    pub public_key: String,
    pub log_id: String,
    pub segments: usize,
    pub bytes: u64,
    pub entries: u64,
    pub sealed_size: u64,
    pub root: String,
    pub head: String,
    pub checkpoints_checked: usize,
}

pub struct Options {
    pub key: VerifyingKey,
    pub key_pinned: bool,
    pub checkpoints: Vec<Checkpoint>,
    pub threads: usize,
    /// Called from worker threads with bytes verified so far.
    pub progress: Option<Box<dyn Fn(u64) + Sync>>,
}

/// What one segment looked like, judged on its own.
struct SegResult {
    name: String,
    bytes: u64,
    header: Option<SegmentHeader>,
    failure: Option<Failure>,
    next_seq: u64,
    last_hash: Hash32,
    range: CompactRange,
    last_seal: Option<Seal>,
    has_footer: bool,
    end_offset: u64,
    torn: Option<(u64, String)>,
    unsealed: u64,
    entries: u64,
    roots_at: Vec<(u64, Hash32)>,
    /// Clock jumps on record, and steps back no record explains (SPEC §4.5).
    clock_notes: Vec<String>,
}

struct Ctx<'a> {
    log_id: LogId,
    key: &'a VerifyingKey,
    want_sizes: Vec<u64>,
    skew_tolerance_ns: u64,
}

impl Ctx<'_> {
    fn seal_key(&self) -> SealKey<'_> {
        SealKey::new(self.log_id, self.key)
    }
}

/// Most clock notes one segment reports; the count says how many more.
const CLOCK_NOTES_MAX: usize = 8;

/// Notes a recorded clock jump, or a step back in time that no `clock.skew`
/// entry explains (a log written by hand, or by a build that did not record
/// jumps). Neither is a failure: an entry's time is only its writer's clock.
fn clock_note(
    v: &log_format::EntryView<'_>,
    last_ts: &mut Option<(u64, bool)>,
    notes: &mut Vec<String>,
    tolerance_ns: u64,
) {
    let recorded = v.kind == crate::time::CLOCK_SKEW_KIND
        && crate::authority::Class::of_actor(v.actor) == crate::authority::Class::Argus;
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
                Some(format!(
                    "seq {}: time steps back {} with no clock.skew entry before it",
                    v.seq,
                    crate::time::human_ns(prev - v.ts_ns)
                ))
            }
            _ => None,
        }
    };
    if let Some(n) = note {
        if notes.len() < CLOCK_NOTES_MAX {
            notes.push(n);
        } else if notes.len() == CLOCK_NOTES_MAX {
            notes.push("more clock notes in this segment not shown".into());
        }
    }
    // A recorded jump explains the next entry's step.
    *last_ts = Some((v.ts_ns, recorded));
}

impl From<FaultClass> for Class {
    fn from(c: FaultClass) -> Self {
        match c {
            FaultClass::Content => Class::Content,
            FaultClass::Signature => Class::Signature,
            FaultClass::Structure => Class::Structure,
        }
    }
}

fn fail(class: Class, seg: &str, offset: u64, seq: Option<u64>, msg: impl Into<String>) -> Failure {
    Failure {
        class,
        segment: seg.to_string(),
        offset,
        seq,
        message: msg.into(),
    }
}

fn header_class(e: &FormatError) -> Class {
    match e {
        FormatError::HeaderChecksum { .. } => Class::Content,
        _ => Class::Structure,
    }
}

fn check_segment(
    name: &str,
    base: u64,
    bytes: &[u8],
    ctx: &Ctx<'_>,
    progress: &dyn Fn(u64),
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
    };
    let checks = Checks {
        chain: true,
        payload: true,
        merkle: true,
        signatures: Some(ctx.seal_key()),
    };
    let (h, mut walk) = match ChainWalk::segment(bytes, checks) {
        Ok(s) => s,
        Err(e) => {
            let off = match &e {
                FormatError::HeaderChecksum { offset, .. } => *offset,
                _ => 0,
            };
            r.failure = Some(fail(
                header_class(&e),
                name,
                off,
                None,
                format!("segment header: {e}"),
            ));
            return r;
        }
    };
    if h.log_id != ctx.log_id {
        r.failure = Some(fail(
            Class::Structure,
            name,
            12,
            None,
            format!(
                "foreign segment: log id {} is not this log's {}",
                hex::encode(h.log_id),
                hex::encode(ctx.log_id)
            ),
        ));
        return r;
    }
    if h.base_seq != base {
        r.failure = Some(fail(
            Class::Structure,
            name,
            28,
            None,
            format!(
                "header base seq {} does not match the file name (renamed or reordered segment)",
                h.base_seq
            ),
        ));
        return r;
    }
    r.next_seq = h.base_seq;
    r.last_hash = h.prev_hash;
    r.range = h.frontier.clone();
    r.header = Some(h);
    for &n in &ctx.want_sizes {
        if n == base {
            r.roots_at.push((n, r.range.root()));
        }
    }
    let mut since_seal = 0u64;
    let mut done_bytes = 0u64;
    let mut last_ts: Option<(u64, bool)> = None;
    while let Some(item) = walk.next() {
        let item = match item {
            Ok(i) => i,
            Err(f) => {
                r.failure = Some(fail(
                    f.class().into(),
                    name,
                    f.offset(),
                    f.seq(),
                    f.to_string(),
                ));
                return r;
            }
        };
        match item {
            Item::Entry { entry, offset, .. } => {
                clock_note(
                    &entry,
                    &mut last_ts,
                    &mut r.clock_notes,
                    ctx.skew_tolerance_ns,
                );
                if offset - done_bytes > (8 << 20) {
                    progress(offset - done_bytes);
                    done_bytes = offset;
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
    progress(bytes.len() as u64 - done_bytes);
    let st = walk.state();
    r.next_seq = st.next_seq;
    r.last_hash = st.last_hash.unwrap_or(r.last_hash);
    r.range = st.range.clone();
    r.entries = st.entries;
    r.unsealed = since_seal;
    match walk.tail(&ctx.seal_key()) {
        Tail::Clean => {}
        Tail::Torn {
            offset,
            cause,
            signed_seal,
        } => {
            let mut why = cause.to_string();
            if let Some(s) = signed_seal {
                why.push_str(&format!(
                    "; the torn bytes hold a validly signed seal for tree size {} at offset {}: under the fault model (SPEC §7.1) that commit was never durable, but compare with a trusted checkpoint",
                    s.tree_size, s.offset
                ));
            }
            r.torn = Some((offset, why));
        }
        Tail::Corrupt {
            offset,
            cause,
            proof,
        } => {
            r.failure = Some(fail(
                Class::Content,
                name,
                offset,
                Some(r.next_seq),
                format!("{cause}; this is corruption, not a torn tail: {proof}"),
            ));
        }
    }
    r
}

pub fn verify(root: &Path, opts: &Options) -> Result<Report> {
    let dir = LogDir::new(root);
    let seg_dir = dir.segments_dir();
    let mut names: Vec<(u64, String)> = Vec::new();
    let mut bad_names = Vec::new();
    // SPEC §2: segments/ is a real directory and every `*.seg` in it a
    // regular file; anything else is STRUCTURE and is never opened.
    let mut not_regular: Vec<(String, FileKind)> = Vec::new();
    let (listing, seg_dir_kind) = match safe_fs::read_dir(&seg_dir) {
        Ok(rd) => (Some(rd), None),
        Err(Error::NotADirectory { kind, .. }) => (None, Some(kind)),
        Err(e) => return Err(e),
    };
    for ent in listing.into_iter().flatten() {
        let ent = ent.at(&seg_dir)?;
        let n = ent.file_name().to_string_lossy().to_string();
        if n.ends_with(".seg") {
            let kind = FileKind::of(ent.file_type().at(ent.path())?);
            if kind != FileKind::Regular {
                not_regular.push((n, kind));
                continue;
            }
            match parse_segment_name(&n) {
                Some(b) => names.push((b, n)),
                None => bad_names.push(n),
            }
        }
    }
    names.sort();
    let mut report = Report {
        status: "ok",
        code: 0,
        failure: None,
        warnings: Vec::new(),
        key_pinned: opts.key_pinned,
        public_key: hex::encode(opts.key.as_bytes()),
        log_id: String::new(),
        segments: names.len(),
        bytes: 0,
        entries: 0,
        sealed_size: 0,
        root: String::new(),
        head: String::new(),
        checkpoints_checked: 0,
    };
    if !opts.key_pinned {
        report
            .warnings
            .push("public key taken from argus.json and not pinned: pass --key to pin it".into());
    }
    let finish = |mut rep: Report, f: Failure| -> Result<Report> {
        rep.status = "fail";
        rep.code = f.class.code();
        rep.failure = Some(f);
        Ok(rep)
    };
    if let Some(kind) = seg_dir_kind {
        return finish(
            report,
            fail(
                Class::Structure,
                "",
                0,
                None,
                format!("segments/ is {kind}, not a directory; refusing to follow it"),
            ),
        );
    }
    not_regular.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some((n, kind)) = not_regular.first() {
        return finish(
            report,
            fail(
                Class::Structure,
                n,
                0,
                None,
                format!("segment file is {kind}, not a regular file; refusing to read it"),
            ),
        );
    }
    if let Some(n) = bad_names.first() {
        return finish(
            report,
            fail(
                Class::Structure,
                n,
                0,
                None,
                "segment file name is not 20 decimal digits + .seg",
            ),
        );
    }
    let Some((first_base, first_name)) = names.first().cloned() else {
        return finish(
            report,
            fail(Class::Structure, "", 0, None, "no segment files"),
        );
    };
    // The log id is the first segment's; every other segment must match it.
    let first_bytes = reader::load_path(&seg_dir.join(&first_name))?;
    let log_id = match SegmentHeader::decode(&first_bytes) {
        Ok((h, _)) => h.log_id,
        Err(e) => {
            return finish(
                report,
                fail(
                    header_class(&e),
                    &first_name,
                    0,
                    None,
                    format!("segment header: {e}"),
                ),
            );
        }
    };
    drop(first_bytes);
    report.log_id = hex::encode(log_id);
    if first_base != 0 {
        return finish(
            report,
            fail(
                Class::Structure,
                &first_name,
                0,
                None,
                format!(
                    "first segment starts at seq {first_base}, not 0: earlier segments are missing"
                ),
            ),
        );
    }
    let ctx = Ctx {
        log_id,
        key: &opts.key,
        skew_tolerance_ns: crate::time::SKEW_TOLERANCE_NS_DEFAULT,
        want_sizes: opts.checkpoints.iter().map(|c| c.seal.tree_size).collect(),
    };

    let results: Vec<Mutex<Option<Result<SegResult>>>> =
        names.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let progress = |n: u64| {
        let total = done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(p) = &opts.progress {
            p(total);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1).min(names.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((base, name)) = names.get(i) else {
                    break;
                };
                let res = reader::load_path(&seg_dir.join(name))
                    .map(|b| check_segment(name, *base, &b, &ctx, &progress));
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(res);
                }
            });
        }
    });

    // Sequential pass: links between segments, then per-segment results, in log order.
    let mut prev: Option<SegResult> = None;
    let mut last_seal: Option<Seal> = None;
    let mut roots: Vec<(u64, Hash32)> = Vec::new();
    let count = results.len();
    for (i, slot) in results.into_iter().enumerate() {
        let r = match slot.into_inner().ok().flatten() {
            Some(r) => r?,
            None => continue,
        };
        report.bytes += r.bytes;
        let is_last = i + 1 == count;
        if let (Some(p), Some(h)) = (&prev, &r.header) {
            let link = if h.base_seq != p.next_seq {
                Some(format!("segment starts at seq {} but the previous one ends before seq {}: a segment is missing, reordered or duplicated", h.base_seq, p.next_seq))
            } else if h.prev_hash != p.last_hash {
                Some(
                    "prev hash does not equal the last entry hash of the previous segment"
                        .to_string(),
                )
            } else if h.frontier != p.range {
                Some("Merkle frontier does not match the previous segment".to_string())
            } else {
                None
            };
            if let Some(m) = link {
                return finish(
                    report,
                    fail(Class::Structure, &r.name, 0, Some(h.base_seq), m),
                );
            }
        }
        if let Some(f) = r.failure.clone() {
            return finish(report, f);
        }
        if let Some((off, why)) = &r.torn {
            if !is_last {
                return finish(
                    report,
                    fail(
                        Class::Content,
                        &r.name,
                        *off,
                        Some(r.next_seq),
                        format!("damaged frame in a sealed segment: {why}"),
                    ),
                );
            }
            report.warnings.push(format!("torn tail in segments/{} at offset {off} ({why}): unacknowledged bytes, not a failure", r.name));
        }
        if !is_last && !r.has_footer {
            return finish(
                report,
                fail(
                    Class::Structure,
                    &r.name,
                    r.end_offset,
                    Some(r.next_seq),
                    "segment is not the last but has no footer",
                ),
            );
        }
        report.entries += r.entries;
        report.warnings.extend(r.clock_notes.iter().cloned());
        if r.last_seal.is_some() {
            last_seal = r.last_seal.clone();
        }
        roots.extend(r.roots_at.iter().copied());
        if is_last && r.unsealed > 0 {
            report.warnings.push(format!(
                "{} unsealed entries at the end of segments/{}: never acknowledged",
                r.unsealed, r.name
            ));
        }
        prev = Some(r);
    }
    let sealed = last_seal.as_ref().map(|s| s.tree_size).unwrap_or(0);
    report.sealed_size = sealed;
    report.root = last_seal
        .as_ref()
        .map(|s| hex::encode(s.root))
        .unwrap_or_default();
    report.head = last_seal
        .as_ref()
        .map(|s| hex::encode(s.head))
        .unwrap_or_default();
    let last_name = prev.as_ref().map(|p| p.name.clone()).unwrap_or_default();
    let end = prev.as_ref().map(|p| p.end_offset).unwrap_or(0);
    for cp in &opts.checkpoints {
        let at = |class, msg: String| fail(class, &last_name, end, sealed.checked_sub(1), msg);
        if let Err(e) = cp.verify(&log_id, &opts.key) {
            return finish(
                report,
                at(
                    Class::Signature,
                    format!("trusted checkpoint is not signed by this key for this log: {e}"),
                ),
            );
        }
        if cp.seal.tree_size > sealed {
            return finish(report, at(Class::Truncation, format!("trusted checkpoint has {} entries but the log has only {sealed} sealed: the log was cut back", cp.seal.tree_size)));
        }
        let got = roots
            .iter()
            .find(|(n, _)| *n == cp.seal.tree_size)
            .map(|(_, r)| *r);
        if got != Some(cp.seal.root) {
            return finish(report, at(Class::Truncation, format!("root at size {} differs from the trusted checkpoint: history was rolled back or forked", cp.seal.tree_size)));
        }
        report.checkpoints_checked += 1;
    }
    Ok(report)
}
