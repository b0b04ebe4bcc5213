//! Every hostile client at once against one argusd while honest producers
//! write: slowloris heads, oversized heads and bodies, invalid UTF-8, deep
//! JSON and a flood of tiny requests. The daemon must stay up, answer each
//! attack with its refusal, keep every honest ack, and keep its memory
//! bounded (peak RSS from /proc, not a timing). The throughput honest
//! producers keep under attack is a figure: `benches/daemon.rs` part 5.
//!
//! Fair shares (docs/API.md "Limits"): a client over its request rate is
//! answered 429 with `Retry-After` before its body is read; an
//! authenticated caller has a bucket of its own, so a flood (anonymous, or
//! from another token) does not spend it; one address cannot hold every
//! connection slot.
use super::harness::Daemon;
use super::http::{self, Response};
use super::{assert_acked_in_log, entry, Acked};
use crate::common::argus;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// What a raw attempt was answered: the status (0 if none) and the
/// `Retry-After` seconds, if the answer carried one.
type Answer = (u16, Option<u64>);

/// Sends `head` then `body` on a fresh connection.
fn raw(addr: &str, head: &[u8], body: &[u8]) -> Answer {
    let Ok(mut s) = http::connect(addr) else {
        return (0, None);
    };
    let _ = s.write_all(head);
    let _ = s.write_all(body);
    let mut buf = [0u8; 1024];
    let mut n = 0;
    // The head of the answer; a refusal's head is well under 1 KiB.
    while n < buf.len() {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    let status = text
        .strip_prefix("http/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let retry = text
        .lines()
        .find_map(|l| l.strip_prefix("retry-after:"))
        .and_then(|v| v.trim().parse().ok());
    (status, retry)
}

fn post_head(len: usize) -> Vec<u8> {
    format!("POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Issues an agent token named `name` before the daemon starts.
fn issue(d: &Daemon, name: &str) -> String {
    let dir = d.dir.display().to_string();
    let r = argus([
        "token", "add", &dir, "--name", name, "--role", "agent", "-o", "json", "--server", "local",
    ]);
    r.assert_ok();
    r.json()["token"].as_str().expect("a token").to_string()
}

/// `POST /v1/entries` of entry `i` of producer `p`, as `token` when given.
fn post_as(addr: &str, token: Option<&str>, p: u64, i: u64) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = auth.as_deref() {
        headers.push(("Authorization", a));
    }
    http::request(
        addr,
        "POST",
        "/v1/entries",
        &headers,
        entry(p, i).to_string().as_bytes(),
    )
    .expect("request")
}

type Attack = fn(&str) -> Answer;

/// Each attack, with the statuses it may be answered with when the
/// attacker is the daemon's own user (no tokens configured) and when it is
/// anonymous (tokens configured: 401, or 429 once over its rate).
fn attacks() -> Vec<(&'static str, Attack, &'static [u16], &'static [u16])> {
    vec![
        (
            "oversized head",
            |a| {
                let mut h = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
                h.extend(std::iter::repeat_n(b'a', 1 << 20));
                h.extend_from_slice(b"\r\n\r\n");
                raw(a, &h, b"")
            },
            &[0, 400, 431],
            &[0, 400, 431],
        ),
        (
            "oversized body",
            |a| raw(a, &post_head(64 << 20), &vec![b' '; 2 << 20]),
            &[0, 413],
            &[0, 401, 429],
        ),
        (
            "invalid UTF-8",
            |a| {
                let body = b"{\"kind\":\"x.t\",\"payload\":{\"s\":\"\xff\xfe\"}}";
                raw(a, &post_head(body.len()), body)
            },
            &[400],
            &[401, 429],
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
            &[0, 401, 429],
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
            &[200, 503, 429],
        ),
    ]
}

/// What one attack run saw.
struct Outcome {
    acked: Acked,
    /// Attempts completed, per attack.
    counts: Vec<u64>,
    /// Every 429 an attacker got, with its `Retry-After`.
    limited: Vec<Option<u64>>,
    grew_kib: u64,
}

/// Honest producers (one per token; the daemon's own user when `None`)
/// write while every attack runs, for `secs`. Each honest request must be
/// acknowledged; each attack must get one of its allowed answers.
fn under_attack(d: &mut Daemon, tokens: &[Option<String>], anonymous: bool, secs: u64) -> Outcome {
    let pid = d.pid();
    let base_kib = peak_rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = d.addr.clone();
    let honest: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(k, token)| {
            let p = k as u64 + 1;
            let (addr, stop, token) = (addr.clone(), stop.clone(), token.clone());
            std::thread::spawn(move || {
                let mut got: Acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = post_as(&addr, token.as_deref(), p, i);
                    assert_eq!(r.status, 200, "honest producer {p} refused: {}", r.text());
                    got.push((r.acks()[0].clone(), (p, i)));
                    i += 1;
                }
                got
            })
        })
        .collect();
    let list = attacks();
    let counts: Arc<Vec<AtomicU64>> =
        Arc::new((0..list.len()).map(|_| AtomicU64::new(0)).collect());
    let limited = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for (k, (name, attack, as_local, as_anonymous)) in list.into_iter().enumerate() {
        let allowed = if anonymous { as_anonymous } else { as_local };
        let (addr, stop, counts, limited) =
            (addr.clone(), stop.clone(), counts.clone(), limited.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (status, retry) = attack(&addr);
                assert!(
                    allowed.contains(&status),
                    "{name}: answered {status}, expected one of {allowed:?}"
                );
                if status == 429 {
                    limited.lock().unwrap().push(retry);
                }
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
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("an attack got an unexpected answer");
    }
    drop(slow);
    let mut acked = Vec::new();
    for h in honest {
        acked.extend(h.join().expect("an honest producer was refused"));
    }
    let counts: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    for (k, c) in counts.iter().enumerate() {
        assert!(*c > 0, "attack {k} never completed once");
    }
    assert!(d.running(), "argusd died under attack:\n{}", d.stderr());
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
    let limited = limited.lock().unwrap().clone();
    eprintln!(
        "under attack: {} honest acks; attacks completed {counts:?}; {} answered 429; peak RSS +{grew_kib} KiB",
        acked.len(),
        limited.len(),
    );
    Outcome {
        acked,
        counts,
        limited,
        grew_kib,
    }
}

#[test]
fn hostile_clients_leave_the_daemon_up_bounded_and_honest_acks_kept() {
    let mut d = Daemon::with_limits(json!({
        "header_timeout_ms": 1000,
        "body_bytes_max": 1 << 20,
        "connections_max": 512,
    }));
    // Warm: a few honest writes, then the baseline peak.
    for i in 0..20 {
        assert_eq!(post_as(&d.addr, None, 0, i).status, 200);
    }
    // No tokens: everyone on loopback is the daemon's own user, whom the
    // rate limits leave alone; the other limits refuse each attack.
    let out = under_attack(&mut d, &[None, None], false, 4);
    assert!(
        out.limited.is_empty(),
        "the daemon's own user was rate limited"
    );
    let health = http::get(&d.addr, "/v1/health").unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    assert_acked_in_log(&d.cat(), &out.acked);
    assert!(d.term().success());
    d.assert_verifies();
}

/// With tokens, the attackers are anonymous: every request of theirs is
/// charged to 127.0.0.1 and refused 429 with `Retry-After` once over its
/// rate, while the producers' tokens keep their own buckets.
#[test]
fn anonymous_attackers_over_their_rate_get_429_and_token_producers_keep_every_ack() {
    let mut d = Daemon::new(
        Some(json!({ "limits": {
            "header_timeout_ms": 1000,
            "body_bytes_max": 1 << 20,
            "connections_max": 512,
            "anonymous_rate_per_s": 2,
            "anonymous_burst": 2,
            "rate_delay_ms": 0,
        }})),
        &[],
    );
    let tokens: Vec<Option<String>> = (1..=2)
        .map(|p| Some(issue(&d, &format!("producer-{p}"))))
        .collect();
    d.spawn();
    let out = under_attack(&mut d, &tokens, true, 4);
    assert!(
        !out.limited.is_empty(),
        "no attacker was rate limited; attempts {:?}",
        out.counts
    );
    assert!(
        out.limited.iter().all(|r| r.is_some_and(|s| s >= 1)),
        "a 429 without Retry-After: {:?}",
        out.limited
    );
    // After the attack: a request over the rate is refused with its
    // reason, and the daemon still serves the producers.
    let over = (0..50)
        .map(|_| http::get(&d.addr, "/v1/health").unwrap())
        .find(|r| r.status == 429)
        .expect("50 anonymous requests in a row stayed under 2 a second");
    assert_eq!(over.error()["kind"], "rate_limited", "{}", over.text());
    assert!(over
        .header("Retry-After")
        .is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1)));
    let again = post_as(&d.addr, tokens[0].as_deref(), 1, 1_000_000);
    assert_eq!(again.status, 200, "{}", again.text());
    let mut acked = out.acked;
    acked.push((again.acks()[0].clone(), (1, 1_000_000)));
    assert!(d.running(), "{}", d.stderr());
    assert!(out.grew_kib < 256 * 1024);
    let log = d.cat();
    assert_acked_in_log(&log, &acked);
    // Only what was acknowledged is in the log: no attack wrote anything.
    let tagged = log.iter().filter(|e| super::tag_of(e).is_some()).count();
    assert_eq!(
        tagged,
        acked.len(),
        "entries in the log that nobody was acked for"
    );
    assert!(d.term().success());
    d.assert_verifies();
}

/// One token over its rate gets 429 (nothing of the refused request is
/// written); another token is not charged for it.
#[test]
fn a_token_over_its_rate_gets_429_and_another_token_keeps_its_share() {
    let mut d = Daemon::new(
        Some(json!({ "limits": {
            "caller_rate_per_s": 1,
            "caller_burst": 2,
            "rate_delay_ms": 0,
        }})),
        &[],
    );
    let greedy = issue(&d, "producer-1");
    let other = issue(&d, "producer-2");
    d.spawn();
    let mut acked: Acked = Vec::new();
    let mut refused: Option<Response> = None;
    for i in 0..50 {
        let r = post_as(&d.addr, Some(&greedy), 1, i);
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        acked.push((r.acks()[0].clone(), (1, i)));
    }
    let r = refused.expect("50 requests in a row stayed under 1 a second");
    let e: Value = r.error();
    assert_eq!(e["kind"], "rate_limited", "{}", r.text());
    let retry: u64 = r
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("a 429 carries Retry-After in seconds");
    assert!(retry >= 1);
    // The other token's bucket is its own.
    let ok = post_as(&d.addr, Some(&other), 2, 0);
    assert_eq!(ok.status, 200, "{}", ok.text());
    acked.push((ok.acks()[0].clone(), (2, 0)));
    let log = d.cat();
    assert_acked_in_log(&log, &acked);
    let tagged = log.iter().filter(|e| super::tag_of(e).is_some()).count();
    assert_eq!(tagged, acked.len(), "the refused request was written");
    assert!(d.running(), "{}", d.stderr());
    assert!(d.term().success());
    d.assert_verifies();
}

/// One address holds at most `connections_per_peer_max` connections; the
/// next is closed at accept, and a slot given back is usable again.
#[test]
fn one_peer_cannot_hold_more_than_its_connection_slots() {
    let d = Daemon::with_limits(json!({ "connections_per_peer_max": 4 }));
    let ask = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
    // Four kept-alive connections, each answered once (so each is accepted).
    let mut held: Vec<_> = (0..4)
        .map(|_| {
            let mut s = http::connect(&d.addr).unwrap();
            s.write_all(ask).unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let (status, headers) = http::read_head(&mut r).unwrap();
            assert_eq!(status, 200);
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap();
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            s
        })
        .collect();
    let fifth = raw(&d.addr, ask, b"");
    assert_eq!(fifth.0, 0, "a fifth connection from one address was served");
    held.pop();
    // The slot comes back once argusd sees the close.
    let back = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        raw(
            &d.addr,
            b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"",
        )
        .0 == 200
    });
    assert!(back, "the slot given back was never usable again");
    let metrics = http::get(&d.addr, "/metrics").unwrap().text();
    assert!(
        metrics.contains("reason=\"connections_per_peer\""),
        "the refusal is not counted: {metrics}"
    );
}
