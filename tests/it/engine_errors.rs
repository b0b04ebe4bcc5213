//! Errors a program can act on: the engine's failures reach the CLI as
//! variants, and the exit code and the JSON report follow the variant, not
//! the text. A bad field in `argus.json` is a usage error naming the file
//! and the field; a failed verification carries a machine-readable cause.
use crate::common::*;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::Path;

/// Rewrites one field of `DIR/argus.json`.
fn set_meta_field(dir: &Path, field: &str, value: Value) {
    let path = dir.join("argus.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    meta[field] = value;
    std::fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

fn assert_names_meta_field(r: &Run, field: &str) {
    r.assert_code(2);
    assert!(
        r.stderr.contains("argus.json") && r.stderr.contains(&format!("field `{field}`")),
        "the message must name argus.json and the field `{field}`{}",
        r.ctx()
    );
    assert!(
        !r.stderr.contains("key file"),
        "argus.json is not a key file{}",
        r.ctx()
    );
}

#[test]
fn bad_log_id_in_argus_json_is_a_usage_error_naming_the_field_for_readers_and_writers() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    append(dir, &small_entries(0, 2));
    set_meta_field(dir, "log_id", json!("not-hex"));
    assert_names_meta_field(&argus([OsStr::new("stats"), p(dir)]), "log_id");
    assert_names_meta_field(&argus([OsStr::new("cat"), p(dir)]), "log_id");
    let before = std::fs::read(dir.join("segments/00000000000000000000.seg")).unwrap();
    let r = argus_stdin([OsStr::new("append"), p(dir)], b"{\"kind\":\"x.a\"}\n");
    assert_names_meta_field(&r, "log_id");
    assert!(r.stdout.is_empty(), "nothing acknowledged{}", r.ctx());
    assert_eq!(
        std::fs::read(dir.join("segments/00000000000000000000.seg")).unwrap(),
        before,
        "a refused open writes nothing"
    );
}

#[test]
fn bad_public_key_in_argus_json_is_a_usage_error_naming_the_field() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    set_meta_field(dir, "public_key", json!("00"));
    assert_names_meta_field(&argus([OsStr::new("stats"), p(dir)]), "public_key");
}

#[test]
fn verify_json_report_carries_a_typed_cause_beside_the_message() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    append(dir, &small_entries(0, 3));
    let seg = segment_files(dir)[0].clone();
    let m = parse_segment(&seg);
    let middle = m.entries()[1];
    // A payload byte changed and the frame CRC fixed: only the payload
    // hash can tell.
    let l = entry_layout(&seg, middle);
    xor_byte(&seg, l.payload().0, 0x01);
    fix_frame_crc(&seg, middle.offset);
    let r = verify(dir, &key, &["-o", "json"]);
    r.assert_code(10);
    let v = r.json();
    assert_eq!(
        v["failure"]["cause"],
        "payload_mismatch",
        "the cause names the fault{}",
        r.ctx()
    );
    assert_eq!(v["failure"]["offset"], middle.offset, "{}", r.ctx());
}

#[test]
fn verify_cause_names_a_missing_first_segment() {
    let (tmp, key) = init_log(Some(4096));
    let dir = tmp.path();
    for i in 0..6 {
        append(dir, &small_entries(i * 40, 40));
    }
    let segs = segment_files(dir);
    assert!(segs.len() >= 2, "need two segments, got {segs:?}");
    std::fs::remove_file(&segs[0]).unwrap();
    let r = verify(dir, &key, &["-o", "json"]);
    r.assert_code(13);
    assert_eq!(
        r.json()["failure"]["cause"],
        "first_segment_not_zero",
        "{}",
        r.ctx()
    );
}
