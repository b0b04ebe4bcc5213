//! A small HTTP/1.1 client over `std::net::TcpStream`, written for these
//! tests rather than taken from a crate: the tests need what a polished
//! client hides (half a request head that stalls, a body streamed up while
//! acks stream down, a follower that stops reading), and every read here has
//! a timeout so no test can hang on a silent server.
use crate::common::Ack;
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest any single read in these tests waits.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
    /// The acks of a 200 answer to a batch append.
    pub fn acks(&self) -> Vec<Ack> {
        assert_eq!(self.status, 200, "expected 200: {}", self.text());
        self.json()
            .as_array()
            .unwrap_or_else(|| panic!("acks are not an array: {}", self.text()))
            .iter()
            .map(ack_of)
            .collect()
    }
    /// The `error` object of an error answer, checked to carry its status.
    pub fn error(&self) -> Value {
        let v = self.json();
        let e = v["error"].clone();
        assert!(e.is_object(), "no error object: {}", self.text());
        assert_eq!(
            e["status"].as_u64(),
            Some(u64::from(self.status)),
            "error.status differs from the HTTP status: {}",
            self.text()
        );
        e
    }
}

pub fn ack_of(v: &Value) -> Ack {
    let seq = v["seq"].as_u64();
    let hash = v["hash"].as_str();
    match (seq, hash) {
        (Some(seq), Some(hash)) => {
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "hash is not 64 hex digits: {v}"
            );
            Ack {
                seq,
                hash: hash.to_string(),
            }
        }
        _ => panic!("not an ack: {v}"),
    }
}

pub fn connect(addr: &str) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.set_write_timeout(Some(READ_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut s = connect(addr)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // The server may answer (413) before it has read the whole body and
    // close; the answer is still there to read.
    let _ = s.write_all(body);
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?;
    let body = read_body(&mut r, &headers)?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `POST /v1/entries` with a JSON body (an object or an array).
pub fn post_json(addr: &str, body: &[u8]) -> io::Result<Response> {
    request(
        addr,
        "POST",
        "/v1/entries",
        &[("Content-Type", "application/json")],
        body,
    )
}

/// `POST /v1/entries` with an NDJSON body, acks as one JSON array.
pub fn post_ndjson(addr: &str, body: &[u8]) -> io::Result<Response> {
    request(
        addr,
        "POST",
        "/v1/entries",
        &[("Content-Type", "application/x-ndjson")],
        body,
    )
}

/// `POST /v1/entries` with a chunked body (no Content-Length) in chunks of
/// `chunk` bytes, read whole by the server (no streaming `Accept`).
pub fn post_chunked(addr: &str, ct: &str, body: &[u8], chunk: usize) -> io::Result<Response> {
    let mut s = connect(addr)?;
    let head = format!(
        "POST /v1/entries HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes())?;
    for c in body.chunks(chunk.max(1)) {
        let mut framed = format!("{:x}\r\n", c.len()).into_bytes();
        framed.extend_from_slice(c);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and close before it has everything.
        if s.write_all(&framed).is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?;
    let body = read_body(&mut r, &headers)?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

pub fn get(addr: &str, path: &str) -> io::Result<Response> {
    request(addr, "GET", path, &[], b"")
}

pub fn ndjson(entries: &[Value]) -> Vec<u8> {
    crate::common::to_lines(entries)
}

fn read_line_crlf<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r.read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The status line and headers of an answer.
pub fn read_head<R: BufRead>(r: &mut R) -> io::Result<(u16, Vec<(String, String)>)> {
    let status_line = read_line_crlf(r)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        let l = read_line_crlf(r)?;
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn read_body<R: BufRead>(r: &mut R, headers: &[(String, String)]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Chunked::new(r).read_to_end(&mut body)?;
    } else if let Some(n) = header(headers, "content-length").and_then(|v| v.parse::<u64>().ok()) {
        r.take(n).read_to_end(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// A chunked body as a plain byte stream.
pub struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            left: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let size_line = read_line_crlf(&mut self.inner)?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {size_line:?}"),
                )
            })?;
            if size == 0 {
                // Trailers (none expected), then the blank line.
                while !read_line_crlf(&mut self.inner)?.is_empty() {}
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let want = out.len().min(self.left as usize);
        let n = self.inner.read(&mut out[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a chunk",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 {
            read_line_crlf(&mut self.inner)?;
        }
        Ok(n)
    }
}

/// What a line reader thread saw: a line, or how the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Line(String),
    /// The body ended cleanly (final chunk).
    End,
    /// The connection failed or closed mid-body.
    Broken(String),
}

/// Reads the body's lines on a thread into a channel, so the test thread
/// waits with `recv_timeout` and never blocks on the socket.
fn spawn_body_reader(
    r: BufReader<TcpStream>,
    headers: &[(String, String)],
) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    let chunked = header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    std::thread::spawn(move || {
        let body: Box<dyn Read + Send> = if chunked {
            Box::new(Chunked::new(r))
        } else {
            Box::new(r)
        };
        let mut lines = BufReader::new(body);
        loop {
            let mut buf = Vec::new();
            match lines.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    let _ = tx.send(Event::End);
                    return;
                }
                Ok(_) => {
                    let l = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if !l.is_empty() && tx.send(Event::Line(l)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Event::Broken(e.to_string()));
                    return;
                }
            }
        }
    });
    rx
}

/// The answer's status (0 if none came: the connection broke first) and
/// its body's lines.
fn spawn_line_reader(s: TcpStream) -> (u16, Vec<(String, String)>, mpsc::Receiver<Event>) {
    let mut r = BufReader::new(s);
    match read_head(&mut r) {
        Ok((status, headers)) => {
            let rx = spawn_body_reader(r, &headers);
            (status, headers, rx)
        }
        Err(e) => {
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(Event::Broken(format!("no answer: {e}")));
            (0, Vec::new(), rx)
        }
    }
}

/// `GET /v1/entries?...` read line by line as it arrives.
pub struct Follow {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    sock: TcpStream,
    /// The body, until the first `next` starts reading it: a follower that
    /// is never asked for a line reads nothing past the answer's head.
    body: std::cell::RefCell<Option<BufReader<TcpStream>>>,
    rx: std::cell::OnceCell<mpsc::Receiver<Event>>,
}

impl Follow {
    /// Opens `path` (e.g. `/v1/entries?from=0&follow=true`).
    pub fn open(addr: &str, path: &str) -> io::Result<Self> {
        Self::open_with(addr, path, &[])
    }

    pub fn open_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<Self> {
        let mut s = connect(addr)?;
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())?;
        let sock = s.try_clone()?;
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r)?;
        Ok(Self {
            status,
            headers,
            sock,
            body: std::cell::RefCell::new(Some(r)),
            rx: std::cell::OnceCell::new(),
        })
    }

    /// The next line or end, waiting at most `within`; `None` on timeout.
    pub fn next(&self, within: Duration) -> Option<Event> {
        let rx = self.rx.get_or_init(|| {
            let body = self.body.borrow_mut().take().expect("body reader");
            spawn_body_reader(body, &self.headers)
        });
        match rx.recv_timeout(within) {
            Ok(e) => Some(e),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Event::Broken("reader gone".into())),
        }
    }

    /// Closes the connection from our side.
    pub fn close(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.close();
    }
}

/// A streaming append: NDJSON sent up in chunks while acks come down.
pub struct StreamAppend {
    sock: TcpStream,
    status: Option<u16>,
    rx: Option<mpsc::Receiver<Event>>,
    reader_sock: Option<TcpStream>,
}

impl StreamAppend {
    pub fn open(addr: &str) -> io::Result<Self> {
        Self::open_with(addr, &[])
    }

    pub fn open_with(addr: &str, headers: &[(&str, &str)]) -> io::Result<Self> {
        let mut s = connect(addr)?;
        let mut head = format!(
            "POST /v1/entries HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/x-ndjson\r\nAccept: application/x-ndjson\r\n\
             Transfer-Encoding: chunked\r\n"
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())?;
        let reader_sock = Some(s.try_clone()?);
        Ok(Self {
            sock: s,
            status: None,
            rx: None,
            reader_sock,
        })
    }

    /// Sends `bytes` as one chunk.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut c = format!("{:x}\r\n", bytes.len()).into_bytes();
        c.extend_from_slice(bytes);
        c.extend_from_slice(b"\r\n");
        self.sock.write_all(&c)
    }

    /// Sends entries as one chunk of NDJSON.
    pub fn send(&mut self, entries: &[Value]) -> io::Result<()> {
        self.send_raw(&ndjson(entries))
    }

    /// Ends the body.
    pub fn finish(&mut self) -> io::Result<()> {
        self.sock.write_all(b"0\r\n\r\n")
    }

    /// The answer's status (reading its head on first call).
    pub fn status(&mut self) -> u16 {
        self.start();
        self.status.unwrap_or(0)
    }

    fn start(&mut self) {
        if let Some(s) = self.reader_sock.take() {
            let (status, _, rx) = spawn_line_reader(s);
            self.status = Some(status);
            self.rx = Some(rx);
        }
    }

    /// The next line of the answer, waiting at most `within`.
    pub fn next(&mut self, within: Duration) -> Option<Event> {
        self.start();
        let rx = self.rx.as_ref()?;
        match rx.recv_timeout(within) {
            Ok(e) => Some(e),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Event::Broken("reader gone".into())),
        }
    }

    /// Every line until the answer ends (bounded by `within` overall).
    pub fn rest(&mut self, within: Duration) -> (Vec<String>, Option<Event>) {
        let end = Instant::now() + within;
        let mut lines = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(Event::Line(l)) => lines.push(l),
                other => return (lines, other),
            }
        }
    }

    pub fn close(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

impl Drop for StreamAppend {
    fn drop(&mut self) {
        self.close();
    }
}
