//! Invariant 7: when the log cannot be written, Argus fails closed. A real
//! `argusctl append` runs with a file-size limit (RLIMIT_FSIZE, SIGXFSZ
//! ignored), so a write fails with EFBIG part way through a stream, as on a
//! full disk. Nothing it did not store is acknowledged, nothing after the
//! failure is accepted, and the log stays verifiable.
use crate::common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

#[test]
fn a_write_that_fails_puts_the_writer_in_lockdown_and_acks_nothing_unstored() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    append(dir, &small_entries(0, 3));
    let before = std::fs::metadata(segment_files(dir).pop().unwrap())
        .unwrap()
        .len();
    // Room for a few dozen 1 KiB entries beyond what is there (bash counts
    // ulimit -f in 1024-byte blocks).
    let limit_kib = before / 1024 + 48;
    let script = format!("trap '' XFSZ; ulimit -f {limit_kib}; exec \"$0\" append \"$1\"",);
    let mut child = Command::new("bash")
        .args(["-c", &script, bin()])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn limited append");
    let mut stdin = child.stdin.take().unwrap();
    let mut acks = BufReader::new(child.stdout.take().unwrap()).lines();
    let pad = "x".repeat(1000);
    let mut acked = Vec::new();
    for i in 0..200u64 {
        let line = json!({"kind": "x.fill", "payload": {"i": i, "pad": pad}}).to_string();
        if writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .is_err()
        {
            break;
        }
        match acks.next() {
            Some(Ok(l)) => acked.push(parse_ack(&l)),
            _ => break,
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the failed write must fail the run: {stderr}"
    );
    assert!(
        stderr.contains("lockdown"),
        "the error must say lockdown: {stderr}"
    );
    assert!(
        !acked.is_empty() && acked.len() < 200,
        "some entries fit, the limit stopped the rest: {} acked",
        acked.len()
    );

    // Every acknowledged entry is stored with the acknowledged hash, and
    // nothing else of this run is: the failed commit was never acked.
    let (r, v) = verify_json(dir, &key, &[]);
    r.assert_ok();
    let stored = cat_json(dir, &[]);
    assert_eq!(
        v["sealed_size"].as_u64().unwrap(),
        3 + acked.len() as u64,
        "sealed entries are the earlier ones and the acked ones{}",
        r.ctx()
    );
    for a in &acked {
        assert_eq!(stored[a.seq as usize]["hash"], a.hash.as_str());
    }
    // Without the limit the next writer recovers the tail and goes on.
    append(dir, &small_entries(0, 1));
    verify(dir, &key, &[]).assert_ok();
}
