//! Requests argusd must refuse (docs/API.md "Errors"): each answer's status,
//! error kind and message (naming the line and field where there is one),
//! and the log unchanged as `argusctl stats` counts it.
use super::harness::Daemon;
use super::http::{self, Event, Response, StreamAppend};
use serde_json::{json, Value};
use std::time::Duration;

/// A daemon whose log already holds one entry.
fn daemon(limits: Option<Value>) -> Daemon {
    let d = match limits {
        Some(l) => Daemon::with_limits(l),
        None => Daemon::start(),
    };
    let r = http::post_json(&d.addr, super::entry(0, 0).to_string().as_bytes()).expect("post");
    assert_eq!(r.acks().len(), 1);
    d
}

fn job(i: u64) -> Value {
    json!({"kind": "job.received", "job_id": format!("j{i}"), "agent": "planner", "payload": {"job_type": "x", "title": "t"}})
}

/// Asserts `r` is a refusal with `status` and `kind`; returns the error.
fn refused(r: &Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{}",
        r.text()
    );
    let e = r.error();
    assert_eq!(e["kind"], kind, "{}", r.text());
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text()
    );
    e
}

fn message(e: &Value) -> &str {
    e["message"].as_str().unwrap_or_default()
}

/// Sends `body` and checks the refusal left the log as it was.
fn refuse_unchanged(d: &Daemon, ct: &str, body: &[u8], status: u16, kind: &str) -> Value {
    let before = d.entries();
    let r = http::request(
        &d.addr,
        "POST",
        "/v1/entries",
        &[("Content-Type", ct)],
        body,
    )
    .expect("request");
    let e = refused(&r, status, kind);
    assert_eq!(
        d.entries(),
        before,
        "a refused request changed the log: {e}"
    );
    e
}

#[test]
fn malformed_json_is_400_naming_the_line() {
    let d = daemon(None);
    let e = refuse_unchanged(
        &d,
        "application/json",
        br#"{"kind":"x.a","payload":{"#,
        400,
        "invalid_entry",
    );
    assert_eq!(e["line"], 1, "{e}");
    assert!(message(&e).contains("malformed JSON"), "{e}");
    assert!(message(&e).contains("line 1"), "{e}");
    assert!(
        message(&e).contains("nothing of this request was written"),
        "{e}"
    );
}

#[test]
fn unknown_field_is_400_naming_it() {
    let d = daemon(None);
    let mut v = job(1);
    v["colour"] = json!("red");
    let e = refuse_unchanged(
        &d,
        "application/json",
        v.to_string().as_bytes(),
        400,
        "invalid_entry",
    );
    assert_eq!(e["line"], 1, "{e}");
    assert!(message(&e).contains("unknown field `colour`"), "{e}");
}

#[test]
fn schema_violation_is_400_naming_the_field() {
    let d = daemon(None);
    let v = json!({"kind": "job.received", "job_id": "j1", "agent": "planner", "payload": {"job_type": 5, "title": "t"}});
    let e = refuse_unchanged(
        &d,
        "application/json",
        v.to_string().as_bytes(),
        400,
        "invalid_entry",
    );
    assert_eq!(e["field"], "payload.job_type", "{e}");
    assert!(message(&e).contains("payload.job_type"), "{e}");
    // In an array the position is the line.
    let arr = json!([job(1), job(2), v]);
    let e = refuse_unchanged(
        &d,
        "application/json",
        arr.to_string().as_bytes(),
        400,
        "invalid_entry",
    );
    assert_eq!(e["line"], 3, "{e}");
    assert_eq!(e["field"], "payload.job_type", "{e}");
}

#[test]
fn one_bad_line_in_an_ndjson_batch_writes_nothing() {
    let d = daemon(None);
    let mut lines: Vec<Value> = (1..=5).map(job).collect();
    lines[3] = json!({"kind": "job.received", "job_id": "j4", "payload": {"title": "no job_type"}});
    let e = refuse_unchanged(
        &d,
        "application/x-ndjson",
        &http::ndjson(&lines),
        400,
        "invalid_entry",
    );
    assert_eq!(e["line"], 4, "{e}");
    assert!(message(&e).starts_with("line 4:"), "{e}");
    assert!(message(&e).contains("job_type"), "{e}");
    // The same five, all good, are written together.
    lines[3] = job(4);
    let r = http::post_ndjson(&d.addr, &http::ndjson(&lines)).expect("post");
    assert_eq!(r.acks().len(), 5);
}

#[test]
fn agent_path_writing_a_decision_is_403() {
    let d = daemon(None);
    let v = json!({"kind": "proposal.approved", "job_id": "j1", "payload": {"proposal_id": "p-1"}});
    let e = refuse_unchanged(
        &d,
        "application/json",
        v.to_string().as_bytes(),
        403,
        "forbidden",
    );
    assert_eq!(e["field"], "kind", "{e}");
    assert_eq!(e["line"], 1, "{e}");
    assert!(message(&e).contains("proposal.approved"), "{e}");
}

#[test]
fn body_over_the_limit_is_413() {
    let d = daemon(Some(json!({"body_bytes_max": 4096})));
    let big: Vec<Value> = (0..100).map(|i| super::entry(1, i)).collect();
    let body = Value::Array(big).to_string();
    assert!(body.len() > 4096);
    let e = refuse_unchanged(&d, "application/json", body.as_bytes(), 413, "too_large");
    assert!(message(&e).contains("body_bytes_max"), "{e}");
    // Chunked, so no Content-Length says so up front: still 413 once
    // the body passes the limit.
    let before = d.entries();
    let lines = http::ndjson(&(0..100).map(|i| super::entry(2, i)).collect::<Vec<_>>());
    let r = http::post_chunked(&d.addr, "application/x-ndjson", &lines, 1000).expect("post");
    let e = refused(&r, 413, "too_large");
    assert!(message(&e).contains("body_bytes_max"), "{e}");
    assert_eq!(d.entries(), before);
}

#[test]
fn line_over_the_limit_is_413_naming_it() {
    let d = daemon(Some(
        json!({"line_bytes_max": 2048, "body_bytes_max": 65536}),
    ));
    let mut lines: Vec<Value> = (0..3).map(|i| super::entry(1, i)).collect();
    lines[1]["payload"]["pad"] = json!("x".repeat(3000));
    let e = refuse_unchanged(
        &d,
        "application/x-ndjson",
        &http::ndjson(&lines),
        413,
        "too_large",
    );
    assert_eq!(e["line"], 2, "{e}");
    assert!(message(&e).contains("line_bytes_max"), "{e}");
}

#[test]
fn wrong_content_type_is_415() {
    let d = daemon(None);
    let e = refuse_unchanged(
        &d,
        "text/plain",
        job(1).to_string().as_bytes(),
        415,
        "unsupported_media_type",
    );
    assert!(message(&e).contains("text/plain"), "{e}");
}

#[test]
fn empty_body_is_400() {
    let d = daemon(None);
    refuse_unchanged(&d, "application/json", b"", 400, "invalid_entry");
    let e = refuse_unchanged(&d, "application/x-ndjson", b"", 400, "bad_request");
    assert!(message(&e).contains("no entries"), "{e}");
    refuse_unchanged(&d, "application/json", b"[]", 400, "bad_request");
}

#[test]
fn streaming_append_stops_at_its_third_line() {
    let d = daemon(None);
    let before = d.entries();
    let mut s = StreamAppend::open(&d.addr).expect("open");
    s.send(&[job(1), job(2)]).expect("send");
    let mut acks = Vec::new();
    for _ in 0..2 {
        match s.next(Duration::from_secs(20)) {
            Some(Event::Line(l)) => {
                acks.push(http::ack_of(&serde_json::from_str(&l).expect("json")))
            }
            other => panic!("expected an ack, got {other:?}"),
        }
    }
    assert_eq!(s.status(), 200);
    assert_eq!(acks[1].seq, acks[0].seq + 1);
    s.send_raw(b"{\"kind\":\"job.received\",\"payload\":{}}\n")
        .expect("send");
    let (lines, end) = s.rest(Duration::from_secs(20));
    assert_eq!(lines.len(), 1, "one final error line: {lines:?}");
    let v: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(v["error"]["kind"], "invalid_entry", "{v}");
    assert_eq!(v["error"]["line"], 3, "{v}");
    assert_eq!(v["error"]["status"], 400, "{v}");
    assert!(
        matches!(end, Some(Event::End) | Some(Event::Broken(_))),
        "the stream ends after its error: {end:?}"
    );
    assert_eq!(
        d.entries(),
        before + 2,
        "exactly the two acked lines were added"
    );
    let log = d.cat();
    for a in &acks {
        assert_eq!(log[a.seq as usize]["hash"].as_str(), Some(a.hash.as_str()));
    }
}
