//! Witness cosignatures (C2SP `tlog-cosignature`, version 1).
//!
//! A log key alone cannot stop its holder from showing two parties two
//! different histories, or from rolling one party back. A witness is an
//! independent key that cosigns a checkpoint only after checking it extends
//! the last one it cosigned; a checkpoint carrying the log's signature and
//! cosignatures from witnesses a verifier trusts is one that every one of
//! those witnesses was shown. The format is C2SP's so that existing witness
//! and verifier tooling reads Argus checkpoints unchanged.
use super::{Checkpoint, KeyId, NoteSignature};
use crate::segment::arr;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// C2SP signature type of a timestamped Ed25519 cosignature.
pub const COSIGNATURE_TYPE: u8 = 0x04;

/// Key id of witness `name`: SHA-256(name || 0x0A || 0x04 || key)[..4].
pub fn cosigner_key_id(name: &str, key: &VerifyingKey) -> KeyId {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, COSIGNATURE_TYPE]);
    h.update(key.as_bytes());
    arr(&h.finalize()[..4])
}

/// What a cosignature signs: a header binding the time, then the note
/// text exactly as the log signed it.
pub fn cosigned_message(note_text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{note_text}")
}

/// A witness's identity as a verifier pins it: its name and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigner {
    pub name: String,
    pub key: VerifyingKey,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VkeyError {
    #[error("expected NAME+KEYID+KEY (a C2SP verifier key, as `argusctl witness` prints it)")]
    Shape,
    #[error("the name {0:?} is empty or holds a space or `+`")]
    Name(String),
    #[error("the key part is not base64 of 0x04 followed by a 32-byte Ed25519 key")]
    Key,
    #[error("the key id {found} does not match the name and key (expected {want})")]
    KeyId { found: String, want: String },
}

impl Cosigner {
    /// Parses `name+<8 hex>+<base64(0x04 || key)>`, checking the key id so a
    /// typo in any part is caught rather than matching nothing.
    pub fn parse_vkey(s: &str) -> Result<Self, VkeyError> {
        // The key part is base64, which may itself hold `+`.
        let mut parts = s.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(VkeyError::Shape);
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(VkeyError::Name(name.into()));
        }
        let raw = B64.decode(key).map_err(|_| VkeyError::Key)?;
        let Some((&COSIGNATURE_TYPE, pk)) = raw.split_first() else {
            return Err(VkeyError::Key);
        };
        let pk: [u8; 32] = pk.try_into().map_err(|_| VkeyError::Key)?;
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| VkeyError::Key)?;
        let want = hex::encode(cosigner_key_id(name, &key));
        if !id.eq_ignore_ascii_case(&want) {
            return Err(VkeyError::KeyId {
                found: id.into(),
                want,
            });
        }
        Ok(Self {
            name: name.into(),
            key,
        })
    }

    pub fn vkey(&self) -> String {
        let mut raw = vec![COSIGNATURE_TYPE];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id()),
            B64.encode(raw)
        )
    }

    pub fn key_id(&self) -> KeyId {
        cosigner_key_id(&self.name, &self.key)
    }

    /// Judges this witness's lines on `cp`. Lines by other keys are not
    /// its business; one of its own that does not verify is a forgery or a
    /// corruption, and outweighs any valid one.
    pub fn check(&self, cp: &Checkpoint) -> Cosigned {
        let kid = self.key_id();
        let mut found = Cosigned::Absent;
        for g in cp
            .signatures
            .iter()
            .filter(|g| g.name == self.name && g.key_id == kid)
        {
            match verify_line(g, &cp.text, &self.key) {
                Some(time) => {
                    if let Cosigned::Absent = found {
                        found = Cosigned::Valid { time, line: g.line };
                    }
                }
                None => return Cosigned::Invalid { line: g.line },
            }
        }
        found
    }
}

/// The verdict of one witness on one checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cosigned {
    Valid { time: u64, line: usize },
    Invalid { line: usize },
    Absent,
}

fn verify_line(g: &NoteSignature, text: &str, key: &VerifyingKey) -> Option<u64> {
    let (time, sig) = g.signature.split_at_checked(8)?;
    let time = u64::from_be_bytes(time.try_into().ok()?);
    let sig = Signature::from_slice(sig).ok()?;
    key.verify_strict(cosigned_message(text, time).as_bytes(), &sig)
        .ok()
        .map(|()| time)
}

/// The signature line a witness adds to `note_text`, final `\n` included.
pub fn cosign(note_text: &str, name: &str, key: &SigningKey, time: u64) -> String {
    let sig = key.sign(cosigned_message(note_text, time).as_bytes());
    let mut raw = Vec::with_capacity(76);
    raw.extend_from_slice(&cosigner_key_id(name, &key.verifying_key()));
    raw.extend_from_slice(&time.to_be_bytes());
    raw.extend_from_slice(&sig.to_bytes());
    format!("\u{2014} {name} {}\n", B64.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::Seal;

    fn checkpoint() -> (Checkpoint, String) {
        let log_key = SigningKey::from_bytes(&[7; 32]);
        let seal = Seal::sign(&[1; 16], &log_key, 3, [2; 32], [3; 32], 1_000);
        let text = seal.checkpoint_text(&[1; 16]);
        (Checkpoint::parse(&text).unwrap(), text)
    }

    #[test]
    fn a_cosignature_verifies_and_survives_a_round_trip() {
        let (cp, text) = checkpoint();
        let w = SigningKey::from_bytes(&[9; 32]);
        let line = cosign(&cp.text, "witness.example/w1", &w, 1_700_000_000);
        let cosigned = Checkpoint::parse(&format!("{text}{line}")).unwrap();
        let who = Cosigner {
            name: "witness.example/w1".into(),
            key: w.verifying_key(),
        };
        assert_eq!(
            who.check(&cosigned),
            Cosigned::Valid {
                time: 1_700_000_000,
                line: 8
            }
        );
        assert_eq!(Cosigner::parse_vkey(&who.vkey()), Ok(who.clone()));
        // The log's own check ignores the extra line.
        cosigned
            .verify(&[1; 16], &SigningKey::from_bytes(&[7; 32]).verifying_key())
            .unwrap();
    }

    #[test]
    fn a_changed_time_or_text_breaks_the_cosignature() {
        let (cp, text) = checkpoint();
        let w = SigningKey::from_bytes(&[9; 32]);
        let who = Cosigner {
            name: "w".into(),
            key: w.verifying_key(),
        };
        let line = cosign(&cp.text, "w", &w, 5);
        let raw = B64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        let mut later = raw.clone();
        later[11] ^= 1; // the timestamp's last byte
        let forged = format!("{text}\u{2014} w {}\n", B64.encode(&later));
        assert_eq!(
            who.check(&Checkpoint::parse(&forged).unwrap()),
            Cosigned::Invalid { line: 8 }
        );
        let other_text = text.replacen("\n3\n", "\n4\n", 1);
        let moved = Checkpoint::parse(&format!("{other_text}{line}")).unwrap();
        assert_eq!(who.check(&moved), Cosigned::Invalid { line: 8 });
        assert_eq!(who.check(&cp), Cosigned::Absent);
    }

    #[test]
    fn a_vkey_whose_key_part_holds_a_plus_parses() {
        let who = (0u8..=255)
            .map(|b| Cosigner {
                name: "w".into(),
                key: SigningKey::from_bytes(&[b; 32]).verifying_key(),
            })
            .find(|c| c.vkey().matches('+').count() > 2)
            .unwrap();
        assert_eq!(Cosigner::parse_vkey(&who.vkey()), Ok(who));
    }

    #[test]
    fn a_vkey_with_a_wrong_part_is_refused() {
        let who = Cosigner {
            name: "w".into(),
            key: SigningKey::from_bytes(&[9; 32]).verifying_key(),
        };
        let v = who.vkey();
        assert!(matches!(
            Cosigner::parse_vkey(&v.replacen("w+", "x+", 1)),
            Err(VkeyError::KeyId { .. })
        ));
        assert_eq!(Cosigner::parse_vkey("w+00"), Err(VkeyError::Shape));
        assert_eq!(Cosigner::parse_vkey("w+00000000+AAAA"), Err(VkeyError::Key));
    }
}
