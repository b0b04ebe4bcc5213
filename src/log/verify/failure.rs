//! What a failed verification reports: the class (the exit code), the place
//! (segment, offset, seq), a message for people and a typed [`Cause`] for
//! programs, so an auditor or a daemon can react without parsing text.
use crate::log::safe_fs::FileKind;
use log_format::seal::CheckpointError;
use log_format::tail::{FoundSeal, Proof};
use log_format::walk::{Fault, FaultClass};
use log_format::{FormatError, LogId};
use serde::Serialize;

/// Failure classes; the discriminant is `argusctl verify`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Class {
    Content = 10,
    Signature = 11,
    Truncation = 12,
    Structure = 13,
}

impl Class {
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<FaultClass> for Class {
    fn from(c: FaultClass) -> Self {
        match c {
            FaultClass::Content => Class::Content,
            FaultClass::Signature => Class::Signature,
            FaultClass::Structure => Class::Structure,
        }
    }
}

/// Why verification failed, as data. In JSON reports it appears as its
/// [`Cause::name`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// `segments/` is a link, a file or a device, not a directory.
    SegmentsNotADirectory {
        kind: FileKind,
    },
    /// A `*.seg` entry is not a regular file.
    SegmentNotRegular {
        kind: FileKind,
    },
    /// A `*.seg` name is not 20 decimal digits.
    BadSegmentName,
    NoSegments,
    /// The segment header does not decode.
    Header(FormatError),
    /// The segment's log id is not the first segment's.
    ForeignSegment {
        found: LogId,
        expected: LogId,
    },
    /// The header's base seq is not the one in the file name.
    BaseSeqMismatch {
        found: u64,
    },
    /// The first segment does not start at seq 0.
    FirstSegmentNotZero {
        base: u64,
    },
    /// A valid frame whose content is wrong (chain, payload, seal, ...).
    Fault(Fault),
    /// An invalid frame that later bytes prove was committed (SPEC §7.2
    /// rows 3–5).
    Corrupt {
        cause: FormatError,
        proof: Proof,
    },
    /// An invalid frame in a segment that is not the last, which cannot be
    /// a torn tail.
    DamagedSealedSegment {
        cause: FormatError,
        signed_seal: Option<FoundSeal>,
    },
    /// A compressed segment (SPEC §12) whose layout or blocks are damaged.
    Compressed(log_format::ArchiveError),
    /// A compressed segment that does not end in a footer: only sealed
    /// segments are ever compressed.
    CompressedNotSealed,
    /// A segment does not start where the previous one ended.
    SegmentSeqGap {
        starts: u64,
        previous_ends: u64,
    },
    /// A header's prev hash is not the previous segment's last entry hash.
    SegmentPrevHash,
    /// A header's Merkle frontier is not the previous segment's.
    SegmentFrontier,
    /// A segment other than the last has no footer.
    MissingFooter,
    /// A trusted checkpoint is not signed by this key for this log.
    CheckpointSignature(CheckpointError),
    /// A trusted checkpoint covers more entries than the log holds sealed.
    CheckpointBeyondLog {
        tree_size: u64,
        sealed: u64,
    },
    /// The log's root at a trusted checkpoint's size is not the checkpoint's.
    CheckpointRootDiffers {
        tree_size: u64,
    },
    /// A payload in the erased form (all zero bytes) that no later
    /// `entry.redacted` by an operator names, with its payload hash
    /// (SPEC §4.2.1): content tampering.
    UnexplainedErasure,
    /// A `key.rotated` entry that does not certify the next epoch's key
    /// with the outgoing key (SPEC §4.7): forged, altered, or not Argus's.
    KeyRotation(log_format::RotationError),
}

impl Cause {
    /// A stable snake_case name, for JSON reports and scripts.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SegmentsNotADirectory { .. } => "segments_not_a_directory",
            Self::SegmentNotRegular { .. } => "segment_not_regular",
            Self::BadSegmentName => "bad_segment_name",
            Self::NoSegments => "no_segments",
            Self::Header(_) => "header",
            Self::ForeignSegment { .. } => "foreign_segment",
            Self::BaseSeqMismatch { .. } => "base_seq_mismatch",
            Self::FirstSegmentNotZero { .. } => "first_segment_not_zero",
            Self::Fault(f) => f.name(),
            Self::Corrupt { .. } => "corrupt",
            Self::DamagedSealedSegment { .. } => "damaged_sealed_segment",
            Self::Compressed(_) => "compressed_segment",
            Self::CompressedNotSealed => "compressed_not_sealed",
            Self::SegmentSeqGap { .. } => "segment_seq_gap",
            Self::SegmentPrevHash => "segment_prev_hash",
            Self::SegmentFrontier => "segment_frontier",
            Self::MissingFooter => "missing_footer",
            Self::CheckpointSignature(_) => "checkpoint_signature",
            Self::CheckpointBeyondLog { .. } => "checkpoint_beyond_log",
            Self::CheckpointRootDiffers { .. } => "checkpoint_root_differs",
            Self::UnexplainedErasure => "unexplained_erasure",
            Self::KeyRotation(_) => "key_rotation",
        }
    }
}

impl Serialize for Cause {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub class: Class,
    pub segment: String,
    pub offset: u64,
    pub seq: Option<u64>,
    pub message: String,
    pub cause: Cause,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}: segments/{} offset {}",
            self.class, self.segment, self.offset
        )?;
        if let Some(s) = self.seq {
            write!(f, " seq {s}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where a failure is: segment, offset and seq, if known.
pub(super) struct At<'a> {
    pub segment: &'a str,
    pub offset: u64,
    pub seq: Option<u64>,
}

impl<'a> At<'a> {
    pub fn start(segment: &'a str) -> Self {
        Self {
            segment,
            offset: 0,
            seq: None,
        }
    }
}

/// A failure, boxed: it travels in `Result`s and `Option`s on the way to
/// the report, and its cause can be large.
pub(super) fn fail(class: Class, at: At<'_>, cause: Cause, msg: impl Into<String>) -> Box<Failure> {
    Box::new(Failure {
        class,
        segment: at.segment.to_string(),
        offset: at.offset,
        seq: at.seq,
        message: msg.into(),
        cause,
    })
}

/// A compressed segment whose layout or blocks do not decode: altered
/// content, at the offset in the `.segz` file the error names.
pub(super) fn archive_failure(segment: &str, e: log_format::ArchiveError) -> Box<Failure> {
    let at = At {
        segment,
        offset: e.offset(),
        seq: None,
    };
    let msg = format!("damaged compressed segment: {e}");
    fail(Class::Content, at, Cause::Compressed(e), msg)
}

/// A header that does not decode: a checksum mismatch is altered content,
/// anything else is structure. `crc_offset`: name a checksum mismatch at
/// the checksum (the per-segment pass) rather than at offset 0 (where the
/// first segment's header is read for the log id, as pyverify names it).
pub(super) fn header_failure(segment: &str, e: FormatError, crc_offset: bool) -> Box<Failure> {
    let (class, offset) = match &e {
        FormatError::HeaderChecksum { offset, .. } => {
            (Class::Content, if crc_offset { *offset } else { 0 })
        }
        _ => (Class::Structure, 0),
    };
    let msg = format!("segment header: {e}");
    let at = At {
        segment,
        offset,
        seq: None,
    };
    fail(class, at, Cause::Header(e), msg)
}
