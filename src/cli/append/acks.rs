//! The acks of `argusctl append` on their way to stdout, written so that
//! the thread that reads stdin and commits never blocks on them.
//!
//! One thread reads stdin, commits and writes acks. A producer that writes
//! all its lines before reading any ack fills the stdin pipe while the ack
//! pipe fills too: a blocking ack write would then wait on a producer that
//! waits on us. So acks that stdout cannot take now wait in a queue, and
//! every wait for input is a `poll(2)` on stdin and stdout together (stdout
//! for room while acks are queued, and always for a closed reader, so a
//! producer that stops reading acks is noticed before more is committed).
//! A lone entry's ack, with the pipe empty, is still written right after
//! its commit, on the same thread.
//!
//! Only a pipe or socket can make a write wait on the producer. A regular
//! file or a terminal takes a blocking write that cannot deadlock with
//! whoever feeds stdin, so acks go there at once. For a pipe, the ack
//! stream is reopened through `/proc/self/fd/1` as an open file description
//! of our own with `O_NONBLOCK` (a flag set on fd 1 itself would be shared
//! with whoever else holds that pipe end); a write to it takes what fits and
//! returns. Where that is not possible (a socket, no /proc), a write goes
//! out only after a poll said stdout is writable, and carries at most
//! `PIPE_BUF` bytes, which a writable pipe takes without waiting.
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

/// Acks held in memory for a producer that is not reading them, at most.
/// Past this no more stdin is read until the producer has read some: a
/// producer that writes more than this much acks' worth of lines (about
/// 700,000) before reading any ack stalls, as `append --help` says.
pub const QUEUE_BYTES_MAX: usize = 64 << 20;

/// Written acks at the front of the queue are dropped once they are at
/// least this many bytes and half the queue (an amortized move).
const COMPACT_BYTES: usize = 1 << 20;

/// What a pipe takes in one write without waiting, once poll said it has
/// room (POSIX's minimum for an atomic pipe write; Linux's too).
const PIPE_BUF: usize = 4096;

/// Where acks go.
enum Sink {
    /// Inside argusd: the command's stdout is the answer to its request.
    Captured,
    /// A regular file, a terminal, /dev/null: a blocking write is safe.
    Blocking(std::fs::File),
    /// A pipe, through an open file description of our own with
    /// O_NONBLOCK: a write takes what fits. `fd1` is stdout itself, for
    /// poll.
    NonBlocking {
        fd1: std::fs::File,
        own: std::fs::File,
    },
    /// A pipe or socket written only after poll said it has room, at most
    /// `PIPE_BUF` bytes a write.
    Polled(std::fs::File),
}

/// The ack stream could not take acks: its reader went away or a write
/// failed. Whatever was committed stays committed.
#[derive(Debug)]
pub struct Closed(pub std::io::Error);

impl Closed {
    /// "stdout closed", or what the write said.
    pub fn describe(&self) -> String {
        if self.0.kind() == std::io::ErrorKind::BrokenPipe {
            "stdout closed".to_string()
        } else {
            format!("writing acks to stdout: {}", self.0)
        }
    }
}

pub struct Acks {
    sink: Sink,
    /// Formatted acks not yet written; `queue[sent..]` is what is left.
    queue: Vec<u8>,
    sent: usize,
}

impl Acks {
    /// The ack stream of this process: argusd's capture, or stdout.
    pub fn stdout() -> std::io::Result<Acks> {
        let sink = if crate::cli::context::write_captured(b"") {
            Sink::Captured
        } else {
            sink_for(std::io::stdout().as_fd())?
        };
        Ok(Acks {
            sink,
            queue: Vec::new(),
            sent: 0,
        })
    }

    /// Bytes of acks waiting for stdout.
    pub fn queued(&self) -> usize {
        self.queue.len() - self.sent
    }

    /// Whether stdin may be read: the queue is under its bound.
    pub fn has_room(&self) -> bool {
        self.queued() < QUEUE_BYTES_MAX
    }

    /// Queues the acks of one group commit and writes what stdout takes
    /// now without waiting. An ack is digits and hex that Argus formats
    /// itself, so it needs none of the escaping stored text gets.
    pub fn push(&mut self, acks: &[crate::log::writer::Ack]) -> Result<(), Closed> {
        if acks.is_empty() {
            return Ok(());
        }
        if self.sent == self.queue.len() {
            self.queue.clear();
            self.sent = 0;
        } else if self.sent >= COMPACT_BYTES && self.sent * 2 >= self.queue.len() {
            // A producer that reads, but never quite all, would otherwise
            // keep the written front in memory for good.
            self.queue.drain(..self.sent);
            self.sent = 0;
        }
        let mut hex = [0u8; 64];
        for a in acks {
            self.queue.extend_from_slice(br#"{"seq":"#);
            self.queue
                .extend_from_slice(itoa::Buffer::new().format(a.seq).as_bytes());
            self.queue.extend_from_slice(br#","hash":""#);
            // Cannot fail: the buffer is exactly twice the hash.
            let _ = hex::encode_to_slice(a.hash, &mut hex);
            self.queue.extend_from_slice(&hex);
            self.queue.extend_from_slice(b"\"}\n");
        }
        self.write_available(false)
    }

    /// Writes queued acks while stdout takes them without waiting.
    /// `writable`: a poll just said stdout has room.
    fn write_available(&mut self, mut writable: bool) -> Result<(), Closed> {
        use std::io::ErrorKind::{Interrupted, WouldBlock, WriteZero};
        while self.sent < self.queue.len() {
            let rest = &self.queue[self.sent..];
            let wrote = match &mut self.sink {
                Sink::Captured => {
                    crate::cli::context::write_captured(rest);
                    Ok(rest.len())
                }
                Sink::Blocking(f) => f.write_all(rest).map(|()| rest.len()),
                Sink::NonBlocking { own, .. } => own.write(rest),
                Sink::Polled(f) => {
                    if !writable && !writable_now(f.as_fd()) {
                        return Ok(());
                    }
                    writable = false;
                    f.write(&rest[..rest.len().min(PIPE_BUF)])
                }
            };
            match wrote {
                // A write that takes nothing and reports no error: the
                // stream is gone in all but name.
                Ok(0) => return Err(Closed(WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == WouldBlock => return Ok(()),
                Err(e) if e.kind() == Interrupted => {}
                Err(e) => return Err(Closed(e)),
            }
        }
        Ok(())
    }

    /// Waits until stdin can be read without waiting, writing queued acks
    /// as stdout takes them meanwhile. While the queue is over its bound,
    /// stdin is not watched at all. A closed ack stream ends the wait with
    /// `Closed`, even with nothing queued.
    pub fn wait_for_input(&mut self, stdin: BorrowedFd<'_>) -> Result<(), Closed> {
        loop {
            let Some(fd1) = self.pollable() else {
                // Nothing to watch on stdout: the read itself waits.
                return Ok(());
            };
            let queued = self.queued() > 0;
            let out_events = if queued {
                PollFlags::POLLOUT
            } else {
                PollFlags::empty()
            };
            let watch_in = self.has_room();
            let mut fds = [
                PollFd::new(fd1, out_events),
                PollFd::new(stdin, PollFlags::POLLIN),
            ];
            let n = if watch_in { 2 } else { 1 };
            match poll(&mut fds[..n], PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Closed(e.into())),
            }
            let out = fds[0].revents().unwrap_or(PollFlags::empty());
            let input = watch_in && fds[1].revents().is_some_and(|r| !r.is_empty());
            if out.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                return Err(Closed(std::io::ErrorKind::BrokenPipe.into()));
            }
            if out.contains(PollFlags::POLLOUT) {
                self.write_available(true)?;
            }
            if input {
                return Ok(());
            }
        }
    }

    /// Writes every queued ack, waiting for stdout as long as it takes (the
    /// input has ended, or the run stops): the producer gets a receipt for
    /// every committed entry, or the report says it did not.
    pub fn drain(&mut self) -> Result<(), Closed> {
        self.write_available(false)?;
        while self.queued() > 0 {
            let Some(fd1) = self.pollable() else {
                return self.write_available(false);
            };
            let mut fds = [PollFd::new(fd1, PollFlags::POLLOUT)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Closed(e.into())),
            }
            let out = fds[0].revents().unwrap_or(PollFlags::empty());
            if out.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                return Err(Closed(std::io::ErrorKind::BrokenPipe.into()));
            }
            self.write_available(out.contains(PollFlags::POLLOUT))?;
        }
        Ok(())
    }

    /// stdout's descriptor for poll; `None` inside argusd.
    fn pollable(&self) -> Option<BorrowedFd<'_>> {
        match &self.sink {
            Sink::Captured => None,
            Sink::Blocking(f) | Sink::Polled(f) | Sink::NonBlocking { fd1: f, .. } => {
                Some(f.as_fd())
            }
        }
    }
}

/// How acks reach `fd` (stdout): looked at once, when the run starts.
fn sink_for(fd: BorrowedFd<'_>) -> std::io::Result<Sink> {
    use std::os::unix::fs::FileTypeExt;
    let fd1 = std::fs::File::from(fd.try_clone_to_owned()?);
    let meta = fd1.metadata()?;
    let kind = meta.file_type();
    if kind.is_fifo() {
        if let Some(own) = reopen_nonblocking(&meta) {
            return Ok(Sink::NonBlocking { fd1, own });
        }
        return Ok(Sink::Polled(fd1));
    }
    if kind.is_socket() {
        return Ok(Sink::Polled(fd1));
    }
    Ok(Sink::Blocking(fd1))
}

/// The pipe on stdout, opened again as a description of our own with
/// O_NONBLOCK; `None` if that is not possible here (no /proc, another
/// user's pipe) or what opened is not the same pipe.
fn reopen_nonblocking(stdout: &std::fs::Metadata) -> Option<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let own = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/proc/self/fd/1")
        .ok()?;
    let meta = own.metadata().ok()?;
    (meta.dev() == stdout.dev() && meta.ino() == stdout.ino() && meta.file_type().is_fifo())
        .then_some(own)
}

/// Whether stdout has room now; a failed poll says no, and the caller
/// waits in its own poll, which reports the failure.
fn writable_now(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLOUT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::writer::Ack;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    fn acks(from: u64, n: u64) -> Vec<Ack> {
        (from..from + n)
            .map(|seq| Ack {
                seq,
                hash: [seq as u8; 32],
            })
            .collect()
    }

    /// A reader that keeps up, but never with everything: the written
    /// front of the queue is dropped (memory stays near what is unread),
    /// every ack arrives once, in order, and nothing blocks the pusher.
    #[test]
    fn a_queue_that_never_empties_drops_what_was_written_and_keeps_order() {
        for nonblocking in [false, true] {
            let (r, w) = nix::unistd::pipe().unwrap();
            let mut r = std::fs::File::from(r);
            let w = std::fs::File::from(w);
            let sink = if nonblocking {
                let own = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(format!("/proc/self/fd/{}", w.as_raw_fd()))
                    .unwrap();
                Sink::NonBlocking { fd1: w, own }
            } else {
                Sink::Polled(w)
            };
            let mut q = Acks {
                sink,
                queue: Vec::new(),
                sent: 0,
            };
            let mut got = Vec::new();
            // Each round pushes ~72 KB and reads what the pipe holds (at
            // most 64 KiB): the unread part grows slowly, never empties.
            let mut buf = vec![0u8; 64 << 10];
            let mut seq = 0;
            let mut most = 0;
            while seq < 80_000 {
                // Never blocks, however full the pipe.
                q.push(&acks(seq, 800)).unwrap();
                seq += 800;
                most = most.max(q.queue.len());
                let n = r.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            assert!(q.queued() > 0, "the reader fell behind");
            assert!(
                most < 3 * COMPACT_BYTES,
                "queue grew to {most} bytes with {} unread",
                q.queued()
            );
            let reader = std::thread::spawn(move || {
                let mut rest = Vec::new();
                r.read_to_end(&mut rest).unwrap();
                rest
            });
            q.drain().unwrap();
            drop(q);
            got.extend(reader.join().unwrap());
            let seqs: Vec<u64> = String::from_utf8(got)
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["seq"].as_u64().unwrap()
                })
                .collect();
            assert_eq!(seqs, (0..80_000).collect::<Vec<_>>(), "{nonblocking}");
        }
    }
}
