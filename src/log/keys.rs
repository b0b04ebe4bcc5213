//! Signing keys on disk. Keys are hex seeds in files of mode 0600, and a key
//! that anyone else can read is refused (ADR-018 S1 discipline).
use crate::error::{Error, IoContext, Result};
use ed25519_dalek::SigningKey;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub fn generate() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::BadKey {
        path: "<os random>".into(),
        reason: e.to_string(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a new key file with mode 0600, refusing to replace an existing one.
pub fn write_new(path: &Path, key: &SigningKey) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .at(path)?;
    writeln!(f, "{}", hex::encode(key.to_bytes())).at(path)?;
    f.sync_all().at(path)
}

pub fn load(path: &Path) -> Result<SigningKey> {
    let meta = fs::metadata(path).at(path)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions {
            path: path.into(),
            mode,
        });
    }
    let text = fs::read_to_string(path).at(path)?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::BadKey {
            path: path.into(),
            reason: "expected 64 hex digits (a 32-byte Ed25519 seed)".into(),
        })?;
    Ok(SigningKey::from_bytes(&seed))
}
