//! Seed 000's scenario end to end (`tools/scenario-000`): Python agents
//! against a real argusd, an overspend and a tool call for a rejected
//! proposal, the auditor's lockdown and kill, 423s, `argusctl exec`
//! refusing, the operator's release from the operator page, work resuming,
//! and `argusctl audit` reproducing every detection. The script checks each
//! step and says which failed; this test runs it with this build's binaries.
use serde_json::Value;
use std::process::Command;

#[test]
fn seed_000_scenario_runs_end_to_end() {
    if !crate::common::python_ready() {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/tools/scenario-000"))
        .args(["--argusd", env!("CARGO_BIN_EXE_argusd")])
        .args(["--argusctl", env!("CARGO_BIN_EXE_argusctl")])
        .args(["--jobs", "30", "--json"])
        .output()
        .expect("run tools/scenario-000");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    assert_eq!(summary["ok"], true, "{summary}\n{stdout}\n{stderr}");
    assert!(out.status.success());
    let steps: Vec<&str> = summary["rogue_steps"]
        .as_array()
        .expect("rogue_steps")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for kind in [
        "proposal.rejected",
        "tool.call_started",
        "anomaly.detected",
        "kill.hard",
    ] {
        assert!(
            steps.contains(&kind),
            "{kind} missing from the rogue job: {steps:?}"
        );
    }
    assert!(
        summary["detections"].as_u64().is_some_and(|n| n >= 6),
        "{summary}"
    );
    if std::env::var_os("CI").is_some() {
        // tools/test-all installs Chromium and playwright: the release
        // must have been clicked on the page, not made through the API.
        assert_eq!(summary["released_by"], "page", "{stdout}");
    }
}
