//! Following a live log: entries as they are sealed, each exactly once.
//!
//! A follower keeps its place (segment, byte offset just past the last seal
//! it consumed, next seq) and on each poll reads only the bytes written since,
//! so following costs what is new, never a re-read of the log. It hands out
//! only entries a seal covers; a write in progress is held back until its
//! seal lands. `argusctl tail -f` polls it on a timer, `argusd` whenever the
//! writer reports a commit; both see the same entries in the same order.
//! A poll reads through the log's `Storage`; when to poll is the caller's
//! (a timer or the writer's signal, nothing a simulated disk could fake).
use crate::error::{Error, Result};
use crate::log::dir::LogDir;
use crate::log::reader::{load_path_on, visit_sealed, LogReader, SegmentBytes, READER_CHECKS};
use crate::log::storage::Storage;
use log_format::segment::segment_file_name;
use log_format::walk::{ChainState, ChainWalk};
use log_format::{EntryView, SegmentHeader};
use std::ops::ControlFlow;
use std::path::PathBuf;

/// A write in progress can look damaged for an instant; damage that is
/// still there after this many polls is reported, never waited on forever.
const CORRUPT_RETRIES: u32 = 20;

/// Which entries a reader wants: by job, by agent, and by kind (exactly,
/// or a subtree with a trailing `.*`). Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub job: Option<String>,
    pub kind: Option<String>,
    pub agent: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.job.is_none() && self.kind.is_none() && self.agent.is_none()
    }
    /// `kind = a.b` matches exactly; `kind = a.*` matches `a` and below.
    pub fn matches(&self, v: &EntryView<'_>) -> bool {
        self.matches_fields(v.job_id, v.agent, v.kind)
    }
    pub fn matches_fields(&self, job: Option<&str>, agent: Option<&str>, kind: &str) -> bool {
        let job_ok = self.job.as_deref().is_none_or(|j| job == Some(j));
        let agent_ok = self.agent.as_deref().is_none_or(|a| agent == Some(a));
        let kind_ok = self
            .kind
            .as_deref()
            .is_none_or(|k| match k.strip_suffix(".*") {
                Some(prefix) => {
                    kind == prefix
                        || (kind.starts_with(prefix) && kind[prefix.len()..].starts_with('.'))
                }
                None => kind == k,
            });
        job_ok && agent_ok && kind_ok
    }
}

pub struct Follower {
    dir: LogDir,
    epochs: log_format::KeyEpochs,
    base: u64,
    path: PathBuf,
    /// Just past the last seal (or the header) consumed in `path`.
    offset: u64,
    /// Set once the segment at `base` exists and its header is read (after
    /// a footer, the writer creates the next segment a moment later); holds
    /// that header until the first walk of the segment has used it.
    header_read: bool,
    header: Option<SegmentHeader>,
    next_seq: u64,
    corrupt_retries: u32,
    /// The current segment's bytes when it is stored compressed.
    compressed: Option<std::sync::Arc<SegmentBytes>>,
}

impl Follower {
    /// A follower whose first entry will be `next_seq` (which must be at or
    /// below the log's sealed size when it is first polled).
    pub fn new(reader: &LogReader, next_seq: u64) -> Result<Self> {
        let bases = reader.dir.list_segments()?;
        let base = bases
            .iter()
            .copied()
            .filter(|b| *b <= next_seq)
            .max()
            .unwrap_or(0);
        Ok(Self {
            dir: reader.dir.clone(),
            epochs: reader.epochs.clone(),
            path: reader.dir.segment_path(base),
            base,
            offset: 0,
            header_read: false,
            header: None,
            next_seq,
            corrupt_retries: 0,
            compressed: None,
        })
    }

    /// The seq of the next entry this follower will hand out.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Hands `f` every entry sealed since the last poll, in order (those
    /// below the starting seq are skipped). Returns how many it visited;
    /// 0 means nothing new yet. Never blocks.
    pub fn poll(&mut self, mut f: impl FnMut(&EntryView<'_>)) -> Result<u64> {
        let mut visited = 0;
        loop {
            if !self.header_read {
                let Some((header, len)) = self.read_header()? else {
                    return Ok(visited);
                };
                self.offset = len as u64;
                self.header = Some(header);
                self.header_read = true;
            }
            let Some((len, buf)) = self.read_new()? else {
                return Err(Error::Damaged {
                    path: self.path.clone(),
                    reason: "the segment being followed is gone".into(),
                });
            };
            if len < self.offset {
                return Err(Error::Damaged {
                    path: self.path.clone(),
                    reason: format!(
                        "shrank to {len} bytes, below sealed offset {}: the log was truncated under a reader",
                        self.offset
                    ),
                });
            }
            if len == self.offset {
                return Ok(visited);
            }
            // From a segment's start the walk needs its header's chain state
            // (the entries before `next_seq` are walked and skipped); after
            // a seal, the seal says where the chain stands.
            let state = match &self.header {
                Some(h) => ChainState::from_header(h),
                None => ChainState::resume_at(self.next_seq),
            };
            let mut walk = ChainWalk::new(
                &buf,
                self.offset,
                self.offset,
                self.base,
                state,
                READER_CHECKS,
            );
            let name = segment_file_name(self.base);
            let key = self.epochs.seal_key();
            let next_seq = &mut self.next_seq;
            let cur = match visit_sealed(&name, &mut walk, &key, |v, _| {
                if v.seq >= *next_seq {
                    *next_seq = v.seq + 1;
                    visited += 1;
                    f(v);
                }
                ControlFlow::Continue(())
            }) {
                Ok(cur) => cur,
                Err(e) if self.corrupt_retries < CORRUPT_RETRIES => {
                    self.corrupt_retries += 1;
                    tracing::debug!(error = %e, "retrying damaged read");
                    return Ok(visited);
                }
                Err(e) => return Err(e),
            };
            self.corrupt_retries = 0;
            if cur.offset > self.offset {
                self.header = None;
            }
            self.offset = cur.offset;
            if !cur.footer {
                return Ok(visited);
            }
            // The segment is closed: go on in the next one.
            self.base = self.next_seq;
            self.path = self.dir.segment_path(self.base);
            self.header_read = false;
            self.compressed = None;
        }
    }

    /// The current segment's header and its length; `None` while the
    /// segment does not exist yet (the writer creates it just after the
    /// previous one's footer).
    fn read_header(&mut self) -> Result<Option<(SegmentHeader, usize)>> {
        match read_header(&*self.dir.storage, &self.path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other.map(Some),
        }
        let Some(bytes) = self.compressed()? else {
            return Ok(None);
        };
        SegmentHeader::decode(&bytes)
            .map(Some)
            .map_err(|source| Error::Format {
                segment: segment_file_name(self.base),
                source,
            })
    }

    /// The current segment's length and its bytes from `self.offset` on:
    /// only what was written since the last poll from a plain segment, the
    /// rest of the decompressed bytes from a compacted one (SPEC §12; a
    /// sealed segment can be compacted between two polls, and its bytes are
    /// the same). `None` if neither form exists.
    fn read_new(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        // Segments that appear while following get the same checks as
        // any other: a regular file, never through a link.
        match self.dir.storage.open_read(&self.path) {
            Ok(file) => {
                let len = file.size()?;
                let mut buf = vec![0u8; len.saturating_sub(self.offset) as usize];
                file.read_exact_at(&mut buf, self.offset)?;
                return Ok(Some((len, buf)));
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let Some(bytes) = self.compressed()? else {
            return Ok(None);
        };
        let from = usize::try_from(self.offset).map_or(bytes.len(), |o| o.min(bytes.len()));
        Ok(Some((bytes.len() as u64, bytes[from..].to_vec())))
    }

    /// The current segment decompressed, once per segment; `None` if it is
    /// not stored compressed.
    fn compressed(&mut self) -> Result<Option<std::sync::Arc<SegmentBytes>>> {
        if let Some(b) = &self.compressed {
            return Ok(Some(b.clone()));
        }
        let path = self.dir.compressed_path(self.base);
        match load_path_on(&*self.dir.storage, &path) {
            Ok(b) => {
                let b = std::sync::Arc::new(b);
                self.compressed = Some(b.clone());
                Ok(Some(b))
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

fn read_header(storage: &dyn Storage, path: &std::path::Path) -> Result<(SegmentHeader, usize)> {
    let f = storage.open_read(path)?;
    let mut buf = vec![0u8; 69 + 32 * 64 + 4];
    let len = f.size()? as usize;
    let take = buf.len().min(len);
    f.read_exact_at(&mut buf[..take], 0)?;
    SegmentHeader::decode(&buf[..take]).map_err(|source| Error::Format {
        segment: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::archive::{compress_sealed, ArchiveOptions};
    use crate::log::dir::InitOptions;
    use crate::log::lock::WriterLock;
    use crate::{Log, NewEntry};

    fn append(dir: &std::path::Path, commits: usize) {
        let log = Log::open(dir).unwrap();
        let e = NewEntry {
            actor: "agent:t".into(),
            ..NewEntry::argus("x.test", &serde_json::json!({"pad": "y".repeat(200)}))
        };
        for _ in 0..commits {
            log.append(vec![e.clone(); 10]).unwrap();
        }
    }

    #[test]
    fn a_follower_reads_through_compressed_segments_then_new_plain_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            segment_bytes: 4096,
            key_file: None,
            clock_skew_tolerance_s: None,
        };
        drop(Log::create(tmp.path(), &opts).unwrap());
        append(tmp.path(), 6);
        let lock = WriterLock::acquire(tmp.path(), "test", std::time::Duration::ZERO).unwrap();
        let rep = compress_sealed(tmp.path(), &lock, &ArchiveOptions::default()).unwrap();
        drop(lock);
        assert!(rep.segments.len() >= 2, "{rep:?}");
        let reader = LogReader::open(tmp.path()).unwrap();
        let mut f = Follower::new(&reader, 0).unwrap();
        let mut seqs = Vec::new();
        while f.poll(|v| seqs.push(v.seq)).unwrap() > 0 {}
        assert_eq!(seqs, (0..60).collect::<Vec<_>>());
        // The writer goes on in plain segments; the follower follows.
        append(tmp.path(), 3);
        while f.poll(|v| seqs.push(v.seq)).unwrap() > 0 {}
        assert_eq!(seqs, (0..90).collect::<Vec<_>>());
        // The segment it stands in is sealed and compressed between polls.
        append(tmp.path(), 4);
        let lock = WriterLock::acquire(tmp.path(), "test", std::time::Duration::ZERO).unwrap();
        compress_sealed(tmp.path(), &lock, &ArchiveOptions::default()).unwrap();
        drop(lock);
        while f.poll(|v| seqs.push(v.seq)).unwrap() > 0 {}
        assert_eq!(seqs, (0..130).collect::<Vec<_>>());
        // A follower that starts inside a compressed segment.
        let mut g = Follower::new(&reader, 25).unwrap();
        let mut from_25 = Vec::new();
        while g.poll(|v| from_25.push(v.seq)).unwrap() > 0 {}
        assert_eq!(from_25, (25..130).collect::<Vec<_>>());
    }
}
