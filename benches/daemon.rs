//! argusd over HTTP against the engine it wraps, measured in the same run:
//! what the HTTP layer costs on top of `Log::append` (64 single-entry
//! producers, and batches of 1,000), how soon a follower sees an entry
//! next to what an fsync costs, and how much memory the daemon holds idle,
//! with 1,000 idle connections and under load.
//!
//! Run: `cargo bench --bench daemon` (about 1.6 minutes).
//! `ARGUS_BENCH_SECS` (default 3) is each throughput run's measured window;
//! `ARGUS_BENCH_ROUNDS` (default 3) how often each comparison is repeated,
//! the systems taking turns; `ARGUS_BENCH_FILTER` (clients, batch, latency,
//! memory, hostile) runs only the parts whose name holds it; `ARGUSD` runs another
//! argusd binary.
#[path = "common/argusd.rs"]
mod argusd;
#[path = "common/mod.rs"]
mod common;

use argusd::{argusd_path, Conn, Daemon};
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Request bodies, built before any measurement.

/// Event `i` as the JSON object `POST /v1/entries` takes (the actor is the
/// caller's, so it is not sent): ~230 bytes, ~330 with the request head.
fn entry_json(out: &mut Vec<u8>, i: u64) {
    let e = &events(i, 1)[0];
    let _ = write!(
        out,
        r#"{{"kind":"{}","job_id":"{}","step_id":"{}","agent":"{}","payload":"#,
        e.kind,
        e.job_id.as_deref().unwrap_or(""),
        e.step_id.as_deref().unwrap_or(""),
        e.agent.as_deref().unwrap_or(""),
    );
    out.extend_from_slice(&e.payload);
    out.push(b'}');
}

const SINGLE_POOL: usize = 4096;
const BATCH: usize = 1000;
const BATCH_POOL: usize = 8;

/// Single-entry bodies, cycled.
fn single_bodies() -> &'static [Vec<u8>] {
    static B: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    B.get_or_init(|| {
        (0..SINGLE_POOL as u64)
            .map(|i| {
                let mut v = Vec::with_capacity(256);
                entry_json(&mut v, i);
                v
            })
            .collect()
    })
}

/// Bodies of 1,000 entries: (JSON array, NDJSON), cycled.
fn batch_bodies() -> &'static [(Vec<u8>, Vec<u8>)] {
    static B: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    B.get_or_init(|| {
        (0..BATCH_POOL as u64)
            .map(|k| {
                let (mut arr, mut nd) = (vec![b'['], Vec::new());
                for i in k * BATCH as u64..(k + 1) * BATCH as u64 {
                    if arr.len() > 1 {
                        arr.push(b',');
                    }
                    entry_json(&mut arr, i);
                    entry_json(&mut nd, i);
                    nd.push(b'\n');
                }
                arr.push(b']');
                (arr, nd)
            })
            .collect()
    })
}

/// POSTs one body and checks that `n` acks came back.
fn post(conn: &mut Conn, ct: &str, body: &[u8], n: usize) -> Result<(), String> {
    let r = conn.request("POST", "/v1/entries", Some(ct), body)?;
    if r.status != 200 {
        return Err(format!(
            "POST /v1/entries: status {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    let acks = r.body.windows(6).filter(|w| w == b"\"seq\":").count();
    if acks != n {
        return Err(format!("{acks} acks for {n} entries"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Throughput runs.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    Http,
    HttpNdjson,
    /// `GET /v1/health`: what a request costs argusd with no append in it.
    HttpHealth,
    InProcess,
    Sqlite,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            Self::Http => "argusd HTTP",
            Self::HttpNdjson => "argusd HTTP NDJSON",
            Self::HttpHealth => "argusd GET /v1/health",
            Self::InProcess => "Log::append in-process",
            Self::Sqlite => "SQLite WAL FULL",
        }
    }
}

#[derive(Clone, Default)]
struct Run {
    entries_per_s: f64,
    p50: u64,
    p99: u64,
    calls: usize,
    errors: Vec<String>,
    /// Entries made durable over the whole run, warm-up included.
    total: u64,
    /// Wall time of the whole run (warm-up included), s.
    wall_s: f64,
    /// CPU time over the whole run: (argusd, this bench process), ns.
    cpu_ns: (u64, u64),
}

struct Window {
    warm: Duration,
    measure: Duration,
}

/// `threads` threads each call the op from `setup(thread)` (which returns
/// the entries its call made durable) until the window ends; calls that
/// finish during the warm-up are not counted. A failing call ends its
/// thread and is reported.
fn drive<S, F>(threads: usize, win: &Window, setup: S) -> Run
where
    S: Fn(usize) -> F + Sync,
    F: FnMut(u64) -> Result<u64, String>,
{
    let barrier = Barrier::new(threads + 1);
    let counted = AtomicU64::new(0);
    let total = AtomicU64::new(0);
    let next = AtomicU64::new(0);
    let lats = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, counted, total, next, lats, errors, setup) =
                (&barrier, &counted, &total, &next, &lats, &errors, &setup);
            s.spawn(move || {
                let mut op = setup(t);
                let mut mine = Vec::new();
                let mut n = 0;
                barrier.wait();
                let t0 = Instant::now();
                let (w, end) = (t0 + win.warm, t0 + win.warm + win.measure);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let a = Instant::now();
                    let done = match op(i) {
                        Ok(d) => d,
                        Err(e) => {
                            errors.lock().expect("errors lock").push(e);
                            break;
                        }
                    };
                    let b = Instant::now();
                    total.fetch_add(done, Ordering::Relaxed);
                    if b >= w {
                        mine.push((b - a).as_nanos() as u64);
                    }
                    if b >= w && b <= end {
                        n += done;
                    }
                    if b >= end {
                        break;
                    }
                }
                counted.fetch_add(n, Ordering::Relaxed);
                lats.lock().expect("latency lock").extend(mine);
            });
        }
        barrier.wait();
    });
    let mut lats = lats.into_inner().expect("latency lock");
    Run {
        entries_per_s: counted.load(Ordering::Relaxed) as f64 / win.measure.as_secs_f64(),
        p50: percentile(&mut lats, 50.0),
        p99: percentile(&mut lats, 99.0),
        calls: lats.len(),
        errors: errors.into_inner().expect("errors lock"),
        total: total.load(Ordering::Relaxed),
        cpu_ns: (0, 0),
        wall_s: 0.0,
    }
}

/// user + system CPU time of a process (all its threads), ns.
fn cpu_ns(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let Ok(s) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let Some(rest) = s.rsplit_once(") ").map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    // SAFETY: sysconf reads a constant.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    f.iter().sum::<u64>() * 1_000_000_000 / tick
}

/// Runs `f`, recording the CPU argusd (`pid`) and this process used.
fn with_cpu(pid: Option<u32>, f: impl FnOnce() -> Run) -> Run {
    let (d0, s0) = (pid.map_or(0, |p| cpu_ns(Some(p))), cpu_ns(None));
    let t = Instant::now();
    let mut r = f();
    r.wall_s = t.elapsed().as_secs_f64();
    let (d1, s1) = (pid.map_or(0, |p| cpu_ns(Some(p))), cpu_ns(None));
    r.cpu_ns = (d1.saturating_sub(d0), s1.saturating_sub(s0));
    r
}

/// `threads` HTTP clients, one keep-alive connection each, against `d`.
fn run_http(d: &Daemon, threads: usize, batch: bool, ndjson: bool, win: &Window) -> Run {
    let singles = single_bodies();
    let batches = batch_bodies();
    drive(threads, win, |_| {
        let mut conn = Conn::connect(d.addr);
        move |i| {
            let conn = conn.as_mut().map_err(|e| e.clone())?;
            if batch {
                let (arr, nd) = &batches[i as usize % BATCH_POOL];
                if ndjson {
                    post(conn, "application/x-ndjson", nd, BATCH)?;
                } else {
                    post(conn, "application/json", arr, BATCH)?;
                }
                Ok(BATCH as u64)
            } else {
                post(
                    conn,
                    "application/json",
                    &singles[i as usize % SINGLE_POOL],
                    1,
                )?;
                Ok(1)
            }
        }
    })
}

/// `threads` clients calling `GET /v1/health` (requests count as entries).
fn run_health(d: &Daemon, threads: usize, win: &Window) -> Run {
    drive(threads, win, |_| {
        let mut conn = Conn::connect(d.addr);
        move |_| {
            let conn = conn.as_mut().map_err(|e| e.clone())?;
            let r = conn.request("GET", "/v1/health", None, b"")?;
            if r.status != 200 {
                return Err(format!("GET /v1/health: status {}", r.status));
            }
            Ok(1)
        }
    })
}

fn run_in_process(threads: usize, batch: bool, win: &Window) -> Run {
    let dir = temp_dir("daemon-inproc-");
    let root = dir.path().join("log");
    let log = create_log(&root, argus::log::dir::DEFAULT_SEGMENT_BYTES);
    let n = if batch { BATCH } else { 1 };
    drive(threads, win, |_| {
        let log = &log;
        move |i| {
            let first = if batch { i * BATCH as u64 } else { i };
            log.append(events(first, n))
                .map_err(|e| format!("Log::append: {e}"))?;
            Ok(n as u64)
        }
    })
}

fn run_sqlite(threads: usize, win: &Window) -> Run {
    let dir = temp_dir("daemon-sqlite-");
    let db = dir.path().join("events.db");
    let open = |path: &Path| -> Result<rusqlite::Connection, String> {
        let c = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
        c.busy_timeout(Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(|e| e.to_string())?;
        Ok(c)
    };
    open(&db)
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE events(seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL,
                   kind TEXT NOT NULL, job_id TEXT, step_id TEXT, agent TEXT,
                   actor TEXT NOT NULL, parent INTEGER, payload TEXT NOT NULL);",
            )
            .map_err(|e| e.to_string())
        })
        .expect("sqlite schema");
    drive(threads, win, |_| {
        let conn = open(&db);
        move |i| {
            const INSERT: &str = "INSERT INTO events(seq, ts_ns, kind, job_id, step_id, agent, actor, parent, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
            let c = conn.as_ref().map_err(|e| e.clone())?;
            let e = &events(i, 1)[0];
            let payload = String::from_utf8_lossy(&e.payload);
            // Autocommit: one transaction, one WAL commit per entry.
            c.prepare_cached(INSERT)
                .and_then(|mut s| {
                    s.execute(rusqlite::params![
                        i as i64,
                        now_ns() as i64,
                        e.kind,
                        e.job_id,
                        e.step_id,
                        e.agent,
                        e.actor,
                        e.parent.map(|p| p as i64),
                        payload
                    ])
                })
                .map_err(|e| format!("sqlite insert: {e}"))?;
            Ok(1)
        }
    })
}

fn run_system(sys: System, threads: usize, batch: bool, win: &Window) -> Run {
    match sys {
        System::Http | System::HttpNdjson | System::HttpHealth => {
            let d = Daemon::start("daemon-http-");
            let r = with_cpu(Some(d.pid()), || {
                if sys == System::HttpHealth {
                    run_health(&d, threads, win)
                } else {
                    run_http(&d, threads, batch, sys == System::HttpNdjson, win)
                }
            });
            if !r.errors.is_empty() {
                eprintln!("argusd stderr:\n{}", d.stderr());
            }
            r
        }
        System::InProcess => with_cpu(None, || run_in_process(threads, batch, win)),
        System::Sqlite => with_cpu(None, || run_sqlite(threads, win)),
    }
}

/// Runs each system once per round, taking turns (order rotated), and
/// returns every run per system.
fn compare(
    name: &str,
    systems: &[System],
    threads: usize,
    batch: bool,
    rounds: usize,
    win: &Window,
) -> Vec<Vec<Run>> {
    let mut runs = vec![Vec::new(); systems.len()];
    for round in 0..rounds {
        // Which disk regime this round ran in (see docs/PERFORMANCE.md).
        let mut probe = fsync_samples(50);
        println!(
            "  {name:<24} round {round} fdatasync probe: p50 {}, p90 {}",
            fmt_ns(percentile(&mut probe, 50.0)),
            fmt_ns(percentile(&mut probe, 90.0))
        );
        for k in 0..systems.len() {
            let i = (k + round) % systems.len();
            let r = run_system(systems[i], threads, batch, win);
            println!(
                "  {name:<24} round {round} {:<24} {:>8} entries/s  p50 {:>8}  p99 {:>8}  ({} calls{})",
                systems[i].label(),
                fmt_rate(r.entries_per_s),
                fmt_ns(r.p50),
                fmt_ns(r.p99),
                r.calls,
                if r.errors.is_empty() {
                    String::new()
                } else {
                    format!(", {} ERRORS, first: {}", r.errors.len(), r.errors[0])
                }
            );
            runs[i].push(r);
        }
    }
    runs
}

/// The median; of an even count, the mean of the middle two (common's
/// `median` takes the upper one, which with two rounds is the better run).
fn mid(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median, min and max of a per-round ratio.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    (
        mid(v),
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

fn ratio_of(runs: &[Vec<Run>], a: usize, b: usize) -> (f64, f64, f64) {
    let v: Vec<f64> = runs[a]
        .iter()
        .zip(&runs[b])
        .map(|(x, y)| x.entries_per_s / y.entries_per_s.max(1e-9))
        .collect();
    spread(&v)
}

fn show_ratio((m, lo, hi): (f64, f64, f64)) -> String {
    format!("{} ({}-{})", fmt_ratio(m), fmt_ratio(lo), fmt_ratio(hi))
}

fn show_pct((m, lo, hi): (f64, f64, f64)) -> String {
    format!("{:.0}% ({:.0}-{:.0}%)", 100.0 * m, 100.0 * lo, 100.0 * hi)
}

fn throughput_table(runs: &[Vec<Run>], systems: &[System]) {
    let rows: Vec<Vec<String>> = systems
        .iter()
        .zip(runs)
        .map(|(s, rs)| {
            let med = |f: &dyn Fn(&Run) -> f64| mid(&rs.iter().map(f).collect::<Vec<_>>());
            let per =
                |cpu: &dyn Fn(&Run) -> u64| med(&|r| cpu(r) as f64 / r.total.max(1) as f64) / 1e3;
            let secs = |r: &Run| r.cpu_ns.0 + r.cpu_ns.1;
            vec![
                s.label().to_string(),
                fmt_rate(med(&|r| r.entries_per_s)),
                fmt_ns(med(&|r| r.p50 as f64) as u64),
                fmt_ns(med(&|r| r.p99 as f64) as u64),
                if matches!(s, System::Http | System::HttpNdjson | System::HttpHealth) {
                    format!("{:.1}", per(&|r| r.cpu_ns.0))
                } else {
                    "-".into()
                },
                format!("{:.1}", per(&|r| r.cpu_ns.1)),
                format!(
                    "{:.2}",
                    med(&|r| secs(r) as f64 / (r.wall_s * 1e9).max(1.0))
                ),
                rs.iter().map(|r| r.errors.len()).sum::<usize>().to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "system",
            "entries/s",
            "call p50",
            "call p99",
            "argusd CPU us/entry",
            "bench CPU us/entry",
            "CPUs busy",
            "errors",
        ],
        &rows,
    );
}

// ---------------------------------------------------------------------------
// Append-to-follower latency.

/// 300-byte pwrites at the end of a growing file, each followed by
/// fdatasync (the shape of one group commit), in ns.
fn fsync_samples(n: usize) -> Vec<u64> {
    use std::os::unix::fs::FileExt;
    let dir = temp_dir("daemon-fsync-");
    let f = std::fs::File::create(dir.path().join("f.bin")).expect("create fsync file");
    let line = [b'x'; 300];
    (0..n as u64)
        .map(|i| {
            let t = Instant::now();
            f.write_all_at(&line, i * 300).expect("pwrite");
            f.sync_data().expect("fdatasync");
            t.elapsed().as_nanos() as u64
        })
        .collect()
}

struct Latency {
    follower: Vec<u64>,
    ack: Vec<u64>,
    /// Follower read minus ack received, per sample (negative: the
    /// follower saw the entry before the producer had its ack), ns.
    after_ack: Vec<i64>,
    /// Mean time between two sends (the producer waits for each ack).
    pace: Duration,
    missing: usize,
    fsync: Vec<u64>,
    /// argus_fsync_seconds from /metrics: (p50 bucket bound, p99 bucket
    /// bound, mean, count).
    metric: Option<(f64, f64, f64, u64)>,
    errors: Vec<String>,
}

/// Marker in each timed entry's call_id: the follower finds sample `i` by it.
const MARK: &[u8] = b"\"call_id\":\"lat-";

fn timed_entry(i: usize) -> Vec<u8> {
    format!(
        r#"{{"kind":"tool.call_completed","job_id":"job-latency","step_id":"step-0001","agent":"coder-2","payload":{{"call_id":"lat-{i:08}","duration_ms":123456,"exit_code":0,"output_bytes":1234567,"tool":"read_file"}}}}"#
    )
    .into_bytes()
}

fn sample_of(line: &[u8]) -> Option<usize> {
    let at = line.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    std::str::from_utf8(line.get(at..at + 8)?)
        .ok()?
        .parse()
        .ok()
}

/// A follow stream whose head has arrived (so it is subscribed), and a
/// handle to close it from another thread.
fn open_follower(addr: SocketAddr) -> Result<(Conn, TcpStream), String> {
    let mut c = Conn::connect(addr)?;
    c.send("GET", "/v1/entries?follow=true", None, b"")?;
    let head = c.read_head()?;
    if head.status != 200 || !head.chunked {
        return Err(format!(
            "GET /v1/entries?follow=true: status {}, chunked {}",
            head.status, head.chunked
        ));
    }
    let closer =
        c.w.try_clone()
            .map_err(|e| format!("clone the follower socket: {e}"))?;
    Ok((c, closer))
}

fn run_latency(samples: usize, every: Duration) -> Latency {
    let before = fsync_samples(150);
    let d = Daemon::start("daemon-latency-");
    let epoch = Instant::now();
    let sent: Vec<AtomicU64> = (0..samples).map(|_| AtomicU64::new(0)).collect();
    let seen: Vec<AtomicU64> = (0..samples).map(|_| AtomicU64::new(0)).collect();
    let got = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let errors = Mutex::new(Vec::new());
    let mut ack = Vec::with_capacity(samples);
    let mut ack_at = Vec::with_capacity(samples);
    let (mut follower, closer) = match open_follower(d.addr) {
        Ok(f) => f,
        Err(e) => {
            return Latency {
                follower: Vec::new(),
                ack: Vec::new(),
                after_ack: Vec::new(),
                pace: Duration::ZERO,
                missing: samples,
                fsync: before,
                metric: None,
                errors: vec![e],
            }
        }
    };
    std::thread::scope(|s| {
        let (sent, seen, got, stop, errors) = (&sent, &seen, &got, &stop, &errors);
        s.spawn(move || {
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let chunk = match follower.read_chunk() {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        if !stop.load(Ordering::Relaxed) {
                            errors.lock().expect("errors lock").push(e);
                        }
                        break;
                    }
                };
                let now = epoch.elapsed().as_nanos() as u64;
                buf.extend_from_slice(&chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    if let Some(i) = sample_of(&line).filter(|i| *i < seen.len()) {
                        seen[i].store(now, Ordering::Relaxed);
                        got.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        let mut producer = Conn::connect(d.addr);
        let start = Instant::now();
        for (i, slot) in sent.iter().enumerate() {
            let due = start + every * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let body = timed_entry(i);
            let t = epoch.elapsed().as_nanos() as u64;
            slot.store(t, Ordering::Relaxed);
            let r = producer
                .as_mut()
                .map_err(|e| e.clone())
                .and_then(|c| post(c, "application/json", &body, 1));
            if let Err(e) = r {
                errors.lock().expect("errors lock").push(e);
                break;
            }
            let now = epoch.elapsed().as_nanos() as u64;
            ack.push(now - t);
            ack_at.push(now);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while (got.load(Ordering::Relaxed) as usize) < ack.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        let _ = closer.shutdown(Shutdown::Both);
    });
    let metric = d
        .get("/metrics")
        .ok()
        .and_then(|b| fsync_metric(&String::from_utf8_lossy(&b)));
    drop(d);
    let after = fsync_samples(150);
    let mut follower = Vec::new();
    let mut after_ack = Vec::new();
    let mut missing = 0;
    for ((s, r), a) in sent.iter().zip(&seen).zip(&ack_at) {
        let (s, r) = (s.load(Ordering::Relaxed), r.load(Ordering::Relaxed));
        if r == 0 {
            missing += 1;
        } else {
            follower.push(r.saturating_sub(s));
            after_ack.push(r as i64 - *a as i64);
        }
    }
    let n = ack_at.len();
    let pace = if n > 1 {
        let first = sent[0].load(Ordering::Relaxed);
        let last = sent[n - 1].load(Ordering::Relaxed);
        Duration::from_nanos((last - first) / (n as u64 - 1))
    } else {
        Duration::ZERO
    };
    Latency {
        follower,
        ack,
        after_ack,
        pace,
        missing,
        fsync: before.into_iter().chain(after).collect(),
        metric,
        errors: errors.into_inner().expect("errors lock"),
    }
}

/// The argus_fsync_seconds histogram: upper bounds of the buckets holding
/// p50 and p99, the mean, and the count.
fn fsync_metric(text: &str) -> Option<(f64, f64, f64, u64)> {
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    let (mut sum, mut count) = (0.0, 0u64);
    for l in text.lines() {
        let Some((name, value)) = l.rsplit_once(' ') else {
            continue;
        };
        if let Some(rest) = name.strip_prefix("argus_fsync_seconds_bucket{le=\"") {
            let le = rest.trim_end_matches("\"}");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            buckets.push((le, value.parse().ok()?));
        } else if name == "argus_fsync_seconds_sum" {
            sum = value.parse().ok()?;
        } else if name == "argus_fsync_seconds_count" {
            count = value.parse().ok()?;
        }
    }
    if count == 0 {
        return None;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bound = |p: f64| {
        let need = (p * count as f64).ceil() as u64;
        buckets
            .iter()
            .find(|(_, c)| *c >= need)
            .map_or(f64::INFINITY, |(le, _)| *le)
    };
    Some((bound(0.50), bound(0.99), sum / count as f64, count))
}

// ---------------------------------------------------------------------------
// Memory.

/// Raises RLIMIT_NOFILE's soft limit toward `want` (children inherit it).
/// Returns the soft limit now in force.
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want.min(lim.rlim_max),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

struct Memory {
    idle_kib: Option<u64>,
    idle_conns: Option<(usize, u64, usize)>,
    busy: Option<(u64, f64)>,
    hwm_kib: Option<u64>,
    notes: Vec<String>,
}

fn run_memory(conns: usize, busy_for: Duration) -> Memory {
    let nofile = raise_nofile(conns as u64 + 512);
    let d = Daemon::start("daemon-rss-");
    let mut notes = Vec::new();
    std::thread::sleep(Duration::from_millis(500));
    let idle_kib = d.status_kib("VmRSS");

    let idle_conns = if nofile < conns as u64 + 256 {
        notes.push(format!(
            "{conns} idle connections skipped: RLIMIT_NOFILE is {nofile} and cannot be raised"
        ));
        None
    } else {
        // Each connection makes one request, so it is a served keep-alive
        // connection and not just an accepted socket, then stays idle.
        let mut open = Vec::with_capacity(conns);
        let mut first_err = None;
        for _ in 0..conns {
            let r = Conn::connect(d.addr).and_then(|mut c| {
                let r = c.request("GET", "/v1/health", None, b"")?;
                (r.status == 200)
                    .then_some(c)
                    .ok_or_else(|| format!("health: status {}", r.status))
            });
            match r {
                Ok(c) => open.push(c),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            notes.push(format!(
                "{} of {conns} connections failed; first: {e}",
                conns - open.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
        let rss = d.status_kib("VmRSS");
        // Still served afterwards? (An idle timeout would have closed them.)
        let alive = open
            .iter_mut()
            .map(|c| {
                c.request("GET", "/v1/health", None, b"")
                    .is_ok_and(|r| r.status == 200)
            })
            .filter(|ok| *ok)
            .count();
        let n = open.len();
        drop(open);
        rss.map(|r| (n, r, alive))
    };

    // 64 busy clients, RSS sampled every 50 ms; the peak is reported.
    std::thread::sleep(Duration::from_millis(300));
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    let win = Window {
        warm: Duration::ZERO,
        measure: busy_for,
    };
    let run = std::thread::scope(|s| {
        let (done, peak, d) = (&done, &peak, &d);
        s.spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = d.status_kib("VmRSS") {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let r = run_http(d, 64, false, false, &win);
        done.store(true, Ordering::Relaxed);
        r
    });
    if !run.errors.is_empty() {
        notes.push(format!(
            "busy clients: {} errors; first: {}",
            run.errors.len(),
            run.errors[0]
        ));
    }
    let busy = Some(peak.load(Ordering::Relaxed))
        .filter(|p| *p > 0)
        .map(|p| (p, run.entries_per_s));
    let hwm_kib = d.status_kib("VmHWM");
    Memory {
        idle_kib,
        idle_conns,
        busy,
        hwm_kib,
        notes,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// ---------------------------------------------------------------------------

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn main() {
    print_environment("daemon");
    let secs: f64 = env_num::<f64>("ARGUS_BENCH_SECS")
        .filter(|s| *s > 0.0 && s.is_finite())
        .unwrap_or(3.0);
    let rounds: usize = env_num("ARGUS_BENCH_ROUNDS").unwrap_or(3).max(1);
    let win = Window {
        warm: Duration::from_secs_f64((secs / 10.0).min(0.5)),
        measure: Duration::from_secs_f64(secs),
    };
    println!("argusd: {}", argusd_path().display());
    let singles = single_bodies();
    let mean = singles.iter().map(Vec::len).sum::<usize>() as f64 / singles.len() as f64;
    let batches = batch_bodies();
    println!(
        "entry: tool.call_completed as POST /v1/entries JSON, mean body {mean:.0} B (request ~{:.0} B with its head); \
         batch of {BATCH}: {:.0} KB JSON array, {:.0} KB NDJSON",
        mean + 85.0,
        batches[0].0.len() as f64 / 1e3,
        batches[0].1.len() as f64 / 1e3
    );
    println!(
        "each throughput run: {:.1} s warm-up (not counted) + {secs:.1} s measured, fresh log/db and a fresh argusd per run; \
         {rounds} rounds, systems taking turns; ratios are the median (min-max) of per-round ratios",
        win.warm.as_secs_f64()
    );
    let _ = events(0, 1);
    println!();
    let t_all = Instant::now();
    // `ARGUS_BENCH_FILTER`: run only the parts whose name holds this text
    // (clients, batch, latency, memory), e.g. to profile one under perf.
    let filter = std::env::var("ARGUS_BENCH_FILTER").unwrap_or_default();
    let mut targets = Vec::new();
    if "clients".contains(filter.as_str()) {
        targets.extend(part_clients(rounds, &win));
    }
    if "batch".contains(filter.as_str()) {
        targets.extend(part_batch(rounds, &win));
    }
    if "latency".contains(filter.as_str()) {
        targets.extend(part_latency(secs));
    }
    if "memory".contains(filter.as_str()) {
        part_memory(secs);
    }
    if "hostile".contains(filter.as_str()) {
        targets.extend(part_hostile(rounds, &win));
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

/// 1. 64 concurrent single-entry producers; returns its target rows.
fn part_clients(rounds: usize, win: &Window) -> Vec<Vec<String>> {
    let sys = [
        System::Http,
        System::InProcess,
        System::Sqlite,
        System::HttpHealth,
    ];
    let runs = compare("64 clients x 1 entry", &sys, 64, false, rounds, win);
    println!();
    println!("== 1. 64 concurrent clients, one entry per request, each awaiting its ack (medians of {rounds} rounds);\n\
              GET /v1/health: the same clients making requests with no append (requests/s)");
    throughput_table(&runs, &sys);
    let vs_inproc = ratio_of(&runs, 0, 1);
    let vs_sqlite = ratio_of(&runs, 0, 2);
    vec![
        vec![
            "64 clients: HTTP >= 50% of in-process".into(),
            show_pct(vs_inproc),
            target_verdict(vs_inproc.0, 0.5),
        ],
        vec![
            "64 clients: HTTP >= 10x SQLite".into(),
            show_ratio(vs_sqlite),
            target_verdict(vs_sqlite.0, 10.0),
        ],
    ]
}

/// 2. One client, 1,000 entries per request / call.
fn part_batch(rounds: usize, win: &Window) -> Vec<Vec<String>> {
    let sys = [System::Http, System::HttpNdjson, System::InProcess];
    let runs = compare("1 client x 1000 entries", &sys, 1, true, rounds, win);
    println!();
    println!("== 2. One client, {BATCH} entries per request / per Log::append call (medians of {rounds} rounds)");
    throughput_table(&runs, &sys);
    let json = ratio_of(&runs, 0, 2);
    let nd = ratio_of(&runs, 1, 2);
    vec![
        vec![
            "batch 1000, JSON array: HTTP >= 50% of in-process".into(),
            show_pct(json),
            target_verdict(json.0, 0.5),
        ],
        vec![
            "batch 1000, NDJSON: HTTP >= 50% of in-process".into(),
            show_pct(nd),
            target_verdict(nd.0, 0.5),
        ],
    ]
}

/// Percentile (nearest rank) of sorted signed values, formatted.
fn signed_percentile(v: &[i64], p: f64) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    let x = v[rank.clamp(1, v.len()) - 1];
    format!(
        "{}{}",
        if x < 0 { "-" } else { "" },
        fmt_ns(x.unsigned_abs())
    )
}

/// 3. Append-to-follower latency next to the fsync it includes.
fn part_latency(secs: f64) -> Vec<Vec<String>> {
    let samples = ((2000.0 * secs / 3.0) as usize).clamp(100, 2000);
    let every = Duration::from_millis(2);
    println!("  latency: {samples} entries, one every {every:?}, one follower ...");
    let mut lat = run_latency(samples, every);
    for e in &lat.errors {
        println!("  latency ERROR: {e}");
    }
    println!();
    let f50 = percentile(&mut lat.follower, 50.0);
    let f99 = percentile(&mut lat.follower, 99.0);
    let a50 = percentile(&mut lat.ack, 50.0);
    let a99 = percentile(&mut lat.ack, 99.0);
    let s50 = percentile(&mut lat.fsync, 50.0);
    let s99 = percentile(&mut lat.fsync, 99.0);
    lat.after_ack.sort_unstable();
    println!(
        "== 3. Append-to-follower latency ({} samples, one sent every {} on average, {} never seen by the follower)",
        lat.follower.len(),
        fmt_ns(lat.pace.as_nanos() as u64),
        lat.missing
    );
    let mut rows = vec![
        vec![
            "producer send -> follower reads the line".into(),
            fmt_ns(f50),
            fmt_ns(f99),
        ],
        vec!["producer send -> ack".into(), fmt_ns(a50), fmt_ns(a99)],
        vec![
            "ack received -> follower reads the line".into(),
            signed_percentile(&lat.after_ack, 50.0),
            signed_percentile(&lat.after_ack, 99.0),
        ],
        vec![
            format!(
                "300 B pwrite + fdatasync ({} samples, before + after)",
                lat.fsync.len()
            ),
            fmt_ns(s50),
            fmt_ns(s99),
        ],
    ];
    if let Some((m50, m99, mean, n)) = lat.metric {
        rows.push(vec![
            format!(
                "argusd argus_fsync_seconds ({n} commits, bucket bounds; mean {})",
                fmt_secs(mean)
            ),
            format!("<= {}", fmt_secs(m50)),
            format!("<= {}", fmt_secs(m99)),
        ]);
    }
    print_table(&["latency", "p50", "p99"], &rows);
    let margin = f99 as f64 - s99 as f64;
    vec![vec![
        "follower p99 <= fsync p99 + 5 ms".into(),
        format!(
            "{} vs {} ({}{})",
            fmt_ns(f99),
            fmt_ns(s99),
            if margin < 0.0 { "-" } else { "+" },
            fmt_ns(margin.abs() as u64)
        ),
        if lat.follower.is_empty() || lat.missing > 0 {
            "MISSED (samples lost)".into()
        } else if margin <= 5e6 {
            "met".into()
        } else {
            format!("MISSED (+{})", fmt_ns(margin as u64))
        },
    ]]
}

/// 4. Resident memory; no target, figures only.
fn part_memory(secs: f64) {
    println!("  memory: idle, 1000 idle connections, 64 busy clients ...");
    let mem = run_memory(1000, Duration::from_secs_f64(secs.min(3.0)));
    println!();
    println!("== 4. argusd resident memory (VmRSS)");
    let mut rows = Vec::new();
    if let Some(k) = mem.idle_kib {
        rows.push(vec!["idle, fresh log".into(), mib(k), String::new()]);
    }
    if let (Some((n, k, alive)), Some(idle)) = (mem.idle_conns, mem.idle_kib) {
        rows.push(vec![
            format!("{n} idle keep-alive connections ({alive} still served after)"),
            mib(k),
            format!(
                "{:.1} KiB per connection",
                k.saturating_sub(idle) as f64 / n.max(1) as f64
            ),
        ]);
    }
    if let Some((k, rate)) = mem.busy {
        rows.push(vec![
            format!(
                "64 busy clients (peak of 50 ms samples; {} entries/s)",
                fmt_rate(rate)
            ),
            mib(k),
            String::new(),
        ]);
    }
    if let Some(k) = mem.hwm_kib {
        rows.push(vec![
            "peak over the process (VmHWM)".into(),
            mib(k),
            String::new(),
        ]);
    }
    print_table(&["state", "VmRSS", "note"], &rows);
    for n in &mem.notes {
        println!("note: {n}");
    }
}

/// Sends `head` and `body` on a fresh connection and reads the status
/// line; what a hostile client does, one attempt.
fn attack_once(addr: SocketAddr, head: &[u8], body: &[u8]) {
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(head);
        let _ = s.write_all(body);
        let mut buf = [0u8; 32];
        let _ = s.read(&mut buf);
    }
}

/// Every hostile client of issue 14 at once, until `stop`: oversized heads
/// and bodies, invalid UTF-8, deep JSON, a flood of tiny requests, and 64
/// slowloris connections; returns how many attacks completed.
fn attack(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    let post = |len: usize| {
        format!("POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n").into_bytes()
    };
    let mut big_head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    big_head.extend(std::iter::repeat_n(b'a', 1 << 20));
    big_head.extend_from_slice(b"\r\n\r\n");
    let utf8 = b"{\"kind\":\"x.t\",\"payload\":{\"s\":\"\xff\xfe\"}}".to_vec();
    let deep = format!(
        "{{\"kind\":\"x.t\",\"payload\":{}1{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    )
    .into_bytes();
    let kinds: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (big_head, Vec::new()),
        (post(64 << 20), vec![b' '; 2 << 20]),
        (post(utf8.len()), utf8),
        (post(deep.len()), deep),
        (
            b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            Vec::new(),
        ),
    ];
    let mut threads: Vec<std::thread::JoinHandle<u64>> = kinds
        .into_iter()
        .map(|(head, body)| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    attack_once(addr, &head, &body);
                    n += 1;
                }
                n
            })
        })
        .collect();
    threads.push(std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = (0..64)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            for s in &mut held {
                let _ = s.write_all(b"X");
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        n
    }));
    threads
}

/// Honest producers for part 5: `threads` clients, one entry per request,
/// each request sent with the agent token of the entry's agent (so the
/// daemon knows them from the anonymous attackers on the same address).
fn run_honest(
    d: &Daemon,
    threads: usize,
    tokens: &std::collections::HashMap<String, String>,
    win: &Window,
) -> Run {
    let singles = single_bodies();
    let by_body: Vec<Arc<str>> = (0..SINGLE_POOL as u64)
        .map(|k| {
            let agent = events(k, 1)[0].agent.clone().unwrap_or_default();
            Arc::from(tokens.get(&agent).map(String::as_str).unwrap_or(""))
        })
        .collect();
    let by_body = &by_body;
    drive(threads, win, |_| {
        let mut conn = Conn::connect(d.addr);
        move |i| {
            let conn = conn.as_mut().map_err(|e| e.clone())?;
            let k = i as usize % SINGLE_POOL;
            conn.token = Some(by_body[k].clone());
            post(conn, "application/json", &singles[k], 1)?;
            Ok(1)
        }
    })
}

/// The agents the single-entry bodies name, one token each in part 5.
fn body_agents() -> Vec<String> {
    let mut a: Vec<String> = (0..SINGLE_POOL as u64)
        .filter_map(|k| events(k, 1)[0].agent.clone())
        .collect();
    a.sort();
    a.dedup();
    a
}

/// Part 5: honest producers (8 clients, one entry per request, agent
/// tokens) alone and then under every hostile client at once, on one
/// daemon in the same round; twice a round: with the fair-share limits
/// switched off (rates unlimited, no connection held, one peer may hold
/// every connection) and with their defaults.
fn part_hostile(rounds: usize, win: &Window) -> Vec<Vec<String>> {
    let off = serde_json::json!({ "limits": {
        "caller_rate_per_s": 0,
        "anonymous_rate_per_s": 0,
        "anonymous_total_rate_per_s": 0,
        "bad_connection_rate_per_s": 0,
        "connections_per_peer_max": 4096,
    }});
    let agents = body_agents();
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let mut ratios_off = Vec::new();
    for round in 0..rounds {
        for (label, config) in [("off", Some(off.clone())), ("default", None)] {
            let (d, tokens) = Daemon::start_with("daemon-hostile-", config, &agents);
            let calm = run_honest(&d, 8, &tokens, win);
            let before = d.status_kib("VmHWM").unwrap_or(0);
            let stop = Arc::new(AtomicBool::new(false));
            let attackers = attack(d.addr, stop.clone());
            let hit = run_honest(&d, 8, &tokens, win);
            stop.store(true, Ordering::Relaxed);
            let done: u64 = attackers.into_iter().map(|t| t.join().unwrap_or(0)).sum();
            let grew = d.status_kib("VmHWM").unwrap_or(0).saturating_sub(before);
            // Asked as a producer: an anonymous ask may be over its rate.
            let up = Conn::connect(d.addr)
                .and_then(|mut c| {
                    c.token = tokens.values().next().map(|t| Arc::from(t.as_str()));
                    c.request("GET", "/v1/health", None, b"")
                })
                .is_ok_and(|r| r.status == 200);
            let r = hit.entries_per_s / calm.entries_per_s.max(1.0);
            if label == "off" {
                ratios_off.push(r);
            } else {
                ratios.push(r);
            }
            let errors = calm.errors.len() + hit.errors.len();
            if let Some(e) = calm.errors.first().or(hit.errors.first()) {
                println!(
                    "  round {} ({label}): honest producer error: {e}",
                    round + 1
                );
            }
            rows.push(vec![
                format!("{}", round + 1),
                label.to_string(),
                format!("{:.0}", calm.entries_per_s),
                format!("{:.0}", hit.entries_per_s),
                format!("{r:.2}"),
                format!("{done}"),
                format!("{errors}"),
                mib(grew),
                if up { "up".into() } else { "DOWN".into() },
            ]);
        }
    }
    println!();
    println!("== 5. 8 honest producers (1 entry per request, agent tokens) alone, then under every hostile client at once; fair-share limits off, then at their defaults");
    print_table(
        &[
            "round",
            "fair shares",
            "calm entries/s",
            "under attack",
            "ratio",
            "attacks done",
            "honest errors",
            "peak RSS growth",
            "argusd",
        ],
        &rows,
    );
    println!(
        "fair shares off: honest throughput under attack {:.0}% of calm (median)",
        mid(&ratios_off) * 100.0
    );
    let m = mid(&ratios);
    vec![vec![
        "honest throughput under attack >= 50% of calm".into(),
        format!("{:.0}%", m * 100.0),
        target_verdict(m, 0.5),
    ]]
}
