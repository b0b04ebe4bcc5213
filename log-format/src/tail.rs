//! Where a segment's valid frames stop: torn tail or corruption (SPEC §7.2).
//!
//! The judgement rests on the fault model of SPEC §7.1. The writer issues its
//! next write only after the previous one's `fdatasync` returned, so at any
//! moment at most one write (one group commit: entry frames, then exactly one
//! seal, plus a footer when the segment rolls) is not yet durable. A crash or
//! a power cut may leave that one write in any state: a prefix, later pages
//! without earlier ones, zeros. Everything before it is durable and intact.
//!
//! Only a seal proves that bytes were acknowledged, and a seal frame has a
//! fixed size, so after the first invalid frame we look for later seals:
//! positions where a 157-byte seal frame could start, checked cheaply (length
//! and type bytes, then the CRC) before any signature. That search is linear
//! in the tail, whatever the tail holds.
//!
//! | # | after the first invalid frame at `x`                              | judgement |
//! |---|-------------------------------------------------------------------|-----------|
//! | 1 | no validly signed seal newer than the last good one               | torn      |
//! | 2 | one such seal, and no valid frame starts where it ends (or only a  | torn, the cut region held a signed seal (reported) |
//! |   | footer that ends the file)                                         |           |
//! | 3 | one such seal, and a valid frame other than a final footer starts  | corrupt: a later write followed, so this one was durable |
//! |   | where it ends                                                      |           |
//! | 4 | two or more such seals                                             | corrupt: two commits cannot both be undurable |
//! | 5 | more seal-shaped frames than [`SEAL_CANDIDATES_MAX`] to check      | corrupt: no single commit looks like that |
//!
//! A segment that is not the last is never torn: its footer was durable before
//! the next segment was created (the caller applies that rule).
use crate::epoch::KeyEpoch;
use crate::error::FormatError;
use crate::frame::{decode_frame, frame_crc, FrameType, FRAME_HEADER_LEN};
use crate::seal::{Seal, SEAL_LEN};
use crate::segment::FOOTER_LEN;
use crate::{KeyId, LogId};
use ed25519_dalek::VerifyingKey;

/// Bytes of a whole seal frame.
pub const SEAL_FRAME_LEN: usize = FRAME_HEADER_LEN + SEAL_LEN;
/// Signature checks the judgement may spend on seal-shaped frames. A genuine
/// torn commit holds one seal; a tail with thousands of CRC-valid seal frames
/// was made on purpose, and is judged corrupt rather than cut.
pub const SEAL_CANDIDATES_MAX: usize = 1024;

/// The key a seal is checked with: one key, or the log's key epochs
/// (SPEC §4.7), where the seal's tree size picks the key.
#[derive(Clone, Copy)]
pub struct SealKey<'k> {
    pub log_id: LogId,
    pub key: &'k VerifyingKey,
    pub key_id: KeyId,
    /// The epochs after the first, in order; empty for a single key.
    later: &'k [KeyEpoch],
}

impl<'k> SealKey<'k> {
    pub fn new(log_id: LogId, key: &'k VerifyingKey) -> Self {
        Self {
            log_id,
            key,
            key_id: crate::seal::key_id(&log_id, key),
            later: &[],
        }
    }

    /// Every epoch of a log: `first` is the pinned key (from seq 0),
    /// `later` the certified epochs after it, in order.
    pub fn with_epochs(log_id: LogId, first: &'k KeyEpoch, later: &'k [KeyEpoch]) -> Self {
        Self {
            log_id,
            key: &first.key,
            key_id: first.key_id,
            later,
        }
    }

    /// The epoch number, key and key id that must sign a seal of
    /// `tree_size` entries: the epoch whose range holds seq `tree_size - 1`.
    pub fn for_tree_size(&self, tree_size: u64) -> (u64, &'k VerifyingKey, KeyId) {
        let last = tree_size.saturating_sub(1);
        match self.later.iter().rev().find(|e| e.from_seq <= last) {
            Some(e) => (e.epoch, &e.key, e.key_id),
            None => (0, self.key, self.key_id),
        }
    }

    /// Whether `seal` is signed by the key of its epoch.
    pub fn signs(&self, seal: &Seal) -> bool {
        let (_, key, kid) = self.for_tree_size(seal.tree_size);
        seal.key_id == kid && seal.verify(&self.log_id, key)
    }
}

/// A signed seal found after the first invalid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundSeal {
    pub offset: u64,
    pub tree_size: u64,
}

/// Why bytes after an invalid frame are judged corruption (rows 3–5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Row 4: two signed seals newer than the last good one.
    TwoSeals { first: FoundSeal, second: FoundSeal },
    /// Row 3: a valid frame starts where the signed seal ends.
    WriteAfterSeal { seal: FoundSeal, next_frame: u64 },
    /// Row 5: too many seal-shaped frames to be one torn commit.
    TooManyCandidates { checked: usize },
}

impl std::fmt::Display for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TwoSeals { first, second } => write!(
                f,
                "signed seals for tree sizes {} and {} follow at offsets {} and {}, and only one commit can be undurable",
                first.tree_size, second.tree_size, first.offset, second.offset
            ),
            Self::WriteAfterSeal { seal, next_frame } => write!(
                f,
                "a signed seal for tree size {} follows at offset {}, and another write began after it at offset {next_frame}, so it was durable",
                seal.tree_size, seal.offset
            ),
            Self::TooManyCandidates { checked } => write!(
                f,
                "more than {checked} seal-shaped frames follow; no single torn commit looks like that"
            ),
        }
    }
}

/// How a segment's frames end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Every byte after the header belongs to a valid frame.
    Clean,
    /// Bytes `[offset, end)` are the remains of the one write that was not
    /// durable; they were never acknowledged (rows 1–2).
    Torn {
        offset: u64,
        cause: FormatError,
        /// Row 2: the cut region held a validly signed seal. Under the fault
        /// model its commit was not durable; if the disk lost data it had
        /// made durable, only a trusted checkpoint can tell.
        signed_seal: Option<FoundSeal>,
    },
    /// The invalid frame at `offset` is damage to committed data (rows 3–5).
    Corrupt {
        offset: u64,
        cause: FormatError,
        proof: Proof,
    },
}

/// True when a seal frame could start at `p`: length 148 and type seal. The
/// CRC and the signature are checked only where this holds.
fn seal_shaped(buf: &[u8], p: usize) -> bool {
    buf.get(p + 4..p + FRAME_HEADER_LEN) == Some(&[SEAL_LEN as u8, 0, 0, 0, FrameType::Seal as u8])
}

fn crc_ok(buf: &[u8], p: usize) -> bool {
    let Some(frame) = buf.get(p..p + SEAL_FRAME_LEN) else {
        return false;
    };
    let stored = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let len_le = [frame[4], frame[5], frame[6], frame[7]];
    stored == frame_crc(len_le, frame[8], &frame[FRAME_HEADER_LEN..])
}

/// Judges the bytes after the first invalid frame, which starts at file
/// offset `x`; `buf` holds the file from offset `base` to its end.
/// `sealed_size` is the tree size of the last valid seal before `x`: a seal
/// found later proves newer data only if it covers more entries than that.
pub fn judge(
    buf: &[u8],
    base: u64,
    x: u64,
    cause: FormatError,
    sealed_size: u64,
    key: &SealKey<'_>,
) -> Tail {
    let start = (x.saturating_sub(base) as usize).saturating_add(1);
    let mut found: Option<FoundSeal> = None;
    let mut checked = 0usize;
    let last = buf.len().saturating_sub(SEAL_FRAME_LEN);
    let mut p = start;
    while p <= last {
        if !seal_shaped(buf, p) || !crc_ok(buf, p) {
            p += 1;
            continue;
        }
        let body = &buf[p + FRAME_HEADER_LEN..p + SEAL_FRAME_LEN];
        let Ok(seal) = Seal::decode(body, (p + FRAME_HEADER_LEN) as u64) else {
            p += 1;
            continue;
        };
        let (_, seal_key, seal_key_id) = key.for_tree_size(seal.tree_size);
        if seal.key_id != seal_key_id || seal.tree_size <= sealed_size {
            p += 1;
            continue;
        }
        if checked == SEAL_CANDIDATES_MAX {
            return Tail::Corrupt {
                offset: x,
                cause,
                proof: Proof::TooManyCandidates { checked },
            };
        }
        checked += 1;
        if !seal.verify(&key.log_id, seal_key) {
            p += 1;
            continue;
        }
        let this = FoundSeal {
            offset: base + p as u64,
            tree_size: seal.tree_size,
        };
        if let Some(first) = found {
            return Tail::Corrupt {
                offset: x,
                cause,
                proof: Proof::TwoSeals {
                    first,
                    second: this,
                },
            };
        }
        found = Some(this);
        // Row 3: did a later write begin where this seal ends? A commit's
        // next write starts exactly at the end of the previous one.
        let end = p + SEAL_FRAME_LEN;
        if let Ok(next) = decode_frame(&buf[end.min(buf.len())..], base + end as u64) {
            let final_footer = next.frame_type == FrameType::Footer
                && next.body.len() == FOOTER_LEN
                && end + next.total_len == buf.len();
            if !final_footer {
                return Tail::Corrupt {
                    offset: x,
                    cause,
                    proof: Proof::WriteAfterSeal {
                        seal: this,
                        next_frame: base + end as u64,
                    },
                };
            }
        }
        p = end;
    }
    Tail::Torn {
        offset: x,
        cause,
        signed_seal: found,
    }
}

/// The last `max` validly signed seals in `buf` (which holds a segment file
/// from offset `base`), newest first, as (file offset, seal), found by
/// scanning backward from the end: how a reader learns where a long active
/// segment stands without walking all of it. The caller must still check
/// that the write the newest seal closes is whole (walk it from the seal
/// before it): a seal alone proves it was signed, not that its entries
/// reached the disk.
pub fn last_seals(buf: &[u8], base: u64, key: &SealKey<'_>, max: usize) -> Vec<(u64, Seal)> {
    let mut out = Vec::new();
    let Some(mut p) = buf.len().checked_sub(SEAL_FRAME_LEN) else {
        return out;
    };
    loop {
        if seal_shaped(buf, p) && crc_ok(buf, p) {
            let body = &buf[p + FRAME_HEADER_LEN..p + SEAL_FRAME_LEN];
            if let Ok(seal) = Seal::decode(body, base + (p + FRAME_HEADER_LEN) as u64) {
                if key.signs(&seal) {
                    out.push((base + p as u64, seal));
                    if out.len() == max {
                        return out;
                    }
                }
            }
        }
        if p == 0 {
            return out;
        }
        p -= 1;
    }
}

#[cfg(test)]
mod tests {
    //! One test per row of the decision table (SPEC §7.2).
    use super::*;
    use crate::frame::encode_frame;
    use ed25519_dalek::SigningKey;

    const LOG: LogId = [9u8; 16];

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5u8; 32])
    }

    fn seal_frame(k: &SigningKey, tree_size: u64) -> Vec<u8> {
        let s = Seal::sign(&LOG, k, tree_size, [1; 32], [2; 32], 7);
        let mut out = Vec::new();
        encode_frame(&mut out, FrameType::Seal, &s.encode());
        out
    }

    fn entry_like(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, FrameType::Entry, &vec![0x41; n]);
        out
    }

    fn judge_buf(buf: &[u8], sealed: u64) -> Tail {
        let k = key();
        let vk = k.verifying_key();
        let cause = FormatError::Malformed {
            what: "frame",
            offset: 0,
            reason: "test".into(),
        };
        judge(buf, 0, 0, cause, sealed, &SealKey::new(LOG, &vk))
    }

    #[test]
    fn row1_no_seal_after_damage_is_torn() {
        let mut buf = vec![0xEE; 300];
        buf.extend(entry_like(50));
        assert!(matches!(
            judge_buf(&buf, 3),
            Tail::Torn {
                signed_seal: None,
                ..
            }
        ));
        // Zeros, as a power cut leaves them.
        assert!(matches!(judge_buf(&[0u8; 4096], 3), Tail::Torn { .. }));
    }

    #[test]
    fn row1_seal_of_another_key_or_older_size_is_not_proof() {
        let other = SigningKey::from_bytes(&[6u8; 32]);
        let mut buf = vec![0xEE; 100];
        buf.extend(seal_frame(&other, 10));
        buf.extend(seal_frame(&key(), 3)); // not newer than the last good seal
        assert!(matches!(
            judge_buf(&buf, 3),
            Tail::Torn {
                signed_seal: None,
                ..
            }
        ));
    }

    #[test]
    fn row1_bad_signature_is_not_proof() {
        let mut buf = vec![0xEE; 100];
        let mut s = seal_frame(&key(), 10);
        // Flip a signature byte and fix the CRC: shaped and CRC-valid, unsigned.
        let n = s.len();
        s[n - 1] ^= 1;
        let crc = frame_crc([s[4], s[5], s[6], s[7]], s[8], &s[FRAME_HEADER_LEN..]);
        s[..4].copy_from_slice(&crc.to_le_bytes());
        buf.extend(s);
        assert!(matches!(
            judge_buf(&buf, 3),
            Tail::Torn {
                signed_seal: None,
                ..
            }
        ));
    }

    #[test]
    fn row2_one_signed_seal_at_the_end_is_a_power_cut_torn_commit() {
        let mut buf = vec![0u8; 4096]; // a page that never reached the disk
        buf.extend(entry_like(80));
        buf.extend(seal_frame(&key(), 10));
        match judge_buf(&buf, 9) {
            Tail::Torn {
                signed_seal: Some(s),
                ..
            } => assert_eq!(s.tree_size, 10),
            other => panic!("{other:?}"),
        }
        // A roll: the seal followed by the footer that ends the file.
        let mut rolled = buf.clone();
        let mut footer = Vec::new();
        encode_frame(&mut footer, FrameType::Footer, &[0u8; FOOTER_LEN]);
        rolled.extend(footer);
        assert!(matches!(
            judge_buf(&rolled, 9),
            Tail::Torn {
                signed_seal: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn row3_a_write_after_the_signed_seal_proves_it_durable() {
        let mut buf = vec![0xEE; 100];
        buf.extend(seal_frame(&key(), 10));
        buf.extend(entry_like(80));
        assert!(matches!(
            judge_buf(&buf, 9),
            Tail::Corrupt {
                proof: Proof::WriteAfterSeal { .. },
                ..
            }
        ));
    }

    #[test]
    fn row4_two_signed_seals_are_corruption() {
        let mut buf = vec![0xEE; 100];
        buf.extend(seal_frame(&key(), 10));
        buf.extend(vec![0xEE; 10]);
        buf.extend(seal_frame(&key(), 11));
        assert!(matches!(
            judge_buf(&buf, 9),
            Tail::Corrupt {
                proof: Proof::TwoSeals { .. },
                ..
            }
        ));
    }

    #[test]
    fn row5_a_flood_of_seal_shaped_frames_is_judged_without_a_signature_each() {
        // CRC-valid seal frames with bad signatures, back to back: the check
        // stops at the cap instead of spending a verification on each.
        let mut one = seal_frame(&key(), 10);
        let n = one.len();
        one[n - 1] ^= 1;
        let crc = frame_crc(
            [one[4], one[5], one[6], one[7]],
            one[8],
            &one[FRAME_HEADER_LEN..],
        );
        one[..4].copy_from_slice(&crc.to_le_bytes());
        let mut buf = vec![0xEE; 1];
        for _ in 0..SEAL_CANDIDATES_MAX + 5 {
            buf.extend(&one);
        }
        assert!(matches!(
            judge_buf(&buf, 9),
            Tail::Corrupt {
                proof: Proof::TooManyCandidates { .. },
                ..
            }
        ));
    }
}
