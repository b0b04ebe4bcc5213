//! `argusctl append` parses on several threads: a large input is cut into
//! blocks parsed out of order, and still the first bad line stops the run
//! naming its line and field, with exactly the lines before it committed in
//! input order and nothing of it or after it written.
use crate::common::*;
use serde_json::json;
use std::ffi::OsStr;

/// Valid line `i`: ~150 bytes, keys in a producer's order, so 10,000 of
/// them make many blocks large enough for the parse workers.
fn good(i: u64) -> String {
    format!(
        r#"{{"kind":"tool.call_completed","job_id":"job-{}","step_id":"s-{i}","agent":"coder","payload":{{"tool":"bash","call_id":"call-{i}","duration_ms":{},"exit_code":0,"note":"caf\u00e9 {i}"}}}}"#,
        i % 7,
        i * 3
    )
}

#[test]
fn first_bad_line_after_ten_thousand_stops_the_parallel_parse_naming_it() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    let mut input = Vec::new();
    let mut lines = 0u64;
    let mut ids = Vec::new();
    for i in 0..10_000u64 {
        input.extend_from_slice(good(i).as_bytes());
        // Some CRLF endings and blank lines: they count as lines too.
        input.extend_from_slice(if i % 1000 == 999 { b"\r\n" } else { b"\n" });
        lines += 1;
        ids.push(i);
        if i % 2500 == 1234 {
            input.extend_from_slice(b"   \n");
            lines += 1;
        }
    }
    let bad_line = lines + 1;
    input.extend_from_slice(
        br#"{"kind":"tool.call_completed","job_id":"job-x","payload":{"tool":"","call_id":"bad"}}"#,
    );
    input.push(b'\n');
    for i in 20_000..25_000u64 {
        input.extend_from_slice(good(i).as_bytes());
        input.push(b'\n');
    }

    let r = argus_stdin([OsStr::new("append"), p(dir)], &input);
    r.assert_code(2);
    let want = format!("stdin line {bad_line}: field `payload.tool`");
    assert!(r.stderr.contains(&want), "stderr names {want:?}{}", r.ctx());
    assert!(
        r.stderr.contains("nothing of this line was written"),
        "{}",
        r.ctx()
    );
    let acks = acks_of(&r);
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (0..10_000).collect::<Vec<_>>(),
        "every line before the bad one acknowledged, in order{}",
        r.ctx()
    );
    let out = cat_json(dir, &[]);
    assert_eq!(out.len(), 10_000, "exactly the lines before the bad one");
    for ((v, a), i) in out.iter().zip(&acks).zip(&ids) {
        assert_eq!(v["hash"].as_str(), Some(a.hash.as_str()));
        assert_eq!(v["step_id"], json!(format!("s-{i}")), "input order kept");
    }
    let (vr, v) = verify_json(dir, &key, &[]);
    vr.assert_ok();
    assert_eq!(
        v["warnings"].as_array().map(Vec::len),
        Some(0),
        "{}",
        vr.ctx()
    );
}

/// Seal frames in every segment of the log at `dir`: one per group commit,
/// plus the new log's seal of the empty tree and one per segment roll.
fn seal_count(dir: &std::path::Path) -> usize {
    let mut seals = 0;
    for e in std::fs::read_dir(dir.join("segments")).unwrap() {
        let path = e.unwrap().path();
        if path.extension() != Some(OsStr::new("seg")) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let (_, mut at) = log_format::SegmentHeader::decode(&bytes).unwrap();
        while at < bytes.len() {
            let f = log_format::frame::decode_frame(&bytes[at..], at as u64).unwrap();
            if f.frame_type == log_format::FrameType::Seal {
                seals += 1;
            }
            at += f.total_len;
        }
    }
    seals
}

/// The commit runs on the thread that reads stdin: while it waits on
/// fdatasync, or on a full stdout pipe because the producer is slow to read
/// its acks, lines pile up in the stdin pipe and are read together as the
/// next group. 2,000 lines written at once, their acks read back slowly in
/// small pieces: every ack is there, in order, and the lines shared far
/// fewer seals (group commits) than there are lines.
#[test]
fn a_slow_ack_reader_loses_no_ack_and_lines_sent_together_share_seals() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    const LINES: u64 = 2000;
    let mut input = Vec::new();
    for i in 0..LINES {
        input.extend_from_slice(good(i).as_bytes());
        input.push(b'\n');
    }
    let mut child = cmd([OsStr::new("append"), p(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let producer = std::thread::spawn(move || stdin.write_all(&input));
    let mut stdout = child.stdout.take().unwrap();
    let mut acks = Vec::new();
    let mut piece = [0u8; 512];
    loop {
        let n = stdout.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        acks.extend_from_slice(&piece[..n]);
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    producer.join().unwrap().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "append failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seqs: Vec<u64> = String::from_utf8(acks)
        .unwrap()
        .lines()
        .map(|l| parse_ack(l).seq)
        .collect();
    assert_eq!(seqs, (0..LINES).collect::<Vec<_>>(), "every ack, in order");
    let seals = seal_count(dir);
    assert!(
        seals <= LINES as usize / 10,
        "{seals} seals for {LINES} lines written at once: lines are not grouped"
    );
    let v = argus([
        OsStr::new("verify"),
        p(dir),
        OsStr::new("-o"),
        OsStr::new("json"),
    ]);
    v.assert_ok();
    assert_eq!(v.json()["entries"].as_u64(), Some(LINES), "{}", v.ctx());
}

/// A client that writes every line before it reads a single ack (what a
/// naive agent, and roundtrip:: tests, do): 20,000 lines, ~3 MB of input
/// and ~1.7 MB of acks, both far past what a pipe holds. append must keep
/// reading stdin while its acks wait for the reader; one thread that blocks
/// writing acks to a full stdout while the client blocks writing a full
/// stdin hangs both. A watchdog kills the child after 60 s, so a deadlock
/// fails this test instead of hanging the test binary.
#[test]
fn a_client_that_writes_every_line_before_reading_any_ack_is_not_deadlocked() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;
    const LINES: u64 = 20_000;
    const DEADLINE: Duration = Duration::from_secs(60);
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    let mut input = Vec::new();
    for i in 0..LINES {
        input.extend_from_slice(good(i).as_bytes());
        input.push(b'\n');
    }
    assert!(input.len() > 1 << 20, "input well past a pipe's 64 KiB");
    let mut child = cmd([OsStr::new("append"), p(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (wrote, written) = mpsc::channel();
    let writer = std::thread::spawn(move || {
        let r = stdin.write_all(&input);
        drop(stdin);
        let _ = wrote.send(r);
    });
    // Not one ack is read until every line is written.
    let r = written.recv_timeout(DEADLINE);
    let (got, acks_read) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let r = stdout.read_to_end(&mut acks).map(|_| acks);
        let _ = got.send(r);
    });
    let acks = r.ok().and_then(|_| acks_read.recv_timeout(DEADLINE).ok());
    let Some(acks) = acks else {
        let _ = child.kill();
        let _ = child.wait();
        let _ = writer.join();
        let _ = reader.join();
        panic!(
            "deadlock: append did not take all {LINES} lines and return their acks within {DEADLINE:?} \
             while the client wrote every line before reading any ack (killed it)"
        );
    };
    writer.join().unwrap();
    reader.join().unwrap();
    let acks = acks.expect("read acks");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "append failed: {status}; stderr:\n{err}");
    let acks: Vec<Ack> = String::from_utf8(acks)
        .unwrap()
        .lines()
        .map(parse_ack)
        .collect();
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (0..LINES).collect::<Vec<_>>(),
        "every ack, in order"
    );
    let stored = cat_json(dir, &[]);
    assert_eq!(stored.len(), LINES as usize);
    for (v, a) in stored.iter().zip(&acks) {
        assert_eq!(v["hash"].as_str(), Some(a.hash.as_str()), "seq {}", a.seq);
    }
    verify(dir, &key, &[]).assert_ok();
}

/// Acks to a regular file (`append DIR > acks.jsonl`) are written as they
/// come, with a blocking write that cannot wait on the producer: every ack
/// is there, in order, when append exits.
#[test]
fn acks_to_a_regular_file_are_all_written_in_order() {
    use std::process::Stdio;
    const LINES: u64 = 5_000;
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let out_dir = tempfile::tempdir().unwrap();
    let ack_path = out_dir.path().join("acks.jsonl");
    let mut input = Vec::new();
    for i in 0..LINES {
        input.extend_from_slice(good(i).as_bytes());
        input.push(b'\n');
    }
    let in_path = out_dir.path().join("in.jsonl");
    std::fs::write(&in_path, &input).unwrap();
    let out = cmd([OsStr::new("append"), p(dir)])
        .stdin(std::fs::File::open(&in_path).unwrap())
        .stdout(std::fs::File::create(&ack_path).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "append failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acks: Vec<Ack> = std::fs::read_to_string(&ack_path)
        .unwrap()
        .lines()
        .map(parse_ack)
        .collect();
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (0..LINES).collect::<Vec<_>>(),
        "every ack, in order"
    );
    let stored = cat_json(dir, &[]);
    for (v, a) in stored.iter().zip(&acks) {
        assert_eq!(v["hash"].as_str(), Some(a.hash.as_str()), "seq {}", a.seq);
    }
}
