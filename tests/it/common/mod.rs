//! Shared helpers for the argusctl integration tests.
//!
//! Everything here drives the real `argusctl` binary against real files.
//! The segment walker below is written from log-format/SPEC.md §3–4 alone
//! (it does not use the `log_format` crate), so tests can aim a byte flip
//! at one exact frame or field.
#![allow(dead_code)]

pub mod forge;
pub mod later;

use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_argusctl")
}

/// A `Command` for argusctl with a fixed, known environment.
pub fn cmd<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(bin());
    c.args(args)
        .env("USER", "tester")
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "0");
    c
}

/// The outcome of one finished argusctl run.
#[derive(Debug, Clone)]
pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything needed to understand a failed assertion.
    pub fn ctx(&self) -> String {
        let cut = |s: &str| -> String {
            if s.len() > 4000 {
                let mut end = 4000;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}… [{} bytes total]", &s[..end], s.len())
            } else {
                s.to_string()
            }
        };
        format!(
            "\n  argusctl {}\n  exit: {:?}\n  --- stdout ---\n{}\n  --- stderr ---\n{}\n",
            self.args.join(" "),
            self.code,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
    /// stdout and stderr together (verify prints failures on stdout and
    /// warnings on stderr).
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code{}", self.ctx());
        self
    }
    pub fn assert_ok(&self) -> &Self {
        self.assert_code(0)
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value: {e}{}", self.ctx()))
    }
    /// stdout as JSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}{}", self.ctx()))
            })
            .collect()
    }
}

fn strings<I, S>(args: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

/// Runs argusctl with empty stdin.
pub fn argus<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<OsStr>,
{
    argus_stdin(args, b"")
}

/// Runs argusctl, feeding `input` on stdin from a separate thread (so a
/// child that stops reading cannot deadlock the test).
pub fn argus_stdin<I, S>(args: I, input: &[u8]) -> Run
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<OsStr>,
{
    let names = strings(args.clone());
    let mut child = cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn argusctl");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        // The child may exit before reading everything (e.g. on a bad line).
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait argusctl");
    let _ = feeder.join();
    Run {
        args: names,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Path as an argument.
pub fn p(path: &Path) -> &OsStr {
    path.as_os_str()
}

/// Creates a log in a fresh temp dir; returns the dir and the public key.
pub fn init_log(segment_bytes: Option<u64>) -> (TempDir, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = init_at(tmp.path(), segment_bytes);
    (tmp, key)
}

/// `argusctl init` at `dir`; returns the public key.
pub fn init_at(dir: &Path, segment_bytes: Option<u64>) -> String {
    let mut args: Vec<String> = vec!["init".into(), dir.display().to_string()];
    if let Some(n) = segment_bytes {
        args.push("--segment-bytes".into());
        args.push(n.to_string());
    }
    let r = argus(&args);
    r.assert_ok();
    let v = r.json();
    let key = v["public_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no public_key{}", r.ctx()))
        .to_string();
    assert_eq!(key.len(), 64, "public key is not 64 hex digits{}", r.ctx());
    assert_eq!(
        v["log_id"].as_str().map(str::len),
        Some(32),
        "log_id is not 32 hex digits{}",
        r.ctx()
    );
    key
}

/// One acknowledgement line of `argusctl append`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    pub hash: String,
}

pub fn parse_ack(line: &str) -> Ack {
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad ack line {line:?}: {e}"));
    Ack {
        seq: v["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("ack without seq: {line}")),
        hash: v["hash"]
            .as_str()
            .unwrap_or_else(|| panic!("ack without hash: {line}"))
            .to_string(),
    }
}

pub fn acks_of(r: &Run) -> Vec<Ack> {
    r.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_ack)
        .collect()
}

pub fn to_lines(entries: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(e.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// Appends all entries in one `argusctl append` run (one stdin write, so
/// usually one group commit). Asserts success and one ack per entry.
pub fn append(dir: &Path, entries: &[Value]) -> Vec<Ack> {
    let r = argus_stdin([OsStr::new("append"), p(dir)], &to_lines(entries));
    r.assert_ok();
    let acks = acks_of(&r);
    assert_eq!(acks.len(), entries.len(), "one ack per entry{}", r.ctx());
    acks
}

/// Whether the Python verifier's packages are importable. Under CI (`CI`
/// set) their absence fails the test instead of skipping it.
pub fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import blake3, cryptography, zstandard"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI: python3 with blake3, cryptography and zstandard is required (pip install -r tools/pyverify/requirements.txt)");
    }
    if !ok {
        eprintln!("skipping: python3 with blake3 + cryptography + zstandard not installed");
    }
    ok
}

/// Every entry's stored payload bytes and stored payload hash, read from
/// the segment files by seq (not through `cat`, whose JSON output escapes
/// terminal-active characters).
pub fn stored_payloads(dir: &Path) -> std::collections::BTreeMap<u64, (Vec<u8>, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    for path in segment_files(dir) {
        let bytes = std::fs::read(&path).unwrap();
        for f in parse_segment(&path).entries() {
            let l = entry_layout(&path, f);
            let (at, len) = l.payload();
            let payload = bytes[at as usize..(at + len) as usize].to_vec();
            let h = l.payload_hash_at() as usize;
            out.insert(l.seq, (payload, bytes[h..h + 32].to_vec()));
        }
    }
    out
}

/// The actor field this process's user gets in `class` (the operating
/// system's uid and name, as `argusctl` records them).
pub fn actor_of(class: &str) -> String {
    let id = |flag: &str| {
        let o = Command::new("id").arg(flag).output().expect("run id");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    format!("{class}:uid:{}:{}", id("-u"), id("-un"))
}

/// This user's name, as separation of duties compares it.
pub fn user_name() -> String {
    let o = Command::new("id").arg("-un").output().expect("run id");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Records operator configuration through `argusctl config apply`.
pub fn configure(dir: &Path, entries: &[Value]) -> Vec<Ack> {
    let r = argus_stdin(
        [OsStr::new("config"), OsStr::new("apply"), p(dir)],
        &to_lines(entries),
    );
    r.assert_ok();
    let acks = acks_of(&r);
    assert_eq!(acks.len(), entries.len(), "one ack per entry{}", r.ctx());
    acks
}

/// Writes each entry the way its writer would: agents' work through
/// `argusctl append`, configuration through `argusctl config apply`, and
/// other decisions (approvals, mode changes, anomalies written directly, as
/// a hand-made or older log holds them) with `forge::forge_commit` under the
/// writer class the registry names first. Consecutive entries of one route
/// go together.
pub fn record(dir: &Path, entries: &[Value]) -> Vec<Ack> {
    let mut acks = Vec::with_capacity(entries.len());
    let route = |e: &Value| -> &'static str {
        let kind = e["kind"].as_str().unwrap_or_default();
        match kind_writers(kind).as_slice() {
            w if w.iter().any(|c| c == "agent") => "agent",
            _ if kind_command(kind).is_some_and(|c| c.contains("config apply")) => "config",
            _ => "forge",
        }
    };
    let mut i = 0;
    while i < entries.len() {
        let r = route(&entries[i]);
        let mut j = i + 1;
        while j < entries.len() && route(&entries[j]) == r {
            j += 1;
        }
        let chunk = &entries[i..j];
        match r {
            "agent" => acks.extend(append(dir, chunk)),
            "config" => acks.extend(configure(dir, chunk)),
            _ => {
                for e in chunk {
                    let kind = e["kind"].as_str().unwrap_or_default();
                    let class = kind_writers(kind).first().cloned().unwrap_or_default();
                    let done =
                        forge::forge_commit(dir, &actor_of(&class), None, std::slice::from_ref(e));
                    acks.extend(done.into_iter().map(|(seq, h)| Ack {
                        seq,
                        hash: hex::encode(h),
                    }));
                }
            }
        }
        i = j;
    }
    acks
}

fn registry() -> &'static Value {
    static R: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        serde_json::from_str(include_str!("../../../docs/events/registry.json")).expect("registry")
    })
}

/// The writer classes the registry names for `kind` (agents' own for `x.`).
pub fn kind_writers(kind: &str) -> Vec<String> {
    registry()["kinds"][kind]["writers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_else(|| vec!["agent".to_string()])
}

pub fn kind_command(kind: &str) -> Option<String> {
    registry()["kinds"][kind]["command"]
        .as_str()
        .map(String::from)
}

/// Appends in one `argusctl append` run, `batch` lines at a time, waiting
/// for each batch's acks before writing the next. With `batch == 1` every
/// entry is its own group commit (entry frame + seal frame), which gives
/// tests a predictable segment layout.
pub fn append_lockstep(dir: &Path, entries: &[Value], batch: usize) -> Vec<Ack> {
    let mut child = cmd([OsStr::new("append"), p(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn append");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut acks = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(batch.max(1)) {
        stdin.write_all(&to_lines(chunk)).expect("write stdin");
        stdin.flush().expect("flush stdin");
        for _ in 0..chunk.len() {
            match lines.next() {
                Some(Ok(l)) => acks.push(parse_ack(&l)),
                other => {
                    drop(stdin);
                    let out = child.wait_with_output().expect("wait");
                    panic!(
                        "append ended early ({other:?}) after {} acks; exit {:?}; stderr:\n{}",
                        acks.len(),
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait append");
    assert_eq!(
        out.status.code(),
        Some(0),
        "append failed; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    acks
}

/// A small deterministic PRNG (xorshift64*), so no rand crate is needed.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // Never zero; spread small seeds.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Log-core tests exercise the format, not the registry, so their kinds
/// live in the `x.` extension namespace, which takes any payload.
pub const KINDS: &[&str] = &[
    "x.tool.call_started",
    "x.tool.call_finished",
    "x.cost.logged",
    "x.agent.msg",
    "x.job.state.changed",
    "x.x",
    "x.policy.check_2",
];

/// A generated input entry. `seq` is the seq this line will get (so a
/// parent can be chosen earlier than it). Covers every optional field,
/// unicode, nested JSON, empty payloads and absent fields.
pub fn gen_entry(seq: u64, rng: &mut XorShift) -> Value {
    let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
    let mut obj = serde_json::Map::new();
    obj.insert("kind".into(), json!(kind));
    if rng.below(5) != 0 {
        obj.insert("job_id".into(), json!(format!("job-{}", rng.below(7))));
    }
    if rng.below(2) == 0 {
        obj.insert("step_id".into(), json!(format!("step-{seq}")));
    }
    if rng.below(3) == 0 {
        let agents = ["planner", "coder", "réviseur", "エージェント"];
        obj.insert(
            "agent".into(),
            json!(agents[rng.below(agents.len() as u64) as usize]),
        );
    }
    if seq > 0 && rng.below(3) == 0 {
        obj.insert("parent".into(), json!(rng.below(seq)));
    }
    let payload = match rng.below(6) {
        0 => Value::Null,
        1 => {
            json!({"n": seq, "text": "héllo wörld — ✓ 日本語 🚀", "esc": "quote\" back\\ nl\n tab\t"})
        }
        2 => {
            json!({"nested": {"a": [1, 2, {"b": [true, false, null]}], "depth": {"x": {"y": {"z": seq}}}}})
        }
        3 => json!([seq, "array payload", {"k": "v"}, [], {}]),
        4 => json!("just a string ∑"),
        // 2^53: the largest integer a payload can hold exactly (SPEC §4.1.1).
        _ => json!({"usd": 0.25, "tokens": rng.below(100_000), "big": 1u64 << 53, "neg": -17}),
    };
    // An absent payload and an explicit null are the same thing.
    if !payload.is_null() || rng.below(2) == 0 {
        obj.insert("payload".into(), payload);
    }
    Value::Object(obj)
}

/// `n` generated entries for seqs `first..first + n`.
pub fn gen_entries(first: u64, n: usize, seed: u64) -> Vec<Value> {
    let mut rng = XorShift::new(seed);
    (0..n as u64)
        .map(|i| gen_entry(first + i, &mut rng))
        .collect()
}

/// Simple entries with a small fixed size (predictable layout).
pub fn small_entries(first: u64, n: usize) -> Vec<Value> {
    (first..first + n as u64)
        .map(|i| json!({"kind": "x.test.entry", "job_id": format!("job-{}", i % 3), "payload": {"i": i, "pad": "abcdefghij"}}))
        .collect()
}

/// XORs the byte at `offset` with `mask`.
pub fn xor_byte(path: &Path, offset: u64, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let i = offset as usize;
    assert!(
        i < bytes.len(),
        "offset {offset} past end of {path:?} ({} bytes)",
        bytes.len()
    );
    bytes[i] ^= mask;
    std::fs::write(path, &bytes).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

/// Flips the lowest bit of the byte at `offset`.
pub fn flip_byte(path: &Path, offset: u64) {
    xor_byte(path, offset, 0x01);
}

/// `DIR/segments/*.seg`, in file-name (= seq) order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap_or_else(|e| panic!("read segments of {dir:?}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension() == Some(OsStr::new("seg")))
        .collect();
    v.sort();
    v
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------
// Segment walker (SPEC §3–4), independent of the implementation.

pub const FRAME_ENTRY: u8 = 0x01;
pub const FRAME_SEAL: u8 = 0x02;
pub const FRAME_FOOTER: u8 = 0x03;
pub const ENTRY_ROOT_LEN: u64 = 136;
pub const SEAL_LEN: u64 = 148;

/// One frame, by file offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the crc field (the frame's first byte).
    pub offset: u64,
    pub len: u32,
    pub ftype: u8,
}

impl Frame {
    pub fn crc_at(&self) -> u64 {
        self.offset
    }
    pub fn len_at(&self) -> u64 {
        self.offset + 4
    }
    pub fn type_at(&self) -> u64 {
        self.offset + 8
    }
    pub fn body_at(&self) -> u64 {
        self.offset + 9
    }
    pub fn end(&self) -> u64 {
        self.body_at() + self.len as u64
    }
}

/// Field regions of an entry frame's body (SPEC §4.1), as file offsets.
#[derive(Debug, Clone, Copy)]
pub struct EntryLayout {
    pub seq: u64,
    /// File offset of ROOT.
    pub root: u64,
    /// File offset and length of D5..D10 (kind, job_id, step_id, agent, actor, payload).
    pub fields: [(u64, u64); 6],
}

impl EntryLayout {
    pub fn seq_at(&self) -> u64 {
        self.root
    }
    pub fn ts_at(&self) -> u64 {
        self.root + 8
    }
    pub fn parent_at(&self) -> u64 {
        self.root + 16
    }
    pub fn prev_at(&self) -> u64 {
        self.root + 24
    }
    pub fn payload_hash_at(&self) -> u64 {
        self.root + 56
    }
    pub fn kind(&self) -> (u64, u64) {
        self.fields[0]
    }
    pub fn payload(&self) -> (u64, u64) {
        self.fields[5]
    }
}

#[derive(Debug, Clone)]
pub struct SegmentMap {
    pub path: PathBuf,
    pub file_len: u64,
    pub header_len: u64,
    pub base_seq: u64,
    pub log_id: [u8; 16],
    pub frames: Vec<Frame>,
    /// Offset where the walk met bytes that are not a valid frame, if any.
    pub stopped_at: Option<u64>,
}

impl SegmentMap {
    pub fn of_type(&self, t: u8) -> Vec<Frame> {
        self.frames
            .iter()
            .copied()
            .filter(|f| f.ftype == t)
            .collect()
    }
    pub fn entries(&self) -> Vec<Frame> {
        self.of_type(FRAME_ENTRY)
    }
    pub fn seals(&self) -> Vec<Frame> {
        self.of_type(FRAME_SEAL)
    }
    pub fn footer(&self) -> Option<Frame> {
        self.of_type(FRAME_FOOTER).pop()
    }
    /// The first frame after `f`.
    pub fn after(&self, f: Frame) -> Option<Frame> {
        let i = self.frames.iter().position(|x| *x == f)?;
        self.frames.get(i + 1).copied()
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Walks a segment file per SPEC §3–4. Panics if the header is damaged
/// (call it on intact files, before tampering).
pub fn parse_segment(path: &Path) -> SegmentMap {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    assert!(b.len() >= 73, "{path:?}: shorter than a header");
    assert_eq!(&b[0..8], b"ARGUSSEG", "{path:?}: magic");
    assert_eq!(u32_at(&b, 8), 1, "{path:?}: version");
    let n = b[68] as usize;
    let hl = 69 + 32 * n;
    assert_eq!(
        crc32fast::hash(&b[..hl]),
        u32_at(&b, hl),
        "{path:?}: header crc"
    );
    let base_seq = u64_at(&b, 28);
    assert_eq!(
        n as u32,
        base_seq.count_ones(),
        "{path:?}: frontier length must be popcount(base_seq)"
    );
    let mut frames = Vec::new();
    let mut pos = hl + 4;
    let mut stopped_at = None;
    while pos < b.len() {
        let ok = pos + 9 <= b.len() && {
            let len = u32_at(&b, pos + 4) as usize;
            let t = b[pos + 8];
            (1..=16 * 1024 * 1024).contains(&len)
                && (1..=3).contains(&t)
                && pos + 9 + len <= b.len()
                && {
                    let mut h = crc32fast::Hasher::new();
                    h.update(&b[pos + 4..pos + 9 + len]);
                    h.finalize() == u32_at(&b, pos)
                }
        };
        if !ok {
            stopped_at = Some(pos as u64);
            break;
        }
        let len = u32_at(&b, pos + 4);
        frames.push(Frame {
            offset: pos as u64,
            len,
            ftype: b[pos + 8],
        });
        pos += 9 + len as usize;
    }
    SegmentMap {
        path: path.to_path_buf(),
        file_len: b.len() as u64,
        header_len: (hl + 4) as u64,
        base_seq,
        log_id: b[12..28].try_into().expect("16 bytes"),
        frames,
        stopped_at,
    }
}

/// Field regions of the entry frame `f` (SPEC §4.1).
pub fn entry_layout(path: &Path, f: Frame) -> EntryLayout {
    assert_eq!(f.ftype, FRAME_ENTRY, "not an entry frame: {f:?}");
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let body = &b[f.body_at() as usize..f.end() as usize];
    let r = body.len() - ENTRY_ROOT_LEN as usize;
    let mut fields = [(0u64, 0u64); 6];
    let mut expect_start = 0usize;
    for (k, field) in fields.iter_mut().enumerate() {
        let at = r + 88 + 8 * k;
        let rel = i32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes")) as i64;
        let len = u32_at(body, at + 4) as u64;
        let start = (at as i64 + rel) as u64;
        assert_eq!(
            start as usize, expect_start,
            "{path:?} frame {}: field {k} is not canonical",
            f.offset
        );
        expect_start += len as usize;
        *field = (f.body_at() + start, len);
    }
    assert_eq!(expect_start, r, "{path:?} frame {}: body length", f.offset);
    EntryLayout {
        seq: u64_at(body, r),
        root: f.body_at() + r as u64,
        fields,
    }
}

/// Recomputes the CRC of the frame at `frame_offset` after its bytes were
/// edited, so only the edit itself is wrong.
pub fn fix_frame_crc(path: &Path, frame_offset: u64) {
    let mut b = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let at = frame_offset as usize;
    let len = u32_at(&b, at + 4) as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(&b[at + 4..at + 9 + len]);
    b[at..at + 4].copy_from_slice(&h.finalize().to_le_bytes());
    std::fs::write(path, &b).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

/// Recursively copies a directory (file modes are kept by `fs::copy`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {to:?}: {e}"));
    for ent in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {from:?}: {e}")) {
        let ent = ent.expect("dir entry");
        let dst = to.join(ent.file_name());
        if ent.file_type().expect("file type").is_dir() {
            copy_dir(&ent.path(), &dst);
        } else {
            std::fs::copy(ent.path(), &dst)
                .unwrap_or_else(|e| panic!("copy {:?} -> {dst:?}: {e}", ent.path()));
        }
    }
}

// ---------------------------------------------------------------------------
// Reading the log back.

/// `argusctl cat DIR -o json`, parsed.
pub fn cat_json(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["cat".to_string(), dir.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("-o".into());
    args.push("json".into());
    let r = argus(&args);
    r.assert_ok();
    r.json_lines()
}

/// `argusctl stats DIR`, parsed.
pub fn stats(dir: &Path) -> Value {
    let r = argus([OsStr::new("stats"), p(dir)]);
    r.assert_ok();
    r.json()
}

/// `argusctl verify DIR --key KEY [extra...]` in text mode.
pub fn verify(dir: &Path, key: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "verify".to_string(),
        dir.display().to_string(),
        "--key".into(),
        key.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    argus(&args)
}

/// `argusctl verify ... -o json`; returns the run and the parsed report.
pub fn verify_json(dir: &Path, key: &str, extra: &[&str]) -> (Run, Value) {
    let mut e: Vec<&str> = extra.to_vec();
    e.extend(["-o", "json"]);
    let r = verify(dir, key, &e);
    let v = r.json();
    (r, v)
}

/// Saves `argusctl checkpoint DIR` to `file`; returns its text.
pub fn save_checkpoint(dir: &Path, file: &Path) -> String {
    let r = argus([OsStr::new("checkpoint"), p(dir)]);
    r.assert_ok();
    assert!(
        r.stdout.starts_with("argus.log/"),
        "checkpoint text must start with the origin{}",
        r.ctx()
    );
    std::fs::write(file, &r.stdout).expect("write checkpoint");
    r.stdout
}

/// The tree size line of a checkpoint text.
pub fn checkpoint_size(text: &str) -> u64 {
    text.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no size line in checkpoint {text:?}"))
}

// ---------------------------------------------------------------------------
// Long-running children.

/// Reads a child's stdout lines on a thread; lines arrive on the channel.
pub fn line_reader(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            match l {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    rx
}

/// Collects lines from `rx` until `done(&lines)` holds or `deadline` passes
/// (a safety net against hangs, not a performance assertion).
pub fn collect_until(
    rx: &mpsc::Receiver<String>,
    deadline: Duration,
    mut done: impl FnMut(&[String]) -> bool,
) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut lines = Vec::new();
    while !done(&lines) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        match rx.recv_timeout(end - now) {
            Ok(l) => lines.push(l),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    lines
}

/// Kills a child we started and reaps it; returns its stderr.
pub fn kill_and_reap(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// Whether `faketime` runs here. Under CI (`CI` set) a missing faketime
/// fails the test; elsewhere the test says so and stops.
pub fn faketime_ready() -> bool {
    let ok = std::process::Command::new("faketime")
        .args(["-f", "+1d", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI: faketime is required (apt-get install faketime; tools/test-all does this)");
    }
    if !ok {
        eprintln!("faketime not installed: skipping clock test (CI fails instead)");
    }
    ok
}
