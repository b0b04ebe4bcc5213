//! tools/crashloop in CI: 50 rounds of SIGKILL under load against the real
//! argusd, every acknowledged entry checked by hash, verify and a fresh
//! projection rebuild after each round; and a run with a damaged
//! acknowledged entry, which must fail naming the round (so a crash loop
//! that checks nothing cannot pass).
use std::path::Path;
use std::process::Command;

fn crashloop(args: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("python3")
        .arg(root.join("tools/crashloop"))
        .args(["--argusd", env!("CARGO_BIN_EXE_argusd")])
        .args(["--argusctl", env!("CARGO_BIN_EXE_argusctl")])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fifty_kill9_rounds_keep_every_ack_verify_and_rebuild_equal() {
    let out = crashloop(&["--rounds", "50", "--seed", "7", "--max-run-ms", "120"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("passed 50 rounds"), "{text}");
}

#[test]
fn a_damaged_acknowledged_entry_fails_the_crash_loop() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("run");
    let out = crashloop(&[
        "--rounds",
        "4",
        "--inject-fault",
        "2",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL in round 2"), "{text}");
}
