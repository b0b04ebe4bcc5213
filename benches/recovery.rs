//! Recovery time of a ~1 GiB log (16 x 64 MiB segments, the last one nearly
//! full) after a crash: `Log::open` scans only the last segment, cuts a torn
//! tail and records a `log.recovered` entry. Crashes are emulated two ways:
//! a torn frame written at the end of the last segment, and a real
//! `argusctl append` child killed with SIGKILL mid-stream.
//!
//! Baselines, same process: `std::fs::read` of the last segment, and reading
//! + BLAKE3 of the whole log (what re-hashing everything at open would cost).
//!
//! Run: `CARGO_TARGET_DIR=/tmp/bench-target cargo build --release --offline --bin argusctl`
//! then `CARGO_TARGET_DIR=/tmp/bench-target cargo bench --offline --bench recovery`.
//! `ARGUS_BENCH_SCALE=0.25` builds a 256 MiB log instead.
#[path = "common/mod.rs"]
mod common;

use argus::log::dir::{LogDir, DEFAULT_SEGMENT_BYTES};
use argus::NewEntry;
use common::*;
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const REPS: usize = 5;

/// Free bytes on the filesystem holding `path`, from `df -Pk`.
fn free_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let kb: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kb * 1024)
}

fn last_segment(root: &Path) -> PathBuf {
    segment_files(root)
        .pop()
        .expect("the log has at least one segment")
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Appends a torn frame to the last segment: the first half of a real entry
/// frame (copied from the segment's first frame), as a write cut short by a
/// crash leaves it.
fn tear_tail(root: &Path) -> u64 {
    let seg = last_segment(root);
    let bytes = std::fs::read(&seg).expect("read last segment");
    let scan = log_format::SegmentScan::new(&bytes).expect("segment header");
    let start = scan.header_len;
    let body_len = u32::from_le_bytes(
        bytes[start + 4..start + 8]
            .try_into()
            .expect("4-byte length"),
    ) as usize;
    let frame_len = log_format::FRAME_HEADER_LEN + body_len;
    let torn = &bytes[start..start + frame_len / 2];
    let f = OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open segment");
    f.write_all_at(torn, bytes.len() as u64)
        .expect("write torn frame");
    f.sync_data().expect("fdatasync torn frame");
    torn.len() as u64
}

/// Times `Log::open`; returns (seconds, bytes cut, reason, committed size).
fn timed_open(root: &Path) -> (f64, u64, String, u64) {
    let t = Instant::now();
    let log = argus::Log::open(root).expect("Log::open");
    let secs = t.elapsed().as_secs_f64();
    let (cut, why) = log
        .recovered()
        .map(|(c, _)| (c.bytes_cut, c.reason.clone()))
        .unwrap_or((0, "nothing to cut".into()));
    let size = log.committed().get();
    drop(log);
    (secs, cut, why, size)
}

/// The input line `argusctl append` takes for an event.
fn input_line(out: &mut Vec<u8>, e: &NewEntry) {
    let _ = write!(
        out,
        r#"{{"kind":"{}","job_id":"{}","step_id":"{}","agent":"{}","payload":"#,
        e.kind,
        e.job_id.as_deref().unwrap_or(""),
        e.step_id.as_deref().unwrap_or(""),
        e.agent.as_deref().unwrap_or(""),
    );
    out.extend_from_slice(&e.payload);
    out.extend_from_slice(b"}\n");
}

fn find_argusctl() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARGUSCTL") {
        return Some(PathBuf::from(p));
    }
    // Cargo builds the package's binaries for benches and says where.
    if let Some(p) = option_env!("CARGO_BIN_EXE_argusctl") {
        let p = PathBuf::from(p);
        if p.exists() {
            return Some(p);
        }
    }
    // <target>/release/deps/recovery-<hash> -> <target>/release/argusctl
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("argusctl");
    p.exists().then_some(p)
}

struct KillRun {
    acked: u64,
    sent_lines: u64,
    ran_for: f64,
    seg_len: u64,
    open_secs: f64,
    cut: u64,
    reason: String,
    committed_before: u64,
    committed_after: u64,
}

/// Streams events into `argusctl append`, SIGKILLs it after `run_for`, then
/// times `Log::open`.
fn kill_run(argusctl: &Path, root: &Path, run_for: Duration) -> KillRun {
    let committed_before = {
        let log = argus::Log::open(root).expect("open before kill run");
        log.committed().get()
    };
    let mut child = Command::new(argusctl)
        .arg("append")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn argusctl append");
    let mut stdin = child.stdin.take().expect("child stdin");
    let stdout = child.stdout.take().expect("child stdout");
    let mut stderr = child.stderr.take().expect("child stderr");
    let acked = AtomicU64::new(0);
    let sent = AtomicU64::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Feed until the pipe breaks (the child is gone).
            let mut buf = Vec::with_capacity(1 << 20);
            let mut i = 10_000_000u64;
            loop {
                buf.clear();
                for e in events(i, 2048) {
                    input_line(&mut buf, &e);
                }
                i += 2048;
                if stdin.write_all(&buf).is_err() {
                    break;
                }
                sent.fetch_add(2048, Ordering::Relaxed);
            }
        });
        s.spawn(|| {
            for line in std::io::BufReader::new(stdout).lines() {
                match line {
                    Ok(l) if l.starts_with("{\"seq\"") => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        std::thread::sleep(run_for);
        let exited_early = child.try_wait().ok().flatten();
        child.kill().expect("SIGKILL argusctl");
        let _ = child.wait();
        if let Some(st) = exited_early {
            let mut msg = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut msg);
            panic!("argusctl append exited before the kill ({st}): {msg}");
        }
    });
    let ran_for = t.elapsed().as_secs_f64();
    let seg_len = file_len(&last_segment(root));
    let (open_secs, cut, reason, committed_after) = timed_open(root);
    KillRun {
        acked: acked.load(Ordering::Relaxed),
        sent_lines: sent.load(Ordering::Relaxed),
        ran_for,
        seg_len,
        open_secs,
        cut,
        reason,
        committed_before,
        committed_after,
    }
}

/// The tails of SPEC §7.2's judgement, 8 MiB each, after three commits.
fn hostile_tail_bytes(kind: &str, seal_frame: &[u8]) -> Vec<u8> {
    const N: usize = 8 << 20;
    match kind {
        "zeros" => vec![0u8; N],
        "random" => {
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            (0..N / 8)
                .flat_map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()
                })
                .collect()
        }
        // A frame header every 9 bytes claiming a 1 MiB body: the tail that
        // made the old judgement quadratic.
        "long headers" => [0xAB, 0xCD, 0xEF, 0x01, 0x00, 0x00, 0x10, 0x00, 0x01]
            .iter()
            .copied()
            .cycle()
            .take(N)
            .collect(),
        // CRC-valid seal frames with the right key id and a bad signature.
        _ => {
            let mut one = seal_frame.to_vec();
            one[9 + 84] ^= 0x55;
            let mut out = vec![0xEE];
            let mut i = 0u64;
            while out.len() + one.len() <= N {
                one[9..17].copy_from_slice(&(1000 + i).to_le_bytes());
                let crc = crc32fast::hash(&one[4..]);
                one[..4].copy_from_slice(&crc.to_le_bytes());
                out.extend_from_slice(&one);
                i += 1;
            }
            out
        }
    }
}

/// Judging a hostile 8 MiB tail must be linear: recovery (on a fresh copy
/// each rep) and verify, beside reading and BLAKE3-hashing the same bytes.
fn hostile_tails() {
    println!("Hostile 8 MiB tails after three commits (median of {REPS}; ratio to fs::read + BLAKE3 of the segment):");
    let mut rows = Vec::new();
    for kind in ["zeros", "random", "long headers", "seal flood"] {
        let tmp = temp_dir("hostile-");
        let base = tmp.path().join("base");
        {
            let log = create_log(&base, DEFAULT_SEGMENT_BYTES);
            for i in 0..3 {
                log.append(events(i * 5, 5)).expect("append");
            }
        }
        let seg = last_segment(&base);
        let bytes = std::fs::read(&seg).expect("read segment");
        let seal_at = bytes.len() - 157;
        let tail = hostile_tail_bytes(kind, &bytes[seal_at..]);
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .and_then(|mut f| f.write_all(&tail))
            .expect("append tail");
        let meta = LogDir::new(&base).read_meta().expect("meta");
        let (log_id, key) = (meta.log_id().expect("id"), meta.public_key().expect("key"));
        let (mut t_rec, mut t_ver, mut t_base, mut outcome) =
            (Vec::new(), Vec::new(), Vec::new(), String::new());
        for rep in 0..REPS {
            let t = Instant::now();
            let b = std::fs::read(&seg).expect("read");
            std::hint::black_box(blake3::hash(&b));
            t_base.push(t.elapsed().as_secs_f64());
            let opts = argus::log::verify::Options {
                key,
                key_pinned: true,
                checkpoints: vec![],
                threads: 1,
                progress: None,
            };
            let t = Instant::now();
            let rep_v = argus::log::verify::verify(&base, &opts).expect("verify runs");
            t_ver.push(t.elapsed().as_secs_f64());
            let copy = tmp.path().join(format!("copy{rep}"));
            std::fs::create_dir_all(copy.join("segments")).expect("mkdir");
            std::fs::copy(base.join("argus.json"), copy.join("argus.json")).expect("copy meta");
            std::fs::copy(
                &seg,
                copy.join("segments").join(seg.file_name().expect("name")),
            )
            .expect("copy seg");
            let t = Instant::now();
            let rec = argus::log::recovery::recover(
                &LogDir::new(&copy),
                &log_id,
                &log_format::SealKey::new(log_id, &key),
            );
            t_rec.push(t.elapsed().as_secs_f64());
            outcome = format!(
                "verify {} / recovery {}",
                if rep_v.failure.is_some() {
                    "CONTENT"
                } else {
                    "torn (ok)"
                },
                if rec.is_ok() { "cut" } else { "refused" }
            );
        }
        let (r, v, b) = (median(&t_rec), median(&t_ver), median(&t_base));
        rows.push(vec![
            kind.to_string(),
            outcome,
            fmt_secs(r),
            fmt_ratio(r / b),
            fmt_secs(v),
            fmt_ratio(v / b),
            fmt_secs(b),
        ]);
    }
    print_table(
        &[
            "tail",
            "judged",
            "recover()",
            "x base",
            "verify",
            "x base",
            "base",
        ],
        &rows,
    );
    println!();
}

fn main() {
    print_environment("recovery");
    print_entry_sizes();
    hostile_tails();
    let scale = scale();
    let root_dir = bench_root();
    let mut target = (1024.0 * scale) as u64 * MIB;
    if let Some(free) = free_bytes(&root_dir) {
        println!(
            "free space at {}: {:.1} GB",
            root_dir.display(),
            free as f64 / 1e9
        );
        let cap = free / 3;
        if target > cap {
            target = cap / MIB * MIB;
            println!(
                "not enough room for a {:.0} MiB log; using {} MiB",
                1024.0 * scale,
                target / MIB
            );
        }
    }
    let _ = events(0, 1);

    // Build: batched appends until the log has target/64 MiB segments and
    // the last is within 2 MiB of full, the worst case for open-time
    // recovery, which reads the whole last segment.
    let tmp = temp_dir("recovery-");
    let root = tmp.path().join("log");
    let nseg = (target / DEFAULT_SEGMENT_BYTES).max(1) as usize;
    {
        let log = create_log(&root, DEFAULT_SEGMENT_BYTES);
        let (n, secs) = fill_log(&log, &root, 0, 4096, |_| {
            let segs = segment_files(&root);
            segs.len() >= nseg
                && segs
                    .last()
                    .is_some_and(|p| file_len(p) >= DEFAULT_SEGMENT_BYTES - 2 * MIB)
        });
        let bytes = segments_bytes(&root);
        println!(
            "built log: {n} entries, {:.1} MiB in {} segments in {secs:.1} s ({:.0} MB/s)",
            bytes as f64 / MIB as f64,
            segment_files(&root).len(),
            bytes as f64 / MB / secs
        );
    }
    let total_bytes = segments_bytes(&root);
    let last = last_segment(&root);
    let last_len = file_len(&last);
    println!(
        "last segment: {} ({:.1} MiB)",
        last.file_name().expect("name").to_string_lossy(),
        last_len as f64 / MIB as f64
    );
    println!();

    // Every timed open is paired with a read of the last segment taken just
    // before it, and the "x read" figures are medians of per-rep ratios, so a
    // burst of load from other processes skews both sides alike. The page
    // cache is warm (the log was just written; 23 GB RAM) unless noted.
    let read_last = |root: &Path| {
        let t = Instant::now();
        std::hint::black_box(std::fs::read(last_segment(root)).expect("read last segment"));
        t.elapsed().as_secs_f64()
    };
    let mut t_read = Vec::new();
    let mut t_b3 = Vec::new();
    for _ in 0..REPS {
        t_read.push(read_last(&root));
        let t = Instant::now();
        for p in segment_files(&root) {
            let b = std::fs::read(&p).expect("read segment");
            std::hint::black_box(blake3::hash(&b));
        }
        t_b3.push(t.elapsed().as_secs_f64());
    }
    let b3_warm = median(&t_b3);

    // Recovery, scan only: `recover` on a clean tail reads and checks the
    // last segment and cuts nothing.
    let d = LogDir::new(&root);
    let meta = d.read_meta().expect("meta");
    let log_id = meta.log_id().expect("log id");
    let key = meta.public_key().expect("public key");
    let (mut t_scan, mut x_scan) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        let r = read_last(&root);
        let t = Instant::now();
        let rec =
            argus::log::recovery::recover(&d, &log_id, &log_format::SealKey::new(log_id, &key))
                .expect("recover");
        let s = t.elapsed().as_secs_f64();
        assert_eq!(rec.len, file_len(&last), "clean log should need no cut");
        t_read.push(r);
        t_scan.push(s);
        x_scan.push(s / r);
    }

    // Clean reopen (no crash): open = scan + writer start, nothing appended.
    let (mut t_clean, mut x_clean) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        let r = read_last(&root);
        let (s, cut, _, _) = timed_open(&root);
        assert_eq!(cut, 0);
        t_read.push(r);
        t_clean.push(s);
        x_clean.push(s / r);
    }

    // Torn tail, warm cache.
    let (mut t_torn, mut x_torn) = (Vec::new(), Vec::new());
    let mut torn_info = (0, String::new());
    for _ in 0..REPS {
        let torn = tear_tail(&root);
        let r = read_last(&root);
        let (s, cut, why, _) = timed_open(&root);
        assert_eq!(cut, torn, "recovery should cut exactly the torn bytes");
        torn_info = (cut, why);
        t_read.push(r);
        t_torn.push(s);
        x_torn.push(s / r);
    }

    // Torn tail, last segment evicted from the page cache first; the
    // baseline is a cold read of the same file, evicted the same way.
    let (mut t_read_cold, mut t_torn_cold, mut x_torn_cold) = (Vec::new(), Vec::new(), Vec::new());
    let mut evicted = true;
    for _ in 0..REPS {
        evicted &= evict_from_page_cache(&last_segment(&root));
        let r = read_last(&root);
        tear_tail(&root);
        evicted &= evict_from_page_cache(&last_segment(&root));
        let (s, _, _, _) = timed_open(&root);
        t_read_cold.push(r);
        t_torn_cold.push(s);
        x_torn_cold.push(s / r);
    }
    let read_warm = median(&t_read);
    let read_cold = median(&t_read_cold);
    let (scan_warm, open_clean, open_torn, open_torn_cold) = (
        median(&t_scan),
        median(&t_clean),
        median(&t_torn),
        median(&t_torn_cold),
    );

    // A real crash: argusctl append killed with SIGKILL mid-stream.
    let kill = match find_argusctl() {
        Some(p) => {
            println!("kill -9 run: {}", p.display());
            Some(kill_run(&p, &root, Duration::from_secs_f64(1.0)))
        }
        None => {
            println!(
                "kill -9 run skipped: argusctl not found next to the bench; build it with\n  \
                 CARGO_TARGET_DIR=<same> cargo build --release --offline --bin argusctl\n\
                 or set ARGUSCTL=/path/to/argusctl"
            );
            None
        }
    };

    // The log must still verify after all of this.
    let meta = d.read_meta().expect("meta");
    let t = Instant::now();
    let rep = argus::log::verify::verify(
        &root,
        &argus::log::verify::Options {
            key: argus::log::dir::parse_public_key(&meta.public_key).expect("key"),
            key_pinned: true,
            checkpoints: vec![],
            threads: 2,
            progress: None,
        },
    )
    .expect("verify ran");
    println!(
        "verify after the crashes: {} ({} entries, {:.0} MB, {:.1} s, warnings: {})",
        rep.status,
        rep.entries,
        rep.bytes as f64 / MB,
        t.elapsed().as_secs_f64(),
        rep.warnings.len()
    );
    assert_eq!(rep.status, "ok", "log does not verify: {:?}", rep.failure);
    println!();

    let mb = |b: u64| b as f64 / MB;
    println!(
        "Recovery of a {:.0} MiB log, last segment {:.1} MiB (median of {REPS}; \"x read\" is the\n\
         median of per-rep ratios to an fs::read of the last segment taken just before)",
        total_bytes as f64 / MIB as f64,
        last_len as f64 / MIB as f64
    );
    let mut rows = vec![
        vec![
            "Log::open, clean tail (warm)".into(),
            fmt_secs(open_clean),
            format!("{:.0}", mb(last_len) / open_clean),
            fmt_ratio(median(&x_clean)),
            format!("{:.1}%", 100.0 * open_clean / b3_warm),
        ],
        vec![
            "  of which recover() scan".into(),
            fmt_secs(scan_warm),
            format!("{:.0}", mb(last_len) / scan_warm),
            fmt_ratio(median(&x_scan)),
            format!("{:.1}%", 100.0 * scan_warm / b3_warm),
        ],
        vec![
            "Log::open, torn tail (warm)".into(),
            fmt_secs(open_torn),
            format!("{:.0}", mb(last_len) / open_torn),
            fmt_ratio(median(&x_torn)),
            format!("{:.1}%", 100.0 * open_torn / b3_warm),
        ],
        vec![
            format!(
                "Log::open, torn tail (cold{})",
                if evicted { "" } else { "? fadvise failed" }
            ),
            fmt_secs(open_torn_cold),
            format!("{:.0}", mb(last_len) / open_torn_cold),
            format!("{} (vs cold read)", fmt_ratio(median(&x_torn_cold))),
            format!("{:.1}%", 100.0 * open_torn_cold / b3_warm),
        ],
    ];
    if let Some(k) = &kill {
        rows.push(vec![
            "Log::open after SIGKILL of argusctl (warm)".into(),
            fmt_secs(k.open_secs),
            format!("{:.0}", mb(k.seg_len) / k.open_secs),
            format!("n/a ({:.1} MiB segment)", k.seg_len as f64 / MIB as f64),
            format!("{:.1}%", 100.0 * k.open_secs / b3_warm),
        ]);
    }
    rows.push(vec![
        "baseline: fs::read last segment (warm)".into(),
        fmt_secs(read_warm),
        format!("{:.0}", mb(last_len) / read_warm),
        "1x".into(),
        format!("{:.1}%", 100.0 * read_warm / b3_warm),
    ]);
    rows.push(vec![
        "baseline: fs::read last segment (cold)".into(),
        fmt_secs(read_cold),
        format!("{:.0}", mb(last_len) / read_cold),
        fmt_ratio(read_cold / read_warm),
        format!("{:.1}%", 100.0 * read_cold / b3_warm),
    ]);
    rows.push(vec![
        "baseline: read + BLAKE3 whole log (warm)".into(),
        fmt_secs(b3_warm),
        format!("{:.0}", mb(total_bytes) / b3_warm),
        fmt_ratio(b3_warm / read_warm),
        "100%".into(),
    ]);
    print_table(
        &[
            "measurement",
            "time",
            "MB/s",
            "x read last seg",
            "% of whole-log BLAKE3",
        ],
        &rows,
    );
    println!(
        "torn-tail runs cut {} bytes each\n  ({});\n\
         each such open also records the cut durably (a log.recovered entry).\n\
         \"cold\" = last segment dropped from the guest page cache with\n\
         posix_fadvise(DONTNEED); the hypervisor may still cache the disk.",
        torn_info.0, torn_info.1
    );
    if let Some(k) = kill {
        println!(
            "SIGKILL run: argusctl ran {:.2} s, {} lines sent, {} acks received before the kill;\n\
             last segment {:.1} MiB at open; recovery cut {} bytes ({}).\n\
             committed entries: {} before the run, {} after recovery (>= before + acks: {}).",
            k.ran_for,
            k.sent_lines,
            k.acked,
            k.seg_len as f64 / MIB as f64,
            k.cut,
            k.reason,
            k.committed_before,
            k.committed_after,
            if k.committed_after >= k.committed_before + k.acked {
                "yes, no acknowledged entry lost"
            } else {
                "NO: ACKNOWLEDGED ENTRIES LOST"
            }
        );
    }
    println!("load average at end: {}", loadavg());
}
