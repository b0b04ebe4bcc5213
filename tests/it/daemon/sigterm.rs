//! SIGTERM under load: argusd finishes what it accepted and exits 0 in
//! bounded time; every 200 (and every streamed ack) is in the log, nothing
//! is in the log that nobody was told about, followers are told to resume,
//! argusd.json is gone and the log verifies.
use super::harness::Daemon;
use super::http::{self, Event, Follow, StreamAppend};
use super::{assert_acked_in_log, entry, Acked};
use crate::common::XorShift;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Appends until the daemon stops answering. Besides acks, returns the
/// refusals it saw (status and error kind).
fn produce_until_stopped(addr: String, p: u64) -> (Acked, Vec<(u16, String)>) {
    let mut acked = Vec::new();
    let mut refusals = Vec::new();
    let mut rng = XorShift::new(p + 77);
    let mut i = 0u64;
    if p % 3 == 2 {
        let Ok(mut s) = StreamAppend::open(&addr) else {
            return (acked, refusals);
        };
        'stream: loop {
            let k = 1 + rng.below(3);
            let chunk: Vec<Value> = (i..i + k).map(|j| entry(p, j)).collect();
            if s.send(&chunk).is_err() {
                break;
            }
            for j in i..i + k {
                match s.next(Duration::from_secs(20)) {
                    Some(Event::Line(l)) => {
                        let v: Value = serde_json::from_str(&l).expect("json line");
                        if let Some(e) = v.get("error") {
                            refusals.push((
                                e["status"].as_u64().unwrap_or(0) as u16,
                                e["kind"].as_str().unwrap_or_default().to_string(),
                            ));
                            break 'stream;
                        }
                        acked.push((http::ack_of(&v), (p, j)));
                    }
                    Some(_) => break 'stream,
                    None => panic!("producer {p}: no ack within 20 s"),
                }
            }
            i += k;
        }
        return (acked, refusals);
    }
    loop {
        let k = if p.is_multiple_of(3) {
            1
        } else {
            1 + rng.below(6)
        };
        let batch: Vec<Value> = (i..i + k).map(|j| entry(p, j)).collect();
        let r = match http::post_json(&addr, Value::Array(batch).to_string().as_bytes()) {
            Ok(r) => r,
            // No longer accepting connections.
            Err(_) => break,
        };
        if r.status == 200 {
            for (j, a) in (i..i + k).zip(r.acks()) {
                acked.push((a, (p, j)));
            }
        } else {
            let e = r.error();
            refusals.push((r.status, e["kind"].as_str().unwrap_or_default().to_string()));
            break;
        }
        i += k;
    }
    (acked, refusals)
}

#[test]
fn sigterm_under_load_loses_no_acked_entry() {
    let mut d = Daemon::start();
    let follower = Follow::open(&d.addr, "/v1/entries?from=0&follow=true").expect("follow");
    let producers: Vec<_> = (0..9u64)
        .map(|p| {
            let addr = d.addr.clone();
            std::thread::spawn(move || produce_until_stopped(addr, p))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let asked = Instant::now();
    let status = d.term();
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", d.stderr());
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    assert!(
        !d.dir.join("argusd.json").exists(),
        "argusd.json is left after a clean stop"
    );
    assert!(d.stderr().contains("stopped cleanly"), "{}", d.stderr());

    let mut acked = Vec::new();
    let mut refusals = Vec::new();
    for (p, h) in producers.into_iter().enumerate() {
        let (a, r) = h.join().unwrap_or_else(|_| panic!("producer {p} panicked"));
        acked.extend(a);
        refusals.extend(r);
    }
    for (status, kind) in &refusals {
        assert_eq!(
            (*status, kind.as_str()),
            (503, "shutting_down"),
            "the only refusal while stopping is shutting_down"
        );
    }
    assert!(acked.len() > 20, "too little load: {} acks", acked.len());
    let log = d.cat();
    assert_acked_in_log(&log, &acked);
    assert_eq!(
        log.len(),
        acked.len(),
        "every entry in the log was acknowledged to its producer before argusd exited"
    );

    // The follower saw entries in order, then was told to resume.
    let mut next = 0u64;
    let mut last_error = None;
    loop {
        match follower.next(Duration::from_secs(10)) {
            Some(Event::Line(l)) => {
                let v: Value = serde_json::from_str(&l).expect("json line");
                if v.get("heartbeat").is_some() {
                    continue;
                }
                assert!(last_error.is_none(), "a line after the error: {l}");
                if v.get("error").is_some() {
                    last_error = Some(v);
                    continue;
                }
                assert_eq!(v["seq"].as_u64(), Some(next));
                next += 1;
            }
            Some(_) => break,
            None => panic!("the follower was not closed by the stop"),
        }
    }
    let e = last_error
        .unwrap_or_else(|| panic!("the follower got no shutting_down line after {next} entries"));
    assert_eq!(e["error"]["kind"], "shutting_down", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("from={next}"))),
        "{e}"
    );
    d.assert_verifies();
}

/// A second signal while the first one's drain waits (here on a request
/// whose body never finishes) ends argusd at once; the log is consistent
/// and the next start serves it.
#[test]
fn a_second_signal_exits_at_once_and_the_log_reopens() {
    use std::io::Write;
    let mut d = Daemon::with_limits(serde_json::json!({"drain_timeout_ms": 60_000}));
    for i in 0..3 {
        http::post_json(&d.addr, entry(1, i).to_string().as_bytes())
            .unwrap()
            .acks();
    }
    // A request in flight that the drain would wait for: its body is
    // promised but never sent.
    let mut s = http::connect(&d.addr).unwrap();
    s.write_all(b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"kind\"")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    d.signal(nix::sys::signal::Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        d.running(),
        "the first signal waits for the request in flight"
    );
    let t = Instant::now();
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{}", d.stderr());
    assert!(d.stderr().contains("second signal"), "{}", d.stderr());
    assert!(!d.dir.join("argusd.json").exists());
    drop(s);
    d.assert_verifies();
    d.spawn();
    assert_eq!(d.cat().len(), 3);
}
