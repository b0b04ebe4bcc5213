//! Invariant 9: one wrong clock cannot move the log's time. A process runs
//! under libfaketime with a clock far from the machine's; the kernel's time
//! since boot, which it cannot fake, gives it away. Each jump is recorded as
//! a `clock.skew` entry, later entries with a correct clock carry correct
//! times again, and rules that count time count only what the log witnessed.
//!
//! Needs `faketime` (Debian package; `tools/test-all` installs it). Under CI
//! (`CI` set) a missing faketime fails; elsewhere the tests say so and stop.
use crate::common::*;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

fn have_faketime() -> bool {
    crate::common::faketime_ready()
}

/// Runs argusctl with its clock set by faketime `spec` ("+31d",
/// "@2030-01-01 00:00:00").
fn faked(spec: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new("faketime")
        .args(["-f", spec, bin()])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn faketime argusctl");
    {
        use std::io::Write;
        let mut i = child.stdin.take().expect("stdin");
        let _ = i.write_all(stdin);
    }
    let out = child.wait_with_output().expect("wait");
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    argus(args.iter().map(OsStr::new).collect::<Vec<_>>())
}

fn heartbeat(n: u64) -> Value {
    json!({"kind": "worker.heartbeat", "payload": {"worker_id": "w-1", "n": n}})
}

fn proposal(id: &str) -> Value {
    json!({"kind": "proposal.created", "job_id": "job-1", "agent": "janus", "payload": {
        "proposal_id": id, "action_type": "web_search", "risk": "low",
        "rationale": "Need to identify Horizon Europe funding programs",
        "mission_context": "Research EU funding", "parameters": {"q": id}}})
}

fn skews(dir: &Path) -> Vec<Value> {
    cat_json(dir, &[])
        .into_iter()
        .filter(|e| e["kind"] == "clock.skew")
        .collect()
}

#[test]
fn a_clock_31_days_ahead_is_recorded_and_satisfies_no_dwell_time() {
    if !have_faketime() {
        return;
    }
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    // 20 decided proposals at 95%: everything beta needs except 30 days.
    let ids: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
    append(dir, &ids.iter().map(|i| proposal(i)).collect::<Vec<_>>());
    for id in &ids[..19] {
        run(&["approvals", "approve", d, id]).assert_ok();
    }
    run(&["approvals", "reject", d, &ids[19], "--reason", "no"]).assert_ok();

    let r = faked("+31d", &["append", d], &to_lines(&[heartbeat(1)]));
    r.assert_ok();
    let s = skews(dir);
    assert_eq!(s.len(), 1, "the jump is on record: {s:?}");
    assert_eq!(s[0]["actor"], "argus");
    assert_eq!(s[0]["payload"]["direction"], "forward");
    assert_eq!(s[0]["payload"]["evidence"], "boot_time");
    assert!(
        s[0]["payload"]["witnessed_ms"].as_u64().unwrap() < 60_000,
        "only seconds really passed: {}",
        s[0]
    );
    // Neither a correct clock nor the fast one can promote on that jump.
    for r in [
        run(&["mode", "set", d, "beta"]),
        faked("+31d", &["mode", "set", d, "beta"], b""),
    ] {
        r.assert_code(1);
        assert!(r.stderr.contains("0.0 days in alpha"), "{}", r.ctx());
    }
    // status and verify say so, and verify still passes.
    let st = run(&["status", d, "-o", "json"]);
    st.assert_ok();
    let v = st.json();
    assert_eq!(v["clock_skews"], 1, "{v}");
    let (r, rep) = verify_json(dir, &key, &[]);
    r.assert_ok();
    assert!(
        rep["warnings"].to_string().contains("clock jump on record"),
        "{rep}"
    );
}

#[test]
fn a_clock_in_2030_does_not_pin_later_entries_or_expire_approvals() {
    if !have_faketime() {
        return;
    }
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    append(dir, &[proposal("p-wait")]);
    faked(
        "@2030-01-01 00:00:00",
        &["append", d],
        &to_lines(&[heartbeat(1)]),
    )
    .assert_ok();
    // The right clock again: its entries carry today's time, not 2030's.
    append(dir, &[heartbeat(2)]);
    let entries = cat_json(dir, &[]);
    let last = entries.last().unwrap();
    assert!(
        last["ts"].as_str().unwrap() < "2029",
        "a correct clock writes a correct time after a wrong one: {last}"
    );
    let s = skews(dir);
    let dirs: Vec<&str> = s
        .iter()
        .map(|e| e["payload"]["direction"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["forward", "backward"], "both jumps on record: {s:?}");
    // The proposal's 24 hours did not pass in log time, whoever asks.
    for r in [
        run(&["approvals", "show", d, "p-wait", "-o", "json"]),
        faked(
            "@2030-01-01 00:00:00",
            &["approvals", "show", d, "p-wait", "-o", "json"],
            b"",
        ),
    ] {
        r.assert_ok();
        assert_eq!(r.json()["status"], "pending", "{}", r.ctx());
    }
    let r = faked(
        "@2030-01-01 00:00:00",
        &["approvals", "sweep", d, "-o", "json"],
        b"",
    );
    r.assert_ok();
    assert!(
        !cat_json(dir, &[])
            .iter()
            .any(|e| e["kind"] == "proposal.expired"),
        "nothing is due in log time{}",
        r.ctx()
    );
    run(&["approvals", "approve", d, "p-wait"]).assert_ok();
}
