//! `kill -9` under load, fifty times: every ack given before a kill is in
//! the log at its seq with its hash after the restart, and a follower that
//! resumes from its last seq + 1 after each restart sees every seq exactly
//! once across all rounds, with the hashes the log holds at the end.
use super::harness::Daemon;
use super::http::{self, Event, Follow, StreamAppend};
use super::{assert_acked_in_log, entry, Acked};
use crate::common::XorShift;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: u64 = 50;
const PRODUCERS: u64 = 6;
/// A producer's pause between requests (or stream chunks): load stays on
/// through each round, but the log stays small, since argusd's start
/// (projections catching up) grows with the log and there are 51 starts.
const PAUSE: Duration = Duration::from_millis(10);

/// Appends until the daemon goes away (or `stop`), from entry `first` of
/// producer `p`; returns what was acked and the next unused entry number.
/// Modes: 0 single objects, 1 arrays, 2 a stream.
fn produce_until_gone(addr: String, p: u64, first: u64, stop: Arc<AtomicBool>) -> (Acked, u64) {
    let mut got = Vec::new();
    let mut i = first;
    let mut rng = XorShift::new(p * 1000 + first + 1);
    match p % 3 {
        0 | 1 => {
            while !stop.load(Ordering::Relaxed) {
                let k = if p.is_multiple_of(3) {
                    1
                } else {
                    1 + rng.below(6)
                };
                let batch: Vec<Value> = (i..i + k).map(|j| entry(p, j)).collect();
                let body = if k == 1 {
                    batch[0].to_string()
                } else {
                    Value::Array(batch).to_string()
                };
                i += k;
                match http::post_json(&addr, body.as_bytes()) {
                    Ok(r) if r.status == 200 => {
                        for (j, a) in (i - k..i).zip(r.acks()) {
                            got.push((a, (p, j)));
                        }
                    }
                    Ok(r) => panic!("producer {p}: refused: {} {}", r.status, r.text()),
                    // The daemon was killed under this request.
                    Err(_) => break,
                }
                std::thread::sleep(PAUSE);
            }
        }
        _ => {
            let Ok(mut s) = StreamAppend::open(&addr) else {
                return (got, i);
            };
            'stream: while !stop.load(Ordering::Relaxed) {
                let k = 1 + rng.below(3);
                let chunk: Vec<Value> = (i..i + k).map(|j| entry(p, j)).collect();
                i += k;
                if s.send(&chunk).is_err() {
                    break;
                }
                for j in i - k..i {
                    match s.next(Duration::from_secs(20)) {
                        Some(Event::Line(l)) => {
                            let v: Value = serde_json::from_str(&l)
                                .unwrap_or_else(|e| panic!("bad line {l:?}: {e}"));
                            if v.get("error").is_some() {
                                panic!("producer {p}: stream refused: {l}");
                            }
                            got.push((http::ack_of(&v), (p, j)));
                        }
                        Some(Event::Broken(_)) | Some(Event::End) => break 'stream,
                        None => panic!("producer {p}: no ack within 20 s"),
                    }
                }
                std::thread::sleep(PAUSE);
            }
        }
    }
    (got, i)
}

/// Follower lines until the stream ends or breaks (the kill), bounded.
fn drain(f: &Follow, within: Duration) -> Vec<Value> {
    let end = Instant::now() + within;
    let mut out = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match f.next(left) {
            Some(Event::Line(l)) => {
                let v: Value =
                    serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"));
                if v.get("heartbeat").is_none() {
                    out.push(v);
                }
            }
            Some(Event::End) | Some(Event::Broken(_)) => return out,
            None => panic!("the follower neither ended nor broke within {within:?}"),
        }
    }
}

/// Appends what a follower saw to `seen`, checking it continues exactly
/// where the last round stopped.
fn record(seen: &mut Vec<(u64, String)>, lines: Vec<Value>, round: u64) {
    for v in lines {
        assert!(
            v.get("error").is_none(),
            "round {round}: the follower got an error: {v}"
        );
        let seq = v["seq"].as_u64().expect("seq");
        let want = seen.len() as u64;
        assert_eq!(
            seq, want,
            "round {round}: the follower expected seq {want} next (no gap, no duplicate), got {v}"
        );
        seen.push((seq, v["hash"].as_str().unwrap_or_default().to_string()));
    }
}

#[test]
fn kill9_under_load_fifty_rounds() {
    let started = Instant::now();
    let mut d = Daemon::start();
    let mut rng = XorShift::new(9);
    let mut next = [0u64; PRODUCERS as usize];
    let mut acked = Vec::new();
    let mut seen: Vec<(u64, String)> = Vec::new();
    for round in 0..ROUNDS {
        if round > 0 {
            d.spawn();
        }
        let from = seen.len();
        let follower =
            Follow::open(&d.addr, &format!("/v1/entries?from={from}&follow=true")).expect("follow");
        assert_eq!(follower.status, 200);
        let stop = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (addr, stop, first) = (d.addr.clone(), stop.clone(), next[p as usize]);
                std::thread::spawn(move || produce_until_gone(addr, p, first, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + rng.below(230)));
        d.kill9();
        stop.store(true, Ordering::Relaxed);
        for (p, h) in producers.into_iter().enumerate() {
            let (got, n) = h
                .join()
                .unwrap_or_else(|_| panic!("round {round}: producer {p} panicked"));
            next[p] = n;
            acked.extend(got);
        }
        record(&mut seen, drain(&follower, Duration::from_secs(10)), round);
    }
    // One last start: the feed delivers what the last kill cut off.
    d.spawn();
    let total = d.entries();
    let health = http::get(&d.addr, "/v1/health").expect("health").json();
    assert_eq!(health["entries"].as_u64(), Some(total), "{health}");
    let from = seen.len();
    let follower =
        Follow::open(&d.addr, &format!("/v1/entries?from={from}&follow=true")).expect("follow");
    // Only what the followers of the rounds did not see yet: when the last
    // kill came after the feed had delivered everything, there is nothing
    // more to wait for (waiting would only see heartbeats).
    if (from as u64) < total {
        let lines = super::concurrency::follow_until(&follower, total - 1, Duration::from_secs(20));
        let lines: Vec<Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("heartbeat").is_none())
            .collect();
        record(&mut seen, lines, ROUNDS);
    }
    drop(follower);
    assert_eq!(seen.len() as u64, total);
    assert!(
        acked.len() > ROUNDS as usize,
        "too little load to mean anything: {} acks in {ROUNDS} rounds",
        acked.len()
    );
    let log = d.cat();
    assert_eq!(log.len() as u64, total);
    assert_acked_in_log(&log, &acked);
    for ((seq, hash), e) in seen.iter().zip(&log) {
        assert_eq!(
            Some(hash.as_str()),
            e["hash"].as_str(),
            "seq {seq}: the follower saw an entry the log no longer holds"
        );
    }
    assert!(d.term().success(), "stderr:\n{}", d.stderr());
    d.assert_verifies();
    eprintln!(
        "{ROUNDS} kills: {} acks, {total} entries, {:?}",
        acked.len(),
        started.elapsed()
    );
}
