//! Sixteen producers over HTTP at once (and two `argusctl append` going
//! through the daemon), mixing every way of appending, while two
//! followers tail the log live: every ack is in the log once, at its seq
//! with its hash, and each follower sees every seq once, in order.
use super::harness::Daemon;
use super::http::{self, Event, Follow, StreamAppend};
use super::{assert_acked_in_log, entry, seqs_of_lines, Acked};
use crate::common::XorShift;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a producer sends its entries.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// One `POST` per entry (a JSON object).
    Single,
    /// `POST`s of JSON arrays of 1 to 7 entries.
    Array,
    /// One streaming NDJSON request; chunks of 1 to 4 lines, each chunk's
    /// acks read before the next is sent.
    Stream,
}

/// Appends entries `0..n` of producer `p`; panics on any refusal.
pub fn produce(addr: &str, p: u64, n: u64, mode: Mode) -> Acked {
    let mut rng = XorShift::new(p + 1);
    let mut got = Vec::new();
    let mut i = 0;
    match mode {
        Mode::Single => {
            while i < n {
                let r = http::post_json(addr, entry(p, i).to_string().as_bytes())
                    .unwrap_or_else(|e| panic!("producer {p}: {e}"));
                let acks = r.acks();
                assert_eq!(acks.len(), 1, "{}", r.text());
                got.push((acks[0].clone(), (p, i)));
                i += 1;
            }
        }
        Mode::Array => {
            while i < n {
                let k = (1 + rng.below(7)).min(n - i);
                let batch: Vec<Value> = (i..i + k).map(|j| entry(p, j)).collect();
                let r = http::post_json(addr, Value::Array(batch).to_string().as_bytes())
                    .unwrap_or_else(|e| panic!("producer {p}: {e}"));
                let acks = r.acks();
                assert_eq!(acks.len() as u64, k, "{}", r.text());
                let seqs: Vec<u64> = acks.iter().map(|a| a.seq).collect();
                assert!(
                    seqs.windows(2).all(|w| w[1] == w[0] + 1),
                    "one batch is one contiguous run of seqs: {seqs:?}"
                );
                for (j, a) in (i..i + k).zip(acks) {
                    got.push((a, (p, j)));
                }
                i += k;
            }
        }
        Mode::Stream => {
            let mut s = StreamAppend::open(addr).unwrap_or_else(|e| panic!("producer {p}: {e}"));
            while i < n {
                let k = (1 + rng.below(4)).min(n - i);
                let chunk: Vec<Value> = (i..i + k).map(|j| entry(p, j)).collect();
                s.send(&chunk)
                    .unwrap_or_else(|e| panic!("producer {p}: {e}"));
                for j in i..i + k {
                    match s.next(Duration::from_secs(30)) {
                        Some(Event::Line(l)) => {
                            let v: Value = serde_json::from_str(&l)
                                .unwrap_or_else(|e| panic!("bad ack line {l:?}: {e}"));
                            got.push((http::ack_of(&v), (p, j)));
                        }
                        other => panic!("producer {p}: no ack for entry {j}: {other:?}"),
                    }
                }
                i += k;
            }
            assert_eq!(s.status(), 200);
            s.finish().unwrap_or_else(|e| panic!("producer {p}: {e}"));
            let (rest, end) = s.rest(Duration::from_secs(30));
            assert!(rest.is_empty(), "acks after the last entry: {rest:?}");
            assert_eq!(end, Some(Event::End), "the stream did not end cleanly");
        }
    }
    got
}

/// `tools/python` on `PYTHONPATH`, or `None` without `python3`.
pub fn python() -> Option<Command> {
    let ok = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("python3 not found: the Python producers are replaced by Rust ones");
        return None;
    }
    let mut c = Command::new("python3");
    c.env(
        "PYTHONPATH",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tools/python"),
    )
    .env_remove("ARGUS_TOKEN");
    Some(c)
}

/// Producer `p` as a Python process using `argus_client`.
fn python_producer(mut py: Command, url: String, p: u64, n: u64) -> JoinHandle<Acked> {
    std::thread::spawn(move || {
        let out = py
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/it/daemon/py_producer.py"
            ))
            .args([url, p.to_string(), n.to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "python producer {p} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
                let tag = (
                    v["p"].as_u64().unwrap_or(u64::MAX),
                    v["i"].as_u64().unwrap_or(u64::MAX),
                );
                (http::ack_of(&v), tag)
            })
            .collect()
    })
}

/// `argusctl append DIR` producers: with a live argusd named by
/// `DIR/argusd.json`, argusctl streams its stdin through the daemon and
/// prints the daemon's acks, one line per entry.
fn argusctl_producers(d: &Daemon, first_p: u64, n: u64) -> Vec<JoinHandle<Acked>> {
    (first_p..first_p + 2)
        .map(|p| {
            let dir = d.dir.clone();
            std::thread::spawn(move || {
                let entries: Vec<Value> = (0..n).map(|i| entry(p, i)).collect();
                let r = crate::common::argus_stdin(
                    [std::ffi::OsStr::new("append"), dir.as_os_str()],
                    &crate::common::to_lines(&entries),
                );
                r.assert_ok();
                let acks = crate::common::acks_of(&r);
                assert_eq!(acks.len() as u64, n, "one ack per line{}", r.ctx());
                acks.into_iter().zip((0..n).map(|i| (p, i))).collect()
            })
        })
        .collect()
}

/// Reads a follower until it has seen seq `last` (or `within` passes).
pub fn follow_until(f: &Follow, last: u64, within: Duration) -> Vec<String> {
    let end = Instant::now() + within;
    let mut lines = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match f.next(left) {
            Some(Event::Line(l)) => {
                let done = serde_json::from_str::<Value>(&l)
                    .ok()
                    .and_then(|v| v["seq"].as_u64())
                    == Some(last);
                lines.push(l);
                if done {
                    break;
                }
            }
            other => panic!("follower ended before seq {last}: {other:?}; lines: {lines:?}"),
        }
    }
    lines
}

#[test]
fn sixteen_producers_and_two_followers() {
    let d = Daemon::start();
    let followers: Vec<Follow> = (0..2)
        .map(|_| Follow::open(&d.addr, "/v1/entries?from=0&follow=true").expect("follow"))
        .collect();
    for f in &followers {
        assert_eq!(f.status, 200);
    }
    const PER: u64 = 36;
    let modes = [Mode::Single, Mode::Array, Mode::Stream];
    let mut handles: Vec<(u64, JoinHandle<Acked>)> = Vec::new();
    let rust_producers = if python().is_some() { 12 } else { 16 };
    for p in 0..rust_producers {
        let addr = d.addr.clone();
        let mode = modes[p as usize % modes.len()];
        handles.push((p, std::thread::spawn(move || produce(&addr, p, PER, mode))));
    }
    if python().is_some() {
        for p in rust_producers..16 {
            let py = python().expect("python3");
            handles.push((p, python_producer(py, d.url(), p, PER)));
        }
    }
    for (i, h) in argusctl_producers(&d, 16, PER).into_iter().enumerate() {
        handles.push((16 + i as u64, h));
    }
    let producers = handles.len() as u64;
    assert!(producers >= 18);
    let mut acked = Vec::new();
    for (p, h) in handles {
        let got = h.join().unwrap_or_else(|_| panic!("producer {p} panicked"));
        let mut tags: Vec<u64> = got.iter().map(|(_, (_, i))| *i).collect();
        tags.sort_unstable();
        assert_eq!(
            tags,
            (0..PER).collect::<Vec<_>>(),
            "producer {p} did not get one ack per entry"
        );
        assert!(got.iter().all(|(_, (q, _))| *q == p));
        acked.extend(got);
    }
    let total = producers * PER;
    assert_eq!(acked.len() as u64, total);

    let log = d.cat();
    assert_eq!(
        log.len() as u64,
        total,
        "the log holds exactly what was acked"
    );
    assert_acked_in_log(&log, &acked);

    for (k, f) in followers.iter().enumerate() {
        let lines = follow_until(f, total - 1, Duration::from_secs(30));
        let seen = seqs_of_lines(&lines);
        let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            (0..total).collect::<Vec<_>>(),
            "follower {k} must see every seq once, in order"
        );
        for ((seq, hash), e) in seen.iter().zip(&log) {
            assert_eq!(
                Some(hash.as_str()),
                e["hash"].as_str(),
                "follower {k} seq {seq}"
            );
        }
    }
    d.assert_verifies();
}
