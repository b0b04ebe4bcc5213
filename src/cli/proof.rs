//! `argusctl prove` and `argusctl verify-proof`: RFC 9162 inclusion and
//! consistency proofs packed with signed checkpoints into a JSON bundle that
//! can be checked offline with nothing but the log's public key (SPEC §11).
use super::proof_chain::{self, Signers};
use super::{eprint, render_checked, Format, Out, EXIT_USAGE};
use crate::log::dir::parse_public_key;
use crate::log::reader::LogReader;
use crate::log::redactions::Redactions;
use anyhow::{bail, Context, Result};
use ed25519_dalek::VerifyingKey;
use log_format::hash::{merkle_leaf, payload_hash};
use log_format::merkle::naive_root;
use log_format::proof;
use log_format::{Checkpoint, EntryView, Hash32, KeyEpochs, LogId};
use serde_json::{json, Value};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// A hash or path mismatch: the bundle's content was altered.
pub const EXIT_ALTERED: i32 = 10;
/// A checkpoint not signed by the pinned key.
pub const EXIT_SIGNATURE: i32 = 11;

/// A checkpoint file, parsed, with its text exactly as given.
fn read_checkpoint(path: &Path) -> Result<(Checkpoint, String)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let cp = Checkpoint::parse_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", path.display()))?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("checkpoint {}", path.display()))?;
    Ok((cp, text))
}

/// Entry hashes of seqs `[0, size)`, all read from the log.
pub(crate) fn entry_hashes(r: &LogReader, size: u64) -> Result<Vec<Hash32>> {
    let mut out = Vec::new();
    if size > 0 {
        r.for_each(0, size - 1, |v| {
            out.push(v.hash());
            ControlFlow::Continue(())
        })?;
    }
    if out.len() as u64 != size {
        bail!(
            "the log holds {} sealed entries, fewer than the checkpoint's tree size {size}",
            out.len()
        );
    }
    Ok(out)
}

/// A checkpoint from a file, judged against the log it is to prove about:
/// signed by the log's key, and its root that of the log's first entries.
fn own_checkpoint(
    r: &LogReader,
    epochs: &KeyEpochs,
    path: &Path,
) -> Result<(Checkpoint, String, Vec<Hash32>)> {
    let (cp, text) = read_checkpoint(path)?;
    // Signed by the key of the epoch its size falls in (SPEC §4.7), as the
    // log's certificates say.
    cp.verify(&r.log_id, &epochs.for_tree_size(cp.seal.tree_size).key)
        .map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", path.display()))?;
    let hashes = entry_hashes(r, cp.seal.tree_size)?;
    if naive_root(&hashes) != cp.seal.root {
        bail!(
            "checkpoint {}: its root is not the root of this log's first {} entries (the log diverged from it)",
            path.display(),
            cp.seal.tree_size
        );
    }
    Ok((cp, text, hashes))
}

fn hexes(v: &[Hash32]) -> Vec<String> {
    v.iter().map(hex::encode).collect()
}

/// One entry's part of an inclusion proof: the entry as `cat -o json`
/// prints it, its hashes and its audit path in the tree over `hashes`.
/// Refused when the entry's hash cannot be recomputed from that JSON,
/// since an offline verifier could then not check it.
pub(super) fn inclusion_item(
    r: &LogReader,
    hashes: &[Hash32],
    seq: u64,
    redactions: &Redactions,
) -> Result<Value> {
    let mut entry = None;
    r.for_each(seq, seq, |v| {
        entry = Some(
            render_checked(v, Format::Json, redactions)
                .map(|json| (json, v.hash(), v.payload_hash)),
        );
        ControlFlow::Break(())
    })?;
    let Some((entry_json, entry_hash, payload_hash)) = entry.transpose()? else {
        bail!("seq {seq} is not a sealed entry of this log");
    };
    let mut entry: Value = serde_json::from_str(&entry_json)?;
    if entry.get("redacted").is_some_and(|r| !r.is_null()) {
        // An erased payload is withheld: the bundle carries its hash, which
        // is all the entry hash needs (SPEC §11), and never the payload.
        entry["payload_hash"] = json!(hex::encode(payload_hash));
    }
    match recompute_entry_hash(&entry) {
        Ok(h) if h == entry_hash => {}
        _ => bail!(
            "seq {seq}: the entry hash cannot be recomputed from its JSON rendering (payload not in canonical form?); no offline-checkable bundle"
        ),
    }
    let Some(path) = proof::inclusion_proof(hashes, seq) else {
        bail!("seq {seq} is not in the tree");
    };
    Ok(json!({
        "seq": seq,
        "entry": entry,
        "entry_hash": hex::encode(entry_hash),
        "leaf_hash": hex::encode(merkle_leaf(&entry_hash)),
        "audit_path": hexes(&path),
    }))
}

/// `replay --proof`: every entry of a job's timeline with its inclusion
/// proof against one signed checkpoint (the latest seal), so a third party
/// can check that job alone, without the rest of the log (SPEC §11).
pub fn write_job_bundle(dir: &Path, job_id: &str, seqs: &[u64], output: &Path) -> Result<usize> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let seal = r.latest_seal()?;
    if let Some(late) = seqs.iter().find(|s| **s >= seal.tree_size) {
        bail!(
            "seq {late} of the job is not sealed yet: the latest seal covers seqs below {}",
            seal.tree_size
        );
    }
    let hashes = entry_hashes(&r, seal.tree_size)?;
    if naive_root(&hashes) != seal.root {
        bail!("the latest seal's root is not the root of the log's entries");
    }
    let redactions = Redactions::scan(&r, seqs.first().copied().unwrap_or(0))?;
    let entries = seqs
        .iter()
        .map(|s| inclusion_item(&r, &hashes, *s, &redactions))
        .collect::<Result<Vec<_>>>()?;
    let epochs = proof_chain::followed(&r)?;
    let mut bundle = json!({
        "version": 1,
        "log_id": hex::encode(r.log_id),
        "job_id": job_id,
        "tree_size": seal.tree_size,
        "checkpoint": seal.checkpoint_text(&r.log_id),
        "entries": entries,
    });
    if let Some(chain) = proof_chain::chain_for(&r, &epochs, &hashes)? {
        bundle["key_chain"] = chain;
    }
    emit(&bundle, Some(output))?;
    Ok(seqs.len())
}

fn emit(bundle: &Value, output: Option<&Path>) -> Result<()> {
    let text = serde_json::to_string_pretty(bundle)?;
    match output {
        Some(p) => std::fs::write(p, format!("{text}\n"))
            .with_context(|| format!("writing {}", p.display()))?,
        None => {
            let mut out = Out::default();
            out.json_lines(&text);
            out.flush();
        }
    }
    Ok(())
}

pub fn prove(
    dir: &Path,
    seq: Option<u64>,
    checkpoint: Option<PathBuf>,
    consistency: Option<PathBuf>,
    output: Option<PathBuf>,
) -> Result<i32> {
    let r = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let epochs = proof_chain::followed(&r)?;
    let (mut bundle, hashes) = match (seq, consistency) {
        (Some(_), Some(_)) | (None, None) => {
            eprint("argusctl: prove takes either SEQ or --consistency OLD_CHECKPOINT");
            return Ok(EXIT_USAGE);
        }
        (None, Some(old)) => {
            if checkpoint.is_some() {
                eprint("argusctl: --checkpoint goes with SEQ, not with --consistency");
                return Ok(EXIT_USAGE);
            }
            let (old_cp, old_text, _) = own_checkpoint(&r, &epochs, &old)?;
            let new = r.latest_seal()?;
            if new.tree_size < old_cp.seal.tree_size {
                bail!(
                    "the log's latest seal covers {} entries, fewer than the old checkpoint's {}",
                    new.tree_size,
                    old_cp.seal.tree_size
                );
            }
            let hashes = entry_hashes(&r, new.tree_size)?;
            if naive_root(&hashes) != new.root {
                bail!("the latest seal's root is not the root of the log's entries");
            }
            let Some(path) = proof::consistency_proof(&hashes, old_cp.seal.tree_size) else {
                bail!("no consistency proof for these sizes");
            };
            let bundle = json!({
                "version": 1,
                "log_id": hex::encode(r.log_id),
                "old_size": old_cp.seal.tree_size,
                "old_root": hex::encode(old_cp.seal.root),
                "new_size": new.tree_size,
                "new_root": hex::encode(new.root),
                "proof": hexes(&path),
                "old_checkpoint": old_text,
                "new_checkpoint": new.checkpoint_text(&r.log_id),
            });
            (bundle, hashes)
        }
        (Some(seq), None) => {
            let (text, size, root, hashes) = match checkpoint {
                Some(p) => {
                    let (cp, text, hashes) = own_checkpoint(&r, &epochs, &p)?;
                    if cp.seal.tree_size <= seq {
                        bail!(
                            "checkpoint {} covers seqs below {}, not seq {seq}",
                            p.display(),
                            cp.seal.tree_size
                        );
                    }
                    (text, cp.seal.tree_size, cp.seal.root, hashes)
                }
                None => {
                    let s = r.latest_seal()?;
                    if s.tree_size <= seq {
                        bail!(
                            "seq {seq} is not sealed: the latest seal covers seqs below {}",
                            s.tree_size
                        );
                    }
                    let hashes = entry_hashes(&r, s.tree_size)?;
                    (s.checkpoint_text(&r.log_id), s.tree_size, s.root, hashes)
                }
            };
            if naive_root(&hashes) != root {
                bail!("the checkpoint's root is not the root of the log's entries");
            }
            let redactions = Redactions::scan(&r, seq)?;
            let mut bundle = inclusion_item(&r, &hashes, seq, &redactions)?;
            bundle["version"] = json!(1);
            bundle["log_id"] = json!(hex::encode(r.log_id));
            bundle["tree_size"] = json!(size);
            bundle["checkpoint"] = json!(text);
            (bundle, hashes)
        }
    };
    // A checkpoint signed by a later epoch's key carries the certificates
    // that lead to it from the first key (SPEC §11).
    if let Some(chain) = proof_chain::chain_for(&r, &epochs, &hashes)? {
        bundle["key_chain"] = chain;
    }
    emit(&bundle, output.as_deref())?;
    Ok(0)
}

/// A malformed bundle, naming the field.
pub(super) struct Malformed(pub(super) String);

pub(super) fn bad(field: &str, why: &str) -> Malformed {
    Malformed(format!("{field}: {why}"))
}

pub(super) fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, Malformed> {
    v.get(name).ok_or_else(|| bad(name, "missing"))
}

pub(super) fn u64_field(v: &Value, name: &str) -> Result<u64, Malformed> {
    field(v, name)?
        .as_u64()
        .ok_or_else(|| bad(name, "not an unsigned integer"))
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, Malformed> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| bad(name, "not a string"))
}

fn opt_str<'a>(v: &'a Value, name: &str) -> Result<Option<&'a str>, Malformed> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(name, "not a string or null")),
    }
}

fn hex32(s: &str, name: &str) -> Result<Hash32, Malformed> {
    let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let mut out = [0u8; 32];
    if !ok || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(bad(name, "not 64 lowercase hex digits"));
    }
    Ok(out)
}

fn hash_field(v: &Value, name: &str) -> Result<Hash32, Malformed> {
    hex32(str_field(v, name)?, name)
}

fn hash_list(v: &Value, name: &str) -> Result<Vec<Hash32>, Malformed> {
    let arr = field(v, name)?
        .as_array()
        .ok_or_else(|| bad(name, "not an array"))?;
    arr.iter()
        .enumerate()
        .map(|(i, h)| {
            let f = format!("{name}[{i}]");
            h.as_str()
                .ok_or_else(|| bad(&f, "not a string"))
                .and_then(|s| hex32(s, &f))
        })
        .collect()
}

fn checkpoint_field(v: &Value, name: &str) -> Result<Checkpoint, Malformed> {
    Checkpoint::parse(str_field(v, name)?).map_err(|e| bad(name, &e.to_string()))
}

/// The entry hash (SPEC §4.2) recomputed from an entry as `cat -o json`
/// prints it; the payload hash is that of the payload's canonical JSON
/// (SPEC §4.1.1), the form writers store.
fn recompute_entry_hash(e: &Value) -> Result<Hash32, Malformed> {
    let f = |n: &str| format!("entry.{n}");
    let obj = e.as_object().ok_or_else(|| bad("entry", "not an object"))?;
    let seq = obj
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(&f("seq"), "missing or not an unsigned integer"))?;
    let ts = obj
        .get("ts")
        .and_then(Value::as_str)
        .and_then(crate::time::parse_rfc3339_ns)
        .ok_or_else(|| bad(&f("ts"), "missing or not RFC 3339 UTC time"))?;
    let parent = match obj.get("parent") {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            p.as_u64()
                .ok_or_else(|| bad(&f("parent"), "not an unsigned integer or null"))?,
        ),
    };
    let prev = hash_field(e, "prev").map_err(|m| Malformed(format!("entry.{}", m.0)))?;
    let kind = str_field(e, "kind").map_err(|m| Malformed(format!("entry.{}", m.0)))?;
    let actor = str_field(e, "actor").map_err(|m| Malformed(format!("entry.{}", m.0)))?;
    let opt = |n: &str| opt_str(e, n).map_err(|m| Malformed(format!("entry.{}", m.0)));
    let (job_id, step_id, agent) = (opt("job_id")?, opt("step_id")?, opt("agent")?);
    let payload = obj
        .get("payload")
        .ok_or_else(|| bad(&f("payload"), "missing"))?;
    let payload_bytes = crate::json::to_canonical(payload);
    // A payload erased by a redaction is withheld: null, with its hash.
    let stored_hash = match obj.get("payload_hash") {
        None => payload_hash(&payload_bytes),
        Some(h) if payload.is_null() => hex32(
            h.as_str()
                .ok_or_else(|| bad(&f("payload_hash"), "not a string"))?,
            &f("payload_hash"),
        )?,
        Some(_) => {
            return Err(bad(
                &f("payload_hash"),
                "given with a payload (only a withheld payload is given by its hash)",
            ))
        }
    };
    let view = EntryView {
        seq,
        ts_ns: ts,
        parent,
        prev,
        payload_hash: stored_hash,
        kind,
        job_id,
        step_id,
        agent,
        actor,
        payload: &payload_bytes,
    };
    Ok(view.hash())
}

pub(super) enum Verdict {
    Ok(String),
    Altered(String),
    Signature(String),
}

pub(super) fn signed(
    cp: &Checkpoint,
    log_id: &LogId,
    key: &VerifyingKey,
    name: &str,
) -> Option<Verdict> {
    // A checkpoint of another log is not a statement by this log's key
    // either: SIGNATURE, as `verify` judges one.
    let given = log_format::seal::key_id(log_id, key);
    cp.verify(log_id, key).err().map(|e| {
        // After a key rotation (SPEC §4.7) a later epoch's key signs the
        // checkpoint; a bundle does not carry the certificates to it.
        let hint = if cp.seal.key_id != given {
            format!(
                "; it is signed by key id {}, not by --key's key id {}: a bundle without key_chain verifies only against the key that signed it; if the log rotated its key, make the bundle again with `argusctl prove` (it carries the key.rotated certificates from the first key in key_chain) and verify it with the first key",
                hex::encode(cp.seal.key_id),
                hex::encode(given)
            )
        } else {
            String::new()
        };
        Verdict::Signature(format!("{name}: {e}{hint}"))
    })
}

/// Checks one entry of an inclusion bundle against a tree of `tree_size`
/// with `root`: `Some(reason)` when the item was altered.
pub(super) fn altered_item(
    item: &Value,
    tree_size: u64,
    root: &Hash32,
) -> Result<Option<String>, Malformed> {
    let seq = u64_field(item, "seq")?;
    let entry = field(item, "entry")?;
    let entry_hash = hash_field(item, "entry_hash")?;
    let leaf_hash = hash_field(item, "leaf_hash")?;
    let path = hash_list(item, "audit_path")?;
    let recomputed = recompute_entry_hash(entry)?;
    let stated = hash_field(entry, "hash").map_err(|m| Malformed(format!("entry.{}", m.0)))?;
    if entry.get("seq").and_then(Value::as_u64) != Some(seq) {
        return Ok(Some(format!("entry.seq is not the bundle's seq {seq}")));
    }
    if recomputed != entry_hash || stated != entry_hash {
        return Ok(Some(format!(
            "seq {seq}: entry hash recomputed from the entry's fields is {}, the bundle says {}",
            hex::encode(recomputed),
            hex::encode(entry_hash)
        )));
    }
    if merkle_leaf(&entry_hash) != leaf_hash {
        return Ok(Some(format!(
            "seq {seq}: leaf_hash is not the leaf hash of entry_hash"
        )));
    }
    if !proof::verify_inclusion(seq, tree_size, &entry_hash, &path, root) {
        return Ok(Some(format!(
            "audit_path does not lead from leaf {seq} to the checkpoint's root for tree size {tree_size}"
        )));
    }
    Ok(None)
}

fn check_inclusion(b: &Value, log_id: &LogId, key: &VerifyingKey) -> Result<Verdict, Malformed> {
    let seq = u64_field(b, "seq")?;
    let tree_size = u64_field(b, "tree_size")?;
    let cp = checkpoint_field(b, "checkpoint")?;
    // Malformed items are refused before any signature verdict.
    let altered = altered_item(b, tree_size, &cp.seal.root)?;
    let signers = match proof_chain::follow(b, log_id, key, &cp)? {
        Ok(s) => s,
        Err(v) => return Ok(v),
    };
    if let Some(v) = signers.judge(&cp, log_id, "checkpoint") {
        return Ok(v);
    }
    if cp.seal.tree_size != tree_size {
        return Ok(Verdict::Altered(format!(
            "tree_size {tree_size}, but the checkpoint is of size {}",
            cp.seal.tree_size
        )));
    }
    if let Some(why) = altered {
        return Ok(Verdict::Altered(why));
    }
    let withheld = if field(b, "entry")?.get("payload_hash").is_some() {
        " (its payload withheld: erased by a redaction)"
    } else {
        ""
    };
    Ok(Verdict::Ok(format!(
        "OK: entry seq {seq} ({}){withheld} is in the log {} of size {tree_size}, root {}, checkpoint {}",
        str_field(b, "entry_hash")?,
        hex::encode(log_id),
        hex::encode(cp.seal.root),
        signers.said(&cp)
    )))
}

/// A job bundle (`replay --proof`): one checkpoint, and for each entry of
/// the job's timeline an inclusion proof against it. Seqs must ascend, so
/// no entry can be shown twice or out of order.
fn check_job(b: &Value, log_id: &LogId, key: &VerifyingKey) -> Result<Verdict, Malformed> {
    let job_id = str_field(b, "job_id")?;
    let tree_size = u64_field(b, "tree_size")?;
    let cp = checkpoint_field(b, "checkpoint")?;
    let items = field(b, "entries")?
        .as_array()
        .ok_or_else(|| bad("entries", "not an array"))?;
    if items.is_empty() {
        return Err(bad("entries", "empty"));
    }
    let mut verdicts = Vec::with_capacity(items.len());
    let (mut last, mut own, mut withheld) = (None::<u64>, 0usize, 0usize);
    for (i, item) in items.iter().enumerate() {
        let at = |m: Malformed| Malformed(format!("entries[{i}].{}", m.0));
        let seq = u64_field(item, "seq").map_err(at)?;
        if last.is_some_and(|l| seq <= l) {
            return Err(bad(
                &format!("entries[{i}].seq"),
                "not above the seq before it",
            ));
        }
        last = Some(seq);
        let entry = field(item, "entry").map_err(at)?;
        if entry.get("job_id").and_then(Value::as_str) == Some(job_id) {
            own += 1;
        }
        withheld += usize::from(entry.get("payload_hash").is_some());
        verdicts.push(altered_item(item, tree_size, &cp.seal.root).map_err(at)?);
    }
    let signers = match proof_chain::follow(b, log_id, key, &cp)? {
        Ok(s) => s,
        Err(v) => return Ok(v),
    };
    if let Some(v) = signers.judge(&cp, log_id, "checkpoint") {
        return Ok(v);
    }
    if cp.seal.tree_size != tree_size {
        return Ok(Verdict::Altered(format!(
            "tree_size {tree_size}, but the checkpoint is of size {}",
            cp.seal.tree_size
        )));
    }
    if let Some(why) = verdicts.into_iter().flatten().next() {
        return Ok(Verdict::Altered(why));
    }
    Ok(Verdict::Ok(format!(
        "OK: {} entries ({own} of job {job_id:?}, {} decisions that touched it; {withheld} payloads withheld as erased) are in the log {} of size {tree_size}, root {}, checkpoint {}",
        items.len(),
        items.len() - own,
        hex::encode(log_id),
        hex::encode(cp.seal.root),
        signers.said(&cp)
    )))
}

fn check_consistency(b: &Value, log_id: &LogId, key: &VerifyingKey) -> Result<Verdict, Malformed> {
    let old_size = u64_field(b, "old_size")?;
    let old_root = hash_field(b, "old_root")?;
    let new_size = u64_field(b, "new_size")?;
    let new_root = hash_field(b, "new_root")?;
    let path = hash_list(b, "proof")?;
    let old = checkpoint_field(b, "old_checkpoint")?;
    let new = checkpoint_field(b, "new_checkpoint")?;
    // The chain is proved in the new tree. Its entries below the old size
    // are in the old tree too once the consistency proof holds (the old
    // tree is the new one's prefix), so the old checkpoint is judged by
    // the same table: only certificates below its size reach its range.
    let signers = match proof_chain::follow(b, log_id, key, &new)? {
        Ok(s) => s,
        Err(v) => return Ok(v),
    };
    for (cp, name) in [(&old, "old_checkpoint"), (&new, "new_checkpoint")] {
        if let Some(v) = signers.judge(cp, log_id, name) {
            return Ok(v);
        }
    }
    let altered = |s: &str| Ok(Verdict::Altered(s.to_string()));
    if (old.seal.tree_size, old.seal.root) != (old_size, old_root) {
        return altered("old_size/old_root are not the old checkpoint's");
    }
    if (new.seal.tree_size, new.seal.root) != (new_size, new_root) {
        return altered("new_size/new_root are not the new checkpoint's");
    }
    if !proof::verify_consistency(old_size, new_size, &old_root, &new_root, &path) {
        return altered(
            "proof does not show the old tree is a prefix of the new one (RFC 9162 §2.1.4.2)",
        );
    }
    Ok(Verdict::Ok(format!(
        "OK: the log {} of size {new_size} extends its checkpoint of size {old_size}; {}",
        hex::encode(log_id),
        match &signers {
            Signers::Given(_) => "both checkpoints signed by the pinned key".to_string(),
            Signers::Chain(_) => format!(
                "old checkpoint {}; new checkpoint {}",
                signers.said(&old),
                signers.said(&new)
            ),
        }
    )))
}

fn check(b: &Value, key: &VerifyingKey) -> Result<Verdict, Malformed> {
    if !b.is_object() {
        return Err(bad("bundle", "not a JSON object"));
    }
    if u64_field(b, "version")? != 1 {
        return Err(bad("version", "not 1"));
    }
    let log_id: LogId = {
        let s = str_field(b, "log_id")?;
        let mut id = [0u8; 16];
        let lower = s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if s.len() != 32 || !lower || hex::decode_to_slice(s, &mut id).is_err() {
            return Err(bad("log_id", "not 32 lowercase hex digits"));
        }
        id
    };
    match (b.get("seq"), b.get("old_size"), b.get("entries")) {
        (Some(_), None, None) => check_inclusion(b, &log_id, key),
        (None, Some(_), None) => check_consistency(b, &log_id, key),
        (None, None, Some(_)) => check_job(b, &log_id, key),
        _ => Err(bad(
            "bundle",
            "not exactly one of an inclusion bundle (seq), a consistency bundle (old_size) or a job bundle (entries)",
        )),
    }
}

/// A bundle's verdict as `verify-proof`'s exit code (0, 10 or 11), or why
/// it is malformed. No I/O: the fuzz targets and property tests drive this.
pub fn bundle_verdict(bytes: &[u8], key: &VerifyingKey) -> std::result::Result<i32, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    match check(&v, key) {
        Err(Malformed(m)) => Err(m),
        Ok(Verdict::Ok(_)) => Ok(0),
        Ok(Verdict::Altered(_)) => Ok(EXIT_ALTERED),
        Ok(Verdict::Signature(_)) => Ok(EXIT_SIGNATURE),
    }
}

pub fn verify_proof(bundle: &Path, key: &str) -> Result<i32> {
    let key = match parse_public_key(key) {
        Ok(k) => k,
        Err(e) => {
            eprint(&format!("argusctl: --key: {e}"));
            return Ok(EXIT_USAGE);
        }
    };
    let bytes = std::fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
    let mut out = Out::keeping_exit_code();
    let v: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            eprint(&format!("argusctl: {}: not JSON: {e}", bundle.display()));
            return Ok(EXIT_USAGE);
        }
    };
    let code = match check(&v, &key) {
        Err(Malformed(m)) => {
            eprint(&format!(
                "argusctl: {}: malformed bundle: {m}",
                bundle.display()
            ));
            EXIT_USAGE
        }
        Ok(Verdict::Ok(m)) => {
            out.line(&m);
            0
        }
        Ok(Verdict::Altered(m)) => {
            out.line(&format!("FAIL content: {m}"));
            EXIT_ALTERED
        }
        Ok(Verdict::Signature(m)) => {
            out.line(&format!("FAIL signature: {m}"));
            EXIT_SIGNATURE
        }
    };
    out.flush();
    Ok(code)
}
