//! The single writer thread and group commit.
//!
//! Producers hand requests to one thread that owns the active segment. It
//! drains everything queued, assigns seqs, chains hashes, extends the Merkle
//! range, writes entries plus one signed seal in a single write, calls
//! fdatasync, and only then acknowledges. Latency is about one fsync and
//! throughput grows with the number of concurrent producers.
use crate::error::{Error, IoContext, Result};
use crate::log::dir::{sync_dir, LogDir};
use crate::log::index;
use crate::log::recovery::Recovered;
use crate::log::safe_fs;
use crate::time::{Clock, ClockJudge, Skew};
use ed25519_dalek::SigningKey;
use log_format::entry::{encode_entry, valid_kind, EntryFields};
use log_format::frame::encode_frame;
use log_format::segment::segment_file_name;
use log_format::{CompactRange, Footer, FrameType, Hash32, LogId, Seal, SegmentHeader};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};

/// Largest payload accepted, in bytes. Keeps every frame well under the
/// format's 16 MiB frame limit.
pub const PAYLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest kind, job_id, step_id, agent or actor, in bytes.
pub const FIELD_BYTES_MAX: usize = 1024;
/// Entries per group commit before the writer stops draining the queue.
const GROUP_ENTRIES_MAX: usize = 16_384;
/// Sparse index stride: one (seq, offset) pair per this many entries.
pub const INDEX_STRIDE: u64 = 4096;

/// An entry as a producer submits it; the writer assigns seq, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub kind: String,
    pub job_id: Option<String>,
    pub step_id: Option<String>,
    pub agent: Option<String>,
    pub actor: String,
    pub parent: Option<u64>,
    /// JSON text.
    pub payload: Vec<u8>,
}

impl NewEntry {
    /// An entry Argus writes itself (class `argus`): no job, no agent, a
    /// canonical payload.
    pub fn argus(kind: &str, payload: &serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            job_id: None,
            step_id: None,
            agent: None,
            actor: crate::authority::Actor::argus().to_string(),
            parent: None,
            payload: crate::json::to_canonical(payload),
        }
    }

    /// The format-level fields of this entry once the writer has given it a
    /// place in the chain.
    pub fn fields(&self, seq: u64, ts_ns: u64, prev: Hash32) -> EntryFields<'_> {
        EntryFields {
            seq,
            ts_ns,
            parent: self.parent,
            prev,
            kind: &self.kind,
            job_id: self.job_id.as_deref(),
            step_id: self.step_id.as_deref(),
            agent: self.agent.as_deref(),
            actor: &self.actor,
            payload: &self.payload,
        }
    }
}

/// Acknowledgement: the entry is durable and covered by a signed seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    pub hash: Hash32,
}

pub(crate) struct Request {
    pub entries: Vec<NewEntry>,
    pub reply: SyncSender<Result<Vec<Ack>>>,
}

/// Commit notification: the number of entries durable and sealed so far.
/// In-process subscribers (projections, the auditor, tail streams) wait on it.
#[derive(Default)]
pub struct Committed {
    size: Mutex<u64>,
    cond: Condvar,
}

impl Committed {
    pub fn get(&self) -> u64 {
        *self.size.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set(&self, n: u64) {
        *self.size.lock().unwrap_or_else(|p| p.into_inner()) = n;
        self.cond.notify_all();
    }
    /// Blocks until at least `n` entries are committed or `timeout` passes.
    pub fn wait_for(&self, n: u64, timeout: std::time::Duration) -> u64 {
        let guard = self.size.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |s| *s < n)
            .unwrap_or_else(|p| p.into_inner());
        *g
    }
}

struct Active {
    file: File,
    path: PathBuf,
    base_seq: u64,
    len: u64,
    entries: u64,
    index: Vec<(u64, u64)>,
}

/// How a writer runs: where segments roll and where time comes from.
pub struct WriterConfig {
    pub segment_bytes: u64,
    pub clock: Arc<dyn Clock>,
    pub skew_tolerance_ns: u64,
}

pub(crate) struct Writer {
    dir: LogDir,
    log_id: LogId,
    key: SigningKey,
    segment_bytes: u64,
    seg: Active,
    next_seq: u64,
    last_hash: Hash32,
    range: CompactRange,
    /// Time of the last entry written (not a maximum: clocks may step back).
    last_ts_ns: Option<u64>,
    clock: Arc<dyn Clock>,
    judge: ClockJudge,
    lockdown: Option<String>,
    committed: Arc<Committed>,
    buf: Vec<u8>,
}

/// This process's wall clock (see `crate::time` for what entries' times mean).
pub fn now_ns() -> u64 {
    crate::time::wall_now_ns()
}

/// Checks one entry against the limits and grammar before any byte is written.
/// The payload's JSON form is `Log::append`'s check (SPEC §4.1.1), made once
/// on the producer's thread; this one stays cheap because the writer thread
/// runs it for every entry of every group commit.
pub fn validate(e: &NewEntry, seq: u64) -> std::result::Result<(), String> {
    if !valid_kind(&e.kind) {
        return Err(format!(
            "kind {:?} does not match [a-z0-9_]+(\\.[a-z0-9_]+)*",
            e.kind
        ));
    }
    for (name, v) in [
        ("kind", Some(&e.kind)),
        ("job_id", e.job_id.as_ref()),
        ("step_id", e.step_id.as_ref()),
        ("agent", e.agent.as_ref()),
        ("actor", Some(&e.actor)),
    ] {
        if let Some(v) = v {
            if v.is_empty() {
                return Err(format!("{name} must not be empty when present"));
            }
            if v.len() > FIELD_BYTES_MAX {
                return Err(format!(
                    "{name} is {} bytes; the limit is {FIELD_BYTES_MAX}",
                    v.len()
                ));
            }
        }
    }
    if e.payload.len() > PAYLOAD_BYTES_MAX {
        return Err(format!(
            "payload is {} bytes; the limit is {PAYLOAD_BYTES_MAX}",
            e.payload.len()
        ));
    }
    if let Some(p) = e.parent {
        if p >= seq {
            return Err(format!(
                "parent {p} is not an earlier seq (this entry would be seq {seq})"
            ));
        }
    }
    Ok(())
}

impl Writer {
    pub(crate) fn new(
        dir: LogDir,
        log_id: LogId,
        key: SigningKey,
        cfg: WriterConfig,
        rec: &Recovered,
        committed: Arc<Committed>,
    ) -> Result<Self> {
        let WriterConfig {
            segment_bytes,
            clock,
            skew_tolerance_ns,
        } = cfg;
        let dir_root = dir.root.clone();
        let path = dir.segment_path(rec.base_seq);
        let file = safe_fs::open_write(&path)?;
        let mut w = Self {
            dir,
            log_id,
            key,
            segment_bytes,
            seg: Active {
                file,
                path,
                base_seq: rec.base_seq,
                len: rec.len,
                entries: rec.entries_in_segment,
                index: Vec::new(),
            },
            next_seq: rec.next_seq,
            last_hash: rec.last_hash,
            range: rec.range.clone(),
            last_ts_ns: rec.last_ts_ns,
            judge: ClockJudge::open(&dir_root, clock.as_ref(), skew_tolerance_ns),
            clock,
            lockdown: None,
            committed,
            buf: Vec::new(),
        };
        if rec.has_footer {
            w.open_next_segment()?;
        }
        w.committed.set(w.next_seq);
        Ok(w)
    }

    /// Writes the first segment of a new log with a signed seal of the empty
    /// tree, so a checkpoint exists from the start.
    pub(crate) fn create_first_segment(
        dir: &LogDir,
        log_id: LogId,
        key: &SigningKey,
    ) -> Result<()> {
        let header = SegmentHeader {
            log_id,
            base_seq: 0,
            prev_hash: [0; 32],
            frontier: CompactRange::new(),
        };
        let mut bytes = header.encode();
        let seal = Seal::sign(
            &log_id,
            key,
            0,
            CompactRange::new().root(),
            [0; 32],
            now_ns(),
        );
        encode_frame(&mut bytes, FrameType::Seal, &seal.encode());
        write_new_file(dir, 0, &bytes).map(drop)
    }

    /// This commit's time: the writer's wall clock as it is. It is not
    /// forced to be non-decreasing (one wrong clock would then pin every
    /// later entry to its time); a jump is recorded instead, and rules count
    /// log time (`crate::time::LogClock`).
    fn next_ts(&mut self) -> (u64, Option<Skew>) {
        let now = self.clock.wall_ns();
        let boot = self.clock.boot();
        let skew = self.judge.check(now, boot.as_ref(), self.last_ts_ns);
        (now, skew)
    }

    /// The `clock.skew` entry that goes first in a commit after a jump.
    fn skew_entry(skew: &Skew) -> NewEntry {
        NewEntry::argus(crate::time::CLOCK_SKEW_KIND, &skew.payload())
    }

    fn seal_frame(&mut self, out: &mut Vec<u8>, ts: u64) {
        let seal = Seal::sign(
            &self.log_id,
            &self.key,
            self.next_seq,
            self.range.root(),
            self.last_hash,
            ts,
        );
        encode_frame(out, FrameType::Seal, &seal.encode());
    }

    /// Serves requests until every sender is gone.
    pub(crate) fn run(mut self, rx: Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            let mut n = group[0].entries.len();
            while n < GROUP_ENTRIES_MAX {
                match rx.try_recv() {
                    Ok(r) => {
                        n += r.entries.len();
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
    }

    fn fail_all(group: Vec<Request>, err: impl Fn() -> Error) {
        for r in group {
            let _ = r.reply.send(Err(err()));
        }
    }

    fn commit(&mut self, group: Vec<Request>) {
        if let Some(reason) = self.lockdown.clone() {
            return Self::fail_all(group, || Error::Lockdown(reason.clone()));
        }
        if self.seg.len >= self.segment_bytes {
            if let Err(e) = self.roll() {
                let reason = e.to_string();
                self.lockdown = Some(reason.clone());
                tracing::error!(%reason, "segment roll failed; entering lockdown");
                return Self::fail_all(group, || Error::Lockdown(reason.clone()));
            }
        }
        // Validate first: a request that fails writes nothing, and the clock
        // is judged only for a commit that will happen.
        let mut valid = Vec::with_capacity(group.len());
        let mut seq = self.next_seq;
        for req in group {
            let check = req.entries.iter().enumerate().try_for_each(|(i, e)| {
                validate(e, seq + i as u64).map_err(|m| format!("entry {}: {m}", i + 1))
            });
            match check {
                Ok(()) => {
                    seq += req.entries.len() as u64;
                    valid.push(req);
                }
                Err(m) => {
                    let _ = req.reply.send(Err(Error::InvalidEntry(m)));
                }
            }
        }
        if valid.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let (ts, skew) = self.next_ts();
        // A clock jump goes on record first, so every entry after it is read
        // in its light; it rides in this commit, under the same seal.
        if let Some(skew) = &skew {
            if let Err(reason) = self.encode_one(&mut buf, &Self::skew_entry(skew), ts) {
                return self.fail_closed(valid, reason);
            }
        }
        let mut accepted = Vec::with_capacity(valid.len());
        for req in valid {
            let mut acks = Vec::with_capacity(req.entries.len());
            for e in &req.entries {
                match self.encode_one(&mut buf, e, ts) {
                    Ok(ack) => acks.push(ack),
                    Err(reason) => {
                        let _ = req.reply.send(Err(Error::Lockdown(reason.clone())));
                        let rest = accepted.into_iter().map(|(r, _)| r).collect();
                        return self.fail_closed(rest, reason);
                    }
                }
            }
            accepted.push((req, acks));
        }
        self.last_ts_ns = Some(ts);
        self.seal_frame(&mut buf, ts);
        let res = self
            .seg
            .file
            .write_all_at(&buf, self.seg.len)
            .and_then(|_| self.seg.file.sync_data());
        match res {
            Ok(()) => {
                self.seg.len += buf.len() as u64;
                self.committed.set(self.next_seq);
                for (req, acks) in accepted {
                    let _ = req.reply.send(Ok(acks));
                }
            }
            Err(e) => {
                // Fail closed: after a failed write or fsync the file's state
                // is unknown, so acknowledge nothing and accept nothing more.
                let reason = format!("{}: {e}", self.seg.path.display());
                tracing::error!(%reason, "write failed; entering lockdown");
                self.lockdown = Some(reason.clone());
                Self::fail_all(accepted.into_iter().map(|(r, _)| r).collect(), || {
                    Error::Lockdown(reason.clone())
                });
            }
        }
        self.buf = buf;
    }

    /// Encodes one entry at the next seq into `buf` and advances the chain.
    /// An encoding failure cannot happen for validated input; if it does, the
    /// writer fails closed.
    fn encode_one(&mut self, buf: &mut Vec<u8>, e: &NewEntry, ts: u64) -> Result<Ack, String> {
        let seq = self.next_seq;
        let (body, hash) = encode_entry(&e.fields(seq, ts, self.last_hash))
            .map_err(|err| format!("encoding seq {seq}: {err}"))?;
        if (seq - self.seg.base_seq).is_multiple_of(INDEX_STRIDE) {
            self.seg.index.push((seq, self.seg.len + buf.len() as u64));
        }
        encode_frame(buf, FrameType::Entry, &body);
        self.range.push(&hash);
        self.last_hash = hash;
        self.next_seq = seq + 1;
        self.seg.entries += 1;
        Ok(Ack { seq, hash })
    }

    /// Lockdown: after a failure whose effect on the file is unknown,
    /// acknowledge nothing and accept nothing more.
    fn fail_closed(&mut self, group: Vec<Request>, reason: String) {
        tracing::error!(%reason, "entering lockdown");
        self.lockdown = Some(reason.clone());
        Self::fail_all(group, || Error::Lockdown(reason.clone()));
    }

    /// Seals the active segment (seal + footer) and starts the next one.
    fn roll(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        // The roll's seal needs a time, not a judgement: no entries move.
        let ts = self.clock.wall_ns();
        self.seal_frame(&mut buf, ts);
        let footer = Footer {
            base_seq: self.seg.base_seq,
            entry_count: self.seg.entries,
            last_hash: self.last_hash,
        };
        encode_frame(&mut buf, FrameType::Footer, &footer.encode());
        self.seg
            .file
            .write_all_at(&buf, self.seg.len)
            .and_then(|_| self.seg.file.sync_data())
            .at(&self.seg.path)?;
        self.seg.len += buf.len() as u64;
        if let Err(e) = index::write(&self.dir.index_path(self.seg.base_seq), &self.seg.index) {
            // The index is a cache; readers rebuild it. Never fail a commit for it.
            tracing::warn!(error = %e, "could not write sparse index");
        }
        self.open_next_segment()
    }

    fn open_next_segment(&mut self) -> Result<()> {
        let header = SegmentHeader {
            log_id: self.log_id,
            base_seq: self.next_seq,
            prev_hash: self.last_hash,
            frontier: self.range.clone(),
        };
        let bytes = header.encode();
        let file = write_new_file(&self.dir, self.next_seq, &bytes)?;
        let path = self.dir.segment_path(self.next_seq);
        self.seg = Active {
            file,
            path,
            base_seq: self.next_seq,
            len: bytes.len() as u64,
            entries: 0,
            index: Vec::new(),
        };
        Ok(())
    }
}

/// Creates a segment whole or not at all: write a temp file, sync, rename,
/// sync the directory. Returns the new segment open for writing (the same
/// inode that was renamed, so nothing can be swapped in between).
fn write_new_file(dir: &LogDir, base_seq: u64, bytes: &[u8]) -> Result<File> {
    let final_path = dir.segment_path(base_seq);
    // Anything at the name, even a dangling link, is a conflict.
    if std::fs::symlink_metadata(&final_path).is_ok() {
        return Err(Error::Inconsistent {
            segment: segment_file_name(base_seq),
            offset: 0,
            reason: "segment file already exists".into(),
        });
    }
    let tmp = dir
        .segments_dir()
        .join(format!("{}.tmp", segment_file_name(base_seq)));
    // A stale temp file from a crash (or a planted link) is unlinked, then
    // the temp file is created exclusively, never through a link.
    let f = safe_fs::create_replacing(&tmp, 0o666)?;
    f.write_all_at(bytes, 0).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    std::fs::rename(&tmp, &final_path).at(&final_path)?;
    sync_dir(&dir.segments_dir())?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(payload: &[u8]) -> NewEntry {
        NewEntry {
            kind: "x.test".into(),
            job_id: None,
            step_id: None,
            agent: None,
            actor: "user:t".into(),
            parent: None,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn payload_over_the_limit_is_refused_before_any_write() {
        assert!(validate(&entry(b"{\"a\":1}"), 0).is_ok());
        let big = vec![b'1'; PAYLOAD_BYTES_MAX + 1];
        let err = validate(&entry(&big), 0).unwrap_err();
        assert!(err.contains("the limit is"), "{err}");
    }
}
