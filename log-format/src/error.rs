//! Typed format errors. Each carries the offset within the buffer it was
//! decoding, so callers can add the segment name and report a precise place.
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    #[error("bad magic at offset {offset}: not an Argus segment")]
    BadMagic { offset: u64 },
    #[error("unsupported format version {version} at offset {offset} (this build reads version {supported})")]
    UnsupportedVersion {
        offset: u64,
        version: u32,
        supported: u32,
    },
    #[error("header checksum mismatch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderChecksum {
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("truncated {what} at offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        offset: u64,
        need: u64,
        have: u64,
    },
    #[error("frame checksum mismatch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}")]
    FrameChecksum {
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("frame at offset {offset} declares {len} body bytes, above the {max} byte limit")]
    FrameTooLarge { offset: u64, len: u64, max: u64 },
    #[error("unknown frame type {frame_type:#04x} at offset {offset}")]
    UnknownFrameType { offset: u64, frame_type: u8 },
    #[error("malformed {what} body at offset {offset}: {reason}")]
    Malformed {
        what: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("non-canonical entry encoding at offset {offset}: the bytes decode but are not the canonical form")]
    NonCanonical { offset: u64 },
    #[error("entry field {field} at offset {offset} is not valid UTF-8")]
    NotUtf8 { offset: u64, field: &'static str },
}

impl FormatError {
    /// The offset the error names, so callers can report the same place the
    /// message does.
    pub fn offset(&self) -> u64 {
        match self {
            Self::BadMagic { offset }
            | Self::UnsupportedVersion { offset, .. }
            | Self::HeaderChecksum { offset, .. }
            | Self::Truncated { offset, .. }
            | Self::FrameChecksum { offset, .. }
            | Self::FrameTooLarge { offset, .. }
            | Self::UnknownFrameType { offset, .. }
            | Self::Malformed { offset, .. }
            | Self::NonCanonical { offset }
            | Self::NotUtf8 { offset, .. } => *offset,
        }
    }
}
