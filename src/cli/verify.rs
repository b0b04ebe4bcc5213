//! `argusctl verify`: offline verification with documented exit codes.
use super::{eprint, Format, Out, EXIT_USAGE};
use crate::log::dir::{parse_public_key, LogDir};
use crate::log::verify::{verify, Options};
use anyhow::{Context, Result};
use log_format::Checkpoint;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub fn run(
    dir: &Path,
    key: Option<String>,
    checkpoints: Vec<PathBuf>,
    format: Format,
    threads: usize,
) -> Result<i32> {
    let d = LogDir::new(dir);
    if !d.segments_dir().is_dir() {
        eprint(&format!(
            "argusctl: {} is not an Argus log (no segments/ directory)",
            dir.display()
        ));
        return Ok(EXIT_USAGE);
    }
    let (key, pinned) = match key {
        Some(k) => match parse_public_key(&k) {
            Ok(k) => (k, true),
            Err(e) => {
                eprint(&format!("argusctl: --key: {e}"));
                return Ok(EXIT_USAGE);
            }
        },
        None => match d.read_meta().and_then(|m| m.public_key()) {
            Ok(k) => (k, false),
            Err(e) => {
                eprint(&format!("argusctl: no --key given and {e}"));
                return Ok(EXIT_USAGE);
            }
        },
    };
    let mut cps = Vec::new();
    for p in &checkpoints {
        let bytes =
            std::fs::read(p).with_context(|| format!("reading checkpoint {}", p.display()))?;
        match Checkpoint::parse_bytes(&bytes) {
            Ok(c) => cps.push(c),
            Err(e) => {
                eprint(&format!("argusctl: checkpoint {}: {e}", p.display()));
                return Ok(EXIT_USAGE);
            }
        }
    }
    // Progress counts a compressed segment's decompressed bytes, as the
    // verifier reports them.
    let total: u64 = d
        .list_segments()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|b| crate::log::reader::segment_len(&d, b).ok())
        .sum();
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "verifying {bar:40} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let progress: Option<Box<dyn Fn(u64) + Sync>> = bar
        .clone()
        .map(|b| Box::new(move |n| b.set_position(n)) as Box<dyn Fn(u64) + Sync>);
    let report = verify(
        dir,
        &Options {
            key,
            key_pinned: pinned,
            checkpoints: cps,
            threads,
            progress,
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // The exit code is the verdict: a closed stdout must not turn it into 0.
    let mut out = Out::keeping_exit_code();
    match format {
        Format::Json => out.json(&serde_json::to_string(&report)?),
        Format::Text => {
            for w in &report.warnings {
                eprint(&format!("warning: {w}"));
            }
            match &report.failure {
                None => out.line(&format!(
                    "OK: {} entries ({} sealed) in {} segments, {} bytes; root {} head {}; key {} {}; {} checkpoint(s) matched",
                    report.entries,
                    report.sealed_size,
                    report.segments,
                    report.bytes,
                    report.root,
                    report.head,
                    report.public_key,
                    if report.key_pinned { "pinned" } else { "NOT pinned" },
                    report.checkpoints_checked
                )),
                Some(f) => out.line(&format!("FAIL {f}")),
            }
            for e in &report.erased {
                out.line(&format!(
                    "erased: seq {} by entry.redacted at seq {} ({}, reason {})",
                    e.seq,
                    e.by_seq,
                    super::safe::esc(&e.actor),
                    serde_json::Value::from(e.reason.as_str())
                ));
            }
        }
    }
    out.flush();
    Ok(report.code)
}
