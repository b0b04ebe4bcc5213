//! `--sandbox`: the command runs under bubblewrap with every namespace
//! unshared (so no network but loopback), a read-only view of the root,
//! private `/dev`, `/proc` and `/tmp`, and one writable directory, the
//! workspace, at its own path.
//!
//! bwrap is probed first with the same namespaces and mounts; if it is
//! missing or cannot create them, the call is refused. Nothing ever runs
//! unsandboxed because a sandbox was unavailable.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where bwrap is, unless `ARGUS_BWRAP` names another (tests point it at a
/// missing file to see the refusal). Whoever sets argusctl's environment
/// controls it anyway (LD_PRELOAD), so the variable grants nothing new.
pub const BWRAP: &str = "/usr/bin/bwrap";

pub fn bwrap_path() -> PathBuf {
    std::env::var_os("ARGUS_BWRAP")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(BWRAP), PathBuf::from)
}

/// The isolation options, before the workspace bind.
fn isolation() -> Vec<OsString> {
    [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        // The command is the namespace's pid 1 and bwrap's monitor waits
        // for it, so its rusage (cpu_ms, peak_rss_kb) reaches exec; with
        // bwrap's own init in between, the monitor exits without reaping
        // and the figures would be bwrap's.
        "--as-pid-1",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    .iter()
    .map(OsString::from)
    .collect()
}

/// Runs `bwrap … true` with the same namespaces and mounts as the real run;
/// `Err` carries what bwrap (or the system) said.
pub fn probe(bwrap: &Path) -> Result<(), String> {
    let out = Command::new(bwrap)
        .args(isolation())
        .arg("--")
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{}: {e}", bwrap.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(format!(
        "{} cannot create the sandbox ({}){}",
        bwrap.display(),
        out.status,
        if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        }
    ))
}

/// The workspace as an absolute, resolved directory.
pub fn workspace(given: Option<&Path>) -> Result<PathBuf, String> {
    let p = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?,
    };
    let abs = p
        .canonicalize()
        .map_err(|e| format!("workspace {}: {e}", p.display()))?;
    if !abs.is_dir() {
        return Err(format!("workspace {}: not a directory", abs.display()));
    }
    Ok(abs)
}

/// The command line that runs `argv` in the sandbox.
pub fn command(bwrap: &Path, ws: &Path, argv: &[OsString]) -> Command {
    let mut c = Command::new(bwrap);
    c.args(isolation())
        .arg("--bind")
        .arg(ws)
        .arg(ws)
        .arg("--chdir")
        .arg(ws)
        .arg("--")
        .args(argv);
    c
}

/// Where `prog` would be found inside the sandbox (the same root; relative
/// paths from the workspace), so a missing program is "could not start"
/// (126) here as it is without a sandbox, not bwrap's exit 1.
pub fn resolve(prog: &std::ffi::OsStr, ws: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let as_path = Path::new(prog);
    if as_path.components().count() > 1 || prog.as_encoded_bytes().contains(&b'/') {
        let full = ws.join(as_path);
        return if runnable(&full) {
            Ok(full)
        } else {
            Err(format!("{}: not an executable file", full.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| ws.join(d).join(prog))
        .find(|p| runnable(p))
        .ok_or_else(|| format!("{}: not found in PATH", as_path.display()))
}
