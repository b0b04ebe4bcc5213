//! Offline proofs (SPEC §11): `argusctl prove` bundles for a real log with
//! several seals verify with `argusctl verify-proof` and with the Python
//! verifier (`tools/pyverify/verify.py proof`), and tampered or forged
//! bundles fail in both with the documented codes (0 valid, 2 malformed,
//! 10 content altered, 11 bad signature or wrong key).
use crate::common::{append, argus, gen_entries, init_at, p, python_ready};
use log_format::merkle::naive_root;
use log_format::{proof, Checkpoint, Hash32};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key: String,
    /// Checkpoint saved after the second of four appends.
    old_cp: PathBuf,
    size: u64,
    old_size: u64,
    tmp: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let key = init_at(&dir, Some(4096));
    let old_cp = tmp.path().join("cp-old.txt");
    let mut size = 0u64;
    let mut old_size = 0;
    for (i, n) in [5usize, 8, 3, 11].into_iter().enumerate() {
        append(&dir, &gen_entries(size, n, 40 + i as u64));
        size += n as u64;
        if i == 1 {
            let r = argus([p(Path::new("checkpoint")), p(&dir)]);
            r.assert_ok();
            std::fs::write(&old_cp, &r.stdout).unwrap();
            old_size = size;
        }
    }
    Fixture {
        dir,
        key,
        old_cp,
        size,
        old_size,
        tmp: tmp.path().to_path_buf(),
        _tmp: tmp,
    }
}

fn prove(f: &Fixture, args: &[&str], name: &str) -> PathBuf {
    let out = f.tmp.join(name);
    let mut a: Vec<String> = vec!["prove".into(), f.dir.display().to_string()];
    a.extend(args.iter().map(|s| s.to_string()));
    a.extend(["-o".into(), out.display().to_string()]);
    argus(&a).assert_ok();
    out
}

/// (argusctl verify-proof code, verify.py proof code or None without Python)
fn codes(bundle: &Path, key: &str) -> (Option<i32>, Option<Option<i32>>, String) {
    let r = argus(["verify-proof", bundle.to_str().unwrap(), "--key", key]);
    let mut detail = format!("rust: {} {}", r.stdout.trim(), r.stderr.trim());
    let py = python_ready().then(|| {
        let o = Command::new("python3")
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/pyverify/verify.py"))
            .args(["proof", bundle.to_str().unwrap(), "--key", key])
            .output()
            .unwrap();
        detail.push_str(&format!(
            " | python: {} {}",
            String::from_utf8_lossy(&o.stdout).trim(),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
        o.status.code()
    });
    (r.code, py, detail)
}

#[track_caller]
fn assert_both(bundle: &Path, key: &str, want: i32) {
    let (rust, py, detail) = codes(bundle, key);
    assert_eq!(rust, Some(want), "{}: {detail}", bundle.display());
    if let Some(py) = py {
        assert_eq!(py, Some(want), "{}: {detail}", bundle.display());
    }
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_variant(f: &Fixture, name: &str, v: &Value) -> PathBuf {
    let path = f.tmp.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path
}

fn entry_hashes(dir: &Path) -> Vec<Hash32> {
    let r = argus([
        p(Path::new("cat")),
        p(dir),
        p(Path::new("-o")),
        p(Path::new("json")),
    ]);
    r.assert_ok();
    r.json_lines()
        .iter()
        .map(|e| {
            let mut h = [0u8; 32];
            hex::decode_to_slice(e["hash"].as_str().unwrap(), &mut h).unwrap();
            h
        })
        .collect()
}

#[test]
fn proof_code_computes_the_roots_the_seals_sign() {
    let f = fixture();
    let hashes = entry_hashes(&f.dir);
    assert_eq!(hashes.len() as u64, f.size);
    let latest = argus([p(Path::new("checkpoint")), p(&f.dir)]);
    let latest = Checkpoint::parse(&latest.stdout).unwrap();
    let old = Checkpoint::parse(&std::fs::read_to_string(&f.old_cp).unwrap()).unwrap();
    for cp in [&latest, &old] {
        let n = cp.seal.tree_size as usize;
        assert_eq!(naive_root(&hashes[..n]), cp.seal.root, "size {n}");
        for m in 0..n {
            let path = proof::inclusion_proof(&hashes[..n], m as u64).unwrap();
            assert!(proof::verify_inclusion(
                m as u64,
                n as u64,
                &hashes[m],
                &path,
                &cp.seal.root
            ));
        }
    }
    let c = proof::consistency_proof(&hashes, old.seal.tree_size).unwrap();
    assert!(proof::verify_consistency(
        old.seal.tree_size,
        latest.seal.tree_size,
        &old.seal.root,
        &latest.seal.root,
        &c
    ));
}

#[test]
fn inclusion_bundles_verify_in_rust_and_python() {
    let f = fixture();
    let (last, mid) = (f.size - 1, f.size / 2);
    for seq in [0, mid, last] {
        let b = prove(&f, &[&seq.to_string()], &format!("latest-{seq}.json"));
        let v = read(&b);
        assert_eq!(v["tree_size"], f.size);
        assert_eq!(v["seq"], seq);
        assert_eq!(v["entry"]["seq"], seq);
        assert_both(&b, &f.key, 0);
    }
    let cp = f.old_cp.display().to_string();
    for seq in [0, f.old_size / 2, f.old_size - 1] {
        let b = prove(
            &f,
            &[&seq.to_string(), "--checkpoint", &cp],
            &format!("old-{seq}.json"),
        );
        let v = read(&b);
        assert_eq!(v["tree_size"], f.old_size);
        assert_eq!(
            v["checkpoint"].as_str().unwrap(),
            std::fs::read_to_string(&f.old_cp).unwrap()
        );
        assert_both(&b, &f.key, 0);
    }
    // The old checkpoint does not cover a later seq: prove refuses.
    let r = argus([
        "prove",
        f.dir.to_str().unwrap(),
        &f.old_size.to_string(),
        "--checkpoint",
        &cp,
    ]);
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    // Without -o the bundle goes to stdout and is the same JSON value.
    let r = argus(["prove", f.dir.to_str().unwrap(), "3"]);
    r.assert_ok();
    let b = write_variant(&f, "stdout.json", &r.json());
    assert_both(&b, &f.key, 0);
}

#[test]
fn tampered_inclusion_bundles_fail_with_the_documented_codes() {
    let f = fixture();
    let b = prove(&f, &[&(f.size / 2).to_string()], "good.json");
    let good = read(&b);
    assert_both(&b, &f.key, 0);

    let flip = |s: &str| -> String {
        let mut c: Vec<char> = s.chars().collect();
        c[7] = if c[7] == '0' { '1' } else { '0' };
        c.into_iter().collect()
    };
    let mut v = good.clone();
    let first = v["audit_path"][1].as_str().unwrap().to_string();
    v["audit_path"][1] = Value::from(flip(&first));
    assert_both(&write_variant(&f, "path.json", &v), &f.key, 10);

    let mut v = good.clone();
    v["entry"]["payload"] = serde_json::json!({"forged": true});
    assert_both(&write_variant(&f, "payload.json", &v), &f.key, 10);

    let mut v = good.clone();
    v["entry"]["kind"] = Value::from("x.other");
    assert_both(&write_variant(&f, "kind.json", &v), &f.key, 10);

    let mut v = good.clone();
    v["tree_size"] = Value::from(f.size + 1);
    assert_both(&write_variant(&f, "size.json", &v), &f.key, 10);

    let mut v = good.clone();
    let eh = v["entry_hash"].as_str().unwrap().to_string();
    v["entry_hash"] = Value::from(flip(&eh));
    assert_both(&write_variant(&f, "entry_hash.json", &v), &f.key, 10);

    // Another key: the checkpoint is not signed by it.
    let other_tmp = tempfile::tempdir().unwrap();
    let other_key = init_at(&other_tmp.path().join("log"), None);
    assert_both(&b, &other_key, 11);

    // An edited checkpoint no longer verifies under the key.
    let mut v = good.clone();
    let cp = v["checkpoint"].as_str().unwrap().to_string();
    let edited = cp.replacen("\ntime ", "\ntime 1", 1);
    v["checkpoint"] = Value::from(edited);
    assert_both(&write_variant(&f, "cp.json", &v), &f.key, 11);

    // Malformed: a field missing or of the wrong form is named, exit 2.
    for (field, bad) in [
        ("audit_path", Value::Null),
        ("seq", Value::from("3")),
        ("entry_hash", Value::from("xyz")),
        ("checkpoint", Value::from("not a checkpoint\n")),
    ] {
        let mut v = good.clone();
        v[field] = bad;
        let path = write_variant(&f, &format!("bad-{field}.json"), &v);
        assert_both(&path, &f.key, 2);
        let r = argus(["verify-proof", path.to_str().unwrap(), "--key", &f.key]);
        assert!(r.stderr.contains(field), "{field} not named{}", r.ctx());
    }
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("audit_path");
    assert_both(&write_variant(&f, "no-path.json", &v), &f.key, 2);
}

#[test]
fn consistency_bundles_verify_and_forgeries_fail() {
    let f = fixture();
    let cp = f.old_cp.display().to_string();
    let b = prove(&f, &["--consistency", &cp], "consistency.json");
    let good = read(&b);
    assert_eq!(good["old_size"], f.old_size);
    assert_eq!(good["new_size"], f.size);
    assert!(!good["proof"].as_array().unwrap().is_empty());
    assert_both(&b, &f.key, 0);

    // A modified proof node.
    let mut v = good.clone();
    let h = v["proof"][0].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
    v["proof"][0] = Value::from(flipped);
    assert_both(&write_variant(&f, "c-proof.json", &v), &f.key, 10);
    // A node dropped.
    let mut v = good.clone();
    v["proof"].as_array_mut().unwrap().pop();
    assert_both(&write_variant(&f, "c-short.json", &v), &f.key, 10);

    // The old checkpoint of another log (same shape, other key and origin).
    let other_tmp = tempfile::tempdir().unwrap();
    let other = other_tmp.path().join("log");
    init_at(&other, None);
    append(&other, &gen_entries(0, f.old_size as usize, 99));
    let r = argus([p(Path::new("checkpoint")), p(&other)]);
    r.assert_ok();
    let other_cp = other_tmp.path().join("cp.txt");
    std::fs::write(&other_cp, &r.stdout).unwrap();
    let forged_cp = Checkpoint::parse(&r.stdout).unwrap();
    let mut v = good.clone();
    v["old_checkpoint"] = Value::from(r.stdout.clone());
    v["old_root"] = Value::from(hex::encode(forged_cp.seal.root));
    assert_both(&write_variant(&f, "c-other-log.json", &v), &f.key, 11);
    // ... and prove refuses to make one from it.
    let r = argus([
        "prove",
        f.dir.to_str().unwrap(),
        "--consistency",
        other_cp.to_str().unwrap(),
    ]);
    assert_ne!(r.code, Some(0), "{}", r.ctx());

    // Sizes or roots that are not the checkpoints'.
    let mut v = good.clone();
    v["old_size"] = Value::from(f.old_size - 1);
    assert_both(&write_variant(&f, "c-size.json", &v), &f.key, 10);
    // Swapped key.
    let k2 = init_at(&other_tmp.path().join("log2"), None);
    assert_both(&b, &k2, 11);
}
