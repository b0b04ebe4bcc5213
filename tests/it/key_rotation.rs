//! Key rotation with forward security (SPEC §4.7, THREAT_MODEL T50): every
//! seal is signed by the key of the epoch its last seq falls in, and
//! `verify --key FIRST` follows the `key.rotated` certificates from the
//! first key. A thief of today's key cannot re-sign yesterday's seals; an
//! old key cannot sign past its epoch; a certificate not by the outgoing
//! key, or written by anyone but `argusctl key rotate`, is refused.
use crate::common::forge::{forge_commit_with, read_key};
use crate::common::{
    append, argus, argus_stdin, init_log, p, parse_segment, python_ready, segment_files,
    small_entries,
};
use ed25519_dalek::SigningKey;
use log_format::Seal;
use serde_json::{json, Value};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn meta(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("argus.json")).unwrap()).unwrap()
}

fn log_id(dir: &Path) -> [u8; 16] {
    hex::decode(meta(dir)["log_id"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join(meta(dir)["key_file"].as_str().unwrap())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn rotate(dir: &Path) -> Value {
    let r = argus([
        "key".as_ref(),
        "rotate".as_ref(),
        p(dir),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    r.assert_ok();
    r.json()
}

fn verify(dir: &Path, key: &str) -> crate::common::Run {
    argus([
        "verify".as_ref(),
        p(dir),
        "--key".as_ref(),
        key.as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
    ])
}

fn pyverify(dir: &Path, key: &str) -> (Option<i32>, String) {
    let out = Command::new("python3")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/pyverify/verify.py"))
        .args([dir.to_str().unwrap(), "--key", key])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A log with two rotations between appends: epoch 0 holds seqs 0..=3
/// (seq 3 is the first key.rotated), epoch 1 seqs 4..=7, epoch 2 from 8.
/// Returns the dir, the first public key and the three private keys, read
/// from their files while they existed.
fn rotated_twice() -> (tempfile::TempDir, String, Vec<SigningKey>) {
    let (tmp, first) = init_log(None);
    let dir = tmp.path();
    let mut keys = vec![read_key(&key_path(dir))];
    assert_eq!(mode(&key_path(dir)), 0o600, "the first key file");
    append(dir, &small_entries(0, 3));
    let r1 = rotate(dir);
    assert_eq!(
        (r1["epoch"].as_u64(), r1["seq"].as_u64()),
        (Some(1), Some(3)),
        "{r1}"
    );
    assert_eq!(mode(&key_path(dir)), 0o600, "epoch 1's key file");
    keys.push(read_key(&key_path(dir)));
    append(dir, &small_entries(4, 3));
    let r2 = rotate(dir);
    assert_eq!(
        (r2["epoch"].as_u64(), r2["from_seq"].as_u64()),
        (Some(2), Some(8)),
        "{r2}"
    );
    keys.push(read_key(&key_path(dir)));
    append(dir, &small_entries(8, 2));
    (tmp, first, keys)
}

#[test]
fn two_rotations_verify_from_the_first_key_and_old_keys_are_gone() {
    let (tmp, first, keys) = rotated_twice();
    let dir = tmp.path();
    let v = verify(dir, &first);
    v.assert_ok();
    let report = v.json();
    assert_eq!(
        report["key_epochs"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert_eq!(report["sealed_size"], 10);
    // Only the current epoch's key file is left, mode 0600.
    let files: Vec<String> = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, vec!["epoch-2.key".to_string()]);
    assert_eq!(mode(&dir.join("keys/epoch-2.key")), 0o600);
    // key show: three epochs, their ranges and certificates, public only.
    let show = argus([
        "key".as_ref(),
        "show".as_ref(),
        p(dir),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    show.assert_ok();
    let s = show.json();
    assert_eq!(s["current_epoch"], 2, "{s}");
    let eps = s["epochs"].as_array().unwrap();
    let ranges: Vec<_> = eps
        .iter()
        .map(|e| {
            (
                e["from_seq"].clone(),
                e["to_seq"].clone(),
                e["cert_seq"].clone(),
            )
        })
        .collect();
    assert_eq!(
        ranges,
        vec![
            (json!(0), json!(4), Value::Null),
            (json!(4), json!(8), json!(3)),
            (json!(8), Value::Null, json!(7)),
        ]
    );
    let text = argus([
        "key".as_ref(),
        "show".as_ref(),
        p(dir),
        "--key".as_ref(),
        first.as_ref(),
    ]);
    text.assert_ok();
    for (i, k) in keys.iter().enumerate() {
        let public = hex::encode(k.verifying_key().as_bytes());
        let private = hex::encode(k.to_bytes());
        assert_eq!(eps[i]["public_key"], public.as_str());
        assert!(text.stdout.contains(&public), "{}", text.stdout);
        for out in [&show.all(), &text.all(), &v.all()] {
            assert!(!out.contains(&private), "epoch {i}'s private key printed");
        }
    }
    // The help names no key either, and has examples.
    let help = argus(["key", "rotate", "--help"]);
    assert!(help.stdout.contains("Examples:"), "{}", help.stdout);
    let last = hex::encode(keys[2].to_bytes());
    assert!(!help.all().contains(&last));
}

/// Rewrites the seal frame `seal_at` of `seg` as signed by `key` (a valid
/// signature, a correct CRC): what a thief holding `key` could do.
fn resign_seal(seg: &Path, seal_at: u64, log_id: &[u8; 16], key: &SigningKey) {
    let map = parse_segment(seg);
    let f = map
        .seals()
        .into_iter()
        .find(|f| f.offset == seal_at)
        .unwrap();
    let bytes = std::fs::read(seg).unwrap();
    let body = &bytes[f.body_at() as usize..f.end() as usize];
    let old = Seal::decode(body, f.body_at()).unwrap();
    let new = Seal::sign(log_id, key, old.tree_size, old.root, old.head, old.ts_ns);
    let mut frame = bytes[f.len_at() as usize..f.end() as usize].to_vec();
    frame[5..].copy_from_slice(&new.encode());
    let file = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
    file.write_all_at(&frame, f.len_at()).unwrap();
    file.write_all_at(&crc32fast::hash(&frame).to_le_bytes(), f.crc_at())
        .unwrap();
}

fn assert_signature_failure(dir: &Path, first: &str, seq: u64, epoch: u64) -> Value {
    let v = verify(dir, first);
    v.assert_code(11);
    let f = v.json()["failure"].clone();
    assert_eq!(f["seq"], seq, "{f}");
    let msg = f["message"].as_str().unwrap_or("");
    assert!(msg.contains(&format!("epoch {epoch}")), "{msg}");
    f
}

#[test]
fn a_later_key_cannot_re_sign_a_seal_of_an_earlier_epoch() {
    // (segment, seal index, the seal's last seq, its epoch, the later key):
    // epoch 0's seal over seqs 0..=2 re-signed with epoch 1's key (whose
    // certificate is in that same segment); the seal over the key.rotated
    // entry itself (seq 3, the last of epoch 0, walked after the
    // certificate) likewise; and epoch 1's seal over seqs 4..=6 re-signed
    // with epoch 2's key.
    for (segment, seal, seq, epoch, thief) in [(0, 1, 2, 0, 1), (0, 2, 3, 0, 1), (1, 0, 6, 1, 2)] {
        let (tmp, first, keys) = rotated_twice();
        let dir = tmp.path();
        let seg = segment_files(dir).remove(segment);
        let target = parse_segment(&seg).seals()[seal];
        resign_seal(&seg, target.offset, &log_id(dir), &keys[thief]);
        let f = assert_signature_failure(dir, &first, seq, epoch);
        assert_eq!(f["offset"], target.offset, "{f}");
        assert_eq!(f["cause"], "seal_key_id", "{f}");
        if python_ready() {
            let (code, text) = pyverify(dir, &first);
            assert_eq!(code, Some(11), "{text}");
            assert!(text.contains(&format!("epoch {epoch}")), "{text}");
        }
    }
}

#[test]
fn an_old_key_cannot_sign_beyond_its_epoch() {
    let (tmp, first, keys) = rotated_twice();
    let dir = tmp.path();
    // Epoch 0's key, copied before it was erased, seals a new commit.
    forge_commit_with(
        dir,
        &keys[0],
        "argus",
        None,
        &[json!({"kind": "x.t", "payload": {}})],
    );
    assert_signature_failure(dir, &first, 10, 2);
    if python_ready() {
        let (code, text) = pyverify(dir, &first);
        assert_eq!(code, Some(11), "{text}");
    }
}

#[test]
fn a_certificate_not_by_the_outgoing_key_is_refused() {
    let (tmp, first, keys) = rotated_twice();
    let dir = tmp.path();
    let id = log_id(dir);
    // A key.rotated that hands epoch 3 to the forger's key, its cert
    // signed by the forger's key (not epoch 2's), sealed with the stolen
    // current key so only the certificate is wrong.
    // Everything else in it is right, the proof of possession included.
    let forger = SigningKey::from_bytes(&[42; 32]);
    let mut payload = log_format::epoch::rotation_payload(&id, 3, 10, &forger, &forger);
    let prev = log_format::seal::key_id(&id, &keys[2].verifying_key());
    let msg = log_format::epoch::rotation_message(&id, 3, &forger.verifying_key(), &prev, 11);
    let sig = hex::encode(ed25519_dalek::Signer::sign(&forger, &msg).to_bytes());
    payload.insert("prev_key_id".into(), hex::encode(prev).into());
    payload.insert("cert".into(), sig.clone().into());
    payload.insert("possession".into(), sig.into());
    let e = json!({"kind": "key.rotated", "payload": Value::Object(payload)});
    forge_commit_with(dir, &keys[2], "argus", None, &[e]);
    let v = verify(dir, &first);
    v.assert_code(11);
    let f = v.json()["failure"].clone();
    assert_eq!(f["cause"], "key_rotation", "{f}");
    assert_eq!(f["seq"], 10, "{f}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("not signed by epoch 2's key"),
        "{f}"
    );
    if python_ready() {
        let (code, text) = pyverify(dir, &first);
        assert_eq!(code, Some(11), "{text}");
        assert!(
            text.contains("certificate is not signed by epoch 2's key"),
            "{text}"
        );
    }
}

#[test]
fn a_key_rotated_not_written_by_argus_is_refused() {
    let (tmp, first, keys) = rotated_twice();
    let dir = tmp.path();
    let id = log_id(dir);
    // A well-formed certificate by the outgoing key, but the entry's actor
    // is an agent: only `argusctl key rotate` writes key.rotated.
    let next = SigningKey::from_bytes(&[7; 32]);
    let payload = log_format::epoch::rotation_payload(&id, 3, 10, &keys[2], &next);
    let e = json!({"kind": "key.rotated", "payload": Value::Object(payload)});
    forge_commit_with(dir, &keys[2], "agent:uid:1000:mallory", None, &[e]);
    let v = verify(dir, &first);
    v.assert_code(11);
    assert_eq!(v.json()["failure"]["cause"], "key_rotation", "{}", v.stdout);
}

#[test]
fn append_refuses_key_rotated_and_writes_nothing() {
    let (tmp, first) = init_log(None);
    let dir = tmp.path();
    // A well-formed entry, even with a true certificate by the log's key:
    // the writer class alone refuses it.
    let key = read_key(&key_path(dir));
    let next = SigningKey::from_bytes(&[7; 32]);
    let payload = log_format::epoch::rotation_payload(&log_id(dir), 1, 0, &key, &next);
    let line = json!({"kind": "key.rotated", "payload": Value::Object(payload)}).to_string() + "\n";
    let r = argus_stdin(["append".as_ref(), p(dir)], line.as_bytes());
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(r.stderr.contains("key.rotated"), "{}", r.stderr);
    assert!(r.stderr.contains("argusctl key rotate"), "{}", r.stderr);
    let v = verify(dir, &first);
    v.assert_ok();
    assert_eq!(v.json()["entries"], 0);
}

#[test]
fn a_group_readable_epoch_key_is_refused_without_printing_it() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    rotate(dir);
    let path = key_path(dir);
    let private = hex::encode(read_key(&path).to_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let line = json!({"kind": "x.t", "payload": {}}).to_string() + "\n";
    let r = argus_stdin(["append".as_ref(), p(dir)], line.as_bytes());
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(
        r.stderr.contains("readable by group or others"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("epoch-1.key"), "{}", r.stderr);
    assert!(!r.all().contains(&private));
    let r = argus(["key".as_ref(), "rotate".as_ref(), p(dir)]);
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(!r.all().contains(&private));
}

/// A kill -9 at each step of a rotation (the failpoint aborts the
/// process): the log opens, appends, verifies, and a retry rotates.
#[test]
fn a_crash_at_any_step_of_a_rotation_leaves_a_log_that_opens_and_verifies() {
    for (step, durable) in [
        ("key-written", false),
        ("entry-durable", true),
        ("rolled", true),
        ("meta-updated", true),
    ] {
        let (tmp, first) = init_log(None);
        let dir = tmp.path();
        append(dir, &small_entries(0, 2));
        let out = crate::common::cmd(["key".as_ref(), "rotate".as_ref(), p(dir)])
            .env(argus::log::writer::ROTATE_FAILPOINT_ENV, step)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{step}: the failpoint did not fire");
        // The next writer settles the rotation and appends.
        let acks = append(dir, &small_entries(2, 1));
        let epochs_now = if durable { 2 } else { 1 };
        let v = verify(dir, &first);
        v.assert_ok();
        assert_eq!(
            v.json()["key_epochs"].as_array().map(Vec::len),
            Some(epochs_now),
            "{step}: {}",
            v.stdout
        );
        assert_eq!(acks[0].seq, if durable { 3 } else { 2 }, "{step}");
        let files: Vec<String> = std::fs::read_dir(dir.join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            files.len(),
            1,
            "{step}: only the current key is left: {files:?}"
        );
        assert!(meta(dir).get("pending_rotation").is_none(), "{step}");
        // A retry rotates again and the log still verifies.
        let r = rotate(dir);
        assert_eq!(r["epoch"], epochs_now as u64, "{step}: {r}");
        append(dir, &small_entries(10, 1));
        verify(dir, &first).assert_ok();
    }
}

/// An import copies entries with their actor; a rotated log's key.rotated
/// entries certify the source log's keys, not the copy's (it has its own
/// key), so the import skips them, counts them, remaps the parents of the
/// rest, and the copy verifies from its own first key with one epoch.
#[test]
fn an_import_of_a_rotated_log_skips_its_key_rotated_records() {
    let (src, _, _) = rotated_twice();
    // A parent link across skipped records is remapped (seq 10 -> 2).
    append(
        src.path(),
        &[json!({"kind": "x.test.entry", "parent": 2, "payload": {"child": true}})],
    );
    let export = argus(["export".as_ref(), p(src.path())]);
    export.assert_ok();
    let (dst, first) = init_log(None);
    let r = argus_stdin(["import".as_ref(), p(dst.path())], export.stdout.as_bytes());
    r.assert_ok();
    let out = r.json();
    assert_eq!(out["skipped_key_rotated"], 2, "{out}");
    assert_eq!(out["skipped_key_rotated_seqs"], json!([3, 7]), "{out}");
    assert_eq!(out["imported"], 9, "{out}");
    let v = verify(dst.path(), &first);
    v.assert_ok();
    let report = v.json();
    assert_eq!(report["entries"], 9, "{report}");
    assert_eq!(report["key_epochs"].as_array().map(Vec::len), Some(1));
    let cat = |dir: &Path| -> Vec<Value> {
        let c = argus(["cat".as_ref(), p(dir), "-o".as_ref(), "json".as_ref()]);
        c.assert_ok();
        c.json_lines()
    };
    let source = cat(src.path());
    let copy = cat(dst.path());
    assert!(copy.iter().all(|e| e["kind"] != "key.rotated"));
    // Every other record is there, in order, with its fields.
    let kept: Vec<&Value> = source
        .iter()
        .filter(|e| e["kind"] != "key.rotated")
        .collect();
    assert_eq!(kept.len(), copy.len());
    for (a, b) in kept.iter().zip(&copy) {
        for f in ["kind", "job_id", "actor", "payload"] {
            assert_eq!(a[f], b[f], "{f}: {a} / {b}");
        }
    }
    let child = copy.last().unwrap();
    assert_eq!(child["parent"], 2, "{child}");
}

/// A record whose parent is a skipped key.rotated cannot keep its link:
/// the import refuses it with its line and writes nothing.
#[test]
fn an_import_refuses_a_parent_that_names_a_key_rotated_record() {
    let (src, _, _) = rotated_twice();
    append(
        src.path(),
        &[json!({"kind": "x.test.entry", "parent": 3, "payload": {}})],
    );
    let export = argus(["export".as_ref(), p(src.path())]);
    export.assert_ok();
    let (dst, first) = init_log(None);
    let r = argus_stdin(["import".as_ref(), p(dst.path())], export.stdout.as_bytes());
    assert_eq!(r.code, Some(2), "{}", r.ctx());
    assert!(r.stderr.contains("line 11"), "{}", r.stderr);
    assert!(
        r.stderr.contains("parent 3 is a key.rotated"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was imported"), "{}", r.stderr);
    let v = verify(dst.path(), &first);
    v.assert_ok();
    assert_eq!(v.json()["entries"], 0);
}

/// A witness pinned to the first key follows the log's certificates: it
/// cosigns the checkpoints of later epochs, and refuses when an epoch the
/// log's metadata claims has no certificate behind it.
#[test]
fn a_witness_follows_rotations_from_the_key_it_pinned() {
    let (tmp, first) = init_log(None);
    let dir = tmp.path();
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("w.state");
    let wkey = work.path().join("w.key");
    let witness = |extra: &[&str]| {
        let mut args = vec![
            "witness".to_string(),
            dir.display().to_string(),
            "--state".into(),
            state.display().to_string(),
            "--key-file".into(),
            wkey.display().to_string(),
            "--log-key".into(),
            first.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        argus(&args)
    };
    append(dir, &small_entries(0, 3));
    witness(&[]).assert_ok();
    rotate(dir);
    append(dir, &small_entries(4, 3));
    let r = witness(&["-o", "json"]);
    r.assert_ok();
    assert_eq!(r.json()["tree_size"], 7, "{}", r.ctx());
    rotate(dir);
    append(dir, &small_entries(8, 1));
    witness(&[]).assert_ok();

    // argus.json claims a fourth epoch whose key.rotated the log does not
    // hold: the witness refuses rather than trust the metadata.
    append(dir, &small_entries(9, 1));
    let mut m = meta(dir);
    let epochs = m["key_epochs"]
        .as_array_mut()
        .expect("argus.json lists key_epochs");
    let mut fake = epochs.last().unwrap().clone();
    fake["epoch"] = json!(fake["epoch"].as_u64().unwrap() + 1);
    fake["from_seq"] = json!(9);
    epochs.push(fake);
    std::fs::write(dir.join("argus.json"), m.to_string()).unwrap();
    let r = witness(&[]);
    r.assert_code(11);
    assert!(r.stderr.contains("epoch"), "{}", r.ctx());
}

/// A witness fed requests (as argusd pushes them) has no log to read the
/// certificates from: after a rotation it refuses, naming the way out, and
/// once it has read the log it takes the rotated key's checkpoints.
#[test]
fn a_request_witness_takes_a_rotated_key_once_it_has_read_the_log() {
    let (tmp, first) = init_log(None);
    let dir = tmp.path();
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("w.state");
    let wkey = work.path().join("w.key");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            "witness".to_string(),
            "--state".into(),
            state.display().to_string(),
            "--key-file".into(),
            wkey.display().to_string(),
            "--log-key".into(),
            first.clone(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let request =
        |body: &str| crate::common::argus_stdin(base(&["--request", "-"]), body.as_bytes());
    let checkpoint = |name: &str| {
        let cp = argus(["checkpoint".as_ref(), p(dir)]);
        cp.assert_ok();
        let path = work.path().join(name);
        std::fs::write(&path, &cp.stdout).unwrap();
        (cp.stdout, path)
    };
    let proof_from = |old: &Path| -> String {
        let b = argus(["prove".as_ref(), p(dir), "--consistency".as_ref(), p(old)]);
        b.assert_ok();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        b.json()["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64.encode(hex::decode(h.as_str().unwrap()).unwrap()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    append(dir, &small_entries(0, 3));
    let (cp3, cp3_file) = checkpoint("cp3");
    request(&format!("old 0\n\n{cp3}")).assert_ok();
    rotate(dir);
    append(dir, &small_entries(4, 3));
    let (cp7, cp7_file) = checkpoint("cp7");
    let r = request(&format!("old 3\n{}\n\n{cp7}", proof_from(&cp3_file)));
    r.assert_code(11);
    assert!(
        r.stderr.contains("argusctl witness DIR --state FILE"),
        "{}",
        r.ctx()
    );
    // Reading the log once teaches it epoch 1 from the certificate.
    let mut on_log = base(&[]);
    on_log.insert(1, dir.display().to_string());
    argus(&on_log).assert_ok();
    append(dir, &small_entries(7, 2));
    let (cp9, _) = checkpoint("cp9");
    request(&format!("old 7\n{}\n\n{cp9}", proof_from(&cp7_file))).assert_ok();
}

/// Two checkpoints of one size with two roots, both signed by the key of
/// the epoch that size falls in (epoch 2's, not the pinned first key): the
/// equivocation is judged with the log's epochs, exit 14, as before a
/// rotation.
#[test]
fn equivocation_by_a_later_epochs_key_is_caught() {
    let (tmp, first, keys) = rotated_twice();
    let dir = tmp.path();
    let cp = argus(["checkpoint".as_ref(), p(dir)]);
    cp.assert_ok();
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good.txt");
    std::fs::write(&good, &cp.stdout).unwrap();
    let c = log_format::Checkpoint::parse(&cp.stdout).unwrap();
    let s = &c.seal;
    let forged = Seal::sign(&c.log_id, &keys[2], s.tree_size, [7; 32], s.head, s.ts_ns);
    let bad = work.path().join("other.txt");
    std::fs::write(&bad, forged.checkpoint_text(&c.log_id)).unwrap();
    let r = argus([
        "verify".as_ref(),
        p(dir),
        "--key".as_ref(),
        first.as_ref(),
        "--checkpoint".as_ref(),
        p(&good),
        "--checkpoint".as_ref(),
        p(&bad),
    ]);
    r.assert_code(14);
    assert!(
        r.stdout
            .contains(&hex::encode(keys[2].verifying_key().as_bytes())),
        "{}",
        r.ctx()
    );
    // The good one alone is a trusted checkpoint of epoch 2.
    argus([
        "verify".as_ref(),
        p(dir),
        "--key".as_ref(),
        first.as_ref(),
        "--checkpoint".as_ref(),
        p(&good),
    ])
    .assert_ok();
}
