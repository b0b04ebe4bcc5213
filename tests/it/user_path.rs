//! The user-path benchmark script (benches/user_path.py) is what
//! docs/PERFORMANCE.md's headline table comes from; this runs it briefly
//! against the real argusctl so the script cannot rot unnoticed. It checks
//! what the script measured (every system acked events, Argus's log holds
//! exactly what was acked and verifies), never how fast.
use std::path::Path;
use std::process::Command;

#[test]
fn the_user_path_script_drives_every_system_and_argus_keeps_what_it_acked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let raw = work.path().join("raw.json");
    let out = Command::new("python3")
        .arg(root.join("benches/user_path.py"))
        .args(["--argusctl", env!("CARGO_BIN_EXE_argusctl")])
        .args([
            "--rounds",
            "1",
            "--seconds",
            "0.5",
            "--warmup",
            "0.05",
            "--keep",
        ])
        .arg("--dir")
        .arg(work.path())
        .arg("--json")
        .arg(&raw)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "user_path.py failed: {stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    for row in [
        "| 1 writer, ack per event |",
        "| 1 writer, 1,000 per commit |",
        "| 8 writers, ack per event",
        "| 64 writers, ack per event",
        "| bytes on disk per event",
        "Single-writer p50",
    ] {
        assert!(table.contains(row), "no `{row}` in:\n{table}");
    }
    let figures: serde_json::Value = serde_json::from_slice(&std::fs::read(&raw).unwrap()).unwrap();
    let workloads = figures.as_object().unwrap();
    assert_eq!(workloads.len(), 4, "{figures}");
    for (name, per) in workloads {
        for system in ["argus", "sqlite", "jsonl"] {
            let runs = per[system].as_array().unwrap();
            assert_eq!(runs.len(), 1, "{name} {system}");
            assert!(
                runs[0]["events"].as_u64().unwrap() > 0,
                "{name} {system}: no events"
            );
            assert!(
                runs[0]["bytes"].as_u64().unwrap() > 0,
                "{name} {system}: no bytes"
            );
        }
        // --keep leaves each Argus log: it must hold every line the client
        // wrote (all were acked before the client closed the pipe) and verify.
        let log = per["argus"][0]["dir"].as_str().unwrap();
        let written = per["argus"][0]["written"].as_u64().unwrap();
        let v = Command::new(env!("CARGO_BIN_EXE_argusctl"))
            .args(["verify", log, "-o", "json"])
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "{name}: verify: {}",
            String::from_utf8_lossy(&v.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
        assert_eq!(
            report["entries"].as_u64(),
            Some(written),
            "{name}: {report}"
        );
    }
}
