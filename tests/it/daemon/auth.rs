//! Bearer tokens over TCP (docs/API.md "Who"): who may write what, under
//! which name and actor, and that a token is never echoed or logged.
use super::harness::Daemon;
use super::http::{self, Response};
use crate::common::{argus, Run};
use serde_json::{json, Value};

/// Issues a token before the daemon starts (`argusctl token add`).
fn issue(d: &Daemon, name: &str, role: &str) -> String {
    let dir = d.dir.display().to_string();
    let r = argus([
        "token", "add", &dir, "--name", name, "--role", role, "-o", "json", "--server", "local",
    ]);
    r.assert_ok();
    let t = r.json()["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token{}", r.ctx()))
        .to_string();
    assert!(t.len() >= 32, "{}", r.ctx());
    t
}

/// A daemon with an agent token `ag1`, an operator token `op1`, logging at
/// debug level (so a leak would show in the most verbose diagnostics).
fn daemon() -> (Daemon, String, String) {
    let mut d = Daemon::new(None, &["--log-level", "debug"]);
    let agent = issue(&d, "ag1", "agent");
    let operator = issue(&d, "op1", "operator");
    d.spawn();
    (d, agent, operator)
}

fn post(d: &Daemon, token: Option<&str>, body: &Value) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = auth.as_deref() {
        headers.push(("Authorization", a));
    }
    http::request(
        &d.addr,
        "POST",
        "/v1/entries",
        &headers,
        body.to_string().as_bytes(),
    )
    .expect("request")
}

fn refused(r: &Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let e = r.error();
    assert_eq!(e["kind"], kind, "{}", r.text());
    e
}

fn work(agent: Option<&str>) -> Value {
    let mut v =
        json!({"kind": "job.received", "job_id": "j1", "payload": {"job_type": "x", "title": "t"}});
    if let Some(a) = agent {
        v["agent"] = json!(a);
    }
    v
}

/// `argusctl` through the daemon with `token`.
fn argus_as(d: &Daemon, token: &str, args: &[&str]) -> Run {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.push("--token".into());
    a.push(token.into());
    a.push("--server".into());
    a.push(d.url());
    argus(&a)
}

fn entries_as(d: &Daemon, token: &str) -> u64 {
    let r = argus_as(d, token, &["stats", &d.dir.display().to_string()]);
    r.assert_ok();
    r.json()["entries"].as_u64().expect("entries")
}

#[test]
fn no_token_or_a_bad_one_is_401_and_never_echoed() {
    let (d, agent, operator) = daemon();
    let before = entries_as(&d, &operator);
    let e = refused(&post(&d, None, &work(None)), 401, "unauthenticated");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("token")),
        "{e}"
    );
    // Reads need one too.
    let r = http::get(&d.addr, "/v1/entries?from=0").expect("get");
    refused(&r, 401, "unauthenticated");
    let bad = "argus_NotARealTokenButShapedLikeOne0123456789abcdef";
    let r = post(&d, Some(bad), &work(None));
    refused(&r, 401, "unauthenticated");
    assert!(
        !r.text().contains(bad),
        "the answer echoes the token: {}",
        r.text()
    );
    let r = http::request(
        &d.addr,
        "POST",
        "/v1/entries",
        &[("Content-Type", "application/json"), ("Authorization", bad)],
        work(None).to_string().as_bytes(),
    )
    .expect("request");
    refused(&r, 401, "unauthenticated");
    assert_eq!(entries_as(&d, &operator), before, "a refused request wrote");
    // A good token works, and no token, good or bad, is in the daemon's
    // diagnostics.
    assert_eq!(post(&d, Some(&agent), &work(None)).acks().len(), 1);
    let err = d.stderr();
    assert!(!err.is_empty());
    for t in [bad, agent.as_str(), operator.as_str()] {
        assert!(!err.contains(t), "a token is in argusd's stderr:\n{err}");
    }
}

#[test]
fn agent_token_may_not_write_a_decision_kind() {
    let (d, agent, operator) = daemon();
    let before = entries_as(&d, &operator);
    let v = json!({"kind": "proposal.approved", "job_id": "j1", "payload": {"proposal_id": "p-1"}});
    let e = refused(&post(&d, Some(&agent), &v), 403, "forbidden");
    assert_eq!(e["field"], "kind", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("proposal.approved")),
        "{e}"
    );
    assert_eq!(entries_as(&d, &operator), before);
}

#[test]
fn agent_token_writes_only_under_its_own_name() {
    let (d, agent, operator) = daemon();
    let before = entries_as(&d, &operator);
    let e = refused(
        &post(&d, Some(&agent), &work(Some("other"))),
        403,
        "forbidden",
    );
    assert_eq!(e["field"], "agent", "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("other")),
        "{e}"
    );
    // One bad entry in a batch refuses the batch.
    let batch = json!([work(Some("ag1")), work(Some("other"))]);
    let e = refused(&post(&d, Some(&agent), &batch), 403, "forbidden");
    assert_eq!(e["line"], 2, "{e}");
    assert_eq!(entries_as(&d, &operator), before);

    // Its own name, given or left out: recorded as its own, actor token.
    let named = post(&d, Some(&agent), &work(Some("ag1"))).acks();
    let unnamed = post(&d, Some(&agent), &work(None)).acks();
    let r = argus_as(
        &d,
        &operator,
        &["cat", &d.dir.display().to_string(), "-o", "json"],
    );
    r.assert_ok();
    let log = r.json_lines();
    for a in named.iter().chain(&unnamed) {
        let e = &log[a.seq as usize];
        assert_eq!(e["hash"].as_str(), Some(a.hash.as_str()));
        assert_eq!(e["agent"], "ag1", "{e}");
        assert_eq!(e["actor"], "agent:token:ag1", "{e}");
    }
}

#[test]
fn a_revoked_token_is_401() {
    let (mut d, agent, operator) = daemon();
    assert_eq!(post(&d, Some(&agent), &work(None)).acks().len(), 1);
    // An agent may not revoke; an operator may, through the daemon, and
    // the token stops working at once.
    let dir = d.dir.display().to_string();
    let r = argus_as(&d, &agent, &["token", "revoke", &dir, "ag1"]);
    assert_ne!(r.code, Some(0), "an agent revoked a token{}", r.ctx());
    assert_eq!(post(&d, Some(&agent), &work(None)).status, 200);
    argus_as(&d, &operator, &["token", "revoke", &dir, "ag1"]).assert_ok();
    let r = post(&d, Some(&agent), &work(None));
    refused(&r, 401, "unauthenticated");
    assert!(!r.text().contains(&agent));
    // And stays revoked after a restart.
    d.restart();
    refused(&post(&d, Some(&agent), &work(None)), 401, "unauthenticated");
    assert!(
        entries_as(&d, &operator) >= 2,
        "the operator token still works"
    );
    // Revoked locally while the daemon is down: refused after the start.
    let third = {
        assert!(d.term().success());
        let t = issue(&d, "ag2", "agent");
        d.spawn();
        assert_eq!(post(&d, Some(&t), &work(None)).status, 200);
        assert!(d.term().success());
        argus(["token", "revoke", &dir, "ag2", "--server", "local"]).assert_ok();
        d.spawn();
        t
    };
    refused(&post(&d, Some(&third), &work(None)), 401, "unauthenticated");
    let err = d.stderr();
    for t in [agent.as_str(), operator.as_str(), third.as_str()] {
        assert!(!err.contains(t), "a token is in argusd's stderr");
    }
    common_verify(&d);
}

fn common_verify(d: &Daemon) {
    crate::common::verify(&d.dir, &d.key, &["--server", "local"]).assert_ok();
}

#[test]
fn listening_beyond_loopback_without_tokens_is_refused() {
    let mut d = Daemon::new(None, &[]);
    let (st, err) = d.run_to_exit(&["--listen", "0.0.0.0:0"]);
    assert!(
        !st.success(),
        "argusd served 0.0.0.0 with no tokens:\n{err}"
    );
    assert!(err.contains("no tokens"), "{err}");
    assert!(err.contains("0.0.0.0"), "{err}");
    assert!(
        !d.dir.join("argusd.json").exists(),
        "a refused start announced itself"
    );
}

/// Only `argusctl key rotate` writes key.rotated (SPEC §4.7): neither an
/// agent's nor an operator's token may post one, and argusd does not run
/// `key rotate` for anyone (it takes the writer lock argusd holds).
#[test]
fn no_token_may_write_key_rotated_or_rotate_through_argusd() {
    let (d, agent, operator) = daemon();
    let before = entries_as(&d, &operator);
    let v = json!({"kind": "key.rotated", "payload": {
        "epoch": 1, "from_seq": 1,
        "public_key": "aa".repeat(32), "key_id": "bb".repeat(4), "prev_key_id": "cc".repeat(4),
        "cert": "dd".repeat(64), "possession": "ee".repeat(64)}});
    for token in [&agent, &operator] {
        let e = refused(&post(&d, Some(token), &v), 403, "forbidden");
        assert_eq!(e["field"], "kind", "{e}");
        let msg = e["message"].as_str().unwrap_or("");
        assert!(msg.contains("argusctl key rotate"), "{e}");
    }
    let r = http::request(
        &d.addr,
        "POST",
        "/v1/argusctl",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {operator}")),
        ],
        json!({"argv": ["key", "rotate", "."]})
            .to_string()
            .as_bytes(),
    )
    .expect("request");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("stop argusd"), "{}", r.text());
    assert_eq!(entries_as(&d, &operator), before, "a refused request wrote");
}
