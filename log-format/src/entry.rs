//! Entries: the rkyv record stored in an entry frame, its canonical-form
//! check, and the entry hash.
//!
//! The body is read through bytecheck (`rkyv::access`), never unchecked,
//! because bytes on disk are untrusted. rkyv is pinned to little-endian,
//! unaligned, 32-bit relative pointers (SPEC §4.1), so a record can be read
//! straight out of an mmapped segment at any offset.
use crate::error::FormatError;
use crate::hash::{payload_hash, Hash32};
use rkyv::rancor;

/// `parent` value meaning "no causal parent".
pub const NO_PARENT: u64 = u64::MAX;
/// Size of the archived root struct at the end of every entry body.
pub const ENTRY_ROOT_LEN: usize = 136;

/// The stored form of one entry. Field order is normative: it fixes both the
/// archived layout and the order of variable-length data (SPEC §4.1).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    pub seq: u64,
    pub ts_ns: u64,
    pub parent: u64,
    pub prev: [u8; 32],
    pub payload_hash: [u8; 32],
    pub kind: Vec<u8>,
    pub job_id: Vec<u8>,
    pub step_id: Vec<u8>,
    pub agent: Vec<u8>,
    pub actor: Vec<u8>,
    pub payload: Vec<u8>,
}

/// A decoded, validated entry borrowing from the segment bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryView<'a> {
    pub seq: u64,
    pub ts_ns: u64,
    pub parent: Option<u64>,
    pub prev: Hash32,
    pub payload_hash: Hash32,
    pub kind: &'a str,
    pub job_id: Option<&'a str>,
    pub step_id: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub actor: &'a str,
    pub payload: &'a [u8],
}

/// The fields a writer supplies; seq, prev and hashes are assigned at commit.
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    pub seq: u64,
    pub ts_ns: u64,
    pub parent: Option<u64>,
    pub prev: Hash32,
    pub kind: &'a str,
    pub job_id: Option<&'a str>,
    pub step_id: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub actor: &'a str,
    pub payload: &'a [u8],
}

/// Encodes an entry body and returns it with the entry hash.
pub fn encode_entry(f: &EntryFields<'_>) -> Result<(Vec<u8>, Hash32), FormatError> {
    let rec = EntryRecord {
        seq: f.seq,
        ts_ns: f.ts_ns,
        parent: f.parent.unwrap_or(NO_PARENT),
        prev: f.prev,
        payload_hash: payload_hash(f.payload),
        kind: f.kind.as_bytes().to_vec(),
        job_id: f.job_id.unwrap_or("").as_bytes().to_vec(),
        step_id: f.step_id.unwrap_or("").as_bytes().to_vec(),
        agent: f.agent.unwrap_or("").as_bytes().to_vec(),
        actor: f.actor.as_bytes().to_vec(),
        payload: f.payload.to_vec(),
    };
    let bytes = rkyv::to_bytes::<rancor::Error>(&rec).map_err(|e| FormatError::Malformed {
        what: "entry",
        offset: 0,
        reason: e.to_string(),
    })?;
    let view = EntryView {
        seq: rec.seq,
        ts_ns: rec.ts_ns,
        parent: f.parent,
        prev: rec.prev,
        payload_hash: rec.payload_hash,
        kind: f.kind,
        job_id: f.job_id,
        step_id: f.step_id,
        agent: f.agent,
        actor: f.actor,
        payload: f.payload,
    };
    Ok((bytes.to_vec(), view.hash()))
}

/// Appends one whole entry frame (SPEC §4 header, §4.1 body) for `f` to
/// `out` and returns the entry hash. Byte for byte what [`encode_entry`]
/// then [`crate::frame::encode_frame`] produce (a test holds them equal), but
/// written in place: the writer's commit buffer takes every entry of a group
/// without an allocation per entry. `payload_hash` must be
/// `payload_hash(f.payload)`; a caller that computed it already (off the
/// writer's thread) passes it instead of hashing the payload twice.
pub fn append_entry_frame(
    out: &mut Vec<u8>,
    f: &EntryFields<'_>,
    payload_hash: &Hash32,
) -> Result<Hash32, FormatError> {
    use crate::frame::{FrameType, FRAME_BODY_MAX, FRAME_HEADER_LEN};
    let fields: [&[u8]; 6] = [
        f.kind.as_bytes(),
        f.job_id.unwrap_or("").as_bytes(),
        f.step_id.unwrap_or("").as_bytes(),
        f.agent.unwrap_or("").as_bytes(),
        f.actor.as_bytes(),
        f.payload,
    ];
    let data: usize = fields.iter().map(|d| d.len()).sum();
    let body_len = data + ENTRY_ROOT_LEN;
    if body_len > FRAME_BODY_MAX {
        return Err(FormatError::Malformed {
            what: "entry",
            offset: 0,
            reason: format!("body of {body_len} bytes exceeds the frame limit {FRAME_BODY_MAX}"),
        });
    }
    let frame_start = out.len();
    out.reserve(FRAME_HEADER_LEN + body_len);
    // CRC first as zeros, filled in once the body is in place.
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.push(FrameType::Entry as u8);
    for d in fields {
        out.extend_from_slice(d);
    }
    out.extend_from_slice(&f.seq.to_le_bytes());
    out.extend_from_slice(&f.ts_ns.to_le_bytes());
    out.extend_from_slice(&f.parent.unwrap_or(NO_PARENT).to_le_bytes());
    out.extend_from_slice(&f.prev);
    out.extend_from_slice(payload_hash);
    // Relative pointers, from each pointer's place in the root back to its
    // data (SPEC §4.1); both are below FRAME_BODY_MAX, so they fit an i32.
    let mut start = 0usize;
    for (i, d) in fields.iter().enumerate() {
        let ptr_pos = data + 88 + 8 * i;
        let rel = start as i64 - ptr_pos as i64;
        out.extend_from_slice(&(rel as i32).to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        start += d.len();
    }
    let crc = {
        let frame = &out[frame_start..];
        let len_le = [frame[4], frame[5], frame[6], frame[7]];
        crate::frame::frame_crc(len_le, frame[8], &frame[FRAME_HEADER_LEN..])
    };
    out[frame_start..frame_start + 4].copy_from_slice(&crc.to_le_bytes());
    let view = EntryView {
        seq: f.seq,
        ts_ns: f.ts_ns,
        parent: f.parent,
        prev: f.prev,
        payload_hash: *payload_hash,
        kind: f.kind,
        job_id: f.job_id,
        step_id: f.step_id,
        agent: f.agent,
        actor: f.actor,
        payload: f.payload,
    };
    Ok(view.hash())
}

/// The seq and prev of an encoded entry body, read from their fixed places
/// in the archived root (SPEC §5.1: the root ends the body; seq at its
/// offset 0, prev at 24) without validating the rest. For a writer to check
/// what it is about to write; readers use [`decode_entry`].
pub fn encoded_seq_prev(body: &[u8]) -> Option<(u64, Hash32)> {
    let root = body.len().checked_sub(ENTRY_ROOT_LEN)?;
    let seq = u64::from_le_bytes(body.get(root..root + 8)?.try_into().ok()?);
    let prev = body.get(root + 24..root + 56)?.try_into().ok()?;
    Some((seq, prev))
}

fn utf8<'a>(b: &'a [u8], offset: u64, field: &'static str) -> Result<&'a str, FormatError> {
    std::str::from_utf8(b).map_err(|_| FormatError::NotUtf8 { offset, field })
}

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Decodes and validates an entry body. `offset` is the body's file offset,
/// used in errors. Rejects anything bytecheck rejects, any non-canonical
/// layout (so every stored byte is pinned by the entry hash or the CRC),
/// non-UTF-8 text fields, an empty kind or actor, and a parent not before seq.
pub fn decode_entry(body: &[u8], offset: u64) -> Result<EntryView<'_>, FormatError> {
    // bytecheck's own message embeds memory addresses; report a stable one.
    let a = rkyv::access::<ArchivedEntryRecord, rancor::Error>(body).map_err(|_| {
        FormatError::Malformed {
            what: "entry",
            offset,
            reason: "body fails bytecheck validation of the archived record (bad relative pointer or length)".into(),
        }
    })?;
    // Canonical layout: variable data in field order, contiguous from 0,
    // then the root. An empty field points where its data would begin.
    let base = body.as_ptr() as usize;
    let mut cursor = 0usize;
    for v in [
        &a.kind, &a.job_id, &a.step_id, &a.agent, &a.actor, &a.payload,
    ] {
        if (v.as_ptr() as usize).wrapping_sub(base) != cursor {
            return Err(FormatError::NonCanonical { offset });
        }
        cursor += v.len();
    }
    if cursor + ENTRY_ROOT_LEN != body.len() {
        return Err(FormatError::NonCanonical { offset });
    }
    let seq = a.seq.to_native();
    let parent = a.parent.to_native();
    let kind = utf8(a.kind.as_slice(), offset, "kind")?;
    let actor = utf8(a.actor.as_slice(), offset, "actor")?;
    if !valid_kind(kind) || actor.is_empty() {
        return Err(FormatError::Malformed {
            what: "entry",
            offset,
            reason: format!("kind {kind:?} breaks the kind grammar, or actor is empty"),
        });
    }
    if parent != NO_PARENT && parent >= seq {
        return Err(FormatError::Malformed {
            what: "entry",
            offset,
            reason: format!("parent {parent} is not before seq {seq}"),
        });
    }
    Ok(EntryView {
        seq,
        ts_ns: a.ts_ns.to_native(),
        parent: (parent != NO_PARENT).then_some(parent),
        prev: a.prev,
        payload_hash: a.payload_hash,
        kind,
        job_id: opt(utf8(a.job_id.as_slice(), offset, "job_id")?),
        step_id: opt(utf8(a.step_id.as_slice(), offset, "step_id")?),
        agent: opt(utf8(a.agent.as_slice(), offset, "agent")?),
        actor,
        payload: a.payload.as_slice(),
    })
}

impl EntryView<'_> {
    /// The entry hash (SPEC §4.2): metadata plus the payload *hash*, never the
    /// payload itself, so redacting a payload leaves the chain intact.
    pub fn hash(&self) -> Hash32 {
        let mut h = crate::hash::entry_hasher();
        h.update(&self.seq.to_le_bytes());
        h.update(&self.ts_ns.to_le_bytes());
        h.update(&self.parent.unwrap_or(NO_PARENT).to_le_bytes());
        h.update(&self.prev);
        h.update(&self.payload_hash);
        for s in [
            self.kind,
            self.job_id.unwrap_or(""),
            self.step_id.unwrap_or(""),
            self.agent.unwrap_or(""),
            self.actor,
        ] {
            h.update(&(s.len() as u32).to_le_bytes());
            h.update(s.as_bytes());
        }
        *h.finalize().as_bytes()
    }

    /// True when the stored payload bytes match the stored payload hash.
    pub fn payload_matches(&self) -> bool {
        payload_hash(self.payload) == self.payload_hash
    }

    /// True when the payload is in the erased form (SPEC §4.2.1): at least
    /// one byte, every byte 0x00, and no longer matching its hash. A writer
    /// stores JSON, and no JSON text is all zero bytes, so the form cannot
    /// be mistaken for a payload; whether an erasure was *allowed* is for
    /// the verifier to judge against a later `entry.redacted`.
    pub fn payload_erased(&self) -> bool {
        is_zeroed(self.payload) && !self.payload_matches()
    }
}

/// Non-empty and every byte 0x00: the erased form's bytes.
pub fn is_zeroed(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|b| *b == 0)
}

/// `kind` grammar: `[a-z0-9_]+(\.[a-z0-9_]+)*`.
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// Hand-written encoder that follows SPEC §4.1 byte for byte. Tests compare
/// it with rkyv's output so the spec and the code cannot drift apart.
pub fn spec_encode(f: &EntryFields<'_>) -> Vec<u8> {
    let fields: [&[u8]; 6] = [
        f.kind.as_bytes(),
        f.job_id.unwrap_or("").as_bytes(),
        f.step_id.unwrap_or("").as_bytes(),
        f.agent.unwrap_or("").as_bytes(),
        f.actor.as_bytes(),
        f.payload,
    ];
    let mut out = Vec::new();
    let mut starts = [0usize; 6];
    for (i, d) in fields.iter().enumerate() {
        starts[i] = out.len();
        out.extend_from_slice(d);
    }
    let root = out.len();
    out.extend_from_slice(&f.seq.to_le_bytes());
    out.extend_from_slice(&f.ts_ns.to_le_bytes());
    out.extend_from_slice(&f.parent.unwrap_or(NO_PARENT).to_le_bytes());
    out.extend_from_slice(&f.prev);
    out.extend_from_slice(&payload_hash(f.payload));
    for (i, d) in fields.iter().enumerate() {
        let ptr_pos = root + 88 + 8 * i;
        let rel = starts[i] as i64 - ptr_pos as i64;
        out.extend_from_slice(&(rel as i32).to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(kind: &'a str, payload: &'a [u8], job: Option<&'a str>) -> EntryFields<'a> {
        EntryFields {
            seq: 7,
            ts_ns: 1_700_000_000_000_000_000,
            parent: Some(3),
            prev: [9u8; 32],
            kind,
            job_id: job,
            step_id: None,
            agent: Some("planner"),
            actor: "user:alice",
            payload,
        }
    }

    #[test]
    fn rkyv_output_matches_spec_layout() {
        for (kind, payload, job) in [
            ("tool.call_started", &b"{\"a\":1}"[..], Some("job-1")),
            ("x", &b""[..], None),
            ("cost.logged", &b"null"[..], Some("")),
        ] {
            let f = sample(kind, payload, job);
            let (bytes, _) = encode_entry(&f).unwrap();
            assert_eq!(bytes, spec_encode(&f), "layout drift for kind {kind}");
        }
    }

    #[test]
    fn in_place_frame_matches_rkyv_then_encode_frame() {
        for (kind, payload, job) in [
            ("tool.call_started", &b"{\"a\":1}"[..], Some("job-1")),
            ("x", &b""[..], None),
            ("cost.logged", &b"null"[..], Some("")),
        ] {
            let f = sample(kind, payload, job);
            let (body, h) = encode_entry(&f).unwrap();
            let mut want = vec![7u8; 3];
            crate::frame::encode_frame(&mut want, crate::frame::FrameType::Entry, &body);
            let mut got = vec![7u8; 3];
            let h2 = append_entry_frame(&mut got, &f, &payload_hash(payload)).unwrap();
            assert_eq!(got, want, "frame drift for kind {kind}");
            assert_eq!(h2, h);
        }
    }

    #[test]
    fn decode_round_trips_and_hash_is_stable() {
        let f = sample("tool.call_started", b"{\"a\":1}", Some("job-1"));
        let (bytes, h) = encode_entry(&f).unwrap();
        let v = decode_entry(&bytes, 0).unwrap();
        assert_eq!(v.kind, "tool.call_started");
        assert_eq!(v.job_id, Some("job-1"));
        assert_eq!(v.parent, Some(3));
        assert!(v.payload_matches());
        assert_eq!(v.hash(), h);
    }

    #[test]
    fn encoded_seq_prev_reads_what_decode_reads() {
        let f = sample("tool.call_started", b"{\"a\":1}", Some("job-1"));
        let (bytes, _) = encode_entry(&f).unwrap();
        let v = decode_entry(&bytes, 0).unwrap();
        assert_eq!(encoded_seq_prev(&bytes), Some((v.seq, v.prev)));
        assert_eq!(encoded_seq_prev(&bytes[..ENTRY_ROOT_LEN - 1]), None);
    }

    #[test]
    fn moved_relative_pointer_is_non_canonical() {
        let f = sample("abc", b"{}", Some("j"));
        let mut bytes = spec_encode(&f);
        // Point `kind` one byte later and shorten it: still decodes, not canonical.
        let root = bytes.len() - ENTRY_ROOT_LEN;
        let p = root + 88;
        let rel = i32::from_le_bytes([bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]]) + 1;
        bytes[p..p + 4].copy_from_slice(&rel.to_le_bytes());
        bytes[p + 4..p + 8].copy_from_slice(&2u32.to_le_bytes());
        assert!(decode_entry(&bytes, 0).is_err());
    }

    #[test]
    fn kind_grammar() {
        assert!(valid_kind("a.b_c.d9"));
        for bad in ["", "A", "a..b", ".a", "a.", "a-b", "a b"] {
            assert!(!valid_kind(bad), "{bad:?} accepted");
        }
    }
}
