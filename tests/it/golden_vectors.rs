//! `argusctl` against the golden vectors in `log-format/vectors/`: the intact
//! log verifies and reproduces the published hashes; each corrupt copy gives
//! the exit code its manifest names.
use std::path::PathBuf;
use std::process::Command;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("log-format/vectors")
}

fn argusctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_argusctl"))
        .args(args)
        .output()
        .expect("run argusctl")
}

#[test]
fn tiny_vector_verifies_and_matches_published_hashes() {
    let v = vectors();
    let key = std::fs::read_to_string(v.join("tiny.pub")).unwrap();
    let tiny = v.join("tiny");
    let out = argusctl(&["verify", tiny.to_str().unwrap(), "--key", key.trim()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v.join("tiny.expected.json")).unwrap())
            .unwrap();
    let out = argusctl(&["cat", tiny.to_str().unwrap(), "-o", "json"]);
    let hashes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let want: Vec<String> = expected["entry_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    assert_eq!(hashes, want);
    let out = argusctl(&["checkpoint", tiny.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        expected["checkpoint"].as_str().unwrap()
    );
}

#[test]
fn corrupt_vectors_give_their_documented_exit_codes() {
    let v = vectors();
    let key = std::fs::read_to_string(v.join("tiny.pub")).unwrap();
    let manifest: std::collections::BTreeMap<String, i32> = serde_json::from_str(
        &std::fs::read_to_string(v.join("corrupt/expected_codes.json")).unwrap(),
    )
    .unwrap();
    assert!(manifest.len() >= 5);
    for (name, code) in manifest {
        let dir = v.join("corrupt").join(&name);
        let out = argusctl(&["verify", dir.to_str().unwrap(), "--key", key.trim()]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
