//! `argusctl append`: JSON lines on stdin become entries.
//!
//! The thread that reads stdin commits what it read ([`pipeline`]; the log
//! is opened with `inline_writer`), so a lone line costs no thread
//! hand-off; large blocks are parsed on more than one core and reach the
//! commit in input order; lines that arrive together are committed
//! together. Acks that stdout cannot take yet wait in memory ([`acks`])
//! while stdin is still read, so a producer that writes all its lines
//! before reading any ack is not deadlocked. The first bad line stops the
//! run with exit 2: every line before it is committed, nothing of it (or
//! after it) is written.
mod acks;
pub mod emergency;
mod parse;
mod pipeline;

pub use parse::{
    entry_from_value, parse_json_line, parse_line, parse_line_with, LineError, RedactionFailure,
    Refusal, LINE_BYTES_MAX,
};

use super::{eprint, safe, EXIT_ERROR, EXIT_USAGE};
use anyhow::{Context, Result};
use std::path::Path;

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
    let log = super::state::open_writer_inline(dir, "append")?;
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
    // The agent path: whoever runs `append` writes as an agent, named by
    // the operating system (never by USER or any other variable).
    let actor = crate::authority::local_actor(crate::authority::Class::Agent).to_string();
    // The operator's redaction rules, found through DIR/control's pointer
    // and read from the entry it names; a pointer that leads nowhere stops
    // the run rather than dropping the rules.
    let rules = match crate::secrets::mirror::active(dir) {
        Ok(r) => r,
        Err(e) => {
            eprint(&format!("argusctl: redaction rules: {e}"));
            return Ok(EXIT_ERROR);
        }
    };
    let rules_seq = rules.seq();
    let mut parsed = pipeline::start(pipeline::Ingest { actor, rules }, parse_workers())
        .context("reading stdin")?;
    let mut out = acks::Acks::stdout().context("stdout (the acks)")?;
    let mut done = Committed::default();
    loop {
        let chunk = match parsed.next_group(&mut out) {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(closed) => return Ok(ack_stream_closed(&closed, &done)),
        };
        let mut entries = Vec::with_capacity(chunk.len());
        let mut last_line = done.last_line;
        let mut bad = None;
        let next_seq = log.committed().get();
        for (line, r) in chunk {
            // This process holds the writer lock, so the seq each line will
            // get is known now; a parent must name an earlier entry.
            let seq = next_seq + entries.len() as u64;
            let r = r.and_then(|e| match e.parent {
                Some(p) if p >= seq => Err(LineError::new(
                    line,
                    format!("field `parent`: seq {p} is not an earlier entry (this line would be seq {seq})"),
                )),
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
        let mut written = out.push(&acks);
        if bad.is_some() {
            // The run stops here: every ack of what is committed goes out
            // before the report.
            written = written.and_then(|()| out.drain());
        }
        if let Err(closed) = written {
            return Ok(ack_stream_closed(&closed, &done));
        }
        if let Some(failure) = bad
            .as_ref()
            .and_then(|e| e.redaction.as_deref().map(|f| (e.line, f)))
        {
            return emergency_stop(&log, dir, failure, rules_seq, &done);
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
    if let Err(closed) = out.drain() {
        return Ok(ack_stream_closed(&closed, &done));
    }
    Ok(0)
}

/// The acks are the producer's only receipt: with nobody reading them,
/// committing more would store entries nobody knows are stored. Stop, and
/// say exactly what is stored (whether or not its acks were delivered).
fn ack_stream_closed(closed: &acks::Closed, done: &Committed) -> i32 {
    eprint(&format!(
        "argusctl: {}: {}",
        closed.describe(),
        done.stopping()
    ));
    EXIT_ERROR
}

/// Records the stop (`redaction.failed` and `lockdown.set`, one commit),
/// mirrors the lockdown flag, and says what happened.
fn emergency_stop(
    log: &crate::Log,
    dir: &Path,
    (line, failure): (u64, &RedactionFailure),
    rules_seq: Option<u64>,
    done: &Committed,
) -> Result<i32> {
    let acks = log
        .append(emergency::entries(failure, Some(line), rules_seq))
        .context("recording the emergency stop (redaction.failed, lockdown.set)")?;
    let seqs: Vec<String> = acks.iter().map(|a| a.seq.to_string()).collect();
    if let Err(e) = super::control::sync_after(dir) {
        eprint(&format!(
            "argusctl: the lockdown is recorded but its flag file is not written: {}",
            crate::cli::error::chain_text(&e)
        ));
    }
    eprint(&safe::line(&format!(
        "argusctl: stdin line {line}: field `payload`: {}; nothing of this line was written; emergency stop: redaction.failed and lockdown.set recorded (seqs {}); agents are refused until an operator runs `argusctl release`; {}",
        failure.reason,
        seqs.join(", "),
        done.stopping()
    )));
    Ok(super::EXIT_KILLED)
}

/// Parse threads for large blocks: one per core, so a bulk load parses on
/// every core while the committing thread reads.
fn parse_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}
