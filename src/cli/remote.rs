//! `argusctl` as a client of a running `argusd`.
//!
//! While a daemon holds a log, it also holds the writer lock and the
//! projections, so a local `append`, decision or view would wait for the
//! lock or the store and fail. When `DIR/argusd.json` names a live daemon
//! (or `--server URL` / `ARGUS_SERVER` names one), commands go through it
//! instead. The daemon runs the same command code and returns the bytes it
//! printed, so the output is identical either way; this module only moves
//! bytes and maps the daemon's answer back to an exit code.
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};

/// Where the daemon listens.
#[derive(Debug, Clone)]
pub enum Target {
    /// `host:port` of an `http://` URL.
    Tcp(String),
    Unix(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Remote {
    pub target: Target,
    token: Option<String>,
}

/// A daemon's whole answer.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `X-Argus-Exit`: the exit code the command gave inside the daemon.
    pub exit: Option<i32>,
}

/// `--server` / `ARGUS_SERVER`, then `DIR/argusd.json` if its pid is alive.
/// `--server local` forces local access.
pub fn find(
    dir: Option<&Path>,
    server: Option<&str>,
    token: Option<String>,
) -> Result<Option<Remote>> {
    if let Some(s) = server {
        if s == "local" {
            return Ok(None);
        }
        return Ok(Some(Remote {
            target: parse_target(s)?,
            token,
        }));
    }
    let Some(dir) = dir else { return Ok(None) };
    let Some(d) = crate::server::Discovery::read_live(dir) else {
        return Ok(None);
    };
    let target = match (&d.socket, &d.url) {
        (Some(sock), _) if sock.exists() => Target::Unix(sock.clone()),
        (_, Some(url)) => parse_target(url)?,
        _ => return Ok(None),
    };
    // A file left by a killed daemon whose pid now names another process:
    // nothing answers there, and the log is this process's to open.
    if !answers(&target) {
        return Ok(None);
    }
    Ok(Some(Remote { target, token }))
}

/// Whether something accepts connections at `target` (within a second).
fn answers(target: &Target) -> bool {
    use std::net::ToSocketAddrs;
    match target {
        Target::Unix(p) => std::os::unix::net::UnixStream::connect(p).is_ok(),
        Target::Tcp(a) => a
            .to_socket_addrs()
            .ok()
            .and_then(|mut it| it.next())
            .is_some_and(|addr| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1))
                    .is_ok()
            }),
    }
}

/// `http://HOST:PORT` or `unix:/path/to/argusd.sock`.
pub fn parse_target(s: &str) -> Result<Target> {
    if let Some(p) = s.strip_prefix("unix:") {
        return Ok(Target::Unix(PathBuf::from(p)));
    }
    let rest = s.strip_prefix("http://").ok_or_else(|| {
        anyhow!("server {s:?}: expected http://HOST:PORT or unix:/path/to/argusd.sock (argusd serves plain HTTP on loopback or a socket)")
    })?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        bail!("server {s:?}: no host:port");
    }
    Ok(Target::Tcp(authority.to_string()))
}

type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

impl Remote {
    fn runtime() -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the HTTP client")
    }

    async fn send(
        &self,
        req: hyper::Request<BoxBody>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let (mut sender, conn) = match &self.target {
            Target::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .with_context(|| format!("connecting to argusd at {a}"))?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
                (sender, tokio::spawn(conn))
            }
            Target::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .with_context(|| format!("connecting to argusd at {}", p.display()))?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
                (sender, tokio::spawn(conn))
            }
        };
        let resp = sender.send_request(req).await.context("talking to argusd");
        drop(conn);
        resp
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: BoxBody,
    ) -> Result<hyper::Request<BoxBody>> {
        let host = match &self.target {
            Target::Tcp(a) => a.clone(),
            Target::Unix(_) => "localhost".into(),
        };
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        Ok(b.body(body)?)
    }

    /// One request with a whole body; the whole answer.
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<Answer> {
        let rt = Self::runtime()?;
        rt.block_on(async {
            let (ct, bytes) = match body {
                Some((ct, b)) => (Some(ct), Bytes::from(b)),
                None => (None, Bytes::new()),
            };
            let body = Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync();
            let resp = self.send(self.request(method, path, ct, body)?).await?;
            let status = resp.status().as_u16();
            let exit = resp
                .headers()
                .get("x-argus-exit")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.parse().ok());
            let body = resp
                .into_body()
                .collect()
                .await
                .context("reading argusd's answer")?;
            Ok(Answer {
                status,
                body: body.to_bytes().to_vec(),
                exit,
            })
        })
    }

    /// A request whose body is fed from `input` (read on its own thread) and
    /// whose answer is handed to `on_chunk` as it arrives: full duplex, so
    /// a streaming append gets its acks while it is still sending.
    pub fn duplex(
        &self,
        method: &str,
        path: &str,
        ct: &str,
        accept: &str,
        input: Option<Box<dyn std::io::Read + Send>>,
        mut on_chunk: impl FnMut(&[u8]) -> Result<std::ops::ControlFlow<()>>,
    ) -> Result<u16> {
        let rt = Self::runtime()?;
        rt.block_on(async {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
            if let Some(mut input) = input {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        match input.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                let chunk = Bytes::copy_from_slice(&buf[..n]);
                                if tx.blocking_send(Ok(Frame::data(chunk))).is_err() {
                                    break;
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                let _ = tx.blocking_send(Err(e));
                                break;
                            }
                        }
                    }
                });
            } else {
                drop(tx);
            }
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|f| (f, rx))
            });
            let body = StreamBody::new(stream).boxed_unsync();
            let mut req = self.request(method, path, Some(ct), body)?;
            req.headers_mut()
                .insert("accept", hyper::header::HeaderValue::from_str(accept)?);
            let resp = self.send(req).await?;
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.context("reading argusd's answer")?;
                if let Some(data) = frame.data_ref() {
                    if on_chunk(data)?.is_break() {
                        break;
                    }
                }
            }
            Ok(status)
        })
    }
}

/// The `message` of an error answer, or the body as text.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string())
}

/// `argusctl append` through the daemon: stdin streams to
/// `POST /v1/entries` and each ack is printed as it commits, exactly as the
/// local command prints it; a refused line ends the run with the same
/// message and exit code (2).
pub fn append(remote: &Remote) -> Result<i32> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut pending = Vec::new();
    let mut acked: u64 = 0;
    let mut last_seq = None;
    let mut first_seq = None;
    let mut failure: Option<(i32, String)> = None;
    let mut closed = None;
    let status = remote.duplex(
        "POST",
        "/v1/entries",
        "application/x-ndjson",
        "application/x-ndjson",
        Some(Box::new(std::io::stdin())),
        |chunk| {
            pending.extend_from_slice(chunk);
            while let Some(p) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=p).collect();
                let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                if let Some(seq) = v.get("seq").and_then(|s| s.as_u64()) {
                    first_seq.get_or_insert(seq);
                    last_seq = Some(seq);
                    acked += 1;
                    if let Err(e) = out.write_all(&line).and_then(|_| out.flush()) {
                        closed = Some(e);
                        return Ok(std::ops::ControlFlow::Break(()));
                    }
                } else if v.get("error").is_some() {
                    failure = Some(error_exit(&v));
                } else {
                    failure = Some((
                        super::EXIT_ERROR,
                        String::from_utf8_lossy(&line).trim().to_string(),
                    ));
                }
            }
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    let seqs = match (first_seq, last_seq) {
        (Some(a), Some(b)) => format!(" (seqs {a}..={b}, last seq {b})"),
        _ => String::new(),
    };
    if let Some(e) = closed {
        let what = if e.kind() == std::io::ErrorKind::BrokenPipe {
            "stdout closed".to_string()
        } else {
            format!("writing acks to stdout: {e}")
        };
        super::eprint(&format!(
            "argusctl: {what}: {acked} entries committed{seqs}; stopping"
        ));
        return Ok(super::EXIT_ERROR);
    }
    if status != 200 && failure.is_none() {
        failure = Some(error_exit(
            &serde_json::from_slice(&pending).unwrap_or_default(),
        ));
    }
    match failure {
        None => Ok(0),
        Some((code, msg)) => {
            super::eprint(&super::safe::line(&format!("argusctl: {msg}")));
            Ok(code)
        }
    }
}

/// An error line from the daemon as `argusctl` would have said it, and the
/// exit code: a refused input line is a usage error (2), as locally.
fn error_exit(v: &serde_json::Value) -> (i32, String) {
    let e = &v["error"];
    let message = e["message"]
        .as_str()
        .unwrap_or("argusd refused the request");
    if e["status"].as_u64() == Some(423) {
        return (super::EXIT_KILLED, format!("refused by argusd: {message}"));
    }
    match (e["line"].as_u64(), e["reason"].as_str()) {
        (Some(line), Some(reason)) => (
            super::EXIT_USAGE,
            format!("stdin line {line}: {reason}; nothing of this line was written"),
        ),
        _ => (super::EXIT_ERROR, message.to_string()),
    }
}

/// `argusctl tail [-f]` through the daemon: the last `n` matching entries,
/// then (with -f) the live stream from the seq after the snapshot, so there
/// is no gap and no duplicate between the two.
pub fn tail(
    remote: &Remote,
    n: usize,
    follow: bool,
    filter: &crate::log::follow::Filter,
    format: super::Format,
) -> Result<i32> {
    use std::io::Write;
    let health = remote.call("GET", "/v1/health", None)?;
    let h: serde_json::Value =
        serde_json::from_slice(&health.body).context("argusd's health answer")?;
    let size = h["entries"].as_u64().unwrap_or(0);
    let fmt = match format {
        super::Format::Json => "json",
        super::Format::Text => "text",
    };
    let mut q = vec![format!("format={fmt}")];
    for (k, v) in [
        ("job", &filter.job),
        ("kind", &filter.kind),
        ("agent", &filter.agent),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", encode(v)));
        }
    }
    let from = if filter.is_empty() {
        size.saturating_sub(n as u64)
    } else {
        0
    };
    let mut out = std::io::stdout().lock();
    if size > 0 && n > 0 {
        let path = format!("/v1/entries?from={from}&to={}&{}", size - 1, q.join("&"));
        let a = remote.call("GET", &path, None)?;
        if a.status != 200 {
            bail!("{}", error_message(&a.body));
        }
        let text = String::from_utf8_lossy(&a.body);
        let lines: Vec<&str> = text.lines().collect();
        for l in &lines[lines.len().saturating_sub(n)..] {
            if writeln!(out, "{l}").is_err() {
                return Ok(0);
            }
        }
        let _ = out.flush();
    }
    if !follow {
        return Ok(0);
    }
    let path = format!("/v1/entries?follow=true&from={size}&{}", q.join("&"));
    let mut pending = Vec::new();
    let mut failed = None;
    remote.duplex(
        "GET",
        &path,
        "application/json",
        "application/x-ndjson",
        None,
        |chunk| {
            pending.extend_from_slice(chunk);
            while let Some(p) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=p).collect();
                if line.starts_with(b"{\"heartbeat\"") {
                    continue;
                }
                if line.starts_with(b"{\"error\"") {
                    failed = Some(error_message(&line));
                    return Ok(std::ops::ControlFlow::Break(()));
                }
                if out.write_all(&line).and_then(|_| out.flush()).is_err() {
                    return Ok(std::ops::ControlFlow::Break(()));
                }
            }
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    match failed {
        Some(m) => bail!("following through argusd: {m}"),
        None => Ok(0),
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Any other command through the daemon's `POST /v1/argusctl`: prints what
/// the command printed there and exits with its code. `config apply`'s
/// stdin goes along as the command's stdin.
pub fn command(remote: &Remote, argv: &[String]) -> Result<i32> {
    use std::io::{Read, Write};
    let needs_stdin = argv.first().map(String::as_str) == Some("config");
    let stdin = if needs_stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .take(64 << 20)
            .read_to_end(&mut buf)
            .context("reading stdin")?;
        Some(String::from_utf8(buf).map_err(|_| anyhow!("stdin is not UTF-8"))?)
    } else {
        None
    };
    let body = serde_json::to_vec(&serde_json::json!({ "argv": argv, "stdin": stdin }))?;
    let a = remote.call("POST", "/v1/argusctl", Some(("application/json", body)))?;
    if a.status == 200 {
        let mut out = std::io::stdout().lock();
        // Already escaped by the command inside the daemon, as locally.
        if out.write_all(&a.body).and_then(|_| out.flush()).is_err() {
            return Ok(0);
        }
        return Ok(a.exit.unwrap_or(0));
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let e = &v["error"];
    let code = e["exit"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(super::EXIT_ERROR);
    match e["stderr"].as_str() {
        Some(stderr) => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(stderr.as_bytes());
        }
        None => super::eprint(&format!("argusctl: {}", error_message(&a.body))),
    }
    Ok(code)
}
