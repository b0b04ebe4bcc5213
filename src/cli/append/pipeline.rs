//! stdin to parsed entries, in input order, on the thread that commits them.
//!
//! The committing thread reads stdin itself and cuts what each read
//! returns at its last newline into a block of whole lines. A small block
//! is parsed right there, so a lone entry goes read, parse, commit, ack
//! with no thread hand-off; a larger one goes to a pool of parse workers,
//! and while any is parsing, whatever else has already arrived on stdin is
//! read too (without waiting for more), so a producer's large write becomes
//! one group commit. Blocks are queued in input order and a group is taken
//! from the front, stopping at the first bad line: what a worker parsed
//! after it is never committed. Lines that arrive during a commit wait in
//! the pipe and are read together as the next group. Waiting for input is
//! [`Acks::wait_for_input`]: acks the producer has not made room for yet are
//! written meanwhile, so a producer that writes everything before reading
//! any ack is not deadlocked against us (see `acks`).
use super::acks::{Acks, Closed};
use super::parse::{parse_line_with, LineError, LINE_BYTES_MAX};
use crate::log::entry::ValidEntry;
use crate::secrets::ActiveRules;
use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsFd;
use std::sync::{mpsc, Arc, Mutex};

/// One block's lines, in order, each with its line number; a bad line is
/// the last one (its block stops there).
pub type Parsed = Vec<(u64, Result<ValidEntry, LineError>)>;

/// Blocks smaller than this are parsed on the committing thread: a worker
/// hand-off costs more than the parse it would spread.
const INLINE_BYTES: usize = 16 * 1024;
/// What one read asks for. The pipe keeps the kernel's size: a larger one
/// would let a producer run further ahead of the acks it has read.
const READ_BYTES: usize = 1 << 20;
/// Entries in one group commit, at most.
pub const GROUP_ENTRIES: usize = 16_384;
/// Bytes of stdin one group reads ahead while its blocks parse, at most,
/// so a steady stream of input cannot hold one group's commit back.
const AHEAD_BYTES: usize = 128 * 1024;

struct Job {
    block: Vec<u8>,
    first_line: u64,
    reply: mpsc::SyncSender<Parsed>,
}

/// A block in its turn: parsed, or still on a worker.
enum Block {
    Parsed(Parsed),
    /// On a worker, with the block's first line number.
    Parsing(mpsc::Receiver<Parsed>, u64),
}

impl Block {
    /// The block's lines, waiting for its worker if it is still parsing.
    fn wait(self) -> Parsed {
        match self {
            Block::Parsed(p) => p,
            // A worker gone (only a panic can do that) leaves its block
            // unparsed: the run stops there, saying so.
            Block::Parsing(rx, first_line) => rx.recv().unwrap_or_else(|_| {
                let e = LineError::new(
                    first_line,
                    "internal error: the parse of this line's block stopped".into(),
                );
                vec![(first_line, Err(e))]
            }),
        }
    }
}

/// Who writes the lines, and the redaction rules in force.
pub struct Ingest {
    pub actor: String,
    pub rules: ActiveRules,
}

/// stdin as groups of parsed lines, in input order.
pub struct Source {
    input: std::fs::File,
    buf: Vec<u8>,
    /// The incomplete last line of what was read so far.
    partial: Vec<u8>,
    /// Lines before `partial`.
    lines_before: u64,
    /// End of input, or a refusal that ends it, was reached.
    ended: bool,
    ingest: Arc<Ingest>,
    jobs: Option<mpsc::Sender<Job>>,
    queue: VecDeque<Block>,
    /// Lines in `queue` (an upper bound while blocks are parsing).
    queued_lines: u64,
}

/// Starts `workers` parse threads; stdin is read by whoever calls
/// `Source::next_group`.
pub fn start(ingest: Ingest, workers: usize) -> std::io::Result<Source> {
    // A descriptor of our own for stdin, read without std's buffer, so
    // that a poll of it says whether a read would wait.
    let input = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let ingest = Arc::new(ingest);
    for _ in 0..workers {
        let jobs = Arc::clone(&job_rx);
        let ingest = Arc::clone(&ingest);
        std::thread::spawn(move || worker(&jobs, &ingest));
    }
    Ok(Source {
        input,
        buf: vec![0u8; READ_BYTES],
        partial: Vec::new(),
        lines_before: 0,
        ended: false,
        ingest,
        jobs: (workers > 0).then_some(job_tx),
        queue: VecDeque::new(),
        queued_lines: 0,
    })
}

impl Source {
    /// The next group of lines in input order, waiting for input only when
    /// nothing is queued; `None` at the end of the input. A bad line is the
    /// group's last. While it waits, `acks` go out as stdout takes them; a
    /// closed ack stream ends the wait with `Closed`.
    pub fn next_group(&mut self, acks: &mut Acks) -> Result<Option<Parsed>, Closed> {
        let mut read = 0;
        while self.queue.is_empty() {
            if self.ended {
                return Ok(None);
            }
            acks.wait_for_input(self.input.as_fd())?;
            read += self.read_once();
        }
        // While a worker parses, take what has already arrived as well
        // (unless the acks queued for a producer that is not reading them
        // are at their bound).
        while !self.ended
            && read < AHEAD_BYTES
            && self.queued_lines < GROUP_ENTRIES as u64
            && self.any_parsing()
        {
            if acks.has_room() && readable_now(&self.input) {
                read += self.read_once();
            } else {
                self.wait_oldest_parse();
            }
        }
        let mut group: Parsed = Vec::new();
        while group.len() < GROUP_ENTRIES {
            let Some(block) = self.queue.pop_front() else {
                break;
            };
            let parsed = block.wait();
            self.queued_lines = self.queued_lines.saturating_sub(parsed.len() as u64);
            let bad = parsed.last().is_some_and(|(_, r)| r.is_err());
            group.extend(parsed);
            if bad {
                // Nothing after the first bad line is committed.
                self.queue.clear();
                self.ended = true;
                break;
            }
        }
        Ok(Some(group))
    }

    fn any_parsing(&self) -> bool {
        self.queue.iter().any(|b| matches!(b, Block::Parsing(..)))
    }

    /// Waits for the oldest block still on a worker.
    fn wait_oldest_parse(&mut self) {
        if let Some(b) = self
            .queue
            .iter_mut()
            .find(|b| matches!(b, Block::Parsing(..)))
        {
            let parsing = std::mem::replace(b, Block::Parsed(Vec::new()));
            *b = Block::Parsed(parsing.wait());
        }
    }

    /// Queues a block in its turn, parsing it here or on a worker.
    fn submit(&mut self, block: Vec<u8>, first_line: u64, lines: u64) {
        self.queued_lines += lines;
        match &self.jobs {
            Some(jobs) if block.len() >= INLINE_BYTES => {
                let (reply, rx) = mpsc::sync_channel(1);
                let job = Job {
                    block,
                    first_line,
                    reply,
                };
                match jobs.send(job) {
                    Ok(()) => self.queue.push_back(Block::Parsing(rx, first_line)),
                    Err(mpsc::SendError(job)) => {
                        let p = parse_block(&job.block, first_line, &self.ingest);
                        self.queue.push_back(Block::Parsed(p));
                    }
                }
            }
            _ => {
                let p = parse_block(&block, first_line, &self.ingest);
                self.queue.push_back(Block::Parsed(p));
            }
        }
    }

    /// A refusal that is not a parse of a line (a read error, an endless
    /// line), in its turn after every block before it; it ends the input.
    fn fail(&mut self, line: u64, message: String) {
        self.queue.push_back(Block::Parsed(vec![(
            line,
            Err(LineError::new(line, message)),
        )]));
        self.ended = true;
    }

    /// One read of stdin (waiting for it), queued as a block of whole
    /// lines; returns the bytes read.
    fn read_once(&mut self) -> usize {
        let n = match self.input.read(&mut self.buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return 0,
            Err(e) => {
                self.fail(self.lines_before + 1, format!("reading stdin: {e}"));
                return 0;
            }
        };
        if n == 0 {
            self.ended = true;
            if !self.partial.is_empty() {
                let last = std::mem::take(&mut self.partial);
                self.submit(last, self.lines_before + 1, 1);
            }
            return 0;
        }
        let got = &self.buf[..n];
        let Some(cut) = got.iter().rposition(|&b| b == b'\n') else {
            self.partial.extend_from_slice(got);
            if self.partial.len() > LINE_BYTES_MAX {
                let message = format!("line exceeds the {} MiB limit", LINE_BYTES_MAX >> 20);
                self.fail(self.lines_before + 1, message);
            }
            return n;
        };
        let mut block = std::mem::take(&mut self.partial);
        block.extend_from_slice(&got[..=cut]);
        self.partial.extend_from_slice(&got[cut + 1..]);
        let first_line = self.lines_before + 1;
        let lines = count_newlines(&block);
        self.lines_before += lines;
        self.submit(block, first_line, lines);
        if self.partial.len() > LINE_BYTES_MAX {
            let message = format!("line exceeds the {} MiB limit", LINE_BYTES_MAX >> 20);
            self.fail(self.lines_before + 1, message);
        }
        n
    }
}

/// Whether a read of `f` would return at once (data, end of input or an
/// error); a failed poll says no, and the caller waits for its parse.
fn readable_now(f: &std::fs::File) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
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

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}
