//! Durable append throughput and per-ack latency: Argus against SQLite (WAL,
//! synchronous=FULL) and a JSONL file with fdatasync, same entries, same
//! concurrency and batching, measured in the same process.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/bench-target cargo bench --offline --bench append`
//! `ARGUS_BENCH_SCALE=3` runs every scenario three times as long.
//! `ARGUS_BENCH_FILTER=1000` runs only the scenarios whose name holds it;
//! `ARGUS_BENCH_ONLY=argus` runs one system alone, for `perf record`.
#[path = "common/mod.rs"]
mod common;

use argus::NewEntry;
use common::*;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    producers: usize,
    batch: usize,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "1 producer, 1 entry/call",
        producers: 1,
        batch: 1,
    },
    Scenario {
        name: "8 producers, 1 entry/call",
        producers: 8,
        batch: 1,
    },
    Scenario {
        name: "64 producers, 1 entry/call",
        producers: 64,
        batch: 1,
    },
    Scenario {
        name: "1 producer, 1000 entries/call",
        producers: 1,
        batch: 1000,
    },
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum System {
    Argus,
    Sqlite,
    Jsonl,
}

struct Run {
    /// Entries acknowledged inside the measurement window, per second.
    entries_per_s: f64,
    /// Per-call latency (one ack), nanoseconds, calls completed after warm-up.
    p50: u64,
    p99: u64,
    /// Bytes the system left on disk / whole run time (warm-up included).
    bytes_per_s: f64,
    calls: usize,
    /// Entries per group commit (Argus only): mean, p50, max over the run.
    groups: Option<(f64, u64, u64)>,
    /// CPU time of the whole process (every thread, user + system) per
    /// entry acknowledged in the run: unlike the rates it does not move with
    /// the disk's fdatasync latency, so a change in CPU cost shows through
    /// a noisy disk.
    cpu_ns_per_entry: f64,
}

impl Run {
    /// A system left out by `ARGUS_BENCH_ONLY`.
    fn skipped() -> Self {
        Self {
            entries_per_s: f64::NAN,
            p50: 0,
            p99: 0,
            bytes_per_s: f64::NAN,
            calls: 0,
            groups: None,
            cpu_ns_per_entry: f64::NAN,
        }
    }
}

#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}

unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

/// User + system CPU time of this process so far (threads that ended
/// included), nanoseconds.
fn process_cpu_ns() -> u64 {
    let mut u = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        rest: [0; 14],
    };
    // SAFETY: RUSAGE_SELF (0) fills the caller's struct, laid out as
    // Linux x86_64/aarch64 `struct rusage` (two timevals, 14 longs).
    if unsafe { getrusage(0, &mut u) } != 0 {
        return 0;
    }
    let ns = |t: [i64; 2]| (t[0] as u64) * 1_000_000_000 + (t[1] as u64) * 1_000;
    ns(u.utime) + ns(u.stime)
}

/// Runs `producers` threads that each call `op` (from `setup(thread)`) with
/// `batch` fresh events until the deadline. Calls that complete in the first
/// `warm` are not counted. Returns the run plus total entries and seconds.
fn drive<S, F>(sc: Scenario, warm: Duration, measure: Duration, setup: S) -> (Run, u64, f64)
where
    S: Fn(usize) -> F + Sync,
    F: FnMut(u64, Vec<NewEntry>),
{
    let next = AtomicU64::new(0);
    let barrier = Barrier::new(sc.producers + 1);
    let lats: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let counted = AtomicU64::new(0);
    let mut start = Instant::now();
    let cpu0 = process_cpu_ns();
    std::thread::scope(|s| {
        for t in 0..sc.producers {
            let (next, barrier, lats, counted, setup) = (&next, &barrier, &lats, &counted, &setup);
            s.spawn(move || {
                let mut op = setup(t);
                let mut mine = Vec::new();
                let mut n = 0u64;
                barrier.wait();
                let t0 = Instant::now();
                let (w, end) = (t0 + warm, t0 + warm + measure);
                loop {
                    let first = next.fetch_add(sc.batch as u64, Ordering::Relaxed);
                    let batch = events(first, sc.batch);
                    let a = Instant::now();
                    op(first, batch);
                    let b = Instant::now();
                    // Latency: every call that completes after the warm-up,
                    // including each thread's last one, so a producer starved
                    // for the whole window still shows up in p99.
                    if b >= w {
                        mine.push((b - a).as_nanos() as u64);
                    }
                    if b >= w && b <= end {
                        n += sc.batch as u64;
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
        start = Instant::now();
    });
    let total_secs = start.elapsed().as_secs_f64();
    let total_entries = next.load(Ordering::Relaxed);
    let cpu_ns = process_cpu_ns().saturating_sub(cpu0);
    let mut lats = lats.into_inner().expect("latency lock");
    let run = Run {
        entries_per_s: counted.load(Ordering::Relaxed) as f64 / measure.as_secs_f64(),
        p50: percentile(&mut lats, 50.0),
        p99: percentile(&mut lats, 99.0),
        bytes_per_s: 0.0,
        calls: lats.len(),
        groups: None,
        cpu_ns_per_entry: cpu_ns as f64 / total_entries.max(1) as f64,
    };
    (run, total_entries, total_secs)
}

fn run_argus(sc: Scenario, warm: Duration, measure: Duration) -> Run {
    let dir = temp_dir("append-argus-");
    let root = dir.path().join("log");
    let log = create_log(&root, argus::log::dir::DEFAULT_SEGMENT_BYTES);
    let before = dir_bytes(&root);
    let (mut run, _, secs) = drive(sc, warm, measure, |_| {
        let log = &log;
        move |_, batch| {
            log.append(batch).expect("argus append");
        }
    });
    drop(log);
    run.bytes_per_s = (dir_bytes(&root) - before) as f64 / secs;
    run.groups = group_sizes(&root);
    run
}

/// Entries per group commit, read back from the log: the entry frames
/// between one seal and the next (mean, p50, max), seals of no entries
/// (the first segment's, a roll's) left out.
fn group_sizes(root: &Path) -> Option<(f64, u64, u64)> {
    let mut sizes = Vec::new();
    for p in segment_files(root) {
        let buf = std::fs::read(&p).expect("read segment");
        let mut scan = log_format::SegmentScan::new(&buf).expect("segment header");
        let mut n = 0u64;
        for fr in &mut scan.frames {
            match fr.frame_type {
                log_format::FrameType::Entry => n += 1,
                log_format::FrameType::Seal if n > 0 => {
                    sizes.push(n);
                    n = 0;
                }
                _ => {}
            }
        }
    }
    if sizes.is_empty() {
        return None;
    }
    let mean = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
    let max = sizes.iter().copied().max().unwrap_or(0);
    Some((mean, percentile(&mut sizes, 50.0), max))
}

/// fdatasync latency (p50 of `n`) of a 300-byte write into space written
/// once with zeros and synced before timing starts: the floor for one
/// acknowledged entry when no file metadata changes with the write.
fn fsync_latency_preallocated(n: usize) -> Duration {
    use std::os::unix::fs::FileExt;
    let dir = temp_dir("fsync-prealloc-");
    let f = File::create(dir.path().join("f.bin")).expect("create fsync file");
    f.write_all_at(&vec![0u8; n * 300 + 4096], 0)
        .expect("preallocate");
    f.sync_all().expect("fsync preallocated");
    let line = [b'x'; 300];
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f.write_all_at(&line, (i * 300) as u64).expect("write");
        f.sync_data().expect("fdatasync");
        lat.push(t.elapsed().as_nanos() as u64);
    }
    Duration::from_nanos(percentile(&mut lat, 50.0))
}

fn run_sqlite(sc: Scenario, warm: Duration, measure: Duration) -> Run {
    let dir = temp_dir("append-sqlite-");
    let db = dir.path().join("events.db");
    let open = |path: &Path| {
        let c = rusqlite::Connection::open(path).expect("sqlite open");
        c.busy_timeout(Duration::from_secs(60))
            .expect("sqlite busy_timeout");
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .expect("sqlite pragmas");
        c
    };
    open(&db)
        .execute_batch(
            "CREATE TABLE events(seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL,
               kind TEXT NOT NULL, job_id TEXT, step_id TEXT, agent TEXT,
               actor TEXT NOT NULL, parent INTEGER, payload TEXT NOT NULL);",
        )
        .expect("sqlite schema");
    let (mut run, _, secs) = drive(sc, warm, measure, |_| {
        let mut c = open(&db);
        move |first, batch: Vec<NewEntry>| {
            const INSERT: &str = "INSERT INTO events(seq, ts_ns, kind, job_id, step_id, agent, actor, parent, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
            let insert = |c: &rusqlite::Connection, seq: u64, e: &NewEntry| {
                let payload = std::str::from_utf8(&e.payload).expect("utf8 payload");
                c.prepare_cached(INSERT)
                    .expect("sqlite prepare")
                    .execute(rusqlite::params![
                        seq as i64,
                        now_ns() as i64,
                        e.kind,
                        e.job_id,
                        e.step_id,
                        e.agent,
                        e.actor,
                        e.parent.map(|p| p as i64),
                        payload
                    ])
                    .expect("sqlite insert");
            };
            if batch.len() == 1 {
                // Autocommit: one transaction, one WAL commit per event.
                insert(&c, first, &batch[0]);
            } else {
                let tx = c
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .expect("sqlite begin");
                for (i, e) in batch.iter().enumerate() {
                    insert(&tx, first + i as u64, e);
                }
                tx.commit().expect("sqlite commit");
            }
        }
    });
    let bytes: u64 = ["events.db", "events.db-wal"]
        .iter()
        .map(|f| {
            std::fs::metadata(dir.path().join(f))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    run.bytes_per_s = bytes as f64 / secs;
    run
}

fn run_jsonl(sc: Scenario, warm: Duration, measure: Duration) -> Run {
    let dir = temp_dir("append-jsonl-");
    let path = dir.path().join("events.jsonl");
    let file: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open jsonl");
    let lock = Mutex::new(());
    let (mut run, _, secs) = drive(sc, warm, measure, |_| {
        let (file, lock) = (&file, &lock);
        let mut buf = Vec::with_capacity(sc.batch * 320);
        move |first, batch: Vec<NewEntry>| {
            buf.clear();
            let ts = now_ns();
            for (i, e) in batch.iter().enumerate() {
                json_line(&mut buf, first + i as u64, ts, e);
            }
            {
                let _g = lock.lock().expect("jsonl lock");
                let mut f: &File = file;
                f.write_all(&buf).expect("jsonl write");
            }
            // Outside the lock, so concurrent producers' fsyncs can coalesce.
            file.sync_data().expect("jsonl fdatasync");
        }
    });
    run.bytes_per_s = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / secs;
    run
}

/// Median and range of a per-round ratio (systems measured back to back, so
/// each round's ratio compares runs that saw similar disk conditions).
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(v: &[f64]) -> Self {
        Self {
            median: median(v),
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
    fn show(&self) -> String {
        format!(
            "{} ({}-{})",
            fmt_ratio(self.median),
            fmt_ratio(self.min),
            fmt_ratio(self.max)
        )
    }
    fn show_pct(&self) -> String {
        format!(
            "{:.0}% ({:.0}-{:.0}%)",
            100.0 * self.median,
            100.0 * self.min,
            100.0 * self.max
        )
    }
}

struct Ratios {
    vs_sqlite: Spread,
    vs_jsonl: Spread,
    /// Argus batched MB/s / sequential write MB/s measured in the same round.
    of_seq: Option<Spread>,
}

/// Median of each field over rounds (throughput, p50, p99, bytes/s).
fn median_run(rs: &[Run]) -> Run {
    let med = |f: &dyn Fn(&Run) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
    Run {
        entries_per_s: med(&|r| r.entries_per_s),
        p50: med(&|r| r.p50 as f64) as u64,
        p99: med(&|r| r.p99 as f64) as u64,
        bytes_per_s: med(&|r| r.bytes_per_s),
        calls: rs.iter().map(|r| r.calls).sum(),
        groups: rs
            .iter()
            .filter_map(|r| r.groups)
            .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1), a.2.max(b.2))),
        cpu_ns_per_entry: med(&|r| r.cpu_ns_per_entry),
    }
}

fn main() {
    print_environment("append");
    print_entry_sizes();
    let scale = scale();
    let rounds: usize = std::env::var("ARGUS_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let filter = std::env::var("ARGUS_BENCH_FILTER").unwrap_or_default();
    // For profiling one system alone (`perf record`): the others are not
    // run and every ratio reads NaN.
    let only = std::env::var("ARGUS_BENCH_ONLY").unwrap_or_default();
    let warm = Duration::from_secs_f64(0.25 * scale.min(1.0));
    let measure = Duration::from_secs_f64(0.8 * scale);
    println!(
        "each run: {:.1} s warm-up (not counted) + {:.1} s measured, fresh log/db/file per run;\n\
         {rounds} rounds per scenario, systems interleaved (order rotated each round), medians reported",
        warm.as_secs_f64(),
        measure.as_secs_f64()
    );
    let prealloc_fsync = fsync_latency_preallocated(200);
    println!(
        "fdatasync latency of a 300-byte write (p50 of 200): {} appending, {} into preallocated space",
        fmt_ns(fsync_latency(200).as_nanos() as u64),
        fmt_ns(prealloc_fsync.as_nanos() as u64)
    );
    let seq_mib = (256.0 * scale.max(1.0)) as usize;
    let seq_before = seq_write_bandwidth(seq_mib);
    println!(
        "sequential write ({seq_mib} MiB in 1 MiB writes + fdatasync): {:.0} MB/s",
        seq_before / MB
    );
    println!();

    let _ = events(0, 1); // build the event pool outside any measurement
    const SYSTEMS: [System; 3] = [System::Argus, System::Sqlite, System::Jsonl];
    let mut seq_rounds: Vec<f64> = Vec::new();
    let mut results: Vec<(Scenario, [Run; 3], Ratios)> = Vec::new();
    for sc in SCENARIOS {
        if !sc.name.contains(filter.as_str()) {
            continue;
        }
        let mut runs: [Vec<Run>; 3] = Default::default();
        for round in 0..rounds {
            for k in 0..SYSTEMS.len() {
                let i = (k + round) % SYSTEMS.len();
                let sys = SYSTEMS[i];
                let skip = !only.is_empty() && !format!("{sys:?}").eq_ignore_ascii_case(&only);
                let r = match sys {
                    _ if skip => {
                        runs[i].push(Run::skipped());
                        continue;
                    }
                    System::Argus => run_argus(sc, warm, measure),
                    System::Sqlite => run_sqlite(sc, warm, measure),
                    System::Jsonl => run_jsonl(sc, warm, measure),
                };
                let groups = r
                    .groups
                    .map(|(mean, p50, max)| {
                        format!("  group commit mean {mean:.1} p50 {p50} max {max} entries")
                    })
                    .unwrap_or_default();
                println!(
                    "  {:<30} round {round} {:<6} {:>7} entries/s  p50 {:>8}  p99 {:>8}  {:>6.1} MB/s  ({} calls)  CPU {:.2} us/entry{groups}",
                    sc.name,
                    format!("{sys:?}"),
                    fmt_rate(r.entries_per_s),
                    fmt_ns(r.p50),
                    fmt_ns(r.p99),
                    r.bytes_per_s / MB,
                    r.calls,
                    r.cpu_ns_per_entry / 1e3
                );
                runs[i].push(r);
            }
            if sc.batch > 1 {
                // Disk bandwidth next to this round's runs, for the MB/s target.
                let bw = seq_write_bandwidth(128);
                println!(
                    "  {:<30} round {round} sequential write {:.0} MB/s",
                    sc.name,
                    bw / MB
                );
                seq_rounds.push(bw);
            }
        }
        let per_round =
            |f: &dyn Fn(usize) -> f64| Spread::of(&(0..rounds).map(f).collect::<Vec<_>>());
        let ratios = Ratios {
            vs_sqlite: per_round(&|r| runs[0][r].entries_per_s / runs[1][r].entries_per_s),
            vs_jsonl: per_round(&|r| runs[0][r].entries_per_s / runs[2][r].entries_per_s),
            of_seq: (sc.batch > 1).then(|| {
                per_round(&|r| runs[0][r].bytes_per_s / seq_rounds[seq_rounds.len() - rounds + r])
            }),
        };
        let runs = runs.map(|r| median_run(&r));
        results.push((sc, runs, ratios));
    }
    if results.is_empty() {
        println!("no scenario matches ARGUS_BENCH_FILTER={filter:?}");
        return;
    }
    let seq_after = seq_write_bandwidth(seq_mib);
    let seq_bw = (seq_before + seq_after) / 2.0;
    println!();

    println!(
        "Throughput (entries/s acknowledged durable, median of rounds); ratios are the\n\
         median (min-max) over rounds of the per-round ratio"
    );
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(sc, [a, s, j], q)| {
            vec![
                sc.name.to_string(),
                fmt_rate(a.entries_per_s),
                fmt_rate(s.entries_per_s),
                fmt_rate(j.entries_per_s),
                q.vs_sqlite.show(),
                q.vs_jsonl.show(),
            ]
        })
        .collect();
    print_table(
        &[
            "scenario",
            "Argus",
            "SQLite WAL",
            "JSONL+fsync",
            "Argus/SQLite",
            "Argus/JSONL",
        ],
        &rows,
    );

    println!("Per-call latency (one ack; for the batch scenario, one call of 1000 entries)");
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(sc, [a, s, j], _)| {
            vec![
                sc.name.to_string(),
                fmt_ns(a.p50),
                fmt_ns(a.p99),
                fmt_ns(s.p50),
                fmt_ns(s.p99),
                fmt_ns(j.p50),
                fmt_ns(j.p99),
            ]
        })
        .collect();
    print_table(
        &[
            "scenario",
            "Argus p50",
            "Argus p99",
            "SQLite p50",
            "SQLite p99",
            "JSONL p50",
            "JSONL p99",
        ],
        &rows,
    );

    println!(
        "CPU per entry (whole process, all threads, us; does not move with fdatasync latency)"
    );
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(sc, [a, s, j], _)| {
            vec![
                sc.name.to_string(),
                format!("{:.2}", a.cpu_ns_per_entry / 1e3),
                format!("{:.2}", s.cpu_ns_per_entry / 1e3),
                format!("{:.2}", j.cpu_ns_per_entry / 1e3),
            ]
        })
        .collect();
    print_table(&["scenario", "Argus", "SQLite", "JSONL"], &rows);

    println!("Bytes written to disk per second (files' size after the run / whole run time)");
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(sc, [a, s, j], _)| {
            vec![
                sc.name.to_string(),
                format!("{:.1}", a.bytes_per_s / MB),
                format!("{:.1}", s.bytes_per_s / MB),
                format!("{:.1}", j.bytes_per_s / MB),
            ]
        })
        .collect();
    print_table(
        &["scenario", "Argus MB/s", "SQLite MB/s", "JSONL MB/s"],
        &rows,
    );

    let find = |p: usize, b: usize| {
        results
            .iter()
            .find(|(sc, _, _)| sc.producers == p && sc.batch == b)
    };
    println!(
        "sequential write bandwidth: {:.0} MB/s before, {:.0} MB/s after the runs; mean {:.0} MB/s",
        seq_before / MB,
        seq_after / MB,
        seq_bw / MB
    );
    println!();
    let mut rows = Vec::new();
    if let Some((_, [a, _, _], q)) = find(1, 1) {
        rows.push(vec![
            "1 entry/call: Argus >= 1.0x JSONL+fdatasync".into(),
            q.vs_jsonl.show(),
            target_verdict(q.vs_jsonl.median, 1.0),
        ]);
        let floor = prealloc_fsync.as_nanos() as f64;
        rows.push(vec![
            "1 entry/call: Argus p50 <= 1.3x preallocated write+fdatasync".into(),
            format!(
                "{:.2}x ({} vs {})",
                a.p50 as f64 / floor,
                fmt_ns(a.p50),
                fmt_ns(floor as u64)
            ),
            target_verdict(1.3 * floor / a.p50 as f64, 1.0),
        ]);
    }
    for p in [8, 64] {
        if let Some((_, [a, _, _], q)) = find(p, 1) {
            let groups = a
                .groups
                .map(|(mean, p50, max)| format!("; groups mean {mean:.1} p50 {p50} max {max}"))
                .unwrap_or_default();
            rows.push(vec![
                format!("{p} producers: Argus >= 2x SQLite"),
                format!("{}{groups}", q.vs_sqlite.show()),
                target_verdict(q.vs_sqlite.median, 2.0),
            ]);
        }
    }
    if let Some((_, [a, s, _], q)) = find(1, 1000) {
        let best = (a.entries_per_s / 1e6).max(q.vs_sqlite.median / 4.0);
        rows.push(vec![
            "batched: Argus >= 1,000,000/s or >= 4x SQLite".into(),
            format!(
                "{}/s, {} SQLite ({}/s)",
                fmt_rate(a.entries_per_s),
                q.vs_sqlite.show(),
                fmt_rate(s.entries_per_s)
            ),
            target_verdict(best, 1.0),
        ]);
        if let Some(bw) = q.of_seq {
            rows.push(vec![
                "batched: Argus MB/s >= 50% of sequential write".into(),
                format!("{} (Argus {:.0} MB/s)", bw.show_pct(), a.bytes_per_s / MB),
                target_verdict(bw.median, 0.5),
            ]);
        }
    }
    println!("Targets (sequential write measured next to each batched round)");
    print_table(&["target", "measured", "verdict"], &rows);
    println!("load average at end: {}", loadavg());
}
