//! The one chain walker. Recovery, the readers and `verify` all walk a
//! segment's frames through this type, so they cannot disagree about what is
//! a valid entry, what a seal covers, or where the valid frames end.
//!
//! Each caller chooses which checks to pay for ([`Checks`]): `verify` checks
//! everything; readers check each payload against its hash, so a payload
//! edited in place (CRC fixed up) is refused rather than believed; recovery
//! checks the chain and the Merkle roots it needs to resume writing.
use crate::entry::{decode_entry, EntryView};
use crate::error::FormatError;
use crate::frame::FrameType;
use crate::merkle::CompactRange;
use crate::scan::FrameWalk;
use crate::seal::Seal;
use crate::segment::{Footer, SegmentHeader};
use crate::tail::{judge, SealKey, Tail};
use crate::Hash32;

/// Which checks a walk performs beyond frame CRCs and seq continuity.
#[derive(Clone, Copy, Default)]
pub struct Checks<'k> {
    /// Each entry's `prev` equals the hash of the entry before it, and each
    /// seal's head equals the last entry hash.
    pub chain: bool,
    /// Each payload matches its payload hash.
    pub payload: bool,
    /// With `payload`: a payload in the erased form (SPEC §4.2.1) is handed
    /// out marked `erased` instead of failing. Whether a later redaction
    /// allows it is the caller's judgement (verify's, at the end of the
    /// log), since the walker sees one segment and the redaction comes later.
    pub erased: bool,
    /// Track the Merkle compact range and check each seal's root.
    pub merkle: bool,
    /// Check each seal's key id and signature with this key.
    pub signatures: Option<SealKey<'k>>,
}

/// Where the chain stands: the next seq, the hash it must link to, and the
/// Merkle range so far (when tracked).
#[derive(Debug, Clone)]
pub struct ChainState {
    pub next_seq: u64,
    /// `None` when a reader starts mid-segment: the first entry's `prev` is
    /// taken as given.
    pub last_hash: Option<Hash32>,
    pub range: CompactRange,
    /// Entry frames walked in this segment.
    pub entries: u64,
    /// Tree size of the last valid seal walked (or the segment's base seq).
    pub sealed_size: u64,
    /// The walk began at the segment header, so `entries` counts the whole
    /// segment and the footer's entry count can be checked.
    pub whole: bool,
}

impl ChainState {
    /// The state a segment's header claims.
    pub fn from_header(h: &SegmentHeader) -> Self {
        Self {
            next_seq: h.base_seq,
            last_hash: Some(h.prev_hash),
            range: h.frontier.clone(),
            entries: 0,
            sealed_size: h.base_seq,
            whole: true,
        }
    }

    /// A reader resuming at an entry whose seq it knows but whose
    /// predecessor it has not read.
    pub fn resume_at(seq: u64) -> Self {
        Self {
            next_seq: seq,
            last_hash: None,
            range: CompactRange::new(),
            entries: 0,
            sealed_size: seq,
            whole: false,
        }
    }
}

/// One valid frame, checked.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    Entry {
        entry: EntryView<'a>,
        offset: u64,
        /// The entry hash, when the walk computed it (chain or Merkle checks).
        hash: Option<Hash32>,
        /// The payload was checked and is in the erased form (only with
        /// `Checks::erased`); its bytes are zeros, not the payload.
        erased: bool,
    },
    Seal {
        seal: Seal,
        offset: u64,
        end: u64,
    },
    Footer {
        footer: Footer,
        offset: u64,
        end: u64,
    },
}

/// The class a fault belongs to (SPEC §7.3 exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    Content,
    Signature,
    Structure,
}

/// A valid frame whose content is wrong. Unlike an invalid frame, this is
/// never a torn write: a crash cannot produce a CRC-valid frame with the
/// wrong content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    #[error("entry at offset {offset}: {source}")]
    BadEntry {
        offset: u64,
        seq: u64,
        #[source]
        source: FormatError,
    },
    #[error("seq gap at offset {offset}: expected seq {expected}, found {found}")]
    SeqGap {
        offset: u64,
        expected: u64,
        found: u64,
    },
    #[error("chain broken at offset {offset} seq {seq}: prev does not equal the hash of the entry before")]
    ChainBroken { offset: u64, seq: u64 },
    #[error("payload at offset {offset} seq {seq} does not match its payload hash")]
    PayloadMismatch { offset: u64, seq: u64 },
    #[error("seal at offset {offset}: {source}")]
    BadSeal {
        offset: u64,
        #[source]
        source: FormatError,
    },
    #[error("seal at offset {offset} covers {tree_size} entries but {entries} precede it")]
    SealSize {
        offset: u64,
        tree_size: u64,
        entries: u64,
    },
    #[error("seal at offset {offset} for tree size {tree_size}: root or head does not match the entries (content altered)")]
    SealMismatch { offset: u64, tree_size: u64 },
    #[error(
        "seal at offset {offset} for tree size {tree_size} signed by key id {found}, not key id {expected} of epoch {epoch}, whose range holds seq {}", tree_size.saturating_sub(1)
    )]
    SealKeyId {
        offset: u64,
        tree_size: u64,
        found: String,
        expected: String,
        /// The key epoch (SPEC §4.7) that must sign this seal.
        epoch: u64,
    },
    #[error("seal at offset {offset} for tree size {tree_size}: signature does not verify under the key of epoch {epoch}")]
    SealSignature {
        offset: u64,
        tree_size: u64,
        epoch: u64,
    },
    #[error(
        "footer at offset {offset} does not directly follow a seal or does not match the segment"
    )]
    BadFooter { offset: u64 },
    #[error("frame at offset {offset} after the footer at offset {footer_at}")]
    AfterFooter { offset: u64, footer_at: u64 },
}

impl Fault {
    pub fn class(&self) -> FaultClass {
        match self {
            Self::BadEntry { .. }
            | Self::ChainBroken { .. }
            | Self::PayloadMismatch { .. }
            | Self::BadSeal { .. }
            | Self::SealMismatch { .. } => FaultClass::Content,
            Self::SealKeyId { .. } | Self::SealSignature { .. } => FaultClass::Signature,
            Self::SeqGap { .. }
            | Self::SealSize { .. }
            | Self::BadFooter { .. }
            | Self::AfterFooter { .. } => FaultClass::Structure,
        }
    }

    /// A stable snake_case name for the variant, for machine-readable
    /// reports (`argusctl verify -o json`), so no one parses the message.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BadEntry { .. } => "bad_entry",
            Self::SeqGap { .. } => "seq_gap",
            Self::ChainBroken { .. } => "chain_broken",
            Self::PayloadMismatch { .. } => "payload_mismatch",
            Self::BadSeal { .. } => "bad_seal",
            Self::SealSize { .. } => "seal_size",
            Self::SealMismatch { .. } => "seal_mismatch",
            Self::SealKeyId { .. } => "seal_key_id",
            Self::SealSignature { .. } => "seal_signature",
            Self::BadFooter { .. } => "bad_footer",
            Self::AfterFooter { .. } => "after_footer",
        }
    }

    /// File offset of the frame at fault.
    pub fn offset(&self) -> u64 {
        match self {
            Self::BadEntry { offset, .. }
            | Self::SeqGap { offset, .. }
            | Self::ChainBroken { offset, .. }
            | Self::PayloadMismatch { offset, .. }
            | Self::BadSeal { offset, .. }
            | Self::SealSize { offset, .. }
            | Self::SealMismatch { offset, .. }
            | Self::SealKeyId { offset, .. }
            | Self::SealSignature { offset, .. }
            | Self::BadFooter { offset }
            | Self::AfterFooter { offset, .. } => *offset,
        }
    }

    /// The seq the fault concerns, where one is known: the entry's, or the
    /// last seq a seal covers.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::BadEntry { seq, .. }
            | Self::ChainBroken { seq, .. }
            | Self::PayloadMismatch { seq, .. } => Some(*seq),
            Self::SeqGap { found, .. } => Some(*found),
            Self::SealSize { tree_size, .. }
            | Self::SealMismatch { tree_size, .. }
            | Self::SealKeyId { tree_size, .. }
            | Self::SealSignature { tree_size, .. } => tree_size.checked_sub(1),
            Self::BadSeal { .. } | Self::BadFooter { .. } | Self::AfterFooter { .. } => None,
        }
    }
}

/// Walks one segment's frames from a known chain state, checking each.
pub struct ChainWalk<'a, 'k> {
    frames: FrameWalk<'a>,
    buf: &'a [u8],
    buf_offset: u64,
    checks: Checks<'k>,
    /// Payloads of entries past this seq are not checked (see
    /// `payloads_until`).
    payload_until: u64,
    state: ChainState,
    base_seq: u64,
    prev_type: Option<FrameType>,
    footer_at: Option<u64>,
    failed: bool,
}

impl<'a, 'k> ChainWalk<'a, 'k> {
    /// A walk over `buf`, which holds a segment file from file offset
    /// `buf_offset` to its end, starting at file offset `offset` (a frame
    /// boundary) with `state`. `base_seq` is the segment's, for its footer.
    pub fn new(
        buf: &'a [u8],
        buf_offset: u64,
        offset: u64,
        base_seq: u64,
        state: ChainState,
        checks: Checks<'k>,
    ) -> Self {
        let mut frames = FrameWalk::new(buf, buf_offset);
        frames.seek(offset);
        Self {
            frames,
            buf,
            buf_offset,
            checks,
            payload_until: u64::MAX,
            state,
            base_seq,
            prev_type: None,
            footer_at: None,
            failed: false,
        }
    }

    /// A walk over a whole segment from its header.
    pub fn segment(
        buf: &'a [u8],
        checks: Checks<'k>,
    ) -> Result<(SegmentHeader, Self), FormatError> {
        let (header, header_len) = SegmentHeader::decode(buf)?;
        let state = ChainState::from_header(&header);
        let walk = Self::new(buf, 0, header_len as u64, header.base_seq, state, checks);
        Ok((header, walk))
    }

    /// Checks payloads only up to `seq`: a reader that hands out entries up
    /// to `seq` still walks to the seal that covers them, and need not hash
    /// the payloads it will never hand out.
    pub fn payloads_until(&mut self, seq: u64) {
        self.payload_until = seq;
    }

    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// File offset just past the last valid frame walked.
    pub fn offset(&self) -> u64 {
        self.frames.offset()
    }

    /// How the valid frames end (SPEC §7.2), once the iterator has returned
    /// `None`. `key` checks seals found after an invalid frame; callers that
    /// have no key cannot tell a torn tail from corruption.
    pub fn tail(&self, key: &SealKey<'_>) -> Tail {
        match self.frames.stopped() {
            None => Tail::Clean,
            Some(cause) => judge(
                self.buf,
                self.buf_offset,
                self.frames.offset(),
                cause.clone(),
                self.state.sealed_size,
                key,
            ),
        }
    }

    fn entry(&mut self, body: &'a [u8], offset: u64) -> Result<Item<'a>, Fault> {
        let body_offset = offset + crate::frame::FRAME_HEADER_LEN as u64;
        let v = decode_entry(body, body_offset).map_err(|source| Fault::BadEntry {
            offset,
            seq: self.state.next_seq,
            source,
        })?;
        if v.seq != self.state.next_seq {
            if self.state.last_hash.is_none() && self.state.entries == 0 {
                // A reader resuming mid-segment learns the seq here.
                self.state.next_seq = v.seq;
                self.state.sealed_size = v.seq;
            } else {
                return Err(Fault::SeqGap {
                    offset,
                    expected: self.state.next_seq,
                    found: v.seq,
                });
            }
        }
        if self.checks.chain {
            match self.state.last_hash {
                Some(h) if h != v.prev => return Err(Fault::ChainBroken { offset, seq: v.seq }),
                _ => {}
            }
        }
        let mut erased = false;
        if self.checks.payload && v.seq <= self.payload_until && !v.payload_matches() {
            if !(self.checks.erased && crate::entry::is_zeroed(v.payload)) {
                return Err(Fault::PayloadMismatch { offset, seq: v.seq });
            }
            erased = true;
        }
        let hash = if self.checks.chain || self.checks.merkle {
            let h = v.hash();
            if self.checks.merkle {
                self.state.range.push(&h);
            }
            self.state.last_hash = Some(h);
            Some(h)
        } else {
            // Not hashed, so the link to the next entry is unknown.
            self.state.last_hash = None;
            None
        };
        self.state.next_seq += 1;
        self.state.entries += 1;
        Ok(Item::Entry {
            entry: v,
            offset,
            hash,
            erased,
        })
    }

    fn seal(&mut self, body: &[u8], offset: u64, end: u64) -> Result<Item<'a>, Fault> {
        let body_offset = offset + crate::frame::FRAME_HEADER_LEN as u64;
        let s =
            Seal::decode(body, body_offset).map_err(|source| Fault::BadSeal { offset, source })?;
        if s.tree_size != self.state.next_seq {
            return Err(Fault::SealSize {
                offset,
                tree_size: s.tree_size,
                entries: self.state.next_seq,
            });
        }
        if self.checks.chain {
            let head = if s.tree_size == 0 {
                Some([0; 32])
            } else {
                self.state.last_hash
            };
            if head.is_some_and(|h| h != s.head) {
                return Err(Fault::SealMismatch {
                    offset,
                    tree_size: s.tree_size,
                });
            }
        }
        if self.checks.merkle && s.root != self.state.range.root() {
            return Err(Fault::SealMismatch {
                offset,
                tree_size: s.tree_size,
            });
        }
        if let Some(k) = &self.checks.signatures {
            let (epoch, key, kid) = k.for_tree_size(s.tree_size);
            if s.key_id != kid {
                return Err(Fault::SealKeyId {
                    offset,
                    tree_size: s.tree_size,
                    found: hex::encode(s.key_id),
                    expected: hex::encode(kid),
                    epoch,
                });
            }
            if !s.verify(&k.log_id, key) {
                return Err(Fault::SealSignature {
                    offset,
                    tree_size: s.tree_size,
                    epoch,
                });
            }
        }
        self.state.sealed_size = s.tree_size;
        Ok(Item::Seal {
            seal: s,
            offset,
            end,
        })
    }

    fn footer(&mut self, body: &[u8], offset: u64, end: u64) -> Result<Item<'a>, Fault> {
        let body_offset = offset + crate::frame::FRAME_HEADER_LEN as u64;
        let ok = Footer::decode(body, body_offset).ok().filter(|f| {
            f.base_seq == self.base_seq
                && (!self.state.whole || f.entry_count == self.state.entries)
                && self.state.last_hash.is_none_or(|h| f.last_hash == h)
        });
        match ok {
            Some(footer) if self.prev_type == Some(FrameType::Seal) => {
                self.footer_at = Some(offset);
                Ok(Item::Footer {
                    footer,
                    offset,
                    end,
                })
            }
            _ => Err(Fault::BadFooter { offset }),
        }
    }
}

impl<'a> Iterator for ChainWalk<'a, '_> {
    type Item = Result<Item<'a>, Fault>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let f = self.frames.next()?;
        let (offset, end) = (f.offset, f.end());
        let r = if let Some(footer_at) = self.footer_at {
            Err(Fault::AfterFooter { offset, footer_at })
        } else {
            match f.frame_type {
                FrameType::Entry => self.entry(f.body, offset),
                FrameType::Seal => self.seal(f.body, offset, end),
                FrameType::Footer => self.footer(f.body, offset, end),
            }
        };
        self.prev_type = Some(f.frame_type);
        self.failed = r.is_err();
        Some(r)
    }
}
