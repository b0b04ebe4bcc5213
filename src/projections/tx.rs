//! The working set projections read and write through during a catch-up.
//!
//! Projections never touch the store directly: they go through `Tx`, a
//! write-back working set over their own `store::Tree`. The engine turns the
//! staged writes plus the projection's checkpoint into one atomic batch
//! (`commit`), so state and checkpoint can never disagree after a crash.
//! Records stay decoded between events and are encoded once, at commit,
//! because re-parsing a record every event dominated rebuild time.
use super::store::{KeyValues, StoreError, Tree};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Keys starting with this byte belong to the engine (checkpoint, version),
/// not to the projection, and are left out of the state digest.
pub const META_PREFIX: u8 = 0x00;
pub const CHECKPOINT_KEY: &[u8] = b"\x00checkpoint";

/// Anything a projection stores as JSON. The engine keeps such values decoded
/// in memory between commits and encodes each one once, at commit, so a
/// record touched by every event is not parsed and re-serialized per event.
pub trait Record: Serialize + DeserializeOwned + Clone + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + 'static> Record for T {}

/// A decoded record with its type erased, so one cache can hold every type.
trait Stored {
    fn encode(&self) -> Vec<u8>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Record> Stored for T {
    fn encode(&self) -> Vec<u8> {
        // Serializing plain data structs to JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

enum Val {
    Absent,
    Bytes(Vec<u8>),
    Typed(Box<dyn Stored>),
}

impl Val {
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Val::Absent => None,
            Val::Bytes(b) => Some(b.clone()),
            Val::Typed(t) => Some(t.encode()),
        }
    }
}

struct Slot {
    val: Val,
    /// Not yet in the tree. A clean slot holds exactly what the tree holds.
    dirty: bool,
}

/// One projection's working set during a catch-up: every record read or
/// written since it began, and which of them the next commit must write.
/// The tree changes only through `commit`, so clean slots never go stale.
#[derive(Default)]
pub struct Staged {
    /// aHash: every event looks up several keys here, and SipHash showed in
    /// profiles; aHash stays randomly keyed, so crafted ids cannot collide.
    slots: HashMap<Vec<u8>, Slot, ahash::RandomState>,
    dirty: BTreeSet<Vec<u8>>,
}

/// Records the working set may hold after a commit before it is dropped and
/// refilled from the tree. Decoded records cost a few hundred bytes each, so
/// this bounds a catch-up's memory to tens of MB per projection.
pub const CACHE_ENTRIES_MAX: usize = 100_000;

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

/// A projection's read/write handle while it applies events.
pub struct Tx<'a> {
    tree: &'a Tree,
    staged: &'a RefCell<Staged>,
}

impl<'a> Tx<'a> {
    pub fn new(tree: &'a Tree, staged: &'a RefCell<Staged>) -> Self {
        Self { tree, staged }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut staged = self.staged.borrow_mut();
        Ok(slot(self.tree, &mut staged.slots, key)?.val.bytes())
    }

    pub fn has(&self, key: &[u8]) -> Result<bool, StoreError> {
        let mut staged = self.staged.borrow_mut();
        Ok(!matches!(
            slot(self.tree, &mut staged.slots, key)?.val,
            Val::Absent
        ))
    }

    pub fn get_json<T: Record>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        let mut staged = self.staged.borrow_mut();
        let slot = slot(self.tree, &mut staged.slots, key)?;
        match &slot.val {
            Val::Absent => return Ok(None),
            Val::Typed(t) => {
                if let Some(v) = t.as_any().downcast_ref::<T>() {
                    return Ok(Some(v.clone()));
                }
            }
            Val::Bytes(_) => {}
        }
        if slot.dirty {
            // Not yet written: decoding must not change what will be.
            return decode(key, &slot.val.bytes().unwrap_or_default()).map(Some);
        }
        make_typed::<T>(slot, key)?;
        Ok(match &slot.val {
            Val::Typed(t) => t.as_any().downcast_ref::<T>().cloned(),
            _ => None,
        })
    }

    /// Changes a record in place (creating it with `init` if absent) and
    /// returns what `f` returns: no copy of the record is made.
    pub fn update_json<T: Record, R>(
        &mut self,
        key: &[u8],
        init: impl FnOnce() -> T,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, StoreError> {
        let mut staged = self.staged.borrow_mut();
        let staged = &mut *staged;
        let slot = slot(self.tree, &mut staged.slots, key)?;
        make_typed::<T>(slot, key)?;
        if matches!(slot.val, Val::Absent) {
            slot.val = Val::Typed(Box::new(init()));
        }
        if !slot.dirty {
            slot.dirty = true;
            staged.dirty.insert(key.to_vec());
        }
        match &mut slot.val {
            Val::Typed(t) => match t.as_any_mut().downcast_mut::<T>() {
                Some(v) => Ok(f(v)),
                None => Err(type_changed(key)),
            },
            _ => Err(type_changed(key)),
        }
    }

    /// Appends to a byte value in place (creating it if absent) and returns
    /// its new length.
    pub fn extend(&mut self, key: &[u8], tail: &[u8]) -> Result<usize, StoreError> {
        let mut staged = self.staged.borrow_mut();
        let staged = &mut *staged;
        let slot = slot(self.tree, &mut staged.slots, key)?;
        let mut bytes = match std::mem::replace(&mut slot.val, Val::Absent) {
            Val::Absent => Vec::new(),
            Val::Bytes(b) => b,
            Val::Typed(t) => t.encode(),
        };
        bytes.extend_from_slice(tail);
        let len = bytes.len();
        slot.val = Val::Bytes(bytes);
        if !slot.dirty {
            slot.dirty = true;
            staged.dirty.insert(key.to_vec());
        }
        Ok(len)
    }

    fn set(&mut self, key: &[u8], val: Val) {
        let mut staged = self.staged.borrow_mut();
        let staged = &mut *staged;
        match staged.slots.get_mut(key) {
            Some(slot) => {
                slot.val = val;
                if !slot.dirty {
                    slot.dirty = true;
                    staged.dirty.insert(key.to_vec());
                }
            }
            None => {
                staged.slots.insert(key.to_vec(), Slot { val, dirty: true });
                staged.dirty.insert(key.to_vec());
            }
        }
    }

    pub fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.set(key, Val::Bytes(value));
    }

    pub fn del(&mut self, key: &[u8]) {
        self.set(key, Val::Absent);
    }

    pub fn put_json<T: Record>(&mut self, key: &[u8], value: T) {
        self.set(key, Val::Typed(Box::new(value)));
    }

    /// Every live key in `range`, staged writes winning over the tree, in key
    /// order.
    fn merged(
        &self,
        from_tree: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>,
        in_range: impl Fn(&[u8]) -> bool,
        start: &[u8],
    ) -> Result<KeyValues, StoreError> {
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for kv in from_tree {
            let (k, v) = kv?;
            merged.insert(k, Some(v));
        }
        let staged = self.staged.borrow();
        for k in staged.dirty.range(start.to_vec()..) {
            if !in_range(k) {
                break;
            }
            let v = staged.slots.get(k).and_then(|s| s.val.bytes());
            merged.insert(k.clone(), v);
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    /// Every live key with `prefix`, in key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<KeyValues, StoreError> {
        self.merged(
            self.tree.scan_prefix(prefix),
            |k| k.starts_with(prefix),
            prefix,
        )
    }

    /// Live keys in `[start, end)`, in key order: lets a projection visit only
    /// what is due (e.g. deadlines up to now).
    pub fn scan_range(&self, start: &[u8], end: &[u8]) -> Result<KeyValues, StoreError> {
        self.merged(self.tree.range(start, end), |k| k < end, start)
    }

    /// Decoded values of every key with `prefix`.
    pub fn scan_json<T: Record>(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        decode_all(self.scan(prefix)?)
    }
}

/// The working-set slot for `key`, read from the tree on first use.
fn slot<'s>(
    tree: &Tree,
    slots: &'s mut HashMap<Vec<u8>, Slot, ahash::RandomState>,
    key: &[u8],
) -> Result<&'s mut Slot, StoreError> {
    // Look up before inserting so a hit (the common case) copies no key.
    if !slots.contains_key(key) {
        let val = match tree.get(key)? {
            Some(b) => Val::Bytes(b),
            None => Val::Absent,
        };
        slots.insert(key.to_vec(), Slot { val, dirty: false });
    }
    slots.get_mut(key).ok_or_else(|| StoreError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "working-set slot vanished".into(),
    })
}

/// Leaves a present value decoded as `T`, so later reads and updates of the
/// same record skip JSON.
fn make_typed<T: Record>(slot: &mut Slot, key: &[u8]) -> Result<(), StoreError> {
    let decoded: T = match &slot.val {
        Val::Absent => return Ok(()),
        Val::Typed(t) if t.as_any().is::<T>() => return Ok(()),
        Val::Typed(t) => decode(key, &t.encode())?,
        Val::Bytes(b) => decode(key, b)?,
    };
    slot.val = Val::Typed(Box::new(decoded));
    Ok(())
}

fn type_changed(key: &[u8]) -> StoreError {
    StoreError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "record is not of the type being updated".into(),
    }
}

fn decode_all<T: DeserializeOwned>(kvs: KeyValues) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
    kvs.into_iter()
        .map(|(k, v)| decode(&k, &v).map(|t| (k, t)))
        .collect()
}

/// Read-only access for views, after the engine has flushed.
pub struct View<'a> {
    tree: &'a Tree,
}

impl<'a> View<'a> {
    pub fn new(tree: &'a Tree) -> Self {
        Self { tree }
    }
    pub fn scan(&self, prefix: &[u8]) -> Result<KeyValues, StoreError> {
        self.tree.scan_prefix(prefix).collect()
    }
    pub fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.tree.get(key)?.map(|v| decode(key, &v)).transpose()
    }
    pub fn scan_json<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        decode_all(self.scan(prefix)?)
    }
}

/// BLAKE3 over every projection-owned key and value, length-prefixed, in key
/// order. Equal digests mean byte-identical state.
pub fn digest(tree: &Tree) -> Result<[u8; 32], StoreError> {
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

/// Writes every staged change and the checkpoint in one atomic batch. The
/// written records stay in the working set, decoded, for later events.
pub fn commit(
    tree: &Tree,
    staged: &RefCell<Staged>,
    checkpoint: Vec<u8>,
) -> Result<(), StoreError> {
    let mut staged = staged.borrow_mut();
    let staged = &mut *staged;
    let changes = staged
        .dirty
        .iter()
        .map(|k| {
            let v = staged.slots.get(k).and_then(|s| s.val.bytes());
            (k.as_slice(), v)
        })
        .chain([(CHECKPOINT_KEY, Some(checkpoint))]);
    tree.write_batch(changes)?;
    if staged.slots.len() > CACHE_ENTRIES_MAX {
        staged.slots.clear();
    } else {
        for k in &staged.dirty {
            if let Some(s) = staged.slots.get_mut(k) {
                s.dirty = false;
            }
        }
    }
    staged.dirty.clear();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        n: u64,
        usd: f64,
    }

    #[test]
    fn typed_updates_reach_the_tree_as_the_same_json_bytes() {
        let t = Tree::temporary();
        let staged = RefCell::new(Staged::default());
        let mut tx = Tx::new(&t, &staged);
        let init = || Rec { n: 0, usd: 0.0 };
        for _ in 0..3 {
            tx.update_json(b"r", init, |r: &mut Rec| {
                r.n += 1;
                r.usd += 0.1;
            })
            .unwrap();
        }
        // Not in the tree until commit, but visible to reads and scans.
        assert!(t.get(b"r").unwrap().is_none());
        let want = Rec {
            n: 3,
            usd: 0.1 + 0.1 + 0.1,
        };
        assert_eq!(tx.get_json::<Rec>(b"r").unwrap(), Some(want.clone()));
        let scanned = tx.scan(b"r").unwrap();
        assert_eq!(scanned[0].1, serde_json::to_vec(&want).unwrap());
        commit(&t, &staged, b"cp".to_vec()).unwrap();
        assert_eq!(
            t.get(b"r").unwrap().unwrap(),
            serde_json::to_vec(&want).unwrap()
        );
        // A fresh working set decodes the committed bytes to the same value:
        // floats survive the text round trip exactly.
        let fresh = RefCell::new(Staged::default());
        let tx = Tx::new(&t, &fresh);
        assert_eq!(tx.get_json::<Rec>(b"r").unwrap(), Some(want));
    }

    #[test]
    fn deletes_and_byte_extends_commit_atomically_with_the_checkpoint() {
        let t = Tree::temporary();
        t.write_batch([(&b"gone"[..], Some(b"1".to_vec()))])
            .unwrap();
        let staged = RefCell::new(Staged::default());
        let mut tx = Tx::new(&t, &staged);
        assert!(tx.has(b"gone").unwrap());
        tx.del(b"gone");
        assert!(!tx.has(b"gone").unwrap());
        assert_eq!(tx.extend(b"seqs", &[1, 2]).unwrap(), 2);
        assert_eq!(tx.extend(b"seqs", &[3]).unwrap(), 3);
        commit(&t, &staged, b"cp".to_vec()).unwrap();
        assert!(t.get(b"gone").unwrap().is_none());
        assert_eq!(t.get(b"seqs").unwrap().unwrap(), vec![1, 2, 3]);
        assert_eq!(t.get(CHECKPOINT_KEY).unwrap().unwrap(), b"cp");
    }

    #[test]
    fn raw_bytes_read_as_json_stay_as_written() {
        let t = Tree::temporary();
        let staged = RefCell::new(Staged::default());
        let mut tx = Tx::new(&t, &staged);
        // Key order and spacing that serde would not produce.
        let raw = br#"{ "usd": 1.5, "n": 7 }"#.to_vec();
        tx.put(b"r", raw.clone());
        assert_eq!(tx.get_json::<Rec>(b"r").unwrap().unwrap().n, 7);
        commit(&t, &staged, Vec::new()).unwrap();
        assert_eq!(t.get(b"r").unwrap().unwrap(), raw);
    }

    #[test]
    fn a_record_of_another_type_is_a_decode_error_naming_the_key() {
        let t = Tree::temporary();
        let staged = RefCell::new(Staged::default());
        let mut tx = Tx::new(&t, &staged);
        tx.put_json(b"k", "text".to_string());
        let e = tx.get_json::<Rec>(b"k").unwrap_err().to_string();
        assert!(e.contains("value at k"), "{e}");
    }
}
