//! `argusctl key rotate`: a new epoch key (SPEC §4.7), certified in the log
//! by the outgoing key, which is then erased.
//!
//! Crash safety rests on one rule: the `key.rotated` entry, once durable,
//! decides. The steps, each durable before the next:
//! 1. argus.json records the rotation as pending (epoch, new key file);
//! 2. the new key file is written (mode 0600) and synced;
//! 3. the writer commits `key.rotated` sealed by the outgoing key, rolls
//!    the segment, and signs with the new key from then on;
//! 4. argus.json names the new key and the old key file as retired;
//! 5. the old key file is overwritten, synced and unlinked; argus.json
//!    forgets it.
//!
//! An open after a crash at any step (`settle`) looks in the log: if the
//! entry is there and sealed, it finishes steps 4–5; if not, the rotation
//! never happened, and the new key file (never certified) is erased. A key
//! file that a crash tore (in its write, or in its erasure) is finished
//! too (`torn_key`): left there, it would stop every later open.
//!
//! Every file operation goes through the log's `Storage`, so the fault
//! simulator cuts the power between any two of them (tests/it/fault_sim).
use super::dir::{LogDir, Meta, MetaEpoch, PendingRotation};
use super::epochs;
use super::keys;
use super::storage::{self, Storage};
use super::writer::{rotate_failpoint, Reply, Request, Rotation};
use super::Log;
use crate::error::{Error, IoContext, Result};
use std::path::Path;
use std::sync::{mpsc, Arc};

/// What a rotation did: public material only.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotated {
    pub epoch: u64,
    /// Seq of the `key.rotated` entry.
    pub seq: u64,
    pub from_seq: u64,
    pub public_key: String,
    pub key_id: String,
    pub prev_key_id: String,
    /// Where the new private key is (the path, never its bytes).
    pub key_file: String,
    /// The outgoing key's file, now erased.
    pub erased_key_file: String,
}

/// Where epoch `epoch`'s private key is kept, relative to the log.
fn epoch_key_file(epoch: u64) -> String {
    format!("keys/epoch-{epoch}.key")
}

impl Log {
    /// Rotates the signing key (see the module doc for the steps). Needs
    /// the writer lock, like every writer; argusd holding the log means
    /// the lock wait times out and nothing changes.
    pub fn rotate_key(&mut self) -> Result<Rotated> {
        let d = self.dir.clone();
        let log_id = self.meta.log_id()?;
        let (cur, cur_key) = self.meta.current_key()?;
        let epoch = cur + 1;
        let rel = epoch_key_file(epoch);
        let path = d.root.join(&rel);
        let kdir = d.root.join("keys");
        let s = &*d.storage;
        match s.kind_of(&kdir)? {
            None => {
                s.create_dir(&kdir)?;
                s.sync_dir(&d.root)?;
            }
            Some(_) => storage::real_dirs_below(s, &d.root, &path)?,
        }
        if s.kind_of(&path)?.is_some() {
            return Err(Error::Rotation(format!(
                "{} exists but is not a key of this log; move it aside and retry",
                path.display()
            )));
        }
        let new = keys::generate()?;
        let public_key = hex::encode(new.verifying_key().as_bytes());
        self.meta.pending_rotation = Some(PendingRotation {
            epoch,
            public_key: public_key.clone(),
            key_file: rel.clone(),
            after_seq: self.committed.get(),
        });
        d.write_meta(&self.meta)?;
        keys::write_new_on(s, &path, &new)?;
        s.sync_dir(&kdir)?;
        rotate_failpoint("key-written");
        let (tx, rx) = mpsc::sync_channel(1);
        self.dispatch(Request {
            entries: Arc::new(Vec::new()),
            reply: Reply::channel(tx),
            rotate: Some(Rotation { epoch, key: new }),
        })?;
        let ack = rx.recv().map_err(|_| Error::WriterGone)??;
        let seq = ack.first().map(|a| a.seq).ok_or(Error::WriterGone)?;
        rotate_failpoint("rolled");
        let old_file = std::mem::replace(&mut self.meta.key_file, rel.clone());
        self.meta.key_epochs.push(MetaEpoch {
            epoch,
            public_key: public_key.clone(),
            from_seq: seq + 1,
        });
        self.meta.pending_rotation = None;
        self.meta.retired_key_file = Some(old_file.clone());
        d.write_meta(&self.meta)?;
        rotate_failpoint("meta-updated");
        erase_retired(&d, &mut self.meta)?;
        let kid = |k| hex::encode(log_format::seal::key_id(&log_id, k));
        Ok(Rotated {
            epoch,
            seq,
            from_seq: seq + 1,
            key_id: kid(&new_public(&public_key)?),
            prev_key_id: kid(&cur_key),
            public_key,
            key_file: rel,
            erased_key_file: old_file,
        })
    }
}

fn new_public(hex_key: &str) -> Result<ed25519_dalek::VerifyingKey> {
    super::dir::parse_public_key(hex_key).map_err(Error::Rotation)
}

/// Finishes or forgets a rotation a crash interrupted, and erases a
/// retired key whose erasure did not finish. Runs under the writer lock,
/// before the writer loads its key.
pub fn settle(d: &LogDir, meta: &mut Meta) -> Result<()> {
    if let Some(p) = meta.pending_rotation.clone() {
        if p.key_file != epoch_key_file(p.epoch) {
            return Err(Error::Rotation(format!(
                "argus.json: pending_rotation names key file {:?}, not {:?}; refusing to touch it",
                p.key_file,
                epoch_key_file(p.epoch)
            )));
        }
        match durable_rotation(d, &p)? {
            Some(seq) => {
                let old = std::mem::replace(&mut meta.key_file, p.key_file.clone());
                meta.key_epochs.push(MetaEpoch {
                    epoch: p.epoch,
                    public_key: p.public_key.clone(),
                    from_seq: seq + 1,
                });
                meta.retired_key_file = Some(old);
            }
            None => {
                // Never certified: nothing may ever be signed with it.
                let path = d.root.join(&p.key_file);
                let s = &*d.storage;
                storage::real_dirs_below(s, &d.root, &path)?;
                if s.kind_of(&path)?.is_some() {
                    match keys::load_on(s, &path) {
                        Ok(key) => {
                            if hex::encode(key.verifying_key().as_bytes()) == p.public_key {
                                erase(s, &path)?;
                            }
                        }
                        // Step 2 (or an erase of it) torn by the crash.
                        Err(Error::BadKey { .. }) if torn_key(s, &path, false)? => {
                            erase(s, &path)?;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        meta.pending_rotation = None;
        d.write_meta(meta)?;
    }
    erase_retired(d, meta)
}

/// Erases the retired key file argus.json names, if it is still there,
/// and forgets it. Only a file that holds a key of one of this log's
/// earlier epochs is touched: argus.json is not trusted to name any file.
fn erase_retired(d: &LogDir, meta: &mut Meta) -> Result<()> {
    let Some(old) = meta.retired_key_file.clone() else {
        return Ok(());
    };
    let path = d.resolve(&old);
    let s = &*d.storage;
    if old != meta.key_file && s.kind_of(&path)?.is_some() {
        storage::real_dirs_below(s, &d.root, &path)?;
        let key = match keys::load_on(s, &path) {
            Ok(k) => Some(k.verifying_key()),
            // A crash in step 5 after some zeros reached the disk.
            Err(Error::BadKey { .. }) if torn_key(s, &path, true)? => None,
            Err(e) => return Err(e),
        };
        let recorded = meta.recorded_epochs()?;
        let earlier = &recorded.all()[..recorded.all().len().saturating_sub(1)];
        if key.is_some_and(|key| !earlier.iter().any(|e| e.key == key)) {
            return Err(Error::Rotation(format!(
                "argus.json: retired_key_file {} does not hold an earlier epoch's key of this log; refusing to erase it",
                path.display()
            )));
        }
        erase(s, &path)?;
    }
    meta.retired_key_file = None;
    d.write_meta(meta)
}

/// Whether a key file that does not parse is one this module tore: a
/// crash inside `keys::write_new_on` (step 2: empty, a prefix of the hex
/// line, or zeros where the size got ahead of the data) or inside `erase`
/// (zeros over a prefix of the line). Only NULs, hex digits and
/// whitespace, within a key file's size; a retired key must also show the
/// zeros of an erase that started (argus.json, which names it, is not
/// trusted to point at any file).
fn torn_key(s: &dyn Storage, path: &Path, erase_started: bool) -> Result<bool> {
    let b = s.read_capped(path, keys::KEY_FILE_MAX)?;
    let ours = b
        .iter()
        .all(|c| *c == 0 || c.is_ascii_hexdigit() || c.is_ascii_whitespace());
    Ok(ours && (!erase_started || b.first() == Some(&0)))
}

/// Overwrites a key file with zeros, syncs it, unlinks it and syncs its
/// directory. (A copy-on-write or journaling file system may keep old
/// blocks; SPEC §4.7 says what erasure can and cannot promise.)
fn erase(s: &dyn Storage, path: &Path) -> Result<()> {
    let len = s.read_capped(path, keys::KEY_FILE_MAX)?.len();
    let f = s.open_write(path)?;
    f.write_all_at(&vec![0u8; len], 0).at(path)?;
    f.sync_all().at(path)?;
    drop(f);
    s.remove_file(path).at(path)?;
    if let Some(parent) = path.parent() {
        s.sync_dir(parent)?;
    }
    Ok(())
}

/// The seq of the sealed `key.rotated` entry for `p`, if the log holds it.
fn durable_rotation(d: &LogDir, p: &PendingRotation) -> Result<Option<u64>> {
    let bases = d.list_segments()?;
    let start = bases
        .partition_point(|b| *b <= p.after_seq)
        .saturating_sub(1);
    for &base in &bases[start..] {
        let path = match d.segment_forms(base) {
            (true, _) => d.segment_path(base),
            (false, _) => d.compressed_path(base),
        };
        let bytes = d.storage.load_segment(&path)?;
        for f in epochs::rotations_in(&bytes) {
            if f.seq < p.after_seq || !f.sealed {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(f.payload).unwrap_or_default();
            if v["epoch"].as_u64() == Some(p.epoch)
                && v["public_key"].as_str() == Some(p.public_key.as_str())
            {
                return Ok(Some(f.seq));
            }
        }
    }
    Ok(None)
}
