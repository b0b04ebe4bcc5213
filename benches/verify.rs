//! Offline verification throughput (MB/s of segment bytes), threads=2 and
//! threads=1, against single-threaded BLAKE3 over the same bytes (whole
//! files, and one hash per ~300-byte entry), all from memory / page cache.
//! A second and third, smaller log commit one entry (or a few) per seal,
//! where the Ed25519 check of every seal dominates. Last, `argusctl verify`
//! of a 100k-entry log as a process, against a Python BLAKE3 chain scan of
//! the same events as JSONL (benches/py/blake3_chain.py), timed alike.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/bench-target cargo bench --offline --bench verify`
//! `ARGUS_BENCH_SCALE=2` doubles the log sizes.
#[path = "common/mod.rs"]
mod common;

use argus::log::verify::{verify, Options, Report};
use common::*;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

const REPS: usize = 5;

fn options(root: &Path, threads: usize) -> Options {
    let meta = argus::log::dir::LogDir::new(root)
        .read_meta()
        .expect("read argus.json");
    Options {
        key: argus::log::dir::parse_public_key(&meta.public_key).expect("public key"),
        key_pinned: true,
        checkpoints: vec![],
        threads,
        progress: None,
    }
}

/// One verify run: (seconds, report). Panics unless the log verifies.
fn verify_once(root: &Path, threads: usize) -> (f64, Report) {
    let opts = options(root, threads);
    let t = Instant::now();
    let rep = verify(root, &opts).expect("verify ran");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(rep.status, "ok", "verify failed: {:?}", rep.failure);
    (secs, rep)
}

/// Copies a log directory (files and subdirectories) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for e in std::fs::read_dir(from).expect("read log dir") {
        let e = e.expect("dir entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else if e.file_type().expect("file type").is_file() {
            std::fs::copy(e.path(), &dst).expect("copy log file");
        }
    }
}

/// Seconds one child process takes, start to exit; panics unless it exits 0.
fn time_process(cmd: &mut std::process::Command) -> f64 {
    let t = Instant::now();
    let out = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run child");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

/// Process-level comparison (issue 13 target 4): `argusctl verify DIR` of
/// a 100k-entry log (1000 entries per commit), process start included,
/// against `python3 benches/py/blake3_chain.py` over the same events as
/// JSONL, interleaved, medians of runs. `None` without python3 + blake3.
fn process_comparison(scale: f64) -> Option<(u64, f64, f64)> {
    let py_ok = std::process::Command::new("python3")
        .args(["-c", "import blake3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !py_ok {
        println!("process comparison skipped: python3 with the blake3 package not found (pip install blake3)");
        return None;
    }
    let dir = temp_dir("verify-proc-");
    let root = dir.path().join("log");
    let n = (100_000.0 * scale) as u64;
    let log = create_log(&root, argus::log::dir::DEFAULT_SEGMENT_BYTES);
    let mut jsonl = Vec::new();
    let mut i = 0u64;
    while i < n {
        let k = 1000.min(n - i) as usize;
        let batch = events(i, k);
        for (j, e) in batch.iter().enumerate() {
            json_line(&mut jsonl, i + j as u64, now_ns(), e);
        }
        log.append(batch).expect("append");
        i += k as u64;
    }
    drop(log);
    let lines = dir.path().join("events.jsonl");
    std::fs::write(&lines, &jsonl).expect("write jsonl");
    let key = options(&root, 1).key;
    let key_hex = hex::encode(key.as_bytes());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/py/blake3_chain.py");
    let argusctl = env!("CARGO_BIN_EXE_argusctl");
    let verify = || {
        time_process(
            std::process::Command::new(argusctl)
                .arg("verify")
                .arg(&root)
                .args(["--key", &key_hex]),
        )
    };
    let python = || {
        time_process(
            std::process::Command::new("python3")
                .arg(&script)
                .arg(&lines),
        )
    };
    // Warm both (page cache, interpreter files) before timing.
    verify();
    python();
    let (mut a, mut p) = (vec![], vec![]);
    for _ in 0..2 * REPS {
        a.push(verify());
        p.push(python());
    }
    Some((n, median(&a), median(&p)))
}

/// Segment files read into memory.
fn load_segments(root: &Path) -> Vec<Vec<u8>> {
    segment_files(root)
        .iter()
        .map(|p| std::fs::read(p).expect("read segment"))
        .collect()
}

/// Seconds of single-threaded `blake3::hash` over each file's bytes.
fn time_blake3_files(files: &[Vec<u8>]) -> f64 {
    let t = Instant::now();
    for f in files {
        black_box(blake3::hash(black_box(f)));
    }
    t.elapsed().as_secs_f64()
}

/// Seconds of single-threaded `blake3::hash` per `chunk`-byte piece.
fn time_blake3_chunks(files: &[Vec<u8>], chunk: usize) -> f64 {
    let t = Instant::now();
    for f in files {
        for c in f.chunks(chunk) {
            black_box(blake3::hash(black_box(c)));
        }
    }
    t.elapsed().as_secs_f64()
}

struct Measured {
    name: String,
    /// Issue 13's entries/s target at threads=2, where it has one.
    target: Option<f64>,
    bytes: u64,
    entries: u64,
    seals: u64,
    segments: usize,
    v2: f64,
    v1: f64,
    b3_files: f64,
    b3_chunks: f64,
}

/// Times verify (threads 2 and 1) and both baselines, interleaved within
/// each rep so every figure sees the same machine load; medians over reps.
fn measure(name: &str, target: Option<f64>, root: &Path, frame_len: usize) -> Measured {
    let (entries, seals, _) = count_frames(root);
    // Warm the page cache (and check the log) before timing anything.
    let (_, rep) = verify_once(root, 2);
    let reps = if rep.bytes < 64 * MIB { 2 * REPS } else { REPS };
    let files = load_segments(root);
    let (mut v2, mut v1, mut bf, mut bc) = (vec![], vec![], vec![], vec![]);
    for _ in 0..reps {
        v2.push(verify_once(root, 2).0);
        v1.push(verify_once(root, 1).0);
        bf.push(time_blake3_files(&files));
        bc.push(time_blake3_chunks(&files, frame_len));
    }
    Measured {
        name: name.to_string(),
        target,
        bytes: rep.bytes,
        entries,
        seals,
        segments: rep.segments,
        v2: median(&v2),
        v1: median(&v1),
        b3_files: median(&bf),
        b3_chunks: median(&bc),
    }
}

fn main() {
    print_environment("verify");
    print_entry_sizes();
    let scale = scale();
    let (_, frame_mean, _) = mean_entry_sizes();
    let frame_len = frame_mean.round() as usize;
    let _ = events(0, 1);

    // 1. A large log, batched appends, default 64 MiB segments.
    let target = (384.0 * scale) as u64 * MIB;
    let big = temp_dir("verify-big-");
    let big_root = big.path().join("log");
    {
        let log = create_log(&big_root, argus::log::dir::DEFAULT_SEGMENT_BYTES);
        let (n, secs) = fill_log(&log, &big_root, 0, 4096, |b| b >= target);
        println!(
            "built log 1: {n} entries, {:.0} MB of segments in {secs:.1} s (batches of 4096)",
            segments_bytes(&big_root) as f64 / MB
        );
    }

    // 2. Every entry its own commit: one producer, one entry per call, so
    // exactly one seal per entry, 100k entries. Built on tmpfs when there is
    // one (fdatasync is free there, so this takes seconds, not minutes of
    // fsyncs) and copied to the bench disk, where it is verified.
    let one = temp_dir("verify-oneper-");
    let one_root = one.path().join("log");
    {
        let n = (100_000.0 * scale) as u64;
        let shm = Path::new("/dev/shm");
        let build = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("argus-verify-build-")
                .tempdir_in(shm)
                .expect("tmpfs build dir")
        } else {
            temp_dir("verify-oneper-build-")
        };
        let build_root = build.path().join("log");
        let log = create_log(&build_root, argus::log::dir::DEFAULT_SEGMENT_BYTES);
        let t = Instant::now();
        for i in 0..n {
            log.append(events(i, 1)).expect("append");
        }
        drop(log);
        copy_dir(&build_root, &one_root);
        println!(
            "built log 2: {n} entries, 1 producer x 1 entry/call, in {:.1} s (on {})",
            t.elapsed().as_secs_f64(),
            build.path().display()
        );
    }

    // 3. 20k single-entry calls from 8 producers (group commit merges some).
    let eight = temp_dir("verify-8p-");
    let eight_root = eight.path().join("log");
    {
        let per = (2500.0 * scale) as u64;
        let log = create_log(&eight_root, argus::log::dir::DEFAULT_SEGMENT_BYTES);
        let t = Instant::now();
        std::thread::scope(|s| {
            for p in 0..8u64 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..per {
                        log.append(events(p * per + i, 1)).expect("append");
                    }
                });
            }
        });
        println!(
            "built log 3: {} entries, 8 producers x 1 entry/call, in {:.1} s",
            8 * per,
            t.elapsed().as_secs_f64()
        );
    }
    println!();

    let logs = [
        measure("1: batched (4096/seal)", Some(2e6), &big_root, frame_len),
        measure(
            "2: 1 entry/call, 1 producer",
            Some(1e5),
            &one_root,
            frame_len,
        ),
        measure("3: 1 entry/call, 8 producers", None, &eight_root, frame_len),
    ];

    println!("Logs");
    print_table(
        &["log", "segments", "MB", "entries", "seals", "entries/seal"],
        &logs
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.segments.to_string(),
                    format!("{:.1}", m.bytes as f64 / MB),
                    m.entries.to_string(),
                    m.seals.to_string(),
                    format!("{:.1}", m.entries as f64 / m.seals.max(1) as f64),
                ]
            })
            .collect::<Vec<_>>(),
    );

    let mbs = |m: &Measured, s: f64| m.bytes as f64 / MB / s;
    println!("Verify throughput, MB/s of segment bytes (warm page cache; median of runs)");
    print_table(
        &[
            "log",
            "verify t=2",
            "verify t=1",
            "BLAKE3 files",
            "BLAKE3 per entry",
            "t2/files",
            "t1/files",
            "t2/per-entry",
            "t1/per-entry",
        ],
        &logs
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    format!("{:.0}", mbs(m, m.v2)),
                    format!("{:.0}", mbs(m, m.v1)),
                    format!("{:.0}", mbs(m, m.b3_files)),
                    format!("{:.0}", mbs(m, m.b3_chunks)),
                    format!("{:.1}%", 100.0 * m.b3_files / m.v2),
                    format!("{:.1}%", 100.0 * m.b3_files / m.v1),
                    format!("{:.0}%", 100.0 * m.b3_chunks / m.v2),
                    format!("{:.0}%", 100.0 * m.b3_chunks / m.v1),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!(
        "BLAKE3 files: blake3::hash over each segment file's bytes, one thread.\n\
         BLAKE3 per entry: blake3::hash per {frame_len}-byte chunk (the mean entry frame), one thread.\n\
         Ratios are verify throughput / baseline throughput."
    );
    println!();

    println!("Verify rates");
    print_table(
        &[
            "log",
            "entries/s t=2",
            "entries/s t=1",
            "seals/s t=1",
            "us/entry t=1",
            "speedup t2/t1",
            "target",
        ],
        &logs
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    fmt_rate(m.entries as f64 / m.v2),
                    fmt_rate(m.entries as f64 / m.v1),
                    fmt_rate(m.seals as f64 / m.v1),
                    format!("{:.2}", m.v1 * 1e6 / m.entries.max(1) as f64),
                    fmt_ratio(m.v1 / m.v2),
                    m.target
                        .map(|t| target_verdict(m.entries as f64 / m.v2, t))
                        .unwrap_or_default(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!();

    if let Some((n, argus, python)) = process_comparison(scale) {
        println!(
            "Process level: {n} entries (1000 per commit), process start included (median of runs)"
        );
        print_table(
            &[
                "process",
                "seconds",
                "entries/s",
                "python / argusctl",
                "target",
            ],
            &[
                vec![
                    "argusctl verify DIR --key K".into(),
                    format!("{argus:.3}"),
                    fmt_rate(n as f64 / argus),
                    fmt_ratio(python / argus),
                    target_verdict(python / argus, 1.5),
                ],
                vec![
                    "python3 benches/py/blake3_chain.py events.jsonl".into(),
                    format!("{python:.3}"),
                    fmt_rate(n as f64 / python),
                    String::new(),
                    String::new(),
                ],
            ],
        );
    }
    println!("load average at end: {}", loadavg());
}
