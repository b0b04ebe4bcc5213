//! Length-prefixed, CRC-protected frames. Unlike LevelDB and Kafka the CRC
//! also covers the length, so a flipped length bit is caught before it can
//! send a reader off into the middle of another frame.
use crate::error::FormatError;

/// crc32 (4) + body length (4) + frame type (1).
pub const FRAME_HEADER_LEN: usize = 9;
/// Largest body a frame may carry. Bounds memory for a reader of hostile files.
pub const FRAME_BODY_MAX: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    Entry = 0x01,
    Seal = 0x02,
    Footer = 0x03,
}

impl FrameType {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(Self::Entry),
            0x02 => Some(Self::Seal),
            0x03 => Some(Self::Footer),
            _ => None,
        }
    }
}

/// CRC-32/ISO-HDLC over `len_le || type || body`.
pub fn frame_crc(len_le: [u8; 4], frame_type: u8, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len_le);
    h.update(&[frame_type]);
    h.update(body);
    h.finalize()
}

/// Appends one frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, frame_type: FrameType, body: &[u8]) {
    let len_le = (body.len() as u32).to_le_bytes();
    let crc = frame_crc(len_le, frame_type as u8, body);
    out.reserve(FRAME_HEADER_LEN + body.len());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&len_le);
    out.push(frame_type as u8);
    out.extend_from_slice(body);
}

/// A frame decoded in place: the body borrows from the buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub frame_type: FrameType,
    pub body: &'a [u8],
    /// Total bytes the frame occupies, header included.
    pub total_len: usize,
}

/// Decodes the frame that starts at `buf[0]`. `base` is the file offset of
/// `buf[0]`, used only for error reports.
pub fn decode_frame(buf: &[u8], base: u64) -> Result<RawFrame<'_>, FormatError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Err(FormatError::Truncated {
            what: "frame header",
            offset: base,
            need: FRAME_HEADER_LEN as u64,
            have: buf.len() as u64,
        });
    }
    let stored = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len_le = [buf[4], buf[5], buf[6], buf[7]];
    let len = u32::from_le_bytes(len_le) as usize;
    let type_byte = buf[8];
    if len == 0 {
        return Err(FormatError::Malformed {
            what: "frame",
            offset: base,
            reason: "zero-length body (a frame carries at least 1 byte)".into(),
        });
    }
    if len > FRAME_BODY_MAX {
        return Err(FormatError::FrameTooLarge {
            offset: base,
            len: len as u64,
            max: FRAME_BODY_MAX as u64,
        });
    }
    let total = FRAME_HEADER_LEN + len;
    if buf.len() < total {
        return Err(FormatError::Truncated {
            what: "frame body",
            offset: base,
            need: total as u64,
            have: buf.len() as u64,
        });
    }
    let body = &buf[FRAME_HEADER_LEN..total];
    let computed = frame_crc(len_le, type_byte, body);
    if computed != stored {
        return Err(FormatError::FrameChecksum {
            offset: base,
            stored,
            computed,
        });
    }
    let frame_type = FrameType::from_byte(type_byte).ok_or(FormatError::UnknownFrameType {
        offset: base,
        frame_type: type_byte,
    })?;
    Ok(RawFrame {
        frame_type,
        body,
        total_len: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_variant_is_iso_hdlc() {
        // SPEC §1 names the check value; this pins crc32fast to it.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn zero_length_frame_is_invalid_even_with_a_valid_crc() {
        let mut buf = Vec::new();
        let crc = frame_crc(0u32.to_le_bytes(), 1, &[]);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0, 1]);
        assert!(decode_frame(&buf, 0).is_err());
    }

    #[test]
    fn flipped_length_bit_is_caught_by_crc() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, FrameType::Entry, b"hello world");
        buf[4] ^= 0x01;
        buf.extend_from_slice(&[0u8; 8]);
        assert!(matches!(
            decode_frame(&buf, 0),
            Err(FormatError::FrameChecksum { .. })
        ));
    }
}
