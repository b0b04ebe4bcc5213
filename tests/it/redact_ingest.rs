//! Redaction at ingestion: secrets in an agent's payload never reach the
//! segment files, through `argusctl append` or argusd. The stored payload
//! names each rule that fired, the entry verifies, and the secret's bytes
//! are nowhere on disk.
use crate::common::{argus, argus_stdin, init_log, p};
use crate::daemon::harness::Daemon;
use crate::daemon::http::post_json;
use serde_json::{json, Value};
use std::path::Path;

const AWS: &str = "AKIAIOSFODNN7EXAMPLE";
const GH: &str = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
const PEM_LINE: &str = "MIIEpAIBAAKCAQEA1x2y3z4q8r9s0t1u2v3w4x5y6z7";

fn secret_payload() -> Value {
    json!({
        "tool": "shell",
        "call_id": "c1",
        "env": {"nested": [{"deep": format!("export AWS_ACCESS_KEY_ID={AWS}")}]},
        "stdout": format!("{} token={GH} {}", "x".repeat(200_000), "y".repeat(1000)),
        "db_user": "admin",
        "db_password": "correct horse battery staple",
        "key_lines": ["-----BEGIN RSA PRIVATE KEY-----", PEM_LINE, "-----END RSA PRIVATE KEY-----"],
    })
}

fn assert_no_secret_on_disk(dir: &Path) {
    for e in std::fs::read_dir(dir.join("segments")).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        for s in [AWS, GH, PEM_LINE, "correct horse battery staple"] {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s} reached the segment files"
            );
        }
    }
}

fn assert_redacted(stored: &Value) {
    let s = stored.to_string();
    assert!(
        s.contains("AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key_id]"),
        "{s:.300}"
    );
    assert!(s.contains("token=[REDACTED:github_token]"), "{s:.300}");
    assert_eq!(stored["db_password"], "[REDACTED:secret_field]");
    assert_eq!(stored["db_user"], "admin");
    assert_eq!(stored["key_lines"][1], "[REDACTED:private_key_block]");
    assert_eq!(stored["tool"], "shell");
}

#[test]
fn argusctl_append_redacts_secrets_before_they_are_hashed_and_written() {
    let (tmp, key) = init_log(None);
    let line = json!({"kind": "tool.call_completed", "job_id": "j1", "agent": "coder",
                      "payload": secret_payload()})
    .to_string()
        + "\n";
    argus_stdin([p(Path::new("append")), p(tmp.path())], line.as_bytes()).assert_ok();
    let cat = argus([
        p(Path::new("cat")),
        p(tmp.path()),
        p(Path::new("-o")),
        p(Path::new("json")),
    ]);
    cat.assert_ok();
    assert_redacted(&cat.json_lines()[0]["payload"]);
    assert_no_secret_on_disk(tmp.path());
    argus([
        p(Path::new("verify")),
        p(tmp.path()),
        p(Path::new("--key")),
        p(Path::new(&key)),
    ])
    .assert_ok();
}

#[test]
fn argusd_redacts_secrets_before_they_are_hashed_and_written() {
    let d = Daemon::start();
    let body = json!({"kind": "tool.call_completed", "job_id": "j1", "agent": "coder",
                      "payload": secret_payload()});
    let r = post_json(&d.addr, body.to_string().as_bytes()).unwrap();
    assert_eq!(r.acks().len(), 1);
    assert_redacted(&d.cat()[0]["payload"]);
    assert_no_secret_on_disk(&d.dir);
    d.assert_verifies();
}

/// An operator's rule, set with `config apply`, on top of the built-in set;
/// and bounds that make a 100-byte string too much to scan.
fn rules_set(scan_bytes_max: Option<u64>) -> Value {
    let mut payload = json!({"rules": [{"name": "ticket", "pattern": "TKT-[0-9]{6}"}],
        "note": "tickets, like keys such as AKIAIOSFODNN7EXAMPLE, stay out of the log"});
    if let Some(n) = scan_bytes_max {
        payload["scan_bytes_max"] = json!(n);
    }
    json!({"kind": "redaction.rules_set", "payload": payload})
}

fn cat_json(dir: &Path) -> Vec<Value> {
    let r = argus([
        p(Path::new("cat")),
        p(dir),
        p(Path::new("-o")),
        p(Path::new("json")),
    ]);
    r.assert_ok();
    r.json_lines()
}

fn on_disk(dir: &Path, needle: &str) -> bool {
    crate::common::segment_files(dir).iter().any(|f| {
        let b = std::fs::read(f).unwrap();
        b.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

fn verify(dir: &Path, key: &str) {
    argus([
        p(Path::new("verify")),
        p(dir),
        p(Path::new("--key")),
        p(Path::new(key)),
    ])
    .assert_ok();
}

#[test]
fn an_operators_configured_rule_applies_at_ingestion_and_a_bad_one_is_refused() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    // A rule that does not compile is refused naming the line and the rule,
    // and nothing is written.
    let bad = json!({"kind": "redaction.rules_set", "payload": {"rules": [
        {"name": "ok", "pattern": "a+"}, {"name": "broken", "pattern": "(unclosed"}]}});
    let lines = format!("{}\n{bad}\n", rules_set(None));
    let r = argus_stdin(
        [p(Path::new("config")), p(Path::new("apply")), p(dir)],
        lines.as_bytes(),
    );
    r.assert_code(2);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("broken"),
        "{}",
        r.ctx()
    );
    assert!(
        cat_json(dir).is_empty(),
        "a refused configuration wrote something"
    );
    assert!(!dir.join("control/redaction_rules.json").exists());

    crate::common::configure(dir, &[rules_set(None)]);
    let line = json!({"kind": "tool.call_completed", "job_id": "j1", "agent": "coder",
        "payload": {"tool": "jira", "call_id": "c1", "output": "opened TKT-123456 for you"}});
    argus_stdin(
        [p(Path::new("append")), p(dir)],
        format!("{line}\n").as_bytes(),
    )
    .assert_ok();
    let all = cat_json(dir);
    let stored = &all.last().unwrap()["payload"];
    assert_eq!(
        stored["output"], "opened [REDACTED:ticket] for you",
        "{stored}"
    );
    assert!(!on_disk(dir, "TKT-123456"));
    let status = argus([
        p(Path::new("status")),
        p(dir),
        p(Path::new("-o")),
        p(Path::new("json")),
    ]);
    assert_eq!(
        status.json()["redaction"]["rules_seq"],
        0,
        "{}",
        status.ctx()
    );
    assert!(status.json()["redaction"]["rules"]
        .to_string()
        .contains("ticket"));
    // The operator's own entry is a decision, stored as written: its
    // pattern is not "redacted" by the built-in rules.
    assert_eq!(all[0]["payload"]["rules"][0]["pattern"], "TKT-[0-9]{6}");
    assert!(
        all[0]["payload"]["note"].as_str().unwrap().contains(AWS),
        "{}",
        all[0]
    );
    verify(dir, &key);
}

#[test]
fn a_payload_redaction_cannot_finish_on_stops_everything_through_append() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    crate::common::configure(dir, &[rules_set(Some(64))]);
    let ok = |i: u32| {
        json!({"kind": "cost.logged", "job_id": "j1", "agent": "coder",
        "payload": {"usd": 0.01, "tokens_in": i, "tokens_out": 1, "model": "m", "price_table": "v1"}})
    };
    let big = json!({"kind": "tool.call_completed", "job_id": "j1", "agent": "coder",
        "payload": {"tool": "t", "call_id": "c9", "output": format!("UNSCANNED-{}", "z".repeat(100))}});
    let input = format!("{}\n{}\n{big}\n{}\n", ok(1), ok(2), ok(3));
    let r = argus_stdin([p(Path::new("append")), p(dir)], input.as_bytes());
    r.assert_code(4);
    assert!(r.stderr.contains("stdin line 3"), "{}", r.ctx());
    assert!(r.stderr.contains("emergency stop"), "{}", r.ctx());
    assert!(r.stderr.contains("resume from line 3"), "{}", r.ctx());
    assert_eq!(
        r.stdout.lines().count(),
        2,
        "the two lines before it are acked{}",
        r.ctx()
    );

    let all = cat_json(dir);
    let kinds: Vec<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "redaction.rules_set",
            "cost.logged",
            "cost.logged",
            "redaction.failed",
            "lockdown.set"
        ]
    );
    let failed = &all[3];
    assert_eq!(failed["actor"], "argus");
    assert_eq!(failed["payload"]["entry_kind"], "tool.call_completed");
    assert_eq!(failed["payload"]["line"], 3);
    assert_eq!(failed["payload"]["rules_seq"], 0);
    assert!(failed["payload"]["payload_bytes"].as_u64().unwrap() > 100);
    assert_eq!(all[4]["actor"], "argus");
    assert!(
        !on_disk(dir, "UNSCANNED-"),
        "the refused payload reached the log"
    );
    assert!(dir.join("control/write_lockdown.flag").exists());

    // Agents stay stopped until an operator releases the lockdown.
    let again = argus_stdin(
        [p(Path::new("append")), p(dir)],
        format!("{}\n", ok(4)).as_bytes(),
    );
    again.assert_code(4);
    assert!(again.stderr.contains("lockdown.set"), "{}", again.ctx());
    argus([
        p(Path::new("release")),
        p(dir),
        p(Path::new("--reason")),
        p(Path::new("payload checked")),
    ])
    .assert_ok();
    argus_stdin(
        [p(Path::new("append")), p(dir)],
        format!("{}\n", ok(5)).as_bytes(),
    )
    .assert_ok();
    verify(dir, &key);
}

#[test]
fn a_pointer_to_the_rules_that_leads_nowhere_is_refused_not_ignored() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    // An agent's entry shaped like a rules set with no rules of its own:
    // pointing at it would drop the operator's rule.
    crate::common::append(dir, &[json!({"kind": "x.note", "payload": {"rules": []}})]);
    crate::common::configure(dir, &[rules_set(None)]);
    let pointer = dir.join("control/redaction_rules.json");
    let good = std::fs::read_to_string(&pointer).unwrap();
    let line = format!("{}\n", json!({"kind": "x.note", "payload": {"n": 2}}));
    // Pointed at the agent's entry, with its true payload hash.
    let v: Value = serde_json::from_str(&good).unwrap();
    let agents = argus([
        p(Path::new("inspect")),
        p(dir),
        p(Path::new("0")),
        p(Path::new("-o")),
        p(Path::new("json")),
    ]);
    let agents_hash = agents.json()["hashes"]["payload"].clone();
    std::fs::write(
        &pointer,
        json!({"seq": 0, "payload_hash": agents_hash}).to_string(),
    )
    .unwrap();
    let r = argus_stdin([p(Path::new("append")), p(dir)], line.as_bytes());
    r.assert_code(1);
    assert!(
        r.stderr.contains("redaction_rules.json") && r.stderr.contains("seq 0"),
        "{}",
        r.ctx()
    );
    // The right seq with another hash, and a seq past the head.
    std::fs::write(
        &pointer,
        json!({"seq": 1, "payload_hash": "00".repeat(32)}).to_string(),
    )
    .unwrap();
    argus_stdin([p(Path::new("append")), p(dir)], line.as_bytes()).assert_code(1);
    std::fs::write(
        &pointer,
        json!({"seq": 99, "payload_hash": v["payload_hash"]}).to_string(),
    )
    .unwrap();
    argus_stdin([p(Path::new("append")), p(dir)], line.as_bytes()).assert_code(1);
    assert_eq!(
        cat_json(dir).len(),
        2,
        "nothing was appended past a bad pointer"
    );
    std::fs::write(&pointer, good).unwrap();
    argus_stdin([p(Path::new("append")), p(dir)], line.as_bytes()).assert_ok();
}

#[test]
fn argusd_refuses_a_payload_it_cannot_scan_and_raises_the_emergency_stop() {
    let mut d = Daemon::new(None, &[]);
    crate::common::configure(&d.dir, &[rules_set(Some(64))]);
    d.spawn();
    let big = json!({"kind": "tool.call_completed", "job_id": "j1", "agent": "coder",
        "payload": {"tool": "t", "call_id": "c9", "output": format!("UNSCANNED-{}", "z".repeat(100))}});
    let r = post_json(&d.addr, big.to_string().as_bytes()).unwrap();
    assert_eq!(r.status, 423, "{}", r.text());
    let e = r.error();
    assert_eq!(e["kind"], "redaction_failed", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("emergency stop"),
        "{e}"
    );
    let kinds: Vec<String> = d
        .cat()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["redaction.rules_set", "redaction.failed", "lockdown.set"]
    );
    assert!(!on_disk(&d.dir, "UNSCANNED-"));
    // The lockdown is enforced on the next agent request (the gate folds it
    // from the feed: wait for it, bounded).
    let small = json!({"kind": "x.note", "payload": {"n": 1}});
    let mut status = 0;
    for _ in 0..100 {
        status = post_json(&d.addr, small.to_string().as_bytes())
            .unwrap()
            .status;
        if status == 423 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status, 423, "agents are refused after the emergency stop");
    d.assert_verifies();
}
