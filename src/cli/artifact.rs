//! `argusctl sign` and `argusctl verify-artifact`: detached Ed25519
//! signatures over files, made with the log's signing key and recorded in
//! the log (ADR-018 S6).
//!
//! `sign` hashes FILE with BLAKE3 (streaming), signs
//! `"argus-artifact-v1\n" + log id + "\n" + BLAKE3 hex + "\n" + name` and
//! writes `FILE.sig` whole (temp file, then rename), then records
//! `artifact.signed` as the operator. `verify-artifact` recomputes the hash
//! and checks the signature against the log's public key (argus.json) and
//! that the log records signing that content; a mismatch is recorded as
//! `artifact.tamper_detected` (class argus) and answered with its exit code.
//!
//! The file and the key are read where argusctl runs, never by argusd: a
//! daemon that read and signed paths for its callers would sign and hash
//! any file it can read. When argusd serves the log, argusctl does the
//! file work itself and sends the daemon only what to record (hidden
//! options): the daemon checks a signature document against the log's key
//! before recording `artifact.signed` (so recording one needs the key) and
//! judges `verify-artifact` from the hash the caller computed.
use super::remote::{self, Remote};
use super::state::{self, Decision};
use super::{Format, Out};
use crate::authority::Class;
use crate::log::dir::{LogDir, Meta};
use crate::log::reader::LogReader;
use crate::log::{epochs, keys, safe_fs};
use anyhow::{bail, Context, Result};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use log_format::{KeyEpoch, KeyEpochs};
use serde_json::{json, Value};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Content differs from what the signature vouches for.
pub const EXIT_ALTERED: i32 = 10;
/// The signature file is missing (while the log records the signing),
/// malformed, from another log or key, or does not verify.
pub const EXIT_BAD_SIGNATURE: i32 = 11;
/// This log records no signing of this content.
pub const EXIT_NEVER_SIGNED: i32 = 14;

const DOMAIN: &str = "argus-artifact-v1";
/// A signature document is a few hundred bytes.
const SIG_FILE_MAX: u64 = 64 * 1024;

pub const SIGN_HELP: &str = "Hashes FILE (BLAKE3), signs it with the log's Ed25519 key and writes FILE.sig:\n  {\"version\":1, \"algorithm\":\"ed25519\", \"name\", \"bytes\", \"blake3\", \"log_id\", \"key_id\", \"signature\"}\nThe signature (hex) is over \"argus-artifact-v1\\n\" + log_id + \"\\n\" + blake3 + \"\\n\" + name.\nThen appends artifact.signed {path, name, blake3, bytes, signature_file, key_id, signature} as\nthe operator. The key file must be mode 0600 (as for writing): a key readable by group or\nothers is refused. FILE.sig is replaced whole (temp file + rename) if it exists.\nFILE and the key are read here, never by argusd; while argusd serves the log, only the\nrecord goes through it (it checks the signature against the log's key first).\n\nExamples:\n  argusctl sign ./audit dist/agent-1.4.2.tar.gz\n  argusctl sign ./audit model.safetensors -o json | jq .seq";

pub const VERIFY_HELP: &str = "Recomputes FILE's BLAKE3, checks FILE.sig (or --sig) against the log's public key in\nargus.json, and looks for the artifact.signed entry of that hash. A mismatch is appended\nas artifact.tamper_detected {path, expected_blake3, actual_blake3, reason, signed_seq} (class\nargus) and answered with its exit code.\n\nExit codes:\n  0   FILE matches: valid signature by this log's key, and the log records signing it\n  1   could not run (FILE unreadable, not a log, ...)\n  10  content altered: the signature is valid but FILE's BLAKE3 is not the signed one\n  11  bad signature: FILE.sig does not verify, is malformed, names another log or key,\n      is missing while the log records signing this content, or is by a key outside its\n      epoch (SPEC §4.7): a retired key, or another epoch's key than the one whose range\n      holds the artifact.signed entry\n  14  never signed by this log: no signature file and no record of this content, or a\n      valid signature for content this log never recorded\n\nExamples:\n  argusctl verify-artifact ./audit dist/agent-1.4.2.tar.gz\n  argusctl verify-artifact ./audit model.bin --sig /srv/sigs/model.bin.sig -o json | jq .signed_seq";

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    pub dir: PathBuf,
    /// The file to sign.
    pub file: PathBuf,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// A signature document argusctl already made: only record it (how
    /// argusctl sends a signing to argusd).
    #[arg(long = "signed-document", hide = true)]
    pub signed_document: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    pub dir: PathBuf,
    /// The file to check.
    pub file: PathBuf,
    /// The signature file (default: FILE.sig).
    #[arg(long)]
    pub sig: Option<PathBuf>,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// FILE's BLAKE3, computed by the caller (how argusctl asks argusd to
    /// judge a file it cannot read).
    #[arg(long, hide = true)]
    pub blake3: Option<String>,
    /// FILE's size, with --blake3.
    #[arg(long, hide = true)]
    pub bytes: Option<u64>,
    /// The signature document's text, with --blake3.
    #[arg(long = "sig-document", hide = true)]
    pub sig_document: Option<String>,
    /// Why the signature file could not be used, with --blake3.
    #[arg(long = "sig-unusable", hide = true)]
    pub sig_unusable: Option<String>,
}

/// The detached signature, `FILE.sig`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigDoc {
    pub version: u32,
    pub algorithm: String,
    pub name: String,
    pub bytes: u64,
    pub blake3: String,
    pub log_id: String,
    pub key_id: String,
    pub signature: String,
}

/// The signed message: domain, log, content, name.
fn message(log_id: &str, blake3: &str, name: &str) -> String {
    format!("{DOMAIN}\n{log_id}\n{blake3}\n{name}")
}

fn key_id_hex(meta: &Meta, key: &VerifyingKey) -> Result<String> {
    Ok(hex::encode(log_format::seal::key_id(&meta.log_id()?, key)))
}

/// BLAKE3 (hex) and size of a regular file, read in 64 KiB pieces.
fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut f = safe_fs::open_read(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n: u64 = 0;
    loop {
        let k = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        let Some(piece) = buf.get(..k) else { break };
        if piece.is_empty() {
            break;
        }
        h.update(piece);
        n += k as u64;
    }
    Ok((h.finalize().to_hex().to_string(), n))
}

fn utf8_path(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not a UTF-8 path", p.display()))
}

/// FILE as an absolute path (not resolving links), for the record.
fn absolute(file: &Path) -> Result<String> {
    let abs = std::path::absolute(file).with_context(|| format!("resolving {}", file.display()))?;
    utf8_path(&abs)
}

fn file_name(file: &Path) -> Result<String> {
    let name = file
        .file_name()
        .with_context(|| format!("{} names no file", file.display()))?;
    utf8_path(Path::new(name))
}

fn sig_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Where a file is read decides who may do it: inside argusd only the
/// record-only forms run.
fn refuse_in_daemon(what: &str) -> Result<()> {
    if super::context::shared().is_some() {
        bail!(super::error::CommandError::Invalid(format!(
            "{what} reads the file where argusctl runs; argusd does not read files for its callers (run argusctl {what} on the host that has the file)"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------- sign

pub fn sign(a: &SignArgs, remote: Option<Remote>) -> Result<i32> {
    if let Some(doc) = &a.signed_document {
        let doc: SigDoc = serde_json::from_str(doc)
            .map_err(|e| super::error::CommandError::Invalid(format!("--signed-document: {e}")))?;
        return record_signed(&a.dir, &utf8_path(&a.file)?, &doc, a.format);
    }
    refuse_in_daemon("sign")?;
    let d = LogDir::new(&a.dir);
    let meta = d.read_meta()?;
    let key_path = d.key_path(&meta);
    safe_fs::real_dirs_below(&a.dir, &key_path)?;
    // The rules of every key read: mode 0600, a regular file named directly.
    let key = keys::load(&key_path)?;
    let current = log_epochs(&a.dir, &meta)?.current().key;
    if key.verifying_key() != meta.current_key()?.1 || key.verifying_key() != current {
        bail!(
            "key file {}: the key is not the current epoch's key (as argus.json records it and the log's key.rotated certificates certify it)",
            key_path.display()
        );
    }
    let name = file_name(&a.file)?;
    let path = absolute(&a.file)?;
    let (blake3, bytes) = hash_file(&a.file)?;
    let signature = key.sign(message(&meta.log_id, &blake3, &name).as_bytes());
    let doc = SigDoc {
        version: 1,
        algorithm: "ed25519".into(),
        name,
        bytes,
        blake3,
        log_id: meta.log_id.clone(),
        key_id: key_id_hex(&meta, &key.verifying_key())?,
        signature: hex::encode(signature.to_bytes()),
    };
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    // Absolute, so the directory synced after the rename is FILE's even for
    // a bare file name.
    let dest = sig_path(&std::path::absolute(&a.file)?);
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".tmp");
    safe_fs::write_whole(
        Path::new(&tmp),
        &dest,
        text.as_bytes(),
        0o644,
        safe_fs::Durability::Synced,
    )?;
    match remote {
        Some(r) => {
            let argv = vec![
                "sign".to_string(),
                utf8_path(&a.dir)?,
                path,
                "--signed-document".into(),
                serde_json::to_string(&doc)?,
                "-o".into(),
                format_word(a.format).into(),
            ];
            remote::command(&r, &argv)
        }
        None => record_signed(&a.dir, &path, &doc, a.format),
    }
}

fn format_word(f: Format) -> &'static str {
    match f {
        Format::Text => "text",
        Format::Json => "json",
    }
}

/// The log's key epochs, followed from argus.json's first key through the
/// `key.rotated` certificates in the log (SPEC §4.7): argus.json's own list
/// of epochs is the writer's bookkeeping and is not believed here.
fn log_epochs(dir: &Path, meta: &Meta) -> Result<KeyEpochs> {
    Ok(epochs::read(
        &LogDir::new(dir),
        meta.log_id()?,
        meta.public_key()?,
    )?)
}

/// Checks a signature document against this log and its keys; on success,
/// the epoch whose key signed it (its range is `in_range`'s to judge).
fn check_doc(
    epochs: &KeyEpochs,
    meta: &Meta,
    doc: &SigDoc,
) -> std::result::Result<KeyEpoch, String> {
    if doc.version != 1 || doc.algorithm != "ed25519" {
        return Err(format!(
            "unsupported signature document (version {}, algorithm {:?})",
            doc.version, doc.algorithm
        ));
    }
    if doc.log_id != meta.log_id {
        return Err(format!(
            "signed by log {}, not this log ({})",
            doc.log_id, meta.log_id
        ));
    }
    // Any certified epoch's key (SPEC §4.7); whether that epoch may have
    // signed this document is judged against the log's record of it.
    let Some(epoch) = epochs
        .all()
        .iter()
        .find(|e| hex::encode(e.key_id) == doc.key_id)
        .cloned()
    else {
        let kid = key_id_hex(meta, &epochs.current().key).map_err(|e| e.to_string())?;
        return Err(format!(
            "key id {} is not one of this log's keys (current: {kid})",
            doc.key_id
        ));
    };
    if hex32(&doc.blake3).is_none() {
        return Err("blake3 is not 64 hex digits".into());
    }
    let sig: [u8; 64] = hex::decode(&doc.signature)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("signature is not 128 hex digits")?;
    epoch
        .key
        .verify_strict(
            message(&doc.log_id, &doc.blake3, &doc.name).as_bytes(),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| "the signature does not verify with this log's public key".to_string())?;
    Ok(epoch)
}

/// A signature document is a statement of the key of the epoch in which
/// the log records it (SPEC §4.7): `Ok(seq)` of an `artifact.signed` of
/// this content inside the signer's epoch; `Ok(None)` when the log records
/// none and the signer is the current key. Anything else is a key used
/// outside its epoch (a stolen old key signing after its retirement, or a
/// later key claiming an earlier record) and is refused naming both keys.
fn in_range(
    epochs: &KeyEpochs,
    signer: &KeyEpoch,
    records: &[u64],
) -> std::result::Result<Option<u64>, String> {
    let epoch_of = |seq: u64| epochs.for_tree_size(seq.saturating_add(1));
    if let Some(seq) = records
        .iter()
        .rev()
        .find(|s| epoch_of(**s).epoch == signer.epoch)
    {
        return Ok(Some(*seq));
    }
    if let Some(seq) = records.last() {
        let due = epoch_of(*seq);
        return Err(format!(
            "signed by epoch {}'s key (key id {}), but the artifact.signed entry at seq {seq} lies in epoch {}, whose key (key id {}) must sign it",
            signer.epoch,
            hex::encode(signer.key_id),
            due.epoch,
            hex::encode(due.key_id)
        ));
    }
    let current = epochs.current();
    if signer.epoch != current.epoch {
        let retired = epochs
            .all()
            .get(signer.epoch as usize + 1)
            .and_then(|next| next.cert_seq)
            .unwrap_or(current.from_seq);
        return Err(format!(
            "signed by epoch {}'s key (key id {}), retired at seq {retired}, and the log records no artifact.signed of this content in its epoch; the current key is epoch {}'s (key id {})",
            signer.epoch,
            hex::encode(signer.key_id),
            current.epoch,
            hex::encode(current.key_id)
        ));
    }
    Ok(None)
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

/// Appends `artifact.signed` for a checked signature document.
fn record_signed(dir: &Path, path: &str, doc: &SigDoc, format: Format) -> Result<i32> {
    let meta = LogDir::new(dir).read_meta()?;
    let epochs = log_epochs(dir, &meta)?;
    // The record goes in the current epoch, so only the current key's
    // signature may be recorded (a retired key's never is).
    if let Err(why) =
        check_doc(&epochs, &meta, doc).and_then(|e| in_range(&epochs, &e, &[]).map(|_| ()))
    {
        bail!(super::error::CommandError::Invalid(format!(
            "signature document for {path}: {why}"
        )));
    }
    let signature_file = format!("{path}.sig");
    let payload = json!({
        "path": path,
        "name": doc.name,
        "blake3": doc.blake3,
        "bytes": doc.bytes,
        "signature_file": signature_file,
        "key_id": doc.key_id,
        "signature": doc.signature,
    });
    let seq = state::append_one(
        dir,
        "sign",
        Decision {
            class: Class::Operator,
            kind: "artifact.signed",
            job_id: None,
            agent: None,
            parent: None,
            payload,
        },
    )?;
    let mut out = Out::default();
    match format {
        Format::Json => out.json(
            &json!({
                "signed": path,
                "name": doc.name,
                "blake3": doc.blake3,
                "bytes": doc.bytes,
                "signature_file": signature_file,
                "key_id": doc.key_id,
                "seq": seq,
            })
            .to_string(),
        ),
        Format::Text => {
            out.line(&format!(
                "signed {} (blake3 {}, {} bytes) with key {}",
                super::safe::esc(path),
                doc.blake3,
                doc.bytes,
                doc.key_id
            ));
            out.line(&format!(
                "wrote {}; recorded as artifact.signed seq {seq}",
                super::safe::esc(&signature_file)
            ));
        }
    }
    out.flush();
    Ok(0)
}

// ------------------------------------------------------- verify-artifact

/// The signature file as the judge sees it.
enum SigInput {
    Missing,
    Unusable(String),
    Text(String),
}

pub fn verify(a: &VerifyArgs, remote: Option<Remote>) -> Result<i32> {
    if let Some(actual) = &a.blake3 {
        if hex32(actual).is_none() {
            bail!(super::error::CommandError::Invalid(
                "--blake3 must be 64 lowercase hex digits".into()
            ));
        }
        let sig = match (&a.sig_document, &a.sig_unusable) {
            (Some(t), _) => SigInput::Text(t.clone()),
            (None, Some(why)) => SigInput::Unusable(why.clone()),
            (None, None) => SigInput::Missing,
        };
        let path = utf8_path(&a.file)?;
        return judge(&a.dir, &path, actual, a.bytes.unwrap_or(0), sig, a.format);
    }
    refuse_in_daemon("verify-artifact")?;
    let path = absolute(&a.file)?;
    let (actual, bytes) = hash_file(&a.file)?;
    let sig_file = a.sig.clone().unwrap_or_else(|| sig_path(&a.file));
    let sig = match safe_fs::read_capped(&sig_file, SIG_FILE_MAX) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => SigInput::Text(t),
            Err(_) => SigInput::Unusable(format!("{} is not UTF-8", sig_file.display())),
        },
        Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            SigInput::Missing
        }
        Err(e) => SigInput::Unusable(e.to_string()),
    };
    match remote {
        Some(r) => {
            let mut argv = vec![
                "verify-artifact".to_string(),
                utf8_path(&a.dir)?,
                path,
                "--blake3".into(),
                actual,
                "--bytes".into(),
                bytes.to_string(),
                "-o".into(),
                format_word(a.format).into(),
            ];
            match sig {
                SigInput::Missing => {}
                SigInput::Unusable(why) => argv.extend(["--sig-unusable".into(), why]),
                SigInput::Text(t) => argv.extend(["--sig-document".into(), t]),
            }
            remote::command(&r, &argv)
        }
        None => judge(&a.dir, &path, &actual, bytes, sig, a.format),
    }
}

/// An `artifact.signed` entry the log holds.
struct Signed {
    seq: u64,
    blake3: String,
}

/// Every `artifact.signed` written by its class (an entry a class may not
/// write is not believed, as projections do not believe it).
fn signings(dir: &Path) -> Result<Vec<Signed>> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut out = Vec::new();
    r.for_each(0, u64::MAX, |v| {
        if v.kind == "artifact.signed" && Class::of_actor(v.actor) == Class::Operator {
            if let Ok(p) = serde_json::from_slice::<Value>(v.payload) {
                if let Some(b) = p["blake3"].as_str() {
                    out.push(Signed {
                        seq: v.seq,
                        blake3: b.to_string(),
                    });
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

struct Mismatch {
    code: i32,
    reason: &'static str,
    detail: String,
    expected: Option<String>,
    signed_seq: Option<u64>,
}

fn judge(
    dir: &Path,
    path: &str,
    actual: &str,
    bytes: u64,
    sig: SigInput,
    format: Format,
) -> Result<i32> {
    let meta = LogDir::new(dir).read_meta()?;
    let epochs = log_epochs(dir, &meta)?;
    let signed = signings(dir)?;
    let records = |h: &str| -> Vec<u64> {
        signed
            .iter()
            .filter(|s| s.blake3 == h)
            .map(|s| s.seq)
            .collect()
    };
    let signed_seq = |h: &str| signed.iter().rev().find(|s| s.blake3 == h).map(|s| s.seq);
    let name = file_name(Path::new(path)).unwrap_or_else(|_| path.to_string());
    let bad_sig = |detail: String, expected: Option<String>| Mismatch {
        code: EXIT_BAD_SIGNATURE,
        reason: "bad_signature",
        signed_seq: signed_seq(expected.as_deref().unwrap_or(actual)),
        detail,
        expected,
    };
    let verdict: std::result::Result<(u64, SigDoc), Mismatch> = match sig {
        SigInput::Missing => Err(match signed_seq(actual) {
            Some(seq) => Mismatch {
                code: EXIT_BAD_SIGNATURE,
                reason: "bad_signature",
                detail: format!(
                    "no signature file, although the log records signing this content (seq {seq})"
                ),
                expected: Some(actual.to_string()),
                signed_seq: Some(seq),
            },
            None => Mismatch {
                code: EXIT_NEVER_SIGNED,
                reason: "never_signed",
                detail: "no signature file, and this log records no artifact.signed with this BLAKE3".into(),
                expected: None,
                signed_seq: None,
            },
        }),
        SigInput::Unusable(why) => Err(bad_sig(format!("signature file unusable: {why}"), None)),
        SigInput::Text(t) => match serde_json::from_str::<SigDoc>(&t) {
            Err(e) => Err(bad_sig(
                format!("signature file is not an argus signature document: {e}"),
                None,
            )),
            Ok(doc) => match check_doc(&epochs, &meta, &doc)
                .and_then(|e| in_range(&epochs, &e, &records(&doc.blake3)))
            {
                Err(why) => Err(bad_sig(
                    why,
                    hex32(&doc.blake3).map(|_| doc.blake3.clone()),
                )),
                Ok(_) if doc.blake3 != actual => Err(Mismatch {
                    code: EXIT_ALTERED,
                    reason: "content_altered",
                    detail: format!(
                        "the file's BLAKE3 is not the one signed for {} ({} bytes signed, {bytes} now)",
                        doc.name, doc.bytes
                    ),
                    signed_seq: signed_seq(&doc.blake3),
                    expected: Some(doc.blake3),
                }),
                Ok(in_epoch) => match in_epoch.or_else(|| signed_seq(actual)) {
                    Some(seq) => Ok((seq, doc)),
                    None => Err(Mismatch {
                        code: EXIT_NEVER_SIGNED,
                        reason: "never_signed",
                        detail: "the signature is valid, but this log records no artifact.signed with this BLAKE3".into(),
                        expected: Some(doc.blake3),
                        signed_seq: None,
                    }),
                },
            },
        },
    };
    // The exit code is the answer: a closed stdout must not turn it into 0.
    let mut out = Out::keeping_exit_code();
    let m = match verdict {
        Ok((seq, doc)) => {
            match format {
                Format::Json => out.json(
                    &json!({
                        "ok": true,
                        "path": path,
                        "name": doc.name,
                        "blake3": actual,
                        "bytes": bytes,
                        "key_id": doc.key_id,
                        "log_id": doc.log_id,
                        "signed_seq": seq,
                    })
                    .to_string(),
                ),
                Format::Text => out.line(&format!(
                    "ok: {} matches: blake3 {actual}, signature by key {} of log {}, artifact.signed seq {seq}",
                    super::safe::esc(path),
                    doc.key_id,
                    doc.log_id
                )),
            }
            out.flush();
            return Ok(0);
        }
        Err(m) => m,
    };
    let payload = json!({
        "path": path,
        "name": name,
        "expected_blake3": m.expected,
        "actual_blake3": actual,
        "reason": m.reason,
        "detail": m.detail,
        "signed_seq": m.signed_seq,
    });
    let recorded = state::append_one(
        dir,
        "verify-artifact",
        Decision {
            class: Class::Argus,
            kind: "artifact.tamper_detected",
            job_id: None,
            agent: None,
            parent: m.signed_seq,
            payload,
        },
    );
    let recorded_seq = match recorded {
        Ok(seq) => Some(seq),
        Err(e) => {
            super::eprint(&format!(
                "argusctl: verify-artifact: the mismatch could not be recorded: {}",
                crate::cli::error::chain_text(&e)
            ));
            None
        }
    };
    match format {
        Format::Json => out.json(
            &json!({
                "ok": false,
                "path": path,
                "reason": m.reason,
                "detail": m.detail,
                "expected_blake3": m.expected,
                "actual_blake3": actual,
                "bytes": bytes,
                "signed_seq": m.signed_seq,
                "recorded_seq": recorded_seq,
                "exit": m.code,
            })
            .to_string(),
        ),
        Format::Text => {
            out.line(&format!(
                "TAMPERED ({}): {}: {}",
                m.reason,
                super::safe::esc(path),
                super::safe::esc(&m.detail)
            ));
            out.line(&format!(
                "expected blake3 {}, actual {actual}{}",
                m.expected.as_deref().unwrap_or("(none)"),
                m.signed_seq
                    .map(|s| format!(", artifact.signed seq {s}"))
                    .unwrap_or_default()
            ));
            if let Some(s) = recorded_seq {
                out.line(&format!("recorded as artifact.tamper_detected seq {s}"));
            }
        }
    }
    out.flush();
    Ok(m.code)
}
