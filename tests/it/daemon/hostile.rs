//! Every hostile client at once against one argusd while honest producers
//! write: slowloris heads, oversized heads and bodies, invalid UTF-8, deep
//! JSON and a flood of tiny requests. The daemon must stay up, answer each
//! attack with its refusal, keep every honest ack, and keep its memory
//! bounded (peak RSS from /proc, not a timing). The throughput honest
//! producers keep under attack is a figure: `cargo bench --bench hostile`.
use super::harness::Daemon;
use super::http::{self, post_json};
use super::{assert_acked_in_log, entry, Acked};
use serde_json::json;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Peak resident memory of `pid`, KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Sends `head` then `body` on a fresh connection; the status, 0 if none.
fn raw(addr: &str, head: &[u8], body: &[u8]) -> u16 {
    let Ok(mut s) = http::connect(addr) else {
        return 0;
    };
    let _ = s.write_all(head);
    let _ = s.write_all(body);
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|t| t.strip_prefix("HTTP/1.1 "))
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn post_head(len: usize) -> Vec<u8> {
    format!("POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n").into_bytes()
}

#[test]
fn hostile_clients_leave_the_daemon_up_bounded_and_honest_acks_kept() {
    let mut d = Daemon::with_limits(json!({
        "header_timeout_ms": 1000,
        "body_bytes_max": 1 << 20,
        "connections_max": 512,
    }));
    let pid = d.pid();
    // Warm: a few honest writes, then the baseline peak.
    for i in 0..20 {
        assert_eq!(
            post_json(&d.addr, entry(0, i).to_string().as_bytes())
                .unwrap()
                .status,
            200
        );
    }
    let base_kib = peak_rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = d.addr.clone();

    // Honest producers.
    let honest: Vec<_> = (1..=2u64)
        .map(|p| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut got: Acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = post_json(&addr, entry(p, i).to_string().as_bytes()).unwrap();
                    assert_eq!(r.status, 200, "honest producer {p} refused: {}", r.text());
                    got.push((r.acks()[0].clone(), (p, i)));
                    i += 1;
                }
                got
            })
        })
        .collect();

    // Attackers, each recording the statuses it was answered with.
    type Attack = fn(&str) -> u16;
    let attacks: Vec<(&str, Attack, &[u16])> = vec![
        (
            "oversized head",
            |a| {
                let mut h = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
                h.extend(std::iter::repeat_n(b'a', 1 << 20));
                h.extend_from_slice(b"\r\n\r\n");
                raw(a, &h, b"")
            },
            &[0, 400, 431],
        ),
        (
            "oversized body",
            |a| raw(a, &post_head(64 << 20), &vec![b' '; 2 << 20]),
            &[0, 413],
        ),
        (
            "invalid UTF-8",
            |a| {
                let body = b"{\"kind\":\"x.t\",\"payload\":{\"s\":\"\xff\xfe\"}}";
                raw(a, &post_head(body.len()), body)
            },
            &[400],
        ),
        (
            "deep JSON",
            |a| {
                let body = format!(
                    "{{\"kind\":\"x.t\",\"payload\":{}1{}}}",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                );
                raw(a, &post_head(body.len()), body.as_bytes())
            },
            &[400, 413],
        ),
        (
            "tiny requests",
            |a| {
                raw(
                    a,
                    b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"",
                )
            },
            &[200, 503],
        ),
    ];
    let counts: Arc<Vec<AtomicU64>> =
        Arc::new((0..attacks.len()).map(|_| AtomicU64::new(0)).collect());
    let mut threads = Vec::new();
    for (k, (name, attack, allowed)) in attacks.into_iter().enumerate() {
        let (addr, stop, counts) = (addr.clone(), stop.clone(), counts.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let status = attack(&addr);
                assert!(
                    allowed.contains(&status),
                    "{name}: answered {status}, expected one of {allowed:?}"
                );
                counts[k].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Slowloris: connections that send a head one byte at a time.
    let slow: Vec<_> = (0..64)
        .filter_map(|_| http::connect(&addr).ok())
        .map(|mut s| {
            let _ = s.write_all(b"POST /v1/entries HTTP/1.1\r\nHo");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("an attack got an unexpected answer");
    }
    drop(slow);
    let mut acked = Vec::new();
    for h in honest {
        acked.extend(h.join().expect("an honest producer was refused"));
    }
    for (k, c) in counts.iter().enumerate() {
        assert!(
            c.load(Ordering::Relaxed) > 0,
            "attack {k} never completed once"
        );
    }
    assert!(d.running(), "argusd died under attack:\n{}", d.stderr());
    let health = http::get(&d.addr, "/v1/health").unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    let grew_kib = peak_rss_kib(pid).saturating_sub(base_kib);
    assert!(
        grew_kib < 256 * 1024,
        "peak memory grew by {} MiB under attack",
        grew_kib / 1024
    );
    assert!(
        acked.len() > 10,
        "honest producers got only {} acks",
        acked.len()
    );
    eprintln!(
        "under attack: {} honest acks; attacks completed {:?}; peak RSS +{} KiB",
        acked.len(),
        counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect::<Vec<_>>(),
        grew_kib
    );
    assert_acked_in_log(&d.cat(), &acked);
    assert!(d.term().success());
    d.assert_verifies();
}
