//! Erasure without breaking the chain (SPEC §4.2.1): `argusctl redact`
//! records an operator's decision, readers show the payload as erased from
//! then on, `argusctl compact` zeroes the bytes in sealed segments, and
//! `verify` stays green, reporting each erasure, while zeros no redaction
//! explains are CONTENT tampering. Real binary, real directories.
use crate::common::*;
use crate::daemon::harness::Daemon;
use crate::daemon::http;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const CONTENT: i32 = 10;

/// Personal data each entry's payload carries, distinct per entry: what
/// ingestion redaction cannot recognise (it cuts credentials, not a
/// customer's record), so an operator erases it afterwards.
fn secret(i: usize) -> String {
    format!("customer-{i:04}-ssn-078-05-1120")
}

/// A log of 4096-byte segments holding `n` tool calls of job `j1`, one
/// commit each (so segments roll and seal as it grows); returns the dir
/// and the public key.
fn log_with_secrets(n: usize) -> (tempfile::TempDir, String) {
    let (tmp, key) = init_log(Some(4096));
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            json!({"kind": "tool.call_started", "job_id": "j1", "step_id": format!("s{i}"),
                   "payload": {"tool": "http", "input": {"customer": secret(i)}}})
        })
        .collect();
    append_lockstep(tmp.path(), &entries, 1);
    (tmp, key)
}

fn d(dir: &Path) -> String {
    dir.display().to_string()
}

fn redact(dir: &Path, seq: u64, reason: &str) -> Run {
    argus([
        "redact",
        &d(dir),
        &seq.to_string(),
        "--reason",
        reason,
        "-o",
        "json",
    ])
}

/// Every segment file's bytes, concatenated.
fn all_segment_bytes(dir: &Path) -> Vec<u8> {
    segment_files(dir)
        .iter()
        .flat_map(|p| std::fs::read(p).expect("read segment"))
        .collect()
}

fn holds(dir: &Path, needle: &str) -> bool {
    all_segment_bytes(dir)
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The erase step's report. Compression is left out so the tests can look
/// for a secret's bytes in the segment files; `compact_then_compress` runs both.
fn compact(dir: &Path) -> Value {
    let r = argus(["compact", &d(dir), "--no-compress", "-o", "json"]);
    r.assert_ok();
    r.json()["erase"].clone()
}

fn seqs(v: &Value, field: &str) -> Vec<u64> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

#[test]
fn readers_show_a_redacted_payload_as_erased_naming_who_when_and_why() {
    let (tmp, key) = log_with_secrets(40);
    let dir = tmp.path();
    let r = redact(dir, 5, "customer API key pasted into a tool call");
    r.assert_ok();
    let by = r.json()["seq"].as_u64().expect("redaction seq");
    let check = |red: &Value, ctx: &str| {
        assert_eq!(red["by_seq"], by, "{ctx}");
        assert_eq!(
            red["reason"], "customer API key pasted into a tool call",
            "{ctx}"
        );
        assert!(
            red["actor"].as_str().unwrap_or("").starts_with("operator:"),
            "{ctx}"
        );
        assert!(red["ts"].as_str().unwrap_or("").ends_with('Z'), "{ctx}");
    };
    // cat, JSON and text.
    let c = argus(["cat", &d(dir), "--from", "4", "--to", "6", "-o", "json"]);
    c.assert_ok();
    let lines = c.json_lines();
    assert_eq!(lines[1]["seq"], 5);
    assert_eq!(lines[1]["payload"], Value::Null, "{}", c.ctx());
    check(&lines[1]["redacted"], &c.ctx());
    assert!(lines[0].get("redacted").is_none(), "{}", c.ctx());
    assert!(!c.stdout.contains(&secret(5)), "{}", c.ctx());
    assert!(c.stdout.contains(&secret(4)), "{}", c.ctx());
    let t = argus(["cat", &d(dir), "--from", "5", "--to", "5"]);
    t.assert_ok();
    assert!(
        t.stdout
            .contains(&format!("<erased by entry.redacted seq {by} (operator:"))
            && t.stdout.contains("customer API key pasted"),
        "{}",
        t.ctx()
    );
    // tail.
    let tl = argus(["tail", &d(dir), "-n", "100", "-o", "json"]);
    tl.assert_ok();
    let row = tl
        .json_lines()
        .into_iter()
        .find(|v| v["seq"] == 5)
        .expect("seq 5 in tail");
    check(&row["redacted"], &tl.ctx());
    assert!(!tl.stdout.contains(&secret(5)), "{}", tl.ctx());
    // inspect.
    let i = argus(["inspect", &d(dir), "5", "-o", "json"]);
    i.assert_ok();
    let iv = i.json();
    assert_eq!(iv["entry"]["payload"], Value::Null, "{}", i.ctx());
    check(&iv["entry"]["redacted"], &i.ctx());
    let it = argus(["inspect", &d(dir), "5"]);
    it.assert_ok();
    assert!(
        it.stdout.contains("<erased by entry.redacted"),
        "{}",
        it.ctx()
    );
    assert!(!it.stdout.contains(&secret(5)), "{}", it.ctx());
    // export: payload null, the hash kept so the entry hash is recomputable.
    let e = argus(["export", &d(dir), "--from", "5", "--to", "5"]);
    e.assert_ok();
    let ev = e.json();
    assert_eq!(ev["payload"], Value::Null, "{}", e.ctx());
    assert_eq!(ev["payload_hash"].as_str().map(str::len), Some(64));
    check(&ev["redacted"], &e.ctx());
    // replay, detailed.
    let rp = argus(["replay", &d(dir), "j1", "--detailed", "-o", "json"]);
    rp.assert_ok();
    assert!(!rp.stdout.contains(&secret(5)), "{}", rp.ctx());
    let ev5 = rp
        .json_lines()
        .into_iter()
        .find(|v| v["seq"] == 5)
        .unwrap_or_else(|| panic!("seq 5 in replay{}", rp.ctx()));
    check(&ev5["redacted"], &rp.ctx());
    // Before compaction the bytes are still on disk; the readers hid them.
    assert!(holds(dir, &secret(5)));
    verify(dir, &key, &[]).assert_ok();
}

#[test]
fn compaction_erases_the_bytes_and_every_check_still_holds() {
    let (tmp, key) = log_with_secrets(60);
    let dir = tmp.path();
    assert!(segment_files(dir).len() >= 3, "want sealed segments");
    let cp = dir.join("before.cp");
    save_checkpoint(dir, &cp);
    let bundle = dir.join("proof-5.json");
    argus(["prove", &d(dir), "5", "-o", &d(&bundle)]).assert_ok();
    for seq in [5u64, 6] {
        redact(dir, seq, "leaked credential").assert_ok();
    }
    assert!(holds(dir, &secret(5)) && holds(dir, &secret(6)));
    let report = compact(dir);
    assert_eq!(seqs(&report, "erased"), vec![5, 6], "{report}");
    assert!(
        !holds(dir, &secret(5)),
        "seq 5's secret survived compaction"
    );
    assert!(
        !holds(dir, &secret(6)),
        "seq 6's secret survived compaction"
    );
    assert!(holds(dir, &secret(7)), "an unredacted payload was erased");
    // verify: green, with the checkpoint taken before, and names each erasure.
    let cps = d(&cp);
    let (run, v) = verify_json(dir, &key, &["--checkpoint", &cps]);
    run.assert_ok();
    assert_eq!(seqs(&v, "erased"), vec![5, 6], "{}", run.ctx());
    assert_eq!(v["erased"][0]["reason"], "leaked credential");
    let text = verify(dir, &key, &["--checkpoint", &cps]);
    text.assert_ok();
    assert!(
        text.stdout
            .contains("erased: seq 5 by entry.redacted at seq 60 (operator:")
            && text.stdout.contains("reason \"leaked credential\""),
        "{}",
        text.ctx()
    );
    // An inclusion proof made before compaction still verifies after it.
    argus(["verify-proof", &d(&bundle), "--key", &key]).assert_ok();
    // A new bundle withholds the erased payload (its hash stands in for
    // it) and still verifies.
    let p2 = dir.join("p2.json");
    argus(["prove", &d(dir), "5", "-o", &d(&p2)]).assert_ok();
    let b2 = std::fs::read_to_string(&p2).unwrap_or_default();
    assert!(
        !b2.contains(&secret(5)),
        "the bundle carries the erased payload"
    );
    let v2 = argus(["verify-proof", &d(&p2), "--key", &key]);
    v2.assert_ok();
    assert!(v2.stdout.contains("withheld"), "{}", v2.ctx());
    // Readers after compaction: still erased, still named.
    let c = argus(["cat", &d(dir), "--from", "5", "--to", "5", "-o", "json"]);
    c.assert_ok();
    assert_eq!(c.json()["redacted"]["by_seq"], 60, "{}", c.ctx());
    // Idempotent: a second run changes no byte.
    let before = all_segment_bytes(dir);
    let second = compact(dir);
    assert!(seqs(&second, "erased").is_empty(), "{second}");
    assert_eq!(seqs(&second, "already"), vec![5, 6], "{second}");
    assert_eq!(all_segment_bytes(dir), before);
}

#[test]
fn a_redaction_in_the_active_segment_waits_until_it_is_sealed() {
    let (tmp, key) = log_with_secrets(3);
    let dir = tmp.path();
    redact(dir, 1, "pii").assert_ok();
    let report = compact(dir);
    assert_eq!(seqs(&report, "pending"), vec![1], "{report}");
    assert!(seqs(&report, "erased").is_empty(), "{report}");
    assert!(holds(dir, &secret(1)), "the active segment was rewritten");
    let (run, v) = verify_json(dir, &key, &[]);
    run.assert_ok();
    assert!(seqs(&v, "erased").is_empty(), "{}", run.ctx());
}

#[test]
fn redact_refuses_what_it_must_not_erase() {
    let (tmp, _) = log_with_secrets(4);
    let dir = tmp.path();
    // A seq that does not exist yet.
    let r = redact(dir, 99, "x");
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(r.stderr.contains("does not exist yet"), "{}", r.ctx());
    // No reason.
    let r = redact(dir, 1, "   ");
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(r.stderr.contains("--reason"), "{}", r.ctx());
    // A reason past the bound.
    let r = redact(dir, 1, &"x".repeat(1025));
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    // Twice: the second names the first.
    let first = redact(dir, 1, "pii");
    first.assert_ok();
    let by = first.json()["seq"].as_u64().expect("seq");
    let r = redact(dir, 1, "again");
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(
        r.stderr
            .contains(&format!("already redacted by entry.redacted at seq {by}")),
        "{}",
        r.ctx()
    );
    // A redaction itself.
    let r = redact(dir, by, "hide the redaction");
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(
        r.stderr.contains("is itself an entry.redacted"),
        "{}",
        r.ctx()
    );
    // A decision (an operator's kill).
    let k = argus(["kill", &d(dir), "--reason", "stop", "-o", "json"]);
    k.assert_ok();
    let kill_seq = k.json()["seq"].as_u64().expect("kill seq");
    let r = redact(dir, kill_seq, "hide the kill");
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(r.stderr.contains("not erasable"), "{}", r.ctx());
    // What was refused wrote nothing: one redaction in the log.
    let c = argus(["cat", &d(dir), "-o", "json"]);
    let n = c
        .json_lines()
        .iter()
        .filter(|v| v["kind"] == "entry.redacted")
        .count();
    assert_eq!(n, 1, "{}", c.ctx());
}

#[test]
fn an_agent_cannot_write_entry_redacted() {
    let (tmp, _) = log_with_secrets(2);
    let dir = tmp.path();
    let line = json!({"kind": "entry.redacted",
        "payload": {"target_seq": 0, "payload_hash": "00".repeat(32), "reason": "mine"}});
    let r = argus_stdin(["append", &d(dir)], &to_lines(std::slice::from_ref(&line)));
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(r.stderr.contains("argusctl redact"), "{}", r.ctx());

    // Through argusd: an agent token is refused on both paths, an operator's is not.
    let mut dmn = Daemon::new(None, &[]);
    let issue = |name: &str, role: &str| {
        let r = argus([
            "token",
            "add",
            &d(&dmn.dir),
            "--name",
            name,
            "--role",
            role,
            "-o",
            "json",
            "--server",
            "local",
        ]);
        r.assert_ok();
        r.json()["token"].as_str().expect("token").to_string()
    };
    let agent = issue("ag1", "agent");
    let operator = issue("op1", "operator");
    dmn.spawn();
    let e = json!({"kind": "tool.call_started", "job_id": "j", "payload": {"tool": "http"}});
    let auth = format!("Bearer {agent}");
    let resp = http::request(
        &dmn.addr,
        "POST",
        "/v1/entries",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        e.to_string().as_bytes(),
    )
    .expect("request");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let work_seq = resp.acks()[0].seq.to_string();
    let resp = http::request(
        &dmn.addr,
        "POST",
        "/v1/entries",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        line.to_string().as_bytes(),
    )
    .expect("request");
    assert_eq!(resp.status, 403, "{}", resp.text());
    let as_ = |token: &str| {
        argus([
            "redact",
            &d(&dmn.dir),
            &work_seq,
            "--reason",
            "pii",
            "--token",
            token,
            "--server",
            &dmn.url(),
        ])
    };
    let r = as_(&agent);
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(r.stderr.contains("operator"), "{}", r.ctx());
    let r = as_(&operator);
    r.assert_ok();
    dmn.assert_verifies();
}

/// Zeroes seq `seq`'s payload bytes by hand and fixes the frame CRC, so
/// only the content rule of SPEC §4.2.1 can catch it. Returns the segment
/// file and the frame offset.
pub fn zero_payload_by_hand(dir: &Path, seq: u64) -> (PathBuf, u64) {
    for seg in segment_files(dir) {
        let m = parse_segment(&seg);
        for f in m.entries() {
            let l = entry_layout(&seg, f);
            if l.seq != seq {
                continue;
            }
            let (at, len) = l.payload();
            let mut b = std::fs::read(&seg).expect("read");
            b[at as usize..(at + len) as usize].fill(0);
            std::fs::write(&seg, &b).expect("write");
            fix_frame_crc(&seg, f.offset);
            return (seg, f.offset);
        }
    }
    panic!("seq {seq} not found");
}

#[test]
fn a_payload_zeroed_without_a_redaction_is_content_tampering() {
    let (tmp, key) = log_with_secrets(40);
    let dir = tmp.path();
    let (seg, offset) = zero_payload_by_hand(dir, 3);
    let (run, v) = verify_json(dir, &key, &[]);
    run.assert_code(CONTENT);
    assert_eq!(v["failure"]["seq"], 3, "{}", run.ctx());
    assert_eq!(v["failure"]["offset"], offset, "{}", run.ctx());
    assert_eq!(v["failure"]["segment"], file_name(&seg), "{}", run.ctx());
    assert_eq!(
        v["failure"]["cause"],
        "unexplained_erasure",
        "{}",
        run.ctx()
    );
    // Readers refuse it too, rather than show an erasure nobody decided.
    let c = argus(["cat", &d(dir)]);
    assert_ne!(c.code, Some(0), "{}", c.ctx());
    assert!(c.stderr.contains("seq 3"), "{}", c.ctx());
    // A redaction of another seq explains nothing here.
    redact(dir, 4, "unrelated").assert_ok();
    verify(dir, &key, &[]).assert_code(CONTENT);
}

#[test]
fn a_redaction_naming_another_payload_hash_does_not_explain_zeros() {
    let (tmp, key) = log_with_secrets(40);
    let dir = tmp.path();
    redact(dir, 3, "pii").assert_ok();
    compact(dir);
    verify(dir, &key, &[]).assert_ok();
    // Hand-zero seq 2 too: seq 3's redaction does not cover it.
    zero_payload_by_hand(dir, 2);
    let (run, v) = verify_json(dir, &key, &[]);
    run.assert_code(CONTENT);
    assert_eq!(v["failure"]["seq"], 2, "{}", run.ctx());
}

#[test]
fn compact_refuses_while_another_process_holds_the_writer_lock() {
    let (tmp, key) = log_with_secrets(40);
    let dir = tmp.path();
    redact(dir, 2, "pii").assert_ok();
    // An append whose stdin stays open holds the writer lock while it runs.
    let mut holder = cmd(["append", &d(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn append");
    let mut stdin = holder.stdin.take().expect("stdin");
    let mut out = std::io::BufReader::new(holder.stdout.take().expect("stdout"));
    {
        use std::io::{BufRead, Write};
        let line = json!({"kind": "tool.call_started", "job_id": "j9", "payload": {"tool": "x"}});
        writeln!(stdin, "{line}").expect("write");
        stdin.flush().expect("flush");
        // Its ack proves it holds the lock (it appended).
        let mut ack = String::new();
        out.read_line(&mut ack).expect("ack");
        assert!(ack.contains("\"seq\""), "{ack}");
        let r = argus(["--lock-timeout", "0", "compact", &d(dir)]);
        assert_ne!(r.code, Some(0), "{}", r.ctx());
        assert!(r.stderr.contains("writer lock"), "{}", r.ctx());
        assert!(holds(dir, &secret(2)), "compact wrote while refusing");
    }
    drop(stdin);
    let status = holder.wait().expect("wait");
    drop(out);
    assert!(status.success(), "the lock holder failed");
    assert_eq!(seqs(&compact(dir), "erased"), vec![2]);
    verify(dir, &key, &[]).assert_ok();
}

#[test]
fn kill_9_during_compaction_leaves_the_old_segment_or_the_new() {
    let (tmp, key) = log_with_secrets(150);
    let dir = tmp.path();
    let targets: Vec<u64> = (0..150).step_by(7).collect();
    for &s in &targets {
        redact(dir, s, "bulk erasure").assert_ok();
    }
    let segs_before: Vec<(String, Vec<u8>)> = segment_files(dir)
        .iter()
        .map(|p| (file_name(p), std::fs::read(p).expect("read")))
        .collect();
    assert!(segs_before.len() >= 8, "want many sealed segments");
    // The finished result, for comparison.
    let done = tempfile::tempdir().expect("tempdir");
    copy_dir(dir, done.path());
    compact(done.path());
    let after: std::collections::BTreeMap<String, Vec<u8>> = segment_files(done.path())
        .iter()
        .map(|p| (file_name(p), std::fs::read(p).expect("read")))
        .collect();
    let mut rng = XorShift::new(0x5eed_c0de);
    let mut killed_midway = 0;
    for round in 0..12 {
        let work = tempfile::tempdir().expect("tempdir");
        copy_dir(dir, work.path());
        let mut child = cmd(["compact", &d(work.path()), "--no-compress"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn compact");
        // Random kill points; nothing is asserted about timing, only about
        // what is left on disk.
        std::thread::sleep(std::time::Duration::from_micros(rng.below(40_000)));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let mut old = 0;
        let mut new = 0;
        for (name, bytes) in &segs_before {
            let now = std::fs::read(work.path().join("segments").join(name)).expect("read");
            if &now == bytes && after.get(name) != Some(&now) {
                old += 1;
            } else if after.get(name) == Some(&now) {
                new += 1;
            } else {
                panic!("round {round}: segments/{name} is neither the old segment nor the new");
            }
        }
        if !status.success() && old > 0 && new > 0 {
            killed_midway += 1;
        }
        verify(work.path(), &key, &[]).assert_ok();
        // Running it again finishes the job.
        compact(work.path());
        for (name, bytes) in &after {
            let now = std::fs::read(work.path().join("segments").join(name)).expect("read");
            assert!(
                &now == bytes,
                "round {round}: {name} differs after a re-run"
            );
        }
    }
    eprintln!("kill -9 rounds that left a mix of old and new segments: {killed_midway}");
}

/// Erasure and compression together, in either order: a segment compressed
/// before its entry was redacted is erased in its original bytes and
/// compressed again; verify stays green and names the erasure, and the
/// secret is in no segment file, compressed or not.
#[test]
fn an_entry_compressed_before_its_redaction_is_erased_by_the_next_compaction() {
    let (tmp, key) = log_with_secrets(60);
    let dir = tmp.path();
    argus(["compact", &d(dir)]).assert_ok();
    redact(dir, 5, "leaked after archiving").assert_ok();
    let r = argus(["compact", &d(dir), "-o", "json"]);
    r.assert_ok();
    let v = r.json();
    assert_eq!(seqs(&v["erase"], "erased"), vec![5], "{}", r.ctx());
    let (run, report) = verify_json(dir, &key, &[]);
    run.assert_ok();
    assert_eq!(seqs(&report, "erased"), vec![5], "{}", run.ctx());
    // Decompressed, no segment holds the secret any more.
    let c = argus(["cat", &d(dir), "-o", "json"]);
    c.assert_ok();
    assert!(!c.stdout.contains(&secret(5)), "cat still shows it");
    assert!(
        c.stdout.contains(&secret(7)),
        "an unredacted payload went missing"
    );
    let segs = std::fs::read_dir(dir.join("segments"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert!(segs > 0);
    for e in std::fs::read_dir(dir.join("segments"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "segz") {
            let bytes = argus::log::reader::load_path(&p)
                .map(|b| b.to_vec())
                .unwrap_or_default();
            assert!(
                !bytes
                    .windows(secret(5).len())
                    .any(|w| w == secret(5).as_bytes()),
                "{} still holds the secret",
                p.display()
            );
        }
    }
}
