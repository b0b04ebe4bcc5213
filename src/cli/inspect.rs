//! `argusctl inspect DIR SEQ`: one entry whole: its fields, its hashes,
//! where its frame lies, the seal that covers it (and the checkpoint that
//! seal yields), its parent and its children.
//!
//! Everything comes from the segment files through `LogReader` (no
//! projections), so inspect runs beside a running argusd and on a
//! read-only copy alike. Children are found by a forward scan: the writer
//! refuses a `parent` that is not below the entry's own seq, so every child
//! lies after its parent, and scanning from SEQ+1 to the head finds them
//! all. The scan is bounded by `--scan` (entries after SEQ, default
//! 1,000,000); when the bound stops it short of the head, the output says
//! which seqs were searched.
use super::safe::esc;
use super::{eprint, erased_text, render_checked, Format, Out, EXIT_USAGE};
use crate::log::reader::{Location, LogReader};
use crate::log::redactions::{Redaction, Redactions, Shown};
use crate::time::rfc3339_ns;
use anyhow::{Context, Result};
use log_format::hash::merkle_leaf;
use serde::Serialize;
use serde_json::value::RawValue;
use std::ops::ControlFlow;
use std::path::Path;

/// Default of `--scan`: entries after SEQ searched for children.
pub const DEFAULT_SCAN: u64 = 1_000_000;
/// Children listed at most; the count covers them all.
const CHILDREN_LISTED: usize = 1000;

#[derive(Serialize)]
struct Inspected {
    /// The entry as `cat -o json` prints it.
    entry: Box<RawValue>,
    hashes: Hashes,
    location: Where,
    seal: SealView,
    links: Links,
}

#[derive(Serialize)]
struct Hashes {
    entry: String,
    prev: String,
    /// As stored in the entry (the reader checked the payload against it).
    payload: String,
    /// RFC 9162 leaf of the entry hash: BLAKE3(0x00 || entry hash).
    merkle_leaf: String,
    /// The leaf's index in the Merkle tree (its seq).
    leaf_index: u64,
}

#[derive(Serialize)]
struct Where {
    segment: String,
    /// File offset of the entry's frame.
    offset: u64,
    frame_bytes: u64,
    body_bytes: u64,
}

#[derive(Serialize)]
struct SealView {
    tree_size: u64,
    root: String,
    head: String,
    ts: String,
    ts_ns: u64,
    key_id: String,
    /// File offset of the seal's frame, in the entry's segment.
    offset: u64,
    /// Whether the signature verifies with the key in argus.json (not
    /// pinned: `verify --key` pins one).
    signature_verifies: bool,
    /// The signed note this seal yields, as `argusctl checkpoint` prints
    /// the latest one.
    checkpoint: String,
}

#[derive(Serialize)]
struct Link {
    seq: u64,
    kind: String,
}

#[derive(Serialize)]
struct Links {
    parent: Option<Link>,
    /// Entries whose `parent` is this seq (at most 1000 listed).
    children: Vec<Link>,
    children_count: u64,
    scan: Scan,
}

/// Which seqs were searched for children.
#[derive(Serialize)]
struct Scan {
    from: u64,
    to: u64,
    head: u64,
    /// The scan reached the head: the children are all of them.
    complete: bool,
}

/// The payload of a rendered entry, as rendered.
#[derive(serde::Deserialize)]
struct PayloadOf<'a> {
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// What `locate` hands back, owned.
struct Found {
    entry: String,
    parent: Option<u64>,
    hash: [u8; 32],
    prev: [u8; 32],
    payload_hash: [u8; 32],
    seq: u64,
    ts_ns: u64,
    kind: String,
    job_id: Option<String>,
    step_id: Option<String>,
    agent: Option<String>,
    actor: String,
    /// The payload's JSON as `cat -o json` holds it.
    payload: String,
    /// The redaction that erased the payload, if one did.
    redacted: Option<Redaction>,
    /// The payload bytes are zeros already (`argusctl compact` ran).
    zeroed: bool,
    loc: Location,
}

pub fn run(dir: &Path, seq: u64, scan: u64, format: Format) -> Result<i32> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let latest = r.latest_seal()?;
    let Some(head) = latest.tree_size.checked_sub(1).filter(|h| seq <= *h) else {
        let head = latest
            .tree_size
            .checked_sub(1)
            .map_or_else(|| "none: the log is empty".to_string(), |h| h.to_string());
        eprint(&format!(
            "argusctl: seq {seq} is not in the log (head is {head})"
        ));
        return Ok(EXIT_USAGE);
    };
    let redactions = Redactions::scan(&r, seq)?;
    let mut found = r
        .locate(seq, |v, loc| Found {
            entry: render_checked(v, Format::Json, &redactions).unwrap_or_default(),
            redacted: match redactions.shown(v) {
                Shown::Erased(red) => Some(red.clone()),
                _ => None,
            },
            zeroed: v.payload_erased(),
            parent: v.parent,
            hash: v.hash(),
            prev: v.prev,
            payload_hash: v.payload_hash,
            seq: v.seq,
            ts_ns: v.ts_ns,
            kind: v.kind.to_string(),
            job_id: v.job_id.map(str::to_string),
            step_id: v.step_id.map(str::to_string),
            agent: v.agent.map(str::to_string),
            actor: v.actor.to_string(),
            payload: String::new(),
            loc: loc.clone(),
        })?
        .with_context(|| {
            format!("seq {seq} is below the head ({head}) but no sealed entry has it")
        })?;
    if found.zeroed && found.redacted.is_none() {
        return Err(super::unexplained_erasure(seq));
    }
    found.payload = serde_json::from_str::<PayloadOf<'_>>(&found.entry)?
        .payload
        .get()
        .to_string();

    let parent = match found.parent {
        Some(p) => Some(Link {
            seq: p,
            kind: kind_of(&r, p)?.unwrap_or_else(|| "(not found)".into()),
        }),
        None => None,
    };
    let (children, children_count, scanned) = children(&r, seq, scan, head)?;
    let seal = &found.loc.seal;
    let view = Inspected {
        entry: RawValue::from_string(found.entry.clone())?,
        hashes: Hashes {
            entry: hex::encode(found.hash),
            prev: hex::encode(found.prev),
            payload: hex::encode(found.payload_hash),
            merkle_leaf: hex::encode(merkle_leaf(&found.hash)),
            leaf_index: found.seq,
        },
        location: Where {
            segment: found.loc.segment.clone(),
            offset: found.loc.offset,
            frame_bytes: found.loc.frame_bytes,
            body_bytes: found.loc.body_bytes,
        },
        seal: SealView {
            tree_size: seal.tree_size,
            root: hex::encode(seal.root),
            head: hex::encode(seal.head),
            ts: rfc3339_ns(seal.ts_ns),
            ts_ns: seal.ts_ns,
            key_id: hex::encode(seal.key_id),
            offset: found.loc.seal_offset,
            signature_verifies: r.seal_key().signs(seal),
            checkpoint: seal.checkpoint_text(&r.log_id),
        },
        links: Links {
            parent,
            children,
            children_count,
            scan: scanned,
        },
    };
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&serde_json::to_string(&view)?),
        Format::Text => {
            for l in text(&found, &view) {
                out.line(&l);
            }
        }
    }
    out.flush();
    Ok(0)
}

/// The kind of the sealed entry `seq`, if there is one.
fn kind_of(r: &LogReader, seq: u64) -> Result<Option<String>> {
    let mut kind = None;
    r.for_each(seq, seq, |v| {
        kind = Some(v.kind.to_string());
        ControlFlow::Break(())
    })?;
    Ok(kind)
}

/// Entries after `seq`, up to `scan` of them or the head, whose parent is `seq`.
fn children(r: &LogReader, seq: u64, scan: u64, head: u64) -> Result<(Vec<Link>, u64, Scan)> {
    let from = seq.saturating_add(1);
    let to = seq.saturating_add(scan).min(head);
    let mut listed = Vec::new();
    let mut count = 0u64;
    if scan > 0 && from <= head {
        r.for_each(from, to, |v| {
            if v.parent == Some(seq) {
                count += 1;
                if listed.len() < CHILDREN_LISTED {
                    listed.push(Link {
                        seq: v.seq,
                        kind: v.kind.to_string(),
                    });
                }
            }
            ControlFlow::Continue(())
        })?;
    }
    let complete = to >= head || from > head;
    Ok((
        listed,
        count,
        Scan {
            from,
            to,
            head,
            complete,
        },
    ))
}

fn text(f: &Found, v: &Inspected) -> Vec<String> {
    let mut out = Vec::new();
    let opt = |s: &Option<String>| s.as_deref().map_or("-".to_string(), |s| esc(s).to_string());
    out.push(format!("entry {}  {}", f.seq, esc(&f.kind)));
    out.push(format!("  ts           {}", rfc3339_ns(f.ts_ns)));
    out.push(format!(
        "  job          {}   step {}   agent {}",
        opt(&f.job_id),
        opt(&f.step_id),
        opt(&f.agent)
    ));
    out.push(format!("  actor        {}", esc(&f.actor)));
    out.push(format!(
        "  parent       {}",
        f.parent.map_or("-".to_string(), |p| p.to_string())
    ));
    // The payload as `cat` shows it: JSON, invisible characters escaped.
    match &f.redacted {
        Some(r) => out.push(format!("  payload      {}", esc(&erased_text(r)))),
        None => out.push(format!("  payload      {}", super::safe::json(&f.payload))),
    }
    out.push(String::new());
    let h = &v.hashes;
    out.push("hashes".into());
    out.push(format!("  entry        {}", h.entry));
    out.push(format!("  prev         {}", h.prev));
    out.push(match (&f.redacted, f.zeroed) {
        (None, _) => format!(
            "  payload      {}  (stored; the payload matches it)",
            h.payload
        ),
        (Some(_), true) => format!(
            "  payload      {}  (stored; the bytes are erased: zeros no longer match it)",
            h.payload
        ),
        (Some(_), false) => format!(
            "  payload      {}  (stored; the bytes are still on disk until `argusctl compact`)",
            h.payload
        ),
    });
    out.push(format!(
        "  merkle leaf  {}  (leaf {} = BLAKE3(0x00 || entry hash))",
        h.merkle_leaf, h.leaf_index
    ));
    out.push(String::new());
    let l = &v.location;
    out.push("location".into());
    out.push(format!("  segment      segments/{}", l.segment));
    out.push(format!(
        "  offset       {} (frame {} bytes: 9 header + {} body)",
        l.offset, l.frame_bytes, l.body_bytes
    ));
    out.push(String::new());
    let s = &v.seal;
    out.push(format!(
        "seal covering it (seqs 0..={})",
        s.tree_size.saturating_sub(1)
    ));
    out.push(format!("  tree size    {}", s.tree_size));
    out.push(format!("  root         {}", s.root));
    out.push(format!("  head         {}", s.head));
    out.push(format!("  time         {}", s.ts));
    out.push(format!(
        "  key id       {}  (signature {} with the key in argus.json, not pinned)",
        s.key_id,
        if s.signature_verifies {
            "verifies"
        } else {
            "DOES NOT verify"
        }
    ));
    out.push(format!(
        "  offset       {} in segments/{}",
        s.offset, l.segment
    ));
    out.push("  checkpoint (signed note; save it for `verify --checkpoint`):".into());
    out.extend(s.checkpoint.lines().map(str::to_string));
    out.push(String::new());
    let k = &v.links;
    out.push("links".into());
    match &k.parent {
        Some(p) => out.push(format!("  parent       {}  {}", p.seq, esc(&p.kind))),
        None => out.push("  parent       -".into()),
    }
    if k.children.is_empty() {
        out.push("  children     none".into());
    }
    for c in &k.children {
        out.push(format!("  child        {}  {}", c.seq, esc(&c.kind)));
    }
    if k.children_count > k.children.len() as u64 {
        out.push(format!(
            "  ...          {} more",
            k.children_count - k.children.len() as u64
        ));
    }
    let sc = &k.scan;
    out.push(if sc.from > sc.head {
        "  (no entry after it: nothing to scan)".to_string()
    } else if sc.complete {
        format!(
            "  (scanned seqs {}..={}, to the head: every child is listed)",
            sc.from, sc.to
        )
    } else if sc.to < sc.from {
        format!(
            "  (children not searched: --scan 0; seqs {}..={} may hold some)",
            sc.from, sc.head
        )
    } else {
        format!(
            "  (scanned seqs {}..={} only; seqs {}..={} not searched: raise --scan)",
            sc.from,
            sc.to,
            sc.to + 1,
            sc.head
        )
    });
    out
}
