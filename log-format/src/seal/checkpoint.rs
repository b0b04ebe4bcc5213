//! Checkpoints read back from text (SPEC §5.3), strictly.
//!
//! A checkpoint is what an auditor keeps outside the log to catch a rollback,
//! so two verifiers that disagree on which texts are checkpoints are worse
//! than either one alone. This parser therefore accepts exactly what C2SP
//! `signed-note` allows (the reference being Go's `golang.org/x/mod/sumdb/note`
//! `Open`), narrowed to the five-line Argus body of SPEC §5.1, and the
//! signature is checked over the note text bytes as given, never over a body
//! rebuilt from parsed fields: a text that parses is then, byte for byte, the
//! text that was signed.
use super::{key_id, origin, KeyId, Seal};
use crate::hash::Hash32;
use crate::LogId;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use thiserror::Error;

/// More signature lines than this make the note malformed. C2SP asks for a
/// limit of at least 16; Go's `note.Open` refuses more than 100, and a text
/// Go refuses must not be a checkpoint here.
pub const MAX_SIGNATURES: usize = 100;

/// Number of lines in an Argus note text (SPEC §5.1).
const BODY_LINES: usize = 5;

/// Why a checkpoint was refused. `Malformed` means the text is not a
/// checkpoint at all (a usage error); the other variants mean it is one, but
/// not a valid statement by this log's key.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("origin {found} names another log; this log is {want}")]
    OtherLog { found: String, want: String },
    #[error("no signature line for {name} with key id {}", hex::encode(.key_id))]
    Unsigned { name: String, key_id: KeyId },
    #[error("line {line}: signature by {name} (key id {}) does not verify over the note text", hex::encode(.key_id))]
    BadSignature {
        line: usize,
        name: String,
        key_id: KeyId,
    },
    #[error("line 5: names key id {}, but the verifying key's id is {}", hex::encode(.found), hex::encode(.want))]
    KeyMismatch { found: KeyId, want: KeyId },
}

impl CheckpointError {
    /// True when the text does not parse, as opposed to not verifying.
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Malformed { .. })
    }
}

/// One well-formed signature line: `— <name> <base64(key id || signature)>`.
/// Lines by other keys (a witness's cosignature, a rotated key) are kept so
/// a caller can report who else vouched for the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// 1-based line of the whole checkpoint file.
    pub line: usize,
    pub name: String,
    pub key_id: KeyId,
    /// At least one byte; 64 for an Ed25519 signature.
    pub signature: Vec<u8>,
}

/// A checkpoint parsed back from its text form. Judge it with
/// [`Checkpoint::verify`]; `seal.verify` would check a rebuilt body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_id: LogId,
    /// The body's fields. `seal.signature` is taken from the first line
    /// signed by the key the body names (zero if there is none), so that a
    /// checkpoint and the seal it was printed from compare equal.
    pub seal: Seal,
    /// The signed note text exactly as given, final `\n` included.
    pub text: String,
    /// Every signature line, in order.
    pub signatures: Vec<NoteSignature>,
}

fn malformed(line: usize, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Malformed {
        line,
        reason: reason.into(),
    }
}

/// 1-based line holding byte `at`.
fn line_at(bytes: &[u8], at: usize) -> usize {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl Checkpoint {
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Parses a checkpoint file's bytes. The signatures are *not* verified
    /// here; call [`Checkpoint::verify`].
    pub fn parse_bytes(note: &[u8]) -> Result<Self, CheckpointError> {
        let s = std::str::from_utf8(note)
            .map_err(|e| malformed(line_at(note, e.valid_up_to()), "not valid UTF-8"))?;
        if let Some((at, c)) = s.char_indices().find(|(_, c)| *c < ' ' && *c != '\n') {
            let what = match c {
                '\r' => "a carriage return (U+000D): lines end in \\n only".to_string(),
                '\t' => "a tab (U+0009)".to_string(),
                c => format!("control character U+{:04X}", c as u32),
            };
            return Err(malformed(
                line_at(note, at),
                format!("{what}; a signed note holds no control character but \\n"),
            ));
        }
        let split = s.rfind("\n\n").ok_or_else(|| {
            malformed(
                line_at(note, note.len()),
                "no blank line between the note text and the signatures",
            )
        })?;
        let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
        // Note text lines, then the blank line, then the first signature.
        let first_sig_line = line_at(note, split + 1) + 1;
        if sigs.is_empty() {
            return Err(malformed(
                first_sig_line,
                "no signature line after the last blank line",
            ));
        }
        if !sigs.ends_with('\n') {
            return Err(malformed(
                line_at(note, note.len()),
                "the file does not end in a newline (text after the last signature line?)",
            ));
        }
        let mut signatures = Vec::new();
        for (i, l) in sigs.split_terminator('\n').enumerate() {
            let line = first_sig_line + i;
            if i == MAX_SIGNATURES {
                return Err(malformed(
                    line,
                    format!("more than {MAX_SIGNATURES} signature lines"),
                ));
            }
            signatures.push(signature_line(line, l)?);
        }
        let body = parse_body(text)?;
        let want_name = origin(&body.log_id);
        let signature = signatures
            .iter()
            .find(|g| g.name == want_name && g.key_id == body.key_id)
            .and_then(|g| <[u8; 64]>::try_from(g.signature.as_slice()).ok())
            .unwrap_or([0; 64]);
        Ok(Self {
            log_id: body.log_id,
            seal: Seal {
                tree_size: body.tree_size,
                root: body.root,
                head: body.head,
                ts_ns: body.ts_ns,
                key_id: body.key_id,
                signature,
            },
            text: text.to_string(),
            signatures,
        })
    }

    /// Checks that this checkpoint is a statement of `log_id` signed by
    /// `key`: its origin names the log, every line by that key (name = the
    /// origin, key id = the key's) verifies strictly over the note text
    /// bytes, there is at least one, and the body names that key's id.
    /// Lines by other keys are ignored, as C2SP requires.
    pub fn verify(&self, log_id: &LogId, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let want = origin(log_id);
        if self.log_id != *log_id {
            return Err(CheckpointError::OtherLog {
                found: origin(&self.log_id),
                want,
            });
        }
        let kid = key_id(log_id, key);
        let mut signed = false;
        for g in self
            .signatures
            .iter()
            .filter(|g| g.name == want && g.key_id == kid)
        {
            let ok = Signature::from_slice(&g.signature)
                .map(|sig| key.verify_strict(self.text.as_bytes(), &sig).is_ok())
                .unwrap_or(false);
            if !ok {
                return Err(CheckpointError::BadSignature {
                    line: g.line,
                    name: g.name.clone(),
                    key_id: g.key_id,
                });
            }
            signed = true;
        }
        if !signed {
            return Err(CheckpointError::Unsigned {
                name: want,
                key_id: kid,
            });
        }
        if self.seal.key_id != kid {
            return Err(CheckpointError::KeyMismatch {
                found: self.seal.key_id,
                want: kid,
            });
        }
        Ok(())
    }
}

/// C2SP key names: non-empty, no Unicode space (White_Space, as Go's
/// `unicode.IsSpace`), no `+` (it separates fields of a verifier key).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// Standard base64 with padding, in its one canonical spelling (the
/// re-encoding check refuses non-zero trailing bits, which would let two
/// texts carry the same bytes).
fn canonical_b64(s: &str) -> Option<Vec<u8>> {
    let raw = B64.decode(s).ok()?;
    (B64.encode(&raw) == s).then_some(raw)
}

fn signature_line(line: usize, l: &str) -> Result<NoteSignature, CheckpointError> {
    let rest = l.strip_prefix("\u{2014} ").ok_or_else(|| {
        malformed(
            line,
            "a signature line starts with an em dash (U+2014) and one space",
        )
    })?;
    let (name, b64) = rest.split_once(' ').unwrap_or((rest, ""));
    if !valid_name(name) {
        return Err(malformed(
            line,
            format!("signature key name {name:?} is empty or holds a space or '+'"),
        ));
    }
    let raw = canonical_b64(b64).ok_or_else(|| {
        malformed(
            line,
            "the signature is not one canonical standard base64 string",
        )
    })?;
    if raw.len() < 5 {
        return Err(malformed(
            line,
            format!(
                "the signature decodes to {} bytes; it needs a 4-byte key id and a signature",
                raw.len()
            ),
        ));
    }
    let mut key_id = [0u8; 4];
    key_id.copy_from_slice(&raw[..4]);
    Ok(NoteSignature {
        line,
        name: name.to_string(),
        key_id,
        signature: raw[4..].to_vec(),
    })
}

struct Body {
    log_id: LogId,
    tree_size: u64,
    root: Hash32,
    head: Hash32,
    ts_ns: u64,
    key_id: KeyId,
}

/// Exactly `2 * N` lowercase hex digits (hex::decode also takes uppercase,
/// which would give one value two spellings).
fn lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Canonical decimal: digits only, no leading zero unless it is "0", fits
/// u64 (`str::parse` alone would also take "+5" and "007").
fn canonical_u64(s: &str) -> Option<u64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// The five lines of SPEC §5.1; `text` ends in `\n`.
fn parse_body(text: &str) -> Result<Body, CheckpointError> {
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let line = |i: usize| -> Result<&str, CheckpointError> {
        lines.get(i).copied().ok_or_else(|| {
            malformed(
                i + 1,
                format!(
                    "the note text ends after {} lines; an Argus checkpoint has {BODY_LINES}",
                    lines.len()
                ),
            )
        })
    };
    let log_id = line(0)?
        .strip_prefix("argus.log/")
        .and_then(lower_hex::<16>)
        .ok_or_else(|| malformed(1, "expected `argus.log/<32 lowercase hex digits>`"))?;
    let tree_size = canonical_u64(line(1)?).ok_or_else(|| {
        malformed(
            2,
            "tree size is not a canonical decimal u64 (digits only, no leading zero)",
        )
    })?;
    let root_line = line(2)?;
    let root: Hash32 = canonical_b64(root_line)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| malformed(3, "root is not canonical base64 of 32 bytes"))?;
    let head = line(3)?
        .strip_prefix("chain ")
        .and_then(lower_hex::<32>)
        .ok_or_else(|| malformed(4, "expected `chain <64 lowercase hex digits>`"))?;
    let (ts_ns, key_id) = match line(4)?.split(' ').collect::<Vec<_>>()[..] {
        ["time", ts, "key", k] => (canonical_u64(ts), lower_hex::<4>(k)),
        _ => (None, None),
    };
    let (Some(ts_ns), Some(key_id)) = (ts_ns, key_id) else {
        return Err(malformed(
            5,
            "expected `time <canonical decimal u64> key <8 lowercase hex digits>`",
        ));
    };
    if lines.len() > BODY_LINES {
        return Err(malformed(
            BODY_LINES + 1,
            format!(
                "the note text has {} lines; an Argus checkpoint has exactly {BODY_LINES}",
                lines.len()
            ),
        ));
    }
    Ok(Body {
        log_id,
        tree_size,
        root,
        head,
        ts_ns,
        key_id,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::seal::note_body;
    use ed25519_dalek::{Signer, SigningKey};

    const LOG: LogId = [3u8; 16];

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn seal(size: u64) -> Seal {
        Seal::sign(&LOG, &key(), size, [1; 32], [0xab; 32], 42)
    }

    fn good() -> String {
        seal(5).checkpoint_text(&LOG)
    }

    /// A signature line by `signer` under `name` over `text`.
    fn sig_line(name: &str, signer: &SigningKey, text: &str) -> String {
        let kid = crate::seal::key_id(&LOG, &signer.verifying_key());
        let mut raw = kid.to_vec();
        raw.extend_from_slice(&signer.sign(text.as_bytes()).to_bytes());
        format!("\u{2014} {name} {}\n", B64.encode(raw))
    }

    #[track_caller]
    fn refused_at(text: &str, line: usize) {
        match Checkpoint::parse_bytes(text.as_bytes()) {
            Err(CheckpointError::Malformed { line: l, reason }) => {
                assert_eq!(l, line, "wrong line for {text:?}: {reason}")
            }
            other => panic!("{text:?} should not parse, got {other:?}"),
        }
    }

    #[track_caller]
    fn verdict(text: &str) -> Result<(), CheckpointError> {
        Checkpoint::parse(text)
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
            .verify(&LOG, &key().verifying_key())
    }

    #[test]
    fn writer_text_parses_to_its_seal_and_verifies_over_its_own_bytes() {
        for size in [0, 1, 5, 10, 4096, u64::MAX] {
            let s = Seal::sign(&LOG, &key(), size, [9; 32], [8; 32], u64::MAX - size);
            let text = s.checkpoint_text(&LOG);
            let cp = Checkpoint::parse(&text).unwrap();
            assert_eq!(cp.seal, s);
            assert_eq!(cp.text, s.note_body(&LOG));
            assert_eq!(cp.signatures.len(), 1);
            assert_eq!(cp.signatures[0].line, 7);
            cp.verify(&LOG, &key().verifying_key()).unwrap();
        }
    }

    #[test]
    fn only_lf_line_endings() {
        refused_at(&good().replace('\n', "\r\n"), 1);
        refused_at(&good().replacen("\n\n", "\n\r\n", 1), 6);
    }

    #[test]
    fn no_control_characters_but_newline() {
        refused_at(&good().replacen("chain ", "chain\t", 1), 4);
        refused_at(&good().replacen("time", "\u{1}time", 1), 5);
        let t = good();
        let sig = t.lines().last().unwrap();
        refused_at(&t.replacen(sig, &sig.replacen(' ', "\t", 2), 1), 7);
    }

    #[test]
    fn must_be_utf8() {
        let mut b = good().into_bytes();
        b[2] = 0xff;
        match Checkpoint::parse_bytes(&b) {
            Err(CheckpointError::Malformed { line: 1, .. }) => {}
            other => panic!("invalid UTF-8 accepted: {other:?}"),
        }
    }

    #[test]
    fn last_blank_line_separates_text_from_signatures() {
        // Two blank lines: the first is part of the text, a sixth empty line.
        refused_at(&good().replacen("\n\n", "\n\n\n", 1), 6);
        // A blank line inside the body leaves an empty line 2.
        refused_at(&good().replacen("\n", "\n\n", 1), 2);
        refused_at(&seal(5).note_body(&LOG), 6);
    }

    #[test]
    fn needs_a_signature_block_ending_in_newline() {
        let t = good();
        refused_at(&format!("{}\n", seal(5).note_body(&LOG)), 7);
        refused_at(t.trim_end_matches('\n'), 7);
        refused_at(&format!("{t}\n"), 9);
    }

    #[test]
    fn nothing_after_the_signatures() {
        refused_at(&format!("{}junk\n", good()), 8);
        refused_at(&format!("{}junk", good()), 8);
    }

    #[test]
    fn signature_moved_before_the_body_is_refused() {
        let t = good();
        let (body, sig) = t.split_once("\n\n").unwrap();
        refused_at(&format!("{sig}\n{body}\n"), 3);
    }

    #[test]
    fn signature_line_grammar() {
        let t = good();
        let sig = t.lines().last().unwrap().to_string();
        let b64 = sig.rsplit(' ').next().unwrap().to_string();
        let name = origin(&LOG);
        let bad = [
            sig.replacen('\u{2014}', "-", 1),
            sig.replacen('\u{2014}', "\u{2013}", 1),
            sig.replacen("\u{2014} ", "\u{2014}  ", 1),
            sig.replacen(' ', "  ", 2).replacen("  ", " ", 1),
            format!("{sig} "),
            format!("\u{2014} {name}"),
            format!("\u{2014} {name} "),
            format!("\u{2014} a+b {b64}"),
            format!("\u{2014} a\u{a0}b {b64}"),
            format!("\u{2014} {name} {}", &b64[..b64.len() - 1]),
            format!("\u{2014} {name} {}", b64.trim_end_matches('=')),
            format!("\u{2014} {name} !{}", &b64[1..]),
            format!("\u{2014} {name} {}", B64.encode([1, 2, 3, 4])),
        ];
        for b in bad {
            refused_at(&t.replace(&sig, &b), 7);
        }
    }

    #[test]
    fn signature_base64_must_be_canonical() {
        // "AAAAAB==" decodes to 5 bytes only if non-zero trailing bits are
        // allowed; "AAAAAA==" is the canonical spelling of those bytes.
        let t = seal(5).note_body(&LOG);
        let ok = format!(
            "{t}\n\u{2014} w AAAAAAA=\n{}",
            good().split_once("\n\n").unwrap().1
        );
        assert!(Checkpoint::parse(&ok).is_ok(), "{ok:?}");
        refused_at(&ok.replace("AAAAAAA=", "AAAAAAB="), 7);
    }

    #[test]
    fn at_most_a_hundred_signature_lines() {
        let body = seal(5).note_body(&LOG);
        let own = sig_line(&origin(&LOG), &key(), &body);
        let w = "\u{2014} witness.example AAAAAAA=\n";
        let ok = format!("{body}\n{own}{}", w.repeat(MAX_SIGNATURES - 1));
        assert!(verdict(&ok).is_ok());
        refused_at(&format!("{ok}{w}"), 7 + MAX_SIGNATURES);
    }

    #[test]
    fn origin_line_is_argus_log_and_lowercase_hex() {
        let t = good();
        let o = origin(&LOG);
        refused_at(&t.replacen(&o, &o.to_uppercase(), 1), 1);
        refused_at(&t.replacen(&o, &format!("{o}0"), 1), 1);
        refused_at(&t.replacen("argus.log/", "argus.logs/", 1), 1);
        refused_at(&format!("\u{feff}{t}"), 1);
    }

    #[test]
    fn tree_size_is_canonical_decimal() {
        let t = good();
        for s in [
            "05",
            "+5",
            "-5",
            " 5",
            "5 ",
            "",
            "0x5",
            "18446744073709551616",
        ] {
            refused_at(&t.replacen("\n5\n", &format!("\n{s}\n"), 1), 2);
        }
        let zero = seal(0).checkpoint_text(&LOG);
        assert_eq!(Checkpoint::parse(&zero).unwrap().seal.tree_size, 0);
        refused_at(&zero.replacen("\n0\n", "\n00\n", 1), 2);
    }

    #[test]
    fn root_is_canonical_base64_of_32_bytes() {
        let t = good();
        let root = B64.encode([1u8; 32]);
        assert_eq!(&root[42..], "E=");
        // Same 32 bytes with non-zero trailing bits.
        refused_at(&t.replacen(&root, &format!("{}F=", &root[..42]), 1), 3);
        refused_at(&t.replacen(&root, root.trim_end_matches('='), 1), 3);
        refused_at(&t.replacen(&root, &B64.encode([1u8; 31]), 1), 3);
        refused_at(&t.replacen(&root, &B64.encode([1u8; 33]), 1), 3);
    }

    #[test]
    fn chain_and_key_are_lowercase_hex_and_time_canonical() {
        let t = good();
        let head = hex::encode([0xabu8; 32]);
        refused_at(&t.replacen(&head, &head.to_uppercase(), 1), 4);
        refused_at(&t.replacen("chain ", "chain  ", 1), 4);
        refused_at(&t.replacen(&head, &head[1..], 1), 4);
        refused_at(&t.replacen("time 42", "time 042", 1), 5);
        refused_at(&t.replacen("time 42", "time +42", 1), 5);
        refused_at(&t.replacen(" key ", "  key ", 1), 5);
        let kid = hex::encode(seal(5).key_id);
        refused_at(&t.replacen(&kid, &kid.to_uppercase(), 1), 5);
        refused_at(
            &t.replacen(&format!("key {kid}"), &format!("key {kid} x"), 1),
            5,
        );
    }

    #[test]
    fn body_is_exactly_five_lines() {
        let t = good();
        refused_at(&t.replacen("\n\n", "\nextension\n\n", 1), 6);
        let (body, sig) = t.split_once("\n\n").unwrap();
        let four = body.rsplit_once('\n').unwrap().0;
        refused_at(&format!("{four}\n\n{sig}"), 5);
    }

    #[test]
    fn signature_is_over_the_exact_text_so_an_edited_body_fails() {
        let t = good();
        let edited = t.replacen("time 42", "time 43", 1);
        assert!(matches!(
            verdict(&edited),
            Err(CheckpointError::BadSignature { line: 7, .. })
        ));
    }

    #[test]
    fn other_keys_lines_are_ignored_but_the_logs_own_must_verify() {
        let body = seal(5).note_body(&LOG);
        let own = sig_line(&origin(&LOG), &key(), &body);
        let witness = SigningKey::from_bytes(&[9u8; 32]);
        let wline = sig_line("witness.example/w1", &witness, &body);
        // A cosignature before or after the log's own line.
        assert_eq!(verdict(&format!("{body}\n{wline}{own}")), Ok(()));
        let cp = Checkpoint::parse(&format!("{body}\n{own}{wline}")).unwrap();
        let names: Vec<_> = cp.signatures.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, [origin(&LOG).as_str(), "witness.example/w1"]);
        // Only a witness: no line by this key.
        assert!(matches!(
            verdict(&format!("{body}\n{wline}")),
            Err(CheckpointError::Unsigned { .. })
        ));
        // The log's name with another key's id is another key: ignored.
        let other = sig_line(&origin(&LOG), &witness, &body);
        assert!(matches!(
            verdict(&format!("{body}\n{other}")),
            Err(CheckpointError::Unsigned { .. })
        ));
        // A second, bad line by the log's key fails the whole note.
        let bad = sig_line(&origin(&LOG), &key(), "something else\n");
        assert!(matches!(
            verdict(&format!("{body}\n{own}{bad}")),
            Err(CheckpointError::BadSignature { line: 8, .. })
        ));
    }

    #[test]
    fn wrong_key_or_wrong_log_is_not_signed() {
        let cp = Checkpoint::parse(&good()).unwrap();
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert!(matches!(
            cp.verify(&LOG, &other),
            Err(CheckpointError::Unsigned { .. })
        ));
        assert!(matches!(
            cp.verify(&[4u8; 16], &key().verifying_key()),
            Err(CheckpointError::OtherLog { .. })
        ));
    }

    #[test]
    fn body_naming_another_key_id_is_refused_even_when_signed() {
        let kid = crate::seal::key_id(&LOG, &key().verifying_key());
        let body = note_body(&LOG, 5, &[1; 32], &[0xab; 32], 42, &[0xaa; 4]);
        let text = format!("{body}\n{}", sig_line(&origin(&LOG), &key(), &body));
        assert_eq!(
            verdict(&text),
            Err(CheckpointError::KeyMismatch {
                found: [0xaa; 4],
                want: kid
            })
        );
    }
}
