//! Views on a read-only copy of a log (issue 8 §6): forensics happens on
//! copies, and a copy is often read-only (a mounted image, `chmod -R a-w`,
//! another user's files). Every read command must answer exactly as on the
//! writable original, and must leave the copy (and the machine) unchanged.
//!
//! Root ignores file permissions, so when the tests run as root the reads
//! run as `nobody` through `setpriv`.
use crate::common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs argusctl as a user that cannot write the copy; returns the run and
/// the child's pid (to look for anything it left behind).
fn as_reader(args: &[String]) -> (Run, u32) {
    let mut c = if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    c.args(args)
        .env("USER", "reader")
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn (is setpriv installed?)");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    let run = Run {
        args: args.to_vec(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, pid)
}

/// `chmod -R a+rX,a-w`: readable and traversable by anyone, writable by none.
fn make_read_only(path: &Path) {
    let meta = std::fs::symlink_metadata(path).expect("metadata");
    if meta.is_dir() {
        for e in std::fs::read_dir(path).expect("read_dir") {
            make_read_only(&e.expect("entry").path());
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    }
}

/// Every file under `path` with its size, mode and mtime.
fn listing(path: &Path) -> BTreeMap<PathBuf, (u64, u32, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![path.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).expect("metadata");
        out.insert(p.clone(), (m.len(), m.mode(), m.mtime(), m.mtime_nsec()));
        if m.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir") {
                todo.push(e.expect("entry").path());
            }
        }
    }
    out
}

fn scratch_left_by(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("argus-projections-{pid}-");
    [PathBuf::from("/dev/shm"), std::env::temp_dir()]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The read commands compared between original and copy. Views whose
/// answer depends on the clock (deadlines, SLA of running jobs, worker
/// ages) are left out so the comparison cannot flap.
fn reads(dir: &Path, key: &str) -> Vec<Vec<String>> {
    let d = dir.display().to_string();
    let d = d.as_str();
    vec![
        args(&["projections", "status", d, "-o", "json"]),
        args(&["jobs", d, "-o", "json"]),
        args(&["jobs", d, "--job", "job-7f3a", "-o", "json"]),
        args(&["agents", d, "-o", "json"]),
        args(&["dlq", "list", d, "--all", "-o", "json"]),
        args(&["policy", "list", d, "-o", "json"]),
        args(&["memory", d, "-o", "json"]),
        args(&["incident", d, "-o", "json"]),
        args(&["cat", d, "-o", "json"]),
        args(&["tail", d, "-n", "5", "-o", "json"]),
        args(&["stats", d]),
        args(&["checkpoint", d]),
        args(&["verify", d, "--key", key, "-o", "json"]),
    ]
}

/// A realistic log (the demo session) and its public key, under a
/// directory anyone may traverse.
fn demo_log() -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let orig = tmp.path().join("orig");
    argus(["demo", "--dir", orig.to_str().expect("utf-8 path")]).assert_ok();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(orig.join("argus.json")).expect("argus.json"))
            .expect("argus.json is JSON");
    let key = meta["public_key"].as_str().expect("public_key").to_string();
    (tmp, orig, key)
}

fn check_copy(tmp: &Path, orig: &Path, key: &str, name: &str, keep_projections: bool) {
    let copy = tmp.join(name);
    copy_dir(orig, &copy);
    if !keep_projections {
        std::fs::remove_dir_all(copy.join("projections")).expect("rm projections");
    }
    make_read_only(&copy);
    let before = listing(&copy);
    for (want_args, got_args) in reads(orig, key).into_iter().zip(reads(&copy, key)) {
        let want = argus(&want_args);
        want.assert_ok();
        let (got, pid) = as_reader(&got_args);
        got.assert_ok();
        assert!(!got.stderr.contains("panicked"), "{}", got.ctx());
        let want_out = want.stdout.replace(&orig.display().to_string(), "DIR");
        let got_out = got.stdout.replace(&copy.display().to_string(), "DIR");
        assert_eq!(
            got_out,
            want_out,
            "read-only copy ({name}) answers differently from the original{}",
            got.ctx()
        );
        let is_view = !matches!(
            got_args[0].as_str(),
            "cat" | "tail" | "stats" | "checkpoint" | "verify"
        );
        if is_view {
            assert_eq!(
                got.stderr.matches("is read-only").count(),
                1,
                "a view says once that it rebuilt the projections{}",
                got.ctx()
            );
            assert!(
                got.stderr
                    .contains("projections rebuilt in memory for this run"),
                "{}",
                got.ctx()
            );
            assert!(
                got.stderr.contains(&copy.display().to_string()),
                "{}",
                got.ctx()
            );
        }
        assert_eq!(
            scratch_left_by(pid),
            Vec::<PathBuf>::new(),
            "a temporary store was left behind{}",
            got.ctx()
        );
    }
    assert_eq!(listing(&copy), before, "reading changed the copy ({name})");
}

#[test]
fn views_on_a_read_only_copy_match_the_writable_original() {
    let (tmp, orig, key) = demo_log();
    check_copy(tmp.path(), &orig, &key, "ro-with-projections", true);
}

#[test]
fn views_on_a_read_only_copy_without_projections_match_the_original() {
    let (tmp, orig, key) = demo_log();
    check_copy(tmp.path(), &orig, &key, "ro-without-projections", false);
}

#[test]
fn rebuild_on_a_read_only_copy_says_so_once_and_matches_the_original() {
    let (tmp, orig, _) = demo_log();
    let copy = tmp.path().join("ro");
    copy_dir(&orig, &copy);
    make_read_only(&copy);
    let want = argus([
        "projections",
        "rebuild",
        orig.to_str().expect("utf-8"),
        "-o",
        "json",
    ]);
    want.assert_ok();
    // rebuild opens the projections twice (rebuild, then status).
    let (got, pid) = as_reader(&args(&[
        "projections",
        "rebuild",
        copy.to_str().expect("utf-8"),
        "-o",
        "json",
    ]));
    got.assert_ok();
    assert_eq!(got.stdout, want.stdout, "{}", got.ctx());
    assert_eq!(
        got.stderr.matches("is read-only").count(),
        1,
        "said once per run{}",
        got.ctx()
    );
    assert!(scratch_left_by(pid).is_empty(), "{}", got.ctx());
}

#[test]
fn a_decision_on_a_read_only_copy_fails_cleanly_and_writes_nothing() {
    let (tmp, orig, _) = demo_log();
    let copy = tmp.path().join("ro");
    copy_dir(&orig, &copy);
    make_read_only(&copy);
    let before = listing(&copy);
    let (r, _) = as_reader(&args(&[
        "flag",
        "set",
        copy.to_str().expect("utf-8"),
        "f",
        "--enabled",
        "false",
    ]));
    r.assert_code(1);
    assert!(r.stderr.starts_with("argusctl: "), "{}", r.ctx());
    assert!(!r.stderr.contains("panicked"), "{}", r.ctx());
    assert_eq!(
        listing(&copy),
        before,
        "a refused decision changed the copy"
    );
}
