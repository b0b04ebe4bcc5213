//! `Daemon`: a real `argusd` child on an ephemeral loopback port, serving a
//! log made by `argusctl init` in its own temp dir.
//!
//! Readiness is what clients use too: `DIR/argusd.json` naming the child's
//! pid (a file left by a killed predecessor names another pid and is not
//! trusted). Every wait is bounded, stderr goes to a file (a full pipe
//! would stall the daemon), and the child is killed when the value drops,
//! so a failed assertion never leaves a daemon running.
use crate::common;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a start, a stop or a restart may take.
pub const READY_WITHIN: Duration = Duration::from_secs(20);

pub fn argusd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_argusd")
}

/// `config` with the relief valve off unless it configures one. The valve
/// reads the host (load, memory, disk) and writes an `incident.declared`
/// when the host is under pressure, as a loaded CI machine is: an entry
/// no test sent, which broke tests that count entries. Tests of the valve
/// configure it and so keep it.
pub fn without_relief(mut config: Value) -> Value {
    if let Some(root) = config.as_object_mut() {
        let auditor = root
            .entry("auditor")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(a) = auditor.as_object_mut() {
            a.entry("relief")
                .or_insert_with(|| serde_json::json!({"enabled": false}));
        }
    }
    config
}

pub struct Daemon {
    tmp: TempDir,
    /// The log directory.
    pub dir: PathBuf,
    /// The log's public key, for `argusctl verify --key`.
    pub key: String,
    /// `127.0.0.1:PORT` of the running child (empty before the first start).
    pub addr: String,
    pub args: Vec<String>,
    child: Option<Child>,
    /// RLIMIT_FSIZE for the child, in KiB (a write past it fails as on a
    /// full disk).
    pub file_limit_kib: Option<u64>,
}

impl Daemon {
    /// A fresh log, not yet served. `config` is written as the `--config`
    /// file when given; `extra` are more argusd arguments.
    pub fn new(config: Option<Value>, extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("log");
        let key = common::init_at(&dir, None);
        let mut args: Vec<String> = vec![
            "--dir".into(),
            dir.display().to_string(),
            "--log-format".into(),
            "json".into(),
        ];
        if !extra.contains(&"--socket") {
            args.push("--socket".into());
            args.push("none".into());
        }
        let cfg = without_relief(config.unwrap_or_else(|| serde_json::json!({})));
        let path = tmp.path().join("argusd-config.json");
        std::fs::write(&path, cfg.to_string()).expect("write config");
        args.push("--config".into());
        args.push(path.display().to_string());
        if !extra.contains(&"--listen") {
            args.push("--listen".into());
            args.push("127.0.0.1:0".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Self {
            tmp,
            dir,
            key,
            addr: String::new(),
            args,
            child: None,
            file_limit_kib: None,
        }
    }

    /// A fresh log served with default limits.
    pub fn start() -> Self {
        Self::with(None, &[])
    }

    /// A fresh log served with `{"limits": limits}` as its config.
    pub fn with_limits(limits: Value) -> Self {
        Self::with(Some(serde_json::json!({ "limits": limits })), &[])
    }

    pub fn with(config: Option<Value>, extra: &[&str]) -> Self {
        let mut d = Self::new(config, extra);
        d.spawn();
        d
    }

    /// `argusd`'s stderr across all its runs (JSON lines).
    pub fn stderr_path(&self) -> PathBuf {
        self.tmp.path().join("argusd.stderr")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    pub fn scratch(&self) -> &Path {
        self.tmp.path()
    }

    fn command(&self) -> Command {
        let err: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("open stderr file");
        let mut c = match self.file_limit_kib {
            // `exec` keeps the pid that argusd.json must name.
            Some(kib) => {
                let mut c = Command::new("bash");
                c.args([
                    "-c",
                    &format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""),
                ])
                .arg(argusd_bin());
                c
            }
            None => Command::new(argusd_bin()),
        };
        c.args(&self.args)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("USER", "tester")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        c
    }

    /// Starts the child and waits until it serves.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "argusd is already running");
        let child = self.command().spawn().expect("spawn argusd");
        let pid = child.id();
        self.child = Some(child);
        let end = Instant::now() + READY_WITHIN;
        loop {
            if let Some(url) = self.discovered(pid) {
                self.addr = url
                    .strip_prefix("http://")
                    .unwrap_or_else(|| panic!("argusd.json url {url:?} is not http://"))
                    .to_string();
                return;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "argusd exited ({st}) before it was ready\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            if Instant::now() > end {
                panic!(
                    "argusd did not write argusd.json naming pid {pid} within {READY_WITHIN:?}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The URL in `argusd.json` if it names `pid`.
    fn discovered(&self, pid: u32) -> Option<String> {
        let bytes = std::fs::read(self.dir.join("argusd.json")).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        if v["pid"].as_u64() != Some(u64::from(pid)) {
            return None;
        }
        v["url"].as_str().map(str::to_string)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("argusd is not running").id()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// SIGKILL and reap: the log is left exactly as the kill found it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` without waiting.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal argusd");
    }

    /// SIGTERM; waits (bounded) for the exit and returns its status.
    pub fn term(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(READY_WITHIN)
    }

    /// Waits for the child to exit by itself; panics (after killing it)
    /// past `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("argusd is not running");
        let end = Instant::now() + within;
        loop {
            if let Some(st) = c.try_wait().expect("wait argusd") {
                return st;
            }
            if Instant::now() > end {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "argusd did not exit within {within:?}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same log (after `kill9` or `term`).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Runs argusd with `args` (replacing the usual `--listen`) and expects
    /// it to exit by itself; returns the status and its stderr.
    pub fn run_to_exit(&mut self, extra: &[&str]) -> (ExitStatus, String) {
        assert!(self.child.is_none(), "argusd is already running");
        let saved = self.args.clone();
        if let Some(i) = self.args.iter().position(|a| a == "--listen") {
            self.args.drain(i..i + 2);
        }
        self.args.extend(extra.iter().map(|s| s.to_string()));
        let before = self.stderr().len();
        self.child = Some(self.command().spawn().expect("spawn argusd"));
        let st = self.wait_exit(READY_WITHIN);
        self.args = saved;
        let err = self.stderr()[before..].to_string();
        (st, err)
    }

    /// `argusctl stats DIR` entries.
    pub fn entries(&self) -> u64 {
        common::stats(&self.dir)["entries"]
            .as_u64()
            .expect("stats.entries")
    }

    /// `argusctl cat DIR -o json`.
    pub fn cat(&self) -> Vec<Value> {
        common::cat_json(&self.dir, &[])
    }

    /// `argusctl verify DIR --key KEY` must exit 0.
    pub fn assert_verifies(&self) {
        common::verify(&self.dir, &self.key, &[]).assert_ok();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
