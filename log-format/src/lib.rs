//! The Argus on-disk log format, and nothing else.
//!
//! This crate is the executable form of `SPEC.md`: byte layouts, hash
//! constructions, the Merkle compact range, seals and checkpoint notes, and
//! the frame scanner that decides what is intact, what is a torn tail and what
//! is corruption. It holds no policy, no I/O scheduling and no async runtime,
//! so that an auditor can read it next to the spec and nothing else.
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(unsafe_code)]

pub mod archive;
pub mod entry;
pub mod epoch;
pub mod erase;
pub mod error;
pub mod frame;
pub mod hash;
pub mod merkle;
pub mod proof;
pub mod scan;
pub mod seal;
pub mod segment;
pub mod tail;
pub mod untrusted;
pub mod walk;

pub use archive::{Archive, ArchiveError};
pub use entry::{EntryFields, EntryRecord, EntryView, NO_PARENT};
pub use epoch::{KeyEpoch, KeyEpochs, RotationError};
pub use error::FormatError;
pub use frame::{FrameType, FRAME_BODY_MAX, FRAME_HEADER_LEN};
pub use hash::Hash32;
pub use merkle::CompactRange;
pub use scan::{FrameWalk, ScannedFrame, SegmentScan};
pub use seal::{Checkpoint, Cosigned, Cosigner, KeyId, Seal};
pub use segment::{Footer, SegmentHeader};
pub use tail::{SealKey, Tail};
pub use walk::{ChainState, ChainWalk, Checks, Fault, FaultClass, Item};

/// Format version written in every segment header.
pub const FORMAT_VERSION: u32 = 1;

/// A log id: 16 random bytes chosen at `init`, repeated in every segment header.
pub type LogId = [u8; 16];
