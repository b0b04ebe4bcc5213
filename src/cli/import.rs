//! `argusctl import`: an export (`argusctl export`, JSON lines or RFC 7464)
//! read into a new, empty log, entry by entry.
//!
//! The whole export is checked before anything is written: every record's
//! entry hash is recomputed from its fields (SPEC §4.2, the payload in its
//! canonical form), seqs must be consecutive and each `prev` must be the
//! hash of the record before, so an altered, dropped or reordered record is
//! refused, naming its line. Then the entries are appended with their
//! kind, ids, agent, payload and original `actor`, whose class is the
//! writer class (an operator's decision stays an operator's; the registry
//! still judges each kind against that class), and each `parent` is
//! remapped to the new seq of the entry it named. The new log has its own
//! times, hashes and signatures: it is a copy that says what it is, not
//! the original.
use super::{eprint, Out, EXIT_USAGE};
use crate::log::entry::{NewEntry, ValidEntry};
use anyhow::{bail, Context, Result};
use log_format::{EntryView, Hash32};
use serde_json::json;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

pub const AFTER_HELP: &str = "DIR must be a new log (argusctl init DIR) with no entries. Records keep kind, job_id, step_id,\nagent, payload and actor (the writer class is the original actor's); parent is remapped to\nthe new seqs. Times, hashes and seals are the new log's. key.rotated records (SPEC §4.7) are\nskipped: they certify the source's keys, and the copy has its own; the output counts them\n(skipped_key_rotated) and a record whose parent is one is refused with its line. The export is checked whole first:\na record whose hash does not match its fields, a prev that is not the previous record's hash,\na seq gap or a parent outside the export is refused with its line number, and nothing is\nwritten. The export is held in memory while it is checked. Runs locally, never through\nargusd (it writes entries in every class).\n\nExit codes: 0 imported, 1 could not run, 2 bad export or DIR not empty.\n\nExamples:\n  argusctl export ./audit > audit.jsonl && argusctl init ./copy\n  argusctl import ./copy --from-export audit.jsonl\n  argusctl export ./audit --format json-seq | argusctl import ./copy";

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    pub dir: PathBuf,
    /// The export to read (jsonl or json-seq); `-` (the default) reads stdin.
    #[arg(long = "from-export", value_name = "FILE|-")]
    pub from_export: Option<PathBuf>,
}

/// The largest record accepted: a 4 MiB payload, escaped, and its fields.
const RECORD_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Entries per group commit.
const CHUNK: usize = 1000;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    timestamp: String,
    log_id: String,
    seq: u64,
    event_type: String,
    job_id: Option<String>,
    step_id: Option<String>,
    agent: Option<String>,
    actor: String,
    parent: Option<u64>,
    payload: serde_json::Value,
    hash: String,
    prev: String,
}

/// A record that passed every check, with its line number.
struct Record {
    line: usize,
    seq: u64,
    entry: NewEntry,
}

/// Why the export is refused, naming the line.
struct Bad(String);

pub fn run(a: &ImportArgs) -> Result<i32> {
    if super::context::shared().is_some() {
        bail!("import writes entries in every writer class; it runs only locally, never through argusd");
    }
    let log = super::state::open_writer(&a.dir, "import")?;
    let held = log.committed().get();
    if held != 0 {
        eprint(&format!(
            "argusctl: import: {} already holds {held} entries; import writes only into a new log (argusctl init NEWDIR)",
            a.dir.display()
        ));
        return Ok(EXIT_USAGE);
    }
    let input = read_input(a)?;
    let (records, source, skipped) = match check(&input) {
        Ok(r) => r,
        Err(Bad(why)) => {
            eprint(&format!("argusctl: import: {why}; nothing was imported"));
            return Ok(EXIT_USAGE);
        }
    };
    drop(input);
    let first_source = records.first().map(|r| r.seq);
    let first_source = match (first_source, skipped.first()) {
        (Some(a), Some(b)) => Some(a.min(*b)),
        (a, b) => a.or(b.copied()),
    };
    let last_source = records.last().map(|r| r.seq).max(skipped.last().copied());
    // New seq of each record, by source seq (skipped records have none); a
    // parent is looked up here once the entry it names is committed (a
    // batch is cut before an entry whose parent is still in it).
    let mut new_seq: HashMap<u64, u64> = HashMap::with_capacity(records.len());
    let mut batch: Vec<(u64, NewEntry)> = Vec::new();
    let mut head: Option<(u64, Hash32)> = None;
    let total = records.len();
    for r in records {
        let parent = r.entry.parent;
        if batch.len() >= CHUNK || parent.is_some_and(|p| !new_seq.contains_key(&p)) {
            commit(&log, &mut batch, &mut new_seq, &mut head)?;
        }
        let mut e = r.entry;
        if let Some(p) = parent {
            e.parent = Some(
                *new_seq
                    .get(&p)
                    .with_context(|| format!("line {}: parent {p} was not imported", r.line))?,
            );
        }
        batch.push((r.seq, e));
    }
    commit(&log, &mut batch, &mut new_seq, &mut head)?;
    drop(log);
    let mut out = Out::default();
    out.json(
        &json!({
            "imported": total,
            // The source's key.rotated records certify the source's keys,
            // not the copy's (the copy has its own key): never copied.
            "skipped_key_rotated": skipped.len(),
            "skipped_key_rotated_seqs": skipped,
            "source_log_id": source,
            "source_first_seq": first_source,
            "source_last_seq": last_source,
            "first_seq": new_seq.values().min(),
            "last_seq": head.map(|h| h.0),
            "head_hash": head.map(|h| hex::encode(h.1)),
        })
        .to_string(),
    );
    out.flush();
    Ok(0)
}

fn commit(
    log: &crate::Log,
    batch: &mut Vec<(u64, NewEntry)>,
    new_seq: &mut HashMap<u64, u64>,
    head: &mut Option<(u64, Hash32)>,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let n = batch.len();
    let (sources, entries): (Vec<u64>, Vec<NewEntry>) = std::mem::take(batch).into_iter().unzip();
    let acks = log
        .append(entries)
        .with_context(|| format!("appending entries {}..", new_seq.len() + 1))?;
    if acks.len() != n {
        bail!("the writer acknowledged {} of {n} entries", acks.len());
    }
    new_seq.extend(sources.into_iter().zip(acks.iter().map(|a| a.seq)));
    if let Some(a) = acks.last() {
        *head = Some((a.seq, a.hash));
    }
    Ok(())
}

fn read_input(a: &ImportArgs) -> Result<Vec<u8>> {
    match a.from_export.as_deref() {
        None => read_stdin(),
        Some(p) if p.as_os_str() == "-" => read_stdin(),
        Some(p) => Ok(crate::log::safe_fs::read_all(p)?),
    }
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .context("reading the export from stdin")?;
    Ok(buf)
}

/// Parses and checks every record; returns them and the source log id.
/// The records to import, the source log id, and the seqs of the skipped
/// `key.rotated` records.
type Checked = (Vec<Record>, Option<String>, Vec<u64>);

fn check(input: &[u8]) -> std::result::Result<Checked, Bad> {
    let registry = crate::registry::builtin().map_err(Bad)?;
    let mut out: Vec<Record> = Vec::new();
    let mut skipped: Vec<u64> = Vec::new();
    let mut first: Option<u64> = None;
    let mut source: Option<String> = None;
    let mut last: Option<(u64, Hash32)> = None;
    for (i, raw) in input.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        // RFC 7464: a record starts with RS (0x1E); a line may end in CR.
        let raw = raw.strip_prefix(b"\x1e").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |why: String| Bad(format!("line {line}: {why}"));
        let value = crate::json::parse(raw, RECORD_BYTES_MAX).map_err(|e| bad(e.to_string()))?;
        let w: Wire =
            serde_json::from_value(value).map_err(|e| bad(format!("not an export record: {e}")))?;
        let ts_ns = crate::time::parse_rfc3339_ns(&w.timestamp)
            .ok_or_else(|| bad(format!("timestamp {:?} is not RFC 3339 UTC", w.timestamp)))?;
        let hash = hash32(&w.hash).ok_or_else(|| bad("hash is not 64 hex digits".into()))?;
        let prev = hash32(&w.prev).ok_or_else(|| bad("prev is not 64 hex digits".into()))?;
        match &source {
            None => source = Some(w.log_id.clone()),
            Some(s) if *s != w.log_id => {
                return Err(bad(format!(
                    "log_id {} is not the log_id of the records before it ({s})",
                    w.log_id
                )))
            }
            Some(_) => {}
        }
        if let Some((seq, h)) = last {
            if w.seq != seq.saturating_add(1) {
                return Err(bad(format!(
                    "seq {} does not follow seq {seq}: an export to import must be whole from its first record (no --job, no gap)",
                    w.seq
                )));
            }
            if prev != h {
                return Err(bad(format!(
                    "seq {}: prev {} is not the hash of seq {seq} ({})",
                    w.seq,
                    w.prev,
                    hex::encode(h)
                )));
            }
        }
        let payload = crate::json::to_canonical(&w.payload);
        let view = EntryView {
            seq: w.seq,
            ts_ns,
            parent: w.parent,
            prev,
            payload_hash: log_format::hash::payload_hash(&payload),
            kind: &w.event_type,
            job_id: w.job_id.as_deref(),
            step_id: w.step_id.as_deref(),
            agent: w.agent.as_deref(),
            actor: &w.actor,
            payload: &payload,
        };
        if view.hash() != hash {
            return Err(bad(format!(
                "seq {}: hash {} does not match the record's fields (recomputed {}): the record was altered",
                w.seq,
                w.hash,
                hex::encode(view.hash())
            )));
        }
        let first = *first.get_or_insert(w.seq);
        if let Some(p) = w.parent {
            if p >= w.seq || p < first {
                return Err(bad(format!(
                    "seq {}: parent {p} is not an earlier record of this export",
                    w.seq
                )));
            }
            if skipped.binary_search(&p).is_ok() {
                return Err(bad(format!(
                    "seq {}: parent {p} is a key.rotated record, which import skips (the copy has its own key), so the link cannot be kept",
                    w.seq
                )));
            }
        }
        if w.event_type == log_format::epoch::ROTATION_KIND {
            // Hash and chain were checked above, so the export is still
            // judged whole; the record certifies the source's keys, not the
            // copy's, and is not copied.
            last = Some((w.seq, hash));
            skipped.push(w.seq);
            continue;
        }
        let entry = NewEntry {
            kind: w.event_type,
            job_id: w.job_id,
            step_id: w.step_id,
            agent: w.agent,
            actor: w.actor,
            parent: w.parent,
            payload,
        };
        // The writer's own checks (fields, the actor's class for the kind,
        // schema), so a record the log would refuse stops the import before
        // anything is written.
        ValidEntry::check(entry.clone(), registry)
            .map_err(|p| bad(format!("seq {}: {p}", w.seq)))?;
        last = Some((w.seq, hash));
        out.push(Record {
            line,
            seq: w.seq,
            entry,
        });
    }
    Ok((out, source, skipped))
}

fn hash32(s: &str) -> Option<Hash32> {
    hex::decode(s).ok()?.try_into().ok()
}
