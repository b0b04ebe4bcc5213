//! `argusctl cat`: entries in seq order, sealed ones only. A redacted
//! payload is shown as erased, naming the redaction.
use super::{render_checked, Format, Out};
use crate::log::reader::LogReader;
use crate::log::redactions::Redactions;
use anyhow::{Context, Result};
use std::ops::ControlFlow;
use std::path::Path;

pub fn cat(dir: &Path, from: u64, to: Option<u64>, format: Format) -> Result<()> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let redactions = Redactions::scan(&r, from)?;
    let mut out = Out::default();
    let mut failed = None;
    r.for_each(from, to.unwrap_or(u64::MAX), |v| {
        match render_checked(v, format, &redactions) {
            Ok(line) => out.put(format, &line),
            Err(e) => {
                failed = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    out.flush();
    failed.map_or(Ok(()), Err)
}
