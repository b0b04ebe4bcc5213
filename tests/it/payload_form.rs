//! Payloads are stored exactly as hashed, in one canonical form (SPEC
//! §4.1.1): `argusctl append` refuses JSON whose meaning it cannot keep
//! (duplicate keys, numbers an f64 would round, lone surrogates, hostile
//! nesting), naming line and field, and stores the rest as Argus canonical
//! JSON; `Log::append` refuses payload bytes that are not already canonical.
use crate::common::*;
use argus::log::dir::InitOptions;
use argus::{Log, NewEntry};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

/// Every file under `segments/`, byte for byte.
fn segment_bytes(dir: &Path) -> Vec<Vec<u8>> {
    segment_files(dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// `bad` is refused with exit 2, naming the line and every word in `words`:
/// alone it changes nothing (stats and every segment byte as before); after
/// two good lines, those two are committed and nothing after them.
fn refuses(bad: &[u8], words: &[&str]) -> Run {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    append(dir, &small_entries(0, 3));

    let stats_before = stats(dir);
    let files_before = segment_bytes(dir);
    let mut line = bad.to_vec();
    line.push(b'\n');
    let alone = argus_stdin([OsStr::new("append"), p(dir)], &line);
    alone.assert_code(2);
    assert!(
        alone.stderr.contains("line 1:"),
        "names the line{}",
        alone.ctx()
    );
    for w in words {
        assert!(
            alone.stderr.contains(w),
            "stderr must say {w:?}{}",
            alone.ctx()
        );
    }
    assert!(
        !alone.stderr.contains("panicked") && alone.stdout.is_empty(),
        "no panic, nothing acknowledged{}",
        alone.ctx()
    );
    assert_eq!(stats(dir), stats_before, "stats unchanged{}", alone.ctx());
    assert!(
        segment_bytes(dir) == files_before,
        "no segment byte changed{}",
        alone.ctx()
    );

    let mut input = to_lines(&small_entries(3, 2));
    input.extend_from_slice(&line);
    input.extend_from_slice(&to_lines(&small_entries(5, 1)));
    let r = argus_stdin([OsStr::new("append"), p(dir)], &input);
    r.assert_code(2);
    assert!(r.stderr.contains("line 3:"), "names line 3{}", r.ctx());
    let acks = acks_of(&r);
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        [3, 4],
        "the lines before the bad one are committed{}",
        r.ctx()
    );
    let s = stats(dir);
    assert_eq!(s["entries"], 5, "nothing after them{}", r.ctx());
    assert_eq!(s["head_hash"].as_str(), Some(acks[1].hash.as_str()));
    verify(dir, &key, &[]).assert_ok();
    alone
}

#[test]
fn duplicate_payload_key_is_refused_naming_its_path() {
    refuses(
        br#"{"kind":"x.a.b","payload":{"items":[0,1,2,{"cost":1,"cost":2}]}}"#,
        &["field `payload.items.3.cost`", "duplicate key \"cost\""],
    );
    // The same key spelled with an escape is the same key.
    refuses(
        br#"{"kind":"x.a.b","payload":{"a":1,"\u0061":2}}"#,
        &["field `payload.a`", "duplicate key"],
    );
}

#[test]
fn duplicate_entry_field_is_refused_not_last_one_wins() {
    refuses(
        br#"{"kind":"job.received","kind":"proposal.approved"}"#,
        &["field `kind`", "duplicate key \"kind\""],
    );
}

#[test]
fn integer_beyond_2_53_is_refused_with_the_field_and_the_fix() {
    let r = refuses(
        br#"{"kind":"x.a.b","payload":{"items":[0,1,2,{"cost":9007199254740993}]}}"#,
        &[],
    );
    assert!(
        r.stderr.contains(
            "stdin line 1: field `payload.items.3.cost`: number 9007199254740993 cannot be \
             stored exactly (it is beyond what a 64-bit float holds to these digits); send it \
             as a string"
        ),
        "{}",
        r.ctx()
    );
    refuses(
        br#"{"kind":"x.a.b","payload":{"n":12345678901234567890}}"#,
        &["field `payload.n`", "cannot be stored exactly"],
    );
}

#[test]
fn decimal_that_would_lose_precision_is_refused() {
    refuses(
        br#"{"kind":"x.a.b","payload":{"usd":1.00000000000000000001}}"#,
        &[
            "field `payload.usd`",
            "1.00000000000000000001",
            "cannot be stored exactly",
        ],
    );
}

#[test]
fn number_beyond_the_f64_range_is_refused() {
    refuses(
        br#"{"kind":"x.a.b","payload":[1e400]}"#,
        &["field `payload.0`", "1e400", "range of a 64-bit float"],
    );
}

#[test]
fn lone_surrogate_is_refused() {
    refuses(
        br#"{"kind":"x.a.b","payload":{"s":"a\ud800b"}}"#,
        &["field `payload.s`", "lone surrogate \\ud800"],
    );
}

#[test]
fn nesting_10000_deep_is_refused_without_a_crash() {
    let mut line = br#"{"kind":"x.a.b","payload":"#.to_vec();
    line.extend(std::iter::repeat_n(b'[', 10_000));
    line.extend(std::iter::repeat_n(b']', 10_000));
    line.push(b'}');
    let r = refuses(&line, &["deeper than 128"]);
    assert!(r.stderr.contains("field `payload.0.0.0"), "{}", r.ctx());
}

#[derive(serde::Deserialize)]
struct CatLine {
    seq: u64,
    payload: Box<RawValue>,
}

/// Stored payload bytes and payload_hash per seq, read from the segment
/// files (SPEC §4.1) rather than through argusctl.
#[test]
fn stored_payload_is_the_canonical_form_and_hashes_to_payload_hash() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    // Input spellings (whitespace, key order, escapes, number forms) and the
    // one canonical form each must be stored as.
    let cases: [(&str, &str); 5] = [
        (
            r#"{"b": 1, "a": [1.0, 0.10, -0, 1e20, 1E21, 5e-324, 1.7976931348623157e308, -0.0, 1.5e-7, 2e-3]}"#,
            r#"{"a":[1,0.1,0,100000000000000000000,1e+21,5e-324,1.7976931348623157e+308,0,1.5e-7,0.002],"b":1}"#,
        ),
        (
            r#"{"\ufb33": 1, "\ud83d\ude00": 2, "é": 3, "z": 4, "\u20ac": 5}"#,
            "{\"z\":4,\"é\":3,\"€\":5,\"\u{1F600}\":2,\"\u{fb33}\":1}",
        ),
        (
            r#""t\t n\n c\u001F d\u007f s\/ q\" b\\ \u0041""#,
            "\"t\\t n\\n c\\u001f d\u{7f} s/ q\\\" b\\\\ A\"",
        ),
        (
            r#"[ [], {}, [[[{"k" : null}]]], true, false ]"#,
            r#"[[],{},[[[{"k":null}]]],true,false]"#,
        ),
        ("", "null"),
    ];
    let mut input = Vec::new();
    for (payload, _) in &cases {
        if payload.is_empty() {
            input.extend_from_slice(br#"{"kind":"x.form.case"}"#);
        } else {
            input.extend_from_slice(
                format!(r#"{{"kind":"x.form.case","payload":{payload}}}"#).as_bytes(),
            );
        }
        input.push(b'\n');
    }
    let r = argus_stdin([OsStr::new("append"), p(dir)], &input);
    r.assert_ok();
    assert_eq!(acks_of(&r).len(), cases.len(), "{}", r.ctx());

    let cat = argus(["cat".as_ref(), p(dir), "-o".as_ref(), "json".as_ref()]);
    cat.assert_ok();
    let shown: BTreeMap<u64, String> = cat
        .stdout
        .lines()
        .map(|l| {
            let c: CatLine = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            (c.seq, c.payload.get().to_string())
        })
        .collect();
    let stored = stored_payloads(dir);
    for (seq, (input, want)) in cases.iter().enumerate() {
        let seq = seq as u64;
        let (bytes, hash) = &stored[&seq];
        assert_eq!(
            String::from_utf8_lossy(bytes),
            *want,
            "seq {seq}: stored bytes for input {input}"
        );
        // JSON output escapes characters a terminal acts on (DEL, U+2028,
        // ...) as \uXXXX, so it is the same string, not the same bytes.
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&shown[&seq]).unwrap(),
            serde_json::from_str::<serde_json::Value>(want).unwrap(),
            "seq {seq}: cat -o json shows the stored value"
        );
        assert_eq!(
            blake3::derive_key("argus.log v1 payload", bytes).as_slice(),
            hash.as_slice(),
            "seq {seq}: payload_hash is over exactly the stored bytes"
        );
        assert!(argus::json::is_canonical(bytes).is_ok(), "seq {seq}");
    }
    verify(dir, &key, &[]).assert_ok();
}

fn entry(payload: &[u8]) -> NewEntry {
    NewEntry {
        kind: "x.lib.entry".into(),
        job_id: None,
        step_id: None,
        agent: None,
        actor: "user:lib".into(),
        parent: None,
        payload: payload.to_vec(),
    }
}

#[test]
fn library_append_refuses_payloads_that_are_not_canonical_json() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::create(
        tmp.path(),
        &InitOptions {
            segment_bytes: 1 << 20,
            key_file: None,
            clock_skew_tolerance_s: None,
        },
    )
    .unwrap();
    for (bad, why) in [
        (&b"{\"b\":1,\"a\":2}"[..], "follows"),
        (b"{\"a\": 1}", "whitespace"),
        (b"5.0", "written 5"),
        (b"{\"a\":1,\"a\":1}", "duplicate key"),
        (b"[9007199254740993]", "cannot be stored exactly"),
        (b"\"\\u0041\"", "escape"),
        (b"", "expected a JSON value"),
        (b"not json", "expected a JSON value"),
        (b"{\"a\":1}x", "trailing characters"),
    ] {
        // A bad payload anywhere refuses the whole batch.
        let err = log
            .append(vec![entry(b"{\"ok\":true}"), entry(bad)])
            .expect_err(&String::from_utf8_lossy(bad))
            .to_string();
        assert!(
            err.contains("entry 2: payload is not canonical JSON (SPEC §4.1.1)")
                && err.contains(why),
            "{:?}: {err}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(log.committed().get(), 0, "nothing committed after {err}");
    }
    let acks = log
        .append(vec![entry(b"{\"a\":[1,0.5,\"\\u001f\"],\"b\":null}")])
        .unwrap();
    assert_eq!(acks[0].seq, 0);
    assert_eq!(log.committed().get(), 1);
}
