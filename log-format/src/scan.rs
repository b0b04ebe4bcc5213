//! Walks the frames of one segment and classifies where they stop.
//!
//! The one judgement made here (SPEC §7): a bad frame with no valid frame
//! anywhere after it is a *torn tail*, the remains of a write that was never
//! acknowledged; a bad frame followed by any valid frame is *corruption* of
//! committed data and must never be cut away.
use crate::error::FormatError;
use crate::frame::{decode_frame, frame_crc, FrameType, FRAME_BODY_MAX, FRAME_HEADER_LEN};
use crate::segment::SegmentHeader;

#[derive(Debug, Clone, Copy)]
pub struct ScannedFrame<'a> {
    /// File offset of the frame's first byte.
    pub offset: u64,
    pub frame_type: FrameType,
    pub body: &'a [u8],
}

impl ScannedFrame<'_> {
    /// File offset of the frame body.
    pub fn body_offset(&self) -> u64 {
        self.offset + FRAME_HEADER_LEN as u64
    }
    pub fn end(&self) -> u64 {
        self.body_offset() + self.body.len() as u64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    /// Every byte after the header is part of a valid frame.
    Clean,
    /// Bytes from `offset` to the end form no valid frame.
    TornTail { offset: u64, error: FormatError },
    /// A bad frame at `offset` is followed by a valid frame at `next_valid`.
    Corrupt {
        offset: u64,
        error: FormatError,
        next_valid: u64,
    },
}

/// Walks frames in `buf`, whose first byte is at file offset `base`. Stops
/// at the first invalid frame and remembers why.
pub struct FrameWalk<'a> {
    buf: &'a [u8],
    base: u64,
    pos: usize,
    stopped: Option<FormatError>,
}

impl<'a> FrameWalk<'a> {
    pub fn new(buf: &'a [u8], base: u64) -> Self {
        Self {
            buf,
            base,
            pos: 0,
            stopped: None,
        }
    }

    /// File offset just past the last valid frame returned so far.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Restarts at file offset `offset` (a known frame boundary).
    pub fn seek(&mut self, offset: u64) {
        self.pos = (offset.saturating_sub(self.base) as usize).min(self.buf.len());
        self.stopped = None;
    }

    /// How the walk ended. Meaningful once the iterator returned `None`.
    pub fn outcome(&self) -> ScanOutcome {
        match &self.stopped {
            None => ScanOutcome::Clean,
            Some(error) => match next_valid_frame(self.buf, self.pos + 1) {
                Some(next) => ScanOutcome::Corrupt {
                    offset: self.offset(),
                    error: error.clone(),
                    next_valid: self.base + next as u64,
                },
                None => ScanOutcome::TornTail {
                    offset: self.offset(),
                    error: error.clone(),
                },
            },
        }
    }
}

impl<'a> Iterator for FrameWalk<'a> {
    type Item = ScannedFrame<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.stopped.is_some() || self.pos >= self.buf.len() {
            return None;
        }
        match decode_frame(&self.buf[self.pos..], self.offset()) {
            Ok(f) => {
                let out = ScannedFrame {
                    offset: self.offset(),
                    frame_type: f.frame_type,
                    body: f.body,
                };
                self.pos += f.total_len;
                Some(out)
            }
            Err(e) => {
                self.stopped = Some(e);
                None
            }
        }
    }
}

/// A whole segment: its header, then a walk over its frames.
pub struct SegmentScan<'a> {
    pub header: SegmentHeader,
    pub header_len: usize,
    pub frames: FrameWalk<'a>,
}

impl<'a> SegmentScan<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, FormatError> {
        let (header, header_len) = SegmentHeader::decode(buf)?;
        let mut frames = FrameWalk::new(buf, 0);
        frames.seek(header_len as u64);
        Ok(Self {
            header,
            header_len,
            frames,
        })
    }
}

/// First offset at or after `from` where a complete, CRC-valid frame of a
/// known type starts. Cheap checks (type, length bounds) come before the CRC.
pub fn next_valid_frame(buf: &[u8], from: usize) -> Option<usize> {
    let last = buf.len().checked_sub(FRAME_HEADER_LEN)?;
    (from..=last).find(|&p| {
        let t = buf[p + 8];
        if FrameType::from_byte(t).is_none() {
            return false;
        }
        let len_le = [buf[p + 4], buf[p + 5], buf[p + 6], buf[p + 7]];
        let len = u32::from_le_bytes(len_le) as usize;
        if len == 0 || len > FRAME_BODY_MAX || p + FRAME_HEADER_LEN + len > buf.len() {
            return false;
        }
        let stored = u32::from_le_bytes([buf[p], buf[p + 1], buf[p + 2], buf[p + 3]]);
        stored
            == frame_crc(
                len_le,
                t,
                &buf[p + FRAME_HEADER_LEN..p + FRAME_HEADER_LEN + len],
            )
    })
}
