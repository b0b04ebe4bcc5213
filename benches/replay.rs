//! `argusctl replay` as a user runs it: a process started cold on a large
//! log (1,000,000 entries, ~300 MB) asking for one job of 100 entries
//! spread across the whole log, against the full scan a user without a job
//! index would run (`argusctl cat DIR -o json`, then filter), in the same
//! run. Both are timed as whole processes (start, projection catch-up, read,
//! print), cold (the log's files evicted from the page cache first) and
//! warm. The product's bound: replay answers in under 50 ms, cold.
//!
//! Run: `cargo bench --bench replay` (about 1.5 minutes: most of it builds
//! the log and its projections once). `ARGUS_BENCH_SCALE` multiplies the log
//! size; `ARGUS_BENCH_ROUNDS` (default 5) is the number of timed rounds;
//! `ARGUS_BENCH_KEEP=DIR` builds the log in DIR and keeps it (a later run
//! with the same DIR reuses it), for profiling.
//!
//! Eviction: "cold" is what the bound speaks of, the log on disk but not in
//! the page cache: every file of the log directory is evicted with
//! `posix_fadvise(POSIX_FADV_DONTNEED)` (clean pages only, which is all a
//! finished log has), while the binary stays cached as it is for a user who
//! runs argusctl. A third run per round also drops the whole page cache
//! (`/proc/sys/vm/drop_caches`, root only), binary and libc included. The full
//! scan is cold as replay is. It prints which one worked.
#[path = "common/mod.rs"]
mod common;

use argus::NewEntry;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const JOB: &str = "needle-job";
const JOB_ENTRIES: u64 = 100;

fn argusctl() -> &'static str {
    env!("CARGO_BIN_EXE_argusctl")
}

fn needle(i: u64) -> NewEntry {
    let (kind, payload) = match i % 4 {
        0 => (
            "tool.call_started",
            format!(r#"{{"call_id":"n{i}","tool":"bash"}}"#),
        ),
        1 => (
            "tool.call_completed",
            format!(
                r#"{{"call_id":"n{}","duration_ms":1200,"tool":"bash"}}"#,
                i - 1
            ),
        ),
        2 => (
            "cost.logged",
            r#"{"model":"m","price_table":"t","tokens_in":100,"tokens_out":20,"usd":0.01}"#
                .to_string(),
        ),
        _ => ("job.progress", format!(r#"{{"pct":{}}}"#, i % 100)),
    };
    NewEntry {
        kind: kind.into(),
        job_id: Some(JOB.into()),
        step_id: Some(format!("s{}", i / 4)),
        agent: Some("planner-1".into()),
        actor: "agent:planner-1".into(),
        parent: None,
        payload: payload.into_bytes(),
    }
}

/// Evicts the log directory's files from the page cache, and with
/// `everything` the whole page cache too (the binary and the C library
/// included); says how.
fn evict(dir: &Path, everything: bool) -> &'static str {
    let dropped = everything && std::fs::write("/proc/sys/vm/drop_caches", b"1\n").is_ok();
    let mut n = 0;
    for f in walk(dir) {
        if let Ok(file) = std::fs::File::open(&f) {
            use std::os::fd::AsRawFd;
            let _ = file.sync_all();
            // SAFETY: posix_fadvise only reads its integer arguments; the
            // descriptor is open for the call.
            let rc =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if rc == 0 {
                n += 1;
            }
        }
    }
    match (dropped, n > 0) {
        (true, _) => "drop_caches + fadvise",
        (false, true) if everything => "fadvise(DONTNEED) only (not root)",
        (false, true) => "fadvise(DONTNEED) on the log's files",
        _ => "NOT evicted",
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Runs argusctl with `args`, stdout discarded; returns wall time and the
/// bytes it printed.
fn timed(args: &[&str]) -> (Duration, u64) {
    let t = Instant::now();
    let out = Command::new(argusctl())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run argusctl");
    let d = t.elapsed();
    assert!(out.status.success(), "argusctl {args:?} failed");
    (d, out.stdout.len() as u64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    print_environment("replay");
    let total = (1_000_000.0 * scale()) as u64;
    let rounds: usize = std::env::var("ARGUS_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let tmp = temp_dir("replay");
    let keep = std::env::var_os("ARGUS_BENCH_KEEP").map(std::path::PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| tmp.path().join("log"));
    let t = Instant::now();
    if !dir.join("argus.json").exists() {
        let log = create_log(&dir, argus::log::dir::DEFAULT_SEGMENT_BYTES);
        let every = total / JOB_ENTRIES;
        let mut i = 0u64;
        let mut k = 0u64;
        while i < total {
            let mut batch = events(i, 1000);
            if k < JOB_ENTRIES && i / every >= k {
                batch[0] = needle(k);
                k += 1;
            }
            log.append(batch).expect("append");
            i += 1000;
        }
    }
    let bytes = segments_bytes(&dir);
    println!(
        "log: {total} entries, {:.0} MB in {} segment(s), job {JOB} has {JOB_ENTRIES} entries spread over it (built in {:.1} s)",
        bytes as f64 / 1e6,
        segment_files(&dir).len(),
        t.elapsed().as_secs_f64()
    );
    let d = dir.to_str().expect("utf-8 path");
    let t = Instant::now();
    timed(&["jobs", d, "-o", "json"]);
    println!(
        "projections caught up once by `argusctl jobs` in {:.1} s (what any view or argusd does)\n",
        t.elapsed().as_secs_f64()
    );
    let (_, replay_bytes) = timed(&["replay", d, JOB, "-o", "json"]);
    let (_, text_bytes) = timed(&["replay", d, JOB]);
    println!("replay prints {replay_bytes} bytes as JSON, {text_bytes} as text");

    let mut cold_replay = Vec::new();
    let mut all_cold_replay = Vec::new();
    let mut warm_replay = Vec::new();
    let mut cold_scan = Vec::new();
    let mut warm_scan = Vec::new();
    let (mut how, mut how_all) = ("", "");
    for r in 0..rounds {
        how = evict(&dir, false);
        cold_replay.push(ms(timed(&["replay", d, JOB, "-o", "json"]).0));
        warm_replay.push(ms(timed(&["replay", d, JOB, "-o", "json"]).0));
        how_all = evict(&dir, true);
        all_cold_replay.push(ms(timed(&["replay", d, JOB, "-o", "json"]).0));
        evict(&dir, false);
        let (scan, scan_bytes) = timed(&["cat", d, "-o", "json"]);
        cold_scan.push(ms(scan));
        warm_scan.push(ms(timed(&["cat", d, "-o", "json"]).0));
        println!(
            "round {r}: replay cold {:.1} ms (every cache dropped: {:.1} ms), warm {:.1} ms; full scan (cat -o json, {:.0} MB printed) cold {:.0} ms, warm {:.0} ms",
            cold_replay[r],
            all_cold_replay[r],
            warm_replay[r],
            scan_bytes as f64 / 1e6,
            cold_scan[r],
            warm_scan[r]
        );
    }
    println!("\neviction: cold = {how}; every cache dropped = {how_all}; the full scan is cold as replay is");
    let (cr, wr, cs, ws) = (
        median(cold_replay.clone()),
        median(warm_replay),
        median(cold_scan),
        median(warm_scan),
    );
    println!("\n{:<46} {:>12}", "process wall time (median)", "ms");
    println!("{}", "-".repeat(60));
    println!(
        "{:<46} {:>12.1}",
        "argusctl replay DIR JOB, cold (log evicted)", cr
    );
    println!(
        "{:<46} {:>12.1}",
        "argusctl replay DIR JOB, every cache dropped",
        median(all_cold_replay)
    );
    println!("{:<46} {:>12.1}", "argusctl replay DIR JOB, warm", wr);
    println!(
        "{:<46} {:>12.0}",
        "full scan: argusctl cat DIR -o json, cold", cs
    );
    println!(
        "{:<46} {:>12.0}",
        "full scan: argusctl cat DIR -o json, warm", ws
    );
    println!(
        "\nreplay / full scan: cold {:.4}x ({:.0}x faster), warm {:.4}x ({:.0}x faster)",
        cr / cs,
        cs / cr,
        wr / ws,
        ws / wr
    );
    let worst = cold_replay.iter().copied().fold(0.0, f64::max);
    println!(
        "target: cold replay (the log's files out of the page cache) under 50 ms on a {total}-entry log: median {cr:.1} ms, worst {worst:.1} ms: {}",
        if cr < 50.0 { "met" } else { "MISSED" }
    );
    if std::env::var("ARGUS_BENCH_COMPACTED").as_deref() != Ok("0") {
        compacted(&dir, tmp.path(), rounds);
    }
}

/// The same replay on a compacted copy of the log (`argusctl compact` at its
/// defaults: every sealed segment but the last one compressed), against the
/// plain log in the same rounds. The goal: at most 1.5x the plain replay.
fn compacted(dir: &Path, scratch: &Path, rounds: usize) {
    let copy = scratch.join("compacted");
    copy_dir(dir, &copy);
    let c = copy.to_str().expect("utf-8 path");
    let t = Instant::now();
    let out = Command::new(argusctl())
        .args(["compact", c, "--server", "local"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run argusctl compact");
    assert!(out.status.success(), "argusctl compact failed");
    // Every file under segments/: the `.segz` files and what stays plain.
    let stored = |d: &Path| -> u64 {
        walk(&d.join("segments"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "seg" || e == "segz"))
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    };
    let (plain_b, packed_b) = (stored(dir), stored(&copy));
    println!(
        "\ncompacted copy: `argusctl compact` (defaults) in {:.1} s, segments {:.0} MB -> {:.0} MB ({:.1}%)",
        t.elapsed().as_secs_f64(),
        plain_b as f64 / 1e6,
        packed_b as f64 / 1e6,
        100.0 * packed_b as f64 / plain_b as f64
    );
    let d = dir.to_str().expect("utf-8 path");
    let same =
        timed(&["replay", d, JOB, "-o", "json"]).1 == timed(&["replay", c, JOB, "-o", "json"]).1;
    assert!(same, "the compacted copy replays to a different length");
    let (mut pw, mut cw, mut pc, mut cc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(5) {
        evict(dir, false);
        pc.push(ms(timed(&["replay", d, JOB, "-o", "json"]).0));
        evict(&copy, false);
        cc.push(ms(timed(&["replay", c, JOB, "-o", "json"]).0));
        pw.push(ms(timed(&["replay", d, JOB, "-o", "json"]).0));
        cw.push(ms(timed(&["replay", c, JOB, "-o", "json"]).0));
    }
    let ratios = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| y / x).collect());
    let (rw, rc) = (ratios(&pw, &cw), ratios(&pc, &cc));
    println!(
        "replay warm: plain {:.1} ms, compacted {:.1} ms ({rw:.2}x); cold: plain {:.1} ms, compacted {:.1} ms ({rc:.2}x) (medians; ratios are medians of per-round ratios)",
        median(pw),
        median(cw),
        median(pc),
        median(cc)
    );
    println!(
        "target: replay of a compacted log at most 1.5x the plain log, warm: {}",
        if rw <= 1.5 { "met" } else { "MISSED" }
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for e in std::fs::read_dir(from).expect("read the log dir").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy a file");
        }
    }
}
