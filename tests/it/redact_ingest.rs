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
