//! The kill-switch flag files, `DIR/control/hard_kill.flag` and
//! `DIR/control/write_lockdown.flag` (ADR-018 S5).
//!
//! The log is the truth; a flag is a mirror of a standing decision for
//! things that cannot read the log (a shell wrapper, a cron job, a second
//! machine's sync). Each is written whole or not at all (temp file, fsync,
//! rename, fsync of the directory) and removed the same way, so a crash
//! leaves the old flag or the new one, never half of one. Someone who
//! writes or deletes a flag by hand changes nothing the log says:
//! `argusctl status` reports the difference.
//!
//! The `_on` functions do their file I/O through a `Storage` (invariant
//! 24); the plain ones are them on the real file system.
use super::safe_fs::Durability;
use super::storage::{self, RealFs, Storage};
use crate::error::{IoContext, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DIR_NAME: &str = "control";
/// Flags are a few hundred bytes; anything larger is not ours.
const FLAG_CAP: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    HardKill,
    Lockdown,
}

impl Flag {
    pub const ALL: [Flag; 2] = [Flag::HardKill, Flag::Lockdown];

    pub fn file_name(self) -> &'static str {
        match self {
            Self::HardKill => "hard_kill.flag",
            Self::Lockdown => "write_lockdown.flag",
        }
    }

    /// The decision kind this flag mirrors.
    pub fn kind(self) -> &'static str {
        match self {
            Self::HardKill => "kill.hard",
            Self::Lockdown => "lockdown.set",
        }
    }
}

/// What a flag file holds: the decision it mirrors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagRecord {
    pub kind: String,
    pub seq: u64,
    pub reason: String,
    /// The decision's time (RFC 3339, the writer's clock).
    pub ts: String,
    pub actor: String,
}

pub fn control_dir(root: &Path) -> PathBuf {
    root.join(DIR_NAME)
}

pub fn path(root: &Path, flag: Flag) -> PathBuf {
    control_dir(root).join(flag.file_name())
}

/// `DIR/control`, created (durably) if it is not there yet; refused when
/// it is a link or not a directory.
pub fn ensure_control_dir(root: &Path) -> Result<PathBuf> {
    ensure_control_dir_on(&RealFs, root)
}

/// `ensure_control_dir` through `s`.
pub fn ensure_control_dir_on(s: &dyn Storage, root: &Path) -> Result<PathBuf> {
    let dir = control_dir(root);
    storage::ensure_dir(s, &dir)?;
    Ok(dir)
}

/// Writes the flag whole and durably; replaces one already there.
pub fn write(root: &Path, flag: Flag, rec: &FlagRecord) -> Result<()> {
    write_on(&RealFs, root, flag, rec)
}

/// `write` through `s`.
pub fn write_on(s: &dyn Storage, root: &Path, flag: Flag, rec: &FlagRecord) -> Result<()> {
    let dir = ensure_control_dir_on(s, root)?;
    let mut bytes = serde_json::to_vec_pretty(rec).unwrap_or_default();
    bytes.push(b'\n');
    let dest = path(root, flag);
    let tmp = dir.join(format!(".{}.tmp", flag.file_name()));
    s.write_whole(&tmp, &dest, &bytes, 0o644, Durability::Synced)
}

/// Removes the flag durably; `false` if there was none.
pub fn remove(root: &Path, flag: Flag) -> Result<bool> {
    remove_on(&RealFs, root, flag)
}

/// `remove` through `s`.
pub fn remove_on(s: &dyn Storage, root: &Path, flag: Flag) -> Result<bool> {
    let p = path(root, flag);
    match s.remove_file(&p) {
        Ok(()) => {
            s.sync_dir(&control_dir(root))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at(&p),
    }
}

/// What is on disk for one flag.
#[derive(Debug, Clone, PartialEq)]
pub enum OnDisk {
    Absent,
    Record(FlagRecord),
    /// Present but not a flag we wrote (not a regular file, too large, or
    /// not our JSON): the text says what is wrong.
    Foreign(String),
}

pub fn read(root: &Path, flag: Flag) -> OnDisk {
    read_on(&RealFs, root, flag)
}

/// `read` through `s`.
pub fn read_on(s: &dyn Storage, root: &Path, flag: Flag) -> OnDisk {
    let p = path(root, flag);
    match s.kind_of(&p) {
        Ok(None) => return OnDisk::Absent,
        Err(e) => return OnDisk::Foreign(e.to_string()),
        Ok(Some(_)) => {}
    }
    let bytes = match s.read_capped(&p, FLAG_CAP) {
        Ok(b) => b,
        Err(e) => return OnDisk::Foreign(e.to_string()),
    };
    match serde_json::from_slice::<FlagRecord>(&bytes) {
        Ok(r) => OnDisk::Record(r),
        Err(e) => OnDisk::Foreign(format!("{}: not a flag record: {e}", p.display())),
    }
}
