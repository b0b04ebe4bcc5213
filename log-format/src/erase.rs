//! The erased form of an entry frame (SPEC §4.2.1): the payload bytes
//! overwritten with zeros in place, same length, and the frame CRC
//! recomputed. Nothing else changes, so the body length, every offset in the
//! segment, the sparse index, the entry hash (which covers the payload only
//! through `payload_hash`), the chain, the Merkle tree, the seals and every
//! checkpoint and proof stay what they were.
use crate::entry::{decode_entry, is_zeroed, ENTRY_ROOT_LEN};
use crate::error::FormatError;
use crate::frame::{decode_frame, frame_crc, FrameType, FRAME_HEADER_LEN};
use crate::Hash32;

/// What erasing one frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erased {
    /// The payload bytes were zeroed and the CRC rewritten.
    Now,
    /// The payload was already in the erased form: nothing changed (so
    /// running compaction twice is harmless).
    Already,
}

/// Erases the payload of the entry frame at the start of `frame`, whose
/// first byte is at file offset `offset` (for errors). The entry must have
/// seq `seq` and payload hash `payload_hash`: the redaction names exactly
/// what it erases, and a frame that is not that entry is left alone.
pub fn erase_payload(
    frame: &mut [u8],
    offset: u64,
    seq: u64,
    payload_hash: &Hash32,
) -> Result<Erased, FormatError> {
    let (start, len, body_len) = {
        let f = decode_frame(frame, offset)?;
        if f.frame_type != FrameType::Entry {
            return Err(mismatch(offset, "not an entry frame".into()));
        }
        let body_offset = offset + FRAME_HEADER_LEN as u64;
        let v = decode_entry(f.body, body_offset)?;
        if v.seq != seq {
            return Err(mismatch(offset, format!("holds seq {}, not {seq}", v.seq)));
        }
        if &v.payload_hash != payload_hash {
            return Err(mismatch(
                offset,
                format!("seq {seq}'s payload hash is not the one the redaction names"),
            ));
        }
        if is_zeroed(v.payload) && !v.payload_matches() {
            return Ok(Erased::Already);
        }
        // Canonical layout (SPEC §4.1, checked by decode_entry): the payload
        // is the last variable field, directly before the 136-byte root.
        let start = FRAME_HEADER_LEN + f.body.len() - ENTRY_ROOT_LEN - v.payload.len();
        (start, v.payload.len(), f.body.len())
    };
    frame[start..start + len].fill(0);
    let len_le = [frame[4], frame[5], frame[6], frame[7]];
    let crc = frame_crc(
        len_le,
        frame[8],
        &frame[FRAME_HEADER_LEN..FRAME_HEADER_LEN + body_len],
    );
    frame[..4].copy_from_slice(&crc.to_le_bytes());
    Ok(Erased::Now)
}

fn mismatch(offset: u64, reason: String) -> FormatError {
    FormatError::Malformed {
        what: "erasure target",
        offset,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{encode_entry, EntryFields};
    use crate::frame::encode_frame;

    fn frame_of(payload: &[u8]) -> (Vec<u8>, Hash32, Hash32) {
        let f = EntryFields {
            seq: 4,
            ts_ns: 1,
            parent: None,
            prev: [3; 32],
            kind: "tool.call_started",
            job_id: Some("j"),
            step_id: None,
            agent: Some("a"),
            actor: "agent:x",
            payload,
        };
        let (body, hash) = encode_entry(&f).unwrap();
        let mut out = Vec::new();
        encode_frame(&mut out, FrameType::Entry, &body);
        (out, hash, crate::hash::payload_hash(payload))
    }

    #[test]
    fn erasing_keeps_length_crc_and_entry_hash() {
        let (mut frame, hash, ph) = frame_of(br#"{"secret":"hunter2"}"#);
        let len = frame.len();
        assert_eq!(erase_payload(&mut frame, 0, 4, &ph).unwrap(), Erased::Now);
        assert_eq!(frame.len(), len);
        let f = decode_frame(&frame, 0).expect("CRC recomputed");
        let v = decode_entry(f.body, 9).unwrap();
        assert_eq!(v.hash(), hash, "the entry hash does not cover the payload");
        assert!(v.payload_erased());
        assert!(!frame.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            erase_payload(&mut frame, 0, 4, &ph).unwrap(),
            Erased::Already
        );
    }

    #[test]
    fn a_frame_that_is_not_the_named_entry_is_left_alone() {
        let (mut frame, _, ph) = frame_of(b"{}");
        let before = frame.clone();
        assert!(erase_payload(&mut frame, 0, 5, &ph).is_err());
        assert!(erase_payload(&mut frame, 0, 4, &[0; 32]).is_err());
        assert_eq!(frame, before);
    }
}
