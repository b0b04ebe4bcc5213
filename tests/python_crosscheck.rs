//! The independent Python verifier (`tools/pyverify/verify.py`, written from
//! SPEC.md alone) must agree with `argusctl verify` on every log here: the
//! golden vectors and freshly generated multi-segment logs, intact and
//! tampered. Under CI (`CI` set) a missing Python or missing packages is a
//! failure, never a skip.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import blake3, cryptography"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI: python3 with blake3 and cryptography is required (pip install -r tools/pyverify/requirements.txt)");
    }
    ok
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
