//! `argusctl stats` and `argusctl checkpoint`: small read-only views.
use crate::log::reader::LogReader;
use anyhow::{Context, Result};
use std::path::Path;

pub fn stats(dir: &Path) -> Result<()> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let s = r.stats()?;
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(())
}

pub fn checkpoint(dir: &Path) -> Result<()> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let seal = r.latest_seal()?;
    print!("{}", seal.checkpoint_text(&r.log_id));
    Ok(())
}
