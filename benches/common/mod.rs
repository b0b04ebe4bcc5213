//! Helpers shared by the Argus benches: the entry generator every bench and
//! baseline uses, scale and temp-directory handling, statistics and tables.
//!
//! Included from each bench with `#[path = "common/mod.rs"] mod common;`, so
//! a bench that does not use every helper would warn; hence the allow.
#![allow(dead_code)]

use argus::NewEntry;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `ARGUS_BENCH_SCALE` (default 1.0): multiplies durations and data sizes.
pub fn scale() -> f64 {
    std::env::var("ARGUS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0 && s.is_finite())
        .unwrap_or(1.0)
}

/// Where temp dirs go: `ARGUS_BENCH_DIR`, else Cargo's per-target tmp dir
/// (`<target>/tmp`), which lives on the disk the target dir is on.
pub fn bench_root() -> PathBuf {
    let p = std::env::var_os("ARGUS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&p).expect("create bench temp root");
    p
}

/// A fresh temp dir under [`bench_root`]; removed on drop.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(bench_root())
        .expect("create bench temp dir")
}

/// (mount point, fs type, device) of the filesystem holding `path`, from
/// /proc/self/mountinfo (longest matching mount point wins).
pub fn filesystem_of(path: &Path) -> (String, String, String) {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best = (String::new(), "unknown".to_string(), "unknown".to_string());
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        let (Some(mp), Some(fstype), Some(src)) = (f.get(4), f.get(dash + 1), f.get(dash + 2))
        else {
            continue;
        };
        if path.starts_with(mp) && mp.len() >= best.0.len() {
            best = (mp.to_string(), fstype.to_string(), src.to_string());
        }
    }
    best
}

/// The 1/5/15-minute load averages (other work on this machine skews results).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Prints the machine and where the bench writes; refuses tmpfs, since
/// fsync cost is what these benches measure.
pub fn print_environment(bench: &str) {
    let root = bench_root();
    let (mp, fstype, dev) = filesystem_of(&root);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("== argus bench: {bench} ==");
    println!(
        "cpus: {cpus} ({cpu})  scale: {}  load average: {}",
        scale(),
        loadavg()
    );
    println!(
        "temp dir: {} (fs {fstype} on {dev}, mounted at {mp})",
        root.display()
    );
    if fstype == "tmpfs" || fstype == "ramfs" {
        eprintln!(
            "refusing to run on {fstype}: fsync is free there. Set ARGUS_BENCH_DIR to a disk."
        );
        std::process::exit(2);
    }
    println!();
}

// ---------------------------------------------------------------------------
// The entry every bench and baseline writes.

const AGENTS: [&str; 4] = ["planner-1", "coder-2", "reviewer-3", "tester-4"];
const TOOLS: [&str; 4] = ["bash", "read_file", "http_get", "edit_file"];

/// Cheap deterministic mixing so fields vary without an RNG dependency.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The JSON payload of event `i`: a completed agent tool call (~100 bytes;
/// numbers have a fixed digit count, only the tool name varies in length).
/// Written in Argus canonical JSON (keys sorted), as `Log::append` requires.
pub fn payload(i: u64) -> Vec<u8> {
    let r = mix(i);
    format!(
        r#"{{"call_id":"call_{:010}","duration_ms":{},"exit_code":0,"output_bytes":{},"tool":"{}"}}"#,
        i,
        100_000 + (r >> 8) % 900_000,
        1_000_000 + (r >> 28) % 9_000_000,
        TOOLS[(r % 4) as usize],
    )
    .into_bytes()
}

/// Event `i`: kind `tool.call_completed`, a job per 64 events, a step, an
/// agent and a ~100-byte JSON payload. Encoded as an Argus entry frame this
/// is ~300 bytes (136 bytes of it fixed: seq, time, parent, prev hash,
/// payload hash, offsets); as a JSON line (see [`json_line`]) ~285 bytes.
pub fn event(i: u64) -> NewEntry {
    let agent = AGENTS[(mix(i / 64) % 4) as usize];
    NewEntry {
        kind: "tool.call_completed".into(),
        job_id: Some(format!("job-{:08x}", mix(i / 64) as u32)),
        step_id: Some(format!("step-{:04}", i % 64)),
        agent: Some(agent.into()),
        actor: format!("agent:{agent}"),
        parent: None,
        payload: payload(i),
    }
}

const POOL: usize = 1 << 16;

/// `n` consecutive events starting at `first`, cloned from a pool of 65,536
/// pre-built events, so building a batch costs about what handing over an
/// already-built event costs (a clone), not `format!` work. The pool is the
/// same for every system measured.
pub fn events(first: u64, n: usize) -> Vec<NewEntry> {
    static EVENTS: std::sync::OnceLock<Vec<NewEntry>> = std::sync::OnceLock::new();
    let pool = EVENTS.get_or_init(|| (0..POOL as u64).map(event).collect());
    (first..first + n as u64)
        .map(|i| pool[i as usize % POOL].clone())
        .collect()
}

/// The same event as one JSON line (with seq and time, as a JSONL audit log
/// would store it), newline included. Appends to `out`.
pub fn json_line(out: &mut Vec<u8>, seq: u64, ts_ns: u64, e: &NewEntry) {
    let opt = |s: &Option<String>| match s {
        Some(v) => format!("\"{v}\""),
        None => "null".into(),
    };
    // Field values are generated above and need no JSON escaping.
    let _ = write!(
        out,
        r#"{{"seq":{seq},"ts_ns":{ts_ns},"kind":"{}","job_id":{},"step_id":{},"agent":{},"actor":"{}","parent":null,"payload":"#,
        e.kind,
        opt(&e.job_id),
        opt(&e.step_id),
        opt(&e.agent),
        e.actor,
    );
    out.extend_from_slice(&e.payload);
    out.extend_from_slice(b"}\n");
}

/// Size of event `i` as an Argus entry frame (header + rkyv body).
pub fn argus_frame_len(i: u64) -> usize {
    let e = event(i);
    let f = e.fields(i, 1_700_000_000_000_000_000, [0; 32]);
    let (body, _) = log_format::entry::encode_entry(&f).expect("encode sample entry");
    log_format::FRAME_HEADER_LEN + body.len()
}

/// Mean sizes over 1000 events: (payload, Argus frame, JSON line).
pub fn mean_entry_sizes() -> (f64, f64, f64) {
    let n = 1000u64;
    let (mut p, mut f, mut l) = (0, 0, 0);
    let mut line = Vec::new();
    for i in 1_000_000..1_000_000 + n {
        line.clear();
        json_line(&mut line, i, 1_700_000_000_000_000_000, &event(i));
        serde_json::from_slice::<serde_json::Value>(&line).expect("event is valid JSON");
        p += payload(i).len();
        f += argus_frame_len(i);
        l += line.len();
    }
    let n = n as f64;
    (p as f64 / n, f as f64 / n, l as f64 / n)
}

pub fn print_entry_sizes() {
    let (p, f, l) = mean_entry_sizes();
    println!(
        "entry: kind tool.call_completed; mean payload {p:.0} B JSON, Argus entry frame {f:.0} B, JSON line {l:.0} B"
    );
    let mut line = Vec::new();
    json_line(
        &mut line,
        1_234_567,
        1_700_000_000_000_000_000,
        &event(1_234_567),
    );
    println!(
        "example line: {}",
        String::from_utf8_lossy(&line[..line.len() - 1])
    );
    println!();
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Files and logs.

/// Total apparent size of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for ent in rd.flatten() {
            match ent.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&ent.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Segment files of the log at `root`, in order.
pub fn segment_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("segments"))
        .expect("read segments dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

pub fn segments_bytes(root: &Path) -> u64 {
    segment_files(root)
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Creates a log at `root` with `segment_bytes` segments and no external key.
pub fn create_log(root: &Path, segment_bytes: u64) -> argus::Log {
    argus::Log::create(
        root,
        &argus::log::dir::InitOptions {
            segment_bytes,
            key_file: None,
            clock_skew_tolerance_s: None,
        },
    )
    .expect("create log")
}

/// Appends batches of `batch` events until the segment files hold at least
/// `target` bytes, or `stop` says stop (called with the current size after
/// every batch). Returns (entries appended, seconds).
pub fn fill_log(
    log: &argus::Log,
    root: &Path,
    first: u64,
    batch: usize,
    mut stop: impl FnMut(u64) -> bool,
) -> (u64, f64) {
    let t = Instant::now();
    let mut n = 0u64;
    loop {
        log.append(events(first + n, batch)).expect("append batch");
        n += batch as u64;
        if stop(segments_bytes(root)) {
            break;
        }
    }
    (n, t.elapsed().as_secs_f64())
}

/// Counts (entries, seals, footers) in a log's segments.
pub fn count_frames(root: &Path) -> (u64, u64, u64) {
    let (mut e, mut s, mut f) = (0, 0, 0);
    for p in segment_files(root) {
        let buf = std::fs::read(&p).expect("read segment");
        let mut scan = log_format::SegmentScan::new(&buf).expect("segment header");
        for fr in &mut scan.frames {
            match fr.frame_type {
                log_format::FrameType::Entry => e += 1,
                log_format::FrameType::Seal => s += 1,
                log_format::FrameType::Footer => f += 1,
            }
        }
    }
    (e, s, f)
}

/// Sequential write bandwidth of the bench disk: `mib` MiB in 1 MiB chunks,
/// then one fdatasync. Returns bytes/s (write + flush).
pub fn seq_write_bandwidth(mib: usize) -> f64 {
    let dir = temp_dir("seqwrite-");
    let path = dir.path().join("seq.bin");
    let chunk: Vec<u8> = (0..1 << 20).map(|i| mix(i as u64) as u8).collect();
    let mut f = File::create(&path).expect("create seq file");
    let t = Instant::now();
    for _ in 0..mib {
        f.write_all(&chunk).expect("seq write");
    }
    f.sync_data().expect("seq fdatasync");
    let secs = t.elapsed().as_secs_f64();
    (mib as f64 * (1 << 20) as f64) / secs
}

/// fdatasync latency of one small write (a proxy for what one commit costs).
pub fn fsync_latency(n: usize) -> Duration {
    let dir = temp_dir("fsync-");
    let mut f = File::create(dir.path().join("f.bin")).expect("create fsync file");
    let line = [b'x'; 300];
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&line).expect("write");
        f.sync_data().expect("fdatasync");
        lat.push(t.elapsed().as_nanos() as u64);
    }
    Duration::from_nanos(percentile(&mut lat, 50.0))
}

unsafe extern "C" {
    fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
}
const POSIX_FADV_DONTNEED: i32 = 4;

/// Asks the kernel to drop `path`'s (clean) pages from the page cache, the
/// unprivileged way to get a cold read of one file. Returns false on error.
pub fn evict_from_page_cache(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = File::open(path) else {
        return false;
    };
    let _ = f.sync_all();
    // SAFETY: plain syscall wrapper on an open fd; no memory is passed.
    unsafe { posix_fadvise(f.as_raw_fd(), 0, 0, POSIX_FADV_DONTNEED) == 0 }
}

// ---------------------------------------------------------------------------
// Statistics and output.

/// Percentile (nearest rank) of `v`, which is sorted in place.
pub fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

pub const MB: f64 = 1_000_000.0;
pub const MIB: u64 = 1 << 20;

pub fn fmt_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.0} us", ns / 1e3)
    }
}

pub fn fmt_secs(s: f64) -> String {
    fmt_ns((s * 1e9) as u64)
}

pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e4 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

pub fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.2}x")
    }
}

/// Prints a left-aligned first column and right-aligned others.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let n = headers.len();
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                s += &format!("{c:<width$}", width = w[i]);
            } else {
                s += &format!("  {c:>width$}", width = w[i]);
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    println!(
        "{}",
        w.iter()
            .enumerate()
            .map(|(i, x)| "-".repeat(*x + if i == 0 { 0 } else { 2 }))
            .collect::<String>()
    );
    for r in rows {
        line(r.clone());
    }
    println!();
}

/// "met" / "MISSED (x% of target)" for a ratio against a target.
pub fn target_verdict(got: f64, target: f64) -> String {
    if got >= target {
        "met".into()
    } else {
        format!("MISSED ({:.0}% of target)", 100.0 * got / target)
    }
}
