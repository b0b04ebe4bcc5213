//! `argusctl compact`: rewrites the log's sealed segments for long-term
//! keeping, as a list of steps run in order under one hold of the writer
//! lock: first the erasure of redacted payloads (`log::erase`), then
//! compression (`log::archive`), so that what is compressed is final. It
//! runs locally, never through argusd.
use super::{Format, Out};
use crate::log::archive::{compress_sealed, ArchiveOptions, ArchiveReport};
use crate::log::erase::{erase_redacted, EraseReport, Erasure};
use crate::log::lock::WriterLock;
use anyhow::{Context, Result};
use log_format::archive::EncodeOptions;
use serde::Serialize;
use std::path::Path;

pub const AFTER_HELP: &str = "\
Two steps, in order, under one hold of the writer lock:

1. Erase: overwrites the payload bytes of every entry an operator redacted (argusctl redact)
   with zeros, same length, in sealed segments. Entries in the active segment are reported
   pending until it is sealed. The chain, seals, checkpoints and proofs are unchanged;
   `argusctl verify` reports each erasure. Projections are caches derived from payloads:
   after erasing, delete DIR/projections (they rebuild from the log) so no derived copy of
   an erased value survives.
2. Compress: each sealed segment NNNN.seg becomes NNNN.segz: the same bytes, cut into blocks
   of whole frames, each block compressed on its own, with a block index at the end.
   Decompressed, the blocks are the original segment byte for byte, so every hash, seal,
   checkpoint and proof made before compaction still verifies after it; cat, tail, replay,
   export, prove and verify read compressed segments as before. The last segment is never
   compressed. --no-compress skips this step.

Crash-safe: every rewritten file is synced and renamed into place before the old one goes;
a crash leaves the old segment or the new one (if both, the plain one is used, and the next
run finishes the job). Running it again changes nothing.

compact takes the writer lock (waiting up to --lock-timeout): stop argusd first.

Examples:
  argusctl compact ./audit
  argusctl compact ./audit -o json | jq '.erase.erased[].seq'
  argusctl compact ./audit -o json | jq .compress.ratio
  argusctl compact ./audit --no-compress      # erase only";

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
    /// Erase redacted payloads only; leave segments uncompressed.
    #[arg(long)]
    pub no_compress: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// What every step reported, by step name (the JSON output).
#[derive(Debug, Default, Serialize)]
struct CompactReport {
    erase: Option<EraseReport>,
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
    let erase = erase_redacted(dir, &lock)
        .with_context(|| format!("erasing redacted payloads in {}", dir.display()))?;
    let compress = if args.no_compress {
        None
    } else {
        Some(compress_step(dir, &lock, args)?)
    };
    let report = CompactReport {
        erase: Some(erase),
        compress,
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
            if let Some(e) = &report.erase {
                for l in erase_text(e) {
                    out.line(&l);
                }
            }
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

fn erase_text(r: &EraseReport) -> Vec<String> {
    let one = |e: &Erasure| {
        format!(
            "seq {} ({} bytes, segments/{} offset {}) by entry.redacted at seq {}",
            e.seq, e.payload_bytes, e.segment, e.offset, e.by_seq
        )
    };
    let mut out = Vec::new();
    for e in &r.erased {
        out.push(format!("erased:    {}", one(e)));
    }
    for e in &r.already {
        out.push(format!("already:   {}", one(e)));
    }
    for e in &r.pending {
        out.push(format!(
            "pending:   {} (active segment: erased once it is sealed)",
            one(e)
        ));
    }
    for s in &r.skipped {
        out.push(format!(
            "skipped:   seq {} by entry.redacted at seq {}: {}",
            s.seq, s.by_seq, s.why
        ));
    }
    out.push(format!(
        "{} erased now, {} already erased, {} pending until sealed, {} skipped; {} segment(s) rewritten",
        r.erased.len(),
        r.already.len(),
        r.pending.len(),
        r.skipped.len(),
        r.segments_rewritten.len()
    ));
    out
}
