//! argusd pushes its newest seal to a witness command: the cosigned
//! checkpoint it keeps in DIR/witness/checkpoint.txt verifies with the
//! witness's key, growth is pushed with a consistency proof the real
//! `argusctl witness` checks, and a refusing witness is reported while the
//! kept checkpoint stays the last one cosigned.
use super::harness::Daemon;
use super::http::post_ndjson;
use crate::common::argus;
use log_format::Checkpoint;
use std::path::Path;
use std::time::{Duration, Instant};

fn post(d: &Daemon, from: u64, n: u64) {
    let body: String = (from..from + n)
        .map(|i| super::entry(1, i).to_string() + "\n")
        .collect();
    let r = post_ndjson(&d.addr, body.as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Waits until the kept checkpoint covers `size` entries.
fn cosigned_size(path: &Path, size: u64) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if Checkpoint::parse(&text).is_ok_and(|c| c.seal.tree_size >= size) {
                return text;
            }
        }
        assert!(
            Instant::now() < until,
            "no cosigned checkpoint of size {size} at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn configure(d: &mut Daemon, command: serde_json::Value) {
    let path = d.scratch().join("witness-config.json");
    let cfg = super::harness::without_relief(
        serde_json::json!({"witness": {"command": command, "interval_ms": 100}}),
    );
    std::fs::write(&path, cfg.to_string()).unwrap();
    if let Some(i) = d.args.iter().position(|a| a == "--config") {
        d.args.drain(i..i + 2);
    }
    d.args.push("--config".into());
    d.args.push(path.display().to_string());
}

#[test]
fn argusd_pushes_seals_to_a_witness_and_keeps_the_cosigned_checkpoint() {
    let mut d = Daemon::new(None, &[]);
    let state = d.scratch().join("w1.json");
    let witness = serde_json::json!([
        env!("CARGO_BIN_EXE_argusctl"),
        "witness",
        "--state",
        state.display().to_string(),
        "--log-key",
        d.key.clone(),
        "--name",
        "w1",
        "--request",
        "-"
    ]);
    configure(&mut d, witness);
    d.spawn();
    let kept = d.dir.join("witness/checkpoint.txt");
    post(&d, 0, 5);
    cosigned_size(&kept, 5);
    post(&d, 5, 7);
    let text = cosigned_size(&kept, 12);
    assert!(text.contains("\n\u{2014} w1 "), "{text}");
    let vkey = argus([
        "witness",
        "--state",
        state.to_str().unwrap(),
        "--print-vkey",
    ]);
    vkey.assert_ok();
    let saved = d.scratch().join("cp.txt");
    std::fs::write(&saved, &text).unwrap();
    let v = argus([
        "verify",
        d.dir.to_str().unwrap(),
        "--key",
        &d.key,
        "--checkpoint",
        saved.to_str().unwrap(),
        "--witness",
        vkey.stdout.trim(),
        "-o",
        "json",
    ]);
    v.assert_ok();
    assert_eq!(v.json()["witnesses"][0]["status"], "valid", "{}", v.ctx());

    // A witness that refuses: reported, and the kept checkpoint stays.
    d.term();
    configure(
        &mut d,
        serde_json::json!([
            "sh",
            "-c",
            "cat >/dev/null; echo 'refused: fork' >&2; exit 14"
        ]),
    );
    d.spawn();
    post(&d, 12, 3);
    let until = Instant::now() + Duration::from_secs(20);
    while !d.stderr().contains("refused: fork") {
        assert!(
            Instant::now() < until,
            "no refusal reported:\n{}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), text);
}
