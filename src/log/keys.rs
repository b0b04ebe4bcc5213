//! Signing keys on disk. Keys are hex seeds in files of mode 0600, and a key
//! that anyone else can read is refused (ADR-018 S1 discipline).
use crate::error::{Error, IoContext, Result};
use crate::log::storage::{RealFs, Storage};
use ed25519_dalek::SigningKey;
use std::path::Path;

/// A key file is one line of 64 hex digits; anything much longer is not one.
pub(crate) const KEY_FILE_MAX: u64 = 4096;

pub fn generate() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::random("a signing key", e))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a new key file with mode 0600, refusing to replace an existing one.
pub fn write_new(path: &Path, key: &SigningKey) -> Result<()> {
    write_new_on(&RealFs, path, key)
}

/// `write_new` through `s` (key rotation writes the next epoch's key so).
pub fn write_new_on<S: Storage + ?Sized>(s: &S, path: &Path, key: &SigningKey) -> Result<()> {
    let f = s.create_new(path, 0o600)?;
    let line = format!("{}\n", hex::encode(key.to_bytes()));
    f.write_all_at(line.as_bytes(), 0).at(path)?;
    f.sync_all().at(path)
}

/// Loads a key. The file may live anywhere, but it must be a regular file
/// named directly (a link in the last component is refused: whoever can
/// plant one could point the writer at a key they control), and the
/// permission check is made on the open descriptor, the file actually read.
pub fn load(path: &Path) -> Result<SigningKey> {
    load_on(&RealFs, path)
}

/// `load` through `s` (the writer and rotation load keys so).
pub fn load_on<S: Storage + ?Sized>(s: &S, path: &Path) -> Result<SigningKey> {
    let (bytes, mode) = s.read_capped_mode(path, KEY_FILE_MAX)?;
    let mode = mode & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions {
            path: path.into(),
            mode,
        });
    }
    let text = String::from_utf8_lossy(&bytes);
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::BadKey {
            path: path.into(),
            reason: "expected 64 hex digits (a 32-byte Ed25519 seed)".into(),
        })?;
    Ok(SigningKey::from_bytes(&seed))
}
