//! `argusctl init`: create a log and its signing key.
use crate::log::dir::InitOptions;
use crate::Log;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub fn run(dir: PathBuf, segment_bytes: u64, key_file: Option<PathBuf>) -> Result<()> {
    if segment_bytes < 4096 {
        anyhow::bail!("--segment-bytes must be at least 4096 (got {segment_bytes})");
    }
    let log = Log::create(
        &dir,
        &InitOptions {
            segment_bytes,
            key_file,
        },
    )
    .with_context(|| format!("creating log in {}", dir.display()))?;
    let m = log.meta();
    println!(
        "{}",
        serde_json::json!({"log_id": m.log_id, "public_key": m.public_key})
    );
    Ok(())
}
