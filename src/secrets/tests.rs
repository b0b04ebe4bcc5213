use super::*;
use serde_json::json;

fn redact(v: &mut Value) -> Redacted {
    Redactor::new(&[]).unwrap().redact(v).unwrap()
}

#[test]
fn real_looking_secrets_in_nested_json_are_replaced_naming_their_rule() {
    let mut v = json!({
        "tool": "http.get",
        "env": {"vars": [
            "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
            {"deep": {"token": "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}},
        ]},
        "headers": {"Authorization": "Bearer eyJhbGciOi.abcdefghijklmnop"},
        "output": "fetched https://admin:hunter2@db.internal:5432/app ok",
    });
    let r = redact(&mut v);
    let s = v.to_string();
    assert!(!s.contains("AKIAIOSFODNN7EXAMPLE"), "{s}");
    assert!(!s.contains("ghp_aBcDeF"), "{s}");
    assert!(!s.contains("hunter2"), "{s}");
    assert!(!s.contains("eyJhbGciOi"), "{s}");
    assert!(
        s.contains("AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key_id]"),
        "{s}"
    );
    assert_eq!(
        v["env"]["vars"][1]["deep"]["token"],
        "[REDACTED:github_token]"
    );
    assert_eq!(v["headers"]["Authorization"], "[REDACTED:secret_field]");
    assert!(
        s.contains("fetched [REDACTED:url_credentials]db.internal"),
        "{s}"
    );
    assert_eq!(v["tool"], "http.get");
    assert!(r.rules.contains(&"aws_access_key_id".to_string()), "{r:?}");
    assert!(r.rules.contains(&"secret_field".to_string()), "{r:?}");
    assert!(r.count >= 4, "{r:?}");
}

#[test]
fn a_secret_deep_in_a_long_string_is_found() {
    let pad = "lorem ipsum dolor sit amet ".repeat(40_000);
    let mut v =
        json!({"stdout": format!("{pad} key=sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345 {pad}")});
    let r = redact(&mut v);
    let s = v["stdout"].as_str().unwrap();
    assert!(!s.contains("sk-ant-api03"));
    assert!(s.contains("key=[REDACTED:openai_anthropic_key]"));
    assert_eq!(
        s.len(),
        2 * pad.len() + " key=[REDACTED:openai_anthropic_key] ".len()
    );
    assert_eq!(r.rules, vec!["openai_anthropic_key".to_string()]);
}

#[test]
fn secrets_split_across_fields_are_caught() {
    // A name field and a value field.
    let mut v = json!({"user": "admin", "db_password": "correct horse battery staple"});
    redact(&mut v);
    assert_eq!(v["db_password"], "[REDACTED:secret_field]");
    assert_eq!(v["user"], "admin");
    // A private key one line per array element.
    let mut v = json!({"lines": [
        "config loaded",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA1x2y3z4",
        "q8r9s0t1u2v3w4x5y6z7",
        "-----END RSA PRIVATE KEY-----",
        "done",
    ]});
    let r = redact(&mut v);
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines[0], "config loaded");
    assert_eq!(lines[5], "done");
    for l in &lines[1..5] {
        assert_eq!(l, "[REDACTED:private_key_block]", "{v}");
    }
    assert_eq!(r.rules, vec!["private_key_block".to_string()]);
}

#[test]
fn clean_payloads_and_markers_are_left_alone() {
    let mut v = json!({"tool": "psql", "rows": 3, "note": "the password policy was reviewed", "ok": true,
                       "password": "[REDACTED:secret_field]"});
    let before = v.clone();
    let r = redact(&mut v);
    assert_eq!(v, before);
    assert_eq!(r, Redacted::default());
}

#[test]
fn configured_rules_apply_and_bad_ones_are_refused() {
    let red = Redactor::new(&[("employee_id".into(), r"\bEMP-\d{6}\b".into())]).unwrap();
    let mut v = json!({"who": "EMP-123456 approved"});
    red.redact(&mut v).unwrap();
    assert_eq!(v["who"], "[REDACTED:employee_id] approved");
    assert!(matches!(
        Redactor::new(&[("bad".into(), "(".into())]),
        Err(RedactError::Rule { .. })
    ));
    assert!(matches!(
        Redactor::new(&[("huge".into(), "(a{1,1000}){1,1000}".into())]),
        Err(RedactError::Rule { .. })
    ));
    assert!(matches!(
        Redactor::new(&[("no spaces".into(), "x".into())]),
        Err(RedactError::Rule { .. })
    ));
}

#[test]
fn a_payload_over_the_scan_budget_is_refused_not_written_unscanned() {
    let red = Redactor::with_budget(&[], 1000).unwrap();
    let mut v = json!({"blob": "x".repeat(2000)});
    assert!(matches!(
        red.redact(&mut v),
        Err(RedactError::Budget {
            bytes: 2004,
            max: 1000
        })
    ));
}
