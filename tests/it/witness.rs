//! `argusctl witness` and `verify --witness`: a witness cosigns only
//! checkpoints that extend the last one it cosigned, refuses rollbacks,
//! forks and equivocation naming both checkpoints, and a verifier holding
//! its verifier key tells a cosigned checkpoint from a forged or missing
//! cosignature. Logs are forked the way a key thief would: a copy of the
//! directory (same key) that then grows differently.
use crate::common::{append, argus, argus_stdin, init_log, small_entries, Run};
use base64::Engine;
use std::path::Path;

fn witness(log: &Path, state: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "witness".to_string(),
        log.display().to_string(),
        "--state".into(),
        state.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    argus(&args)
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_witness_cosigns_growth_and_refuses_rollback_fork_and_equivocation() {
    let (tmp, key) = init_log(None);
    // The log is the temp dir itself; copies and the witness live apart.
    let work = tempfile::tempdir().unwrap();
    let log = tmp.path();
    let state = work.path().join("w.json");
    append(log, &small_entries(0, 3));
    let first = witness(log, &state, &["--name", "w1", "--log-key", &key]);
    first.assert_ok();
    assert!(first.stdout.contains("\n\u{2014} w1 "), "{}", first.ctx());
    let cp3 = write(&work.path().join("cp3.txt"), &first.stdout);
    let key_file = work.path().join("w.json.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A copy taken now, with the same key, is what a thief would fork.
    let fork = work.path().join("fork");
    copy_dir(log, &fork);
    let stale = work.path().join("stale");
    append(log, &small_entries(3, 2));
    copy_dir(log, &stale);
    let grown = witness(log, &state, &[]);
    grown.assert_ok();
    let cp5 = write(&work.path().join("cp5.txt"), &grown.stdout);

    // The fork at the same size: equivocation, refused, both roots named.
    append(&fork, &small_entries(100, 2));
    let before = std::fs::read(&state).unwrap();
    let eq = witness(&fork, &state, &[]);
    eq.assert_code(14);
    assert!(eq.stderr.contains("equivocation"), "{}", eq.ctx());
    let fork5 = argus(["checkpoint", fork.to_str().unwrap()]);
    fork5.assert_ok();
    let fork5 = write(&work.path().join("fork5.txt"), &fork5.stdout);
    // The fork grown larger: not an extension of what was cosigned.
    append(&fork, &small_entries(102, 3));
    let forked = witness(&fork, &state, &["-o", "json"]);
    forked.assert_code(14);
    let v = forked.json();
    assert_eq!(v["status"], "refused", "{}", forked.ctx());
    assert_eq!(v["cosigned"]["tree_size"], 5);
    assert_eq!(v["offered"]["tree_size"], 8);
    assert!(
        v["cosigned"]["note"]
            .as_str()
            .unwrap()
            .contains("\u{2014} w1 "),
        "the evidence keeps the witness's own cosignature: {v}"
    );
    // Growth, then the older copy: a rollback.
    append(log, &small_entries(5, 1));
    witness(log, &state, &[]).assert_ok();
    let back = witness(&stale, &state, &[]);
    back.assert_code(12);
    assert!(back.stderr.contains("rollback"), "{}", back.ctx());
    // Refusals leave the state as the last cosign left it.
    let after_refusals = std::fs::read(&state).unwrap();
    assert_ne!(before, after_refusals, "the growth to 6 was saved");
    witness(&stale, &state, &[]).assert_code(12);
    assert_eq!(std::fs::read(&state).unwrap(), after_refusals);

    // The verifier: cosigned checkpoints pass with the witness's key.
    let vkey = argus([
        "witness",
        "--state",
        state.to_str().unwrap(),
        "--print-vkey",
    ]);
    vkey.assert_ok();
    let vkey = vkey.stdout.trim().to_string();
    let ok = argus([
        "verify",
        log.to_str().unwrap(),
        "--key",
        &key,
        "--checkpoint",
        &cp3,
        "--checkpoint",
        &cp5,
        "--witness",
        &vkey,
        "-o",
        "json",
    ]);
    ok.assert_ok();
    let w = ok.json()["witnesses"].clone();
    assert_eq!(w.as_array().unwrap().len(), 2, "{w}");
    assert!(
        w.as_array().unwrap().iter().all(|x| x["status"] == "valid"),
        "{w}"
    );
    // Two checkpoints the key signed for size 5 with two roots: the
    // equivocation is proved by the pair alone.
    let eq = argus([
        "verify",
        log.to_str().unwrap(),
        "--key",
        &key,
        "--checkpoint",
        &cp5,
        "--checkpoint",
        &fork5,
    ]);
    eq.assert_code(14);
    assert!(
        eq.stdout.contains("Equivocation") && eq.stdout.contains("fork5.txt"),
        "{}",
        eq.ctx()
    );
    // A checkpoint the witness never saw fails a verifier that requires it.
    let absent = argus([
        "verify",
        fork.to_str().unwrap(),
        "--key",
        &key,
        "--checkpoint",
        &fork5,
        "--witness",
        &vkey,
    ]);
    absent.assert_code(11);
    assert!(
        absent.stdout.contains("no cosignature by witness w1"),
        "{}",
        absent.ctx()
    );
}

#[test]
fn a_forged_cosignature_fails_verify_and_a_bad_key_file_is_refused() {
    let (tmp, key) = init_log(None);
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("w.json");
    append(tmp.path(), &small_entries(0, 4));
    let r = witness(tmp.path(), &state, &["--name", "w1"]);
    r.assert_ok();
    let vkey = argus([
        "witness",
        "--state",
        state.to_str().unwrap(),
        "--print-vkey",
    ]);
    let vkey = vkey.stdout.trim().to_string();
    // Flip one bit of the witness's signature bytes.
    let mut lines: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("\u{2014} w1 "))
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut raw = b64.decode(lines[i].rsplit(' ').next().unwrap()).unwrap();
    raw[40] ^= 1;
    lines[i] = format!("\u{2014} w1 {}", b64.encode(&raw));
    let bad = write(&work.path().join("bad.txt"), &(lines.join("\n") + "\n"));
    let v = argus([
        "verify",
        tmp.path().to_str().unwrap(),
        "--key",
        &key,
        "--checkpoint",
        &bad,
        "--witness",
        &vkey,
        "-o",
        "json",
    ]);
    v.assert_code(11);
    assert_eq!(v.json()["witnesses"][0]["status"], "invalid", "{}", v.ctx());
    // The log's own signature line is untouched, so without --witness the
    // checkpoint still verifies: the witness check is what caught it.
    argus([
        "verify",
        tmp.path().to_str().unwrap(),
        "--key",
        &key,
        "--checkpoint",
        &bad,
    ])
    .assert_ok();

    // A witness key others can read is refused, and never printed.
    let key_file = work.path().join("w.json.key");
    let secret = std::fs::read_to_string(&key_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = witness(tmp.path(), &state, &[]);
    assert_ne!(refused.code, Some(0), "{}", refused.ctx());
    assert!(!refused.all().contains(secret.trim()), "{}", refused.ctx());
}

#[test]
fn request_mode_checks_the_given_consistency_proof() {
    let (tmp, key) = init_log(None);
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("remote.json");
    append(tmp.path(), &small_entries(0, 3));
    let cp3 = argus(["checkpoint", tmp.path().to_str().unwrap()]);
    let cp3_file = write(&work.path().join("cp3.txt"), &cp3.stdout);
    let req = |body: &str| {
        argus_stdin(
            [
                "witness",
                "--state",
                state.to_str().unwrap(),
                "--log-key",
                &key,
                "--name",
                "remote",
                "--request",
                "-",
            ],
            body.as_bytes(),
        )
    };
    // A new witness needs the log key it is to trust.
    let nokey = argus_stdin(
        [
            "witness",
            "--state",
            state.to_str().unwrap(),
            "--request",
            "-",
        ],
        format!("old 0\n\n{}", cp3.stdout).as_bytes(),
    );
    nokey.assert_code(2);
    let first = req(&format!("old 0\n\n{}", cp3.stdout));
    first.assert_ok();
    assert!(
        first.stdout.starts_with("\u{2014} remote "),
        "{}",
        first.ctx()
    );
    assert_eq!(first.stdout.lines().count(), 1, "only the cosignature line");

    append(tmp.path(), &small_entries(3, 4));
    let cp7 = argus(["checkpoint", tmp.path().to_str().unwrap()]).stdout;
    let bundle = argus([
        "prove",
        tmp.path().to_str().unwrap(),
        "--consistency",
        &cp3_file,
    ]);
    bundle.assert_ok();
    let b64 = base64::engine::general_purpose::STANDARD;
    let proof: Vec<String> = bundle.json()["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| b64.encode(hex::decode(h.as_str().unwrap()).unwrap()))
        .collect();
    assert!(!proof.is_empty());
    // A proof with one hash changed does not show the extension: a fork.
    let mut broken = proof.clone();
    broken[0] = b64.encode([7u8; 32]);
    let r = req(&format!("old 3\n{}\n\n{cp7}", broken.join("\n")));
    r.assert_code(14);
    // A request from the wrong old size is refused too.
    req(&format!("old 2\n{}\n\n{cp7}", proof.join("\n"))).assert_code(14);
    // Malformed requests are usage errors naming the line.
    let m = req(&format!("old 3\nnot-base64!\n\n{cp7}"));
    m.assert_code(2);
    assert!(m.stderr.contains("line 2"), "{}", m.ctx());
    // The true proof is accepted.
    req(&format!("old 3\n{}\n\n{cp7}", proof.join("\n"))).assert_ok();
}
