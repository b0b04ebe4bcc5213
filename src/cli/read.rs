//! `argusctl cat`: entries in seq order, sealed ones only.
use super::{render, Format, Out};
use crate::log::reader::LogReader;
use anyhow::{Context, Result};
use std::ops::ControlFlow;
use std::path::Path;

pub fn cat(dir: &Path, from: u64, to: Option<u64>, format: Format) -> Result<()> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut out = Out::default();
    r.for_each(from, to.unwrap_or(u64::MAX), |v| {
        out.put(format, &render(v, format));
        ControlFlow::Continue(())
    })?;
    out.flush();
    Ok(())
}
