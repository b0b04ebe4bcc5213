//! The `key_chain` of a proof bundle (SPEC §11): after a key rotation the
//! checkpoint is signed by a later epoch's key, which an auditor holding
//! only the first key cannot trust by itself. The bundle therefore carries
//! every `key.rotated` entry from epoch 1 to the signing epoch, each with
//! its inclusion proof against the same checkpoint, so the auditor follows
//! the certificates from the first key offline, exactly as `verify` does
//! over the whole log (SPEC §4.7).
use super::proof::{altered_item, bad, field, u64_field, Malformed, Verdict};
use crate::log::epochs;
use crate::log::reader::LogReader;
use crate::log::redactions::Redactions;
use anyhow::Result;
use ed25519_dalek::VerifyingKey;
use log_format::{Checkpoint, Hash32, KeyEpochs, LogId};
use serde_json::Value;

/// The log's epochs, followed from its first key by the certificates in
/// the log (not argus.json's list, which the writer keeps for itself).
pub(super) fn followed(r: &LogReader) -> Result<KeyEpochs> {
    Ok(epochs::read(&r.dir, r.log_id, r.meta.public_key()?)?)
}

/// The chain for a checkpoint of `hashes.len()` entries: the `key.rotated`
/// entries of epochs 1..=the signing epoch, each with its inclusion proof
/// in the tree over `hashes`. `None` when epoch 0 signs (a log that never
/// rotated, or a checkpoint from before the rotation): such bundles stay
/// byte for byte what they were.
pub(super) fn chain_for(
    r: &LogReader,
    epochs: &KeyEpochs,
    hashes: &[Hash32],
) -> Result<Option<Value>> {
    let signer = epochs.for_tree_size(hashes.len() as u64).epoch;
    let certs: Vec<u64> = epochs
        .all()
        .iter()
        .take_while(|e| e.epoch <= signer)
        .filter_map(|e| e.cert_seq)
        .collect();
    let Some(&lowest) = certs.first() else {
        return Ok(None);
    };
    let redactions = Redactions::scan(r, lowest)?;
    let items = certs
        .iter()
        .map(|s| super::proof::inclusion_item(r, hashes, *s, &redactions))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Value::Array(items)))
}

/// How a bundle's checkpoints are to be judged: against the one key given
/// (no chain), or against the epochs its chain certifies from the first key.
pub(super) enum Signers {
    /// No `key_chain`: the checkpoint must be signed by `--key` itself.
    Given(VerifyingKey),
    /// A chain from `--key` as epoch 0's key.
    Chain(KeyEpochs),
}

impl Signers {
    /// `Some(verdict)` when `cp` is not signed by the key that may sign a
    /// checkpoint of its size.
    pub(super) fn judge(&self, cp: &Checkpoint, log_id: &LogId, name: &str) -> Option<Verdict> {
        match self {
            Signers::Given(key) => super::proof::signed(cp, log_id, key, name),
            Signers::Chain(epochs) => {
                let size = cp.seal.tree_size;
                let ep = epochs.for_tree_size(size);
                cp.verify(log_id, &ep.key).err().map(|e| {
                    Verdict::Signature(format!(
                        "{name}: seq {} lies in epoch {} (key id {}, certified by key_chain from the first key), which must sign a checkpoint of size {size}; the checkpoint's key line names key id {}: {e}",
                        size.saturating_sub(1),
                        ep.epoch,
                        hex::encode(ep.key_id),
                        hex::encode(cp.seal.key_id),
                    ))
                })
            }
        }
    }

    /// Words for the OK line: who signed.
    pub(super) fn said(&self, cp: &Checkpoint) -> String {
        match self {
            Signers::Given(_) => "signed by the pinned key".into(),
            Signers::Chain(epochs) => {
                let ep = epochs.for_tree_size(cp.seal.tree_size);
                if ep.epoch == 0 {
                    return "signed by the pinned (first) key".into();
                }
                format!(
                    "signed by epoch {}'s key (key id {}), certified from the pinned key by the key.rotated entries in key_chain",
                    ep.epoch,
                    hex::encode(ep.key_id),
                )
            }
        }
    }
}

/// Reads a bundle's `key_chain` against the checkpoint `cp` (the new one of
/// a consistency bundle): malformed items first (2), then, item by item,
/// its inclusion in `cp`'s tree (10) and its certificate from the epoch
/// before (11). `Ok(Err(verdict))` names the first chain item that fails.
pub(super) fn follow(
    b: &Value,
    log_id: &LogId,
    first: &VerifyingKey,
    cp: &Checkpoint,
) -> Result<std::result::Result<Signers, Verdict>, Malformed> {
    let Some(chain) = b.get("key_chain") else {
        return Ok(Ok(Signers::Given(*first)));
    };
    let items = chain
        .as_array()
        .ok_or_else(|| bad("key_chain", "not an array"))?;
    let (size, root) = (cp.seal.tree_size, cp.seal.root);
    let mut checked = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |m: Malformed| Malformed(format!("key_chain[{i}].{}", m.0));
        let seq = u64_field(item, "seq").map_err(at)?;
        let entry = field(item, "entry").map_err(at)?;
        let text = |n: &str| {
            entry
                .get(n)
                .and_then(Value::as_str)
                .ok_or_else(|| Malformed(format!("key_chain[{i}].entry.{n}: not a string")))
        };
        let (kind, actor) = (text("kind")?, text("actor")?);
        let payload = field(entry, "payload")
            .map_err(|m| Malformed(format!("key_chain[{i}].entry.{}", m.0)))?;
        let altered = altered_item(item, size, &root).map_err(at)?;
        checked.push((
            seq,
            kind,
            actor,
            crate::json::to_canonical(payload),
            altered,
        ));
    }
    let mut epochs = KeyEpochs::new(*log_id, *first);
    for (i, (seq, kind, actor, payload, altered)) in checked.into_iter().enumerate() {
        if let Some(why) = altered {
            return Ok(Err(Verdict::Altered(format!(
                "key_chain[{i}] (seq {seq}) is not in the checkpoint's tree: {why}"
            ))));
        }
        match epochs.accept(seq, kind, actor, &payload) {
            Ok(true) => {}
            Ok(false) => {
                return Ok(Err(Verdict::Signature(format!(
                    "key_chain[{i}] (seq {seq}) is a {kind:?} entry, not a key.rotated certificate"
                ))))
            }
            Err(e) => {
                let hint = if i == 0 {
                    " (a bundle with key_chain is verified from the log's first key, epoch 0's: pass that as --key)"
                } else {
                    ""
                };
                return Ok(Err(Verdict::Signature(format!(
                    "key_chain[{i}]: {e}{hint}"
                ))));
            }
        }
    }
    Ok(Ok(Signers::Chain(epochs)))
}
