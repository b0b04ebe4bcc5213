//! `argusctl append` parses on several threads: a large input is cut into
//! blocks parsed out of order, and still the first bad line stops the run
//! naming its line and field, with exactly the lines before it committed in
//! input order and nothing of it or after it written.
use crate::common::*;
use serde_json::json;
use std::ffi::OsStr;

/// Valid line `i`: ~150 bytes, keys in a producer's order, so 10,000 of
/// them make many blocks large enough for the parse workers.
fn good(i: u64) -> String {
    format!(
        r#"{{"kind":"tool.call_completed","job_id":"job-{}","step_id":"s-{i}","agent":"coder","payload":{{"tool":"bash","call_id":"call-{i}","duration_ms":{},"exit_code":0,"note":"caf\u00e9 {i}"}}}}"#,
        i % 7,
        i * 3
    )
}

#[test]
fn first_bad_line_after_ten_thousand_stops_the_parallel_parse_naming_it() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    let mut input = Vec::new();
    let mut lines = 0u64;
    let mut ids = Vec::new();
    for i in 0..10_000u64 {
        input.extend_from_slice(good(i).as_bytes());
        // Some CRLF endings and blank lines: they count as lines too.
        input.extend_from_slice(if i % 1000 == 999 { b"\r\n" } else { b"\n" });
        lines += 1;
        ids.push(i);
        if i % 2500 == 1234 {
            input.extend_from_slice(b"   \n");
            lines += 1;
        }
    }
    let bad_line = lines + 1;
    input.extend_from_slice(
        br#"{"kind":"tool.call_completed","job_id":"job-x","payload":{"tool":"","call_id":"bad"}}"#,
    );
    input.push(b'\n');
    for i in 20_000..25_000u64 {
        input.extend_from_slice(good(i).as_bytes());
        input.push(b'\n');
    }

    let r = argus_stdin([OsStr::new("append"), p(dir)], &input);
    r.assert_code(2);
    let want = format!("stdin line {bad_line}: field `payload.tool`");
    assert!(r.stderr.contains(&want), "stderr names {want:?}{}", r.ctx());
    assert!(
        r.stderr.contains("nothing of this line was written"),
        "{}",
        r.ctx()
    );
    let acks = acks_of(&r);
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (0..10_000).collect::<Vec<_>>(),
        "every line before the bad one acknowledged, in order{}",
        r.ctx()
    );
    let out = cat_json(dir, &[]);
    assert_eq!(out.len(), 10_000, "exactly the lines before the bad one");
    for ((v, a), i) in out.iter().zip(&acks).zip(&ids) {
        assert_eq!(v["hash"].as_str(), Some(a.hash.as_str()));
        assert_eq!(v["step_id"], json!(format!("s-{i}")), "input order kept");
    }
    let (vr, v) = verify_json(dir, &key, &[]);
    vr.assert_ok();
    assert_eq!(
        v["warnings"].as_array().map(Vec::len),
        Some(0),
        "{}",
        vr.ctx()
    );
}
