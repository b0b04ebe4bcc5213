//! Finding the `key.rotated` entries of a log (SPEC §4.7) and following
//! their certificates from the pinned first key.
//!
//! Rotations are rare, so a segment is first searched for the kind's bytes
//! (an entry stores its kind as plain UTF-8): only a segment that holds
//! them is walked frame by frame.
use crate::error::{Error, Result};
use crate::log::dir::LogDir;
use crate::log::reader;
use ed25519_dalek::VerifyingKey;
use log_format::entry::decode_entry;
use log_format::epoch::ROTATION_KIND;
use log_format::segment::segment_file_name;
use log_format::{FrameType, KeyEpochs, LogId, RotationError, Seal, SegmentScan};

/// A `key.rotated` entry found in a segment's bytes.
pub struct Found<'a> {
    pub seq: u64,
    pub offset: u64,
    pub actor: &'a str,
    pub payload: &'a [u8],
    /// A valid seal follows it in the segment: it was durable.
    pub sealed: bool,
}

/// The `key.rotated` entries among the valid frames of one segment, in
/// order. Frames after the first invalid one are not looked at (they are
/// a torn tail, or `verify` fails the segment there).
pub fn rotations_in(bytes: &[u8]) -> Vec<Found<'_>> {
    let mut out = Vec::new();
    if memchr::memmem::find(bytes, ROTATION_KIND.as_bytes()).is_none() {
        return out;
    }
    let Ok(scan) = SegmentScan::new(bytes) else {
        return out;
    };
    for f in scan.frames {
        match f.frame_type {
            FrameType::Entry => {
                let Ok(v) = decode_entry(f.body, f.body_offset()) else {
                    break;
                };
                if v.kind == ROTATION_KIND {
                    out.push(Found {
                        seq: v.seq,
                        offset: f.offset,
                        actor: v.actor,
                        payload: v.payload,
                        sealed: false,
                    });
                }
            }
            FrameType::Seal => {
                let Ok(seal) = Seal::decode(f.body, f.body_offset()) else {
                    break;
                };
                for r in out.iter_mut().filter(|r| r.seq < seal.tree_size) {
                    r.sealed = true;
                }
            }
            FrameType::Footer => {}
        }
    }
    out
}

/// Adds the epochs certified in one segment's bytes to `epochs`; the first
/// certificate that does not verify is the error, with its frame offset.
pub fn accept_segment(
    epochs: &mut KeyEpochs,
    bytes: &[u8],
    min_seq: u64,
) -> std::result::Result<(), (u64, RotationError)> {
    for f in rotations_in(bytes).into_iter().filter(|f| f.seq >= min_seq) {
        epochs
            .accept(f.seq, ROTATION_KIND, f.actor, f.payload)
            .map_err(|e| (f.offset, e))?;
    }
    Ok(())
}

/// Every epoch of the log in `dir`, each certificate checked, starting
/// from `first` (the pinned key). Only the certificates are checked here,
/// not the chain that holds them: that is `verify`'s.
pub fn read(dir: &LogDir, log_id: LogId, first: VerifyingKey) -> Result<KeyEpochs> {
    read_from(dir, KeyEpochs::new(log_id, first), 0)
}

/// `read`, starting from known epochs and reading only the segments that
/// hold seqs at or after `from_seq`.
pub fn read_from(dir: &LogDir, mut epochs: KeyEpochs, from_seq: u64) -> Result<KeyEpochs> {
    let bases = dir.list_segments()?;
    let start = bases.partition_point(|b| *b <= from_seq).saturating_sub(1);
    for &base in &bases[start..] {
        let path = match dir.segment_forms(base) {
            (true, _) => dir.segment_path(base),
            (false, _) => dir.compressed_path(base),
        };
        let bytes = reader::load_path_on(&*dir.storage, &path)?;
        accept_segment(&mut epochs, &bytes, from_seq).map_err(|(offset, e)| Error::Damaged {
            path: dir.segments_dir().join(segment_file_name(base)),
            reason: format!("offset {offset}: {e}"),
        })?;
    }
    Ok(epochs)
}
