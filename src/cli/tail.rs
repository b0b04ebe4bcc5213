//! `argusctl tail`: the last entries, optionally following new ones as they
//! are sealed. Following polls the active segment from the last seal it
//! consumed, so it never re-reads the log and never shows unsealed entries.
use super::{render, render_checked, Format, Out};
use crate::log::follow::Follower;
use crate::log::reader::LogReader;
use crate::log::redactions::Redactions;
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

pub use crate::log::follow::Filter;

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
    let redactions = Redactions::scan(&r, from)?;
    let mut failed = None;
    r.for_each(from, u64::MAX, |v| {
        next_seq = v.seq + 1;
        if filter.matches(v) && n > 0 {
            if last.len() == n {
                last.pop_front();
            }
            match render_checked(v, format, &redactions) {
                Ok(line) => last.push_back(line),
                Err(e) => {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    for l in &last {
        out.put(format, l);
    }
    out.flush();
    if follow {
        follow_from(&r, next_seq, &filter, format, &mut out)?;
    }
    Ok(())
}

fn follow_from(
    r: &LogReader,
    next_seq: u64,
    filter: &Filter,
    format: Format,
    out: &mut Out,
) -> Result<()> {
    let mut follower = Follower::new(r, next_seq)?;
    loop {
        let n = follower
            .poll(|v| {
                if filter.matches(v) {
                    out.put(format, &render(v, format));
                }
            })
            .context("following the log")?;
        if n > 0 {
            out.flush();
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
