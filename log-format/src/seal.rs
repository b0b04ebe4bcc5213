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

mod checkpoint;
mod cosign;
pub use checkpoint::{Checkpoint, CheckpointError, NoteSignature, MAX_SIGNATURES};
pub use cosign::{
    cosign, cosigned_message, cosigner_key_id, Cosigned, Cosigner, VkeyError, COSIGNATURE_TYPE,
};

pub const SEAL_LEN: usize = 148;
/// 4-byte key id, computed as C2SP signed-note computes an Ed25519 key hash.
pub type KeyId = [u8; 4];

/// The checkpoint origin line and signed-note key name for a log.
pub fn origin(log_id: &LogId) -> String {
    let mut s = String::with_capacity(42);
    push_origin(&mut s, log_id);
    s
}

fn push_origin(s: &mut String, log_id: &LogId) {
    s.push_str("argus.log/");
    push_hex(s, log_id);
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
    use std::fmt::Write;
    // Built in place: verify makes one of these per seal, and a log with a
    // seal per entry spent more on `format!` and `hex::encode` than on
    // the SHA-512 over the result.
    let mut s = String::with_capacity(NOTE_BODY_CAPACITY);
    push_origin(&mut s, log_id);
    // Writing into a String cannot fail.
    let _ = writeln!(s, "\n{tree_size}");
    B64.encode_string(root, &mut s);
    s.push_str("\nchain ");
    push_hex(&mut s, head);
    let _ = write!(s, "\ntime {ts_ns} key ");
    push_hex(&mut s, key_id);
    s.push('\n');
    s
}

/// Longest note body: origin (42), size (20), root (44), chain (70), time
/// and key (37), newlines.
const NOTE_BODY_CAPACITY: usize = 224;

fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The text every seal ever signed was made with `format!`; the
    /// in-place build must give the same bytes.
    #[test]
    fn note_body_is_the_format_it_always_was() {
        for (i, (size, ts)) in [(0u64, 0u64), (1, 9), (10, 1_700_000_000_123_456_789)]
            .into_iter()
            .chain([(u64::MAX, u64::MAX), (12345, 100)])
            .enumerate()
        {
            let log_id = [i as u8 ^ 0xa5; 16];
            let root = [0x3c ^ i as u8; 32];
            let head = [0xf0 | i as u8; 32];
            let kid = [0x01, 0xab, 0x7f, i as u8];
            let want = format!(
                "argus.log/{}\n{}\n{}\nchain {}\ntime {} key {}\n",
                hex::encode(log_id),
                size,
                B64.encode(root),
                hex::encode(head),
                ts,
                hex::encode(kid)
            );
            let got = note_body(&log_id, size, &root, &head, ts, &kid);
            assert_eq!(got, want);
            assert!(got.len() <= NOTE_BODY_CAPACITY, "{}", got.len());
        }
    }
}
