//! Round trip: what goes in through `argusctl append` comes back out of
//! `cat`, `tail`, `stats` and `verify` exactly, across many segments.
use crate::common::*;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

struct Fixture {
    tmp: tempfile::TempDir,
    key: String,
    inputs: Vec<Value>,
    acks: Vec<Ack>,
}

impl Fixture {
    fn dir(&self) -> &Path {
        self.tmp.path()
    }
}

/// 3000 generated entries in four `append` runs with different commit
/// sizes, in a log with 4096-byte segments.
fn build(total: usize) -> Fixture {
    let (tmp, key) = init_log(Some(4096));
    let dir = tmp.path();
    let parts = [
        (total / 6, 1usize),
        (total / 3, 10),
        (total / 6, usize::MAX),
        (total - total / 6 * 2 - total / 3, 7),
    ];
    let mut inputs = Vec::new();
    let mut acks = Vec::new();
    for (i, (n, batch)) in parts.into_iter().enumerate() {
        let first = inputs.len() as u64;
        let entries = gen_entries(first, n, 1000 + i as u64);
        let a = if batch == usize::MAX {
            append(dir, &entries)
        } else {
            append_lockstep(dir, &entries, batch)
        };
        inputs.extend(entries);
        acks.extend(a);
    }
    assert_eq!(acks.len(), total);
    for (i, a) in acks.iter().enumerate() {
        assert_eq!(a.seq, i as u64, "acks must be gapless across runs: {a:?}");
        assert_eq!(a.hash.len(), 64, "ack hash is 32 bytes hex: {a:?}");
    }
    Fixture {
        tmp,
        key,
        inputs,
        acks,
    }
}

fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or(&Value::Null)
}

/// Asserts that `out` (cat/tail JSON lines) are exactly the inputs with the
/// given seqs, with the ack hashes.
fn assert_entries_match(fx: &Fixture, out: &[Value], seqs: &[u64], what: &str) {
    let got: Vec<u64> = out.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(got, seqs, "{what}: wrong seqs");
    for v in out {
        let seq = v["seq"].as_u64().unwrap() as usize;
        let input = &fx.inputs[seq];
        for k in ["kind", "job_id", "step_id", "agent", "parent", "payload"] {
            assert_eq!(
                field(v, k),
                field(input, k),
                "{what}: seq {seq} field {k} differs\n  input:  {input}\n  output: {v}"
            );
        }
        assert_eq!(
            v["hash"].as_str(),
            Some(fx.acks[seq].hash.as_str()),
            "{what}: seq {seq} hash is not the acknowledged hash\n  output: {v}"
        );
        assert_eq!(
            v["actor"].as_str(),
            Some(actor_of("agent").as_str()),
            "{what}: actor must be the appending user\n  output: {v}"
        );
    }
}

#[test]
fn three_thousand_entries_round_trip_through_cat_verify_and_stats() {
    let fx = build(3000);
    let dir = fx.dir();
    let segs = segment_files(dir);
    assert!(
        segs.len() >= 20,
        "expected many 4096-byte segments, got {}",
        segs.len()
    );

    // cat returns exactly the inputs, gapless, with ack hashes and a prev chain.
    let out = cat_json(dir, &[]);
    let all: Vec<u64> = (0..3000).collect();
    assert_entries_match(&fx, &out, &all, "cat");
    let mut prev = ZERO_HASH.to_string();
    let mut prev_ts = String::new();
    for v in &out {
        assert_eq!(
            v["prev"].as_str(),
            Some(prev.as_str()),
            "prev of seq {} must be the hash of the entry before",
            v["seq"]
        );
        let ts = v["ts"].as_str().expect("ts").to_string();
        assert!(
            ts >= prev_ts,
            "timestamps must not go backwards: {prev_ts} then {ts} at seq {}",
            v["seq"]
        );
        prev = v["hash"].as_str().unwrap().to_string();
        prev_ts = ts;
    }

    // verify with the pinned key.
    let r = verify(dir, &fx.key, &[]);
    r.assert_ok();
    assert!(
        r.stdout.starts_with("OK: 3000 entries (3000 sealed)"),
        "verify summary{}",
        r.ctx()
    );
    assert!(r.stdout.contains("pinned"), "verify summary{}", r.ctx());
    let (r, v) = verify_json(dir, &fx.key, &[]);
    r.assert_ok();
    assert_eq!(v["status"], "ok", "{}", r.ctx());
    assert_eq!(v["entries"], 3000, "{}", r.ctx());
    assert_eq!(v["sealed_size"], 3000, "{}", r.ctx());
    assert_eq!(
        v["segments"].as_u64(),
        Some(segs.len() as u64),
        "{}",
        r.ctx()
    );
    assert_eq!(v["key_pinned"], true, "{}", r.ctx());
    assert!(v["failure"].is_null(), "{}", r.ctx());
    assert_eq!(
        v["head"].as_str(),
        Some(fx.acks[2999].hash.as_str()),
        "{}",
        r.ctx()
    );

    // stats.
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("argus.json")).unwrap()).unwrap();
    let s = stats(dir);
    let bytes: u64 = segs
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(s["entries"], 3000, "stats: {s}");
    assert_eq!(
        s["segments"].as_u64(),
        Some(segs.len() as u64),
        "stats: {s}"
    );
    assert_eq!(s["bytes"].as_u64(), Some(bytes), "stats: {s}");
    assert_eq!(s["head_seq"], 2999, "stats: {s}");
    assert_eq!(
        s["head_hash"].as_str(),
        Some(fx.acks[2999].hash.as_str()),
        "stats: {s}"
    );
    assert_eq!(s["log_id"], meta["log_id"], "stats: {s}");
    assert_eq!(v["log_id"], meta["log_id"], "verify log_id: {v}");
}

#[test]
fn fresh_log_is_empty_verifies_and_has_a_size_zero_checkpoint() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    let s = stats(dir);
    assert_eq!(s["entries"], 0, "stats: {s}");
    assert_eq!(s["segments"], 1, "stats: {s}");
    assert!(s["head_seq"].is_null(), "stats: {s}");
    assert!(cat_json(dir, &[]).is_empty());
    let cps = tempfile::tempdir().unwrap();
    let cp = cps.path().join("cp0.txt");
    assert_eq!(checkpoint_size(&save_checkpoint(dir, &cp)), 0);
    let cp = cp.to_str().unwrap();
    let (r, v) = verify_json(dir, &key, &["--checkpoint", cp]);
    r.assert_ok();
    assert_eq!(v["entries"], 0, "{}", r.ctx());
    assert_eq!(v["checkpoints_checked"], 1, "{}", r.ctx());
    // The size-0 checkpoint stays valid as the log grows.
    let acks = append(dir, &gen_entries(0, 5, 3));
    assert_eq!(acks.len(), 5);
    verify(dir, &key, &["--checkpoint", cp]).assert_ok();
}

#[test]
fn cat_from_to_ranges_cross_segment_boundaries() {
    let fx = build(1200);
    let dir = fx.dir();
    let bases: Vec<u64> = segment_files(dir)
        .iter()
        .map(|p| parse_segment(p).base_seq)
        .collect();
    assert!(bases.len() >= 10, "need many segments, got {bases:?}");
    let k = bases.len() / 2;
    let cases: Vec<(Option<u64>, Option<u64>)> = vec![
        // Starts three before a boundary, ends three after the next-but-one.
        (Some(bases[k] - 3), Some(bases[k + 2] + 3)),
        // Exactly one segment.
        (Some(bases[k]), Some(bases[k + 1] - 1)),
        // A single entry at a boundary and just before one.
        (Some(bases[k]), Some(bases[k])),
        (Some(bases[k] - 1), Some(bases[k] - 1)),
        // Open-ended on either side.
        (Some(bases[bases.len() - 2] + 1), None),
        (None, Some(bases[1] + 1)),
        // Past the end, and an upper bound past the end.
        (Some(5000), None),
        (Some(1190), Some(99_999)),
    ];
    for (from, to) in cases {
        let mut extra: Vec<String> = Vec::new();
        if let Some(f) = from {
            extra.extend(["--from".into(), f.to_string()]);
        }
        if let Some(t) = to {
            extra.extend(["--to".into(), t.to_string()]);
        }
        let extra_ref: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = cat_json(dir, &extra_ref);
        let lo = from.unwrap_or(0);
        let hi = to.unwrap_or(u64::MAX).min(1199);
        let want: Vec<u64> = (lo..=hi).collect();
        assert_entries_match(&fx, &out, &want, &format!("cat {extra:?}"));
    }
}

#[test]
fn tail_last_n_and_job_kind_filters() {
    let fx = build(900);
    let dir = fx.dir();
    let tail = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["tail", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend(["-o", "json"]);
        let r = argus(&args);
        r.assert_ok();
        r.json_lines()
    };

    let out = tail(&["-n", "5"]);
    assert_entries_match(&fx, &out, &[895, 896, 897, 898, 899], "tail -n 5");

    let out = tail(&[]);
    let want: Vec<u64> = (890..900).collect();
    assert_entries_match(&fx, &out, &want, "tail (default 10)");

    let seqs_where = |f: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        fx.inputs
            .iter()
            .enumerate()
            .filter(|(_, v)| f(v))
            .map(|(i, _)| i as u64)
            .collect()
    };
    let last = |v: Vec<u64>, n: usize| v[v.len().saturating_sub(n)..].to_vec();

    let job3 = seqs_where(&|v| v["job_id"] == "job-3");
    assert!(job3.len() > 20, "generator should produce job-3 entries");
    let out = tail(&["--job", "job-3", "-n", "100000"]);
    assert_entries_match(&fx, &out, &job3, "tail --job job-3");
    let out = tail(&["--job", "job-3", "-n", "4"]);
    assert_entries_match(&fx, &out, &last(job3, 4), "tail --job job-3 -n 4");

    let cost = seqs_where(&|v| v["kind"] == "x.cost.logged");
    let out = tail(&["--kind", "x.cost.logged", "-n", "3"]);
    assert_entries_match(&fx, &out, &last(cost, 3), "tail --kind x.cost.logged");

    let tools = seqs_where(&|v| v["kind"].as_str().unwrap().starts_with("x.tool."));
    let out = tail(&["--kind", "x.tool.*", "-n", "100000"]);
    assert_entries_match(&fx, &out, &tools, "tail --kind x.tool.*");

    // `x.job.*` matches `x.job.state.changed` but a bare prefix must not match
    // a longer segment name (`x.jo.*` matches nothing here).
    let job_kinds = seqs_where(&|v| v["kind"].as_str().unwrap().starts_with("x.job."));
    let out = tail(&["--kind", "x.job.*", "-n", "100000"]);
    assert_entries_match(&fx, &out, &job_kinds, "tail --kind x.job.*");
    let out = tail(&["--kind", "x.jo.*", "-n", "100000"]);
    assert_entries_match(&fx, &out, &[], "tail --kind jo.*");

    let both = seqs_where(&|v| v["job_id"] == "job-1" && v["kind"] == "x.agent.msg");
    let out = tail(&["--job", "job-1", "--kind", "x.agent.msg", "-n", "100000"]);
    assert_entries_match(&fx, &out, &both, "tail --job job-1 --kind agent.msg");
}

#[test]
fn tail_follow_sees_entries_appended_after_it_started() {
    let (tmp, _key) = init_log(Some(4096));
    let dir = tmp.path();
    let first = gen_entries(0, 30, 7);
    let mut acks = append_lockstep(dir, &first, 3);

    let mut child = cmd([
        OsStr::new("tail"),
        p(dir),
        OsStr::new("-f"),
        OsStr::new("-n"),
        OsStr::new("2"),
        OsStr::new("-o"),
        OsStr::new("json"),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn tail -f");
    let rx = line_reader(child.stdout.take().unwrap());
    let initial = collect_until(&rx, Duration::from_secs(30), |l| l.len() >= 2);
    assert_eq!(initial.len(), 2, "tail -f -n 2 initial lines: {initial:?}");

    // Enough entries, in small commits, to roll several segments while
    // tail is following.
    let more = gen_entries(30, 120, 8);
    acks.extend(append_lockstep(dir, &more, 4));
    let segs = segment_files(dir).len();
    assert!(segs >= 4, "the appends should roll segments, got {segs}");

    let followed = collect_until(&rx, Duration::from_secs(60), |l| {
        l.iter().any(|s| s.contains("\"seq\":149,"))
    });
    let stderr = kill_and_reap(child);
    let lines: Vec<String> = initial.into_iter().chain(followed).collect();
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"))
                ["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let want: Vec<u64> = (28..150).collect();
    assert_eq!(
        seqs, want,
        "tail -f must print the last 2 then every new entry once, in order; stderr:\n{stderr}"
    );
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        let seq = v["seq"].as_u64().unwrap() as usize;
        assert_eq!(
            v["hash"].as_str(),
            Some(acks[seq].hash.as_str()),
            "followed entry hash"
        );
    }
}

#[test]
fn cat_into_closed_pipe_exits_quietly() {
    let fx = build(3000);
    let dir = fx.dir();
    let full = argus([OsStr::new("cat"), p(dir)]);
    full.assert_ok();
    assert!(
        full.stdout.len() > 256 * 1024,
        "output must exceed the pipe buffer for this test to mean anything ({} bytes)",
        full.stdout.len()
    );

    let mut child = cmd([OsStr::new("cat"), p(dir)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cat");
    let mut first = String::new();
    {
        let mut r = BufReader::new(child.stdout.take().unwrap());
        r.read_line(&mut first).expect("read first line");
        // Dropping the reader closes our end of the pipe, like `| head -1`.
    }
    let out = child.wait_with_output().expect("wait cat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        first.starts_with("     0 "),
        "first line should be seq 0: {first:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "cat into a closed pipe must exit 0, not die or fail; status {:?}, stderr:\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "no panic or error message on a closed pipe; stderr:\n{stderr}"
    );
}

#[test]
fn deleted_or_damaged_index_files_do_not_change_cat_output() {
    let fx = build(1000);
    let dir = fx.dir();
    let idx: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("idx")))
        .collect();
    assert!(!idx.is_empty(), "sealed segments should have .idx files");
    let ranges: [&[&str]; 3] = [&[], &["--from", "437"], &["--from", "600", "--to", "777"]];
    let before: Vec<Vec<Value>> = ranges.iter().map(|r| cat_json(dir, r)).collect();
    assert_eq!(before[0].len(), 1000);

    for p in &idx {
        std::fs::remove_file(p).unwrap();
    }
    for (r, want) in ranges.iter().zip(&before) {
        assert_eq!(
            &cat_json(dir, r),
            want,
            "cat {r:?} changed after deleting .idx files"
        );
    }

    // A damaged index (bad CRC, or pointing at the wrong place) is a cache
    // miss, not a source of truth.
    for p in &idx {
        std::fs::write(p, b"ARGUSIDX garbage that fails its crc").unwrap();
    }
    for (r, want) in ranges.iter().zip(&before) {
        assert_eq!(
            &cat_json(dir, r),
            want,
            "cat {r:?} changed after damaging .idx files"
        );
    }
    verify(dir, &fx.key, &[]).assert_ok();
}

/// A log whose sealed segments hold more than 4096 entries each, so the
/// sparse index has several (seq, offset) pairs per segment (SPEC §9).
fn large_segment_log() -> (tempfile::TempDir, String, Vec<Value>) {
    // 2 MiB segments: each sealed one holds ~8k entries, well above one
    // 4096-entry stride whatever the group-commit sizes were.
    let (tmp, key) = init_log(Some(2 << 20));
    let dir = tmp.path();
    let entries: Vec<Value> = (0..30_000u64)
        .map(|i| json!({"kind": "x.bulk.entry", "job_id": format!("j{}", i % 9), "payload": {"i": i, "pad": "x".repeat((i % 200) as usize)}}))
        .collect();
    // Batches of 2,000 awaited in turn: a single 30k-entry group commit on
    // a loaded machine would fill one segment and leave too few to test.
    append_lockstep(dir, &entries, 2000);
    let out = cat_json(dir, &[]);
    assert_eq!(out.len(), 30_000);
    let segs = segment_files(dir);
    assert!(segs.len() >= 3, "need several sealed segments: {segs:?}");
    let first_two: Vec<u64> = segs[..2]
        .iter()
        .map(|p| parse_segment(p).entries().len() as u64)
        .collect();
    assert!(
        first_two.iter().all(|n| *n > 4096),
        "sealed segments must hold more than one index stride: {first_two:?}"
    );
    (tmp, key, out)
}

fn idx_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("idx")))
        .collect();
    v.sort();
    v
}

fn check_ranges(dir: &Path, full: &[Value], what: &str) {
    let bases: Vec<u64> = segment_files(dir)
        .iter()
        .map(|p| parse_segment(p).base_seq)
        .collect();
    let mut starts = vec![0u64, 1, 4095, 4096, 4097, 8191, 8192, 8193, 12_345, 19_998];
    for b in &bases {
        starts.extend([b.saturating_sub(1), *b, b + 1, b + 4095, b + 4096, b + 4097]);
    }
    for from in starts.into_iter().filter(|s| *s < 30_000) {
        let to = (from + 3).min(29_999);
        let out = cat_json(dir, &["--from", &from.to_string(), "--to", &to.to_string()]);
        assert_eq!(
            out,
            full[from as usize..=to as usize].to_vec(),
            "{what}: cat --from {from} --to {to}"
        );
    }
}

#[test]
fn cat_ranges_inside_large_sealed_segments_match_with_and_without_index() {
    let (tmp, _key, full) = large_segment_log();
    let dir = tmp.path();
    assert!(!idx_files(dir).is_empty(), "sealed segments have indexes");
    check_ranges(dir, &full, "with index");
    for p in idx_files(dir) {
        std::fs::remove_file(p).unwrap();
    }
    check_ranges(dir, &full, "index deleted");
    assert!(
        !idx_files(dir).is_empty(),
        "readers rebuild a missing index (SPEC §9)"
    );
    for p in idx_files(dir) {
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 1] ^= 0xFF; // CRC fails
        std::fs::write(&p, b).unwrap();
    }
    check_ranges(dir, &full, "index with bad CRC");
}

#[test]

fn stale_index_from_another_segment_does_not_change_cat_output() {
    let (tmp, key, full) = large_segment_log();
    let dir = tmp.path();
    let idx = idx_files(dir);
    assert!(idx.len() >= 2);
    // E.g. left behind by restoring segments from a backup: segment 0's
    // index next to segment 1.
    std::fs::copy(&idx[0], &idx[1]).unwrap();
    verify(dir, &key, &[]).assert_ok();
    check_ranges(dir, &full, "stale index");
}

/// A sealed segment's index holds a point for every 16th entry, so a cold
/// read of one entry walks at most 16 frames (a page or two); the active
/// segment's, rewritten while it grows, every 256th (docs/PERFORMANCE.md,
/// replay). Both are caches: cat reads the same entries without them.
#[test]
fn sealed_segments_index_every_16th_entry_and_the_active_one_every_256th() {
    let (tmp, _) = init_log(Some(256 << 10));
    let dir = tmp.path();
    let total = 4000u64;
    append(dir, &small_entries(0, total as usize));
    let mut bases: Vec<u64> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("seg")))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    bases.sort();
    assert!(
        bases.len() >= 2,
        "the test needs a sealed segment: {bases:?}"
    );
    let active = *bases.last().unwrap();
    assert!(
        total - active > 256,
        "the active segment needs > 256 entries: {bases:?}"
    );
    for (i, &base) in bases.iter().enumerate() {
        let end = bases.get(i + 1).copied().unwrap_or(total);
        let path = dir.join("segments").join(format!("{base:020}.idx"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(&bytes[..8], b"ARGUSIDX", "{path:?}");
        let seqs: Vec<u64> = bytes[8..bytes.len() - 4]
            .chunks_exact(16)
            .map(|c| u64::from_le_bytes(c[..8].try_into().unwrap()))
            .collect();
        let stride = if base == active { 256 } else { 16 };
        let want: Vec<u64> = (base..end).step_by(stride).collect();
        assert_eq!(seqs, want, "{path:?}: points every {stride} entries");
    }
    let all = cat_json(dir, &[]);
    assert_eq!(all.len() as u64, total);
    let some = cat_json(dir, &["--from", "1237", "--to", "1240"]);
    assert_eq!(some[..], all[1237..=1240]);
}
