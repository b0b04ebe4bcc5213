//! An in-memory file system behind `argus::log::storage::Storage` that
//! injects one seeded fault and simulates power cuts (SPEC §7.1).
//!
//! Per file it keeps what reads see (`data`, the page cache), what a power
//! cut cannot take away (`durable`, as of the last completed sync) and the
//! writes in between (`pending`). A power cut keeps, loses, keeps a prefix
//! of, or zero-fills each 4 KiB page of every pending write independently,
//! so any subset of pages in any order can survive. Names work the same
//! way: creates, renames and unlinks are durable once their directory is
//! synced; a power cut keeps a prefix of the rest (a journal replays in
//! order).
//!
//! A failed fsync behaves as Linux's did in fsyncgate: the pages it could
//! not write are marked clean, so a later fsync that succeeds does not
//! write them. Reads still see them until the power cut.
//!
//! The readers and `verify` read it too (`open_read`): they see what a
//! read of the page cache sees (`data`), copied where `RealFs` would map.
//! A read is not a numbered operation (a power cut "before a read" is one
//! before the next write, and numbering reads would move every crash point
//! of the write campaigns), but fails once the power is off.
use argus::error::{Error, Result};
use argus::log::safe_fs::FileKind;
use argus::log::storage::{DirEntry, LockFile, ReadFile, Storage, StorageFile};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

const PAGE: u64 = 4096;

/// splitmix64: tiny, seedable, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5eed_a7e5_0000_0001)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// The one fault a run injects, counted from when it is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The nth write stores a prefix of its bytes and fails with EIO.
    ShortWrite { nth: u64 },
    /// The nth file sync fails with EIO; its pages may or may not be on disk.
    FsyncEio { nth: u64 },
    /// The nth write stores a prefix and fails with ENOSPC.
    Enospc { nth: u64 },
    /// Power is cut before the operation numbered `at_op`: it and every
    /// later one fail.
    Crash { at_op: u64 },
}

/// What fired, for the invariants and the failure message.
#[derive(Debug, Clone)]
pub struct Fired {
    pub fault: Fault,
    pub path: PathBuf,
    pub op: u64,
}

#[derive(Debug, Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
    /// Permission bits as created (a key file must be 0600).
    mode: u32,
}

#[derive(Debug, Clone)]
enum NsOp {
    Link(PathBuf, usize),
    Rename(PathBuf, PathBuf),
    Unlink(PathBuf),
    Mkdir(PathBuf),
}

impl NsOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            Self::Link(p, _) | Self::Rename(_, p) | Self::Unlink(p) | Self::Mkdir(p) => p.parent(),
        }
    }
    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>, dirs: &mut BTreeSet<PathBuf>) {
        match self {
            Self::Mkdir(p) => {
                dirs.insert(p.clone());
            }
            Self::Link(p, ino) => {
                names.insert(p.clone(), *ino);
            }
            Self::Rename(from, to) => {
                if let Some(ino) = names.remove(from) {
                    names.insert(to.clone(), ino);
                }
            }
            Self::Unlink(p) => {
                names.remove(p);
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    /// Directories: what lookups see, and what a power cut keeps.
    dirs: BTreeSet<PathBuf>,
    durable_dirs: BTreeSet<PathBuf>,
    ns_pending: Vec<NsOp>,
    ops: u64,
    writes: u64,
    syncs: u64,
    armed: Option<Fault>,
    fired: Option<Fired>,
    dead: bool,
    /// Set lengths that shrank a file: recovery cuts.
    shrinks: u64,
    /// Held locks and the token of their holder. A power cut clears them
    /// all, as the death of the process releases an `flock`.
    locks: BTreeMap<PathBuf, u64>,
    next_lock: u64,
}

/// A shared handle: clones see the same files.
#[derive(Clone)]
pub struct SimFs {
    st: Arc<Mutex<State>>,
    rng: Arc<Mutex<Rng>>,
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("Input/output error (simulated: {what})"))
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

fn io_at(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.into(),
        source,
    }
}

fn write_into(buf: &mut Vec<u8>, off: u64, bytes: &[u8]) {
    let end = off as usize + bytes.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[off as usize..end].copy_from_slice(bytes);
}

impl SimFs {
    /// A simulated file system holding, durably, `src/argus.json` and
    /// every regular file under `src/segments`, `src/keys` and
    /// `src/control` at the same path under `root`. The writer `LOCK` and
    /// the clock anchor start absent; the writer makes them here.
    pub fn load(src: &Path, root: &Path, seed: u64) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let mut st = State::default();
        st.dirs.insert(root.into());
        let add = |st: &mut State, from: &Path, to: PathBuf| {
            let bytes = std::fs::read(from).unwrap();
            let mode = std::fs::metadata(from).unwrap().permissions().mode() & 0o7777;
            st.inodes.push(Inode {
                data: bytes.clone(),
                durable: bytes,
                pending: Vec::new(),
                mode,
            });
            st.names.insert(to, st.inodes.len() - 1);
        };
        add(&mut st, &src.join("argus.json"), root.join("argus.json"));
        for sub in ["segments", "keys", "control"] {
            let Ok(list) = std::fs::read_dir(src.join(sub)) else {
                continue;
            };
            st.dirs.insert(root.join(sub));
            for ent in list {
                let ent = ent.unwrap();
                if ent.file_type().unwrap().is_file() {
                    add(&mut st, &ent.path(), root.join(sub).join(ent.file_name()));
                }
            }
        }
        st.durable_names = st.names.clone();
        st.durable_dirs = st.dirs.clone();
        Self {
            st: Arc::new(Mutex::new(st)),
            rng: Arc::new(Mutex::new(Rng::new(seed))),
        }
    }

    /// A simulated file system holding only the (durable, empty)
    /// directory `parent`, for `init` to make a log in.
    pub fn empty(parent: &Path, seed: u64) -> Self {
        let mut st = State::default();
        st.dirs.insert(parent.into());
        st.durable_dirs = st.dirs.clone();
        Self {
            st: Arc::new(Mutex::new(st)),
            rng: Arc::new(Mutex::new(Rng::new(seed))),
        }
    }

    /// How many operations have been counted since `arm` (or the start).
    pub fn ops(&self) -> u64 {
        self.st().ops
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(self.clone())
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn rng(&self) -> MutexGuard<'_, Rng> {
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms `fault`; its counts start now.
    pub fn arm(&self, fault: Fault) {
        let mut st = self.st();
        st.ops = 0;
        st.writes = 0;
        st.syncs = 0;
        st.armed = Some(fault);
        st.fired = None;
    }

    /// Drops a fault that has not fired (the run ended before its turn).
    pub fn disarm(&self) {
        self.st().armed = None;
    }

    pub fn fired(&self) -> Option<Fired> {
        self.st().fired.clone()
    }

    /// Segment files whose bytes or name a power cut could still take:
    /// after an ack there must be none (the writer is idle between
    /// commits but for the sparse index, which is not a segment).
    pub fn unsynced_segments(&self) -> Vec<PathBuf> {
        let st = self.st();
        st.names
            .iter()
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
            .filter(|(p, &i)| {
                let ino = &st.inodes[i];
                ino.data != ino.durable || st.durable_names.get(*p) != Some(&i)
            })
            .map(|(p, _)| p.clone())
            .collect()
    }

    pub fn shrinks(&self) -> u64 {
        self.st().shrinks
    }

    /// Counts one operation; fails it if the power is (now) off.
    fn op(&self, st: &mut State, path: &Path) -> io::Result<()> {
        st.ops += 1;
        if let Some(Fault::Crash { at_op }) = st.armed {
            if st.ops >= at_op {
                st.armed = None;
                st.dead = true;
                st.fired = Some(Fired {
                    fault: Fault::Crash { at_op },
                    path: path.into(),
                    op: st.ops,
                });
            }
        }
        if st.dead {
            return Err(eio("power cut"));
        }
        Ok(())
    }

    fn fire(st: &mut State, path: &Path) {
        if let Some(fault) = st.armed.take() {
            st.fired = Some(Fired {
                fault,
                path: path.into(),
                op: st.ops,
            });
        }
    }

    /// The power cut: every file becomes what the disk may hold, chosen by
    /// the seed; then the power comes back (nothing armed, nothing dead).
    pub fn crash(&self) {
        let mut st = self.st();
        let mut rng = self.rng();
        for ino in st.inodes.iter_mut() {
            let mut disk = std::mem::take(&mut ino.durable);
            for p in std::mem::take(&mut ino.pending) {
                survive(&mut rng, &mut disk, &p);
            }
            ino.data = disk.clone();
            ino.durable = disk;
        }
        let pending = std::mem::take(&mut st.ns_pending);
        let keep = rng.below(pending.len() as u64 + 1) as usize;
        let mut names = std::mem::take(&mut st.durable_names);
        let mut dirs = std::mem::take(&mut st.durable_dirs);
        for op in &pending[..keep] {
            op.apply(&mut names, &mut dirs);
        }
        // A name in a directory whose own creation was lost goes with it.
        names.retain(|p, _| p.parent().is_some_and(|d| dirs.contains(d)));
        st.names = names.clone();
        st.durable_names = names;
        st.dirs = dirs.clone();
        st.durable_dirs = dirs;
        st.armed = None;
        st.dead = false;
        st.locks.clear();
    }

    /// Flips one bit of a file's durable bytes (media corruption).
    pub fn flip_bit(&self, path: &Path, bit: u64) {
        let mut st = self.st();
        let ino = st.names[path];
        let i = &mut st.inodes[ino];
        let byte = (bit / 8) as usize;
        i.data[byte] ^= 1 << (bit % 8);
        i.durable[byte] ^= 1 << (bit % 8);
    }

    /// Replaces a file's bytes, durably (for the torn-write walk).
    pub fn set_durable(&self, path: &Path, bytes: Vec<u8>) {
        let mut st = self.st();
        let ino = st.names[path];
        let i = &mut st.inodes[ino];
        i.data = bytes.clone();
        i.durable = bytes;
        i.pending.clear();
    }

    /// Whether `path` names a file now.
    pub fn has(&self, path: &Path) -> bool {
        self.st().names.contains_key(path)
    }

    /// A file's current bytes, if it has the name.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.st();
        st.names.get(path).map(|&i| st.inodes[i].data.clone())
    }

    /// The permission bits a file was created with.
    pub fn mode(&self, path: &Path) -> Option<u32> {
        let st = self.st();
        st.names.get(path).map(|&i| st.inodes[i].mode)
    }

    /// Every name under `dir` with its current bytes, in name order.
    pub fn files(&self, dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let st = self.st();
        st.names
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, &i)| (p.clone(), st.inodes[i].data.clone()))
            .collect()
    }

    /// Writes every file under `root` to the same place under `to`.
    pub fn dump(&self, root: &Path, to: &Path) {
        let st = self.st();
        for (p, &i) in &st.names {
            let rel = p.strip_prefix(root).unwrap();
            let dest = to.join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(&dest, &st.inodes[i].data).unwrap();
            // The mode it was created with (a key is refused unless 0600).
            let mode = std::os::unix::fs::PermissionsExt::from_mode(st.inodes[i].mode);
            std::fs::set_permissions(&dest, mode).unwrap();
        }
    }

    fn parent_exists(st: &State, path: &Path) -> Result<()> {
        match path.parent() {
            Some(d) if !st.dirs.contains(d) => {
                Err(io_at(path, io::Error::from(io::ErrorKind::NotFound)))
            }
            _ => Ok(()),
        }
    }

    fn lookup(st: &State, path: &Path) -> Result<usize> {
        st.names
            .get(path)
            .copied()
            .ok_or_else(|| io_at(path, io::Error::from(io::ErrorKind::NotFound)))
    }

    fn file(&self, path: &Path, ino: usize) -> Box<dyn StorageFile> {
        Box::new(SimFile {
            fs: self.clone(),
            path: path.into(),
            ino,
        })
    }
}

/// What a power cut leaves of one pending operation on `disk`.
fn survive(rng: &mut Rng, disk: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::SetLen(n) => {
            if rng.chance(1, 2) {
                disk.resize(*n as usize, 0);
            }
        }
        Pending::Write(off, bytes) => {
            let mut at = *off;
            let end = off + bytes.len() as u64;
            while at < end {
                let page_end = ((at / PAGE) + 1) * PAGE;
                let stop = page_end.min(end);
                let chunk = &bytes[(at - off) as usize..(stop - off) as usize];
                match rng.below(4) {
                    0 => write_into(disk, at, chunk),
                    1 => {}
                    2 => {
                        let k = rng.below(chunk.len() as u64 + 1) as usize;
                        write_into(disk, at, &chunk[..k]);
                    }
                    _ => {
                        // The size reached past the page, its data did not.
                        if (disk.len() as u64) < stop {
                            disk.resize(stop as usize, 0);
                        }
                    }
                }
                at = stop;
            }
        }
    }
}

struct SimFile {
    fs: SimFs,
    path: PathBuf,
    ino: usize,
}

impl SimFile {
    fn sync(&self) -> io::Result<()> {
        let mut st = self.fs.st();
        self.fs.op(&mut st, &self.path)?;
        st.syncs += 1;
        if let Some(Fault::FsyncEio { nth }) = st.armed {
            if st.syncs >= nth {
                SimFs::fire(&mut st, &self.path);
                // fsyncgate: some pages reached the disk, the rest are
                // marked clean and will never be written by a later sync.
                let mut rng = self.fs.rng();
                let ino = &mut st.inodes[self.ino];
                let mut disk = std::mem::take(&mut ino.durable);
                for p in std::mem::take(&mut ino.pending) {
                    survive(&mut rng, &mut disk, &p);
                }
                ino.durable = disk;
                return Err(eio("fsync failed"));
            }
        }
        let ino = &mut st.inodes[self.ino];
        for p in std::mem::take(&mut ino.pending) {
            match p {
                Pending::Write(off, b) => write_into(&mut ino.durable, off, &b),
                Pending::SetLen(n) => ino.durable.resize(n as usize, 0),
            }
        }
        Ok(())
    }
}

impl StorageFile for SimFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut st = self.fs.st();
        self.fs.op(&mut st, &self.path)?;
        st.writes += 1;
        let fail = match st.armed {
            Some(Fault::ShortWrite { nth }) if st.writes >= nth => Some(eio("short write")),
            Some(Fault::Enospc { nth }) if st.writes >= nth => Some(enospc()),
            _ => None,
        };
        let n = if fail.is_some() {
            SimFs::fire(&mut st, &self.path);
            self.fs.rng().below(buf.len() as u64) as usize
        } else {
            buf.len()
        };
        let ino = &mut st.inodes[self.ino];
        write_into(&mut ino.data, offset, &buf[..n]);
        if n > 0 {
            ino.pending.push(Pending::Write(offset, buf[..n].to_vec()));
        }
        fail.map_or(Ok(()), Err)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.fs.st();
        self.fs.op(&mut st, &self.path)?;
        let ino = &mut st.inodes[self.ino];
        let shrink = (len as usize) < ino.data.len();
        ino.data.resize(len as usize, 0);
        ino.pending.push(Pending::SetLen(len));
        if shrink {
            st.shrinks += 1;
        }
        Ok(())
    }
}

/// A file opened to read: like a descriptor, it reads the inode it opened,
/// whatever has the name later.
struct SimReadFile {
    fs: SimFs,
    path: PathBuf,
    ino: usize,
}

impl SimReadFile {
    fn live(&self) -> Result<MutexGuard<'_, State>> {
        let st = self.fs.st();
        if st.dead {
            return Err(io_at(&self.path, eio("power cut")));
        }
        Ok(st)
    }
}

impl ReadFile for SimReadFile {
    fn size(&self) -> Result<u64> {
        Ok(self.live()?.inodes[self.ino].data.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let st = self.live()?;
        let data = &st.inodes[self.ino].data;
        let from = offset as usize;
        match data.get(from..from + buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => Err(io_at(
                &self.path,
                io::Error::from(io::ErrorKind::UnexpectedEof),
            )),
        }
    }
}

/// The simulated writer lock: a token in `State::locks` while held.
struct SimLock {
    fs: SimFs,
    path: PathBuf,
    ino: usize,
    token: std::sync::atomic::AtomicU64,
}

impl LockFile for SimLock {
    fn try_lock(&self) -> io::Result<bool> {
        use std::sync::atomic::Ordering;
        let mut st = self.fs.st();
        if st.dead {
            return Err(eio("power cut"));
        }
        if st.locks.contains_key(&self.path) {
            return Ok(false);
        }
        st.next_lock += 1;
        let token = st.next_lock;
        st.locks.insert(self.path.clone(), token);
        self.token.store(token, Ordering::SeqCst);
        Ok(true)
    }
    fn read_text(&self, cap: usize) -> Vec<u8> {
        let st = self.fs.st();
        let data = &st.inodes[self.ino].data;
        data[..data.len().min(cap)].to_vec()
    }
    fn replace_text(&self, text: &[u8]) -> io::Result<()> {
        let mut st = self.fs.st();
        self.fs.op(&mut st, &self.path)?;
        let ino = &mut st.inodes[self.ino];
        ino.data = text.to_vec();
        ino.pending.push(Pending::SetLen(0));
        ino.pending.push(Pending::Write(0, text.to_vec()));
        Ok(())
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let token = *self.token.get_mut();
        let mut st = self.fs.st();
        // A holder from before a power cut must not release its successor.
        if token != 0 && st.locks.get(&self.path) == Some(&token) {
            st.locks.remove(&self.path);
        }
    }
}

impl Storage for SimFs {
    fn open_lock(&self, path: &Path) -> Result<Box<dyn LockFile>> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        let ino = match st.names.get(path) {
            Some(&ino) => ino,
            None => {
                Self::parent_exists(&st, path)?;
                st.inodes.push(Inode {
                    mode: 0o644,
                    ..Inode::default()
                });
                let ino = st.inodes.len() - 1;
                st.names.insert(path.into(), ino);
                st.ns_pending.push(NsOp::Link(path.into(), ino));
                ino
            }
        };
        Ok(Box::new(SimLock {
            fs: self.clone(),
            path: path.into(),
            ino,
            token: std::sync::atomic::AtomicU64::new(0),
        }))
    }
    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadFile>> {
        let st = self.st();
        if st.dead {
            return Err(io_at(path, eio("power cut")));
        }
        let ino = Self::lookup(&st, path)?;
        Ok(Box::new(SimReadFile {
            fs: self.clone(),
            path: path.into(),
            ino,
        }))
    }
    fn open_write(&self, path: &Path) -> Result<Box<dyn StorageFile>> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        let ino = Self::lookup(&st, path)?;
        Ok(self.file(path, ino))
    }
    fn create_replacing(&self, path: &Path, mode: u32) -> Result<Box<dyn StorageFile>> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        Self::parent_exists(&st, path)?;
        if st.names.remove(path).is_some() {
            st.ns_pending.push(NsOp::Unlink(path.into()));
        }
        st.inodes.push(Inode {
            mode,
            ..Inode::default()
        });
        let ino = st.inodes.len() - 1;
        st.names.insert(path.into(), ino);
        st.ns_pending.push(NsOp::Link(path.into(), ino));
        Ok(self.file(path, ino))
    }
    fn create_new(&self, path: &Path, mode: u32) -> Result<Box<dyn StorageFile>> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        Self::parent_exists(&st, path)?;
        if st.names.contains_key(path) || st.dirs.contains(path) {
            return Err(io_at(path, io::Error::from(io::ErrorKind::AlreadyExists)));
        }
        st.inodes.push(Inode {
            mode,
            ..Inode::default()
        });
        let ino = st.inodes.len() - 1;
        st.names.insert(path.into(), ino);
        st.ns_pending.push(NsOp::Link(path.into(), ino));
        Ok(self.file(path, ino))
    }
    fn create_dir(&self, path: &Path) -> Result<()> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        Self::parent_exists(&st, path)?;
        if st.names.contains_key(path) || st.dirs.contains(path) {
            return Err(io_at(path, io::Error::from(io::ErrorKind::AlreadyExists)));
        }
        st.dirs.insert(path.into());
        st.ns_pending.push(NsOp::Mkdir(path.into()));
        Ok(())
    }
    fn kind_of(&self, path: &Path) -> Result<Option<FileKind>> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        Ok(if st.names.contains_key(path) {
            Some(FileKind::Regular)
        } else if st.dirs.contains(path) {
            Some(FileKind::Directory)
        } else {
            None
        })
    }
    fn read_capped_mode(&self, path: &Path, cap: u64) -> Result<(Vec<u8>, u32)> {
        let b = self.read_capped(path, cap)?;
        let st = self.st();
        Ok((b, st.inodes[Self::lookup(&st, path)?].mode))
    }
    fn read_all(&self, path: &Path) -> Result<Vec<u8>> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        let ino = Self::lookup(&st, path)?;
        Ok(st.inodes[ino].data.clone())
    }
    fn read_capped(&self, path: &Path, cap: u64) -> Result<Vec<u8>> {
        let b = self.read_all(path)?;
        if b.len() as u64 > cap {
            return Err(Error::TooLarge {
                path: path.into(),
                limit: cap,
            });
        }
        Ok(b)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.st();
        self.op(&mut st, from)?;
        let ino = st
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.names.insert(to.into(), ino);
        st.ns_pending.push(NsOp::Rename(from.into(), to.into()));
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        self.op(&mut st, path)?;
        st.names
            .remove(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.ns_pending.push(NsOp::Unlink(path.into()));
        Ok(())
    }
    fn exists(&self, path: &Path) -> bool {
        self.st().names.contains_key(path)
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        let entry = |p: &PathBuf, kind| {
            (p.parent() == Some(path))
                .then(|| p.file_name())
                .flatten()
                .map(|n| DirEntry {
                    name: n.to_string_lossy().into_owned(),
                    kind,
                })
        };
        let files = st.names.keys().filter_map(|p| entry(p, FileKind::Regular));
        let dirs = st.dirs.iter().filter_map(|p| entry(p, FileKind::Directory));
        Ok(files.chain(dirs).collect())
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        let mut st = self.st();
        self.op(&mut st, path).map_err(|e| io_at(path, e))?;
        // Ops in this directory become durable, in order; the others wait.
        let (now, later): (Vec<NsOp>, Vec<NsOp>) = std::mem::take(&mut st.ns_pending)
            .into_iter()
            .partition(|op| op.dir() == Some(path));
        let State {
            durable_names,
            durable_dirs,
            ..
        } = &mut *st;
        for op in &now {
            op.apply(durable_names, durable_dirs);
        }
        st.ns_pending = later;
        Ok(())
    }
}
