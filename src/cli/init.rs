//! `argusctl init`: create a log and its signing key.
use super::Out;
use crate::log::dir::InitOptions;
use crate::Log;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub fn run(
    dir: PathBuf,
    segment_bytes: u64,
    key_file: Option<PathBuf>,
    clock_skew_tolerance_s: Option<u64>,
) -> Result<()> {
    // clap enforces the range for argusctl; this keeps library callers to it.
    if !super::args::SEGMENT_BYTES.contains(&segment_bytes) {
        anyhow::bail!(
            "--segment-bytes {segment_bytes} is not in {}..={}",
            super::args::SEGMENT_BYTES.start(),
            super::args::SEGMENT_BYTES.end()
        );
    }
    let log = Log::create(
        &dir,
        &InitOptions {
            segment_bytes,
            key_file,
            clock_skew_tolerance_s,
        },
    )
    .with_context(|| format!("creating log in {}", dir.display()))?;
    let m = log.meta();
    let mut out = Out::default();
    out.json(&serde_json::json!({"log_id": m.log_id, "public_key": m.public_key}).to_string());
    out.flush();
    Ok(())
}
