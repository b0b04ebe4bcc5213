use super::*;
use proptest::prelude::*;
use serde_json::json;

const MAX: usize = 1 << 20;

fn err(input: &str) -> JsonError {
    parse(input.as_bytes(), MAX).expect_err(input)
}

fn canon_err(input: &str) -> JsonError {
    is_canonical(input.as_bytes()).expect_err(input)
}

#[test]
fn rfc8259_grammar_violations_are_refused() {
    for bad in [
        "",
        "[1,]",
        "{\"a\":1,}",
        "[1 2]",
        "// c\n1",
        "/* c */ 1",
        "NaN",
        "Infinity",
        "-Infinity",
        "01",
        "-01",
        "1.",
        ".5",
        "+1",
        "1e",
        "0x10",
        "'a'",
        "{a:1}",
        "\"\t\"",
        "\"a\u{1}\"",
        "\"\\x41\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800x\"",
        "tru",
        "nul",
        "[",
        "{\"a\"",
        "\"abc",
        "1 2",
        "\u{feff}1",
    ] {
        let e = err(bad);
        assert!(e.reason.is_syntax(), "{bad:?}: {e}");
    }
}

#[test]
fn trailing_comma_and_lone_surrogate_say_so() {
    assert_eq!(err("[1,]").reason, Reason::TrailingComma);
    assert_eq!(err("{\"a\":1,}").reason, Reason::TrailingComma);
    assert_eq!(err("\"\\ud83d\"").reason, Reason::LoneSurrogate(0xd83d));
    assert_eq!(err("\"\\ude00\"").reason, Reason::LoneSurrogate(0xde00));
    assert_eq!(err("01").reason, Reason::LeadingZero);
}

#[test]
fn valid_json_is_read() {
    let v = parse(
        br#" { "a" : [1, -2, 3.5, true, false, null, "x\u00e9\ud83d\ude00\n\/"], "b": {} } "#,
        MAX,
    )
    .unwrap();
    assert_eq!(
        v,
        json!({"a": [1, -2, 3.5, true, false, null, "xé\u{1F600}\n/"], "b": {}})
    );
}

#[test]
fn duplicate_keys_after_unescaping_are_refused_with_the_path() {
    let e = err(r#"{"payload":{"items":[0,1,2,{"cost":1,"cost":2}]}}"#);
    assert_eq!(e.reason, Reason::DuplicateKey { key: "cost".into() });
    assert_eq!(e.pointer, "/payload/items/3/cost");
    assert_eq!(e.field(), "payload.items.3.cost");
    assert_eq!(e.column, 38);
    // The same key spelled two ways is still the same key.
    let e = err(r#"{"a":1,"\u0061":2}"#);
    assert_eq!(e.reason, Reason::DuplicateKey { key: "a".into() });
}

#[test]
fn inexact_numbers_are_refused_with_path_and_column() {
    let e = err(r#"{"payload":{"items":[0,1,2,{"cost":9007199254740993}]}}"#);
    assert_eq!(
        e.reason,
        Reason::InexactNumber {
            text: "9007199254740993".into()
        }
    );
    assert_eq!(e.pointer, "/payload/items/3/cost");
    assert_eq!(e.column, 36);
    for n in [
        "1.00000000000000000001",
        "12345678901234567890",
        "-12345678901234567890",
    ] {
        assert!(matches!(err(n).reason, Reason::InexactNumber { .. }), "{n}");
    }
    assert!(matches!(
        err("1e400").reason,
        Reason::NumberOutOfRange { .. }
    ));
    // Long texts are quoted shortened.
    let long = format!("0.{}1", "0".repeat(5000));
    let msg = err(&long).to_string();
    assert!(msg.len() < 300, "{msg}");
}

#[test]
fn numbers_that_keep_their_value_are_read() {
    assert_eq!(parse(b"1e20", MAX).unwrap(), json!(100000000000000000000.0));
    assert_eq!(parse(b"0.10", MAX).unwrap(), json!(0.1));
    assert_eq!(parse(b"-0", MAX).unwrap(), json!(0));
    assert_eq!(parse(b"-0.0", MAX).unwrap(), json!(0));
    assert_eq!(parse(b"5.0", MAX).unwrap(), json!(5));
    assert_eq!(
        parse(b"9007199254740992", MAX).unwrap(),
        json!(9007199254740992u64)
    );
    assert_eq!(parse(b"-42", MAX).unwrap(), json!(-42));
}

#[test]
fn nesting_is_bounded_without_overflowing_the_stack() {
    let ok = format!("{}{}", "[".repeat(DEPTH_MAX), "]".repeat(DEPTH_MAX));
    assert!(parse(ok.as_bytes(), MAX).is_ok());
    let deep = format!("{}{}", "[".repeat(DEPTH_MAX + 1), "]".repeat(DEPTH_MAX + 1));
    assert_eq!(err(&deep).reason, Reason::TooDeep { limit: DEPTH_MAX });
    let hostile = "[{\"a\":".repeat(100_000);
    let e = err(&hostile);
    assert_eq!(e.reason, Reason::TooDeep { limit: DEPTH_MAX });
    assert!(e.pointer.starts_with("/0/a/0/a"), "{}", e.pointer);
}

#[test]
fn size_limit_and_utf8_are_checked_first() {
    let e = parse(b"[1,2,3]", 6).unwrap_err();
    assert_eq!(e.reason, Reason::TooLarge { size: 7, limit: 6 });
    let e = parse(b"\"a\xff\"", MAX).unwrap_err();
    assert_eq!((e.reason, e.column), (Reason::InvalidUtf8, 3));
}

#[test]
fn non_canonical_bytes_are_refused_naming_the_difference() {
    for (bad, why) in [
        ("{\"b\":1,\"a\":2}", "follows"),
        ("{\"a\": 1}", "whitespace"),
        (" 1", "whitespace"),
        ("[1,2] ", "whitespace"),
        ("1.0", "written 1"),
        ("-0", "written 0"),
        ("1E21", "written 1e+21"),
        ("1e21", "written 1e+21"),
        ("100000000000000000000.0", "written 100000000000000000000"),
        ("\"\\/\"", "escape"),
        ("\"\\u0041\"", "escape"),
        ("\"\\u001F\"", "escape"),
        ("\"\\u000a\"", "escape"),
        ("\"\\u00e9\"", "escape"),
        // U+FB33 sorts after U+1F600 in UTF-16 code units.
        ("{\"\u{fb33}\":1,\"\u{1F600}\":2}", "follows"),
    ] {
        let e = canon_err(bad);
        assert!(matches!(e.reason, Reason::NotCanonical(_)), "{bad:?}: {e}");
        assert!(e.to_string().contains(why), "{bad:?}: {e}");
    }
    assert_eq!(
        canon_err("{\"a\":1,\"a\":1}").reason,
        Reason::DuplicateKey { key: "a".into() }
    );
}

#[test]
fn canonical_bytes_are_accepted() {
    for good in [
        "null",
        "0",
        "-1",
        "1e+21",
        "0.000001",
        "1e-7",
        "{\"\u{1F600}\":2,\"\u{fb33}\":1}",
        "\"\\u001f\\n\u{7f}/\"",
        "{\"\":[],\"a\":{\"b\":[1,{}]}}",
    ] {
        assert!(is_canonical(good.as_bytes()).is_ok(), "{good}");
    }
}

/// JSON values whose numbers an f64 holds, with keys from all of Unicode
/// (including astral characters, which sort differently in UTF-16).
fn value() -> impl Strategy<Value = Value> {
    let num = prop_oneof![
        any::<i32>().prop_map(|i| json!(i)),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        num,
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn canonical_form_is_read_back_as_the_same_value_and_is_canonical(v in value()) {
        let bytes = to_canonical(&v);
        let back = parse_canonical(&bytes, usize::MAX);
        prop_assert!(back.is_ok(), "{:?}: {}", String::from_utf8_lossy(&bytes), back.unwrap_err());
        let back = back.unwrap();
        prop_assert_eq!(to_canonical(&back), bytes.clone());
        // serde_json reads the stored bytes as the same value.
        let serde: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(&serde, &back);
    }

    #[test]
    fn any_spelling_of_a_value_canonicalises_to_the_same_bytes(v in value()) {
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        let read = parse(&pretty, usize::MAX).unwrap();
        prop_assert_eq!(to_canonical(&read), to_canonical(&v));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse(&b, usize::MAX);
        let _ = is_canonical(&b);
    }
}

/// The canonical bytes of producer input, pinned: what the payload hash
/// covers (SPEC §4.1.1) must not move when the writer gets faster. Each
/// expected form is also accepted as already canonical by the strict
/// reader, an independent check of the pinned bytes.
pub(crate) const CANONICAL_CORPUS: &[(&str, &str)] = &[
    (r#"{"b":1,"a":2}"#, r#"{"a":2,"b":1}"#),
    (r#"{"n":1e3}"#, r#"{"n":1000}"#),
    (r#"{"n":-0}"#, r#"{"n":0}"#),
    (r#"{"n":-0.0e5}"#, r#"{"n":0}"#),
    (r#"{"n":1.0}"#, r#"{"n":1}"#),
    (
        r#"{"n":4.50,"m":2e-3,"k":0.1}"#,
        r#"{"k":0.1,"m":0.002,"n":4.5}"#,
    ),
    (r#"{"n":-1.5e-7,"m":1E21}"#, r#"{"m":1e+21,"n":-1.5e-7}"#),
    (
        r#"{"n":1e20,"m":1e16}"#,
        r#"{"m":10000000000000000,"n":100000000000000000000}"#,
    ),
    (
        r#"{"n":9007199254740992,"m":-9007199254740991,"z":-17}"#,
        r#"{"m":-9007199254740991,"n":9007199254740992,"z":-17}"#,
    ),
    (
        r#"{"s":"caf\u00e9 \u2014 \ud83d\ude00 \/ \u0041 \u001f \u007f"}"#,
        "{\"s\":\"café — 😀 / A \\u001f \u{7f}\"}",
    ),
    (
        r#"{"e":"q\" b\\ \b\f\n\r\t \u0008"}"#,
        r#"{"e":"q\" b\\ \b\f\n\r\t \b"}"#,
    ),
    (
        r#"{"z":{"y":[1,{"b":null,"a":true}],"x":"é"},"a":[],"m":{}}"#,
        r#"{"a":[],"m":{},"z":{"x":"é","y":[1,{"a":true,"b":null}]}}"#,
    ),
    (
        r#"{"\ufb33":1,"\ud83d\ude00":2,"a":3,"\u00e9":4}"#,
        "{\"a\":3,\"é\":4,\"😀\":2,\"\u{fb33}\":1}",
    ),
    (
        "{ \"a\" : [ 1 , 2 ] ,\n\t\"b\" : \"x\" }",
        r#"{"a":[1,2],"b":"x"}"#,
    ),
    (r#"[3,"x",null,false,-2.5]"#, r#"[3,"x",null,false,-2.5]"#),
    (r#""just a string ∑""#, r#""just a string ∑""#),
];

#[test]
fn canonical_bytes_of_a_producer_corpus_are_pinned() {
    for (input, want) in CANONICAL_CORPUS {
        let v = parse(input.as_bytes(), MAX).expect(input);
        let got = to_canonical(&v);
        assert_eq!(String::from_utf8_lossy(&got), *want, "{input}");
        assert!(is_canonical(want.as_bytes()).is_ok(), "{want} is canonical");
    }
}
