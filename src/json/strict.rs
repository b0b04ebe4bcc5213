//! The strict reader: RFC 8259 exactly, for input nobody vouches for.
//!
//! Recursive descent over bytes already checked to be UTF-8. Depth is
//! bounded ([`DEPTH_MAX`]) so hostile nesting cannot overflow the stack.
//! The JSON Pointer of an error is assembled while the error unwinds, so the
//! path costs nothing when the input is good.
use super::number::{self, utf16_cmp, Refusal, EXACT_INT_MAX};
use super::{JsonError, NotCanonical, Reason, DEPTH_MAX};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;

/// Longest number text quoted back in an error message.
const QUOTE_MAX: usize = 40;

enum Seg {
    Key(String),
    Index(usize),
}

struct Fail {
    at: usize,
    reason: Reason,
    /// Innermost first: pushed while unwinding.
    path: Vec<Seg>,
}

type R<T> = Result<T, Box<Fail>>;

fn fail<T>(at: usize, reason: Reason) -> R<T> {
    Err(Box::new(Fail {
        at,
        reason,
        path: Vec::new(),
    }))
}

#[inline]
fn within<T>(r: R<T>, seg: impl FnOnce() -> Seg) -> R<T> {
    r.map_err(|mut f| {
        f.path.push(seg());
        f
    })
}

pub(crate) struct Parser<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    depth: usize,
    /// Also refuse anything that is not already in Argus canonical form.
    canonical: bool,
}

/// Parses one JSON text of at most `max_bytes` bytes.
pub(crate) fn parse(bytes: &[u8], max_bytes: usize, canonical: bool) -> Result<Value, JsonError> {
    let mut p = Parser::new(bytes, max_bytes, canonical)?;
    p.document().map_err(|f| to_error(*f))
}

/// The members of a top-level object whose keys are all among `names`, by
/// the name's index; `None` when the text is anything else (another type,
/// or a key not in `names`), which the caller then reads with [`parse`].
/// Errors are exactly [`parse`]'s: the same grammar, walked in the same
/// order, only without building a map for the top level.
pub(crate) fn parse_members<const N: usize>(
    bytes: &[u8],
    max_bytes: usize,
    names: &[&str; N],
) -> Result<Option<[Option<Value>; N]>, JsonError> {
    let mut p = Parser::new(bytes, max_bytes, false)?;
    p.members(names).map_err(|f| to_error(*f))
}

fn to_error(f: Fail) -> JsonError {
    JsonError {
        pointer: pointer(&f.path),
        column: f.at + 1,
        reason: f.reason,
    }
}

fn pointer(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path.iter().rev() {
        s.push('/');
        match seg {
            Seg::Key(k) => s.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => s.push_str(&i.to_string()),
        }
    }
    s
}

/// How a byte is shown in "expected X, found Y".
fn found(b: Option<u8>, text: &str, at: usize) -> String {
    match b {
        None => "the end of the input".into(),
        Some(_) => match text.get(at..).and_then(|s| s.chars().next()) {
            Some(c) if c.is_control() => format!("U+{:04X}", c as u32),
            Some(c) => format!("`{c}`"),
            None => "a byte inside a character".into(),
        },
    }
}

fn quote(text: &str) -> String {
    if text.len() <= QUOTE_MAX {
        return text.into();
    }
    // Number texts are ASCII, so any byte index is a boundary.
    format!("{}… ({} digits)", &text[..QUOTE_MAX], text.len())
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], max_bytes: usize, canonical: bool) -> Result<Self, JsonError> {
        if bytes.len() > max_bytes {
            return Err(JsonError {
                pointer: String::new(),
                column: max_bytes.saturating_add(1),
                reason: Reason::TooLarge {
                    size: bytes.len(),
                    limit: max_bytes,
                },
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| JsonError {
            pointer: String::new(),
            column: e.valid_up_to() + 1,
            reason: Reason::InvalidUtf8,
        })?;
        Ok(Parser {
            text,
            b: bytes,
            pos: 0,
            depth: 0,
            canonical,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn document(&mut self) -> R<Value> {
        self.ws()?;
        let v = self.value()?;
        self.ws()?;
        if self.pos < self.b.len() {
            return fail(self.pos, Reason::TrailingCharacters);
        }
        Ok(v)
    }

    /// [`parse_members`]: `object` for the top level, into fixed slots.
    fn members<const N: usize>(&mut self, names: &[&str; N]) -> R<Option<[Option<Value>; N]>> {
        let mut slots = [const { None }; N];
        self.ws()?;
        if self.peek() != Some(b'{') {
            return Ok(None);
        }
        self.enter()?;
        self.ws()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return self.unexpected("a string key");
                }
                let key_at = self.pos;
                let key = self.string()?;
                let Some(slot) = names.iter().position(|n| *n == key) else {
                    return Ok(None);
                };
                self.ws()?;
                if self.peek() != Some(b':') {
                    return within(self.unexpected("`:`"), || Seg::Key(key.to_string()));
                }
                self.pos += 1;
                self.ws()?;
                let v = within(self.value(), || Seg::Key(key.to_string()))?;
                if slots[slot].is_some() {
                    let reason = Reason::DuplicateKey {
                        key: key.to_string(),
                    };
                    return within(fail(key_at, reason), || Seg::Key(key.to_string()));
                }
                slots[slot] = Some(v);
                self.ws()?;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.no_trailing_comma(b'}')?;
                    }
                    Some(b'}') => {
                        self.pos += 1;
                        self.depth -= 1;
                        break;
                    }
                    _ => return self.unexpected("`,` or `}`"),
                }
            }
        }
        self.ws()?;
        if self.pos < self.b.len() {
            return fail(self.pos, Reason::TrailingCharacters);
        }
        Ok(Some(slots))
    }

    fn ws(&mut self) -> R<()> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            if self.canonical {
                return fail(self.pos, Reason::NotCanonical(NotCanonical::Whitespace));
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn unexpected<T>(&self, expected: &'static str) -> R<T> {
        let reason = match self.peek() {
            None => Reason::UnexpectedEnd { expected },
            b => Reason::Unexpected {
                expected,
                found: found(b, self.text, self.pos),
            },
        };
        fail(self.pos, reason)
    }

    // Longer than the house's ~120 lines on purpose: one match over the
    // grammar's value forms reads as the grammar does (RFC 8259 §3), and
    // splitting it would scatter the depth and position bookkeeping.
    fn value(&mut self) -> R<Value> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::String(self.string()?.into_owned())),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.unexpected("a JSON value"),
        }
    }

    fn literal(&mut self, word: &'static str, v: Value) -> R<Value> {
        if self.b[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            self.unexpected("a JSON value")
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return fail(self.pos, Reason::TooDeep { limit: DEPTH_MAX });
        }
        self.pos += 1;
        Ok(())
    }

    /// After a `,`: a closing bracket here is a trailing comma.
    fn no_trailing_comma(&mut self, close: u8) -> R<()> {
        self.ws()?;
        if self.peek() == Some(close) {
            return fail(self.pos, Reason::TrailingComma);
        }
        Ok(())
    }

    fn array(&mut self) -> R<Value> {
        self.enter()?;
        let mut items = Vec::new();
        self.ws()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            let i = items.len();
            let v = within(self.value(), || Seg::Index(i))?;
            items.push(v);
            self.ws()?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.no_trailing_comma(b']')?;
                }
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Array(items));
                }
                _ => return self.unexpected("`,` or `]`"),
            }
        }
    }

    fn object(&mut self) -> R<Value> {
        self.enter()?;
        let mut map = Map::new();
        self.ws()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(map));
        }
        let mut prev: Option<Cow<'a, str>> = None;
        loop {
            if self.peek() != Some(b'"') {
                return self.unexpected("a string key");
            }
            let key_at = self.pos;
            let key = self.string()?;
            if let Some(p) = &prev {
                if self.canonical {
                    match utf16_cmp(p, &key) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => {
                            return within(
                                fail(
                                    key_at,
                                    Reason::DuplicateKey {
                                        key: key.to_string(),
                                    },
                                ),
                                || Seg::Key(key.to_string()),
                            );
                        }
                        std::cmp::Ordering::Greater => {
                            let reason = Reason::NotCanonical(NotCanonical::KeyOrder {
                                key: key.to_string(),
                                previous: p.to_string(),
                            });
                            return within(fail(key_at, reason), || Seg::Key(key.to_string()));
                        }
                    }
                }
            }
            self.ws()?;
            if self.peek() != Some(b':') {
                return within(self.unexpected("`:`"), || Seg::Key(key.to_string()));
            }
            self.pos += 1;
            self.ws()?;
            let v = within(self.value(), || Seg::Key(key.to_string()))?;
            // Only the canonical check needs the previous key; otherwise the
            // key moves into the map without a copy.
            let owned = if self.canonical {
                let owned = key.to_string();
                prev = Some(key);
                owned
            } else {
                key.into_owned()
            };
            if let Some(dup) = insert_new(&mut map, owned, v) {
                return within(
                    fail(key_at, Reason::DuplicateKey { key: dup.clone() }),
                    || Seg::Key(dup),
                );
            }
            self.ws()?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.no_trailing_comma(b'}')?;
                }
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Object(map));
                }
                _ => return self.unexpected("`,` or `}`"),
            }
        }
    }

    /// A string at `"`; borrowed from the input when it has no escapes.
    fn string(&mut self) -> R<Cow<'a, str>> {
        self.pos += 1;
        let start = self.pos;
        // Most strings have no escape: find the end in one scan.
        self.pos += self.b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            .unwrap_or(self.b.len() - start);
        match self.peek() {
            None => return self.unexpected("`\"` closing the string"),
            Some(b'"') => {
                let s = &self.text[start..self.pos];
                self.pos += 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(b'\\') => {}
            Some(c) => return fail(self.pos, Reason::ControlCharacter(u32::from(c))),
        }
        let mut s = String::from(&self.text[start..self.pos]);
        loop {
            let run = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            s.push_str(&self.text[run..self.pos]);
            match self.peek() {
                None => return self.unexpected("`\"` closing the string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(s));
                }
                Some(b'\\') => self.escape(&mut s)?,
                Some(c) => return fail(self.pos, Reason::ControlCharacter(u32::from(c))),
            }
        }
    }

    /// One escape at `\`, appended to `s`.
    fn escape(&mut self, s: &mut String) -> R<()> {
        let at = self.pos;
        let c = match self.b.get(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.unicode_escape(s),
            _ => {
                let shown = self.text.get(at..).and_then(|t| t.chars().nth(1));
                let reason = Reason::InvalidEscape(match shown {
                    Some(c) => format!("\\{c}"),
                    None => "\\ at the end of the input".into(),
                });
                return fail(at, reason);
            }
        };
        self.pos += 2;
        if self.canonical && c == '/' {
            return fail(at, not_canonical_escape("\\/", "/".into()));
        }
        s.push(c);
        Ok(())
    }

    fn hex4(&self, at: usize) -> R<u16> {
        let digits = self.b.get(at + 2..at + 6);
        let v = digits
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u16::from_str_radix(d, 16).ok());
        match v {
            Some(v) => Ok(v),
            None => {
                let end = (at + 6).min(self.b.len());
                let shown = self.text.get(at..end).unwrap_or("\\u");
                fail(at, Reason::InvalidEscape(shown.into()))
            }
        }
    }

    /// `\uXXXX`, or a surrogate pair of two; a lone surrogate is refused.
    fn unicode_escape(&mut self, s: &mut String) -> R<()> {
        let at = self.pos;
        let hi = self.hex4(at)?;
        self.pos += 6;
        let cp = match hi {
            0xD800..=0xDBFF => {
                let lo_at = self.pos;
                if self.b.get(lo_at..lo_at + 2) != Some(b"\\u") {
                    return fail(at, Reason::LoneSurrogate(hi));
                }
                let lo = self.hex4(lo_at)?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return fail(at, Reason::LoneSurrogate(hi));
                }
                self.pos += 6;
                0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00)
            }
            0xDC00..=0xDFFF => return fail(at, Reason::LoneSurrogate(hi)),
            v => u32::from(v),
        };
        let Some(c) = char::from_u32(cp) else {
            return fail(at, Reason::LoneSurrogate(hi));
        };
        if self.canonical {
            let written = &self.text[at..self.pos];
            let want = super::canonical::escaped(c);
            if written != want {
                return fail(at, not_canonical_escape(written, want));
            }
        }
        s.push(c);
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> R<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_at = self.pos;
        let int_digits = self.digits();
        if int_digits == 0 {
            return self.unexpected("a digit");
        }
        if int_digits > 1 && self.b[int_at] == b'0' {
            return fail(int_at, Reason::LeadingZero);
        }
        let mut plain = true;
        if self.peek() == Some(b'.') {
            plain = false;
            self.pos += 1;
            if self.digits() == 0 {
                return self.unexpected("a digit after `.`");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            plain = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.unexpected("a digit in the exponent");
            }
        }
        let text = &self.text[start..self.pos];
        // Fast path: up to 15 digits is below 2^53, exact and already canonical.
        if plain && int_digits <= 15 {
            if text == "-0" {
                if self.canonical {
                    return fail(start, not_canonical_number(text, "0".into()));
                }
                return Ok(Value::from(0u64));
            }
            return match text.parse::<i64>() {
                Ok(n) => Ok(Value::from(n)),
                Err(_) => fail(start, Reason::InexactNumber { text: quote(text) }),
            };
        }
        let canonical = match number::canonical_text(text) {
            Ok(c) => c,
            Err(Refusal::Inexact) => {
                return fail(start, Reason::InexactNumber { text: quote(text) })
            }
            Err(Refusal::OutOfRange) => {
                return fail(start, Reason::NumberOutOfRange { text: quote(text) })
            }
        };
        if self.canonical && text != canonical {
            return fail(start, not_canonical_number(text, canonical));
        }
        Ok(value_of_canonical(&canonical))
    }
}

/// The value serde_json reads from a canonical number text, so a payload
/// validated here and one read back from the log agree.
fn value_of_canonical(text: &str) -> Value {
    if !text.contains(['.', 'e']) {
        if let Ok(u) = text.parse::<u64>() {
            return Value::from(u);
        }
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
    }
    let f: f64 = text.parse().unwrap_or(0.0);
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Inserts a member unless its key is already there; then hands the key
/// back, so a duplicate is refused rather than overwritten.
fn insert_new(map: &mut Map<String, Value>, key: String, v: Value) -> Option<String> {
    match map.entry(key) {
        serde_json::map::Entry::Vacant(e) => {
            e.insert(v);
            None
        }
        serde_json::map::Entry::Occupied(e) => Some(e.key().clone()),
    }
}

fn not_canonical_number(text: &str, canonical: String) -> Reason {
    Reason::NotCanonical(NotCanonical::Number {
        text: quote(text),
        canonical,
    })
}

fn not_canonical_escape(written: &str, canonical: String) -> Reason {
    Reason::NotCanonical(NotCanonical::Escape {
        written: written.into(),
        canonical,
    })
}

/// Every integer up to 15 digits is exact; the constant documents why the
/// fast path stops there.
const _: () = assert!(999_999_999_999_999 < EXACT_INT_MAX);
