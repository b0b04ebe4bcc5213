//! `argusctl key rotate|show`: the log's signing-key epochs (SPEC §4.7).
//! Only public material is ever printed: public keys, key ids, seq ranges
//! and the seqs of the certifying entries; private keys are paths at most.
use super::{Format, Out};
use crate::log::dir::{parse_public_key, LogDir};
use crate::log::{epochs, Log, OpenOptions};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};

pub const ROTATE_HELP: &str = "Generates the next epoch's key and appends key.rotated, which certifies it with a signature by\nthe OUTGOING key (and proves possession of the new one). The seal covering that entry is the\nlast the outgoing key signs; the segment is rolled, the new key (keys/epoch-N.key, mode 0600)\nsigns every later seal, and the outgoing private key file is overwritten and removed.\n`verify --key FIRST_KEY` follows the certificates from the first key, so keep pinning the same\nkey; it fails (exit 11) on any seal signed by a key outside that key's epoch. Only this\ncommand writes key.rotated: append and argusd refuse it. It takes the writer lock: stop\nargusd first. A crash at any step leaves a log that opens and verifies; the next open (or a\nretry) finishes or forgets the rotation.\n\nExamples:\n  argusctl key rotate ./audit\n  argusctl key rotate ./audit -o json | jq -r .key_id";

pub const SHOW_HELP: &str = "Prints the current epoch and, for every epoch, its public key, key id, seq range and the seq of\nthe key.rotated entry that certified it, following the certificates in the log from the first\nkey (argus.json's, or --key to pin it). Private keys are never printed. It checks only the\ncertificates, not the chain: run verify for that.\n\nExamples:\n  argusctl key show ./audit\n  argusctl key show ./audit --key 3b6a27bc... -o json | jq '.epochs[] | {epoch, key_id, from_seq}'";

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Rotate the signing key: a new epoch key, certified in the log by the outgoing key, which is then erased.
    #[command(after_help = ROTATE_HELP)]
    Rotate {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show the key epochs: public keys, key ids, seq ranges, certifying entries (no private material).
    #[command(after_help = SHOW_HELP)]
    Show {
        dir: PathBuf,
        /// The first (pinned) public key, 64 hex digits; default: argus.json's public_key.
        #[arg(long)]
        key: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

pub fn run(cmd: KeyCmd) -> Result<i32> {
    match cmd {
        KeyCmd::Rotate { dir, format } => rotate(&dir, format),
        KeyCmd::Show { dir, key, format } => show(&dir, key.as_deref(), format),
    }
}

fn rotate(dir: &Path, format: Format) -> Result<i32> {
    let opts = OpenOptions {
        operation: "rotate the signing key".into(),
        ..OpenOptions::default()
    };
    let mut log =
        Log::open_with(dir, &opts).with_context(|| format!("opening {}", dir.display()))?;
    let r = log.rotate_key().context("rotating the signing key")?;
    drop(log);
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&serde_json::to_string(&r)?),
        Format::Text => {
            out.line(&format!(
                "rotated: epoch {} key id {} from seq {} (certified by key.rotated at seq {}, signed by key id {})",
                r.epoch, r.key_id, r.from_seq, r.seq, r.prev_key_id
            ));
            out.line(&format!("public key: {}", r.public_key));
            out.line(&format!(
                "new private key: {} (mode 0600); erased: {}",
                r.key_file, r.erased_key_file
            ));
            out.line("verify still pins the first key: argusctl verify DIR --key FIRST_KEY");
        }
    }
    out.flush();
    Ok(0)
}

fn show(dir: &Path, key: Option<&str>, format: Format) -> Result<i32> {
    let d = LogDir::new(dir);
    let meta = d
        .read_meta()
        .with_context(|| format!("opening {}", dir.display()))?;
    let (first, pinned) = match key {
        Some(k) => (
            parse_public_key(k)
                .map_err(|e| super::error::CommandError::Invalid(format!("--key: {e}")))?,
            true,
        ),
        None => (meta.public_key()?, false),
    };
    let e = epochs::read(&d, meta.log_id()?, first)?;
    let all = e.all();
    let rows: Vec<_> = all
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            json!({
                "epoch": ep.epoch,
                "key_id": hex::encode(ep.key_id),
                "public_key": hex::encode(ep.key.as_bytes()),
                "from_seq": ep.from_seq,
                // Exclusive; null for the current epoch (open-ended).
                "to_seq": all.get(i + 1).map(|n| n.from_seq),
                "cert_seq": ep.cert_seq,
            })
        })
        .collect();
    let current = e.current().epoch;
    let mut out = Out::default();
    match format {
        Format::Json => out.json(
            &json!({
                "log_id": meta.log_id,
                "first_key_pinned": pinned,
                "current_epoch": current,
                "epochs": rows,
            })
            .to_string(),
        ),
        Format::Text => {
            out.line(&format!(
                "current epoch: {current} ({} epoch{})",
                all.len(),
                if all.len() == 1 { "" } else { "s" }
            ));
            if !pinned {
                out.line("first key taken from argus.json and not pinned: pass --key to pin it");
            }
            for (i, ep) in all.iter().enumerate() {
                let range = match all.get(i + 1) {
                    Some(n) => format!("seqs {}..{}", ep.from_seq, n.from_seq),
                    None => format!("seqs {}..", ep.from_seq),
                };
                let cert = match ep.cert_seq {
                    Some(s) => format!("certified by key.rotated at seq {s}"),
                    None => "the first key".to_string(),
                };
                out.line(&format!(
                    "epoch {}  key id {}  {range}  {cert}",
                    ep.epoch,
                    hex::encode(ep.key_id)
                ));
                out.line(&format!("  public key {}", hex::encode(ep.key.as_bytes())));
            }
        }
    }
    out.flush();
    Ok(0)
}
