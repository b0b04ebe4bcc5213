//! Offline verification (SPEC §7). Every hash is re-derived from stored
//! bytes; no stored hash is trusted. Segments are checked in parallel, each
//! from the state its own header claims, then a sequential pass checks that
//! every header matches where the previous segment ended.
use crate::error::{IoContext, Result};
use crate::log::dir::{parse_segment_name, LogDir};
use crate::log::reader;
use ed25519_dalek::VerifyingKey;
use log_format::entry::decode_entry;
use log_format::scan::ScanOutcome;
use log_format::seal::key_id;
use log_format::{
    Checkpoint, CompactRange, Footer, FormatError, FrameType, Hash32, KeyId, LogId, Seal,
    SegmentHeader, SegmentScan,
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
}

struct Ctx<'a> {
    log_id: LogId,
    key: &'a VerifyingKey,
    key_id: KeyId,
    want_sizes: Vec<u64>,
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
    };
    let mut scan = match SegmentScan::new(bytes) {
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
    let h = scan.header.clone();
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
    let mut prev_type: Option<FrameType> = None;
    let mut since_seal = 0u64;
    let mut done_bytes = 0u64;
    let mut footer_at: Option<u64> = None;
    for fr in &mut scan.frames {
        if fr.offset - done_bytes > (8 << 20) {
            progress(fr.offset - done_bytes);
            done_bytes = fr.offset;
        }
        if let Some(at) = footer_at {
            r.failure = Some(fail(
                Class::Structure,
                name,
                fr.offset,
                None,
                format!("frame after the footer at offset {at}"),
            ));
            return r;
        }
        match fr.frame_type {
            FrameType::Entry => {
                let v = match decode_entry(fr.body, fr.body_offset()) {
                    Ok(v) => v,
                    Err(e) => {
                        r.failure = Some(fail(
                            Class::Content,
                            name,
                            fr.offset,
                            Some(r.next_seq),
                            format!("entry: {e}"),
                        ));
                        return r;
                    }
                };
                if v.seq != r.next_seq {
                    r.failure = Some(fail(
                        Class::Structure,
                        name,
                        fr.offset,
                        Some(v.seq),
                        format!("seq gap: expected seq {}, found {}", r.next_seq, v.seq),
                    ));
                    return r;
                }
                if v.prev != r.last_hash {
                    r.failure = Some(fail(
                        Class::Content,
                        name,
                        fr.offset,
                        Some(v.seq),
                        "chain broken: prev does not equal the hash of the entry before",
                    ));
                    return r;
                }
                if !v.payload_matches() {
                    r.failure = Some(fail(
                        Class::Content,
                        name,
                        fr.offset,
                        Some(v.seq),
                        "payload does not match its payload hash",
                    ));
                    return r;
                }
                let eh = v.hash();
                r.range.push(&eh);
                r.last_hash = eh;
                r.next_seq += 1;
                r.entries += 1;
                since_seal += 1;
                if ctx.want_sizes.contains(&r.next_seq) {
                    r.roots_at.push((r.next_seq, r.range.root()));
                }
            }
            FrameType::Seal => {
                let s = match Seal::decode(fr.body, fr.body_offset()) {
                    Ok(s) => s,
                    Err(e) => {
                        r.failure = Some(fail(
                            Class::Content,
                            name,
                            fr.offset,
                            None,
                            format!("seal: {e}"),
                        ));
                        return r;
                    }
                };
                let seq = s.tree_size.checked_sub(1);
                if s.tree_size != r.next_seq {
                    r.failure = Some(fail(
                        Class::Structure,
                        name,
                        fr.offset,
                        seq,
                        format!(
                            "seal covers {} entries but {} precede it",
                            s.tree_size, r.next_seq
                        ),
                    ));
                    return r;
                }
                let head = if r.next_seq == 0 {
                    [0; 32]
                } else {
                    r.last_hash
                };
                if s.root != r.range.root() || s.head != head {
                    r.failure = Some(fail(
                        Class::Content,
                        name,
                        fr.offset,
                        seq,
                        "seal root or head does not match the entries (content altered)",
                    ));
                    return r;
                }
                if s.key_id != ctx.key_id {
                    r.failure = Some(fail(
                        Class::Signature,
                        name,
                        fr.offset,
                        seq,
                        format!(
                            "seal signed by key id {}, not the expected key id {}",
                            hex::encode(s.key_id),
                            hex::encode(ctx.key_id)
                        ),
                    ));
                    return r;
                }
                if !s.verify(&ctx.log_id, ctx.key) {
                    r.failure = Some(fail(
                        Class::Signature,
                        name,
                        fr.offset,
                        seq,
                        "seal signature does not verify",
                    ));
                    return r;
                }
                r.last_seal = Some(s);
                since_seal = 0;
            }
            FrameType::Footer => {
                let ok = Footer::decode(fr.body, fr.body_offset()).ok().filter(|ft| {
                    ft.base_seq == base
                        && ft.entry_count == r.entries
                        && ft.last_hash == r.last_hash
                });
                if prev_type != Some(FrameType::Seal) || ok.is_none() {
                    r.failure = Some(fail(
                        Class::Structure,
                        name,
                        fr.offset,
                        None,
                        "footer does not directly follow a seal or does not match the segment",
                    ));
                    return r;
                }
                r.has_footer = true;
                footer_at = Some(fr.offset);
            }
        }
        prev_type = Some(fr.frame_type);
    }
    progress(bytes.len() as u64 - done_bytes);
    r.unsealed = since_seal;
    match scan.frames.outcome() {
        ScanOutcome::Clean => {}
        ScanOutcome::TornTail { offset, error } => r.torn = Some((offset, error.to_string())),
        ScanOutcome::Corrupt {
            offset,
            error,
            next_valid,
        } => {
            r.failure = Some(fail(
                Class::Content,
                name,
                offset,
                Some(r.next_seq),
                format!("{error}; a valid frame follows at offset {next_valid}, so this is corruption, not a torn tail"),
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
    for ent in std::fs::read_dir(&seg_dir).at(&seg_dir)? {
        let n = ent.at(&seg_dir)?.file_name().to_string_lossy().to_string();
        if n.ends_with(".seg") {
            match parse_segment_name(&n) {
                Some(b) => names.push((b, n)),
                None => bad_names.push(n),
            }
        }
    }
    names.sort();
    let key_id = |lid: &LogId| key_id(lid, &opts.key);
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
        key_id: key_id(&log_id),
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
