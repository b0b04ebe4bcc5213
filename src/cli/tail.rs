//! `argusctl tail`: the last entries, optionally following new ones as they
//! are sealed. Following polls the active segment from the last seal it
//! consumed, so it never re-reads the log and never shows unsealed entries.
use super::{render, Format, Out};
use crate::log::reader::{visit_sealed, LogReader, READER_CHECKS};
use anyhow::{bail, Context, Result};
use log_format::segment::segment_file_name;
use log_format::walk::{ChainState, ChainWalk};
use log_format::{EntryView, SegmentHeader};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

pub struct Filter {
    pub job: Option<String>,
    pub kind: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.job.is_none() && self.kind.is_none()
    }
    /// `--kind a.b` matches exactly; `--kind a.*` matches `a` and below.
    fn matches(&self, v: &EntryView<'_>) -> bool {
        let job_ok = self.job.as_deref().is_none_or(|j| v.job_id == Some(j));
        let kind_ok = self
            .kind
            .as_deref()
            .is_none_or(|k| match k.strip_suffix(".*") {
                Some(prefix) => {
                    v.kind == prefix
                        || (v.kind.starts_with(prefix) && v.kind[prefix.len()..].starts_with('.'))
                }
                None => v.kind == k,
            });
        job_ok && kind_ok
    }
}

pub fn run(dir: &Path, n: usize, follow: bool, filter: Filter, format: Format) -> Result<()> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let size = r.latest_seal()?.tree_size;
    let mut out = Out::default();
    let from = if filter.is_empty() {
        size.saturating_sub(n as u64)
    } else {
        0
    };
    let mut last: VecDeque<String> = VecDeque::with_capacity(n.min(4096) + 1);
    let mut next_seq = from;
    r.for_each(from, u64::MAX, |v| {
        next_seq = v.seq + 1;
        if filter.matches(v) && n > 0 {
            if last.len() == n {
                last.pop_front();
            }
            last.push_back(render(v, format));
        }
        ControlFlow::Continue(())
    })?;
    for l in &last {
        out.put(format, l);
    }
    out.flush();
    if follow {
        follow_from(&r, next_seq, &filter, format, &mut out)?;
    }
    Ok(())
}

fn header_len(path: &Path) -> Result<usize> {
    // Segments that appear while following get the same checks as any
    // other: a regular file, never through a link.
    let f = crate::log::safe_fs::open_read(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; 69 + 32 * 64 + 4];
    let len = f.metadata()?.len() as usize;
    let take = buf.len().min(len);
    f.read_exact_at(&mut buf[..take], 0)?;
    let (_, hl) = SegmentHeader::decode(&buf[..take])
        .with_context(|| format!("{}: header", path.display()))?;
    Ok(hl)
}

fn follow_from(
    r: &LogReader,
    mut next_seq: u64,
    filter: &Filter,
    format: Format,
    out: &mut Out,
) -> Result<()> {
    let bases = r.dir.list_segments()?;
    let mut base = bases
        .iter()
        .copied()
        .filter(|b| *b <= next_seq)
        .max()
        .unwrap_or(0);
    let mut path = r.dir.segment_path(base);
    let mut offset = header_len(&path)? as u64;
    let mut corrupt_retries = 0;
    loop {
        let f = crate::log::safe_fs::open_read(&path)
            .with_context(|| format!("{} disappeared while following", path.display()))?;
        let len = f.metadata()?.len();
        if len < offset {
            bail!(
                "{} shrank below sealed offset {offset}: the log was truncated under us",
                path.display()
            );
        }
        let mut footer = false;
        if len > offset {
            let mut buf = vec![0u8; (len - offset) as usize];
            f.read_exact_at(&mut buf, offset)?;
            let state = ChainState::resume_at(next_seq);
            let mut walk = ChainWalk::new(&buf, offset, offset, base, state, READER_CHECKS);
            let name = segment_file_name(base);
            match visit_sealed(&name, &mut walk, &r.seal_key(), |v, _| {
                if v.seq >= next_seq {
                    next_seq = v.seq + 1;
                    if filter.matches(v) {
                        out.put(format, &render(v, format));
                    }
                }
                ControlFlow::Continue(())
            }) {
                Ok(cur) => {
                    corrupt_retries = 0;
                    offset = cur.offset;
                    footer = cur.footer;
                }
                // A write in progress can look damaged for an instant; a
                // damage that persists is reported, never waited on forever.
                Err(e) if corrupt_retries < 20 => {
                    corrupt_retries += 1;
                    tracing::debug!(error = %e, "retrying damaged read");
                }
                Err(e) => return Err(e).context("following the log"),
            }
            out.flush();
        }
        if footer {
            let next_path = r.dir.segment_path(next_seq);
            while !next_path.exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
            base = next_seq;
            path = next_path;
            offset = header_len(&path)? as u64;
            continue;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
