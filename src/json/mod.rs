//! JSON at the trust boundary: a strict reader for hostile input and the
//! one canonical form payloads are stored in (SPEC §4.1.1).
//!
//! serde_json is lenient where an audit log must not be: it keeps the last
//! of duplicate keys, rounds integers beyond 2^53 and decimals past 17
//! digits without a word, and prints floats in its own style. What a
//! producer sent would then differ from what was hashed. This reader refuses
//! every input whose meaning it cannot keep, and the writer gives each JSON
//! value exactly one spelling (RFC 8785), so the stored bytes can be
//! recomputed by anyone holding the document.
//!
//! `-0` is read as `0`: JSON numbers are decimal values and RFC 8785 writes
//! negative zero as `0`, so nothing is lost. It is refused only where bytes
//! must already be canonical.
mod canonical;
mod number;
mod strict;

pub use canonical::{to_canonical, write_canonical};
use serde_json::Value;

/// Deepest nesting of arrays and objects accepted, as in serde_json.
pub const DEPTH_MAX: usize = 128;

/// Reads one JSON text of at most `max_bytes` bytes under RFC 8259 exactly,
/// refusing duplicate keys and numbers an f64 cannot keep (see
/// [`Reason::InexactNumber`]).
pub fn parse(bytes: &[u8], max_bytes: usize) -> Result<Value, JsonError> {
    strict::parse(bytes, max_bytes, false)
}

/// The members of a top-level object whose keys are all among `names`,
/// by the name's index, without building a map for them; `None` when the
/// text is another type or has another key (read it with [`parse`] then).
/// Refuses exactly what [`parse`] refuses, with the same error.
pub fn parse_members<const N: usize>(
    bytes: &[u8],
    max_bytes: usize,
    names: &[&str; N],
) -> Result<Option<[Option<Value>; N]>, JsonError> {
    strict::parse_members(bytes, max_bytes, names)
}

/// Like [`parse`], and also refuses bytes that are not already Argus
/// canonical JSON, so one pass both checks the stored form and yields the
/// value to validate.
pub fn parse_canonical(bytes: &[u8], max_bytes: usize) -> Result<Value, JsonError> {
    strict::parse(bytes, max_bytes, true)
}

/// Whether `bytes` are exactly the canonical form of some JSON value.
pub fn is_canonical(bytes: &[u8]) -> Result<(), JsonError> {
    parse_canonical(bytes, usize::MAX).map(|_| ())
}

/// Why a JSON text was refused, and where: the JSON Pointer of the value
/// (empty for the top level) and the 1-based byte column in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}byte {column}: {reason}", at(pointer))]
#[non_exhaustive]
pub struct JsonError {
    pub pointer: String,
    pub column: usize,
    pub reason: Reason,
}

fn at(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!("at {pointer}, ")
    }
}

impl JsonError {
    /// The pointer as a dotted field name (`payload.items.3.cost`), the way
    /// the CLI names fields.
    pub fn field(&self) -> String {
        self.pointer
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect::<Vec<_>>()
            .join(".")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    #[error("{size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("expected {expected}, found the end of the input")]
    UnexpectedEnd { expected: &'static str },
    #[error("expected {expected}, found {found}")]
    Unexpected {
        expected: &'static str,
        found: String,
    },
    #[error("trailing characters after the JSON value")]
    TrailingCharacters,
    #[error("trailing comma")]
    TrailingComma,
    #[error("nested deeper than {limit} arrays and objects")]
    TooDeep { limit: usize },
    #[error("raw control character U+{0:04X} in a string (write it as an escape)")]
    ControlCharacter(u32),
    #[error("invalid escape {0}")]
    InvalidEscape(String),
    #[error("lone surrogate \\u{0:04x} (not a Unicode character)")]
    LoneSurrogate(u16),
    #[error("number with a leading zero")]
    LeadingZero,
    #[error("duplicate key {key:?}")]
    DuplicateKey { key: String },
    #[error("number {text} cannot be stored exactly (it is beyond what a 64-bit float holds to these digits); send it as a string")]
    InexactNumber { text: String },
    #[error("number {text} is beyond the range of a 64-bit float; send it as a string")]
    NumberOutOfRange { text: String },
    #[error("not canonical JSON: {0}")]
    NotCanonical(NotCanonical),
}

impl Reason {
    /// Whether the text breaks the JSON grammar itself (as opposed to being
    /// grammatical JSON that Argus refuses to store).
    pub fn is_syntax(&self) -> bool {
        matches!(
            self,
            Self::InvalidUtf8
                | Self::UnexpectedEnd { .. }
                | Self::Unexpected { .. }
                | Self::TrailingCharacters
                | Self::TrailingComma
                | Self::ControlCharacter(_)
                | Self::InvalidEscape(_)
                | Self::LoneSurrogate(_)
                | Self::LeadingZero
        )
    }
}

/// How grammatical JSON differs from its canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotCanonical {
    #[error("insignificant whitespace")]
    Whitespace,
    #[error("key {key:?} follows {previous:?} (members are sorted by UTF-16 code units)")]
    KeyOrder { key: String, previous: String },
    #[error("escape {written} is written {canonical:?}")]
    Escape { written: String, canonical: String },
    #[error("number {text} is written {canonical}")]
    Number { text: String, canonical: String },
}

#[cfg(test)]
pub(crate) mod tests;
