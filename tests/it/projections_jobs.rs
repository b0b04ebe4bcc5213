//! Job index: status, cost and duration per job, and job_id → seqs that
//! match the log exactly (across the index's 128-seq chunk boundaries).
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str], stdin: &str) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_argusctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "argusctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn job_index_matches_the_log_and_sums_cost() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("log");
    let d = d.to_str().unwrap();
    run(&["init", d], "");
    let mut lines = String::from("{\"kind\":\"job.received\",\"job_id\":\"big\",\"payload\":{\"job_type\":\"health_check\"}}\n");
    for i in 0..450 {
        let job = if i % 3 == 0 { "other" } else { "big" };
        lines.push_str(&format!("{{\"kind\":\"cost.logged\",\"job_id\":\"{job}\",\"payload\":{{\"usd\":0.01,\"tokens_in\":1,\"tokens_out\":1,\"model\":null,\"price_table\":\"t\"}}}}\n"));
    }
    lines.push_str(
        "{\"kind\":\"job.failed\",\"job_id\":\"big\",\"payload\":{\"error\":\"boom\"}}\n",
    );
    run(&["append", d], &lines);
    let cat = run(&["cat", d, "-o", "json"], "");
    let want: Vec<u64> = String::from_utf8(cat.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["job_id"] == "big")
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert!(want.len() > 2 * 128, "test must cross chunk boundaries");
    let show: Value =
        serde_json::from_slice(&run(&["jobs", d, "--job", "big", "-o", "json"], "").stdout)
            .unwrap();
    let got: Vec<u64> = show["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(got, want);
    assert_eq!(show["status"], "failed");
    assert_eq!(show["last_error"], "boom");
    assert_eq!(show["job_type"], "health_check");
    let cost = show["cost_usd"].as_f64().unwrap();
    assert!((cost - 3.0).abs() < 1e-9, "300 costs of 0.01 = {cost}");
    let list = run(&["jobs", d, "-o", "json"], "");
    assert_eq!(String::from_utf8(list.stdout).unwrap().lines().count(), 2);
}
