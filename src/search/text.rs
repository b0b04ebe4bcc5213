//! What of a payload is searchable, and the snippet a hit shows.
//!
//! The indexed text is the payload's JSON text with string escapes decoded:
//! keys, string values, numbers and the literals `true`/`false`/`null`, in
//! document order. The tokenizer splits on anything that is not a letter or
//! digit, so braces, quotes and colons vanish and `exit_code` is the two
//! words `exit code`. Decoding the escapes rather than parsing the JSON
//! costs one pass and no allocation per value, and a payload with no
//! backslash (most of them) is used as it is stored.

/// The searchable text of a stored payload (canonical JSON, SPEC §4.1.1).
pub fn payload_text(payload: &[u8]) -> std::borrow::Cow<'_, str> {
    let raw = String::from_utf8_lossy(payload);
    if !raw.contains('\\') {
        return raw;
    }
    std::borrow::Cow::Owned(unescape(&raw))
}

/// Decodes JSON string escapes wherever they are (in JSON a backslash
/// appears only inside strings). An escape that does not decode (a lone
/// surrogate, bad hex) becomes U+FFFD: the text is for searching, not for
/// showing as the entry.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hi = hex4(&mut it);
                let ch = match hi {
                    Some(h @ 0xD800..=0xDBFF) => {
                        let mut look = it.clone();
                        let lo = (look.next() == Some('\\') && look.next() == Some('u'))
                            .then(|| hex4(&mut look))
                            .flatten()
                            .filter(|l| (0xDC00..=0xDFFF).contains(l));
                        match lo {
                            Some(l) => {
                                it = look;
                                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (l - 0xDC00))
                            }
                            None => None,
                        }
                    }
                    Some(h) => char::from_u32(h),
                    None => None,
                };
                out.push(ch.unwrap_or('\u{FFFD}'));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn hex4(it: &mut impl Iterator<Item = char>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + it.next()?.to_digit(16)?;
    }
    Some(v)
}

/// The plain words of a query, to place a snippet: runs of letters and
/// digits, leaving out field names (`kind:`) and the operators AND, OR, NOT.
pub fn query_words(query: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            cur.push(c);
            if chars.peek().is_some_and(|n| n.is_alphanumeric()) {
                continue;
            }
            let field = chars.peek() == Some(&':');
            let word = std::mem::take(&mut cur);
            if !field && !["AND", "OR", "NOT"].contains(&word.as_str()) {
                words.push(word.to_lowercase());
            }
        }
    }
    words
}

/// At most `max` characters of `text` around the first of `words` found
/// (ASCII case-insensitively), whitespace runs shown as one space; the start
/// of the text when no word is found. `…` marks a cut.
pub fn snippet(text: &str, words: &[String], max: usize) -> String {
    let lower = text.to_ascii_lowercase();
    let at = words
        .iter()
        .filter(|w| !w.is_empty())
        .filter_map(|w| lower.find(w.as_str()))
        .min()
        .unwrap_or(0);
    // Up to a quarter of the window before the match, on a char boundary.
    let before = text[..at].chars().rev().take(max / 4).count();
    let start = match before.checked_sub(1) {
        Some(k) => text[..at]
            .char_indices()
            .rev()
            .nth(k)
            .map_or(at, |(i, _)| i),
        None => at,
    };
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut n = 0;
    let mut space = false;
    let mut cut = false;
    for c in text[start..].chars() {
        if n >= max {
            cut = true;
            break;
        }
        if c.is_whitespace() {
            if !space {
                out.push(' ');
                n += 1;
            }
            space = true;
            continue;
        }
        space = false;
        out.push(c);
        n += 1;
    }
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded_and_plain_payloads_pass_through() {
        let plain = br#"{"tool":"bash","exit_code":2}"#;
        assert!(matches!(payload_text(plain), std::borrow::Cow::Borrowed(_)));
        let esc = br#"{"out":"line1\nIgnore\u0020previous \"x\" \ud83d\ude00 \ud800"}"#;
        assert_eq!(
            payload_text(esc),
            "{\"out\":\"line1\nIgnore previous \"x\" \u{1F600} \u{FFFD}\"}"
        );
    }

    #[test]
    fn query_words_skip_fields_and_operators() {
        assert_eq!(
            query_words("kind:tool.call_completed AND \"Ignore previous\" OR x"),
            ["tool", "call", "completed", "ignore", "previous", "x"]
        );
        assert_eq!(query_words("job:j1 NOT bash"), ["j1", "bash"]);
    }

    #[test]
    fn snippet_centres_on_the_match_and_marks_cuts() {
        let text = format!("{}needle{}", "a ".repeat(100), "b".repeat(100));
        let s = snippet(&text, &["needle".into()], 40);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("needle"), "{s}");
        assert_eq!(s.chars().count(), 42, "{s}");
        assert_eq!(snippet("short  \n text", &[], 40), "short text");
        // Non-ASCII before the match: cut on a char boundary.
        let s = snippet(&format!("{}NEEDLE", "é".repeat(50)), &["needle".into()], 20);
        assert!(s.contains("NEEDLE"), "{s}");
    }
}
