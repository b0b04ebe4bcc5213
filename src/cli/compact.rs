//! `argusctl compact`: rewrites the log's sealed segments for long-term
//! keeping, as a list of steps run in order under one hold of the writer
//! lock. The compression step (`log::archive`) is the last: a step that
//! rewrites segment contents (erasure) belongs before it, so that what is
//! compressed is final.
use super::{Format, Out};
use crate::log::archive::{compress_sealed, ArchiveOptions, ArchiveReport};
use crate::log::lock::WriterLock;
use anyhow::{Context, Result};
use log_format::archive::EncodeOptions;
use serde::Serialize;
use std::path::Path;

pub const AFTER_HELP: &str = "\
Each sealed segment NNNN.seg becomes NNNN.segz: the same bytes, cut into blocks of whole
frames, each block compressed on its own, with a block index at the end. Decompressed, the
blocks are the original segment byte for byte, so every hash, seal, checkpoint and proof
made before compaction still verifies after it; cat, tail, replay, export, prove and
verify read compressed segments as before. The last segment is never compressed.

Crash-safe: the compressed file is synced, read back and compared, renamed into place,
and only then is the plain file removed; a crash leaves one or both (then the plain one
is used, and the next run finishes the job). Idempotent.

compact takes the writer lock (waiting up to --lock-timeout): stop argusd first.

Examples:
  argusctl compact ./audit
  argusctl compact ./audit -o json | jq .compress.ratio";

/// `compact`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct CompactArgs {
    pub dir: std::path::PathBuf,
    /// zstd level (1..=19). 3 is zstd's default; higher levels save a few
    /// percent for much slower compaction (docs/PERFORMANCE.md).
    #[arg(long, default_value_t = log_format::archive::DEFAULT_LEVEL,
          value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Uncompressed bytes per independently compressed block (4096..=16777216).
    /// Larger blocks compress better and cost more to decompress one at a time.
    #[arg(long, value_name = "BYTES", default_value_t = log_format::archive::DEFAULT_BLOCK_SIZE,
          value_parser = clap::value_parser!(u32).range(
              log_format::archive::BLOCK_SIZE_MIN as i64..=log_format::archive::BLOCK_SIZE_MAX as i64))]
    pub block_size: u32,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// What every step reported, by step name (the JSON output).
#[derive(Debug, Default, Serialize)]
struct CompactReport {
    compress: Option<ArchiveReport>,
}

/// Takes the writer lock, runs the steps in order, prints what they did.
pub fn run(args: &CompactArgs) -> Result<i32> {
    let dir = &args.dir;
    let lock = WriterLock::acquire(dir, "compact", super::state::lock_timeout()).with_context(
        || {
            format!(
                "compact needs the writer lock of {}: stop argusd or the running append, then run it again",
                dir.display()
            )
        },
    )?;
    // Steps, in order: each reads the log as the previous one left it, so
    // a step that rewrites segment contents goes before compression.
    let report = CompactReport {
        compress: Some(compress_step(dir, &lock, args)?),
    };
    print(&report, args.format)?;
    Ok(0)
}

fn compress_step(dir: &Path, lock: &WriterLock, args: &CompactArgs) -> Result<ArchiveReport> {
    let opts = ArchiveOptions {
        encode: EncodeOptions {
            level: args.level,
            block_size: args.block_size,
        },
    };
    compress_sealed(dir, lock, &opts)
        .with_context(|| format!("compressing the sealed segments of {}", dir.display()))
}

fn print(report: &CompactReport, format: Format) -> Result<()> {
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&serde_json::to_string(report)?),
        Format::Text => {
            if let Some(c) = &report.compress {
                for s in &c.segments {
                    out.line(&format!(
                        "{}  {}  {} -> {} bytes ({:.1}%)",
                        s.segment,
                        s.action,
                        s.bytes_before,
                        s.bytes_after,
                        s.ratio * 100.0
                    ));
                }
                out.line(&format!(
                    "compressed {} segment(s): {} -> {} bytes ({:.1}%); {} already compressed; {} left as is (the last segment)",
                    c.segments.len(),
                    c.bytes_before,
                    c.bytes_after,
                    c.ratio * 100.0,
                    c.already_compressed,
                    c.active.as_deref().unwrap_or("none"),
                ));
            }
        }
    }
    out.flush();
    Ok(())
}
