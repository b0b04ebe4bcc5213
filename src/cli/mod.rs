//! `argusctl` commands. Each file holds one command; this module holds what
//! they share: output formats, entry rendering and broken-pipe handling.
//! Every byte a command prints goes through `Out` (stdout) or `eprint`
//! (stderr), which escape it with `safe`, so no stored string can drive the
//! operator's terminal and a closed pipe never panics.
pub mod agents;
pub mod append;
pub mod approvals;
pub mod args;
pub mod artifact;
pub mod audit;
pub mod breakers;
pub mod command;
pub mod compact;
pub mod config;
pub mod context;
pub mod control;
pub mod demo;
pub mod demo_daemon;
pub mod diff;
pub mod dlq;
pub mod error;
pub mod exec;
pub mod export;
pub mod flags;
pub mod import;
pub mod incident;
pub mod info;
pub mod init;
pub mod inspect;
pub mod jobs;
pub mod key;
pub mod kinds;
pub mod memory;
pub mod mode;
pub mod policy;
pub mod projections;
pub mod proof;
pub mod proof_chain;
pub mod read;
pub mod redact;
pub mod remote;
pub mod replay;
pub mod routes;
pub mod safe;
pub mod search;
pub mod sla;
pub mod state;
pub mod status;
pub mod token;
pub mod witness;
pub mod workers;
// @@cli-mods: one `pub mod <name>;` line per command file, above this marker
pub mod tail;
pub mod verify;

use crate::log::redactions::{Redaction, Redactions, Shown};
use log_format::EntryView;
use serde_json::value::RawValue;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Exit codes shared by every command (verify adds 10..=13).
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
/// `append` refused: a hard kill or write lockdown stands (its flag file is on disk).
pub const EXIT_KILLED: i32 = 4;

/// Writes to stdout. Text lines pass through `safe::line`, JSON through
/// `safe::json`. A closed pipe (`| head`) ends the process quietly with 0:
/// the reader has what it wanted. Commands whose exit code is their answer
/// (`verify`, `policy check`) use `Out::keeping_exit_code`, so a closed pipe
/// cannot turn "tampered" or "denied" into 0; `append`, whose output is a
/// receipt, uses the `try_` methods and handles a closed pipe itself.
pub struct Out {
    w: std::io::BufWriter<std::io::Stdout>,
    exit_on_close: bool,
    closed: bool,
}

impl Default for Out {
    fn default() -> Self {
        Self {
            w: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            exit_on_close: true,
            closed: false,
        }
    }
}

impl Out {
    /// On a closed stdout, drop further output and let the command return
    /// its own exit code.
    pub fn keeping_exit_code() -> Self {
        let mut out = Self::default();
        out.exit_on_close = false;
        out
    }
    /// One line of text for a person.
    pub fn line(&mut self, s: &str) {
        if !self.closed {
            let r = self.raw_line(&safe::line(s));
            self.check(r);
        }
    }
    /// One line of JSON (or one line of pretty-printed JSON).
    pub fn json(&mut self, s: &str) {
        if !self.closed {
            let r = self.try_json(s);
            self.check(r);
        }
    }
    /// Pretty-printed JSON, line by line.
    pub fn json_lines(&mut self, s: &str) {
        for l in s.lines() {
            self.json(l);
        }
    }
    /// A line that is JSON in `-o json` and text otherwise.
    pub fn put(&mut self, format: Format, s: &str) {
        match format {
            Format::Json => self.json(s),
            Format::Text => self.line(s),
        }
    }
    /// One RFC 7464 JSON text sequence record: 0x1E, the JSON (escaped as
    /// `json` escapes it), LF.
    pub fn json_seq(&mut self, s: &str) {
        if !self.closed {
            let r = self.raw_line(&format!("\u{1e}{}", safe::json(s)));
            self.check(r);
        }
    }
    pub fn try_json(&mut self, s: &str) -> std::io::Result<()> {
        self.raw_line(&safe::json(s))
    }
    pub fn flush(&mut self) {
        if !self.closed {
            let r = self.w.flush();
            self.check(r);
        }
    }
    pub fn try_flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
    fn raw_line(&mut self, s: &str) -> std::io::Result<()> {
        // Inside argusd the command's stdout is the answer to its request.
        if context::capturing() {
            context::write_captured(s.as_bytes());
            context::write_captured(b"\n");
            return Ok(());
        }
        self.w
            .write_all(s.as_bytes())
            .and_then(|_| self.w.write_all(b"\n"))
    }
    fn check(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                if self.exit_on_close {
                    exit(0);
                }
                self.closed = true;
                return;
            }
            eprint(&format!("argusctl: writing to stdout: {e}"));
            exit(EXIT_ERROR);
        }
    }
}

/// Ends the process. `std::process::exit` skips destructors, so a scratch
/// projection store (read-only logs) is removed here first.
pub fn exit(code: i32) -> ! {
    crate::projections::store::remove_temporary();
    std::process::exit(code)
}

/// Writes a message to stderr, each of its lines through `safe::line`.
/// Unlike `eprintln!` it never panics: a closed stderr loses the message,
/// not the exit code.
pub fn eprint(msg: &str) {
    if context::capturing() {
        // Inside argusd: returned to the caller with the command's answer.
        for l in msg.split('\n') {
            context::write_captured_err(safe::line(l).as_bytes());
            context::write_captured_err(b"\n");
        }
        return;
    }
    let mut e = std::io::stderr().lock();
    for l in msg.split('\n') {
        let _ = e
            .write_all(safe::line(l).as_bytes())
            .and_then(|_| e.write_all(b"\n"));
    }
}

/// Prints a list view: one JSON object per row, or a text table under
/// `header`. Every list view has this shape, so `-o json` output is always
/// JSON lines that pipe into `jq`.
pub fn print_rows<T>(
    format: Format,
    rows: &[T],
    header: &str,
    json: impl Fn(&T) -> anyhow::Result<serde_json::Value>,
    text: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    let mut out = Out::default();
    match format {
        Format::Json => {
            for r in rows {
                out.json(&json(r)?.to_string());
            }
        }
        Format::Text => {
            out.line(header);
            for r in rows {
                out.line(&text(r));
            }
        }
    }
    out.flush();
    Ok(())
}

/// A row that is its own JSON: the `json` argument of `print_rows`.
pub fn as_json<T: serde::Serialize>(row: &T) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::to_value(row)?)
}

impl Drop for Out {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.w.flush();
        }
    }
}

pub use crate::time::rfc3339_ns;

#[derive(serde::Serialize)]
struct EntryJson<'a> {
    seq: u64,
    ts: String,
    kind: &'a str,
    job_id: Option<&'a str>,
    step_id: Option<&'a str>,
    agent: Option<&'a str>,
    actor: &'a str,
    parent: Option<u64>,
    payload: Box<RawValue>,
    /// Who erased the payload, when and why (`payload` is then null).
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted: Option<serde_json::Value>,
    /// The payload is zeroed and this output did not look up a redaction
    /// (argusd's live feed); `verify` judges whether one explains it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    erased: bool,
    hash: String,
    prev: String,
}

/// One entry in the chosen format, as a single line (print it with
/// `Out::put`, which applies the format's escaping). A payload in the
/// erased form is shown as null, never as its zero bytes; commands that
/// show history use [`render_checked`], which also names the redaction.
pub fn render(v: &EntryView<'_>, format: Format) -> String {
    render_as(v, format, Shown::Payload)
}

/// `render`, held to the log's redactions: an erased payload names who
/// erased it, when and why, and zero bytes no redaction explains are
/// refused as tampering, as a payload that does not match its hash is.
pub fn render_checked(
    v: &EntryView<'_>,
    format: Format,
    redactions: &Redactions,
) -> anyhow::Result<String> {
    match redactions.shown(v) {
        Shown::Unexplained => Err(unexplained_erasure(v.seq)),
        shown => Ok(render_as(v, format, shown)),
    }
}

/// The refusal for zero bytes no redaction explains.
pub fn unexplained_erasure(seq: u64) -> anyhow::Error {
    anyhow::anyhow!(
        "seq {seq}: the payload is zeroed but no entry.redacted by an operator explains it (content altered); run `argusctl verify`"
    )
}

/// The text a redacted payload is shown as.
pub fn erased_text(r: &Redaction) -> String {
    format!(
        "<erased by entry.redacted seq {} ({}) at {}: {}>",
        r.by_seq,
        r.actor,
        rfc3339_ns(r.ts_ns),
        serde_json::Value::from(r.reason.as_str())
    )
}

fn render_as(v: &EntryView<'_>, format: Format, shown: Shown<'_>) -> String {
    let hidden = !matches!(shown, Shown::Payload) || v.payload_erased();
    let text = if hidden {
        "null"
    } else {
        std::str::from_utf8(v.payload).unwrap_or("null")
    };
    let text = if text.is_empty() { "null" } else { text };
    // Stored bytes that are not JSON (only possible in a hand-made log) are
    // shown as a JSON string rather than hidden.
    let payload = RawValue::from_string(text.to_owned())
        .or_else(|_| RawValue::from_string(serde_json::Value::from(text).to_string()));
    let Ok(payload) = payload else {
        return format!("seq {}: payload cannot be rendered", v.seq);
    };
    let redaction = match shown {
        Shown::Erased(r) => Some(r),
        _ => None,
    };
    match format {
        Format::Json => serde_json::to_string(&EntryJson {
            seq: v.seq,
            ts: rfc3339_ns(v.ts_ns),
            kind: v.kind,
            job_id: v.job_id,
            step_id: v.step_id,
            agent: v.agent,
            actor: v.actor,
            parent: v.parent,
            payload,
            redacted: redaction.map(Redaction::json),
            erased: hidden && redaction.is_none(),
            hash: hex::encode(v.hash()),
            prev: hex::encode(v.prev),
        })
        .unwrap_or_default(),
        Format::Text => {
            let mut s = format!(
                "{:>6} {} {:<24}",
                v.seq,
                rfc3339_ns(v.ts_ns),
                safe::esc(v.kind)
            );
            for (k, val) in [("job", v.job_id), ("step", v.step_id), ("agent", v.agent)] {
                if let Some(val) = val {
                    s.push_str(&format!(" {k}={}", safe::esc(val)));
                }
            }
            s.push_str(&format!(" actor={}", safe::esc(v.actor)));
            if let Some(p) = v.parent {
                s.push_str(&format!(" parent={p}"));
            }
            s.push(' ');
            match (redaction, hidden) {
                (Some(r), _) => s.push_str(&safe::esc(&erased_text(r)).to_string()),
                (None, true) => s.push_str("<erased>"),
                // The payload stays JSON you can paste: its strings are
                // already JSON-escaped, so only invisible characters need
                // rewriting.
                (None, false) => s.push_str(&safe::json(payload.get())),
            }
            s
        }
    }
}
