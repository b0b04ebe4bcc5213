//! A recovery cut is recorded even if the process dies between cutting the
//! tail and appending `log.recovered`: the cut report is made durable in
//! `recovery.pending.json` first, and the next open appends any report the
//! log does not yet hold, exactly once.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn argusctl(args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_argusctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

fn recovered_ids(dir: &Path) -> Vec<String> {
    let out = argusctl(&["cat", dir.to_str().unwrap(), "-o", "json"], "");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "log.recovered")
        .map(|v| v["payload"]["recovery_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pending_cut_report_left_by_a_crash_is_recorded_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    assert!(argusctl(&["init", d], "").status.success());
    assert!(argusctl(&["append", d], "{\"kind\":\"x.a\"}\n")
        .status
        .success());
    // The state a crash after the truncation but before the append leaves behind.
    let report = r#"[{"recovery_id":"00112233deadbeef","segment":"00000000000000000000.seg","offset":400,"bytes_cut":17,"seq_from":1,"seq_to":1,"reason":"torn tail: simulated"}]"#;
    std::fs::write(dir.join("recovery.pending.json"), report).unwrap();
    let out = argusctl(&["append", d], "{\"kind\":\"x.b\"}\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(recovered_ids(&dir), vec!["00112233deadbeef".to_string()]);
    assert!(
        !dir.join("recovery.pending.json").exists(),
        "pending file must be removed once recorded"
    );

    // A crash after the append but before the pending file was removed: no duplicate.
    std::fs::write(dir.join("recovery.pending.json"), report).unwrap();
    assert!(argusctl(&["append", d], "{\"kind\":\"x.c\"}\n")
        .status
        .success());
    assert_eq!(recovered_ids(&dir), vec!["00112233deadbeef".to_string()]);
    assert!(!dir.join("recovery.pending.json").exists());
}

#[test]
fn torn_tail_cut_is_recorded_with_an_id_and_pending_file_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    assert!(argusctl(&["init", d], "").status.success());
    assert!(argusctl(&["append", d], "{\"kind\":\"x.a\"}\n")
        .status
        .success());
    let seg = dir.join("segments/00000000000000000000.seg");
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[1, 2, 3, 4, 5, 6, 7]).unwrap();
    let out = argusctl(&["append", d], "{\"kind\":\"x.b\"}\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("recovered"));
    let ids = recovered_ids(&dir);
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].len(), 16);
    assert!(!dir.join("recovery.pending.json").exists());
}

#[test]
fn damaged_pending_cut_report_refuses_to_open_rather_than_forget_the_cut() {
    // The pending file is written whole by rename; one that does not parse
    // was damaged or planted. Treating it as empty would drop a cut that
    // is not in the log yet, so the writer refuses and says how to go on.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    assert!(argusctl(&["init", d], "").status.success());
    std::fs::write(dir.join("recovery.pending.json"), "[{\"recovery_id\":").unwrap();
    let out = argusctl(&["append", d], "{\"kind\":\"x.a\"}\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("recovery.pending.json") && err.contains("move the file aside"),
        "{err}"
    );
    assert!(
        dir.join("recovery.pending.json").exists(),
        "nothing removed"
    );
}
