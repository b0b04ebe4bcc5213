//! What an operator watches: `/metrics` counts what happened, `/v1/health`
//! says how the daemon is, and the live stream as Server-Sent Events
//! resumes where a client left off.
use super::entry;
use super::harness::Daemon;
use super::http::{get, post_json, request, Event, Follow};
use serde_json::Value;
use std::time::Duration;

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_and_health_count_what_happened() {
    let d = Daemon::start();
    for i in 0..5 {
        post_json(&d.addr, entry(1, i).to_string().as_bytes())
            .unwrap()
            .acks();
    }
    let bad = post_json(&d.addr, b"{\"kind\":\"job.received\",\"payload\":{}}").unwrap();
    assert_eq!(bad.status, 400);
    let f = Follow::open(&d.addr, "/v1/entries?follow=true&from=0").unwrap();
    // The follower counts once it has its first line.
    assert!(matches!(
        f.next(Duration::from_secs(10)),
        Some(Event::Line(_))
    ));
    let m = get(&d.addr, "/metrics").unwrap();
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));
    let t = m.text();
    assert!(
        metric(&t, "argus_entries_written_total").unwrap_or(0.0) >= 5.0,
        "{t}"
    );
    assert!(
        metric(&t, "argus_append_requests_total").unwrap_or(0.0) >= 5.0,
        "{t}"
    );
    assert!(
        metric(&t, "argus_bytes_written_total").unwrap_or(0.0) > 0.0,
        "{t}"
    );
    assert_eq!(
        metric(
            &t,
            "argus_requests_rejected_total{reason=\"invalid_entry\"}"
        ),
        Some(1.0),
        "{t}"
    );
    assert_eq!(metric(&t, "argus_followers"), Some(1.0), "{t}");
    assert_eq!(metric(&t, "argus_queue_depth"), Some(0.0), "{t}");
    assert!(t.contains("argus_fsync_seconds_bucket{le=\""), "{t}");
    assert!(t.contains("argus_group_commit_entries_bucket{le=\""), "{t}");
    assert!(t.contains("# HELP argus_fsync_seconds"), "{t}");
    let h = get(&d.addr, "/v1/health").unwrap();
    assert_eq!(h.status, 200);
    let h = h.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["lockdown"], Value::Null);
    assert_eq!(h["head_seq"], 4);
    assert_eq!(h["followers"], 1);
    assert!(h["projection_lag"].is_object(), "{h}");
    f.close();
}

fn sse_ids(f: &Follow, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    while ids.len() < n {
        match f.next(Duration::from_secs(10)) {
            Some(Event::Line(l)) => {
                if let Some(id) = l.strip_prefix("id: ") {
                    ids.push(id.trim().parse().unwrap());
                }
            }
            other => panic!("stream ended early: {other:?} after {ids:?}"),
        }
    }
    ids
}

#[test]
fn server_sent_events_carry_seqs_and_resume_from_last_event_id() {
    let d = Daemon::start();
    for i in 0..4 {
        post_json(&d.addr, entry(1, i).to_string().as_bytes())
            .unwrap()
            .acks();
    }
    let sse = [("Accept", "text/event-stream")];
    let f = Follow::open_with(&d.addr, "/v1/entries?follow=true&from=0", &sse).unwrap();
    assert_eq!(sse_ids(&f, 4), vec![0, 1, 2, 3]);
    f.close();
    // A browser reconnects with the last id it saw.
    let resume = [("Accept", "text/event-stream"), ("Last-Event-ID", "1")];
    let f = Follow::open_with(&d.addr, "/v1/entries?follow=true", &resume).unwrap();
    post_json(&d.addr, entry(1, 4).to_string().as_bytes())
        .unwrap()
        .acks();
    assert_eq!(sse_ids(&f, 3), vec![2, 3, 4]);
    f.close();
    let r = request(&d.addr, "GET", "/v1/entries?from=0&to=1", &sse, b"").unwrap();
    let t = r.text();
    assert!(t.contains("event: entry\ndata: {\"seq\":0"), "{t}");
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/event-stream"));
}
