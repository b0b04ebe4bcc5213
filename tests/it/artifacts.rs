//! Artifact signatures (ADR-018 S6): `argusctl sign` writes FILE.sig with
//! the log's key and records artifact.signed; `argusctl verify-artifact`
//! answers 0 for a match and 10 / 11 / 14 for altered content, a bad
//! signature and a file this log never signed, recording each mismatch as
//! artifact.tamper_detected. Locally and through argusd.
use crate::common::{argus, cat_json, init_log, p};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn artifact(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, body).unwrap();
    f
}

fn sign(log: &Path, file: &Path) -> Value {
    let r = argus([
        "sign".as_ref(),
        p(log),
        p(file),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    r.assert_ok();
    r.json()
}

fn verify(log: &Path, file: &Path, code: i32) -> Value {
    let r = argus([
        "verify-artifact".as_ref(),
        p(log),
        p(file),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    r.assert_code(code);
    r.json()
}

fn entries_of(log: &Path, kind: &str) -> Vec<Value> {
    cat_json(log, &[])
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn blake3_hex(f: &Path) -> String {
    blake3::hash(&std::fs::read(f).unwrap())
        .to_hex()
        .to_string()
}

#[test]
fn sign_then_verify_exits_0() {
    let (log, key) = init_log(None);
    let work = tempfile::tempdir().unwrap();
    let f = artifact(work.path(), "agent-1.4.2.tar.gz", b"release bytes\n");
    let s = sign(log.path(), &f);
    assert_eq!(s["blake3"], blake3_hex(&f));
    assert_eq!(s["bytes"], 14);

    let sig: Value =
        serde_json::from_slice(&std::fs::read(work.path().join("agent-1.4.2.tar.gz.sig")).unwrap())
            .unwrap();
    assert_eq!(sig["version"], 1);
    assert_eq!(sig["algorithm"], "ed25519");
    assert_eq!(sig["blake3"], blake3_hex(&f));
    assert_eq!(sig["name"], "agent-1.4.2.tar.gz");
    // The signature verifies with the public key init printed, over the
    // documented message.
    let pk =
        ed25519_dalek::VerifyingKey::from_bytes(&hex::decode(&key).unwrap().try_into().unwrap())
            .unwrap();
    let msg = format!(
        "argus-artifact-v1\n{}\n{}\n{}",
        sig["log_id"].as_str().unwrap(),
        sig["blake3"].as_str().unwrap(),
        sig["name"].as_str().unwrap()
    );
    let bytes: [u8; 64] = hex::decode(sig["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    pk.verify_strict(
        msg.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&bytes),
    )
    .expect("the detached signature verifies");

    let signed = entries_of(log.path(), "artifact.signed");
    assert_eq!(signed.len(), 1);
    assert!(signed[0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("operator:"));
    assert_eq!(signed[0]["payload"]["blake3"], blake3_hex(&f));
    assert_eq!(signed[0]["seq"], s["seq"]);

    let v = verify(log.path(), &f, 0);
    assert_eq!(v["ok"], true);
    assert_eq!(v["signed_seq"], s["seq"]);
    assert!(entries_of(log.path(), "artifact.tamper_detected").is_empty());
    // Text mode says what matched.
    let t = argus(["verify-artifact".as_ref(), p(log.path()), p(&f)]);
    t.assert_ok();
    assert!(
        t.stdout.starts_with("ok: ") && t.stdout.contains("artifact.signed seq 0"),
        "{}",
        t.ctx()
    );
}

#[test]
fn a_flipped_byte_exits_10_and_is_recorded() {
    let (log, _) = init_log(None);
    let work = tempfile::tempdir().unwrap();
    let f = artifact(work.path(), "model.bin", &[7u8; 100_000]);
    let signed_hash = blake3_hex(&f);
    let s = sign(log.path(), &f);
    crate::common::xor_byte(&f, 50_000, 0x01);
    let v = verify(log.path(), &f, 10);
    assert_eq!(v["reason"], "content_altered");
    assert_eq!(v["expected_blake3"], signed_hash);
    assert_eq!(v["actual_blake3"], blake3_hex(&f));

    let t = entries_of(log.path(), "artifact.tamper_detected");
    assert_eq!(t.len(), 1);
    assert!(
        t[0]["actor"].as_str().unwrap().starts_with("argus:"),
        "{}",
        t[0]
    );
    assert_eq!(t[0]["seq"], v["recorded_seq"]);
    assert_eq!(t[0]["parent"], s["seq"]);
    let pl = &t[0]["payload"];
    assert_eq!(pl["reason"], "content_altered");
    assert_eq!(pl["expected_blake3"], signed_hash);
    assert_eq!(pl["actual_blake3"], blake3_hex(&f));
    assert_eq!(pl["signed_seq"], s["seq"]);
    assert_eq!(pl["path"], f.to_str().unwrap());
}

#[test]
fn a_tampered_signature_exits_11() {
    let (log, _) = init_log(None);
    let work = tempfile::tempdir().unwrap();
    let f = artifact(work.path(), "a.txt", b"hello\n");
    sign(log.path(), &f);
    let sig_path = work.path().join("a.txt.sig");
    let mut sig: Value = serde_json::from_slice(&std::fs::read(&sig_path).unwrap()).unwrap();
    let mut s = sig["signature"].as_str().unwrap().to_string();
    let flipped = if s.starts_with('0') { "1" } else { "0" };
    s.replace_range(0..1, flipped);
    sig["signature"] = s.into();
    std::fs::write(&sig_path, sig.to_string()).unwrap();
    let v = verify(log.path(), &f, 11);
    assert_eq!(v["reason"], "bad_signature");
    let t = entries_of(log.path(), "artifact.tamper_detected");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["payload"]["reason"], "bad_signature");

    // A signature made by another log's key is bad too.
    let (other, _) = init_log(None);
    let g = artifact(work.path(), "b.txt", b"other\n");
    sign(other.path(), &g);
    let v = verify(log.path(), &g, 11);
    assert!(
        v["detail"].as_str().unwrap().contains("not this log"),
        "{v}"
    );
}

#[test]
fn a_file_never_signed_exits_14() {
    let (log, _) = init_log(None);
    let work = tempfile::tempdir().unwrap();
    let f = artifact(work.path(), "never.txt", b"nobody signed me\n");
    let v = verify(log.path(), &f, 14);
    assert_eq!(v["reason"], "never_signed");
    assert_eq!(v["expected_blake3"], Value::Null);
    let t = entries_of(log.path(), "artifact.tamper_detected");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["payload"]["reason"], "never_signed");
    assert_eq!(t[0]["payload"]["signed_seq"], Value::Null);
    // The exit codes are documented.
    let h = argus(["verify-artifact", "--help"]);
    h.assert_ok();
    for c in [
        "10  content altered",
        "11  bad signature",
        "14  never signed",
    ] {
        assert!(h.stdout.contains(c), "{c}{}", h.ctx());
    }
}

#[test]
fn a_key_file_readable_by_others_is_refused_naming_it() {
    let (log, _) = init_log(None);
    let key = log.path().join("keys/signing.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let f = artifact(work.path(), "a.txt", b"hello\n");
    let r = argus(["sign".as_ref(), p(log.path()), p(&f)]);
    r.assert_code(1);
    assert!(r.stderr.contains(key.to_str().unwrap()), "{}", r.ctx());
    assert!(
        r.stderr.contains("readable by group or others"),
        "{}",
        r.ctx()
    );
    assert!(
        !work.path().join("a.txt.sig").exists(),
        "no signature written"
    );
    assert!(entries_of(log.path(), "artifact.signed").is_empty());
}

struct Daemon(Child);

impl Daemon {
    fn start(dir: &Path) -> Self {
        let d = Self(
            Command::new(env!("CARGO_BIN_EXE_argusd"))
                .arg("--dir")
                .arg(dir)
                .args(["--listen", "127.0.0.1:0", "--auditor", "off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn argusd"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = std::fs::read(dir.join("argusd.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|v| v["pid"].as_u64() == Some(u64::from(d.0.id())));
            if ready {
                return d;
            }
            assert!(Instant::now() < deadline, "argusd did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sign_and_verify_record_through_a_running_argusd() {
    let (log, _) = init_log(None);
    let work = tempfile::tempdir().unwrap();
    let f = artifact(work.path(), "a.txt", b"hello\n");
    let daemon = Daemon::start(log.path());
    // The daemon holds the writer lock: with no wait allowed, a local
    // append would fail at once, so these records went through argusd.
    let r = argus([
        "--lock-timeout".as_ref(),
        "0".as_ref(),
        "sign".as_ref(),
        p(log.path()),
        p(&f),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    r.assert_ok();
    let v = argus([
        "--lock-timeout".as_ref(),
        "0".as_ref(),
        "verify-artifact".as_ref(),
        p(log.path()),
        p(&f),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    v.assert_ok();
    assert_eq!(v.json()["signed_seq"], r.json()["seq"]);
    std::fs::write(&f, b"jello\n").unwrap();
    let t = argus([
        "--lock-timeout".as_ref(),
        "0".as_ref(),
        "verify-artifact".as_ref(),
        p(log.path()),
        p(&f),
    ]);
    t.assert_code(10);
    drop(daemon);
    let kinds: Vec<Value> = cat_json(log.path(), &[])
        .into_iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, ["artifact.signed", "artifact.tamper_detected"]);
}

/// A signature document as a holder of `key` makes it for this log (what
/// a thief of a retired key could write).
fn forged_doc(log: &Path, file: &Path, key: &ed25519_dalek::SigningKey) -> Value {
    use ed25519_dalek::Signer;
    let meta: Value =
        serde_json::from_slice(&std::fs::read(log.join("argus.json")).unwrap()).unwrap();
    let log_id = meta["log_id"].as_str().unwrap();
    let id: [u8; 16] = hex::decode(log_id).unwrap().try_into().unwrap();
    let name = file.file_name().unwrap().to_str().unwrap();
    let blake3 = blake3_hex(file);
    let msg = format!("argus-artifact-v1\n{log_id}\n{blake3}\n{name}");
    serde_json::json!({
        "version": 1, "algorithm": "ed25519", "name": name,
        "bytes": std::fs::metadata(file).unwrap().len(), "blake3": blake3,
        "log_id": log_id,
        "key_id": hex::encode(log_format::seal::key_id(&id, &key.verifying_key())),
        "signature": hex::encode(key.sign(msg.as_bytes()).to_bytes()),
    })
}

/// SPEC §4.7 / THREAT_MODEL T53: a signature is the statement of the key
/// of the epoch that records it. After a rotation, the retired key (stolen
/// before it was erased) signs a new artifact: refused as retired (11), and
/// refused naming both keys and the seq when the log records the content
/// in a later epoch; `sign` uses the current key and records only its
/// signatures; an old signature recorded in its own epoch still verifies.
#[test]
fn a_retired_key_cannot_sign_an_artifact_after_its_epoch() {
    let (log, _) = init_log(None);
    let work = tempfile::tempdir().unwrap();
    let meta: Value =
        serde_json::from_slice(&std::fs::read(log.path().join("argus.json")).unwrap()).unwrap();
    let key0 = crate::common::forge::read_key(&log.path().join(meta["key_file"].as_str().unwrap()));
    let a = artifact(work.path(), "a.bin", b"signed in epoch 0\n");
    sign(log.path(), &a);
    let rot = argus([
        "key".as_ref(),
        "rotate".as_ref(),
        p(log.path()),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    rot.assert_ok();
    let rot = rot.json();
    let cert_seq = rot["seq"].as_u64().unwrap();
    let kid1 = rot["key_id"].as_str().unwrap().to_string();
    // Signed and recorded in epoch 0: still good.
    verify(log.path(), &a, 0);

    // A new artifact signed by the retired key, nothing recorded.
    let b = artifact(work.path(), "b.bin", b"the thief's build\n");
    std::fs::write(
        work.path().join("b.bin.sig"),
        forged_doc(log.path(), &b, &key0).to_string(),
    )
    .unwrap();
    let v = verify(log.path(), &b, 11);
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("epoch 0") && detail.contains(&format!("retired at seq {cert_seq}")),
        "{v}"
    );

    // `sign` signs with the current key and records it in epoch 1.
    let c = artifact(work.path(), "c.bin", b"signed in epoch 1\n");
    let s = sign(log.path(), &c);
    let sig: Value =
        serde_json::from_slice(&std::fs::read(work.path().join("c.bin.sig")).unwrap()).unwrap();
    assert_eq!(sig["key_id"], kid1.as_str(), "{sig} {s}");
    verify(log.path(), &c, 0);
    let seq_c = entries_of(log.path(), "artifact.signed")
        .iter()
        .rev()
        .find(|e| e["payload"]["blake3"] == blake3_hex(&c).as_str())
        .and_then(|e| e["seq"].as_u64())
        .unwrap();
    // The retired key's signature over content the log records in epoch 1.
    let forged = forged_doc(log.path(), &c, &key0);
    std::fs::write(work.path().join("c.bin.sig"), forged.to_string()).unwrap();
    let v = verify(log.path(), &c, 11);
    let detail = v["detail"].as_str().unwrap();
    let kid0 = forged["key_id"].as_str().unwrap();
    assert!(
        detail.contains(kid0) && detail.contains(&kid1) && detail.contains(&format!("seq {seq_c}")),
        "{v}"
    );
    // Nor can it be recorded: sign --signed-document refuses it, writes nothing.
    let d = artifact(work.path(), "d.bin", b"to be recorded\n");
    let before = entries_of(log.path(), "artifact.signed").len();
    let r = argus([
        "sign".as_ref(),
        p(log.path()),
        p(&d),
        "--signed-document".as_ref(),
        forged_doc(log.path(), &d, &key0).to_string().as_ref(),
    ]);
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(r.stderr.contains("retired"), "{}", r.ctx());
    assert_eq!(entries_of(log.path(), "artifact.signed").len(), before);
}
