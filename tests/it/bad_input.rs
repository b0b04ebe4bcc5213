//! Bad input and misuse: `append` rejects a bad line with exit 2, naming
//! the line and the field, keeps every line before it and writes nothing
//! of it; commands refuse directories that are not logs, unsafe keys and
//! a second writer.
use crate::common::*;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

/// Hash of every file under `segments/`, to prove nothing was written.
fn segments_fingerprint(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A log holding 3 entries; returns it with its key.
fn log_with_three() -> (tempfile::TempDir, String) {
    let (tmp, key) = init_log(None);
    append(tmp.path(), &small_entries(0, 3));
    (tmp, key)
}

/// Feeds `good_before` good lines, then `bad`, then two good lines, to
/// `append` on a log holding 3 entries. Expects exit 2, a message naming
/// `line N` and every word in `words`, the good lines before it committed
/// and acknowledged, and nothing of the bad line or later lines written.
fn rejects_line(good_before: usize, bad: &[u8], line: u64, words: &[&str]) {
    let (tmp, key) = log_with_three();
    let dir = tmp.path();
    let before = to_lines(&small_entries(3, good_before));
    let after = to_lines(&small_entries(100, 2));
    let mut input = before.clone();
    input.extend_from_slice(bad);
    input.push(b'\n');
    input.extend_from_slice(&after);

    let r = argus_stdin([OsStr::new("append"), p(dir)], &input);
    r.assert_code(2);
    assert!(
        r.stderr.contains(&format!("line {line}:")) || r.stderr.contains(&format!("line {line} ")),
        "stderr must name line {line}{}",
        r.ctx()
    );
    for w in words {
        assert!(r.stderr.contains(w), "stderr must mention {w:?}{}", r.ctx());
    }
    assert!(
        !r.stderr.contains("panicked"),
        "no panic on bad input{}",
        r.ctx()
    );
    let acks = acks_of(&r);
    let want: Vec<u64> = (3..3 + good_before as u64).collect();
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        want,
        "lines before the bad one are acknowledged{}",
        r.ctx()
    );
    let out = cat_json(dir, &[]);
    assert_eq!(
        out.len(),
        3 + good_before,
        "only the lines before the bad one are in the log: {out:?}"
    );
    for (a, v) in acks.iter().zip(&out[3..]) {
        assert_eq!(v["hash"].as_str(), Some(a.hash.as_str()));
        assert_eq!(v["job_id"], json!(format!("job-{}", a.seq % 3)));
    }
    assert_eq!(stats(dir)["entries"].as_u64(), Some(3 + good_before as u64));
    let (vr, v) = verify_json(dir, &key, &[]);
    vr.assert_ok();
    assert_eq!(
        v["warnings"].as_array().map(Vec::len),
        Some(0),
        "nothing half-written{}",
        vr.ctx()
    );
}

#[test]
fn malformed_json_line_is_rejected_naming_the_line() {
    rejects_line(
        2,
        br#"{"kind": "x.a.b", "payload": {"#,
        3,
        &["malformed JSON"],
    );
}

#[test]
fn non_object_json_line_is_rejected() {
    rejects_line(1, br#"["kind", "a.b"]"#, 2, &["object"]);
}

#[test]
fn unknown_field_is_rejected_naming_the_field() {
    rejects_line(
        2,
        br#"{"kind": "x.a.b", "jobid": "j1"}"#,
        3,
        &["jobid", "unknown field"],
    );
}

#[test]
fn job_id_of_wrong_type_is_rejected_naming_the_field() {
    rejects_line(
        2,
        br#"{"kind": "x.a.b", "job_id": 5}"#,
        3,
        &["job_id", "string"],
    );
}

#[test]
fn kind_of_wrong_type_is_rejected_naming_the_field() {
    rejects_line(0, br#"{"kind": ["a"]}"#, 1, &["kind"]);
}

#[test]
fn missing_kind_is_rejected_naming_the_field() {
    rejects_line(1, br#"{"job_id": "j1"}"#, 2, &["kind", "required"]);
}

#[test]
fn kind_grammar_violations_are_rejected_naming_the_field() {
    for bad in [
        "Tool.Call",
        "tool..call",
        ".tool",
        "tool.",
        "tool-call",
        "",
        "tool call",
    ] {
        let line = json!({"kind": bad, "job_id": "j"}).to_string();
        rejects_line(2, line.as_bytes(), 3, &["kind"]);
    }
}

#[test]
fn empty_optional_field_is_rejected_naming_the_field() {
    rejects_line(2, br#"{"kind": "x.a.b", "agent": ""}"#, 3, &["agent"]);
}

#[test]
fn oversized_field_is_rejected_naming_the_field() {
    let line = json!({"kind": "x.a.b", "step_id": "s".repeat(1025)}).to_string();
    rejects_line(2, line.as_bytes(), 3, &["step_id", "1024"]);
}

#[test]
fn parent_that_is_not_earlier_is_rejected_naming_the_field() {
    // The log holds 3 entries and 2 good lines precede: this line would be seq 5.
    rejects_line(2, br#"{"kind": "x.a.b", "parent": 5}"#, 3, &["parent"]);
    rejects_line(2, br#"{"kind": "x.a.b", "parent": 999}"#, 3, &["parent"]);
    rejects_line(
        2,
        br#"{"kind": "x.a.b", "parent": 18446744073709551615}"#,
        3,
        &["parent"],
    );
}

#[test]
fn parent_of_wrong_type_is_rejected_naming_the_field() {
    rejects_line(1, br#"{"kind": "x.a.b", "parent": -1}"#, 2, &["parent"]);
    rejects_line(1, br#"{"kind": "x.a.b", "parent": "0"}"#, 2, &["parent"]);
    rejects_line(1, br#"{"kind": "x.a.b", "parent": 1.5}"#, 2, &["parent"]);
}

#[test]
fn earlier_parent_is_accepted() {
    let (tmp, _key) = log_with_three();
    let r = argus_stdin(
        [OsStr::new("append"), p(tmp.path())],
        b"{\"kind\":\"x.a.b\",\"parent\":2}\n{\"kind\":\"x.a.b\",\"parent\":3}\n",
    );
    r.assert_ok();
    let out = cat_json(tmp.path(), &["--from", "3"]);
    assert_eq!(out[0]["parent"], 2, "{}", r.ctx());
    assert_eq!(
        out[1]["parent"],
        3,
        "a parent committed earlier in the same run{}",
        r.ctx()
    );
}

#[test]
fn non_utf8_line_is_rejected_naming_the_line() {
    rejects_line(
        2,
        b"{\"kind\": \"a.b\", \"payload\": \"\xff\xfe\"}",
        3,
        &["UTF-8"],
    );
}

#[test]
fn payload_over_the_limit_is_rejected_naming_the_field() {
    // 5 MiB: under the 8 MiB line limit, over the 4 MiB payload limit.
    let line = json!({"kind": "x.a.b", "payload": "x".repeat(5 << 20)}).to_string();
    rejects_line(1, line.as_bytes(), 2, &["payload", "limit"]);
}

#[test]
fn hundred_mib_line_is_rejected_without_reading_it_all_and_log_is_unchanged() {
    let (tmp, _key) = log_with_three();
    let dir = tmp.path();
    let stats_before = stats(dir);
    let files_before = segments_fingerprint(dir);

    let mut child = cmd([OsStr::new("append"), p(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn append");
    let mut stdin = child.stdin.take().unwrap();
    const TOTAL: usize = 100 << 20;
    let feeder = std::thread::spawn(move || -> usize {
        let mut sent = 0usize;
        let mut go = |b: &[u8]| -> bool {
            match stdin.write_all(b) {
                Ok(()) => {
                    sent += b.len();
                    true
                }
                Err(_) => false,
            }
        };
        if !go(br#"{"kind": "x.a.b", "payload": ""#) {
            return sent;
        }
        let chunk = vec![b'x'; 1 << 16];
        let mut body = 0;
        while body < TOTAL {
            if !go(&chunk) {
                return sent;
            }
            body += chunk.len();
        }
        go(b"\"}\n");
        sent
    });
    let out = child.wait_with_output().expect("wait append");
    let sent = feeder.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains("line 1") && stderr.contains("limit") && stderr.contains("MiB"),
        "stderr must name the line and the limit:\n{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing acknowledged: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        sent < TOTAL,
        "append must stop reading an over-long line rather than buffer all of it (it consumed {sent} bytes)"
    );
    assert_eq!(stats(dir), stats_before, "stats unchanged");
    assert!(
        segments_fingerprint(dir) == files_before,
        "segment files unchanged"
    );
}

#[test]
fn blank_lines_are_ignored_but_counted() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    let good = r#"{"kind":"x.a.b","job_id":"j1"}"#;
    let input = format!("\n   \n{good}\n\t\n{good}\r\n\r\n\n{good}");
    // The last line has no trailing newline and must still be committed.
    let r = argus_stdin([OsStr::new("append"), p(dir)], input.as_bytes());
    r.assert_ok();
    assert_eq!(acks_of(&r).len(), 3, "three entries{}", r.ctx());
    assert_eq!(cat_json(dir, &[]).len(), 3);

    // Line numbers are physical lines, blank ones included.
    let r = argus_stdin(
        [OsStr::new("append"), p(dir)],
        format!("\n\n{good}\n   \n{{\"kind\": 7}}\n").as_bytes(),
    );
    r.assert_code(2);
    assert!(r.stderr.contains("line 5"), "{}", r.ctx());
    assert_eq!(acks_of(&r).len(), 1, "{}", r.ctx());
    assert_eq!(cat_json(dir, &[]).len(), 4);
}

#[test]
fn directory_that_is_not_a_log_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let junk = tmp.path().join("junk");
    std::fs::create_dir_all(junk.join("segments")).unwrap();
    std::fs::write(junk.join("argus.json"), "{ not json").unwrap();
    let missing = tmp.path().join("does-not-exist");
    for dir in [&empty, &junk, &missing] {
        for cmdname in ["cat", "verify", "stats", "tail", "checkpoint"] {
            let r = argus([OsStr::new(cmdname), p(dir)]);
            assert_eq!(
                r.code,
                Some(2),
                "{cmdname} on a non-log must fail with a usage error{}",
                r.ctx()
            );
            assert!(
                r.stderr.contains("not an Argus log"),
                "{cmdname}: message must say it is not a log{}",
                r.ctx()
            );
            assert!(r.stdout.is_empty(), "{cmdname}: no output{}", r.ctx());
        }
        let r = argus_stdin([OsStr::new("append"), p(dir)], b"{\"kind\":\"x.a.b\"}\n");
        assert_eq!(r.code, Some(2), "append into a non-log{}", r.ctx());
        assert!(
            r.stderr.contains("not an Argus log"),
            "append: message must say it is not a log{}",
            r.ctx()
        );
        assert!(
            r.stdout.is_empty(),
            "append: nothing acknowledged{}",
            r.ctx()
        );
    }
    // verify's exit code for "not a log" is 2 (SPEC §7.3).
    let r = argus([OsStr::new("verify"), p(&empty)]);
    r.assert_code(2);
    // Nothing was created in the empty directory.
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn init_on_an_existing_log_refuses_and_changes_nothing() {
    let (tmp, key) = log_with_three();
    let dir = tmp.path();
    let meta = std::fs::read(dir.join("argus.json")).unwrap();
    let sk = std::fs::read(dir.join("keys/signing.key")).unwrap();
    let files = segments_fingerprint(dir);
    let r = argus([OsStr::new("init"), p(dir)]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("already holds an Argus log"),
        "message{}",
        r.ctx()
    );
    assert!(r.stdout.is_empty(), "no new key printed{}", r.ctx());
    assert_eq!(std::fs::read(dir.join("argus.json")).unwrap(), meta);
    assert_eq!(std::fs::read(dir.join("keys/signing.key")).unwrap(), sk);
    assert!(segments_fingerprint(dir) == files);
    verify(dir, &key, &[]).assert_ok();
}

#[test]
fn init_with_too_small_segments_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let r = argus([
        OsStr::new("init"),
        p(&dir),
        OsStr::new("--segment-bytes"),
        OsStr::new("4095"),
    ]);
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(
        r.stderr.contains("4096"),
        "message names the minimum{}",
        r.ctx()
    );
    assert!(!dir.join("argus.json").exists(), "no log was created");
    init_at(&dir, Some(4096));
}

#[test]
fn key_file_readable_by_others_is_refused_by_append() {
    let (tmp, key) = log_with_three();
    let dir = tmp.path();
    let kp = dir.join("keys/signing.key");
    assert_eq!(
        std::fs::metadata(&kp).unwrap().permissions().mode() & 0o777,
        0o600,
        "init writes the key with mode 0600"
    );
    std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(0o644)).unwrap();
    let files = segments_fingerprint(dir);
    let r = argus_stdin([OsStr::new("append"), p(dir)], b"{\"kind\":\"x.a.b\"}\n");
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(
        r.stderr.contains("signing.key") && r.stderr.contains("644"),
        "message must name the key file and its mode{}",
        r.ctx()
    );
    assert!(
        r.stderr.contains("chmod 600") || r.stderr.to_lowercase().contains("permission"),
        "message must say how to fix the permissions{}",
        r.ctx()
    );
    assert!(r.stdout.is_empty(), "nothing acknowledged{}", r.ctx());
    assert!(segments_fingerprint(dir) == files, "nothing written");

    // Readers and the verifier do not need the private key.
    verify(dir, &key, &[]).assert_ok();
    std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(0o600)).unwrap();
    append(dir, &small_entries(3, 1));
}

#[test]
fn second_concurrent_writer_is_refused_naming_the_holder() {
    let (tmp, _key) = log_with_three();
    let dir = tmp.path();
    let mut first = cmd([OsStr::new("append"), p(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn first append");
    let pid = first.id();
    let mut stdin = first.stdin.take().unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    stdin
        .write_all(b"{\"kind\":\"x.first.writer\"}\n")
        .expect("write");
    stdin.flush().unwrap();
    // Once the first writer acknowledged an entry it certainly holds the lock.
    let ack = lines.next().expect("ack line").expect("read ack");
    assert_eq!(parse_ack(&ack).seq, 3);

    let r = argus_stdin(
        [OsStr::new("append"), p(dir)],
        b"{\"kind\":\"x.second.writer\"}\n",
    );
    assert_ne!(r.code, Some(0), "second writer must be refused{}", r.ctx());
    assert!(
        r.stderr.contains("locked") && r.stderr.contains(&format!("pid {pid}")),
        "message must say the log is locked and name the holder (pid {pid}){}",
        r.ctx()
    );
    assert!(r.stdout.is_empty(), "{}", r.ctx());

    // The first writer is unaffected.
    stdin
        .write_all(b"{\"kind\":\"x.first.writer\"}\n")
        .expect("write");
    stdin.flush().unwrap();
    let ack = lines.next().expect("ack line").expect("read ack");
    assert_eq!(parse_ack(&ack).seq, 4);
    drop(stdin);
    let status = first.wait().expect("wait first");
    assert_eq!(status.code(), Some(0));

    let kinds: Vec<Value> = cat_json(dir, &[])
        .into_iter()
        .map(|v| v["kind"].clone())
        .collect();
    assert!(
        !kinds.contains(&json!("x.second.writer")),
        "refused writer wrote nothing: {kinds:?}"
    );
    // With the lock released, a new writer gets in.
    let r = argus_stdin(
        [OsStr::new("append"), p(dir)],
        b"{\"kind\":\"x.second.writer\"}\n",
    );
    r.assert_ok();
    assert_eq!(acks_of(&r)[0].seq, 5, "{}", r.ctx());
}

#[test]
fn verify_usage_errors_exit_2() {
    let (tmp, key) = log_with_three();
    let dir = tmp.path();
    let r = verify(dir, "abcd", &[]);
    r.assert_code(2);
    assert!(r.stderr.contains("--key"), "{}", r.ctx());
    let cp = dir.join("garbage-cp.txt");
    std::fs::write(&cp, "not a checkpoint\n").unwrap();
    let r = verify(dir, &key, &["--checkpoint", cp.to_str().unwrap()]);
    r.assert_code(2);
    assert!(r.stderr.contains("checkpoint"), "{}", r.ctx());
}
