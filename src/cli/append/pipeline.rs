//! stdin to parsed entries, in input order, on more than one core.
//!
//! A reader thread takes stdin in the chunks the OS delivers and cuts each
//! at its last newline into a block of whole lines. A small block is parsed
//! on the reader thread itself (one hand-off, as for a lone entry); a larger
//! one goes to a pool of parse workers. Every block gets its own reply
//! channel, queued in input order, so the writer takes results in input
//! order however the workers finish, and stops at the first bad line: what
//! a worker parsed after it is never committed.
use super::parse::{parse_line_with, LineError, LINE_BYTES_MAX};
use crate::log::entry::ValidEntry;
use crate::secrets::ActiveRules;
use std::io::Read;
use std::sync::{mpsc, Arc, Mutex};

/// One block's lines, in order, each with its line number; a bad line is
/// the last one (its block stops there).
pub type Parsed = Vec<(u64, Result<ValidEntry, LineError>)>;

/// Blocks smaller than this are parsed on the reader thread: a worker
/// hand-off costs more than the parse it would spread.
const INLINE_BYTES: usize = 16 * 1024;
/// Blocks in flight between the reader and the writer (bounded, so a fast
/// producer waits for the disk instead of filling memory).
const IN_FLIGHT: usize = 64;
/// What one read asks for. The pipe keeps the kernel's size: a larger one
/// would let a producer run further ahead of the acks it has read.
const READ_BYTES: usize = 1 << 20;

struct Job {
    block: Vec<u8>,
    first_line: u64,
    reply: mpsc::SyncSender<Parsed>,
}

/// The writer's end: parsed blocks in input order.
pub struct Ordered {
    order: mpsc::Receiver<mpsc::Receiver<Parsed>>,
    /// A block whose turn has come but whose parse is still running.
    pending: Option<mpsc::Receiver<Parsed>>,
}

impl Ordered {
    /// The next block, waiting for it; `None` at the end of the input.
    pub fn recv(&mut self) -> Option<Parsed> {
        let rx = match self.pending.take() {
            Some(rx) => rx,
            None => self.order.recv().ok()?,
        };
        rx.recv().ok()
    }

    /// The next block if it is already parsed.
    pub fn try_recv(&mut self) -> Option<Parsed> {
        let rx = match self.pending.take() {
            Some(rx) => rx,
            None => self.order.try_recv().ok()?,
        };
        match rx.try_recv() {
            Ok(p) => Some(p),
            Err(mpsc::TryRecvError::Empty) => {
                self.pending = Some(rx);
                None
            }
            Err(mpsc::TryRecvError::Disconnected) => None,
        }
    }
}

/// Who writes the lines, and the redaction rules in force.
pub struct Ingest {
    pub actor: String,
    pub rules: ActiveRules,
}

/// Starts the reader and `workers` parse threads on stdin.
pub fn start(ingest: Ingest, workers: usize) -> Ordered {
    let (order_tx, order) = mpsc::sync_channel(IN_FLIGHT);
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let actor = Arc::new(ingest);
    for _ in 0..workers {
        let jobs = Arc::clone(&job_rx);
        let actor = Arc::clone(&actor);
        std::thread::spawn(move || worker(&jobs, &actor));
    }
    std::thread::spawn(move || {
        let mut r = Reader {
            actor,
            order: order_tx,
            jobs: (workers > 0).then_some(job_tx),
        };
        r.run();
    });
    Ordered {
        order,
        pending: None,
    }
}

fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, actor: &Ingest) {
    loop {
        // The lock is held only to take a job, never while parsing.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A closed reply means the writer stopped; nothing to do.
        let _ = job
            .reply
            .send(parse_block(&job.block, job.first_line, actor));
    }
}

/// Every line of a block of whole lines (each ends in `\n`, except perhaps
/// the input's last), stopping at the first bad one.
fn parse_block(block: &[u8], first_line: u64, actor: &Ingest) -> Parsed {
    let mut out = Vec::with_capacity(block.len() / 256 + 1);
    let mut line_no = first_line;
    let mut rest = block;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if let Some(r) = one(line, line_no, actor) {
            let stop = r.is_err();
            out.push((line_no, r));
            if stop {
                break;
            }
        }
        line_no += 1;
    }
    out
}

fn one(line: &[u8], line_no: u64, ingest: &Ingest) -> Option<Result<ValidEntry, LineError>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    if line.len() > LINE_BYTES_MAX {
        return Some(Err(LineError::new(
            line_no,
            format!("line exceeds the {} MiB limit", LINE_BYTES_MAX >> 20),
        )));
    }
    Some(
        parse_line_with(line, &ingest.actor, ingest.rules.redactor()).map_err(|r| LineError {
            line: line_no,
            message: r.message,
            redaction: r.redaction,
        }),
    )
}

struct Reader {
    actor: Arc<Ingest>,
    order: mpsc::SyncSender<mpsc::Receiver<Parsed>>,
    jobs: Option<mpsc::Sender<Job>>,
}

impl Reader {
    /// Queues a block's turn, parsing it here or on a worker. False once
    /// the writer has stopped listening.
    fn submit(&mut self, block: Vec<u8>, first_line: u64) -> bool {
        let (reply, rx) = mpsc::sync_channel(1);
        if self.order.send(rx).is_err() {
            return false;
        }
        match &self.jobs {
            Some(jobs) if block.len() >= INLINE_BYTES => {
                let job = Job {
                    block,
                    first_line,
                    reply,
                };
                if let Err(mpsc::SendError(job)) = jobs.send(job) {
                    let _ = job
                        .reply
                        .send(parse_block(&job.block, first_line, &self.actor));
                }
            }
            _ => {
                let _ = reply.send(parse_block(&block, first_line, &self.actor));
            }
        }
        true
    }

    /// A refusal that is not a parse of a line (a read error, an endless
    /// line), in its turn after every block before it.
    fn fail(&mut self, line: u64, message: String) {
        let (reply, rx) = mpsc::sync_channel(1);
        if self.order.send(rx).is_ok() {
            let _ = reply.send(vec![(line, Err(LineError::new(line, message)))]);
        }
    }

    fn run(&mut self) {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; READ_BYTES];
        // The incomplete last line of what was read so far.
        let mut partial: Vec<u8> = Vec::new();
        // Lines before `partial`.
        let mut lines_before = 0u64;
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return self.fail(lines_before + 1, format!("reading stdin: {e}"));
                }
            };
            if n == 0 {
                if !partial.is_empty() {
                    let last = std::mem::take(&mut partial);
                    self.submit(last, lines_before + 1);
                }
                return;
            }
            let got = &buf[..n];
            let Some(cut) = got.iter().rposition(|&b| b == b'\n') else {
                partial.extend_from_slice(got);
                if partial.len() > LINE_BYTES_MAX {
                    let message = format!("line exceeds the {} MiB limit", LINE_BYTES_MAX >> 20);
                    return self.fail(lines_before + 1, message);
                }
                continue;
            };
            let mut block = std::mem::take(&mut partial);
            block.extend_from_slice(&got[..=cut]);
            partial.extend_from_slice(&got[cut + 1..]);
            let first_line = lines_before + 1;
            lines_before += count_newlines(&block);
            if !self.submit(block, first_line) {
                return;
            }
            if partial.len() > LINE_BYTES_MAX {
                let message = format!("line exceeds the {} MiB limit", LINE_BYTES_MAX >> 20);
                return self.fail(lines_before + 1, message);
            }
        }
    }
}

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}
