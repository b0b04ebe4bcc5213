//! Projection rebuild speed (all projections together) against the raw read
//! speed of the same log, measured in the same process. Goal (issue 3): a
//! rebuild of at least 300k entries/s, or at least 25% of raw read speed.
//!
//! `cargo bench --bench projections` (ARGUS_BENCH_SCALE multiplies the size).
use argus::log::dir::InitOptions;
use argus::log::reader::LogReader;
use argus::projections::{self, Projections};
use argus::{Log, NewEntry};
use serde_json::json;
use std::ops::ControlFlow;
use std::time::Instant;

fn entry(i: u64) -> NewEntry {
    let job = format!("job-{}", i / 40);
    let agent = ["planner", "researcher", "coder"][(i % 3) as usize];
    let tool = ["web_search", "bash", "llm", "http_get"][(i / 3 % 4) as usize];
    let (kind, payload) = match i % 40 {
        0 => (
            "job.received",
            json!({"job_type": "research_synthesis", "max_retries": 2}),
        ),
        1 => (
            "job.dispatched",
            json!({"worker_id": format!("w-{}", i % 8)}),
        ),
        2 => ("job.progress", json!({"message": "started", "pct": 5})),
        3 => (
            "proposal.created",
            json!({"proposal_id": format!("p-{i}"), "action_type": "web_search", "risk": "low", "rationale": "gather sources for the report", "mission_context": "research", "parameters": {"q": i}}),
        ),
        21 => (
            "worker.heartbeat",
            json!({"worker_id": format!("w-{}", i % 8), "cpu_seconds": 1.5}),
        ),
        35 => (
            "job.completed",
            json!({"status": "succeeded", "duration_ms": i % 100_000}),
        ),
        n if n % 3 == 0 => (
            "cost.logged",
            json!({"usd": 0.001, "tokens_in": 100, "tokens_out": 50, "model": "claude-haiku", "tool": tool, "price_table": "2026-11"}),
        ),
        n if n % 3 == 1 => (
            "tool.call_started",
            json!({"tool": tool, "call_id": format!("c{i}")}),
        ),
        _ => (
            "tool.call_completed",
            json!({"tool": tool, "call_id": format!("c{i}"), "duration_ms": i % 5000}),
        ),
    };
    NewEntry {
        kind: kind.into(),
        job_id: Some(job),
        step_id: None,
        agent: Some(agent.into()),
        actor: format!("agent:{agent}"),
        parent: None,
        payload: argus::json::to_canonical(&payload),
    }
}

fn main() {
    let scale: f64 = std::env::var("ARGUS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let n = (400_000.0 * scale) as u64;
    let base = std::env::var("CARGO_TARGET_TMPDIR")
        .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let tmp = tempfile::tempdir_in(base).expect("temp dir");
    let dir = tmp.path().join("log");
    {
        let log = Log::create(
            &dir,
            &InitOptions {
                segment_bytes: 64 << 20,
                key_file: None,
                clock_skew_tolerance_s: None,
            },
        )
        .expect("create log");
        let mut i = 0;
        while i < n {
            let batch: Vec<NewEntry> = (i..(i + 4096).min(n)).map(entry).collect();
            i += batch.len() as u64;
            log.append(batch).expect("append");
        }
    }
    let reader = LogReader::open(&dir).expect("open reader");
    // Warm the page cache, then time both in the same process, alternating.
    let raw = || {
        let t = Instant::now();
        let mut count = 0u64;
        reader
            .for_each(0, u64::MAX, |v| {
                count += 1;
                std::hint::black_box(v.hash());
                std::hint::black_box(serde_json::from_slice::<serde_json::Value>(v.payload).ok());
                ControlFlow::Continue(())
            })
            .expect("read");
        (count, t.elapsed().as_secs_f64())
    };
    raw();
    let names: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
    println!("log: {n} entries; projections: {}", names.join(", "));
    let lanes_default = Projections::open(&dir, projections::all())
        .expect("open projections")
        .lanes();
    println!(
        "{:<4} {:>14} {:>16} {:>8} {:>16} {:>8}",
        "run",
        "raw read e/s",
        "1 thread e/s",
        "ratio",
        format!("{lanes_default} threads e/s"),
        "ratio"
    );
    // (single-thread ratios, multi-thread ratios, single rates, multi rates)
    let (mut r1, mut rn, mut e1, mut en) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let runs = std::env::var("ARGUS_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3usize);
    let rebuild = |lanes: usize| {
        let mut p = Projections::open(&dir, projections::all()).expect("open projections");
        p.set_lanes(lanes);
        p.reset(None).expect("reset");
        let t = Instant::now();
        p.catch_up(&reader, |_, _| {}).expect("catch up");
        t.elapsed().as_secs_f64()
    };
    for run in 0..runs {
        let (count, raw_s) = raw();
        let one_s = rebuild(1);
        let many_s = rebuild(lanes_default);
        let raw_rate = count as f64 / raw_s;
        let (one, many) = (count as f64 / one_s, count as f64 / many_s);
        r1.push(one / raw_rate);
        rn.push(many / raw_rate);
        e1.push(one);
        en.push(many);
        println!(
            "{run:<4} {raw_rate:>14.0} {one:>16.0} {:>7.1}% {many:>16.0} {:>7.1}%",
            100.0 * one / raw_rate,
            100.0 * many / raw_rate
        );
    }
    // Each projection alone, to show where rebuild time goes.
    println!("{:<14} {:>14}", "projection", "alone e/s");
    for name in &names {
        let set: Vec<_> = projections::all()
            .into_iter()
            .filter(|p| p.name() == *name)
            .collect();
        let mut p = Projections::open(&dir, set).expect("open projections");
        p.reset(None).expect("reset");
        let t = Instant::now();
        p.catch_up(&reader, |_, _| {}).expect("catch up");
        println!("{name:<14} {:>14.0}", n as f64 / t.elapsed().as_secs_f64());
    }
    if runs == 0 {
        return;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median: rebuild on 1 thread {:.0} entries/s = {:.1}% of raw read; on {lanes_default} threads {:.0} entries/s = {:.1}% (raw read = one thread: decode + entry hash + payload JSON parse). Goal: >= 300k/s or >= 25%.",
        median(&mut e1),
        100.0 * median(&mut r1),
        median(&mut en),
        100.0 * median(&mut rn)
    );
}
