//! `DIR/argusd.json`: how clients on this host find the running daemon.
//!
//! Written when argusd is ready and removed on a clean stop. A file left by
//! a killed daemon names a pid that is gone (or is no longer argusd), which
//! clients check before they trust it; the next argusd replaces it.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DISCOVERY_FILE: &str = "argusd.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    pub pid: u32,
    /// `http://127.0.0.1:7117`, or `None` when only the socket is served.
    pub url: Option<String>,
    pub socket: Option<PathBuf>,
    pub version: String,
}

impl Discovery {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(DISCOVERY_FILE)
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        crate::log::safe_fs::write_whole(
            &dir.join(".argusd.json.tmp"),
            &Self::path(dir),
            &bytes,
            0o644,
            crate::log::safe_fs::Durability::Synced,
        )?;
        Ok(())
    }

    /// The daemon named in `DIR/argusd.json`, if that process is alive.
    pub fn read_live(dir: &Path) -> Option<Self> {
        let bytes = crate::log::safe_fs::read_capped(&Self::path(dir), 64 << 10).ok()?;
        let d: Self = serde_json::from_slice(&bytes).ok()?;
        let pid = i32::try_from(d.pid).ok()?;
        // Signal 0 checks that the pid exists without touching it.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
        Some(d)
    }

    /// Removes the file if it still names this process.
    pub fn remove(dir: &Path) {
        let path = Self::path(dir);
        let ours = crate::log::safe_fs::read_capped(&path, 64 << 10)
            .ok()
            .and_then(|b| serde_json::from_slice::<Self>(&b).ok())
            .is_some_and(|d| d.pid == std::process::id());
        if ours {
            let _ = std::fs::remove_file(path);
        }
    }
}
