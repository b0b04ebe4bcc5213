//! `argusctl replay`: a job's timeline from the job index, on real logs,
//! with the real binary; that it reads only the job's own segments (strace);
//! on a copied directory and through a running argusd.
use crate::common::{self, argus, init_at, init_log, p};
use serde_json::{json, Value};
use std::path::Path;

/// A failed job with two steps, costs and a lockdown thrown and released
/// while it ran, between other jobs' entries.
fn write_job(dir: &Path) -> (u64, u64) {
    let noise = |i: u64| json!({"kind":"job.progress","job_id":format!("other-{}", i % 3),"agent":"noise","payload":{"pct":i}});
    common::append(dir, &[noise(0), noise(1)]);
    let first = common::append(dir, &[
        json!({"kind":"job.received","job_id":"jr","agent":"planner","payload":{"job_type":"research","title":"Compare vector stores"}}),
        json!({"kind":"tool.call_started","job_id":"jr","step_id":"s1","agent":"researcher","payload":{"tool":"web_search","call_id":"c1"}}),
    ])[0]
    .seq;
    common::append(dir, &[noise(2)]);
    common::append(
        dir,
        &[
            json!({"kind":"tool.call_completed","job_id":"jr","step_id":"s1","agent":"researcher","payload":{"tool":"web_search","call_id":"c1","duration_ms":1500}}),
            json!({"kind":"cost.logged","job_id":"jr","step_id":"s1","agent":"researcher","payload":{"usd":0.5,"tokens_in":10,"tokens_out":5,"model":"m","price_table":"t"}}),
        ],
    );
    let d = dir.to_str().unwrap_or("");
    argus(["lockdown", d, "--reason", "drill during jr"]).assert_ok();
    argus(["release", d, "--reason", "drill over"]).assert_ok();
    common::append(
        dir,
        &[
            json!({"kind":"tool.call_started","job_id":"jr","step_id":"s2","agent":"coder","payload":{"tool":"bash","call_id":"c2"}}),
            json!({"kind":"tool.call_failed","job_id":"jr","step_id":"s2","agent":"coder","payload":{"tool":"bash","call_id":"c2","error":"exit 2","duration_ms":250}}),
            json!({"kind":"cost.logged","job_id":"jr","step_id":"s2","agent":"coder","payload":{"usd":0.25,"tokens_in":10,"tokens_out":5,"model":"m","price_table":"t"}}),
        ],
    );
    let last = common::append(dir, &[json!({"kind":"job.failed","job_id":"jr","agent":"coder","payload":{"error":"bench failed"}}), noise(3)])[0].seq;
    (first, last)
}

#[test]
fn the_timeline_pairs_calls_totals_costs_and_shows_decisions_that_touched_the_job() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let (first, last) = write_job(dir);
    let d = dir.to_str().unwrap_or("");
    let t = argus(["replay", d, "jr"]);
    t.assert_ok();
    for want in [
        "job jr (research) · failed",
        "web_search c1 ok",
        "1.5 s",
        "bash c2 FAILED: exit 2",
        "250 ms",
        "$0.7500",
        "*operator",
        "drill during jr",
        "summary: failed · 2 tool calls, 1 failed · 2 steps · cost $0.7500",
        "the job index agrees",
    ] {
        assert!(
            t.stdout.contains(want),
            "missing {want:?} in:\n{}",
            t.stdout
        );
    }
    assert!(
        !t.stdout.contains("other-"),
        "another job's entries leaked in:\n{}",
        t.stdout
    );
    let lines = argus(["replay", d, "jr", "-o", "json"]).json_lines();
    let (summary, events) = lines.split_last().expect("lines");
    assert_eq!(summary["summary"]["derived"]["cost_usd"], 0.75);
    assert_eq!(summary["summary"]["derived"]["status"], "failed");
    assert_eq!(summary["summary"]["index"]["status"], "failed");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs.first(), Some(&first));
    assert_eq!(seqs.last(), Some(&last));
    let done = events
        .iter()
        .find(|e| e["kind"] == "tool.call_completed")
        .expect("completion");
    assert_eq!(done["duration_ms"], 1500);
    assert_eq!(done["started_seq"], first + 1);
    assert!(events
        .iter()
        .any(|e| e["kind"] == "lockdown.set" && e["by_argus"] == true));
    assert!(events.iter().any(|e| e["kind"] == "lockdown.released"));
    // --from-step, --until-seq, --detailed.
    let from = argus(["replay", d, "jr", "--from-step", "s2", "-o", "json"]).json_lines();
    assert_eq!(from[0]["step_id"], "s2");
    let until = argus([
        "replay",
        d,
        "jr",
        "--until-seq",
        &(first + 1).to_string(),
        "-o",
        "json",
    ])
    .json_lines();
    assert_eq!(until.len(), 3, "two events and the summary: {until:?}");
    let detailed = argus(["replay", d, "jr", "--detailed", "-o", "json"]).json_lines();
    assert_eq!(detailed[0]["payload"]["title"], "Compare vector stores");
    // Errors name what was wrong.
    let r = argus(["replay", d, "nope"]);
    r.assert_code(1);
    assert!(r.stderr.contains("no job \"nope\""), "{}", r.stderr);
    let r = argus(["replay", d, "jr", "--from-step", "s9"]);
    assert!(r.stderr.contains("no step \"s9\""), "{}", r.stderr);
    // --requeue records a new run, linked to the original.
    let r = argus(["replay", d, "jr", "--requeue", "--from-step", "s2"]);
    r.assert_ok();
    let log = common::cat_json(dir, &[]);
    let e = log.last().expect("entry");
    assert_eq!(e["kind"], "job.replayed");
    assert_eq!(e["payload"]["original_job_id"], "jr");
    assert_eq!(e["payload"]["from_step"], "s2");
    assert_eq!(e["parent"], first);
    assert!(e["actor"].as_str().unwrap_or("").starts_with("operator:"));
}

#[test]
fn replay_reads_only_the_jobs_segments() {
    if !crate::read_once::strace_ready() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("log");
    init_at(&dir, Some(4096));
    let filler: Vec<Value> = (0..1500)
        .map(|i| json!({"kind":"job.progress","job_id":format!("f{}", i % 50),"agent":"a","payload":{"i":i}}))
        .collect();
    common::append_lockstep(&dir, &filler, 25);
    write_job(&dir);
    let segments = common::segment_files(&dir).len();
    assert!(segments > 20, "{segments} segments");
    // Catch the projections up first: replay of a caught-up log must not
    // need the whole log.
    argus(["jobs", dir.to_str().unwrap_or("")]).assert_ok();
    let (run, per) = crate::read_once::segment_reads(&[
        std::ffi::OsStr::new("replay"),
        p(&dir),
        std::ffi::OsStr::new("jr"),
    ]);
    run.assert_ok();
    // Opened for a read-ahead hint (an fadvise, no read) is not read.
    let read: Vec<_> = per.iter().filter(|(_, (_, reads, _))| *reads > 0).collect();
    assert!(
        read.len() <= 3,
        "replay read {} of {segments} segments: {read:?}",
        read.len(),
    );
}

#[test]
fn replay_works_on_a_copy_and_through_argusd() {
    let d = crate::daemon::harness::Daemon::start();
    write_job(&d.dir);
    let through = argus(["replay", d.dir.to_str().unwrap_or(""), "jr", "-o", "json"]);
    through.assert_ok();
    let mut d = d;
    d.term();
    let local = argus(["replay", d.dir.to_str().unwrap_or(""), "jr", "-o", "json"]);
    assert_eq!(through.stdout, local.stdout, "through argusd and locally");
    let copy = tempfile::tempdir().expect("tmp");
    let status = std::process::Command::new("cp")
        .args(["-a"])
        .arg(&d.dir)
        .arg(copy.path().join("log"))
        .status()
        .expect("cp");
    assert!(status.success());
    std::fs::remove_dir_all(copy.path().join("log/projections")).expect("rm projections");
    let copied = argus([
        "replay",
        copy.path().join("log").to_str().unwrap_or(""),
        "jr",
        "-o",
        "json",
    ]);
    assert_eq!(
        copied.stdout, local.stdout,
        "a copy without projections rebuilds them and agrees"
    );
}

/// `verify-proof` and `verify.py proof` exit codes for a bundle (Python's
/// is None when its packages are missing).
fn proof_codes(bundle: &Path, key: &str) -> (Option<i32>, Option<Option<i32>>, String) {
    let r = argus(["verify-proof", bundle.to_str().unwrap_or(""), "--key", key]);
    let mut detail = format!("rust: {} {}", r.stdout.trim(), r.stderr.trim());
    let py = common::python_ready().then(|| {
        let o = std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/pyverify/verify.py"))
            .args(["proof", bundle.to_str().unwrap_or(""), "--key", key])
            .output()
            .expect("python3 runs");
        detail.push_str(&format!(
            " | python: {}",
            String::from_utf8_lossy(&o.stdout).trim()
        ));
        o.status.code()
    });
    (r.code, py, detail)
}

fn assert_proof(bundle: &Path, key: &str, want: i32) {
    let (rust, py, detail) = proof_codes(bundle, key);
    assert_eq!(rust, Some(want), "{detail}");
    if let Some(py) = py {
        assert_eq!(py, Some(want), "{detail}");
    }
}

#[test]
fn a_job_proof_bundle_verifies_offline_and_tampering_fails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    let key = init_at(&dir, Some(4096));
    let (first, last) = write_job(&dir);
    let bundle = tmp.path().join("jr.proof.json");
    let d = dir.to_str().unwrap_or("");
    let r = argus(["replay", d, "jr", "--proof", bundle.to_str().unwrap_or("")]);
    r.assert_ok();
    let b: Value = serde_json::from_slice(&std::fs::read(&bundle).expect("bundle written"))
        .expect("bundle is JSON");
    let entries = b["entries"].as_array().expect("entries");
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    // The job's 8 entries and the lockdown and release thrown while it ran.
    assert_eq!(seqs.len(), 10, "{b}");
    assert_eq!((seqs[0], seqs[seqs.len() - 1]), (first, last));
    assert!(entries
        .iter()
        .any(|e| e["entry"]["kind"] == "lockdown.set" && e["entry"]["job_id"].is_null()));
    assert_proof(&bundle, &key, 0);
    let ok = argus(["verify-proof", bundle.to_str().unwrap_or(""), "--key", &key]);
    assert!(
        ok.stdout
            .contains("10 entries (8 of job \"jr\", 2 decisions"),
        "{}",
        ok.stdout
    );

    let variant = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut v = b.clone();
        f(&mut v);
        let path = tmp.path().join(name);
        std::fs::write(&path, serde_json::to_vec(&v).unwrap_or_default()).unwrap_or(());
        path
    };
    // A cost changed after the fact: the entry hash no longer matches.
    let cost = variant("cost.json", &|v| {
        for e in v["entries"].as_array_mut().into_iter().flatten() {
            if e["entry"]["kind"] == "cost.logged" {
                e["entry"]["payload"]["usd"] = json!(0.01);
            }
        }
    });
    assert_proof(&cost, &key, 10);
    // An entry dropped from the middle still verifies (each proof stands
    // alone) but one shown twice or out of order is malformed.
    let dup = variant("dup.json", &|v| {
        let e = v["entries"][1].clone();
        if let Some(a) = v["entries"].as_array_mut() {
            a.insert(2, e);
        }
    });
    assert_proof(&dup, &key, 2);
    // An audit path node flipped.
    let path = variant("path.json", &|v| {
        if let Some(n) = v["entries"][3]["audit_path"][0].as_str() {
            let flipped = format!("{}{}", if n.starts_with('0') { "1" } else { "0" }, &n[1..]);
            v["entries"][3]["audit_path"][0] = json!(flipped);
        }
    });
    assert_proof(&path, &key, 10);
    // Another key: the checkpoint is not the pinned key's.
    let other = init_at(&tmp.path().join("other"), None);
    assert_proof(&bundle, &other, 11);
    let empty = variant("empty.json", &|v| v["entries"] = json!([]));
    assert_proof(&empty, &key, 2);
}
