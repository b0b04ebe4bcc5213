//! The token itself: how it is made, shown and hashed, and what a holder's
//! name may be.
use base64::Engine;

/// Text every token starts with, so a leaked one is recognisable (secret
/// scanners, logs) and a mistyped header fails before any hashing.
pub const PREFIX: &str = "argus_";
/// Random bytes per token: guessing one is as hard as guessing a key.
const TOKEN_BYTES: usize = 32;
/// Longest text `authenticate` hashes; real tokens are 49 characters.
pub(super) const PRESENTED_MAX: usize = 128;
/// BLAKE3 derive-key context: a token hash is useless as any other hash.
const HASH_CONTEXT: &str = "argus token v1";
/// Longest token name.
pub const NAME_MAX: usize = 64;
/// Hex digits of the hash that identify a token in listings and the log.
pub(super) const ID_LEN: usize = 12;

/// A freshly made token. Its `Debug` hides the value, so it cannot reach a
/// log line or a panic message by accident; only `expose` shows it.
pub struct Secret(String);

impl Secret {
    pub(super) fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Ok(Self(format!("{PREFIX}{text}")))
    }

    /// The token, to show its holder once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The stored form of a token: 64 hex digits of BLAKE3 derive-key over the
/// token's text, exactly as presented.
pub(super) fn hash_hex(token: &str) -> String {
    hex::encode(blake3::derive_key(HASH_CONTEXT, token.as_bytes()))
}

/// Whether `s` is a stored hash: 64 lowercase hex digits.
pub(super) fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Refuses a name that is not 1..=64 of `[A-Za-z0-9._-]`. The alphabet has
/// no `:`, so `token:<name>` in an actor field cannot be read two ways, and
/// nothing a terminal or a shell would act on.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(format!(
            "a token name has 1 to {NAME_MAX} characters, not {}",
            name.chars().count()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "a token name uses only A-Z a-z 0-9 . _ -, not {c:?}"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hash_to_stored_form() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(a.expose().len(), PREFIX.len() + 43);
        assert!(is_hash(&hash_hex(a.expose())));
        assert_ne!(hash_hex(a.expose()), hash_hex(b.expose()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn names_use_a_small_alphabet() {
        for ok in ["a", "researcher-2", "ci.bot_1", &"x".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a:b", "a b", "é", "a\u{1b}[2J", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
