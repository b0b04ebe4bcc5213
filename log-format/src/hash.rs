//! Domain-separated BLAKE3 constructions. Every hash in the format goes
//! through here so that no two purposes can ever collide on the same input.

/// A 32-byte BLAKE3 output.
pub type Hash32 = [u8; 32];

/// BLAKE3 derive-key context for entry hashes (SPEC §4.2).
pub const CTX_ENTRY: &str = "argus.log v1 entry";
/// BLAKE3 derive-key context for payload hashes (SPEC §4.1, field 4).
pub const CTX_PAYLOAD: &str = "argus.log v1 payload";

use blake3::hazmat::{hash_derive_key_context, ContextKey, HasherExt};
use std::sync::LazyLock;

// Derive-key mode hashes the context string on every `new_derive_key`; the
// context keys are computed once instead (same output, one compression less
// per hash on the verify hot path).
static ENTRY_KEY: LazyLock<ContextKey> = LazyLock::new(|| hash_derive_key_context(CTX_ENTRY));
static PAYLOAD_KEY: LazyLock<ContextKey> = LazyLock::new(|| hash_derive_key_context(CTX_PAYLOAD));

/// A hasher in derive-key mode for entry hashes.
pub fn entry_hasher() -> blake3::Hasher {
    blake3::Hasher::new_from_context_key(&ENTRY_KEY)
}

/// Hash of an entry payload. Kept separate from the entry hash so that a
/// payload can later be erased by a signed redaction without breaking the chain.
pub fn payload_hash(payload: &[u8]) -> Hash32 {
    let mut h = blake3::Hasher::new_from_context_key(&PAYLOAD_KEY);
    h.update(payload);
    *h.finalize().as_bytes()
}

/// Merkle leaf hash, RFC 9162 shape: BLAKE3(0x00 || entry_hash).
///
/// One `blake3::hash` over a stack buffer, not a `Hasher`: the input fits
/// one block, and a `Hasher` (about 1.9 KB of state) set up per call cost
/// verify a measurable share of its time (docs/PERFORMANCE.md, verify).
pub fn merkle_leaf(entry_hash: &Hash32) -> Hash32 {
    let mut buf = [0u8; 33];
    buf[1..].copy_from_slice(entry_hash);
    *blake3::hash(&buf).as_bytes()
}

/// Merkle interior node hash, RFC 9162 shape: BLAKE3(0x01 || left || right).
pub fn merkle_node(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    *blake3::hash(&buf).as_bytes()
}

/// Root of the empty tree: BLAKE3 of the empty string, as RFC 9162 defines MTH({}).
pub fn merkle_empty() -> Hash32 {
    *blake3::hash(b"").as_bytes()
}
