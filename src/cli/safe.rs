//! The one place that decides what stored text may reach a terminal.
//!
//! Everything a log holds was written by someone else: an agent, a
//! producer, an attacker who got a line into the feed. A terminal *acts*
//! on some characters instead of showing them (ESC sequences move the
//! cursor, recolour, rewrite the title; CR overwrites the line; C1 controls
//! are ESC on some terminals) and Unicode lets invisible characters reorder
//! (bidi overrides) or disguise (zero-width) what is shown. An audit tool
//! that displays something other than what is stored is lying, so every
//! such character is rendered as a visible escape.
//!
//! Three renderings, for three kinds of output:
//! - [`text`] / [`esc`]: a stored string inside a text line. Backslash is
//!   doubled, so `\x1b` on screen always means the ESC character and `\\x1b`
//!   the four stored characters: the escaping is unambiguous.
//! - [`line`]: the last pass over a whole text line (and every stderr
//!   line). It escapes what [`text`] escapes but leaves backslashes alone,
//!   because the line mixes our own words, already-escaped data and JSON.
//!   It is what guarantees that nothing dangerous reaches the terminal even
//!   if a view forgot to call [`esc`] on some field.
//! - [`json`]: JSON output. It must decode to exactly the stored strings, so
//!   only characters that are themselves invisible or active are rewritten,
//!   as `\uXXXX` escapes that decode to the same character (see the
//!   function for why this keeps JSON exact).
use std::borrow::Cow;
use std::fmt;

/// Characters a terminal acts on or hides instead of showing: C0 and C1
/// controls and DEL (`char::is_control`, i.e. Unicode Cc), bidirectional
/// controls, zero-width and other invisible format characters, line and
/// paragraph separators, and tag characters.
///
/// ZWJ/ZWNJ (U+200C/U+200D) are included although they join emoji and some
/// scripts: two identifiers that differ only by an invisible joiner must not
/// look the same in an audit view; the escape stays readable.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'                 // soft hyphen (invisible)
            | '\u{034F}'               // combining grapheme joiner
            | '\u{061C}'               // arabic letter mark (bidi)
            | '\u{115F}' | '\u{1160}'  // hangul fillers (blank)
            | '\u{17B4}' | '\u{17B5}'  // khmer inherent vowels (invisible)
            | '\u{180B}'..='\u{180F}'  // mongolian selectors and vowel separator
            | '\u{200B}'..='\u{200F}'  // ZWSP, ZWNJ, ZWJ, LRM, RLM
            | '\u{2028}' | '\u{2029}'  // line / paragraph separator
            | '\u{202A}'..='\u{202E}'  // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}'  // word joiner, invisible operators, bidi isolates
            | '\u{3164}' | '\u{FFA0}'  // hangul fillers (blank)
            | '\u{FEFF}'               // zero-width no-break space / BOM
            | '\u{FFF9}'..='\u{FFFB}'  // interlinear annotation controls
            | '\u{E0000}'..='\u{E007F}' // tag characters
        )
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if c.is_ascii() => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

fn rewrite(s: &str, needs: impl Fn(char) -> bool, put: impl Fn(&mut String, char)) -> Cow<'_, str> {
    if !s.chars().any(&needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if needs(c) {
            put(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A stored string for a text view: unsafe characters as `\x1b`, `\n`,
/// `\u{202e}`; a backslash as `\\`.
pub fn text(s: &str) -> Cow<'_, str> {
    rewrite(
        s,
        |c| c == '\\' || is_unsafe(c),
        |out, c| {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                push_visible(out, c);
            }
        },
    )
}

/// A whole text line as it goes to the terminal: every unsafe character
/// escaped (a newline too: one call, one line), backslashes kept.
pub fn line(s: &str) -> Cow<'_, str> {
    rewrite(s, is_unsafe, push_visible)
}

/// JSON text with every unsafe character written as a JSON escape.
///
/// In valid JSON a raw non-ASCII character or DEL can only stand inside a
/// string, where `\uXXXX` (a surrogate pair above U+FFFF) decodes to the
/// same character; and raw TAB, LF and CR can only be whitespace between
/// tokens (inside a string they must be escaped), where a space means the
/// same. So the result decodes to exactly the same value, while a terminal
/// showing it (`-o json` without `jq`) cannot be reordered or recoloured
/// by the data, and a JSON line stays one line.
pub fn json(s: &str) -> Cow<'_, str> {
    rewrite(s, is_unsafe, |out, c| match c {
        '\t' | '\n' | '\r' => out.push(' '),
        c => {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    })
}

/// A stored string in a `format!` argument, rendered by [`text`]. Width and
/// alignment (`{:<24}`) apply to the escaped form, so columns stay aligned.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&text(self.0))
    }
}

/// `format!("{}", esc(s))`: `s` escaped for a text view.
pub fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_controls_bidi_and_backslash_visibly() {
        assert_eq!(text("plain ✓ 日本"), "plain ✓ 日本");
        assert_eq!(text("a\u{1b}[31mb"), "a\\x1b[31mb");
        assert_eq!(text("x\ty\nz\r"), "x\\ty\\nz\\r");
        assert_eq!(text("\u{7f}\u{85}\u{9b}"), "\\x7f\\u{85}\\u{9b}");
        assert_eq!(text("\u{202e}evil\u{2066}"), "\\u{202e}evil\\u{2066}");
        assert_eq!(
            text("\u{200b}\u{feff}\u{e0041}"),
            "\\u{200b}\\u{feff}\\u{e0041}"
        );
        // A stored backslash sequence cannot pass for an escaped control.
        assert_eq!(text("\\x1b"), "\\\\x1b");
        assert_ne!(text("\\x1b"), text("\u{1b}"));
    }

    #[test]
    fn line_keeps_backslashes_and_is_idempotent_on_escaped_text() {
        assert_eq!(line("{\"a\":\"q\\\"\"}"), "{\"a\":\"q\\\"\"}");
        assert_eq!(line("a\nb\u{1b}"), "a\\nb\\x1b");
        let once = text("\u{1b}\\\u{202e}");
        assert_eq!(line(&once), once);
    }

    #[test]
    fn json_escapes_decode_to_the_same_value() {
        let stored = "\u{202e}rtl \u{85} \u{7f} \u{e0041} \u{200d} ✓";
        let out = serde_json::to_string(&serde_json::json!({"s": stored, "t": "\u{1b}"})).unwrap();
        let safe = json(&out);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["s"], stored);
        assert_eq!(back["t"], "\u{1b}");
        // Whitespace between tokens becomes a space, still the same value.
        let pretty = "{\n\t\"a\": 1\r\n}";
        let v: serde_json::Value = serde_json::from_str(&json(pretty)).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
    }

    #[test]
    fn esc_pads_the_escaped_form() {
        assert_eq!(format!("[{:<6}]", esc("a\u{1b}")), "[a\\x1b ]");
    }
}
