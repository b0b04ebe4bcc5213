//! `argusctl verify`: offline verification with documented exit codes.
use super::{eprint, Format, Out, EXIT_USAGE};
use crate::log::dir::{parse_public_key, LogDir};
use crate::log::verify::{verify, Options};
use anyhow::{Context, Result};
use log_format::{Checkpoint, Cosigned, Cosigner};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// What the verifier was told to trust beyond the key: checkpoints saved
/// earlier, and witnesses that must have cosigned each of them.
pub struct Trusted {
    pub checkpoints: Vec<PathBuf>,
    pub witnesses: Vec<String>,
}

/// Two checkpoints, each validly signed by the key, for one size with two
/// roots: the key holder showed two histories.
pub const EXIT_EQUIVOCATION: i32 = 14;
/// A witness's cosignature missing or not verifying.
const EXIT_SIGNATURE: i32 = 11;

pub fn run(
    dir: &Path,
    key: Option<String>,
    trusted: Trusted,
    format: Format,
    threads: usize,
) -> Result<i32> {
    let Trusted {
        checkpoints,
        witnesses,
    } = trusted;
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
    let mut cosigners = Vec::new();
    for w in &witnesses {
        match Cosigner::parse_vkey(w) {
            Ok(c) => cosigners.push(c),
            Err(e) => {
                eprint(&format!("argusctl: --witness {}: {e}", super::safe::esc(w)));
                return Ok(EXIT_USAGE);
            }
        }
    }
    // After a rotation (SPEC §4.7) a checkpoint is signed by the key of the
    // epoch its size falls in, followed from the pinned key through the
    // log's certificates; a log whose certificates cannot be read leaves
    // the pinned key alone (verify then reports what is wrong).
    // Read only when there is a pair to judge: it scans every segment.
    let epochs = (cps.len() > 1)
        .then(|| {
            d.read_meta()
                .and_then(|m| m.log_id())
                .and_then(|id| crate::log::epochs::read(&d, id, key))
                .ok()
        })
        .flatten();
    if let Some(message) = equivocation(&checkpoints, &cps, &key, epochs.as_ref()) {
        let mut out = Out::keeping_exit_code();
        match format {
            Format::Json => out.json(
                &serde_json::json!({
                    "status": "fail",
                    "code": EXIT_EQUIVOCATION,
                    "failure": {"class": "Equivocation", "message": message},
                })
                .to_string(),
            ),
            Format::Text => out.line(&format!("FAIL Equivocation: {message}")),
        }
        out.flush();
        return Ok(EXIT_EQUIVOCATION);
    }
    let cosigned = witness_report(&checkpoints, &cps, &cosigners);
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
    // A log that verifies but lacks a cosignature it was told to require
    // fails as a signature problem; a failure of the log itself comes first.
    let witness_failure = cosigned
        .iter()
        .find(|w| w.status != "valid")
        .filter(|_| report.code == 0)
        .map(|w| match w.status {
            "absent" => format!(
                "checkpoint {} carries no cosignature by witness {}",
                w.checkpoint, w.witness
            ),
            _ => format!(
                "checkpoint {} line {}: the cosignature by witness {} does not verify",
                w.checkpoint,
                w.line.unwrap_or(0),
                w.witness
            ),
        });
    let code = if witness_failure.is_some() {
        EXIT_SIGNATURE
    } else {
        report.code
    };
    // The exit code is the verdict: a closed stdout must not turn it into 0.
    let mut out = Out::keeping_exit_code();
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(&report)?;
            v["witnesses"] = serde_json::to_value(&cosigned)?;
            if let Some(message) = &witness_failure {
                v["status"] = "fail".into();
                v["code"] = code.into();
                v["failure"] = serde_json::json!({"class": "Signature", "message": message});
            }
            out.json(&v.to_string())
        }
        Format::Text => {
            for w in &report.warnings {
                eprint(&format!("warning: {w}"));
            }
            for w in cosigned.iter().filter(|w| w.status == "valid") {
                out.line(&format!(
                    "witness {} cosigned {} (time {})",
                    w.witness,
                    w.checkpoint,
                    w.time.unwrap_or(0)
                ));
            }
            if let Some(message) = &witness_failure {
                out.line(&format!("FAIL Signature: {message}"));
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
            if let (None, Some(cur)) = (&report.failure, report.key_epochs.last()) {
                if cur.epoch > 0 {
                    out.line(&format!(
                        "key epochs: {} followed from the pinned key by their key.rotated certificates; current epoch {} key id {} from seq {}",
                        report.key_epochs.len(),
                        cur.epoch,
                        cur.key_id,
                        cur.from_seq
                    ));
                }
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
    Ok(code)
}

/// One witness's verdict on one checkpoint, as `-o json` lists them.
#[derive(serde::Serialize)]
struct WitnessVerdict {
    checkpoint: String,
    witness: String,
    /// "valid", "invalid" or "absent".
    status: &'static str,
    time: Option<u64>,
    line: Option<usize>,
}

fn witness_report(paths: &[PathBuf], cps: &[Checkpoint], ws: &[Cosigner]) -> Vec<WitnessVerdict> {
    let mut out = Vec::new();
    for (path, cp) in paths.iter().zip(cps) {
        for w in ws {
            let (status, time, line) = match w.check(cp) {
                Cosigned::Valid { time, line } => ("valid", Some(time), Some(line)),
                Cosigned::Invalid { line } => ("invalid", None, Some(line)),
                Cosigned::Absent => ("absent", None, None),
            };
            out.push(WitnessVerdict {
                checkpoint: path.display().to_string(),
                witness: w.name.clone(),
                status,
                time,
                line,
            });
        }
    }
    out
}

/// Two given checkpoints of one log, both signed by the key that may sign
/// their size (`key`, or the epoch's key when `epochs` are known), one
/// size, two roots. Such a pair needs no more of the log: it is the evidence.
fn equivocation(
    paths: &[PathBuf],
    cps: &[Checkpoint],
    key: &ed25519_dalek::VerifyingKey,
    epochs: Option<&log_format::KeyEpochs>,
) -> Option<String> {
    let signer = |c: &Checkpoint| match epochs {
        Some(e) if *e.log_id() == c.log_id => e.for_tree_size(c.seal.tree_size).key,
        _ => *key,
    };
    let signed: Vec<(&PathBuf, &Checkpoint)> = paths
        .iter()
        .zip(cps)
        .filter(|(_, c)| c.verify(&c.log_id, &signer(c)).is_ok())
        .collect();
    for (i, (pa, a)) in signed.iter().enumerate() {
        for (pb, b) in &signed[i + 1..] {
            if a.log_id == b.log_id
                && a.seal.tree_size == b.seal.tree_size
                && a.seal.root != b.seal.root
            {
                return Some(format!(
                    "checkpoints {} and {} are both validly signed by key {} for size {} of log {}, with roots {} and {}",
                    pa.display(),
                    pb.display(),
                    hex::encode(signer(a).as_bytes()),
                    a.seal.tree_size,
                    hex::encode(a.log_id),
                    hex::encode(a.seal.root),
                    hex::encode(b.seal.root)
                ));
            }
        }
    }
    None
}
