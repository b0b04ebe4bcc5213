//! A view reads each segment file once per refresh: one `LogReader` keeps
//! what it loaded (the active segment read once, sealed ones mapped once),
//! however many questions the view asks of it (latest seal, each
//! projection's resume point, one walk per catch-up lane, ...). Counted
//! with strace on the real binary; skipped where strace is missing or may
//! not trace, unless `CI` is set.
use crate::common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Whether strace can trace here. Under CI its absence fails the test.
pub(crate) fn strace_ready() -> bool {
    let ok = Command::new("strace")
        .args(["-f", "-o", "/dev/null", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is missing or cannot trace, and CI is set"
        );
        eprintln!("skipping: strace is missing or cannot trace here");
    }
    ok
}

/// Per segment file: (opens, read calls, bytes read) while `argusctl
/// ARGS` runs.
pub(crate) fn segment_reads(args: &[&OsStr]) -> (Run, BTreeMap<String, (u64, u64, u64)>) {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("strace")
        .args(["-f", "-y", "-e", "trace=openat,read,pread64", "-o"])
        .arg(trace.path())
        .arg(bin())
        .args(args)
        .env("USER", "tester")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let run = Run {
        args: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let text = std::fs::read_to_string(trace.path()).unwrap();
    let mut per: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        // `PID openat(AT_FDCWD</dir>, "/x/segments/000….seg", O_RDONLY…) = 3</x/…seg>`
        if line.contains("openat(") && !line.contains("= -1") {
            if let Some(name) = quoted_seg(line) {
                per.entry(name).or_default().0 += 1;
            }
            continue;
        }
        // `PID read(3</x/segments/000….seg>, "…", 123) = 123`
        let Some(call) = ["read(", "pread64("].iter().find_map(|c| line.find(c)) else {
            continue;
        };
        let rest = &line[call..];
        let (Some(a), Some(b)) = (rest.find('<'), rest.find('>')) else {
            continue;
        };
        let path = &rest[a + 1..b];
        if !path.ends_with(".seg") {
            continue;
        }
        let got: u64 = line
            .rsplit("= ")
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        let e = per.entry(file_name(Path::new(path))).or_default();
        e.1 += 1;
        e.2 += got;
    }
    (run, per)
}

fn quoted_seg(line: &str) -> Option<String> {
    let start = line.find('"')? + 1;
    let end = start + line[start..].find('"')?;
    let path = &line[start..end];
    path.ends_with(".seg").then(|| file_name(Path::new(path)))
}

fn job_entries(first: u64, n: u64) -> Vec<serde_json::Value> {
    (first..first + n)
        .map(|i| {
            let job = format!("j{}", i / 5);
            match i % 5 {
                0 => json!({"kind": "job.received", "job_id": job, "payload": {"job_type": "code_review"}}),
                4 => json!({"kind": "job.completed", "job_id": job, "payload": {"duration_ms": i}}),
                _ => json!({"kind": "cost.logged", "job_id": job, "payload": {"usd": 0.01, "tokens_in": 1, "tokens_out": 1, "model": "m", "price_table": "p"}}),
            }
        })
        .collect()
}

fn assert_each_segment_read_once(dir: &Path, run: &Run, per: &BTreeMap<String, (u64, u64, u64)>) {
    run.assert_ok();
    assert!(
        !per.is_empty(),
        "the trace saw no segment at all{}",
        run.ctx()
    );
    for (name, (opens, reads, bytes)) in per {
        let size = std::fs::metadata(dir.join("segments").join(name))
            .unwrap()
            .len();
        assert_eq!(
            *opens,
            1,
            "{name} was opened {opens} times ({reads} read calls, {bytes} bytes) in one view; \
             a reader loads each segment once{}",
            run.ctx()
        );
        // One read of the whole active segment (plus the footer check and
        // EOF), or only the footer check of a mapped one.
        assert!(
            *bytes <= size + 4096,
            "{name} ({size} bytes) was read {bytes} bytes in {reads} calls{}",
            run.ctx()
        );
    }
}

#[test]
fn a_view_reads_the_active_segment_once_per_refresh() {
    if !strace_ready() {
        return;
    }
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    append(dir, &job_entries(0, 300));
    argus([OsStr::new("jobs"), p(dir)]).assert_ok();
    // New entries, so the refresh catches up as well as resuming.
    append(dir, &job_entries(300, 40));
    let (run, per) = segment_reads(&[OsStr::new("jobs"), p(dir)]);
    assert_each_segment_read_once(dir, &run, &per);
    // And with nothing new: resume points and the latest seal only.
    let (run, per) = segment_reads(&[OsStr::new("jobs"), p(dir)]);
    assert_each_segment_read_once(dir, &run, &per);
}

#[test]
fn a_view_over_many_segments_maps_each_sealed_one_once() {
    if !strace_ready() {
        return;
    }
    let (tmp, _key) = init_log(Some(4096));
    let dir = tmp.path();
    for i in 0..4 {
        append(dir, &job_entries(i * 50, 50));
    }
    assert!(segment_files(dir).len() > 3, "the log should have rolled");
    let (run, per) = segment_reads(&[OsStr::new("jobs"), p(dir)]);
    assert_each_segment_read_once(dir, &run, &per);
}
