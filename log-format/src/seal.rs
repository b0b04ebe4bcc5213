//! Seals and checkpoints. A seal's signature is over the exact text of a C2SP
//! `tlog-checkpoint` note body, so the seal stored in the log and the
//! checkpoint `argusctl checkpoint` prints are one signature, not two.
use crate::error::FormatError;
use crate::hash::Hash32;
use crate::segment::arr;
use crate::LogId;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

pub const SEAL_LEN: usize = 148;
/// 4-byte key id, computed as C2SP signed-note computes an Ed25519 key hash.
pub type KeyId = [u8; 4];

/// The checkpoint origin line and signed-note key name for a log.
pub fn origin(log_id: &LogId) -> String {
    format!("argus.log/{}", hex::encode(log_id))
}

/// SHA-256(name || 0x0A || 0x01 || public key)[..4], per C2SP signed-note.
pub fn key_id(log_id: &LogId, key: &VerifyingKey) -> KeyId {
    let mut h = Sha256::new();
    h.update(origin(log_id).as_bytes());
    h.update([0x0A, 0x01]);
    h.update(key.as_bytes());
    arr(&h.finalize()[..4])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub tree_size: u64,
    pub root: Hash32,
    /// Entry hash of seq `tree_size - 1`, zero when the tree is empty.
    pub head: Hash32,
    pub ts_ns: u64,
    pub key_id: KeyId,
    pub signature: [u8; 64],
}

/// The signed text: origin, size, base64 root, then two extension lines
/// binding the chain head, the time and the key id.
pub fn note_body(
    log_id: &LogId,
    tree_size: u64,
    root: &Hash32,
    head: &Hash32,
    ts_ns: u64,
    key_id: &KeyId,
) -> String {
    format!(
        "{}\n{}\n{}\nchain {}\ntime {} key {}\n",
        origin(log_id),
        tree_size,
        B64.encode(root),
        hex::encode(head),
        ts_ns,
        hex::encode(key_id)
    )
}

impl Seal {
    pub fn sign(
        log_id: &LogId,
        key: &SigningKey,
        tree_size: u64,
        root: Hash32,
        head: Hash32,
        ts_ns: u64,
    ) -> Self {
        let kid = key_id(log_id, &key.verifying_key());
        let body = note_body(log_id, tree_size, &root, &head, ts_ns, &kid);
        let signature = key.sign(body.as_bytes()).to_bytes();
        Self {
            tree_size,
            root,
            head,
            ts_ns,
            key_id: kid,
            signature,
        }
    }

    pub fn note_body(&self, log_id: &LogId) -> String {
        note_body(
            log_id,
            self.tree_size,
            &self.root,
            &self.head,
            self.ts_ns,
            &self.key_id,
        )
    }

    /// Signatures of record are checked with `verify_strict` (no malleable
    /// or small-order encodings).
    pub fn verify(&self, log_id: &LogId, key: &VerifyingKey) -> bool {
        let sig = Signature::from_bytes(&self.signature);
        key.verify_strict(self.note_body(log_id).as_bytes(), &sig)
            .is_ok()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEAL_LEN);
        out.extend_from_slice(&self.tree_size.to_le_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&self.ts_ns.to_le_bytes());
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&self.signature);
        out
    }

    pub fn decode(body: &[u8], offset: u64) -> Result<Self, FormatError> {
        if body.len() != SEAL_LEN {
            return Err(FormatError::Malformed {
                what: "seal",
                offset,
                reason: format!("{} bytes, expected {SEAL_LEN}", body.len()),
            });
        }
        Ok(Self {
            tree_size: u64::from_le_bytes(arr(&body[0..8])),
            root: arr(&body[8..40]),
            head: arr(&body[40..72]),
            ts_ns: u64::from_le_bytes(arr(&body[72..80])),
            key_id: arr(&body[80..84]),
            signature: arr(&body[84..148]),
        })
    }

    /// The full signed note: body, blank line, one signature line.
    pub fn checkpoint_text(&self, log_id: &LogId) -> String {
        let mut sig = Vec::with_capacity(68);
        sig.extend_from_slice(&self.key_id);
        sig.extend_from_slice(&self.signature);
        format!(
            "{}\n\u{2014} {} {}\n",
            self.note_body(log_id),
            origin(log_id),
            B64.encode(sig)
        )
    }
}

/// A checkpoint parsed back from its text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_id: LogId,
    pub seal: Seal,
}

fn bad(line: usize, reason: impl Into<String>) -> FormatError {
    FormatError::Malformed {
        what: "checkpoint",
        offset: line as u64,
        reason: reason.into(),
    }
}

impl Checkpoint {
    /// Parses a checkpoint note. The `offset` in errors is the 1-based line.
    /// The signature is *not* checked here; call `seal.verify`.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let (body, sigs) = text
            .split_once("\n\n")
            .ok_or_else(|| bad(0, "no blank line between note body and signatures"))?;
        let lines: Vec<&str> = body.lines().collect();
        if lines.len() != 5 {
            return Err(bad(
                0,
                format!("expected 5 body lines, found {}", lines.len()),
            ));
        }
        let log_hex = lines[0]
            .strip_prefix("argus.log/")
            .ok_or_else(|| bad(1, "origin must be argus.log/<log id>"))?;
        let log_id: LogId = hex::decode(log_hex)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(1, "log id is not 32 hex digits"))?;
        let tree_size: u64 = lines[1]
            .parse()
            .map_err(|_| bad(2, "tree size is not a decimal integer"))?;
        let root: Hash32 = B64
            .decode(lines[2])
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(3, "root is not base64 of 32 bytes"))?;
        let head: Hash32 = lines[3]
            .strip_prefix("chain ")
            .and_then(|h| hex::decode(h).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(4, "expected `chain <64 hex digits>`"))?;
        let mut parts = lines[4].split(' ');
        let (ts_ns, key_hex) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("time"), Some(ts), Some("key"), Some(k)) => (
                ts.parse::<u64>()
                    .map_err(|_| bad(5, "time is not an integer"))?,
                k,
            ),
            _ => return Err(bad(5, "expected `time <ns> key <8 hex digits>`")),
        };
        let key_id: KeyId = hex::decode(key_hex)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(5, "key id is not 8 hex digits"))?;
        let want_name = origin(&log_id);
        let signature = sigs
            .lines()
            .filter_map(|l| l.strip_prefix("\u{2014} "))
            .filter_map(|l| l.split_once(' '))
            .filter(|(name, _)| *name == want_name)
            .filter_map(|(_, b)| B64.decode(b).ok())
            .filter(|raw| raw.len() == 68 && raw[..4] == key_id)
            .map(|raw| arr::<64>(&raw[4..]))
            .next()
            .ok_or_else(|| bad(6, "no signature line for this log's key id"))?;
        Ok(Self {
            log_id,
            seal: Seal {
                tree_size,
                root,
                head,
                ts_ns,
                key_id,
                signature,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_text_round_trips_and_verifies() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let log_id = [3u8; 16];
        let seal = Seal::sign(&log_id, &key, 5, [1; 32], [2; 32], 42);
        let text = seal.checkpoint_text(&log_id);
        let cp = Checkpoint::parse(&text).unwrap();
        assert_eq!(cp.seal, seal);
        assert!(cp.seal.verify(&log_id, &key.verifying_key()));
        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert!(!cp.seal.verify(&log_id, &other.verifying_key()));
        assert!(!cp.seal.verify(&[4u8; 16], &key.verifying_key()));
    }
}
