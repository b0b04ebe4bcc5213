//! The argusd under test and a minimal HTTP/1.1 client for it, for
//! `benches/daemon.rs` and `benches/auditor.rs` (included there with
//! `#[path]`; the other benches do not need a daemon). A bench that does
//! not use every helper would warn; hence the allow.
#![allow(dead_code)]

use super::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The daemon under test.

/// A release argusd on 127.0.0.1:0 over a fresh log; SIGTERM on drop.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(prefix: &str) -> Self {
        Self::start_with(prefix, None, &[]).0
    }

    /// A daemon with `config` as its `--config` file and an agent token for
    /// each of `agents` (issued with `argusctl token add` before it starts);
    /// the tokens by agent name.
    pub fn start_with(
        prefix: &str,
        config: Option<serde_json::Value>,
        agents: &[String],
    ) -> (Self, std::collections::HashMap<String, String>) {
        let dir = temp_dir(prefix);
        let log = dir.path().join("log");
        let mut tokens = std::collections::HashMap::new();
        if !agents.is_empty() {
            argusctl(&["init", &log.display().to_string()]);
            for a in agents {
                let out = argusctl(&[
                    "token",
                    "add",
                    &log.display().to_string(),
                    "--name",
                    a,
                    "--role",
                    "agent",
                    "-o",
                    "json",
                    "--server",
                    "local",
                ]);
                let v: serde_json::Value =
                    serde_json::from_slice(&out).expect("token add printed JSON");
                let t = v["token"].as_str().expect("token add printed a token");
                tokens.insert(a.clone(), t.to_string());
            }
        }
        let mut extra = Vec::new();
        if let Some(c) = config {
            let path = dir.path().join("argusd-config.json");
            std::fs::write(&path, c.to_string()).expect("write the argusd config");
            extra.push("--config".to_string());
            extra.push(path.display().to_string());
        }
        let stderr = std::fs::File::create(dir.path().join("argusd.stderr"))
            .expect("create the argusd stderr file");
        let child = Command::new(argusd_path())
            .arg("--dir")
            .arg(&log)
            .args(["--init", "--listen", "127.0.0.1:0", "--socket", "none"])
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn argusd");
        let mut d = Daemon {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        d.addr = d.wait_ready(&log);
        (d, tokens)
    }

    /// Polls `argusd.json` until it names this child, then its address.
    fn wait_ready(&mut self, log: &Path) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid = self.child.id() as u64;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("argusd exited at start ({status}): {}", self.stderr());
            }
            let found = std::fs::read(log.join("argusd.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter(|v| v["pid"].as_u64() == Some(pid))
                .and_then(|v| {
                    v["url"]
                        .as_str()
                        .and_then(|u| u.strip_prefix("http://"))
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                });
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "argusd not ready after 30 s: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The log directory argusd serves (its `--dir`).
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The temp dir holding the log (for baselines on the same filesystem).
    pub fn temp_path(&self) -> &Path {
        self.dir.path()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("argusd.stderr")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.pid(), field)
    }

    pub fn get(&self, path: &str) -> Result<Vec<u8>, String> {
        let mut c = Conn::connect(self.addr)?;
        let r = c.request("GET", path, None, b"")?;
        if r.status != 200 {
            return Err(format!("GET {path}: status {}", r.status));
        }
        Ok(r.body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is passed.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("argusd did not stop within 30 s of SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs argusctl (next to argusd) and returns its stdout; panics on failure.
fn argusctl(args: &[&str]) -> Vec<u8> {
    let bin = argusd_path().with_file_name("argusctl");
    let out = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "argusctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one keep-alive connection, Content-Length
// requests, Content-Length or chunked responses. Blocking, one thread each,
// so the bench measures the server and not a client runtime.

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
    pub chunked: bool,
}

pub struct Conn {
    r: BufReader<TcpStream>,
    pub w: TcpStream,
    out: Vec<u8>,
    /// Sent as `Authorization: Bearer <token>` with each request.
    pub token: Option<std::sync::Arc<str>>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Result<Self, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let w = s.try_clone().map_err(|e| format!("clone socket: {e}"))?;
        Ok(Self {
            r: BufReader::with_capacity(64 << 10, s),
            w,
            out: Vec::with_capacity(4096),
            token: None,
        })
    }

    /// Sends one request (head and body in one write).
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        self.out.clear();
        let _ = write!(self.out, "{method} {path} HTTP/1.1\r\nHost: bench\r\n");
        if let Some(t) = &self.token {
            let _ = write!(self.out, "Authorization: Bearer {t}\r\n");
        }
        if let Some(ct) = content_type {
            let _ = write!(
                self.out,
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                body.len()
            );
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        self.w
            .write_all(&self.out)
            .map_err(|e| format!("send {method} {path}: {e}"))
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, String> {
        self.send(method, path, content_type, body)?;
        let head = self.read_head()?;
        let body = if head.chunked {
            let mut all = Vec::new();
            while let Some(c) = self.read_chunk()? {
                all.extend_from_slice(&c);
            }
            all
        } else {
            let mut b = vec![0; head.content_length.unwrap_or(0)];
            self.r
                .read_exact(&mut b)
                .map_err(|e| format!("reading the response body: {e}"))?;
            b
        };
        Ok(Response {
            status: head.status,
            body,
        })
    }

    fn read_line(&mut self, line: &mut String) -> Result<(), String> {
        line.clear();
        match self.r.read_line(line) {
            Ok(0) => Err("connection closed by argusd".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("reading the response: {e}")),
        }
    }

    pub fn read_head(&mut self) -> Result<Head, String> {
        let mut line = String::new();
        self.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut head = Head {
            status,
            content_length: None,
            chunked: false,
        };
        loop {
            self.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                return Ok(head);
            }
            let Some((name, value)) = l.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }

    /// The next chunk of a chunked body; `None` after the last one.
    pub fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut line = String::new();
        self.read_line(&mut line)?;
        let hex = line.trim_end().split(';').next().unwrap_or("");
        let n = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        if n == 0 {
            loop {
                self.read_line(&mut line)?;
                if line.trim_end().is_empty() {
                    return Ok(None);
                }
            }
        }
        let mut b = vec![0; n + 2];
        self.r
            .read_exact(&mut b)
            .map_err(|e| format!("reading a chunk: {e}"))?;
        b.truncate(n);
        Ok(Some(b))
    }
}

/// The argusd Cargo built for this bench, or `ARGUSD` (to compare two
/// builds of the daemon with the same bench).
pub fn argusd_path() -> PathBuf {
    std::env::var_os("ARGUSD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_argusd")))
}
