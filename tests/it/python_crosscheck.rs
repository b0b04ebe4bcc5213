//! The independent Python verifier (`tools/pyverify/verify.py`, written from
//! SPEC.md alone) must agree with `argusctl verify` on every log here: the
//! golden vectors and freshly generated multi-segment logs, intact and
//! tampered; and its `canonical_json`, written from SPEC §4.1.1, must
//! reproduce every payload `argusctl append` stores. Under CI (`CI` set) a
//! missing Python or missing packages is a failure, never a skip.
use crate::common::python_ready;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn codes(dir: &Path, key: &str) -> (Option<i32>, Option<i32>, String) {
    let rust = Command::new(env!("CARGO_BIN_EXE_argusctl"))
        .args(["verify", dir.to_str().unwrap(), "--key", key])
        .output()
        .unwrap();
    let py = Command::new("python3")
        .arg(root().join("tools/pyverify/verify.py"))
        .args([dir.to_str().unwrap(), "--key", key])
        .output()
        .unwrap();
    let detail = format!(
        "{}: rust said {} | python said {} {}",
        dir.display(),
        String::from_utf8_lossy(&rust.stdout).trim(),
        String::from_utf8_lossy(&py.stdout).trim(),
        String::from_utf8_lossy(&py.stderr).trim()
    );
    (rust.status.code(), py.status.code(), detail)
}

fn make_log(dir: &Path, entries: usize) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_argusctl"))
        .args(["init", dir.to_str().unwrap(), "--segment-bytes", "4096"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Segments roll only at commit boundaries, so append in several runs.
    for chunk in (0..entries).collect::<Vec<_>>().chunks(25) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_argusctl"))
            .args(["append", dir.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for &i in chunk {
            let parent = if i > 0 {
                format!(r#","parent":{}"#, i - 1)
            } else {
                String::new()
            };
            writeln!(
                stdin,
                r#"{{"kind":"x.tool.call_completed","job_id":"job-{}","agent":"a{}"{parent},"payload":{{"i":{i},"out":"résultat ✓","ok":true}}}}"#,
                i % 7,
                i % 3
            )
            .unwrap();
        }
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }
    v["public_key"].as_str().unwrap().to_string()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("segments")).unwrap();
    std::fs::copy(from.join("argus.json"), to.join("argus.json")).unwrap();
    for s in segments(from) {
        std::fs::copy(&s, to.join("segments").join(s.file_name().unwrap())).unwrap();
    }
}

#[test]
fn python_verifier_agrees_on_golden_vectors() {
    if !python_ready() {
        eprintln!("skipping: python3 with blake3 + cryptography not installed");
        return;
    }
    let v = root().join("log-format/vectors");
    let key = std::fs::read_to_string(v.join("tiny.pub")).unwrap();
    let mut dirs = vec![v.join("tiny")];
    for e in std::fs::read_dir(v.join("corrupt")).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            dirs.push(p);
        }
    }
    for d in dirs {
        let (r, p, detail) = codes(&d, key.trim());
        assert_eq!(r, p, "{detail}");
    }
}

#[test]
fn python_verifier_agrees_on_generated_logs_intact_and_tampered() {
    if !python_ready() {
        eprintln!("skipping: python3 with blake3 + cryptography not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let key = make_log(&base, 400);
    let segs = segments(&base);
    assert!(
        segs.len() >= 5,
        "want a multi-segment log, got {}",
        segs.len()
    );
    let (r, p, detail) = codes(&base, &key);
    assert_eq!((r, p), (Some(0), Some(0)), "{detail}");

    type Tamper = Box<dyn Fn(&Path)>;
    let mid = |d: &Path| segments(d)[2].clone();
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "flip_entry_byte",
            Box::new(move |d: &Path| {
                let p = mid(d);
                let mut b = std::fs::read(&p).unwrap();
                b[300] ^= 0x40;
                std::fs::write(&p, b).unwrap();
            }),
        ),
        (
            "flip_header_byte",
            Box::new(move |d: &Path| {
                let p = mid(d);
                let mut b = std::fs::read(&p).unwrap();
                b[40] ^= 0x01;
                std::fs::write(&p, b).unwrap();
            }),
        ),
        (
            "delete_middle_segment",
            Box::new(move |d: &Path| std::fs::remove_file(mid(d)).unwrap()),
        ),
        (
            "swap_segments",
            Box::new(|d: &Path| {
                let s = segments(d);
                let tmp = d.join("segments/tmp.swap");
                std::fs::rename(&s[1], &tmp).unwrap();
                std::fs::rename(&s[2], &s[1]).unwrap();
                std::fs::rename(&tmp, &s[2]).unwrap();
            }),
        ),
        (
            "torn_tail",
            Box::new(|d: &Path| {
                let s = segments(d);
                let last = s.last().unwrap();
                let mut b = std::fs::read(last).unwrap();
                b.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x10, 0x00]);
                std::fs::write(last, b).unwrap();
            }),
        ),
        (
            "truncate_mid_frame",
            Box::new(|d: &Path| {
                let s = segments(d);
                let last = s.last().unwrap();
                let b = std::fs::read(last).unwrap();
                std::fs::write(last, &b[..b.len() - 7]).unwrap();
            }),
        ),
    ];
    for (name, tamper) in cases {
        let d = tmp.path().join(name);
        copy_dir(&base, &d);
        tamper(&d);
        let (r, p, detail) = codes(&d, &key);
        assert_eq!(r, p, "{name}: {detail}");
    }
    // A log written under another key: both must refuse the pinned key.
    let other = tmp.path().join("other");
    make_log(&other, 50);
    let (r, p, detail) = codes(&other, &key);
    assert_eq!((r, p), (Some(11), Some(11)), "{detail}");
}

/// Payload spellings `argusctl append` must accept, chosen to exercise
/// every rule of SPEC §4.1.1: key order by UTF-16 (astral keys against
/// U+E000..U+FFFF), escapes, ECMAScript number forms, negative zero, nesting.
const PAYLOAD_CORPUS: &[&str] = &[
    r#"{"é": 1, "a": 2, "\u00e9x": 3, "A": 4, "": 5}"#,
    r#"{"\ud83d\ude00": "astral", "\uffff": "bmp max", "\ue000": "pua", "\ud834\udd1e": "clef", "z": 0}"#,
    r#""\u0000\u001f\b\f\n\r\t\"\\\/\u007f\u2028\u2029 é 日本 🚀""#,
    r#"[0.1, 0.2, 0.30000000000000004, 1e21, 1E21, 1e-7, 1e-6, 0.000001, 5e-324, 1.7976931348623157e308]"#,
    r#"[-0.0, -0, 0, 0.0, 123456789012345680000, 1.5, -2.5e-10, 100, 1e300, 2e-3, 4.50, 1e20]"#,
    r#"[9007199254740992, -9007199254740992, 4294967296, -1, 333333333.3333333]"#,
    r#"[[1,[2,[3,[4,[]]]]],{"a":{"b":{"c":[{}]}}}, [], {}, null, true, false]"#,
    r#"{"z": {"y": [3, 2, 1], "x": {"\u0080": 1, "\u007f": 2}}, "m": "combining é", "n": null}"#,
];

#[test]
fn python_canonical_json_reproduces_every_stored_payload() {
    if !python_ready() {
        eprintln!("skipping: python3 with blake3 + cryptography not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let out = Command::new(env!("CARGO_BIN_EXE_argusctl"))
        .args(["init", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut input = String::new();
    for p in PAYLOAD_CORPUS {
        input.push_str(&format!("{{\"kind\":\"x.form.case\",\"payload\":{p}}}\n"));
    }
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_argusctl"))
        .args(["append", dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "append refused the corpus: {}",
        String::from_utf8_lossy(&done.stderr)
    );

    // The stored bytes themselves, from the segment files.
    let stored: Vec<String> = crate::common::stored_payloads(&dir)
        .into_values()
        .map(|(b, _)| String::from_utf8(b).unwrap())
        .collect();
    assert_eq!(stored.len(), PAYLOAD_CORPUS.len());

    // Python canonicalises both the producer's spelling and the stored bytes.
    let script = "import sys, json\n\
        sys.path.insert(0, sys.argv[1])\n\
        from verify import canonical_json\n\
        for line in sys.stdin:\n    \
            print(' '.join(canonical_json(json.loads(bytes.fromhex(x).decode('utf-8'))).hex() for x in line.split()))\n";
    let mut py = Command::new("python3")
        .args([
            "-c",
            script,
            root().join("tools/pyverify").to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut feed = String::new();
    for (i, s) in PAYLOAD_CORPUS.iter().zip(&stored) {
        feed.push_str(&format!("{} {}\n", hex::encode(i), hex::encode(s)));
    }
    py.stdin.take().unwrap().write_all(feed.as_bytes()).unwrap();
    let py = py.wait_with_output().unwrap();
    assert!(
        py.status.success(),
        "python: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let lines: Vec<String> = String::from_utf8(py.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), stored.len());
    for ((input, s), line) in PAYLOAD_CORPUS.iter().zip(&stored).zip(&lines) {
        let want = hex::encode(s);
        let (of_input, of_stored) = line.split_once(' ').unwrap();
        let show = |h: &str| String::from_utf8_lossy(&hex::decode(h).unwrap()).into_owned();
        assert_eq!(
            of_input,
            want,
            "python's canonical form of the input {input}\n  python: {}\n  stored: {s}",
            show(of_input)
        );
        assert_eq!(of_stored, want, "python re-canonicalises the stored {s}");
    }

    // verify.py --check-payload-form finds nothing to warn about here; on
    // the golden vector (written before §4.1.1) it warns and still passes.
    let check = |d: &Path, key: &str| {
        let out = Command::new("python3")
            .arg(root().join("tools/pyverify/verify.py"))
            .args([
                d.to_str().unwrap(),
                "--key",
                key,
                "--check-payload-form",
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = check(&dir, &key);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
    let vectors = root().join("log-format/vectors");
    let tiny_key = std::fs::read_to_string(vectors.join("tiny.pub")).unwrap();
    let (code, v) = check(&vectors.join("tiny"), tiny_key.trim());
    assert_eq!(code, Some(0), "{v}");
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("not Argus canonical JSON")),
        "{v}"
    );
}

/// SPEC §4.2.1, both verifiers: (a) after `redact` and `compact` both pass
/// and report the same erased seqs; (b) a payload zeroed by hand, with the
/// frame CRC fixed and no redaction, fails both with CONTENT at the same
/// seq.
#[test]
fn python_verifier_agrees_on_erased_payloads() {
    if !python_ready() {
        eprintln!("skipping: python3 with blake3 + cryptography not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let key = make_log(&dir, 120);
    let d = dir.to_str().unwrap();
    for seq in ["3", "40"] {
        let r = crate::common::argus(["redact", d, seq, "--reason", "pii ✓"]);
        r.assert_ok();
    }
    crate::common::argus(["compact", d, "--no-compress"]).assert_ok();
    let erased = |report: &serde_json::Value| -> Vec<(u64, u64, String)> {
        report["erased"]
            .as_array()
            .unwrap_or_else(|| panic!("no erased in {report}"))
            .iter()
            .map(|e| {
                (
                    e["seq"].as_u64().unwrap(),
                    e["by_seq"].as_u64().unwrap(),
                    e["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let rust = crate::common::verify(&dir, &key, &["-o", "json"]);
    rust.assert_ok();
    let py = Command::new("python3")
        .arg(root().join("tools/pyverify/verify.py"))
        .args([d, "--key", &key, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(
        py.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&py.stdout)
    );
    let py_report: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    let want = vec![
        (3, 120, "pii ✓".to_string()),
        (40, 121, "pii ✓".to_string()),
    ];
    assert_eq!(erased(&rust.json()), want, "{}", rust.ctx());
    assert_eq!(erased(&py_report), want, "{py_report}");

    // (b) zeroed by hand, no redaction.
    let (seg, offset) = crate::redact::zero_payload_by_hand(&dir, 7);
    let (r, p, detail) = codes(&dir, &key);
    assert_eq!((r, p), (Some(10), Some(10)), "{detail}");
    let py = Command::new("python3")
        .arg(root().join("tools/pyverify/verify.py"))
        .args([d, "--key", &key, "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(v["seq"], 7, "{v}");
    assert_eq!(v["offset"], offset, "{v}");
    let name = seg.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(v["segment"], format!("segments/{name}"), "{v}");
}

#[test]
fn python_verifier_reads_compacted_logs_and_agrees_on_damaged_ones() {
    if !python_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let key = make_log(&base, 300);
    let out = Command::new(env!("CARGO_BIN_EXE_argusctl"))
        .args(["compact", base.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut packed: Vec<PathBuf> = std::fs::read_dir(base.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "segz"))
        .collect();
    packed.sort();
    assert!(
        packed.len() >= 3,
        "compact left {} compressed segments",
        packed.len()
    );
    let (r, py, detail) = codes(&base, &key);
    assert_eq!((r, py), (Some(0), Some(0)), "{detail}");

    // (what, file index, byte offset from the start or, if negative, the end, mask)
    let cases: &[(&str, usize, i64, u8)] = &[
        ("block byte", 1, 60, 0x01),
        ("header byte", 0, 20, 0x40),
        ("index byte", 2, -30, 0x01),
        ("trailer magic", 1, -3, 0x20),
    ];
    for &(what, i, at, mask) in cases {
        let work = tmp.path().join(what.replace(' ', "-"));
        copy_all(&base, &work);
        let target = work.join("segments").join(packed[i].file_name().unwrap());
        let mut b = std::fs::read(&target).unwrap();
        let at = if at < 0 {
            b.len() - (-at) as usize
        } else {
            at as usize
        };
        b[at] ^= mask;
        std::fs::write(&target, &b).unwrap();
        let (r, py, detail) = codes(&work, &key);
        assert_eq!(r, Some(10), "{what}: {detail}");
        assert_eq!(py, Some(10), "{what}: {detail}");
    }
    // A truncated compressed segment.
    let work = tmp.path().join("truncated");
    copy_all(&base, &work);
    let target = work.join("segments").join(packed[0].file_name().unwrap());
    let b = std::fs::read(&target).unwrap();
    std::fs::write(&target, &b[..b.len() / 2]).unwrap();
    let (r, py, detail) = codes(&work, &key);
    assert_eq!((r, py), (Some(10), Some(10)), "truncated: {detail}");
}

/// Copies argus.json and every segment file, plain or compressed.
fn copy_all(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("segments")).unwrap();
    std::fs::copy(from.join("argus.json"), to.join("argus.json")).unwrap();
    for e in std::fs::read_dir(from.join("segments")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "seg" || e == "segz") {
            std::fs::copy(&p, to.join("segments").join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// A log whose key was rotated twice (SPEC §4.7), multi-segment: both
/// verifiers follow the certificates from the first key and agree, intact
/// and with a byte flipped in each segment (seals of every epoch included).
#[test]
fn python_verifier_agrees_on_rotated_logs() {
    if !python_ready() {
        eprintln!("skipping: python3 with blake3 + cryptography not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let key = make_log(&base, 60);
    for round in 0..2u64 {
        let r = crate::common::argus(["key".as_ref(), "rotate".as_ref(), base.as_os_str()]);
        r.assert_ok();
        crate::common::append(&base, &crate::common::small_entries(100 * (round + 1), 40));
    }
    let (r, p, detail) = codes(&base, &key);
    assert_eq!((r, p), (Some(0), Some(0)), "{detail}");
    let n = segments(&base).len();
    assert!(n >= 4, "want a multi-segment log, got {n}");
    for i in 0..n {
        let d = tmp.path().join(format!("flip{i}"));
        copy_dir(&base, &d);
        let s = segments(&d)[i].clone();
        let mut b = std::fs::read(&s).unwrap();
        let at = b.len() - 100;
        b[at] ^= 0x10;
        std::fs::write(&s, b).unwrap();
        let (r, p, detail) = codes(&d, &key);
        assert_eq!(r, p, "segment {i}: {detail}");
    }
}

/// Proof bundles of a rotated log (SPEC §11 `key_chain`): inclusion, job
/// and consistency bundles verify with the first key in both verifiers,
/// and a tampered chain (an item altered, an epoch skipped) fails in both
/// with the same code.
#[test]
fn python_verifier_agrees_on_rotated_proof_bundles() {
    use crate::proof_rotation::{assert_both, codes, job_bundle, prove, read, rotated, variant};
    if !python_ready() {
        eprintln!("skipping: python3 with blake3 + cryptography not installed");
        return;
    }
    let r = rotated();
    let cp0 = r.cp0.to_str().unwrap().to_string();
    let bundles = [
        prove(&r, &["0"], "i0.json"),
        prove(&r, &["8"], "i8.json"),
        job_bundle(&r, "job-1", "job.json"),
        prove(&r, &["--consistency", &cp0], "cons.json"),
    ];
    for (i, b) in bundles.iter().enumerate() {
        assert_both(b, &r.first, 0);
        let v = read(b);
        let mut altered = v.clone();
        altered["key_chain"][0]["entry"]["ts"] =
            serde_json::json!("2001-01-01T00:00:00.000000000Z");
        let (rust, py, detail) = codes(&variant(&r, &format!("alt{i}.json"), &altered), &r.first);
        assert_eq!((rust, py), (Some(10), Some(Some(10))), "{detail}");
        let mut skipped = v.clone();
        skipped["key_chain"].as_array_mut().unwrap().remove(0);
        let (rust, py, detail) = codes(&variant(&r, &format!("skip{i}.json"), &skipped), &r.first);
        assert_eq!((rust, py), (Some(11), Some(Some(11))), "{detail}");
    }
}
