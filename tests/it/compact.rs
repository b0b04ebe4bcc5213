//! `argusctl compact` (SPEC §12): sealed segments become compressed
//! segments whose decompressed bytes are the originals, so every reader's
//! output, every checkpoint and every proof made before compaction is the
//! same after it; damage to a compressed segment is reported, naming it;
//! and a crash at any point (a real abort at each step, and kill -9 at
//! random moments) leaves every segment readable in one form or the other.
use crate::common::{self, argus, init_log, p};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A log of many small sealed segments (4 KiB each) holding generated
/// entries and one job with a timeline, so `replay` has something to show.
fn fixture() -> (tempfile::TempDir, String) {
    let (tmp, key) = init_log(Some(4096));
    let dir = tmp.path();
    common::append(
        dir,
        &[
            json!({"kind":"job.received","job_id":"jr","agent":"planner","payload":{"job_type":"research","title":"Compare vector stores"}}),
            json!({"kind":"tool.call_started","job_id":"jr","step_id":"s1","agent":"researcher","payload":{"tool":"web_search","call_id":"c1"}}),
        ],
    );
    // Segments roll at commit boundaries: one append per chunk.
    for chunk in 0..12u64 {
        let first = 2 + chunk * 25;
        common::append(dir, &common::gen_entries(first, 25, chunk + 1));
    }
    common::append(
        dir,
        &[
            json!({"kind":"tool.call_completed","job_id":"jr","step_id":"s1","agent":"researcher","payload":{"tool":"web_search","call_id":"c1","duration_ms":1500}}),
            json!({"kind":"job.completed","job_id":"jr","agent":"planner","payload":{}}),
        ],
    );
    (tmp, key)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// What readers print: every output must be byte-identical after compaction.
fn views(dir: &Path) -> Vec<(String, String)> {
    let d = dir.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["cat", d, "-o", "json"],
        vec!["cat", d, "--from", "100", "--to", "180"],
        vec!["tail", d, "-n", "40", "-o", "json"],
        vec!["replay", d, "jr"],
        vec!["export", d],
        vec!["stats", d],
        vec!["checkpoint", d],
        vec!["inspect", d, "150"],
        vec!["prove", d, "137"],
    ];
    runs.into_iter()
        .map(|args| {
            let r = argus(&args);
            r.assert_ok();
            (args.join(" "), r.stdout)
        })
        .collect()
}

fn compact(dir: &Path) -> Value {
    let r = argus([
        p(Path::new("compact")),
        p(dir),
        p(Path::new("-o")),
        p(Path::new("json")),
    ]);
    r.assert_ok();
    r.json()
}

fn entries(dir: &Path) -> u64 {
    common::stats(dir)["entries"].as_u64().unwrap()
}

#[test]
fn after_compaction_every_reader_prints_the_same_bytes_and_old_proofs_verify() {
    let (tmp, key) = fixture();
    let dir = tmp.path();
    let plain = files(dir, "seg");
    assert!(plain.len() >= 8, "want many segments, got {}", plain.len());
    let before = views(dir);
    let cp = dir
        .join("..")
        .join(format!("cp-{}.txt", std::process::id()));
    std::fs::write(&cp, &before[6].1).unwrap();
    let bundle = tmp.path().join("proof-137.json");
    std::fs::write(&bundle, &before[8].1).unwrap();

    let rep = compact(dir);
    let c = &rep["compress"];
    assert_eq!(
        c["segments"].as_array().unwrap().len(),
        plain.len() - 1,
        "{rep}"
    );
    assert!(c["bytes_after"].as_u64().unwrap() < c["bytes_before"].as_u64().unwrap());
    // Every sealed segment compressed, the last one left plain.
    assert_eq!(files(dir, "segz").len(), plain.len() - 1);
    assert_eq!(files(dir, "seg"), vec![plain.last().unwrap().clone()]);

    let after = views(dir);
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(
            b, a,
            "`argusctl {what}` printed something else after compaction"
        );
    }
    common::verify(dir, &key, &["--checkpoint", cp.to_str().unwrap()]).assert_ok();
    argus(["verify-proof", bundle.to_str().unwrap(), "--key", &key]).assert_ok();
    let _ = std::fs::remove_file(&cp);

    // Idempotent: a second run finds nothing to do.
    let again = compact(dir);
    assert_eq!(again["compress"]["segments"].as_array().unwrap().len(), 0);
    assert_eq!(
        again["compress"]["already_compressed"].as_u64(),
        Some(plain.len() as u64 - 1)
    );
}

#[test]
fn a_writer_keeps_appending_after_compaction_and_compacting_again_works() {
    let (tmp, key) = fixture();
    let dir = tmp.path();
    compact(dir);
    let n = entries(dir);
    for chunk in 0..4u64 {
        common::append(dir, &common::gen_entries(n + chunk * 25, 25, 100 + chunk));
    }
    assert_eq!(entries(dir), n + 100);
    // New segments are written plain.
    assert!(files(dir, "seg").len() >= 3);
    common::verify(dir, &key, &[]).assert_ok();
    let before = views(dir);
    let rep = compact(dir);
    assert!(!rep["compress"]["segments"].as_array().unwrap().is_empty());
    assert_eq!(files(dir, "seg").len(), 1);
    assert_eq!(views(dir), before);
    common::verify(dir, &key, &[]).assert_ok();
}

/// The zstd frame of a compressed segment's first block: its file offset
/// and length, from the block index (SPEC §12).
fn first_block(path: &Path) -> (u64, u64) {
    let b = std::fs::read(path).unwrap();
    let t = b.len() - 24;
    let index = u64::from_le_bytes(b[t..t + 8].try_into().unwrap()) as usize;
    let off = u64::from_le_bytes(b[index + 8..index + 16].try_into().unwrap());
    let len = u32::from_le_bytes(b[index + 16..index + 20].try_into().unwrap());
    (off, len as u64)
}

#[test]
fn a_flipped_byte_in_a_compressed_block_fails_verify_naming_the_segment() {
    let (tmp, key) = fixture();
    let dir = tmp.path();
    compact(dir);
    let target = files(dir, "segz")[2].clone();
    let name = common::file_name(&target);
    let (off, len) = first_block(&target);
    common::flip_byte(&target, off + len / 2);
    let r = common::verify(dir, &key, &["-o", "json"]);
    r.assert_code(10);
    let v = r.json();
    assert_eq!(
        v["failure"]["segment"].as_str(),
        Some(name.as_str()),
        "{}",
        r.ctx()
    );
    assert_eq!(v["failure"]["cause"].as_str(), Some("compressed_segment"));
    // Readers refuse too, naming the file, without a panic.
    let c = argus(["cat", dir.to_str().unwrap()]);
    assert_eq!(c.code, Some(1), "{}", c.ctx());
    assert!(
        c.stderr.contains(&name) && c.stderr.contains("damaged compressed segment"),
        "{}",
        c.ctx()
    );
}

#[test]
fn a_truncated_compressed_segment_is_a_clear_error() {
    let (tmp, key) = fixture();
    let dir = tmp.path();
    compact(dir);
    let target = files(dir, "segz")[0].clone();
    let name = common::file_name(&target);
    let bytes = std::fs::read(&target).unwrap();
    for keep in [bytes.len() - 1, bytes.len() / 2, 10] {
        std::fs::write(&target, &bytes[..keep]).unwrap();
        let r = common::verify(dir, &key, &[]);
        r.assert_code(10);
        assert!(r.all().contains(&name), "{}", r.ctx());
        let c = argus(["tail", dir.to_str().unwrap(), "-n", "1000"]);
        assert_eq!(c.code, Some(1), "{}", c.ctx());
        assert!(c.stderr.contains(&name), "{}", c.ctx());
    }
}

#[test]
fn a_compressed_segment_that_is_a_link_is_refused() {
    let (tmp, key) = fixture();
    let dir = tmp.path();
    compact(dir);
    let target = files(dir, "segz")[1].clone();
    let moved = dir.join("elsewhere.segz");
    std::fs::rename(&target, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &target).unwrap();
    let r = common::verify(dir, &key, &[]);
    r.assert_code(13);
    assert!(r.all().contains("symbolic link"), "{}", r.ctx());
    let c = argus(["cat", dir.to_str().unwrap()]);
    assert_eq!(c.code, Some(1), "{}", c.ctx());
}

#[test]
fn compact_refuses_while_another_process_holds_the_writer_lock() {
    let (tmp, _) = fixture();
    let dir = tmp.path();
    let lock =
        argus::log::lock::WriterLock::acquire(dir, "test", std::time::Duration::ZERO).unwrap();
    let r = argus(["--lock-timeout", "0", "compact", dir.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.ctx());
    assert!(r.stderr.contains("writer lock"), "{}", r.ctx());
    assert!(
        files(dir, "segz").is_empty(),
        "nothing is compressed without the lock"
    );
    drop(lock);
    compact(dir);
}

/// What must hold after any crash: every segment in at least one form,
/// verify clean, the same entries and the same bytes to readers.
fn assert_whole(dir: &Path, key: &str, bases: &[String], want_cat: &str, when: &str) {
    for b in bases {
        let seg = dir.join("segments").join(format!("{b}.seg"));
        let segz = dir.join("segments").join(format!("{b}.segz"));
        assert!(
            seg.exists() || segz.exists(),
            "{when}: segment {b} is gone in both forms"
        );
    }
    let r = common::verify(dir, key, &[]);
    assert_eq!(r.code, Some(0), "{when}{}", r.ctx());
    let cat = argus(["cat", dir.to_str().unwrap(), "-o", "json"]);
    cat.assert_ok();
    assert!(
        cat.stdout == want_cat,
        "{when}: cat differs after the crash"
    );
}

fn bases(dir: &Path) -> Vec<String> {
    files(dir, "seg")
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn an_abort_between_any_two_steps_leaves_the_log_whole_and_the_next_run_finishes() {
    let (tmp, key) = fixture();
    let base_dir = tmp.path();
    let all = bases(base_dir);
    let want = argus(["cat", base_dir.to_str().unwrap(), "-o", "json"]).stdout;
    for step in ["tmp_written", "renamed", "removed"] {
        for nth in [1, 3] {
            let work = tempfile::tempdir().unwrap();
            let dir = work.path().join("log");
            common::copy_dir(base_dir, &dir);
            let out = Command::new(common::bin())
                .args(["compact", dir.to_str().unwrap()])
                .env(argus::log::archive::FAILPOINT_ENV, format!("{step}:{nth}"))
                .output()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGABRT),
                "{step}:{nth} did not abort: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let when = format!("after an abort at {step}:{nth}");
            if step == "renamed" {
                // The crash window: both forms of one segment on disk.
                let both = all.iter().filter(|b| {
                    dir.join("segments").join(format!("{b}.seg")).exists()
                        && dir.join("segments").join(format!("{b}.segz")).exists()
                });
                assert_eq!(both.count(), 1, "{when}");
            }
            assert_whole(&dir, &key, &all, &want, &when);
            // The next run finishes the job: every sealed segment compressed.
            compact(&dir);
            assert_eq!(files(&dir, "seg").len(), 1, "{when}");
            assert_eq!(files(&dir, "segz").len(), all.len() - 1, "{when}");
            assert_whole(&dir, &key, &all, &want, &format!("{when}, then a full run"));
        }
    }
}

#[test]
fn kill_9_at_random_moments_never_loses_a_segment() {
    let (tmp, key) = fixture();
    let dir = tmp.path();
    let all = bases(dir);
    let want = argus(["cat", dir.to_str().unwrap(), "-o", "json"]).stdout;
    let mut rng = common::XorShift::new(0xC0FFEE);
    for round in 0..12 {
        let mut child = Command::new(common::bin())
            .args(["compact", dir.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rng.below(40_000)));
        let _ = child.kill();
        let _ = child.wait();
        assert_whole(
            dir,
            &key,
            &all,
            &want,
            &format!("after kill -9 in round {round}"),
        );
    }
    compact(dir);
    assert_eq!(files(dir, "seg").len(), 1);
    assert_whole(dir, &key, &all, &want, "after the final run");
}

/// A replay reads a compressed segment by blocks (only those holding the
/// job's entries): segments of many 4 KiB blocks, a job whose entries sit
/// deep inside them, and the replay after compaction prints exactly what
/// it printed before.
#[test]
fn replay_reads_compressed_segments_by_blocks_and_prints_the_same() {
    let (tmp, _key) = init_log(Some(256 * 1024));
    let dir = tmp.path();
    let d = dir.to_str().unwrap_or("");
    for round in 0..6u64 {
        let mut batch: Vec<Value> = (0..600u64)
            .map(|i| json!({"kind":"job.progress","job_id":format!("noise-{}", i % 7),"agent":"a","payload":{"pct": i % 100, "note": format!("filler {round} {i} abcdefghijklmnopqrstuvwxyz")}}))
            .collect();
        batch[300 + round as usize * 20] = json!({"kind":"tool.call_started","job_id":"deep","step_id":format!("s{round}"),"agent":"coder","payload":{"tool":"bash","call_id":format!("c{round}")}});
        common::append(dir, &batch);
    }
    let before = argus(["replay", d, "deep", "-o", "json"]);
    before.assert_ok();
    argus(["compact", d, "--block-size", "4096"]).assert_ok();
    assert!(files(dir, "segz").len() >= 2, "want compressed segments");
    let after = argus(["replay", d, "deep", "-o", "json"]);
    after.assert_ok();
    assert_eq!(before.stdout, after.stdout, "{}", after.ctx());
    assert_eq!(after.stdout.matches("\"tool.call_started\"").count(), 6);
}
