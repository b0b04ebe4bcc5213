//! `argusctl witness`: a local cosigner in the manner of C2SP tlog-witness.
//!
//! The log's own key cannot prove it never showed two parties two
//! histories, or quietly rolled one back: whoever holds it can sign both.
//! A witness keeps the last checkpoint it cosigned and cosigns a new one
//! only when a consistency proof shows it extends that one, so a verifier
//! that requires a witness's cosignature knows the witness saw, and
//! accepted, one append-only history. A refusal names both checkpoints;
//! two validly signed checkpoints of one size with different roots are
//! proof that the log key equivocated.
use super::{eprint, safe, Format, Out, EXIT_USAGE};
use crate::log::keys;
use crate::log::reader::LogReader;
use crate::log::safe_fs::{self, Durability};
use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use log_format::hash::Hash32;
use log_format::proof::{consistency_proof, verify_consistency};
use log_format::seal::{cosign, origin};
use log_format::{Checkpoint, Cosigner};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The checkpoint is not signed by the log key the witness pinned.
pub const EXIT_SIGNATURE: i32 = 11;
/// Smaller than the checkpoint last cosigned: a rollback.
pub const EXIT_ROLLBACK: i32 = 12;
/// Not an extension of the checkpoint last cosigned: a fork, or the log key
/// signing two roots for one size (equivocation).
pub const EXIT_FORK: i32 = 14;

/// A request or state file larger than this is not one.
const INPUT_MAX: u64 = 1 << 20;
/// RFC 9162 consistency proofs have at most 2 * log2(size) hashes.
const PROOF_HASHES_MAX: usize = 128;
const STATE_FORMAT: &str = "argus-witness-state/1";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Local mode (DIR): reads DIR's latest checkpoint, proves from the log that it extends the one\nlast cosigned, cosigns it, prints the cosigned checkpoint and saves it in --state.\nRequest mode (--request FILE, or - for stdin): a C2SP tlog-witness add-checkpoint body\n(\"old N\", the consistency proof as base64 lines, a blank line, the checkpoint); prints only\nthe cosignature line. This is what argusd's --witness-cmd runs.\n\nThe first run creates the state and, unless --key-file names one, a witness key beside it\n(STATE.key, mode 0600); it pins the log key (--log-key, or DIR's argus.json, said on stderr).\nGive verifiers the witness's verifier key (--print-vkey): `verify --witness VKEY` checks it.\n\nExit codes: 0 cosigned, 1 could not run, 2 usage or malformed input, 11 not signed by the\npinned log key, 12 rollback (smaller than the last cosigned), 14 fork or equivocation (not an\nextension of the last cosigned; both checkpoints are printed).\n\nExamples:\n  argusctl witness ./audit --state /var/lib/witness/audit.json --name witness.example/w1 > cp.txt\n  argusctl witness --state /var/lib/witness/audit.json --print-vkey\n  argusctl verify ./audit --checkpoint cp.txt --witness \"$(cat w1.vkey)\""
)]
pub struct WitnessArgs {
    /// The log to witness (local mode). Omit it with --request or --print-vkey.
    #[arg(required_unless_present_any = ["request", "print_vkey"])]
    pub dir: Option<PathBuf>,
    /// The witness's state: the last checkpoint it cosigned and the log key it pinned. Created on first use.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// The witness's Ed25519 key (hex seed, mode 0600). Default: STATE.key, created with the state.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The witness's name in its signature lines, fixed when the state is created. Example: witness.example/w1
    #[arg(long)]
    pub name: Option<String>,
    /// Pin this log public key (64 hex digits) when creating the state.
    #[arg(long, value_name = "HEX")]
    pub log_key: Option<String>,
    /// Cosign a C2SP tlog-witness add-checkpoint request from FILE (- for stdin) instead of reading DIR.
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub request: Option<PathBuf>,
    /// Print the witness's verifier key (NAME+KEYID+KEY) and exit.
    #[arg(long)]
    pub print_vkey: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// What the witness remembers between runs.
#[derive(Serialize, Deserialize)]
struct State {
    format: String,
    name: String,
    log_origin: String,
    /// Hex of the pinned log public key.
    log_key: String,
    /// The last checkpoint cosigned, with every signature line it carried.
    checkpoint: String,
    /// Later key epochs, learned from the log's `key.rotated` certificates
    /// (checked from the pinned key) when the witness read the log: what
    /// lets a request, which carries no certificates, be signed by a
    /// rotated key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    epochs: Vec<LearnedEpoch>,
}

#[derive(Serialize, Deserialize, Clone)]
struct LearnedEpoch {
    epoch: u64,
    from_seq: u64,
    /// Hex of the epoch's public key.
    key: String,
}

/// A checkpoint to judge, and where its consistency proof comes from.
struct Candidate {
    /// The whole signed note as received (it may carry other cosignatures).
    note: String,
    cp: Checkpoint,
    proof: ProofSource,
}

enum ProofSource {
    /// Built from the log's entry hashes when needed.
    Log(Box<LogReader>),
    /// Sent with a request, against the request's `old` size.
    Given { old: u64, hashes: Vec<Hash32> },
}

enum Verdict {
    Cosign,
    Refuse { code: i32, why: String },
}

pub fn run(a: &WitnessArgs) -> Result<i32> {
    let state = read_state(&a.state)?;
    let key_path = a.key_file.clone().unwrap_or_else(|| {
        let mut p = a.state.clone().into_os_string();
        p.push(".key");
        PathBuf::from(p)
    });
    let name = match (&state, &a.name) {
        (Some(s), Some(n)) if *n != s.name => {
            eprint(&format!(
                "argusctl: --name {}: this witness is named {} (its state fixes the name)",
                safe::esc(n),
                safe::esc(&s.name)
            ));
            return Ok(EXIT_USAGE);
        }
        (Some(s), _) => s.name.clone(),
        (None, n) => n.clone().unwrap_or_else(|| "argus-witness".into()),
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        eprint("argusctl: --name: a witness name is non-empty, with no space and no `+`");
        return Ok(EXIT_USAGE);
    }
    let key = if state.is_none() && !key_path.exists() {
        let k = keys::generate()?;
        keys::write_new(&key_path, &k)?;
        eprint(&format!(
            "argusctl: created witness key {} (mode 0600)",
            key_path.display()
        ));
        k
    } else {
        keys::load(&key_path)?
    };
    let me = Cosigner {
        name: name.clone(),
        key: key.verifying_key(),
    };
    if a.print_vkey {
        let mut out = Out::default();
        out.line(&me.vkey());
        out.flush();
        return Ok(0);
    }
    let cand = match candidate(a)? {
        Ok(c) => c,
        Err(why) => {
            eprint(&format!("argusctl: {why}"));
            return Ok(EXIT_USAGE);
        }
    };
    let log_key = match pinned_log_key(a, &state, &cand)? {
        Ok(k) => k,
        Err(why) => {
            eprint(&format!("argusctl: {why}"));
            return Ok(EXIT_USAGE);
        }
    };
    // After a rotation the checkpoint is signed by a later epoch's key,
    // which is believed only through the certificates the log holds, from
    // the pinned key on (SPEC §4.7).
    let known = state.as_ref().map(|s| s.epochs.as_slice()).unwrap_or(&[]);
    let (signer, epochs) = match signing_key(&cand, log_key, known)? {
        Ok(k) => k,
        Err(why) => {
            eprint(&format!("argusctl: refused: {why}"));
            return Ok(EXIT_SIGNATURE);
        }
    };
    if let Err(e) = cand.cp.verify(&cand.cp.log_id, &signer) {
        let hint = match cand.proof {
            ProofSource::Given { .. } => "; if the log's key was rotated since this witness last read the log, run `argusctl witness DIR --state FILE` on it once to learn the new key from its certificates",
            ProofSource::Log(_) => "",
        };
        eprint(&format!(
            "argusctl: refused: the checkpoint is not signed by the log key {} (certified from the pinned key {}): {e}{hint}",
            hex::encode(signer.as_bytes()),
            hex::encode(log_key.as_bytes())
        ));
        return Ok(EXIT_SIGNATURE);
    }
    let old = match &state {
        Some(s) if s.log_origin != origin(&cand.cp.log_id) => {
            eprint(&format!(
                "argusctl: refused: this witness follows {}, the checkpoint is of {}",
                safe::esc(&s.log_origin),
                origin(&cand.cp.log_id)
            ));
            return Ok(EXIT_SIGNATURE);
        }
        Some(s) => Some(
            Checkpoint::parse(&s.checkpoint)
                .map_err(|e| anyhow!("{}: stored checkpoint: {e}", a.state.display()))?,
        ),
        None => None,
    };
    match judge(old.as_ref(), &cand)? {
        Verdict::Refuse { code, why } => {
            let old_note = state.as_ref().map(|s| s.checkpoint.as_str());
            refuse(a.format, code, &why, old.as_ref().zip(old_note), &cand);
            return Ok(code);
        }
        Verdict::Cosign => {}
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let line = cosign(&cand.cp.text, &name, &key, now);
    let cosigned = format!("{}{line}", cand.note);
    let saved = State {
        format: STATE_FORMAT.into(),
        name,
        log_origin: origin(&cand.cp.log_id),
        log_key: hex::encode(log_key.as_bytes()),
        checkpoint: cosigned.clone(),
        epochs,
    };
    write_state(&a.state, &saved)?;
    let mut out = Out::default();
    match a.format {
        Format::Json => out.json(&serde_json::to_string(&serde_json::json!({
            "status": "cosigned",
            "tree_size": cand.cp.seal.tree_size,
            "root": hex::encode(cand.cp.seal.root),
            "previous_size": old.as_ref().map(|o| o.seal.tree_size),
            "witness": me.vkey(),
            "time": now,
            "checkpoint": cosigned,
            "cosignature": line,
        }))?),
        Format::Text => {
            let text = if a.request.is_some() {
                &line
            } else {
                &cosigned
            };
            for l in text.lines() {
                out.line(l);
            }
        }
    }
    out.flush();
    Ok(0)
}

/// The rule: never smaller, never a different root at the same size, and
/// a larger one only with a proof that it extends the last.
fn judge(old: Option<&Checkpoint>, c: &Candidate) -> Result<Verdict> {
    let new = &c.cp.seal;
    let Some(old) = old else {
        return Ok(match &c.proof {
            ProofSource::Given { old: n, .. } if *n != 0 => Verdict::Refuse {
                code: EXIT_FORK,
                why: format!("the request proves from size {n}, but this witness has cosigned nothing yet (old must be 0)"),
            },
            _ => Verdict::Cosign,
        });
    };
    let old = &old.seal;
    if new.tree_size < old.tree_size {
        return Ok(Verdict::Refuse {
            code: EXIT_ROLLBACK,
            why: format!(
                "rollback: the checkpoint has {} entries, fewer than the {} last cosigned",
                new.tree_size, old.tree_size
            ),
        });
    }
    if new.tree_size == old.tree_size {
        return Ok(if new.root == old.root {
            Verdict::Cosign
        } else {
            Verdict::Refuse {
                code: EXIT_FORK,
                why: format!(
                    "equivocation: two checkpoints validly signed by the log key for size {} with different roots",
                    new.tree_size
                ),
            }
        });
    }
    let proof = match &c.proof {
        ProofSource::Given { old: n, hashes } => {
            if *n != old.tree_size {
                return Ok(Verdict::Refuse {
                    code: EXIT_FORK,
                    why: format!(
                        "the request proves from size {n}, but the last checkpoint cosigned has size {}",
                        old.tree_size
                    ),
                });
            }
            hashes.clone()
        }
        ProofSource::Log(r) => {
            let hashes = super::proof::entry_hashes(r, new.tree_size)?;
            consistency_proof(&hashes, old.tree_size)
                .ok_or_else(|| anyhow!("no consistency proof from size {}", old.tree_size))?
        }
    };
    if verify_consistency(old.tree_size, new.tree_size, &old.root, &new.root, &proof) {
        Ok(Verdict::Cosign)
    } else {
        Ok(Verdict::Refuse {
            code: EXIT_FORK,
            why: format!(
                "fork: the checkpoint of size {} does not extend the one of size {} last cosigned (the consistency proof fails)",
                new.tree_size, old.tree_size
            ),
        })
    }
}

/// Says why, and prints both checkpoints whole, signature lines included:
/// together they are the evidence a third party can check.
fn refuse(format: Format, code: i32, why: &str, old: Option<(&Checkpoint, &str)>, c: &Candidate) {
    let old_note = old.map(|o| o.1).unwrap_or_default();
    let old = old.map(|o| o.0);
    match format {
        Format::Json => {
            let mut out = Out::keeping_exit_code();
            out.json(
                &serde_json::json!({
                    "status": "refused",
                    "code": code,
                    "reason": why,
                    "cosigned": {"tree_size": old.map(|o| o.seal.tree_size),
                                 "root": old.map(|o| hex::encode(o.seal.root)),
                                 "note": old_note},
                    "offered": {"tree_size": c.cp.seal.tree_size,
                                "root": hex::encode(c.cp.seal.root),
                                "note": c.note},
                })
                .to_string(),
            );
            out.flush();
        }
        Format::Text => {
            eprint(&format!("argusctl: refused: {why}"));
            if let Some(o) = old {
                eprint(&format!(
                    "  last cosigned: size {} root {}",
                    o.seal.tree_size,
                    hex::encode(o.seal.root)
                ));
            }
            eprint(&format!(
                "  offered:       size {} root {}",
                c.cp.seal.tree_size,
                hex::encode(c.cp.seal.root)
            ));
            eprint("the last cosigned checkpoint:");
            for l in old_note.lines() {
                eprint(&format!("  {}", safe::esc(l)));
            }
            eprint("the offered checkpoint:");
            for l in c.note.lines() {
                eprint(&format!("  {}", safe::esc(l)));
            }
        }
    }
}

fn candidate(a: &WitnessArgs) -> Result<std::result::Result<Candidate, String>> {
    if let Some(path) = &a.request {
        let bytes = if path.as_os_str() == "-" {
            let mut b = Vec::new();
            std::io::stdin()
                .take(INPUT_MAX + 1)
                .read_to_end(&mut b)
                .context("reading the request from stdin")?;
            if b.len() as u64 > INPUT_MAX {
                return Ok(Err(format!("request: larger than {INPUT_MAX} bytes")));
            }
            b
        } else {
            safe_fs::read_capped(path, INPUT_MAX)?
        };
        return Ok(parse_request(&bytes));
    }
    let Some(dir) = &a.dir else {
        return Ok(Err("name a log DIR or --request FILE".into()));
    };
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let note = r.latest_seal()?.checkpoint_text(&r.log_id);
    let cp = Checkpoint::parse(&note).map_err(|e| anyhow!("the log's own checkpoint: {e}"))?;
    Ok(Ok(Candidate {
        note,
        cp,
        proof: ProofSource::Log(Box::new(r)),
    }))
}

/// A request's old size, proof length and checkpoint size, or why it is
/// malformed; what the fuzz targets and property tests drive.
pub fn request_shape(bytes: &[u8]) -> std::result::Result<(u64, usize, u64), String> {
    let c = parse_request(bytes)?;
    match c.proof {
        ProofSource::Given { old, hashes } => Ok((old, hashes.len(), c.cp.seal.tree_size)),
        ProofSource::Log(_) => Err("not a request".into()),
    }
}

/// C2SP tlog-witness add-checkpoint: `old N`, proof hashes in base64 one
/// per line, a blank line, then the signed note.
fn parse_request(bytes: &[u8]) -> std::result::Result<Candidate, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "request: not UTF-8 at byte {} (line {})",
            e.valid_up_to(),
            bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1
        )
    })?;
    let (first, rest) = text
        .split_once('\n')
        .ok_or("request line 1: expected `old <size>`")?;
    let old: u64 = first
        .strip_prefix("old ")
        .and_then(|n| (n == "0" || !n.starts_with('0')).then_some(n))
        .and_then(|n| n.parse().ok())
        .ok_or("request line 1: expected `old <size>` (a decimal size)")?;
    // No proof (old 0, or the same size): the blank line comes at once.
    // Otherwise the first blank line ends the proof; the note has its own.
    let (proof_text, note) = rest
        .strip_prefix('\n')
        .map(|n| ("", n))
        .or_else(|| rest.split_once("\n\n"))
        .ok_or("request: no blank line between the proof and the checkpoint")?;
    let mut hashes = Vec::new();
    for (i, l) in proof_text.lines().enumerate() {
        if hashes.len() == PROOF_HASHES_MAX {
            return Err(format!(
                "request line {}: more than {PROOF_HASHES_MAX} proof hashes",
                i + 2
            ));
        }
        let h: Hash32 = B64
            .decode(l)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| format!("request line {}: not a base64 32-byte hash", i + 2))?;
        hashes.push(h);
    }
    let cp = Checkpoint::parse(note).map_err(|e| format!("request checkpoint: {e}"))?;
    Ok(Candidate {
        note: note.to_string(),
        cp,
        proof: ProofSource::Given { old, hashes },
    })
}

/// The key that must sign the candidate, and the epochs to remember: the
/// pinned key, or, when the log recorded rotations, the key of the epoch
/// the checkpoint's size falls in, each epoch's `key.rotated` entry read
/// from the log and its certificate checked by the key before it. A request
/// carries no certificates, so it is held to the epochs this witness
/// learned that way when it last read the log.
fn signing_key(
    c: &Candidate,
    pinned: VerifyingKey,
    learned: &[LearnedEpoch],
) -> Result<std::result::Result<(VerifyingKey, Vec<LearnedEpoch>), String>> {
    let size = c.cp.seal.tree_size;
    let mut chain = log_format::epoch::KeyEpochs::new(c.cp.log_id, pinned);
    let ProofSource::Log(r) = &c.proof else {
        // A request: the epochs this witness checked when it last read the log.
        for e in learned {
            let key = crate::log::dir::parse_public_key(&e.key)
                .map_err(|err| anyhow!("witness state: epoch {}: {err}", e.epoch))?;
            if !chain.push_unverified(e.epoch, e.from_seq, key) {
                return Ok(Err(format!(
                    "witness state: epoch {} is out of order",
                    e.epoch
                )));
            }
        }
        return Ok(Ok((chain.for_tree_size(size).key, learned.to_vec())));
    };
    for e in r.epochs.all().iter().skip(1) {
        if e.from_seq >= size {
            break;
        }
        let Some(seq) = e.from_seq.checked_sub(1) else {
            return Ok(Err(format!("epoch {} starts at seq 0", e.epoch)));
        };
        let accepted = r.locate(seq, |v, _| chain.accept(v.seq, v.kind, v.actor, v.payload))?;
        match accepted {
            Some(Ok(true)) => {}
            Some(Ok(false)) => {
                return Ok(Err(format!(
                    "epoch {}: seq {seq} is not a key.rotated entry",
                    e.epoch
                )))
            }
            Some(Err(err)) => return Ok(Err(format!("epoch {}: {err}", e.epoch))),
            None => {
                return Ok(Err(format!(
                    "epoch {}: the log does not hold its key.rotated entry (seq {seq})",
                    e.epoch
                )))
            }
        }
    }
    let learned = chain
        .all()
        .iter()
        .skip(1)
        .map(|e| LearnedEpoch {
            epoch: e.epoch,
            from_seq: e.from_seq,
            key: hex::encode(e.key.as_bytes()),
        })
        .collect();
    Ok(Ok((chain.for_tree_size(size).key, learned)))
}

fn pinned_log_key(
    a: &WitnessArgs,
    state: &Option<State>,
    c: &Candidate,
) -> Result<std::result::Result<VerifyingKey, String>> {
    let given = match &a.log_key {
        Some(h) => match crate::log::dir::parse_public_key(h) {
            Ok(k) => Some(k),
            Err(e) => return Ok(Err(format!("--log-key: {e}"))),
        },
        None => None,
    };
    if let Some(s) = state {
        let k = crate::log::dir::parse_public_key(&s.log_key)
            .map_err(|e| anyhow!("{}: log_key: {e}", a.state.display()))?;
        if given.is_some_and(|g| g != k) {
            return Ok(Err(format!(
                "--log-key differs from the key this witness pinned ({})",
                s.log_key
            )));
        }
        return Ok(Ok(k));
    }
    if let Some(k) = given {
        return Ok(Ok(k));
    }
    match &c.proof {
        ProofSource::Log(r) => {
            eprint(&format!(
                "argusctl: new witness state: pinning the log key {} from argus.json (trust on first use; pass --log-key to pin it yourself)",
                hex::encode(r.epochs.first().key.as_bytes())
            ));
            Ok(Ok(r.epochs.first().key))
        }
        ProofSource::Given { .. } => Ok(Err(
            "a new witness state needs --log-key HEX to know whose checkpoints it cosigns".into(),
        )),
    }
}

fn read_state(path: &Path) -> Result<Option<State>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    let bytes = safe_fs::read_capped(path, INPUT_MAX)?;
    let s: State = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a witness state file", path.display()))?;
    if s.format != STATE_FORMAT {
        bail!(
            "{}: format {:?}, expected {STATE_FORMAT:?}",
            path.display(),
            s.format
        );
    }
    Ok(Some(s))
}

fn write_state(path: &Path, s: &State) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let bytes = serde_json::to_vec_pretty(s)?;
    safe_fs::write_whole(Path::new(&tmp), path, &bytes, 0o644, Durability::Synced)
        .with_context(|| format!("saving the witness state {}", path.display()))
}
