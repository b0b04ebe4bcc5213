//! The log directory: where each file lives, the metadata file, and `init`.
use crate::error::{Error, IoContext, Result};
use crate::log::keys;
use crate::log::safe_fs::{self, Durability, FileKind};
use crate::log::storage::{self, Storage};
use ed25519_dalek::{SigningKey, VerifyingKey};
use log_format::segment::segment_file_name;
use log_format::LogId;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const META_FILE: &str = "argus.json";
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// `argus.json`. Informative only: verification never trusts it unless told
/// to, and then says the key is not pinned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    pub version: u32,
    pub log_id: String,
    pub public_key: String,
    pub segment_bytes: u64,
    /// Path of the signing key, relative to the log directory or absolute.
    pub key_file: String,
    /// A wall clock this far from the log's clock (by boot-time evidence)
    /// is recorded as a `clock.skew` entry (SPEC §4.5). Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_tolerance_s: Option<u64>,
    /// The key epochs after the first (SPEC §4.7), as `argusctl key rotate`
    /// recorded them: the writer signs with the last one's key. Informative
    /// like the rest of this file: `verify` follows the certificates in the
    /// log from the pinned `public_key`, never this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_epochs: Vec<MetaEpoch>,
    /// A rotation begun and not yet known to be done: the next open finds
    /// out from the log whether its `key.rotated` entry is durable, and
    /// finishes or forgets it (crash safety of `key rotate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_rotation: Option<PendingRotation>,
    /// A retired private key whose erasure may not have finished; erased
    /// at the next open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_key_file: Option<String>,
    /// Where this file was read from (or is written to), to name it in
    /// errors about its fields.
    #[serde(skip)]
    path: PathBuf,
}

/// One epoch after the first, as recorded in `argus.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaEpoch {
    pub epoch: u64,
    pub public_key: String,
    pub from_seq: u64,
}

/// A rotation in progress: the new key's file is written and synced, the
/// `key.rotated` entry may or may not be durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRotation {
    pub epoch: u64,
    pub public_key: String,
    pub key_file: String,
    /// The next seq when the rotation began: the entry, if durable, is at
    /// this seq or later.
    pub after_seq: u64,
}

impl Meta {
    pub fn skew_tolerance_ns(&self) -> u64 {
        self.clock_skew_tolerance_s
            .map_or(crate::time::SKEW_TOLERANCE_NS_DEFAULT, |s| {
                s.saturating_mul(crate::time::NS_PER_S)
            })
    }
}

impl Meta {
    pub fn log_id(&self) -> Result<LogId> {
        hex::decode(&self.log_id)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| self.bad("log_id", "not 32 hex digits".into()))
    }
    /// The pinned first key (epoch 0).
    pub fn public_key(&self) -> Result<VerifyingKey> {
        parse_public_key(&self.public_key).map_err(|reason| self.bad("public_key", reason))
    }
    /// The current epoch's number and public key, as recorded here.
    pub fn current_key(&self) -> Result<(u64, VerifyingKey)> {
        match self.key_epochs.last() {
            Some(e) => parse_public_key(&e.public_key)
                .map(|k| (e.epoch, k))
                .map_err(|reason| self.bad("key_epochs", reason)),
            None => Ok((0, self.public_key()?)),
        }
    }
    /// The epochs as recorded here, unchecked: good enough to judge a torn
    /// tail (a forged list can only make a reader stop early); `verify`
    /// reads the certificates in the log instead.
    pub fn recorded_epochs(&self) -> Result<log_format::KeyEpochs> {
        let log_id = self.log_id()?;
        let mut e = log_format::KeyEpochs::new(log_id, self.public_key()?);
        for m in &self.key_epochs {
            let key = parse_public_key(&m.public_key).map_err(|r| self.bad("key_epochs", r))?;
            if !e.push_unverified(m.epoch, m.from_seq, key) {
                return Err(self.bad(
                    "key_epochs",
                    "epochs are not numbered in order with increasing from_seq".into(),
                ));
            }
        }
        Ok(e)
    }
    fn bad(&self, field: &'static str, reason: String) -> Error {
        Error::BadMeta {
            path: if self.path.as_os_str().is_empty() {
                META_FILE.into()
            } else {
                self.path.clone()
            },
            field,
            reason,
        }
    }
}

pub fn parse_public_key(s: &str) -> std::result::Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(s.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("public key must be 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

#[derive(Debug, Clone)]
pub struct LogDir {
    pub root: PathBuf,
    /// What the writer and recovery do their file I/O through: the real
    /// file system unless a test put a simulated one in its place.
    pub storage: Arc<dyn Storage>,
}

impl LogDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_storage(root, storage::real())
    }
    /// A log directory whose write and recovery I/O goes through `storage`.
    pub fn with_storage(root: impl Into<PathBuf>, storage: Arc<dyn Storage>) -> Self {
        Self {
            root: root.into(),
            storage,
        }
    }
    pub fn segments_dir(&self) -> PathBuf {
        self.root.join("segments")
    }
    pub fn segment_path(&self, base_seq: u64) -> PathBuf {
        self.segments_dir().join(segment_file_name(base_seq))
    }
    /// Where segment `base_seq` lives once compacted (SPEC §12).
    pub fn compressed_path(&self, base_seq: u64) -> PathBuf {
        self.segments_dir()
            .join(format!("{base_seq:020}{COMPRESSED_SUFFIX}"))
    }
    pub fn index_path(&self, base_seq: u64) -> PathBuf {
        self.segments_dir().join(format!("{base_seq:020}.idx"))
    }
    pub fn meta_path(&self) -> PathBuf {
        self.root.join(META_FILE)
    }

    pub fn read_meta(&self) -> Result<Meta> {
        let path = self.meta_path();
        let bytes = self
            .storage
            .read_capped(&path, safe_fs::SMALL_FILE_MAX)
            .map_err(|e| match e {
                // A planted FIFO, link or huge file is named as what it is.
                Error::NotRegularFile { .. } | Error::TooLarge { .. } => e,
                Error::Io { source, .. } => Error::NotALog {
                    dir: self.root.clone(),
                    reason: format!("cannot read {META_FILE}: {source}"),
                },
                other => other,
            })?;
        let mut meta: Meta = serde_json::from_slice(&bytes).map_err(|e| Error::NotALog {
            dir: self.root.clone(),
            reason: format!("{META_FILE} is not valid: {e}"),
        })?;
        meta.path = path;
        if meta.format != "argus.log" {
            return Err(Error::NotALog {
                dir: self.root.clone(),
                reason: format!("{META_FILE} has format {:?}", meta.format),
            });
        }
        Ok(meta)
    }

    pub fn key_path(&self, meta: &Meta) -> PathBuf {
        self.resolve(&meta.key_file)
    }

    /// A path recorded in `argus.json`: relative to the log directory or
    /// absolute.
    pub fn resolve(&self, recorded: &str) -> PathBuf {
        let p = PathBuf::from(recorded);
        if p.is_absolute() {
            p
        } else {
            self.root.join(p)
        }
    }

    /// Replaces `argus.json` whole and durably (temp file, rename, fsync of
    /// the directory), so a crash leaves the old file or the new one.
    pub fn write_meta(&self, meta: &Meta) -> Result<()> {
        let tmp = self.root.join("argus.json.tmp");
        let text = serde_json::to_string_pretty(meta).map_err(|source| Error::Encode {
            what: META_FILE,
            source,
        })?;
        self.storage.write_whole(
            &tmp,
            &self.meta_path(),
            (text + "\n").as_bytes(),
            0o666,
            Durability::Synced,
        )
    }

    /// Segment base seqs in order, each once whether it is stored plain,
    /// compressed, or (after a crash mid-compaction) both. Names that are
    /// not 20 digits + `.seg`/`.segz` are returned as errors by the
    /// verifier; here they are simply skipped. A segment that is not a
    /// regular file (a link, a FIFO, a device) is refused here, before
    /// anyone opens it.
    pub fn list_segments(&self) -> Result<Vec<u64>> {
        let dir = self.segments_dir();
        let mut out = Vec::new();
        for ent in self.storage.list_dir(&dir)? {
            if let Some((base, _)) = parse_any_segment_name(&ent.name) {
                // The entry's own type: a link is reported as a link.
                if ent.kind != FileKind::Regular {
                    return Err(Error::NotRegularFile {
                        path: dir.join(&ent.name),
                        kind: ent.kind,
                        action: "use",
                    });
                }
                out.push(base);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Which forms of segment `base` are on disk now (SPEC §12: when both
    /// are, the plain one is the segment).
    pub fn segment_forms(&self, base: u64) -> (bool, bool) {
        let present = |p: PathBuf| self.storage.exists(&p);
        (
            present(self.segment_path(base)),
            present(self.compressed_path(base)),
        )
    }
}

/// File name suffix of a compressed segment (SPEC §12).
pub const COMPRESSED_SUFFIX: &str = ".segz";

/// How a segment is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SegmentForm {
    /// `NNNN.seg`: the segment's bytes as written.
    Plain,
    /// `NNNN.segz`: a sealed segment compacted (SPEC §12).
    Compressed,
}

pub fn parse_segment_name(name: &str) -> Option<u64> {
    parse_stem(name.strip_suffix(".seg")?)
}

/// A segment file name in either form.
pub fn parse_any_segment_name(name: &str) -> Option<(u64, SegmentForm)> {
    if let Some(stem) = name.strip_suffix(COMPRESSED_SUFFIX) {
        return parse_stem(stem).map(|b| (b, SegmentForm::Compressed));
    }
    parse_segment_name(name).map(|b| (b, SegmentForm::Plain))
}

fn parse_stem(stem: &str) -> Option<u64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Options for `init`.
pub struct InitOptions {
    pub segment_bytes: u64,
    pub key_file: Option<PathBuf>,
    /// Clock jump tolerance in seconds (`None`: the default, 300).
    pub clock_skew_tolerance_s: Option<u64>,
}

/// Creates the directory layout and the key through `s`, and returns the
/// metadata *unwritten*: the caller writes the first segment and then
/// `argus.json`, last, so that a crash anywhere in `init` leaves either a
/// whole log or a directory that is not a log (no `argus.json`), never a
/// log whose key or first segment a power cut took back.
pub fn create_on(s: &dyn Storage, root: &Path, opts: &InitOptions) -> Result<(Meta, SigningKey)> {
    // Only for its paths: every operation below goes through `s`.
    let dir = LogDir::new(root);
    // A log is created only in a new or empty directory: `init /etc` must
    // not scatter argus.json, keys/ and segments/ among someone's files.
    // `root` itself may be a link to a directory (the user chose it), so
    // it is listed as `root/.`, which follows that one link.
    match s.kind_of(root)? {
        None => create_dir_all_on(s, root)?,
        Some(FileKind::Directory | FileKind::Symlink) => {
            if s.kind_of(&dir.meta_path())?.is_some() || s.kind_of(&dir.segments_dir())?.is_some() {
                return Err(Error::AlreadyALog { dir: root.into() });
            }
            if !s.list_dir(&root.join("."))?.is_empty() {
                return Err(Error::NotEmpty { dir: root.into() });
            }
        }
        Some(kind) => {
            return Err(Error::NotADirectory {
                path: root.into(),
                kind,
            })
        }
    }
    let (key, key_file) = match &opts.key_file {
        Some(p) => (
            keys::load_on(s, p)?,
            fs::canonicalize(p).at(p)?.display().to_string(),
        ),
        None => {
            let kdir = root.join("keys");
            // Not create_dir_all: the directory was empty, so anything at
            // this name now was planted and is refused.
            s.create_dir(&kdir)?;
            let key = keys::generate()?;
            keys::write_new_on(s, &kdir.join("signing.key"), &key)?;
            s.sync_dir(&kdir)?;
            (key, "keys/signing.key".to_string())
        }
    };
    let mut log_id = [0u8; 16];
    getrandom::fill(&mut log_id).map_err(|e| Error::random("a log id", e))?;
    let meta = Meta {
        format: "argus.log".into(),
        version: log_format::FORMAT_VERSION,
        log_id: hex::encode(log_id),
        public_key: hex::encode(key.verifying_key().as_bytes()),
        segment_bytes: opts.segment_bytes,
        key_file,
        clock_skew_tolerance_s: opts.clock_skew_tolerance_s,
        key_epochs: Vec::new(),
        pending_rotation: None,
        retired_key_file: None,
        path: dir.meta_path(),
    };
    s.create_dir(&dir.segments_dir())?;
    // keys/ and segments/ themselves survive a power cut from here on.
    s.sync_dir(root)?;
    Ok((meta, key))
}

/// `create_dir_all` through `s`: each missing directory is made and its
/// parent synced. Existing ancestors are the user's, links included.
fn create_dir_all_on(s: &dyn Storage, path: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(p) = at {
        if p.as_os_str().is_empty() || s.kind_of(p)?.is_some() {
            break;
        }
        missing.push(p);
        at = p.parent();
    }
    for p in missing.into_iter().rev() {
        storage::ensure_dir(s, p)?;
    }
    Ok(())
}

/// fsync a directory so a rename or create in it survives a crash.
pub fn sync_dir(path: &Path) -> Result<()> {
    fs::File::open(path).and_then(|f| f.sync_all()).at(path)
}
