//! Proof bundles after key rotations (SPEC §11 `key_chain`, §4.7;
//! THREAT_MODEL T53): a bundle whose checkpoint a later epoch's key signed
//! carries the `key.rotated` entries from epoch 1 to the signing epoch,
//! each proved in the same checkpoint's tree, so `verify-proof --key FIRST`
//! and `verify.py proof --key FIRST` follow the certificates offline. A
//! chain item dropped, reordered, altered or not a certificate, and a
//! checkpoint signed by an old key past its epoch, fail in both verifiers
//! with the same code.
use crate::common::forge::read_key;
use crate::common::{append, argus, init_at, p, python_ready, small_entries};
use ed25519_dalek::SigningKey;
use log_format::{Checkpoint, Seal};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A log rotated twice: epoch 0 holds seqs 0..=3 (seq 3 is the first
/// key.rotated), epoch 1 seqs 4..=7 (seq 7 the second), epoch 2 seqs 8, 9.
pub(crate) struct Rotated {
    pub tmp: tempfile::TempDir,
    pub first: String,
    /// The private keys of epochs 0, 1, 2, read while their files existed.
    pub keys: Vec<SigningKey>,
    /// A checkpoint of size 3, saved before the first rotation (epoch 0).
    pub cp0: PathBuf,
}

impl Rotated {
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("log")
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

fn key_file(dir: &Path) -> PathBuf {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("argus.json")).unwrap()).unwrap();
    dir.join(meta["key_file"].as_str().unwrap())
}

pub(crate) fn rotated() -> Rotated {
    let tmp2 = tempfile::tempdir().unwrap();
    let dir = tmp2.path().join("log");
    let first = init_at(&dir, None);
    let mut keys = vec![read_key(&key_file(&dir))];
    append(&dir, &small_entries(0, 3));
    let cp = argus(["checkpoint".as_ref(), p(&dir)]);
    cp.assert_ok();
    let cp0 = tmp2.path().join("cp0.txt");
    std::fs::write(&cp0, &cp.stdout).unwrap();
    for (round, next) in [(1u64, 4u64), (2, 8)] {
        let r = argus(["key".as_ref(), "rotate".as_ref(), p(&dir)]);
        r.assert_ok();
        keys.push(read_key(&key_file(&dir)));
        append(&dir, &small_entries(next, if round == 1 { 3 } else { 2 }));
    }
    Rotated {
        tmp: tmp2,
        first,
        keys,
        cp0,
    }
}

pub(crate) fn prove(r: &Rotated, args: &[&str], name: &str) -> PathBuf {
    let out = r.file(name);
    let mut a: Vec<String> = vec!["prove".into(), r.dir().display().to_string()];
    a.extend(args.iter().map(|s| s.to_string()));
    a.extend(["-o".into(), out.display().to_string()]);
    argus(&a).assert_ok();
    out
}

pub(crate) fn job_bundle(r: &Rotated, job: &str, name: &str) -> PathBuf {
    let out = r.file(name);
    let d = r.dir();
    argus([
        "replay",
        d.to_str().unwrap(),
        job,
        "--proof",
        out.to_str().unwrap(),
    ])
    .assert_ok();
    out
}

/// (argusctl verify-proof, verify.py proof (None without Python), output)
pub(crate) fn codes(bundle: &Path, key: &str) -> (Option<i32>, Option<Option<i32>>, String) {
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

/// Both verifiers give `want`; returns their output.
#[track_caller]
pub(crate) fn assert_both(bundle: &Path, key: &str, want: i32) -> String {
    let (rust, py, detail) = codes(bundle, key);
    assert_eq!(rust, Some(want), "{}: {detail}", bundle.display());
    if let Some(py) = py {
        assert_eq!(py, Some(want), "{}: {detail}", bundle.display());
    }
    detail
}

pub(crate) fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub(crate) fn variant(r: &Rotated, name: &str, v: &Value) -> PathBuf {
    let path = r.file(name);
    std::fs::write(&path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path
}

fn chain_seqs(b: &Value) -> Vec<u64> {
    b["key_chain"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["seq"].as_u64()).collect())
        .unwrap_or_default()
}

fn public(k: &SigningKey) -> String {
    hex::encode(k.verifying_key().as_bytes())
}

#[test]
fn bundles_of_a_rotated_log_verify_from_the_first_key() {
    let r = rotated();
    // Inclusion of an epoch-0 entry and of an epoch-2 entry, both against
    // the latest checkpoint (size 10, signed by epoch 2's key).
    for seq in ["1", "9"] {
        let b = prove(&r, &[seq], &format!("incl{seq}.json"));
        let v = read(&b);
        assert_eq!(v["tree_size"], 10, "{v}");
        assert_eq!(chain_seqs(&v), vec![3, 7], "{v}");
        let out = assert_both(&b, &r.first, 0);
        assert!(out.contains("epoch 2's key"), "{out}");
        // The chain starts at the first key: the later key that signed the
        // checkpoint is not a place to start from.
        let out = assert_both(&b, &public(&r.keys[2]), 11);
        assert!(out.contains("key_chain[0]"), "{out}");
    }
    // A job whose entries straddle the first rotation (seqs 1 and 4).
    let job = job_bundle(&r, "job-1", "job.json");
    let v = read(&job);
    let seqs: Vec<u64> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(seqs, vec![1, 4], "{v}");
    assert_eq!(chain_seqs(&v), vec![3, 7], "{v}");
    assert_both(&job, &r.first, 0);
    // Consistency from the epoch-0 checkpoint to the epoch-2 one.
    let cons = prove(&r, &["--consistency", r.cp0.to_str().unwrap()], "cons.json");
    let v = read(&cons);
    assert_eq!(
        (v["old_size"].clone(), v["new_size"].clone()),
        (json!(3), json!(10))
    );
    assert_eq!(chain_seqs(&v), vec![3, 7], "{v}");
    assert_both(&cons, &r.first, 0);
    // A checkpoint epoch 0 signed needs no chain: the bundle is the one a
    // log that never rotated gets.
    let old = prove(
        &r,
        &["1", "--checkpoint", r.cp0.to_str().unwrap()],
        "old.json",
    );
    let v = read(&old);
    assert!(v.get("key_chain").is_none(), "{v}");
    assert_both(&old, &r.first, 0);
}

#[test]
fn a_bundle_without_its_chain_verifies_only_against_its_signer() {
    let r = rotated();
    let b = prove(&r, &["9"], "incl.json");
    let mut v = read(&b);
    v.as_object_mut().unwrap().remove("key_chain");
    let bare = variant(&r, "bare.json", &v);
    let out = assert_both(&bare, &r.first, 11);
    assert!(
        out.contains("key_chain"),
        "the message names the way out: {out}"
    );
    // The key that signed it still checks it (a statement about that key
    // only; SPEC §11).
    assert_both(&bare, &public(&r.keys[2]), 0);
}

#[test]
fn a_tampered_chain_fails_in_both_naming_the_item() {
    let r = rotated();
    let mut seen = Vec::new();
    for (kind, base) in [
        ("incl", prove(&r, &["1"], "incl.json")),
        ("job", job_bundle(&r, "job-1", "job.json")),
        (
            "cons",
            prove(&r, &["--consistency", r.cp0.to_str().unwrap()], "cons.json"),
        ),
    ] {
        let v = read(&base);
        let chain = v["key_chain"].as_array().unwrap().clone();
        let with = |name: &str, chain: Vec<Value>| {
            let mut w = v.clone();
            w["key_chain"] = Value::Array(chain);
            variant(&r, &format!("{kind}-{name}.json"), &w)
        };
        // One certificate flipped: the entry is no longer the log's (10).
        let mut flipped = chain.clone();
        let cert = flipped[1]["entry"]["payload"]["cert"].as_str().unwrap();
        let c = if cert.starts_with('0') { "1" } else { "0" };
        flipped[1]["entry"]["payload"]["cert"] = json!(format!("{c}{}", &cert[1..]));
        let out = assert_both(&with("flipped", flipped), &r.first, 10);
        assert!(out.contains("key_chain[1]"), "{out}");
        // Epoch 1's certificate dropped: epoch 2's does not follow epoch 0 (11).
        let out = assert_both(&with("skip", chain[1..].to_vec()), &r.first, 11);
        assert!(out.contains("key_chain[0]"), "{out}");
        // Reordered (11).
        let out = assert_both(
            &with("reorder", vec![chain[1].clone(), chain[0].clone()]),
            &r.first,
            11,
        );
        assert!(out.contains("key_chain[0]"), "{out}");
        // The last certificate dropped: the table ends at epoch 1, whose key
        // did not sign the checkpoint (11).
        let out = assert_both(&with("short", chain[..1].to_vec()), &r.first, 11);
        assert!(out.contains("epoch 1"), "{out}");
        // An ordinary entry of the log in a certificate's place (11).
        let other = read(&prove(&r, &["5"], "other.json"));
        let mut not_cert = chain.clone();
        not_cert[1] = json!({
            "seq": other["seq"], "entry": other["entry"], "entry_hash": other["entry_hash"],
            "leaf_hash": other["leaf_hash"], "audit_path": other["audit_path"],
        });
        let out = assert_both(&with("notcert", not_cert), &r.first, 11);
        assert!(out.contains("not a key.rotated"), "{out}");
        seen.push(kind);
    }
    assert_eq!(seen.len(), 3);
}

/// Epoch 0's key, stolen before it was erased, signs a checkpoint of the
/// current tree: the chain the bundle carries says epoch 2 must sign it.
#[test]
fn an_old_key_cannot_sign_a_checkpoint_after_its_epoch() {
    let r = rotated();
    let resign = |cp: &str, key: &SigningKey| -> String {
        let c = Checkpoint::parse(cp).unwrap();
        let s = &c.seal;
        Seal::sign(&c.log_id, key, s.tree_size, s.root, s.head, s.ts_ns).checkpoint_text(&c.log_id)
    };
    let base = prove(&r, &["9"], "incl.json");
    let mut v = read(&base);
    v["checkpoint"] = json!(resign(v["checkpoint"].as_str().unwrap(), &r.keys[0]));
    let out = assert_both(&variant(&r, "old-key.json", &v), &r.first, 11);
    assert!(out.contains("epoch 2"), "{out}");
    // Epoch 1's key, past its epoch, likewise.
    v["checkpoint"] = json!(resign(v["checkpoint"].as_str().unwrap(), &r.keys[1]));
    assert_both(&variant(&r, "mid-key.json", &v), &r.first, 11);
    // A consistency bundle whose OLD checkpoint (size 3, epoch 0) is
    // re-signed by epoch 1's key, a later key over earlier entries.
    let cons = prove(&r, &["--consistency", r.cp0.to_str().unwrap()], "cons.json");
    let mut c = read(&cons);
    c["old_checkpoint"] = json!(resign(c["old_checkpoint"].as_str().unwrap(), &r.keys[1]));
    let out = assert_both(&variant(&r, "cons-old.json", &c), &r.first, 11);
    assert!(out.contains("old_checkpoint"), "{out}");
}
