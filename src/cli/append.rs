//! `argusctl append`: JSON lines on stdin become entries.
//!
//! A reader thread parses stdin in the chunks the OS delivers; every complete
//! line of one chunk goes to the writer as one request, so lines that arrive
//! together are committed together. The first bad line stops the run with
//! exit 2: every line before it is committed, nothing of it is written.
use super::{eprint, safe, Out, EXIT_ERROR, EXIT_USAGE};
use crate::log::entry::{Field, Problem, ValidEntry};
use crate::NewEntry;
use anyhow::{Context, Result};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

/// Longest accepted input line. The payload limit is 4 MiB; this leaves
/// room for JSON escaping and the other fields.
pub const LINE_BYTES_MAX: usize = 8 * 1024 * 1024;
const FIELDS: &[&str] = &["kind", "job_id", "step_id", "agent", "parent", "payload"];

#[derive(Debug)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

fn opt_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "field `{field}`: expected a string, got {}",
            type_name(other)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A strict-reader error as the line's message: the field path, then why.
fn line_json_error(e: &crate::json::JsonError) -> String {
    let what = if e.reason.is_syntax() {
        format!("malformed JSON: {}", e.reason)
    } else {
        e.reason.to_string()
    };
    if e.pointer.is_empty() {
        format!("{what} (byte {})", e.column)
    } else {
        format!("field `{}`: {what} (byte {})", e.field(), e.column)
    }
}

/// Parses one input line into an entry, naming the field that is wrong.
pub fn parse_line(bytes: &[u8], actor: &str) -> Result<ValidEntry, String> {
    entry_from_value(parse_json_line(bytes)?, actor).map_err(|r| r.message)
}

/// Why a line was refused; `unauthorized` when the writer's class may not
/// write the entry's kind (a daemon answers that with 403, not 400).
#[derive(Debug)]
pub struct Refusal {
    pub message: String,
    pub unauthorized: bool,
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self {
            message,
            unauthorized: false,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// One input line as JSON, read strictly: a duplicate `kind` or a number
/// the payload could not keep is refused here, naming the field, instead of
/// silently changed.
pub fn parse_json_line(bytes: &[u8]) -> Result<Value, String> {
    crate::json::parse(bytes, LINE_BYTES_MAX).map_err(|e| line_json_error(&e))
}

/// An input line's JSON as an entry written by `actor`, naming the field
/// that is wrong. `argusd` reads request bodies through this too, so a bad
/// line gets the same message over HTTP as on `argusctl append`'s stdin.
pub fn entry_from_value(value: Value, actor: &str) -> Result<ValidEntry, Refusal> {
    let (entry, payload) = entry_fields(value, actor)?;
    // The writer's rules, judged here on the value just read so the error
    // names this line rather than the batch, and so the payload is parsed
    // and schema-checked once: `Log::append` takes the `ValidEntry` as is.
    let registry = crate::registry::builtin().map_err(Refusal::from)?;
    ValidEntry::from_value(entry, &payload, registry).map_err(|p| Refusal {
        message: line_problem(&p),
        unauthorized: matches!(p, Problem::Unauthorized(_)),
    })
}

/// The entry's fields and its payload, each checked for its JSON type.
fn entry_fields(value: Value, actor: &str) -> Result<(NewEntry, Value), String> {
    let Value::Object(mut obj) = value else {
        return Err(format!("expected a JSON object, got {}", type_name(&value)));
    };
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{k}` (allowed: {})",
            FIELDS.join(", ")
        ));
    }
    let kind = match obj.get("kind") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(format!(
                "field `kind`: expected a string, got {}",
                type_name(other)
            ))
        }
        None => return Err("field `kind` is required".into()),
    };
    let parent = match obj.get("parent") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .ok_or("field `parent`: expected a non-negative integer seq")?,
        ),
        Some(other) => {
            return Err(format!(
                "field `parent`: expected an integer seq, got {}",
                type_name(other)
            ))
        }
    };
    let entry = NewEntry {
        kind,
        job_id: opt_string(&obj, "job_id")?,
        step_id: opt_string(&obj, "step_id")?,
        agent: opt_string(&obj, "agent")?,
        actor: actor.to_string(),
        parent,
        payload: Vec::new(),
    };
    let payload = obj.remove("payload").unwrap_or(Value::Null);
    Ok((entry, payload))
}

/// A refused entry as the line's message, naming the field by the
/// problem's variant (never by its text).
fn line_problem(p: &Problem) -> String {
    match p {
        Problem::Schema(r) => format!(
            "field `{}`: {}",
            r.path.trim_start_matches('/').replace('/', "."),
            r.reason
        ),
        p if p.field() == Field::Kind => format!("field `kind`: {p}"),
        p => p.to_string(),
    }
}

type Chunk = Vec<(u64, Result<ValidEntry, LineError>)>;

/// Reads stdin in OS-sized chunks and parses every complete line in each.
fn reader_thread(actor: String, tx: mpsc::SyncSender<Chunk>) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 1 << 20];
    let mut partial: Vec<u8> = Vec::new();
    let mut line_no = 0u64;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let line = line_no + 1;
                let message = format!("reading stdin: {e}");
                let _ = tx.send(vec![(line, Err(LineError { line, message }))]);
                return;
            }
        };
        let eof = n == 0;
        partial.extend_from_slice(&buf[..n]);
        let mut chunk = Vec::new();
        let mut start = 0;
        while let Some(pos) = partial[start..].iter().position(|&b| b == b'\n') {
            let line = &partial[start..start + pos];
            start += pos + 1;
            line_no += 1;
            if let Some(r) = one(line, line_no, &actor) {
                let stop = r.is_err();
                chunk.push((line_no, r));
                if stop {
                    let _ = tx.send(chunk);
                    return;
                }
            }
        }
        partial.drain(..start);
        if partial.len() > LINE_BYTES_MAX {
            let line = line_no + 1;
            let message = format!("line exceeds the {} MiB limit", LINE_BYTES_MAX >> 20);
            chunk.push((line, Err(LineError { line, message })));
            let _ = tx.send(chunk);
            return;
        }
        if eof && !partial.is_empty() {
            line_no += 1;
            if let Some(r) = one(&partial, line_no, &actor) {
                chunk.push((line_no, r));
            }
            partial.clear();
        }
        if !chunk.is_empty() && tx.send(chunk).is_err() {
            return;
        }
        if eof {
            return;
        }
    }
}

fn one(line: &[u8], line_no: u64, actor: &str) -> Option<Result<ValidEntry, LineError>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    if line.len() > LINE_BYTES_MAX {
        return Some(Err(LineError {
            line: line_no,
            message: format!("line exceeds the {} MiB limit", LINE_BYTES_MAX >> 20),
        }));
    }
    Some(parse_line(line, actor).map_err(|message| LineError {
        line: line_no,
        message,
    }))
}

/// What this run has committed, to tell a producer where to resume.
#[derive(Default)]
struct Committed {
    count: u64,
    first_seq: Option<u64>,
    last_seq: u64,
    /// Input line of the last committed entry.
    last_line: u64,
}

impl Committed {
    /// "111 entries committed (seqs 0..=110, last seq 110); stopping; resume from line 112"
    fn stopping(&self) -> String {
        let seqs = match self.first_seq {
            None => String::new(),
            Some(first) => format!(
                " (seqs {first}..={last}, last seq {last})",
                last = self.last_seq
            ),
        };
        format!(
            "{} entries committed{seqs}; stopping; resume from line {}",
            self.count,
            self.last_line + 1
        )
    }
}

pub fn run(dir: &Path) -> Result<i32> {
    let log = super::state::open_writer(dir, "append")?;
    // Without argusd, the flag files are what this process can check
    // cheaply: while one stands, agents write nothing (argusd also
    // enforces soft kills, from the log itself).
    for flag in crate::log::control_flags::Flag::ALL {
        if let crate::log::control_flags::OnDisk::Record(r) =
            crate::log::control_flags::read(dir, flag)
        {
            eprint(&format!(
                "argusctl: refused: {} stands (seq {}): {}; nothing was appended; an operator releases it with `argusctl release`",
                r.kind, r.seq, r.reason
            ));
            return Ok(super::EXIT_KILLED);
        }
    }
    if let Some((cut, ack)) = log.recovered() {
        eprint(&format!(
            "argusctl: recovered {}: cut {} unacknowledged bytes at offset {} ({}); recorded as seq {}",
            cut.segment, cut.bytes_cut, cut.offset, cut.reason, ack.seq
        ));
    }
    let (tx, rx) = mpsc::sync_channel::<Chunk>(64);
    // The agent path: whoever runs `append` writes as an agent, named by
    // the operating system (never by USER or any other variable).
    let actor = crate::authority::local_actor(crate::authority::Class::Agent).to_string();
    std::thread::spawn(move || reader_thread(actor, tx));
    let mut out = Out::default();
    let mut done = Committed::default();
    while let Ok(first) = rx.recv() {
        let mut chunk = first;
        // Merge whatever else is already parsed into the same group commit.
        while chunk.len() < 16_384 && !chunk.iter().any(|(_, r)| r.is_err()) {
            match rx.try_recv() {
                Ok(more) => chunk.extend(more),
                Err(_) => break,
            }
        }
        let mut entries = Vec::with_capacity(chunk.len());
        let mut last_line = done.last_line;
        let mut bad = None;
        let next_seq = log.committed().get();
        for (line, r) in chunk {
            // This process holds the writer lock, so the seq each line will
            // get is known now; a parent must name an earlier entry.
            let seq = next_seq + entries.len() as u64;
            let r = r.and_then(|e| match e.parent {
                Some(p) if p >= seq => Err(LineError {
                    line,
                    message: format!("field `parent`: seq {p} is not an earlier entry (this line would be seq {seq})"),
                }),
                _ => Ok(e),
            });
            match r {
                Ok(e) => {
                    entries.push(e);
                    last_line = line;
                }
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        let acks = log.append(entries).context("appending")?;
        if let (Some(first), Some(last)) = (acks.first(), acks.last()) {
            done.first_seq.get_or_insert(first.seq);
            done.last_seq = last.seq;
            done.count += acks.len() as u64;
            done.last_line = last_line;
        }
        let written = acks
            .iter()
            .try_for_each(|a| {
                out.try_json(&format!(
                    r#"{{"seq":{},"hash":"{}"}}"#,
                    a.seq,
                    hex::encode(a.hash)
                ))
            })
            .and_then(|_| out.try_flush());
        if let Err(e) = written {
            // The acks are the producer's only receipt: with nobody reading
            // them, committing more would store entries nobody knows are
            // stored. Stop, and say exactly what is stored.
            let what = if e.kind() == std::io::ErrorKind::BrokenPipe {
                "stdout closed".to_string()
            } else {
                format!("writing acks to stdout: {e}")
            };
            eprint(&format!("argusctl: {what}: {}", done.stopping()));
            return Ok(EXIT_ERROR);
        }
        if let Some(e) = bad {
            // One line: the message can quote the input.
            eprint(&safe::line(&format!(
                "argusctl: stdin line {}: {}; nothing of this line was written",
                e.line, e.message
            )));
            return Ok(EXIT_USAGE);
        }
    }
    Ok(0)
}
