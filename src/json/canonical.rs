//! The writer of Argus canonical JSON (RFC 8785, JCS; SPEC §4.1.1).
//!
//! One spelling per value, so anyone holding the JSON document can recompute
//! the stored bytes and their hash.
use super::number::{ecma, utf16_cmp};
use serde_json::{Number, Value};
use std::io::Write;

/// The canonical bytes of `v`.
///
/// An integer that no f64 holds exactly (beyond 2^53, e.g. a `u64` seq
/// near its maximum) has no canonical form that keeps its value; it is
/// written with its exact digits, which [`super::is_canonical`] and
/// `Log::append` refuse, so it is never stored rounded.
pub fn to_canonical(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, v);
    out
}

/// [`to_canonical`] appended to `out`, so a caller that knows about how
/// long the bytes will be (the input they were read from) allocates once.
pub fn write_canonical(out: &mut Vec<u8>, v: &Value) {
    write_value(out, v);
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // The map iterates in UTF-8 byte order, which is UTF-16 order
            // unless an astral key meets one in U+E000..U+FFFF; only then
            // are the members sorted again.
            let mut keys = map.keys();
            let in_order = keys.next().is_none_or(|first| {
                keys.try_fold(first, |prev, k| {
                    (utf16_cmp(prev, k) == std::cmp::Ordering::Less).then_some(k)
                })
                .is_some()
            });
            if in_order {
                write_members(out, map.iter());
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| utf16_cmp(a.0, b.0));
                write_members(out, members.into_iter());
            }
        }
    }
}

fn write_members<'v>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'v String, &'v Value)>) {
    out.push(b'{');
    for (i, (k, item)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, k);
        out.push(b':');
        write_value(out, item);
    }
    out.push(b'}');
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        write_integer(out, u, false);
    } else if let Some(i) = n.as_i64() {
        write_integer(out, i.unsigned_abs(), true);
    } else if let Some(f) = n.as_f64() {
        out.extend_from_slice(ecma(f).as_bytes());
    }
}

/// An integer of magnitude `abs`, in its exact digits. Up to 2^53 that is
/// the ECMAScript form; beyond, it is that form only where the f64 prints
/// the same digits, and otherwise [`super::is_canonical`] refuses it.
fn write_integer(out: &mut Vec<u8>, abs: u64, negative: bool) {
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(itoa::Buffer::new().format(abs).as_bytes());
}

/// How `c` is written inside a canonical string.
pub(crate) fn escaped(c: char) -> String {
    let mut buf = Vec::with_capacity(6);
    let mut tmp = [0u8; 4];
    write_str_body(&mut buf, c.encode_utf8(&mut tmp));
    String::from_utf8(buf).unwrap_or_default()
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_body(out, s);
    out.push(b'"');
}

/// Minimal escaping: `"` and `\`, the five short control escapes, other C0
/// controls as `\u00xx` in lowercase hex; everything else as UTF-8.
fn write_str_body(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{c:04x}");
        } else {
            out.extend_from_slice(esc);
        }
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(to_canonical(v)).unwrap()
    }

    /// RFC 8785 §3.2.2/§3.2.4: the whole transformation of the sample.
    #[test]
    fn rfc8785_sample_object() {
        let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let want = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(canon(&v), want);
        // The same bytes in hex, as §3.2.4 prints them (its first line).
        assert!(hex::encode(to_canonical(&v))
            .starts_with("7b226c69746572616c73223a5b6e756c6c2c747275652c"));
        assert!(super::super::is_canonical(want.as_bytes()).is_ok());
    }

    /// RFC 8785 §3.2.3: members sorted by UTF-16 code units.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let out = canon(&v);
        let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                    \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
                    \"\u{1F600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(out, want);
        assert!(super::super::is_canonical(out.as_bytes()).is_ok());
    }

    #[test]
    fn strings_escape_minimally() {
        let v = json!("\u{0}\u{1f}\u{7f}\"\\/\u{8}\u{c}\n\r\té\u{1F600}");
        assert_eq!(
            canon(&v),
            "\"\\u0000\\u001f\u{7f}\\\"\\\\/\\b\\f\\n\\r\\té\u{1F600}\""
        );
    }

    #[test]
    fn integers_beyond_2_53_are_written_as_the_f64_would_print() {
        assert_eq!(canon(&json!(9007199254740992u64)), "9007199254740992");
        assert_eq!(canon(&json!(-9007199254740992i64)), "-9007199254740992");
        // 2^68 as an f64: ECMAScript pads the shortest digits with zeros.
        assert_eq!(
            canon(&json!(295147905179352830000.0f64)),
            "295147905179352830000"
        );
        // A u64 the f64 cannot hold keeps its digits, and is then refused.
        let odd = canon(&json!(9007199254740993u64));
        assert_eq!(odd, "9007199254740993");
        assert!(super::super::is_canonical(odd.as_bytes()).is_err());
        assert_eq!(canon(&json!(5.0)), "5");
        assert_eq!(canon(&json!(-0.0)), "0");
    }
}
