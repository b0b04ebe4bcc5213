//! The limits that keep one client from hurting the others (docs/API.md
//! "Limits"): a stalled request head, a follower that stops reading, a
//! full writer queue, and too many connections.
use super::harness::Daemon;
use super::http::{self, Event, Follow};
use super::{assert_acked_in_log, entry, Acked};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn slowloris_does_not_block_others_and_is_closed_after_the_header_timeout() {
    let d = Daemon::with_limits(json!({"header_timeout_ms": 1500}));
    let mut slow = http::connect(&d.addr).expect("connect");
    let opened = Instant::now();
    slow.write_all(b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .expect("half a head");
    // Others are served while it stalls.
    for i in 0..5 {
        let r = http::post_json(&d.addr, entry(1, i).to_string().as_bytes()).expect("post");
        assert_eq!(r.acks().len(), 1);
        assert!(
            opened.elapsed() < Duration::from_millis(1400),
            "serving others took as long as the stall: {:?}",
            opened.elapsed()
        );
    }
    // Then the stalled connection is closed: EOF, or a 408 and EOF.
    let mut got = Vec::new();
    let res = slow.read_to_end(&mut got);
    let closed_after = opened.elapsed();
    assert!(
        res.is_ok()
            || res
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{res:?}"
    );
    assert!(
        closed_after >= Duration::from_millis(1400) && closed_after < Duration::from_secs(6),
        "closed after {closed_after:?}, expected about 1500 ms"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer to a stalled head: {text}"
    );
    assert_eq!(d.entries(), 5);
}

/// Entries per batch and bytes of padding each: batches smaller than the
/// follow buffer, so a follower that reads lags only by not reading, and
/// entries large enough that the socket buffers between us fill soon.
const LAG_BATCH: u64 = 4;
const LAG_PAD: usize = 24 << 10;
const LAG_BATCHES: u64 = 250;

#[test]
fn a_follower_that_stops_reading_lags_out_without_blocking_producers() {
    let d = Daemon::with_limits(json!({"follow_buffer_entries": 64}));
    // A follower that reads keeps up with these batches: no `lagged`.
    let reader = Follow::open(&d.addr, "/v1/entries?from=0&follow=true").expect("follow");
    // This one reads nothing past the answer's head until the end.
    let stuck = Follow::open(&d.addr, "/v1/entries?from=0&follow=true").expect("follow");
    assert_eq!(stuck.status, 200);
    let reading = std::thread::spawn(move || {
        let mut next = 0u64;
        while next < LAG_BATCH * LAG_BATCHES {
            match reader.next(Duration::from_secs(30)) {
                Some(Event::Line(l)) => {
                    let v: Value = serde_json::from_str(&l).expect("json line");
                    if v.get("heartbeat").is_some() {
                        continue;
                    }
                    assert!(
                        v.get("error").is_none(),
                        "a reading follower was cut off: {l}"
                    );
                    assert_eq!(v["seq"].as_u64(), Some(next));
                    next += 1;
                }
                other => panic!("the reading follower ended at {next}: {other:?}"),
            }
        }
        next
    });
    let pad = "p".repeat(LAG_PAD);
    let started = Instant::now();
    for b in 0..LAG_BATCHES {
        let batch: Vec<Value> = (0..LAG_BATCH)
            .map(|i| {
                let mut e = entry(1, b * LAG_BATCH + i);
                e["payload"]["pad"] = json!(pad);
                e
            })
            .collect();
        let t = Instant::now();
        let r = http::post_json(&d.addr, Value::Array(batch).to_string().as_bytes()).expect("post");
        assert_eq!(r.acks().len() as u64, LAG_BATCH);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "a producer waited {:?} behind a stuck follower",
            t.elapsed()
        );
    }
    let total = LAG_BATCH * LAG_BATCHES;
    eprintln!(
        "{total} entries past a stuck follower in {:?}",
        started.elapsed()
    );
    assert_eq!(reading.join().expect("reading follower"), total);
    let log = d.cat();
    let others: Vec<&Value> = log.iter().filter(|e| e["kind"] != "x.e2e").collect();
    assert_eq!(log.len() as u64, total, "entries not sent here: {others:?}");
    // Now read the stuck one: entries in order from 0, then a `lagged`
    // error line saying where to resume, then the end.
    let mut next = 0u64;
    let mut error = None;
    loop {
        match stuck.next(Duration::from_secs(20)) {
            Some(Event::Line(l)) => {
                let v: Value = serde_json::from_str(&l).expect("json line");
                if v.get("heartbeat").is_some() {
                    continue;
                }
                assert!(error.is_none(), "a line after the error line: {l}");
                if v.get("error").is_some() {
                    error = Some(v);
                    continue;
                }
                assert_eq!(v["seq"].as_u64(), Some(next), "in order, no gap");
                next += 1;
            }
            Some(Event::End) | Some(Event::Broken(_)) => break,
            None => panic!("the stuck follower was never disconnected (read {next} entries)"),
        }
    }
    eprintln!("the stuck follower got {next} entries, then {error:?}");
    assert!(
        next < total,
        "the follower was never cut off: it read all {next}"
    );
    let error = error.unwrap_or_else(|| {
        panic!("the stuck follower ended after {next} of {total} entries without a `lagged` error line")
    });
    assert_eq!(error["error"]["kind"], "lagged", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("from={next}"))),
        "the error says where to resume: {error}"
    );
}

#[test]
fn overload_answers_503_with_retry_after_and_loses_nothing() {
    let d = Daemon::with_limits(json!({"queue_requests_max": 1, "overload_wait_ms": 0}));
    let producers: Vec<_> = (0..12u64)
        .map(|p| {
            let addr = d.addr.clone();
            std::thread::spawn(move || {
                let mut acked: Acked = Vec::new();
                let mut refused = Vec::new();
                for i in 0..15u64 {
                    let batch: Vec<Value> = (0..4).map(|k| entry(p, i * 4 + k)).collect();
                    let r = http::post_json(&addr, Value::Array(batch).to_string().as_bytes())
                        .expect("post");
                    match r.status {
                        200 => {
                            for (k, a) in (0..4).zip(r.acks()) {
                                acked.push((a, (p, i * 4 + k)));
                            }
                        }
                        503 => {
                            let e = r.error();
                            assert_eq!(e["kind"], "overloaded", "{}", r.text());
                            let ra = r.header("retry-after").map(str::to_string);
                            refused.push(ra);
                        }
                        s => panic!("unexpected {s}: {}", r.text()),
                    }
                }
                (acked, refused)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for h in producers {
        let (a, r) = h.join().expect("producer");
        acked.extend(a);
        refused.extend(r);
    }
    assert!(
        !refused.is_empty(),
        "12 producers at once with one queue slot: none was refused"
    );
    assert!(!acked.is_empty(), "nobody got through");
    for ra in &refused {
        let secs: Option<u64> = ra.as_deref().and_then(|s| s.parse().ok());
        assert!(secs.is_some_and(|s| s >= 1), "Retry-After {ra:?}");
    }
    let log = d.cat();
    assert_eq!(
        log.len(),
        acked.len(),
        "the log holds exactly the entries of the 200s ({} refused requests)",
        refused.len()
    );
    assert_acked_in_log(&log, &acked);
    d.assert_verifies();
}

#[test]
fn connection_limit_closes_the_fifth() {
    let d = Daemon::with_limits(json!({"connections_max": 4}));
    let head = format!(
        "GET /v1/health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        d.addr
    );
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = http::connect(&d.addr).expect("connect");
        // Half a head: the connection is accepted and served, not finished.
        s.write_all(head.as_bytes()).expect("write");
        held.push(s);
    }
    // Accepting is in order, so the four hold their slots by now.
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = http::connect(&d.addr).expect("the kernel still completes the handshake");
    let _ = fifth.write_all(head.as_bytes());
    let _ = fifth.write_all(b"\r\n");
    let mut got = Vec::new();
    let res = fifth.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "the fifth connection was served: {}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        res.is_ok()
            || res
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{res:?}"
    );
    // The four are real connections: each finishes its request.
    for mut s in held.drain(..) {
        s.write_all(b"\r\n").expect("finish head");
        let mut r = std::io::BufReader::new(s);
        let (status, _) = http::read_head(&mut r).expect("answer");
        assert_eq!(status, 200);
    }
    // And their slots are free again.
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match http::get(&d.addr, "/v1/health") {
            Ok(r) if r.status == 200 => break,
            other => assert!(Instant::now() < end, "no slot freed: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A write that fails (here EFBIG from a file-size limit, as on a full
/// disk) puts the writer in lockdown: appends get 503 `lockdown` with the
/// cause, `/v1/health` answers 503 saying so, nothing unstored was acked,
/// and the log still verifies.
#[test]
fn a_failed_write_is_lockdown_503_and_health_says_why() {
    let mut d = super::harness::Daemon::new(None, &[]);
    d.file_limit_kib = Some(2048);
    d.spawn();
    let pad = "x".repeat(1000);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..20_000u64 {
        let body = serde_json::json!({"kind": "x.fill", "payload": {"i": i, "pad": pad}});
        let r = super::http::post_json(&d.addr, body.to_string().as_bytes()).unwrap();
        if r.status == 200 {
            acked.extend(r.acks());
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the file-size limit was never reached");
    assert_eq!(r.status, 503, "{}", r.text());
    let e = r.error();
    assert_eq!(e["kind"], "lockdown", "{e}");
    // Later appends are refused at once, naming the cause.
    let again = super::http::post_json(&d.addr, b"{\"kind\":\"x.more\"}").unwrap();
    assert_eq!(again.status, 503);
    assert!(
        again.error()["message"]
            .as_str()
            .unwrap()
            .contains("lockdown"),
        "{}",
        again.text()
    );
    let h = super::http::get(&d.addr, "/v1/health").unwrap();
    assert_eq!(h.status, 503, "{}", h.text());
    let h = h.json();
    assert_eq!(h["status"], "lockdown");
    assert!(
        h["lockdown"]
            .as_str()
            .unwrap_or("")
            .contains("File too large"),
        "{h}"
    );
    d.kill9();
    // Every ack names an entry the log holds, and the log verifies.
    let log = d.cat();
    for a in &acked {
        let e = log
            .iter()
            .find(|e| e["seq"].as_u64() == Some(a.seq))
            .unwrap_or_else(|| panic!("acked seq {} is not in the log", a.seq));
        assert_eq!(e["hash"].as_str(), Some(a.hash.as_str()));
    }
    d.assert_verifies();
}
