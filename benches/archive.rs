//! Compressed segments (SPEC §12, `argusctl compact`) on a realistic agent
//! workload: the demo's scripted session (src/cli/demo_session.jsonl: jobs,
//! tool calls, costs, proposals, approvals, retries, SLA, DLQ, memory)
//! replayed as many sessions, each with its own job ids and its own numbers
//! and call ids, so no two sessions are byte-identical.
//!
//! Reports, in one run and beside its own baselines:
//! - bytes on disk per entry: plain segments, compressed segments, and the
//!   same events as plain JSONL (one JSON object per line with seq and time,
//!   as a JSONL audit log stores them). Goal: compressed ≤ 0.5× JSONL.
//! - `argusctl verify` and `argusctl replay JOB` (whole processes, page cache
//!   warm) on the compacted copy against the plain log. Goal: ≤ 1.5×.
//! - `argusctl cat -o json` (every entry) the same way, and compaction time.
//! - the level and block size trade-off on one segment: ratio, compression
//!   and decompression speed, and the cost of decompressing one block (what
//!   a seek to one entry would cost with block-level random access).
//!
//! Run: `cargo bench --bench archive` (about a minute). `ARGUS_BENCH_SCALE`
//! multiplies the 150,000 entries; `ARGUS_BENCH_ROUNDS` (default 5) timed
//! rounds per command.
#[path = "common/mod.rs"]
mod common;

use argus::NewEntry;
use common::*;
use log_format::archive::{self, Archive, EncodeOptions};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SESSION: &str = include_str!("../src/cli/demo_session.jsonl");
/// Segments roll at 8 MiB here (64 MiB by default) so that a bench-sized
/// log has many sealed segments to compress.
const SEGMENT_BYTES: u64 = 8 << 20;

fn argusctl() -> &'static str {
    env!("CARGO_BIN_EXE_argusctl")
}

/// Every number in `v` moved by a value drawn from `seed` (keeping its
/// sign and rough magnitude), and every string that names an id suffixed.
fn vary(v: &mut Value, seed: u64, k: u64) {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                let span = i.max(10);
                *v = Value::from(span / 2 + mix(seed) % span);
            } else if let Some(f) = n.as_f64() {
                let r = (mix(seed) % 1000) as f64 / 1000.0;
                *v = Value::from(((f * (0.5 + r)) * 10_000.0).round() / 10_000.0);
            }
        }
        Value::String(s)
            if s.contains("-") && s.len() < 40 && s.chars().any(|c| c.is_ascii_digit()) =>
        {
            *s = format!("{s}-{k:x}");
        }
        Value::Array(a) => a
            .iter_mut()
            .enumerate()
            .for_each(|(j, x)| vary(x, mix(seed ^ j as u64), k)),
        Value::Object(o) => o
            .iter_mut()
            .enumerate()
            .for_each(|(j, (_, x))| vary(x, mix(seed.wrapping_add(j as u64 * 7919)), k)),
        _ => {}
    }
}

/// The session's lines as templates (kind, job, step, agent, payload).
fn templates() -> Vec<Value> {
    SESSION
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("demo session line"))
        .collect()
}

/// Entry `i` of the workload: line `i % n` of session copy `i / n`.
fn entry(t: &[Value], i: u64, actors: &[String]) -> NewEntry {
    let n = t.len() as u64;
    let (k, j) = (i / n, (i % n) as usize);
    let line = &t[j];
    let s = |f: &str| line[f].as_str().map(|x| format!("{x}-{k:x}"));
    let mut payload = line["payload"].clone();
    vary(&mut payload, mix(i), k);
    NewEntry {
        kind: line["kind"].as_str().unwrap_or("x.bench").into(),
        job_id: s("job_id"),
        step_id: line["step_id"].as_str().map(str::to_string),
        agent: line["agent"].as_str().map(str::to_string),
        actor: actors[j].clone(),
        parent: None,
        payload: argus::json::to_canonical(&payload),
    }
}

/// For each template, an actor whose class may write its kind (found by
/// asking a scratch log, so the bench follows the registry as it is);
/// `None` for a line the library refuses as it stands (the demo binds an
/// approval to its proposal's parameters at run time).
fn actors_for(t: &[Value]) -> Vec<Option<String>> {
    let tmp = temp_dir("archive-actors");
    let log = create_log(&tmp.path().join("log"), SEGMENT_BYTES);
    t.iter()
        .enumerate()
        .map(|(j, line)| {
            let agent = line["agent"].as_str().unwrap_or("bench");
            let candidates = [
                format!("agent:{agent}"),
                "operator:bench".into(),
                "auditor:bench".into(),
                "argus".into(),
            ];
            candidates.into_iter().find(|a| {
                log.append(vec![entry(t, j as u64, &vec![a.clone(); t.len()])])
                    .is_ok()
            })
        })
        .collect()
}

fn timed(args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(argusctl())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run argusctl");
    let d = t.elapsed();
    assert!(out.status.success(), "argusctl {args:?} failed");
    d
}

fn median_ms(args: &[&str], rounds: usize) -> f64 {
    timed(args); // warm the page cache (and the projections)
    let v: Vec<f64> = (0..rounds)
        .map(|_| timed(args).as_secs_f64() * 1e3)
        .collect();
    median(&v)
}

fn file_bytes(dir: &Path, ext: &str) -> u64 {
    std::fs::read_dir(dir.join("segments"))
        .expect("segments")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == ext))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .args(["-a"])
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

/// Level × block size on one sealed segment's bytes.
fn tradeoffs(segment: &[u8]) {
    println!(
        "\nlevel and block size, on one {:.1} MB segment:",
        segment.len() as f64 / 1e6
    );
    println!("  level  block    ratio  compress    decompress  one block");
    for level in [1, 3, 9, 19] {
        for block_size in [64 << 10, 256 << 10, 1 << 20] {
            let opts = EncodeOptions { level, block_size };
            let t = Instant::now();
            let z = archive::encode(segment, &opts).expect("encode");
            let enc = t.elapsed().as_secs_f64();
            let a = Archive::parse(&z).expect("parse");
            let t = Instant::now();
            let back = a.decode_all().expect("decode");
            let dec = t.elapsed().as_secs_f64();
            assert_eq!(back, segment);
            let mid = a.blocks.len() / 2;
            let t = Instant::now();
            for _ in 0..20 {
                a.decode_block(mid).expect("block");
            }
            let one = t.elapsed().as_secs_f64() / 20.0;
            println!(
                "  {level:>5}  {:>4} KiB  {:.3}  {:>6.0} MB/s  {:>6.0} MB/s  {:>6.0} µs",
                block_size >> 10,
                z.len() as f64 / segment.len() as f64,
                segment.len() as f64 / enc / 1e6,
                segment.len() as f64 / dec / 1e6,
                one * 1e6
            );
        }
    }
}

fn main() {
    print_environment("archive");
    let total = (150_000.0 * scale()) as u64;
    let rounds: usize = std::env::var("ARGUS_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let all = templates();
    let found = actors_for(&all);
    let dropped: Vec<&str> = all
        .iter()
        .zip(&found)
        .filter(|(_, a)| a.is_none())
        .filter_map(|(l, _)| l["kind"].as_str())
        .collect();
    let (t, actors): (Vec<Value>, Vec<String>) = all
        .iter()
        .cloned()
        .zip(found)
        .filter_map(|(l, a)| a.map(|a| (l, a)))
        .unzip();
    if !dropped.is_empty() {
        println!("session lines left out (refused as they stand): {dropped:?}");
    }
    let tmp = temp_dir("archive");
    let plain = tmp.path().join("plain");
    let packed = tmp.path().join("packed");

    let built = Instant::now();
    let log = create_log(&plain, SEGMENT_BYTES);
    let mut jsonl = Vec::new();
    let ts0 = now_ns();
    let mut i = 0u64;
    while i < total {
        let n = 500.min(total - i);
        let batch: Vec<NewEntry> = (i..i + n).map(|s| entry(&t, s, &actors)).collect();
        for (j, e) in batch.iter().enumerate() {
            json_line(&mut jsonl, i + j as u64, ts0 + (i + j as u64) * 1000, e);
        }
        log.append(batch).expect("append");
        i += n;
    }
    drop(log);
    let key =
        serde_json::from_slice::<Value>(&std::fs::read(plain.join("argus.json")).expect("meta"))
            .expect("meta json")["public_key"]
            .as_str()
            .expect("key")
            .to_string();
    println!(
        "workload: {total} entries, {} sessions of the demo's {} events, built in {:.1} s",
        total / t.len() as u64,
        t.len(),
        built.elapsed().as_secs_f64()
    );
    let p = plain.to_str().expect("utf-8");
    let z = packed.to_str().expect("utf-8");
    // Projections caught up once, so replay times the read, not the catch-up.
    timed(&["jobs", p, "-o", "json"]);
    copy_tree(&plain, &packed);
    let tc = Instant::now();
    timed(&["compact", z]);
    let compact_s = tc.elapsed().as_secs_f64();

    let plain_bytes = file_bytes(&plain, "seg");
    let z_bytes = file_bytes(&packed, "segz");
    let tail_bytes = file_bytes(&packed, "seg");
    let n = total as f64;
    println!("\nbytes on disk per entry:");
    println!(
        "  JSONL (same events)        {:>7.1} B",
        jsonl.len() as f64 / n
    );
    println!(
        "  plain segments             {:>7.1} B  ({:.2}x JSONL)",
        plain_bytes as f64 / n,
        plain_bytes as f64 / jsonl.len() as f64
    );
    println!(
        "  compacted (segz + last seg) {:>6.1} B  ({:.2}x JSONL, {:.2}x plain); sealed segments alone {:.3}x plain",
        (z_bytes + tail_bytes) as f64 / n,
        (z_bytes + tail_bytes) as f64 / jsonl.len() as f64,
        (z_bytes + tail_bytes) as f64 / plain_bytes as f64,
        z_bytes as f64 / (plain_bytes - tail_bytes) as f64,
    );
    println!(
        "  compaction: {:.1} s for {:.0} MB ({:.0} MB/s), whole process",
        compact_s,
        (plain_bytes - tail_bytes) as f64 / 1e6,
        (plain_bytes - tail_bytes) as f64 / 1e6 / compact_s
    );

    // A job in the middle of the log, in a compressed segment.
    let job = format!("job-7f3a-{:x}", total / t.len() as u64 / 2);
    for d in [p, z] {
        let out = Command::new(argusctl())
            .args(["replay", d, &job, "-o", "json"])
            .output()
            .expect("replay");
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "replay {job} printed nothing"
        );
        println!("replay {job} prints {} bytes ({d})", out.stdout.len());
    }
    println!(
        "\nwhole processes, page cache warm, median of {rounds} (compacted vs plain, same run):"
    );
    for (what, args_p, args_z) in [
        (
            "verify",
            vec!["verify", p, "--key", &key],
            vec!["verify", z, "--key", &key],
        ),
        (
            "replay JOB",
            vec!["replay", p, &job, "-o", "json"],
            vec!["replay", z, &job, "-o", "json"],
        ),
        (
            "cat -o json",
            vec!["cat", p, "-o", "json"],
            vec!["cat", z, "-o", "json"],
        ),
    ] {
        let a = median_ms(&args_p, rounds);
        let b = median_ms(&args_z, rounds);
        println!(
            "  {what:<12} plain {a:>8.1} ms   compacted {b:>8.1} ms   {:.2}x",
            b / a
        );
    }

    let first = plain.join("segments").join("00000000000000000000.seg");
    let seg = std::fs::read(&first).expect("first segment");
    tradeoffs(&seg);
}
