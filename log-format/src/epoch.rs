//! Key epochs (SPEC §4.7): which key may sign which seals.
//!
//! A log starts with the pinned key (epoch 0). A `key.rotated` entry
//! certifies the next epoch's key with a signature by the outgoing key, so
//! a verifier that trusts only the first key can follow the chain of
//! certificates to every later key. Each key signs only the seals whose
//! last covered seq lies in its epoch's range: a key stolen today cannot
//! re-sign yesterday's seals (the later key is not yesterday's epoch key),
//! and an erased old key that leaked before erasure cannot sign anything
//! after its epoch ended.
use crate::seal::{key_id, KeyId};
use crate::LogId;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Map, Value};

/// The entry kind that certifies the next epoch's key.
pub const ROTATION_KIND: &str = "key.rotated";
/// The only actor that may write `ROTATION_KIND` (the `argusctl key rotate`
/// command writes it through the writer as Argus itself).
pub const ROTATION_ACTOR: &str = "argus";
/// Domain separation: a certificate can never be mistaken for a seal's
/// note signature or any other signature by the same key.
pub const ROTATION_DOMAIN: &[u8] = b"argus key-rotation v1\n";

/// One epoch: its key, and the first seq whose seal it may sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEpoch {
    pub epoch: u64,
    /// The first seq of this epoch's range; the range ends where the next
    /// epoch's begins.
    pub from_seq: u64,
    pub key: VerifyingKey,
    pub key_id: KeyId,
    /// Seq of the `key.rotated` entry that certified this key (`None` for
    /// epoch 0, the pinned key).
    pub cert_seq: Option<u64>,
}

/// The message both the outgoing key (the certificate) and the incoming
/// key (proof of possession) sign: domain || log id || epoch (u64 LE) ||
/// new public key || previous key id || from_seq (u64 LE).
pub fn rotation_message(
    log_id: &LogId,
    epoch: u64,
    new_key: &VerifyingKey,
    prev_key_id: &KeyId,
    from_seq: u64,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(ROTATION_DOMAIN.len() + 16 + 8 + 32 + 4 + 8);
    m.extend_from_slice(ROTATION_DOMAIN);
    m.extend_from_slice(log_id);
    m.extend_from_slice(&epoch.to_le_bytes());
    m.extend_from_slice(new_key.as_bytes());
    m.extend_from_slice(prev_key_id);
    m.extend_from_slice(&from_seq.to_le_bytes());
    m
}

/// The payload of the `key.rotated` entry at `seq` that hands the log from
/// `old` (the key of epoch `epoch - 1`) to `new`, as a JSON object.
pub fn rotation_payload(
    log_id: &LogId,
    epoch: u64,
    seq: u64,
    old: &SigningKey,
    new: &SigningKey,
) -> Map<String, Value> {
    let new_pk = new.verifying_key();
    let prev = key_id(log_id, &old.verifying_key());
    let from_seq = seq + 1;
    let msg = rotation_message(log_id, epoch, &new_pk, &prev, from_seq);
    let mut p = Map::new();
    p.insert("epoch".into(), epoch.into());
    p.insert("public_key".into(), hex::encode(new_pk.as_bytes()).into());
    p.insert("key_id".into(), hex::encode(key_id(log_id, &new_pk)).into());
    p.insert("prev_key_id".into(), hex::encode(prev).into());
    p.insert("from_seq".into(), from_seq.into());
    p.insert("cert".into(), hex::encode(old.sign(&msg).to_bytes()).into());
    p.insert(
        "possession".into(),
        hex::encode(new.sign(&msg).to_bytes()).into(),
    );
    p
}

/// Why a `key.rotated` entry does not certify a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    #[error("key.rotated at seq {seq} is written by {actor:?}, not by argus (key rotation is `argusctl key rotate`'s alone)")]
    NotArgus { seq: u64, actor: String },
    #[error("key.rotated at seq {seq}: {reason}")]
    Malformed { seq: u64, reason: String },
    #[error("key.rotated at seq {seq} opens epoch {found}, but the next epoch is {expected}")]
    Epoch { seq: u64, found: u64, expected: u64 },
    #[error("key.rotated at seq {seq} names previous key id {found}, but epoch {epoch}'s key id is {expected}")]
    PrevKeyId {
        seq: u64,
        epoch: u64,
        found: String,
        expected: String,
    },
    #[error("key.rotated at seq {seq} starts its epoch at seq {from_seq}, not at the next seq {expected}")]
    FromSeq {
        seq: u64,
        from_seq: u64,
        expected: u64,
    },
    #[error("key.rotated at seq {seq}: key id {found} is not the new key's id {expected}")]
    KeyId {
        seq: u64,
        found: String,
        expected: String,
    },
    #[error("key.rotated at seq {seq}: the certificate is not signed by epoch {epoch}'s key (key id {key_id}): forged or altered")]
    Cert {
        seq: u64,
        epoch: u64,
        key_id: String,
    },
    #[error("key.rotated at seq {seq}: the proof of possession is not signed by the new key")]
    Possession { seq: u64 },
}

impl RotationError {
    pub fn seq(&self) -> u64 {
        match self {
            Self::NotArgus { seq, .. }
            | Self::Malformed { seq, .. }
            | Self::Epoch { seq, .. }
            | Self::PrevKeyId { seq, .. }
            | Self::FromSeq { seq, .. }
            | Self::KeyId { seq, .. }
            | Self::Cert { seq, .. }
            | Self::Possession { seq } => *seq,
        }
    }
}

/// The epochs of one log, in order, each certified by the one before.
#[derive(Debug, Clone)]
pub struct KeyEpochs {
    log_id: LogId,
    epochs: Vec<KeyEpoch>,
}

impl KeyEpochs {
    /// A log's epochs before any rotation is read: only the pinned key.
    pub fn new(log_id: LogId, first: VerifyingKey) -> Self {
        Self {
            log_id,
            epochs: vec![KeyEpoch {
                epoch: 0,
                from_seq: 0,
                key_id: key_id(&log_id, &first),
                key: first,
                cert_seq: None,
            }],
        }
    }

    pub fn log_id(&self) -> &LogId {
        &self.log_id
    }

    pub fn all(&self) -> &[KeyEpoch] {
        &self.epochs
    }

    pub fn first(&self) -> &KeyEpoch {
        &self.epochs[0]
    }

    pub fn current(&self) -> &KeyEpoch {
        // Never empty: `new` makes epoch 0.
        &self.epochs[self.epochs.len() - 1]
    }

    /// The epoch whose key must sign a seal of `tree_size` entries: the one
    /// whose range holds seq `tree_size - 1` (epoch 0 for the empty tree).
    pub fn for_tree_size(&self, tree_size: u64) -> &KeyEpoch {
        epoch_for(&self.epochs, tree_size)
    }

    /// The key that checks seals, by tree size.
    pub fn seal_key(&self) -> crate::SealKey<'_> {
        crate::SealKey::with_epochs(self.log_id, &self.epochs[0], &self.epochs[1..])
    }

    /// Adds an epoch as some record other than the log claims it (the
    /// writer's metadata), without any certificate: for judging torn tails
    /// and for the writer, never for verification. False (and nothing
    /// added) unless it is the next epoch and starts after the current one.
    pub fn push_unverified(&mut self, epoch: u64, from_seq: u64, key: VerifyingKey) -> bool {
        let cur = self.current();
        if Some(epoch) != cur.epoch.checked_add(1) || from_seq <= cur.from_seq {
            return false;
        }
        self.epochs.push(KeyEpoch {
            epoch,
            from_seq,
            key_id: key_id(&self.log_id, &key),
            key,
            cert_seq: from_seq.checked_sub(1),
        });
        true
    }

    /// Reads the entry at `seq` if it is a `key.rotated` entry: checks it
    /// certifies the next epoch's key with the current key, and adds that
    /// epoch. Other kinds are ignored (`Ok(false)`).
    pub fn accept(
        &mut self,
        seq: u64,
        kind: &str,
        actor: &str,
        payload: &[u8],
    ) -> Result<bool, RotationError> {
        if kind != ROTATION_KIND {
            return Ok(false);
        }
        let next = self.check(seq, actor, payload)?;
        self.epochs.push(next);
        Ok(true)
    }

    fn check(&self, seq: u64, actor: &str, payload: &[u8]) -> Result<KeyEpoch, RotationError> {
        if actor != ROTATION_ACTOR {
            return Err(RotationError::NotArgus {
                seq,
                actor: actor.to_string(),
            });
        }
        let bad = |reason: String| RotationError::Malformed { seq, reason };
        let v: Value = serde_json::from_slice(payload)
            .map_err(|e| bad(format!("payload is not JSON ({e})")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("payload is not an object".into()))?;
        let int = |k: &str| {
            obj.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(format!("{k} is not a non-negative integer")))
        };
        let bytes = |k: &str, n: usize| {
            obj.get(k)
                .and_then(Value::as_str)
                .filter(|s| s.len() == 2 * n && !s.bytes().any(|c| c.is_ascii_uppercase()))
                .and_then(|s| hex::decode(s).ok())
                .ok_or_else(|| bad(format!("{k} is not {} lowercase hex digits", 2 * n)))
        };
        let cur = self.current();
        let epoch = int("epoch")?;
        if Some(epoch) != cur.epoch.checked_add(1) {
            return Err(RotationError::Epoch {
                seq,
                found: epoch,
                expected: cur.epoch + 1,
            });
        }
        let from_seq = int("from_seq")?;
        if Some(from_seq) != seq.checked_add(1) {
            return Err(RotationError::FromSeq {
                seq,
                from_seq,
                expected: seq + 1,
            });
        }
        let prev = bytes("prev_key_id", 4)?;
        if prev.as_slice() != cur.key_id {
            return Err(RotationError::PrevKeyId {
                seq,
                epoch: cur.epoch,
                found: hex::encode(&prev),
                expected: hex::encode(cur.key_id),
            });
        }
        let pk: [u8; 32] = crate::segment::arr(&bytes("public_key", 32)?);
        let new_key = VerifyingKey::from_bytes(&pk)
            .ok()
            .filter(|k| !k.is_weak())
            .ok_or_else(|| bad("public_key is not a usable Ed25519 public key".into()))?;
        let new_id = key_id(&self.log_id, &new_key);
        let kid = bytes("key_id", 4)?;
        if kid.as_slice() != new_id {
            return Err(RotationError::KeyId {
                seq,
                found: hex::encode(&kid),
                expected: hex::encode(new_id),
            });
        }
        let msg = rotation_message(&self.log_id, epoch, &new_key, &cur.key_id, from_seq);
        let sig = |k: &str| bytes(k, 64).map(|b| Signature::from_bytes(&crate::segment::arr(&b)));
        if cur.key.verify_strict(&msg, &sig("cert")?).is_err() {
            return Err(RotationError::Cert {
                seq,
                epoch: cur.epoch,
                key_id: hex::encode(cur.key_id),
            });
        }
        if new_key.verify_strict(&msg, &sig("possession")?).is_err() {
            return Err(RotationError::Possession { seq });
        }
        Ok(KeyEpoch {
            epoch,
            from_seq,
            key: new_key,
            key_id: new_id,
            cert_seq: Some(seq),
        })
    }
}

/// The epoch in `epochs` (in order, the first from seq 0) whose range
/// holds seq `tree_size - 1`.
fn epoch_for(epochs: &[KeyEpoch], tree_size: u64) -> &KeyEpoch {
    let last = tree_size.saturating_sub(1);
    let i = epochs.partition_point(|e| e.from_seq <= last);
    &epochs[i.saturating_sub(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: LogId = [9; 16];

    fn k(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn payload(p: &Map<String, Value>) -> Vec<u8> {
        serde_json::to_vec(p).unwrap()
    }

    #[test]
    fn a_chain_of_rotations_is_followed_and_ranges_pick_the_key() {
        let mut e = KeyEpochs::new(LOG, k(1).verifying_key());
        let p = rotation_payload(&LOG, 1, 10, &k(1), &k(2));
        assert!(e.accept(10, ROTATION_KIND, "argus", &payload(&p)).unwrap());
        let p = rotation_payload(&LOG, 2, 20, &k(2), &k(3));
        assert!(e.accept(20, ROTATION_KIND, "argus", &payload(&p)).unwrap());
        assert_eq!(e.all().len(), 3);
        assert_eq!(e.for_tree_size(0).epoch, 0);
        assert_eq!(e.for_tree_size(11).epoch, 0, "the seal covering seq 10");
        assert_eq!(e.for_tree_size(12).epoch, 1);
        assert_eq!(e.for_tree_size(21).epoch, 1);
        assert_eq!(e.for_tree_size(22).epoch, 2);
        assert_eq!(e.for_tree_size(u64::MAX).epoch, 2);
    }

    #[test]
    fn a_cert_not_by_the_outgoing_key_is_refused() {
        let mut e = KeyEpochs::new(LOG, k(1).verifying_key());
        // Signed by the new key itself, claiming the old key's id.
        let mut p = rotation_payload(&LOG, 1, 10, &k(2), &k(2));
        p.insert(
            "prev_key_id".into(),
            hex::encode(key_id(&LOG, &k(1).verifying_key())).into(),
        );
        let err = e
            .accept(10, ROTATION_KIND, "argus", &payload(&p))
            .unwrap_err();
        assert!(matches!(err, RotationError::Cert { .. }), "{err}");
        let p = rotation_payload(&LOG, 1, 10, &k(1), &k(2));
        let err = e
            .accept(11, ROTATION_KIND, "argus", &payload(&p))
            .unwrap_err();
        assert!(matches!(err, RotationError::FromSeq { .. }), "{err}");
        let err = e
            .accept(10, ROTATION_KIND, "agent:uid:1:x", &payload(&p))
            .unwrap_err();
        assert!(matches!(err, RotationError::NotArgus { .. }), "{err}");
        let mut q = p.clone();
        q.insert("possession".into(), p["cert"].clone());
        let err = e
            .accept(10, ROTATION_KIND, "argus", &payload(&q))
            .unwrap_err();
        assert!(matches!(err, RotationError::Possession { .. }), "{err}");
        assert_eq!(e.all().len(), 1, "nothing accepted");
    }
}
