//! The single writer thread and group commit.
//!
//! Producers hand requests to one thread that owns the active segment. It
//! drains everything queued, assigns seqs, chains hashes, extends the Merkle
//! range, writes entries plus one signed seal in a single write, calls
//! fdatasync, and only then acknowledges. Latency is about one fsync and
//! throughput grows with the number of concurrent producers.
use crate::error::{Error, IoContext, Result};
use crate::log::dir::LogDir;
use crate::log::index;
use crate::log::recovery::Recovered;
use crate::log::storage::StorageFile;
use crate::time::{Clock, ClockJudge, Skew};
use ed25519_dalek::SigningKey;
use log_format::entry::{append_entry_frame, encoded_seq_prev};
use log_format::frame::{encode_frame, FRAME_HEADER_LEN};
use log_format::segment::segment_file_name;
use log_format::{CompactRange, Footer, FrameType, Hash32, LogId, Seal, SegmentHeader};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};

/// Entries per group commit before the writer stops draining the queue.
const GROUP_ENTRIES_MAX: usize = 16_384;
/// Sparse index stride of a sealed segment: one (seq, offset) pair per
/// this many entries. A read of one entry walks at most this many frames
/// from its seek point (~5 KB of typical entries, two pages), so a cold
/// replay of a job reads a page or two per entry where a stride of 256
/// read ~80 KB; the index costs one byte per entry and is written once,
/// when the segment is sealed.
pub const INDEX_STRIDE: u64 = 16;
/// Stride of the active segment's index file, which the writer rewrites
/// whole when it gains a point: at 16 a segment of single-entry commits
/// would rewrite a growing file every 16 commits (O(n²) bytes); at 256
/// the rewrites stay a few MB per segment. The roll writes every point.
const ACTIVE_INDEX_STRIDE: u64 = 256;

use super::entry::{check_parent, ValidEntry};
pub use super::entry::{NewEntry, FIELD_BYTES_MAX, PAYLOAD_BYTES_MAX};

mod invariants;
use invariants::Durable;

/// Acknowledgement: the entry is durable and covered by a signed seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    pub hash: Hash32,
}

pub(crate) struct Request {
    /// Shared with `Log::append`, which frees them once the reply came.
    pub entries: Arc<Vec<ValidEntry>>,
    pub reply: Reply,
    /// A key rotation (no entries): committed on its own, see `rotate`.
    pub rotate: Option<Rotation>,
}

/// The next epoch's key, to be certified by the key the writer holds.
pub(crate) struct Rotation {
    pub epoch: u64,
    pub key: SigningKey,
}

/// Test hook, read only here: `ARGUS_ROTATE_FAILPOINT=STEP` aborts the
/// process at that step of `argusctl key rotate`, as a kill -9 would:
/// `key-written` (new key file synced, rotation pending in argus.json),
/// `entry-durable` (the `key.rotated` entry and its seal are durable, the
/// segment not yet rolled), `rolled` (rolled, argus.json not yet updated),
/// `meta-updated` (argus.json names the new key, the old key not yet erased).
pub const ROTATE_FAILPOINT_ENV: &str = "ARGUS_ROTATE_FAILPOINT";

/// Aborts here if the test hook names this step.
pub fn rotate_failpoint(step: &str) {
    if std::env::var(ROTATE_FAILPOINT_ENV).is_ok_and(|s| s == step) {
        std::process::abort();
    }
}

/// How a request learns its outcome: called once, after the fdatasync of
/// the commit that holds it (or with the reason it failed). A reply dropped
/// uncalled (the writer died) reads as `Error::WriterGone` to its waiter.
pub(crate) struct Reply(Box<dyn FnOnce(Result<Vec<Ack>>) + Send>);

impl Reply {
    pub(crate) fn new(f: impl FnOnce(Result<Vec<Ack>>) + Send + 'static) -> Self {
        Self(Box::new(f))
    }
    /// A reply into a channel, for a waiter that blocks.
    pub(crate) fn channel(tx: SyncSender<Result<Vec<Ack>>>) -> Self {
        Self::new(move |r| {
            let _ = tx.send(r);
        })
    }
    pub(crate) fn send(self, r: Result<Vec<Ack>>) {
        (self.0)(r)
    }
}

/// Commit notification: the number of entries durable and sealed so far.
/// In-process subscribers (projections, the auditor, tail streams) wait on it.
#[derive(Default)]
pub struct Committed {
    size: Mutex<u64>,
    cond: Condvar,
    /// Why the writer stopped accepting appends, once it has: a daemon
    /// reports it on its health route and refuses appends with it.
    lockdown: Mutex<Option<String>>,
}

impl Committed {
    pub fn get(&self) -> u64 {
        *self.size.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set(&self, n: u64) {
        *self.size.lock().unwrap_or_else(|p| p.into_inner()) = n;
        self.cond.notify_all();
    }
    /// The writer's lockdown cause, if it is in lockdown.
    pub fn lockdown(&self) -> Option<String> {
        self.lockdown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    fn set_lockdown(&self, reason: &str) {
        *self.lockdown.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        // Wake waiters so they can see that nothing more will come.
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
    file: Box<dyn StorageFile>,
    path: PathBuf,
    base_seq: u64,
    len: u64,
    entries: u64,
    index: Vec<(u64, u64)>,
    /// The newest `ACTIVE_INDEX_STRIDE` point already in the segment's
    /// index file.
    index_written: Option<u64>,
}

/// How a writer runs: where segments roll and where time comes from.
pub struct WriterConfig {
    pub segment_bytes: u64,
    pub clock: Arc<dyn Clock>,
    pub skew_tolerance_ns: u64,
    /// The first seq of the signing key's epoch (SPEC §4.7; 0 for epoch 0).
    pub epoch_from_seq: u64,
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
    /// The first seq of `key`'s epoch: a seal over a tree whose last seq is
    /// before it is not this key's to sign (`roll`).
    epoch_from_seq: u64,
}

/// This process's wall clock (see `crate::time` for what entries' times mean).
pub fn now_ns() -> u64 {
    crate::time::wall_now_ns()
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
            epoch_from_seq,
        } = cfg;
        let dir_root = dir.root.clone();
        let judge = ClockJudge::open(
            dir.storage.clone(),
            &dir_root,
            clock.as_ref(),
            skew_tolerance_ns,
        );
        let path = dir.segment_path(rec.base_seq);
        let file = dir.storage.open_write(&path)?;
        // Points from before a restart, kept so the index stays whole;
        // readers check every point before using it.
        let kept_index = index::read_through(dir.storage.as_ref(), &dir.index_path(rec.base_seq))
            .unwrap_or_default()
            .into_iter()
            .filter(|(s, _)| (rec.base_seq..rec.next_seq).contains(s))
            .collect();
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
                index: kept_index,
                index_written: None,
            },
            next_seq: rec.next_seq,
            last_hash: rec.last_hash,
            range: rec.range.clone(),
            last_ts_ns: rec.last_ts_ns,
            judge,
            clock,
            lockdown: None,
            committed,
            buf: Vec::new(),
            epoch_from_seq,
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

    /// Appends a seal of the chain as it stands; returns the tree size it
    /// covers.
    fn seal_frame(&mut self, out: &mut Vec<u8>, ts: u64) -> u64 {
        let seal = Seal::sign(
            &self.log_id,
            &self.key,
            self.next_seq,
            self.range.root(),
            self.last_hash,
            ts,
        );
        encode_frame(out, FrameType::Seal, &seal.encode());
        seal.tree_size
    }

    /// One request on its own: a key rotation, or a group of one.
    fn serve(&mut self, req: Request) {
        if req.rotate.is_some() {
            self.rotate(req);
        } else {
            self.commit(vec![req]);
        }
    }

    /// Serves requests until every sender is gone.
    pub(crate) fn run(mut self, rx: Receiver<Request>) {
        // A rotation drained from the queue waits for the group before it.
        let mut held: Option<Request> = None;
        loop {
            let first = match held.take() {
                Some(r) => r,
                None => match rx.recv() {
                    Ok(r) => r,
                    Err(_) => break,
                },
            };
            if first.rotate.is_some() {
                self.rotate(first);
                continue;
            }
            let mut group = vec![first];
            let mut n = group[0].entries.len();
            while n < GROUP_ENTRIES_MAX {
                match rx.try_recv() {
                    Ok(r) if r.rotate.is_some() => {
                        held = Some(r);
                        break;
                    }
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

    /// Commits a `key.rotated` entry on its own (SPEC §4.7): only here is
    /// its seq known, which the certificate binds (`from_seq` = seq + 1).
    /// The outgoing key signs the certificate and the seal that covers the
    /// entry; the segment is then rolled (its closing seal covers the same
    /// entries, so the outgoing key signs that too), and only then does
    /// the writer hold the new key: every segment is signed by one key.
    fn rotate(&mut self, req: Request) {
        let Request { reply, rotate, .. } = req;
        let Some(rot) = rotate else {
            return;
        };
        if let Some(reason) = self.lockdown.clone() {
            return reply.send(Err(Error::Lockdown(reason)));
        }
        if self.seg.len >= self.segment_bytes {
            if let Err(e) = self.roll() {
                reply.send(Err(Error::Lockdown(e.to_string())));
                return self.fail_closed(Vec::new(), e.to_string());
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let (ts, skew) = self.next_ts();
        let mut entries = Vec::new();
        if let Some(skew) = &skew {
            entries.push(Self::skew_entry(skew));
        }
        let seq = self.next_seq + entries.len() as u64;
        let payload =
            log_format::epoch::rotation_payload(&self.log_id, rot.epoch, seq, &self.key, &rot.key);
        entries.push(NewEntry::argus(
            log_format::epoch::ROTATION_KIND,
            &serde_json::Value::Object(payload),
        ));
        let mut ack = None;
        for e in &entries {
            let ph = log_format::hash::payload_hash(&e.payload);
            match self.encode_one(&mut buf, e, &ph, ts) {
                Ok(a) => ack = Some(a),
                Err(reason) => {
                    reply.send(Err(Error::Lockdown(reason.clone())));
                    return self.fail_closed(Vec::new(), reason);
                }
            }
        }
        self.last_ts_ns = Some(ts);
        let sealed = self.seal_frame(&mut buf, ts);
        let durable = match self.write_durable(&buf, sealed) {
            Ok(d) => d,
            Err(e) => {
                // As a commit's failure: the unacknowledged `key.rotated`
                // is cut away, or a restart without a reboot would read it
                // from the page cache, finish the rotation and ack on top
                // of pages the disk never got (found by fault_sim).
                let reason = self.cut_unacked(&e);
                reply.send(Err(Error::Lockdown(reason.clone())));
                return self.fail_closed(Vec::new(), reason);
            }
        };
        self.seg.len += buf.len() as u64;
        self.buf = buf;
        self.committed.set(self.next_seq);
        rotate_failpoint("entry-durable");
        if let Err(e) = self.roll() {
            // The entry is durable: the next open finds it and finishes
            // the rotation (argus.json records it as pending).
            let reason = format!("rolling the segment after key.rotated: {e}");
            reply.send(Err(Error::Lockdown(reason.clone())));
            return self.fail_closed(Vec::new(), reason);
        }
        self.write_active_index();
        self.key = rot.key;
        self.epoch_from_seq = self.next_seq;
        match ack {
            Some(a) => {
                invariants::seal_covers_ack(&durable, &a);
                reply.send(Ok(vec![a]));
            }
            None => reply.send(Ok(Vec::new())),
        }
    }

    fn fail_all(group: Vec<Request>, err: impl Fn() -> Error) {
        for r in group {
            r.reply.send(Err(err()));
        }
    }

    /// One group commit: admit, encode, seal, write, fdatasync, ack. An
    /// invariant assertion that fails anywhere in it panics this thread
    /// before any ack is sent; the replies it held are dropped, so every
    /// waiting producer gets `Error::WriterGone`, and nothing written
    /// before the write of this commit's bytes is ever a half-commit that
    /// recovery cannot cut (SPEC §7.2).
    fn commit(&mut self, group: Vec<Request>) {
        if let Some(reason) = self.lockdown.clone() {
            return Self::fail_all(group, || Error::Lockdown(reason.clone()));
        }
        if self.seg.len >= self.segment_bytes {
            if let Err(e) = self.roll() {
                let reason = match e {
                    Error::Lockdown(reason) => reason,
                    e => e.to_string(),
                };
                return self.fail_closed(group, reason);
            }
        }
        let valid = self.admit(group);
        if valid.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let (ts, skew) = self.next_ts();
        let Some(accepted) = self.encode_group(&mut buf, valid, ts, skew) else {
            return;
        };
        self.last_ts_ns = Some(ts);
        let sealed = self.seal_frame(&mut buf, ts);
        match self.write_durable(&buf, sealed) {
            Ok(durable) => {
                self.seg.len += buf.len() as u64;
                let entries: usize = accepted.iter().map(|(_, a)| a.len()).sum();
                metrics::histogram!("argus_group_commit_entries").record(entries as f64);
                metrics::counter!("argus_entries_written_total").increment(entries as u64);
                self.committed.set(self.next_seq);
                for (req, acks) in accepted {
                    for ack in &acks {
                        invariants::seal_covers_ack(&durable, ack);
                    }
                    let Request { entries, reply, .. } = req;
                    drop(entries);
                    reply.send(Ok(acks));
                }
                self.write_active_index();
            }
            Err(e) => {
                // Fail closed: after a failed write or fsync the file's state
                // is unknown, so acknowledge nothing and accept nothing more.
                let reason = self.cut_unacked(&e);
                let group = accepted.into_iter().map(|(r, _)| r).collect();
                self.fail_closed(group, reason);
            }
        }
        self.buf = buf;
    }

    /// The requests whose every parent names an earlier seq, given the seqs
    /// they will get; the others are refused now, so a request that fails
    /// writes nothing and the clock is judged only for a commit that will
    /// happen. Everything else about an entry was checked on the
    /// producer's thread (`ValidEntry`).
    fn admit(&self, group: Vec<Request>) -> Vec<Request> {
        let mut valid = Vec::with_capacity(group.len());
        let mut seq = self.next_seq;
        for req in group {
            let check = req.entries.iter().enumerate().try_for_each(|(i, e)| {
                check_parent(e, seq + i as u64).map_err(|p| Error::invalid(i + 1, p))
            });
            match check {
                Ok(()) => {
                    seq += req.entries.len() as u64;
                    valid.push(req);
                }
                Err(e) => {
                    req.reply.send(Err(e));
                }
            }
        }
        valid
    }

    /// Encodes every admitted entry (after a `clock.skew` entry if the clock
    /// jumped: it goes on record first, so every entry after it is read in
    /// its light, under the same seal). `None` if encoding failed and the
    /// writer is in lockdown.
    #[allow(clippy::type_complexity)]
    fn encode_group(
        &mut self,
        buf: &mut Vec<u8>,
        valid: Vec<Request>,
        ts: u64,
        skew: Option<Skew>,
    ) -> Option<Vec<(Request, Vec<Ack>)>> {
        if let Some(skew) = &skew {
            let e = Self::skew_entry(skew);
            let ph = log_format::hash::payload_hash(&e.payload);
            if let Err(reason) = self.encode_one(buf, &e, &ph, ts) {
                self.fail_closed(valid, reason);
                return None;
            }
        }
        let mut accepted = Vec::with_capacity(valid.len());
        for req in valid {
            let mut acks = Vec::with_capacity(req.entries.len());
            for e in req.entries.iter() {
                match self.encode_one(buf, e, e.payload_hash(), ts) {
                    Ok(ack) => acks.push(ack),
                    Err(reason) => {
                        req.reply.send(Err(Error::Lockdown(reason.clone())));
                        let rest = accepted.into_iter().map(|(r, _)| r).collect();
                        self.fail_closed(rest, reason);
                        return None;
                    }
                }
            }
            accepted.push((req, acks));
        }
        Some(accepted)
    }

    /// Writes one commit's bytes (entries and the seal for `sealed`
    /// entries) and waits for fdatasync. The `Durable` it returns is the
    /// only one there is, so an ack can be checked against the seal that a
    /// returned fdatasync made durable.
    fn write_durable(&mut self, buf: &[u8], sealed: u64) -> std::io::Result<Durable> {
        self.seg.file.write_all_at(buf, self.seg.len)?;
        let t = std::time::Instant::now();
        self.seg.file.sync_data()?;
        // Recorded through the `metrics` facade: a no-op unless a process
        // (argusd) installed a recorder.
        metrics::histogram!("argus_fsync_seconds").record(t.elapsed().as_secs_f64());
        metrics::counter!("argus_bytes_written_total").increment(buf.len() as u64);
        Ok(Durable { tree_size: sealed })
    }

    /// Encodes one entry at the next seq into `buf` and advances the chain.
    /// An encoding failure cannot happen for validated input; if it does, the
    /// writer fails closed.
    fn encode_one(
        &mut self,
        buf: &mut Vec<u8>,
        e: &NewEntry,
        payload_hash: &Hash32,
        ts: u64,
    ) -> Result<Ack, String> {
        let seq = self.next_seq;
        let frame_start = buf.len();
        let hash = append_entry_frame(buf, &e.fields(seq, ts, self.last_hash), payload_hash)
            .map_err(|err| format!("encoding seq {seq}: {err}"))?;
        // What the bytes say, not what was asked for: an encoder or
        // bookkeeping fault is caught before the bytes can be written.
        let body = buf
            .get(frame_start + FRAME_HEADER_LEN..)
            .unwrap_or_default();
        let (encoded_seq, encoded_prev) = encoded_seq_prev(body).unzip();
        invariants::seq_continuity(
            encoded_seq,
            seq,
            self.range.size(),
            self.seg.base_seq + self.seg.entries,
        );
        invariants::chain_link(encoded_prev.as_ref(), &self.last_hash, seq);
        if (seq - self.seg.base_seq).is_multiple_of(INDEX_STRIDE) {
            self.seg
                .index
                .push((seq, self.seg.len + frame_start as u64));
        }
        self.range.push(&hash);
        self.last_hash = hash;
        self.next_seq = seq + 1;
        self.seg.entries += 1;
        Ok(Ack { seq, hash })
    }

    /// After a failed write or fsync of the active segment: truncates it
    /// back to the last acknowledged byte and syncs that, so the failed
    /// bytes are not left in the page cache. A failed fsync may have
    /// dropped their pages while marking them clean (fsyncgate); a reopen
    /// without a reboot would read them as written, build on them, and a
    /// later power cut would take them and the acks after them. Returns
    /// the lockdown reason, which says if the cut failed too.
    fn cut_unacked(&self, e: &std::io::Error) -> String {
        let path = self.seg.path.display();
        let len = self.seg.len;
        match self
            .seg
            .file
            .set_len(len)
            .and_then(|()| self.seg.file.sync_data())
        {
            Ok(()) => format!("{path}: {e}"),
            Err(cut) => format!(
                "{path}: {e}; cutting the unacknowledged bytes after offset {len} failed too ({cut}): reopen only after a reboot, so that no unwritten page is read from the cache"
            ),
        }
    }

    /// Lockdown: after a failure whose effect on the file is unknown,
    /// acknowledge nothing and accept nothing more.
    fn fail_closed(&mut self, group: Vec<Request>, reason: String) {
        tracing::error!(%reason, "entering lockdown");
        self.committed.set_lockdown(&reason);
        self.lockdown = Some(reason.clone());
        Self::fail_all(group, || Error::Lockdown(reason.clone()));
    }

    /// Rewrites the active segment's index file when a commit added a seek
    /// point (at most once per `ACTIVE_INDEX_STRIDE` entries), after the acks, so
    /// a reader of a live log seeks in the active segment as it does in a
    /// sealed one. Not synced: the index is a cache that readers check.
    fn write_active_index(&mut self) {
        let base = self.seg.base_seq;
        let Some(&(last, _)) = self.seg.index.last() else {
            return;
        };
        let newest = base + (last.saturating_sub(base) / ACTIVE_INDEX_STRIDE) * ACTIVE_INDEX_STRIDE;
        if self.seg.index_written.is_some_and(|w| w >= newest) {
            return;
        }
        let coarse: Vec<(u64, u64)> = self
            .seg
            .index
            .iter()
            .copied()
            .filter(|(s, _)| s.saturating_sub(base).is_multiple_of(ACTIVE_INDEX_STRIDE))
            .collect();
        let path = self.dir.index_path(base);
        match index::write_through(self.dir.storage.as_ref(), &path, &coarse) {
            Ok(()) => self.seg.index_written = Some(newest),
            Err(e) => tracing::warn!(error = %e, "could not write sparse index"),
        }
    }

    /// Seals the active segment (seal + footer) and starts the next one.
    fn roll(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        // The roll's seal needs a time, not a judgement: no entries move.
        // After a crash between a rotation's commit and its roll, the
        // segment's last entry is the `key.rotated` and the writer holds
        // only the new key, which may not sign that tree (SPEC §4.7); the
        // footer then follows the commit's seal, the outgoing key's, which
        // is already the segment's last frame (found by fault_sim).
        if self.next_seq == 0 || self.next_seq > self.epoch_from_seq {
            let ts = self.clock.wall_ns();
            self.seal_frame(&mut buf, ts);
        }
        let footer = Footer {
            base_seq: self.seg.base_seq,
            entry_count: self.seg.entries,
            last_hash: self.last_hash,
        };
        encode_frame(&mut buf, FrameType::Footer, &footer.encode());
        if let Err(e) = self
            .seg
            .file
            .write_all_at(&buf, self.seg.len)
            .and_then(|_| self.seg.file.sync_data())
        {
            return Err(Error::Lockdown(self.cut_unacked(&e)));
        }
        self.seg.len += buf.len() as u64;
        let index_path = self.dir.index_path(self.seg.base_seq);
        if let Err(e) =
            index::write_through(self.dir.storage.as_ref(), &index_path, &self.seg.index)
        {
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
            index_written: None,
        };
        Ok(())
    }
}

/// A writer run by whoever calls it, for a process with one producer
/// (`argusctl append`): the commit happens on the thread that parsed the
/// lines, with no hand-off to a writer thread and back, which on a lone
/// entry costs two futex wake-ups and more CPU than the seal's signature.
/// Group commit still happens, one level up: what arrives during an
/// fdatasync is read as the next group. Everything a commit does is the
/// threaded writer's own code (`Writer::commit`, `Writer::rotate`).
pub(crate) struct Inline(std::sync::Mutex<Option<Writer>>);

impl Inline {
    pub(crate) fn new(w: Writer) -> Self {
        Self(std::sync::Mutex::new(Some(w)))
    }

    /// Runs one request to its reply. A broken invariant panics inside the
    /// commit as it does on the writer thread; the panic is caught here, the
    /// writer is dropped with the reply unsent (its waiter reads
    /// `Error::WriterGone`, as from a dead writer thread) and every later
    /// request fails the same way.
    pub(crate) fn serve(&self, req: Request) -> Result<()> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = slot.as_mut() else {
            return Err(Error::WriterGone);
        };
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.serve(req)));
        if served.is_err() {
            *slot = None;
            return Err(Error::WriterGone);
        }
        Ok(())
    }
}

/// Creates a segment whole or not at all: write a temp file, sync, rename,
/// sync the directory. Returns the new segment open for writing (the same
/// inode that was renamed, so nothing can be swapped in between).
fn write_new_file(dir: &LogDir, base_seq: u64, bytes: &[u8]) -> Result<Box<dyn StorageFile>> {
    let fs = dir.storage.as_ref();
    let final_path = dir.segment_path(base_seq);
    // Anything at the name, even a dangling link, is a conflict.
    if fs.exists(&final_path) || fs.exists(&dir.compressed_path(base_seq)) {
        return Err(Error::Inconsistent {
            segment: segment_file_name(base_seq),
            offset: 0,
            reason: crate::error::Inconsistency::SegmentExists,
        });
    }
    let tmp = dir
        .segments_dir()
        .join(format!("{}.tmp", segment_file_name(base_seq)));
    // A stale temp file from a crash (or a planted link) is unlinked, then
    // the temp file is created exclusively, never through a link.
    let f = fs.create_replacing(&tmp, 0o666)?;
    f.write_all_at(bytes, 0).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    fs.rename(&tmp, &final_path).at(&final_path)?;
    fs.sync_dir(&dir.segments_dir())?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::dir::InitOptions;
    use crate::log::{keys, recovery, Log};

    fn entry(payload: &[u8]) -> ValidEntry {
        let e = NewEntry {
            kind: "x.test".into(),
            job_id: None,
            step_id: None,
            agent: None,
            actor: "agent:t".into(),
            parent: None,
            payload: payload.to_vec(),
        };
        let registry = crate::registry::builtin().unwrap();
        ValidEntry::check(e, registry).unwrap()
    }

    /// A writer over a fresh log holding `n` entries, built the way
    /// `Log::open` builds it, but left to the test to run.
    fn writer_with(n: u64) -> (tempfile::TempDir, Writer, Arc<Committed>) {
        let tmp = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            segment_bytes: 1 << 20,
            key_file: None,
            clock_skew_tolerance_s: None,
        };
        let log = Log::create(tmp.path(), &opts).unwrap();
        let acks = log
            .append((0..n).map(|_| entry(b"{}")).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(acks.len() as u64, n);
        drop(log);
        let d = LogDir::new(tmp.path());
        let meta = d.read_meta().unwrap();
        let key = keys::load(&d.key_path(&meta)).unwrap();
        let log_id = meta.log_id().unwrap();
        let vk = key.verifying_key();
        let rec = recovery::recover(&d, &log_id, &log_format::SealKey::new(log_id, &vk)).unwrap();
        let committed = Arc::new(Committed::default());
        let cfg = WriterConfig {
            segment_bytes: 1 << 20,
            clock: Arc::new(crate::time::SystemClock::new()),
            skew_tolerance_ns: crate::time::SKEW_TOLERANCE_NS_DEFAULT,
            epoch_from_seq: 0,
        };
        let w = Writer::new(d, log_id, key, cfg, &rec, committed.clone()).unwrap();
        (tmp, w, committed)
    }

    fn segment_len(dir: &std::path::Path) -> u64 {
        std::fs::metadata(LogDir::new(dir).segment_path(0))
            .unwrap()
            .len()
    }

    /// Runs `w` on its own thread and sends it one request of `entries`.
    fn run_one(w: Writer, entries: Vec<ValidEntry>) -> (Result<Vec<Ack>>, bool) {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || w.run(rx));
        let (reply, ack) = std::sync::mpsc::sync_channel(1);
        let reply = Reply::channel(reply);
        tx.send(Request {
            entries: Arc::new(entries),
            reply,
            rotate: None,
        })
        .unwrap();
        let got = ack.recv().map_err(|_| Error::WriterGone).and_then(|r| r);
        drop(tx);
        let panicked = thread.join().is_err();
        (got, panicked)
    }

    #[test]
    fn a_consistent_writer_acks_through_the_same_harness() {
        // The harness itself must not be what fails below.
        let (tmp, w, committed) = writer_with(3);
        let (got, panicked) = run_one(w, vec![entry(b"{\"a\":1}")]);
        assert!(!panicked);
        assert_eq!(got.unwrap()[0].seq, 3);
        assert_eq!(committed.get(), 4);
        drop(tmp);
    }

    #[test]
    fn a_broken_seq_continuity_invariant_acks_nothing_and_writes_nothing() {
        let (tmp, mut w, committed) = writer_with(3);
        let before = segment_len(tmp.path());
        // A bookkeeping fault: the segment counts one entry more than the
        // chain holds, so the next entry would not be at base + entries.
        w.seg.entries += 1;
        let (got, panicked) = run_one(w, vec![entry(b"{}"), entry(b"{}")]);
        assert!(panicked, "the invariant did not stop the writer");
        assert!(
            matches!(got, Err(Error::WriterGone)),
            "the waiting producer must get WriterGone, got {got:?}"
        );
        assert_eq!(committed.get(), 3, "nothing past the fault is committed");
        assert_eq!(segment_len(tmp.path()), before, "no byte was written");
        // The log reopens as it was, and takes appends again.
        let log = Log::open(tmp.path()).unwrap();
        assert!(log.recovered().is_none(), "nothing to cut");
        assert_eq!(log.append(vec![entry(b"{}")]).unwrap()[0].seq, 3);
    }

    /// `run_one` for a writer driven by its caller (`Inline`): the reply,
    /// and what the next request gets after `repair` ran on the writer, if
    /// the writer is still there.
    fn run_inline(
        w: Writer,
        entries: Vec<ValidEntry>,
        repair: impl Fn(&mut Writer),
    ) -> (Result<Vec<Ack>>, Result<Vec<Ack>>) {
        let inline = Inline::new(w);
        let mut got = Vec::new();
        for batch in [entries, vec![entry(b"{}")]] {
            if !got.is_empty() {
                if let Some(w) = inline.0.lock().unwrap().as_mut() {
                    repair(w);
                }
            }
            let (reply, ack) = std::sync::mpsc::sync_channel(1);
            let served = inline.serve(Request {
                entries: Arc::new(batch),
                reply: Reply::channel(reply),
                rotate: None,
            });
            got.push(served.and_then(|()| ack.recv().map_err(|_| Error::WriterGone)?));
        }
        let second = got.pop().unwrap();
        (got.pop().unwrap(), second)
    }

    #[test]
    fn an_inline_writer_acks_on_the_callers_thread() {
        let (tmp, w, committed) = writer_with(3);
        let (got, next) = run_inline(w, vec![entry(b"{\"a\":1}")], |_| ());
        assert_eq!(got.unwrap()[0].seq, 3);
        assert_eq!(next.unwrap()[0].seq, 4);
        assert_eq!(committed.get(), 5);
        drop(tmp);
    }

    #[test]
    fn a_broken_invariant_in_an_inline_writer_acks_nothing_then_or_later() {
        let (tmp, mut w, committed) = writer_with(3);
        let before = segment_len(tmp.path());
        w.seg.entries += 1;
        // Even with the fault undone, a writer that panicked takes nothing
        // more (as a dead writer thread takes nothing).
        let (got, next) = run_inline(w, vec![entry(b"{}"), entry(b"{}")], |w| w.seg.entries -= 1);
        assert!(matches!(got, Err(Error::WriterGone)), "{got:?}");
        assert!(
            matches!(next, Err(Error::WriterGone)),
            "a writer that broke an invariant took another request: {next:?}"
        );
        assert_eq!(committed.get(), 3, "nothing past the fault is committed");
        assert_eq!(segment_len(tmp.path()), before, "no byte was written");
        let log = Log::open(tmp.path()).unwrap();
        assert!(log.recovered().is_none(), "nothing to cut");
    }

    #[test]
    fn a_merkle_tree_out_of_step_with_the_seq_acks_nothing() {
        let (tmp, mut w, committed) = writer_with(2);
        w.range.push(&[9; 32]);
        let (got, panicked) = run_one(w, vec![entry(b"{}")]);
        assert!(panicked && matches!(got, Err(Error::WriterGone)), "{got:?}");
        assert_eq!(committed.get(), 2);
        drop(tmp);
    }
}
