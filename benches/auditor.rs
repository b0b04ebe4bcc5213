//! The live auditor against what it must keep up with, measured in the same
//! run: (1) how fast `auditor::replay::replay` (every detector on) folds a
//! ~200,000-entry agent log, beside the projection rebuild of the same log
//! and the rate 64 in-process producers append at (the product's goal: the
//! auditor is never the bottleneck, so it folds at least as fast as 64
//! producers append); (2) how soon a real argusd has written
//! `DIR/control/hard_kill.flag` after a causal violation is POSTed, beside
//! one 300-byte write + fdatasync in the same directory (goal: p99 under
//! 50 ms plus one fsync).
//!
//! Run: `cargo bench --bench auditor` (30 to 60 s after the build).
//! `ARGUS_BENCH_SCALE` (default 1) multiplies the log size (200,000
//! entries); `ARGUS_BENCH_SECS` (default 3) is each append run's measured
//! window; `ARGUS_BENCH_ROUNDS` (default 3) how often the throughput
//! comparison is repeated, the systems taking turns; `ARGUS_BENCH_TRIALS`
//! (default 100) the number of detection trials; `ARGUS_BENCH_FILTER`
//! (throughput, latency) runs only the parts whose name holds it; `ARGUSD`
//! runs another argusd binary.
#[path = "common/argusd.rs"]
mod argusd;
#[path = "common/mod.rs"]
mod common;

use argus::auditor::{replay, Config};
use argus::log::reader::LogReader;
use argus::projections::{self, Projections};
use argus::NewEntry;
use argusd::{argusd_path, Conn, Daemon};
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// A causally valid agent session mix. (The shared `common::events` are all
// `tool.call_completed` with no start; the causal detector would call each
// one a violation and write a kill, which is not a normal log.)

const AGENTS: [&str; 4] = ["planner", "researcher", "coder", "reviewer"];
const TOOLS: [&str; 5] = ["llm", "web_search", "bash", "read_file", "http_get"];
const JOB_TYPES: [&str; 3] = ["research_synthesis", "code_change", "triage"];
/// Jobs running at once; their entries interleave.
const SESSIONS: usize = 16;

/// The entries of job `j`, in order: received, dispatched, 3 to 10 tool
/// calls (each `tool.call_started`, then `tool.call_completed` with the
/// same call_id, or 1 in 32 `tool.call_failed`; an `llm` call also logs
/// `cost.logged` between the two), `job.progress` after every third call,
/// `worker.heartbeat` after every fourth, and `job.completed`. About 21
/// entries a job. Costs stay under the economic detector's $0.50 floor
/// and durations under its 30 s floor, as a healthy run's would.
fn job_script(j: u64) -> VecDeque<NewEntry> {
    let r = |k: u64| mix(j.wrapping_mul(1_000_003).wrapping_add(k));
    let job = format!("job-{j:07}");
    let agent = AGENTS[(r(0) % AGENTS.len() as u64) as usize];
    let worker = format!("w-{}", r(1) % 8);
    let job_type = JOB_TYPES[(r(2) % JOB_TYPES.len() as u64) as usize];
    let calls = 3 + r(3) % 8;
    let mut q = VecDeque::new();
    let mut push = |kind: &str, payload: Value| {
        q.push_back(NewEntry {
            kind: kind.into(),
            job_id: Some(job.clone()),
            step_id: None,
            agent: Some(agent.into()),
            actor: format!("agent:{agent}"),
            parent: None,
            payload: argus::json::to_canonical(&payload),
        })
    };
    push(
        "job.received",
        json!({"job_type": job_type, "max_retries": 2, "title": format!("{job_type} #{j}")}),
    );
    push("job.dispatched", json!({"worker_id": worker}));
    let (mut total_ms, mut total_micro_usd) = (0u64, 0u64);
    for c in 0..calls {
        let x = r(10 + c);
        let tool = TOOLS[(x % TOOLS.len() as u64) as usize];
        let call_id = format!("{job}-c{c}");
        push(
            "tool.call_started",
            json!({"tool": tool, "call_id": call_id}),
        );
        let ms = 50 + (x >> 8) % 4000;
        total_ms += ms;
        if tool == "llm" {
            let (tin, tout) = (500 + (x >> 20) % 3500, 100 + (x >> 32) % 900);
            // $3 / $15 per million tokens in / out, in micro-dollars.
            let micro = 3 * tin + 15 * tout;
            total_micro_usd += micro;
            push(
                "cost.logged",
                json!({"usd": micro as f64 / 1e6, "tokens_in": tin, "tokens_out": tout,
                       "model": "claude-haiku", "tool": tool, "price_table": "2026-11"}),
            );
        }
        if (x >> 44) % 32 == 0 {
            push(
                "tool.call_failed",
                json!({"tool": tool, "call_id": call_id, "error": "exit status 1",
                       "duration_ms": ms, "exit_code": 1}),
            );
        } else {
            push(
                "tool.call_completed",
                json!({"tool": tool, "call_id": call_id, "duration_ms": ms, "exit_code": 0}),
            );
        }
        if c % 3 == 2 {
            push(
                "job.progress",
                json!({"message": format!("call {c} done"), "pct": (100 * (c + 1) / calls).min(99)}),
            );
        }
        if c % 4 == 3 {
            push(
                "worker.heartbeat",
                json!({"worker_id": worker, "job_id": job, "cpu_seconds": ((x >> 50) % 1000) as f64 / 100.0}),
            );
        }
    }
    push(
        "job.completed",
        json!({"status": "succeeded", "duration_ms": total_ms, "total_usd": total_micro_usd as f64 / 1e6}),
    );
    q
}

/// `SESSIONS` jobs at a time, the next entry taken from a pseudo-random one;
/// a finished session starts the next job.
struct Sessions {
    queues: Vec<VecDeque<NewEntry>>,
    next_job: u64,
    n: u64,
}

impl Sessions {
    fn new() -> Self {
        Self {
            queues: vec![VecDeque::new(); SESSIONS],
            next_job: 0,
            n: 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<NewEntry> {
        (0..n).map(|_| self.next_entry()).collect()
    }

    fn next_entry(&mut self) -> NewEntry {
        let s = (mix(self.n ^ 0x5eed) % SESSIONS as u64) as usize;
        self.n += 1;
        if self.queues[s].is_empty() {
            self.queues[s] = job_script(self.next_job);
            self.next_job += 1;
        }
        self.queues[s]
            .pop_front()
            .expect("a job script is never empty")
    }
}

/// Writes `n` entries to a fresh log at `root`, 4,096 per call: an
/// operator's global budget of $10,000 a day (so the burn-rate detector has
/// a budget to judge every cost against; the mix spends far less), then the
/// mix.
fn build_log(root: &Path, n: u64) -> f64 {
    let log = create_log(root, argus::log::dir::DEFAULT_SEGMENT_BYTES);
    let mut mix = Sessions::new();
    let t = Instant::now();
    log.append(vec![NewEntry {
        kind: "policy.set".into(),
        job_id: None,
        step_id: None,
        agent: None,
        actor: "operator:bench".into(),
        parent: None,
        payload: argus::json::to_canonical(&json!({
            "policy_id": "bench-budget", "scope": "global", "policy_type": "budget",
            "config": {"daily_usd": 10_000.0}
        })),
    }])
    .expect("append the budget");
    let mut i = 1;
    while i < n {
        let batch = mix.take((n - i).min(4096) as usize);
        i += batch.len() as u64;
        log.append(batch).expect("append");
    }
    t.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------
// The systems of the throughput part.

#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    Auditor,
    Rebuild1,
    RebuildN,
    RawRead,
    Append64,
}

impl System {
    fn label(self, lanes: usize) -> String {
        match self {
            Self::Auditor => "auditor replay (all detectors)".into(),
            Self::Rebuild1 => "projection rebuild, 1 lane".into(),
            Self::RebuildN => format!("projection rebuild, {lanes} lanes"),
            Self::RawRead => "raw read (decode + hash + JSON)".into(),
            Self::Append64 => "Log::append, 64 producers x 1".into(),
        }
    }
}

/// Entries per second of one run, and what to say about it.
struct Run {
    rate: f64,
    note: String,
    /// The auditor's first kill or lockdown: its trigger seq and reason.
    decision: Option<String>,
}

/// One thread reads every entry, hashes it and parses its payload: the
/// floor under any fold of the log (as `benches/projections.rs` measures it).
fn raw_read(reader: &LogReader) -> Run {
    let t = Instant::now();
    let mut count = 0u64;
    reader
        .for_each(0, u64::MAX, |v| {
            count += 1;
            std::hint::black_box(v.hash());
            std::hint::black_box(serde_json::from_slice::<Value>(v.payload).ok());
            ControlFlow::Continue(())
        })
        .expect("read");
    Run {
        rate: count as f64 / t.elapsed().as_secs_f64(),
        note: String::new(),
        decision: None,
    }
}

/// `replay::replay` over the whole log with the default config; the note
/// counts its outputs by kind (a valid log should give none).
fn auditor(reader: &LogReader, n: u64) -> Run {
    let t = Instant::now();
    let outs = replay::replay(reader, Config::default(), 0).expect("replay");
    let secs = t.elapsed().as_secs_f64();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &outs {
        *kinds.entry(o.output.kind).or_default() += 1;
    }
    let note = if kinds.is_empty() {
        "0 outputs".into()
    } else {
        kinds
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let decision = outs
        .iter()
        .find(|o| matches!(o.output.kind, "kill.hard" | "lockdown.set"))
        .map(|o| {
            format!(
                "{} at seq {}: {}",
                o.output.kind,
                o.output.trigger_seq,
                o.output.payload["reason"].as_str().unwrap_or("")
            )
        });
    Run {
        rate: n as f64 / secs,
        note,
        decision,
    }
}

/// The projection rebuild of the log, as `benches/projections.rs` times it:
/// reset, then one catch-up over every entry on `lanes` threads.
fn rebuild(root: &Path, reader: &LogReader, lanes: usize) -> Run {
    let mut p = Projections::open(root, projections::all()).expect("open projections");
    p.set_lanes(lanes);
    p.reset(None).expect("reset");
    let t = Instant::now();
    let size = p.catch_up(reader, |_, _| {}).expect("catch up");
    Run {
        rate: size as f64 / t.elapsed().as_secs_f64(),
        note: String::new(),
        decision: None,
    }
}

/// 64 threads each calling `Log::append` with one entry, on a fresh log, as
/// `benches/daemon.rs` measures in-process appends: calls that finish in
/// the warm-up are not counted.
fn append64(pool: &[NewEntry], warm: Duration, measure: Duration) -> Run {
    const THREADS: usize = 64;
    let dir = temp_dir("auditor-append-");
    let log = create_log(
        &dir.path().join("log"),
        argus::log::dir::DEFAULT_SEGMENT_BYTES,
    );
    let barrier = Barrier::new(THREADS + 1);
    let (counted, next) = (AtomicU64::new(0), AtomicU64::new(0));
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let (log, barrier, counted, next, errors) = (&log, &barrier, &counted, &next, &errors);
            s.spawn(move || {
                barrier.wait();
                let t0 = Instant::now();
                let (w, end) = (t0 + warm, t0 + warm + measure);
                let mut n = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if let Err(e) = log.append(vec![pool[i % pool.len()].clone()]) {
                        errors.lock().expect("errors lock").push(e.to_string());
                        break;
                    }
                    let b = Instant::now();
                    if b >= w && b <= end {
                        n += 1;
                    }
                    if b >= end {
                        break;
                    }
                }
                counted.fetch_add(n, Ordering::Relaxed);
            });
        }
        barrier.wait();
    });
    let errors = errors.into_inner().expect("errors lock");
    Run {
        rate: counted.load(Ordering::Relaxed) as f64 / measure.as_secs_f64(),
        note: match errors.first() {
            Some(e) => format!("{} ERRORS, first: {e}", errors.len()),
            None => String::new(),
        },
        decision: None,
    }
}

/// The median; of an even count, the mean of the middle two.
fn mid(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median, min and max.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    (
        mid(v),
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

fn show_ratio((m, lo, hi): (f64, f64, f64)) -> String {
    format!("{} ({}-{})", fmt_ratio(m), fmt_ratio(lo), fmt_ratio(hi))
}

fn show_rate((m, lo, hi): (f64, f64, f64)) -> String {
    format!("{} ({}-{})", fmt_rate(m), fmt_rate(lo), fmt_rate(hi))
}

/// 1. Throughput; returns its target rows.
fn part_throughput(rounds: usize, secs: f64) -> Vec<Vec<String>> {
    let n = ((200_000.0 * scale()) as u64).max(1000);
    let dir = temp_dir("auditor-log-");
    let root = dir.path().join("log");
    let build_s = build_log(&root, n);
    let reader = LogReader::open(&root).expect("open reader");
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    reader
        .for_each(0, u64::MAX, |v| {
            *kinds.entry(v.kind.to_string()).or_default() += 1;
            ControlFlow::Continue(())
        })
        .expect("read");
    println!(
        "log: {n} entries, {:.0} MB, written in {} (4,096 per Log::append), {} jobs interleaved {SESSIONS} at a time",
        segments_bytes(&root) as f64 / MB,
        fmt_secs(build_s),
        kinds.get("job.received").copied().unwrap_or(0)
    );
    println!(
        "mix: {}",
        kinds
            .iter()
            .map(|(k, c)| format!("{k} {:.1}%", 100.0 * *c as f64 / n as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let pool = Sessions::new().take(1 << 16);
    let lanes = Projections::open(&root, projections::all())
        .expect("open projections")
        .lanes();
    let warm = Duration::from_secs_f64((secs / 10.0).min(0.5));
    let measure = Duration::from_secs_f64(secs);
    println!(
        "each append run: {:.1} s warm-up (not counted) + {secs:.1} s measured on a fresh log, entries cloned from the same mix; \
         {rounds} rounds, systems taking turns; figures are the median (min-max) over rounds",
        warm.as_secs_f64()
    );
    println!();
    // Warm the page cache.
    raw_read(&reader);
    let systems = [
        System::Auditor,
        System::RebuildN,
        System::Append64,
        System::Rebuild1,
        System::RawRead,
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    let (mut notes, mut decisions) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut probe = fsync_samples(&bench_root(), 50);
        println!(
            "  round {round} fdatasync probe: p50 {}, p90 {}",
            fmt_ns(percentile(&mut probe, 50.0)),
            fmt_ns(percentile(&mut probe, 90.0))
        );
        for k in 0..systems.len() {
            let i = (k + round) % systems.len();
            let r = match systems[i] {
                System::Auditor => auditor(&reader, n),
                System::Rebuild1 => rebuild(&root, &reader, 1),
                System::RebuildN => rebuild(&root, &reader, lanes),
                System::RawRead => raw_read(&reader),
                System::Append64 => append64(&pool, warm, measure),
            };
            let line = format!(
                "  round {round} {:<34} {:>8} entries/s  {}",
                systems[i].label(lanes),
                fmt_rate(r.rate),
                r.note
            );
            println!("{}", line.trim_end());
            if systems[i] == System::Auditor {
                notes.push(r.note.clone());
                decisions.extend(r.decision.clone());
            }
            rates[i].push(r.rate);
        }
    }
    println!();
    println!("== 1. Auditor throughput over {n} entries (median (min-max) of {rounds} rounds)");
    let rows: Vec<Vec<String>> = systems
        .iter()
        .zip(&rates)
        .map(|(s, r)| vec![s.label(lanes), show_rate(spread(r))])
        .collect();
    print_table(&["system", "entries/s"], &rows);
    let ratio = |b: usize| -> (f64, f64, f64) {
        let v: Vec<f64> = rates[0]
            .iter()
            .zip(&rates[b])
            .map(|(a, b)| a / b.max(1e-9))
            .collect();
        spread(&v)
    };
    let (vs_n, vs_1, vs_append, vs_raw) = (ratio(1), ratio(3), ratio(2), ratio(4));
    print_table(
        &["auditor replay / ...", "per-round ratio"],
        &[
            vec![systems[1].label(lanes), show_ratio(vs_n)],
            vec![systems[3].label(lanes), show_ratio(vs_1)],
            vec![systems[2].label(lanes), show_ratio(vs_append)],
            vec![systems[4].label(lanes), show_ratio(vs_raw)],
        ],
    );
    notes.dedup();
    decisions.dedup();
    println!(
        "auditor outputs over this log (the mix is causally valid, so no causal finding is \
         expected; a statistical one on a random burst can be): {}",
        notes.join(" / ")
    );
    for d in &decisions {
        println!("  {d}");
    }
    println!();
    vec![vec![
        "auditor replay >= 1x 64-producer append".into(),
        show_ratio(vs_append),
        target_verdict(vs_append.0, 1.0),
    ]]
}

// ---------------------------------------------------------------------------
// Detection latency.

/// 300-byte pwrites at the end of a growing file in `dir`, each followed by
/// fdatasync (the shape of one commit), in ns.
fn fsync_samples(dir: &Path, n: usize) -> Vec<u64> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(format!("fsync-{}.bin", std::process::id()));
    let f = std::fs::File::create(&path).expect("create fsync file");
    let line = [b'x'; 300];
    let v = (0..n as u64)
        .map(|i| {
            let t = Instant::now();
            f.write_all_at(&line, i * 300).expect("pwrite");
            f.sync_data().expect("fdatasync");
            t.elapsed().as_nanos() as u64
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    v
}

/// An entry as the JSON object `POST /v1/entries` takes.
fn entry_json(e: &NewEntry) -> Value {
    let payload: Value = serde_json::from_slice(&e.payload).expect("payload is JSON");
    json!({"kind": e.kind, "job_id": e.job_id, "agent": e.agent, "payload": payload})
}

/// The causal violation of trial `k`: a tool call failing in a job that
/// never started it.
fn violation(k: usize) -> Vec<u8> {
    format!(
        r#"{{"kind":"tool.call_failed","job_id":"jy-{k:05}","agent":"coder","payload":{{"tool":"bash","error":"boom"}}}}"#
    )
    .into_bytes()
}

/// Waits (stat every 200 µs) until `path` exists (or not), up to `limit`
/// after `t0`; the time from `t0`, or `None` on timeout.
fn wait_path(path: &Path, exists: bool, t0: Instant, limit: Duration) -> Option<u64> {
    loop {
        if path.exists() == exists {
            return Some(t0.elapsed().as_nanos() as u64);
        }
        if t0.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[derive(Default)]
struct Detection {
    /// POST sent -> flag exists.
    detect: Vec<u64>,
    /// POST sent -> ack (the violation committed).
    ack: Vec<u64>,
    /// Release POST sent -> flag gone.
    release: Vec<u64>,
    fsync: Vec<u64>,
    /// Violations refused with 423 (the gate not yet lifted) and retried.
    retried: usize,
    /// Flags that were not the auditor's `kill.hard`.
    foreign: usize,
    errors: Vec<String>,
}

fn run_detection(trials: usize) -> Detection {
    let d = Daemon::start("auditor-latency-");
    let flag = d.log_dir().join("control").join("hard_kill.flag");
    let mut out = Detection {
        fsync: fsync_samples(d.temp_path(), 150),
        ..Detection::default()
    };
    let r = detection_trials(&d, &flag, trials, &mut out);
    if let Err(e) = r {
        out.errors.push(e);
        eprintln!("argusd stderr:\n{}", d.stderr());
    }
    out.fsync.extend(fsync_samples(d.temp_path(), 150));
    out
}

fn detection_trials(
    d: &Daemon,
    flag: &Path,
    trials: usize,
    out: &mut Detection,
) -> Result<(), String> {
    let mut conn = Conn::connect(d.addr)?;
    // A normal start: 100 entries of the valid mix, in one request.
    let normal: Vec<Value> = Sessions::new().take(100).iter().map(entry_json).collect();
    let body = serde_json::to_vec(&normal).map_err(|e| e.to_string())?;
    let r = conn.request("POST", "/v1/entries", Some("application/json"), &body)?;
    if r.status != 200 {
        return Err(format!(
            "POST of 100 normal entries: status {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    std::thread::sleep(Duration::from_millis(200));
    if flag.exists() {
        return Err("hard_kill.flag exists after the normal entries alone".into());
    }
    let limit = Duration::from_secs(10);
    for k in 0..trials {
        let body = violation(k);
        let (t0, ack) = loop {
            let t0 = Instant::now();
            let r = conn.request("POST", "/v1/entries", Some("application/json"), &body)?;
            let ack = t0.elapsed().as_nanos() as u64;
            match r.status {
                200 => break (t0, ack),
                423 if out.retried < 10 * trials => {
                    out.retried += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                s => {
                    return Err(format!(
                        "trial {k}: violation POST: status {s}: {}",
                        String::from_utf8_lossy(&r.body)
                    ))
                }
            }
        };
        let Some(lat) = wait_path(flag, true, t0, limit) else {
            return Err(format!("trial {k}: no hard_kill.flag within {limit:?}"));
        };
        out.ack.push(ack);
        out.detect.push(lat);
        let rec: Value = std::fs::read(flag)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let by_auditor = rec["kind"] == "kill.hard"
            && rec["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("auditor:"));
        if !by_auditor {
            out.foreign += 1;
        }
        if k == 0 {
            println!("  trial 0 flag: {rec}");
        }
        let t1 = Instant::now();
        let r = conn.request(
            "POST",
            "/v1/release",
            Some("application/json"),
            br#"{"reason":"bench"}"#,
        )?;
        if r.status != 200 {
            return Err(format!(
                "trial {k}: release: status {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        let Some(gone) = wait_path(flag, false, t1, limit) else {
            return Err(format!(
                "trial {k}: hard_kill.flag still there {limit:?} after release"
            ));
        };
        out.release.push(gone);
    }
    Ok(())
}

/// 2. Detection latency; returns its target rows.
fn part_latency(trials: usize) -> Vec<Vec<String>> {
    println!(
        "  latency: argusd {}, 100 normal entries, then {trials} trials of (POST a tool.call_failed \
         with no start -> stat hard_kill.flag every 200 us -> POST /v1/release -> flag gone) ...",
        argusd_path().display()
    );
    let mut det = run_detection(trials);
    for e in &det.errors {
        println!("  latency ERROR: {e}");
    }
    println!();
    // `percentile` sorts in place: pair detection with ack samples first.
    let mut after_ack: Vec<u64> = det
        .detect
        .iter()
        .zip(&det.ack)
        .map(|(d, a)| d.saturating_sub(*a))
        .collect();
    let (d50, d99) = (
        percentile(&mut det.detect, 50.0),
        percentile(&mut det.detect, 99.0),
    );
    let dmax = det.detect.iter().copied().max().unwrap_or(0);
    let (s50, s99) = (
        percentile(&mut det.fsync, 50.0),
        percentile(&mut det.fsync, 99.0),
    );
    println!(
        "== 2. Detection latency ({} trials; {} violations refused with 423 and resent; {} flags not the auditor's kill.hard)",
        det.detect.len(),
        det.retried,
        det.foreign
    );
    print_table(
        &["latency", "p50", "p99", "max"],
        &[
            vec![
                "POST violation -> hard_kill.flag exists".into(),
                fmt_ns(d50),
                fmt_ns(d99),
                fmt_ns(dmax),
            ],
            vec![
                "  of which POST -> ack (violation committed)".into(),
                fmt_ns(percentile(&mut det.ack, 50.0)),
                fmt_ns(percentile(&mut det.ack, 99.0)),
                fmt_ns(det.ack.iter().copied().max().unwrap_or(0)),
            ],
            vec![
                "  of which ack -> flag exists".into(),
                fmt_ns(percentile(&mut after_ack, 50.0)),
                fmt_ns(percentile(&mut after_ack, 99.0)),
                fmt_ns(after_ack.iter().copied().max().unwrap_or(0)),
            ],
            vec![
                "POST /v1/release -> flag gone".into(),
                fmt_ns(percentile(&mut det.release, 50.0)),
                fmt_ns(percentile(&mut det.release, 99.0)),
                fmt_ns(det.release.iter().copied().max().unwrap_or(0)),
            ],
            vec![
                format!(
                    "300 B pwrite + fdatasync, same dir ({} samples, before + after)",
                    det.fsync.len()
                ),
                fmt_ns(s50),
                fmt_ns(s99),
                fmt_ns(det.fsync.iter().copied().max().unwrap_or(0)),
            ],
        ],
    );
    let margin = d99 as f64 - s99 as f64;
    println!(
        "p99 detection - p99 fsync = {:.2} ms (goal: under 50 ms plus one fsync)",
        margin / 1e6
    );
    println!();
    vec![vec![
        "detection p99 <= fsync p99 + 50 ms".into(),
        format!(
            "{} vs {} ({:+.2} ms)",
            fmt_ns(d99),
            fmt_ns(s99),
            margin / 1e6
        ),
        if det.detect.len() < trials || !det.errors.is_empty() {
            "MISSED (trials failed)".into()
        } else if margin <= 50e6 {
            "met".into()
        } else {
            format!("MISSED (+{:.1} ms)", margin / 1e6)
        },
    ]]
}

// ---------------------------------------------------------------------------

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn main() {
    print_environment("auditor");
    let secs: f64 = env_num::<f64>("ARGUS_BENCH_SECS")
        .filter(|s| *s > 0.0 && s.is_finite())
        .unwrap_or(3.0);
    let rounds: usize = env_num("ARGUS_BENCH_ROUNDS").unwrap_or(3).max(1);
    let trials: usize = env_num("ARGUS_BENCH_TRIALS").unwrap_or(100).max(1);
    let t_all = Instant::now();
    // `ARGUS_BENCH_FILTER`: run only the parts whose name holds this text.
    let filter = std::env::var("ARGUS_BENCH_FILTER").unwrap_or_default();
    let mut targets = Vec::new();
    if "throughput".contains(filter.as_str()) {
        targets.extend(part_throughput(rounds, secs));
    }
    if "latency".contains(filter.as_str()) {
        targets.extend(part_latency(trials));
    }
    if !targets.is_empty() {
        println!("Targets");
        print_table(&["target", "measured", "verdict"], &targets);
    }
    println!(
        "total {:.0} s; load average at end: {}",
        t_all.elapsed().as_secs_f64(),
        loadavg()
    );
}
