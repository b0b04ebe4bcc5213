//! The narrow state-store seam between projections and sled.
//!
//! Projections never touch sled directly: they read and write through `Tx`,
//! a write-back overlay over one sled tree. The engine turns the overlay plus
//! the projection's checkpoint into one atomic `apply_batch`, so state and
//! checkpoint can never disagree after a crash. If sled ever has to be
//! replaced (DESIGN notes redb as the reserve), only this file changes.
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

/// Keys starting with this byte belong to the engine (checkpoint, version),
/// not to the projection, and are left out of the state digest.
pub const META_PREFIX: u8 = 0x00;
pub const CHECKPOINT_KEY: &[u8] = b"\x00checkpoint";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("projection store: {0}")]
    Sled(#[from] sled::Error),
    #[error("projection store value at {key}: {reason}")]
    Decode { key: String, reason: String },
}

pub type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;
/// Live key/value pairs in key order.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

pub struct Tx<'a> {
    pub(crate) tree: &'a sled::Tree,
    pub(crate) dirty: &'a mut Overlay,
    /// Values already read from or committed to `tree` during this catch-up,
    /// so a record touched again after a commit is not fetched from sled.
    /// The tree changes only through `commit`, which refreshes the cache.
    pub(crate) cache: Option<&'a std::cell::RefCell<Overlay>>,
}

/// Entries a read cache may hold before it is dropped and refilled.
pub const CACHE_ENTRIES_MAX: usize = 500_000;

impl Tx<'_> {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.dirty.get(key) {
            return Ok(v.clone());
        }
        if let Some(hit) = self.cache.and_then(|c| c.borrow().get(key).cloned()) {
            return Ok(hit);
        }
        let v = self.tree.get(key)?.map(|v| v.to_vec());
        if let Some(c) = self.cache {
            let mut c = c.borrow_mut();
            if c.len() >= CACHE_ENTRIES_MAX {
                c.clear();
            }
            c.insert(key.to_vec(), v.clone());
        }
        Ok(v)
    }

    pub fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.dirty.insert(key.to_vec(), Some(value));
    }

    pub fn del(&mut self, key: &[u8]) {
        self.dirty.insert(key.to_vec(), None);
    }

    pub fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.get(key)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Decode {
                    key: String::from_utf8_lossy(key).into_owned(),
                    reason: e.to_string(),
                }),
        }
    }

    pub fn put_json<T: Serialize>(&mut self, key: &[u8], value: &T) {
        // Serializing plain data structs to JSON cannot fail.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.put(key, bytes);
    }

    /// Every live key with `prefix`, overlay winning over the tree, in key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<KeyValues, StoreError> {
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for kv in self.tree.scan_prefix(prefix) {
            let (k, v) = kv?;
            merged.insert(k.to_vec(), Some(v.to_vec()));
        }
        for (k, v) in self.dirty.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            merged.insert(k.clone(), v.clone());
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    /// Live keys in `[start, end)`, overlay winning, in key order: lets a
    /// projection visit only what is due (e.g. deadlines up to now).
    pub fn scan_range(&self, start: &[u8], end: &[u8]) -> Result<KeyValues, StoreError> {
        let mut merged: Overlay = BTreeMap::new();
        for kv in self.tree.range(start..end) {
            let (k, v) = kv?;
            merged.insert(k.to_vec(), Some(v.to_vec()));
        }
        for (k, v) in self.dirty.range(start.to_vec()..end.to_vec()) {
            merged.insert(k.clone(), v.clone());
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    /// Decoded values of every key with `prefix`.
    pub fn scan_json<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        self.scan(prefix)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| StoreError::Decode {
                        key: String::from_utf8_lossy(&k).into_owned(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }
}

/// Read-only access for views, after the engine has flushed.
pub struct View<'a> {
    pub(crate) tree: &'a sled::Tree,
}

impl View<'_> {
    pub fn scan(&self, prefix: &[u8]) -> Result<KeyValues, StoreError> {
        let mut empty = Overlay::new();
        Tx {
            tree: self.tree,
            dirty: &mut empty,
            cache: None,
        }
        .scan(prefix)
    }
    pub fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        let mut empty = Overlay::new();
        Tx {
            tree: self.tree,
            dirty: &mut empty,
            cache: None,
        }
        .get_json(key)
    }
    pub fn scan_json<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let mut empty = Overlay::new();
        Tx {
            tree: self.tree,
            dirty: &mut empty,
            cache: None,
        }
        .scan_json(prefix)
    }
}

/// BLAKE3 over every projection-owned key and value, length-prefixed, in key
/// order. Equal digests mean byte-identical state.
pub fn digest(tree: &sled::Tree) -> Result<[u8; 32], StoreError> {
    let mut h = blake3::Hasher::new_derive_key("argus projections v1 state digest");
    for kv in tree.iter() {
        let (k, v) = kv?;
        if k.first() == Some(&META_PREFIX) {
            continue;
        }
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(&k);
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(&v);
    }
    Ok(*h.finalize().as_bytes())
}

/// Writes the overlay and the checkpoint in one atomic batch; the committed
/// values then move into the read cache, if there is one.
pub fn commit(
    tree: &sled::Tree,
    dirty: &mut Overlay,
    checkpoint: Vec<u8>,
    cache: Option<&std::cell::RefCell<Overlay>>,
) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for (k, v) in dirty.iter() {
        match v {
            Some(v) => batch.insert(k.as_slice(), v.as_slice()),
            None => batch.remove(k.as_slice()),
        }
    }
    batch.insert(CHECKPOINT_KEY, checkpoint);
    tree.apply_batch(batch)?;
    let written = std::mem::take(dirty);
    // Committed values are now what the tree holds: keep them for reads.
    if let Some(c) = cache {
        let mut c = c.borrow_mut();
        if c.len() + written.len() > CACHE_ENTRIES_MAX {
            c.clear();
        }
        c.extend(written);
    }
    Ok(())
}
