//! Hostile files in the log directory (issue 8 §3, and the lock part of §6).
//!
//! Whoever can write to a log directory can plant a symlink, a FIFO or a
//! device where Argus expects a file it creates or reads. These tests plant
//! each one and drive the real binary: a link's target must come out
//! untouched, a FIFO or `/dev/zero` must be refused quickly (never a hang,
//! never an endless read), and a writer waiting for the lock must give up
//! after a bound, naming who holds it and what it wanted to do.
use crate::common::*;
use serde_json::json;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STRUCTURE: i32 = 13;
/// A safety net against hangs: every command here finishes in well under a second.
const DEADLINE: Duration = Duration::from_secs(20);
/// Address-space cap for commands that must not read an endless file: far
/// more than argusctl needs, far less than reading `/dev/zero` whole.
const VMEM_KB: u64 = 4 * 1024 * 1024;

/// Runs `prog args` under `ulimit -v VMEM_KB`, kills it if it outlives
/// `deadline` and then fails the test: a hang must be a failure, not a
/// stuck test run.
fn run_bounded(prog: &Path, args: &[&OsStr], stdin: &[u8], deadline: Duration) -> Run {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v {VMEM_KB}; exec \"$@\""))
        .arg("sh")
        .arg(prog)
        .args(args)
        .env("USER", "tester")
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut sin = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = sin.write_all(&input);
    });
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let names: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {} did not finish within {deadline:?} (hang?); killed it\n--- stderr ---\n{}",
                prog.display(),
                names.join(" "),
                err_t.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        args: names,
        code: status.code(),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

fn argus_bounded(args: &[&OsStr]) -> Run {
    run_bounded(Path::new(bin()), args, b"", DEADLINE)
}

fn append_bounded(dir: &Path, input: &[u8]) -> Run {
    run_bounded(
        Path::new(bin()),
        &[OsStr::new("append"), p(dir)],
        input,
        DEADLINE,
    )
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(st.success(), "mkfifo {path:?}");
}

/// A file outside the log that a planted link points at; the test checks
/// it comes out byte for byte as it went in.
fn victim(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let content = format!("precious data in {name}, not Argus's to touch\n").into_bytes();
    std::fs::write(&path, &content).expect("write victim");
    (path, content)
}

fn assert_untouched(path: &Path, content: &[u8], what: &str) {
    let now = std::fs::read(path).unwrap_or_else(|e| panic!("read victim {path:?}: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&now),
        String::from_utf8_lossy(content),
        "{what}: the link's target was modified"
    );
}

fn listing(dir: &Path) -> Vec<(String, u64, bool)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            let m = std::fs::symlink_metadata(e.path()).expect("lstat");
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.is_dir(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The Python verifier's exit code on `dir`, or None if Python is missing.
fn pyverify(dir: &Path, key: &str) -> Option<Run> {
    if !python_ready() {
        eprintln!("skipping the Python half: python3 with blake3 + cryptography not installed");
        return None;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/pyverify/verify.py");
    let py = PathBuf::from("python3");
    // `sh -c exec` resolves python3 on PATH.
    Some(run_bounded(
        &py,
        &[
            script.as_os_str(),
            p(dir),
            OsStr::new("--key"),
            OsStr::new(key),
        ],
        b"",
        DEADLINE,
    ))
}

fn log_with(n: usize, segment_bytes: Option<u64>) -> (tempfile::TempDir, String) {
    let (tmp, key) = init_log(segment_bytes);
    append(tmp.path(), &small_entries(0, n));
    (tmp, key)
}

// ---------------------------------------------------------------------------
// Files Argus creates or truncates: never through a link.

#[test]
fn symlinked_lock_file_is_refused_and_its_target_untouched() {
    let (tmp, _key) = log_with(3, None);
    let dir = tmp.path();
    let outside = tempfile::tempdir().unwrap();
    let (vpath, vcontent) = victim(outside.path(), "victim-lock");
    std::fs::remove_file(dir.join("LOCK")).ok();
    symlink(&vpath, dir.join("LOCK")).unwrap();
    let before = segment_files(dir)
        .iter()
        .map(|s| std::fs::read(s).unwrap())
        .collect::<Vec<_>>();
    let r = append_bounded(dir, b"{\"kind\":\"x.a.b\"}\n");
    assert_eq!(
        r.code,
        Some(1),
        "append must refuse a symlinked LOCK{}",
        r.ctx()
    );
    assert!(
        r.stderr.contains("LOCK") && r.stderr.contains("symbolic link"),
        "the error names LOCK and says it is a link{}",
        r.ctx()
    );
    assert!(r.stdout.is_empty(), "nothing acknowledged{}", r.ctx());
    assert_untouched(&vpath, &vcontent, "LOCK");
    let after = segment_files(dir)
        .iter()
        .map(|s| std::fs::read(s).unwrap())
        .collect::<Vec<_>>();
    assert!(before == after, "no segment byte changed");
}

#[test]
fn symlinked_recovery_pending_tmp_is_not_followed() {
    let (tmp, key) = log_with(5, None);
    let dir = tmp.path();
    // A torn tail: bytes after the last seal that are no valid frame, so
    // the next open cuts them and first writes its pending report.
    let last = segment_files(dir).pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    f.write_all(&[0xAB; 37]).unwrap();
    drop(f);
    let outside = tempfile::tempdir().unwrap();
    let (vpath, vcontent) = victim(outside.path(), "victim-pending");
    symlink(&vpath, dir.join("recovery.pending.json.tmp")).unwrap();

    let r = append_bounded(dir, b"{\"kind\":\"x.after.recovery\"}\n");
    r.assert_ok();
    assert!(
        r.stderr.contains("recovered"),
        "the open recovered the torn tail{}",
        r.ctx()
    );
    assert_untouched(&vpath, &vcontent, "recovery.pending.json.tmp");
    let kinds: Vec<String> = cat_json(dir, &[])
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "log.recovered"),
        "the cut is recorded: {kinds:?}"
    );
    verify(dir, &key, &[]).assert_ok();
}

#[test]
fn symlinked_segment_and_index_tmp_files_are_not_followed_on_roll() {
    let (tmp, key) = init_log(Some(4096));
    let dir = tmp.path();
    let outside = tempfile::tempdir().unwrap();
    let (seg_victim, seg_content) = victim(outside.path(), "victim-seg");
    let (idx_victim, idx_content) = victim(outside.path(), "victim-idx");

    let mut child = cmd([OsStr::new("append"), p(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn append");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut planted = false;
    let mut next_seq = 0u64;
    for i in 0..200u64 {
        // The writer rolls at the start of a commit once the active segment
        // reached --segment-bytes; plant the links just before that commit.
        let active = segment_files(dir).pop().unwrap();
        let active_base: u64 = file_name(&active)[..20].parse().unwrap();
        if !planted && std::fs::metadata(&active).unwrap().len() >= 4096 {
            let segs = dir.join("segments");
            symlink(&seg_victim, segs.join(format!("{next_seq:020}.seg.tmp"))).unwrap();
            symlink(
                &idx_victim,
                segs.join(format!("{active_base:020}.idx.{pid}.tmp")),
            )
            .unwrap();
            planted = true;
        }
        let line = json!({"kind": "x.roll.test", "payload": {"i": i, "pad": "x".repeat(200)}});
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let ack = match lines.next() {
            Some(Ok(l)) => parse_ack(&l),
            other => {
                drop(stdin);
                let err = kill_and_reap(child);
                panic!("append stopped at line {i} ({other:?}); planted={planted}; stderr:\n{err}");
            }
        };
        next_seq = ack.seq + 1;
        if planted && segment_files(dir).len() >= 2 {
            break;
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "append: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(planted, "the active segment never reached 4096 bytes");
    assert!(segment_files(dir).len() >= 2, "the log rolled");
    assert_untouched(&seg_victim, &seg_content, "NAME.seg.tmp");
    assert_untouched(&idx_victim, &idx_content, "NAME.idx.PID.tmp");
    for s in segment_files(dir) {
        let m = std::fs::symlink_metadata(&s).unwrap();
        assert!(m.is_file(), "{s:?} is a regular file, not a link");
    }
    verify(dir, &key, &[]).assert_ok();
}

// ---------------------------------------------------------------------------
// Files Argus reads: regular files only, opened without following a link.

#[test]
fn fifo_segment_is_structure_for_verify_and_an_error_for_readers_without_hanging() {
    let (tmp, key) = log_with(4, None);
    let dir = tmp.path();
    let fifo = dir.join("segments").join(format!("{:020}.seg", 99));
    mkfifo(&fifo);
    let r = argus_bounded(&[
        OsStr::new("verify"),
        p(dir),
        OsStr::new("--key"),
        OsStr::new(&key),
    ]);
    r.assert_code(STRUCTURE);
    assert!(
        r.all().contains("00000000000000000099.seg") && r.all().contains("FIFO"),
        "verify names the file and what it is{}",
        r.ctx()
    );
    for c in ["cat", "stats", "tail"] {
        let r = argus_bounded(&[OsStr::new(c), p(dir)]);
        assert_eq!(r.code, Some(1), "{c} must refuse{}", r.ctx());
        assert!(
            r.stderr.contains("00000000000000000099.seg") && r.stderr.contains("FIFO"),
            "{c}: the error names the file and what it is{}",
            r.ctx()
        );
    }
    let r = append_bounded(dir, b"{\"kind\":\"x.a.b\"}\n");
    assert_eq!(r.code, Some(1), "append must refuse{}", r.ctx());
    assert!(r.stderr.contains("FIFO"), "{}", r.ctx());
    if let Some(py) = pyverify(dir, &key) {
        assert_eq!(py.code, Some(STRUCTURE), "pyverify agrees{}", py.ctx());
    }
}

#[test]
fn segment_symlink_to_dev_zero_is_refused_without_reading_it() {
    let (tmp, key) = log_with(4, None);
    let dir = tmp.path();
    let link = dir.join("segments").join(format!("{:020}.seg", 99));
    symlink("/dev/zero", &link).unwrap();
    let r = argus_bounded(&[
        OsStr::new("verify"),
        p(dir),
        OsStr::new("--key"),
        OsStr::new(&key),
    ]);
    r.assert_code(STRUCTURE);
    assert!(
        r.all().contains("00000000000000000099.seg") && r.all().contains("symbolic link"),
        "verify names the file and what it is{}",
        r.ctx()
    );
    for c in ["cat", "stats"] {
        let r = argus_bounded(&[OsStr::new(c), p(dir)]);
        assert_eq!(r.code, Some(1), "{c} must refuse, not abort{}", r.ctx());
        assert!(
            r.stderr.contains("00000000000000000099.seg") && r.stderr.contains("symbolic link"),
            "{c}: the error names the file{}",
            r.ctx()
        );
    }
    // The last segment is the link: recovery must refuse it too.
    let r = append_bounded(dir, b"{\"kind\":\"x.a.b\"}\n");
    assert_eq!(r.code, Some(1), "append must refuse{}", r.ctx());
    if let Some(py) = pyverify(dir, &key) {
        assert_eq!(py.code, Some(STRUCTURE), "pyverify agrees{}", py.ctx());
    }
}

#[test]
fn symlinked_segments_directory_is_refused() {
    let (tmp, key) = log_with(4, None);
    let dir = tmp.path();
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("segments");
    std::fs::rename(dir.join("segments"), &moved).unwrap();
    symlink(&moved, dir.join("segments")).unwrap();
    let before = listing(&moved);

    let r = argus_bounded(&[
        OsStr::new("verify"),
        p(dir),
        OsStr::new("--key"),
        OsStr::new(&key),
    ]);
    r.assert_code(STRUCTURE);
    assert!(r.all().contains("symbolic link"), "{}", r.ctx());
    for c in ["cat", "stats"] {
        let r = argus_bounded(&[OsStr::new(c), p(dir)]);
        assert_eq!(r.code, Some(1), "{c} must refuse{}", r.ctx());
        assert!(
            r.stderr.contains("segments") && r.stderr.contains("symbolic link"),
            "{c}: the error names segments/ and says it is a link{}",
            r.ctx()
        );
    }
    let r = append_bounded(dir, b"{\"kind\":\"x.a.b\"}\n");
    assert_eq!(r.code, Some(1), "append must refuse{}", r.ctx());
    assert!(r.stdout.is_empty(), "{}", r.ctx());
    assert_eq!(listing(&moved), before, "nothing written through the link");
    if let Some(py) = pyverify(dir, &key) {
        assert_eq!(py.code, Some(STRUCTURE), "pyverify agrees{}", py.ctx());
    }
}

#[test]
fn fifo_metadata_file_is_refused_without_hanging() {
    let (tmp, _key) = log_with(2, None);
    let dir = tmp.path();
    std::fs::remove_file(dir.join("argus.json")).unwrap();
    mkfifo(&dir.join("argus.json"));
    for c in ["cat", "stats"] {
        let r = argus_bounded(&[OsStr::new(c), p(dir)]);
        assert_ne!(r.code, Some(0), "{c}{}", r.ctx());
        assert!(
            r.stderr.contains("argus.json") && r.stderr.contains("FIFO"),
            "{c}: names the file and what it is{}",
            r.ctx()
        );
    }
    let r = append_bounded(dir, b"{\"kind\":\"x.a.b\"}\n");
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(r.stderr.contains("FIFO"), "{}", r.ctx());
}

#[test]
fn symlinked_signing_key_is_refused() {
    let (tmp, _key) = log_with(2, None);
    let dir = tmp.path();
    let outside = tempfile::tempdir().unwrap();
    let real = outside.path().join("real.key");
    std::fs::rename(dir.join("keys/signing.key"), &real).unwrap();
    symlink(&real, dir.join("keys/signing.key")).unwrap();
    let r = append_bounded(dir, b"{\"kind\":\"x.a.b\"}\n");
    assert_eq!(r.code, Some(1), "{}", r.ctx());
    assert!(
        r.stderr.contains("signing.key") && r.stderr.contains("symbolic link"),
        "{}",
        r.ctx()
    );

    // init --key-file: the key may live anywhere, but not behind a link.
    let link = outside.path().join("link.key");
    symlink(&real, &link).unwrap();
    let fresh = outside.path().join("fresh-log");
    let r = argus_bounded(&[
        OsStr::new("init"),
        p(&fresh),
        OsStr::new("--key-file"),
        p(&link),
    ]);
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(
        r.stderr.contains("link.key") && r.stderr.contains("symbolic link"),
        "{}",
        r.ctx()
    );
    // The real file itself is fine.
    let other = outside.path().join("other-log");
    argus_bounded(&[
        OsStr::new("init"),
        p(&other),
        OsStr::new("--key-file"),
        p(&real),
    ])
    .assert_ok();
}

#[test]
fn symlinked_keys_and_projections_directories_are_refused() {
    let (tmp, _key) = log_with(2, None);
    let dir = tmp.path();
    let outside = tempfile::tempdir().unwrap();

    // keys/ behind a link: the key inside is genuine, the link is not.
    let keys = outside.path().join("keys");
    std::fs::rename(dir.join("keys"), &keys).unwrap();
    symlink(&keys, dir.join("keys")).unwrap();
    let r = append_bounded(dir, b"{\"kind\":\"x.a.b\"}\n");
    assert_eq!(r.code, Some(1), "{}", r.ctx());
    assert!(
        r.stderr.contains("keys") && r.stderr.contains("symbolic link"),
        "the error names keys/ and says it is a link{}",
        r.ctx()
    );
    assert!(r.stdout.is_empty(), "{}", r.ctx());
    std::fs::remove_file(dir.join("keys")).unwrap();
    std::fs::rename(&keys, dir.join("keys")).unwrap();

    // projections/ behind a link: sled must not open (or rebuild, i.e.
    // delete) whatever the link points at.
    let proj = outside.path().join("projections");
    std::fs::create_dir(&proj).unwrap();
    std::fs::write(proj.join("keep.txt"), "not a sled store\n").unwrap();
    let before = listing(&proj);
    std::fs::remove_dir_all(dir.join("projections")).ok();
    symlink(&proj, dir.join("projections")).unwrap();
    let r = argus_bounded(&[OsStr::new("jobs"), p(dir)]);
    assert_eq!(r.code, Some(1), "{}", r.ctx());
    assert!(
        r.stderr.contains("projections") && r.stderr.contains("symbolic link"),
        "the error names projections/ and says it is a link{}",
        r.ctx()
    );
    assert_eq!(listing(&proj), before, "nothing written through the link");
}

// ---------------------------------------------------------------------------
// init into a directory that holds something else.

#[test]
fn init_refuses_a_non_empty_directory_that_is_not_a_log_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("etc-like");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("passwd"), "root:x:0:0\n").unwrap();
    std::fs::write(dir.join("sub/hosts"), "127.0.0.1 localhost\n").unwrap();
    let before = listing(&dir);
    let r = argus_bounded(&[OsStr::new("init"), p(&dir)]);
    r.assert_code(2);
    assert!(
        r.stderr
            .contains("is not empty and is not an Argus log; refusing to create a log in it"),
        "{}",
        r.ctx()
    );
    assert!(r.stdout.is_empty(), "no key printed{}", r.ctx());
    assert_eq!(listing(&dir), before, "the directory is unchanged");
    assert_eq!(
        listing(&dir.join("sub")),
        vec![("hosts".to_string(), 20, false)]
    );

    // A FIFO or a file where the directory should be is named as such, and
    // left alone (a FIFO is never opened: that would block).
    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    for (path, kind) in [(&fifo, "a FIFO"), (&file, "a regular file")] {
        let r = argus_bounded(&[OsStr::new("init"), p(path)]);
        r.assert_code(1);
        assert!(
            r.stderr.contains(&format!("is {kind}, not a directory")),
            "{}",
            r.ctx()
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    // Under a file: the OS's reason once, not once per layer of context.
    let r = argus_bounded(&[OsStr::new("init"), p(&file.join("sub"))]);
    r.assert_code(1);
    assert_eq!(
        r.stderr.matches("os error 20").count(),
        1,
        "the cause printed once: {}",
        r.ctx()
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    // An empty existing directory and a new path are fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    init_at(&empty, None);
    init_at(&tmp.path().join("new/deeper"), None);
}

// ---------------------------------------------------------------------------
// Bounded lock waits.

/// An `argusctl append` that holds the writer lock until its stdin closes.
/// Its ack stream stays open too: append stops (and lets the lock go) as
/// soon as nobody reads its acks.
struct Holder {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    _acks: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Holder {
    fn start(dir: &Path) -> Self {
        let mut child = cmd([OsStr::new("append"), p(dir)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn holder");
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        stdin.write_all(b"{\"kind\":\"x.holder\"}\n").unwrap();
        stdin.flush().unwrap();
        // An acknowledged entry means the holder certainly has the lock.
        match lines.next() {
            Some(Ok(l)) => {
                parse_ack(&l);
            }
            other => panic!("holder did not ack: {other:?}"),
        }
        Self {
            child,
            stdin: Some(stdin),
            _acks: lines,
        }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn release(mut self) {
        drop(self.stdin.take());
        let st = self.child.wait().expect("wait holder");
        assert!(st.success(), "holder exited with {st:?}");
    }
}

#[test]
fn waiting_writer_times_out_naming_the_holder_and_its_own_operation() {
    let (tmp, _key) = log_with(2, None);
    let dir = tmp.path();
    let holder = Holder::start(dir);
    let pid = holder.pid();

    let start = Instant::now();
    let r = run_bounded(
        Path::new(bin()),
        &[
            OsStr::new("--lock-timeout"),
            OsStr::new("1"),
            OsStr::new("append"),
            p(dir),
        ],
        b"{\"kind\":\"x.second\"}\n",
        DEADLINE,
    );
    let took = start.elapsed();
    assert_eq!(r.code, Some(1), "{}", r.ctx());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "waited {took:?}, not about 1 s{}",
        r.ctx()
    );
    assert!(
        r.stderr.contains("timed out")
            && r.stderr.contains("to append")
            && r.stderr.contains(&format!("pid {pid}")),
        "the error names the wait, the operation and the holder's pid{}",
        r.ctx()
    );
    assert!(r.stdout.is_empty(), "{}", r.ctx());

    // A decision command names its own operation, and 0 means no wait.
    let start = Instant::now();
    let r = argus_bounded(&[
        OsStr::new("--lock-timeout"),
        OsStr::new("0"),
        OsStr::new("approvals"),
        OsStr::new("approve"),
        p(dir),
        OsStr::new("janus-nope"),
        OsStr::new("--reason"),
        OsStr::new("looked fine"),
    ]);
    assert!(start.elapsed() < Duration::from_secs(3), "0 fails at once");
    assert_eq!(r.code, Some(1), "{}", r.ctx());
    assert!(
        r.stderr.contains("to approve") && r.stderr.contains(&format!("pid {pid}")),
        "{}",
        r.ctx()
    );
    assert!(
        !r.stderr.contains("for append"),
        "an approval is not an append{}",
        r.ctx()
    );
    holder.release();
}

#[test]
fn waiting_writer_succeeds_once_the_holder_releases() {
    let (tmp, key) = log_with(2, None);
    let dir = tmp.path();
    let holder = Holder::start(dir);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        holder.release();
    });
    let start = Instant::now();
    let r = run_bounded(
        Path::new(bin()),
        &[
            OsStr::new("--lock-timeout"),
            OsStr::new("5"),
            OsStr::new("append"),
            p(dir),
        ],
        b"{\"kind\":\"x.waited\"}\n",
        DEADLINE,
    );
    let took = start.elapsed();
    releaser.join().expect("releaser");
    r.assert_ok();
    let acks = acks_of(&r);
    assert_eq!(acks.len(), 1, "{}", r.ctx());
    assert_eq!(acks[0].seq, 3, "after the holder's entry{}", r.ctx());
    assert!(
        took >= Duration::from_millis(400),
        "it waited for the holder ({took:?}){}",
        r.ctx()
    );
    verify(dir, &key, &[]).assert_ok();
}

#[test]
fn lock_holder_text_is_capped_and_stripped_of_control_characters() {
    let (tmp, _key) = log_with(1, None);
    let dir = tmp.path();
    // The holder writes its own line; a hostile one can be put there by
    // whoever writes to the directory. Hold the lock with flock(1) on a
    // LOCK whose text is long and full of escape sequences.
    let lock = dir.join("LOCK");
    let mut text = b"pid 4242 (\x1b[2J\x1b]0;owned\x07evil\r\n".to_vec();
    text.extend(std::iter::repeat_n(b'A', 100_000));
    std::fs::write(&lock, &text).unwrap();
    let mut flock = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock(1)");
    std::thread::sleep(Duration::from_millis(300));
    let r = run_bounded(
        Path::new(bin()),
        &[
            OsStr::new("--lock-timeout"),
            OsStr::new("0.2"),
            OsStr::new("append"),
            p(dir),
        ],
        b"{\"kind\":\"x.a.b\"}\n",
        DEADLINE,
    );
    let _ = flock.kill();
    let _ = flock.wait();
    assert_eq!(r.code, Some(1), "{}", r.ctx());
    assert!(r.stderr.contains("pid 4242"), "{}", r.ctx());
    assert!(
        !r.stderr.contains('\x1b') && !r.stderr.contains('\x07') && !r.stderr.contains('\r'),
        "control characters are stripped{}",
        r.ctx()
    );
    assert!(
        r.stderr.len() < 1500,
        "the holder text is capped{}",
        r.ctx()
    );
}
