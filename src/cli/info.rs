//! `argusctl stats` and `argusctl checkpoint`: small read-only views.
use super::Out;
use crate::log::reader::LogReader;
use anyhow::{Context, Result};
use std::path::Path;

pub fn stats(dir: &Path) -> Result<()> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let s = r.stats()?;
    let mut out = Out::default();
    out.json_lines(&serde_json::to_string_pretty(&s)?);
    out.flush();
    Ok(())
}

/// The checkpoint is signed text that `verify --checkpoint` reads back
/// byte for byte; it holds only hex, numbers and base64, so `Out::line`
/// leaves it unchanged.
pub fn checkpoint(dir: &Path) -> Result<()> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let seal = r.latest_seal()?;
    let mut out = Out::default();
    for l in seal.checkpoint_text(&r.log_id).lines() {
        out.line(l);
    }
    out.flush();
    Ok(())
}
